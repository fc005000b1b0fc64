//! out_wasm in every agent it supports, as the loader plays each (`--agent`): the struct sizes,
//! the exported functions and the routing of Fluent Bit 2.2 to 5.1. The loader allocates every
//! struct the plugin gets at that agent's size against an inaccessible page, so a plugin that
//! writes a field the agent does not have (as out_wasm wrote `event_type` into the 32-byte
//! definition of every agent before 4.2.3) dies with SIGSEGV on that write. Each agent runs in
//! a loader process of its own: a process plays one agent (its exported symbols stay loaded).

use std::os::unix::process::ExitStatusExt;
use std::process::Command;

use out_wasm_e2e::{chunk, guest_path, loader_bin, plugin_path, scratch_dir, workspace_root};
use out_wasm_loader::AgentVersion;
use out_wasm_loader::agent::Exports;

/// Runs the probe guest in the loader playing `agent` on one chunk of each event type, with the
/// probe accepting `accept`; the loader's and plugin's log.
fn run(agent: AgentVersion, accept: &str) -> String {
    let dir = scratch_dir(&format!("agents-{}-{}", agent.as_str(), accept.replace(',', "-")));
    let logs = dir.join("logs.msgpack");
    std::fs::write(&logs, chunk(&[r#"{"n":1}"#, r#"{"n":2}"#], 1_700_000_000, 0)).unwrap();
    let data = workspace_root().join("format/tests/data");
    let config = dir.join("fluent-bit.conf");
    std::fs::write(
        &config,
        format!(
            "[INPUT]\n    Name dummy\n    Tag app.agents\n\n[OUTPUT]\n    Name wasm\n    Match *\n    wasm_path {}\n    \
             label agents\n    wasm_allow_env PROBE_ACCEPT\n    wasm_cache_dir off\n",
            guest_path("probe").display()
        ),
    )
    .unwrap();
    let output = Command::new(loader_bin())
        .arg("--agent")
        .arg(agent.as_str())
        .arg("-e")
        .arg(plugin_path())
        .arg("-c")
        .arg(&config)
        .arg("--chunk")
        .arg(&logs)
        .arg("--chunk")
        .arg(data.join("fluentbit_metrics.msgpack"))
        .arg("--chunk")
        .arg(data.join("v1_traces.msgpack"))
        .env("PROBE_ACCEPT", accept)
        .output()
        .expect("the loader runs");
    let log = String::from_utf8_lossy(&output.stderr).into_owned();
    match output.status.signal() {
        Some(libc::SIGSEGV) | Some(libc::SIGBUS) => {
            panic!("the plugin touched memory past the end of a struct of {agent} (the loader faulted):\n{log}")
        }
        Some(signal) => panic!("the loader playing {agent} died of signal {signal}:\n{log}"),
        None => assert!(output.status.success(), "the loader playing {agent} failed ({}):\n{log}", output.status),
    }
    log
}

#[test]
fn every_supported_agent_gets_only_the_fields_it_has_and_says_what_it_routes() {
    for agent in AgentVersion::ALL {
        let log = run(agent, "logs,metrics,traces");
        let said = |needle: &str| log.lines().any(|line| line.contains(needle));
        // One line at init says which agent this is and what it cannot give.
        let profile: Vec<&str> = log.lines().filter(|l| l.contains("out_wasm ") && l.contains(" on ")).collect();
        assert_eq!(profile.len(), 1, "{agent}: one line names the agent:\n{log}");
        assert!(profile[0].contains("[ info]") && profile[0].contains(env!("CARGO_PKG_VERSION")), "{}", profile[0]);
        assert!(said("probe context #1 type=logs"), "{agent}: the logs chunk is delivered:\n{log}");
        match agent.exports() {
            Exports::Base => {
                assert!(profile[0].contains("guests receive logs only"), "{agent}: {}", profile[0]);
                if agent.reads_event_type() {
                    // 4.2.3 has the field but nothing proves it: left as the agent zeroed it.
                    assert!(said("event types 0"), "{agent}: event_type left alone:\n{log}");
                } else {
                    assert!(said("no event types in"), "{agent}: the definition has no event_type:\n{log}");
                }
                assert!(said("2 chunks not routed"), "{agent}: metrics and traces never reach the plugin:\n{log}");
                assert!(!said("type=metrics") && !said("type=traces"), "{agent}:\n{log}");
            }
            Exports::Line4_2 | Exports::Line5 => {
                let evidence = if agent.exports() == Exports::Line5 {
                    "Fluent Bit 5.0 or later"
                } else {
                    "Fluent Bit 4.2.4 or later"
                };
                assert!(profile[0].contains(evidence), "{agent}: {}", profile[0]);
                assert!(profile[0].contains("logs, metrics and traces"), "{agent}: {}", profile[0]);
                assert!(said("event types 7"), "{agent}: the plugin asks for every type:\n{log}");
                assert!(said("type=metrics") && said("type=traces"), "{agent}: every type delivered:\n{log}");
            }
        }
    }
}

#[test]
fn a_guest_without_logs_on_a_logs_only_agent_is_told_it_will_receive_nothing() {
    let log = run(AgentVersion::V3_2, "metrics");
    assert!(
        log.lines().any(|l| l.contains("[ warn]") && l.contains("accepts no logs") && l.contains("receive nothing")),
        "a warning names the mismatch:\n{log}"
    );
    let log = run(AgentVersion::V5_1, "metrics");
    assert!(!log.contains("accepts no logs"), "no warning where metrics are routed:\n{log}");
}
