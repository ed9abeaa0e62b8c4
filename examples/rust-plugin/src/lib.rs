//! tally: a commhost plugin in Rust, with no crates. The ABI structs of
//! `Sources/CommPluginAPI/include/comm_plugin.h` (ABI 1.0) are declared here
//! by hand, `#[repr(C)]`, in the header's order, with its ABI 1.0 sizes
//! checked at compile time. It builds with Debian 12's rustc (1.63) too.
//!
//! Handler "tally" keeps a count per comm: every `comm_msg` adds one and is
//! answered with `{"count":N,"got":DATA}`, DATA being the message's own
//! `data` (JSON the host has validated, embedded as it came). A `data` of
//! `{"fail":true}` is refused with COMMHOST_EINVAL and an error text. The
//! instance is a `Box<u64>`, freed in close. No panic may cross the C
//! boundary: the crate is built with `panic = "abort"`, and nothing here
//! unwraps.

use std::mem::size_of;
use std::os::raw::{c_char, c_void};
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};

type Status = i32;
const OK: Status = 0;
const EINVAL: Status = -2;

#[repr(C)]
#[derive(Clone, Copy)]
pub struct Str {
    ptr: *const c_char,
    len: usize,
}

#[repr(C)]
pub struct Bytes {
    ptr: *const u8,
    len: usize,
}

#[repr(C)]
pub struct Message {
    struct_size: usize,
    data: Str,
    metadata: Str,
    buffers: *const Bytes,
    buffer_count: usize,
}

/// Opaque handles: the host's `commhost_comm` and `commhost_session`.
#[repr(C)]
pub struct Comm {
    _private: [u8; 0],
}
#[repr(C)]
pub struct Session {
    _private: [u8; 0],
}

type TaskFn = extern "C" fn(data: *mut c_void, status: Status);

#[repr(C)]
pub struct Writer {
    struct_size: usize,
    write: Option<extern "C" fn(*const Writer, *const u8, usize) -> Status>,
    host_data: *mut c_void,
}

/// `commhost_host`: the host's functions, in the header's order.
#[repr(C)]
pub struct Host {
    struct_size: usize,
    abi_major: u16,
    abi_minor: u16,
    reserved: u32,
    host_data: *mut c_void,
    get_extension: Option<extern "C" fn(*const Host, *const c_char) -> *const c_void>,
    log: Option<extern "C" fn(*const Host, i32, Str)>,
    set_error: Option<extern "C" fn(*const Host, Str)>,
    send: Option<extern "C" fn(*const Host, *mut Comm, *const Message) -> Status>,
    close: Option<extern "C" fn(*const Host, *mut Comm, *const Message) -> Status>,
    open: Option<extern "C" fn(*const Host, *mut Session, Str, Str, Str, *const Message, *mut c_void, *mut *mut Comm) -> Status>,
    comm_id: Option<extern "C" fn(*const Host, *mut Comm) -> Str>,
    target_name: Option<extern "C" fn(*const Host, *mut Comm) -> Str>,
    comm_session: Option<extern "C" fn(*const Host, *mut Comm) -> *mut Session>,
    retain_comm: Option<extern "C" fn(*const Host, *mut Comm) -> Status>,
    release_comm: Option<extern "C" fn(*const Host, *mut Comm) -> Status>,
    session_id: Option<extern "C" fn(*const Host, *mut Session) -> Str>,
    session_data: Option<extern "C" fn(*const Host, *mut Session) -> *mut c_void>,
    retain_session: Option<extern "C" fn(*const Host, *mut Session) -> Status>,
    release_session: Option<extern "C" fn(*const Host, *mut Session) -> Status>,
    post: Option<extern "C" fn(*const Host, *mut Session, *mut Comm, TaskFn, *mut c_void) -> Status>,
    timer_start: Option<extern "C" fn(*const Host, *mut Session, *mut Comm, u64, u64, TaskFn, *mut c_void, *mut u64) -> Status>,
    timer_cancel: Option<extern "C" fn(*const Host, u64) -> Status>,
}

#[repr(C)]
pub struct Handler {
    struct_size: usize,
    name: *const c_char,
    handler_data: *mut c_void,
    open: Option<extern "C" fn(*const Handler, *mut c_void, *mut Comm, *const Message, *mut *mut c_void) -> Status>,
    message: Option<extern "C" fn(*const Handler, *mut c_void, *mut Comm, *const Message) -> Status>,
    close: Option<extern "C" fn(*const Handler, *mut c_void, *mut Comm, *const Message, i32)>,
    snapshot: Option<extern "C" fn(*const Handler, *mut c_void, *mut Comm, *const Writer) -> Status>,
    restore: Option<extern "C" fn(*const Handler, *mut c_void, *mut Comm, Str, Bytes, *mut *mut c_void) -> Status>,
}

#[repr(C)]
pub struct Plugin {
    struct_size: usize,
    abi_major: u16,
    abi_minor: u16,
    flags: u32,
    name: *const c_char,
    version: *const c_char,
    init: Option<extern "C" fn(*const Host, Str, *mut *mut c_void) -> Status>,
    deinit: Option<extern "C" fn(*mut c_void)>,
    handlers: *const *const Handler,
    handler_count: usize,
    session_start: Option<extern "C" fn(*mut c_void, *mut Session, i32, *mut *mut c_void) -> Status>,
    session_end: Option<extern "C" fn(*mut c_void, *mut Session, *mut c_void, i32)>,
    session_writable: Option<extern "C" fn(*mut c_void, *mut Session, *mut c_void)>,
}

// The header's ABI 1.0 sizes (COMMHOST_*_SIZE_1_0), checked when the crate
// compiles: with every field declared in the header's order, a wrong type
// or a missing field changes a size.
const P: usize = size_of::<usize>();
const _: () = assert!(size_of::<Str>() == 2 * P && size_of::<Bytes>() == 2 * P);
const _: () = assert!(size_of::<Message>() == 7 * P);
const _: () = assert!(size_of::<Writer>() == 3 * P);
const _: () = assert!(size_of::<Host>() == 20 * P + 8);
const _: () = assert!(size_of::<Handler>() == 8 * P);
const _: () = assert!(size_of::<Plugin>() == 10 * P + 8);

/// The host table init received (valid until the library is unloaded).
static HOST: AtomicPtr<Host> = AtomicPtr::new(ptr::null_mut());

fn host() -> Option<&'static Host> {
    // SAFETY: the host keeps its table alive for as long as the library is loaded.
    unsafe { HOST.load(Ordering::Acquire).as_ref() }
}

fn str_of(text: &[u8]) -> Str {
    Str { ptr: text.as_ptr().cast(), len: text.len() }
}

/// The bytes of a borrowed slice (valid during the call only).
fn bytes_of<'a>(slice: Str) -> &'a [u8] {
    if slice.ptr.is_null() || slice.len == 0 {
        return &[];
    }
    // SAFETY: the host passes (ptr, len) of readable bytes, valid during the call.
    unsafe { std::slice::from_raw_parts(slice.ptr.cast(), slice.len) }
}

extern "C" fn tally_init(host: *const Host, _config: Str, out_library: *mut *mut c_void) -> Status {
    HOST.store(host.cast_mut(), Ordering::Release);
    // SAFETY: the host passes a valid pointer to write the library pointer to.
    unsafe { *out_library = ptr::null_mut() };
    OK
}

extern "C" fn tally_open(_handler: *const Handler, _library: *mut c_void, _comm: *mut Comm, _message: *const Message,
                         out_instance: *mut *mut c_void) -> Status {
    // SAFETY: as above; the box is freed in close.
    unsafe { *out_instance = Box::into_raw(Box::new(0u64)).cast() };
    OK
}

extern "C" fn tally_message(_handler: *const Handler, instance: *mut c_void, comm: *mut Comm, message: *const Message) -> Status {
    let host = match host() {
        Some(host) => host,
        None => return EINVAL,
    };
    // SAFETY: the host passes the instance open returned, and a message valid during the call.
    let (count, message) = unsafe { (&mut *instance.cast::<u64>(), &*message) };
    let data = bytes_of(message.data);
    if data.windows(11).any(|w| w == b"\"fail\":true") {
        if let Some(set_error) = host.set_error {
            set_error(host, str_of(b"tally refuses {\"fail\":true}"));
        }
        return EINVAL;
    }
    *count += 1;
    let mut reply = format!("{{\"count\":{},\"got\":", count).into_bytes();
    reply.extend_from_slice(if data.is_empty() { b"{}" } else { data });
    reply.push(b'}');
    let out = Message { struct_size: size_of::<Message>(), data: str_of(&reply), metadata: str_of(b""), buffers: ptr::null(), buffer_count: 0 };
    match host.send {
        Some(send) => send(host, comm, &out),
        None => EINVAL,
    }
}

extern "C" fn tally_close(_handler: *const Handler, instance: *mut c_void, _comm: *mut Comm, _message: *const Message, _cause: i32) {
    if !instance.is_null() {
        // SAFETY: the Box open made; close runs exactly once per opened comm.
        drop(unsafe { Box::from_raw(instance.cast::<u64>()) });
    }
}

/// A static table the host only reads.
struct Shared<T>(T);
// SAFETY: the tables hold pointers to constants and functions, never written.
unsafe impl<T> Sync for Shared<T> {}

static TALLY: Shared<Handler> = Shared(Handler {
    struct_size: size_of::<Handler>(),
    name: b"tally\0".as_ptr() as *const c_char,
    handler_data: ptr::null_mut(),
    open: Some(tally_open),
    message: Some(tally_message),
    close: Some(tally_close),
    snapshot: None,
    restore: None,
});

static HANDLERS: Shared<[*const Handler; 1]> = Shared([&TALLY.0 as *const Handler]);

static PLUGIN: Shared<Plugin> = Shared(Plugin {
    struct_size: size_of::<Plugin>(),
    abi_major: 1,
    abi_minor: 0,
    flags: 0,
    name: b"tally\0".as_ptr() as *const c_char,
    version: b"1.0.0\0".as_ptr() as *const c_char,
    init: Some(tally_init),
    deinit: None,
    handlers: &HANDLERS.0 as *const [*const Handler; 1] as *const *const Handler,
    handler_count: 1,
    session_start: None,
    session_end: None,
    session_writable: None,
});

/// The entry the host looks up (`COMMHOST_ENTRY_SYMBOL`).
#[no_mangle]
pub extern "C" fn commhost_plugin_entry() -> *const Plugin {
    &PLUGIN.0
}
