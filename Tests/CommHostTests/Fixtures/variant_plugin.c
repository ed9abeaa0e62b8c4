/*
 * A C plugin the tests compile in variants with -D flags, to produce every
 * loader refusal and to count instance lifecycles:
 *   NO_ENTRY, ABI_MAJOR_VALUE=N, ABI_MINOR_VALUE=N, STRUCT_SIZE_VALUE=N,
 *   NAMELESS_HANDLER, DUPLICATE_HANDLER, NO_OPEN, INIT_FAILS, OPEN_FAILS,
 *   VERSION_TEXT="...", REPLY_TEXT="..." (what "version" messages answer).
 * Exported counters (read by the test through dlopen(RTLD_NOLOAD) of the
 * staged copy): variant_opens, variant_closes, variant_live.
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
#ifndef VERSION_TEXT
#define VERSION_TEXT "1.0.0"
#endif
#ifndef REPLY_TEXT
#define REPLY_TEXT "{\"version\":1}"
#endif

static const commhost_host_api *host;

COMMHOST_EXPORT int variant_opens = 0;
COMMHOST_EXPORT int variant_closes = 0;
COMMHOST_EXPORT int variant_live = 0;
COMMHOST_EXPORT int variant_last_cause = 0;

static commhost_status variant_init(const commhost_host_api *api, commhost_str config, void **out_library) {
    (void)config;
    host = api;
    *out_library = NULL;
#ifdef INIT_FAILS
    static const char text[] = "the variant was built to fail init";
    commhost_str message = { text, sizeof text - 1 };
    host->set_error(message);
    return COMMHOST_EFAIL;
#else
    return COMMHOST_OK;
#endif
}

static commhost_status variant_open(void *library, commhost_comm *comm, const commhost_message *message, void **out_instance) {
    (void)library; (void)comm; (void)message;
#ifdef OPEN_FAILS
    static const char text[] = "open refused by the variant";
    commhost_str error = { text, sizeof text - 1 };
    host->set_error(error);
    return COMMHOST_EINVAL;
#endif
    int *instance = malloc(sizeof *instance);
    *instance = 42;
    *out_instance = instance;
    variant_opens++;
    variant_live++;
    return COMMHOST_OK;
}

static commhost_status variant_message(void *instance, commhost_comm *comm, const commhost_message *message) {
    (void)instance; (void)message;
    commhost_message reply;
    memset(&reply, 0, sizeof reply);
    reply.struct_size = sizeof reply;
    reply.data.ptr = REPLY_TEXT;
    reply.data.len = strlen(REPLY_TEXT);
    return host->send(comm, &reply);
}

static void variant_close(void *instance, commhost_comm *comm, const commhost_message *message, commhost_close_cause cause) {
    (void)comm; (void)message;
    free(instance);
    variant_closes++;
    variant_live--;
    variant_last_cause = (int)cause;
}

static const commhost_handler first = {
    .struct_size = sizeof(commhost_handler),
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
};

#ifndef NO_ENTRY
COMMHOST_DECLARE_ENTRY {
    return &plugin;
}
#else
COMMHOST_EXPORT const commhost_plugin *some_other_function(void) { return &plugin; }
#endif
