//! The agent's side of one output instance: its API table and instance handle.

use std::ffi::{CStr, CString, c_int, c_void};

use crate::agent::abi::FlbApi;
use crate::agent::cmetrics;
use crate::agent::symbols::AgentSymbols;
use crate::log::Level;

/// The agent's API table plus the `o_ins` handle of one output instance.
///
/// Only used on threads the agent calls us on (init, flush and exit), never on the plugin's
/// own worker threads: the agent's log routes messages through per-thread state it sets up.
#[derive(Clone, Copy)]
pub struct Agent {
    api: *const FlbApi,
    o_ins: *mut c_void,
    symbols: AgentSymbols,
}

// SAFETY: both pointers stay valid from FLBPluginInit until the instance's exit call returns
// (the agent owns them for the instance's whole life) and the agent's API functions may be
// called from any of its threads; the instance that holds an `Agent` is dropped in ExitCtx.
unsafe impl Send for Agent {}
// SAFETY: as above; every call is a read of agent-owned state or a log write, which the agent
// serialises itself.
unsafe impl Sync for Agent {}

impl Agent {
    /// # Safety
    /// `api` must point to the agent's API table and `o_ins` be the instance handle passed to
    /// the same FLBPluginInit call; both must outlive the returned value.
    pub unsafe fn new(api: *const FlbApi, o_ins: *mut c_void) -> Self {
        Self { api, o_ins, symbols: AgentSymbols::resolve() }
    }

    fn api(&self) -> &FlbApi {
        // SAFETY: `new`'s contract: the table outlives `self`.
        unsafe { &*self.api }
    }

    /// The value of `key` in the instance's `[OUTPUT]` section (case-insensitive), if set.
    pub fn property(&self, key: &str) -> Option<String> {
        let get = self.api().output_get_property?;
        let key = CString::new(key).ok()?;
        // SAFETY: `key` is a NUL-terminated string alive for the call; `o_ins` is the
        // instance handle the agent gave us (see `new`).
        let value = unsafe { get(key.as_ptr(), self.o_ins) };
        if value.is_null() {
            return None;
        }
        // SAFETY: a non-NULL result is a NUL-terminated string owned by the instance's property
        // list, alive at least until the next call on this instance; we copy it out at once.
        let value = unsafe { CStr::from_ptr(value) };
        Some(value.to_string_lossy().into_owned())
    }

    /// The most verbose level the instance's `log_level` lets through.
    pub fn max_level(&self) -> Level {
        let Some(check) = self.api().output_log_check else {
            return Level::Info;
        };
        Level::ALL
            .iter()
            .rev()
            .copied()
            // SAFETY: `o_ins` is the instance handle the agent gave us (see `new`).
            .find(|level| unsafe { check(self.o_ins, level.as_flb()) } != 0)
            .unwrap_or(Level::Error)
    }

    /// Writes one line to the agent's log. `message` is passed as data, never as a format.
    pub fn print(&self, level: Level, message: &str) {
        let Some(print) = self.api().log_print else {
            return;
        };
        let message = CString::new(message.replace('\0', "\\0")).expect("interior NULs were replaced");
        // SAFETY: a constant "%s" format with exactly one NUL-terminated string argument; the
        // file name is a static C string.
        unsafe { print(level.as_flb(), c"out_wasm".as_ptr(), 0 as c_int, c"%s".as_ptr(), message.as_ptr()) };
    }

    /// The agent's name of the instance (its `alias`, or `<plugin>.<id>` counting every
    /// output), if the agent exports `flb_output_name`.
    pub fn output_name(&self) -> Option<String> {
        let name_of = self.symbols.output_name?;
        // SAFETY: `o_ins` is the instance handle the agent gave us (see `new`).
        let name = unsafe { name_of(self.o_ins) };
        if name.is_null() {
            return None;
        }
        // SAFETY: a non-NULL result is a NUL-terminated string owned by the instance; copied
        // out at once.
        let name = unsafe { CStr::from_ptr(name) }.to_string_lossy().into_owned();
        Some(name).filter(|name| !name.is_empty())
    }

    /// The instance's cmetrics context, or why there is none.
    pub fn cmetrics(&self) -> Result<cmetrics::Context, String> {
        let fns = self.symbols.cmetrics.map_err(|missing| format!("the agent does not export {missing}"))?;
        let get = self.api().output_get_cmt_instance.ok_or("the agent's API table has no output_get_cmt_instance")?;
        // SAFETY: `o_ins` is the instance handle the agent gave us (see `new`).
        let ptr = unsafe { get(self.o_ins) };
        let ptr = std::ptr::NonNull::new(ptr).ok_or("the agent has no cmetrics context for this instance")?;
        // SAFETY: the agent's context of this instance, alive until after its exit call (as
        // `o_ins`), with the agent's own cmetrics functions.
        Ok(unsafe { cmetrics::Context::new(fns, ptr) })
    }
}
