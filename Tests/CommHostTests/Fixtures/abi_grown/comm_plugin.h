/*
 * TEST FIXTURE, not the ABI: a copy of Sources/CommPluginAPI/include/comm_plugin.h
 * as a future 1.1 might look, where every versioned struct (commhost_message,
 * commhost_writer, commhost_host, commhost_handler, commhost_plugin) has one
 * more field at its end (`uint64_t grown_1_1`) and COMMHOST_ABI_MINOR is 1.
 * ABIGrowthTests builds test hosts and plugins against it and against the
 * real header to show that the struct_size rules hold both ways. Keep it a
 * copy of the real header plus exactly these changes.
 *
 * comm_plugin.h — the commhost plugin ABI, version 1.0.
 *
 * This is the only file a plugin author needs. A plugin is a shared library
 * that exports one function, COMMHOST_ENTRY_SYMBOL, returning a descriptor
 * (commhost_plugin) that lists the library's named handlers. The manifest
 * binds each comm target_name to (library, handler). The host calls the
 * handler's callbacks for every comm of that target; the plugin calls back
 * into the host only through the function table (commhost_host) it is given
 * at init, so a plugin links against nothing of the host's.
 *
 * Conventions
 * - Every versioned struct starts with `struct_size` (the size the writer
 *   was compiled with). Fields are only ever added at the end. A reader
 *   accepts any struct at least its ABI 1.0 size and treats fields past
 *   `struct_size` as absent (COMMHOST_HAS_FIELD says whether one is there).
 * - Every enumeration that crosses the boundary is an int32_t typedef with
 *   named constants (a C enum's size differs between C and C++ compilers).
 * - Strings and JSON are borrowed (pointer, length) UTF-8 slices, never
 *   NUL-terminated unless stated. Borrowed slices are valid only during the
 *   call that passes them. Everything a plugin passes to the host is copied
 *   before the host function returns.
 * - Errors are int32 status codes: COMMHOST_OK (0) or a negative
 *   COMMHOST_E* value. Nothing else (no C++ exception, no longjmp, no Swift
 *   error) may cross this boundary.
 * - Every call carries its context: handler callbacks receive their own
 *   commhost_handler (with the plugin's `handler_data`), host functions
 *   receive the commhost_host table the library was given, which tells the
 *   host which library is calling from any thread.
 * - Handles (commhost_comm, commhost_session, commhost_timer) are tokens,
 *   not addresses: the host validates each one it is given. A handle the
 *   plugin no longer holds, or one extra release, is logged with the
 *   library's name and refused with COMMHOST_EHANDLE; it never touches host
 *   memory.
 *
 * Thread tags, in brackets on every function:
 *   [library-exclusive] called by the host on one of its threads (not
 *                       necessarily the process's main thread) while no
 *                       other call into this library is running: init,
 *                       deinit.
 *   [session-serialized] called on the serialized context of one session:
 *                       calls for the comms, tasks, timers and session
 *                       callbacks of one session never overlap and never
 *                       re-enter, so a plugin needs no lock to touch the
 *                       instances and session data of one session. Calls
 *                       into one library are serialized across sessions too
 *                       unless the descriptor sets COMMHOST_PLUGIN_CONCURRENT.
 *   [any-thread]        the host function may be called from any thread,
 *                       including the plugin's own threads.
 *   [callback-thread]   the host function may only be called from inside a
 *                       callback, on the thread running it.
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
#define COMMHOST_ABI_MINOR 1

/**
 * The compatibility rule, stated once: a host of version (host_major,
 * host_minor) loads a plugin built for (plugin_major, plugin_minor) when the
 * majors are equal and the plugin's minor is not newer than the host's.
 *
 * What a vendor does when the host's minor grows: nothing. A plugin built
 * against 1.0 keeps loading on every 1.x host; the host reads its structs at
 * their 1.0 size. To use a field added in 1.N, build against the 1.N header
 * and check COMMHOST_HAS_FIELD on the host's structs before using it, so the
 * plugin still runs on an older 1.x host that lacks it.
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
/** The comm is closed, or its session has ended (or is ending). */
#define COMMHOST_ECLOSED (-4)
/** Out of memory. */
#define COMMHOST_ENOMEM (-5)
/** The request is not supported (unknown extension, missing callback). */
#define COMMHOST_EUNSUPPORTED (-6)
/** A host limit (message size, comms per session) would be exceeded. */
#define COMMHOST_ELIMIT (-7)
/** A comm with this id is already open in the session. */
#define COMMHOST_EEXISTS (-8)
/**
 * Saved state given to restore is not in a format this version reads. The
 * host then closes that comm (cause COMMHOST_CLOSE_RELOAD) and the reload
 * goes on; see restore.
 */
#define COMMHOST_ESTATE (-9)
/**
 * Backpressure: the session's outbound queue is above its high-water mark
 * (manifest `limits.outbound_high_water_bytes`). Nothing was sent or opened.
 * The library's session_writable callback runs once the client has taken
 * the queue down to half the mark; send again then.
 */
#define COMMHOST_EAGAIN (-10)
/**
 * The handle is not one the plugin holds: never given, already released
 * (one release_comm too many), or from an ended session's table. The host
 * logs the call with the library's name and changes nothing.
 */
#define COMMHOST_EHANDLE (-11)
/** A timer was cancelled with timer_cancel (the last call of its task). */
#define COMMHOST_ECANCELED (-12)

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
    /** Added in 1.1 (test fixture): absent when struct_size is the 1.0 size. */
    uint64_t grown_1_1;
} commhost_message;

/** Why a comm's close callback runs. Each opened instance sees exactly one. */
typedef int32_t commhost_close_cause;
/** The client sent comm_close. */
#define COMMHOST_CLOSE_CLIENT 1
/** The plugin closed the comm itself (host close()). */
#define COMMHOST_CLOSE_PLUGIN 2
/** The client's session ended (disconnect, end of input). */
#define COMMHOST_CLOSE_SESSION_ENDED 3
/** The host is shutting down. */
#define COMMHOST_CLOSE_SHUTDOWN 4
/** The target was removed or disabled in the manifest. */
#define COMMHOST_CLOSE_REMOVED 5
/**
 * The library was reloaded and the comm could not be handed off (a handler
 * without hand-off, or restore returned COMMHOST_ESTATE). The client got
 * comm_close with data {"reason":"reloaded"}.
 */
#define COMMHOST_CLOSE_RELOAD 6

/** Why session_start or session_end runs. */
typedef int32_t commhost_session_cause;
/** session_start: a client session began (or this library was added to a running host). */
#define COMMHOST_SESSION_STARTED 1
/**
 * session_start: the session was served by the previous version of this
 * library, which was just reloaded; the comms it could hand off are already
 * restored into this version. Do not open the session's first comms again.
 */
#define COMMHOST_SESSION_RESUMED 2
/** session_end: the client went away (disconnect, end of input). */
#define COMMHOST_SESSION_ENDED 3
/** session_end: the host is shutting down. */
#define COMMHOST_SESSION_SHUTDOWN 4
/** session_end: this version was replaced by a reload; the session goes on under the new one. */
#define COMMHOST_SESSION_HANDED_OFF 5
/** session_end: the library's last target was removed from the manifest. */
#define COMMHOST_SESSION_REMOVED 6

/** Log levels for commhost_host.log. */
typedef int32_t commhost_log_level;
#define COMMHOST_LOG_DEBUG 0
#define COMMHOST_LOG_INFO 1
#define COMMHOST_LOG_WARNING 2
#define COMMHOST_LOG_ERROR 3

/* ------------------------------------------------------------------------ */
/* Handles                                                                  */
/* ------------------------------------------------------------------------ */

/**
 * One comm (a handle token; never dereference it). A handle passed to a
 * callback is valid until the comm's close callback returns. To use it
 * after that (from a plugin thread, say), hold a reference: retain_comm
 * takes one, `open` hands one back in `*out_comm`, and release_comm gives
 * one back. Host functions on a comm that has closed, or whose session has
 * ended, then return COMMHOST_ECLOSED. After the last reference is given
 * back and the comm has closed, the handle is dead: every call with it
 * returns COMMHOST_EHANDLE (logged).
 */
typedef struct commhost_comm commhost_comm;

/**
 * One client session (a stdio run, or one socket connection); a handle
 * token like commhost_comm. Valid from session_start until session_end
 * returns, and for as long as the plugin holds a reference (retain_session,
 * release_session); functions on an ended session return COMMHOST_ECLOSED.
 */
typedef struct commhost_session commhost_session;

/** A timer started with timer_start; 0 is never a timer. */
typedef uint64_t commhost_timer;

/**
 * A task run on a session's serialized context (post, timer_start).
 * `status` is COMMHOST_OK when the task runs; any other value is its last
 * call, telling it will not run again: COMMHOST_ECLOSED (its comm closed,
 * or its session ended or was handed off to a reloaded version; this call
 * comes before that comm's close callback or the session's session_end, so
 * the instance is still there) or COMMHOST_ECANCELED (timer_cancel). A post
 * and a one-shot timer get exactly one call; a repeating timer gets an OK
 * call per period and then exactly one last call. Free `data` in the last
 * call. [session-serialized]
 */
typedef void (*commhost_task_fn)(void *data, commhost_status status);

/** Receives bytes from a plugin (used by snapshot). */
typedef struct commhost_writer {
    /** sizeof(commhost_writer) as compiled by the host. */
    size_t struct_size;
    /**
     * Appends `len` bytes at `ptr` to what the writer holds; may be called
     * any number of times. `writer` is this struct. Returns COMMHOST_OK or
     * COMMHOST_ENOMEM. [callback-thread]
     */
    commhost_status (*write)(const struct commhost_writer *writer, const uint8_t *ptr, size_t len);
    /** The host's own; do not touch. */
    void *host_data;
    /** Added in 1.1 (test fixture): absent when struct_size is the 1.0 size. */
    uint64_t grown_1_1;
} commhost_writer;

/* ------------------------------------------------------------------------ */
/* The host function table                                                  */
/* ------------------------------------------------------------------------ */

/**
 * Functions the host offers the plugin: one table per loaded library,
 * passed to init, valid until deinit returns. Pass it back as `host` to
 * every function: it tells the host which library is calling, from any
 * thread. It only grows at the end: check COMMHOST_HAS_FIELD before calling
 * a field added after ABI 1.0.
 */
typedef struct commhost_host {
    /** sizeof(commhost_host) as compiled by the host. */
    size_t struct_size;
    /** The host's ABI major version. */
    uint16_t abi_major;
    /** The host's ABI minor version. */
    uint16_t abi_minor;
    /** Reserved, zero. */
    uint32_t reserved;
    /** The host's own; do not touch. */
    void *host_data;

    /**
     * Optional features by name and revision, "commhost.NAME/REV". Returns
     * a feature-specific table, or NULL when the host lacks the feature.
     * `id` is NUL-terminated. This host offers none yet. [any-thread]
     */
    const void *(*get_extension)(const struct commhost_host *host, const char *id);

    /** Writes one line to the host's log, labelled with the library's name. [any-thread] */
    void (*log)(const struct commhost_host *host, commhost_log_level level, commhost_str message);

    /**
     * Records the error text for the callback running on this thread; the
     * host reads it when that callback returns a non-zero status and
     * reports it with the status. The text is copied. [callback-thread]
     */
    void (*set_error)(const struct commhost_host *host, commhost_str message);

    /**
     * Sends a comm_msg to the client on `comm`. `message` may be NULL
     * (data `{}`); its data and metadata must be JSON objects or empty.
     * The frame leaves after everything issued before it in the comm's
     * session. Returns COMMHOST_OK, COMMHOST_ECLOSED, COMMHOST_EAGAIN
     * (backpressure: nothing was sent), COMMHOST_EJSON, COMMHOST_EINVAL,
     * COMMHOST_ELIMIT or COMMHOST_EHANDLE. [any-thread]
     */
    commhost_status (*send)(const struct commhost_host *host, commhost_comm *comm, const commhost_message *message);

    /**
     * Closes `comm`: sends comm_close with `message` (NULL or empty data
     * means `{}`) and runs the handler's close callback with cause
     * COMMHOST_CLOSE_PLUGIN on the session's serialized context (right after
     * the current callback when called from inside one). Never refused for
     * backpressure. A second close returns COMMHOST_ECLOSED. [any-thread]
     */
    commhost_status (*close)(const struct commhost_host *host, commhost_comm *comm, const commhost_message *message);

    /**
     * Opens a comm toward the client in `session`, served by this library's
     * handler named `handler_name`, with `instance` as its instance pointer
     * (that handler's close callback runs for it exactly once). A comm_open
     * frame with `target_name` (the client-side target, e.g.
     * "jupyter.widget") goes out before anything sent on the new comm.
     * `comm_id` may be empty: the host then generates 32 lowercase hex
     * digits. On success, when `out_comm` is not NULL, `*out_comm` is a
     * reference the plugin owns: give it back with release_comm. Returns
     * COMMHOST_OK, COMMHOST_ECLOSED (the session has ended or is ending:
     * nothing went out), COMMHOST_EAGAIN, COMMHOST_EEXISTS, COMMHOST_EJSON,
     * COMMHOST_EINVAL (no such handler, empty target_name),
     * COMMHOST_ELIMIT or COMMHOST_EHANDLE. [any-thread]
     */
    commhost_status (*open)(const struct commhost_host *host, commhost_session *session,
                            commhost_str handler_name, commhost_str target_name, commhost_str comm_id,
                            const commhost_message *message, void *instance, commhost_comm **out_comm);

    /** The comm's id (borrowed, valid while the handle is); empty for a bad handle. [any-thread] */
    commhost_str (*comm_id)(const struct commhost_host *host, commhost_comm *comm);

    /** The comm's target_name (borrowed, valid while the handle is); empty for a bad handle. [any-thread] */
    commhost_str (*target_name)(const struct commhost_host *host, commhost_comm *comm);

    /**
     * The session the comm belongs to (no reference is taken: it is valid
     * while the comm's handle is), or NULL for a bad handle. [any-thread]
     */
    commhost_session *(*comm_session)(const struct commhost_host *host, commhost_comm *comm);

    /** Takes a reference on `comm`. Returns COMMHOST_OK or COMMHOST_EHANDLE. [any-thread] */
    commhost_status (*retain_comm)(const struct commhost_host *host, commhost_comm *comm);

    /**
     * Gives back one reference taken with retain_comm or received from open.
     * Returns COMMHOST_OK, or COMMHOST_EHANDLE (logged) when the plugin holds
     * no reference on it. [any-thread]
     */
    commhost_status (*release_comm)(const struct commhost_host *host, commhost_comm *comm);

    /** The session's id as text, unique in this host process (borrowed, valid while the handle is). [any-thread] */
    commhost_str (*session_id)(const struct commhost_host *host, commhost_session *session);

    /** What this library's session_start stored for `session` (NULL if nothing, or a bad handle). [any-thread] */
    void *(*session_data)(const struct commhost_host *host, commhost_session *session);

    /** Takes a reference on `session`. Returns COMMHOST_OK or COMMHOST_EHANDLE. [any-thread] */
    commhost_status (*retain_session)(const struct commhost_host *host, commhost_session *session);

    /** Gives back a reference taken with retain_session; COMMHOST_EHANDLE (logged) when none is held. [any-thread] */
    commhost_status (*release_session)(const struct commhost_host *host, commhost_session *session);

    /**
     * Runs `fn(data, COMMHOST_OK)` on the serialized context of `comm` (when
     * not NULL) or else of `session`: after the callback running there now,
     * never concurrently with any call for that session. If the comm closes
     * or the session ends first, fn gets its one call with COMMHOST_ECLOSED
     * instead. When post returns anything but COMMHOST_OK, fn is never
     * called. Returns COMMHOST_OK, COMMHOST_ECLOSED, COMMHOST_EINVAL (no fn,
     * or neither comm nor session) or COMMHOST_EHANDLE. [any-thread]
     */
    commhost_status (*post)(const struct commhost_host *host, commhost_session *session, commhost_comm *comm,
                            commhost_task_fn fn, void *data);

    /**
     * Starts a timer on the serialized context of `comm` (when not NULL) or
     * else of `session`: `fn(data, COMMHOST_OK)` runs `delay_ms` from now
     * and then, when `period_ms` is not 0, every `period_ms` (a period is
     * skipped, not queued, while the previous run has not finished). The
     * last call of fn comes with COMMHOST_ECANCELED (timer_cancel) or
     * COMMHOST_ECLOSED (its comm closed: before the close callback; its
     * session ended: before session_end); a one-shot timer that ran has had
     * its last call. `*out_timer` (may be NULL) receives the timer. Returns
     * as post. [any-thread]
     */
    commhost_status (*timer_start)(const struct commhost_host *host, commhost_session *session, commhost_comm *comm,
                                   uint64_t delay_ms, uint64_t period_ms, commhost_task_fn fn, void *data,
                                   commhost_timer *out_timer);

    /**
     * Cancels a timer: it will not run again, and fn gets its last call
     * with COMMHOST_ECANCELED on the timer's context (right after the
     * current callback when called from there). Returns COMMHOST_OK, or
     * COMMHOST_EHANDLE when the timer is unknown or has had its last call.
     * [any-thread]
     */
    commhost_status (*timer_cancel)(const struct commhost_host *host, commhost_timer timer);

    /** Added in 1.1 (test fixture): absent when struct_size is the 1.0 size. */
    uint64_t grown_1_1;
} commhost_host;

/* ------------------------------------------------------------------------ */
/* Handlers                                                                 */
/* ------------------------------------------------------------------------ */

/**
 * One named handler: the open/msg/close logic for the comms of the targets
 * the manifest binds to it. Only `name` and `open` are required; the host
 * null-checks every other callback. Every callback receives this struct
 * (`handler`) as its context, so one function can serve many handlers.
 */
typedef struct commhost_handler {
    /** sizeof(commhost_handler) as compiled by the plugin. */
    size_t struct_size;

    /** The handler's name, NUL-terminated, unique within the library. */
    const char *name;

    /** The plugin's own context for this handler; the host never reads it. */
    void *handler_data;

    /**
     * A comm for this handler was opened by the client's comm_open.
     * `message` carries its data, metadata and buffers; `library` is what
     * init returned. On COMMHOST_OK, `*out_instance` is this comm's instance
     * pointer (may be NULL), passed to every later call for the comm. On
     * failure the host closes the comm toward the client and calls no other
     * callback for it (not even close). [session-serialized]
     */
    commhost_status (*open)(const struct commhost_handler *handler, void *library, commhost_comm *comm,
                            const commhost_message *message, void **out_instance);

    /**
     * The client sent a comm_msg. A failure is logged with its error text
     * and reported to the client as an error frame; the comm stays open.
     * Optional. [session-serialized]
     */
    commhost_status (*message)(const struct commhost_handler *handler, void *instance, commhost_comm *comm,
                               const commhost_message *message);

    /**
     * The comm is closed; runs exactly once per successfully opened (or
     * restored) instance, whatever the cause, and is where the instance is
     * freed. The comm's timers and posted tasks have had their last call
     * (COMMHOST_ECLOSED) before it. `message` is the client's comm_close
     * (COMMHOST_CLOSE_CLIENT) or the close the plugin sent
     * (COMMHOST_CLOSE_PLUGIN), else empty data. Host functions on `comm`
     * return COMMHOST_ECLOSED from here on. Optional. [session-serialized]
     */
    void (*close)(const struct commhost_handler *handler, void *instance, commhost_comm *comm,
                  const commhost_message *message, commhost_close_cause cause);

    /**
     * Hand-off for reload, on the old version: writes the instance's state
     * as bytes with `out->write(out, ptr, len)`. Optional; a handler without
     * both snapshot and restore (in the old or the new version) has its comms
     * closed (cause COMMHOST_CLOSE_RELOAD) on reload. The instance stays live
     * and belongs to this version: if the reload is abandoned it goes on
     * serving. If the hand-off succeeds the host makes no further call with
     * it: the old library frees it no later than its deinit (a C library:
     * keep a list of snapshotted instances and free them in deinit; a close
     * callback that comes for one of them means the reload was abandoned or
     * the comm was closed instead). The comm's timers and tasks of this
     * version get their last call (COMMHOST_ECLOSED) after the switch.
     * [session-serialized]
     */
    commhost_status (*snapshot)(const struct commhost_handler *handler, void *instance, commhost_comm *comm,
                                const commhost_writer *out);

    /**
     * Hand-off for reload, on the new version: builds an instance for an
     * already open `comm` from bytes a snapshot wrote, by the library version
     * `from_version` (the previous descriptor's `version` text), before
     * session_start(COMMHOST_SESSION_RESUMED) runs for the comm's session.
     * Migrate an old format here. Return COMMHOST_ESTATE for a format this
     * version cannot read: the host then closes that comm (the old
     * instance's close runs with COMMHOST_CLOSE_RELOAD, the client gets
     * {"reason":"reloaded"}) and the reload goes on, so the new code serves.
     * Any other failure abandons the whole reload (the old version keeps
     * serving everything) and the log says which comm and why.
     *
     * The round trip: only when `from_version` equals this library's own
     * version text, the host checks that this version's snapshot of the
     * restored instance equals the bytes it restored from, byte for byte,
     * and abandons the reload when it does not (a rebuild that changed the
     * state format without changing the version). When the versions differ
     * nothing is compared, so a migration may rewrite the state. `library`
     * is what this version's init returned. Optional. [session-serialized]
     */
    commhost_status (*restore)(const struct commhost_handler *handler, void *library, commhost_comm *comm,
                               commhost_str from_version, commhost_bytes state, void **out_instance);

    /** Added in 1.1 (test fixture): absent when struct_size is the 1.0 size. */
    uint64_t grown_1_1;
} commhost_handler;

/* ------------------------------------------------------------------------ */
/* The plugin descriptor                                                    */
/* ------------------------------------------------------------------------ */

/** Descriptor flag: callbacks of different sessions may run concurrently. */
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
    /** Library version text, NUL-terminated (e.g. "1.2.0"); restore receives the old one. */
    const char *version;

    /**
     * Called once after loading, before any other callback. `host` is this
     * library's table, valid until deinit returns. `config` is the JSON text
     * the manifest gives for this library (`null` when none).
     * `*out_library` (may be left NULL) is passed to open, restore, the
     * session callbacks and deinit. A failure (with set_error text) refuses
     * the library. Optional. [library-exclusive]
     */
    commhost_status (*init)(const commhost_host *host, commhost_str config, void **out_library);

    /**
     * Called once before the library is retired, after every comm of its
     * handlers has been closed or handed off and every session_end has run.
     * It must stop and join every thread the plugin started (and make sure
     * none is still returning from a host call): once it returns, a library
     * without Swift code may be unmapped (on a reload or a manifest change).
     * At shutdown the host runs deinit too, but never unmaps a library at
     * process exit. Optional. [library-exclusive]
     */
    void (*deinit)(void *library);

    /** The handlers: `handler_count` pointers to descriptors. */
    const commhost_handler *const *handlers;
    /** Number of entries in `handlers` (at least 1). */
    size_t handler_count;

    /**
     * This library begins serving `session`: for every session the host
     * starts while the library is loaded, and for every running session when
     * the library is loaded into a running host (cause
     * COMMHOST_SESSION_STARTED), or takes over from its previous version
     * (COMMHOST_SESSION_RESUMED). Before any comm of the session reaches
     * this library. `*out_session_data` (starts NULL) is kept for the
     * session (session_data) and given to session_end. Open the session's
     * first comms from here (host open). A failure is logged; session_end
     * still runs. Optional. [session-serialized]
     */
    commhost_status (*session_start)(void *library, commhost_session *session, commhost_session_cause cause,
                                     void **out_session_data);

    /**
     * This library stops serving `session`: exactly once per session_start,
     * after every comm of the session served by this library has closed (or
     * was handed off) and the session's timers and tasks of this library
     * have had their last call. Host open in this session returns
     * COMMHOST_ECLOSED from the moment the session begins to end. Free the
     * session data here. Optional. [session-serialized]
     */
    void (*session_end)(void *library, commhost_session *session, void *session_data,
                        commhost_session_cause cause);

    /**
     * Backpressure is over: a send or open of this library in `session`
     * returned COMMHOST_EAGAIN, and the client has since taken the outbound
     * queue down to half the high-water mark. Runs once per such episode.
     * Optional. [session-serialized]
     */
    void (*session_writable)(void *library, commhost_session *session, void *session_data);

    /** Added in 1.1 (test fixture): absent when struct_size is the 1.0 size. */
    uint64_t grown_1_1;
} commhost_plugin;

/**
 * The one exported entry function, named COMMHOST_ENTRY_SYMBOL. Returns the
 * descriptor, or NULL when the library cannot run at all. Must not call any
 * host function. [library-exclusive]
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
#define COMMHOST_P_ sizeof(void *)
COMMHOST_STATIC_ASSERT(sizeof(size_t) == COMMHOST_P_, "size_t and pointers have one size");
COMMHOST_STATIC_ASSERT(offsetof(commhost_str, len) == COMMHOST_P_, "commhost_str layout");
COMMHOST_STATIC_ASSERT(sizeof(commhost_str) == 2 * COMMHOST_P_, "commhost_str size");
COMMHOST_STATIC_ASSERT(sizeof(commhost_bytes) == 2 * COMMHOST_P_, "commhost_bytes size");
COMMHOST_STATIC_ASSERT(offsetof(commhost_message, data) == COMMHOST_P_, "commhost_message.data");
COMMHOST_STATIC_ASSERT(offsetof(commhost_message, buffer_count) == 6 * COMMHOST_P_, "commhost_message.buffer_count");
COMMHOST_STATIC_ASSERT(sizeof(commhost_close_cause) == 4 && sizeof(commhost_session_cause) == 4
                       && sizeof(commhost_log_level) == 4, "enumerations are 32-bit");
COMMHOST_STATIC_ASSERT(offsetof(commhost_writer, write) == COMMHOST_P_, "commhost_writer.write");
COMMHOST_STATIC_ASSERT(offsetof(commhost_host, abi_major) == COMMHOST_P_, "commhost_host.abi_major");
COMMHOST_STATIC_ASSERT(offsetof(commhost_host, host_data) == COMMHOST_P_ + 8, "commhost_host.host_data");
COMMHOST_STATIC_ASSERT(offsetof(commhost_host, get_extension) == 2 * COMMHOST_P_ + 8, "commhost_host.get_extension");
COMMHOST_STATIC_ASSERT(offsetof(commhost_host, timer_cancel) == 19 * COMMHOST_P_ + 8, "commhost_host.timer_cancel");
COMMHOST_STATIC_ASSERT(offsetof(commhost_handler, name) == COMMHOST_P_, "commhost_handler.name");
COMMHOST_STATIC_ASSERT(offsetof(commhost_handler, open) == 3 * COMMHOST_P_, "commhost_handler.open");
COMMHOST_STATIC_ASSERT(offsetof(commhost_handler, restore) == 7 * COMMHOST_P_, "commhost_handler.restore");
COMMHOST_STATIC_ASSERT(offsetof(commhost_plugin, abi_major) == COMMHOST_P_, "commhost_plugin.abi_major");
COMMHOST_STATIC_ASSERT(offsetof(commhost_plugin, name) == COMMHOST_P_ + 8, "commhost_plugin.name");
COMMHOST_STATIC_ASSERT(offsetof(commhost_plugin, handler_count) == 6 * COMMHOST_P_ + 8, "commhost_plugin.handler_count");
COMMHOST_STATIC_ASSERT(offsetof(commhost_plugin, session_writable) == 9 * COMMHOST_P_ + 8, "commhost_plugin.session_writable");

/* The ABI 1.0 sizes: the smallest struct_size the host accepts from a
   plugin (and the plugin may expect from the host) for each versioned struct. */
#define COMMHOST_MESSAGE_SIZE_1_0 (7 * COMMHOST_P_)
#define COMMHOST_HANDLER_SIZE_1_0 (8 * COMMHOST_P_)
#define COMMHOST_PLUGIN_SIZE_1_0 (10 * COMMHOST_P_ + 8)
#define COMMHOST_HOST_SIZE_1_0 (20 * COMMHOST_P_ + 8)
#define COMMHOST_WRITER_SIZE_1_0 (3 * COMMHOST_P_)
COMMHOST_STATIC_ASSERT(sizeof(commhost_message) >= COMMHOST_MESSAGE_SIZE_1_0 && sizeof(commhost_handler) >= COMMHOST_HANDLER_SIZE_1_0
                       && sizeof(commhost_plugin) >= COMMHOST_PLUGIN_SIZE_1_0 && sizeof(commhost_host) >= COMMHOST_HOST_SIZE_1_0
                       && sizeof(commhost_writer) >= COMMHOST_WRITER_SIZE_1_0, "structs only grow");
/* 1.1 (test fixture): each new field sits right after the 1.0 end of its struct. */
COMMHOST_STATIC_ASSERT(offsetof(commhost_message, grown_1_1) == COMMHOST_MESSAGE_SIZE_1_0, "commhost_message.grown_1_1");
COMMHOST_STATIC_ASSERT(offsetof(commhost_writer, grown_1_1) == COMMHOST_WRITER_SIZE_1_0, "commhost_writer.grown_1_1");
COMMHOST_STATIC_ASSERT(offsetof(commhost_host, grown_1_1) == COMMHOST_HOST_SIZE_1_0, "commhost_host.grown_1_1");
COMMHOST_STATIC_ASSERT(offsetof(commhost_handler, grown_1_1) == COMMHOST_HANDLER_SIZE_1_0, "commhost_handler.grown_1_1");
COMMHOST_STATIC_ASSERT(offsetof(commhost_plugin, grown_1_1) == COMMHOST_PLUGIN_SIZE_1_0, "commhost_plugin.grown_1_1");

#ifdef __cplusplus
}
#endif

#endif /* COMMHOST_COMM_PLUGIN_H */
