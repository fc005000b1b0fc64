fn main() {
    println!("cargo:rerun-if-changed=csrc/proxy.c");
    println!("cargo:rerun-if-changed=csrc/agent_symbols.c");
    println!("cargo:rerun-if-changed=csrc/loader_agent.h");
    cc::Build::new().file("csrc/proxy.c").warnings(true).extra_warnings(true).compile("loader_proxy");
    println!("cargo:rustc-link-lib=dl");

    // The agent's exported symbols, as a library the loader dlopen()s with RTLD_GLOBAL when it
    // plays an agent that has them (see csrc/agent_symbols.c).
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let library = out.join("libloader_agent_symbols.so");
    let compiler = cc::Build::new().get_compiler();
    let status = compiler
        .to_command()
        .args(["-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror", "-fvisibility=hidden", "-o"])
        .arg(&library)
        .arg("csrc/agent_symbols.c")
        .status()
        .expect("failed to run the C compiler");
    assert!(status.success(), "building the agent-symbols library failed: {status}");
    println!("cargo:rustc-env=LOADER_AGENT_SYMBOLS={}", library.display());
}
