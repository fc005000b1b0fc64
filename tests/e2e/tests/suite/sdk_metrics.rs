//! Guest metrics through each language's SDK: the `stdout` example of Python, JavaScript and C
//! declares the counter `records_printed` (label `tag`) in init and adds the records it printed
//! after every flush.
//!
//! With `wasm_metrics_max_series 1`, the first tag's series is accepted and the second tag's
//! update is refused by the host. The refusal must reach the host's log (at warn, naming the
//! metric and the cap) and must not change the flush's answer: the guest prints its records and
//! answers FLB_OK. The examples print the lines the host renders (the agent-exact renderer lives
//! in the host alone): forced to `msgpack`, they refuse to start, naming `wasm_event_format`.

use out_wasm_e2e::{chunk, init_ok, language_guest, open_plugin};
use out_wasm_loader::{FLB_OK, status_name};

const REFUSED: &str = "guest metric refused";

fn refusals(call: &out_wasm_loader::Logged<i32>) -> Vec<&out_wasm_loader::LogLine> {
    call.logs.iter().filter(|line| line.message.contains(REFUSED)).collect()
}

fn refused_update_keeps_the_flush_ok(lang: &str) {
    let guest = language_guest(lang, "stdout");
    let mut plugin = open_plugin();
    let pairs = [("wasm_path", guest.to_str().unwrap()), ("wasm_event_format", "msgpack")];
    let refused = out_wasm_e2e::init_err(&mut plugin, &pairs);
    assert!(
        refused.log_text().contains("wasm_event_format"),
        "{lang}: msgpack is refused, naming the key:\n{}",
        refused.log_text()
    );
    plugin.close();
    let format = "json_lines";
    let mut plugin = open_plugin();
    let instance = init_ok(
        &mut plugin,
        &[
            ("wasm_path", guest.to_str().unwrap()),
            ("wasm_watch", "off"),
            ("wasm_stdout", "off"),
            ("wasm_event_format", format),
            ("wasm_metrics_max_series", "1"),
        ],
    );
    let data = chunk(&[r#"{"msg":"one"}"#, r#"{"msg":"two"}"#], 1_700_000_000, 0);

    let first = instance.flush(&data, "app.a");
    assert_eq!(
        first.value,
        FLB_OK,
        "{lang} ({format}): expected FLB_OK for the first tag, got {}; log:\n{}",
        status_name(first.value),
        first.log_text()
    );
    assert!(
        refusals(&first).is_empty(),
        "{lang} ({format}): the first tag's series fits the cap of 1, expected no refusal; log:\n{}",
        first.log_text()
    );

    let second = instance.flush(&data, "app.b");
    assert_eq!(
        second.value,
        FLB_OK,
        "{lang} ({format}): a refused metric update must not change the answer, got {}; log:\n{}",
        status_name(second.value),
        second.log_text()
    );
    let refused = refusals(&second);
    assert!(
        refused.len() == 1
            && refused[0].level == 2
            && refused[0].message.contains("'records_printed'")
            && refused[0].message.contains("wasm_metrics_max_series"),
        "{lang} ({format}): expected one warn line '{REFUSED}: ...' naming 'records_printed' and \
         wasm_metrics_max_series for the second tag; log:\n{}",
        second.log_text()
    );
    instance.exit();
    plugin.close();
}

#[test]
fn python_stdout_metric_is_declared_and_a_refused_update_keeps_the_flush_ok() {
    refused_update_keeps_the_flush_ok("python");
}

#[test]
fn js_stdout_metric_is_declared_and_a_refused_update_keeps_the_flush_ok() {
    refused_update_keeps_the_flush_ok("js");
}

#[test]
fn c_stdout_metric_is_declared_and_a_refused_update_keeps_the_flush_ok() {
    refused_update_keeps_the_flush_ok("c");
}
