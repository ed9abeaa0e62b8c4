/*
 * A C plugin the tests compile in variants with -D flags, to produce every
 * loader refusal and to count instance and session lifecycles:
 *   NO_ENTRY, ABI_MAJOR_VALUE=N, ABI_MINOR_VALUE=N, STRUCT_SIZE_VALUE=N
 *   (the descriptor's struct_size), HANDLER_STRUCT_SIZE_VALUE=N (handler
 *   "first"'s struct_size), NAMELESS_HANDLER, DUPLICATE_HANDLER, NO_OPEN,
 *   INIT_FAILS, OPEN_FAILS, VERSION_TEXT="...", REPLY_TEXT="..." (what
 *   every comm_msg is answered with).
 * Exported counters (read by the test through dlopen(RTLD_NOLOAD) of the
 * staged copy): variant_opens, variant_closes, variant_live,
 * variant_last_cause, variant_session_starts, variant_session_ends.
 * The descriptor has session_start and session_end; each counts its calls.
 */
#include "comm_plugin.h"
#include <stdlib.h>
#include <string.h>

#ifndef ABI_MAJOR_VALUE
#define ABI_MAJOR_VALUE COMMHOST_ABI_MAJOR
#endif
#ifndef ABI_MINOR_VALUE
#define ABI_MINOR_VALUE COMMHOST_ABI_MINOR
#endif
#ifndef STRUCT_SIZE_VALUE
#define STRUCT_SIZE_VALUE sizeof(commhost_plugin)
#endif
#ifndef HANDLER_STRUCT_SIZE_VALUE
#define HANDLER_STRUCT_SIZE_VALUE sizeof(commhost_handler)
#endif
#ifndef VERSION_TEXT
#define VERSION_TEXT "1.0.0"
#endif
#ifndef REPLY_TEXT
#define REPLY_TEXT "{\"version\":1}"
#endif

/* This library's host table, set by init. */
static const commhost_host *variant_host;

COMMHOST_EXPORT int variant_opens = 0;
COMMHOST_EXPORT int variant_closes = 0;
COMMHOST_EXPORT int variant_live = 0;
COMMHOST_EXPORT int variant_last_cause = 0;
COMMHOST_EXPORT int variant_session_starts = 0;
COMMHOST_EXPORT int variant_session_ends = 0;

static commhost_status variant_init(const commhost_host *host, commhost_str config, void **out_library) {
    (void)config;
    variant_host = host;
    *out_library = NULL;
#ifdef INIT_FAILS
    static const char text[] = "the variant was built to fail init";
    commhost_str message = { text, sizeof text - 1 };
    host->set_error(host, message);
    return COMMHOST_EFAIL;
#else
    return COMMHOST_OK;
#endif
}

static commhost_status variant_open(const commhost_handler *handler, void *library, commhost_comm *comm,
                                    const commhost_message *message, void **out_instance) {
    (void)handler; (void)library; (void)comm; (void)message;
#ifdef OPEN_FAILS
    static const char text[] = "open refused by the variant";
    commhost_str error = { text, sizeof text - 1 };
    variant_host->set_error(variant_host, error);
    (void)out_instance;
    return COMMHOST_EINVAL;
#else
    int *instance = malloc(sizeof *instance);
    if (!instance) return COMMHOST_ENOMEM;
    *instance = 42;
    *out_instance = instance;
    variant_opens++;
    variant_live++;
    return COMMHOST_OK;
#endif
}

static commhost_status variant_message(const commhost_handler *handler, void *instance, commhost_comm *comm,
                                       const commhost_message *message) {
    (void)handler; (void)instance; (void)message;
    commhost_message reply;
    memset(&reply, 0, sizeof reply);
    reply.struct_size = sizeof reply;
    reply.data.ptr = REPLY_TEXT;
    reply.data.len = strlen(REPLY_TEXT);
    return variant_host->send(variant_host, comm, &reply);
}

static void variant_close(const commhost_handler *handler, void *instance, commhost_comm *comm,
                          const commhost_message *message, commhost_close_cause cause) {
    (void)handler; (void)comm; (void)message;
    free(instance);
    variant_closes++;
    variant_live--;
    variant_last_cause = (int)cause;
}

static commhost_status variant_session_start(void *library, commhost_session *session, commhost_session_cause cause,
                                             void **out_session_data) {
    (void)library; (void)session; (void)cause; (void)out_session_data;
    variant_session_starts++;
    return COMMHOST_OK;
}

static void variant_session_end(void *library, commhost_session *session, void *session_data,
                                commhost_session_cause cause) {
    (void)library; (void)session; (void)session_data; (void)cause;
    variant_session_ends++;
}

static const commhost_handler first = {
    .struct_size = HANDLER_STRUCT_SIZE_VALUE,
#ifdef NAMELESS_HANDLER
    .name = NULL,
#else
    .name = "first",
#endif
#ifdef NO_OPEN
    .open = NULL,
#else
    .open = variant_open,
#endif
    .message = variant_message,
    .close = variant_close,
};

static const commhost_handler second = {
    .struct_size = sizeof(commhost_handler),
#ifdef DUPLICATE_HANDLER
    .name = "first",
#else
    .name = "second",
#endif
    .open = variant_open,
    .message = variant_message,
    .close = variant_close,
};

static const commhost_handler *const handlers[] = { &first, &second };

static const commhost_plugin plugin = {
    .struct_size = STRUCT_SIZE_VALUE,
    .abi_major = ABI_MAJOR_VALUE,
    .abi_minor = ABI_MINOR_VALUE,
    .flags = 0,
    .name = "variant",
    .version = VERSION_TEXT,
    .init = variant_init,
    .deinit = NULL,
    .handlers = handlers,
    .handler_count = 2,
    .session_start = variant_session_start,
    .session_end = variant_session_end,
};

#ifndef NO_ENTRY
COMMHOST_DECLARE_ENTRY {
    return &plugin;
}
#else
COMMHOST_EXPORT const commhost_plugin *some_other_function(void) { return &plugin; }
#endif
