//! Go plugins whose client libraries dial for themselves, built unmodified with
//! `guests/go/build` (Go's own net, crypto/tls and net/http over the host's sockets:
//! `outwasm/stdnet`), through the real boundary (the loader and out_wasm.so, no agent needed):
//! the plugins of `tests/peers` flush records to real servers started here, and without a
//! grant nothing leaves the guest and the chunk is retried with the grant named. The same
//! plugins run natively and in Fluent Bit in `flbgo.rs`.
//! - `fluent-bit-go/redis`: RPUSH with github.com/redis/go-redis/v9 to Debian's redis-server;
//! - `fluent-bit-go/tls`: HTTPS to a private CA's server through its own http.Transport and
//!   through tls.Dial, trusting the host's roots (`wasm_tls_ca_file`), or not without them;
//! - `fluent-bit-go/syslog`: log/syslog over UDP, with the agent's host name;
//! - `calyptia`: Calyptia's Go SDK, its Flush goroutine writing over TCP, drained at exit.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use out_wasm_e2e::http_server::{PrivateCa, Server};
use out_wasm_e2e::redis::{Redis, sorted_records};
use out_wasm_e2e::sync::wait_until;
use out_wasm_e2e::{chunk, init_err, open_plugin, props, scratch_dir, workspace_root};
use out_wasm_loader::{FLB_OK, FLB_RETRY, status_name};

/// The plugin in `dir` (relative to the workspace root) built by `guests/go/build`, once.
fn built(dir: &str) -> PathBuf {
    static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let out = scratch_dir("go-clients").join(format!("{}.wasm", dir.rsplit('/').next().unwrap()));
    let mut built = BUILT.lock().unwrap_or_else(PoisonError::into_inner);
    if !built.iter().any(|b| b == dir) {
        let status = std::process::Command::new(workspace_root().join("guests/go/build"))
            .arg(workspace_root().join(dir))
            .arg(&out)
            .current_dir(workspace_root())
            .status()
            .expect("guests/go/build runs");
        assert!(status.success(), "guests/go/build {dir} failed ({status})");
        built.push(dir.to_owned());
    }
    out
}

const RECORDS: [&str; 3] = [r#"{"message":"a","n":1}"#, r#"{"message":"b","n":2}"#, r#"{"message":"c","n":3}"#];

/// One instance of `wasm` with `keys` (the plugin's stderr in the log), one flush of the three
/// records, its exit: the flush's answer and the log of init, flush and exit.
fn flush(wasm: &Path, keys: &[(&str, &str)]) -> (i32, String) {
    let mut plugin = open_plugin();
    let mut all = vec![("wasm_path", wasm.to_str().unwrap()), ("wasm_watch", "off"), ("wasm_stderr", "log")];
    all.extend_from_slice(keys);
    let init = plugin.init(props(&all));
    let init_log = init.log_text();
    let instance = init.value.unwrap_or_else(|code| panic!("init failed ({code}):\n{init_log}"));
    let call = instance.flush(&chunk(&RECORDS, 1_700_000_000, 500_000_000), "t");
    let exit = instance.exit();
    plugin.close();
    (call.value, format!("{init_log}\n{}\n{}", call.log_text(), exit.log_text()))
}

fn assert_retried_naming(what: &str, (status, log): &(i32, String), grant: &str) {
    assert_eq!(*status, FLB_RETRY, "{what}: expected FLB_RETRY, got {}; log:\n{log}", status_name(*status));
    assert!(log.contains(&format!("grant {grant} with wasm_allow_net")), "{what}: the error names the grant:\n{log}");
}

#[test]
fn go_redis_pushes_through_the_host() {
    let Some(redis) = Redis::start("go_redis_pushes_through_the_host") else { return };
    let wasm = built("tests/peers/fluent-bit-go/redis");
    let address = format!("127.0.0.1:{}", redis.port);
    let (status, log) = flush(&wasm, &[("address", &address), ("key", "granted"), ("wasm_allow_net", &address)]);
    assert_eq!(status, FLB_OK, "expected FLB_OK, got {}; log:\n{log}", status_name(status));
    let expected = sorted_records(RECORDS.iter().map(|r| {
        let mut v: serde_json::Value = serde_json::from_str(r).unwrap();
        v["tag"] = "t".into();
        v["time"] = "2023-11-14T22:13:20.5Z".into();
        v
    }));
    assert_eq!(redis.records("granted"), expected, "the records, as the plugin writes them; log:\n{log}");
    let denied = flush(&wasm, &[("address", &address), ("key", "denied")]);
    assert_retried_naming("redis", &denied, &address);
    assert!(denied.1.contains("[flbredis] RPUSH denied: dial tcp"), "{}", denied.1);
    assert_eq!(redis.len("denied"), 0, "nothing reached the server without a grant");
}

#[test]
fn own_tls_and_transport_trust_the_hosts_roots() {
    let wasm = built("tests/peers/fluent-bit-go/tls");
    let ca = PrivateCa::new("out_wasm Go TLS CA");
    let ca_file = ca.write("go-clients-tls");
    // 'static for the key lists (this test's process only).
    let ca_file: &'static str = ca_file.to_str().unwrap().to_owned().leak();
    for mode in ["transport", "dial"] {
        let server = Server::start_with(Some(ca.server.clone()));
        let grant: &'static str = format!("localhost:{}", server.port).leak();
        let url: &'static str = format!("https://localhost:{}/ingest", server.port).leak();
        let target = if mode == "transport" { ("url", url) } else { ("address", grant) };
        let base = [("mode", mode), target];
        let keys = |extra: &[(&'static str, &'static str)]| -> Vec<(&str, &str)> {
            base.iter().chain(extra).copied().collect()
        };
        let (status, log) = flush(&wasm, &keys(&[("wasm_allow_net", grant), ("wasm_tls_ca_file", ca_file)]));
        assert_eq!(status, FLB_OK, "{mode}: expected FLB_OK, got {}; log:\n{log}", status_name(status));
        {
            let seen = server.seen.lock().unwrap();
            assert_eq!(seen.len(), 1, "{mode}: one request");
            let records: Vec<serde_json::Value> = serde_json::from_str(&seen[0].body).unwrap();
            assert_eq!(records.len(), 3, "{mode}: {}", seen[0].body);
            assert_eq!(records[0]["message"], "a");
        }
        server.seen.lock().unwrap().clear();
        let untrusted = flush(&wasm, &keys(&[("wasm_allow_net", grant)]));
        assert_eq!(untrusted.0, FLB_RETRY, "{mode}: {}", untrusted.1);
        assert!(untrusted.1.contains("certificate signed by unknown authority"), "{mode}: {}", untrusted.1);
        let denied = flush(&wasm, &keys(&[("wasm_tls_ca_file", ca_file)]));
        assert_retried_naming(mode, &denied, "localhost");
        assert!(server.seen.lock().unwrap().is_empty(), "{mode}: nothing delivered untrusted or denied");
    }
}

#[test]
fn log_syslog_sends_datagrams_with_the_agents_host_name() {
    let wasm = built("tests/peers/fluent-bit-go/syslog");
    let (address, received) = out_wasm_e2e::udp_sink();
    let (status, log) = flush(&wasm, &[("address", &address), ("wasm_allow_net", &address)]);
    assert_eq!(status, FLB_OK, "expected FLB_OK, got {}; log:\n{log}", status_name(status));
    wait_until("three datagrams", || received.lock().unwrap().len() == 3);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_owned();
    for datagram in received.lock().unwrap().iter() {
        let words: Vec<&str> = datagram.splitn(4, ' ').collect();
        assert!(words[0].starts_with("<134>"), "local0.info: {datagram:?}");
        assert_eq!(words[1], host, "os.Hostname is the agent's host name: {datagram:?}");
        assert!(words[2].starts_with("flbsyslog["), "{datagram:?}");
    }
    // log/syslog connects its socket in FLBPluginInit: without a grant, the init fails there.
    let mut plugin = open_plugin();
    let call = init_err(
        &mut plugin,
        &[("wasm_path", wasm.to_str().unwrap()), ("wasm_watch", "off"), ("wasm_stderr", "log"), ("address", &address)],
    );
    let log = call.log_text();
    plugin.close();
    assert!(
        log.contains(&format!(
            "[flbsyslog] dial udp {address}: connect: the host denied it: grant {address} with wasm_allow_net"
        )),
        "{log}"
    );
    assert_eq!(received.lock().unwrap().len(), 3, "no datagram without a grant");
}

#[test]
fn a_calyptia_sdk_plugin_flushes_through_its_goroutine_and_drains_at_exit() {
    let wasm = built("tests/peers/calyptia");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = Arc::clone(&lines);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        }
    });
    let (status, log) = flush(
        &wasm,
        &[("address", &address), ("line_prefix", "cp|"), ("wasm_allow_net", &address), ("log_level", "debug")],
    );
    assert_eq!(status, FLB_OK, "expected FLB_OK, got {}; log:\n{log}", status_name(status));
    wait_until("three lines", || lines.lock().unwrap().len() == 3);
    assert_eq!(lines.lock().unwrap()[0], r#"cp|{"record":{"message":"a","n":1},"tag":"t","time":1700000000500000000}"#);
    for text in [
        format!("calyptiapeer init address={address} prefix=\"cp|\""),
        "calyptiapeer debug line".to_owned(),
        "calyptiapeer drained 3 records".to_owned(),
    ] {
        assert!(log.contains(&text), "{text:?} in the log:\n{log}");
    }
    assert!(!log.contains("has no line_prefix"), "camelCase linePrefix read line_prefix:\n{log}");
}
