//! Guest bindings generated from the WIT package in `wit/`. Most guests never need these
//! directly: [`crate::Output`] and [`crate::export_output!`] wrap them.

wit_bindgen::generate!({
    path: "../../../wit",
    world: "output-plugin",
    pub_export_macro: true,
    export_macro_name: "export",
    default_bindings_module: "out_wasm_guest::bindings",
});
