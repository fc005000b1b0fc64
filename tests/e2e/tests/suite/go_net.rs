//! The Go SDK's TCP dialer (`outwasm/wasinet` over `wasi:sockets`) and Go's own `net.Dialer`
//! (std net, which `guests/go/build` gives the host's network: `outwasm/stdnet`) through the
//! real boundary, with the test guest `tests/guests/go-net` (its contract is at the top of its
//! main.go; its key `dialer` picks one) and a TCP server on loopback started by each test. Each
//! case holds for both dialers:
//! - a granted address (an IP, or a granted name the host looks up) is dialed, the records'
//!   line reaches the server and its answer reaches the guest;
//! - a server that holds the connection makes the read deadline fire: a net.Error whose
//!   Timeout() is true and that wraps os.ErrDeadlineExceeded, answered as a retry within the
//!   flush (no fault), with the guest's background goroutine running while the read waited;
//! - an address no grant allows, and a name no grant names, are refused by the host before any
//!   connection is made (the server sees none), the error naming `wasm_allow_net`.

use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;

use out_wasm_e2e::{chunk, go_test_guest, init_ok, open_plugin};
use out_wasm_loader::{FLB_ERROR, FLB_OK, FLB_RETRY, status_name};

/// The go-net guest's dialers: the SDK's, and Go's own `net.Dialer` as an unmodified library
/// dials.
const DIALERS: [&str; 2] = ["wasinet", "std"];

/// Flushes two records to the go-net guest with these keys; the answer and the log.
fn flush_with(dialer: &str, pairs: &[(&str, &str)]) -> (i32, String) {
    let path = go_test_guest("go-net");
    let mut plugin = open_plugin();
    let mut all = vec![("wasm_path", path.to_str().unwrap()), ("wasm_watch", "off"), ("dialer", dialer)];
    all.extend_from_slice(pairs);
    let instance = init_ok(&mut plugin, &all);
    let call = instance.flush(&chunk(&[r#"{"msg":"a"}"#, r#"{"msg":"b"}"#], 1_700_000_000, 0), "app");
    instance.exit();
    plugin.close();
    (call.value, call.log_text())
}

/// A server that reads one line per connection, sends it on `lines`, then answers `ok` (or, with
/// `answer` false, holds the connection open until the test ends).
fn serve(answer: bool) -> (u16, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        let mut held: Vec<TcpStream> = Vec::new();
        for stream in listener.incoming().flatten() {
            let mut line = String::new();
            let _ = BufReader::new(&stream).read_line(&mut line);
            let _ = lines.send(line);
            if answer {
                let _ = (&stream).write_all(b"ok\n");
            } else {
                held.push(stream);
            }
        }
    });
    (port, received)
}

#[test]
fn records_are_delivered_over_a_granted_connection() {
    let (port, received) = serve(true);
    for (dialer, host) in DIALERS.iter().flat_map(|d| ["127.0.0.1", "localhost"].map(|h| (*d, h))) {
        let address = format!("{host}:{port}");
        let (status, log) = flush_with(dialer, &[("address", &address), ("wasm_allow_net", &address)]);
        assert_eq!(status, FLB_OK, "{dialer} {address}: expected FLB_OK, got {}; log:\n{log}", status_name(status));
        assert!(
            log.contains(&format!("go-net delivered 2 records to {address}: ok (remote 127.0.0.1:{port})")),
            "{dialer} {address}: the server's answer reached the guest; log:\n{log}"
        );
        let line = received.recv().unwrap();
        let words: Vec<&str> = line.split_whitespace().collect();
        assert!(
            words.len() == 3 && words[0] == "go-net" && words[1].len() == 32 && words[2] == "2",
            "{dialer} {address}: the server got the guest's line with the delivery id: {line:?}"
        );
    }
}

#[test]
fn a_read_deadline_fires_when_the_server_holds_the_connection() {
    let (port, received) = serve(false);
    let address = format!("127.0.0.1:{port}");
    for dialer in DIALERS {
        let (status, log) =
            flush_with(dialer, &[("address", &address), ("wasm_allow_net", &address), ("read_timeout", "300ms")]);
        assert_eq!(status, FLB_RETRY, "{dialer}: expected FLB_RETRY, got {}; log:\n{log}", status_name(status));
        assert!(
            log.contains("go-net read timed out after 300ms (timeout=true, deadline-exceeded=true"),
            "{dialer}: the read deadline fired as a net.Error timeout; log:\n{log}"
        );
        assert!(
            !log.contains("faulted"),
            "{dialer}: the guest answered; it was not stopped at the flush deadline:\n{log}"
        );
        let ticks = log
            .split("background ticks=")
            .nth(1)
            .and_then(|rest| rest.split(')').next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("{dialer}: the retry says how often the background goroutine ran:\n{log}"));
        assert!(ticks > 0, "{dialer}: the guest's goroutine ran while the read waited in the host; log:\n{log}");
        assert!(received.recv().unwrap().starts_with("go-net "), "{dialer}: the server got the line it then held");
    }
}

#[test]
fn a_denied_address_is_never_connected() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let ip = format!("127.0.0.1:{port}");
    let name = format!("localhost:{port}");
    // An address no grant names; a name whose address is granted but the name is not (names are
    // looked up only when a grant names them).
    let cases = [(ip.as_str(), "127.0.0.1:1"), (ip.as_str(), "10.0.0.1:*"), (name.as_str(), ip.as_str())];
    for (dialer, (address, grant)) in DIALERS.iter().flat_map(|d| cases.map(|c| (*d, c))) {
        let (status, log) = flush_with(dialer, &[("address", address), ("wasm_allow_net", grant)]);
        assert_eq!(
            status,
            FLB_ERROR,
            "{dialer} {address} with grant {grant}: expected FLB_ERROR, got {}; log:\n{log}",
            status_name(status)
        );
        let error = log.lines().find(|l| l.contains("guest failed the chunk")).unwrap_or_default();
        assert!(
            error.contains("go-net denied: ") && error.contains("wasm_allow_net"),
            "{dialer} {address} with grant {grant}: the error names the grant:\n{log}"
        );
        // A connection the guest had made would be waiting in the listener's backlog by now.
        match listener.accept() {
            Err(err) if err.kind() == ErrorKind::WouldBlock => {}
            other => panic!("{dialer} {address} with grant {grant}: the server was contacted: {other:?}"),
        }
    }
}
