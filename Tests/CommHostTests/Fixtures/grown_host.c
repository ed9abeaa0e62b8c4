/*
 * A small C test host for ABIGrowthTests: loads one plugin and drives one
 * comm through it, reading every plugin struct by the header's growth rule:
 * a struct is accepted when its struct_size is at least the ABI 1.0 size,
 * is read up to min(struct_size, the size this host was compiled with), and
 * fields past struct_size are absent (zero). It is compiled twice: against
 * the grown test header (Fixtures/abi_grown, a 1.1 host whose structs are
 * larger) and against the real 1.0 header.
 *
 * Usage: grown_host PLUGIN.so. Prints one line per step (the test asserts
 * them) and exits 0; exits 2 when it refuses the plugin (the line says why)
 * and 1 on a usage or dlopen error.
 *
 *   host abi 1.M table_size N
 *   plugin abi 1.P struct_size N own M grown absent|0xNN
 *   handler growth struct_size N own M grown absent|0xNN
 *   init S / open S / message S
 *   reply struct_size N data TEXT metadata TEXT buffers K HEX... grown absent|0xNN
 *   deinit
 */
#include "comm_plugin.h"
#include <dlfcn.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define COMM ((commhost_comm *)(uintptr_t)0x100)
#define SESSION ((commhost_session *)(uintptr_t)0x200)

/* Reads a plugin struct whose first field is its struct_size into `out`
   (this host's own size `own`): up to what both know, the rest zero. */
static void read_versioned(void *out, size_t own, const void *given) {
    size_t given_size = *(const size_t *)given;
    memset(out, 0, own);
    memcpy(out, given, given_size < own ? given_size : own);
}

/* The 1.1 field as text: its value when struct_size says it is there. */
#if COMMHOST_ABI_MINOR >= 1
/* "absent" is only printed when the copy really holds zero there: the 1.0
   growth plugin puts a non-zero word right after each of its structs, which
   a host reading past struct_size would pick up. */
#define GROWN(ptr, type) (COMMHOST_HAS_FIELD(ptr, type, grown_1_1) ? hex((ptr)->grown_1_1) \
                          : (ptr)->grown_1_1 == 0 ? "absent" : "read-past-struct_size")
static const char *hex(uint64_t value) {
    static char text[4][32];
    static int next;
    char *out = text[next++ % 4];
    snprintf(out, sizeof text[0], "0x%" PRIx64, value);
    return out;
}
#else
#define GROWN(ptr, type) "absent"
#endif

static commhost_status host_send(const commhost_host *host, commhost_comm *comm, const commhost_message *given) {
    (void)host;
    if (comm != COMM) return COMMHOST_EHANDLE;
    if (given == NULL) {
        printf("reply struct_size 0 data {} metadata {} buffers 0 grown absent\n");
        return COMMHOST_OK;
    }
    if (given->struct_size < COMMHOST_MESSAGE_SIZE_1_0) {
        printf("reply refused: struct_size %zu is smaller than ABI 1.0's %zu\n", given->struct_size,
               (size_t)COMMHOST_MESSAGE_SIZE_1_0);
        return COMMHOST_EINVAL;
    }
    commhost_message m;
    read_versioned(&m, sizeof m, given);
    printf("reply struct_size %zu data %.*s metadata %.*s buffers %zu", m.struct_size, (int)m.data.len, m.data.ptr,
           (int)m.metadata.len, m.metadata.ptr, m.buffer_count);
    for (size_t i = 0; i < m.buffer_count; i++) {
        printf(" ");
        for (size_t j = 0; j < m.buffers[i].len; j++) printf("%02x", m.buffers[i].ptr[j]);
    }
    printf(" grown %s\n", GROWN(&m, commhost_message));
    return COMMHOST_OK;
}

static void host_log(const commhost_host *host, commhost_log_level level, commhost_str text) {
    (void)host;
    printf("log %d %.*s\n", (int)level, (int)text.len, text.ptr);
}

static void host_set_error(const commhost_host *host, commhost_str text) {
    (void)host;
    printf("error %.*s\n", (int)text.len, text.ptr);
}

static commhost_str host_comm_id(const commhost_host *host, commhost_comm *comm) {
    (void)host;
    commhost_str id = { "c1", comm == COMM ? 2 : 0 };
    return id;
}

static const void *host_get_extension(const commhost_host *host, const char *id) {
    (void)host; (void)id;
    return NULL;
}

/* The growth plugin calls only these; the other functions stay NULL. */
static const commhost_host table = {
    .struct_size = sizeof(commhost_host),
    .abi_major = COMMHOST_ABI_MAJOR,
    .abi_minor = COMMHOST_ABI_MINOR,
    .get_extension = host_get_extension,
    .log = host_log,
    .set_error = host_set_error,
    .send = host_send,
    .comm_id = host_comm_id,
#if COMMHOST_ABI_MINOR >= 1
    .grown_1_1 = 0x22,
#endif
};

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: grown_host PLUGIN.so\n");
        return 1;
    }
    setvbuf(stdout, NULL, _IONBF, 0);
    void *library_handle = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    commhost_plugin_entry_fn entry = NULL;
    /* POSIX's way to turn dlsym's object pointer into a function pointer (ISO C has none). */
    if (library_handle) *(void **)&entry = dlsym(library_handle, COMMHOST_ENTRY_SYMBOL);
    if (!entry) {
        fprintf(stderr, "grown_host: %s\n", dlerror());
        return 1;
    }
    printf("host abi %d.%d table_size %zu\n", COMMHOST_ABI_MAJOR, COMMHOST_ABI_MINOR, table.struct_size);

    const commhost_plugin *given = entry();
    if (!given || given->struct_size < COMMHOST_PLUGIN_SIZE_1_0) {
        printf("refused: descriptor smaller than ABI 1.0\n");
        return 2;
    }
    if (!COMMHOST_ABI_COMPATIBLE(COMMHOST_ABI_MAJOR, COMMHOST_ABI_MINOR, given->abi_major, given->abi_minor)) {
        printf("refused: plugin ABI %u.%u is newer than this host's %d.%d\n", (unsigned)given->abi_major,
               (unsigned)given->abi_minor, COMMHOST_ABI_MAJOR, COMMHOST_ABI_MINOR);
        return 2;
    }
    commhost_plugin plugin;
    read_versioned(&plugin, sizeof plugin, given);
    printf("plugin abi %u.%u struct_size %zu own %zu grown %s\n", (unsigned)plugin.abi_major, (unsigned)plugin.abi_minor,
           plugin.struct_size, sizeof plugin, GROWN(&plugin, commhost_plugin));

    if (plugin.handler_count < 1 || plugin.handlers[0]->struct_size < COMMHOST_HANDLER_SIZE_1_0) {
        printf("refused: handler smaller than ABI 1.0\n");
        return 2;
    }
    const commhost_handler *context = plugin.handlers[0];
    commhost_handler handler;
    read_versioned(&handler, sizeof handler, context);
    printf("handler %s struct_size %zu own %zu grown %s\n", handler.name, handler.struct_size, sizeof handler,
           GROWN(&handler, commhost_handler));

    void *library = NULL;
    commhost_str config = { "null", 4 };
    if (plugin.init) printf("init %d\n", (int)plugin.init(&table, config, &library));
    void *session_data = NULL;
    if (plugin.session_start) printf("session_start %d\n", (int)plugin.session_start(library, SESSION, COMMHOST_SESSION_STARTED, &session_data));

    commhost_message opening = { .struct_size = sizeof opening, .data = { "{\"opening\":true}", 16 } };
#if COMMHOST_ABI_MINOR >= 1
    opening.grown_1_1 = 0x22;
#endif
    void *instance = NULL;
    printf("open %d\n", (int)handler.open(context, library, COMM, &opening, &instance));

    static const uint8_t bytes[] = { 0x00, 0xff, 0x10 };
    commhost_bytes buffer = { bytes, sizeof bytes };
    commhost_message incoming = { .struct_size = sizeof incoming, .data = { "{\"n\":1}", 7 },
                                  .metadata = { "{\"m\":true}", 10 }, .buffers = &buffer, .buffer_count = 1 };
#if COMMHOST_ABI_MINOR >= 1
    incoming.grown_1_1 = 0x22;
#endif
    if (handler.message) printf("message %d\n", (int)handler.message(context, instance, COMM, &incoming));

    commhost_message closing = { .struct_size = sizeof closing };
    if (handler.close) handler.close(context, instance, COMM, &closing, COMMHOST_CLOSE_SHUTDOWN);
    if (plugin.session_end) plugin.session_end(library, SESSION, session_data, COMMHOST_SESSION_SHUTDOWN);
    if (plugin.deinit) plugin.deinit(library);
    printf("deinit\n");
    return 0;
}
