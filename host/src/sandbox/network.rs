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
//!   address as a connection to it would be. The host then resolves the name itself, judges
//!   each answer as below, and connects to an answer it judged (no second lookup).
//! - Addresses are judged after resolution: whoever answers for a granted name chooses its
//!   addresses, so an answer in a special range ([`special`]: loopback, link-local, unspecified,
//!   multicast, private, shared) is withheld from the guest (a lookup) or refused (HTTP) unless
//!   a grant names that address or a range holding it (`10.0.0.0/8:443`). One exception: a
//!   grant of `localhost` (or a name under `.localhost`, RFC 6761) names the loopback, which
//!   is what those names are, whoever answers for them.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{Context, Result, bail};
use ipnet::IpNet;

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

/// The host of a grant: an address, a range of addresses (CIDR), or a name (lowercase, without
/// a root dot), never resolved by the host on the guest's behalf.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GrantHost {
    Ip(IpAddr),
    Range(IpNet),
    Name(String),
}

impl GrantHost {
    /// Whether this grant names `ip` (a canonical address) itself: as the address, or in the range.
    fn names(&self, ip: IpAddr) -> bool {
        match self {
            GrantHost::Ip(granted) => *granted == ip,
            GrantHost::Range(range) => range.contains(&ip),
            GrantHost::Name(_) => false,
        }
    }
}

/// The grants of `wasm_allow_net`, one per item: `host:port` (`host:*` for any port;
/// `[v6]:port`; a range as `10.0.0.0/8:port` or `[fc00::/7]:port`).
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
        Err(_) if host.split_once('/').is_some_and(|(ip, _)| ip.parse::<IpAddr>().is_ok()) => {
            match host.parse::<IpNet>() {
                // An IPv4 range is written as IPv4: addresses are judged in their IPv4 form.
                Ok(range) => GrantHost::Range(range.trunc()),
                Err(_) => bail!("invalid range {host:?} in 'wasm_allow_net' (an address/prefix length: 10.0.0.0/8)"),
            }
        }
        Err(_) if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '/' || c == ':') => {
            bail!("invalid host {host:?} in 'wasm_allow_net' (a name, an IP address or a range)")
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

/// Whether `grants` name `host` (a name, or an address) on `port` themselves: what a destination
/// the host itself is configured with (the HTTP proxy) must be, for the operator to have
/// granted what the guest's traffic passes through.
pub fn grants_endpoint(grants: &[NetGrant], host: &str, port: u16) -> bool {
    let host = normalize(host);
    let ip = host.parse::<IpAddr>().ok().map(|ip| ip.to_canonical());
    grants.iter().any(|grant| {
        port_matches(grant, port)
            && match ip {
                Some(ip) => grant.host.names(ip),
                None => matches!(&grant.host, GrantHost::Name(name) if *name == host),
            }
    })
}

/// What makes `ip` an address a name's answer may not lead to by itself: a range that reaches
/// the agent's own host, its link, its private networks or a group rather than a service on the
/// internet. `None`: a public address. Mapped and NAT64 forms are judged as the IPv4 address.
pub fn special(ip: IpAddr) -> Option<&'static str> {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            if v4.is_loopback() {
                Some("loopback")
            } else if a == 0 {
                // 0.0.0.0/8, "this host": Linux connects it to the host itself.
                Some("unspecified")
            } else if v4.is_link_local() {
                // 169.254/16 holds the cloud metadata services (169.254.169.254).
                Some("link-local")
            } else if v4.is_private() {
                Some("private")
            } else if a == 100 && b & 0xc0 == 64 {
                // 100.64/10, carrier-grade NAT and the address space of some clusters.
                Some("shared")
            } else if v4.is_multicast() || v4.is_broadcast() {
                Some("multicast")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            let segments = v6.segments();
            if v6.is_loopback() {
                Some("loopback")
            } else if v6.is_unspecified() {
                Some("unspecified")
            } else if v6.is_unicast_link_local() {
                Some("link-local")
            } else if v6.is_unique_local() || segments[0] & 0xffc0 == 0xfec0 {
                // fc00::/7, and the deprecated site-local fec0::/10 some networks still route.
                Some("private")
            } else if v6.is_multicast() {
                Some("multicast")
            } else if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                // NAT64 (64:ff9b::/96) reaches the IPv4 address it embeds.
                let [.., a, b, c, d] = v6.octets();
                special(IpAddr::from([a, b, c, d]))
            } else {
                None
            }
        }
    }
}

/// Whether `name` is `localhost` or a name under it: the loopback by definition (RFC 6761), so
/// a grant of it names the loopback, whoever answers for it.
fn names_loopback(name: &str) -> bool {
    name == "localhost" || name.ends_with(".localhost")
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
                Ok(ip) => {
                    let ip = ip.to_canonical();
                    self.grants.iter().any(|g| g.host.names(ip)) || self.learned_any(ip)
                }
                Err(_) => self.name_granted(&normalize(name), None),
            },
            NetUse::Connect(addr) => self.address_allowed(addr.ip().to_canonical(), addr.port()),
            NetUse::Http { host, port } => {
                let host = normalize(host);
                match host.parse::<IpAddr>() {
                    Ok(ip) => self.address_allowed(ip.to_canonical(), port),
                    Err(_) => self.name_granted(&host, Some(port)),
                }
            }
        }
    }

    /// Whether a grant names `name` (on `port`, or on any port).
    fn name_granted(&self, name: &str, port: Option<u16>) -> bool {
        self.grants
            .iter()
            .any(|g| matches!(&g.host, GrantHost::Name(n) if n == name) && port.is_none_or(|p| port_matches(g, p)))
    }

    /// Whether a grant names `ip` itself (as an address or in a range) with `port`.
    fn address_granted(&self, ip: IpAddr, port: u16) -> bool {
        self.grants.iter().any(|g| g.host.names(ip) && port_matches(g, port))
    }

    fn address_allowed(&self, ip: IpAddr, port: u16) -> bool {
        if self.address_granted(ip, port) {
            return true;
        }
        let learned = self.learned();
        learned.addresses.iter().filter(|(a, _)| *a == ip).any(|(_, name)| self.name_granted(name, Some(port)))
    }

    fn learned_any(&self, ip: IpAddr) -> bool {
        self.learned().addresses.iter().any(|(a, _)| *a == ip)
    }

    /// Whether the granted `name`'s grant alone leads to `ip` (canonical), an answer of its
    /// lookup: a public address, or the loopback for `localhost`. Else the special range it is
    /// in, which only a grant naming the address leads to.
    fn answer_of_name(name: &str, ip: IpAddr) -> Result<(), &'static str> {
        match special(ip) {
            None => Ok(()),
            Some("loopback") if names_loopback(name) => Ok(()),
            Some(kind) => Err(kind),
        }
    }

    /// Whether an HTTP request to the granted `name` may be sent to `addr`, an answer of the
    /// host's own lookup of it; logs why not.
    pub fn http_answer(&self, name: &str, addr: SocketAddr) -> bool {
        let ip = addr.ip().to_canonical();
        let Err(kind) = Self::answer_of_name(&normalize(name), ip) else { return true };
        if self.address_granted(ip, addr.port()) {
            return true;
        }
        self.warn(format!(
            "the host refused to connect the guest's HTTP request for {name}:{port} to {ip}: {}",
            Self::why_special(kind, ip, Some(addr.port())),
            port = addr.port()
        ));
        false
    }

    /// Why an answer in a special range was refused, and the grant that would allow it.
    fn why_special(kind: &str, ip: IpAddr, port: Option<u16>) -> String {
        let port = port.map_or_else(|| "*".to_owned(), |p| p.to_string());
        let example = match ip {
            IpAddr::V4(_) => format!("{ip}:{port}"),
            IpAddr::V6(_) => format!("[{ip}]:{port}"),
        };
        let article = if kind.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
        format!(
            "{article} {kind} address, which a name's answer does not lead to unless a wasm_allow_net grant names \
             that address or a range holding it ({example})"
        )
    }

    fn lookup_started(&self, stream: u32, name: &str) {
        self.learned().streams.insert(stream, normalize(name));
    }

    /// An answer `ip` of the lookup `stream`: learned when the name's grant leads to it, passed
    /// on to the guest when it is learned or a grant names it (a connection to it is then judged
    /// by that grant), withheld (and logged) otherwise.
    fn lookup_answered(&self, stream: u32, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        let mut learned = self.learned();
        let Some(name) = learned.streams.get(&stream).cloned() else { return false };
        if let Err(kind) = Self::answer_of_name(&name, ip) {
            drop(learned);
            if self.grants.iter().any(|g| g.host.names(ip)) {
                return true;
            }
            let port = self.grants.iter().find_map(|g| match &g.host {
                GrantHost::Name(n) if *n == name => g.port,
                _ => None,
            });
            self.warn(format!(
                "the host withheld {ip} from the guest's lookup of {name:?}: {}",
                Self::why_special(kind, ip, port)
            ));
            return false;
        }
        if learned.addresses.iter().any(|(a, n)| *a == ip && *n == name) {
            return true;
        }
        if learned.addresses.len() == LEARNED_CAP {
            learned.addresses.pop_front();
        }
        learned.addresses.push_back((ip, name));
        true
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
        // The answers are all there once the first is: skipping a withheld one never waits.
        loop {
            let next = HostResolveAddressStream::resolve_next_address(
                &mut self.sockets,
                Resource::<ip_name_lookup::ResolveAddressStream>::new_borrow(rep),
            )?;
            let Some(address) = next else { return Ok(None) };
            let ip = match address {
                IpAddress::Ipv4((a, b, c, d)) => IpAddr::from([a, b, c, d]),
                IpAddress::Ipv6((a, b, c, d, e, f, g, h)) => IpAddr::from([a, b, c, d, e, f, g, h]),
            };
            if self.policy.lookup_answered(rep, ip) {
                return Ok(Some(address));
            }
        }
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
        // Public addresses from 192.0.2.0 on (special ones are never learned).
        let public = |i: u32| IpAddr::from((0xc000_0200 + i).to_be_bytes());
        for i in 0..(LEARNED_CAP as u32 + 10) {
            assert!(p.lookup_answered(1, public(i)));
        }
        assert_eq!(p.learned().addresses.len(), LEARNED_CAP);
        assert!(!p.judge(NetUse::Connect(SocketAddr::new(public(0), 1))), "oldest forgotten");
        assert!(p.judge(NetUse::Connect(SocketAddr::new(public(LEARNED_CAP as u32 + 9), 1))), "newest kept");
    }

    fn range(r: &str) -> GrantHost {
        GrantHost::Range(r.parse().unwrap())
    }

    #[test]
    fn special_ranges_are_named_by_what_they_reach() {
        for (ip, expected) in [
            ("127.0.0.1", Some("loopback")),
            ("127.8.9.10", Some("loopback")),
            ("::1", Some("loopback")),
            ("::ffff:127.0.0.1", Some("loopback")),
            ("169.254.169.254", Some("link-local")),
            ("fe80::1", Some("link-local")),
            ("0.0.0.0", Some("unspecified")),
            ("0.1.2.3", Some("unspecified")),
            ("::", Some("unspecified")),
            ("224.0.0.1", Some("multicast")),
            ("255.255.255.255", Some("multicast")),
            ("ff02::1", Some("multicast")),
            ("10.1.2.3", Some("private")),
            ("172.16.0.1", Some("private")),
            ("172.31.255.255", Some("private")),
            ("192.168.1.1", Some("private")),
            ("fd00::1", Some("private")),
            ("fec0::1", Some("private")),
            ("100.64.0.1", Some("shared")),
            ("100.127.255.255", Some("shared")),
            ("64:ff9b::a9fe:a9fe", Some("link-local")),
            ("::ffff:10.0.0.1", Some("private")),
            ("172.32.0.1", None),
            ("100.128.0.1", None),
            ("93.184.215.14", None),
            ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", None),
            ("64:ff9b::5db8:d70e", None),
        ] {
            assert_eq!(special(ip.parse().unwrap()), expected, "{ip}");
        }
    }

    #[test]
    fn ranges_are_granted_as_cidr() {
        let granted = grants(&["10.0.0.0/8:443".into(), "[fc00::/7]:*".into(), "192.168.1.7/16:80".into()]).unwrap();
        assert_eq!(granted[0], NetGrant { host: range("10.0.0.0/8"), port: Some(443) });
        assert_eq!(granted[1], NetGrant { host: range("fc00::/7"), port: None });
        assert_eq!(granted[2].host, range("192.168.0.0/16"), "host bits are dropped");
        for bad in ["10.0.0.0/33:443", "logs.example/8:443", "10.0.0.0/:1", "[::1/129]:1"] {
            assert!(grants(&[bad.into()]).is_err(), "{bad}");
        }
        let p = policy(&[(range("10.0.0.0/8"), Some(443))]);
        assert!(p.judge(NetUse::Connect("10.9.8.7:443".parse().unwrap())));
        assert!(p.judge(NetUse::Connect("[::ffff:10.9.8.7]:443".parse().unwrap())), "mapped form");
        assert!(!p.judge(NetUse::Connect("10.9.8.7:80".parse().unwrap())), "on its port only");
        assert!(!p.judge(NetUse::Connect("11.0.0.1:443".parse().unwrap())));
        assert!(p.judge(NetUse::Http { host: "10.0.0.1", port: 443 }));
        assert!(p.judge(NetUse::Lookup("10.0.0.1")), "a literal in the range needs no resolver");
    }

    /// What a lookup of `name` (granted by `p`) shows the guest of `answers`.
    fn answered(p: &NetPolicy, name: &str, answers: &[&str]) -> Vec<IpAddr> {
        p.lookup_started(7, name);
        let shown = answers.iter().map(|a| a.parse().unwrap()).filter(|ip| p.lookup_answered(7, *ip)).collect();
        p.lookup_ended(7);
        shown
    }

    #[test]
    fn a_name_does_not_lead_to_special_addresses_unless_a_grant_names_them() {
        let p = policy(&[(name("logs.example"), Some(80))]);
        let shown = answered(&p, "logs.example", &["169.254.169.254", "127.0.0.1", "10.0.0.5", "::1", "192.0.2.9"]);
        assert_eq!(shown, ["192.0.2.9".parse::<IpAddr>().unwrap()], "only the public answer is shown");
        for addr in ["169.254.169.254:80", "127.0.0.1:80", "10.0.0.5:80", "[::1]:80"] {
            assert!(!p.judge(NetUse::Connect(addr.parse().unwrap())), "{addr} was not learned");
            assert!(!p.http_answer("logs.example", addr.parse().unwrap()), "nor reached by HTTP: {addr}");
        }
        assert!(p.judge(NetUse::Connect("192.0.2.9:80".parse().unwrap())));
        assert!(p.http_answer("logs.example", "192.0.2.9:80".parse().unwrap()));

        // A grant that names the address or its range lets the answer through, on its own port.
        let p = policy(&[(name("logs.example"), Some(80)), (range("10.0.0.0/8"), Some(8080)), (ip("::1"), None)]);
        let shown = answered(&p, "logs.example", &["10.0.0.5", "::1", "169.254.169.254"]);
        assert_eq!(shown, ["10.0.0.5".parse::<IpAddr>().unwrap(), "::1".parse().unwrap()]);
        assert!(p.judge(NetUse::Connect("10.0.0.5:8080".parse().unwrap())), "by the range's grant");
        assert!(!p.judge(NetUse::Connect("10.0.0.5:80".parse().unwrap())), "not on the name's port");
        assert!(p.http_answer("logs.example", "10.0.0.5:8080".parse().unwrap()));
        assert!(!p.http_answer("logs.example", "10.0.0.5:80".parse().unwrap()));
        assert!(p.http_answer("logs.example", "[::1]:80".parse().unwrap()));
    }

    #[test]
    fn localhost_names_the_loopback() {
        let p = policy(&[(name("localhost"), Some(8080)), (name("api.localhost"), Some(9090))]);
        let shown = answered(&p, "localhost", &["127.0.0.1", "::1", "10.0.0.1"]);
        assert_eq!(shown.len(), 2, "loopback answers of localhost are its own: {shown:?}");
        assert!(p.judge(NetUse::Connect("127.0.0.1:8080".parse().unwrap())));
        assert!(!p.judge(NetUse::Connect("127.0.0.1:9091".parse().unwrap())));
        assert!(p.http_answer("api.localhost", "127.0.0.1:9090".parse().unwrap()));
        assert!(!p.http_answer("localhost", "10.0.0.1:8080".parse().unwrap()), "other special answers are not");
        let p = policy(&[(name("notlocalhost"), None)]);
        assert!(answered(&p, "notlocalhost", &["127.0.0.1"]).is_empty());
    }
}
