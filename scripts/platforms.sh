# The release platforms and the toolchain that builds them: the one place each is written.
# Sourced (never run) by scripts/setup, scripts/release-build and scripts/dist; the tests read
# GLIBC_FLOOR, RELEASE_ARCHES and AARCH64_SYSROOT from here too (tests/e2e/src/platforms.rs).

# The newest glibc symbol version any release binary (out_wasm.so, out-wasm, out-wasm-loader)
# may need: 2.17, CentOS 7's, the oldest glibc Rust's std supports (since Rust 1.64) and the
# first with aarch64. The binaries run on every distribution with this glibc or a newer one.
GLIBC_FLOOR=2.17
# The machines releases are built for: each ARCH-unknown-linux-gnu, with zig cc as the linker
# and C compiler (it carries the floor's glibc stubs and headers for every one of them).
RELEASE_ARCHES="x86_64 aarch64"
# ziglang and cargo-zigbuild (PyPI), in a venv of the toolchain cache (scripts/setup).
ZIGLANG_VERSION=0.17.1
CARGO_ZIGBUILD_VERSION=0.24.1
# Where qemu-user finds an aarch64 glibc to run the aarch64 binaries in the tests (Debian's
# libc6-arm64-cross and libgcc-s1-arm64-cross, scripts/setup).
AARCH64_SYSROOT=/usr/aarch64-linux-gnu

# shellcheck source=../guests/toolchains.sh
source "$(dirname "${BASH_SOURCE[0]}")/../guests/toolchains.sh"
ZIGBUILD_HOME="$OUT_WASM_TOOLCHAIN_CACHE/zigbuild-$ZIGLANG_VERSION-$CARGO_ZIGBUILD_VERSION"
