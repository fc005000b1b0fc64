//! Writing to the agent's log. Use the macros: they skip formatting when the level is off.

use std::sync::OnceLock;

use crate::bindings::out_wasm::output::logging;
pub use crate::bindings::out_wasm::output::logging::Level;

static MAX_LEVEL: OnceLock<Level> = OnceLock::new();

fn rank(level: Level) -> u8 {
    match level {
        Level::Error => 1,
        Level::Warn => 2,
        Level::Info => 3,
        Level::Debug => 4,
        Level::Trace => 5,
    }
}

/// Whether a message at `level` would reach the log (the instance's `log_level`).
pub fn enabled(level: Level) -> bool {
    // Constant for the life of the instance, so asked once.
    rank(level) <= rank(*MAX_LEVEL.get_or_init(logging::max_level))
}

/// Writes `message` at `level`; dropped by the host if the level is off.
pub fn log(level: Level, message: &str) {
    logging::log(level, message);
}

#[doc(hidden)]
#[macro_export]
macro_rules! __log {
    ($level:expr, $($arg:tt)+) => {
        if $crate::log::enabled($level) {
            $crate::log::log($level, &::std::format!($($arg)+));
        }
    };
}

/// Logs at error level, `format!`-style.
#[macro_export]
macro_rules! error { ($($arg:tt)+) => { $crate::__log!($crate::log::Level::Error, $($arg)+) }; }
/// Logs at warn level, `format!`-style.
#[macro_export]
macro_rules! warn { ($($arg:tt)+) => { $crate::__log!($crate::log::Level::Warn, $($arg)+) }; }
/// Logs at info level, `format!`-style.
#[macro_export]
macro_rules! info { ($($arg:tt)+) => { $crate::__log!($crate::log::Level::Info, $($arg)+) }; }
/// Logs at debug level, `format!`-style.
#[macro_export]
macro_rules! debug { ($($arg:tt)+) => { $crate::__log!($crate::log::Level::Debug, $($arg)+) }; }
/// Logs at trace level, `format!`-style.
#[macro_export]
macro_rules! trace { ($($arg:tt)+) => { $crate::__log!($crate::log::Level::Trace, $($arg)+) }; }
