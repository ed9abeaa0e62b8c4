/*
 * tally: a C plugin with reload hand-off, compiled by the reload tests in
 * variants. Handler HANDLER_NAME (default "tally") keeps an integer per comm,
 * starting at 0. Each comm_msg adds 1 and replies
 * {"value":V,"version":VERSION,"seq":S,"from":F} where S is the "seq" number
 * found in the message data (or -1) so a test can check order and loss, and
 * F is the from_version text restore received for this instance (null for a
 * comm opened by the client).
 *
 * State formats written by snapshot:
 *   1.x (default)   the value in decimal, e.g. "5"
 *   STATE_V2        "v2:" and the value in decimal, e.g. "v2:5"
 * restore reads its own format; any other bytes are COMMHOST_ESTATE (the
 * host then closes that comm with reason "reloaded" and the reload goes on).
 *
 * Variants (-D):
 *   VERSION=N          the number in replies (default 1)
 *   VERSION_TEXT="..." the descriptor's version text, which restore receives
 *                      as from_version (default "1.0.0"; "2.0.0" with STATE_V2)
 *   NO_HANDOFF         no snapshot/restore
 *   RESTORE_FAILS      restore fails with COMMHOST_EFAIL: the reload is
 *                      abandoned, with text "tally cannot read this state"
 *   RESTORE_ESTATE     restore returns COMMHOST_ESTATE, with text
 *                      "tally refuses this state format": that comm is closed
 *   BREAK_ROUNDTRIP    restore adds 1000, so the round trip differs
 *   STATE_V2           write and read the "v2:" format
 *   MIGRATES           with STATE_V2: restore also reads the 1.x format when
 *                      from_version differs from this library's version text
 *   INIT_FAILS, NO_ENTRY, ABI_MAJOR_VALUE=N, HANDLER_NAME="..."
 *
 * Ownership of handed-off instances (the header's rule): after a snapshot
 * the host makes no further call with the instance unless the reload is
 * abandoned, so each snapshotted instance is put on the library's list; a
 * close callback that still comes for it takes it off the list and frees
 * it, and deinit frees the ones left (logging how many, at info level:
 * "tally deinit freed N handed-off instances"). The list needs no lock: the
 * library does not set COMMHOST_PLUGIN_CONCURRENT, so its callbacks never
 * overlap, and deinit runs alone.
 */
#include "comm_plugin.h"
#include <stdbool.h>
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
#ifndef VERSION_TEXT
#ifdef STATE_V2
#define VERSION_TEXT "2.0.0"
#else
#define VERSION_TEXT "1.0.0"
#endif
#endif

/* This library's host table, set by init. */
static const commhost_host *host;

typedef struct tally_library tally_library;

typedef struct tally {
    long long value;
    /* The library that owns this instance (its list of handed-off instances). */
    tally_library *library;
    /* True while the instance is on library->handed_off. */
    bool listed;
    /* from_version as restore received it (JSON-safe characters only), or "". */
    char from[32];
} tally;

/* What init returns: the instances this version has snapshotted and must free. */
struct tally_library {
    tally **handed_off;
    size_t count;
    size_t capacity;
};

__attribute__((unused)) static commhost_status fail(commhost_status status, const char *text) {
    commhost_str message = { text, strlen(text) };
    host->set_error(host, message);
    return status;
}

static commhost_status tally_init(const commhost_host *table, commhost_str config, void **out_library) {
    (void)config;
    host = table;
#ifdef INIT_FAILS
    (void)out_library;
    return fail(COMMHOST_EFAIL, "tally init refuses this build");
#else
    tally_library *library = calloc(1, sizeof *library);
    if (!library) return COMMHOST_ENOMEM;
    *out_library = library;
    return COMMHOST_OK;
#endif
}

static void unlist(tally *t) {
    tally_library *library = t->library;
    for (size_t i = 0; i < library->count; i++) {
        if (library->handed_off[i] == t) {
            library->handed_off[i] = library->handed_off[--library->count];
            break;
        }
    }
    t->listed = false;
}

static void tally_deinit(void *opaque) {
    tally_library *library = opaque;
    if (!library) return;
    size_t freed = library->count;
    for (size_t i = 0; i < library->count; i++) free(library->handed_off[i]);
    free(library->handed_off);
    free(library);
    char text[96];
    int len = snprintf(text, sizeof text, "tally deinit freed %zu handed-off instances", freed);
    commhost_str line = { text, (size_t)len };
    host->log(host, COMMHOST_LOG_INFO, line);
}

static tally *new_tally(void *library) {
    tally *t = calloc(1, sizeof *t);
    if (t) t->library = library;
    return t;
}

static commhost_status tally_open(const commhost_handler *handler, void *library, commhost_comm *comm,
                                  const commhost_message *message, void **out_instance) {
    (void)handler; (void)comm; (void)message;
    tally *t = new_tally(library);
    if (!t) return COMMHOST_ENOMEM;
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

static commhost_status tally_message(const commhost_handler *handler, void *instance, commhost_comm *comm,
                                     const commhost_message *message) {
    (void)handler;
    tally *t = instance;
    t->value += 1;
    char from[40];
    if (t->from[0]) snprintf(from, sizeof from, "\"%s\"", t->from);
    else snprintf(from, sizeof from, "null");
    char reply[192];
    int len = snprintf(reply, sizeof reply, "{\"value\":%lld,\"version\":%d,\"seq\":%lld,\"from\":%s}",
                       t->value, VERSION, find_seq(message->data), from);
    commhost_message out;
    memset(&out, 0, sizeof out);
    out.struct_size = sizeof out;
    out.data.ptr = reply;
    out.data.len = (size_t)len;
    return host->send(host, comm, &out);
}

static void tally_close(const commhost_handler *handler, void *instance, commhost_comm *comm,
                        const commhost_message *message, commhost_close_cause cause) {
    (void)handler; (void)comm; (void)message; (void)cause;
    tally *t = instance;
    /* A close for a snapshotted instance: the reload was abandoned, or the
       comm was closed instead of handed off. Either way it is ours to free. */
    if (t->listed) unlist(t);
    free(t);
}

#ifndef NO_HANDOFF
static commhost_status tally_snapshot(const commhost_handler *handler, void *instance, commhost_comm *comm,
                                      const commhost_writer *out) {
    (void)handler; (void)comm;
    tally *t = instance;
    char text[40];
#ifdef STATE_V2
    int len = snprintf(text, sizeof text, "v2:%lld", t->value);
#else
    int len = snprintf(text, sizeof text, "%lld", t->value);
#endif
    commhost_status status = out->write(out, (const uint8_t *)text, (size_t)len);
    if (status != COMMHOST_OK) return status;
    if (!t->listed) {
        tally_library *library = t->library;
        if (library->count == library->capacity) {
            size_t capacity = library->capacity ? 2 * library->capacity : 8;
            tally **grown = realloc(library->handed_off, capacity * sizeof *grown);
            if (!grown) return fail(COMMHOST_ENOMEM, "tally cannot keep track of a snapshotted instance");
            library->handed_off = grown;
            library->capacity = capacity;
        }
        library->handed_off[library->count++] = t;
        t->listed = true;
    }
    return COMMHOST_OK;
}

/* Reads a decimal value taking up all of `len` bytes at `ptr`. */
__attribute__((unused)) static bool parse_value(const uint8_t *ptr, size_t len, long long *value) {
    char text[32];
    if (len == 0 || len >= sizeof text) return false;
    memcpy(text, ptr, len);
    text[len] = 0;
    char *end = NULL;
    *value = strtoll(text, &end, 10);
    return end == text + len;
}

__attribute__((unused)) static bool same_text(commhost_str a, const char *b) {
    return a.len == strlen(b) && memcmp(a.ptr, b, a.len) == 0;
}

static commhost_status tally_restore(const commhost_handler *handler, void *library, commhost_comm *comm,
                                     commhost_str from_version, commhost_bytes state, void **out_instance) {
    (void)handler; (void)comm;
#if defined(RESTORE_FAILS)
    (void)library; (void)from_version; (void)state; (void)out_instance;
    return fail(COMMHOST_EFAIL, "tally cannot read this state");
#elif defined(RESTORE_ESTATE)
    (void)library; (void)from_version; (void)state; (void)out_instance;
    return fail(COMMHOST_ESTATE, "tally refuses this state format");
#else
    long long value = 0;
#ifdef STATE_V2
    bool read = state.len > 3 && memcmp(state.ptr, "v2:", 3) == 0 && parse_value(state.ptr + 3, state.len - 3, &value);
#ifdef MIGRATES
    if (!read && !same_text(from_version, VERSION_TEXT)) read = parse_value(state.ptr, state.len, &value);
#endif
#else
    bool read = parse_value(state.ptr, state.len, &value);
#endif
    if (!read) return fail(COMMHOST_ESTATE, "tally state is not in this version's format");
    tally *t = new_tally(library);
    if (!t) return COMMHOST_ENOMEM;
    t->value = value;
#ifdef BREAK_ROUNDTRIP
    t->value += 1000;
#endif
    size_t n = 0;
    for (size_t i = 0; i < from_version.len && n + 1 < sizeof t->from; i++) {
        char c = from_version.ptr[i];
        t->from[n++] = (c == '"' || c == '\\' || (unsigned char)c < 0x20) ? '?' : c;
    }
    t->from[n] = 0;
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
    .version = VERSION_TEXT,
    .init = tally_init,
    .deinit = tally_deinit,
    .handlers = tally_handlers,
    .handler_count = 1,
};

#ifndef NO_ENTRY
COMMHOST_DECLARE_ENTRY {
    return &tally_plugin;
}
#endif
