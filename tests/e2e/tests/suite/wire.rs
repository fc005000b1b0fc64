//! What the host does on the wire for every guest's HTTP, through the real boundary with the
//! Rust `http` example (the host does it the same for every language: the guest only asks
//! `wasi:http`): a real proxy (Debian's tinyproxy) carries plain requests and HTTPS tunnels,
//! with credentials from a file and `wasm_no_proxy` bypassing it, while the network policy
//! still judges the proxy and every target; a server that requires a client certificate gets
//! the output's (`wasm_tls_crt_file`, `wasm_tls_key_file`, an encrypted key with its password
//! file), and refuses a guest without one.

use std::path::{Path, PathBuf};
use std::process::Command;

use out_wasm_e2e::http_server::{PrivateCa, Server};
use out_wasm_e2e::tinyproxy::TinyProxy;
use out_wasm_e2e::{chunk, guest_path, init_err, init_ok, open_plugin, scratch_dir};
use out_wasm_loader::{FLB_OK, FLB_RETRY};

/// One chunk through the `http` example with `pairs`: the answer and the log.
fn flush_with(pairs: &[(&str, &str)]) -> (i32, String) {
    let path = guest_path("http");
    let mut plugin = open_plugin();
    let mut all = vec![("wasm_path", path.to_str().unwrap()), ("wasm_watch", "off")];
    all.extend_from_slice(pairs);
    let instance = init_ok(&mut plugin, &all);
    let call = instance.flush(&chunk(&[r#"{"msg":"a","n":1}"#], 1_700_000_000, 0), "app");
    instance.exit();
    plugin.close();
    (call.value, call.log_text())
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_proxy_carries_plain_requests_and_https_tunnels_and_the_policy_still_judges_both() {
    let test = "wire-proxy";
    let plain = Server::start();
    let ca = PrivateCa::new("out_wasm proxy test CA");
    let tls = Server::start_with(Some(ca.server.clone()));
    let Some(proxy) = TinyProxy::start(test, &[tls.port], None) else { return };
    let ca_file = ca.write(test);
    let proxy_url = format!("http://127.0.0.1:{}", proxy.port);
    let proxy_grant = format!("127.0.0.1:{}", proxy.port);

    // Plain HTTP: the request goes to the proxy in absolute form, which forwards it (and says so
    // in a Via header).
    let url = format!("http://127.0.0.1:{}/ingest", plain.port);
    let grants = format!("{proxy_grant}, 127.0.0.1:{}", plain.port);
    let (status, log) = flush_with(&[("url", &url), ("wasm_allow_net", &grants), ("wasm_http_proxy", &proxy_url)]);
    assert_eq!(status, FLB_OK, "log:\n{log}");
    {
        let seen = plain.seen.lock().unwrap();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert!(seen[0].header("via").is_some_and(|via| via.contains("tinyproxy")), "through the proxy: {seen:?}");
    }
    assert!(proxy.log().contains(&format!("POST {url}")), "the proxy was asked for the URL:\n{}", proxy.log());

    // HTTPS: a CONNECT tunnel to the target's name, TLS to the target inside it (the host's roots).
    let url = format!("https://localhost:{}/ingest", tls.port);
    let grants = format!("{proxy_grant}, localhost:{}", tls.port);
    let (status, log) = flush_with(&[
        ("url", &url),
        ("wasm_allow_net", &grants),
        ("wasm_http_proxy", &proxy_url),
        ("wasm_tls_ca_file", ca_file.to_str().unwrap()),
    ]);
    assert_eq!(status, FLB_OK, "log:\n{log}");
    assert_eq!(tls.seen.lock().unwrap().len(), 1, "delivered over the tunnel");
    assert!(proxy.log().contains(&format!("CONNECT localhost:{}", tls.port)), "a tunnel to the name:\n{}", proxy.log());

    // wasm_no_proxy: reached directly (no Via).
    let url = format!("http://127.0.0.1:{}/direct", plain.port);
    let grants = format!("{proxy_grant}, 127.0.0.1:{}", plain.port);
    let (status, log) = flush_with(&[
        ("url", &url),
        ("wasm_allow_net", &grants),
        ("wasm_http_proxy", &proxy_url),
        ("wasm_no_proxy", "localhost, 127.0.0.0/8"),
    ]);
    assert_eq!(status, FLB_OK, "log:\n{log}");
    {
        let seen = plain.seen.lock().unwrap();
        assert_eq!(seen[1].request_line, "POST /direct HTTP/1.1");
        assert_eq!(seen[1].header("via"), None, "not through the proxy: {:?}", seen[1]);
    }
    assert!(!proxy.log().contains("/direct"), "the proxy never saw it:\n{}", proxy.log());

    // The target is judged as without a proxy: not granted, never asked of the proxy.
    let before = proxy.log();
    let url = format!("http://127.0.0.1:{}/denied", plain.port);
    let (_, log) = flush_with(&[("url", &url), ("wasm_allow_net", &proxy_grant), ("wasm_http_proxy", &proxy_url)]);
    assert!(log.contains("wasm_allow_net"), "the refusal names the grant:\n{log}");
    assert_eq!(proxy.log(), before, "the proxy was not asked");
    assert_eq!(plain.seen.lock().unwrap().len(), 2, "the server was not contacted");

    // The proxy itself must be granted: refused at start, naming the grant to add.
    let mut plugin = open_plugin();
    let guest = guest_path("http");
    let grant = format!("127.0.0.1:{}", plain.port);
    let call = init_err(
        &mut plugin,
        &[
            ("wasm_path", guest.to_str().unwrap()),
            ("url", &url),
            ("wasm_allow_net", &grant),
            ("wasm_http_proxy", &proxy_url),
        ],
    );
    let text = call.log_text();
    assert!(
        text.contains(&format!(
            "the proxy {proxy_grant} (wasm_http_proxy) is not granted: add {proxy_grant} to wasm_allow_net"
        )),
        "{text}"
    );
    plugin.close();
    let _ = std::fs::remove_file(ca_file);
}

#[test]
fn a_proxy_requiring_credentials_gets_them_from_the_file_and_their_absence_is_named() {
    let test = "wire-proxy-auth";
    let ca = PrivateCa::new("out_wasm proxy auth CA");
    let tls = Server::start_with(Some(ca.server.clone()));
    let Some(proxy) = TinyProxy::start(test, &[tls.port], Some("fleet:s3cret")) else { return };
    let dir = scratch_dir(test);
    let ca_file = ca.write(test);
    let auth = write(&dir, "proxy-auth", "fleet:s3cret\n");
    let url = format!("https://localhost:{}/ingest", tls.port);
    // The proxy by name, as operators write it: its answers are used as they are (a proxy is
    // the operator's choice; a guest's names are the ones held to the special-range rule).
    let grants = format!("localhost:{}, localhost:{}", proxy.port, tls.port);
    let proxy_url = format!("http://localhost:{}", proxy.port);
    let base = [
        ("url", url.as_str()),
        ("wasm_allow_net", grants.as_str()),
        ("wasm_http_proxy", proxy_url.as_str()),
        ("wasm_tls_ca_file", ca_file.to_str().unwrap()),
    ];

    let (status, log) = flush_with(&base);
    assert_eq!(status, FLB_RETRY, "refused by the proxy: retried\n{log}");
    assert!(log.contains("407") && log.contains("wasm_http_proxy_auth_file"), "the refusal names the fix:\n{log}");
    assert_eq!(tls.seen.lock().unwrap().len(), 0);

    let mut with_auth = base.to_vec();
    with_auth.push(("wasm_http_proxy_auth_file", auth.to_str().unwrap()));
    let (status, log) = flush_with(&with_auth);
    assert_eq!(status, FLB_OK, "log:\n{log}");
    assert_eq!(tls.seen.lock().unwrap().len(), 1);
    assert!(!log.contains("s3cret"), "the credentials are never logged:\n{log}");
    let _ = std::fs::remove_file(ca_file);
}

#[test]
fn a_server_requiring_a_client_certificate_gets_the_outputs_and_refuses_a_guest_without() {
    let test = "wire-mtls";
    let ca = PrivateCa::new("out_wasm mTLS test CA");
    let server = Server::start_with(Some(ca.server_requiring_client_certs()));
    let dir = scratch_dir(test);
    let ca_file = ca.write(test);
    let (crt, key) = ca.client_cert("out_wasm output");
    let crt = write(&dir, "client.crt", &crt);
    let key_file = write(&dir, "client.key", &key);
    let url = format!("https://localhost:{}/ingest", server.port);
    let grant = format!("localhost:{}", server.port);
    let base =
        [("url", url.as_str()), ("wasm_allow_net", grant.as_str()), ("wasm_tls_ca_file", ca_file.to_str().unwrap())];

    // Without a certificate the server ends the session (in TLS 1.3 after the handshake, at
    // the first read): a retry, and the log names the keys that give the output one.
    let (status, log) = flush_with(&base);
    assert_eq!(status, FLB_RETRY, "log:\n{log}");
    assert!(
        log.contains(&format!(
            "the server localhost:{} requires a client certificate: give the output one with wasm_tls_crt_file",
            server.port
        )),
        "{log}"
    );
    assert_eq!(server.seen.lock().unwrap().len(), 0);

    let mut with_cert = base.to_vec();
    with_cert.extend([("wasm_tls_crt_file", crt.to_str().unwrap()), ("wasm_tls_key_file", key_file.to_str().unwrap())]);
    let (status, log) = flush_with(&with_cert);
    assert_eq!(status, FLB_OK, "log:\n{log}");
    assert_eq!(server.seen.lock().unwrap().len(), 1);

    // An encrypted key, as `openssl pkcs8 -topk8` makes one, opened with its password file.
    let password = write(&dir, "key-password", "correct horse\n");
    let encrypted = dir.join("client.enc.key");
    let made = Command::new("openssl")
        .args(["pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in"])
        .arg(&key_file)
        .arg("-out")
        .arg(&encrypted)
        .arg("-passout")
        .arg(format!("file:{}", password.display()))
        .status();
    match made {
        Ok(status) if status.success() => {
            let mut with_encrypted = base.to_vec();
            with_encrypted.extend([
                ("wasm_tls_crt_file", crt.to_str().unwrap()),
                ("wasm_tls_key_file", encrypted.to_str().unwrap()),
                ("wasm_tls_key_passwd_file", password.to_str().unwrap()),
            ]);
            let (status, log) = flush_with(&with_encrypted);
            assert_eq!(status, FLB_OK, "log:\n{log}");
            assert_eq!(server.seen.lock().unwrap().len(), 2);

            let wrong = write(&dir, "wrong-password", "battery staple\n");
            let mut plugin = open_plugin();
            let guest = guest_path("http");
            let mut pairs = vec![("wasm_path", guest.to_str().unwrap())];
            pairs.extend(&with_encrypted[..with_encrypted.len() - 1]);
            pairs.push(("wasm_tls_key_passwd_file", wrong.to_str().unwrap()));
            let text = init_err(&mut plugin, &pairs).log_text();
            assert!(
                text.contains("failed to decrypt the key file") && text.contains("wasm_tls_key_passwd_file"),
                "{text}"
            );
            pairs.pop();
            let text = init_err(&mut plugin, &pairs).log_text();
            assert!(
                text.contains("is encrypted: name a file holding its password with wasm_tls_key_passwd_file"),
                "{text}"
            );
            plugin.close();
        }
        other => eprintln!(
            "SKIP the encrypted key case of {test}: openssl did not run ({other:?}); install Debian's openssl"
        ),
    }

    // A certificate without its key is refused at start, naming the key to add.
    let mut plugin = open_plugin();
    let guest = guest_path("http");
    let mut pairs = vec![("wasm_path", guest.to_str().unwrap())];
    pairs.extend(&base);
    pairs.push(("wasm_tls_crt_file", crt.to_str().unwrap()));
    let text = init_err(&mut plugin, &pairs).log_text();
    assert!(text.contains("wasm_tls_crt_file needs wasm_tls_key_file"), "{text}");
    plugin.close();
    let _ = std::fs::remove_file(ca_file);
}
