//! Reads the parts of a Fluent Bit configuration the loader acts on: the plugins to load, the
//! inputs' tags and the `[OUTPUT]` sections. Classic (`.conf`) and YAML (`.yaml`/`.yml`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use yaml_rust2::{Yaml, YamlLoader};

/// One `[INPUT]`/`[OUTPUT]` section: its keys in order (names as written).
#[derive(Clone, Debug, Default)]
pub struct Section {
    pub entries: Vec<(String, String)>,
}

impl Section {
    /// The value of `key`, case-insensitively (the last one, as the agent keeps).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.iter().rev().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v.as_str())
    }
}

#[derive(Clone, Debug, Default)]
pub struct AgentConfig {
    /// `.so` paths, from `plugins_file` and YAML `plugins:`.
    pub plugins: Vec<PathBuf>,
    pub inputs: Vec<Section>,
    pub outputs: Vec<Section>,
}

impl AgentConfig {
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("failed to read {}", path.display()))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        if is_yaml(path) { parse_yaml(&text, dir) } else { parse_classic(&text, dir) }
            .with_context(|| format!("failed to parse {}", path.display()))
    }
}

fn is_yaml(path: &Path) -> bool {
    matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
}

/// `[SECTION]` headers and `Key Value` lines; `#` comments.
fn classic_sections(text: &str) -> Result<Vec<(String, Section)>> {
    let mut sections: Vec<(String, Section)> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            sections.push((name.trim().to_ascii_uppercase(), Section::default()));
            continue;
        }
        if line.starts_with('@') {
            bail!("line {}: directives ({line}) are not supported by the loader", n + 1);
        }
        let Some((_, section)) = sections.last_mut() else {
            bail!("line {}: entry outside a section", n + 1);
        };
        let (key, value) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        section.entries.push((key.to_owned(), value.trim().to_owned()));
    }
    Ok(sections)
}

/// The agent resolves a relative `plugins_file` against the main config's directory.
fn resolve(dir: &Path, file: &str) -> PathBuf {
    let path = Path::new(file);
    if path.is_absolute() { path.to_owned() } else { dir.join(path) }
}

fn parse_classic(text: &str, dir: &Path) -> Result<AgentConfig> {
    let mut config = AgentConfig::default();
    for (name, section) in classic_sections(text)? {
        match name.as_str() {
            "SERVICE" => {
                if let Some(file) = section.get("plugins_file") {
                    config.plugins.extend(read_plugins_file(&resolve(dir, file))?);
                }
            }
            "INPUT" => config.inputs.push(section),
            "OUTPUT" => config.outputs.push(section),
            "PLUGINS" => config.plugins.extend(plugin_paths(&section)),
            _ => {}
        }
    }
    Ok(config)
}

fn plugin_paths(section: &Section) -> Vec<PathBuf> {
    section.entries.iter().filter(|(k, _)| k.eq_ignore_ascii_case("path")).map(|(_, v)| PathBuf::from(v)).collect()
}

fn read_plugins_file(path: &Path) -> Result<Vec<PathBuf>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("failed to read plugins file {}", path.display()))?;
    if is_yaml(path) {
        let docs = YamlLoader::load_from_str(&text)?;
        return Ok(docs.first().map(|doc| yaml_plugins(&doc["plugins"])).unwrap_or_default());
    }
    Ok(classic_sections(&text)?
        .into_iter()
        .filter(|(name, _)| name == "PLUGINS")
        .flat_map(|(_, section)| plugin_paths(&section))
        .collect())
}

fn yaml_plugins(list: &Yaml) -> Vec<PathBuf> {
    list.as_vec().into_iter().flatten().filter_map(|p| p.as_str()).map(PathBuf::from).collect()
}

fn yaml_scalar(value: &Yaml) -> Option<String> {
    match value {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(n) => Some(n.to_string()),
        Yaml::Boolean(b) => Some(if *b { "on" } else { "off" }.to_owned()),
        _ => None,
    }
}

fn yaml_sections(list: &Yaml) -> Vec<Section> {
    let mut sections = Vec::new();
    for item in list.as_vec().into_iter().flatten() {
        let Some(map) = item.as_hash() else { continue };
        let entries = map.iter().filter_map(|(k, v)| Some((k.as_str()?.to_owned(), yaml_scalar(v)?))).collect();
        sections.push(Section { entries });
    }
    sections
}

fn parse_yaml(text: &str, dir: &Path) -> Result<AgentConfig> {
    let docs = YamlLoader::load_from_str(text)?;
    let Some(doc) = docs.first() else { bail!("empty YAML document") };
    let mut config = AgentConfig::default();
    if let Some(file) = doc["service"]["plugins_file"].as_str() {
        config.plugins.extend(read_plugins_file(&resolve(dir, file))?);
    }
    config.plugins.extend(yaml_plugins(&doc["plugins"]));
    config.inputs = yaml_sections(&doc["pipeline"]["inputs"]);
    config.outputs = yaml_sections(&doc["pipeline"]["outputs"]);
    Ok(config)
}

/// The agent's tag matching: `*` matches any run of characters.
pub fn tag_matches(pattern: &str, tag: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == tag,
        Some((head, rest)) => {
            let Some(tail) = tag.strip_prefix(head) else {
                return false;
            };
            (0..=tail.len()).filter(|i| tail.is_char_boundary(*i)).any(|i| tag_matches(rest, &tail[i..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_classic_sections_in_order() {
        let text = "[SERVICE]\n  flush 1\n[INPUT]\n  Name stdin\n  Tag app.x\n# c\n[OUTPUT]\n  Name wasm\n  Match app.*\n  wasm_path /g.wasm\n  label two words\n";
        let config = parse_classic(text, Path::new(".")).unwrap();
        assert_eq!(config.inputs[0].get("tag"), Some("app.x"));
        let out = &config.outputs[0];
        assert_eq!(out.get("NAME"), Some("wasm"));
        assert_eq!(out.get("label"), Some("two words"), "values keep inner spaces");
    }

    #[test]
    fn reads_yaml_pipeline() {
        let text = "plugins:\n  - /x/out_wasm.so\npipeline:\n  inputs:\n    - name: stdin\n      tag: app.y\n  outputs:\n    - name: wasm\n      match: '*'\n      wasm_path: /g.wasm\n      every: 5\n";
        let config = parse_yaml(text, Path::new(".")).unwrap();
        assert_eq!(config.plugins, [PathBuf::from("/x/out_wasm.so")]);
        assert_eq!(config.inputs[0].get("tag"), Some("app.y"));
        assert_eq!(config.outputs[0].get("every"), Some("5"), "integers become text");
    }

    #[test]
    fn matches_tags_like_the_agent() {
        assert!(tag_matches("*", "anything"));
        assert!(tag_matches("app.*", "app.web"));
        assert!(!tag_matches("app.*", "db.web"));
        assert!(tag_matches("a*c*e", "abcde"));
        assert!(!tag_matches("app", "app.web"));
    }
}
