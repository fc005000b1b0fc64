//! The `otlp` example guest against a small OTLP/HTTP receiver on loopback: a logs chunk and
//! real metrics and traces chunks captured from the agent (format/tests/data) each arrive as
//! one OTLP/JSON export request at `/v1/logs`, `/v1/metrics` and `/v1/traces`. With
//! `FLUENT_BIT` naming a fluent-bit binary, the real agent's `fluentbit_metrics`, `dummy` and
//! `opentelemetry` (one trace posted to it) inputs reach the same receiver through the guest.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Stdio;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use out_wasm_e2e::{RealAgent, chunk, guest_path, init_err, init_ok, open_plugin, workspace_root};
use out_wasm_loader::{FLB_ERROR, FLB_OK, FLB_RETRY, status_name};

/// A request as the receiver saw it.
#[derive(Debug)]
struct Seen {
    request_line: String,
    content_type: Option<String>,
    authorization: Option<String>,
    body: Vec<u8>,
}

/// Reads one HTTP/1.1 request from `stream`, answers it with the next scripted status (200, an
/// empty export response, when the script is empty).
fn receive(stream: TcpStream, seen: &Sender<Seen>, script: &Mutex<VecDeque<u16>>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let (mut length, mut content_type, mut authorization) = (0, None, None);
    loop {
        let mut header = String::new();
        reader.read_line(&mut header)?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let Some((name, value)) = header.split_once(':') else { continue };
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.trim().parse().unwrap_or(0),
            "content-type" => content_type = Some(value.trim().to_owned()),
            "authorization" => authorization = Some(value.trim().to_owned()),
            _ => {}
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    // Recorded before the answer: once the guest has its answer, the request is in the channel.
    let _ = seen.send(Seen { request_line: request_line.trim_end().to_owned(), content_type, authorization, body });
    let status = script.lock().unwrap().pop_front().unwrap_or(200);
    let stream = reader.get_mut();
    write!(
        stream,
        "HTTP/1.1 {status} Scripted\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: \
         close\r\n\r\n{{}}"
    )?;
    stream.flush()
}

/// A minimal OTLP/HTTP receiver: one request per connection, answered with the statuses pushed
/// on the script, then 200.
fn start_scripted() -> (u16, Receiver<Seen>, Arc<Mutex<VecDeque<u16>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (sender, seen) = channel();
    let script = Arc::new(Mutex::new(VecDeque::new()));
    let script_for_server = script.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let _ = receive(stream, &sender, &script_for_server);
        }
    });
    (port, seen, script)
}

fn start_receiver() -> (u16, Receiver<Seen>) {
    let (port, seen, _) = start_scripted();
    (port, seen)
}

/// The top-level key an OTLP/JSON export request of the signal at `path` must have.
fn top_key(path: &str) -> &'static str {
    match path {
        "/v1/logs" => "resourceLogs",
        "/v1/metrics" => "resourceMetrics",
        "/v1/traces" => "resourceSpans",
        other => panic!("a request to {other}: not an OTLP signal path"),
    }
}

/// The path of a request seen at the receiver, with the check that its body is an OTLP/JSON
/// export request of that path's signal, holding at least one resource.
fn checked_path(seen: &Seen) -> String {
    let path = seen.request_line.strip_prefix("POST ").and_then(|r| r.strip_suffix(" HTTP/1.1"));
    let path = path.unwrap_or_else(|| panic!("a POST over HTTP/1.1: {:?}", seen.request_line)).to_owned();
    assert_eq!(seen.content_type.as_deref(), Some("application/json"), "{path}");
    let body: serde_json::Value = serde_json::from_slice(&seen.body)
        .unwrap_or_else(|err| panic!("{path}: the body is JSON ({err}): {}", String::from_utf8_lossy(&seen.body)));
    let key = top_key(&path);
    let resources = body.get(key).and_then(|v| v.as_array());
    assert!(resources.is_some_and(|r| !r.is_empty()), "{path}: a top-level {key} with at least one resource: {body}");
    path
}

fn data(name: &str) -> Vec<u8> {
    std::fs::read(workspace_root().join("format/tests/data").join(name)).expect("the captured chunk")
}

#[test]
fn logs_metrics_and_traces_reach_the_receiver_as_otlp_json() {
    let (port, seen) = start_receiver();
    let path = guest_path("otlp");
    let endpoint = format!("http://127.0.0.1:{port}");
    let grant = format!("127.0.0.1:{port}");
    let mut plugin = open_plugin();
    let instance = init_ok(
        &mut plugin,
        &[
            ("wasm_path", path.to_str().unwrap()),
            ("wasm_watch", "off"),
            ("endpoint", &endpoint),
            ("headers", "authorization=Bearer t0k3n"),
            ("wasm_allow_net", &grant),
        ],
    );
    let logs = chunk(&[r#"{"msg":"a","n":1}"#, r#"{"msg":"b"}"#], 1_700_000_000, 500_000_000);
    for (what, bytes, tag, expected) in [
        ("logs", logs, "app", "/v1/logs"),
        ("metrics", data("fluentbit_metrics.msgpack"), "fluentbit_metrics", "/v1/metrics"),
        ("traces", data("v1_traces.msgpack"), "v1_traces", "/v1/traces"),
    ] {
        let call = instance.flush(&bytes, tag);
        assert_eq!(call.value, FLB_OK, "the {what} chunk: {}, log:\n{}", status_name(call.value), call.log_text());
        // The flush returned after the receiver answered, which it does after sending.
        let request = seen.try_recv().unwrap_or_else(|_| panic!("the {what} chunk was posted"));
        assert_eq!(checked_path(&request), expected, "the {what} chunk's request");
        assert_eq!(request.authorization.as_deref(), Some("Bearer t0k3n"), "the configured header is sent");
    }
    instance.exit();
    plugin.close();
    assert!(seen.try_recv().is_err(), "one request per chunk");
}

#[test]
fn answers_map_to_statuses_and_the_endpoint_path_is_a_prefix() {
    let (port, seen, script) = start_scripted();
    let path = guest_path("otlp");
    let endpoint = format!("http://127.0.0.1:{port}/otlp/");
    let grant = format!("127.0.0.1:{port}");
    let mut plugin = open_plugin();
    let instance = init_ok(
        &mut plugin,
        &[
            ("wasm_path", path.to_str().unwrap()),
            ("wasm_watch", "off"),
            ("endpoint", &endpoint),
            ("wasm_allow_net", &grant),
        ],
    );
    let metrics = data("fluentbit_metrics.msgpack");
    for (answer, expected) in [(200, FLB_OK), (503, FLB_RETRY), (429, FLB_RETRY), (408, FLB_RETRY), (400, FLB_ERROR)] {
        script.lock().unwrap().push_back(answer);
        let call = instance.flush(&metrics, "fluentbit_metrics");
        let log = call.log_text();
        assert_eq!(call.value, expected, "receiver answered {answer}: expected {}, log:\n{log}", status_name(expected));
        if answer >= 400 {
            assert!(log.contains(&answer.to_string()), "the log says what the receiver answered:\n{log}");
        }
        let request = seen.try_recv().unwrap_or_else(|_| panic!("the chunk was posted (answer {answer})"));
        assert_eq!(request.request_line, "POST /otlp/v1/metrics HTTP/1.1", "the endpoint's path is kept as a prefix");
        assert_eq!(request.authorization, None, "no headers unless configured");
    }
    instance.exit();

    // The guest posts what the host renders as OTLP/JSON: any other event format fails init.
    let call = init_err(
        &mut plugin,
        &[
            ("wasm_path", path.to_str().unwrap()),
            ("wasm_watch", "off"),
            ("endpoint", &endpoint),
            ("wasm_event_format", "json_lines"),
        ],
    );
    assert!(call.log_text().contains("needs wasm_event_format otlp_json"), "{}", call.log_text());
    let call =
        init_err(&mut plugin, &[("wasm_path", path.to_str().unwrap()), ("wasm_watch", "off"), ("endpoint", "ftp://x")]);
    assert!(call.log_text().contains("expected http:// or https://"), "{}", call.log_text());
    plugin.close();
}

/// Kills the agent however the test ends.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a loopback port").port()
}

/// POSTs `body` as JSON to the agent's `opentelemetry` input; false while it does not listen.
fn post_to_agent(port: u16, path: &str, body: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let sent = write!(
        stream,
        "POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    );
    // Only the status line: the agent keeps the connection open, and dropping it closes it.
    let mut status = String::new();
    sent.is_ok() && BufReader::new(stream).read_line(&mut status).is_ok() && status.starts_with("HTTP/1.1 2")
}

#[test]
fn real_agent_metrics_logs_and_traces_reach_the_receiver() {
    let Some(agent) = std::env::var_os("FLUENT_BIT") else {
        eprintln!(
            "SKIP real_agent_metrics_logs_and_traces_reach_the_receiver: FLUENT_BIT is not set (the path of a \
             fluent-bit binary); this test needs the real agent"
        );
        return;
    };
    // Before 4.2.4 the agent routes logs alone to external plugins: the logs still go through.
    let signals: &[&str] = if out_wasm_e2e::agent_routes_metrics_and_traces(&agent) {
        &["/v1/logs", "/v1/metrics", "/v1/traces"]
    } else {
        eprintln!(
            "SKIP real_agent_metrics_logs_and_traces_reach_the_receiver, metrics and traces: Fluent Bit {:?} routes \
             only logs to external plugins (4.2.4 and 5.0 on route every type); logs are checked",
            out_wasm_e2e::agent_version(&agent)
        );
        &["/v1/logs"]
    };
    let (port, seen) = start_receiver();
    let otel_port = free_port();
    let guest = guest_path("otlp");
    let dir = std::env::temp_dir().join(format!("out-wasm-otlp-agent-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("otlp.conf");
    std::fs::write(
        &config,
        format!(
            "[SERVICE]\n    Flush 1\n    Log_Level info\n\n\
             [INPUT]\n    Name fluentbit_metrics\n    Tag fb.metrics\n    Scrape_Interval 1\n\n\
             [INPUT]\n    Name dummy\n    Tag fb.logs\n    Dummy {{\"log\":\"hello from dummy\"}}\n\n\
             [INPUT]\n    Name opentelemetry\n    Tag fb.otel\n    Tag_From_Uri false\n    Listen 127.0.0.1\n    \
             Port {otel_port}\n\n\
             [OUTPUT]\n    Name wasm\n    Match fb.*\n    wasm_path {}\n    endpoint http://127.0.0.1:{port}\n    \
             wasm_allow_net 127.0.0.1:{port}\n",
            guest.display()
        ),
    )
    .unwrap();
    let agent = RealAgent::start(&agent, &config, Stdio::null());
    let requests: serde_json::Value = serde_json::from_slice(&data("otlp-requests.json")).unwrap();
    let trace = requests["/v1/traces"].to_string();
    let trace_id = requests["/v1/traces"]["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"]
        .as_str()
        .expect("the captured request has a trace id")
        .to_owned();

    // Waits for one request of each signal; the trace is posted to the agent until its
    // opentelemetry input takes it.
    let mut counts = std::collections::BTreeMap::new();
    let mut trace_posted = false;
    let deadline = Instant::now() + Duration::from_secs(60);
    while signals.iter().any(|p| !counts.contains_key(*p)) {
        if Instant::now() > deadline {
            panic!("not every signal reached the receiver within 60 s: {counts:?}; agent log:\n{}", agent.stop());
        }
        if !trace_posted {
            trace_posted = post_to_agent(otel_port, "/v1/traces", &trace);
        }
        if let Ok(request) = seen.recv_timeout(Duration::from_millis(200)) {
            let path = checked_path(&request);
            if path == "/v1/traces" {
                let body = String::from_utf8_lossy(&request.body);
                assert!(body.contains(&trace_id), "the trace posted to the agent, trace id {trace_id}: {body}");
            }
            let count = counts.entry(path).or_insert(0);
            if *count == 0 {
                let body = String::from_utf8_lossy(&request.body);
                eprintln!("{}: {}...", request.request_line, body.chars().take(200).collect::<String>());
            }
            *count += 1;
        }
    }
    eprintln!("the receiver got, by path: {counts:?}");
    let log = agent.stop();
    assert!(!log.contains("[error]"), "no errors in the agent's log:\n{log}");
}
