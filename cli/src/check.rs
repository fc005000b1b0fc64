//! `out-wasm check`: everything the plugin would find out about a guest when an instance
//! starts, told up front, with a non-zero exit and the reason when the plugin would refuse it.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use out_wasm::inspect::{CompileCache, DateFormat, EventFormat, EventTypes, Init, Inspection, Level, Logged, Schema};

use crate::progress;

/// Checks `guest`; with `config`, also resolves it and runs init once.
pub fn check(guest: &Path, config: Option<&[(String, String)]>, use_cache: bool) -> Result<ExitCode> {
    let bytes = std::fs::read(guest).with_context(|| format!("{}: failed to read the file", guest.display()))?;
    let cache = use_cache.then(CompileCache::default_dir).flatten().and_then(|dir| CompileCache::open(&dir).ok());
    let inspection =
        progress::step(&format!("compiling {}", guest.display()), || Inspection::new(guest, &bytes, cache.as_ref()))
            .with_context(|| format!("{}: refused", guest.display()))?;

    println!("guest:      {}", guest.display());
    println!("sha256:     {}", inspection.digest);
    println!("component:  yes ({} bytes)", bytes.len());
    match &inspection.version {
        Ok(version) => {
            println!("world:      {} (WIT {version})", inspection.world().unwrap_or_else(|| version.world()))
        }
        Err(reason) => println!("world:      none supported: {reason}"),
    }
    let refused = inspection.imports.iter().filter(|i| i.refused.is_some()).count();
    println!(
        "imports:    {} ({})",
        inspection.imports.len(),
        if refused == 0 {
            "all provided by the host".to_owned()
        } else {
            format!("{refused} NOT provided by the host")
        }
    );
    for import in &inspection.imports {
        match &import.refused {
            None => println!("  provided  {}", import.name),
            Some(reason) => println!("  MISSING   {}: {reason}", import.name),
        }
    }
    if let Err(reason) = &inspection.version {
        return refuse(guest, reason);
    }
    if !inspection.loadable() {
        return refuse(guest, "the host does not provide every import of the component");
    }

    let schema = match progress::step("calling config-schema", || inspection.schema(config.unwrap_or_default())) {
        Ok(logged) => {
            print_logs(&logged);
            logged.value
        }
        Err(err) => return refuse(guest, &format!("{err:#}")),
    };
    print_schema(&schema);
    if let Err(err) = Inspection::check_keys(&schema) {
        return refuse(guest, &format!("{err:#}"));
    }
    if schema.event_types == EventTypes::empty() {
        return refuse(guest, "the guest accepts no event types (accepted-event-types returned an empty set)");
    }
    if let Err(reason) = &schema.preferred_format {
        return refuse(guest, &format!("the guest refuses its config: {reason}"));
    }

    if let Some(config) = config {
        let logged = match progress::step("running init", || inspection.init(config)) {
            Ok(logged) => logged,
            Err(err) => return refuse(guest, &format!("{err:#}")),
        };
        print_logs(&logged);
        let Init { config: entries, event_format, answer } = logged.value;
        println!("config:     {} keys set", entries.len());
        for entry in &entries {
            println!("  {} = {:?}", entry.key, entry.value);
        }
        println!("receives:   {}", describe_format(&event_format));
        match answer {
            Ok(()) => println!("init:       ok (and exit)"),
            Err(message) => return refuse(guest, &format!("init returned an error: {message}")),
        }
    }
    println!("result:     ok");
    Ok(ExitCode::SUCCESS)
}

fn refuse(guest: &Path, reason: &str) -> Result<ExitCode> {
    println!("result:     refused");
    eprintln!("out-wasm: {}: refused: {reason}", guest.display());
    Ok(ExitCode::FAILURE)
}

fn print_schema(schema: &Schema) {
    println!("keys:       {}", schema.keys.len());
    for key in &schema.keys {
        let default =
            key.default_value.as_deref().map_or_else(|| "no default".to_owned(), |d| format!("default {d:?}"));
        let required = if key.required { "required" } else { "optional" };
        println!("  {} ({required}, {default}): {}", key.name, key.description);
    }
    if let Ok(format) = &schema.preferred_format {
        println!("format:     {} (preferred; wasm_event_format overrides)", describe_format(format));
    }
    let types: Vec<&str> =
        [(EventTypes::LOGS, "logs"), (EventTypes::METRICS, "metrics"), (EventTypes::TRACES, "traces")]
            .into_iter()
            .filter(|(t, _)| schema.event_types.contains(*t))
            .map(|(_, name)| name)
            .collect();
    println!("events:     {}", if types.is_empty() { "none".to_owned() } else { types.join(", ") });
}

fn print_logs<T>(logged: &Logged<T>) {
    for (level, line) in &logged.logs {
        println!("  guest log [{}] {line}", level_name(*level));
    }
}

/// The spelling `wasm_event_format` takes, and the JSON options in the keys of the agent's
/// `stdout` output.
fn describe_format(format: &EventFormat) -> String {
    let EventFormat::JsonLines(options) = format else { return format.key_name().to_owned() };
    let date = match options.date_format {
        DateFormat::Double => "double",
        DateFormat::Epoch => "epoch",
        DateFormat::EpochMs => "epoch_ms",
        DateFormat::Iso8601 => "iso8601",
        DateFormat::JavaSqlTimestamp => "java_sql_timestamp",
    };
    format!(
        "json_lines (json_date_key {}, json_date_format {date}, escape_unicode {})",
        options.date_key.as_deref().unwrap_or("off"),
        if options.escape_unicode { "on" } else { "off" }
    )
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Error => "error",
        Level::Warn => "warn",
        Level::Info => "info",
        Level::Debug => "debug",
        Level::Trace => "trace",
    }
}
