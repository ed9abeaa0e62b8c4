/*
 * worker: a C plugin for WorkerProcessTests, loaded in `commhost worker`.
 * Handler "worker" acts on the "do" word in a comm_msg's data:
 *   {"do":"echo"}        send the same data, metadata and buffers back
 *   {"do":"send_bad"}    send data that is not JSON ({"bad":,}); return send's status
 *   {"do":"fail"}        set_error "worker failed on purpose", return COMMHOST_EFAIL
 *   {"do":"names"}       send {"comm_id":…,"target_name":…,"session_id":…,"session_data":B}
 *                        read through the host table (B: session_data is what
 *                        session_start stored)
 *   {"do":"thread_send"} a thread of the plugin's own sends {"t":1} (joined in deinit)
 *   {"do":"timer"}       timer_start on this comm (delay 10, period 10); each OK run
 *                        sends {"tick":N}, the third cancels the timer; the last call
 *                        sends {"last":STATUS}
 *   {"do":"post"}        post a task on this comm; it sends {"posted":STATUS}
 *   {"do":"thread_post"} a thread of the plugin's own posts that task (a host call
 *                        waiting for its reply) while the callback joins it; the
 *                        callback returns the post's status
 *   {"do":"open_child"}  open a comm toward the client in this comm's session
 *                        (handler "worker", target "worker.child", generated id,
 *                        data {"child":true}), send {"child_id":ID} on it (ID read
 *                        with comm_id), release the reference
 *   {"do":"limits"}      send {"nofile":N,"cpu":N} (soft RLIMIT_NOFILE, RLIMIT_CPU)
 *   {"do":"spin"}        never return (burns CPU)
 * Open fails with COMMHOST_EINVAL and text "open refused" when the data holds
 * "fail_open". The instance is a counter of messages; snapshot writes it as
 * text, restore reads it. close logs "closed CAUSE"; session_end logs
 * "session_end ID".
 */
#define _GNU_SOURCE
#include <comm_plugin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static const commhost_host *host;
static pthread_t thread;
static int thread_started;
static int session_marker;

typedef struct {
    unsigned long messages;
} instance_t;

static commhost_str str(const char *text) {
    commhost_str s = {text, strlen(text)};
    return s;
}

static commhost_status send_text(commhost_comm *comm, const char *data) {
    commhost_message m;
    memset(&m, 0, sizeof m);
    m.struct_size = sizeof m;
    m.data = str(data);
    return host->send(host, comm, &m);
}

static int has(const commhost_message *message, const char *word) {
    return message && message->data.ptr && memmem(message->data.ptr, message->data.len, word, strlen(word)) != NULL;
}

static commhost_status init(const commhost_host *h, commhost_str config, void **out_library) {
    (void)config;
    host = h;
    *out_library = &host;
    return COMMHOST_OK;
}

static void deinit(void *library) {
    (void)library;
    if (thread_started) pthread_join(thread, NULL);
    host->log(host, COMMHOST_LOG_INFO, str("deinit"));
}

static commhost_status session_start(void *library, commhost_session *session, commhost_session_cause cause, void **out) {
    (void)library; (void)session; (void)cause;
    *out = &session_marker;
    return COMMHOST_OK;
}

static void session_end(void *library, commhost_session *session, void *data, commhost_session_cause cause) {
    (void)library; (void)cause;
    char line[128];
    commhost_str id = host->session_id(host, session);
    snprintf(line, sizeof line, "session_end %.*s %s", (int)id.len, id.ptr, data == &session_marker ? "data" : "no-data");
    host->log(host, COMMHOST_LOG_INFO, str(line));
}

static commhost_status open_comm(const commhost_handler *handler, void *library, commhost_comm *comm,
                                 const commhost_message *message, void **out_instance) {
    (void)handler; (void)library; (void)comm;
    if (has(message, "fail_open")) {
        host->set_error(host, str("open refused"));
        return COMMHOST_EINVAL;
    }
    instance_t *instance = calloc(1, sizeof *instance);
    if (!instance) return COMMHOST_ENOMEM;
    *out_instance = instance;
    return COMMHOST_OK;
}

static void *thread_main(void *arg) {
    send_text((commhost_comm *)arg, "{\"t\":1}");
    return NULL;
}

typedef struct {
    commhost_comm *comm;
    commhost_timer timer;
    int ticks;
} timer_t_;

static void timer_task(void *data, commhost_status status) {
    timer_t_ *t = data;
    char text[64];
    if (status != COMMHOST_OK) {
        snprintf(text, sizeof text, "{\"last\":%d}", status);
        send_text(t->comm, text);
        free(t);
        return;
    }
    snprintf(text, sizeof text, "{\"tick\":%d}", ++t->ticks);
    send_text(t->comm, text);
    if (t->ticks == 3) host->timer_cancel(host, t->timer);
}

static void post_task(void *data, commhost_status status) {
    char text[64];
    snprintf(text, sizeof text, "{\"posted\":%d}", status);
    send_text((commhost_comm *)data, text);
}

static commhost_status post_thread_status;

static void *post_thread_main(void *arg) {
    commhost_comm *comm = arg;
    post_thread_status = host->post(host, NULL, comm, post_task, comm);
    return NULL;
}

static commhost_status message(const commhost_handler *handler, void *instance, commhost_comm *comm, const commhost_message *m) {
    (void)handler;
    ((instance_t *)instance)->messages++;
    char text[512];
    if (has(m, "\"echo\"")) {
        return host->send(host, comm, m);
    } else if (has(m, "\"send_bad\"")) {
        return send_text(comm, "{\"bad\":,}");
    } else if (has(m, "\"fail\"")) {
        host->set_error(host, str("worker failed on purpose"));
        return COMMHOST_EFAIL;
    } else if (has(m, "\"names\"")) {
        commhost_str id = host->comm_id(host, comm), target = host->target_name(host, comm);
        commhost_session *session = host->comm_session(host, comm);
        commhost_str sid = host->session_id(host, session);
        snprintf(text, sizeof text, "{\"comm_id\":\"%.*s\",\"target_name\":\"%.*s\",\"session_id\":\"%.*s\",\"session_data\":%s}",
                 (int)id.len, id.ptr, (int)target.len, target.ptr, (int)sid.len, sid.ptr,
                 host->session_data(host, session) == &session_marker ? "true" : "false");
        return send_text(comm, text);
    } else if (has(m, "\"thread_send\"")) {
        if (thread_started) pthread_join(thread, NULL);
        thread_started = pthread_create(&thread, NULL, thread_main, comm) == 0;
        return thread_started ? COMMHOST_OK : COMMHOST_EFAIL;
    } else if (has(m, "\"timer\"")) {
        timer_t_ *t = calloc(1, sizeof *t);
        t->comm = comm;
        commhost_status s = host->timer_start(host, NULL, comm, 10, 10, timer_task, t, &t->timer);
        if (s != COMMHOST_OK) free(t);
        return s;
    } else if (has(m, "\"post\"")) {
        return host->post(host, NULL, comm, post_task, comm);
    } else if (has(m, "\"thread_post\"")) {
        pthread_t poster;
        if (pthread_create(&poster, NULL, post_thread_main, comm) != 0) return COMMHOST_EFAIL;
        pthread_join(poster, NULL);
        return post_thread_status;
    } else if (has(m, "\"open_child\"")) {
        commhost_message open_message;
        memset(&open_message, 0, sizeof open_message);
        open_message.struct_size = sizeof open_message;
        open_message.data = str("{\"child\":true}");
        commhost_comm *child = NULL;
        commhost_status s = host->open(host, host->comm_session(host, comm), str("worker"), str("worker.child"), str(""),
                                       &open_message, NULL, &child);
        if (s != COMMHOST_OK) return s;
        commhost_str id = host->comm_id(host, child);
        snprintf(text, sizeof text, "{\"child_id\":\"%.*s\"}", (int)id.len, id.ptr);
        s = send_text(child, text);
        host->release_comm(host, child);
        return s;
    } else if (has(m, "\"limits\"")) {
        struct rlimit files, cpu;
        getrlimit(RLIMIT_NOFILE, &files);
        getrlimit(RLIMIT_CPU, &cpu);
        snprintf(text, sizeof text, "{\"nofile\":%llu,\"cpu\":%llu}", (unsigned long long)files.rlim_cur,
                 (unsigned long long)cpu.rlim_cur);
        return send_text(comm, text);
    } else if (has(m, "\"spin\"")) {
        for (volatile unsigned long i = 0;; i++) {
        }
    }
    return COMMHOST_OK;
}

static void close_comm(const commhost_handler *handler, void *instance, commhost_comm *comm, const commhost_message *m,
                       commhost_close_cause cause) {
    (void)handler; (void)comm; (void)m;
    free(instance);
    char line[64];
    snprintf(line, sizeof line, "closed %d", cause);
    host->log(host, COMMHOST_LOG_INFO, str(line));
}

static commhost_status snapshot(const commhost_handler *handler, void *instance, commhost_comm *comm, const commhost_writer *out) {
    (void)handler; (void)comm;
    char text[32];
    int n = snprintf(text, sizeof text, "%lu", ((instance_t *)instance)->messages);
    out->write(out, (const uint8_t *)text, 1);
    return out->write(out, (const uint8_t *)text + 1, (size_t)n - 1);
}

static commhost_status restore(const commhost_handler *handler, void *library, commhost_comm *comm, commhost_str from_version,
                               commhost_bytes state, void **out_instance) {
    (void)handler; (void)library; (void)comm;
    if (from_version.len != 3 || memcmp(from_version.ptr, "1.0", 3) != 0) return COMMHOST_ESTATE;
    char text[32] = {0};
    if (state.len == 0 || state.len >= sizeof text) return COMMHOST_ESTATE;
    memcpy(text, state.ptr, state.len);
    instance_t *instance = calloc(1, sizeof *instance);
    if (!instance) return COMMHOST_ENOMEM;
    instance->messages = strtoul(text, NULL, 10);
    *out_instance = instance;
    return COMMHOST_OK;
}

static const commhost_handler worker_handler = {
    .struct_size = sizeof(commhost_handler),
    .name = "worker",
    .open = open_comm,
    .message = message,
    .close = close_comm,
    .snapshot = snapshot,
    .restore = restore,
};

static const commhost_handler *const handlers[] = {&worker_handler};

static const commhost_plugin descriptor = {
    .struct_size = sizeof(commhost_plugin),
    .abi_major = COMMHOST_ABI_MAJOR,
    .abi_minor = COMMHOST_ABI_MINOR,
    .name = "worker",
    .version = "1.0",
    .init = init,
    .deinit = deinit,
    .handlers = handlers,
    .handler_count = 1,
    .session_start = session_start,
    .session_end = session_end,
};

COMMHOST_DECLARE_ENTRY { return &descriptor; }
