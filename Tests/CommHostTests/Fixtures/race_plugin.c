/*
 * race: a C plugin for the lifecycle-race tests, driven in-process. Handler
 * "race" (library version VERSION, default 1):
 *   open              records "open"; when the open data contains "slow" it
 *                     first sleeps 300 ms, then records "open-end"
 *   {"do":"open_loop"} starts a thread (joined in deinit) that opens
 *                     RACE_OPENS comms toward the client in this comm's
 *                     session (handler "race", target "race.child"), one
 *                     every 50 us, giving back each reference open hands
 *                     back; counts the statuses
 *   message           records "msg"
 *   deinit            records "deinit" after joining the thread
 * Exported for the test: race_events() (the events, ';'-separated),
 * race_opened() and race_refused() (open_loop's COMMHOST_OK and
 * COMMHOST_ECLOSED counts), race_loop_done().
 * The library is COMMHOST_PLUGIN_CONCURRENT so a retire can overlap a call.
 */
#define _DEFAULT_SOURCE
#include "comm_plugin.h"
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#ifndef VERSION
#define VERSION 1
#endif
#define RACE_OPENS 400
#define STR_(x) #x
#define STR(x) STR_(x)

static const commhost_host *host;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char events[4096];
static long opened, refused, loop_done;
static pthread_t loop_thread;
static int loop_started;
static commhost_session *loop_session;

static void record(const char *event) {
    pthread_mutex_lock(&lock);
    size_t used = strlen(events);
    snprintf(events + used, sizeof events - used, "%s%s", used ? ";" : "", event);
    pthread_mutex_unlock(&lock);
}

COMMHOST_EXPORT const char *race_events(void) { return events; }
COMMHOST_EXPORT long race_opened(void) { return __atomic_load_n(&opened, __ATOMIC_SEQ_CST); }
COMMHOST_EXPORT long race_refused(void) { return __atomic_load_n(&refused, __ATOMIC_SEQ_CST); }
COMMHOST_EXPORT long race_loop_done(void) { return __atomic_load_n(&loop_done, __ATOMIC_SEQ_CST); }

static int contains(commhost_str text, const char *needle) {
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= text.len; i++) {
        if (memcmp(text.ptr + i, needle, n) == 0) return 1;
    }
    return 0;
}

static void *open_loop(void *arg) {
    (void)arg;
    commhost_str handler = { "race", 4 }, target = { "race.child", 10 }, id = { 0, 0 };
    for (int i = 0; i < RACE_OPENS; i++) {
        commhost_comm *comm = NULL;
        commhost_status status = host->open(host, loop_session, handler, target, id, NULL, NULL, &comm);
        if (status == COMMHOST_OK) {
            __atomic_fetch_add(&opened, 1, __ATOMIC_SEQ_CST);
            host->release_comm(host, comm);
        } else if (status == COMMHOST_ECLOSED) {
            __atomic_fetch_add(&refused, 1, __ATOMIC_SEQ_CST);
        }
        usleep(50);
    }
    host->release_session(host, loop_session);
    __atomic_store_n(&loop_done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static commhost_status race_init(const commhost_host *api, commhost_str config, void **out_library) {
    (void)config;
    host = api;
    *out_library = NULL;
    return COMMHOST_OK;
}

static void race_deinit(void *library) {
    (void)library;
    if (loop_started) pthread_join(loop_thread, NULL);
    record("deinit");
}

static commhost_status race_open(const commhost_handler *handler, void *library, commhost_comm *comm,
                                 const commhost_message *message, void **out_instance) {
    (void)handler; (void)library; (void)comm;
    record("open");
    if (message && contains(message->data, "slow")) {
        usleep(300000);
        record("open-end");
    }
    *out_instance = NULL;
    return COMMHOST_OK;
}

static commhost_status race_message(const commhost_handler *handler, void *instance, commhost_comm *comm,
                                    const commhost_message *message) {
    (void)handler; (void)instance;
    record("msg");
    if (contains(message->data, "open_loop") && !loop_started) {
        loop_session = host->comm_session(host, comm);
        host->retain_session(host, loop_session);
        loop_started = 1;
        pthread_create(&loop_thread, NULL, open_loop, NULL);
    }
    return COMMHOST_OK;
}

static const commhost_handler race_handler = {
    .struct_size = sizeof(commhost_handler),
    .name = "race",
    .open = race_open,
    .message = race_message,
};

static const commhost_handler *const race_handlers[] = { &race_handler };

static const commhost_plugin race_plugin = {
    .struct_size = sizeof(commhost_plugin),
    .abi_major = COMMHOST_ABI_MAJOR,
    .abi_minor = COMMHOST_ABI_MINOR,
    .flags = COMMHOST_PLUGIN_CONCURRENT,
    .name = "race",
    .version = STR(VERSION) ".0.0",
    .init = race_init,
    .deinit = race_deinit,
    .handlers = race_handlers,
    .handler_count = 1,
};

COMMHOST_DECLARE_ENTRY { return &race_plugin; }
