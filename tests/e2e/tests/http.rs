//! The `http` example guest against a real HTTP server on loopback: records arrive as a JSON
//! array; the endpoint's answers map to ok / retry / drop; an endpoint not granted with
//! `wasm_allow_net` is never contacted.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use out_wasm_e2e::{chunk, guest_path, init_ok, open_plugin};
use out_wasm_loader::{FLB_ERROR, FLB_OK, FLB_RETRY, status_name};

/// A request as the server saw it.
#[derive(Debug)]
struct Seen {
    request_line: String,
    content_type: Option<String>,
    body: String,
}

/// A minimal HTTP/1.1 server: one request per connection, answered with the next scripted
/// status (200 when the script is empty).
struct Server {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    script: Arc<Mutex<VecDeque<u16>>>,
}

impl Server {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(VecDeque::new()));
        let (seen_by_server, script_for_server) = (seen.clone(), script.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                let (mut length, mut content_type) = (0, None);
                loop {
                    let mut header = String::new();
                    reader.read_line(&mut header).unwrap();
                    let header = header.trim_end();
                    if header.is_empty() {
                        break;
                    }
                    let (name, value) = header.split_once(':').unwrap();
                    match name.to_ascii_lowercase().as_str() {
                        "content-length" => length = value.trim().parse().unwrap(),
                        "content-type" => content_type = Some(value.trim().to_owned()),
                        _ => {}
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                let status = script_for_server.lock().unwrap().pop_front().unwrap_or(200);
                seen_by_server.lock().unwrap().push(Seen {
                    request_line: request_line.trim_end().to_owned(),
                    content_type,
                    body: String::from_utf8(body).unwrap(),
                });
                let _ = write!(stream, "HTTP/1.1 {status} Scripted\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            }
        });
        Self { port, seen, script }
    }
}

fn flush_to(url: &str, grant: &str) -> (i32, String) {
    let path = guest_path("http");
    let mut plugin = open_plugin();
    let instance = init_ok(
        &mut plugin,
        &[("wasm_path", path.to_str().unwrap()), ("url", url), ("wasm_allow_net", grant), ("wasm_watch", "off")],
    );
    let call = instance.flush(&chunk(&[r#"{"msg":"a","n":1}"#, r#"{"msg":"b"}"#], 1_700_000_000, 500_000_000), "app");
    instance.exit();
    plugin.close();
    (call.value, call.log_text())
}

#[test]
fn records_are_posted_as_a_json_array_and_answers_map_to_statuses() {
    let server = Server::start();
    let url = format!("http://127.0.0.1:{}/ingest", server.port);
    let grant = format!("127.0.0.1:{}", server.port);

    let (status, log) = flush_to(&url, &grant);
    assert_eq!(status, FLB_OK, "log:\n{log}");
    {
        let seen = server.seen.lock().unwrap();
        assert_eq!(seen.len(), 1, "one request per chunk: {seen:?}");
        assert_eq!(seen[0].request_line, "POST /ingest HTTP/1.1");
        assert_eq!(seen[0].content_type.as_deref(), Some("application/json"));
        assert_eq!(seen[0].body, r#"[{"date":1700000000.5,"msg":"a","n":1},{"date":1700000000.5,"msg":"b"}]"#);
    }

    for (answer, expected) in
        [(503, FLB_RETRY), (500, FLB_RETRY), (429, FLB_RETRY), (400, FLB_ERROR), (404, FLB_ERROR), (204, FLB_OK)]
    {
        server.script.lock().unwrap().push_back(answer);
        let (status, log) = flush_to(&url, &grant);
        assert_eq!(status, expected, "endpoint answered {answer}: expected {}, log:\n{log}", status_name(expected));
        if answer >= 400 {
            assert!(log.contains(&answer.to_string()), "the log says what the endpoint answered:\n{log}");
        }
    }
}

#[test]
fn an_unreachable_endpoint_is_retried() {
    // Granted, but nothing listens there.
    let free = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (status, log) = flush_to(&format!("http://127.0.0.1:{free}/"), &format!("127.0.0.1:{free}"));
    assert_eq!(status, FLB_RETRY, "log:\n{log}");
    assert!(log.contains("request failed"), "{log}");
}

#[test]
fn an_endpoint_not_granted_is_never_contacted() {
    let server = Server::start();
    let url = format!("http://127.0.0.1:{}/ingest", server.port);
    for grant in ["127.0.0.1:1", "localhost:*", "10.0.0.1:*"] {
        let (status, log) = flush_to(&url, grant);
        assert_eq!(status, FLB_ERROR, "grant {grant}: log:\n{log}");
        assert!(log.contains("the host denied the request: grant the endpoint with wasm_allow_net"), "{log}");
    }
    assert!(server.seen.lock().unwrap().is_empty(), "the server was contacted");
}

#[test]
fn a_slow_endpoint_is_a_clean_retry_within_the_flush_deadline() {
    // Takes connections and reads the request, but never answers while the test runs.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = Arc::new(Mutex::new(Vec::new()));
    let holder = held.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            holder.lock().unwrap().push(stream);
        }
    });
    let path = guest_path("http");
    let url = format!("http://127.0.0.1:{port}/slow");
    let grant = format!("127.0.0.1:{port}");
    let mut plugin = open_plugin();
    let instance = init_ok(
        &mut plugin,
        &[
            ("wasm_path", path.to_str().unwrap()),
            ("url", &url),
            ("wasm_allow_net", &grant),
            ("wasm_flush_timeout", "1s"),
        ],
    );
    let call = instance.flush(&chunk(&[r#"{"msg":"a"}"#], 1, 0), "app");
    let log = call.log_text();
    assert_eq!(call.value, FLB_RETRY, "expected a retry, log:\n{log}");
    assert!(!log.contains("faulted"), "the guest answered in time instead of being stopped:\n{log}");
    assert!(log.contains("guest asked to retry"), "{log}");
    // The same instance serves the next flush: nothing was discarded.
    let call = instance.flush(&chunk(&[r#"{"msg":"b"}"#], 1, 0), "app");
    assert!(!call.log_text().contains("faulted"), "{}", call.log_text());
    instance.exit();
    plugin.close();
    assert!(!held.lock().unwrap().is_empty(), "the request reached the endpoint");
}
