//! The loader's agent: loads a plugin through the C proxy core and plays the agent's part in
//! every callback (property lookup, log level check, logging).

use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Result, bail};

use crate::agent::{AgentVersion, RawLayout};

#[repr(C)]
struct RawPlugin {
    _private: [u8; 0],
}

#[repr(C)]
struct RawInstance {
    _private: [u8; 0],
}

unsafe extern "C" {
    fn loader_plugin_open(
        path: *const c_char,
        hot_reloading: c_int,
        legacy: c_int,
        layout: *const RawLayout,
        err: *mut c_char,
        errlen: usize,
    ) -> *mut RawPlugin;
    fn loader_plugin_name(p: *mut RawPlugin) -> *const c_char;
    fn loader_plugin_description(p: *mut RawPlugin) -> *const c_char;
    fn loader_plugin_event_type(p: *mut RawPlugin) -> c_int;
    fn loader_instance_init(p: *mut RawPlugin, o_ins: *mut c_void, out: *mut *mut RawInstance) -> c_int;
    fn loader_instance_flush(ins: *mut RawInstance, data: *const c_void, size: usize, tag: *const c_char) -> c_int;
    fn loader_instance_exit(ins: *mut RawInstance, hot_reloading: c_int) -> c_int;
    fn loader_plugin_close(p: *mut RawPlugin);
    fn loader_still_loaded(path: *const c_char, nodelete: *mut c_int) -> c_int;
}

/// One line the plugin wrote to the agent's log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    /// 1 error, 2 warn, 3 info, 4 debug, 5 trace.
    pub level: i32,
    pub message: String,
}

impl LogLine {
    pub fn level_name(&self) -> &'static str {
        match self.level {
            1 => "error",
            2 => "warn",
            3 => "info",
            4 => "debug",
            5 => "trace",
            _ => "?",
        }
    }
}

impl std::fmt::Display for LogLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{:>5}] {}", self.level_name(), self.message)
    }
}

/// The result of a call into the plugin, with the log lines it wrote on the calling thread.
#[derive(Debug)]
pub struct Logged<T> {
    pub value: T,
    pub logs: Vec<LogLine>,
}

impl<T> Logged<T> {
    /// All log lines joined, for assertion messages.
    pub fn log_text(&self) -> String {
        self.logs.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
    }
}

thread_local! {
    static CAPTURE: RefCell<Option<Vec<LogLine>>> = const { RefCell::new(None) };
}

static ECHO: AtomicBool = AtomicBool::new(false);

/// Also print every log line to stderr, in the agent's format (the CLI does).
pub fn echo_logs(on: bool) {
    ECHO.store(on, Ordering::Relaxed);
}

/// Runs `f`, collecting what the plugin logs on this thread meanwhile.
fn capture<T>(f: impl FnOnce() -> T) -> Logged<T> {
    CAPTURE.with(|c| *c.borrow_mut() = Some(Vec::new()));
    let value = f();
    let logs = CAPTURE.with(|c| c.borrow_mut().take()).unwrap_or_default();
    Logged { value, logs }
}

#[unsafe(no_mangle)]
extern "C" fn loader_log(level: c_int, message: *const c_char) {
    // SAFETY: the C side passes a NUL-terminated buffer valid for this call.
    let message = unsafe { CStr::from_ptr(message) }.to_string_lossy().into_owned();
    let line = LogLine { level, message };
    if ECHO.load(Ordering::Relaxed) {
        eprintln!("{line}");
    }
    CAPTURE.with(|c| {
        if let Some(lines) = c.borrow_mut().as_mut() {
            lines.push(line);
        }
    });
}

/// The `o_ins` the loader hands the plugin: its name and metrics context (the prefix the C
/// side reads, `struct loader_output_instance`), the instance's properties and log level.
#[repr(C)]
pub struct Properties {
    /// What `flb_output_name` returns; points into `name`, set by `Plugin::init`.
    name_ptr: *const c_char,
    /// What `output_get_cmt_instance` returns.
    cmt: *mut c_void,
    name: CString,
    alias: Option<String>,
    id: Option<usize>,
    entries: Vec<(String, CString)>,
    log_level: i32,
}

impl Properties {
    /// From `[OUTPUT]` entries (the loader reads `log_level`; the core's keys are hidden).
    pub fn new<K: AsRef<str>, V: AsRef<str>>(entries: impl IntoIterator<Item = (K, V)>) -> Self {
        let mut log_level = 3;
        let mut alias = None;
        let mut kept = Vec::new();
        for (key, value) in entries {
            let (key, value) = (key.as_ref().to_ascii_lowercase(), value.as_ref().trim());
            if key == "alias" && !value.is_empty() {
                alias = Some(value.to_owned());
            }
            if key == "log_level" {
                log_level = match value.to_ascii_lowercase().as_str() {
                    "off" => 0,
                    "error" => 1,
                    "warn" | "warning" => 2,
                    "debug" => 4,
                    "trace" => 5,
                    _ => 3,
                };
            }
            let consumed = out_wasm_format::is_agent_key(&key);
            if consumed || value.is_empty() {
                continue;
            }
            if let Ok(value) = CString::new(value) {
                kept.push((key, value));
            }
        }
        Self {
            name_ptr: std::ptr::null(),
            cmt: std::ptr::null_mut(),
            name: CString::default(),
            alias,
            id: None,
            entries: kept,
            log_level,
        }
    }

    /// The instance's index among all the configuration's outputs (the agent's `ins->id`),
    /// which names it `<plugin>.<id>` when it has no `alias`. Without it, the plugin's
    /// instances are counted.
    pub fn id(mut self, id: usize) -> Self {
        self.id = Some(id);
        self
    }
}

#[unsafe(no_mangle)]
extern "C" fn loader_get_property(o_ins: *mut c_void, key: *const c_char) -> *const c_char {
    if o_ins.is_null() || key.is_null() {
        return std::ptr::null();
    }
    // SAFETY: o_ins is the `Properties` an `Instance` owns, alive while the plugin can call us.
    let props = unsafe { &*o_ins.cast::<Properties>() };
    // SAFETY: the plugin passes a NUL-terminated key.
    let key = unsafe { CStr::from_ptr(key) }.to_string_lossy().to_ascii_lowercase();
    props.entries.iter().find(|(k, _)| *k == key).map_or(std::ptr::null(), |(_, v)| v.as_ptr())
}

#[unsafe(no_mangle)]
extern "C" fn loader_log_check(o_ins: *mut c_void, level: c_int) -> c_int {
    if o_ins.is_null() {
        return 0;
    }
    // SAFETY: as in loader_get_property.
    let props = unsafe { &*o_ins.cast::<Properties>() };
    c_int::from(level <= props.log_level)
}

/// A loaded plugin `.so` (dlopen + Register done).
pub struct Plugin {
    raw: *mut RawPlugin,
    path: PathBuf,
    agent: AgentVersion,
    /// Instances initialised so far: the next one's id when none is given.
    instances: usize,
}

// SAFETY: the C core keeps no thread affinity; the agent too calls a plugin from many threads.
unsafe impl Send for Plugin {}
// SAFETY: as above; the shared plugin struct is only written by `init`, which takes `&mut`.
unsafe impl Sync for Plugin {}

/// How to load a plugin: as which agent, and in which situation.
#[derive(Clone, Copy, Debug, Default)]
pub struct OpenOptions {
    /// The agent whose struct layouts the plugin gets (its exported symbols are loaded apart,
    /// with [`crate::metrics::load_agent_symbols_of`]).
    pub agent: AgentVersion,
    /// PreRegister is told this is a hot reload.
    pub hot_reloading: bool,
    /// Act as an agent that predates FlushCtx/ExitCtx: only FLBPluginFlush and FLBPluginExit.
    pub legacy: bool,
}

impl Plugin {
    /// dlopen, PreRegister, Register and the agent's checks of the definition.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_as(path, OpenOptions::default())
    }

    /// As `open`, telling PreRegister this is a hot reload.
    pub fn open_with(path: &Path, hot_reloading: bool) -> Result<Self> {
        Self::open_as(path, OpenOptions { hot_reloading, ..OpenOptions::default() })
    }

    /// As `open`, acting as an agent that predates FlushCtx/ExitCtx: only the context-less
    /// FLBPluginFlush and FLBPluginExit are used.
    pub fn open_legacy(path: &Path) -> Result<Self> {
        Self::open_as(path, OpenOptions { legacy: true, ..OpenOptions::default() })
    }

    /// As `open`, with every option.
    pub fn open_as(path: &Path, options: OpenOptions) -> Result<Self> {
        let c_path = CString::new(path.as_os_str().as_encoded_bytes())?;
        let layout = options.agent.layout();
        let mut err = [0 as c_char; 512];
        // SAFETY: valid C strings, layout and buffer for the call.
        let raw = unsafe {
            loader_plugin_open(
                c_path.as_ptr(),
                c_int::from(options.hot_reloading),
                c_int::from(options.legacy),
                &layout,
                err.as_mut_ptr(),
                err.len(),
            )
        };
        if raw.is_null() {
            // SAFETY: the C side NUL-terminates `err`.
            let reason = unsafe { CStr::from_ptr(err.as_ptr()) }.to_string_lossy();
            bail!("failed to load plugin {}: {reason}", path.display());
        }
        Ok(Self { raw, path: path.to_owned(), agent: options.agent, instances: 0 })
    }

    /// The agent this plugin was loaded as.
    pub fn agent(&self) -> AgentVersion {
        self.agent
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The output name the plugin registered.
    pub fn name(&self) -> String {
        // SAFETY: Register set a NUL-terminated name (checked at open).
        unsafe { CStr::from_ptr(loader_plugin_name(self.raw)) }.to_string_lossy().into_owned()
    }

    pub fn description(&self) -> String {
        // SAFETY: NULL or a NUL-terminated string kept alive until Unregister.
        let ptr = unsafe { loader_plugin_description(self.raw) };
        if ptr.is_null() {
            return String::new();
        }
        // SAFETY: as above.
        unsafe { CStr::from_ptr(ptr) }.to_string_lossy().into_owned()
    }

    /// The definition's `event_type`; `None` when the played agent's definition has no such
    /// field (it then routes logs only).
    pub fn event_type(&self) -> Option<i32> {
        // SAFETY: `raw` is a live plugin.
        let value = unsafe { loader_plugin_event_type(self.raw) };
        self.agent.reads_event_type().then_some(value)
    }

    /// FLBPluginInit for one instance. `Err` carries the (non-positive) return code.
    ///
    /// The instance is named as the agent names it (`alias`, or `<plugin>.<id>`); when the
    /// agent's symbols are loaded ([`crate::metrics::load_agent_symbols`]) the plugin can read
    /// that name and gets a metrics context.
    pub fn init(&mut self, mut props: Properties) -> Logged<Result<LoadedOutput, i32>> {
        let id = props.id.unwrap_or(self.instances);
        self.instances += 1;
        let name = props.alias.clone().unwrap_or_else(|| format!("{}.{id}", self.name()));
        props.name = CString::new(name.clone()).expect("a name without NUL");
        props.cmt = crate::metrics::new_context(&name);
        let mut props = Box::new(props);
        props.name_ptr = props.name.as_ptr();
        let o_ins = (&*props as *const Properties).cast_mut().cast::<c_void>();
        let mut raw = std::ptr::null_mut();
        // SAFETY: `raw` plugin is live; `o_ins` outlives the instance (moved into it below).
        let call = capture(|| unsafe { loader_instance_init(self.raw, o_ins, &mut raw) });
        let value = if call.value > 0 && !raw.is_null() {
            Ok(LoadedOutput { raw, name, _props: props })
        } else {
            Err(call.value)
        };
        Logged { value, logs: call.logs }
    }

    /// FLBPluginUnregister and dlclose.
    pub fn close(self) {
        // SAFETY: every instance of this plugin took `&self`-free ownership and was exited
        // by its owner before (the loader's callers do); `raw` is not used again.
        unsafe { loader_plugin_close(self.raw) };
    }
}

/// Whether the library at `path` is still mapped in this process (after the loader closed it):
/// `None` if it was unmapped, else `Some(nodelete)`, whether its dynamic section marks it
/// non-unloadable (linked with `-z nodelete`).
pub fn still_loaded(path: &Path) -> Option<bool> {
    let c_path = CString::new(path.as_os_str().as_encoded_bytes()).expect("path without NUL");
    let mut nodelete: c_int = 0;
    // SAFETY: a valid C string and out-pointer for the call; RTLD_NOLOAD never loads anything.
    let mapped = unsafe { loader_still_loaded(c_path.as_ptr(), &mut nodelete) };
    (mapped != 0).then_some(nodelete != 0)
}

/// One initialised output instance.
pub struct LoadedOutput {
    raw: *mut RawInstance,
    name: String,
    _props: Box<Properties>,
}

// SAFETY: as for `Plugin`; concurrent flushes are what `workers` does in the agent.
unsafe impl Send for LoadedOutput {}
// SAFETY: as above.
unsafe impl Sync for LoadedOutput {}

/// Stack of the threads flushes run on: the agent's coroutine stack on x86-64 Linux.
pub const FLUSH_STACK: usize = 64 * 1024;

impl LoadedOutput {
    /// The agent's name of the instance: its `alias`, or `<plugin>.<id>`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// One flush, run like the agent runs it: on a thread with a 64 KiB stack.
    pub fn flush(&self, chunk: &[u8], tag: &str) -> Logged<i32> {
        let tag = CString::new(tag).expect("tag without NUL");
        std::thread::scope(|scope| {
            std::thread::Builder::new()
                .name("flb-flush".into())
                .stack_size(FLUSH_STACK)
                .spawn_scoped(scope, || self.flush_here(chunk, &tag))
                .expect("failed to start a flush thread")
                .join()
                .expect("flush thread panicked")
        })
    }

    /// One flush on the calling thread.
    pub fn flush_here(&self, chunk: &[u8], tag: &CStr) -> Logged<i32> {
        // SAFETY: the instance is live; chunk and tag are valid for the call.
        capture(|| unsafe { loader_instance_flush(self.raw, chunk.as_ptr().cast(), chunk.len(), tag.as_ptr()) })
    }

    /// A flush of a NULL chunk of length 0, as an agent may pass for an empty chunk.
    pub fn flush_null(&self, tag: &CStr) -> Logged<i32> {
        // SAFETY: the instance is live; a NULL pointer with size 0 is what is being tested.
        capture(|| unsafe { loader_instance_flush(self.raw, std::ptr::null(), 0, tag.as_ptr()) })
    }

    /// FLBPluginOutputPreExit and FLBPluginExitCtx.
    pub fn exit(self) -> Logged<i32> {
        self.exit_with(false)
    }

    pub fn exit_with(self, hot_reloading: bool) -> Logged<i32> {
        // SAFETY: the instance is live and not used again; the C side frees it.
        capture(|| unsafe { loader_instance_exit(self.raw, c_int::from(hot_reloading)) })
    }
}
