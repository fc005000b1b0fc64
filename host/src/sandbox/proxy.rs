//! The HTTP proxy an output's guests send their HTTP requests through (`wasm_http_proxy`), as a
//! node behind a corporate proxy needs: plain HTTP requests go to the proxy in absolute form,
//! HTTPS ones through a `CONNECT` tunnel, with the host's TLS inside it (the proxy sees the
//! target's name and port, never the request). Targets matching `wasm_no_proxy` are reached
//! directly. Credentials come from a file (`wasm_http_proxy_auth_file`), never from the guest.
//!
//! The network policy judges both: the proxy must be granted by `wasm_allow_net` (checked at
//! start), and each request's target is judged as without a proxy, its name looked up by the
//! host and its answers held to the same rule for special ranges before the proxy is asked.

use std::fmt;
use std::path::Path;

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use http::HeaderValue;

/// `wasm_http_proxy` and what goes with it.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpProxy {
    /// The proxy's host (a name or an address, without brackets) and port.
    pub host: String,
    pub port: u16,
    /// `Proxy-Authorization` for every request and tunnel, from `wasm_http_proxy_auth_file`.
    authorization: Option<HeaderValue>,
    /// Targets reached without the proxy (`wasm_no_proxy`).
    bypass: Vec<Bypass>,
}

impl fmt::Debug for HttpProxy {
    // The credentials are never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpProxy")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("authorization", &self.authorization.is_some())
            .field("bypass", &self.bypass)
            .finish()
    }
}

/// One entry of `wasm_no_proxy`, as curl and Go read `NO_PROXY`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Bypass {
    /// `*`: every target.
    All,
    /// `example.com` or `.example.com`: that name and the names under it.
    Domain(String),
    /// An address, or a range such as `10.0.0.0/8`: targets written as such an address.
    Net(ipnet::IpNet),
}

/// Reads `http://HOST:PORT` (a trailing `/` allowed). Only plain-HTTP proxies: HTTPS targets
/// are tunnelled through them, with TLS end to end.
pub fn parse_url(value: &str) -> Result<(String, u16)> {
    let uri: http::Uri = value.parse().context("not a URL")?;
    match uri.scheme_str() {
        Some("http") => {}
        Some(other) => bail!("a proxy spoken to over {other} is not supported: give its http:// address"),
        None => bail!("write the proxy as http://HOST:PORT"),
    }
    if uri.path() != "/" && !uri.path().is_empty() || uri.query().is_some() {
        bail!("a proxy URL has no path: write http://HOST:PORT");
    }
    let authority = uri.authority().context("write the proxy as http://HOST:PORT")?;
    if authority.as_str().contains('@') {
        bail!("credentials do not belong in the URL (it is logged): put USER:PASSWORD in wasm_http_proxy_auth_file");
    }
    let host = authority.host().trim_start_matches('[').trim_end_matches(']').to_owned();
    Ok((host, authority.port_u16().unwrap_or(80)))
}

/// Reads `wasm_no_proxy`: `*`, names (`example.com`, `.example.com`), addresses and ranges.
pub fn parse_bypass(items: &[String]) -> Result<Vec<Bypass>> {
    items
        .iter()
        .map(|item| {
            let item = item.trim();
            if item == "*" {
                return Ok(Bypass::All);
            }
            let bare = item.trim_start_matches('[').trim_end_matches(']');
            if let Ok(net) = bare.parse::<ipnet::IpNet>() {
                return Ok(Bypass::Net(net));
            }
            if let Ok(ip) = bare.parse::<std::net::IpAddr>() {
                return Ok(Bypass::Net(ipnet::IpNet::from(ip)));
            }
            let name = item.trim_start_matches("*.").trim_start_matches('.').to_ascii_lowercase();
            if name.is_empty() || name.contains([':', '/', ' ']) {
                bail!("{item:?} is not a name, an address or a range");
            }
            Ok(Bypass::Domain(name))
        })
        .collect()
}

impl HttpProxy {
    pub fn new(url: (String, u16), bypass: Vec<Bypass>, auth_file: Option<&Path>) -> Result<Self> {
        let authorization = auth_file.map(authorization).transpose()?;
        Ok(Self { host: url.0, port: url.1, authorization, bypass })
    }

    /// Whether a request to `host` (a name, or an address without brackets) goes through the
    /// proxy.
    pub fn applies_to(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let ip = host.parse::<std::net::IpAddr>().ok();
        !self.bypass.iter().any(|bypass| match bypass {
            Bypass::All => true,
            Bypass::Domain(domain) => host == *domain || host.ends_with(&format!(".{domain}")),
            Bypass::Net(net) => ip.is_some_and(|ip| net.contains(&ip.to_canonical())),
        })
    }

    pub fn authorization(&self) -> Option<&HeaderValue> {
        self.authorization.as_ref()
    }
}

/// `Basic` credentials from the first line of `path`, `USER:PASSWORD` (as curl's `-U`).
fn authorization(path: &Path) -> Result<HeaderValue> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!("failed to read the proxy credentials file {} ('wasm_http_proxy_auth_file')", path.display())
    })?;
    let line = text.lines().next().unwrap_or_default().trim_end_matches('\r');
    if !line.contains(':') {
        bail!(
            "the proxy credentials file {} ('wasm_http_proxy_auth_file') must hold USER:PASSWORD on its first line",
            path.display()
        );
    }
    let encoded = base64::engine::general_purpose::STANDARD.encode(line);
    let mut value = HeaderValue::from_str(&format!("Basic {encoded}")).context("credentials that are no header")?;
    value.set_sensitive(true);
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_bypass_lists_read_as_curl_reads_them() {
        assert_eq!(parse_url("http://proxy.corp:3128").unwrap(), ("proxy.corp".to_owned(), 3128));
        assert_eq!(parse_url("http://[::1]:8888/").unwrap(), ("::1".to_owned(), 8888));
        assert_eq!(parse_url("http://proxy.corp").unwrap(), ("proxy.corp".to_owned(), 80));
        for (bad, why) in [
            ("https://proxy:443", "not supported"),
            ("proxy:3128", "http://HOST:PORT"),
            ("http://user:pw@proxy:3128", "wasm_http_proxy_auth_file"),
            ("http://proxy:3128/path", "no path"),
        ] {
            let err = format!("{:#}", parse_url(bad).unwrap_err());
            assert!(err.contains(why), "{bad}: {err}");
        }
        let list = |items: &[&str]| parse_bypass(&items.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let proxy = HttpProxy::new(
            ("p".to_owned(), 1),
            list(&[".internal.corp", "example.com", "10.0.0.0/8", "::1"]).unwrap(),
            None,
        )
        .unwrap();
        for (host, through) in [
            ("api.internal.corp", false),
            ("internal.corp", false),
            ("example.com", false),
            ("www.example.com", false),
            ("notexample.com", true),
            ("10.1.2.3", false),
            ("11.1.2.3", true),
            ("::1", false),
            ("logs.vendor.io", true),
        ] {
            assert_eq!(proxy.applies_to(host), through, "{host}");
        }
        let all = HttpProxy::new(("p".to_owned(), 1), list(&["*"]).unwrap(), None).unwrap();
        assert!(!all.applies_to("anything.io"));
        assert!(list(&["a b"]).is_err());
    }

    #[test]
    fn credentials_come_from_the_files_first_line_and_are_never_printed() {
        let dir = std::env::temp_dir().join(format!("out-wasm-proxy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("auth");
        std::fs::write(&file, "user:s3cret\n").unwrap();
        let proxy = HttpProxy::new(("p".to_owned(), 1), Vec::new(), Some(&file)).unwrap();
        assert_eq!(proxy.authorization().unwrap(), "Basic dXNlcjpzM2NyZXQ=");
        assert!(!format!("{proxy:?}").contains("dXNlcjpzM2NyZXQ="));
        std::fs::write(&file, "no colon\n").unwrap();
        let err = format!("{:#}", HttpProxy::new(("p".to_owned(), 1), Vec::new(), Some(&file)).unwrap_err());
        assert!(err.contains("USER:PASSWORD"), "{err}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
