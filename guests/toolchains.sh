# The guest toolchains' pins and where they are installed: the one place each is written.
# Sourced (never run) by guests/*/setup, guests/*/build and the SDKs' test scripts. Other pins
# live with their package managers: the Rust crates in Cargo.toml and Cargo.lock, componentize-js
# and jco in guests/js/package-lock.json, the Go modules in go.mod and go.sum.

# wit-bindgen-cli (crates.io): the C and Go bindings.
WIT_BINDGEN_VERSION=0.61.1
# wasm-tools (crates.io): makes components of the C and Go core modules.
WASM_TOOLS_VERSION=1.262.0
# The WASI preview1 reactor adapter of the wasmtime the host runs (written by tools/adapter from
# its crate); tools/adapter's tests hold it equal to the wasmtime of Cargo.lock.
ADAPTER_VERSION=48.0.8
# componentize-py (PyPI): builds the Python guests.
COMPONENTIZE_PY_VERSION=0.25.1
# msgpack-c, from Debian's source package, for the C SDK; the SHA-256 is the upstream tarball's
# (also listed in the source package's signed .dsc).
MSGPACK_C_VERSION=4.0.0
MSGPACK_C_DEBIAN_VERSION=4.0.0-3
MSGPACK_C_SHA256=420fe35e7572f2a168d17e660ef981a589c9cbe77faa25eb34a520e1fcc032c8

# Outside the repository, so clean clones and `out-wasm new` projects reuse what is installed.
OUT_WASM_TOOLCHAIN_CACHE="${OUT_WASM_TOOLCHAINS:-${XDG_CACHE_HOME:-$HOME/.cache}/out_wasm-toolchains}"
