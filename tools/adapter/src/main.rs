//! `out-wasm-adapter OUT.wasm`: writes the WASI preview1 reactor adapter (the one of the
//! wasmtime release the host runs) to OUT.wasm. The adapter ships inside a crate, so cargo
//! fetches it and checks its checksum against Cargo.lock like any dependency; guests whose
//! toolchain makes preview1 core modules (C, Go) become components with it.

use std::path::PathBuf;
use std::process::ExitCode;

use wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER as ADAPTER;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(out), None) = (args.next().map(PathBuf::from), args.next()) else {
        eprintln!("usage: out-wasm-adapter OUT.wasm");
        return ExitCode::from(2);
    };
    // Written beside and renamed into place: a reader never sees half an adapter.
    let partial = out.with_extension("wasm.partial");
    let written = out
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::write(&partial, ADAPTER))
        .and_then(|()| std::fs::rename(&partial, &out));
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("out-wasm-adapter: failed to write {}: {err}", out.display());
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// The version Cargo.lock resolved for `package`.
    fn locked(lock: &str, package: &str) -> String {
        let at = lock.find(&format!("name = \"{package}\"\n")).unwrap_or_else(|| panic!("{package} in Cargo.lock"));
        let line = lock[at..].lines().nth(1).expect("a version line");
        line.strip_prefix("version = \"").and_then(|v| v.strip_suffix('"')).expect("version = \"...\"").to_owned()
    }

    #[test]
    fn the_adapter_is_the_one_of_the_hosts_wasmtime_everywhere_it_is_named() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let lock = std::fs::read_to_string(root.join("Cargo.lock")).expect("Cargo.lock");
        let wasmtime = locked(&lock, "wasmtime");
        assert_eq!(locked(&lock, "wasi-preview1-component-adapter-provider"), wasmtime, "the adapter crate");
        let pins = std::fs::read_to_string(root.join("guests/toolchains.sh")).expect("guests/toolchains.sh");
        let pinned = pins.lines().find_map(|line| line.strip_prefix("ADAPTER_VERSION=")).expect("ADAPTER_VERSION=");
        assert_eq!(pinned, wasmtime, "ADAPTER_VERSION in guests/toolchains.sh");
    }
}
