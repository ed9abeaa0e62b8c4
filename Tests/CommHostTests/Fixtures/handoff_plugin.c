/*
 * tally: a C plugin with reload hand-off, compiled by the reload tests in
 * variants. Handler HANDLER_NAME (default "tally") keeps an integer per comm,
 * starting at 0. Each comm_msg adds 1 and replies
 * {"value":V,"version":VERSION,"seq":S} where S is the "seq" number found in
 * the message data (or -1), so a test can check order and loss.
 * Variants (-D): VERSION=N, NO_HANDOFF (no snapshot/restore), RESTORE_FAILS,
 * BREAK_ROUNDTRIP (restore adds 1000, so the round trip differs),
 * INIT_FAILS, NO_ENTRY, ABI_MAJOR_VALUE=N, HANDLER_NAME="...".
 */
#include "comm_plugin.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef VERSION
#define VERSION 1
#endif
#ifndef HANDLER_NAME
#define HANDLER_NAME "tally"
#endif
#ifndef ABI_MAJOR_VALUE
#define ABI_MAJOR_VALUE COMMHOST_ABI_MAJOR
#endif

static const commhost_host_api *host;

typedef struct tally { long long value; } tally;

__attribute__((unused)) static commhost_status fail(commhost_status status, const char *text) {
    commhost_str message = { text, strlen(text) };
    host->set_error(message);
    return status;
}

static commhost_status tally_init(const commhost_host_api *api, commhost_str config, void **out_library) {
    (void)config;
    host = api;
    *out_library = NULL;
#ifdef INIT_FAILS
    return fail(COMMHOST_EFAIL, "tally init refuses this build");
#else
    return COMMHOST_OK;
#endif
}

static commhost_status tally_open(void *library, commhost_comm *comm, const commhost_message *message, void **out_instance) {
    (void)library; (void)comm; (void)message;
    tally *t = calloc(1, sizeof *t);
    *out_instance = t;
    return COMMHOST_OK;
}

static long long find_seq(commhost_str data) {
    const char key[] = "\"seq\":";
    size_t n = sizeof key - 1;
    for (size_t i = 0; i + n < data.len; i++) {
        if (memcmp(data.ptr + i, key, n) == 0) return strtoll(data.ptr + i + n, NULL, 10);
    }
    return -1;
}

static commhost_status tally_message(void *instance, commhost_comm *comm, const commhost_message *message) {
    tally *t = instance;
    t->value += 1;
    char reply[128];
    int len = snprintf(reply, sizeof reply, "{\"value\":%lld,\"version\":%d,\"seq\":%lld}", t->value, VERSION, find_seq(message->data));
    commhost_message out;
    memset(&out, 0, sizeof out);
    out.struct_size = sizeof out;
    out.data.ptr = reply;
    out.data.len = (size_t)len;
    return host->send(comm, &out);
}

static void tally_close(void *instance, commhost_comm *comm, const commhost_message *message, commhost_close_cause cause) {
    (void)comm; (void)message; (void)cause;
    free(instance);
}

#ifndef NO_HANDOFF
static commhost_status tally_snapshot(void *instance, commhost_comm *comm, const commhost_writer *out) {
    (void)comm;
    tally *t = instance;
    char text[32];
    int len = snprintf(text, sizeof text, "%lld", t->value);
    return out->write(out->context, (const uint8_t *)text, (size_t)len);
}

static commhost_status tally_restore(void *library, commhost_comm *comm, commhost_bytes state, void **out_instance) {
    (void)library; (void)comm;
#ifdef RESTORE_FAILS
    (void)state; (void)out_instance;
    return fail(COMMHOST_ESTATE, "tally cannot read this state");
#else
    char text[32];
    if (state.len == 0 || state.len >= sizeof text) return fail(COMMHOST_ESTATE, "state has the wrong size");
    memcpy(text, state.ptr, state.len);
    text[state.len] = 0;
    tally *t = calloc(1, sizeof *t);
    t->value = strtoll(text, NULL, 10);
#ifdef BREAK_ROUNDTRIP
    t->value += 1000;
#endif
    *out_instance = t;
    return COMMHOST_OK;
#endif
}
#endif

static const commhost_handler tally_handler = {
    .struct_size = sizeof(commhost_handler),
    .name = HANDLER_NAME,
    .open = tally_open,
    .message = tally_message,
    .close = tally_close,
#ifndef NO_HANDOFF
    .snapshot = tally_snapshot,
    .restore = tally_restore,
#endif
};

static const commhost_handler *const tally_handlers[] = { &tally_handler };

__attribute__((unused)) static const commhost_plugin tally_plugin = {
    .struct_size = sizeof(commhost_plugin),
    .abi_major = ABI_MAJOR_VALUE,
    .abi_minor = COMMHOST_ABI_MINOR,
    .flags = 0,
    .name = "tally",
    .version = "1.0.0",
    .init = tally_init,
    .handlers = tally_handlers,
    .handler_count = 1,
};

#ifndef NO_ENTRY
COMMHOST_DECLARE_ENTRY {
    return &tally_plugin;
}
#endif
