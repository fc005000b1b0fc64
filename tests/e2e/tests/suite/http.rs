//! The `http` example guest of every language against a real HTTP server on loopback: records
//! arrive as one JSON array, with the chunk's delivery id as `Idempotency-Key`; the endpoint's
//! answers map to ok / retry / drop; an endpoint not granted with `wasm_allow_net` is never
//! contacted; a slow one is a clean retry within the flush deadline. Over HTTPS, with a
//! certificate from a CA the test makes: delivered when `wasm_tls_ca_file` trusts the CA,
//! retried with the TLS error logged when not.
//!
//! The contract every language's `http` example keeps (`guests/<lang>/http`): the keys `url`
//! (required), `json_date_key`, `json_date_format`, `escape_unicode`; 2xx ok; 5xx, 408, 429,
//! connection failures and timeouts retry, with a reason starting `request failed` for a
//! failed exchange and naming the status for an answer; other 4xx error naming the status; a
//! denied request an error naming `wasm_allow_net`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use out_wasm_e2e::http_server::{PrivateCa, Server};
use out_wasm_e2e::{chunk, guest_path, init_err, init_ok, language_guest, lines_with, open_plugin};
use out_wasm_loader::{FLB_ERROR, FLB_OK, FLB_RETRY, status_name};

const BODY: &str = r#"[{"date":1700000000.5,"msg":"a","n":1},{"date":1700000000.5,"msg":"b"}]"#;

fn http_guest(lang: &str) -> PathBuf {
    if lang == "rust" { guest_path("http") } else { language_guest(lang, "http") }
}

fn flush_to(lang: &str, url: &str, grant: &str) -> (i32, String) {
    flush_with(lang, &[("url", url), ("wasm_allow_net", grant)])
}

fn flush_with(lang: &str, pairs: &[(&str, &str)]) -> (i32, String) {
    let path = http_guest(lang);
    let mut plugin = open_plugin();
    let mut all = vec![("wasm_path", path.to_str().unwrap()), ("wasm_watch", "off")];
    all.extend_from_slice(pairs);
    let instance = init_ok(&mut plugin, &all);
    let call = instance.flush(&chunk(&[r#"{"msg":"a","n":1}"#, r#"{"msg":"b"}"#], 1_700_000_000, 500_000_000), "app");
    instance.exit();
    plugin.close();
    (call.value, call.log_text())
}

fn records_are_posted_as_a_json_array_and_answers_map_to_statuses(lang: &str) {
    let server = Server::start();
    let url = format!("http://127.0.0.1:{}/ingest", server.port);
    let grant = format!("127.0.0.1:{}", server.port);

    let (status, log) = flush_to(lang, &url, &grant);
    assert_eq!(status, FLB_OK, "{lang}: log:\n{log}");
    {
        let seen = server.seen.lock().unwrap();
        assert_eq!(seen.len(), 1, "{lang}: one request per chunk: {seen:?}");
        assert_eq!(seen[0].request_line, "POST /ingest HTTP/1.1", "{lang}");
        assert_eq!(seen[0].content_type.as_deref(), Some("application/json"), "{lang}");
        assert_eq!(seen[0].body, BODY, "{lang}");
    }

    for (answer, expected) in
        [(503, FLB_RETRY), (500, FLB_RETRY), (429, FLB_RETRY), (400, FLB_ERROR), (404, FLB_ERROR), (204, FLB_OK)]
    {
        server.script.lock().unwrap().push_back(answer);
        let (status, log) = flush_to(lang, &url, &grant);
        assert_eq!(
            status,
            expected,
            "{lang}: endpoint answered {answer}: expected {}, log:\n{log}",
            status_name(expected)
        );
        if answer >= 400 {
            assert!(log.contains(&answer.to_string()), "{lang}: the log says what the endpoint answered:\n{log}");
        }
    }
    // Every delivery of the same chunk carried the same key, a delivery id.
    let seen = server.seen.lock().unwrap();
    let keys: Vec<Option<&str>> = seen.iter().map(|s| s.idempotency_key.as_deref()).collect();
    let first = keys[0].unwrap_or_else(|| panic!("{lang}: the request has an Idempotency-Key header: {seen:?}"));
    assert_eq!(first.len(), 32, "{lang}: a 128-bit delivery id in hex: {first}");
    assert!(keys.iter().all(|key| *key == Some(first)), "{lang}: the same chunk, the same key: {keys:?}");
}

fn an_unreachable_endpoint_is_retried(lang: &str) {
    // Granted, but nothing listens there.
    let free = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (status, log) = flush_to(lang, &format!("http://127.0.0.1:{free}/"), &format!("127.0.0.1:{free}"));
    assert_eq!(status, FLB_RETRY, "{lang}: log:\n{log}");
    assert!(log.contains("request failed"), "{lang}: {log}");
}

fn an_endpoint_not_granted_is_never_contacted(lang: &str) {
    let server = Server::start();
    let url = format!("http://127.0.0.1:{}/ingest", server.port);
    for grant in ["127.0.0.1:1", "localhost:*", "10.0.0.1:*"] {
        let (status, log) = flush_to(lang, &url, grant);
        assert_eq!(status, FLB_ERROR, "{lang}: grant {grant}: log:\n{log}");
        let error = log.lines().find(|l| l.contains("guest failed the chunk")).unwrap_or_default();
        assert!(error.contains("wasm_allow_net"), "{lang}: the error names the grant:\n{log}");
        if lang == "rust" {
            assert!(log.contains("the host denied the request: grant the endpoint with wasm_allow_net"), "{log}");
        }
    }
    // The server serves connections in the order they arrive: once it has answered one made
    // now, it has seen any request the guest made before.
    let mut sentinel = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    write!(sentinel, "POST /sentinel HTTP/1.1\r\ncontent-length: 0\r\n\r\n").unwrap();
    let mut answer = String::new();
    sentinel.read_to_string(&mut answer).unwrap();
    let seen = server.seen.lock().unwrap();
    let requests: Vec<&str> = seen.iter().map(|s| s.request_line.as_str()).collect();
    assert_eq!(requests, ["POST /sentinel HTTP/1.1"], "{lang}: the server was contacted by the guest");
}

fn https_to_a_private_ca_is_delivered_when_the_ca_is_trusted(lang: &str) {
    let ca = PrivateCa::new("out_wasm test CA");
    let server = Server::start_with(Some(ca.server.clone()));
    let ca_file = ca.write(&format!("trusted-{lang}"));
    for host in ["localhost", "127.0.0.1"] {
        let url = format!("https://{host}:{}/ingest", server.port);
        let grant = format!("{host}:{}", server.port);
        let (status, log) = flush_with(
            lang,
            &[("url", &url), ("wasm_allow_net", &grant), ("wasm_tls_ca_file", ca_file.to_str().unwrap())],
        );
        assert_eq!(status, FLB_OK, "{lang}: {url} with its CA in wasm_tls_ca_file: log:\n{log}");
    }
    let seen = server.seen.lock().unwrap();
    assert_eq!(seen.len(), 2, "{lang}: one request per chunk, over TLS: {seen:?}");
    assert_eq!(seen[0].request_line, "POST /ingest HTTP/1.1", "{lang}");
    assert_eq!(seen[0].body, BODY, "{lang}");
    let _ = std::fs::remove_file(ca_file);
}

fn https_to_an_untrusted_ca_is_retried_with_the_tls_error_logged(lang: &str) {
    let ca = PrivateCa::new("out_wasm test CA");
    let server = Server::start_with(Some(ca.server.clone()));
    let other = PrivateCa::new("some other CA").write(&format!("other-{lang}"));
    let url = format!("https://127.0.0.1:{}/ingest", server.port);
    let grant = format!("127.0.0.1:{}", server.port);
    for ca_file in [None, Some(other.to_str().unwrap())] {
        let mut pairs = vec![("url", url.as_str()), ("wasm_allow_net", grant.as_str())];
        pairs.extend(ca_file.map(|file| ("wasm_tls_ca_file", file)));
        let (status, log) = flush_with(lang, &pairs);
        assert_eq!(
            status, FLB_RETRY,
            "{lang}: CA file {ca_file:?}: an untrusted endpoint is retried, not a fault; log:\n{log}"
        );
        let expected = format!(
            "TLS handshake with 127.0.0.1:{} failed: invalid peer certificate: UnknownIssuer; if the endpoint's \
             certificate is issued by a private CA, add that CA with wasm_tls_ca_file",
            server.port
        );
        assert!(log.contains(&expected), "{lang}: CA file {ca_file:?}: expected {expected:?} in:\n{log}");
        let retry = log.lines().find(|l| l.contains("guest asked to retry")).unwrap_or_default();
        assert!(retry.contains("request failed"), "{lang}: the guest's retry says why:\n{log}");
        if lang == "rust" {
            assert!(log.contains("request failed: ErrorCode::TlsCertificateError"), "{log}");
        }
        assert!(!log.contains("faulted"), "{lang}: {log}");
    }
    assert!(server.seen.lock().unwrap().is_empty(), "{lang}: no request reached the untrusted endpoint");
    let _ = std::fs::remove_file(other);
}

fn an_unreadable_ca_file_refuses_the_instance(lang: &str) {
    let path = http_guest(lang);
    let mut plugin = open_plugin();
    let call = init_err(
        &mut plugin,
        &[
            ("wasm_path", path.to_str().unwrap()),
            ("url", "https://127.0.0.1:1/"),
            ("wasm_tls_ca_file", "/nonexistent/ca.pem"),
        ],
    );
    assert_eq!(
        lines_with(&call, "failed to read the CA file /nonexistent/ca.pem ('wasm_tls_ca_file')").len(),
        1,
        "{lang}: the reason is logged:\n{}",
        call.log_text()
    );
    plugin.close();
}

fn a_slow_endpoint_is_a_clean_retry_within_the_flush_deadline(lang: &str) {
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
    let path = http_guest(lang);
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
    assert_eq!(call.value, FLB_RETRY, "{lang}: expected a retry, log:\n{log}");
    assert!(!log.contains("faulted"), "{lang}: the guest answered in time instead of being stopped:\n{log}");
    assert!(log.contains("guest asked to retry"), "{lang}: {log}");
    // The same instance serves the next flush: nothing was discarded.
    let call = instance.flush(&chunk(&[r#"{"msg":"b"}"#], 1, 0), "app");
    assert!(!call.log_text().contains("faulted"), "{lang}: {}", call.log_text());
    instance.exit();
    plugin.close();
    assert!(!held.lock().unwrap().is_empty(), "{lang}: the request reached the endpoint");
}

/// With `FLUENT_BIT`: the real agent on both ends. A sending agent reads records on stdin and
/// runs the `http` example of `lang`; a receiving agent takes them with its own `http` input and
/// writes them with its `file` output. Every record arrives once and intact (the sender's date
/// key aside), with its strings, unicode, numbers and nesting.
fn a_real_agent_delivers_every_record_to_a_real_agent(lang: &str) {
    let test = format!("{lang}::a_real_agent_delivers_every_record_to_a_real_agent");
    let Some(agent) = std::env::var_os("FLUENT_BIT") else {
        eprintln!(
            "SKIP {test}: FLUENT_BIT is not set (the path of a fluent-bit binary); this test needs the real agent"
        );
        return;
    };
    const RECORDS: usize = 500;
    let guest = http_guest(lang);
    let dir = out_wasm_e2e::scratch_dir(&format!("http-agents-{lang}"));
    let _ = std::fs::remove_file(dir.join("received"));
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let receiver_conf = dir.join("receiver.conf");
    std::fs::write(
        &receiver_conf,
        format!(
            "[SERVICE]\n    Flush 1\n    Log_Level info\n[INPUT]\n    Name http\n    Listen 127.0.0.1\n    Port {port}\n\
             [OUTPUT]\n    Name file\n    Match *\n    Path {}\n    File received\n    Format plain\n",
            dir.display()
        ),
    )
    .unwrap();
    let sender_conf = dir.join("sender.conf");
    std::fs::write(
        &sender_conf,
        format!(
            "[SERVICE]\n    Flush 1\n    Log_Level info\n[INPUT]\n    Name stdin\n    Tag app\n\
             [OUTPUT]\n    Name wasm\n    Match *\n    wasm_path {}\n    wasm_watch off\n    \
             url http://127.0.0.1:{port}/app\n    wasm_allow_net 127.0.0.1:{port}\n",
            guest.display()
        ),
    )
    .unwrap();
    let records: Vec<serde_json::Value> = (0..RECORDS)
        .map(|n| {
            serde_json::json!({
                "n": n, "msg": format!("record {n}: caf\u{e9} \u{2713} \"quoted\" \\ tab\t"),
                "big": u64::MAX - n as u64, "neg": -(n as i64), "f": n as f64 + 0.25,
                "nested": {"list": [1, "two", true, null], "empty": {}},
            })
        })
        .collect();

    let receiver = out_wasm_e2e::RealAgent::start(&agent, &receiver_conf, std::process::Stdio::null());
    out_wasm_e2e::sync::wait_until("receiver listening", || TcpStream::connect(("127.0.0.1", port)).is_ok());
    let mut sender = out_wasm_e2e::RealAgent::start(&agent, &sender_conf, std::process::Stdio::piped());
    {
        // The stdin input stops the sender at end of input, after its outputs flushed.
        let mut stdin = sender.child.stdin.take().unwrap();
        for record in &records {
            writeln!(stdin, "{record}").unwrap();
        }
    }
    let received = dir.join("received");
    let lines = || std::fs::read_to_string(&received).map(|text| text.lines().count()).unwrap_or(0);
    out_wasm_e2e::sync::wait_until("every record at the receiver", || lines() >= RECORDS);
    let (status, sender_log) = sender.wait();
    let receiver_log = receiver.stop();
    assert!(status.success(), "{lang}: the sender failed ({status}):\n{sender_log}");
    let mut got: Vec<serde_json::Value> = std::fs::read_to_string(&received)
        .unwrap()
        .lines()
        .map(|line| {
            let mut value: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
            assert!(value.as_object_mut().unwrap().remove("date").is_some(), "{lang}: the date key: {line}");
            value
        })
        .collect();
    got.sort_by_key(|value| value["n"].as_u64());
    assert_eq!(got.len(), RECORDS, "{lang}: each record once; receiver log:\n{receiver_log}");
    assert_eq!(got, records, "{lang}: every record intact");
    assert!(sender_log.contains("out_wasm "), "{lang}: the sender ran out_wasm:\n{sender_log}");
}

/// Every case, for each language named: `mod <lang>` of tests.
macro_rules! http_cases {
    ($($lang:ident),* $(,)?) => {$(
        mod $lang {
            #[test]
            fn records_are_posted_as_a_json_array_and_answers_map_to_statuses() {
                super::records_are_posted_as_a_json_array_and_answers_map_to_statuses(stringify!($lang));
            }
            #[test]
            fn an_unreachable_endpoint_is_retried() {
                super::an_unreachable_endpoint_is_retried(stringify!($lang));
            }
            #[test]
            fn an_endpoint_not_granted_is_never_contacted() {
                super::an_endpoint_not_granted_is_never_contacted(stringify!($lang));
            }
            #[test]
            fn https_to_a_private_ca_is_delivered_when_the_ca_is_trusted() {
                super::https_to_a_private_ca_is_delivered_when_the_ca_is_trusted(stringify!($lang));
            }
            #[test]
            fn https_to_an_untrusted_ca_is_retried_with_the_tls_error_logged() {
                super::https_to_an_untrusted_ca_is_retried_with_the_tls_error_logged(stringify!($lang));
            }
            #[test]
            fn an_unreadable_ca_file_refuses_the_instance() {
                super::an_unreadable_ca_file_refuses_the_instance(stringify!($lang));
            }
            #[test]
            fn a_slow_endpoint_is_a_clean_retry_within_the_flush_deadline() {
                super::a_slow_endpoint_is_a_clean_retry_within_the_flush_deadline(stringify!($lang));
            }
            #[test]
            fn a_real_agent_delivers_every_record_to_a_real_agent() {
                super::a_real_agent_delivers_every_record_to_a_real_agent(stringify!($lang));
            }
        }
    )*};
}

http_cases!(rust, c, go, js, python);

/// An HTTPS output that flushes again and again reuses its connection: one TLS handshake, not
/// one per flush, for every guest instance of the output; `wasm_http_keepalive off` makes a
/// connection per request.
#[test]
fn connections_are_kept_alive_across_flushes_and_instances() {
    let ca = PrivateCa::new("out_wasm keep-alive CA");
    let ca_file = ca.write("keep-alive");
    for (keepalive, expected_connections) in [("15s", 1), ("off", 4)] {
        let server = Server::keep_alive(Some(ca.server.clone()));
        let url = format!("https://127.0.0.1:{}/ingest", server.port);
        let grant = format!("127.0.0.1:{}", server.port);
        let path = guest_path("http");
        let mut plugin = open_plugin();
        let instance = init_ok(
            &mut plugin,
            &[
                ("wasm_path", path.to_str().unwrap()),
                ("wasm_watch", "off"),
                ("url", &url),
                ("wasm_allow_net", &grant),
                ("wasm_tls_ca_file", ca_file.to_str().unwrap()),
                ("wasm_http_keepalive", keepalive),
            ],
        );
        for n in 0..4 {
            let call = instance.flush(&chunk(&[&format!(r#"{{"n":{n}}}"#)], 1_700_000_000, 0), "app");
            assert_eq!(call.value, FLB_OK, "keep-alive {keepalive}, flush {n}: {}", call.log_text());
        }
        instance.exit();
        plugin.close();
        assert_eq!(server.seen.lock().unwrap().len(), 4, "keep-alive {keepalive}: every request arrived");
        let connections = server.connections.load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(connections, expected_connections, "keep-alive {keepalive}: TLS connections accepted");
    }
    let _ = std::fs::remove_file(ca_file);
}

/// The host resolves a granted name itself for an HTTP request and connects to an answer it
/// judged, never looking the name up again: a loopback answer of a name other than `localhost`
/// (the machine's own name, from /etc/hosts) is refused with a warn line naming it and the grant
/// that would allow it (the guest gets `destination-IP-prohibited`, a retry, and nothing
/// reaches the endpoint); with the address or a range holding it granted too, it is delivered.
/// `localhost` names the loopback: granted by that name, it is delivered.
#[test]
fn rust_a_name_answering_the_loopback_is_reached_only_with_a_grant_of_the_address() {
    let Some((name, ip)) = out_wasm_e2e::loopback_name().filter(|(_, ip)| ip.to_string() == "127.0.0.1") else {
        eprintln!("SKIP rust_a_name_answering_the_loopback_...: the host name does not resolve to 127.0.0.1 only");
        return;
    };
    let server = Server::start();
    let port = server.port;
    let url = format!("http://{name}:{port}/ingest");
    let by_name = format!("{name}:{port}");
    let (status, log) = flush_to("rust", &url, &by_name);
    assert_eq!(status, FLB_RETRY, "log:\n{log}");
    let refused = format!("the host refused to connect the guest's HTTP request for {name}:{port} to {ip}: a loopback");
    assert!(log.contains(&refused), "the host says what it refused:\n{log}");
    assert!(log.contains(&format!("({ip}:{port})")) && log.contains("DestinationIpProhibited"), "{log}");
    assert_eq!(server.connections.load(std::sync::atomic::Ordering::SeqCst), 0, "nothing reached the endpoint");
    for grant in [format!("{by_name}, {ip}:{port}"), format!("{by_name}, 127.0.0.0/8:{port}")] {
        let (status, log) = flush_to("rust", &url, &grant);
        assert_eq!(status, FLB_OK, "granted {grant}: log:\n{log}");
    }
    let (status, log) = flush_to("rust", &format!("http://localhost:{port}/ingest"), &format!("localhost:{port}"));
    assert_eq!(status, FLB_OK, "localhost is the loopback: log:\n{log}");
    assert_eq!(server.seen.lock().unwrap().len(), 3, "the three granted requests arrived");
}
