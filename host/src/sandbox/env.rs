//! `wasm_allow_env`: `NAME, ...`, the variables of the agent's environment a guest sees (those
//! that are set, with the agent's values); no other variable.

use wasmtime_wasi::WasiCtxBuilder;

/// The granted variables that are set in the agent's environment, with their values.
pub fn grants(names: &[String]) -> Vec<(String, String)> {
    names.iter().filter_map(|name| Some((name.clone(), std::env::var(name).ok()?))).collect()
}

pub fn apply(builder: &mut WasiCtxBuilder, env: &[(String, String)]) {
    for (name, value) in env {
        builder.env(name, value);
    }
}
