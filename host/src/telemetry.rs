//! What the plugin shows on the agent's metrics endpoint: its own metrics of each output
//! instance ([`host`]) and the metrics its guests declare ([`guest`]), all in the instance's
//! cmetrics context.

pub mod guest;
pub mod host;
