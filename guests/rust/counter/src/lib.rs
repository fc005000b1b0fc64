//! `counter`: counts records per tag and logs the totals every `every` records and at exit
//! (each guest instance what it counted; one that counted nothing says nothing).
//! An example of config keys (one required) and of state kept across flushes.
//!
//! Keys:
//! - `label` (required): name of this counter in its log lines.
//! - `every` (`1000`): log the totals after every this many records; `0` only at exit.
//!
//! It also publishes the count on the agent's metrics endpoint, as the guest metric
//! `fluentbit_wasm_guest_records_total{name="<output>",label="<label>",tag="<tag>"}`: unlike its
//! in-memory totals, that count survives instance restarts and hot swaps.

use std::collections::BTreeMap;

use out_wasm_guest::metrics;
use out_wasm_guest::{Chunk, ConfigKey, FlushError, InitContext, Output, export_output, info, warn};

struct Counter {
    records: metrics::Counter,
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
        let records = metrics::Counter::declare("records", "records counted", &["label", "tag"])?;
        Ok(Counter { records, label, every, total: 0, next_report: every, per_tag: BTreeMap::new() })
    }

    fn flush(&mut self, chunk: Chunk<'_>) -> Result<(), FlushError> {
        let mut records = 0;
        for event in chunk.events() {
            event?;
            records += 1;
        }
        self.total += records;
        *self.per_tag.entry(chunk.tag().to_owned()).or_default() += records;
        // A refused update (too many tags for the operator's caps) loses a metric, not records.
        if let Err(reason) = self.records.add(&[&self.label, chunk.tag()], records as f64) {
            warn!("[{}] records of tag '{}' not counted in the metric: {reason}", self.label, chunk.tag());
        }
        if self.every > 0 && self.total >= self.next_report {
            self.report("running total");
            self.next_report = (self.total / self.every + 1) * self.every;
        }
        Ok(())
    }

    fn exit(&mut self) {
        // An instance that never flushed (the warm spare the host kept ready, an instance a
        // hot swap retired before its first chunk) has nothing of the output's to report:
        // its "0 records" would read as the output's total.
        if self.total > 0 {
            self.report("final total");
        }
    }
}

export_output!(Counter);
