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
 * Open fails (COMMHOST_EINVAL, text "open refused") when the open data
 * contains "fail_open". Every open and close (with its cause) is recorded.
 */
#define _DEFAULT_SOURCE
#include "comm_plugin.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const commhost_host_api *host;
static pthread_mutex_t events_lock = PTHREAD_MUTEX_INITIALIZER;
static char events[1 << 16];

static void record(const char *text, commhost_str id, long number) {
    pthread_mutex_lock(&events_lock);
    size_t used = strlen(events);
    snprintf(events + used, sizeof events - used, "%s%s %.*s %ld", used ? ";" : "", text, (int)id.len, id.ptr, number);
    pthread_mutex_unlock(&events_lock);
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

static commhost_status probe_init(const commhost_host_api *api, commhost_str config, void **out_library) {
    (void)config;
    host = api;
    *out_library = NULL;
    return COMMHOST_OK;
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
    .handlers = probe_handlers,
    .handler_count = 1,
};

COMMHOST_DECLARE_ENTRY {
    return &probe_plugin;
}
