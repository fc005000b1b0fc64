//! Bad input from the agent, through the real boundary: arbitrary bytes as chunks, an empty
//! chunk and a NULL chunk never crash or hang the plugin, and never poison the guest.
//! Bounded: `OUT_WASM_FUZZ_CASES` chunks (default 500).

use out_wasm_e2e::{guest_path, init_ok, lines_with, open_plugin};
use out_wasm_loader::{FLB_ERROR, FLB_OK, LoadedOutput, Plugin};
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("OUT_WASM_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(500)
}

fn probe() -> (Plugin, LoadedOutput) {
    let path = guest_path("probe");
    let mut plugin = open_plugin();
    let instance = init_ok(
        &mut plugin,
        &[("wasm_path", path.to_str().unwrap()), ("label", "fuzz"), ("log_level", "error"), ("wasm_watch", "off")],
    );
    (plugin, instance)
}

#[test]
fn arbitrary_chunks_are_answered_without_faults() {
    let (plugin, instance) = probe();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(cases()));
    let chunks = proptest::collection::vec(any::<u8>(), 0..2048);
    let seen = std::cell::Cell::new(0u64);
    runner
        .run(&chunks, |bytes| {
            seen.set(seen.get() + 1);
            let call = instance.flush(&bytes, "fuzz");
            prop_assert!(
                call.value == FLB_OK || call.value == FLB_ERROR,
                "answer {}; log:\n{}",
                call.value,
                call.log_text()
            );
            prop_assert!(lines_with(&call, "faulted").is_empty(), "the guest faulted:\n{}", call.log_text());
            Ok(())
        })
        .unwrap();
    eprintln!("{} arbitrary chunks flushed", seen.get());
    // After all of that the same guest instance still serves, and exits cleanly.
    let exit = instance.exit();
    assert_eq!(exit.value, FLB_OK);
    plugin.close();
}

#[test]
fn empty_and_null_chunks_are_empty_chunks() {
    let (plugin, instance) = probe();
    let tag = c"t";
    for call in [instance.flush_here(&[], tag), instance.flush_null(tag)] {
        assert_eq!(call.value, FLB_OK);
    }
    instance.exit();
    plugin.close();
}
