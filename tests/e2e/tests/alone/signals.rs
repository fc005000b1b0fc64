//! The agent re-installs its own SIGSEGV and SIGFPE handlers (with `signal()`) on every SIGHUP.
//! Guest traps must not depend on signals: with the agent's handlers in place, an out-of-bounds
//! load and a stack overflow in a guest are still clean traps. Alone in its own process, since
//! it replaces process-wide handlers.

use std::sync::atomic::{AtomicUsize, Ordering};

use out_wasm_e2e::{chunk, guest_path, init_ok, open_plugin};
use out_wasm_loader::FLB_RETRY;

static AGENT_HANDLER_RAN: AtomicUsize = AtomicUsize::new(0);

extern "C" fn agent_handler(_signal: libc::c_int) {
    // The agent's handler prints a stack trace and aborts; counting is enough to tell.
    AGENT_HANDLER_RAN.fetch_add(1, Ordering::SeqCst);
    // SAFETY: _exit is async-signal-safe; a run of this handler fails the test loudly.
    unsafe { libc::_exit(70) };
}

#[test]
fn guest_traps_do_not_rely_on_signal_handlers() {
    let path = guest_path("hostile");
    let mut plugin = open_plugin();
    for signal in [libc::SIGSEGV, libc::SIGFPE, libc::SIGBUS] {
        // SAFETY: installing a plain handler, as the agent does with signal().
        unsafe { libc::signal(signal, agent_handler as *const () as libc::sighandler_t) };
    }
    for mode in ["oob-load", "recursion", "panic"] {
        let instance =
            init_ok(&mut plugin, &[("wasm_path", path.to_str().unwrap()), ("mode", mode), ("wasm_watch", "off")]);
        let call = instance.flush(&chunk(&[r#"{"evil":true}"#], 1, 0), "t");
        assert_eq!(call.value, FLB_RETRY, "{mode}: log:\n{}", call.log_text());
        assert!(call.log_text().contains("guest trapped"), "{mode}: log:\n{}", call.log_text());
        instance.exit();
    }
    plugin.close();
    assert_eq!(AGENT_HANDLER_RAN.load(Ordering::SeqCst), 0, "a signal reached the agent's handler");
}
