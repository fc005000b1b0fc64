//! `out-wasm new`: a guest project that builds with one command and passes `check`.
//!
//! Each language's project starts from that language's `stdout` example (every record as the
//! agent's JSON line) and builds with the checkout's own SDK and build script, so it follows
//! the SDK and the WIT version the checkout builds against.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::ValueEnum;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Language {
    Rust,
    Python,
    Js,
    C,
    Go,
}

const RUST_SOURCE: &str = include_str!("../../guests/rust/stdout/src/lib.rs");
const PYTHON_SOURCE: &str = include_str!("../../guests/python/stdout/app.py");
const JS_SOURCE: &str = include_str!("../../guests/js/stdout/app.js");
const C_SOURCE: &str = include_str!("../../guests/c/stdout/stdout.c");
const GO_SOURCE: &str = include_str!("../../guests/go/stdout/main.go");

/// Creates `dir/name`, a `language` guest project using the checkout at `root`.
pub fn new(language: Language, name: &str, dir: &Path, root: Option<&Path>) -> Result<ExitCode> {
    if name.is_empty()
        || !name.starts_with(|c: char| c.is_ascii_lowercase())
        || !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    {
        bail!("invalid project name {name:?}: lowercase letters, digits, '-' and '_', starting with a letter");
    }
    let root = checkout(root)?;
    let project = dir.join(name);
    if project.exists() {
        bail!("{} already exists", project.display());
    }
    let files = files(language, name, &root)?;
    for (path, text, executable) in &files {
        let path = project.join(path);
        std::fs::create_dir_all(path.parent().expect("a file in the project"))
            .with_context(|| format!("failed to create {}", project.display()))?;
        std::fs::write(&path, text).with_context(|| format!("failed to write {}", path.display()))?;
        if *executable {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .with_context(|| format!("failed to make {} executable", path.display()))?;
        }
    }
    if let Language::Js = language {
        // The example imports the SDK as '../sdk/index.js': a link makes that resolve in the
        // project as in the checkout (for editors; the build stages a copy).
        std::os::unix::fs::symlink(root.join("guests/js/sdk"), project.join("sdk"))
            .with_context(|| format!("failed to link the SDK into {}", project.display()))?;
    }
    let shown = project.display();
    println!("created {shown} ({language:?} guest, SDK and build script from {})", root.display());
    println!("build:  {shown}/build");
    println!("check:  out-wasm check {shown}/{name}.wasm");
    println!(
        "use:    [OUTPUT] Name wasm / wasm_path {}/{name}.wasm (the plugins file names out_wasm.so)",
        std::path::absolute(&project).unwrap_or(project.clone()).display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The out_wasm checkout: `root` if given; else the release archive this command was unpacked
/// from (its SDKs beside it, see scripts/dist); else the checkout it was built from.
fn checkout(root: Option<&Path>) -> Result<PathBuf> {
    let is_checkout = |dir: &Path| dir.join("guests").is_dir() && dir.join("wit").is_dir();
    let beside = std::env::current_exe().ok().and_then(|exe| exe.parent().map(Path::to_owned));
    let root = match (root, beside) {
        (Some(root), _) => root.to_owned(),
        (None, Some(beside)) if is_checkout(&beside) => beside,
        (None, _) => Path::new(env!("CARGO_MANIFEST_DIR")).join(".."),
    };
    let root = root.canonicalize().with_context(|| format!("no out_wasm checkout at {}", root.display()))?;
    if !is_checkout(&root) {
        bail!("{} is not an out_wasm checkout (no guests/ and wit/); pass --root or set OUT_WASM_ROOT", root.display());
    }
    Ok(root)
}

/// The project's files: (path in the project, content, executable).
fn files(language: Language, name: &str, root: &Path) -> Result<Vec<(PathBuf, String, bool)>> {
    let root_text = root.display().to_string();
    let build = |lang: &str, source_dir: &str| {
        let script = root.join("guests").join(lang).join("build");
        format!(
            "#!/usr/bin/env bash\n# Builds {name}.wasm, the component out_wasm runs (wasm_path), with the SDK and\n\
             # toolchain of the out_wasm checkout at {root_text} (its guests/{lang}/setup installs them).\n\
             set -euo pipefail\nhere=\"$(cd \"$(dirname \"$0\")\" && pwd)\"\n\
             exec {script} \"$here{source_dir}\" \"$here/{name}.wasm\"\n",
            script = script.display()
        )
    };
    let gitignore = (PathBuf::from(".gitignore"), format!("/{name}.wasm\n/target/\n"), false);
    Ok(match language {
        Language::Rust => {
            let crate_file = name.replace('-', "_");
            let sdk = root.join("guests/rust/sdk");
            let manifest = format!(
                "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\npublish = false\n\n\
                 [lib]\ncrate-type = [\"cdylib\"]\n\n[dependencies]\nout-wasm-guest = {{ path = \"{}\" }}\n\n\
                 # A workspace of its own, wherever the project lives.\n[workspace]\n",
                sdk.display()
            );
            let script = format!(
                "#!/usr/bin/env bash\n# Builds {name}.wasm, the component out_wasm runs (wasm_path), with the Rust SDK of\n\
                 # the out_wasm checkout at {root_text} (rustup target add wasm32-wasip2).\n\
                 set -euo pipefail\ncd \"$(dirname \"$0\")\"\ncargo build --quiet --release --target wasm32-wasip2\n\
                 cp \"${{CARGO_TARGET_DIR:-target}}/wasm32-wasip2/release/{crate_file}.wasm\" {name}.wasm\n"
            );
            let mut files = vec![
                (PathBuf::from("Cargo.toml"), manifest, false),
                (PathBuf::from("src/lib.rs"), RUST_SOURCE.to_owned(), false),
                (PathBuf::from("build"), script, true),
                gitignore,
            ];
            // The checkout's lock pins what its SDK was tested with; cargo drops the rest.
            if let Ok(lock) = std::fs::read_to_string(root.join("Cargo.lock")) {
                files.push((PathBuf::from("Cargo.lock"), lock, false));
            }
            files
        }
        Language::Python => vec![
            (PathBuf::from("app.py"), PYTHON_SOURCE.to_owned(), false),
            (PathBuf::from("build"), build("python", ""), true),
            gitignore,
        ],
        Language::Js => vec![
            (PathBuf::from("src/app.js"), JS_SOURCE.to_owned(), false),
            (PathBuf::from("build"), build("js", "/src"), true),
            gitignore,
        ],
        Language::C => vec![
            (PathBuf::from(format!("{}.c", name.replace('-', "_"))), C_SOURCE.to_owned(), false),
            (PathBuf::from("build"), build("c", ""), true),
            gitignore,
        ],
        Language::Go => {
            let sdk = root.join("guests/go");
            let sdk_mod = std::fs::read_to_string(sdk.join("go.mod"))
                .with_context(|| format!("no Go SDK at {} (guests/go/go.mod)", sdk.display()))?;
            // The SDK's own requirements (single `require` lines and `require (...)` blocks),
            // listed as the main module must list them.
            let mut requires = String::new();
            let mut in_block = false;
            for line in sdk_mod.lines().map(str::trim) {
                let req = match (in_block, line) {
                    (false, "require (") => {
                        in_block = true;
                        continue;
                    }
                    (true, ")") => {
                        in_block = false;
                        continue;
                    }
                    (true, req) => req,
                    (false, line) => match line.strip_prefix("require ") {
                        Some(req) => req,
                        None => continue,
                    },
                };
                let req = req.trim_end_matches("// indirect").trim();
                if !req.is_empty() {
                    requires.push_str(&format!("require {req} // indirect\n"));
                }
            }
            let go_mod = format!(
                "module {name}\n\ngo 1.25\n\nrequire outwasm v0.0.0\n\n{requires}\nreplace outwasm => {}\n",
                sdk.display()
            );
            let go_sum = std::fs::read_to_string(sdk.join("go.sum")).unwrap_or_default();
            vec![
                (PathBuf::from("main.go"), GO_SOURCE.to_owned(), false),
                (PathBuf::from("go.mod"), go_mod, false),
                (PathBuf::from("go.sum"), go_sum, false),
                (PathBuf::from("build"), build("go", ""), true),
                gitignore,
            ]
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The languages `out-wasm new` makes projects in are the project's (guests/languages).
    #[test]
    fn the_languages_are_the_projects() {
        let listed: Vec<&str> =
            include_str!("../../guests/languages").lines().filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
        let ours: Vec<String> =
            Language::value_variants().iter().map(|l| l.to_possible_value().unwrap().get_name().to_owned()).collect();
        assert_eq!(ours, listed);
    }
}
