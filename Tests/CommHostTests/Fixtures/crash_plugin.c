/*
 * crash: a C plugin for the isolation tests, meant to run in a commhost
 * worker. Handler "crash" echoes every comm_msg, except when its data holds
 * one of these words, which it acts on instead:
 *   "segv"    writes through a NULL pointer (SIGSEGV)
 *   "abort"   calls abort() (SIGABRT)
 *   "exit"    calls exit(3)
 *   "loop"    spins forever (a hang: the handler_timeout_ms deadline, or
 *             the worker's CPU limit, ends it)
 *   "alloc"   allocates and touches 64 MiB blocks until malloc fails, then
 *             writes through the NULL it returned (the worker's address
 *             space limit makes that happen)
 *   "pid"     replies {"pid":N}, the worker process's pid
 * Open data holding "segv" crashes in open instead. session_start records
 * nothing and opens nothing; the library is not concurrent.
 */
#define _DEFAULT_SOURCE
#include "comm_plugin.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const commhost_host *host;

static int contains(commhost_str text, const char *needle) {
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= text.len; i++) {
        if (memcmp(text.ptr + i, needle, n) == 0) return 1;
    }
    return 0;
}

static void crash_now(commhost_str data) {
    if (contains(data, "\"segv\"")) {
        volatile int *nowhere = NULL;
        *nowhere = 1;
    } else if (contains(data, "\"abort\"")) {
        abort();
    } else if (contains(data, "\"exit\"")) {
        exit(3);
    } else if (contains(data, "\"loop\"")) {
        for (volatile unsigned long spin = 0;; spin++) {}
    } else if (contains(data, "\"alloc\"")) {
        for (;;) {
            char *block = malloc(64u << 20);
            if (!block) {
                volatile char *nowhere = NULL;
                *nowhere = 1;
            }
            memset(block, 1, 64u << 20);
        }
    }
}

static commhost_status crash_init(const commhost_host *api, commhost_str config, void **out_library) {
    (void)config;
    host = api;
    *out_library = NULL;
    return COMMHOST_OK;
}

static commhost_status crash_open(const commhost_handler *handler, void *library, commhost_comm *comm,
                                  const commhost_message *message, void **out_instance) {
    (void)handler; (void)library; (void)comm;
    crash_now(message->data);
    *out_instance = NULL;
    return COMMHOST_OK;
}

static commhost_status crash_message(const commhost_handler *handler, void *instance, commhost_comm *comm,
                                     const commhost_message *message) {
    (void)handler; (void)instance;
    crash_now(message->data);
    if (contains(message->data, "\"pid\"")) {
        char reply[64];
        int len = snprintf(reply, sizeof reply, "{\"pid\":%d}", (int)getpid());
        commhost_message out = { .struct_size = sizeof out, .data = { reply, (size_t)len } };
        return host->send(host, comm, &out);
    }
    return host->send(host, comm, message);
}

static const commhost_handler crash_handler = {
    .struct_size = sizeof(commhost_handler),
    .name = "crash",
    .open = crash_open,
    .message = crash_message,
};

static const commhost_handler *const crash_handlers[] = { &crash_handler };

static const commhost_plugin crash_plugin = {
    .struct_size = sizeof(commhost_plugin),
    .abi_major = COMMHOST_ABI_MAJOR,
    .abi_minor = COMMHOST_ABI_MINOR,
    .name = "crash",
    .version = "1.0.0",
    .init = crash_init,
    .handlers = crash_handlers,
    .handler_count = 1,
};

COMMHOST_DECLARE_ENTRY { return &crash_plugin; }
