//! Flushes through the real boundary: chunk layouts, answers, malformed chunks, traps.

use out_wasm_e2e::{chunk, chunk_with, guest_path, init_ok, lines_with, open_plugin};
use out_wasm_loader::{FLB_ERROR, FLB_OK, FLB_RETRY, Layout, TimeEncoding, status_name};

fn probe(extra: &[(&str, &str)]) -> (out_wasm_loader::Plugin, out_wasm_loader::LoadedOutput) {
    let path = guest_path("probe");
    let mut pairs = vec![("wasm_path", path.to_str().unwrap()), ("label", "p")];
    pairs.extend_from_slice(extra);
    let mut plugin = open_plugin();
    let instance = init_ok(&mut plugin, &pairs);
    (plugin, instance)
}

#[test]
fn both_record_layouts_and_every_timestamp_encoding_reach_the_guest() {
    let (plugin, instance) = probe(&[]);
    let cases = [
        (Layout::WithMetadata, TimeEncoding::EventTime, "ts=1700000000.250000000"),
        (Layout::Forward, TimeEncoding::EventTime, "ts=1700000000.250000000"),
        (Layout::WithMetadata, TimeEncoding::Integer, "ts=1700000000.000000000"),
        (Layout::Forward, TimeEncoding::Float, "ts=1700000000.250000000"),
    ];
    for (layout, encoding, ts) in cases {
        let data = chunk_with(
            &[r#"{"msg":"a","n":1}"#, r#"{"msg":"b","n":[true,null]}"#],
            1_700_000_000,
            250_000_000,
            layout,
            encoding,
        );
        let call = instance.flush(&data, "app.x");
        assert_eq!(call.value, FLB_OK, "{layout:?}/{encoding:?}: expected FLB_OK, log:\n{}", call.log_text());
        let events = lines_with(&call, "probe event");
        assert_eq!(events.len(), 2, "{layout:?}/{encoding:?}: both records decoded, log:\n{}", call.log_text());
        assert!(
            events[0].contains(&format!("tag=app.x {ts} meta={{}} body={{\"msg\":\"a\",\"n\":1}}")),
            "{layout:?}/{encoding:?}: {}",
            events[0]
        );
        assert!(events[1].ends_with(r#"body={"msg":"b","n":[true,null]}"#), "{layout:?}/{encoding:?}: {}", events[1]);
    }
    instance.exit();
    plugin.close();
}

#[test]
fn guest_answers_map_to_the_agents_status_codes() {
    for (mode, expected, log_level, needle) in [
        ("ok", FLB_OK, None, None),
        ("retry", FLB_RETRY, Some(2), Some("guest asked to retry the chunk of tag 't': probe was asked to retry")),
        (
            "error",
            FLB_ERROR,
            Some(1),
            Some("guest failed the chunk of tag 't', it is dropped: probe was asked to fail"),
        ),
    ] {
        let (plugin, instance) = probe(&[("mode", mode)]);
        let call = instance.flush(&chunk(&[r#"{"a":1}"#], 1, 0), "t");
        assert_eq!(
            call.value,
            expected,
            "mode {mode}: expected {}, got {}",
            status_name(expected),
            status_name(call.value)
        );
        if let (Some(level), Some(needle)) = (log_level, needle) {
            assert!(
                call.logs.iter().any(|l| l.level == level && l.message.contains(needle)),
                "mode {mode}: expected a level-{level} line with {needle:?}, log:\n{}",
                call.log_text()
            );
        }
        instance.exit();
        plugin.close();
    }
}

#[test]
fn a_malformed_chunk_is_dropped_with_the_byte_offset() {
    let (plugin, instance) = probe(&[]);
    // One good record, then a record whose EventTime is cut short.
    let mut data = chunk(&[r#"{"a":1}"#], 1, 0);
    let good = data.len();
    data.extend_from_slice(&[0x92, 0x92, 0xd7, 0x00, 0x01]);
    let call = instance.flush(&data, "t");
    assert_eq!(call.value, FLB_ERROR, "a malformed chunk cannot succeed later: FLB_ERROR, log:\n{}", call.log_text());
    let expected = format!("malformed chunk at byte offset {}", good + 4);
    assert!(
        call.logs.iter().any(|l| l.level == 1 && l.message.contains(&expected)),
        "expected an error line with {expected:?}, log:\n{}",
        call.log_text()
    );
    // The instance is still healthy: the decode error was the guest's answer, not a trap.
    let next = instance.flush(&chunk(&[r#"{"a":2}"#], 1, 0), "t");
    assert_eq!(next.value, FLB_OK);
    assert!(lines_with(&next, "probe init").is_empty(), "no new instance after a reported error:\n{}", next.log_text());
    assert_eq!(lines_with(&next, "probe flushed #2").len(), 1, "same instance serves on:\n{}", next.log_text());
    instance.exit();
    plugin.close();
}

#[test]
fn empty_chunks_are_delivered_as_empty() {
    let (plugin, instance) = probe(&[]);
    let call = instance.flush(&[], "t");
    assert_eq!(call.value, FLB_OK, "log:\n{}", call.log_text());
    assert_eq!(lines_with(&call, "probe flushed #1 records=0").len(), 1, "log:\n{}", call.log_text());
    instance.exit();
    plugin.close();
}

#[test]
fn a_trap_retries_the_chunk_and_a_fresh_instance_serves_the_next() {
    let (plugin, instance) = probe(&[]);
    let call = instance.flush(&chunk(&[r#"{"a":1}"#, r#"{"probe":"trap"}"#], 1, 0), "t");
    assert_eq!(call.value, FLB_RETRY, "a trap keeps the chunk: FLB_RETRY, log:\n{}", call.log_text());
    let fault = out_wasm_e2e::message_at(&call, 1, "faulted in flush")
        .unwrap_or_else(|| panic!("expected an error line about the fault, log:\n{}", call.log_text()));
    for needle in ["probe.wasm", "guest trapped", "will be retried", "probe::Probe"] {
        assert!(fault.contains(needle), "expected {needle:?} (with the wasm backtrace) in:\n{fault}");
    }

    let next = instance.flush(&chunk(&[r#"{"a":2}"#], 1, 0), "t");
    assert_eq!(next.value, FLB_OK, "log:\n{}", next.log_text());
    // The fresh instance is the warm spare, initialised before it was needed.
    assert_eq!(lines_with(&next, "probe flushed #1").len(), 1, "a fresh instance counts from 1:\n{}", next.log_text());
    let exit = instance.exit();
    assert_eq!(
        lines_with(&exit, "probe exit flushes=1").len(),
        1,
        "only the live instance exits:\n{}",
        exit.log_text()
    );
    plugin.close();
}
