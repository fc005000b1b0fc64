//! Prints a chunk file as OTLP/JSON: `cargo run -p out-wasm-format --example otlp -- CHUNK`.

fn main() {
    let path = std::env::args().nth(1).expect("usage: otlp CHUNK.msgpack");
    let chunk = std::fs::read(&path).unwrap_or_else(|err| panic!("failed to read {path}: {err}"));
    let kind = out_wasm_format::event_type(&chunk);
    let mut out = Vec::new();
    match out_wasm_format::otlp::render(kind, &chunk, &mut out) {
        Ok(()) => println!("{}", String::from_utf8_lossy(&out)),
        Err(err) => {
            eprintln!("{path}: {kind:?} chunk: {err}");
            std::process::exit(1);
        }
    }
}
