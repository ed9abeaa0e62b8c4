/*
 * handoff_echo: the plugin commhost-bench reloads. Handler "echo" answers
 * every comm_msg with its data unchanged and keeps a per-comm count of the
 * messages it has seen, which it hands over on reload (snapshot on the old
 * version, restore on the new), so a reload keeps every comm open.
 *
 * Built at bench time with -DHANDOFF_VERSION=N; each version is a different
 * file (its version text differs), which is what a rebuild looks like.
 */
#include <stdlib.h>
#include <string.h>
#include "comm_plugin.h"

#ifndef HANDOFF_VERSION
#define HANDOFF_VERSION 1
#endif
#define STR2(x) #x
#define STR(x) STR2(x)

static const commhost_host_api *host;

typedef struct {
    uint64_t seen;
} instance;

static commhost_status he_init(const commhost_host_api *api, commhost_str config, void **out_library) {
    (void)config;
    host = api;
    *out_library = NULL;
    return COMMHOST_OK;
}

static commhost_status he_open(void *library, commhost_comm *comm, const commhost_message *message, void **out_instance) {
    (void)library; (void)comm; (void)message;
    instance *self = calloc(1, sizeof *self);
    if (!self) return COMMHOST_ENOMEM;
    *out_instance = self;
    return COMMHOST_OK;
}

static commhost_status he_message(void *inst, commhost_comm *comm, const commhost_message *message) {
    ((instance *)inst)->seen++;
    return host->send(comm, message);
}

static void he_close(void *inst, commhost_comm *comm, const commhost_message *message, commhost_close_cause cause) {
    (void)comm; (void)message; (void)cause;
    free(inst);
}

static commhost_status he_snapshot(void *inst, commhost_comm *comm, const commhost_writer *out) {
    (void)comm;
    uint64_t seen = ((instance *)inst)->seen;
    return out->write(out->context, (const uint8_t *)&seen, sizeof seen);
}

static commhost_status he_restore(void *library, commhost_comm *comm, commhost_bytes state, void **out_instance) {
    (void)library; (void)comm;
    if (state.len != sizeof(uint64_t)) return COMMHOST_ESTATE;
    instance *self = calloc(1, sizeof *self);
    if (!self) return COMMHOST_ENOMEM;
    memcpy(&self->seen, state.ptr, sizeof self->seen);
    *out_instance = self;
    return COMMHOST_OK;
}

static const commhost_handler he_handler = {
    .struct_size = sizeof(commhost_handler),
    .name = "echo",
    .open = he_open,
    .message = he_message,
    .close = he_close,
    .snapshot = he_snapshot,
    .restore = he_restore,
};

static const commhost_handler *const he_handlers[] = { &he_handler };

static const commhost_plugin he_plugin = {
    .struct_size = sizeof(commhost_plugin),
    .abi_major = COMMHOST_ABI_MAJOR,
    .abi_minor = COMMHOST_ABI_MINOR,
    .flags = 0,
    .name = "handoff_echo",
    .version = STR(HANDOFF_VERSION),
    .init = he_init,
    .deinit = NULL,
    .handlers = he_handlers,
    .handler_count = 1,
};

COMMHOST_DECLARE_ENTRY {
    return &he_plugin;
}
