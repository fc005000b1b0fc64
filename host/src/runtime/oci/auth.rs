//! Registry credentials from a Docker-style `config.json` (`wasm_oci_auth_file`, default the
//! agent user's `~/.docker/config.json`): the `auths` entry of the registry, as `auth`
//! (base64 of `user:password`) or `username` and `password`, or `identitytoken`.
//!
//! The credentials never appear in a message: errors name the file and the registry entry only.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use base64::Engine;
use oci_client::secrets::RegistryAuth;
use serde::Deserialize;

#[derive(Deserialize, Default)]
struct DockerConfig {
    #[serde(default)]
    auths: std::collections::BTreeMap<String, Entry>,
}

#[derive(Deserialize, Default)]
struct Entry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    identitytoken: Option<String>,
}

/// The agent user's Docker config, if `$DOCKER_CONFIG` or `$HOME` says where it is.
pub fn default_file() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").filter(|h| !h.is_empty()).map(|home| PathBuf::from(home).join(".docker/config.json"))
}

/// The names a registry may have in `auths`: `host:port`, with a scheme, with a path.
fn matches(key: &str, registry: &str) -> bool {
    let key = key.strip_prefix("https://").or_else(|| key.strip_prefix("http://")).unwrap_or(key);
    let key = key.split('/').next().unwrap_or_default();
    key.eq_ignore_ascii_case(registry)
        || (registry == "index.docker.io" && (key == "docker.io" || key == "registry-1.docker.io"))
}

/// The credentials for `registry` and where they come from (for messages): from `file` when
/// set (it must exist), else from the default Docker config if there is one; anonymous when
/// the file has no entry for the registry.
pub fn credentials(registry: &str, file: Option<&Path>) -> Result<(RegistryAuth, String)> {
    let (path, required) = match file {
        Some(path) => (path.to_owned(), true),
        None => match default_file() {
            Some(path) => (path, false),
            None => return Ok((RegistryAuth::Anonymous, "anonymous".to_owned())),
        },
    };
    let text = match std::fs::read(&path) {
        Ok(text) => text,
        Err(err) if !required && err.kind() == std::io::ErrorKind::NotFound => {
            return Ok((RegistryAuth::Anonymous, "anonymous".to_owned()));
        }
        Err(err) => {
            return Err(err).with_context(|| format!("failed to read wasm_oci_auth_file {}", path.display()));
        }
    };
    let config: DockerConfig = serde_json::from_slice(&text).map_err(|err| {
        // serde's message may quote the file's text: only its position is said.
        anyhow::anyhow!("{} is not a Docker config.json (line {}, column {})", path.display(), err.line(), err.column())
    })?;
    let Some((key, entry)) = config.auths.iter().find(|(key, _)| matches(key, registry)) else {
        return Ok((RegistryAuth::Anonymous, format!("anonymous ({} has no entry for {registry})", path.display())));
    };
    let source = format!("{} entry {key:?}", path.display());
    if let Some(token) = entry.identitytoken.as_deref().filter(|t| !t.is_empty()) {
        return Ok((RegistryAuth::Bearer(token.to_owned()), source));
    }
    if let (Some(user), Some(password)) = (&entry.username, &entry.password) {
        return Ok((RegistryAuth::Basic(user.clone(), password.clone()), source));
    }
    let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) else {
        bail!(
            "{source} has no credentials (auth, username and password, or identitytoken; credential helpers are not supported)"
        );
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .with_context(|| format!("{source}: 'auth' is not base64 of USER:PASSWORD"))?;
    let Some((user, password)) = decoded.split_once(':') else {
        bail!("{source}: 'auth' is not base64 of USER:PASSWORD");
    };
    Ok((RegistryAuth::Basic(user.to_owned(), password.to_owned()), source))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_come_from_the_registry_entry_and_never_appear_in_errors() {
        let dir = std::env::temp_dir().join(format!("out-wasm-oci-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("config.json");
        let auth = base64::engine::general_purpose::STANDARD.encode("fleet:s3cret");
        std::fs::write(&file, format!(r#"{{"auths":{{"https://localhost:5000":{{"auth":"{auth}"}}}}}}"#)).unwrap();
        let (found, source) = credentials("localhost:5000", Some(&file)).unwrap();
        assert_eq!(found, RegistryAuth::Basic("fleet".into(), "s3cret".into()));
        assert!(!source.contains("s3cret"), "{source}");
        let (other, _) = credentials("ghcr.io", Some(&file)).unwrap();
        assert_eq!(other, RegistryAuth::Anonymous);
        std::fs::write(&file, r#"{"auths":{"localhost:5000":{"auth":"s3cret!!"}}}"#).unwrap();
        let err = format!("{:#}", credentials("localhost:5000", Some(&file)).unwrap_err());
        assert!(err.contains("not base64") && !err.contains("s3cret"), "{err}");
        std::fs::write(&file, r#"{"auths":{"localhost:5000":{"auth":"s3cret"#).unwrap();
        let err = format!("{:#}", credentials("localhost:5000", Some(&file)).unwrap_err());
        assert!(err.contains("not a Docker config.json") && !err.contains("s3cret"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
