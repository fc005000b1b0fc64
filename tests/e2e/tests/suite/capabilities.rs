//! Capabilities through the real boundary: a guest reaches exactly what its instance's config
//! grants (directories, environment variables, network addresses) and nothing else.

use std::path::PathBuf;

use out_wasm_e2e::{chunk, guest_path, init_err, init_ok, lines_with, loopback_name, open_plugin};
use out_wasm_loader::{FLB_ERROR, FLB_OK};

fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("out-wasm-caps-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs the hostile guest's `mode` on `target` with `grants`; returns the flush status and log.
fn attempt(mode: &str, target: &str, grants: &[(&str, &str)]) -> (i32, String) {
    let path = guest_path("hostile");
    let mut pairs =
        vec![("wasm_path", path.to_str().unwrap()), ("mode", mode), ("target", target), ("wasm_watch", "off")];
    pairs.extend_from_slice(grants);
    let mut plugin = open_plugin();
    let instance = init_ok(&mut plugin, &pairs);
    let call = instance.flush(&chunk(&[r#"{"evil":true}"#], 1, 0), "t");
    instance.exit();
    plugin.close();
    (call.value, call.log_text())
}

#[test]
fn directories_are_reachable_only_as_granted() {
    let dir = scratch("dirs");
    std::fs::write(dir.join("in.txt"), "granted\n").unwrap();
    let ro = format!("{}:/data", dir.display());
    let rw = format!("{}:/data:rw", dir.display());

    let (status, log) = attempt("read", "/data/in.txt", &[("wasm_allow_dirs", &ro)]);
    assert_eq!(status, FLB_OK, "reading inside a read-only grant works; log:\n{log}");
    assert!(log.contains("hostile read succeeded: 8 bytes"), "{log}");

    let (status, log) = attempt("write", "/data/out.txt", &[("wasm_allow_dirs", &ro)]);
    assert_eq!(status, FLB_ERROR, "writing into a read-only grant is denied; log:\n{log}");
    assert!(!dir.join("out.txt").exists(), "the guest wrote into a read-only grant");

    let (status, log) = attempt("write", "/data/out.txt", &[("wasm_allow_dirs", &rw)]);
    assert_eq!(status, FLB_OK, "writing into a read-write grant works; log:\n{log}");
    assert_eq!(std::fs::read_to_string(dir.join("out.txt")).unwrap(), "hostile\n");

    for escape in ["/data/../../etc/passwd", "/etc/passwd", "/data/../in.txt"] {
        let (status, log) = attempt("read", escape, &[("wasm_allow_dirs", &rw)]);
        assert_eq!(status, FLB_ERROR, "{escape} is outside the grant; log:\n{log}");
        assert!(log.contains("hostile read denied"), "{escape}: {log}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn environment_variables_are_reachable_only_by_name() {
    // The agent's environment has PATH; the guest sees it only when named.
    let (status, log) = attempt("env", "PATH", &[]);
    assert_eq!(status, FLB_ERROR, "no variable by default; log:\n{log}");
    let (status, log) = attempt("env", "PATH", &[("wasm_allow_env", "HOME, PATH")]);
    assert_eq!(status, FLB_OK, "a granted variable is there; log:\n{log}");
    let (status, log) = attempt("env", "HOME", &[("wasm_allow_env", "PATH")]);
    assert_eq!(status, FLB_ERROR, "only the named ones; log:\n{log}");
}

#[test]
fn network_addresses_are_reachable_only_as_granted() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let target = format!("127.0.0.1:{port}");

    let (status, log) = attempt("connect", &target, &[]);
    assert_eq!(status, FLB_ERROR, "no network by default; log:\n{log}");
    let (status, log) =
        attempt("connect", &target, &[("wasm_allow_net", &format!("127.0.0.1:{}", port.wrapping_add(1)))]);
    assert_eq!(status, FLB_ERROR, "another port is not this port; log:\n{log}");
    let (status, log) = attempt("connect", &target, &[("wasm_allow_net", &target)]);
    assert_eq!(status, FLB_OK, "the granted address is reachable; log:\n{log}");
    listener.set_nonblocking(true).unwrap();
    listener.accept().expect("the guest's connection arrived");
    let (status, log) = attempt("connect", &target, &[("wasm_allow_net", "127.0.0.1:*")]);
    assert_eq!(status, FLB_OK, "host:* grants every port; log:\n{log}");
}

#[test]
fn names_are_looked_up_only_when_a_grant_names_them() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let by_ip = format!("127.0.0.1:{port}");
    let by_name = format!("localhost:{port}");

    // localhost resolves without the network, so a denial cannot be a failed resolution.
    for grant in [None, Some(by_ip.as_str())] {
        let grants: Vec<(&str, &str)> = grant.iter().map(|g| ("wasm_allow_net", *g)).collect();
        let (status, log) = attempt("lookup", "localhost", &grants);
        assert_eq!(status, FLB_ERROR, "grant {grant:?}: an IP-only grant allows no lookup; log:\n{log}");
        assert!(log.contains("hostile lookup denied: access-denied"), "the guest is told access denied:\n{log}");
        if grant.is_some() {
            assert!(
                log.contains("the host denied the guest's lookup of \"localhost\": no wasm_allow_net grant names it"),
                "the host says what it denied:\n{log}"
            );
        }
    }
    let (status, log) = attempt("lookup", "LocalHost", &[("wasm_allow_net", &format!("evil.example:{port}"))]);
    assert_eq!(status, FLB_ERROR, "another name is not this name; log:\n{log}");

    let (status, log) = attempt("lookup", "localhost", &[("wasm_allow_net", &by_name)]);
    assert_eq!(status, FLB_OK, "a granted name resolves; log:\n{log}");
    assert!(log.contains("hostile lookup succeeded: ") && log.contains("127.0.0.1"), "{log}");

    // A socket client looks the name up, then connects to what it got: one policy for both.
    let (status, log) = attempt("connect", &by_name, &[("wasm_allow_net", &by_name)]);
    assert_eq!(status, FLB_OK, "connecting by a granted name works; log:\n{log}");
    listener.set_nonblocking(true).unwrap();
    listener.accept().expect("the guest's connection arrived");
    let (status, log) = attempt("connect", &by_name, &[("wasm_allow_net", &by_ip)]);
    assert_eq!(status, FLB_ERROR, "by name needs a lookup, which an IP grant does not allow; log:\n{log}");
    let (status, log) = attempt("connect", &by_ip, &[("wasm_allow_net", &by_name)]);
    assert_eq!(status, FLB_ERROR, "a name grant opens only the addresses its lookups returned; log:\n{log}");
    assert!(listener.accept().is_err(), "no other connection arrived");
}

/// Whoever answers for a granted name chooses its addresses: a granted name whose lookup
/// answers a loopback address (the machine's own name here) does not lead the guest there. The
/// answer is withheld from the guest's lookup, with a warn line naming it and the grant that
/// would allow it, so the connection by name fails; granted with the address or a range
/// holding it, it connects. `localhost` itself names the loopback
/// ([`names_are_looked_up_only_when_a_grant_names_them`]).
#[test]
fn a_granted_name_leads_to_a_special_address_only_when_a_grant_names_it() {
    let Some((name, ip)) = loopback_name() else {
        eprintln!(
            "SKIP a_granted_name_leads_to_a_special_address_only_when_a_grant_names_it: the host name does not \
             resolve to the loopback only"
        );
        return;
    };
    let listener = std::net::TcpListener::bind((ip, 0)).unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let by_name = format!("{name}:{port}");

    let (status, log) = attempt("lookup", &name, &[("wasm_allow_net", &by_name)]);
    assert_eq!(status, FLB_OK, "the granted name is looked up; log:\n{log}");
    let shown = log.lines().find(|l| l.contains("hostile lookup succeeded:")).unwrap_or_default();
    assert!(shown.ends_with("succeeded: "), "the loopback answer is not shown to the guest; log:\n{log}");
    let withheld = format!("the host withheld {ip} from the guest's lookup of {name:?}: a loopback address");
    assert!(log.contains(&withheld), "the host says what it withheld:\n{log}");
    assert!(log.contains(&format!("({ip}:{port})")), "and the grant that would allow it:\n{log}");

    let (status, log) = attempt("connect", &by_name, &[("wasm_allow_net", &by_name)]);
    assert_eq!(status, FLB_ERROR, "the name alone does not lead to the loopback; log:\n{log}");
    assert!(log.contains(&withheld), "{log}");
    assert!(listener.accept().is_err(), "no connection arrived");

    for grant in [format!("{ip}:{port}"), format!("127.0.0.0/8:{port}")] {
        let (status, log) = attempt("connect", &by_name, &[("wasm_allow_net", &format!("{by_name}, {grant}"))]);
        assert_eq!(status, FLB_OK, "with {grant} granted too, the name leads there; log:\n{log}");
        listener.accept().expect("the guest's connection arrived");
    }
}

#[test]
fn file_guest_appends_json_lines_into_its_granted_directory_and_rotates() {
    let dir = scratch("file");
    let grant = format!("{}:/out:rw", dir.display());
    let path = guest_path("file");
    let mut plugin = open_plugin();
    let pairs = [
        ("wasm_path", path.to_str().unwrap()),
        ("wasm_allow_dirs", grant.as_str()),
        ("path", "/out/records.jsonl"),
        ("max_size", "200"),
        ("rotate_keep", "2"),
        ("wasm_watch", "off"),
    ];
    let instance = init_ok(&mut plugin, &pairs);
    let data = chunk(&[r#"{"msg":"héllo","n":1}"#, r#"{"msg":"two","n":2.5}"#], 1_700_000_000, 500_000_000);
    for _ in 0..5 {
        let call = instance.flush(&data, "t");
        assert_eq!(call.value, FLB_OK, "log:\n{}", call.log_text());
    }
    instance.exit();
    plugin.close();
    let expected =
        "{\"date\":1700000000.5,\"msg\":\"h\\u00e9llo\",\"n\":1}\n{\"date\":1700000000.5,\"msg\":\"two\",\"n\":2.5}\n";
    assert_eq!(std::fs::read_to_string(dir.join("records.jsonl")).unwrap(), expected, "the newest chunk");
    // Chunks of 99 bytes, rotated before one would pass 200: two chunks a rotated file.
    let two = expected.repeat(2);
    assert_eq!(std::fs::read_to_string(dir.join("records.jsonl.1")).unwrap(), two, "rotated before passing 200 bytes");
    assert_eq!(std::fs::read_to_string(dir.join("records.jsonl.2")).unwrap(), two, "two rotated files are kept");
    assert!(!dir.join("records.jsonl.3").exists(), "no more than rotate_keep");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn file_guest_without_a_writable_grant_refuses_to_start() {
    let dir = scratch("file-ro");
    let path = guest_path("file");
    for grant in [None, Some(format!("{}:/out", dir.display()))] {
        let mut plugin = open_plugin();
        let mut pairs = vec![("wasm_path", path.to_str().unwrap()), ("path", "/out/records.jsonl")];
        if let Some(grant) = &grant {
            pairs.push(("wasm_allow_dirs", grant.as_str()));
        }
        let call = init_err(&mut plugin, &pairs);
        assert_eq!(
            lines_with(&call, "failed to open /out/records.jsonl").len(),
            1,
            "grant {grant:?}: the reason is logged:\n{}",
            call.log_text()
        );
        plugin.close();
    }
    assert!(std::fs::read_dir(&dir).unwrap().next().is_none(), "nothing was written");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn guest_stdout_goes_where_the_operator_says() {
    let path = guest_path("stdout");
    let data = chunk(&[r#"{"a":1}"#, r#"{"b":"x"}"#], 1_700_000_000, 0);
    for (setting, expected) in [("log", 2), ("off", 0)] {
        let mut plugin = open_plugin();
        let instance = init_ok(
            &mut plugin,
            &[("wasm_path", path.to_str().unwrap()), ("wasm_stdout", setting), ("wasm_watch", "off")],
        );
        let call = instance.flush(&data, "t");
        assert_eq!(call.value, FLB_OK, "{setting}: log:\n{}", call.log_text());
        let lines = lines_with(&call, "stdout: {\"date\":1700000000.0,");
        assert_eq!(lines.len(), expected, "wasm_stdout {setting}: log:\n{}", call.log_text());
        if setting == "log" {
            assert!(
                call.logs
                    .iter()
                    .any(|l| l.level == 3 && l.message.ends_with(r#"stdout: {"date":1700000000.0,"b":"x"}"#))
            );
        }
        instance.exit();
        plugin.close();
    }
}
