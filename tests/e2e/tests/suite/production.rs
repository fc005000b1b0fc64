//! The flush path in production: a slow flush on the agent's engine thread is named, and a
//! replacement instance is ready before a flush needs it.

use std::ffi::CString;

use out_wasm_e2e::{chunk, guest_path, init_ok, lines_with, open_plugin};
use out_wasm_loader::{FLB_OK, FLB_RETRY};

const STALL: &str = "held the agent's engine thread for";

#[test]
fn a_slow_flush_on_the_engine_thread_is_named_with_the_fix() {
    let mut plugin = open_plugin();
    let hostile = guest_path("hostile");
    // Delivers every plain chunk after sleeping 150 ms: longer than the 100 ms threshold, always.
    let pairs = [("wasm_path", hostile.to_str().unwrap()), ("mode", "panic"), ("sleep_ms", "150")];
    // The agent runs init on its engine thread; with `workers 0` it flushes on that thread too.
    let instance = init_ok(&mut plugin, &pairs);
    let data = chunk(&[r#"{"n":1}"#], 1, 0);
    let tag = CString::new("t").unwrap();

    let call = instance.flush_here(&data, &tag);
    assert_eq!(call.value, FLB_OK, "{}", call.log_text());
    let warned = lines_with(&call, STALL);
    assert_eq!(warned.len(), 1, "a 150 ms flush on the init thread is named:\n{}", call.log_text());
    assert!(warned[0].contains("set `workers 1` or more"), "the line gives the fix: {}", warned[0]);
    assert!(call.logs.iter().any(|l| l.message.contains(STALL) && l.level_name() == "warn"), "at warn level");

    let call = instance.flush_here(&data, &tag);
    assert!(lines_with(&call, STALL).is_empty(), "rate-limited: once a minute at most:\n{}", call.log_text());

    // The same flush on another thread (an output worker's, with `workers` >= 1) holds nothing.
    instance.exit();
    let instance = init_ok(&mut plugin, &pairs);
    let call = instance.flush(&data, "t");
    assert_eq!(call.value, FLB_OK, "{}", call.log_text());
    assert!(lines_with(&call, STALL).is_empty(), "not the engine thread:\n{}", call.log_text());
    instance.exit();
    plugin.close();
}

#[test]
fn after_a_fault_the_next_flush_takes_the_warm_spare() {
    let mut plugin = open_plugin();
    let probe = guest_path("probe");
    let pairs = [("wasm_path", probe.to_str().unwrap()), ("label", "spare"), ("log_level", "debug")];
    let call = plugin.init(out_wasm_e2e::props(&pairs));
    let text = call.log_text();
    assert_eq!(lines_with(&call, "probe init").len(), 2, "init starts the first instance and a spare:\n{text}");
    let instance = call.value.unwrap_or_else(|code| panic!("init failed with {code}:\n{text}"));

    let call = instance.flush(&chunk(&[r#"{"probe":"trap"}"#], 1, 0), "t");
    assert_eq!(call.value, FLB_RETRY, "a trap is retried:\n{}", call.log_text());
    let call = instance.flush(&chunk(&[r#"{"n":1}"#], 1, 0), "t");
    assert_eq!(call.value, FLB_OK, "{}", call.log_text());
    assert!(
        lines_with(&call, "on the flush path").is_empty(),
        "the spare served, nothing started:\n{}",
        call.log_text()
    );
    // The spare's replacement is being prepared meanwhile on the spares thread; its init lines
    // are written by whichever agent call comes next, possibly this one, so they prove nothing.
    assert_eq!(lines_with(&call, "probe flushed #1 records=1").len(), 1, "{}", call.log_text());
    instance.exit();
    plugin.close();
}

#[test]
fn without_a_warm_spare_the_replacement_starts_on_the_flush_path_and_is_counted() {
    let mut plugin = open_plugin();
    let probe = guest_path("probe");
    let pairs = [
        ("wasm_path", probe.to_str().unwrap()),
        ("label", "nospare"),
        ("log_level", "debug"),
        ("wasm_warm_spare", "off"),
    ];
    let call = plugin.init(out_wasm_e2e::props(&pairs));
    assert_eq!(lines_with(&call, "probe init").len(), 1, "no spare:\n{}", call.log_text());
    let instance = call.value.expect("init");
    instance.flush(&chunk(&[r#"{"probe":"trap"}"#], 1, 0), "t");
    let call = instance.flush(&chunk(&[r#"{"n":1}"#], 1, 0), "t");
    assert_eq!(call.value, FLB_OK, "{}", call.log_text());
    let started = lines_with(&call, "on the flush path: wasm_warm_spare is off (1 such starts so far)");
    assert_eq!(started.len(), 1, "{}", call.log_text());
    assert_eq!(lines_with(&call, "probe init").len(), 1, "init ran inside this flush:\n{}", call.log_text());
    instance.exit();
    plugin.close();
}
