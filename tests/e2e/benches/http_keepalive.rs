//! What a kept-alive connection saves: the Rust `http` example posting chunks of 256 records to
//! a loopback endpoint, over plain HTTP and HTTPS, with `wasm_http_keepalive` on (the default)
//! and off (a connection, and for HTTPS a TLS handshake, per request, as before keep-alive).
//! Reported per mode: requests per second, records per second, and the plugin side's CPU per
//! request (the endpoint runs in a process of its own, so its work is not counted).
//!
//! `cargo bench -p out-wasm-e2e --bench http_keepalive`. `OUT_WASM_BENCH_REQUESTS` sets the
//! requests per mode (default 400).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use out_wasm_e2e::http_server::PrivateCa;
use out_wasm_e2e::{chunk, guest_path, init_ok, open_plugin};
use out_wasm_loader::FLB_OK;

const RECORDS_PER_CHUNK: usize = 256;
/// Set in the child that serves: `plain` or a PEM file with the server's key and certificate.
const SERVE: &str = "OUT_WASM_BENCH_SERVE";

fn main() {
    if let Ok(mode) = std::env::var(SERVE) {
        serve(&mode);
        return;
    }
    let requests: usize = std::env::var("OUT_WASM_BENCH_REQUESTS").ok().and_then(|n| n.parse().ok()).unwrap_or(400);
    let body = r#"{"level":"info","msg":"request handled 12345","http":{"method":"GET","path":"/api/v1/items/12345","status":200,"latency_ms":42.125},"user":{"id":977,"name":"user977"},"tags":["a","b"]}"#;
    let data = chunk(&vec![body; RECORDS_PER_CHUNK], 1_700_000_000, 123_456_789);
    let ca = PrivateCa::new("out_wasm bench CA");
    let ca_file = ca.write("bench");
    let server_pem = std::env::temp_dir().join(format!("out-wasm-bench-server-{}.pem", std::process::id()));
    std::fs::write(&server_pem, ca.server_pem()).expect("the server's key and certificate are written");

    println!(
        "{requests} requests per mode, {RECORDS_PER_CHUNK} records ({} B of msgpack) per request, to a loopback endpoint in another process",
        data.len()
    );
    println!("{:<7} {:<10} {:>12} {:>12} {:>16}", "scheme", "keep-alive", "requests/s", "records/s", "CPU ms/request");
    let mut cpu = std::collections::HashMap::new();
    for (scheme, serve_as) in [("http", "plain".to_owned()), ("https", server_pem.display().to_string())] {
        for keepalive in ["15s", "off"] {
            let mut server = Command::new(std::env::current_exe().expect("the bench knows its own path"))
                .env(SERVE, &serve_as)
                .stdout(Stdio::piped())
                .spawn()
                .expect("the endpoint starts");
            let mut port = String::new();
            BufReader::new(server.stdout.take().unwrap()).read_line(&mut port).expect("the endpoint says its port");
            let port: u16 = port.trim().parse().expect("a port");
            let (rate, per_request) = run(scheme, port, keepalive, &ca_file, &data, requests);
            server.kill().ok();
            server.wait().ok();
            println!(
                "{scheme:<7} {keepalive:<10} {rate:>12.0} {:>12.0} {per_request:>16.3}",
                rate * RECORDS_PER_CHUNK as f64
            );
            cpu.insert((scheme, keepalive), per_request);
        }
    }
    let plain = cpu[&("http", "15s")];
    let https = cpu[&("https", "15s")];
    println!(
        "with keep-alive an HTTPS request costs {:.0}% of a plain one's CPU (goal: at most 110%); without it {:.0}%",
        https / plain * 100.0,
        cpu[&("https", "off")] / cpu[&("http", "off")] * 100.0
    );
    let _ = std::fs::remove_file(ca_file);
    let _ = std::fs::remove_file(server_pem);
}

/// Requests per second and CPU milliseconds per request of `requests` flushes.
fn run(
    scheme: &str,
    port: u16,
    keepalive: &str,
    ca_file: &std::path::Path,
    data: &[u8],
    requests: usize,
) -> (f64, f64) {
    let url = format!("{scheme}://127.0.0.1:{port}/ingest");
    let grant = format!("127.0.0.1:{port}");
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
    // Warm: the first request of each mode makes its connection either way.
    assert_eq!(instance.flush(data, "bench").value, FLB_OK);
    let (cpu_before, started) = (cpu_ms(), Instant::now());
    for _ in 0..requests {
        let call = instance.flush(data, "bench");
        assert_eq!(call.value, FLB_OK, "{}", call.log_text());
    }
    let (elapsed, cpu) = (started.elapsed().as_secs_f64(), cpu_ms() - cpu_before);
    instance.exit();
    plugin.close();
    (requests as f64 / elapsed, cpu / requests as f64)
}

/// This process's user and system CPU time so far, in milliseconds.
fn cpu_ms() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let ms = |t: libc::timeval| t.tv_sec as f64 * 1e3 + t.tv_usec as f64 / 1e3;
    ms(usage.ru_utime) + ms(usage.ru_stime)
}

/// The endpoint: HTTP/1.1 with keep-alive, 200 to every request, a thread per connection.
fn serve(mode: &str) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    println!("{}", listener.local_addr().unwrap().port());
    std::io::stdout().flush().unwrap();
    let tls = (mode != "plain").then(|| PrivateCa::server_config_from_pem(&std::fs::read_to_string(mode).unwrap()));
    for stream in listener.incoming().flatten() {
        let tls: Option<Arc<rustls::ServerConfig>> = tls.clone();
        std::thread::spawn(move || match tls {
            None => answer(stream),
            Some(config) => answer(rustls::StreamOwned::new(rustls::ServerConnection::new(config).unwrap(), stream)),
        });
    }
}

fn answer(stream: impl Read + Write) {
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if !matches!(reader.read_line(&mut line), Ok(1..)) {
            return;
        }
        let mut length = 0;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).is_err() {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let stream = reader.get_mut();
        if stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: keep-alive\r\n\r\n").is_err()
            || stream.flush().is_err()
        {
            return;
        }
    }
}
