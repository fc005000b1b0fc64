//! The runtime: the one wasmtime engine ([`engine`]), a component compiled and linked once
//! per digest in the process ([`image`], through the compile [`cache`], the one [`linker`] and
//! the registry of [`compiled`] components), the store's data
//! ([`store`]), a live guest instance and its calls ([`instance`]), and what a call that did
//! not return is ([`fault`]).

pub mod cache;
pub mod compiled;
pub mod engine;
pub mod fault;
pub mod image;
pub mod instance;
pub mod linker;
pub mod oci;
pub mod private_dir;
pub mod store;
pub mod trust_file;
