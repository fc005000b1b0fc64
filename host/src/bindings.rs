//! Host bindings generated from the WIT package in `wit/`.

wasmtime::component::bindgen!({
    path: "../wit/v0.1.0",
    world: "output-plugin",
    // Guest calls are futures so that a deadline can stop them even while the guest waits in
    // a host call (a WASI sleep, a blocked write), not only while it computes.
    exports: { default: async },
});

pub use self::exports::out_wasm::output::output::Guest as OutputExports;
pub use self::out_wasm::output::logging;
pub use self::out_wasm::output::types::{ConfigEntry, ConfigKey, EventFormat, FlushError, InitContext};
