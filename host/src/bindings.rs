//! Host bindings generated from the WIT package in `wit/`.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "output-plugin",
});

pub use self::exports::out_wasm::output::output::Guest as OutputExports;
pub use self::out_wasm::output::logging;
pub use self::out_wasm::output::types::{ConfigEntry, ConfigKey, FlushError, InitContext};
