//! Every symbol the agent calls, and nothing else.
//!
//! Each export converts its raw arguments with the null-safe helpers below, calls a safe
//! `fn -> Result`, maps the outcome to the agent's status codes in [`status`], and runs inside
//! [`guard`] so that no panic ever unwinds into the agent's C code.

use std::borrow::Cow;
use std::ffi::{CStr, c_char, c_int, c_void};
use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};

use anyhow::{Result, anyhow, bail};

use crate::agent::abi::{
    FLB_EVENT_TYPE_LOGS, FLB_EVENT_TYPE_METRICS, FLB_EVENT_TYPE_TRACES, FLB_PROXY_GOLANG, FLB_PROXY_OUTPUT_PLUGIN,
    FlbPluginProxyDef, FlbPluginProxyDefEventType, FlbgoOutputPlugin,
};
use crate::agent::handle::Agent;
use crate::agent::logger::Logger;
use crate::agent::profile::AgentProfile;
use crate::lifecycle::output::{FlushStatus, OutputInstance};
use crate::plugin::registry::{self, InstancePtr};

/// The name users write in `[OUTPUT] Name wasm`.
const PLUGIN_NAME: &CStr = c"wasm";
const PLUGIN_DESCRIPTION: &CStr = c"Runs output plugins written as WebAssembly components";

/// The agent's status codes, chosen in one place.
mod status {
    use std::ffi::c_int;

    use crate::agent::abi::{FLB_ERROR, FLB_OK, FLB_RETRY};
    use crate::lifecycle::output::FlushStatus;

    pub const REGISTERED: c_int = 0;
    pub const REGISTER_FAILED: c_int = -1;
    /// Any value <= 0 fails the instance and the agent refuses to start.
    pub const INIT_FAILED: c_int = FLB_ERROR;
    pub const INIT_OK: c_int = FLB_OK;
    pub const EXIT_OK: c_int = FLB_OK;
    pub const EXIT_FAILED: c_int = FLB_ERROR;

    pub fn flush(status: FlushStatus) -> c_int {
        match status {
            FlushStatus::Ok => FLB_OK,
            FlushStatus::Retry => FLB_RETRY,
            FlushStatus::Error => FLB_ERROR,
        }
    }

    /// A panic in the flush path: the chunk is kept (retried), the agent lives on.
    pub const FLUSH_PANICKED: c_int = FLB_RETRY;
}

/// Runs `body`; a panic becomes `on_panic` and one line on stderr, never an unwind into C.
fn guard<T>(symbol: &str, on_panic: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|payload| {
        // Outside `catch_unwind` nothing may panic: `eprintln!` does when stderr is closed or
        // full, so the line is written with its failure ignored, and the payload is dropped
        // inside a guard of its own (a payload's destructor may panic too).
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic".to_owned());
        let _ = catch_unwind(AssertUnwindSafe(move || drop(payload)));
        let _ = writeln!(std::io::stderr(), "[out_wasm] internal error: panic in {symbol}: {what}");
        on_panic
    })
}

/// Borrows a pointer the agent passed, refusing NULL.
///
/// # Safety
/// A non-NULL `ptr` must be valid for `'a` and not aliased mutably elsewhere during it.
unsafe fn non_null_mut<'a, T>(ptr: *mut T, what: &str) -> Result<&'a mut T> {
    // SAFETY: caller's contract.
    unsafe { ptr.as_mut() }.ok_or_else(|| anyhow!("the agent passed a NULL {what}"))
}

/// The chunk bytes; NULL is accepted only with size 0.
///
/// # Safety
/// A non-NULL `data` must point to `size` readable bytes valid for `'a`.
unsafe fn chunk<'a>(data: *const c_void, size: usize) -> Result<&'a [u8]> {
    if data.is_null() {
        if size != 0 {
            bail!("the agent passed a NULL chunk of {size} bytes");
        }
        return Ok(&[]);
    }
    // SAFETY: caller's contract.
    Ok(unsafe { std::slice::from_raw_parts(data.cast::<u8>(), size) })
}

/// The tag as UTF-8 (invalid bytes replaced); NULL is the empty tag.
///
/// # Safety
/// A non-NULL `tag` must be a NUL-terminated string valid for `'a`.
unsafe fn tag<'a>(tag: *const c_char) -> Cow<'a, str> {
    if tag.is_null() {
        return Cow::Borrowed("");
    }
    // SAFETY: caller's contract.
    unsafe { CStr::from_ptr(tag) }.to_string_lossy()
}

/// Optional; called before Register. Nothing to prepare: every load starts from scratch.
#[unsafe(no_mangle)]
pub extern "C" fn FLBPluginPreRegister(_hot_reloading: c_int) -> c_int {
    0
}

/// Describes the plugin: an output named `wasm`, taking logs, metrics and traces where the
/// agent lets a plugin say so, any config key.
///
/// # Safety
/// `def` is NULL or points to the agent's writable `flb_plugin_proxy_def`, of the size the agent
/// that loaded the plugin allocates (see [`crate::agent::profile`]).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn FLBPluginRegister(def: *mut FlbPluginProxyDef) -> c_int {
    guard("FLBPluginRegister", status::REGISTER_FAILED, || {
        if def.is_null() {
            eprintln!("[out_wasm] failed to register: the agent passed a NULL plugin definition");
            return status::REGISTER_FAILED;
        }
        let profile = AgentProfile::detect();
        // SAFETY: the agent's definition is valid, writable and ours alone during this call;
        // `profile` says which of its layouts the agent allocated.
        unsafe { register(def, profile) };
        status::REGISTERED
    })
}

/// # Safety
/// `def` is non-NULL and points to the agent's writable definition, at least as large as
/// `profile` says.
unsafe fn register(def: *mut FlbPluginProxyDef, profile: AgentProfile) {
    // SAFETY: every supported agent's definition starts with these fields (caller's contract).
    let base = unsafe { &mut *def };
    base.type_ = FLB_PROXY_OUTPUT_PLUGIN;
    base.proxy = FLB_PROXY_GOLANG;
    base.flags = 0;
    // The agent copies neither string; both are static, and the library is never unmapped.
    base.name = PLUGIN_NAME.as_ptr().cast_mut();
    base.description = PLUGIN_DESCRIPTION.as_ptr().cast_mut();
    if profile.has_event_types() {
        // SAFETY: the profile proved this agent allocates the definition with `event_type`
        // right after the prefix (the caller's contract); nothing else refers to it now.
        let def = unsafe { &mut *def.cast::<FlbPluginProxyDefEventType>() };
        // Every type: the event type is the plugin's, set once, before any guest is known.
        // Each instance answers the chunks its guest does not accept itself
        // (`OutputInstance::flush`).
        def.event_type = FLB_EVENT_TYPE_LOGS | FLB_EVENT_TYPE_METRICS | FLB_EVENT_TYPE_TRACES;
    }
    // `config_map` (5.1.1 on) stays as the agent zeroed it: NULL, so it passes every key.
    registry::on_register(profile);
}

/// Starts one `[OUTPUT] Name wasm` instance. Returns FLB_OK, or FLB_ERROR after logging why
/// (the agent then refuses to start).
///
/// # Safety
/// `plugin` is NULL or the agent's `flbgo_output_plugin` for this instance, with a valid API
/// table, instance handle and proxy context.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn FLBPluginInit(plugin: *mut FlbgoOutputPlugin) -> c_int {
    guard("FLBPluginInit", status::INIT_FAILED, || {
        // SAFETY: the agent's plugin struct is valid and ours alone during this call.
        let outcome = unsafe { non_null_mut(plugin, "plugin") }.and_then(init);
        match outcome {
            Ok(()) => status::INIT_OK,
            Err(err) => {
                // Instance-level failures were logged through the agent already.
                if err.downcast_ref::<Logged>().is_none() {
                    eprintln!("[out_wasm] failed to initialize an instance: {err:#}");
                }
                status::INIT_FAILED
            }
        }
    })
}

/// Marks an error already written to the agent's log.
#[derive(Debug)]
struct Logged;

impl std::fmt::Display for Logged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("logged")
    }
}

fn init(plugin: &mut FlbgoOutputPlugin) -> Result<()> {
    if plugin.api.is_null() {
        bail!("the agent passed a NULL API table");
    }
    // SAFETY: the agent's proxy context of this instance, valid until its exit call.
    let context = unsafe { non_null_mut(plugin.context, "proxy context") }?;
    // SAFETY: `api` and `o_ins` are this instance's, valid until its exit call (lib.rs).
    let agent = unsafe { Agent::new(plugin.api, plugin.o_ins) };
    // The agent's own name where it tells it, so logs and metrics match its per-output ones.
    let name = agent.output_name().unwrap_or_else(registry::next_name);
    let logger = Logger::new(agent, &name);
    // Said once per configuration, by its first instance: the agent's log exists from Init on.
    let profile = registry::announce();
    if let Some(profile) = profile {
        logger.info(&profile.describe());
    }
    let instance = match OutputInstance::init(&agent, logger.clone(), &name, registry::profile()) {
        Ok(instance) => instance,
        Err(err) => {
            logger.error(&format!("{err:#}"));
            return Err(err.context(Logged));
        }
    };
    let instance = Box::into_raw(Box::new(instance));
    registry::add(InstancePtr(instance));
    context.remote_context = instance.cast();
    Ok(())
}

/// Delivers one chunk to the instance `remote_ctx`. Returns FLB_OK, FLB_RETRY or FLB_ERROR.
///
/// # Safety
/// `remote_ctx` is what Init stored for a live instance; `data` points to `size` bytes (or is
/// NULL with `size` 0) and `tag` is NULL or a NUL-terminated string, both valid for the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn FLBPluginFlushCtx(
    remote_ctx: *mut c_void,
    data: *const c_void,
    size: usize,
    tag: *const c_char,
) -> c_int {
    guard("FLBPluginFlushCtx", status::FLUSH_PANICKED, || {
        // SAFETY: the agent's contract above; flushes only share the instance (`&`).
        let outcome = unsafe { instance(remote_ctx) }.and_then(|instance| unsafe { flush(instance, data, size, tag) });
        match outcome {
            Ok(flushed) => status::flush(flushed),
            Err(err) => {
                eprintln!("[out_wasm] flush refused: {err:#}");
                status::flush(FlushStatus::Error)
            }
        }
    })
}

/// Legacy flush without a context, for agents that predate FlushCtx: valid only while exactly
/// one instance is live, since nothing says which instance the chunk is for.
///
/// # Safety
/// As [`FLBPluginFlushCtx`], without the context.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn FLBPluginFlush(data: *const c_void, size: usize, tag: *const c_char) -> c_int {
    guard("FLBPluginFlush", status::FLUSH_PANICKED, || match registry::lease_only() {
        // SAFETY: the lease keeps the instance from being freed (an exit waits for it to end);
        // data and tag as documented.
        Ok(lease) => match unsafe { flush(&*lease.instance().0, data, size, tag) } {
            Ok(flushed) => status::flush(flushed),
            Err(err) => {
                eprintln!("[out_wasm] flush refused: {err:#}");
                status::flush(FlushStatus::Error)
            }
        },
        Err(live) => {
            eprintln!(
                "[out_wasm] the agent called the legacy FLBPluginFlush with {live} live instances; \
                 it cannot say which one the chunk is for, so the chunk is refused"
            );
            status::flush(FlushStatus::Error)
        }
    })
}

/// # Safety
/// `remote_ctx` is NULL or a live instance stored by Init.
unsafe fn instance<'a>(remote_ctx: *mut c_void) -> Result<&'a OutputInstance> {
    // SAFETY: caller's contract; flushes only take shared references.
    unsafe { remote_ctx.cast::<OutputInstance>().as_ref() }
        .ok_or_else(|| anyhow!("the agent passed a NULL instance context"))
}

/// # Safety
/// `data`/`size` and `tag` as in [`FLBPluginFlushCtx`].
unsafe fn flush(
    instance: &OutputInstance,
    data: *const c_void,
    size: usize,
    tag_ptr: *const c_char,
) -> Result<FlushStatus> {
    // SAFETY: caller's contract: both are valid for this call.
    let (chunk, tag) = unsafe { (chunk(data, size)?, tag(tag_ptr)) };
    Ok(instance.flush(&tag, chunk))
}

/// Stops the instance `remote_ctx`: every guest instance gets its exit call, every worker
/// thread ends, and the context is freed. A NULL context is an instance whose Init never ran or
/// failed (the agent stops every output when anything of its start fails, an input's listen
/// address, another output's init): nothing to stop, and nothing to say, since the agent has
/// already said what failed.
///
/// # Safety
/// `remote_ctx` is NULL or what Init stored for a live instance, with no flush of it running,
/// and is not used again by the agent.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn FLBPluginExitCtx(remote_ctx: *mut c_void) -> c_int {
    if remote_ctx.is_null() {
        return status::EXIT_OK;
    }
    guard("FLBPluginExitCtx", status::EXIT_FAILED, || match exit(InstancePtr(remote_ctx.cast())) {
        Ok(()) => status::EXIT_OK,
        Err(err) => {
            eprintln!("[out_wasm] exit refused: {err:#}");
            status::EXIT_FAILED
        }
    })
}

/// Legacy exit without a context: stops the oldest live instance, the order the agent exits
/// instances in.
#[unsafe(no_mangle)]
pub extern "C" fn FLBPluginExit() -> c_int {
    guard("FLBPluginExit", status::EXIT_FAILED, || match registry::live().first() {
        Some(oldest) => match exit(*oldest) {
            Ok(()) => status::EXIT_OK,
            Err(err) => {
                eprintln!("[out_wasm] exit refused: {err:#}");
                status::EXIT_FAILED
            }
        },
        None => status::EXIT_OK,
    })
}

fn exit(instance: InstancePtr) -> Result<()> {
    if instance.0.is_null() {
        bail!("the agent passed a NULL instance context");
    }
    // Only a pointer Init made and nobody exited yet is taken back; anything else is refused
    // rather than freed twice.
    if !registry::remove(instance) {
        bail!("the agent passed an instance context that is not live");
    }
    // SAFETY: Init made this pointer with Box::into_raw, the registry proved it was not taken
    // back yet, and the agent no longer uses it (contract of FLBPluginExitCtx).
    let instance = unsafe { Box::from_raw(instance.0) };
    instance.exit();
    Ok(())
}

/// Optional; called once before the agent dlclose()s the library. Instances have all exited by
/// now (their threads are joined in exit), so there is nothing left to stop.
///
/// # Safety
/// `def` is NULL or the definition Register filled.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn FLBPluginUnregister(_def: *mut FlbPluginProxyDef) {
    guard("FLBPluginUnregister", (), || {
        let live = registry::live().len();
        if live > 0 {
            // The agent's hot reload unregisters the old configuration while the new one's
            // instances may already run; they are untouched.
            eprintln!("[out_wasm] unregistered with {live} instance(s) still live; they keep running");
        }
    })
}
