/*
 * growth: a plugin ABIGrowthTests builds against the real 1.0 header and
 * against the grown test header (Fixtures/abi_grown, ABI 1.1, one more field
 * `grown_1_1` at the end of every versioned struct), to load into
 * grown_host.c. Handler "growth" answers every comm_msg with a message of
 * its own (struct_size as this file was compiled) carrying
 *   data     {"got":<the data that arrived>,"host_has_grown":B,"message_has_grown":B}
 *   metadata the metadata that arrived
 *   buffers  the buffers that arrived
 * where the two flags say whether the host's table and the message that
 * arrived are large enough to hold the 1.1 field (COMMHOST_HAS_FIELD: what a
 * 1.1 plugin must check before using a 1.1 field on a possibly older host).
 * Built against the grown header, it sets grown_1_1 = 0x11 in its descriptor,
 * handler and replies, so a 1.1 host can show it reads them.
 *
 * Built against the 1.0 header, each of those structs is followed in memory
 * by the word 0x99 (where a 1.1 reader would find grown_1_1), so a host
 * that reads past struct_size shows it.
 *
 * -DCLAIM_MINOR=N puts N in the descriptor's abi_minor instead of
 * COMMHOST_ABI_MINOR (a grown build claiming 0 gets past a 1.0 host's
 * version check, so that host can show it reads larger messages at its own
 * size).
 */
#include "comm_plugin.h"
#include <stdio.h>
#include <string.h>

#ifndef CLAIM_MINOR
#define CLAIM_MINOR COMMHOST_ABI_MINOR
#endif

/* A 1.0 struct followed by a non-zero word, or (1.1) the struct alone. */
#if COMMHOST_ABI_MINOR >= 1
#define WITH_TAIL(type) struct { type value; }
#define TAIL
#else
#define WITH_TAIL(type) struct { type value; uint64_t tail; }
#define TAIL , .tail = 0x99
#endif

static const commhost_host *growth_host;

static commhost_status growth_init(const commhost_host *host, commhost_str config, void **out_library) {
    (void)config;
    growth_host = host;
    *out_library = NULL;
    return COMMHOST_OK;
}

static commhost_status growth_open(const commhost_handler *handler, void *library, commhost_comm *comm,
                                   const commhost_message *message, void **out_instance) {
    (void)handler; (void)library; (void)comm; (void)message;
    *out_instance = NULL;
    return COMMHOST_OK;
}

static commhost_status growth_message(const commhost_handler *handler, void *instance, commhost_comm *comm,
                                      const commhost_message *message) {
    (void)handler; (void)instance;
#if COMMHOST_ABI_MINOR >= 1
    int host_has = COMMHOST_HAS_FIELD(growth_host, commhost_host, grown_1_1);
    int message_has = COMMHOST_HAS_FIELD(message, commhost_message, grown_1_1);
#else
    int host_has = 0, message_has = 0;
#endif
    char data[512];
    int len = snprintf(data, sizeof data, "{\"got\":%.*s,\"host_has_grown\":%s,\"message_has_grown\":%s}",
                       (int)message->data.len, message->data.ptr, host_has ? "true" : "false",
                       message_has ? "true" : "false");
    if (len < 0 || (size_t)len >= sizeof data) return COMMHOST_ELIMIT;
    WITH_TAIL(commhost_message) with_tail;
    memset(&with_tail, 0, sizeof with_tail);
    commhost_message *reply = &with_tail.value;
    reply->struct_size = sizeof *reply;
    reply->data.ptr = data;
    reply->data.len = (size_t)len;
    reply->metadata = message->metadata;
    reply->buffers = message->buffers;
    reply->buffer_count = message->buffer_count;
#if COMMHOST_ABI_MINOR >= 1
    reply->grown_1_1 = 0x11;
#else
    with_tail.tail = 0x99;
#endif
    return growth_host->send(growth_host, comm, reply);
}

static const WITH_TAIL(commhost_handler) growth_handler = { .value = {
    .struct_size = sizeof(commhost_handler),
    .name = "growth",
    .open = growth_open,
    .message = growth_message,
#if COMMHOST_ABI_MINOR >= 1
    .grown_1_1 = 0x11,
#endif
} TAIL };

static const commhost_handler *const growth_handlers[] = { &growth_handler.value };

static const WITH_TAIL(commhost_plugin) growth_plugin = { .value = {
    .struct_size = sizeof(commhost_plugin),
    .abi_major = COMMHOST_ABI_MAJOR,
    .abi_minor = CLAIM_MINOR,
    .name = "growth",
    .version = "1.0.0",
    .init = growth_init,
    .handlers = growth_handlers,
    .handler_count = 1,
#if COMMHOST_ABI_MINOR >= 1
    .grown_1_1 = 0x11,
#endif
} TAIL };

COMMHOST_DECLARE_ENTRY {
    return &growth_plugin.value;
}
