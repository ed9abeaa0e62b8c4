/*
 * rulebreaker: a C plugin for `commhost inspect --check`. Handler "good"
 * echoes every comm_msg. Handler "bad" breaks two rules in its comm_msg:
 * it gives back a reference it never took (release_comm on the comm the
 * host handed it, twice) and returns COMMHOST_EFAIL without set_error.
 */
#include "comm_plugin.h"

static const commhost_host *host;

static commhost_status rb_init(const commhost_host *api, commhost_str config, void **out_library) {
    (void)config;
    host = api;
    *out_library = NULL;
    return COMMHOST_OK;
}

static commhost_status rb_open(const commhost_handler *handler, void *library, commhost_comm *comm,
                               const commhost_message *message, void **out_instance) {
    (void)handler; (void)library; (void)comm; (void)message;
    *out_instance = NULL;
    return COMMHOST_OK;
}

static commhost_status good_message(const commhost_handler *handler, void *instance, commhost_comm *comm,
                                    const commhost_message *message) {
    (void)handler; (void)instance;
    return host->send(host, comm, message);
}

static commhost_status bad_message(const commhost_handler *handler, void *instance, commhost_comm *comm,
                                   const commhost_message *message) {
    (void)handler; (void)instance; (void)message;
    host->release_comm(host, comm);
    host->release_comm(host, comm);
    return COMMHOST_EFAIL;
}

static const commhost_handler good_handler = {
    .struct_size = sizeof(commhost_handler), .name = "good", .open = rb_open, .message = good_message,
};
static const commhost_handler bad_handler = {
    .struct_size = sizeof(commhost_handler), .name = "bad", .open = rb_open, .message = bad_message,
};
static const commhost_handler *const rb_handlers[] = { &good_handler, &bad_handler };

static const commhost_plugin rb_plugin = {
    .struct_size = sizeof(commhost_plugin),
    .abi_major = COMMHOST_ABI_MAJOR,
    .abi_minor = COMMHOST_ABI_MINOR,
    .name = "rulebreaker",
    .version = "1.0.0",
    .init = rb_init,
    .handlers = rb_handlers,
    .handler_count = 2,
};

COMMHOST_DECLARE_ENTRY { return &rb_plugin; }
