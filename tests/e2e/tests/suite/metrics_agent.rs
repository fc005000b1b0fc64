//! The metrics on the real agent's own endpoint: with `FLUENT_BIT` naming a fluent-bit binary,
//! the agent runs the `counter` guest under an `alias` with its HTTP server on loopback, and
//! `/api/v2/metrics/prometheus` must show the host's metrics and the guest's own count for that
//! alias, beside the agent's own per-output metrics of the same name. Without `FLUENT_BIT` the test prints a SKIP line.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Stdio;
use std::time::{Duration, Instant};

use out_wasm_e2e::{RealAgent, guest_path, workspace_root};
use sha2::Digest;

/// A port nobody listens on right now, for the agent's HTTP server.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a loopback port").port()
}

/// `GET path` on loopback; the body, or `None` while the server is not up.
///
/// The response ends when the server closes the connection, as HTTP/1.0 has it. Fluent Bit
/// 3.2's HTTP server (Monkey 1.8) sends `Connection: Close` and then keeps the connection open
/// after a large response: what arrived when the read times out is then the whole of it.
pub(crate) fn get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut response = Vec::new();
    if let Err(err) = stream.read_to_end(&mut response) {
        let timed_out = matches!(err.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut);
        if !timed_out || response.is_empty() {
            return None;
        }
    }
    let response = String::from_utf8(response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_owned())
}

/// The value of the sample line `series` (name and labels, exactly as the agent writes them).
pub(crate) fn sample(scrape: &str, series: &str) -> Option<f64> {
    scrape.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Kills the agent however the test ends.
#[test]
fn real_agent_serves_the_host_and_guest_metrics_under_the_instance_alias() {
    let Some(agent) = std::env::var_os("FLUENT_BIT") else {
        eprintln!(
            "SKIP real_agent_serves_the_host_and_guest_metrics_under_the_instance_alias: FLUENT_BIT is not set (the path \
             of a fluent-bit binary); this test needs the real agent"
        );
        return;
    };
    let alias = "wasm_counter";
    let guest = guest_path("counter");
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("out-wasm-metrics-agent-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("metrics.conf");
    std::fs::write(
        &config,
        format!(
            "[SERVICE]\n    Flush 1\n    Log_Level info\n    HTTP_Server On\n    HTTP_Listen 127.0.0.1\n    \
             HTTP_Port {port}\n\n[INPUT]\n    Name stdin\n    Tag app.metrics\n\n\
             [OUTPUT]\n    Name wasm\n    Match *\n    Alias {alias}\n    wasm_path {}\n    label metrics\n    \
             wasm_memory_limit 64M\n",
            guest.display()
        ),
    )
    .unwrap();
    let mut agent = RealAgent::start(&agent, &config, Stdio::piped());
    let events = std::fs::read(workspace_root().join("examples/events.jsonl")).unwrap();
    let mut stdin = agent.child.stdin.take().expect("piped stdin");
    stdin.write_all(&events).expect("the agent reads its stdin");
    stdin.flush().unwrap();

    // The agent flushes every second and refreshes its metrics every second: scrape until the
    // four records show, with the stdin kept open so the agent keeps running.
    let records = format!("fluentbit_wasm_records_total{{name=\"{alias}\"}}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let scrape = loop {
        let scrape = get(port, "/api/v2/metrics/prometheus");
        if let Some(scrape) = scrape.filter(|s| sample(s, &records) == Some(4.0)) {
            break scrape;
        }
        if Instant::now() > deadline {
            drop(stdin);
            let log = agent.stop();
            panic!("no {records} 4 on the agent's endpoint within 60 s; agent log:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let ours: Vec<&str> = scrape.lines().filter(|l| l.contains(&format!("name=\"{alias}\""))).collect();
    eprintln!("the agent's scrape, lines of {alias}:\n{}", ours.join("\n"));

    let digest: String =
        sha2::Sha256::digest(std::fs::read(&guest).unwrap()).iter().map(|b| format!("{b:02x}")).collect();
    let chunk_bytes = sample(&scrape, &format!("fluentbit_output_proc_bytes_total{{name=\"{alias}\"}}"));
    for (series, expected) in [
        // The agent's own count under the same name: the names match.
        (format!("fluentbit_output_proc_records_total{{name=\"{alias}\"}}"), Some(4.0)),
        (format!("fluentbit_wasm_flushes_total{{name=\"{alias}\",result=\"ok\"}}"), Some(1.0)),
        (format!("fluentbit_wasm_flushes_total{{name=\"{alias}\",result=\"fault\"}}"), Some(0.0)),
        (format!("fluentbit_wasm_faults_total{{name=\"{alias}\",kind=\"trap\"}}"), Some(0.0)),
        (format!("fluentbit_wasm_bytes_total{{name=\"{alias}\"}}"), chunk_bytes),
        // The first instance and its warm spare (wasm_warm_spare on), both started at init.
        (format!("fluentbit_wasm_instance_starts_total{{name=\"{alias}\"}}"), Some(2.0)),
        (format!("fluentbit_wasm_instances{{name=\"{alias}\"}}"), Some(2.0)),
        // The counter guest's own metric: its count, under the instance's name.
        (
            format!("fluentbit_wasm_guest_records_total{{name=\"{alias}\",label=\"metrics\",tag=\"app.metrics\"}}"),
            Some(4.0),
        ),
        (format!("fluentbit_wasm_memory_limit_bytes{{name=\"{alias}\"}}"), Some((64u64 << 20) as f64)),
        (format!("fluentbit_wasm_flush_duration_seconds_count{{name=\"{alias}\"}}"), Some(1.0)),
        (format!("fluentbit_wasm_component_info{{name=\"{alias}\",digest=\"{digest}\"}}"), Some(1.0)),
        (format!("fluentbit_wasm_swaps_total{{name=\"{alias}\",result=\"done\"}}"), Some(0.0)),
    ] {
        assert_eq!(sample(&scrape, &series), expected, "{series} on the agent's endpoint:\n{}", ours.join("\n"));
    }
    let memory = sample(&scrape, &format!("fluentbit_wasm_memory_bytes{{name=\"{alias}\"}}")).unwrap_or_default();
    assert!(memory > 0.0, "the guest's linear memory is published:\n{}", ours.join("\n"));

    drop(stdin);
    let (status, log) = agent.wait();
    assert!(status.success(), "agent exited with {status}:\n{log}");
    assert!(
        log.contains(&format!("[output:wasm:{alias}] [metrics] final total: 4 records")),
        "the plugin's log lines carry the agent's name of the instance:\n{log}"
    );
}
