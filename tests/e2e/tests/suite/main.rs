//! The end-to-end suite: every test that can share a process with the others, in one test
//! binary (one link, one run, its tests in parallel), a module per subject. The tests that
//! cannot share one are in `tests/alone/`, which says why.
//!
//! `cargo test --release -p out-wasm-e2e --test suite -- sandbox::` runs one subject.

mod agents;
mod canary;
mod capabilities;
mod cli;
mod config;
mod conformance;
mod dist;
mod examples;
mod flbgo;
mod flush;
mod fuzz;
mod go_clients;
mod go_net;
mod http;
mod kubernetes;
mod lifecycle;
mod metrics;
mod metrics_agent;
mod oci;
mod otlp;
mod platforms;
mod production;
mod profiling;
mod record;
mod sandbox;
mod sdk_metrics;
mod swap;
mod versions;
mod wire;
