//! `examples/kubernetes/`: the manifests parse, and every path one of them names is where
//! another puts it: the agent config and the guests are mounted where the DaemonSet and the
//! config look for them, the guests without `subPath` (so updates reach the running agent), the
//! compile cache on an `emptyDir`, and the plugin where the image installs it.

use std::path::Path;
use std::process::Command;

use out_wasm_e2e::{guest_path, scratch_dir, workspace_root};
use yaml_rust2::{Yaml, YamlLoader};

fn load(text: &str, what: &str) -> Yaml {
    let mut docs = YamlLoader::load_from_str(text).unwrap_or_else(|err| panic!("{what} is not YAML: {err}"));
    assert_eq!(docs.len(), 1, "{what} holds one object");
    docs.remove(0)
}

fn manifest(name: &str) -> Yaml {
    let path = workspace_root().join("examples/kubernetes").join(name);
    load(&std::fs::read_to_string(&path).expect("the manifest exists"), name)
}

fn text<'a>(yaml: &'a Yaml, what: &str) -> &'a str {
    yaml.as_str().unwrap_or_else(|| panic!("{what} is a string: {yaml:?}"))
}

/// `key value` lines of the classic config's sections named `section`, keys lowercased.
fn sections(config: &str, section: &str) -> Vec<Vec<(String, String)>> {
    let mut found = Vec::new();
    let mut current: Option<Vec<(String, String)>> = None;
    for line in config.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        if line.starts_with('[') {
            found.extend(current.take());
            current = line.eq_ignore_ascii_case(&format!("[{section}]")).then(Vec::new);
        } else if let Some(entries) = &mut current {
            let (key, value) = line.split_once(char::is_whitespace).expect("a key and a value");
            entries.push((key.to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    found.extend(current);
    found
}

fn get<'a>(section: &'a [(String, String)], key: &str) -> Option<&'a str> {
    section.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// The mount path of the pod's volume that `volume_is`, checking it is mounted whole.
fn mount_of(pod: &Yaml, container: &Yaml, volume_is: impl Fn(&Yaml) -> bool, what: &str) -> String {
    let volume = pod["volumes"].as_vec().expect("volumes").iter().find(|v| volume_is(v));
    let name = text(&volume.unwrap_or_else(|| panic!("no volume for {what}"))["name"], "volume name");
    let mounts = container["volumeMounts"].as_vec().expect("volumeMounts");
    let mount =
        mounts.iter().find(|m| m["name"].as_str() == Some(name)).unwrap_or_else(|| panic!("{what} is not mounted"));
    assert!(mount["subPath"].is_badvalue(), "{what} is mounted with subPath, which the kubelet never updates");
    text(&mount["mountPath"], "mountPath").trim_end_matches('/').to_owned()
}

#[test]
fn kubernetes_manifests_reference_each_others_paths() {
    let daemonset = manifest("daemonset.yaml");
    let agent = manifest("agent-config.yaml");
    let stdout = guest_path("stdout");
    let script = workspace_root().join("examples/kubernetes/guests-configmap");
    let output = Command::new(&script).arg(&stdout).output().expect("the guests script runs");
    assert!(output.status.success(), "guests-configmap failed: {}", String::from_utf8_lossy(&output.stderr));
    let guests = load(&String::from_utf8(output.stdout).unwrap(), "the generated guests ConfigMap");

    assert_eq!(text(&daemonset["kind"], "kind"), "DaemonSet");
    assert_eq!(text(&agent["kind"], "kind"), "ConfigMap");
    assert_eq!(text(&guests["kind"], "kind"), "ConfigMap");
    for object in [&agent, &guests] {
        assert_eq!(object["metadata"]["namespace"], daemonset["metadata"]["namespace"], "one namespace");
    }
    let pod = &daemonset["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    for mount in container["volumeMounts"].as_vec().expect("volumeMounts") {
        assert!(mount["subPath"].is_badvalue(), "no mount uses subPath: {mount:?}");
    }
    let is_config_map = |name: Yaml| move |v: &Yaml| v["configMap"]["name"] == name;
    let config_dir = mount_of(pod, container, is_config_map(agent["metadata"]["name"].clone()), "the agent config");
    let guests_dir = mount_of(pod, container, is_config_map(guests["metadata"]["name"].clone()), "the guests");
    let cache_dir = mount_of(pod, container, |v| !v["emptyDir"].is_badvalue(), "the compile cache emptyDir");

    // The agent reads the config the ConfigMap holds.
    let args: Vec<&str> = container["args"].as_vec().expect("args").iter().map(|a| text(a, "arg")).collect();
    let config_path = args.iter().skip_while(|a| **a != "-c").nth(1).expect("the agent gets -c CONFIG");
    let config_key = config_path.strip_prefix(&format!("{config_dir}/")).expect("the config is in the config mount");
    let config = text(&agent["data"][config_key], "the agent config in the ConfigMap");

    // The plugins file is in the same ConfigMap and names the .so where the image puts it.
    let service = &sections(config, "SERVICE")[0];
    let plugins_path = get(service, "plugins_file").expect("plugins_file");
    let plugins_key = plugins_path.strip_prefix(&format!("{config_dir}/")).expect("plugins_file is in the mount");
    let plugins = text(&agent["data"][plugins_key], "the plugins file in the ConfigMap");
    let plugin = get(&sections(plugins, "PLUGINS")[0], "path").expect("a plugin path").to_owned();
    let dockerfile = std::fs::read_to_string(workspace_root().join("examples/kubernetes/Dockerfile")).unwrap();
    let copied = dockerfile.lines().find_map(|l| l.strip_prefix("COPY ")).expect("the Dockerfile copies the plugin");
    let (source, destination) = copied.split_once(' ').expect("COPY SOURCE DESTINATION");
    assert_eq!(destination, plugin, "the image installs out_wasm.so where plugins.conf loads it");
    assert_eq!(Path::new(source).file_name().unwrap(), "out_wasm.so", "the image copies the built plugin");

    // Every wasm output runs a guest of the guests ConfigMap, byte for byte the built one,
    // and compiles into the emptyDir.
    let outputs: Vec<_> = sections(config, "OUTPUT").into_iter().filter(|o| get(o, "name") == Some("wasm")).collect();
    assert!(!outputs.is_empty(), "the agent config has a wasm output");
    for output in &outputs {
        let wasm_path = get(output, "wasm_path").expect("wasm_path");
        let key = wasm_path.strip_prefix(&format!("{guests_dir}/")).expect("wasm_path is in the guests mount");
        let data = text(&guests["binaryData"][key], "the guest in the ConfigMap");
        assert_eq!(decode_base64(data), std::fs::read(&stdout).unwrap(), "the ConfigMap holds the built {key}");
        let cache = get(output, "wasm_cache_dir").expect("wasm_cache_dir is set");
        assert!(
            cache.starts_with(&format!("{cache_dir}/")),
            "wasm_cache_dir {cache} is inside the emptyDir {cache_dir}"
        );
    }
}

/// The compile cache (and the artifact store in it) is the pod's own in both variants: an
/// `emptyDir` (no `hostPath`, which other pods' root containers could mount and plant native
/// code in), made 0700 by an init container before the agent starts (an `emptyDir` is created
/// world-writable, which the cache's path rule refuses), with `wasm_cache_dir` inside it.
#[test]
fn the_compile_cache_is_the_pods_own_and_private_in_both_variants() {
    for (daemonset, agent) in
        [("daemonset.yaml", "agent-config.yaml"), ("registry/daemonset.yaml", "registry/agent-config.yaml")]
    {
        let pod = &manifest(daemonset)["spec"]["template"]["spec"];
        let container = &pod["containers"][0];
        let cache_dir = mount_of(pod, container, |v| !v["emptyDir"].is_badvalue(), "the compile cache emptyDir");
        let volumes = pod["volumes"].as_vec().expect("volumes");
        let cache_volume = volumes.iter().find(|v| !v["emptyDir"].is_badvalue()).unwrap();
        for volume in volumes.iter().filter(|v| !v["hostPath"].is_badvalue()) {
            let path = text(&volume["hostPath"]["path"], "hostPath");
            assert!(!path.contains("out_wasm"), "{daemonset}: the cache is on a hostPath ({path})");
        }
        let init = pod["initContainers"].as_vec().unwrap_or_else(|| panic!("{daemonset}: no initContainers"));
        let private = init.iter().any(|c| {
            let command: Vec<&str> = c["command"].as_vec().into_iter().flatten().filter_map(Yaml::as_str).collect();
            let mounted = c["volumeMounts"].as_vec().into_iter().flatten().any(|m| {
                m["name"] == cache_volume["name"]
                    && m["mountPath"].as_str().map(|p| p.trim_end_matches('/')) == Some(cache_dir.as_str())
            });
            mounted && command == ["chmod", "0700", cache_dir.as_str()]
        });
        assert!(private, "{daemonset}: no init container makes {cache_dir} 0700");
        let config_map = manifest(agent);
        let config = config_map["data"]["fluent-bit.conf"].as_str().expect("fluent-bit.conf");
        for output in sections(config, "OUTPUT").iter().filter(|o| get(o, "name") == Some("wasm")) {
            let cache = get(output, "wasm_cache_dir").expect("wasm_cache_dir is set");
            assert!(
                cache.starts_with(&format!("{cache_dir}/")),
                "{agent}: wasm_cache_dir {cache} is not in {cache_dir}"
            );
        }
    }
}

/// coreutils' decoder, as the kubelet decodes `binaryData`.
fn decode_base64(text: &str) -> Vec<u8> {
    let file = scratch_dir("kubernetes").join("guest.base64");
    std::fs::write(&file, text).unwrap();
    let output = Command::new("base64").arg("-d").arg(&file).output().expect("base64 runs");
    assert!(output.status.success(), "binaryData is base64: {}", String::from_utf8_lossy(&output.stderr));
    output.stdout
}
