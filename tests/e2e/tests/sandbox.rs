//! Hostile guests through the real boundary: none of them crashes, hangs or starves the
//! process, each gets the answer and the log line the sandbox promises, and later chunks are
//! served by a fresh instance.

use std::time::{Duration, Instant};

use out_wasm_e2e::{chunk, go_test_guest, guest_path, init_err, init_ok, lines_with, open_plugin};
use out_wasm_loader::{Call, FLB_ERROR, FLB_OK, FLB_RETRY, Instance, Plugin, status_name};

const EVIL: &str = r#"{"evil":true}"#;
const PLAIN: &str = r#"{"n":1}"#;

fn hostile(mode: &str, extra: &[(&str, &str)]) -> (Plugin, Instance) {
    let path = guest_path("hostile");
    let mut pairs = vec![
        ("wasm_path", path.to_str().unwrap()),
        ("mode", mode),
        ("wasm_flush_timeout", "300ms"),
        ("wasm_memory_limit", "32M"),
        ("wasm_watch", "off"),
    ];
    pairs.extend_from_slice(extra);
    let mut plugin = open_plugin();
    let instance = init_ok(&mut plugin, &pairs);
    (plugin, instance)
}

fn assert_logged(call: &Call<i32>, level: i32, needles: &[&str]) {
    let found = call.logs.iter().any(|l| l.level == level && needles.iter().all(|n| l.message.contains(n)));
    assert!(found, "expected a level-{level} line with all of {needles:?}; log:\n{}", call.log_text());
}

/// The chunk after a fault is delivered by a fresh instance (the warm spare, whose init ran
/// before it was needed): its first flush.
fn assert_fresh_instance_delivers(instance: &Instance) {
    let call = instance.flush(&chunk(&[PLAIN], 1, 0), "t");
    assert_eq!(call.value, FLB_OK, "the next chunk is delivered; log:\n{}", call.log_text());
    let fresh = lines_with(&call, "hostile delivered 1 records in flush #1");
    assert_eq!(fresh.len(), 1, "by a fresh instance; log:\n{}", call.log_text());
}

#[test]
fn faults_are_answered_retry_logged_and_followed_by_a_fresh_instance() {
    let cases: &[(&str, &[&str])] = &[
        ("spin", &["exceeded its flush deadline of 300 ms (wasm_flush_timeout)"]),
        ("sleep", &["exceeded its flush deadline of 300 ms (wasm_flush_timeout)"]),
        ("alloc-until-cap", &["exceeded its memory limit", "wasm_memory_limit is 32 MiB"]),
        ("huge-alloc", &["exceeded its memory limit: it asked for 15", "wasm_memory_limit is 32 MiB"]),
        ("oob-load", &["guest trapped", "out of bounds memory access", "hostile::"]),
        ("recursion", &["guest trapped", "call stack exhausted"]),
        ("panic", &["guest trapped", "unreachable", "hostile::"]),
        ("div-zero", &["guest trapped", "integer divide by zero"]),
    ];
    for (mode, needles) in cases {
        let (plugin, instance) = hostile(mode, &[]);
        let started = Instant::now();
        let call = instance.flush(&chunk(&[EVIL], 1, 0), "t");
        let took = started.elapsed();
        assert_eq!(
            call.value,
            FLB_RETRY,
            "{mode}: expected FLB_RETRY, got {}; log:\n{}",
            status_name(call.value),
            call.log_text()
        );
        let mut all = vec!["faulted in flush and is discarded", "hostile.wasm", "will be retried"];
        all.extend_from_slice(needles);
        assert_logged(&call, 1, &all);
        // Not a timing benchmark: only that the agent thread was not held far past the deadline.
        assert!(took < Duration::from_secs(10), "{mode}: the flush held the agent for {took:?}");
        assert_fresh_instance_delivers(&instance);
        let exit = instance.exit();
        assert_eq!(exit.value, FLB_OK, "{mode}: exit");
        plugin.close();
    }
}

/// Go's own ways of failing (tests/guests/go-faults) are traps like any other: on a panic and a
/// nil dereference the Go runtime prints the panic and aborts with `unreachable` (the backtrace
/// names Go's functions), and running past wasm_memory_limit is refused at memory.grow by the
/// host. Each answers FLB_RETRY with the
/// fault logged, and the next chunk is delivered by a fresh instance.
#[test]
fn go_guest_faults_are_traps_followed_by_a_fresh_instance() {
    let path = go_test_guest("go-faults");
    let cases: &[(&str, &[&str])] = &[
        ("panic", &["guest trapped", "unreachable", "runtime.gopanic", "main.__faults_.Flush"]),
        ("nil-deref", &["guest trapped", "unreachable", "runtime.sigpanic", "main.depth"]),
        ("alloc-until-cap", &["exceeded its memory limit", "wasm_memory_limit is 64 MiB"]),
    ];
    for (mode, needles) in cases {
        let mut plugin = open_plugin();
        let instance = init_ok(
            &mut plugin,
            &[
                ("wasm_path", path.to_str().unwrap()),
                ("mode", mode),
                ("wasm_memory_limit", "64M"),
                ("wasm_watch", "off"),
            ],
        );
        let call = instance.flush(&chunk(&[EVIL], 1, 0), "t");
        assert_eq!(
            call.value,
            FLB_RETRY,
            "{mode}: expected FLB_RETRY, got {}; log:\n{}",
            status_name(call.value),
            call.log_text()
        );
        let mut all = vec!["faulted in flush and is discarded", "go-faults.wasm", "will be retried"];
        all.extend_from_slice(needles);
        assert_logged(&call, 1, &all);
        let next = instance.flush(&chunk(&[PLAIN, PLAIN], 1, 0), "t");
        assert_eq!(next.value, FLB_OK, "{mode}: the next chunk is delivered; log:\n{}", next.log_text());
        let fresh = lines_with(&next, "go-faults delivered 2 records in flush #1");
        assert_eq!(fresh.len(), 1, "{mode}: by a fresh instance; log:\n{}", next.log_text());
        assert_eq!(instance.exit().value, FLB_OK, "{mode}: exit");
        plugin.close();
    }
}

#[test]
fn denied_capabilities_are_the_guests_errors_not_faults() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let addr = format!("127.0.0.1:{port}");
    let outside = std::env::temp_dir().join(format!("out-wasm-hostile-{}", std::process::id()));
    let cases = [
        ("read", "/etc/passwd".to_owned()),
        ("read", "../../../../etc/hostname".to_owned()),
        ("write", outside.display().to_string()),
        ("connect", addr.clone()),
    ];
    for (mode, target) in &cases {
        let (plugin, instance) = hostile(mode, &[("target", target)]);
        let call = instance.flush(&chunk(&[EVIL], 1, 0), "t");
        assert_eq!(call.value, FLB_ERROR, "{mode} {target}: the guest reports the denial; log:\n{}", call.log_text());
        assert_logged(&call, 1, &[&format!("hostile {mode} denied")]);
        assert!(lines_with(&call, "succeeded").is_empty(), "{mode} {target} must not succeed:\n{}", call.log_text());
        // A reported error is not a fault: the same instance serves on.
        let next = instance.flush(&chunk(&[PLAIN], 1, 0), "t");
        assert_eq!(next.value, FLB_OK);
        assert!(lines_with(&next, "hostile init").is_empty(), "no new instance:\n{}", next.log_text());
        instance.exit();
        plugin.close();
    }
    assert!(!outside.exists(), "the guest wrote {} outside any grant", outside.display());
    match listener.accept() {
        Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the guest reached {addr}: {other:?}"),
    }
}

#[test]
fn a_guest_that_traps_every_few_chunks_is_replaced_each_time() {
    let (plugin, instance) = hostile("trap-every", &[("every", "2")]);
    let statuses: Vec<i32> = (0..6).map(|_| instance.flush(&chunk(&[PLAIN], 1, 0), "t").value).collect();
    assert_eq!(
        statuses,
        [FLB_OK, FLB_RETRY, FLB_OK, FLB_RETRY, FLB_OK, FLB_RETRY],
        "each fresh instance traps on its 2nd flush"
    );
    instance.exit();
    plugin.close();
}

#[test]
fn a_guest_that_always_traps_is_backed_off_and_its_faults_rate_limited() {
    let (plugin, instance) = hostile("trap-every", &[("every", "1")]);
    let mut inits = 0;
    let mut fault_lines = 0;
    let started = Instant::now();
    let mut flushes = 0;
    while started.elapsed() < Duration::from_secs(2) {
        let call = instance.flush(&chunk(&[PLAIN], 1, 0), "t");
        assert_eq!(call.value, FLB_RETRY, "no chunk is lost while the guest is broken");
        inits += lines_with(&call, "hostile init").len();
        fault_lines += lines_with(&call, "faulted in flush").len();
        flushes += 1;
    }
    assert!(flushes > 100, "the agent kept flushing (got {flushes} answers)");
    // With backoff doubling from 100 ms, two seconds allow about six instance starts.
    assert!(inits < 12, "{inits} instances started for {flushes} flushes: no backoff");
    assert_eq!(fault_lines, 1, "one fault line per 10 s, the rest counted");
    instance.exit();
    plugin.close();
}

#[test]
fn a_guest_log_flood_is_cut_at_the_per_call_budget() {
    let (plugin, instance) = hostile("flood-log", &[]);
    let call = instance.flush(&chunk(&[EVIL], 1, 0), "t");
    assert_eq!(call.value, FLB_OK);
    assert_eq!(lines_with(&call, "hostile flood line").len(), 1000, "the first 1000 lines are kept");
    assert_logged(&call, 2, &["guest wrote 99000 more log lines in one flush call; dropped"]);
    instance.exit();
    plugin.close();
}

#[test]
fn init_and_exit_faults_are_contained() {
    let path = guest_path("hostile");
    let mut plugin = open_plugin();
    let call = init_err(
        &mut plugin,
        &[
            ("wasm_path", path.to_str().unwrap()),
            ("mode", "spin-init"),
            ("wasm_init_timeout", "500ms"),
            ("wasm_watch", "off"),
        ],
    );
    assert!(
        call.logs
            .iter()
            .any(|l| l.level == 1 && l.message.contains("exceeded its init deadline of 500 ms (wasm_init_timeout)")),
        "a guest stuck in init fails the instance; log:\n{}",
        call.log_text()
    );
    plugin.close();

    let mut plugin = open_plugin();
    let call =
        init_err(&mut plugin, &[("wasm_path", path.to_str().unwrap()), ("mode", "panic-init"), ("wasm_watch", "off")]);
    assert!(
        call.logs.iter().any(|l| l.level == 1 && l.message.contains("guest faulted in init: guest trapped")),
        "a guest that traps in init fails the instance; log:\n{}",
        call.log_text()
    );
    plugin.close();

    let (plugin, instance) = hostile("panic-exit", &[]);
    let exit = instance.exit();
    assert_eq!(exit.value, FLB_OK, "exit completes");
    assert_logged(&exit, 2, &["faulted in exit", "guest trapped"]);
    plugin.close();
}

#[test]
fn wasm_on_trap_error_drops_the_chunk() {
    let (plugin, instance) = hostile("panic", &[("wasm_on_trap", "error")]);
    let call = instance.flush(&chunk(&[EVIL], 1, 0), "t");
    assert_eq!(call.value, FLB_ERROR, "log:\n{}", call.log_text());
    assert_logged(&call, 1, &["is dropped (wasm_on_trap error)"]);
    assert_fresh_instance_delivers(&instance);
    instance.exit();
    plugin.close();
}

#[test]
fn shutdown_with_a_stuck_guest_finishes() {
    let (plugin, instance) = hostile("spin", &[]);
    let started = Instant::now();
    let stuck = std::thread::scope(|scope| scope.spawn(|| instance.flush(&chunk(&[EVIL], 1, 0), "t")).join().unwrap());
    assert_eq!(stuck.value, FLB_RETRY);
    // The agent exits the instance once its flushes returned; nothing is left spinning.
    let exit = instance.exit();
    assert_eq!(exit.value, FLB_OK);
    plugin.close();
    assert!(started.elapsed() < Duration::from_secs(10), "shutdown took {:?}", started.elapsed());
}

/// A guest whose memory only grows (here 4 MiB a flush) is recycled between flushes once it
/// passes three quarters of its cap, so it never traps inside a flush: every chunk is
/// delivered, the log says why the instance was replaced, and nothing faults.
#[test]
fn a_leaking_guest_is_recycled_before_it_hits_its_memory_cap() {
    let (plugin, instance) = hostile("leak", &[]);
    let mut recycled = 0;
    for n in 0..40 {
        let call = instance.flush(&chunk(&[EVIL], 1, 0), "t");
        assert_eq!(call.value, FLB_OK, "flush {n} of a leaking guest is delivered; log:\n{}", call.log_text());
        assert!(lines_with(&call, "faulted").is_empty(), "no flush traps; log:\n{}", call.log_text());
        recycled += lines_with(&call, "recycled, a fresh instance takes the next flush").len();
    }
    // 32 MiB cap, 4 MiB a flush: each instance takes a handful of flushes before it is past 24 MiB.
    assert!(recycled >= 4, "expected the instance to be recycled several times in 40 flushes, saw {recycled}");
    instance.exit();
    plugin.close();
}
