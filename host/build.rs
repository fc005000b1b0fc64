fn main() {
    // The agent dlclose()s the plugin on shutdown and on every hot reload. Wasmtime's compiled
    // code, thread-local destructors and our worker threads must never outlive the mapping of
    // this library, so the library is made non-unloadable: dlclose() becomes a no-op and a
    // later dlopen() of the same path finds it still mapped (Register then runs again).
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
}
