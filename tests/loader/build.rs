fn main() {
    println!("cargo:rerun-if-changed=csrc/proxy.c");
    cc::Build::new().file("csrc/proxy.c").warnings(true).extra_warnings(true).compile("loader_proxy");
    println!("cargo:rustc-link-lib=dl");
}
