fn main() {
    println!("cargo:rerun-if-changed=csrc/proxy.c");
    println!("cargo:rerun-if-changed=csrc/agent_symbols.c");
    println!("cargo:rerun-if-changed=csrc/loader_agent.h");
    cc::Build::new().file("csrc/proxy.c").warnings(true).extra_warnings(true).compile("loader_proxy");
    println!("cargo:rustc-link-lib=dl");

    // The agent's exported symbols, one library per agent line the loader plays (which markers
    // of newer agents it defines, see csrc/agent_symbols.c). The loader embeds them and loads
    // the one it plays with RTLD_GLOBAL from memory, so the binary needs no file beside it.
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let compiler = cc::Build::new().get_compiler();
    for line in ["0", "42", "5"] {
        let library = out.join(format!("libloader_agent_symbols_{line}.so"));
        let status = compiler
            .to_command()
            .args(["-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror", "-fvisibility=hidden"])
            .arg(format!("-DLOADER_AGENT_LINE={line}"))
            .arg("-o")
            .arg(&library)
            .arg("csrc/agent_symbols.c")
            .status()
            .expect("failed to run the C compiler");
        assert!(status.success(), "building the agent-symbols library for line {line} failed: {status}");
    }
}
