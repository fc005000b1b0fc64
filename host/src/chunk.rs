//! A chunk as the agent hands it over: which event type it holds and the renderings the host
//! makes of it for guests ([`render`]), and counting its records without decoding them
//! ([`records`]).

pub mod records;
pub mod render;
