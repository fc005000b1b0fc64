//! Configuration keys an output declares, and the values resolved for them: plain data, so a
//! format can declare the keys that configure it (see [`JsonLines`](crate::JsonLines)).

use std::str::FromStr;

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
