//! The host's metrics through the real boundary: the loader plays an agent that exports
//! `flb_output_name` and cmetrics (its `agent_symbols` library records every cmetrics call
//! and applies cmetrics' rules), and the tests read the values and labels the plugin
//! published in each instance's context.
//!
//! Every test names its instance with a unique `alias`, so parallel tests read only their own
//! series; every test also checks that no call broke cmetrics' rules.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use out_wasm_e2e::{chunk, guest_path, init_ok, lines_with, open_plugin, props};
use out_wasm_loader::metrics::{Snapshot, load_agent_symbols, snapshot};
use out_wasm_loader::{FLB_OK, FLB_RETRY, LoadedOutput, Plugin};
use sha2::Digest;

fn agent_plugin() -> Plugin {
    load_agent_symbols().expect("the agent-symbols library loads");
    open_plugin()
}

/// What the instance named `alias` published, after checking nothing broke cmetrics' rules.
fn metrics_of(alias: &str) -> Snapshot {
    let all = snapshot();
    assert!(all.misuse.is_empty(), "calls that break cmetrics' or Prometheus's rules: {:#?}", all.misuse);
    assert!(all.refused.is_empty(), "calls cmetrics refuses: {:#?}", all.refused);
    all.of(alias)
}

fn value(m: &Snapshot, name: &str, labels: &[&str]) -> f64 {
    m.value(name, labels).unwrap_or_else(|| panic!("no series {name}{labels:?}; published:\n{}", m.prometheus()))
}

fn sha256(path: &Path) -> String {
    sha2::Sha256::digest(std::fs::read(path).unwrap()).iter().map(|b| format!("{b:02x}")).collect()
}

fn flush(instance: &LoadedOutput, data: &[u8]) -> i32 {
    let call = instance.flush(data, "metrics");
    call.value
}

#[test]
fn instances_are_named_as_the_agent_names_them_in_logs_init_context_and_metrics() {
    let mut plugin = agent_plugin();
    let probe = guest_path("probe");
    let path = probe.to_str().unwrap();

    let call = plugin.init(props(&[
        ("wasm_path", path),
        ("label", "p"),
        ("alias", "named-by-alias"),
        ("wasm_warm_spare", "off"),
    ]));
    assert!(
        lines_with(&call, "[output:wasm:named-by-alias] probe init instance=named-by-alias ").len() == 1,
        "the alias is the log prefix and init-context.instance:\n{}",
        call.log_text()
    );
    let aliased = call.value.expect("init succeeds");
    assert_eq!(value(&metrics_of("named-by-alias"), "fluentbit_wasm_instances", &["named-by-alias"]), 1.0);

    // Without an alias the agent names an instance `<plugin>.<index among all outputs>`: the
    // sixth output of a configuration is wasm.5 even if it is the first wasm one.
    let call = plugin.init(props(&[("wasm_path", path), ("label", "q"), ("wasm_warm_spare", "off")]).id(5));
    assert_eq!(
        lines_with(&call, "[output:wasm:wasm.5] probe init instance=wasm.5 ").len(),
        1,
        "the agent's name, not the plugin's count:\n{}",
        call.log_text()
    );
    let indexed = call.value.expect("init succeeds");
    assert_eq!(value(&metrics_of("wasm.5"), "fluentbit_wasm_instances", &["wasm.5"]), 1.0);
    aliased.exit();
    indexed.exit();
    plugin.close();
}

#[test]
fn flushes_records_bytes_latency_and_the_served_digest_are_counted() {
    let alias = "counted";
    let mut plugin = agent_plugin();
    let guest = guest_path("probe");
    let instance = init_ok(
        &mut plugin,
        &[
            ("wasm_path", guest.to_str().unwrap()),
            ("label", "c"),
            ("alias", alias),
            ("wasm_memory_limit", "64M"),
            ("wasm_warm_spare", "off"),
        ],
    );
    let three = chunk(&[r#"{"a":1}"#, r#"{"b":[1,{"c":2}]}"#, r#"{"d":"e"}"#], 1, 0);
    let one = chunk(&[r#"{"z":0}"#], 2, 0);
    assert_eq!(flush(&instance, &three), FLB_OK);
    assert_eq!(flush(&instance, &one), FLB_OK);

    let m = metrics_of(alias);
    let name = [alias];
    assert_eq!(value(&m, "fluentbit_wasm_flushes_total", &[alias, "ok"]), 2.0, "{}", m.prometheus());
    for result in ["retry", "error", "fault", "held", "skipped"] {
        assert_eq!(
            value(&m, "fluentbit_wasm_flushes_total", &[alias, result]),
            0.0,
            "result {result} is published as 0"
        );
    }
    assert_eq!(value(&m, "fluentbit_wasm_records_total", &name), 4.0);
    assert_eq!(value(&m, "fluentbit_wasm_bytes_total", &name), (three.len() + one.len()) as f64);
    let (count, sum) = m.histogram("fluentbit_wasm_flush_duration_seconds", &name).expect("a latency histogram");
    assert_eq!(count, 2, "one observation per flush");
    assert!(sum > 0.0, "flushes take time: {sum}");
    assert_eq!(value(&m, "fluentbit_wasm_instance_starts_total", &name), 1.0);
    assert_eq!(value(&m, "fluentbit_wasm_instances", &name), 1.0);
    let memory = value(&m, "fluentbit_wasm_memory_bytes", &name);
    assert!(memory > 0.0 && memory <= (64 << 20) as f64, "linear memory of the one instance: {memory}");
    assert_eq!(value(&m, "fluentbit_wasm_memory_limit_bytes", &name), (64 << 20) as f64);
    assert_eq!(value(&m, "fluentbit_wasm_component_info", &[alias, &sha256(&guest)]), 1.0);
    for kind in ["trap", "deadline", "memory", "host"] {
        assert_eq!(value(&m, "fluentbit_wasm_faults_total", &[alias, kind]), 0.0);
    }
    let labels = &m.metric("fluentbit_wasm_flushes_total").unwrap().label_keys;
    assert_eq!(labels, &["name", "result"], "the instance's name label comes first");

    instance.exit();
    let m = metrics_of(alias);
    assert_eq!(value(&m, "fluentbit_wasm_instances", &name), 0.0, "every instance ended at exit");
    assert_eq!(value(&m, "fluentbit_wasm_memory_bytes", &name), 0.0, "no live instance holds memory");
    plugin.close();
}

#[test]
fn guest_answers_and_faults_are_counted_by_result_and_kind() {
    let mut plugin = agent_plugin();
    let probe = guest_path("probe");
    let hostile = guest_path("hostile");
    let ok = chunk(&[r#"{"k":1}"#], 1, 0);
    let evil = chunk(&[r#"{"evil":true}"#], 1, 0);

    let retry = init_ok(
        &mut plugin,
        &[("wasm_path", probe.to_str().unwrap()), ("label", "r"), ("mode", "retry"), ("alias", "answers-retry")],
    );
    assert_eq!(flush(&retry, &ok), FLB_RETRY);
    let error = init_ok(
        &mut plugin,
        &[("wasm_path", probe.to_str().unwrap()), ("label", "e"), ("mode", "error"), ("alias", "answers-error")],
    );
    assert_eq!(flush(&error, &ok), 0);
    assert_eq!(value(&metrics_of("answers-retry"), "fluentbit_wasm_flushes_total", &["answers-retry", "retry"]), 1.0);
    assert_eq!(value(&metrics_of("answers-error"), "fluentbit_wasm_flushes_total", &["answers-error", "error"]), 1.0);
    retry.exit();
    error.exit();

    let hostile_path = hostile.to_str().unwrap();
    for (mode, kind, extra) in [
        ("panic", "trap", ("wasm_flush_timeout", "10s")),
        ("spin", "deadline", ("wasm_flush_timeout", "200ms")),
        ("alloc-until-cap", "memory", ("wasm_memory_limit", "16M")),
    ] {
        let alias = format!("fault-{kind}");
        let instance = init_ok(
            &mut plugin,
            &[("wasm_path", hostile_path), ("mode", mode), ("alias", &alias), ("wasm_warm_spare", "off"), extra],
        );
        assert_eq!(flush(&instance, &evil), FLB_RETRY, "mode {mode} faults");
        // The next flush starts a fresh instance and delivers.
        assert_eq!(flush(&instance, &ok), FLB_OK);
        let m = metrics_of(&alias);
        assert_eq!(value(&m, "fluentbit_wasm_faults_total", &[&alias, kind]), 1.0, "{mode}: {}", m.prometheus());
        let faults: f64 = ["trap", "deadline", "memory", "host"]
            .iter()
            .map(|k| value(&m, "fluentbit_wasm_faults_total", &[&alias, k]))
            .sum();
        assert_eq!(faults, 1.0, "{mode}: one fault, of kind {kind}: {}", m.prometheus());
        assert_eq!(value(&m, "fluentbit_wasm_flushes_total", &[&alias, "fault"]), 1.0);
        assert_eq!(value(&m, "fluentbit_wasm_flushes_total", &[&alias, "ok"]), 1.0);
        assert_eq!(
            value(&m, "fluentbit_wasm_instance_starts_total", &[&alias]),
            2.0,
            "the faulted one, then a fresh one"
        );
        assert_eq!(value(&m, "fluentbit_wasm_instances", &[&alias]), 1.0, "the faulted instance is gone");
        assert_eq!(value(&m, "fluentbit_wasm_records_total", &[&alias]), 2.0, "the faulted chunk was handed too");
        instance.exit();
    }
    plugin.close();
}

#[test]
fn dropped_log_lines_and_recycles_are_counted() {
    let mut plugin = agent_plugin();
    let hostile = guest_path("hostile");
    let evil = chunk(&[r#"{"evil":true}"#], 1, 0);

    let flood =
        init_ok(&mut plugin, &[("wasm_path", hostile.to_str().unwrap()), ("mode", "flood-log"), ("alias", "flood")]);
    assert_eq!(flush(&flood, &evil), FLB_OK);
    let m = metrics_of("flood");
    // 100,000 lines in one call, of which the first 1000 (LOG_LINES_PER_CALL) are written.
    assert_eq!(value(&m, "fluentbit_wasm_log_lines_dropped_total", &["flood"]), 99_000.0, "{}", m.prometheus());
    flood.exit();

    // Each evil flush keeps 4 MiB: with a 16 MiB cap, the instance passes 3/4 of it on the
    // third and is recycled after that flush.
    let leak = init_ok(
        &mut plugin,
        &[
            ("wasm_path", hostile.to_str().unwrap()),
            ("mode", "leak"),
            ("alias", "leaky"),
            ("wasm_memory_limit", "16M"),
            ("wasm_warm_spare", "off"),
        ],
    );
    let mut flushes = 0;
    while value(&metrics_of("leaky"), "fluentbit_wasm_instance_recycles_total", &["leaky"]) == 0.0 {
        assert!(flushes < 4, "no recycle after {flushes} leaking flushes");
        assert_eq!(flush(&leak, &evil), FLB_OK);
        flushes += 1;
    }
    let m = metrics_of("leaky");
    assert_eq!(value(&m, "fluentbit_wasm_instances", &["leaky"]), 0.0, "the recycled instance ended");
    assert_eq!(value(&m, "fluentbit_wasm_memory_bytes", &["leaky"]), 0.0, "its memory is no longer counted");
    assert_eq!(flush(&leak, &evil), FLB_OK);
    let m = metrics_of("leaky");
    assert_eq!(
        value(&m, "fluentbit_wasm_instance_starts_total", &["leaky"]),
        2.0,
        "a fresh instance took the next flush"
    );
    assert_eq!(value(&m, "fluentbit_wasm_faults_total", &["leaky", "memory"]), 0.0, "recycled before it hit the cap");
    leak.exit();
    plugin.close();
}

/// A guest that opens files and closes none is refused past `wasm_max_descriptors`: the
/// descriptors its output holds and the refusals are published.
#[test]
fn descriptors_held_and_refused_are_counted() {
    let mut plugin = agent_plugin();
    let hostile = guest_path("hostile");
    let dir = out_wasm_e2e::scratch_dir("metrics-descriptors");
    std::fs::write(dir.join("held.txt"), "held\n").unwrap();
    let grant = format!("{}:/data", dir.display());
    let instance = init_ok(
        &mut plugin,
        &[
            ("wasm_path", hostile.to_str().unwrap()),
            ("mode", "open-files"),
            ("target", "/data/held.txt"),
            ("every", "5"),
            ("wasm_allow_dirs", &grant),
            ("wasm_max_descriptors", "8"),
            ("alias", "opener"),
        ],
    );
    let evil = chunk(&[r#"{"evil":true}"#], 1, 0);
    assert_eq!(flush(&instance, &evil), FLB_OK, "5 of 8");
    let m = metrics_of("opener");
    assert_eq!(value(&m, "fluentbit_wasm_descriptors", &["opener"]), 5.0, "{}", m.prometheus());
    assert_eq!(value(&m, "fluentbit_wasm_descriptor_refusals_total", &["opener", "file"]), 0.0);
    assert_ne!(flush(&instance, &evil), FLB_OK, "3 more, then refused");
    let m = metrics_of("opener");
    assert_eq!(value(&m, "fluentbit_wasm_descriptors", &["opener"]), 8.0, "{}", m.prometheus());
    assert_eq!(value(&m, "fluentbit_wasm_descriptor_refusals_total", &["opener", "file"]), 1.0);
    assert_eq!(value(&m, "fluentbit_wasm_descriptor_refusals_total", &["opener", "socket"]), 0.0);
    instance.exit();
    plugin.close();
}

/// A private copy of `first` as `guest.wasm`, for swap tests.
fn swap_file(test: &str, first: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("out-wasm-metrics-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("guest.wasm");
    std::fs::copy(guest_path(first), &file).unwrap();
    file
}

/// Flushes small chunks until `done` holds for the instance's metrics (the watcher swaps on
/// its own thread), or panics after 20 s.
fn flush_until(instance: &LoadedOutput, alias: &str, what: &str, done: impl Fn(&Snapshot) -> bool) -> Snapshot {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let m = metrics_of(alias);
        if done(&m) {
            return m;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}; published:\n{}", m.prometheus());
        assert_eq!(flush(instance, &chunk(&[r#"{"seq":0}"#], 1, 0)), FLB_OK);
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn swaps_are_counted_and_the_served_digest_follows_them() {
    let alias = "swapped";
    let file = swap_file("swap", "tally");
    let (v1, v2) = (sha256(&guest_path("tally")), sha256(&guest_path("tally-v2")));
    let mut plugin = agent_plugin();
    let instance = init_ok(
        &mut plugin,
        &[
            ("wasm_path", file.to_str().unwrap()),
            ("wasm_watch_interval", "20ms"),
            ("wasm_cache_dir", "off"),
            ("alias", alias),
        ],
    );
    // tally-v2 requires `note`, which is not set: the swap fails, v1 keeps serving.
    std::fs::copy(guest_path("tally-v2"), &file).unwrap();
    let m = flush_until(&instance, alias, "a failed swap", |m| {
        m.value("fluentbit_wasm_swaps_total", &[alias, "failed"]) == Some(1.0)
    });
    assert_eq!(value(&m, "fluentbit_wasm_swaps_total", &[alias, "done"]), 0.0);
    assert_eq!(value(&m, "fluentbit_wasm_component_info", &[alias, &v1]), 1.0, "v1 still serves");
    assert!(m.value("fluentbit_wasm_component_info", &[alias, &v2]).is_none(), "v2 never served");

    // A different file that swaps in: v1 again under another name is the same digest, so
    // swap to the stdout example, which needs no keys.
    let stdout = guest_path("stdout");
    let v3 = sha256(&stdout);
    std::fs::copy(&stdout, &file).unwrap();
    let m = flush_until(&instance, alias, "a swap and its digest", |m| {
        m.value("fluentbit_wasm_component_info", &[alias, &v3]) == Some(1.0)
    });
    assert_eq!(value(&m, "fluentbit_wasm_swaps_total", &[alias, "done"]), 1.0);
    assert_eq!(value(&m, "fluentbit_wasm_swaps_total", &[alias, "failed"]), 1.0);
    assert_eq!(value(&m, "fluentbit_wasm_component_info", &[alias, &v1]), 0.0, "the replaced digest drops to 0");
    instance.exit();
    plugin.close();
}

#[test]
fn guest_metrics_are_exported_with_the_name_label_first_and_outlive_the_guest_instance() {
    let alias = "guest-metered";
    let mut plugin = agent_plugin();
    let probe = guest_path("probe");
    let instance = init_ok(
        &mut plugin,
        &[("wasm_path", probe.to_str().unwrap()), ("label", "g"), ("metrics", "on"), ("alias", alias)],
    );
    let three = chunk(&[r#"{"a":1}"#, r#"{"a":2}"#, r#"{"a":3}"#], 1, 0);
    assert_eq!(instance.flush(&three, "app.one").value, FLB_OK);
    // A trap discards the guest instance; the next one declares the metric again and counts on.
    let trap = chunk(&[r#"{"probe":"trap"}"#], 1, 0);
    assert_eq!(instance.flush(&trap, "app.one").value, FLB_RETRY);
    let two = chunk(&[r#"{"b":1}"#, r#"{"b":2}"#], 1, 0);
    assert_eq!(instance.flush(&two, "app.one").value, FLB_OK);
    assert_eq!(instance.flush(&two, "app.two").value, FLB_OK);

    let m = metrics_of(alias);
    let metric = m.metric("fluentbit_wasm_guest_probe_records_total").unwrap_or_else(|| {
        panic!("the guest's counter is exported with the prefix and _total; published:\n{}", m.prometheus())
    });
    assert_eq!(metric.label_keys, ["name", "tag"], "the instance's name label first, then the guest's");
    assert_eq!(value(&m, "fluentbit_wasm_guest_probe_records_total", &[alias, "app.one"]), 5.0, "{}", m.prometheus());
    assert_eq!(value(&m, "fluentbit_wasm_guest_probe_records_total", &[alias, "app.two"]), 2.0);
    assert_eq!(value(&m, "fluentbit_wasm_metrics_series", &[alias]), 2.0);
    assert_eq!(value(&m, "fluentbit_wasm_metrics_refused_total", &[alias]), 0.0);
    instance.exit();
    plugin.close();
}

#[test]
fn the_series_cap_refuses_new_label_values_and_counts_the_refusals() {
    let alias = "guest-capped";
    let mut plugin = agent_plugin();
    let probe = guest_path("probe");
    let instance = init_ok(
        &mut plugin,
        &[
            ("wasm_path", probe.to_str().unwrap()),
            ("label", "c"),
            ("metrics", "on"),
            ("alias", alias),
            ("wasm_metrics_max_series", "2"),
        ],
    );
    let one = chunk(&[r#"{"k":1}"#], 1, 0);
    for tag in ["t.a", "t.b", "t.a"] {
        assert_eq!(instance.flush(&one, tag).value, FLB_OK, "series {tag} fits the cap of 2");
    }
    // A third series is refused: the probe fails the flush with the host's reason.
    for tag in ["t.c", "t.d", "t.c"] {
        let call = instance.flush(&one, tag);
        assert_eq!(call.value, 0, "series {tag} is past the cap:\n{}", call.log_text());
    }
    let m = metrics_of(alias);
    let series: Vec<&Vec<String>> =
        m.metric("fluentbit_wasm_guest_probe_records_total").unwrap().series.keys().collect();
    assert_eq!(series, [&vec![alias.to_owned(), "t.a".to_owned()], &vec![alias.to_owned(), "t.b".to_owned()]]);
    assert_eq!(value(&m, "fluentbit_wasm_guest_probe_records_total", &[alias, "t.a"]), 2.0);
    assert_eq!(value(&m, "fluentbit_wasm_metrics_series", &[alias]), 2.0, "the agent holds only the capped series");
    assert_eq!(value(&m, "fluentbit_wasm_metrics_refused_total", &[alias]), 3.0, "every refusal is counted");
    eprintln!("the cardinality cap at work (wasm_metrics_max_series 2):\n{}", m.prometheus());
    instance.exit();
    plugin.close();
}

/// Each HTTP destination of the guests gets its requests by result and its seconds: the `http`
/// example against a real server answering 202 then 503 (a retry), then one not listening.
#[test]
fn http_requests_are_counted_per_destination_by_result() {
    let alias = "destinations";
    let server = out_wasm_e2e::http_server::Server::start();
    server.script.lock().unwrap().extend([202, 503]);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut plugin = agent_plugin();
    let guest = guest_path("http");
    let destination = format!("http://127.0.0.1:{}", server.port);
    let nobody = format!("http://127.0.0.1:{closed}");
    let grants = format!("127.0.0.1:{}, 127.0.0.1:{closed}", server.port);
    let open = |plugin: &mut Plugin, url: &str, alias: &str| {
        init_ok(
            plugin,
            &[
                ("wasm_path", guest.to_str().unwrap()),
                ("url", url),
                ("alias", alias),
                ("wasm_allow_net", &grants),
                ("wasm_warm_spare", "off"),
            ],
        )
    };
    let instance = open(&mut plugin, &format!("{destination}/ingest"), alias);
    let data = chunk(&[r#"{"a":1}"#], 1, 0);
    assert_eq!(flush(&instance, &data), FLB_OK);
    assert_eq!(flush(&instance, &data), FLB_RETRY);
    let m = metrics_of(alias);
    let requests = "fluentbit_wasm_http_destination_requests_total";
    for (result, expected) in [("2xx", 1.0), ("5xx", 1.0), ("4xx", 0.0), ("failed", 0.0), ("denied", 0.0)] {
        assert_eq!(value(&m, requests, &[alias, &destination, result]), expected, "{result}:\n{}", m.prometheus());
    }
    let seconds = value(&m, "fluentbit_wasm_http_destination_seconds_total", &[alias, &destination]);
    assert!(seconds > 0.0 && seconds < 20.0, "{seconds}");

    let refused = open(&mut plugin, &format!("{nobody}/ingest"), "destinations-refused");
    assert_eq!(flush(&refused, &data), FLB_RETRY);
    let m = metrics_of("destinations-refused");
    assert_eq!(value(&m, requests, &["destinations-refused", &nobody, "failed"]), 1.0, "{}", m.prometheus());
    refused.exit();
    instance.exit();
    plugin.close();
}
