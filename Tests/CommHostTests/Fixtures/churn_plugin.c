/*
 * churn: a C plugin for the session-lifetime test. Handler "churn" echoes
 * every comm_msg. Each session_start opens one comm toward the client
 * (target "churn.greeting", handler "churn"), keeps the reference open
 * hands back, and starts a repeating timer on it; session_end gives the
 * reference back. The timer's data is freed in its last call. Counters of
 * everything still owned are exported for the test: churn_live().
 */
#include "comm_plugin.h"
#include <stdlib.h>
#include <string.h>

static const commhost_host *host;
static long live_timers, live_sessions;

COMMHOST_EXPORT long churn_live(void) { return live_timers + live_sessions; }

static void tick(void *data, commhost_status status) {
    if (status != COMMHOST_OK) {
        free(data);
        __atomic_fetch_sub(&live_timers, 1, __ATOMIC_RELAXED);
    }
}

static commhost_status churn_init(const commhost_host *api, commhost_str config, void **out_library) {
    (void)config;
    host = api;
    *out_library = NULL;
    return COMMHOST_OK;
}

static commhost_status churn_session_start(void *library, commhost_session *session, commhost_session_cause cause,
                                           void **out_session_data) {
    (void)library; (void)cause;
    commhost_comm *greeting = NULL;
    commhost_str handler = { "churn", 5 }, target = { "churn.greeting", 14 }, id = { 0, 0 };
    commhost_status status = host->open(host, session, handler, target, id, NULL, NULL, &greeting);
    if (status != COMMHOST_OK) return status;
    void *data = malloc(16);
    if (host->timer_start(host, NULL, greeting, 60000, 60000, tick, data, NULL) == COMMHOST_OK) {
        __atomic_fetch_add(&live_timers, 1, __ATOMIC_RELAXED);
    } else {
        free(data);
    }
    __atomic_fetch_add(&live_sessions, 1, __ATOMIC_RELAXED);
    *out_session_data = greeting;
    return COMMHOST_OK;
}

static void churn_session_end(void *library, commhost_session *session, void *session_data, commhost_session_cause cause) {
    (void)library; (void)session; (void)cause;
    if (session_data) host->release_comm(host, session_data);
    __atomic_fetch_sub(&live_sessions, 1, __ATOMIC_RELAXED);
}

static commhost_status churn_open(const commhost_handler *handler, void *library, commhost_comm *comm,
                                  const commhost_message *message, void **out_instance) {
    (void)handler; (void)library; (void)comm; (void)message;
    *out_instance = NULL;
    return COMMHOST_OK;
}

static commhost_status churn_message(const commhost_handler *handler, void *instance, commhost_comm *comm,
                                     const commhost_message *message) {
    (void)handler; (void)instance;
    return host->send(host, comm, message);
}

static const commhost_handler churn_handler = {
    .struct_size = sizeof(commhost_handler),
    .name = "churn",
    .open = churn_open,
    .message = churn_message,
};

static const commhost_handler *const churn_handlers[] = { &churn_handler };

static const commhost_plugin churn_plugin = {
    .struct_size = sizeof(commhost_plugin),
    .abi_major = COMMHOST_ABI_MAJOR,
    .abi_minor = COMMHOST_ABI_MINOR,
    .name = "churn",
    .version = "1.0.0",
    .init = churn_init,
    .handlers = churn_handlers,
    .handler_count = 1,
    .session_start = churn_session_start,
    .session_end = churn_session_end,
};

COMMHOST_DECLARE_ENTRY { return &churn_plugin; }
