//! The agent as a dependency: what the plugin uses of Fluent Bit's side of the process. The
//! ABI's layouts ([`abi`]), which agent line loaded us ([`profile`]), the agent's handle on one
//! output instance ([`handle`]), the functions of the agent found by name ([`symbols`],
//! [`cmetrics`]) and the agent's log ([`logger`]). Nothing here calls into the plugin: the
//! symbols the agent calls are in [`crate::plugin`].

pub mod abi;
pub mod cmetrics;
pub mod handle;
pub mod logger;
pub mod profile;
pub mod symbols;
