//! Guests pulled from a real OCI registry (Debian's `docker-registry`, the CNCF distribution
//! registry) on loopback, with TLS from a private CA and basic auth: pulls by tag and digest,
//! the refusals (a corrupt layer, an unsigned artifact, a signature made for another
//! repository, a wrong password), a start from the artifact store with the registry down, a
//! tag moved under traffic, a local registry over plain HTTP (and `oras pull` of what `out-wasm
//! push` pushed), and registries of the tests' own that send a manifest without end or at a
//! trickle: cut off at the cap and the pull's deadline, and never holding exit.
//!
//! Without `/usr/bin/docker-registry` and `htpasswd` (`scripts/setup` installs both) each test
//! prints a SKIP line.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use out_wasm_e2e::registry::{Registry, registry_bin};
use out_wasm_e2e::sync::EVENT_TIMEOUT;
use out_wasm_e2e::{chunk, cli_bin, guest_path, init_err, init_ok, open_plugin};
use out_wasm_loader::{FLB_OK, FLB_RETRY, LoadedOutput, LogLine, Logged};

fn registry(test: &str) -> Option<Registry> {
    if registry_bin().is_none() {
        eprintln!("SKIP {test}: /usr/bin/docker-registry or htpasswd missing (scripts/setup installs them)");
        return None;
    }
    Some(Registry::start(test))
}

/// `out-wasm ARGS` with the registry's CA and credentials; its stdout, or a panic with stderr.
fn out_wasm(registry: &Registry, args: &[&str]) -> Result<String, String> {
    let auth = registry.auth_file("push-config.json", &registry.password);
    let output = Command::new(cli_bin())
        .args(args)
        .args(["--auth-file", auth.to_str().unwrap(), "--ca-file", registry.ca_file.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if output.status.success() { Ok(stdout) } else { Err(format!("{stdout}{stderr}")) }
}

/// Pushes guest `name` to `repository_and_tag`; returns the manifest digest.
fn push(registry: &Registry, name: &str, repository_and_tag: &str) -> String {
    let guest = guest_path(name);
    let out = out_wasm(registry, &["push", guest.to_str().unwrap(), &registry.reference(repository_and_tag)])
        .unwrap_or_else(|err| panic!("push failed:\n{err}"));
    let digest = out.split("manifest ").nth(1).and_then(|rest| rest.split_whitespace().next()).unwrap();
    assert!(digest.starts_with("sha256:") && digest.len() == 71, "{out}");
    digest.to_owned()
}

fn sha256_hex(path: &Path) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(std::fs::read(path).unwrap()).iter().map(|b| format!("{b:02x}")).collect()
}

/// The keys of an instance pulling `reference` from `registry`, with its own cache directory.
fn keys(registry: &Registry, reference: &str, cache: &Path, auth: &Path) -> Vec<(String, String)> {
    vec![
        ("wasm_path".into(), reference.into()),
        ("wasm_tls_ca_file".into(), registry.ca_file.display().to_string()),
        ("wasm_oci_auth_file".into(), auth.display().to_string()),
        ("wasm_cache_dir".into(), cache.display().to_string()),
        ("note".into(), "v2 needs this".into()),
    ]
}

fn pairs(keys: &[(String, String)]) -> Vec<(&str, &str)> {
    keys.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

fn with(mut keys: Vec<(String, String)>, key: &str, value: &str) -> Vec<(String, String)> {
    keys.push((key.into(), value.into()));
    keys
}

fn text(logs: &[LogLine]) -> String {
    logs.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
}

/// Flushes one record and checks guest `name` served it.
fn served_by(instance: &LoadedOutput, name: &str) -> String {
    let call = instance.flush(&chunk(&[r#"{"seq":0}"#], 1, 0), "oci");
    let log = call.log_text();
    assert_eq!(call.value, FLB_OK, "{log}");
    assert!(log.contains(&format!("tally {name} seq=0")), "expected {name} to serve; log:\n{log}");
    log
}

#[test]
fn a_guest_is_pulled_by_tag_and_by_digest_over_tls_with_basic_auth() {
    let Some(registry) = registry("pull") else { return };
    let manifest = push(&registry, "tally", "guests/tally:v1");
    let cache = registry.dir.join("cache");
    let auth = registry.auth_file("config.json", &registry.password);
    let mut plugin = open_plugin();

    let tag = registry.reference("guests/tally:v1");
    let call = plugin.init(out_wasm_e2e::props(&pairs(&keys(&registry, &tag, &cache, &auth))));
    let log = call.log_text();
    let instance = call.value.unwrap_or_else(|code| panic!("init failed with {code}:\n{log}"));
    let component = sha256_hex(&guest_path("tally"));
    assert!(
        log.contains(&format!("pulled guest '{tag}': manifest {manifest}, component sha256 {}", &component[..12])),
        "{log}"
    );
    assert!(!log.contains(&registry.password), "the password stays out of the log:\n{log}");
    served_by(&instance, "tally");
    instance.exit();
    // Stored content-addressed beside the compile cache, private to the agent's user.
    let stored = cache.join(format!("oci/sha256-{component}.wasm"));
    assert_eq!(sha256_hex(&stored), component);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(cache.join("oci")).unwrap().permissions().mode() & 0o077, 0);

    let pinned = registry.reference(&format!("guests/tally@{manifest}"));
    let keys = with(keys(&registry, &pinned, &cache, &auth), "wasm_oci_verify", "digest");
    let instance = init_ok(&mut plugin, &pairs(&keys));
    served_by(&instance, "tally");
    instance.exit();

    // `out-wasm check oci://...` pulls with the same checks, then checks the component.
    let checked = out_wasm(&registry, &["check", &pinned, "--verify", "digest"]).unwrap();
    assert!(
        checked.contains(&format!("pulled:     {pinned}")) && checked.contains(&format!("sha256:     {component}")),
        "{checked}"
    );
    assert!(checked.contains("world:      out-wasm:output/"), "{checked}");

    // A digest the repository does not have is refused at init, naming it.
    let missing = registry.reference(&format!("guests/tally@sha256:{}", "0".repeat(64)));
    let failed = init_err(&mut plugin, &pairs(&self::keys(&registry, &missing, &registry.dir.join("c2"), &auth)));
    let log = failed.log_text();
    assert!(log.contains("failed to pull guest") && log.contains(&"0".repeat(64)), "{log}");
    eprintln!("refused: {}", log.lines().find(|l| l.contains("failed to pull")).unwrap_or_default());
    plugin.close();
}

#[test]
fn a_wrong_password_is_a_clear_error_without_the_secret() {
    let Some(registry) = registry("password") else { return };
    push(&registry, "tally", "guests/tally:v1");
    let wrong = "not-the-password-7731";
    let auth = registry.auth_file("wrong.json", wrong);
    let mut plugin = open_plugin();
    let tag = registry.reference("guests/tally:v1");
    let failed = init_err(&mut plugin, &pairs(&keys(&registry, &tag, &registry.dir.join("cache"), &auth)));
    let log = failed.log_text();
    assert!(log.contains("refused the credentials") && log.contains("wasm_oci_auth_file"), "{log}");
    assert!(!log.contains(wrong) && !log.contains(&registry.password), "no secret in the log:\n{log}");
    eprintln!("refused: {}", log.lines().find(|l| l.contains("credentials")).unwrap_or_default());
    plugin.close();
}

#[test]
fn a_corrupt_layer_is_refused_before_anything_is_compiled() {
    let Some(registry) = registry("corrupt") else { return };
    push(&registry, "tally", "guests/tally:v1");
    // The registry's stored blob damaged in place (same size, one byte off): what a broken
    // disk or a tampering mirror serves.
    let blob = registry.blob_file(&sha256_hex(&guest_path("tally")));
    let mut bytes = std::fs::read(&blob).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&blob, &bytes).unwrap();
    let auth = registry.auth_file("config.json", &registry.password);
    let cache = registry.dir.join("cache");
    let mut plugin = open_plugin();
    let tag = registry.reference("guests/tally:v1");
    let failed = init_err(&mut plugin, &pairs(&keys(&registry, &tag, &cache, &auth)));
    let log = failed.log_text();
    assert!(log.contains("does not match its digest"), "{log}");
    assert!(!log.contains("compile"), "nothing was compiled:\n{log}");
    let stored: Vec<_> = std::fs::read_dir(cache.join("oci")).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(!stored.iter().any(|n| n.to_string_lossy().ends_with(".wasm")), "nothing stored: {stored:?}");
    eprintln!("refused: {}", log.lines().find(|l| l.contains("does not match")).unwrap_or_default());
    plugin.close();
}

/// A P-256 key pair for signing: the private key (PKCS#8 PEM) and the public key (SPKI PEM,
/// as `cosign.pub`), as files.
fn key_pair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let key = rcgen::KeyPair::generate().unwrap();
    let (private, public) = (dir.join(format!("{name}.key")), dir.join(format!("{name}.pub")));
    std::fs::write(&private, key.serialize_pem()).unwrap();
    std::fs::write(&public, key.public_key_pem()).unwrap();
    (private, public)
}

#[test]
fn under_wasm_oci_verify_an_unsigned_artifact_is_refused_and_a_signed_one_served() {
    let Some(registry) = registry("verify") else { return };
    let manifest = push(&registry, "tally", "guests/tally:v1");
    let (private, public) = key_pair(&registry.dir, "fleet");
    let (_, other) = key_pair(&registry.dir, "other");
    let auth = registry.auth_file("config.json", &registry.password);
    let mut plugin = open_plugin();
    let tag = registry.reference("guests/tally:v1");
    let verified = |cache: &str, key: &Path| {
        with(keys(&registry, &tag, &registry.dir.join(cache), &auth), "wasm_oci_verify", key.to_str().unwrap())
    };

    let failed = init_err(&mut plugin, &pairs(&verified("c1", &public)));
    let log = failed.log_text();
    let expected = format!(
        "is not signed (no cosign signature at {}",
        registry.reference(&format!("guests/tally:{}", manifest.replace(':', "-")))
    );
    assert!(log.contains(&expected), "expected {expected:?} in:\n{log}");
    eprintln!("refused: {}", log.lines().find(|l| l.contains("not signed")).unwrap_or_default());

    let signed = out_wasm(&registry, &["sign", &tag, "--key", private.to_str().unwrap()]).unwrap();
    assert!(signed.contains(&manifest), "{signed}");
    let instance = init_ok(&mut plugin, &pairs(&verified("c2", &public)));
    served_by(&instance, "tally");

    let failed = init_err(&mut plugin, &pairs(&verified("c3", &other)));
    let log = failed.log_text();
    assert!(log.contains("no signature by key") && log.contains("does not verify"), "{log}");
    eprintln!("refused: {}", log.lines().find(|l| l.contains("no signature by key")).unwrap_or_default());

    // A key that cannot be read refuses the start, even with a verified pull in the store.
    let failed = init_err(&mut plugin, &pairs(&verified("c2", &registry.dir.join("missing.pub"))));
    let log = failed.log_text();
    assert!(log.contains("failed to read the wasm_oci_verify key"), "{log}");

    // The tag moved to an unsigned version: refused, once, and version 1 keeps serving.
    instance.exit();
    let keys = with(verified("c2", &public), "wasm_oci_poll_interval", "50ms");
    let instance = init_ok(&mut plugin, &pairs(&keys));
    let unsigned = push(&registry, "tally-v2", "guests/tally:v1");
    let mut logs = Vec::new();
    let started = Instant::now();
    while !text(&logs).contains("refused guest") {
        assert!(started.elapsed() < EVENT_TIMEOUT, "no refusal; log:\n{}", text(&logs));
        logs.extend(instance.flush(&chunk(&[r#"{"seq":1}"#], 1, 0), "oci").logs);
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = text(&logs);
    assert!(
        log.contains(&format!("refused guest '{tag}' at manifest {unsigned}, still serving manifest {manifest}")),
        "{log}"
    );
    assert!(log.contains("is not signed"), "{log}");
    served_by(&instance, "tally");
    eprintln!("refused: {}", log.lines().find(|l| l.contains("refused guest")).unwrap_or_default());
    instance.exit();
    plugin.close();
}

#[test]
fn with_the_registry_down_the_output_starts_from_the_last_verified_pull() {
    let Some(mut registry) = registry("offline") else { return };
    let manifest = push(&registry, "tally", "guests/tally:v1");
    let auth = registry.auth_file("config.json", &registry.password);
    let cache = registry.dir.join("cache");
    let tag = registry.reference("guests/tally:v1");
    let mut plugin = open_plugin();
    let instance = init_ok(&mut plugin, &pairs(&keys(&registry, &tag, &cache, &auth)));
    instance.exit();

    registry.stop();
    let call = plugin.init(out_wasm_e2e::props(&pairs(&keys(&registry, &tag, &cache, &auth))));
    let log = call.log_text();
    let instance = call.value.unwrap_or_else(|code| panic!("init failed with {code}:\n{log}"));
    assert!(
        log.contains("cannot be reached")
            && log.contains(&format!("starting from the last verified pull, manifest {manifest}")),
        "{log}"
    );
    served_by(&instance, "tally");
    eprintln!("offline start: {}", log.lines().find(|l| l.contains("cannot be reached")).unwrap_or_default());
    instance.exit();

    // Without a verified pull to start from, the same outage refuses the instance, saying so.
    let failed = init_err(&mut plugin, &pairs(&keys(&registry, &tag, &registry.dir.join("empty"), &auth)));
    let log = failed.log_text();
    assert!(log.contains("holds no verified pull"), "{log}");
    plugin.close();
}

/// Copies `from` into `to`, merging directories.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn a_signature_made_for_another_repository_is_refused() {
    let Some(registry) = registry("elsewhere") else { return };
    // The same component in two repositories: the same manifest digest in both.
    let manifest = push(&registry, "tally", "guests/tally:v1");
    assert_eq!(push(&registry, "tally", "guests/other:v1"), manifest);
    let (private, public) = key_pair(&registry.dir, "fleet");
    out_wasm(&registry, &["sign", &registry.reference("guests/other:v1"), "--key", private.to_str().unwrap()]).unwrap();
    // Whoever can push to guests/tally copies the signature the same key made for guests/other
    // (tag, manifest revision and blob links, as a registry-side copy leaves them).
    let (other, tally) = (registry.repository_dir("guests/other"), registry.repository_dir("guests/tally"));
    let sig = format!("{}.sig", manifest.replace(':', "-"));
    copy_tree(&other.join("_manifests/tags").join(&sig), &tally.join("_manifests/tags").join(&sig));
    copy_tree(&other.join("_manifests/revisions"), &tally.join("_manifests/revisions"));
    copy_tree(&other.join("_layers"), &tally.join("_layers"));

    let auth = registry.auth_file("config.json", &registry.password);
    let tag = registry.reference("guests/tally:v1");
    let verified = |cache: &str| {
        with(keys(&registry, &tag, &registry.dir.join(cache), &auth), "wasm_oci_verify", public.to_str().unwrap())
    };
    let mut plugin = open_plugin();
    let failed = init_err(&mut plugin, &pairs(&verified("c1")));
    let log = failed.log_text();
    let expected = format!(
        "is for the repository \"localhost:{}/guests/other\", not for localhost:{}/guests/tally",
        registry.port, registry.port
    );
    assert!(log.contains(&expected), "expected {expected:?} in:\n{log}");
    eprintln!("refused: {}", log.lines().find(|l| l.contains("another repository")).unwrap_or_default());

    // Signed for its own repository, the same manifest is served.
    out_wasm(&registry, &["sign", &tag, "--key", private.to_str().unwrap()]).unwrap();
    let instance = init_ok(&mut plugin, &pairs(&verified("c2")));
    served_by(&instance, "tally");
    instance.exit();
    plugin.close();
}

/// The keys of an instance pulling `reference` from a registry on plain HTTP.
fn plain_keys(reference: &str, cache: &Path) -> Vec<(String, String)> {
    vec![
        ("wasm_path".into(), reference.into()),
        ("wasm_cache_dir".into(), cache.display().to_string()),
        ("note".into(), "v2 needs this".into()),
    ]
}

#[test]
fn a_registry_that_sends_a_manifest_without_end_or_at_a_trickle_is_cut_off() {
    let (big_done, big_sent) = mpsc::channel::<u64>();
    let big_done = Mutex::new(big_done);
    let server = out_wasm_e2e::registry::HostileRegistry::start(move |request| {
        let digest = format!("sha256:{}", "e".repeat(64));
        match (request.method.as_str(), request.path.as_str()) {
            (_, "/v2/") => request.answer("200 OK", &[], b"{}"),
            ("HEAD", _) => request.answer("200 OK", &[("Docker-Content-Digest", digest.as_str())], b""),
            // 256 MiB without a Content-Length: the cap must hold as the bytes come.
            ("GET", path) if path.starts_with("/v2/guests/big/") => {
                let sent = request.stream(256 << 20, false, 64 << 10, Duration::ZERO);
                let _ = big_done.lock().unwrap().send(sent);
            }
            // A byte every 100 ms: each read gets data well within any read timeout.
            ("GET", path) if path.starts_with("/v2/guests/slow/") => {
                request.stream(100_000, true, 1, Duration::from_millis(100));
            }
            _ => request.answer("404 Not Found", &[], b""),
        }
    });
    let scratch = std::env::temp_dir().join(format!("out-wasm-hostile-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let mut plugin = open_plugin();

    let big = with(plain_keys(&server.reference("guests/big:v1"), &scratch.join("c1")), "wasm_oci_insecure_http", "on");
    let failed = init_err(&mut plugin, &pairs(&big));
    let log = failed.log_text();
    assert!(log.contains("is more than the 1048576 bytes the host reads"), "{log}");
    let sent = big_sent.recv_timeout(EVENT_TIMEOUT).expect("the server's write ended");
    assert!(sent < 64 << 20, "the host read on: the server wrote {sent} bytes before it stopped");
    eprintln!("cut off after {sent} bytes written: {}", log.lines().find(|l| l.contains("more than")).unwrap());

    let slow = with(
        with(plain_keys(&server.reference("guests/slow:v1"), &scratch.join("c2")), "wasm_oci_insecure_http", "on"),
        "wasm_oci_pull_timeout",
        "2s",
    );
    let started = Instant::now();
    let failed = init_err(&mut plugin, &pairs(&slow));
    let took = started.elapsed();
    let log = failed.log_text();
    assert!(log.contains("did not finish within the pull's deadline (wasm_oci_pull_timeout)"), "{log}");
    // The trickle would last 10,000 s, and no read ever waits 30 s (the read timeout).
    assert!(took < Duration::from_secs(20), "init held for {took:?}");
    eprintln!("trickle cut off after {} ms", took.as_millis());
    plugin.close();
    let _ = std::fs::remove_dir_all(&scratch);
}

#[test]
fn exit_does_not_wait_on_a_registry_that_trickles() {
    use sha2::Digest;
    let component = std::fs::read(guest_path("tally")).unwrap();
    let hex = |bytes: &[u8]| -> String { sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect() };
    let layer = format!("sha256:{}", hex(&component));
    let config = b"{}".to_vec();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": { "mediaType": "application/vnd.wasm.config.v0+json", "digest": format!("sha256:{}", hex(&config)), "size": config.len() },
        "layers": [{ "mediaType": "application/wasm", "digest": layer, "size": component.len() }],
    }))
    .unwrap();
    let first = format!("sha256:{}", hex(&manifest));
    let moved = format!("sha256:{}", "f".repeat(64));
    let tag_moved = Arc::new(AtomicBool::new(false));
    let server = {
        let (first, moved, layer, tag_moved) = (first.clone(), moved.clone(), layer.clone(), tag_moved.clone());
        out_wasm_e2e::registry::HostileRegistry::start(move |request| {
            let path = request.path.clone();
            if path == "/v2/" {
                request.answer("200 OK", &[], b"{}");
            } else if request.method == "HEAD" {
                let at = if tag_moved.load(Ordering::SeqCst) { &moved } else { &first };
                request.answer("200 OK", &[("Docker-Content-Digest", at.as_str())], b"");
            } else if path.ends_with(&format!("/manifests/{first}")) {
                let kind = [("Content-Type", "application/vnd.oci.image.manifest.v1+json")];
                request.answer("200 OK", &kind, &manifest);
            } else if path.ends_with(&format!("/blobs/{layer}")) {
                request.answer("200 OK", &[], &component);
            } else if path.ends_with(&format!("/manifests/{moved}")) {
                request.stream(100_000, true, 1, Duration::from_millis(100));
            } else {
                request.answer("404 Not Found", &[], b"");
            }
        })
    };
    let scratch = std::env::temp_dir().join(format!("out-wasm-stuck-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let keys = [
        ("wasm_oci_insecure_http", "on"),
        ("wasm_oci_poll_interval", "50ms"),
        // Far beyond the test: only the stop can end the stuck pull.
        ("wasm_oci_pull_timeout", "1h"),
    ]
    .into_iter()
    .fold(plain_keys(&server.reference("guests/stuck:v1"), &scratch), |keys, (k, v)| with(keys, k, v));
    let mut plugin = open_plugin();
    let instance = init_ok(&mut plugin, &pairs(&keys));
    served_by(&instance, "tally");
    tag_moved.store(true, Ordering::SeqCst);
    server.wait_for(&format!("GET /v2/guests/stuck/manifests/{moved}"));
    let started = Instant::now();
    // As the agent's hot reload exits an instance.
    let exited = instance.exit_with(true);
    let took = started.elapsed();
    // Without the stop abandoning the pull, exit waits on the trickle (10,000 s).
    assert!(took < Duration::from_secs(5), "exit waited {took:?} on the registry");
    let log = exited.log_text();
    assert!(!log.contains("cannot poll guest"), "the abandoned poll is not reported as a failure:\n{log}");
    eprintln!("exit with a pull stuck on the registry took {} ms", took.as_millis());
    plugin.close();
    let _ = std::fs::remove_dir_all(&scratch);
}

/// `oras`: `$ORAS`, else where `scripts/setup` installs it.
fn oras_bin() -> Option<PathBuf> {
    let bin = std::env::var_os("ORAS").map(PathBuf::from).or_else(|| {
        let home = std::env::var_os("HOME")?;
        Some(PathBuf::from(home).join(".cache/out_wasm-toolchains/oras-1.3.6/bin/oras"))
    })?;
    bin.exists().then_some(bin)
}

#[test]
fn a_local_registry_over_plain_http_is_used_on_loopback_and_elsewhere_only_with_the_key() {
    if registry_bin().is_none() {
        eprintln!("SKIP plain http: /usr/bin/docker-registry or htpasswd missing (scripts/setup installs them)");
        return;
    }
    let registry = Registry::start_plain("plain");
    let manifest = push(&registry, "tally", "guests/tally:v1");
    let mut plugin = open_plugin();
    let tag = registry.reference("guests/tally:v1");
    let call = plugin.init(out_wasm_e2e::props(&pairs(&plain_keys(&tag, &registry.dir.join("c1")))));
    let log = call.log_text();
    let instance = call.value.unwrap_or_else(|code| panic!("init failed with {code}:\n{log}"));
    assert!(log.contains(&format!("pulled guest '{tag}': manifest {manifest}")), "{log}");
    served_by(&instance, "tally");
    instance.exit();

    // 0.0.0.0 reaches this host's registry too, but is not a loopback name: plain HTTP is
    // refused there, with the key that allows it named, and used with it.
    let elsewhere = format!("oci://0.0.0.0:{}/guests/tally:v1", registry.port);
    let failed = init_err(&mut plugin, &pairs(&plain_keys(&elsewhere, &registry.dir.join("c2"))));
    let log = failed.log_text();
    assert!(log.contains("did not answer over TLS") && log.contains("set wasm_oci_insecure_http on"), "{log}");
    eprintln!("refused: {}", log.lines().find(|l| l.contains("wasm_oci_insecure_http")).unwrap_or_default());
    let keys = with(plain_keys(&elsewhere, &registry.dir.join("c3")), "wasm_oci_insecure_http", "on");
    let instance = init_ok(&mut plugin, &pairs(&keys));
    served_by(&instance, "tally");
    instance.exit();
    plugin.close();

    // The pushed layer is titled with the file's name: `oras pull` writes it as that file.
    let guest = guest_path("tally");
    let title = guest.file_name().unwrap().to_str().unwrap().to_owned();
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", registry.port)).unwrap();
    write!(
        stream,
        "GET /v2/guests/tally/manifests/v1 HTTP/1.0\r\nHost: localhost\r\nAccept: \
         application/vnd.oci.image.manifest.v1+json\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    std::io::Read::read_to_string(&mut stream, &mut answer).unwrap();
    let body = &answer[answer.find("\r\n\r\n").unwrap() + 4..];
    let pushed: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(pushed["layers"][0]["annotations"]["org.opencontainers.image.title"], title.as_str(), "{body}");
    let Some(oras) = oras_bin() else {
        eprintln!("SKIP oras pull: no oras (scripts/setup installs it; or set ORAS)");
        return;
    };
    let out = registry.dir.join("oras-out");
    let pulled = Command::new(&oras)
        .args(["pull", "--plain-http", &format!("localhost:{}/guests/tally:v1", registry.port), "-o"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(pulled.status.success(), "oras pull failed: {}", String::from_utf8_lossy(&pulled.stderr));
    assert_eq!(sha256_hex(&out.join(&title)), sha256_hex(&guest), "oras wrote the component as {title}");
    eprintln!("oras pull wrote {}", out.join(&title).display());
}

#[test]
fn a_moved_tag_is_swapped_in_under_traffic_and_every_record_delivered_once() {
    let Some(mut registry) = registry("follow") else { return };
    let first = push(&registry, "tally", "guests/tally:live");
    let auth = registry.auth_file("config.json", &registry.password);
    let tag = registry.reference("guests/tally:live");
    let keys = with(keys(&registry, &tag, &registry.dir.join("cache"), &auth), "wasm_oci_poll_interval", "50ms");
    let mut plugin = open_plugin();
    let instance = init_ok(&mut plugin, &pairs(&keys));
    let logs = Mutex::new(Vec::<LogLine>::new());
    let seq = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let count = |needle: &str| logs.lock().unwrap().iter().filter(|l| l.message.contains(needle)).count();
    let deliver = |bodies: &[&str]| loop {
        let call: Logged<i32> = instance.flush(&chunk(bodies, 1, 0), "oci");
        logs.lock().unwrap().extend(call.logs.iter().cloned());
        match call.value {
            FLB_OK => return,
            FLB_RETRY => {}
            other => panic!("a chunk failed with {other}:\n{}", call.log_text()),
        }
    };
    let wait = |what: &str, done: &dyn Fn() -> bool| {
        let started = Instant::now();
        while !done() {
            assert!(started.elapsed() < EVENT_TIMEOUT, "no {what}; log:\n{}", text(&logs.lock().unwrap()));
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    let second = std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let first = seq.fetch_add(10, Ordering::Relaxed);
                    let bodies: Vec<String> = (first..first + 10).map(|n| format!(r#"{{"seq":{n}}}"#)).collect();
                    let bodies: Vec<&str> = bodies.iter().map(String::as_str).collect();
                    deliver(&bodies);
                }
            });
        }
        wait("records from version 1", &|| count("tally tally seq=") > 0);
        let second = push(&registry, "tally-v2", "guests/tally:live");
        wait("the swap", &|| count("swapped guest") > 0);
        wait("records from version 2", &|| count("tally tally-v2 seq=") > 0);
        // The registry goes away: polling fails, delivery goes on.
        registry.stop();
        wait("a failed poll", &|| count("cannot poll guest") > 0);
        let before = count("tally tally-v2 seq=");
        wait("records with the registry down", &|| count("tally tally-v2 seq=") > before + 20);
        stop.store(true, Ordering::Relaxed);
        second
    });
    logs.lock().unwrap().extend(instance.exit().logs);
    plugin.close();

    let logs = logs.into_inner().unwrap();
    let sent = seq.load(Ordering::Relaxed);
    let mut delivered: HashMap<u64, usize> = HashMap::new();
    for line in &logs {
        if let Some(n) = line.message.split(" seq=").nth(1) {
            *delivered.entry(n.parse().unwrap()).or_default() += 1;
        }
    }
    let lost = (0..sent).filter(|n| !delivered.contains_key(n)).count();
    let twice = delivered.values().filter(|c| **c > 1).count();
    assert_eq!((lost, twice), (0, 0), "{lost} of {sent} records lost, {twice} delivered twice");
    let swaps: Vec<&LogLine> = logs.iter().filter(|l| l.message.contains("swapped guest")).collect();
    assert_eq!(swaps.len(), 1, "{}", text(&logs));
    assert!(swaps[0].message.contains(&format!("(manifest {first} -> {second})")), "{}", swaps[0].message);
    let failed_polls = logs.iter().filter(|l| l.message.contains("cannot poll guest")).count();
    eprintln!("{sent} records delivered exactly once across the tag's move; {}", swaps[0].message);
    eprintln!("registry down: {failed_polls} poll warning(s) logged, delivery went on");
}

/// The agent's log, line by line as it writes it, for a test to wait on.
struct AgentLog {
    lines: Arc<Mutex<Vec<String>>>,
}

impl AgentLog {
    fn count(&self, needle: &str) -> usize {
        self.lines.lock().unwrap().iter().filter(|l| l.contains(needle)).count()
    }

    fn wait(&self, what: &str, done: impl Fn(&Self) -> bool) {
        let started = Instant::now();
        while !done(self) {
            assert!(started.elapsed() < EVENT_TIMEOUT, "no {what}; agent log:\n{}", self.text());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn text(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }
}

#[test]
fn real_agent_follows_a_moved_tag_and_delivers_every_record_once() {
    let Some(agent) = std::env::var_os("FLUENT_BIT") else {
        eprintln!("SKIP real_agent_follows_a_moved_tag_and_delivers_every_record_once: FLUENT_BIT is not set");
        return;
    };
    let Some(registry) = registry("agent") else { return };
    let first = push(&registry, "tally", "guests/tally:live");
    let auth = registry.auth_file("config.json", &registry.password);
    let tag = registry.reference("guests/tally:live");
    let config = registry.dir.join("fluent-bit.conf");
    let keys = with(keys(&registry, &tag, &registry.dir.join("cache"), &auth), "wasm_oci_poll_interval", "200ms");
    let mut section = String::from(
        "[SERVICE]\n    Flush 1\n    Log_Level info\n\n[INPUT]\n    Name stdin\n    Tag app\n\n[OUTPUT]\n    Name wasm\n    Match *\n",
    );
    for (key, value) in &keys {
        section.push_str(&format!("    {key} {value}\n"));
    }
    std::fs::write(&config, section).unwrap();
    let mut child = Command::new(&agent)
        .args(["-e".as_ref(), out_wasm_e2e::plugin_path().as_os_str(), "-c".as_ref(), config.as_os_str()])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the agent starts");
    let log = AgentLog { lines: Arc::new(Mutex::new(Vec::new())) };
    let reader = {
        let lines = log.lines.clone();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        })
    };
    let mut stdin = child.stdin.take().unwrap();
    let mut sent = 0u64;
    let mut send = |stdin: &mut std::process::ChildStdin, n: u64| {
        for _ in 0..n {
            writeln!(stdin, r#"{{"seq":{sent}}}"#).unwrap();
            sent += 1;
        }
        stdin.flush().unwrap();
    };
    send(&mut stdin, 50);
    log.wait("records from version 1", |log| log.count("tally tally seq=") > 0);
    let pushed = Instant::now();
    let second = push(&registry, "tally-v2", "guests/tally:live");
    // Records keep coming while the tag moves.
    while log.count("swapped guest") == 0 {
        assert!(pushed.elapsed() < EVENT_TIMEOUT, "no swap; agent log:\n{}", log.text());
        send(&mut stdin, 10);
        std::thread::sleep(Duration::from_millis(50));
    }
    log.wait("records from version 2", |log| log.count("tally tally-v2 seq=") > 0);
    let first_new_flush = pushed.elapsed();
    send(&mut stdin, 50);
    let total = sent;
    log.wait("every record", |log| {
        let lines = log.lines.lock().unwrap();
        let seen: std::collections::HashSet<u64> =
            lines.iter().filter_map(|l| l.split(" seq=").nth(1)?.split_whitespace().next()?.parse().ok()).collect();
        seen.len() as u64 >= total
    });
    drop(stdin);
    let _ = child.kill();
    let _ = child.wait();
    reader.join().unwrap();
    let text = log.text();
    let mut delivered: HashMap<u64, usize> = HashMap::new();
    for line in text.lines() {
        if let Some(n) =
            line.split(" seq=").nth(1).and_then(|r| r.split_whitespace().next()).and_then(|n| n.parse().ok())
        {
            *delivered.entry(n).or_default() += 1;
        }
    }
    let twice = delivered.values().filter(|c| **c > 1).count();
    let lost = (0..total).filter(|n| !delivered.contains_key(n)).count();
    assert_eq!((lost, twice), (0, 0), "{lost} of {total} lost, {twice} twice; agent log:\n{text}");
    let swap = text.lines().find(|l| l.contains("swapped guest")).unwrap();
    assert!(swap.contains(&format!("(manifest {first} -> {second})")), "{swap}");
    assert_eq!(log.count("swapped guest"), 1, "{text}");
    eprintln!("{total} records in, {} out, each once; {swap}", delivered.len());
    eprintln!(
        "tag push -> first flush on the new digest: {} ms (poll interval 200ms, Flush 1)",
        first_new_flush.as_millis()
    );
}
