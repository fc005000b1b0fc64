//! The one linker: every interface the host provides, for guests of every supported WIT
//! version at once (the versions' interfaces have distinct names, so one linker serves them
//! all). Each capability of [`crate::sandbox`] links its own interfaces onto its state.

use anyhow::{Context, Result};
use wasmtime::Engine;
use wasmtime::component::{HasSelf, Linker};

use crate::bindings::{types, v0_1_0, v0_2_0};
use crate::runtime::store::HostState;
use crate::sandbox;

pub fn linker(engine: &Engine) -> Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(anyhow::Error::from).context("failed to link WASI")?;
    sandbox::network::add_to_linker(&mut linker, HostState::lookup).context("failed to link the name lookup policy")?;
    sandbox::descriptors::add_to_linker(&mut linker, HostState::holding)
        .context("failed to link the count of descriptors")?;
    sandbox::http::add_to_linker(&mut linker)?;
    sandbox::logging::add_to_linker(&mut linker, |state| &mut state.logging)
        .context("failed to link the logging interface")?;
    sandbox::metrics::add_to_linker(&mut linker, |state| &mut state.metrics)
        .context("failed to link the metrics interface")?;
    sandbox::config::add_to_linker(&mut linker, |state| &mut state.config)
        .context("failed to link the config interface")?;
    types::add_to_linker::<_, HasSelf<HostState>>(&mut linker, |state| state)
        .and_then(|()| v0_2_0::types::add_to_linker::<_, HasSelf<HostState>>(&mut linker, |state| state))
        .and_then(|()| v0_1_0::types::add_to_linker::<_, HasSelf<HostState>>(&mut linker, |state| state))
        .map_err(anyhow::Error::from)
        .context("failed to link the types interfaces")?;
    Ok(linker)
}

// The `types` interfaces declare types only: there is nothing in them to call.
impl types::Host for HostState {}
impl v0_2_0::types::Host for HostState {}
impl v0_1_0::types::Host for HostState {}
