//! Every thread the plugin starts has ended once its instances exited and the library was
//! unloaded: the process's total thread count (`/proc/self/task`, named or not, ours or a
//! library's) is what it was before the plugin was loaded. Alone in its own process, so no
//! other test's threads come and go meanwhile.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

use out_wasm_e2e::{chunk, guest_path, init_ok, open_plugin};
use out_wasm_loader::FLB_OK;

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

/// Answers every HTTP request with 200; it and its thread outlive the plugin on purpose.
fn endpoint() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap();
                }
                if line == "\r\n" {
                    let mut body = vec![0; length];
                    std::io::Read::read_exact(&mut reader, &mut body).unwrap();
                    let _ = reader
                        .get_mut()
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                    break;
                }
            }
        }
    });
    port
}

#[test]
fn no_thread_outlives_the_unloaded_plugin() {
    let port = endpoint();
    let before = threads();

    let mut plugin = open_plugin();
    let http = guest_path("http");
    let hostile = guest_path("hostile");
    let url = format!("http://localhost:{port}/");
    let grant = format!("localhost:{port}");
    // The HTTP guest resolves and connects through the I/O runtime (its lookups on the
    // blocking pool); the hostile one looks a name up through WASI; both keep the watcher on.
    let sender =
        init_ok(&mut plugin, &[("wasm_path", http.to_str().unwrap()), ("url", &url), ("wasm_allow_net", &grant)]);
    let looker = init_ok(
        &mut plugin,
        &[
            ("wasm_path", hostile.to_str().unwrap()),
            ("mode", "lookup"),
            ("target", "localhost"),
            ("wasm_allow_net", &grant),
        ],
    );
    for _ in 0..3 {
        let call = sender.flush(&chunk(&[r#"{"n":1}"#], 1, 0), "t");
        assert_eq!(call.value, FLB_OK, "the http guest delivers; log:\n{}", call.log_text());
        let call = looker.flush(&chunk(&[r#"{"evil":true}"#], 1, 0), "t");
        assert_eq!(call.value, FLB_OK, "the lookup is granted; log:\n{}", call.log_text());
    }
    let during = threads();
    sender.exit();
    looker.exit();
    plugin.close();
    let after = threads();

    assert!(during > before, "the plugin ran threads of its own ({before} before, {during} while running)");
    assert_eq!(after, before, "threads before the plugin was loaded vs after it was unloaded ({during} while running)");
    println!("threads: {before} before load, {during} while running, {after} after unload");
}
