//! Debian's `tinyproxy`, a real HTTP proxy (plain requests in absolute form, `CONNECT`
//! tunnels, Basic credentials), for the tests of `wasm_http_proxy`.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::scratch_dir;
use crate::sync::wait_until;

/// `tinyproxy` on a free loopback port, in the foreground, killed when dropped.
pub struct TinyProxy {
    child: std::process::Child,
    pub port: u16,
    log: PathBuf,
}

impl TinyProxy {
    /// Started and accepting connections, tunnelling to `connect_ports` only, requiring
    /// `credentials` (`USER:PASSWORD`) when given; or a loud SKIP line and `None` without the
    /// binary.
    pub fn start(test: &str, connect_ports: &[u16], credentials: Option<&str>) -> Option<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = scratch_dir(&format!("tinyproxy-{test}"));
        let log = dir.join("tinyproxy.log");
        let _ = std::fs::remove_file(&log);
        let mut config = format!(
            "Port {port}\nListen 127.0.0.1\nTimeout 30\nLogFile \"{}\"\nLogLevel Info\nMaxClients 16\nAllow 127.0.0.1\n",
            log.display()
        );
        for connect in connect_ports {
            config.push_str(&format!("ConnectPort {connect}\n"));
        }
        if let Some(credentials) = credentials {
            let (user, password) = credentials.split_once(':').expect("USER:PASSWORD");
            config.push_str(&format!("BasicAuth {user} {password}\n"));
        }
        let conf = dir.join("tinyproxy.conf");
        std::fs::write(&conf, config).unwrap();
        let child = match Command::new("tinyproxy").arg("-d").arg("-c").arg(&conf).stdout(Stdio::null()).spawn() {
            Ok(child) => child,
            Err(err) => {
                eprintln!("SKIP {test}: tinyproxy does not run here ({err}); install Debian's tinyproxy");
                return None;
            }
        };
        let proxy = Self { child, port, log };
        wait_until("tinyproxy accepting connections", || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
        Some(proxy)
    }

    /// What tinyproxy logged so far: each request it was asked (`CONNECT host:port`, `POST
    /// http://...`) and each refusal.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for TinyProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
