/*
 * probe: a C plugin for the conformance tests. Handler "probe" serves every
 * probe comm, the client's and the ones it opens itself. It acts on the "do"
 * word found in a comm_msg's data (plain substring matching; the tests send
 * simple data):
 *   {"do":"echo"}          reply with the same data, metadata and buffers
 *   {"do":"send_two"}      send {"n":1} then {"n":2}
 *   {"do":"open_child"}    open a comm toward the client in this comm's session
 *                          (handler "probe", target "probe.child", generated id,
 *                          data {"opened_by":"probe"}), record "child <id> 0",
 *                          send {"child":"hello"} on it and release the reference
 *                          open handed back; a failing open's status is returned
 *   {"do":"open_named"}    the same with comm id "child-1"
 *   {"do":"close_self"}    close this comm with data {"closing":true}, then try
 *                          to close it again and to send on it; records
 *                          "close-status", "close-again-status", "send-after-close-status"
 *   {"do":"fail"}          return COMMHOST_EFAIL with error text "probe failed on purpose"
 *   {"do":"bad_json"}      try to send invalid JSON and record "bad-json-status <id> <s>"
 *   {"do":"thread_send"}   a thread of the plugin's own sends {"t":1..3} on this comm
 *   {"do":"send_after_close"}  a thread waits until this comm's close callback has
 *                          run, then sends on it and records "late-send <id> <s>"
 *   {"do":"events"}        reply {"events":"<everything recorded, ';'-separated>"}
 *   {"do":"close_plain"}   close this comm with no message (default close data {})
 *   {"do":"thread_close"}  a thread of the plugin's own sends {"t":"before"}, closes
 *                          this comm with data {"by":"thread"}, then tries to send
 *                          {"t":"after"}; records "thread-close-status <id> <s>" and
 *                          "thread-send-after-close-status <id> <s>"
 *   {"do":"watch"}         remember this comm as the watcher (a reference held
 *                          until its own close): from then on, when a client close
 *                          (cause 1) reaches another comm's close callback, the
 *                          callback opens a comm toward the client in the watcher's
 *                          session with the closing comm's own id (target
 *                          "probe.child") and records "reopen <id> <status>"; the
 *                          status is COMMHOST_OK only if the host already removed the
 *                          closing comm from its table
 *   {"do":"log"}           log at warning level a text with a quote, a backslash
 *                          and a line break: probe log "quoted" \ second line
 *
 * Behaviours of the 1.0 contract (sessions, scheduling, backpressure, handles):
 *   {"do":"session"}       reply {"session":"<session id>","session_data":B} where
 *                          B says whether host->session_data gives what
 *                          session_start stored
 *   {"do":"timer"}         start a repeating timer (10 ms, every 10 ms) on this comm
 *                          (records "timer-start <id> <s>"); each OK call sends
 *                          {"tick":N}; after the third it cancels itself (records
 *                          "timer-cancel <id> <s>"). Every call of the task is
 *                          recorded as "timer-call <id> <status>": three 0, then
 *                          one -12 (COMMHOST_ECANCELED), or -4 (COMMHOST_ECLOSED)
 *                          when the comm closes first
 *   {"do":"post"}          a thread of the plugin's own posts a task on this comm
 *                          (records "post-status <id> <s>"); the task records
 *                          "posted <id> <status>" and, when it runs (status 0),
 *                          sends {"posted":true}
 *   {"do":"open_in_close"} arms this comm's session: when the session ends (cause
 *                          3 or 4), the close callback of every other comm of the
 *                          session calls host->open in the session and records
 *                          "open-in-close <closing id> <status>"; the status must be
 *                          COMMHOST_ECLOSED (-4) and nothing may go out
 *   {"do":"double_release"} retain this comm, then release it twice; records
 *                          "retain <id> <s>", "release-1 <id> <s>", "release-2 <id> <s>"
 *                          (the second must be COMMHOST_EHANDLE, -11)
 *   {"do":"flood"}         send {"flood":N,"pad":"x..."} (about 1 KB each) until send
 *                          returns something else than COMMHOST_OK (at most 4096
 *                          sends); records "flood <id> <sends that succeeded>" and
 *                          "flood-status <id> <last status>". On COMMHOST_EAGAIN it
 *                          keeps a reference on the comm; session_writable then
 *                          records "session_writable <session id> 0", sends
 *                          {"resumed":true} and records "resumed <id> <s>"
 *
 * Open fails (COMMHOST_EINVAL, text "open refused") when the open data
 * contains "fail_open". Every open and close (with its cause) is recorded,
 * and so are the session callbacks ("session_start <session id> <cause>",
 * "session_end <session id> <cause>") and the library's deinit ("deinit"),
 * which joins every thread the probe started.
 *
 * The manifest config (the JSON text init receives) may hold:
 *   "events_file": "/absolute/path"  (a path without escapes) every event is also
 *                  appended to that file, one per line, as it is recorded, so a
 *                  test can read events the process recorded while exiting
 *                  (shutdown closes, session_end, deinit)
 *   "open_on_start": true  session_start (cause 1) opens a comm toward the client
 *                  (handler "probe", target "probe.greeting", generated id, data
 *                  {"hello":"session"}); records "greeting-open <session id> <s>"
 *                  and, when it opened, "greeting <comm id> 0"
 */
#define _DEFAULT_SOURCE
#include "comm_plugin.h"
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* This library's host table, set once by init. */
static const commhost_host *host;
static pthread_mutex_t events_lock = PTHREAD_MUTEX_INITIALIZER;
static char events[1 << 16];
static char events_file[4096];
static bool open_on_start;

#define STR(literal) ((commhost_str){ literal, sizeof literal - 1 })

/* ---- events ------------------------------------------------------------ */

/* Appends one event: to `events` (';'-separated) and, when configured, as a
   line to the events file. Takes events_lock so lines never interleave. */
static void record_line(const char *line) {
    pthread_mutex_lock(&events_lock);
    size_t used = strlen(events);
    snprintf(events + used, sizeof events - used, "%s%s", used ? ";" : "", line);
    if (events_file[0]) {
        int fd = open(events_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        if (fd >= 0) {
            char text[600];
            int n = snprintf(text, sizeof text, "%s\n", line);
            if (n > 0 && write(fd, text, (size_t)n) != n) { /* nothing to do: the test sees a missing line */ }
            close(fd);
        }
    }
    pthread_mutex_unlock(&events_lock);
}

static void record(const char *text, commhost_str id, long number) {
    char line[512];
    snprintf(line, sizeof line, "%s %.*s %ld", text, (int)id.len, id.ptr, number);
    record_line(line);
}

/* ---- small helpers ----------------------------------------------------- */

static int contains(commhost_str text, const char *needle) {
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= text.len; i++) {
        if (memcmp(text.ptr + i, needle, n) == 0) return 1;
    }
    return 0;
}

static commhost_message message_with(const char *json) {
    commhost_message message;
    memset(&message, 0, sizeof message);
    message.struct_size = sizeof message;
    message.data.ptr = json;
    message.data.len = strlen(json);
    return message;
}

static commhost_status send_text(commhost_comm *comm, const char *json) {
    commhost_message message = message_with(json);
    return host->send(host, comm, &message);
}

static commhost_status close_text(commhost_comm *comm, const char *json) {
    commhost_message message = message_with(json);
    return host->close(host, comm, &message);
}

/* Copies `text` into `out` (size `size`) as the inside of a JSON string. */
static void json_escape(commhost_str text, char *out, size_t size) {
    size_t n = 0;
    for (size_t i = 0; i < text.len && n + 7 < size; i++) {
        unsigned char c = (unsigned char)text.ptr[i];
        if (c == '"' || c == '\\') { out[n++] = '\\'; out[n++] = (char)c; }
        else if (c < 0x20) n += (size_t)snprintf(out + n, size - n, "\\u%04x", c);
        else out[n++] = (char)c;
    }
    out[n] = 0;
}

static bool same_id(const char *kept, commhost_str id) {
    return strlen(kept) == id.len && memcmp(kept, id.ptr, id.len) == 0;
}

/* Copies a borrowed id into `out` so it outlives the handle's callback. */
static commhost_str copy_id(commhost_str id, char *out, size_t size) {
    size_t len = id.len < size ? id.len : size - 1;
    memcpy(out, id.ptr, len);
    out[len] = 0;
    return (commhost_str){ out, len };
}

/* ---- threads the probe starts: all joined by deinit -------------------- */

static pthread_mutex_t threads_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_t *threads;
static size_t thread_count, thread_capacity;

static int spawn(void *(*body)(void *), void *arg) {
    pthread_mutex_lock(&threads_lock);
    int failed = 0;
    if (thread_count == thread_capacity) {
        size_t capacity = thread_capacity ? 2 * thread_capacity : 16;
        pthread_t *grown = realloc(threads, capacity * sizeof *grown);
        if (grown) { threads = grown; thread_capacity = capacity; } else failed = 1;
    }
    if (!failed) failed = pthread_create(&threads[thread_count], NULL, body, arg) != 0;
    if (!failed) thread_count++;
    pthread_mutex_unlock(&threads_lock);
    return failed ? -1 : 0;
}

static void join_all(void) {
    pthread_mutex_lock(&threads_lock);
    for (size_t i = 0; i < thread_count; i++) pthread_join(threads[i], NULL);
    free(threads);
    threads = NULL;
    thread_count = thread_capacity = 0;
    pthread_mutex_unlock(&threads_lock);
}

/* ---- instances and session data ---------------------------------------- */

/* A comm's instance. Reference counted: the comm holds one (given back by
   its close callback), each send_after_close thread another. */
typedef struct probe_instance {
    atomic_int refs;
    atomic_bool closed;
} probe_instance;

static probe_instance *new_instance(void) {
    probe_instance *instance = calloc(1, sizeof *instance);
    if (instance) atomic_init(&instance->refs, 1);
    return instance;
}

static void unref_instance(probe_instance *instance) {
    if (instance && atomic_fetch_sub(&instance->refs, 1) == 1) free(instance);
}

/* What session_start stores for a session; touched only on that session's
   serialized context (its callbacks, tasks and its comms' callbacks). */
typedef struct probe_session {
    /* Set by {"do":"open_in_close"}: the id of the comm that asked. */
    bool open_in_close;
    char requester[256];
    /* The comm a flood stopped on with COMMHOST_EAGAIN (a reference), or NULL. */
    commhost_comm *flood_comm;
    char flood_id[256];
} probe_session;

/* The comm set by {"do":"watch"} (a reference), or NULL. Only touched in
   callbacks, which never overlap: the probe is not COMMHOST_PLUGIN_CONCURRENT. */
static commhost_comm *watcher;

/* ---- config ------------------------------------------------------------ */

/* The text after `"key":` in the config (spaces skipped), or NULL. */
static const char *config_value(commhost_str config, const char *key, size_t *left) {
    size_t n = strlen(key);
    for (size_t i = 0; i + n + 2 <= config.len; i++) {
        if (config.ptr[i] != '"' || memcmp(config.ptr + i + 1, key, n) != 0 || config.ptr[i + n + 1] != '"') continue;
        size_t j = i + n + 2;
        while (j < config.len && (config.ptr[j] == ' ' || config.ptr[j] == ':')) j++;
        *left = config.len - j;
        return config.ptr + j;
    }
    return NULL;
}

static void read_config(commhost_str config) {
    size_t left = 0;
    const char *value = config_value(config, "events_file", &left);
    if (value && left > 0 && value[0] == '"') {
        size_t len = 0;
        while (len + 1 < left && value[1 + len] != '"') len++;
        if (len + 1 < left && len > 0 && len < sizeof events_file) {
            memcpy(events_file, value + 1, len);
            events_file[len] = 0;
        }
    }
    value = config_value(config, "open_on_start", &left);
    open_on_start = value && left >= 4 && memcmp(value, "true", 4) == 0;
}

/* ---- library and session callbacks ------------------------------------- */

static commhost_status probe_init(const commhost_host *table, commhost_str config, void **out_library) {
    host = table;
    read_config(config);
    *out_library = NULL;
    return COMMHOST_OK;
}

static void probe_deinit(void *library) {
    (void)library;
    join_all();
    record_line("deinit");
}

static commhost_status probe_session_start(void *library, commhost_session *session, commhost_session_cause cause,
                                           void **out_session_data) {
    (void)library;
    commhost_str id = host->session_id(host, session);
    probe_session *data = calloc(1, sizeof *data);
    *out_session_data = data;
    record("session_start", id, cause);
    if (open_on_start && cause == COMMHOST_SESSION_STARTED) {
        commhost_message hello = message_with("{\"hello\":\"session\"}");
        probe_instance *instance = new_instance();
        commhost_comm *greeting = NULL;
        commhost_status status = host->open(host, session, STR("probe"), STR("probe.greeting"), STR(""), &hello,
                                            instance, &greeting);
        record("greeting-open", id, status);
        if (status == COMMHOST_OK) {
            record("greeting", host->comm_id(host, greeting), 0);
            host->release_comm(host, greeting);
        } else {
            unref_instance(instance);
        }
    }
    return COMMHOST_OK;
}

static void probe_session_end(void *library, commhost_session *session, void *session_data,
                              commhost_session_cause cause) {
    (void)library;
    record("session_end", host->session_id(host, session), cause);
    probe_session *data = session_data;
    if (data && data->flood_comm) host->release_comm(host, data->flood_comm);
    free(data);
}

static void probe_session_writable(void *library, commhost_session *session, void *session_data) {
    (void)library;
    record("session_writable", host->session_id(host, session), 0);
    probe_session *data = session_data;
    if (data && data->flood_comm) {
        commhost_status status = send_text(data->flood_comm, "{\"resumed\":true}");
        record("resumed", (commhost_str){ data->flood_id, strlen(data->flood_id) }, status);
        host->release_comm(host, data->flood_comm);
        data->flood_comm = NULL;
    }
}

/* ---- threads ----------------------------------------------------------- */

static void *thread_send(void *arg) {
    commhost_comm *comm = arg;
    send_text(comm, "{\"t\":1}");
    send_text(comm, "{\"t\":2}");
    send_text(comm, "{\"t\":3}");
    host->release_comm(host, comm);
    return NULL;
}

static void *thread_close(void *arg) {
    commhost_comm *comm = arg;
    send_text(comm, "{\"t\":\"before\"}");
    commhost_status closed = close_text(comm, "{\"by\":\"thread\"}");
    commhost_status after = send_text(comm, "{\"t\":\"after\"}");
    record("thread-close-status", host->comm_id(host, comm), closed);
    record("thread-send-after-close-status", host->comm_id(host, comm), after);
    host->release_comm(host, comm);
    return NULL;
}

typedef struct late_send { commhost_comm *comm; probe_instance *instance; } late_send;

static void *send_after_close(void *arg) {
    late_send *late = arg;
    while (!atomic_load(&late->instance->closed)) usleep(1000);
    commhost_status status = send_text(late->comm, "{\"late\":true}");
    record("late-send", host->comm_id(host, late->comm), status);
    host->release_comm(host, late->comm);
    unref_instance(late->instance);
    free(late);
    return NULL;
}

/* Starts `body` on a thread of its own with a reference on `comm`, which
   the thread gives back. */
static commhost_status spawn_with_comm(void *(*body)(void *), commhost_comm *comm, void *arg) {
    commhost_status status = host->retain_comm(host, comm);
    if (status != COMMHOST_OK) return status;
    if (spawn(body, arg) != 0) {
        host->release_comm(host, comm);
        return COMMHOST_ENOMEM;
    }
    return COMMHOST_OK;
}

/* ---- post and timer tasks ---------------------------------------------- */

typedef struct posted { commhost_comm *comm; char id[256]; } posted;

/* Runs on the comm's serialized context, exactly once. */
static void post_task(void *data, commhost_status status) {
    posted *p = data;
    record("posted", (commhost_str){ p->id, strlen(p->id) }, status);
    if (status == COMMHOST_OK) send_text(p->comm, "{\"posted\":true}");
    host->release_comm(host, p->comm);
    free(p);
}

static void *post_from_thread(void *arg) {
    posted *p = arg;
    char id[256];
    commhost_str name = copy_id((commhost_str){ p->id, strlen(p->id) }, id, sizeof id);
    commhost_comm *comm = p->comm;
    /* From here on the task owns p (and the reference on the comm) when post succeeds. */
    commhost_status status = host->post(host, NULL, comm, post_task, p);
    record("post-status", name, status);
    if (status != COMMHOST_OK) {
        host->release_comm(host, comm);
        free(p);
    }
    return NULL;
}

typedef struct ticker { commhost_comm *comm; commhost_timer timer; int ticks; char id[256]; } ticker;

/* Runs on the comm's serialized context: OK per period, then one last call. */
static void timer_task(void *data, commhost_status status) {
    ticker *t = data;
    commhost_str id = { t->id, strlen(t->id) };
    record("timer-call", id, status);
    if (status != COMMHOST_OK) {
        free(t);
        return;
    }
    char text[32];
    snprintf(text, sizeof text, "{\"tick\":%d}", ++t->ticks);
    send_text(t->comm, text);
    if (t->ticks == 3) record("timer-cancel", id, host->timer_cancel(host, t->timer));
}

/* ---- the handler ------------------------------------------------------- */

static commhost_status probe_open(const commhost_handler *handler, void *library, commhost_comm *comm,
                                  const commhost_message *message, void **out_instance) {
    (void)handler; (void)library;
    if (contains(message->data, "fail_open")) {
        host->set_error(host, STR("open refused"));
        return COMMHOST_EINVAL;
    }
    probe_instance *instance = new_instance();
    if (!instance) return COMMHOST_ENOMEM;
    *out_instance = instance;
    record("open", host->comm_id(host, comm), 0);
    return COMMHOST_OK;
}

/* Opens a comm toward the client in `session`, served by "probe", with id
   `id` (empty: generated); hands back the reference in *out. */
static commhost_status open_probe_comm(commhost_session *session, commhost_str target, commhost_str id,
                                       const commhost_message *message, commhost_comm **out) {
    probe_instance *instance = new_instance();
    if (!instance) return COMMHOST_ENOMEM;
    commhost_status status = host->open(host, session, STR("probe"), target, id, message, instance, out);
    if (status != COMMHOST_OK) unref_instance(instance);
    return status;
}

static commhost_status flood(commhost_comm *comm) {
    static char text[1200];
    char pad[1025];
    memset(pad, 'x', sizeof pad - 1);
    pad[sizeof pad - 1] = 0;
    long sent = 0;
    commhost_status status = COMMHOST_OK;
    while (sent < 4096) {
        snprintf(text, sizeof text, "{\"flood\":%ld,\"pad\":\"%s\"}", sent, pad);
        status = send_text(comm, text);
        if (status != COMMHOST_OK) break;
        sent++;
    }
    commhost_str id = host->comm_id(host, comm);
    record("flood", id, sent);
    record("flood-status", id, status);
    probe_session *data = host->session_data(host, host->comm_session(host, comm));
    if (status == COMMHOST_EAGAIN && data && !data->flood_comm && host->retain_comm(host, comm) == COMMHOST_OK) {
        data->flood_comm = comm;
        copy_id(id, data->flood_id, sizeof data->flood_id);
    }
    return COMMHOST_OK;
}

static commhost_status probe_message(const commhost_handler *handler, void *opaque, commhost_comm *comm,
                                     const commhost_message *message) {
    (void)handler;
    probe_instance *instance = opaque;
    commhost_str data = message->data;
    commhost_str id = host->comm_id(host, comm);
    record("msg", id, 0);
    if (contains(data, "\"echo\"")) {
        return host->send(host, comm, message);
    } else if (contains(data, "\"send_two\"")) {
        send_text(comm, "{\"n\":1}");
        return send_text(comm, "{\"n\":2}");
    } else if (contains(data, "\"open_child\"") || contains(data, "\"open_named\"")) {
        commhost_message opening = message_with("{\"opened_by\":\"probe\"}");
        commhost_str child_id = { "child-1", contains(data, "\"open_named\"") ? 7 : 0 };
        commhost_comm *child = NULL;
        commhost_status status = open_probe_comm(host->comm_session(host, comm), STR("probe.child"), child_id,
                                                 &opening, &child);
        if (status != COMMHOST_OK) return status;
        record("child", host->comm_id(host, child), 0);
        status = send_text(child, "{\"child\":\"hello\"}");
        host->release_comm(host, child);
        return status;
    } else if (contains(data, "\"close_self\"")) {
        commhost_status first = close_text(comm, "{\"closing\":true}");
        commhost_status again = host->close(host, comm, NULL);
        commhost_status after = send_text(comm, "{\"after\":true}");
        record("close-status", id, first);
        record("close-again-status", id, again);
        record("send-after-close-status", id, after);
        return COMMHOST_OK;
    } else if (contains(data, "\"fail\"")) {
        host->set_error(host, STR("probe failed on purpose"));
        return COMMHOST_EFAIL;
    } else if (contains(data, "\"bad_json\"")) {
        record("bad-json-status", id, send_text(comm, "{\"unterminated\":"));
        return COMMHOST_OK;
    } else if (contains(data, "\"thread_send\"")) {
        return spawn_with_comm(thread_send, comm, comm);
    } else if (contains(data, "\"send_after_close\"")) {
        late_send *late = malloc(sizeof *late);
        if (!late) return COMMHOST_ENOMEM;
        late->comm = comm;
        late->instance = instance;
        atomic_fetch_add(&instance->refs, 1);
        commhost_status status = spawn_with_comm(send_after_close, comm, late);
        if (status != COMMHOST_OK) {
            unref_instance(instance);
            free(late);
        }
        return status;
    } else if (contains(data, "\"close_plain\"")) {
        record("close-plain-status", id, host->close(host, comm, NULL));
        return COMMHOST_OK;
    } else if (contains(data, "\"thread_close\"")) {
        return spawn_with_comm(thread_close, comm, comm);
    } else if (contains(data, "\"watch\"")) {
        if (watcher == comm) return COMMHOST_OK;
        commhost_status status = host->retain_comm(host, comm);
        if (status != COMMHOST_OK) return status;
        if (watcher) host->release_comm(host, watcher);
        watcher = comm;
        return COMMHOST_OK;
    } else if (contains(data, "\"log\"")) {
        host->log(host, COMMHOST_LOG_WARNING, STR("probe log \"quoted\" \\ \nsecond line"));
        return COMMHOST_OK;
    } else if (contains(data, "\"session\"")) {
        commhost_session *session = host->comm_session(host, comm);
        char escaped[512], reply[640];
        json_escape(host->session_id(host, session), escaped, sizeof escaped);
        snprintf(reply, sizeof reply, "{\"session\":\"%s\",\"session_data\":%s}", escaped,
                 host->session_data(host, session) ? "true" : "false");
        return send_text(comm, reply);
    } else if (contains(data, "\"timer\"")) {
        ticker *t = calloc(1, sizeof *t);
        if (!t) return COMMHOST_ENOMEM;
        t->comm = comm;
        copy_id(id, t->id, sizeof t->id);
        /* The first call cannot come before timer_start returns: it runs on
           this comm's context, after the callback running now. */
        commhost_status status = host->timer_start(host, NULL, comm, 10, 10, timer_task, t, &t->timer);
        record("timer-start", id, status);
        if (status != COMMHOST_OK) free(t);
        return status;
    } else if (contains(data, "\"post\"")) {
        posted *p = calloc(1, sizeof *p);
        if (!p) return COMMHOST_ENOMEM;
        p->comm = comm;
        copy_id(id, p->id, sizeof p->id);
        commhost_status status = spawn_with_comm(post_from_thread, comm, p);
        if (status != COMMHOST_OK) free(p);
        return status;
    } else if (contains(data, "\"open_in_close\"")) {
        probe_session *session = host->session_data(host, host->comm_session(host, comm));
        if (!session) return COMMHOST_EINVAL;
        session->open_in_close = true;
        copy_id(id, session->requester, sizeof session->requester);
        return COMMHOST_OK;
    } else if (contains(data, "\"double_release\"")) {
        record("retain", id, host->retain_comm(host, comm));
        record("release-1", id, host->release_comm(host, comm));
        record("release-2", id, host->release_comm(host, comm));
        return COMMHOST_OK;
    } else if (contains(data, "\"flood\"")) {
        return flood(comm);
    } else if (contains(data, "\"events\"")) {
        static char reply[2 * (1 << 16) + 64];
        static char escaped[2 * (1 << 16)];
        pthread_mutex_lock(&events_lock);
        json_escape((commhost_str){ events, strlen(events) }, escaped, sizeof escaped);
        pthread_mutex_unlock(&events_lock);
        snprintf(reply, sizeof reply, "{\"events\":\"%s\"}", escaped);
        return send_text(comm, reply);
    }
    return COMMHOST_OK;
}

static void probe_close(const commhost_handler *handler, void *opaque, commhost_comm *comm,
                        const commhost_message *message, commhost_close_cause cause) {
    (void)handler; (void)message;
    commhost_str id = host->comm_id(host, comm);
    record("close", id, (long)cause);
    if (cause == COMMHOST_CLOSE_CLIENT && watcher && watcher != comm) {
        commhost_comm *reopened = NULL;
        commhost_status status = open_probe_comm(host->comm_session(host, watcher), STR("probe.child"), id, NULL,
                                                 &reopened);
        if (status == COMMHOST_OK) host->release_comm(host, reopened);
        record("reopen", id, status);
    }
    if (cause == COMMHOST_CLOSE_SESSION_ENDED || cause == COMMHOST_CLOSE_SHUTDOWN) {
        commhost_session *session = host->comm_session(host, comm);
        probe_session *data = host->session_data(host, session);
        if (data && data->open_in_close && !same_id(data->requester, id)) {
            commhost_comm *opened = NULL;
            commhost_status status = open_probe_comm(session, STR("probe.child"), STR(""), NULL, &opened);
            if (status == COMMHOST_OK) host->release_comm(host, opened);
            record("open-in-close", id, status);
        }
    }
    if (comm == watcher) {
        host->release_comm(host, watcher);
        watcher = NULL;
    }
    probe_instance *instance = opaque;
    if (instance) {
        atomic_store(&instance->closed, true);
        unref_instance(instance);
    }
}

static const commhost_handler probe_handler = {
    .struct_size = sizeof(commhost_handler),
    .name = "probe",
    .open = probe_open,
    .message = probe_message,
    .close = probe_close,
};

static const commhost_handler *const probe_handlers[] = { &probe_handler };

static const commhost_plugin probe_plugin = {
    .struct_size = sizeof(commhost_plugin),
    .abi_major = COMMHOST_ABI_MAJOR,
    .abi_minor = COMMHOST_ABI_MINOR,
    .flags = 0,
    .name = "probe",
    .version = "1.0.0",
    .init = probe_init,
    .deinit = probe_deinit,
    .handlers = probe_handlers,
    .handler_count = 1,
    .session_start = probe_session_start,
    .session_end = probe_session_end,
    .session_writable = probe_session_writable,
};

COMMHOST_DECLARE_ENTRY {
    return &probe_plugin;
}
