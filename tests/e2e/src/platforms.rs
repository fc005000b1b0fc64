//! The release platforms of `scripts/platforms.sh`: the release build of each arch
//! (`scripts/release-build`), what a binary needs from the system it runs on (its glibc symbol
//! versions and its libraries, read from its dynamic section as auditwheel reads a manylinux
//! wheel's), and qemu-user to run the aarch64 binaries on this machine.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock, PoisonError};

use object::read::elf::{ElfFile64, FileHeader, Sym};
use object::{Endianness, elf};

use crate::{build_command, workspace_root};

/// The release binaries, as named in `target/<triple>/release` and in the release archives.
pub const RELEASE_BINARIES: &[&str] = &["out_wasm.so", "out-wasm", "out-wasm-loader"];

/// The libraries a release binary may need: glibc's own and libgcc_s (Rust's unwinder), which
/// every glibc distribution has. Anything else (libssl, libstdc++) would be a package an
/// operator must install, of a version the distribution may not have.
const SYSTEM_LIBRARIES: &[&str] = &[
    "libc.so.6",
    "libm.so.6",
    "libdl.so.2",
    "libpthread.so.0",
    "librt.so.1",
    "libgcc_s.so.1",
    "ld-linux-x86-64.so.2",
    "ld-linux-aarch64.so.1",
];

/// What `scripts/platforms.sh` says.
#[derive(Debug)]
pub struct Platforms {
    /// The newest glibc version a release binary may need, as numbers (`[2, 17]`).
    pub glibc_floor: Vec<u32>,
    /// The arches releases are built for (`x86_64`, `aarch64`).
    pub arches: Vec<String>,
    /// The aarch64 glibc qemu-user runs the aarch64 binaries with.
    pub aarch64_sysroot: PathBuf,
}

/// `scripts/platforms.sh`, read by sourcing it: it is the one place these are written.
pub fn platforms() -> &'static Platforms {
    static PLATFORMS: OnceLock<Platforms> = OnceLock::new();
    PLATFORMS.get_or_init(|| {
        let output = Command::new("bash")
            .args([
                "-c",
                r#"source scripts/platforms.sh && printf '%s\n' "$GLIBC_FLOOR" "$RELEASE_ARCHES" "$AARCH64_SYSROOT""#,
            ])
            .current_dir(workspace_root())
            .output()
            .expect("failed to run bash on scripts/platforms.sh");
        assert!(
            output.status.success(),
            "sourcing scripts/platforms.sh failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let text = String::from_utf8(output.stdout).expect("scripts/platforms.sh prints UTF-8");
        let [floor, arches, sysroot]: [&str; 3] =
            text.lines().collect::<Vec<_>>().try_into().expect("three values from scripts/platforms.sh");
        Platforms {
            glibc_floor: parse_version(floor).unwrap_or_else(|| panic!("GLIBC_FLOOR is no version: {floor}")),
            arches: arches.split_whitespace().map(str::to_owned).collect(),
            aarch64_sysroot: PathBuf::from(sysroot),
        }
    })
}

fn parse_version(text: &str) -> Option<Vec<u32>> {
    text.split('.').map(|part| part.parse().ok()).collect()
}

/// The release build for `arch` (`scripts/release-build`, once per test process and arch): the
/// directory holding `RELEASE_BINARIES`.
pub fn release_dir(arch: &str) -> PathBuf {
    static BUILT: Mutex<Vec<(String, PathBuf)>> = Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, dir)) = built.iter().find(|(built, _)| built == arch) {
        return dir.clone();
    }
    let script = workspace_root().join("scripts/release-build");
    let output = build_command(&script)
        .arg(arch)
        .current_dir(workspace_root())
        .stderr(std::process::Stdio::inherit())
        .output()
        .unwrap_or_else(|err| panic!("failed to run {}: {err}", script.display()));
    assert!(output.status.success(), "scripts/release-build {arch} failed with {}", output.status);
    let dir = PathBuf::from(String::from_utf8(output.stdout).expect("a UTF-8 path").trim());
    built.push((arch.to_owned(), dir.clone()));
    dir
}

/// The ELF machine of each arch (`e_machine`).
pub fn elf_machine_of(arch: &str) -> u16 {
    match arch {
        "x86_64" => elf::EM_X86_64,
        "aarch64" => elf::EM_AARCH64,
        other => panic!("no ELF machine known for arch {other}"),
    }
}

/// What the binary at `path` asks of the system it runs on.
#[derive(Debug)]
pub struct Needs {
    /// `e_machine` of its header.
    pub machine: u16,
    /// Each glibc symbol version it needs newer than the floor, one line a symbol, sorted:
    /// `pthread_create@GLIBC_2.34 (libc.so.6)`. `GLIBC_PRIVATE` symbols are listed too: no
    /// release of glibc promises them.
    pub above_floor: Vec<String>,
    /// The libraries it needs (`DT_NEEDED`) that are not glibc's or libgcc_s.
    pub unusual_libraries: Vec<String>,
}

/// Reads the dynamic section of the ELF file at `path`: its undefined dynamic symbols with their
/// versions (`.gnu.version` into `.gnu.version_r`) and its `DT_NEEDED` libraries.
pub fn needs(path: &Path, floor: &[u32]) -> Needs {
    let data = std::fs::read(path).unwrap_or_else(|err| panic!("failed to read {}: {err}", path.display()));
    let file = ElfFile64::<Endianness>::parse(&*data)
        .unwrap_or_else(|err| panic!("{} is no 64-bit ELF file: {err}", path.display()));
    let endian = file.endian();
    let sections = file.elf_section_table();
    let versions = sections
        .versions(endian, &*data)
        .unwrap_or_else(|err| panic!("failed to read the symbol versions of {}: {err}", path.display()));
    let symbols = file.elf_dynamic_symbol_table();

    let mut above_floor = Vec::new();
    if let Some(versions) = &versions {
        for (index, symbol) in symbols.enumerate() {
            if !symbol.is_undefined(endian) {
                continue;
            }
            let version = versions
                .version(versions.version_index(endian, index))
                .unwrap_or_else(|err| panic!("a bad symbol version in {}: {err}", path.display()));
            let Some(version) = version else { continue };
            let name = String::from_utf8_lossy(version.name());
            let Some(number) = name.strip_prefix("GLIBC_") else { continue };
            let newer = parse_version(number).is_none_or(|number| number.as_slice() > floor);
            if newer {
                let symbol_name = symbols.symbol_name(endian, symbol).unwrap_or(b"?");
                let library = version.file().map(String::from_utf8_lossy).unwrap_or_default();
                above_floor.push(format!("{}@{name} ({library})", String::from_utf8_lossy(symbol_name)));
            }
        }
    }
    above_floor.sort();
    above_floor.dedup();

    let dynamic = sections
        .dynamic_table(endian, &*data)
        .unwrap_or_else(|err| panic!("failed to read the dynamic section of {}: {err}", path.display()));
    let unusual_libraries = dynamic
        .iter()
        .filter(|entry| entry.tag == elf::DT_NEEDED)
        .map(|entry| String::from_utf8_lossy(dynamic.string(entry).expect("a DT_NEEDED name")).into_owned())
        .filter(|library| !SYSTEM_LIBRARIES.contains(&library.as_str()))
        .collect();
    Needs { machine: file.elf_header().e_machine(endian), above_floor, unusual_libraries }
}

/// A command that runs the aarch64 `program` under qemu-user with the aarch64 glibc of
/// `scripts/platforms.sh` (installed by `scripts/setup`).
pub fn qemu_aarch64(program: &Path) -> Command {
    let sysroot = &platforms().aarch64_sysroot;
    assert!(
        sysroot.join("lib/libc.so.6").is_file(),
        "no aarch64 glibc at {}: run scripts/setup (Debian's libc6-arm64-cross)",
        sysroot.display()
    );
    let mut command = Command::new("qemu-aarch64");
    command.arg("-L").arg(sysroot).arg(program);
    command
}
