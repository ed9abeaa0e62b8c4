/*
 * comm_plugin.h — the commhost plugin ABI.
 *
 * This is the only file a plugin author needs. A plugin is a shared library
 * that exports one function, COMMHOST_ENTRY_SYMBOL, returning a descriptor
 * (commhost_plugin) that lists the library's named handlers. The manifest
 * binds each comm target_name to (library, handler). The host calls the
 * handler's callbacks for every comm of that target; the plugin calls back
 * into the host only through the function table (commhost_host_api) it is
 * given at init, so a plugin links against nothing of the host's.
 *
 * Conventions
 * - Every versioned struct starts with `struct_size` (the size the plugin or
 *   host was compiled with). Fields are only ever added at the end; a reader
 *   checks COMMHOST_HAS_FIELD before touching a field past the first version.
 * - Strings and JSON are borrowed (pointer, length) UTF-8 slices, never
 *   NUL-terminated unless stated. Borrowed slices are valid only during the
 *   call that passes them. Everything a plugin passes to the host is copied
 *   before the host function returns.
 * - Errors are int32 status codes: COMMHOST_OK (0) or a negative
 *   commhost_status value. Nothing else (no C++ exception, no longjmp, no
 *   Swift error) may cross this boundary.
 * - Thread tags, in brackets on every function:
 *     [main-thread]       called by the host while no other call into this
 *                         library is running (init, deinit).
 *     [comm-serialized]   calls for one comm are never concurrent and never
 *                         re-entered; calls into one library are serialized
 *                         too unless the descriptor sets
 *                         COMMHOST_PLUGIN_CONCURRENT.
 *     [any-thread]        the host function may be called from any thread,
 *                         including the plugin's own threads.
 *     [callback-thread]   the host function may only be called from inside a
 *                         callback, on the thread running it.
 */
#ifndef COMMHOST_COMM_PLUGIN_H
#define COMMHOST_COMM_PLUGIN_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Versions                                                                 */
/* ------------------------------------------------------------------------ */

/** ABI major version. A different major is never loaded. */
#define COMMHOST_ABI_MAJOR 1
/** ABI minor version. Grows when fields are added at the end of a struct. */
#define COMMHOST_ABI_MINOR 0

/**
 * The compatibility rule, stated once: a host of version (host_major,
 * host_minor) loads a plugin built for (plugin_major, plugin_minor) when the
 * majors are equal and the plugin's minor is not newer than the host's.
 */
#define COMMHOST_ABI_COMPATIBLE(host_major, host_minor, plugin_major, plugin_minor) \
    ((host_major) == (plugin_major) && (plugin_minor) <= (host_minor))

/**
 * True when a struct whose first member is `size_t struct_size` is large
 * enough to contain `field` (of struct type `type`).
 */
#define COMMHOST_HAS_FIELD(ptr, type, field) \
    ((ptr)->struct_size >= offsetof(type, field) + sizeof(((type *)0)->field))

/** Name of the one exported entry function (see commhost_plugin_entry_fn). */
#define COMMHOST_ENTRY_SYMBOL "commhost_plugin_entry"

/** Marks a symbol as exported even when building with -fvisibility=hidden. */
#if defined(_WIN32)
#define COMMHOST_EXPORT __declspec(dllexport)
#else
#define COMMHOST_EXPORT __attribute__((visibility("default")))
#endif

/* ------------------------------------------------------------------------ */
/* Status codes                                                             */
/* ------------------------------------------------------------------------ */

/** 0 for success, a negative COMMHOST_E* value for failure. */
typedef int32_t commhost_status;

/** Success. */
#define COMMHOST_OK 0
/** Unspecified failure; the error text (set_error) says what happened. */
#define COMMHOST_EFAIL (-1)
/** An argument was NULL, out of range or otherwise unusable. */
#define COMMHOST_EINVAL (-2)
/** JSON given to the host is not a valid JSON object (data, metadata). */
#define COMMHOST_EJSON (-3)
/** The comm is closed, or its session has ended. */
#define COMMHOST_ECLOSED (-4)
/** Out of memory. */
#define COMMHOST_ENOMEM (-5)
/** The request is not supported (unknown extension, missing callback). */
#define COMMHOST_EUNSUPPORTED (-6)
/** A host limit (message size, comms per session) would be exceeded. */
#define COMMHOST_ELIMIT (-7)
/** A comm with this id is already open in the session. */
#define COMMHOST_EEXISTS (-8)
/** Saved state given to restore is not in a format this version reads. */
#define COMMHOST_ESTATE (-9)

/* ------------------------------------------------------------------------ */
/* Borrowed slices and messages                                             */
/* ------------------------------------------------------------------------ */

/** A borrowed UTF-8 string or JSON text: `len` bytes at `ptr`, no NUL needed. */
typedef struct commhost_str {
    /** First byte; may be NULL only when len is 0. */
    const char *ptr;
    /** Number of bytes. */
    size_t len;
} commhost_str;

/** A borrowed run of raw bytes. */
typedef struct commhost_bytes {
    /** First byte; may be NULL only when len is 0. */
    const uint8_t *ptr;
    /** Number of bytes. */
    size_t len;
} commhost_bytes;

/**
 * One comm message, in either direction: what comm_open, comm_msg and
 * comm_close carry. Everything in it is borrowed.
 */
typedef struct commhost_message {
    /** sizeof(commhost_message) as compiled by the writer. */
    size_t struct_size;
    /**
     * The `data` field: the exact bytes of a JSON object. From the host it is
     * the text that arrived on the wire (validated, never re-encoded). To the
     * host, an empty slice means `{}`.
     */
    commhost_str data;
    /** The `metadata` field, a JSON object, exactly as `data`. */
    commhost_str metadata;
    /** The binary buffers, raw bytes (base64 only on the wire). */
    const commhost_bytes *buffers;
    /** Number of entries in `buffers`; `buffers` may be NULL when 0. */
    size_t buffer_count;
} commhost_message;

/** Why a comm's close callback runs. Each opened instance sees exactly one. */
typedef enum commhost_close_cause {
    /** The client sent comm_close. */
    COMMHOST_CLOSE_CLIENT = 1,
    /** The plugin closed the comm itself (host close()). */
    COMMHOST_CLOSE_PLUGIN = 2,
    /** The client's session ended (disconnect, end of input). */
    COMMHOST_CLOSE_SESSION_ENDED = 3,
    /** The host is shutting down. */
    COMMHOST_CLOSE_SHUTDOWN = 4,
    /** The target was removed or disabled in the manifest. */
    COMMHOST_CLOSE_REMOVED = 5,
    /** The library was reloaded and the comm could not be handed off. */
    COMMHOST_CLOSE_RELOAD = 6,
    /** Forces a 32-bit enum. */
    COMMHOST_CLOSE_CAUSE_MAX_ = 0x7fffffff
} commhost_close_cause;

/** Log levels for commhost_host_api.log. */
typedef enum commhost_log_level {
    COMMHOST_LOG_DEBUG = 0,
    COMMHOST_LOG_INFO = 1,
    COMMHOST_LOG_WARNING = 2,
    COMMHOST_LOG_ERROR = 3,
    COMMHOST_LOG_LEVEL_MAX_ = 0x7fffffff
} commhost_log_level;

/**
 * Opaque handle to one comm, owned by the host. A handle passed to a callback
 * is valid until the comm's close callback returns. To use it after that (a
 * plugin's timer thread, say), take a reference with retain_comm and give it
 * back with release_comm; host functions on a comm that has closed, or whose
 * session has ended, then return COMMHOST_ECLOSED instead of failing worse.
 */
typedef struct commhost_comm commhost_comm;

/** Receives bytes from a plugin (used by snapshot). */
typedef struct commhost_writer {
    /** Opaque host context; pass it back to write. */
    void *context;
    /**
     * Appends `len` bytes at `ptr`; may be called any number of times.
     * Returns COMMHOST_OK or COMMHOST_ENOMEM. [callback-thread]
     */
    commhost_status (*write)(void *context, const uint8_t *ptr, size_t len);
} commhost_writer;

/* ------------------------------------------------------------------------ */
/* The host function table                                                  */
/* ------------------------------------------------------------------------ */

/**
 * Functions the host offers the plugin, passed to init. The table stays
 * valid until deinit returns. It only grows at the end: check struct_size
 * (COMMHOST_HAS_FIELD) before calling a field added after ABI 1.0.
 */
typedef struct commhost_host_api {
    /** sizeof(commhost_host_api) as compiled by the host. */
    size_t struct_size;
    /** The host's ABI major version. */
    uint16_t abi_major;
    /** The host's ABI minor version. */
    uint16_t abi_minor;
    /** Reserved, zero. */
    uint32_t reserved;

    /**
     * Optional features by name and revision, "commhost.NAME/REV". Returns
     * a feature-specific table, or NULL when the host lacks the feature.
     * `id` is NUL-terminated. [any-thread]
     */
    const void *(*get_extension)(const char *id);

    /** Writes one line to the host's log under the plugin's name. [any-thread] */
    void (*log)(commhost_log_level level, commhost_str message);

    /**
     * Records the error text for the callback running on this thread; the
     * host reads it when that callback returns a non-zero status and
     * reports it with the status. The text is copied. [callback-thread]
     */
    void (*set_error)(commhost_str message);

    /**
     * Sends a comm_msg to the client on `comm`. `message` may be NULL
     * (data `{}`); its data and metadata must be JSON objects or empty.
     * The frame leaves after everything issued before it on this comm's
     * session. Returns COMMHOST_OK, COMMHOST_ECLOSED, COMMHOST_EJSON,
     * COMMHOST_EINVAL or COMMHOST_ELIMIT. [any-thread]
     */
    commhost_status (*send)(commhost_comm *comm, const commhost_message *message);

    /**
     * Closes `comm`: sends comm_close with `message` (NULL or empty data
     * means `{}`) and runs the handler's close callback with cause
     * COMMHOST_CLOSE_PLUGIN, on the comm's serialized context (immediately
     * after the current callback when called from inside one). A second close
     * returns COMMHOST_ECLOSED. [any-thread]
     */
    commhost_status (*close)(commhost_comm *comm, const commhost_message *message);

    /**
     * Opens a new comm toward the client, in the session of `origin`, and
     * handled by the same handler as `origin` with `instance` as its
     * instance pointer (its close callback will run exactly once). A
     * comm_open frame with `target_name` (the client-side target) goes out
     * before anything the plugin sends on the new comm. `comm_id` may be
     * empty: the host then generates 32 lowercase hex digits. On success
     * `*out_comm` (if not NULL) receives the new handle, valid as described
     * for commhost_comm. Returns COMMHOST_OK, COMMHOST_ECLOSED (origin
     * closed), COMMHOST_EEXISTS, COMMHOST_EJSON, COMMHOST_EINVAL or
     * COMMHOST_ELIMIT. [any-thread]
     */
    commhost_status (*open)(commhost_comm *origin, commhost_str target_name,
                            commhost_str comm_id, const commhost_message *message,
                            void *instance, commhost_comm **out_comm);

    /** The comm's id (borrowed, valid while the handle is). [any-thread] */
    commhost_str (*comm_id)(commhost_comm *comm);

    /** The comm's target_name (borrowed, valid while the handle is). [any-thread] */
    commhost_str (*target_name)(commhost_comm *comm);

    /** Takes a reference that keeps `comm`'s handle valid. [any-thread] */
    void (*retain_comm)(commhost_comm *comm);

    /** Gives back a reference taken with retain_comm. [any-thread] */
    void (*release_comm)(commhost_comm *comm);
} commhost_host_api;

/* ------------------------------------------------------------------------ */
/* Handlers                                                                 */
/* ------------------------------------------------------------------------ */

/**
 * One named handler: the open/msg/close logic for the comms of the targets
 * the manifest binds to it. Only `name` and `open` are required; the host
 * null-checks every other callback.
 */
typedef struct commhost_handler {
    /** sizeof(commhost_handler) as compiled by the plugin. */
    size_t struct_size;

    /** The handler's name, NUL-terminated, unique within the library. */
    const char *name;

    /**
     * A comm for this handler was opened (by the client's comm_open).
     * `message` carries the comm_open's data, metadata and buffers. On
     * COMMHOST_OK, `*out_instance` is this comm's instance pointer (may be
     * NULL) and is passed to every later call for the comm. On failure the
     * host closes the comm toward the client and calls no other callback for
     * it (not even close). `library` is what init returned. [comm-serialized]
     */
    commhost_status (*open)(void *library, commhost_comm *comm,
                            const commhost_message *message, void **out_instance);

    /**
     * The client sent a comm_msg. A failure is logged with its error text;
     * the comm stays open. Optional. [comm-serialized]
     */
    commhost_status (*message)(void *instance, commhost_comm *comm,
                               const commhost_message *message);

    /**
     * The comm is closed; runs exactly once per successfully opened instance,
     * whatever the cause, and is where the instance is freed. `message` is
     * the client's comm_close (for COMMHOST_CLOSE_CLIENT) or the close the
     * plugin sent (COMMHOST_CLOSE_PLUGIN), else empty data. Host functions on
     * `comm` return COMMHOST_ECLOSED from here on. Optional. [comm-serialized]
     */
    void (*close)(void *instance, commhost_comm *comm,
                  const commhost_message *message, commhost_close_cause cause);

    /**
     * Hand-off for reload, on the old version: writes the instance's state
     * as bytes to `out`. Optional; a handler without both snapshot and
     * restore (in the old or the new version) has its comms closed (cause
     * COMMHOST_CLOSE_RELOAD) on reload. The instance stays live and belongs
     * to this version: if the reload is abandoned it goes on serving; if
     * the hand-off succeeds the host makes no further call with it, and the
     * library frees it no later than its deinit. The host checks the round
     * trip before switching: the new version's snapshot of the instance it
     * restored must equal these bytes, so keep the encoding deterministic
     * (a version that changes its state format should close its comms
     * instead, by leaving snapshot out). [comm-serialized]
     */
    commhost_status (*snapshot)(void *instance, commhost_comm *comm,
                                const commhost_writer *out);

    /**
     * Hand-off for reload, on the new version: builds an instance for an
     * already open `comm` from bytes a snapshot wrote (possibly by the
     * previous version). Returns COMMHOST_ESTATE for a format it cannot
     * read. `library` is what this version's init returned. Optional.
     * [comm-serialized]
     */
    commhost_status (*restore)(void *library, commhost_comm *comm,
                               commhost_bytes state, void **out_instance);
} commhost_handler;

/* ------------------------------------------------------------------------ */
/* The plugin descriptor                                                    */
/* ------------------------------------------------------------------------ */

/** Descriptor flag: callbacks may be called concurrently for different comms. */
#define COMMHOST_PLUGIN_CONCURRENT ((uint32_t)1u << 0)

/**
 * What the entry function returns: the library's version, its ABI version
 * and its handlers. Must stay valid and unchanged while the library is
 * loaded (a static const object is the usual form).
 */
typedef struct commhost_plugin {
    /** sizeof(commhost_plugin) as compiled by the plugin. */
    size_t struct_size;
    /** COMMHOST_ABI_MAJOR the plugin was built against. */
    uint16_t abi_major;
    /** COMMHOST_ABI_MINOR the plugin was built against. */
    uint16_t abi_minor;
    /** COMMHOST_PLUGIN_* flags. */
    uint32_t flags;
    /** Library name for logs and `commhost inspect`, NUL-terminated. */
    const char *name;
    /** Library version text, NUL-terminated (e.g. "1.2.0"). */
    const char *version;

    /**
     * Called once after loading, before any handler. `host` stays valid
     * until deinit returns. `config` is the JSON text the manifest gives for
     * this library (`null` when none). `*out_library` (may be left NULL) is
     * passed to open and restore, and to deinit. A failure (with set_error
     * text) refuses the library. Optional. [main-thread]
     */
    commhost_status (*init)(const commhost_host_api *host, commhost_str config,
                            void **out_library);

    /**
     * Called once before the library is retired, after every comm of its
     * handlers has been closed or handed off. Optional. [main-thread]
     */
    void (*deinit)(void *library);

    /** The handlers: `handler_count` pointers to descriptors. */
    const commhost_handler *const *handlers;
    /** Number of entries in `handlers` (at least 1). */
    size_t handler_count;
} commhost_plugin;

/**
 * The one exported entry function, named COMMHOST_ENTRY_SYMBOL. Returns the
 * descriptor, or NULL when the library cannot run at all. Must not call any
 * host function. [main-thread]
 */
typedef const commhost_plugin *(*commhost_plugin_entry_fn)(void);

/** Declares the entry function with the right linkage and visibility. */
#define COMMHOST_DECLARE_ENTRY \
    COMMHOST_EXPORT const commhost_plugin *commhost_plugin_entry(void)

/* Layout checks: these offsets are the ABI and must never change. */
#if defined(__cplusplus)
#define COMMHOST_STATIC_ASSERT static_assert
#else
#define COMMHOST_STATIC_ASSERT _Static_assert
#endif
COMMHOST_STATIC_ASSERT(offsetof(commhost_str, len) == sizeof(void *), "commhost_str layout");
COMMHOST_STATIC_ASSERT(sizeof(commhost_str) == 2 * sizeof(void *), "commhost_str size");
COMMHOST_STATIC_ASSERT(sizeof(commhost_bytes) == 2 * sizeof(void *), "commhost_bytes size");
COMMHOST_STATIC_ASSERT(offsetof(commhost_message, data) == sizeof(size_t), "commhost_message.data");
COMMHOST_STATIC_ASSERT(offsetof(commhost_message, buffer_count) == sizeof(size_t) + 5 * sizeof(void *), "commhost_message.buffer_count");
COMMHOST_STATIC_ASSERT(sizeof(commhost_close_cause) == 4, "commhost_close_cause size");
COMMHOST_STATIC_ASSERT(offsetof(commhost_host_api, abi_major) == sizeof(size_t), "commhost_host_api.abi_major");
COMMHOST_STATIC_ASSERT(offsetof(commhost_host_api, get_extension) == sizeof(size_t) + 8, "commhost_host_api.get_extension");
COMMHOST_STATIC_ASSERT(offsetof(commhost_host_api, release_comm) == sizeof(size_t) + 8 + 9 * sizeof(void *), "commhost_host_api.release_comm");
COMMHOST_STATIC_ASSERT(offsetof(commhost_handler, name) == sizeof(size_t), "commhost_handler.name");
COMMHOST_STATIC_ASSERT(offsetof(commhost_handler, restore) == sizeof(size_t) + 5 * sizeof(void *), "commhost_handler.restore");
COMMHOST_STATIC_ASSERT(offsetof(commhost_plugin, abi_major) == sizeof(size_t), "commhost_plugin.abi_major");
COMMHOST_STATIC_ASSERT(offsetof(commhost_plugin, name) == sizeof(size_t) + 8, "commhost_plugin.name");
COMMHOST_STATIC_ASSERT(offsetof(commhost_plugin, handler_count) == sizeof(size_t) + 8 + 5 * sizeof(void *), "commhost_plugin.handler_count");

/** Minimum struct_size of a commhost_plugin the host accepts (ABI 1.0). */
#define COMMHOST_PLUGIN_MIN_SIZE (offsetof(commhost_plugin, handler_count) + sizeof(size_t))
/** Minimum struct_size of a commhost_handler the host accepts (ABI 1.0). */
#define COMMHOST_HANDLER_MIN_SIZE (offsetof(commhost_handler, open) + sizeof(void *))

#ifdef __cplusplus
}
#endif

#endif /* COMMHOST_COMM_PLUGIN_H */
