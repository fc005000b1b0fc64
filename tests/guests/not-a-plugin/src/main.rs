//! Test guest `not-a-plugin`.
//!
//! Contract: a valid WebAssembly component (a WASI command, `wasi:cli/run`) that does not
//! implement `out-wasm:output/output-plugin`. The host must refuse it at init with an error
//! naming the world, and never call into it.

fn main() {
    println!("not an output plugin");
}
