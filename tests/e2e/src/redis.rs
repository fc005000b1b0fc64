//! Debian's `redis-server` for the tests of Go plugins that use a public Redis client
//! (`tests/peers/fluent-bit-go/redis`), and the few commands they ask it.

use std::io::Read;
use std::process::{Command, Stdio};

use crate::sync::wait_until;

/// The records a run delivered, as JSON values, sorted (chunks are cut differently each run).
pub fn sorted_records(values: impl IntoIterator<Item = serde_json::Value>) -> Vec<String> {
    let mut all: Vec<String> = values.into_iter().map(|v| v.to_string()).collect();
    all.sort();
    all
}

/// Debian's `redis-server` on a free loopback port, killed when dropped.
pub struct Redis {
    child: std::process::Child,
    pub port: u16,
}

impl Redis {
    /// Started and answering PING, or a loud SKIP line and `None` without the binary.
    pub fn start(test: &str) -> Option<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = match Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
        {
            Ok(child) => child,
            Err(err) => {
                eprintln!("SKIP {test}: redis-server does not run here ({err}); install Debian's redis-server");
                return None;
            }
        };
        let redis = Self { child, port };
        wait_until("redis-server answers PING", || redis.command(&["PING"]).is_some());
        Some(redis)
    }

    /// One command's reply (RESP): an integer or simple string as one item, an array's bulk
    /// strings as items.
    pub fn command(&self, args: &[&str]) -> Option<Vec<String>> {
        use std::io::{BufRead, BufReader, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        stream.write_all(request.as_bytes()).ok()?;
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        match line.as_bytes().first()? {
            b':' | b'+' => Some(vec![line[1..].to_owned()]),
            b'*' => {
                let mut items = Vec::new();
                for _ in 0..line[1..].parse::<usize>().ok()? {
                    let mut header = String::new();
                    reader.read_line(&mut header).ok()?;
                    let mut item = vec![0; header.trim_end()[1..].parse::<usize>().ok()? + 2];
                    reader.read_exact(&mut item).ok()?;
                    items.push(String::from_utf8_lossy(&item[..item.len() - 2]).into_owned());
                }
                Some(items)
            }
            _ => None,
        }
    }

    pub fn len(&self, key: &str) -> usize {
        self.command(&["LLEN", key]).and_then(|r| r[0].parse().ok()).unwrap_or(0)
    }

    pub fn records(&self, key: &str) -> Vec<String> {
        let items = self.command(&["LRANGE", key, "0", "-1"]).unwrap_or_default();
        sorted_records(items.iter().map(|i| serde_json::from_str(i).expect("a JSON record")))
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
