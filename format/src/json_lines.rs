//! The agent's JSON-lines format, set up from the same keys the agent's outputs take.

use crate::config::{Config, ConfigKey};
use crate::event::Event;
use crate::value::{DateFormat, write_json_line};

/// How records become JSON lines: `json_date_key`, `json_date_format` and `escape_unicode`,
/// with the agent's defaults (`date`, `double`, `on`).
#[derive(Clone, Debug)]
pub struct JsonLines {
    /// `None` when `json_date_key` is `off` (or `false`, `no`).
    pub date_key: Option<String>,
    pub date_format: DateFormat,
    /// The agent's `[SERVICE] json.escape_unicode`: `\uXXXX` for non-ASCII when on.
    pub escape_unicode: bool,
}

fn switch(key: &str, value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" => Ok(true),
        "off" | "false" | "no" => Ok(false),
        _ => Err(format!("invalid value {value:?} for key '{key}': expected on or off")),
    }
}

impl JsonLines {
    /// The three keys, for a guest's `config_schema`.
    pub fn config_keys() -> Vec<ConfigKey> {
        vec![
            ConfigKey::optional("json_date_key", "key of the record time; off to leave it out").default("date"),
            ConfigKey::optional("json_date_format", "double, epoch, epoch_ms, iso8601 or java_sql_timestamp")
                .default("double"),
            ConfigKey::optional("escape_unicode", "on: write non-ASCII as \\uXXXX like the agent; off: keep UTF-8")
                .default("on"),
        ]
    }

    /// From the resolved config; an invalid value is an error naming the key.
    pub fn from_config(config: &Config) -> Result<Self, String> {
        let date_key = config.get("json_date_key").unwrap_or("date");
        // Like the agent: a boolean-looking "false" disables the key, anything else names it.
        let date_key = match switch("json_date_key", date_key) {
            Ok(false) => None,
            _ => Some(date_key.to_owned()),
        };
        Ok(Self {
            date_key,
            date_format: config.parse("json_date_format")?.unwrap_or_default(),
            escape_unicode: switch("escape_unicode", config.get("escape_unicode").unwrap_or("on"))?,
        })
    }

    /// True for the agent's defaults: the lines the host renders for
    /// [`EventFormat::JsonLines`](crate::EventFormat::JsonLines).
    pub fn is_default(&self) -> bool {
        self.date_key.as_deref() == Some("date") && self.date_format == DateFormat::Double && self.escape_unicode
    }

    /// The agent's defaults.
    pub fn agent_default() -> Self {
        Self { date_key: Some("date".to_owned()), date_format: DateFormat::Double, escape_unicode: true }
    }

    /// Appends `event` as one line, newline included.
    pub fn write(&self, out: &mut Vec<u8>, event: &Event<'_>) {
        write_json_line(out, event, self.date_key.as_deref(), self.date_format, self.escape_unicode);
    }
}
