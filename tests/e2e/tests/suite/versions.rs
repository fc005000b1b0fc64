//! The WIT is a public contract: guests of every published version load side by side, and
//! what 0.2.0 added (event types, the flush context, guest metrics) works through the real
//! boundary.

use out_wasm_e2e::{chunk, guest_path, init_err, init_ok, lines_with, open_plugin};
use out_wasm_loader::{FLB_ERROR, FLB_OK, FLB_RETRY};

/// A cmetrics context as the agent packs it (no metrics): a map whose first key is `meta`.
const METRICS_CHUNK: &[u8] = b"\x82\xa4meta\x83\xa8cmetrics\x80\xa8external\x80\xaaprocessing\x80\xa7metrics\x90";
/// A ctraces context as the agent packs it (no spans).
const TRACES_CHUNK: &[u8] = b"\x81\xadresourceSpans\x90";

#[test]
fn a_0_1_0_guest_and_a_0_2_0_guest_serve_side_by_side() {
    let mut plugin = open_plugin();
    let old = guest_path("wit-0-1-0");
    let new = guest_path("probe");
    let data = chunk(&[r#"{"n":1}"#, r#"{"n":2}"#], 1, 0);

    let call = plugin.init(out_wasm_e2e::props(&[("wasm_path", old.to_str().unwrap()), ("label", "old")]));
    let text = call.log_text();
    let inits = lines_with(&call, "label=old format=msgpack");
    assert_eq!(inits.len(), 2, "the first instance and the warm spare:\n{text}");
    assert!(inits[0].contains("v0.1.0 init instance=wasm."), "the instance name reaches the guest: {}", inits[0]);
    let old = call.value.unwrap_or_else(|code| panic!("the 0.1.0 guest loads, got {code}:\n{text}"));
    let new = init_ok(&mut plugin, &[("wasm_path", new.to_str().unwrap()), ("label", "new")]);

    for (tag, expected) in [("t", FLB_OK), ("retry", FLB_RETRY), ("error", FLB_ERROR)] {
        let call = old.flush(&data, tag);
        assert_eq!(call.value, expected, "0.1.0 guest, tag {tag}:\n{}", call.log_text());
        let line = format!("v0.1.0 flush tag={tag} bytes={}", data.len());
        assert_eq!(lines_with(&call, &line).len(), 1, "expected {line:?} in:\n{}", call.log_text());
    }
    let call = new.flush(&data, "t");
    assert_eq!(call.value, FLB_OK, "{}", call.log_text());
    assert_eq!(lines_with(&call, "probe context #1 type=logs time_left=some").len(), 1, "{}", call.log_text());
    assert_eq!(lines_with(&call, "probe flushed #1 records=2").len(), 1, "{}", call.log_text());

    // A 0.1.0 guest takes logs only: a metrics chunk never reaches it.
    let call = old.flush(METRICS_CHUNK, "m");
    assert_eq!(call.value, FLB_OK, "{}", call.log_text());
    assert!(lines_with(&call, "v0.1.0 flush").is_empty(), "the guest was not called:\n{}", call.log_text());

    let exit = old.exit();
    assert_eq!(lines_with(&exit, "v0.1.0 exit flushes=3").len(), 1, "{}", exit.log_text());
    new.exit();
    plugin.close();
}

#[test]
fn a_0_1_0_guest_gets_json_lines_but_not_otlp() {
    let mut plugin = open_plugin();
    let old = guest_path("wit-0-1-0");
    let pairs = [("wasm_path", old.to_str().unwrap()), ("label", "j"), ("wasm_event_format", "json_lines")];
    let call = plugin.init(out_wasm_e2e::props(&pairs));
    assert_eq!(lines_with(&call, "format=json-lines").len(), 2, "{}", call.log_text());
    let instance = call.value.expect("json_lines is a 0.1.0 format");
    let expected = "{\"date\":1.0,\"n\":1}\n".len();
    let call = instance.flush(&chunk(&[r#"{"n":1}"#], 1, 0), "t");
    assert_eq!(lines_with(&call, &format!("bytes={expected}")).len(), 1, "{}", call.log_text());
    instance.exit();

    let pairs = [("wasm_path", old.to_str().unwrap()), ("label", "o"), ("wasm_event_format", "otlp_json")];
    let refused = init_err(&mut plugin, &pairs);
    let text = refused.log_text();
    assert!(text.contains("otlp_json needs a guest built against out-wasm:output@0.2.0"), "{text}");
    assert!(text.contains("this one is 0.1.0"), "{text}");
    plugin.close();
}

#[test]
fn chunks_of_a_type_the_guest_does_not_accept_are_answered_ok_without_it() {
    let mut plugin = open_plugin();
    let probe = guest_path("probe");
    let instance = init_ok(&mut plugin, &[("wasm_path", probe.to_str().unwrap()), ("label", "logs-only")]);
    for (chunk, name) in [(METRICS_CHUNK, "metrics"), (TRACES_CHUNK, "traces")] {
        for attempt in 0..2 {
            let call = instance.flush(chunk, "m");
            assert_eq!(call.value, FLB_OK, "{name} chunk #{attempt}:\n{}", call.log_text());
            assert!(lines_with(&call, "probe context").is_empty(), "the guest was not called:\n{}", call.log_text());
            let said = lines_with(&call, &format!("the guest does not accept {name} (accepted-event-types)"));
            assert_eq!(said.len(), usize::from(attempt == 0), "said once per type:\n{}", call.log_text());
        }
    }
    instance.exit();
    plugin.close();
}

#[test]
fn a_guest_that_accepts_metrics_and_traces_is_told_the_type_and_its_time_left() {
    // SAFETY: every test in this process that reads PROBE_ACCEPT wants the same value.
    unsafe { std::env::set_var("PROBE_ACCEPT", "logs,metrics,traces") };
    let mut plugin = open_plugin();
    let probe = guest_path("probe");
    let path = probe.to_str().unwrap();
    let instance = init_ok(&mut plugin, &[("wasm_path", path), ("label", "all"), ("wasm_allow_env", "PROBE_ACCEPT")]);
    for (chunk, name) in [(METRICS_CHUNK, "metrics"), (TRACES_CHUNK, "traces")] {
        let call = instance.flush(chunk, "x");
        assert_eq!(call.value, FLB_OK, "{}", call.log_text());
        let line = format!("type={name} time_left=some bytes={}", chunk.len());
        assert_eq!(lines_with(&call, &line).len(), 1, "expected {line:?} in:\n{}", call.log_text());
    }
    instance.exit();

    let pairs = [("wasm_path", path), ("label", "nodl"), ("wasm_allow_env", "PROBE_ACCEPT"), ("wasm_deadlines", "off")];
    let instance = init_ok(&mut plugin, &pairs);
    let call = instance.flush(METRICS_CHUNK, "x");
    assert_eq!(lines_with(&call, "type=metrics time_left=none").len(), 1, "{}", call.log_text());
    instance.exit();
    plugin.close();
}

#[test]
fn guest_metrics_are_capped_per_output_instance() {
    let mut plugin = open_plugin();
    let probe = guest_path("probe");
    let pairs = [
        ("wasm_path", probe.to_str().unwrap()),
        ("label", "m"),
        ("metrics", "on"),
        ("wasm_metrics_max_series", "2"),
        ("wasm_metrics_max_label_len", "8"),
    ];
    let instance = init_ok(&mut plugin, &pairs);
    let data = chunk(&[r#"{"n":1}"#], 1, 0);
    for tag in ["a", "b", "a", "b"] {
        let call = instance.flush(&data, tag);
        assert_eq!(call.value, FLB_OK, "series {tag} fits:\n{}", call.log_text());
    }
    let call = instance.flush(&data, "c");
    assert_eq!(call.value, FLB_ERROR, "a third series is refused:\n{}", call.log_text());
    let text = call.log_text();
    assert!(text.contains("wasm_metrics_max_series"), "the refusal names the cap:\n{text}");
    assert_eq!(lines_with(&call, "guest metric refused").len(), 1, "and is logged at warn:\n{text}");
    let call = instance.flush(&data, "waytoolongtag");
    assert_eq!(call.value, FLB_ERROR, "{}", call.log_text());
    assert!(call.log_text().contains("wasm_metrics_max_label_len"), "{}", call.log_text());
    assert!(lines_with(&call, "guest metric refused").is_empty(), "warnings are rate-limited:\n{}", call.log_text());
    instance.exit();
    plugin.close();
}

#[test]
fn a_0_2_0_guest_serves_unchanged_beside_the_newest() {
    let mut plugin = open_plugin();
    let old = guest_path("wit-0-2-0");
    let new = guest_path("probe");
    let data = chunk(&[r#"{"n":1}"#, r#"{"n":2}"#], 1, 0);
    let call = plugin.init(out_wasm_e2e::props(&[("wasm_path", old.to_str().unwrap()), ("label", "old")]));
    let text = call.log_text();
    assert_eq!(lines_with(&call, "v0.2.0 init instance=wasm.").len(), 2, "the instance and its spare:\n{text}");
    let old = call.value.unwrap_or_else(|code| panic!("the 0.2.0 guest loads, got {code}:\n{text}"));
    let new = init_ok(&mut plugin, &[("wasm_path", new.to_str().unwrap()), ("label", "new")]);
    for (tag, expected) in [("t", FLB_OK), ("retry", FLB_RETRY), ("error", FLB_ERROR)] {
        let call = old.flush(&data, tag);
        assert_eq!(call.value, expected, "0.2.0 guest, tag {tag}:\n{}", call.log_text());
        let line = format!("v0.2.0 flush tag={tag} type=logs time_left=some bytes={}", data.len());
        assert_eq!(lines_with(&call, &line).len(), 1, "expected {line:?} in:\n{}", call.log_text());
    }
    // It accepts metrics as 0.2.0 guests could; its numbered metric interface is served.
    let call = old.flush(METRICS_CHUNK, "m");
    assert_eq!(call.value, FLB_OK, "{}", call.log_text());
    assert_eq!(lines_with(&call, "v0.2.0 flush tag=m type=metrics").len(), 1, "{}", call.log_text());
    let call = new.flush(&data, "t");
    assert_eq!(lines_with(&call, "probe delivery #1 id=").len(), 1, "the newest gets a delivery:\n{}", call.log_text());
    let exit = old.exit();
    assert_eq!(lines_with(&exit, "v0.2.0 exit flushes=4").len(), 1, "{}", exit.log_text());
    new.exit();

    // JSON lines with other options than the agent's defaults need 0.3.0.
    let pairs =
        [("wasm_path", guest_path("wit-0-2-0")), ("label", "j".into()), ("wasm_event_format", "json_lines".into())];
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.to_str().unwrap())).collect();
    let call = plugin.init(out_wasm_e2e::props(&pairs));
    assert_eq!(
        lines_with(&call, "format=json-lines").len(),
        2,
        "the agent's defaults are a 0.2.0 format:\n{}",
        call.log_text()
    );
    call.value.expect("json_lines with defaults").exit();
    plugin.close();
}

#[test]
fn the_config_lookup_reads_any_key_of_the_section_but_the_hosts() {
    let mut plugin = open_plugin();
    let probe = guest_path("probe");
    let pairs = [
        ("wasm_path", probe.to_str().unwrap()),
        ("label", "lookup"),
        ("lookup", "key_str0, Key_Str1, wasm_path, match, absent"),
        ("key_str0", "first"),
        ("key_str1", " second "),
        ("match", "*"),
    ];
    let call = plugin.init(out_wasm_e2e::props(&pairs));
    let text = call.log_text();
    for line in [
        "probe lookup key_str0=first",
        "probe lookup Key_Str1=second",
        "probe lookup wasm_path unset",
        "probe lookup match unset",
        "probe lookup absent unset",
    ] {
        assert_eq!(lines_with(&call, line).len(), 2, "expected {line:?} from the instance and its spare:\n{text}");
    }
    call.value.expect("the probe starts").exit();
    plugin.close();
}

#[test]
fn a_delivery_has_the_same_id_on_every_attempt_and_counts_them() {
    let mut plugin = open_plugin();
    let probe = guest_path("probe");
    let instance = init_ok(&mut plugin, &[("wasm_path", probe.to_str().unwrap()), ("label", "d"), ("mode", "retry")]);
    let data = chunk(&[r#"{"n":1}"#], 1, 0);
    let delivery = |call: &out_wasm_loader::Logged<i32>| -> (String, String) {
        let line = lines_with(call, "probe delivery #").pop().unwrap_or_else(|| panic!("{}", call.log_text()));
        let id = line.split(" id=").nth(1).unwrap().split(' ').next().unwrap().to_owned();
        let attempt = line.split(" attempt=").nth(1).unwrap().to_owned();
        (id, attempt)
    };
    let first = delivery(&instance.flush(&data, "app"));
    assert_eq!(first.1, "1");
    assert_eq!(first.0.len(), 32, "128 bits in hex: {first:?}");
    assert_eq!(
        delivery(&instance.flush(&data, "app")),
        (first.0.clone(), "2".into()),
        "a retry: the same id, attempt 2"
    );
    let other = delivery(&instance.flush(&data, "other"));
    assert_ne!(other.0, first.0, "another tag is another chunk");
    assert_eq!(other.1, "1");
    // A fault discards the instance; the next attempt, on a fresh one, still counts.
    let trap = chunk(&[r#"{"probe":"trap"}"#], 1, 0);
    let call = instance.flush(&trap, "app");
    assert_eq!(call.value, FLB_RETRY, "{}", call.log_text());
    assert_eq!(delivery(&call).1, "1");
    let call = instance.flush(&data, "app");
    assert_eq!(lines_with(&call, "probe context #1 ").len(), 1, "a fresh instance (the spare):\n{}", call.log_text());
    assert_eq!(delivery(&call), (first.0, "3".into()), "counted across guest instances");
    instance.exit();
    plugin.close();
}

#[test]
fn idle_calls_give_background_work_time_between_flushes() {
    let sync = out_wasm_e2e::sync::SyncDir::new("idle");
    let mut plugin = open_plugin();
    let probe = guest_path("probe");
    let grant = sync.grant();
    let pairs = [
        ("wasm_path", probe.to_str().unwrap()),
        ("label", "idle"),
        ("idle", "on"),
        ("gate_dir", out_wasm_e2e::sync::SyncDir::GUEST),
        ("wasm_allow_dirs", grant.as_str()),
        ("wasm_idle_interval", "20ms"),
        ("wasm_idle_budget", "5ms"),
        ("wasm_warm_spare", "off"),
    ];
    let instance = init_ok(&mut plugin, &pairs);
    // The probe's flushes wait at the gate of its directory: open from the start.
    sync.open_gate();
    // With no flush at all, the instance keeps getting its idle calls.
    sync.wait_for_marks("idle", 3, "idle calls after init");
    // Their lines, written while no agent call waited, come with the next call the agent makes.
    let call = instance.flush(&chunk(&[r#"{"n":1}"#], 1, 0), "app");
    assert_eq!(call.value, FLB_OK, "{}", call.log_text());
    let idles = lines_with(&call, "probe idle #");
    assert!(idles.len() >= 3, "the idle calls' lines:\n{}", call.log_text());
    assert!(idles[0].ends_with("budget_ms=5"), "the budget is wasm_idle_budget: {}", idles[0]);
    let marks = sync.marks("idle");
    sync.wait_for_marks("idle", marks + 2, "idle calls after a flush");
    instance.exit();
    plugin.close();
}

#[test]
fn an_idle_call_that_traps_discards_the_instance_and_the_next_flush_gets_a_fresh_one() {
    let sync = out_wasm_e2e::sync::SyncDir::new("idle-trap");
    let mut plugin = open_plugin();
    let probe = guest_path("probe");
    let grant = sync.grant();
    let pairs = [
        ("wasm_path", probe.to_str().unwrap()),
        ("label", "idle-trap"),
        ("idle", "trap"),
        ("gate_dir", out_wasm_e2e::sync::SyncDir::GUEST),
        ("wasm_allow_dirs", grant.as_str()),
        ("wasm_idle_interval", "20ms"),
        ("wasm_warm_spare", "off"),
    ];
    let instance = init_ok(&mut plugin, &pairs);
    sync.open_gate();
    sync.wait_for_marks("idle", 1, "the idle call");
    let call = instance.flush(&chunk(&[r#"{"n":1}"#], 1, 0), "app");
    let text = call.log_text();
    assert_eq!(call.value, FLB_OK, "a fresh instance takes the flush:\n{text}");
    let fault = lines_with(&call, "faulted in idle and is discarded");
    assert_eq!(fault.len(), 1, "the idle fault is logged:\n{text}");
    assert!(fault[0].contains("probe.wasm") && fault[0].contains("guest trapped"), "{}", fault[0]);
    assert_eq!(lines_with(&call, "probe init instance=").len(), 1, "a new instance started:\n{text}");
    instance.exit();
    plugin.close();
}

/// A published version is a contract: its WIT never changes, byte for byte (a change is a new
/// version in `wit/`, with `@since`). These are the files as they were published; the current
/// version's frozen copy is `wit/`'s own files, word for word.
#[test]
fn the_frozen_wit_versions_never_change() {
    use sha2::Digest;
    let frozen = [
        ("v0.1.0/logging.wit", "1191b162d8aefe09b80122626b4c2e8e88d2b24573e06add719511ad0d302076"),
        ("v0.1.0/output.wit", "7eac918d9c986a442a07049de68fb58b4a8d6fb045a6b7b960946b3c566ed2e6"),
        ("v0.1.0/types.wit", "0be1ac58a00fae4927ae67f850b630755b532daeede4ce56366aa796c1d9065a"),
        ("v0.1.0/world.wit", "4dcfe8e874c875b9cc063e4abf8c4282de96f9ee1144de74b64cf5141b3bd41b"),
        ("v0.2.0/logging.wit", "1191b162d8aefe09b80122626b4c2e8e88d2b24573e06add719511ad0d302076"),
        ("v0.2.0/metrics.wit", "aa3c8197b1ad6c6120460970cd89ba27f5e260f80b3a33fb279c97cf1db68582"),
        ("v0.2.0/output.wit", "1c2ad0992b075b144c2eb887ad30099a53a2358f440d235dc664b3d361c63f64"),
        ("v0.2.0/types.wit", "17b3903148977c6053ba96e8251f411ee706c1206bea21954ccb020b04e1760e"),
        ("v0.2.0/world.wit", "dbe41036c0fb24ea6b1af3a386abee0dbae8a580e6a3f75113d74d683bd8b2fa"),
        ("v0.3.0/config.wit", "77f854951bd02541342460080c7784b3e3401dd403574de80bf15e2216401373"),
        ("v0.3.0/logging.wit", "95594d37db20fdc333ddae51a943167c27ef97c9ff5af673aefc1ddae7674971"),
        ("v0.3.0/metrics.wit", "bf2a323985ae1d71c3da7e01819cf36026489152e77a46750670eced523976bd"),
        ("v0.3.0/output.wit", "ab63f1659d52127081f7c83b19b5ac0632c093901a2b8c00916b66eb9ad6131d"),
        ("v0.3.0/types.wit", "e10cbfd30db9123cc4bffe83f1a4b5a6892e559e0360a45050bfa5d168b08511"),
        ("v0.3.0/world.wit", "fb427d464a1ae27b86c57738e69bf09632d6ac8568d8e6f8effbe1db63356f05"),
    ];
    let wit = out_wasm_e2e::workspace_root().join("wit");
    let versions = ["v0.1.0", "v0.2.0", "v0.3.0"];
    for version in versions {
        let mut files: Vec<String> = std::fs::read_dir(wit.join(version))
            .unwrap()
            .map(|entry| format!("{version}/{}", entry.unwrap().file_name().to_string_lossy()))
            .collect();
        files.sort();
        let published: Vec<&str> = frozen.iter().filter(|(f, _)| f.starts_with(version)).map(|(f, _)| *f).collect();
        assert_eq!(files, published, "the files of {version}: none added or removed");
    }
    for (file, digest) in frozen {
        let bytes = std::fs::read(wit.join(file)).unwrap();
        let actual: String = sha2::Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(actual, digest, "wit/{file} changed: a published version is frozen; add to the newest instead");
    }
    // Every version has its frozen folder: the newest too, until a next one is begun in `wit/`.
    let current = current_version();
    assert!(versions.contains(&format!("v{current}").as_str()), "wit/ is {current}: freeze it in wit/v{current}/");
    if versions.last() == Some(&format!("v{current}").as_str()) {
        for (file, _) in frozen.iter().filter(|(f, _)| f.starts_with(&format!("v{current}/"))) {
            let name = file.split_once('/').unwrap().1;
            assert_eq!(
                std::fs::read(wit.join(name)).unwrap(),
                std::fs::read(wit.join(file)).unwrap(),
                "wit/{name} differs from its frozen copy wit/{file}: a change is the next version (edit wit/world.wit's \
                 package version, then freeze it)"
            );
        }
    }
}

/// The version `wit/` holds, from its package line.
fn current_version() -> String {
    let world = std::fs::read_to_string(out_wasm_e2e::workspace_root().join("wit/world.wit")).unwrap();
    let line = world.lines().find(|l| l.starts_with("package out-wasm:output@")).expect("a package line");
    line.trim_start_matches("package out-wasm:output@").trim_end_matches(';').to_owned()
}

/// What the docs say a guest builds against, or the host supports, is the current version:
/// `out-wasm:output...@X`, "against WIT X", "build against X".
#[test]
fn the_docs_name_the_current_wit_version() {
    let current = current_version();
    let root = out_wasm_e2e::workspace_root();
    let mut pages = vec![root.join("README.md")];
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        pages.push(entry.unwrap().path());
    }
    let mut stale = Vec::new();
    for page in pages.iter().filter(|p| p.extension().is_some_and(|e| e == "md")) {
        let text = std::fs::read_to_string(page).unwrap().replace('\n', " ");
        for pattern in ["output@", "output-plugin@", "against WIT ", "build against ", "written against "] {
            for (at, _) in text.match_indices(pattern) {
                let version: String = text[at + pattern.len()..]
                    .trim_start_matches('`')
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '.')
                    .collect::<String>()
                    .trim_end_matches('.')
                    .to_owned();
                if version.split('.').count() == 3 && version != current {
                    stale.push(format!("{}: {pattern}{version}", page.display()));
                }
            }
        }
    }
    assert!(
        stale.is_empty(),
        "pages naming another version than wit/'s {current} as the current one:\n{}",
        stale.join("\n")
    );
}
