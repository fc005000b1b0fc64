//! Write Fluent Bit output plugins in Rust, run them in out_wasm.
//!
//! Implement [`Output`] for a type and export it with [`export_output!`]:
//!
//! ```ignore
//! use out_wasm_guest::{Chunk, FlushError, InitContext, Output, export_output};
//!
//! struct Count(u64);
//!
//! impl Output for Count {
//!     fn init(_ctx: InitContext) -> Result<Self, String> {
//!         Ok(Count(0))
//!     }
//!
//!     fn flush(&mut self, chunk: Chunk<'_>) -> Result<(), FlushError> {
//!         for event in chunk.events() {
//!             let _event = event?;
//!             self.0 += 1;
//!         }
//!         out_wasm_guest::info!("{} records so far", self.0);
//!         Ok(())
//!     }
//! }
//!
//! export_output!(Count);
//! ```
//!
//! Build with `cargo build --release --target wasm32-wasip2`; the `.wasm` in
//! `target/wasm32-wasip2/release/` is the component to name in `wasm_path`.
//!
//! ## Metrics and traces
//!
//! An output that accepts them ([`Output::accepted_event_types`]) gets metrics and traces
//! chunks too; [`Chunk::event_type`] says which a chunk holds. In the msgpack event format,
//! [`Chunk::metrics`] decodes a metrics chunk into its cmetrics contexts (families, label keys,
//! samples) and [`Chunk::traces`] a traces chunk into its ctraces contexts (resources, scopes,
//! spans, events, links): the [`cmetrics`] and [`ctraces`] modules, the decoders the host
//! itself renders OTLP/JSON with. A guest that only forwards them as OTLP asks for
//! [`EventFormat::OtlpJson`] instead and sends [`Chunk::bytes`] as they are.

pub mod bindings;
mod config;
pub mod log;
pub mod metrics;

use std::time::{Duration, Instant};

pub use crate::bindings::out_wasm::output::types::{Delivery, FlushError, JsonOptions};
pub use crate::config::{Config, ConfigKey, EventFormat, EventType, EventTypes, InitContext, lookup};
/// Typed metrics: the cmetrics contexts of a metrics chunk ([`Chunk::metrics`]).
pub use out_wasm_format::cmetrics;
/// Typed traces: the ctraces contexts of a traces chunk ([`Chunk::traces`]).
pub use out_wasm_format::ctraces;
pub use out_wasm_format::{DateFormat, DecodeError, Event, Events, JsonLines, Timestamp, Value, write_json_line};

/// One chunk, as the agent flushed it.
#[derive(Clone, Copy, Debug)]
pub struct Chunk<'a> {
    tag: &'a str,
    bytes: &'a [u8],
    event_type: EventType,
    deadline: Option<Instant>,
    delivery: Option<&'a Delivery>,
}

impl<'a> Chunk<'a> {
    /// A chunk of log records with no deadline (for tests and native use of the SDK).
    pub fn new(tag: &'a str, bytes: &'a [u8]) -> Self {
        Self { tag, bytes, event_type: EventType::Logs, deadline: None, delivery: None }
    }

    /// A chunk of `event_type` whose flush call is stopped by the host after `time_left`.
    pub fn with_context(tag: &'a str, bytes: &'a [u8], event_type: EventType, time_left: Option<Duration>) -> Self {
        // The host measured the time left when it made the call; from here on it shrinks with
        // this guest's own clock.
        let deadline = time_left.map(|left| Instant::now() + left);
        Self { tag, bytes, event_type, deadline, delivery: None }
    }

    /// The same chunk, as the host's delivery `delivery` of it.
    pub fn delivered(self, delivery: &'a Delivery) -> Self {
        Self { delivery: Some(delivery), ..self }
    }

    /// Which delivery of which chunk this is: an id that is the same on every delivery of the
    /// chunk (retries, other instances, other versions), and the attempt the host counts. Send
    /// the id where the endpoint takes one (an `Idempotency-Key` header, a batch id). `None`
    /// outside the host.
    pub fn delivery(&self) -> Option<&'a Delivery> {
        self.delivery
    }

    /// The tag the records were routed by.
    pub fn tag(&self) -> &'a str {
        self.tag
    }

    /// The kind of events in the chunk: one of [`Output::accepted_event_types`].
    pub fn event_type(&self) -> EventType {
        self.event_type
    }

    /// How long this flush may still run before the host stops it (and the chunk comes back):
    /// give up a little earlier and answer [`FlushError::Retry`]. `None` when the operator
    /// turned deadlines off.
    pub fn time_left(&self) -> Option<Duration> {
        self.deadline.map(|deadline| deadline.saturating_duration_since(Instant::now()))
    }

    /// When the host stops this flush, if it does.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// The bytes the host delivered: msgpack exactly as the agent flushed it, JSON lines when
    /// the instance's [`InitContext::event_format`] is [`EventFormat::JsonLines`], or one
    /// OTLP/JSON export request with [`EventFormat::OtlpJson`].
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The log records, decoded one at a time (for logs in the msgpack event format).
    pub fn events(&self) -> Events<'a> {
        Events::new(self.bytes)
    }

    /// The cmetrics contexts of a metrics chunk in the msgpack event format. Strings borrow
    /// from the chunk, as bytes (the agent does not promise UTF-8).
    pub fn metrics(&self) -> Result<Vec<cmetrics::MetricsContext<'a>>, DecodeError> {
        cmetrics::decode_metrics(self.bytes)
    }

    /// The ctraces contexts of a traces chunk in the msgpack event format.
    pub fn traces(&self) -> Result<Vec<ctraces::TracesContext<'a>>, DecodeError> {
        ctraces::decode_traces(self.bytes)
    }
}

impl From<DecodeError> for FlushError {
    /// A malformed chunk will not become well-formed by retrying: the agent drops it.
    fn from(err: DecodeError) -> Self {
        FlushError::Error(err.to_string())
    }
}

/// An output plugin. One value lives per guest instance, from `init` until `exit`.
pub trait Output: Sized + 'static {
    /// The configuration keys this output accepts. Called once per guest version, before any
    /// `init`. Default: none.
    fn config_schema() -> Vec<ConfigKey> {
        Vec::new()
    }

    /// The format this output would like its chunks in, given its resolved config (called
    /// once per guest version, after `config_schema`); the operator's `wasm_event_format`
    /// overrides it, and [`InitContext::event_format`] says what the instance gets. An error
    /// refuses the config (the agent does not start). Default: [`EventFormat::Msgpack`], which
    /// [`Chunk::events`] decodes. A guest that prints JSON lines asks the host to render them
    /// with its own keys: `Ok(EventFormat::json_lines(&JsonLines::from_config(config)?))`.
    fn preferred_event_format(config: &Config) -> Result<EventFormat, String> {
        let _ = config;
        Ok(EventFormat::Msgpack)
    }

    /// The event types this output accepts; chunks of other types never reach it. Default:
    /// logs only.
    fn accepted_event_types() -> EventTypes {
        EventTypes::LOGS
    }

    /// Creates the output for one guest instance. An error stops the agent from starting (or,
    /// for a later instance, is logged and that instance is not used). Declare metrics here.
    fn init(ctx: InitContext) -> Result<Self, String>;

    /// Delivers one chunk. `Err(FlushError::Retry(..))` has the agent flush it again later,
    /// `Err(FlushError::Error(..))` drops it; `?` on a [`DecodeError`] drops it.
    fn flush(&mut self, chunk: Chunk<'_>) -> Result<(), FlushError>;

    /// Time for background work while no flush runs, at most about `budget` (a flush that
    /// arrives waits for it): send a batch a timer made due, say. Returns when to be called
    /// again (no sooner than the host's `wasm_idle_interval`); `None`, the default, not until
    /// after the next flush.
    fn idle(&mut self, budget: Duration) -> Option<Duration> {
        let _ = budget;
        None
    }

    /// Called once when the agent stops the output. Default: nothing.
    fn exit(&mut self) {}
}

#[doc(hidden)]
pub mod __private {
    use std::cell::RefCell;
    use std::thread::LocalKey;

    pub use crate::bindings::exports::out_wasm::output::output::Guest;
    pub use crate::bindings::out_wasm::output::types::{
        ConfigEntry, ConfigKey, EventFormat, EventTypes, FlushContext, FlushError, InitContext,
    };
    use crate::{Chunk, Config, Output};

    pub type Slot<T> = RefCell<Option<T>>;

    pub fn config_schema<T: Output>() -> Vec<ConfigKey> {
        T::config_schema().into_iter().map(Into::into).collect()
    }

    pub fn preferred_event_format<T: Output>(config: Vec<ConfigEntry>) -> Result<EventFormat, String> {
        let config: Config = config.into_iter().map(|e| (e.key, e.value)).collect();
        T::preferred_event_format(&config)
    }

    pub fn init<T: Output>(slot: &'static LocalKey<Slot<T>>, ctx: InitContext) -> Result<(), String> {
        let output = T::init(ctx.into())?;
        slot.with(|slot| *slot.borrow_mut() = Some(output));
        Ok(())
    }

    pub fn flush<T: Output>(
        slot: &'static LocalKey<Slot<T>>,
        ctx: FlushContext,
        chunk: Vec<u8>,
    ) -> Result<(), FlushError> {
        let time_left = ctx.time_left.map(std::time::Duration::from_nanos);
        let chunk = Chunk::with_context(&ctx.tag, &chunk, ctx.event_type, time_left).delivered(&ctx.delivery);
        slot.with(|slot| match slot.borrow_mut().as_mut() {
            Some(output) => output.flush(chunk),
            None => Err(FlushError::Retry("flush before init".into())),
        })
    }

    pub fn idle<T: Output>(slot: &'static LocalKey<Slot<T>>, budget: u64) -> Option<u64> {
        let budget = std::time::Duration::from_nanos(budget);
        let next = slot.with(|slot| slot.borrow_mut().as_mut().and_then(|output| output.idle(budget)))?;
        Some(u64::try_from(next.as_nanos()).unwrap_or(u64::MAX))
    }

    pub fn exit<T: Output>(slot: &'static LocalKey<Slot<T>>) {
        slot.with(|slot| {
            if let Some(mut output) = slot.borrow_mut().take() {
                output.exit();
            }
        })
    }
}

/// Exports `$ty` (an [`Output`]) as this component's output plugin. Use it once per crate.
#[macro_export]
macro_rules! export_output {
    ($ty:ty) => {
        const _: () = {
            ::std::thread_local! {
                static SLOT: $crate::__private::Slot<$ty> = const { ::std::cell::RefCell::new(None) };
            }

            struct OutWasmGuest;

            impl $crate::__private::Guest for OutWasmGuest {
                fn config_schema() -> ::std::vec::Vec<$crate::__private::ConfigKey> {
                    $crate::__private::config_schema::<$ty>()
                }

                fn preferred_event_format(
                    config: ::std::vec::Vec<$crate::__private::ConfigEntry>,
                ) -> ::std::result::Result<$crate::__private::EventFormat, ::std::string::String> {
                    $crate::__private::preferred_event_format::<$ty>(config)
                }

                fn accepted_event_types() -> $crate::__private::EventTypes {
                    <$ty as $crate::Output>::accepted_event_types()
                }

                fn init(ctx: $crate::__private::InitContext) -> ::std::result::Result<(), ::std::string::String> {
                    $crate::__private::init::<$ty>(&SLOT, ctx)
                }

                fn flush(
                    ctx: $crate::__private::FlushContext,
                    chunk: ::std::vec::Vec<u8>,
                ) -> ::std::result::Result<(), $crate::__private::FlushError> {
                    $crate::__private::flush::<$ty>(&SLOT, ctx, chunk)
                }

                fn idle(budget: u64) -> ::std::option::Option<u64> {
                    $crate::__private::idle::<$ty>(&SLOT, budget)
                }

                fn exit(_time_left: ::std::option::Option<u64>) {
                    $crate::__private::exit::<$ty>(&SLOT)
                }
            }

    $crate::bindings::export!(OutWasmGuest with_types_in $crate::bindings);
        };
    };
}
