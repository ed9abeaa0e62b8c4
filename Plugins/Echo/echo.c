/*
 * Echo: the C example plugin. Handler "echo" answers every comm_msg with a
 * comm_msg whose data, metadata and buffers are byte for byte what arrived.
 * It keeps no per-comm state, so its instance pointer is NULL, and it does
 * not implement hand-off: a reload closes its comms. It keeps nothing
 * between calls but the host table, so callbacks of different sessions may
 * run at once (COMMHOST_PLUGIN_CONCURRENT).
 */
#include "comm_plugin.h"

/* This library's host table: set once by init, before any other callback,
   and only read afterwards. */
static const commhost_host *echo_host;

static commhost_status echo_init(const commhost_host *host, commhost_str config, void **out_library) {
    (void)config;
    echo_host = host;
    *out_library = NULL;
    return COMMHOST_OK;
}

static commhost_status echo_open(const commhost_handler *handler, void *library, commhost_comm *comm,
                                 const commhost_message *message, void **out_instance) {
    (void)handler; (void)library; (void)comm; (void)message;
    *out_instance = NULL;
    return COMMHOST_OK;
}

static commhost_status echo_message(const commhost_handler *handler, void *instance, commhost_comm *comm,
                                    const commhost_message *message) {
    (void)handler; (void)instance;
    /* The host copies what it is given before send returns, so the borrowed
       inbound message can be sent back as it is. */
    return echo_host->send(echo_host, comm, message);
}

static const commhost_handler echo_handler = {
    .struct_size = sizeof(commhost_handler),
    .name = "echo",
    .handler_data = NULL,
    .open = echo_open,
    .message = echo_message,
    .close = NULL,
    .snapshot = NULL,
    .restore = NULL,
};

static const commhost_handler *const echo_handlers[] = { &echo_handler };

static const commhost_plugin echo_plugin = {
    .struct_size = sizeof(commhost_plugin),
    .abi_major = COMMHOST_ABI_MAJOR,
    .abi_minor = COMMHOST_ABI_MINOR,
    .flags = COMMHOST_PLUGIN_CONCURRENT,
    .name = "echo",
    .version = "1.0.0",
    .init = echo_init,
    .deinit = NULL,
    .handlers = echo_handlers,
    .handler_count = 1,
};

COMMHOST_DECLARE_ENTRY {
    return &echo_plugin;
}
