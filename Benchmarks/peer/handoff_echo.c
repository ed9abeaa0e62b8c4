/*
 * handoff_echo: the plugin commhost-bench reloads. Handler "echo" answers
 * every comm_msg with its data unchanged and keeps a per-comm count of the
 * messages it has seen, which it hands over on reload (snapshot on the old
 * version, restore on the new), so a reload keeps every comm open.
 *
 * Built at bench time with -DHANDOFF_VERSION=N; each version is a different
 * file (its version text differs), which is what a rebuild looks like. The
 * state format (the count as 8 native-endian bytes) is the same in every
 * version, so restore reads it whatever from_version says.
 *
 * Handed-off instances belong to the old version until its deinit (the
 * header's rule): snapshot puts each on the library's list, a close that
 * still comes for one (an abandoned reload) takes it off, deinit frees the
 * rest. No lock: the library is not COMMHOST_PLUGIN_CONCURRENT, so its
 * callbacks never overlap.
 */
#include <stdlib.h>
#include <string.h>
#include "comm_plugin.h"

#ifndef HANDOFF_VERSION
#define HANDOFF_VERSION 1
#endif
#define STR2(x) #x
#define STR(x) STR2(x)

/* This library's host table, set by init. */
static const commhost_host *he_host;

typedef struct he_library he_library;

typedef struct instance {
    uint64_t seen;
    he_library *library;
    /* Where the instance sits in library->handed_off, or -1 when not there. */
    long slot;
} instance;

/* What init returns: the instances snapshotted by this version. */
struct he_library {
    instance **handed_off;
    size_t count, capacity;
};

static commhost_status he_init(const commhost_host *host, commhost_str config, void **out_library) {
    (void)config;
    he_host = host;
    he_library *library = calloc(1, sizeof *library);
    if (!library) return COMMHOST_ENOMEM;
    *out_library = library;
    return COMMHOST_OK;
}

static void he_deinit(void *opaque) {
    he_library *library = opaque;
    for (size_t i = 0; i < library->count; i++) free(library->handed_off[i]);
    free(library->handed_off);
    free(library);
}

static instance *he_new(void *library) {
    instance *self = calloc(1, sizeof *self);
    if (self) { self->library = library; self->slot = -1; }
    return self;
}

static commhost_status he_open(const commhost_handler *handler, void *library, commhost_comm *comm,
                               const commhost_message *message, void **out_instance) {
    (void)handler; (void)comm; (void)message;
    instance *self = he_new(library);
    if (!self) return COMMHOST_ENOMEM;
    *out_instance = self;
    return COMMHOST_OK;
}

static commhost_status he_message(const commhost_handler *handler, void *inst, commhost_comm *comm,
                                  const commhost_message *message) {
    (void)handler;
    ((instance *)inst)->seen++;
    return he_host->send(he_host, comm, message);
}

static void he_close(const commhost_handler *handler, void *inst, commhost_comm *comm,
                     const commhost_message *message, commhost_close_cause cause) {
    (void)handler; (void)comm; (void)message; (void)cause;
    instance *self = inst;
    if (self->slot >= 0) {
        he_library *library = self->library;
        instance *last = library->handed_off[--library->count];
        library->handed_off[self->slot] = last;
        last->slot = self->slot;
    }
    free(self);
}

static commhost_status he_snapshot(const commhost_handler *handler, void *inst, commhost_comm *comm,
                                   const commhost_writer *out) {
    (void)handler; (void)comm;
    instance *self = inst;
    if (self->slot < 0) {
        he_library *library = self->library;
        if (library->count == library->capacity) {
            size_t capacity = library->capacity ? 2 * library->capacity : 64;
            instance **grown = realloc(library->handed_off, capacity * sizeof *grown);
            if (!grown) return COMMHOST_ENOMEM;
            library->handed_off = grown;
            library->capacity = capacity;
        }
        self->slot = (long)library->count;
        library->handed_off[library->count++] = self;
    }
    return out->write(out, (const uint8_t *)&self->seen, sizeof self->seen);
}

static commhost_status he_restore(const commhost_handler *handler, void *library, commhost_comm *comm,
                                  commhost_str from_version, commhost_bytes state, void **out_instance) {
    (void)handler; (void)comm; (void)from_version;
    if (state.len != sizeof(uint64_t)) return COMMHOST_ESTATE;
    instance *self = he_new(library);
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
    .deinit = he_deinit,
    .handlers = he_handlers,
    .handler_count = 1,
};

COMMHOST_DECLARE_ENTRY {
    return &he_plugin;
}
