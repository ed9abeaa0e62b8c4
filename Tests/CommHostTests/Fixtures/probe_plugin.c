/*
 * probe: a C plugin for the conformance tests. Handler "probe" acts on the
 * "do" word found in a comm_msg's data (plain substring matching; the tests
 * send simple data):
 *   {"do":"echo"}          reply with the same data, metadata and buffers
 *   {"do":"send_two"}      send {"n":1} then {"n":2}
 *   {"do":"open_child"}    open a comm toward the client (target
 *                          "probe.child", generated id) and send {"child":"hello"} on it
 *   {"do":"open_named"}    the same with comm id "child-1"
 *   {"do":"close_self"}    close this comm with data {"closing":true}, then try
 *                          to send on it and record the status
 *   {"do":"fail"}          return COMMHOST_EFAIL with error text "probe failed on purpose"
 *   {"do":"bad_json"}      try to send invalid JSON and record the status
 *   {"do":"thread_send"}   a thread of the plugin's own sends {"t":1..3} on this comm
 *   {"do":"send_after_close"}  a thread waits until this comm's close callback has
 *                          run, then sends on it and records the status
 *   {"do":"events"}        reply {"events":"<everything recorded, ';'-separated>"}
 *   {"do":"close_plain"}   close this comm with no message (default close data {})
 *   {"do":"thread_close"}  a thread of the plugin's own sends {"t":"before"}, closes
 *                          this comm with data {"by":"thread"}, then tries to send
 *                          {"t":"after"}; records "thread-close-status <id> <s>" and
 *                          "thread-send-after-close-status <id> <s>"
 *   {"do":"watch"}         remember this comm as the watcher: from then on, when a
 *                          client close (cause 1) reaches another comm's close
 *                          callback, the callback opens a comm toward the client
 *                          from the watcher with the closing comm's own id (target
 *                          "probe.child") and records "reopen <id> <status>"; the
 *                          status is COMMHOST_OK only if the host already removed the
 *                          closing comm from its table
 *   {"do":"log"}           log at warning level a text with a quote, a backslash
 *                          and a line break: probe log "quoted" \ second line
 * Open fails (COMMHOST_EINVAL, text "open refused") when the open data
 * contains "fail_open". Every open and close (with its cause) is recorded, and
 * so is the library's deinit ("deinit").
 *
 * When the manifest config (the JSON text init receives) holds
 * {"events_file": "/absolute/path"} (a path without escapes), every event is
 * also appended to that file, one per line, as it is recorded, so a test can
 * read events the process recorded while exiting (shutdown closes, deinit).
 */
#define _DEFAULT_SOURCE
#include "comm_plugin.h"
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const commhost_host_api *host;
static pthread_mutex_t events_lock = PTHREAD_MUTEX_INITIALIZER;
static char events[1 << 16];
static char events_file[4096];

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

static int contains(commhost_str text, const char *needle) {
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= text.len; i++) {
        if (memcmp(text.ptr + i, needle, n) == 0) return 1;
    }
    return 0;
}

static commhost_status send_text(commhost_comm *comm, const char *json) {
    commhost_message message;
    memset(&message, 0, sizeof message);
    message.struct_size = sizeof message;
    message.data.ptr = json;
    message.data.len = strlen(json);
    return host->send(comm, &message);
}

typedef struct closed_flag { volatile int closed; } closed_flag;

static commhost_status close_text(commhost_comm *comm, const char *json) {
    commhost_message message;
    memset(&message, 0, sizeof message);
    message.struct_size = sizeof message;
    message.data.ptr = json;
    message.data.len = strlen(json);
    return host->close(comm, &message);
}

/* The comm set by {"do":"watch"} (retained), or NULL. */
static commhost_comm *watcher;

/* Finds "events_file": "<path>" in the config text (no escapes in the path). */
static void read_events_file(commhost_str config) {
    static const char key[] = "\"events_file\"";
    size_t n = sizeof key - 1;
    for (size_t i = 0; i + n <= config.len; i++) {
        if (memcmp(config.ptr + i, key, n) != 0) continue;
        size_t j = i + n;
        while (j < config.len && (config.ptr[j] == ' ' || config.ptr[j] == ':')) j++;
        if (j >= config.len || config.ptr[j] != '"') return;
        size_t start = ++j;
        while (j < config.len && config.ptr[j] != '"') j++;
        size_t len = j - start;
        if (j >= config.len || len == 0 || len >= sizeof events_file) return;
        memcpy(events_file, config.ptr + start, len);
        events_file[len] = 0;
        return;
    }
}

static commhost_status probe_init(const commhost_host_api *api, commhost_str config, void **out_library) {
    host = api;
    read_events_file(config);
    *out_library = NULL;
    return COMMHOST_OK;
}

static void probe_deinit(void *library) {
    (void)library;
    record_line("deinit");
}

static commhost_status probe_open(void *library, commhost_comm *comm, const commhost_message *message, void **out_instance) {
    (void)library;
    if (contains(message->data, "fail_open")) {
        static const char text[] = "open refused";
        commhost_str error = { text, sizeof text - 1 };
        host->set_error(error);
        return COMMHOST_EINVAL;
    }
    closed_flag *flag = calloc(1, sizeof *flag);
    *out_instance = flag;
    record("open", host->comm_id(comm), 0);
    return COMMHOST_OK;
}

static void *thread_send(void *arg) {
    commhost_comm *comm = arg;
    send_text(comm, "{\"t\":1}");
    send_text(comm, "{\"t\":2}");
    send_text(comm, "{\"t\":3}");
    host->release_comm(comm);
    return NULL;
}

static void *thread_close(void *arg) {
    commhost_comm *comm = arg;
    send_text(comm, "{\"t\":\"before\"}");
    commhost_status closed = close_text(comm, "{\"by\":\"thread\"}");
    commhost_status after = send_text(comm, "{\"t\":\"after\"}");
    record("thread-close-status", host->comm_id(comm), closed);
    record("thread-send-after-close-status", host->comm_id(comm), after);
    host->release_comm(comm);
    return NULL;
}

typedef struct late_send { commhost_comm *comm; closed_flag *flag; } late_send;

static void *send_after_close(void *arg) {
    late_send *late = arg;
    while (!late->flag->closed) usleep(1000);
    commhost_status status = send_text(late->comm, "{\"late\":true}");
    record("late-send", host->comm_id(late->comm), status);
    host->release_comm(late->comm);
    free(late);
    return NULL;
}

static commhost_status probe_message(void *instance, commhost_comm *comm, const commhost_message *message) {
    commhost_str data = message->data;
    record("msg", host->comm_id(comm), 0);
    if (contains(data, "\"echo\"")) {
        return host->send(comm, message);
    } else if (contains(data, "\"send_two\"")) {
        send_text(comm, "{\"n\":1}");
        return send_text(comm, "{\"n\":2}");
    } else if (contains(data, "\"open_child\"") || contains(data, "\"open_named\"")) {
        commhost_message open_message;
        memset(&open_message, 0, sizeof open_message);
        open_message.struct_size = sizeof open_message;
        open_message.data.ptr = "{\"opened_by\":\"probe\"}";
        open_message.data.len = strlen(open_message.data.ptr);
        commhost_str target = { "probe.child", 11 };
        commhost_str id = { "child-1", contains(data, "\"open_named\"") ? 7 : 0 };
        commhost_comm *child = NULL;
        closed_flag *flag = calloc(1, sizeof *flag);
        commhost_status status = host->open(comm, target, id, &open_message, flag, &child);
        if (status != COMMHOST_OK) { free(flag); return status; }
        record("child", host->comm_id(child), 0);
        return send_text(child, "{\"child\":\"hello\"}");
    } else if (contains(data, "\"close_self\"")) {
        commhost_message close_message;
        memset(&close_message, 0, sizeof close_message);
        close_message.struct_size = sizeof close_message;
        close_message.data.ptr = "{\"closing\":true}";
        close_message.data.len = strlen(close_message.data.ptr);
        commhost_status first = host->close(comm, &close_message);
        commhost_status again = host->close(comm, NULL);
        commhost_status after = send_text(comm, "{\"after\":true}");
        record("close-status", host->comm_id(comm), first);
        record("close-again-status", host->comm_id(comm), again);
        record("send-after-close-status", host->comm_id(comm), after);
        return COMMHOST_OK;
    } else if (contains(data, "\"fail\"")) {
        static const char text[] = "probe failed on purpose";
        commhost_str error = { text, sizeof text - 1 };
        host->set_error(error);
        return COMMHOST_EFAIL;
    } else if (contains(data, "\"bad_json\"")) {
        commhost_status status = send_text(comm, "{\"unterminated\":");
        record("bad-json-status", host->comm_id(comm), status);
        return COMMHOST_OK;
    } else if (contains(data, "\"thread_send\"")) {
        pthread_t thread;
        host->retain_comm(comm);
        pthread_create(&thread, NULL, thread_send, comm);
        pthread_detach(thread);
        return COMMHOST_OK;
    } else if (contains(data, "\"send_after_close\"")) {
        late_send *late = malloc(sizeof *late);
        late->comm = comm;
        late->flag = instance;
        host->retain_comm(comm);
        pthread_t thread;
        pthread_create(&thread, NULL, send_after_close, late);
        pthread_detach(thread);
        return COMMHOST_OK;
    } else if (contains(data, "\"close_plain\"")) {
        commhost_status status = host->close(comm, NULL);
        record("close-plain-status", host->comm_id(comm), status);
        return COMMHOST_OK;
    } else if (contains(data, "\"thread_close\"")) {
        pthread_t thread;
        host->retain_comm(comm);
        pthread_create(&thread, NULL, thread_close, comm);
        pthread_detach(thread);
        return COMMHOST_OK;
    } else if (contains(data, "\"watch\"")) {
        if (watcher) host->release_comm(watcher);
        host->retain_comm(comm);
        watcher = comm;
        return COMMHOST_OK;
    } else if (contains(data, "\"log\"")) {
        static const char text[] = "probe log \"quoted\" \\ \nsecond line";
        commhost_str line = { text, sizeof text - 1 };
        host->log(COMMHOST_LOG_WARNING, line);
        return COMMHOST_OK;
    } else if (contains(data, "\"events\"")) {
        static char reply[(1 << 16) + 64];
        pthread_mutex_lock(&events_lock);
        snprintf(reply, sizeof reply, "{\"events\":\"%s\"}", events);
        pthread_mutex_unlock(&events_lock);
        return send_text(comm, reply);
    }
    return COMMHOST_OK;
}

static void probe_close(void *instance, commhost_comm *comm, const commhost_message *message, commhost_close_cause cause) {
    (void)message;
    record("close", host->comm_id(comm), (long)cause);
    if (cause == COMMHOST_CLOSE_CLIENT && watcher && watcher != comm) {
        commhost_str target = { "probe.child", 11 };
        commhost_comm *reopened = NULL;
        closed_flag *flag = calloc(1, sizeof *flag);
        commhost_status status = host->open(watcher, target, host->comm_id(comm), NULL, flag, &reopened);
        if (status != COMMHOST_OK) free(flag);
        record("reopen", host->comm_id(comm), status);
    }
    closed_flag *flag = instance;
    if (flag) flag->closed = 1;
    /* The flag is leaked on purpose: a late-send thread may still read it. */
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
};

COMMHOST_DECLARE_ENTRY {
    return &probe_plugin;
}
