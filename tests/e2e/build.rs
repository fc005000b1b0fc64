//! The guest languages are listed once, in `guests/languages`; this writes them for the tests as
//! `LANGUAGES` and as `each_language!`, which expands a macro once per language (one test each,
//! named after it, so `cargo test -- python` picks one).

fn main() {
    let path = "../../guests/languages";
    println!("cargo::rerun-if-changed={path}");
    let text = std::fs::read_to_string(path).expect("guests/languages is readable");
    let languages: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    let quoted: Vec<String> = languages.iter().map(|l| format!("{l:?}")).collect();
    let each: String = languages.iter().map(|l| format!("$m!({l});")).collect();
    let code = format!(
        "/// The languages guests can be written in (`guests/languages`).\n\
         pub const LANGUAGES: &[&str] = &[{}];\n\n\
         /// Expands `$m!(LANGUAGE)` once per language of `guests/languages`.\n\
         #[macro_export]\n\
         macro_rules! each_language {{ ($m:ident) => {{ {each} }}; }}\n",
        quoted.join(", ")
    );
    let out = std::path::Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("languages.rs");
    std::fs::write(out, code).expect("OUT_DIR is writable");
}
