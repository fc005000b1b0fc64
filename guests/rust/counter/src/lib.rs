//! `counter`: counts records per tag and logs the totals every `every` records and at exit.
//! An example of config keys (one required) and of state kept across flushes.
//!
//! Keys:
//! - `label` (required): name of this counter in its log lines.
//! - `every` (`1000`): log the totals after every this many records; `0` only at exit.

use std::collections::BTreeMap;

use out_wasm_guest::{Chunk, ConfigKey, FlushError, InitContext, Output, export_output, info};

struct Counter {
    label: String,
    every: u64,
    total: u64,
    next_report: u64,
    per_tag: BTreeMap<String, u64>,
}

impl Counter {
    fn report(&self, when: &str) {
        let tags: Vec<String> = self.per_tag.iter().map(|(tag, n)| format!("{tag}={n}")).collect();
        info!("[{}] {when}: {} records ({})", self.label, self.total, tags.join(", "));
    }
}

impl Output for Counter {
    fn config_schema() -> Vec<ConfigKey> {
        vec![
            ConfigKey::required("label", "name of this counter in its log lines"),
            ConfigKey::optional("every", "log the totals after every this many records (0: only at exit)")
                .default("1000"),
        ]
    }

    fn init(ctx: InitContext) -> Result<Self, String> {
        let label = ctx.config.get("label").unwrap_or_default().to_owned();
        let every = ctx.config.parse::<u64>("every")?.unwrap_or(1000);
        Ok(Counter { label, every, total: 0, next_report: every, per_tag: BTreeMap::new() })
    }

    fn flush(&mut self, chunk: Chunk<'_>) -> Result<(), FlushError> {
        let mut records = 0;
        for event in chunk.events() {
            event?;
            records += 1;
        }
        self.total += records;
        *self.per_tag.entry(chunk.tag().to_owned()).or_default() += records;
        if self.every > 0 && self.total >= self.next_report {
            self.report("running total");
            self.next_report = (self.total / self.every + 1) * self.every;
        }
        Ok(())
    }

    fn exit(&mut self) {
        self.report("final total");
    }
}

export_output!(Counter);
