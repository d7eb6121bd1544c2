//! The `cargo lambda deploy` settings in `deploy/` (issue 14) are settings each function takes:
//! read by the function's own configuration reader, every variable known, nothing warned.
//! (`scripts/check-deploy.sh` packages each function with them through `cargo lambda deploy
//! --dry`.)

use std::collections::HashMap;

fn deploy_env(function: &str) -> HashMap<String, String> {
    let path = format!("{}/deploy/{function}.toml", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let file: toml::Table = text.parse().unwrap_or_else(|e| panic!("{path}: {e}"));
    let deploy = file.get("deploy").and_then(|d| d.as_table());
    for key in ["memory", "timeout", "tracing", "role", "runtime"] {
        assert!(
            deploy.is_some_and(|d| d.contains_key(key)),
            "{path}: [deploy] {key}"
        );
    }
    deploy
        .and_then(|d| d.get("env"))
        .and_then(|e| e.as_table())
        .map(|env| {
            env.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_forwarders_deploy_settings_are_a_configuration_it_takes_without_a_warning() {
    let env = deploy_env("forwarder");
    match e2b::forwarder::config::ForwarderConfig::from_lookup(|k| env.get(k).cloned()) {
        Ok(config) => assert!(config.warnings.is_empty(), "{:?}", config.warnings),
        Err(e) => panic!("deploy/forwarder.toml: {e}"),
    }
}

#[test]
fn the_processors_deploy_settings_are_a_configuration_it_takes_without_a_warning() {
    let env = deploy_env("processor");
    match e2b::processor::config::ProcessorConfig::from_lookup(|k| env.get(k).cloned()) {
        Ok(config) => assert!(config.warnings.is_empty(), "{:?}", config.warnings),
        Err(e) => panic!("deploy/processor.toml: {e}"),
    }
}
