//! The one network policy of a guest instance: every use of the network a guest makes (a name
//! lookup, a TCP connection, a UDP datagram, an HTTP request) is judged by [`NetPolicy::judge`]
//! against the instance's `wasm_allow_net` grants, before anything leaves the host.
//!
//! - A name lookup (`wasi:sockets/ip-name-lookup`) is allowed only for a name a grant names; an
//!   IP-only grant allows none. The host provides that interface itself (shadowing WASI's in
//!   the linker) so the check runs before a query is sent, and delegates to WASI's resolver.
//! - A connection or datagram to an address is allowed when a grant names that address and
//!   port, or when the address came from this instance's own allowed lookup of a granted name
//!   and the port is one that name's grants allow. Names are never resolved behind the guest's
//!   back (at start or at connect time): what a name grant opens is what its lookups return.
//! - An HTTP request is judged by its authority as written: a name by the name grants, an IP
//!   address as a connection to it would be. The host then resolves and connects itself.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{Context, Result, bail};

use wasmtime::component::{HasData, Linker, Resource};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p2::bindings::sockets::ip_name_lookup::{self, HostResolveAddressStream};
use wasmtime_wasi::p2::bindings::sockets::network::{self, ErrorCode, IpAddress, Network};
use wasmtime_wasi::p2::{DynPollable, IoError, SocketError};
use wasmtime_wasi::sockets::{SocketAddrUse, WasiSocketsCtxView};

use crate::log::{Level, LogSink};

/// Addresses learned from lookups that an instance remembers (oldest forgotten first): enough
/// for any real set of endpoints, and bounded however often DNS answers change.
const LEARNED_CAP: usize = 256;

/// One use of the network, as the guest asked for it.
#[derive(Clone, Copy, Debug)]
pub enum NetUse<'a> {
    /// Resolving a name (or an address literal) to addresses.
    Lookup(&'a str),
    /// A TCP connection or a UDP datagram to (or from) an address.
    Connect(SocketAddr),
    /// An HTTP request to `host:port`, the URL's authority as written.
    Http { host: &'a str, port: u16 },
}

/// The policy of one guest instance: its grants and the addresses its allowed lookups returned.
pub struct NetPolicy {
    grants: Vec<NetGrant>,
    learned: Mutex<Learned>,
    /// Lines about what the policy refused, within the guest's log budget.
    log: LogSink,
}

#[derive(Default)]
struct Learned {
    /// Addresses returned by allowed lookups, with the name they were looked up by.
    addresses: VecDeque<(IpAddr, String)>,
    /// Lookups in flight: the stream's resource id and the name looked up.
    streams: HashMap<u32, String>,
}

/// One `wasm_allow_net` entry: a host as written and a port (`None`: any port).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetGrant {
    pub host: GrantHost,
    pub port: Option<u16>,
}

/// The host of a grant: an address, or a name (lowercase, without a root dot), never resolved
/// by the host on the guest's behalf.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GrantHost {
    Ip(IpAddr),
    Name(String),
}

/// The grants of `wasm_allow_net`, one per item: `host:port` (`host:*` for any port;
/// `[v6]:port`).
pub fn grants(items: &[String]) -> Result<Vec<NetGrant>> {
    items.iter().map(|item| grant(item)).collect()
}

fn grant(item: &str) -> Result<NetGrant> {
    let (host, port) = item
        .rsplit_once(':')
        .with_context(|| format!("invalid address {item:?} in 'wasm_allow_net' (host:port or host:*)"))?;
    let port = match port {
        "*" => None,
        p => Some(p.parse::<u16>().with_context(|| format!("invalid port in {item:?} ('wasm_allow_net')"))?),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let host = match host.parse::<IpAddr>() {
        Ok(ip) => GrantHost::Ip(ip.to_canonical()),
        Err(_) if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '/' || c == ':') => {
            bail!("invalid host {host:?} in 'wasm_allow_net' (a name or an IP address)")
        }
        Err(_) => GrantHost::Name(host.trim_end_matches('.').to_ascii_lowercase()),
    };
    Ok(NetGrant { host, port })
}

/// Opens WASI's sockets as far as `grants` allow and puts the policy in front of them: every
/// connection and datagram is judged here, lookups by the host's own `ip-name-lookup`
/// ([`add_to_linker`]) and HTTP requests by [`crate::sandbox::http`]. Returns the policy.
pub fn apply(builder: &mut WasiCtxBuilder, grants: &[NetGrant], log: &LogSink) -> Arc<NetPolicy> {
    let policy = Arc::new(NetPolicy::new(grants, log.clone()));
    let networked = policy.networked();
    // WASI's own lookup switch only opens the resolver the policy stands in front of: the
    // host's `ip-name-lookup` judges every name first.
    builder.allow_tcp(networked).allow_udp(networked).allow_ip_name_lookup(networked);
    let judge = policy.clone();
    builder.socket_addr_check(move |addr, usage| {
        let permitted = match usage {
            // The implicit bind before a connect or a send uses the wildcard address.
            SocketAddrUse::TcpBind | SocketAddrUse::UdpBind => addr.ip().is_unspecified() && addr.port() == 0,
            SocketAddrUse::TcpConnect | SocketAddrUse::UdpSend | SocketAddrUse::UdpReceive => {
                judge.judge(NetUse::Connect(addr))
            }
            // An output never listens or accepts.
            _ => false,
        };
        Box::pin(async move { permitted })
    });
    policy
}

fn normalize(name: &str) -> String {
    name.trim_start_matches('[').trim_end_matches(']').trim_end_matches('.').to_ascii_lowercase()
}

fn port_matches(grant: &NetGrant, port: u16) -> bool {
    grant.port.is_none_or(|p| p == port)
}

impl NetPolicy {
    pub fn new(grants: &[NetGrant], log: LogSink) -> Self {
        Self { grants: grants.to_vec(), learned: Mutex::default(), log }
    }

    fn learned(&self) -> std::sync::MutexGuard<'_, Learned> {
        self.learned.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Logs a refusal or failure of the guest's network use, within its log budget.
    pub fn warn(&self, line: String) {
        self.log.write(Level::Warn, line);
    }

    /// Whether the instance may use the network at all.
    pub fn networked(&self) -> bool {
        !self.grants.is_empty()
    }

    /// The one grant check: whether `what` is allowed.
    pub fn judge(&self, what: NetUse<'_>) -> bool {
        match what {
            NetUse::Lookup(name) => match normalize(name).parse::<IpAddr>() {
                // A literal is parsed, never sent to a resolver.
                Ok(ip) => self.grants.iter().any(|g| g.host == GrantHost::Ip(ip)) || self.learned_any(ip),
                Err(_) => {
                    let name = normalize(name);
                    self.grants.iter().any(|g| matches!(&g.host, GrantHost::Name(n) if *n == name))
                }
            },
            NetUse::Connect(addr) => self.address_allowed(addr.ip().to_canonical(), addr.port()),
            NetUse::Http { host, port } => {
                let host = normalize(host);
                match host.parse::<IpAddr>() {
                    Ok(ip) => self.address_allowed(ip.to_canonical(), port),
                    Err(_) => self
                        .grants
                        .iter()
                        .any(|g| matches!(&g.host, GrantHost::Name(n) if *n == host) && port_matches(g, port)),
                }
            }
        }
    }

    fn address_allowed(&self, ip: IpAddr, port: u16) -> bool {
        if self.grants.iter().any(|g| g.host == GrantHost::Ip(ip) && port_matches(g, port)) {
            return true;
        }
        let learned = self.learned();
        learned.addresses.iter().filter(|(a, _)| *a == ip).any(|(_, name)| {
            self.grants.iter().any(|g| matches!(&g.host, GrantHost::Name(n) if n == name) && port_matches(g, port))
        })
    }

    fn learned_any(&self, ip: IpAddr) -> bool {
        self.learned().addresses.iter().any(|(a, _)| *a == ip)
    }

    fn lookup_started(&self, stream: u32, name: &str) {
        self.learned().streams.insert(stream, normalize(name));
    }

    fn lookup_answered(&self, stream: u32, ip: IpAddr) {
        let mut learned = self.learned();
        let Some(name) = learned.streams.get(&stream).cloned() else { return };
        let ip = ip.to_canonical();
        if learned.addresses.iter().any(|(a, n)| *a == ip && *n == name) {
            return;
        }
        if learned.addresses.len() == LEARNED_CAP {
            learned.addresses.pop_front();
        }
        learned.addresses.push_back((ip, name));
    }

    fn lookup_ended(&self, stream: u32) {
        self.learned().streams.remove(&stream);
    }
}

/// What the shadowed `wasi:sockets/ip-name-lookup` sees of a guest instance.
pub struct Lookup<'a> {
    pub sockets: WasiSocketsCtxView<'a>,
    pub policy: &'a NetPolicy,
}

struct NetLookup;

impl HasData for NetLookup {
    type Data<'a> = Lookup<'a>;
}

/// Replaces WASI's `wasi:sockets/ip-name-lookup` in `linker` (already holding WASI) with the
/// policed one; `view` gives the guest instance's sockets and policy.
pub fn add_to_linker<T: Send + 'static>(linker: &mut Linker<T>, view: fn(&mut T) -> Lookup<'_>) -> anyhow::Result<()> {
    linker.allow_shadowing(true);
    let linked = ip_name_lookup::add_to_linker::<T, NetLookup>(linker, view).map_err(anyhow::Error::from);
    linker.allow_shadowing(false);
    linked
}

impl ip_name_lookup::Host for Lookup<'_> {
    fn resolve_addresses(
        &mut self,
        network: Resource<Network>,
        name: String,
    ) -> Result<Resource<ip_name_lookup::ResolveAddressStream>, SocketError> {
        if !self.policy.judge(NetUse::Lookup(&name)) {
            self.policy.warn(format!(
                "the host denied the guest's lookup of {name:?}: no wasm_allow_net grant names it (nothing was sent)"
            ));
            return Err(ErrorCode::AccessDenied.into());
        }
        let stream = ip_name_lookup::Host::resolve_addresses(&mut self.sockets, network, name.clone())?;
        self.policy.lookup_started(stream.rep(), &name);
        Ok(stream)
    }
}

impl HostResolveAddressStream for Lookup<'_> {
    fn resolve_next_address(
        &mut self,
        stream: Resource<ip_name_lookup::ResolveAddressStream>,
    ) -> Result<Option<IpAddress>, SocketError> {
        let rep = stream.rep();
        let next = HostResolveAddressStream::resolve_next_address(&mut self.sockets, stream)?;
        if let Some(address) = next {
            let ip = match address {
                IpAddress::Ipv4((a, b, c, d)) => IpAddr::from([a, b, c, d]),
                IpAddress::Ipv6((a, b, c, d, e, f, g, h)) => IpAddr::from([a, b, c, d, e, f, g, h]),
            };
            self.policy.lookup_answered(rep, ip);
        }
        Ok(next)
    }

    fn subscribe(
        &mut self,
        stream: Resource<ip_name_lookup::ResolveAddressStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        HostResolveAddressStream::subscribe(&mut self.sockets, stream)
    }

    fn drop(&mut self, stream: Resource<ip_name_lookup::ResolveAddressStream>) -> wasmtime::Result<()> {
        self.policy.lookup_ended(stream.rep());
        HostResolveAddressStream::drop(&mut self.sockets, stream)
    }
}

// The lookup functions report `error-code`s of `wasi:sockets/network`; converting them is
// WASI's own business.
impl network::Host for Lookup<'_> {
    fn convert_error_code(&mut self, error: SocketError) -> wasmtime::Result<ErrorCode> {
        network::Host::convert_error_code(&mut self.sockets, error)
    }

    fn network_error_code(&mut self, error: Resource<IoError>) -> wasmtime::Result<Option<ErrorCode>> {
        network::Host::network_error_code(&mut self.sockets, error)
    }
}

impl network::HostNetwork for Lookup<'_> {
    fn drop(&mut self, network: Resource<Network>) -> wasmtime::Result<()> {
        network::HostNetwork::drop(&mut self.sockets, network)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(grants: &[(GrantHost, Option<u16>)]) -> NetPolicy {
        let grants: Vec<NetGrant> =
            grants.iter().map(|(host, port)| NetGrant { host: host.clone(), port: *port }).collect();
        struct Nowhere;
        impl crate::log::Lines for Nowhere {
            fn line(&self, _: Level, _: String) {}
        }
        NetPolicy::new(&grants, LogSink::new(Arc::new(Nowhere)))
    }

    fn name(n: &str) -> GrantHost {
        GrantHost::Name(n.to_owned())
    }

    fn ip(a: &str) -> GrantHost {
        GrantHost::Ip(a.parse().unwrap())
    }

    #[test]
    fn lookups_only_for_granted_names() {
        let p = policy(&[(name("logs.example"), Some(443)), (ip("10.0.0.1"), None)]);
        assert!(p.judge(NetUse::Lookup("logs.example")), "a granted name resolves");
        assert!(p.judge(NetUse::Lookup("LOGS.example.")), "names compare case-insensitively, root dot ignored");
        assert!(!p.judge(NetUse::Lookup("other.example")), "an ungranted name does not");
        assert!(!p.judge(NetUse::Lookup("sub.logs.example")), "nor a subdomain");
        assert!(p.judge(NetUse::Lookup("10.0.0.1")), "a granted literal needs no resolver");
        assert!(!p.judge(NetUse::Lookup("10.0.0.2")));
        let ip_only = policy(&[(ip("127.0.0.1"), None)]);
        assert!(!ip_only.judge(NetUse::Lookup("localhost")), "an IP-only grant allows no lookup");
    }

    #[test]
    fn a_name_grant_opens_the_addresses_its_lookups_returned_on_its_ports() {
        let p = policy(&[(name("db.example"), Some(5432))]);
        let addr: SocketAddr = "192.0.2.7:5432".parse().unwrap();
        assert!(!p.judge(NetUse::Connect(addr)), "not before the guest looked the name up");
        p.lookup_started(1, "db.example");
        p.lookup_answered(1, addr.ip());
        p.lookup_ended(1);
        assert!(p.judge(NetUse::Connect(addr)), "the address the lookup returned");
        assert!(!p.judge(NetUse::Connect("192.0.2.7:22".parse().unwrap())), "on the granted port only");
        assert!(p.judge(NetUse::Http { host: "192.0.2.7", port: 5432 }), "HTTP to it is judged the same");
        assert!(p.judge(NetUse::Http { host: "db.example", port: 5432 }));
        assert!(!p.judge(NetUse::Http { host: "db.example", port: 80 }));
        p.lookup_answered(1, "192.0.2.8".parse().unwrap());
        assert!(!p.judge(NetUse::Connect("192.0.2.8:5432".parse().unwrap())), "an ended lookup teaches nothing");
    }

    #[test]
    fn addresses_are_judged_alike_for_sockets_and_http() {
        let p = policy(&[(ip("127.0.0.1"), Some(8080)), (ip("::1"), None)]);
        for (host, port, expected) in
            [("127.0.0.1", 8080, true), ("127.0.0.1", 8081, false), ("[::1]", 9, true), ("localhost", 8080, false)]
        {
            assert_eq!(p.judge(NetUse::Http { host, port }), expected, "http {host}:{port}");
            if let Ok(ip) = normalize(host).parse::<IpAddr>() {
                assert_eq!(p.judge(NetUse::Connect(SocketAddr::new(ip, port))), expected, "connect {host}:{port}");
            }
        }
        assert!(p.judge(NetUse::Connect("[::ffff:127.0.0.1]:8080".parse().unwrap())), "v4-mapped is the v4 address");
    }

    #[test]
    fn learned_addresses_are_bounded() {
        let p = policy(&[(name("rr.example"), None)]);
        p.lookup_started(1, "rr.example");
        for i in 0..(LEARNED_CAP as u32 + 10) {
            p.lookup_answered(1, IpAddr::from(i.to_be_bytes()));
        }
        assert_eq!(p.learned().addresses.len(), LEARNED_CAP);
        assert!(!p.judge(NetUse::Connect(SocketAddr::new(IpAddr::from(0u32.to_be_bytes()), 1))), "oldest forgotten");
    }
}
