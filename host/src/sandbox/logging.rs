//! The `logging` interface a guest imports (every WIT version): its lines go to the instance's
//! [`LogSink`] at the guest's level, up to the agent's level for the instance and within the
//! call's budget.

use anyhow::Result;
use wasmtime::component::{HasSelf, Linker};

use crate::bindings::{logging, v0_1_0, v0_2_0};
use crate::log::{Level, LogSink};

/// A guest instance's side of `logging`.
pub struct Logging {
    max_level: Level,
    log: LogSink,
}

impl Logging {
    pub fn new(max_level: Level, log: LogSink) -> Self {
        Self { max_level, log }
    }
}

/// Links `logging` of every supported WIT version; `get` finds an instance's [`Logging`].
pub fn add_to_linker<T: Send + 'static>(linker: &mut Linker<T>, get: fn(&mut T) -> &mut Logging) -> Result<()> {
    logging::add_to_linker::<T, HasSelf<Logging>>(linker, get)?;
    v0_2_0::logging::add_to_linker::<T, HasSelf<Logging>>(linker, get)?;
    v0_1_0::logging::add_to_linker::<T, HasSelf<Logging>>(linker, get)?;
    Ok(())
}

impl logging::Host for Logging {
    fn max_level(&mut self) -> logging::Level {
        self.max_level.into()
    }

    fn log(&mut self, level: logging::Level, message: String) {
        let level = Level::from(level);
        if level <= self.max_level {
            self.log.write(level, message);
        }
    }
}

/// An earlier version's `logging`: the newest one under another package version.
macro_rules! earlier_logging {
    ($version:ident) => {
        impl $version::logging::Host for Logging {
            fn max_level(&mut self) -> $version::logging::Level {
                match logging::Host::max_level(self) {
                    logging::Level::Error => $version::logging::Level::Error,
                    logging::Level::Warn => $version::logging::Level::Warn,
                    logging::Level::Info => $version::logging::Level::Info,
                    logging::Level::Debug => $version::logging::Level::Debug,
                    logging::Level::Trace => $version::logging::Level::Trace,
                }
            }

            fn log(&mut self, level: $version::logging::Level, message: String) {
                let level = match level {
                    $version::logging::Level::Error => logging::Level::Error,
                    $version::logging::Level::Warn => logging::Level::Warn,
                    $version::logging::Level::Info => logging::Level::Info,
                    $version::logging::Level::Debug => logging::Level::Debug,
                    $version::logging::Level::Trace => logging::Level::Trace,
                };
                logging::Host::log(self, level, message)
            }
        }
    };
}

earlier_logging!(v0_1_0);
earlier_logging!(v0_2_0);

impl From<logging::Level> for Level {
    fn from(level: logging::Level) -> Self {
        match level {
            logging::Level::Error => Level::Error,
            logging::Level::Warn => Level::Warn,
            logging::Level::Info => Level::Info,
            logging::Level::Debug => Level::Debug,
            logging::Level::Trace => Level::Trace,
        }
    }
}

impl From<Level> for logging::Level {
    fn from(level: Level) -> Self {
        match level {
            Level::Error => logging::Level::Error,
            Level::Warn => logging::Level::Warn,
            Level::Info => logging::Level::Info,
            Level::Debug => logging::Level::Debug,
            Level::Trace => logging::Level::Trace,
        }
    }
}
