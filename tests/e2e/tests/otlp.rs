//! The `otlp` example guest against a small OTLP/HTTP receiver on loopback: a logs chunk and
//! real metrics and traces chunks captured from the agent (format/tests/data) each arrive as
//! one OTLP/JSON export request at `/v1/logs`, `/v1/metrics` and `/v1/traces`. With
//! `FLUENT_BIT` naming a fluent-bit binary, the real agent's `fluentbit_metrics`, `dummy` and
//! `opentelemetry` (one trace posted to it) inputs reach the same receiver through the guest.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, Instant};

use out_wasm_e2e::{chunk, guest_path, init_ok, open_plugin, plugin_path, workspace_root};
use out_wasm_loader::{FLB_OK, status_name};

/// A request as the receiver saw it.
#[derive(Debug)]
struct Seen {
    request_line: String,
    content_type: Option<String>,
    authorization: Option<String>,
    body: Vec<u8>,
}

/// Reads one HTTP/1.1 request from `stream`, answers 200 with an empty export response.
fn receive(stream: TcpStream, seen: &Sender<Seen>) -> std::io::Result<()> {
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
    let stream = reader.get_mut();
    write!(
        stream,
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{{}}"
    )?;
    stream.flush()
}

/// A minimal OTLP/HTTP receiver: one request per connection, every request answered 200.
fn start_receiver() -> (u16, Receiver<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (sender, seen) = channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let _ = receive(stream, &sender);
        }
    });
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

/// Kills the agent however the test ends.
struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

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
    let (port, seen) = start_receiver();
    let otel_port = free_port();
    let guest = guest_path("otlp");
    let plugin = plugin_path();
    let dir = std::env::temp_dir().join(format!("out-wasm-otlp-agent-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("otlp.conf");
    std::fs::write(
        &config,
        format!(
            "[SERVICE]\n    Flush 1\n    Log_Level info\n\n\
             [INPUT]\n    Name fluentbit_metrics\n    Tag fb.metrics\n    Scrape_Interval 1\n\n\
             [INPUT]\n    Name dummy\n    Tag fb.logs\n    Dummy {{\"log\":\"hello from dummy\"}}\n\n\
             [INPUT]\n    Name opentelemetry\n    Tag fb.otel\n    Listen 127.0.0.1\n    Port {otel_port}\n\n\
             [OUTPUT]\n    Name wasm\n    Match fb.*\n    wasm_path {}\n    endpoint http://127.0.0.1:{port}\n    \
             wasm_allow_net 127.0.0.1:{port}\n",
            guest.display()
        ),
    )
    .unwrap();
    let mut child = Agent(
        Command::new(&agent)
            .args(["-e".as_ref(), plugin.as_os_str(), "-c".as_ref(), config.as_os_str()])
            .current_dir(workspace_root())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the agent starts"),
    );
    let mut stderr = child.0.stderr.take().expect("piped stderr");
    let log = std::thread::spawn(move || {
        let mut log = String::new();
        let _ = stderr.read_to_string(&mut log);
        log
    });
    let requests: serde_json::Value = serde_json::from_slice(&data("otlp-requests.json")).unwrap();
    let trace = requests["/v1/traces"].to_string();

    // Waits for one request of each signal; the trace is posted to the agent until its
    // opentelemetry input takes it.
    let mut counts = std::collections::BTreeMap::new();
    let mut trace_posted = false;
    let deadline = Instant::now() + Duration::from_secs(60);
    while ["/v1/logs", "/v1/metrics", "/v1/traces"].iter().any(|p| !counts.contains_key(*p)) {
        if Instant::now() > deadline {
            drop(child);
            panic!(
                "not every signal reached the receiver within 60 s: {counts:?}; agent log:\n{}",
                log.join().unwrap()
            );
        }
        if !trace_posted {
            trace_posted = post_to_agent(otel_port, "/v1/traces", &trace);
        }
        if let Ok(request) = seen.recv_timeout(Duration::from_millis(200)) {
            let count = counts.entry(checked_path(&request)).or_insert(0);
            if *count == 0 {
                let body = String::from_utf8_lossy(&request.body);
                eprintln!("{}: {}...", request.request_line, body.chars().take(200).collect::<String>());
            }
            *count += 1;
        }
    }
    eprintln!("the receiver got, by path: {counts:?}");
    drop(child);
    let log = log.join().unwrap();
    assert!(!log.contains("[error]"), "no errors in the agent's log:\n{log}");
}
