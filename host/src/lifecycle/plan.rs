//! What a guest version's instances are initialised with, planned once per version from the
//! guest's own declarations and the section's keys: the resolved config, the event format and
//! the event types. The plugin plans each version it prepares (`state.rs`) and `out-wasm check`
//! plans the same way (`inspect.rs`), so both refuse the same things with the same words.

use anyhow::{Context, Result, anyhow, bail};

use crate::bindings::{ConfigEntry, EventFormat, EventTypes, InitContext, WitVersion};
use crate::config::{self, FormatKey};
use crate::runtime::fault::Fault;
use crate::runtime::instance::GuestInstance;

/// What the plan is made from, besides the guest's answers.
pub struct Setting<'a> {
    /// The agent's name of the output instance.
    pub instance: &'a str,
    pub guest_path: &'a str,
    pub guest_digest: &'a str,
    /// The operator's `wasm_event_format`.
    pub format: Option<FormatKey>,
    /// The section's keys, as the agent answers them.
    pub lookup: &'a (dyn Fn(&str) -> Option<String> + Sync),
}

/// Asks the fresh `instance` for its keys, resolves them, asks for its preferred format given
/// them and for its event types, and checks what the host would refuse. A fault is the
/// guest's (the instance is poisoned); an error is a refusal of this version.
pub async fn plan(
    instance: &mut GuestInstance,
    setting: &Setting<'_>,
) -> Result<Result<InitContext, anyhow::Error>, Fault> {
    let keys = instance.config_schema().await.map_err(|fault| fault.during("config-schema"))?;
    let config = match config::resolve(&keys, setting.lookup).context("failed to resolve the guest's config") {
        Ok(config) => config,
        Err(err) => return Ok(Err(err)),
    };
    let preferred =
        instance.preferred_event_format(&config).await.map_err(|fault| fault.during("preferred-event-format"))?;
    let event_types = instance.accepted_event_types().await.map_err(|fault| fault.during("accepted-event-types"))?;
    Ok(decide(instance.version(), setting, config, preferred, event_types))
}

/// The host's side of the plan, once the guest has answered.
fn decide(
    version: WitVersion,
    setting: &Setting<'_>,
    config: Vec<ConfigEntry>,
    preferred: Result<EventFormat, String>,
    event_types: EventTypes,
) -> Result<InitContext> {
    let preferred = preferred.map_err(|reason| anyhow!("the guest refuses its config: {reason}"))?;
    if event_types == EventTypes::empty() {
        bail!("the guest accepts no event types (accepted-event-types returned an empty set)");
    }
    let event_format = FormatKey::resolve(setting.format, preferred);
    match &event_format {
        EventFormat::OtlpJson if version < WitVersion::V0_2_0 => bail!(
            "wasm_event_format otlp_json needs a guest built against out-wasm:output@0.2.0 or later; this one is \
             {version}"
        ),
        EventFormat::JsonLines(options) if version < WitVersion::V0_3_0 && !options.is_agent_default() => bail!(
            "JSON lines with other options than the agent's defaults need a guest built against \
             out-wasm:output@0.3.0 or later; this one is {version}"
        ),
        _ => {}
    }
    Ok(InitContext {
        instance: setting.instance.to_owned(),
        guest_path: setting.guest_path.to_owned(),
        guest_digest: setting.guest_digest.to_owned(),
        config,
        event_format,
        event_types,
        hostname: hostname(),
    })
}

/// The machine's name, as `gethostname(2)` gives it (empty if it cannot).
fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer and its length are valid for the call, which writes at most that many
    // bytes.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    if ok { String::from_utf8_lossy(&buf[..len]).into_owned() } else { String::new() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::{DateFormat, JsonOptions};

    fn setting(format: Option<FormatKey>) -> Setting<'static> {
        Setting { instance: "wasm.0", guest_path: "g.wasm", guest_digest: "00", format, lookup: &|_| None }
    }

    fn iso() -> EventFormat {
        EventFormat::JsonLines(JsonOptions { date_key: None, date_format: DateFormat::Iso8601, escape_unicode: false })
    }

    #[test]
    fn the_operator_chooses_the_format_and_the_guest_its_json_options() {
        let decided = |version, format, preferred| {
            decide(version, &setting(format), vec![], Ok(preferred), EventTypes::LOGS).map(|init| init.event_format)
        };
        assert_eq!(decided(WitVersion::V0_3_0, None, iso()).unwrap(), iso(), "the guest's preference stands");
        assert_eq!(decided(WitVersion::V0_3_0, Some(FormatKey::JsonLines), iso()).unwrap(), iso());
        assert_eq!(
            decided(WitVersion::V0_3_0, Some(FormatKey::JsonLines), EventFormat::Msgpack).unwrap(),
            EventFormat::JsonLines(JsonOptions::agent_default()),
            "a guest that preferred msgpack gets the agent's defaults"
        );
        assert_eq!(decided(WitVersion::V0_3_0, Some(FormatKey::Msgpack), iso()).unwrap(), EventFormat::Msgpack);
        let err = decided(WitVersion::V0_1_0, Some(FormatKey::OtlpJson), EventFormat::Msgpack).unwrap_err();
        assert!(err.to_string().contains("0.2.0 or later"), "{err}");
        assert!(decided(WitVersion::V0_2_0, None, iso()).is_err(), "0.2.0 knows no JSON options");
    }

    #[test]
    fn a_refused_config_and_no_event_types_are_refusals() {
        let err =
            decide(WitVersion::V0_3_0, &setting(None), vec![], Err("bad key".into()), EventTypes::LOGS).unwrap_err();
        assert_eq!(err.to_string(), "the guest refuses its config: bad key");
        let err = decide(WitVersion::V0_3_0, &setting(None), vec![], Ok(EventFormat::Msgpack), EventTypes::empty())
            .unwrap_err();
        assert!(err.to_string().contains("accepts no event types"), "{err}");
    }
}
