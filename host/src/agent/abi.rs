//! The agent's C ABI for external ("Go proxy") plugins: layouts and constants.
//!
//! Mirrors `flb_plugin_proxy.h` and `flb_api.h` of Fluent Bit. The agent only ever appends
//! fields, so each struct declares the prefix this plugin reads and nothing after it; the
//! plugin never allocates these structs, it only reads (and, for `remote_context` and the
//! proxy definition, writes) through pointers the agent owns.

use std::ffi::{c_char, c_int, c_void};

/// `def.type` of an output plugin (`FLB_PROXY_OUTPUT_PLUGIN`).
pub const FLB_PROXY_OUTPUT_PLUGIN: c_int = 2;
/// `def.proxy`: the Go proxy (`FLB_PROXY_GOLANG`), the only one the agent accepts.
pub const FLB_PROXY_GOLANG: c_int = 11;
/// `def.event_type` bits (`FLB_OUTPUT_LOGS`, `FLB_OUTPUT_METRICS`, `FLB_OUTPUT_TRACES`): the
/// event types the agent routes to the plugin's instances.
pub const FLB_EVENT_TYPE_LOGS: c_int = 1;
pub const FLB_EVENT_TYPE_METRICS: c_int = 2;
pub const FLB_EVENT_TYPE_TRACES: c_int = 4;

/// Flush answer: the chunk cannot be delivered and is dropped.
pub const FLB_ERROR: c_int = 0;
/// Flush or init answer: success.
pub const FLB_OK: c_int = 1;
/// Flush answer: the agent schedules the chunk again later.
pub const FLB_RETRY: c_int = 2;

/// Filled by `FLBPluginRegister`: the fields every supported agent has (Fluent Bit 2.0 on).
///
/// Agents allocate exactly their own size of the definition, which grew twice since (see
/// [`crate::agent::profile`]): only this prefix may be written unless the agent was shown to
/// have more.
#[repr(C)]
pub struct FlbPluginProxyDef {
    pub type_: c_int,
    pub proxy: c_int,
    pub flags: c_int,
    pub name: *mut c_char,
    pub description: *mut c_char,
}

/// The definition of Fluent Bit 4.2.3 and 5.0 on: the prefix and the event types the plugin
/// takes. (5.1.1 appends `config_map`, which the plugin leaves as the agent zeroed it: NULL, no
/// schema, so the agent passes every key through.)
#[repr(C)]
pub struct FlbPluginProxyDefEventType {
    pub base: FlbPluginProxyDef,
    pub event_type: c_int,
}

/// Passed to `FLBPluginInit`, once per instance; the agent rewrites its fields each time.
#[repr(C)]
pub struct FlbgoOutputPlugin {
    pub name: *mut c_char,
    pub api: *mut FlbApi,
    pub o_ins: *mut c_void,
    pub context: *mut FlbPluginProxyContext,
    // Callback pointers follow; they belong to the agent.
}

/// The agent's per-instance proxy context.
#[repr(C)]
pub struct FlbPluginProxyContext {
    /// Ours: set in Init, handed back as the first argument of FlushCtx and ExitCtx.
    pub remote_context: *mut c_void,
    // Agent-private fields follow.
}

/// `struct flb_api`: the function table the agent owns.
#[repr(C)]
pub struct FlbApi {
    pub output_get_property: Option<unsafe extern "C" fn(key: *const c_char, o_ins: *mut c_void) -> *const c_char>,
    pub input_get_property: Option<unsafe extern "C" fn(key: *const c_char, i_ins: *mut c_void) -> *const c_char>,
    pub output_get_cmt_instance: Option<unsafe extern "C" fn(o_ins: *mut c_void) -> *mut c_void>,
    pub input_get_cmt_instance: Option<unsafe extern "C" fn(i_ins: *mut c_void) -> *mut c_void>,
    /// printf-style: always called with a constant `"%s"` format.
    pub log_print:
        Option<unsafe extern "C" fn(level: c_int, file: *const c_char, line: c_int, fmt: *const c_char, ...)>,
    pub input_log_check: Option<unsafe extern "C" fn(i_ins: *mut c_void, level: c_int) -> c_int>,
    pub output_log_check: Option<unsafe extern "C" fn(o_ins: *mut c_void, level: c_int) -> c_int>,
    // Custom-plugin entries follow.
}
