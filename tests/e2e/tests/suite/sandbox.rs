//! Hostile guests through the real boundary: none of them crashes, hangs or starves the
//! process, each gets the answer and the log line the sandbox promises, and later chunks are
//! served by a fresh instance.

use std::time::Instant;

use out_wasm_e2e::sync::{EVENT_TIMEOUT, SyncDir, wait_until, watchdog};
use out_wasm_e2e::{chunk, go_test_guest, guest_path, init_err, init_ok, lines_with, message_at, open_plugin};
use out_wasm_loader::{FLB_ERROR, FLB_OK, FLB_RETRY, LoadedOutput, Logged, Plugin, status_name};

const EVIL: &str = r#"{"evil":true}"#;
const PLAIN: &str = r#"{"n":1}"#;

/// An instance of the hostile guest in `mode`, with a 300 ms flush deadline, a 32 MiB memory
/// cap and no watching, unless `extra` sets those keys otherwise.
fn hostile(mode: &str, extra: &[(&str, &str)]) -> (Plugin, LoadedOutput) {
    let path = guest_path("hostile");
    let defaults = [
        ("wasm_path", path.to_str().unwrap()),
        ("mode", mode),
        ("wasm_flush_timeout", "300ms"),
        ("wasm_memory_limit", "32M"),
        ("wasm_watch", "off"),
    ];
    let mut pairs = extra.to_vec();
    pairs.extend(defaults.into_iter().filter(|(key, _)| !extra.iter().any(|(k, _)| k == key)));
    let mut plugin = open_plugin();
    let instance = init_ok(&mut plugin, &pairs);
    (plugin, instance)
}

/// A message at `level` (its first line with `needles[0]`, with the lines that follow it) has
/// every one of `needles`.
fn assert_logged(call: &Logged<i32>, level: i32, needles: &[&str]) {
    let found = message_at(call, level, needles[0]).is_some_and(|m| needles.iter().all(|n| m.contains(n)));
    assert!(found, "expected a level-{level} message with all of {needles:?}; log:\n{}", call.log_text());
}

/// The chunk after a fault is delivered by a fresh instance (the warm spare, whose init ran
/// before it was needed): its first flush.
fn assert_fresh_instance_delivers(instance: &LoadedOutput) {
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
        ("huge-alloc", &["exceeded its memory limit", "would take 15", "wasm_memory_limit is 32 MiB"]),
        ("oob-load", &["guest trapped", "out of bounds memory access", "hostile::"]),
        ("recursion", &["guest trapped", "call stack exhausted"]),
        ("panic", &["guest trapped", "unreachable", "hostile::"]),
        ("div-zero", &["guest trapped", "integer divide by zero"]),
    ];
    // The deadline and the memory cap are what end these flushes; should one fail, the flush
    // would never return.
    let _hang = watchdog("a flush of a faulting guest");
    for (mode, needles) in cases {
        let (plugin, instance) = hostile(mode, &[]);
        let call = instance.flush(&chunk(&[EVIL], 1, 0), "t");
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

/// Every instance of this guest traps on its first flush. Without backoff, every flush would
/// start an instance and run the guest; with it, once faults repeat, flushes are answered
/// FLB_RETRY without any guest running (no instance starts, no flush: the guest's init and
/// flush marks stay put). Holds double from
/// 100 ms, so however slow the machine, a held flush comes: the test waits for it, never times.
#[test]
fn a_guest_that_always_traps_is_backed_off_and_its_faults_rate_limited() {
    let sync = SyncDir::new("backoff");
    let grant = sync.grant();
    let (plugin, instance) =
        hostile("trap-every", &[("every", "1"), ("sync_dir", SyncDir::GUEST), ("wasm_allow_dirs", &grant)]);
    let (mut flushes, mut held, mut fault_lines) = (0, 0, 0);
    let started = Instant::now();
    // At least three faults, so that some of them fall in one report interval.
    while held == 0 || sync.marks("flush") < 3 {
        assert!(
            started.elapsed() < EVENT_TIMEOUT,
            "no flush was held back in {} s ({flushes} flushes, {} guest faults): no backoff",
            EVENT_TIMEOUT.as_secs(),
            sync.marks("flush")
        );
        let ran_before = (sync.marks("init"), sync.marks("flush"));
        let call = instance.flush(&chunk(&[PLAIN], 1, 0), "t");
        assert_eq!(call.value, FLB_RETRY, "no chunk is lost while the guest is broken; log:\n{}", call.log_text());
        fault_lines += lines_with(&call, "faulted in flush").len();
        flushes += 1;
        if (sync.marks("init"), sync.marks("flush")) == ran_before {
            held += 1;
        }
    }
    let faults = sync.marks("flush");
    assert!(fault_lines >= 1, "the first fault is reported");
    assert!(fault_lines < faults, "{fault_lines} fault lines for {faults} faults in a row: not rate-limited");
    eprintln!("{flushes} flushes, {faults} guest faults, {held} flushes held back, {fault_lines} fault lines");
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

/// The agent's shutdown while a flush is stuck in a guest. The agent joins the thread that
/// runs an instance's flushes before it gives the instance its exit call, then unloads the
/// plugin: the shutdown begins while the guest spins in the flush (it notices the test's
/// `shutdown` file from inside the flush), the deadline ends the flush (FLB_RETRY), and the exit
/// and the unload complete. The 5 s deadline is what ends the flush; the test reacts to the
/// guest's mark in milliseconds.
#[test]
fn shutdown_with_a_stuck_guest_finishes() {
    let sync = SyncDir::new("shutdown");
    let grant = sync.grant();
    let _hang = watchdog("the shutdown with a guest stuck in a flush");
    let (plugin, instance) =
        hostile("stuck", &[("sync_dir", SyncDir::GUEST), ("wasm_allow_dirs", &grant), ("wasm_flush_timeout", "5s")]);
    let stuck = std::thread::scope(|scope| {
        let flush = scope.spawn(|| instance.flush(&chunk(&[EVIL], 1, 0), "t"));
        sync.wait_for_marks("stuck", 1, "the flush stuck in its guest");
        // The shutdown begins: the agent stops flushing and joins its flush thread.
        sync.create("shutdown");
        flush.join().unwrap()
    });
    assert_eq!(sync.marks("noticed"), 1, "the flush was still in the guest when the shutdown began");
    assert_eq!(stuck.value, FLB_RETRY, "the stuck flush returns, its chunk kept; log:\n{}", stuck.log_text());
    assert_logged(&stuck, 1, &["exceeded its flush deadline of 5000 ms (wasm_flush_timeout)"]);
    let exit = instance.exit();
    assert_eq!(exit.value, FLB_OK, "exit completes; log:\n{}", exit.log_text());
    plugin.close();
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

/// The same with the real agent (`FLUENT_BIT`), its flushes on the engine thread (`workers 0`):
/// SIGTERM arrives while the guest spins in a flush (the guest notices the `shutdown` file the
/// test creates after sending it), the deadline ends the flush, and the agent stops cleanly.
#[test]
fn real_agent_shuts_down_while_a_guest_is_stuck_in_a_flush() {
    let Some(agent) = std::env::var_os("FLUENT_BIT") else {
        eprintln!(
            "SKIP real_agent_shuts_down_while_a_guest_is_stuck_in_a_flush: FLUENT_BIT is not set (the path of a \
             fluent-bit binary); this test needs the real agent"
        );
        return;
    };
    let sync = SyncDir::new("agent-shutdown");
    let config = out_wasm_e2e::scratch_dir("sandbox").join("agent-shutdown.conf");
    std::fs::write(
        &config,
        format!(
            "[SERVICE]\n    Flush 0.2\n    Grace 1\n    Log_Level info\n\n\
             [INPUT]\n    Name dummy\n    Dummy {EVIL}\n    Samples 1\n\n\
             [OUTPUT]\n    Name wasm\n    Match *\n    wasm_path {}\n    mode stuck\n    sync_dir {}\n    \
             wasm_allow_dirs {}\n    wasm_flush_timeout 5s\n    wasm_watch off\n",
            guest_path("hostile").display(),
            SyncDir::GUEST,
            sync.grant()
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new(&agent)
        .arg("-e")
        .arg(out_wasm_e2e::plugin_path())
        .arg("-c")
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the agent starts");
    let mut stderr = child.stderr.take().unwrap();
    let log = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut text).map(|_| text)
    });
    // Kills the agent should the test fail before it stopped.
    let mut child = out_wasm_e2e::KillOnDrop(child);
    sync.wait_for_marks("stuck", 1, "the agent's flush stuck in the guest");
    // SAFETY: plain kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) }, 0, "SIGTERM sent");
    sync.create("shutdown");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("wait") {
            break status;
        }
        assert!(started.elapsed() < EVENT_TIMEOUT, "the agent did not stop within {} s", EVENT_TIMEOUT.as_secs());
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let log = log.join().unwrap().expect("the agent's log");
    assert_eq!(sync.marks("noticed"), 1, "the flush was still in the guest after SIGTERM; log:\n{log}");
    assert!(status.success(), "the agent stopped with {status}; log:\n{log}");
    for needle in ["exceeded its flush deadline of 5000 ms (wasm_flush_timeout)", "service has stopped"] {
        assert!(log.contains(needle), "expected {needle:?} in the agent's log:\n{log}");
    }
}

/// A component that implements WIT 0.1.0 (every call answers ok) from one core module with, beside
/// its own memory of one page, `memories` more linear memories of `pages` pages and `tables`
/// tables of `elements` elements: what a guest can declare beyond the memory it runs in.
fn sprawl(memories: usize, pages: u32, tables: usize, elements: u32) -> std::path::PathBuf {
    let mut core = String::from("(module\n  (memory (export \"memory\") 1)\n");
    for _ in 0..memories {
        core += &format!("  (memory {pages})\n");
    }
    for _ in 0..tables {
        core += &format!("  (table {elements} funcref)\n");
    }
    // A bump allocator for the host's arguments; results live in the zeroed first page (an empty
    // list, `ok`, the first enum case).
    core += r#"
  (global $heap (mut i32) (i32.const 1024))
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $at i32)
    (local.set $at (i32.and (i32.add (global.get $heap) (i32.sub (local.get 2) (i32.const 1)))
                            (i32.sub (i32.const 0) (local.get 2))))
    (global.set $heap (i32.add (local.get $at) (local.get 3)))
    (block $fits
      (br_if $fits (i32.le_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536))))
      (drop (memory.grow (i32.add (i32.shr_u (global.get $heap) (i32.const 16)) (i32.const 1)))))
    (local.get $at))
  (func (export "out-wasm:output/output@0.1.0#config-schema") (result i32) (i32.const 16))
  (func (export "out-wasm:output/output@0.1.0#preferred-event-format") (result i32) (i32.const 0))
  (func (export "out-wasm:output/output@0.1.0#init")
    (param i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32) (i32.const 32))
  (func (export "out-wasm:output/output@0.1.0#flush") (param i32 i32 i32 i32) (result i32) (i32.const 32))
  (func (export "out-wasm:output/output@0.1.0#exit"))
)
"#;
    let dir = out_wasm_e2e::scratch_dir("sprawl");
    let name = format!("m{memories}x{pages}-t{tables}x{elements}");
    let core_path = dir.join(format!("{name}.core.wasm"));
    std::fs::write(&core_path, wat::parse_str(&core).expect("the sprawl module assembles")).unwrap();
    let out = dir.join(format!("{name}.wasm"));
    // wasm-tools (installed by guests/c/setup, pinned in guests/toolchains.sh) makes it a
    // component of the frozen 0.1.0 world.
    let script = r#"set -e; . guests/toolchains.sh
        tools="$OUT_WASM_TOOLCHAIN_CACHE/wasm-tools-$WASM_TOOLS_VERSION/bin/wasm-tools"
        "$tools" component embed --world output-plugin wit/v0.1.0 "$1" -o "$2.embedded"
        "$tools" component new "$2.embedded" -o "$2""#;
    let status = std::process::Command::new("bash")
        .args(["-c", script, "sprawl"])
        .arg(&core_path)
        .arg(&out)
        .current_dir(out_wasm_e2e::workspace_root())
        .status()
        .expect("bash runs");
    assert!(status.success(), "making the sprawl component failed ({status}); is guests/c/setup done?");
    out
}

#[test]
fn all_memories_and_tables_of_a_guest_share_its_one_budget() {
    let run = |path: &std::path::Path| {
        vec![("wasm_path", path.to_str().unwrap().to_owned()), ("wasm_memory_limit", "128M".to_owned())]
    };
    let pairs = |run: &Vec<(&'static str, String)>| run.iter().map(|(k, v)| (*k, v.clone())).collect::<Vec<_>>();
    let mut plugin = open_plugin();
    // The component itself is a working plugin: what refuses the others is their size.
    let small = sprawl(2, 16, 2, 1000);
    let owned = pairs(&run(&small));
    let borrowed: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let instance = init_ok(&mut plugin, &borrowed);
    let call = instance.flush(&chunk(&[PLAIN], 1, 0), "t");
    assert_eq!(call.value, FLB_OK, "{}", call.log_text());
    instance.exit();
    for (path, needles) in [
        // Eight memories of 100 MiB: each under 128M, 800 MiB together.
        (
            sprawl(8, 1600, 0, 0),
            &["exceeded its memory limit", "growing a linear memory", "wasm_memory_limit is 128 MiB"][..],
        ),
        // Twenty tables of a million elements (8 MB each in the host).
        (sprawl(0, 0, 20, 1_000_000), &["exceeded its memory limit", "growing a table"][..]),
        // Many small memories: past the count a store may hold.
        (sprawl(40, 1, 0, 0), &["memory count too high"][..]),
    ] {
        let owned = pairs(&run(&path));
        let borrowed: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let call = init_err(&mut plugin, &borrowed);
        let text = call.log_text();
        let name = path.file_name().unwrap().to_str().unwrap();
        assert!(
            call.logs
                .iter()
                .any(|l| l.level == 1 && l.message.contains(name) && needles.iter().all(|n| l.message.contains(n))),
            "{name}: expected an error naming the guest and {needles:?}; log:\n{text}"
        );
    }
    plugin.close();
}

#[test]
fn a_guest_holding_host_handles_is_stopped_at_its_cap() {
    let _hang = watchdog("a flush of a guest holding handles");
    let (plugin, instance) = hostile("hold-fields", &[("count", "100")]);
    let call = instance.flush(&chunk(&[EVIL], 1, 0), "t");
    assert_eq!(call.value, FLB_OK, "100 sets of fields are nothing to refuse; log:\n{}", call.log_text());
    assert_eq!(lines_with(&call, "hostile holds 100 fields").len(), 1, "{}", call.log_text());
    instance.exit();
    plugin.close();
    // The issue's case: 2,000 sets of fields of 8 KiB each per flush, all kept.
    let (plugin, instance) = hostile("hold-fields", &[]);
    let call = instance.flush(&chunk(&[EVIL], 1, 0), "t");
    assert_eq!(call.value, FLB_RETRY, "{}", call.log_text());
    assert_logged(&call, 1, &["hostile.wasm", "faulted in flush", "exceeded its handle limit", "1024 host resources"]);
    assert_fresh_instance_delivers(&instance);
    instance.exit();
    plugin.close();
}

#[test]
fn guest_text_never_passes_for_the_agents_own_lines() {
    let (plugin, instance) = hostile("forge-log", &[("wasm_stdout", "log"), ("wasm_stderr", "log")]);
    let call = instance.flush(&chunk(&[EVIL], 1, 0), "t");
    assert_eq!(call.value, FLB_OK, "{}", call.log_text());
    let text = call.log_text();
    let forged = lines_with(&call, "forged by a guest");
    assert_eq!(forged.len(), 3, "the log line, stdout's and stderr's:\n{text}");
    for line in &forged {
        assert!(!line.contains(['\n', '\r', '\u{1b}']), "a control character reached the log: {line:?}");
        assert!(line.starts_with("[output:wasm:wasm.0] "), "every line carries its instance: {line:?}");
    }
    // A log message is one line: its line break is written out. Stdout and stderr are text, so
    // a line break there starts a new log line, which carries the instance and the stream.
    assert_eq!(lines_with(&call, "hostile forged\\n[2026/12/07 10:00:00] [error] [engine]").len(), 1, "{text}");
    for stream in ["stdout", "stderr"] {
        let needle = format!("[output:wasm:wasm.0] {stream}: [2026/12/07 10:00:00] [error] [engine] forged by a guest");
        assert_eq!(lines_with(&call, &needle).len(), 1, "{needle:?} in:\n{text}");
    }
    instance.exit();
    plugin.close();
}

/// Runs the hostile guest in `mode` through `out-wasm-loader` on one evil record, with the
/// guest's stdout and stderr the loader's own (`wasm_stdout agent`, the default).
fn run_loader(mode: &str) -> std::process::Output {
    use std::io::Write;
    let guest = guest_path("hostile");
    let conf = format!(
        "[SERVICE]\n    Flush 1\n\n[INPUT]\n    Name stdin\n    Tag t\n\n[OUTPUT]\n    Name wasm\n    Match *\n    \
         wasm_watch off\n    wasm_path {}\n    mode {mode}\n",
        guest.display()
    );
    let path = out_wasm_e2e::scratch_dir("stdio").join(format!("{mode}.conf"));
    std::fs::write(&path, conf).unwrap();
    let mut child = std::process::Command::new(out_wasm_e2e::loader_bin())
        .arg("-c")
        .arg(&path)
        .arg("-e")
        .arg(out_wasm_e2e::plugin_path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the loader starts");
    child.stdin.take().unwrap().write_all(format!("{EVIL}\n").as_bytes()).unwrap();
    child.wait_with_output().expect("the loader runs")
}

#[test]
fn the_agents_stdout_and_stderr_take_guest_text_within_a_budget_and_marked() {
    let output = run_loader("forge-log");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(!output.stdout.contains(&0x1b) && !output.stderr.contains(&0x1b), "an escape sequence got through");
    assert!(stdout.contains("[2026/12/07 10:00:00] [error] [engine] forged by a guest\\x1b[2J"), "stdout:\n{stdout}");
    let on_stderr: Vec<&str> = stderr.lines().filter(|l| l.contains("forged by a guest")).collect();
    assert!(!on_stderr.is_empty(), "stderr:\n{stderr}");
    for line in on_stderr {
        assert!(line.contains("[out_wasm:wasm.0] ") || line.contains("[output:wasm:wasm.0] "), "unmarked: {line:?}");
    }
    let output = run_loader("flood-stdout");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        output.stdout.len() <= out_wasm::STDIO_BYTES_PER_CALL,
        "{} bytes of stdout from one call of 64 MiB",
        output.stdout.len()
    );
    assert!(output.stdout.len() >= out_wasm::STDIO_BYTES_PER_CALL / 2, "the budget's worth is written");
    assert!(
        stderr.contains("more bytes to stdout or stderr in one flush call; dropped (at most 16 MiB a call)"),
        "{stderr}"
    );
}

/// The hostile guest in one of its `idle-*` modes, idle calls 10 ms apart, its marks in a sync
/// dir of its own, no warm spare; `extra` keys beside.
fn idle_hostile(mode: &str, extra: &[(&str, &str)]) -> (SyncDir, Plugin, LoadedOutput) {
    let sync = SyncDir::new(mode);
    let grant = sync.grant();
    let mut pairs = vec![
        ("sync_dir", SyncDir::GUEST),
        ("wasm_allow_dirs", grant.as_str()),
        ("wasm_idle_interval", "10ms"),
        ("wasm_warm_spare", "off"),
    ];
    pairs.extend_from_slice(extra);
    let (plugin, instance) = hostile(mode, &pairs);
    (sync, plugin, instance)
}

#[test]
fn idle_work_is_bounded_in_time_and_in_the_text_it_leaves() {
    out_wasm_loader::metrics::load_agent_symbols().expect("the agent-symbols library loads");
    // A guest that floods its log from idle, with no chunk ever routed to it. Its deadline is
    // not what this half is about: no loaded machine should stop these calls.
    let (sync, plugin, instance) =
        idle_hostile("idle-flood", &[("wasm_idle_budget", "2s"), ("wasm_flush_timeout", "10s")]);
    sync.wait_for_marks("idle", 30, "idle calls (20 MiB of log lines each)");
    let call = instance.flush(&chunk(&[PLAIN], 1, 0), "t");
    assert_eq!(call.value, FLB_OK, "{}", call.log_text());
    let queued: Vec<&str> = call.logs.iter().map(|l| l.message.as_str()).filter(|m| m.contains("iiii")).collect();
    let bytes: usize = queued.iter().map(|m| m.len()).sum();
    // The queue is drained when the agent's call starts and again when it ends (an idle call
    // may have run in between): each time at most its bound.
    assert!(bytes <= 2 * out_wasm::LOG_BYTES_PER_CALL, "{bytes} bytes of idle lines were kept for the flush");
    assert!(queued.iter().all(|m| m.len() < 5000 && m.ends_with("more bytes cut]")), "lines are cut");
    assert_logged(&call, 2, &["log lines written between the agent's calls were dropped"]);
    instance.exit();
    plugin.close();

    // A guest that spins in idle is stopped at its budget and a margin, as a flush is.
    let (sync, plugin, instance) = idle_hostile("idle-spin", &[("alias", "idle-spin")]);
    sync.wait_for_marks("idle", 1, "the idle call that spins");
    out_wasm_e2e::sync::wait_until("the idle call's deadline fault", || {
        let metrics = out_wasm_loader::metrics::snapshot().of("idle-spin");
        metrics.value("fluentbit_wasm_faults_total", &["idle-spin", "deadline"]).is_some_and(|n| n >= 1.0)
    });
    let call = instance.flush(&chunk(&[PLAIN], 1, 0), "t");
    assert_eq!(call.value, FLB_OK, "a fresh instance delivers; log:\n{}", call.log_text());
    assert_logged(
        &call,
        1,
        &["hostile.wasm", "faulted in idle and is discarded", "idle deadline of 300 ms (wasm_idle_budget)"],
    );
    instance.exit();
    plugin.close();
}

/// The agent's peak resident memory so far, in bytes (`VmHWM`).
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the agent's status");
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status");
    kib << 10
}

/// In the real agent, each hostile guest of the issue's cases is held to its budget while the
/// agent's other output keeps delivering: peak RSS stays under the agent's own, plus
/// (workers + spare) x (`wasm_memory_limit` + the host-side margin of docs/security.md).
#[test]
fn real_agent_holds_hostile_guests_to_their_budget_while_another_output_delivers() {
    let Some(agent) = std::env::var_os("FLUENT_BIT") else {
        eprintln!(
            "SKIP real_agent_holds_hostile_guests_to_their_budget_while_another_output_delivers: FLUENT_BIT is not \
             set (the path of a fluent-bit binary); this test needs the real agent"
        );
        return;
    };
    // The agent, the plugin, its engine and a compiled guest, with room to spare (measured:
    // docs/security.md); the guest's own budget is 32 MiB, with 21 MiB of host-side margin.
    const AGENT_AND_PLUGIN: u64 = 96 << 20;
    const PER_INSTANCE: u64 = (32 + 21) << 20;
    for (mode, matched, event, marks) in [("hold-fields", "evil", "flush", 8), ("idle-flood", "nothing", "idle", 40)] {
        let sync = SyncDir::new(&format!("agent-{mode}"));
        let dir = out_wasm_e2e::scratch_dir("sandbox-agent");
        let delivered = dir.join(format!("{mode}.out"));
        let _ = std::fs::remove_file(&delivered);
        let config = dir.join(format!("{mode}.conf"));
        std::fs::write(
            &config,
            format!(
                "[SERVICE]\n    Flush 0.2\n    Grace 1\n    Log_Level info\n\n\
                 [INPUT]\n    Name dummy\n    Tag evil\n    Dummy {EVIL}\n    Rate 5\n\n\
                 [INPUT]\n    Name dummy\n    Tag good\n    Dummy {PLAIN}\n    Rate 5\n\n\
                 [OUTPUT]\n    Name wasm\n    Match {matched}\n    wasm_path {}\n    mode {mode}\n    sync_dir {}\n    \
                 wasm_allow_dirs {}\n    wasm_memory_limit 32M\n    wasm_idle_interval 10ms\n    wasm_idle_budget 2s\n    \
                 wasm_watch off\n\n\
                 [OUTPUT]\n    Name file\n    Match good\n    Path {}\n    File {}\n",
                guest_path("hostile").display(),
                SyncDir::GUEST,
                sync.grant(),
                dir.display(),
                delivered.file_name().unwrap().to_str().unwrap(),
            ),
        )
        .unwrap();
        let agent = out_wasm_e2e::RealAgent::start(&agent, &config, std::process::Stdio::null());
        sync.wait_for_marks(event, marks, &format!("{mode}: the guest's {event} calls in the agent"));
        let before = std::fs::read_to_string(&delivered).map(|text| text.lines().count()).unwrap_or(0);
        out_wasm_e2e::sync::wait_until(&format!("{mode}: the file output delivering meanwhile"), || {
            std::fs::read_to_string(&delivered).is_ok_and(|text| text.lines().count() > before)
        });
        let peak = peak_rss(agent.child.id());
        let log = agent.stop();
        let bound = AGENT_AND_PLUGIN + 2 * PER_INSTANCE;
        eprintln!("{mode}: the agent's peak RSS {} MiB (bound {} MiB)", peak >> 20, bound >> 20);
        assert!(peak < bound, "{mode}: the agent's peak RSS {} MiB, over {} MiB; log:\n{log}", peak >> 20, bound >> 20);
        if mode == "hold-fields" {
            assert!(log.contains("exceeded its handle limit") && log.contains("hostile.wasm"), "{log}");
        }
    }
}

/// The descriptors this process holds on `file` (by name), or on TCP connections to `port`:
/// what a guest holds, whatever the tests running beside it open.
fn held_on(file: &str, port: u16) -> usize {
    held_by("self", file, port)
}

/// As [`held_on`], for the process `pid` (`self`: this one).
fn held_by(pid: &str, file: &str, port: u16) -> usize {
    let tcp = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).unwrap_or_default()
        + &std::fs::read_to_string(format!("/proc/{pid}/net/tcp6")).unwrap_or_default();
    // sl local_address rem_address st ... inode: the sockets whose remote end is `port`.
    let inodes: Vec<String> = tcp
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let remote = u16::from_str_radix(fields.get(2)?.rsplit(':').next()?, 16).ok()?;
            let inode = fields.get(9)?;
            // Port 0: the remote end of a listening socket, no connection.
            (port != 0 && remote == port).then(|| format!("socket:[{inode}]"))
        })
        .collect();
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("the process's descriptors")
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter(|target| target.ends_with(file) || inodes.iter().any(|inode| target.as_os_str() == inode.as_str()))
        .count()
}

/// An HTTP/1.1 endpoint on loopback that answers every request with a 5-byte body and keeps
/// every connection open: a client that never reads a body to its end needs a connection per
/// request.
fn holding_http_server() -> u16 {
    use std::io::{BufRead, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut reader = std::io::BufReader::new(stream);
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    if line == "\r\n"
                        && reader.get_mut().write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello").is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// A guest that opens files, sockets or HTTP connections and closes none is refused past its
/// output's `wasm_max_descriptors`, with a warn line naming what it was refused: the process
/// holds at most the cap for it (counted in /proc/self/fd), the same instance serves on,
/// another output keeps delivering, and the descriptors are closed when the instance exits.
#[test]
fn a_guest_that_never_closes_is_refused_past_the_descriptor_cap() {
    const CAP: usize = 16;
    let dir = out_wasm_e2e::scratch_dir("descriptors");
    std::fs::write(dir.join("held.txt"), "held\n").unwrap();
    let dirs = format!("{}:/data", dir.display());
    // Connections wait in the listener's backlog (128), never accepted.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let socket_port = listener.local_addr().unwrap().port();
    let sockets = format!("127.0.0.1:{socket_port}");
    let http_port = holding_http_server();
    let http = format!("127.0.0.1:{http_port}");
    let url = format!("http://{http}/");
    let refused_http = format!("a new HTTP connection to 127.0.0.1:{http_port}");
    // mode, target, grant, what the host refuses, the port of the connections held.
    type Case<'a> = (&'a str, &'a str, (&'a str, &'a str), &'a str, u16);
    let cases: [Case; 3] = [
        ("open-files", "/data/held.txt", ("wasm_allow_dirs", &dirs), "the file \"held.txt\"", 0),
        ("open-sockets", &sockets, ("wasm_allow_net", &sockets), "a TCP socket", socket_port),
        ("open-http", &url, ("wasm_allow_net", &http), &refused_http, http_port),
    ];
    let cap = CAP.to_string();
    let guest = guest_path("hostile").display().to_string();
    for (mode, target, grant, refused, port) in cases {
        let (plugin, instance) =
            hostile(mode, &[("target", target), ("every", "1000"), ("wasm_max_descriptors", &cap), grant]);
        let (other_plugin, other) = hostile("open-files", &[]);
        let call = instance.flush(&chunk(&[EVIL], 1, 0), "t");
        assert_eq!(call.value, FLB_ERROR, "{mode}: the guest reports the refusal; log:\n{}", call.log_text());
        assert_logged(&call, 1, &[&format!("hostile {mode} refused after {CAP}: ")]);
        assert_logged(
            &call,
            2,
            &[&format!("the host refused guest '{guest}' {refused}: "), "hold 16 descriptors", "wasm_max_descriptors"],
        );
        let held = held_on("held.txt", port);
        eprintln!("{mode}: the process holds {held} descriptors for the guest, capped at {CAP}");
        assert_eq!(held, CAP, "{mode}: the guest holds what it was allowed, no more");
        // Refused, not faulted: the same instance serves on, and so does another output.
        let next = instance.flush(&chunk(&[PLAIN], 1, 0), "t");
        assert_eq!(next.value, FLB_OK, "{mode}: log:\n{}", next.log_text());
        assert!(lines_with(&next, "hostile init").is_empty(), "{mode}: no new instance:\n{}", next.log_text());
        let delivered = other.flush(&chunk(&[PLAIN], 1, 0), "t");
        assert_eq!(delivered.value, FLB_OK, "{mode}: the other output delivers; log:\n{}", delivered.log_text());
        instance.exit();
        plugin.close();
        other.exit();
        other_plugin.close();
        // The connections' tasks end as the output's runtime shuts down.
        wait_until(&format!("{mode}: the guest's descriptors closed with its instance"), || {
            held_on("held.txt", port) == 0
        });
    }
    drop(listener);
}

/// The same in the real agent (`FLUENT_BIT`), run with 256 descriptors (`ulimit -n`): beside a
/// guest that opens a file on every flush and closes none, the agent's own `file` output
/// opens its file on every flush. With the default `wasm_max_descriptors` (64) the guest holds
/// exactly 64, is refused past them with a warn line, and the `file` output keeps delivering
/// (its file grows after the refusals); the agent never runs out of descriptors.
#[test]
fn real_agent_keeps_delivering_when_a_guest_never_closes_what_it_opens() {
    let Some(agent) = std::env::var_os("FLUENT_BIT") else {
        eprintln!(
            "SKIP real_agent_keeps_delivering_when_a_guest_never_closes_what_it_opens: FLUENT_BIT is not set (the \
             path of a fluent-bit binary); this test needs the real agent"
        );
        return;
    };
    let dir = out_wasm_e2e::scratch_dir("agent-descriptors");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("held.txt"), "held\n").unwrap();
    let out = dir.join("out");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    let config = dir.join("agent.conf");
    std::fs::write(
        &config,
        format!(
            "[SERVICE]\n    Flush 0.2\n    Grace 1\n    Log_Level info\n\n\
             [INPUT]\n    Name dummy\n    Tag evil\n    Dummy {EVIL}\n    Rate 5\n\n\
             [INPUT]\n    Name dummy\n    Tag plain\n    Dummy {PLAIN}\n    Rate 5\n\n\
             [OUTPUT]\n    Name wasm\n    Match evil\n    wasm_path {}\n    mode open-files\n    \
             target /data/held.txt\n    every 1000\n    wasm_allow_dirs {}:/data\n    wasm_watch off\n\n\
             [OUTPUT]\n    Name file\n    Match plain\n    Path {}\n    File plain.out\n",
            guest_path("hostile").display(),
            data.display(),
            out.display()
        ),
    )
    .unwrap();
    let command = format!(
        "ulimit -n 256 && exec '{}' -e '{}' -c '{}'",
        std::path::Path::new(&agent).display(),
        out_wasm_e2e::plugin_path().display(),
        config.display()
    );
    let mut child = std::process::Command::new("sh")
        .args(["-c", &command])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the agent starts");
    let stderr = child.stderr.take().unwrap();
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let reader = {
        let log = log.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = log.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        })
    };
    // Kills the agent should the test fail before it stopped.
    let mut child = out_wasm_e2e::KillOnDrop(child);
    let pid = child.0.id().to_string();
    let delivered = || std::fs::read_to_string(out.join("plain.out")).map_or(0, |text| text.lines().count());
    let refusal = "the host refused guest '";
    wait_until("the guest's refusal at the cap", || log.lock().unwrap().contains(refusal));
    let at_refusal = delivered();
    wait_until("the file output's deliveries after the refusal", || delivered() >= at_refusal + 10);
    let held = held_by(&pid, "held.txt", 0);
    let total = std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count();
    eprintln!(
        "the agent holds {total} descriptors (limit 256), {held} of them the guest's; the file output delivered \
         {} records",
        delivered()
    );
    assert_eq!(held, 64, "the guest holds wasm_max_descriptors' default, no more");
    // SAFETY: plain kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) }, 0, "SIGTERM sent");
    let status = child.0.wait().expect("wait");
    reader.join().unwrap();
    let log = log.lock().unwrap().clone();
    assert!(status.success(), "the agent stopped with {status}; log:\n{log}");
    assert!(!log.contains("Too many open files"), "the agent ran out of descriptors; log:\n{log}");
    let line = log.lines().find(|l| l.contains(refusal)).unwrap();
    assert!(line.contains("[ warn]") && line.contains("the file \"held.txt\": the output's guests hold 64"), "{line}");
}
