//! `wasm_max_descriptors`: how many descriptors (files and directories a guest opened, TCP and
//! UDP sockets, HTTP connections) the guests of one output may hold at once, all its instances
//! and versions together. They are the agent's own descriptors: without a cap, a guest that
//! opens and never closes runs the agent out of them (EMFILE), and the agent's own inputs and
//! outputs stop.
//!
//! Every way a guest gets a new descriptor passes here first: `open-at` of `wasi:filesystem`
//! and the creation of TCP and UDP sockets (the host shadows those functions of WASI's in the
//! linker, and the destructors of their resources, to count them), and each HTTP connection the
//! host makes for a guest's request ([`crate::sandbox::http`], counted for as long as the
//! connection lives, kept alive or not). Past the cap the guest gets an error (`quota` for a
//! file, `new-socket-limit` for a socket, `connection-limit-reached` for an HTTP request), a
//! warn line names what it was refused, and `fluentbit_wasm_descriptor_refusals_total` counts
//! it. The directories of `wasm_allow_dirs` are opened by the host for each instance and not
//! counted: their number is the operator's.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use anyhow::Result;
use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource, ResourceTable, ResourceType};
use wasmtime_wasi::WasiCtx;
use wasmtime_wasi::filesystem::{Descriptor, WasiFilesystemCtxView};
use wasmtime_wasi::p2::bindings::filesystem::types::{
    self as fs, DescriptorFlags, HostDescriptor, OpenFlags, PathFlags,
};
use wasmtime_wasi::p2::bindings::sockets::network::{self, IpAddressFamily};
use wasmtime_wasi::p2::bindings::sockets::tcp::HostTcpSocket;
use wasmtime_wasi::p2::bindings::sockets::udp::HostUdpSocket;
use wasmtime_wasi::p2::bindings::sockets::{tcp_create_socket, udp_create_socket};
use wasmtime_wasi::p2::{TcpSocket, UdpSocket};
use wasmtime_wasi::sockets::WasiSocketsCtxView;

use crate::log::{Level, LogSink};

/// The interfaces whose functions and resources are shadowed: the versions wasmtime-wasi
/// provides (a guest importing an older 0.2 version is linked to these).
const FILESYSTEM_TYPES: &str = "wasi:filesystem/types@0.2.12";
const TCP: &str = "wasi:sockets/tcp@0.2.12";
const TCP_CREATE: &str = "wasi:sockets/tcp-create-socket@0.2.12";
const UDP: &str = "wasi:sockets/udp@0.2.12";
const UDP_CREATE: &str = "wasi:sockets/udp-create-socket@0.2.12";

/// What a descriptor is for, as refusals are counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    File,
    Socket,
    Connection,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::File, Kind::Socket, Kind::Connection];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Socket => "socket",
            Kind::Connection => "connection",
        }
    }
}

/// The descriptors the guests of one output hold, and the cap.
#[derive(Debug)]
pub struct Descriptors {
    /// The output's guest as `wasm_path` names it, for the refusal lines.
    guest: String,
    cap: usize,
    live: AtomicUsize,
    refused: [AtomicU64; 3],
}

/// One descriptor held against the cap; dropping it gives the place back.
#[derive(Debug)]
pub struct Slot(Arc<Descriptors>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.live.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Descriptors {
    pub fn new(cap: usize, guest: impl Into<String>) -> Arc<Self> {
        Arc::new(Self { guest: guest.into(), cap, live: AtomicUsize::new(0), refused: Default::default() })
    }

    /// A place for one more descriptor of `kind`, or `None` (counted) at the cap.
    pub fn take(self: &Arc<Self>, kind: Kind) -> Option<Slot> {
        let took = self.live.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < self.cap).then_some(n + 1));
        match took {
            Ok(_) => Some(Slot(self.clone())),
            Err(_) => {
                self.refused[kind as usize].fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// The descriptors held now.
    pub fn live(&self) -> usize {
        self.live.load(Ordering::Acquire)
    }

    /// Refusals so far, by [`Kind`].
    pub fn refusals(&self) -> [u64; 3] {
        self.refused.each_ref().map(|n| n.load(Ordering::Relaxed))
    }

    /// The warn line of a refusal: what the guest was refused, and why.
    pub fn refusal_line(&self, what: &str) -> String {
        format!(
            "the host refused guest '{}' {what}: the output's guests hold {} descriptors, the most \
             wasm_max_descriptors allows (files, sockets and connections they do not close count until they do)",
            self.guest, self.cap
        )
    }
}

/// The files and sockets one guest instance holds, by resource, against its output's cap.
pub struct Holdings {
    output: Arc<Descriptors>,
    held: HashMap<u32, Slot>,
    log: LogSink,
}

impl Holdings {
    pub fn new(output: Arc<Descriptors>, log: LogSink) -> Self {
        Self { output, held: HashMap::new(), log }
    }

    /// A place for `what` (of `kind`), or `None`, the refusal logged within the guest's budget.
    fn admit(&self, kind: Kind, what: impl FnOnce() -> String) -> Option<Slot> {
        let slot = self.output.take(kind);
        if slot.is_none() {
            self.log.write(Level::Warn, self.output.refusal_line(&what()));
        }
        slot
    }

    /// The resource `rep` holds `slot` until the guest drops it (or the instance ends).
    fn hold(&mut self, rep: u32, slot: Slot) {
        self.held.insert(rep, slot);
    }

    /// The guest dropped the resource `rep`; nothing when it held no slot (a preopened directory).
    fn release(&mut self, rep: u32) {
        self.held.remove(&rep);
    }
}

/// What the shadowed functions see of a guest instance.
pub struct Holding<'a> {
    pub table: &'a mut ResourceTable,
    pub wasi: &'a mut WasiCtx,
    pub holdings: &'a mut Holdings,
}

/// Puts the count in front of WASI's (already in `linker`) `open-at`, `create-tcp-socket` and
/// `create-udp-socket`, and behind the destructors of descriptors and sockets; `view` gives
/// the guest instance's state. Everything else of those interfaces stays WASI's.
pub fn add_to_linker<T: Send + 'static>(linker: &mut Linker<T>, view: fn(&mut T) -> Holding<'_>) -> Result<()> {
    linker.allow_shadowing(true);
    let linked = shadow(linker, view).map_err(anyhow::Error::from);
    linker.allow_shadowing(false);
    linked
}

fn shadow<T: Send + 'static>(linker: &mut Linker<T>, view: fn(&mut T) -> Holding<'_>) -> wasmtime::Result<()> {
    let mut types = linker.instance(FILESYSTEM_TYPES)?;
    types.func_wrap_async(
        "[method]descriptor.open-at",
        move |mut store: StoreContextMut<'_, T>,
              (dir, path_flags, path, open_flags, flags): (
            Resource<Descriptor>,
            PathFlags,
            String,
            OpenFlags,
            DescriptorFlags,
        )| {
            Box::new(async move {
                let Holding { table, wasi, holdings } = view(store.data_mut());
                let Some(slot) = holdings.admit(Kind::File, || format!("the file {path:?}")) else {
                    return Ok((Err(fs::ErrorCode::Quota),));
                };
                let mut files = WasiFilesystemCtxView { ctx: wasi.filesystem(), table };
                match HostDescriptor::open_at(&mut files, dir, path_flags, path, open_flags, flags).await {
                    Ok(file) => {
                        holdings.hold(file.rep(), slot);
                        Ok((Ok(file),))
                    }
                    Err(err) => Ok((Err(fs::Host::convert_error_code(&mut files, err)?),)),
                }
            })
        },
    )?;
    types.resource("descriptor", ResourceType::host::<Descriptor>(), move |mut store, rep| {
        let Holding { table, wasi, holdings } = view(store.data_mut());
        holdings.release(rep);
        HostDescriptor::drop(&mut WasiFilesystemCtxView { ctx: wasi.filesystem(), table }, Resource::new_own(rep))
    })?;

    linker.instance(TCP_CREATE)?.func_wrap(
        "create-tcp-socket",
        move |mut store: StoreContextMut<'_, T>, (family,): (IpAddressFamily,)| {
            let Holding { table, wasi, holdings } = view(store.data_mut());
            let Some(slot) = holdings.admit(Kind::Socket, || "a TCP socket".to_owned()) else {
                return Ok((Err(network::ErrorCode::NewSocketLimit),));
            };
            let mut sockets = WasiSocketsCtxView { ctx: wasi.sockets(), table };
            match tcp_create_socket::Host::create_tcp_socket(&mut sockets, family) {
                Ok(socket) => {
                    holdings.hold(socket.rep(), slot);
                    Ok((Ok(socket),))
                }
                Err(err) => Ok((Err(network::Host::convert_error_code(&mut sockets, err)?),)),
            }
        },
    )?;
    linker.instance(TCP)?.resource("tcp-socket", ResourceType::host::<TcpSocket>(), move |mut store, rep| {
        let Holding { table, wasi, holdings } = view(store.data_mut());
        holdings.release(rep);
        HostTcpSocket::drop(&mut WasiSocketsCtxView { ctx: wasi.sockets(), table }, Resource::new_own(rep))
    })?;

    linker.instance(UDP_CREATE)?.func_wrap_async(
        "create-udp-socket",
        move |mut store: StoreContextMut<'_, T>, (family,): (IpAddressFamily,)| {
            Box::new(async move {
                let Holding { table, wasi, holdings } = view(store.data_mut());
                let Some(slot) = holdings.admit(Kind::Socket, || "a UDP socket".to_owned()) else {
                    return Ok((Err(network::ErrorCode::NewSocketLimit),));
                };
                let mut sockets = WasiSocketsCtxView { ctx: wasi.sockets(), table };
                match udp_create_socket::Host::create_udp_socket(&mut sockets, family).await {
                    Ok(socket) => {
                        holdings.hold(socket.rep(), slot);
                        Ok((Ok(socket),))
                    }
                    Err(err) => Ok((Err(network::Host::convert_error_code(&mut sockets, err)?),)),
                }
            })
        },
    )?;
    linker.instance(UDP)?.resource("udp-socket", ResourceType::host::<UdpSocket>(), move |mut store, rep| {
        let Holding { table, wasi, holdings } = view(store.data_mut());
        holdings.release(rep);
        HostUdpSocket::drop(&mut WasiSocketsCtxView { ctx: wasi.sockets(), table }, Resource::new_own(rep))
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_holds_across_holders_and_places_come_back() {
        let output = Descriptors::new(2, "g.wasm");
        let a = output.take(Kind::File).unwrap();
        let b = output.take(Kind::Socket).unwrap();
        assert!(output.take(Kind::Connection).is_none(), "a third is refused");
        assert!(output.take(Kind::File).is_none());
        assert_eq!((output.live(), output.refusals()), (2, [1, 0, 1]));
        drop(a);
        let c = output.take(Kind::Connection).expect("a closed one frees its place");
        assert_eq!(output.live(), 2);
        drop((b, c));
        assert_eq!(output.live(), 0);
    }
}
