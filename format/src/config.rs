//! Configuration keys an output declares, and the values resolved for them: plain data, so a
//! format can declare the keys that configure it (see [`JsonLines`](crate::JsonLines)).

use std::str::FromStr;

/// Keys of an `[OUTPUT]` section that the agent consumes itself (Fluent Bit 2.2 to 5.x): they
/// never reach a plugin's property lookup, so an output may not declare them. `name` selects the
/// plugin and is not a property either. Every key of the families in [`AGENT_KEY_FAMILIES`] is
/// the agent's too. One list for both sides: the plugin refuses a guest declaring one, the
/// loader (which plays the agent) hides them from the plugin.
pub const AGENT_KEYS: &[&str] = &[
    "alias",
    "host",
    "ipv6",
    "listen",
    "log_level",
    "log_suppress_interval",
    "match",
    "match_regex",
    "mem_buf_limit",
    "name",
    "port",
    "retry_limit",
    "routable",
    "storage.pause_on_chunks_overlimit",
    "storage.total_limit_size",
    "storage.type",
    "tag",
    "threaded",
    "tls",
    "workers",
];

/// Prefixes of the key families the agent consumes: TLS (`tls.verify`...), networking
/// (`net.keepalive`...) and OAuth2 (`oauth2.token_url`...).
pub const AGENT_KEY_FAMILIES: &[&str] = &["tls.", "net.", "oauth2"];

/// Whether the agent keeps `key` to itself ([`AGENT_KEYS`], [`AGENT_KEY_FAMILIES`]),
/// case-insensitively.
pub fn is_agent_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    AGENT_KEYS.contains(&key.as_str()) || AGENT_KEY_FAMILIES.iter().any(|family| key.starts_with(family))
}

/// One key an output accepts in its `[OUTPUT]` section.
#[derive(Clone, Debug)]
pub struct ConfigKey {
    name: String,
    description: String,
    default: Option<String>,
    required: bool,
}

impl ConfigKey {
    /// A key the operator may leave out.
    pub fn optional(name: &str, description: &str) -> Self {
        Self { name: name.into(), description: description.into(), default: None, required: false }
    }

    /// A key the operator must set: the agent refuses to start without it.
    pub fn required(name: &str, description: &str) -> Self {
        Self { required: true, ..Self::optional(name, description) }
    }

    /// The value used when the operator sets none.
    pub fn default(mut self, value: &str) -> Self {
        self.default = Some(value.into());
        self
    }

    /// Name, description, default and whether it is required, for the bindings of either side.
    pub fn into_parts(self) -> (String, String, Option<String>, bool) {
        (self.name, self.description, self.default, self.required)
    }
}

/// The resolved values of the declared keys.
#[derive(Clone, Debug, Default)]
pub struct Config {
    entries: Vec<(String, String)>,
}

impl Config {
    /// The value of `key` (as declared; matched case-insensitively), if it has one.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v.as_str())
    }

    /// The value of `key` parsed as `T`; an error names the key and the value.
    pub fn parse<T: FromStr>(&self, key: &str) -> Result<Option<T>, String>
    where
        T::Err: std::fmt::Display,
    {
        self.get(key)
            .map(|value| value.parse().map_err(|err| format!("invalid value {value:?} for key '{key}': {err}")))
            .transpose()
    }

    /// Every key with a value, in declaration order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// `(key, value)` pairs in declaration order.
impl FromIterator<(String, String)> for Config {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(entries: I) -> Self {
        Self { entries: entries.into_iter().collect() }
    }
}
