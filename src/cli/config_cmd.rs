//! `provd config show`, and the list of `PROVD_*` variables in `provd --help`.

use std::path::Path;

use anyhow::Result;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;

use super::output::Output;
use crate::config::{redact_url, Config, Overrides};

/// The text after `provd --help`: every configuration key with its variable and default, and
/// the variables that are not configuration keys.
pub fn env_help() -> String {
    let mut text = String::from(
        "Configuration: defaults, then provd.toml (or --config / PROVD_CONFIG), then PROVD_* \
         environment variables, then flags. Unknown keys and PROVD_* variables are refused.\n\
         `provd config show` prints the effective values and where each comes from.\n\n\
         Configuration keys (file key / environment variable [default]):\n",
    );
    for (key, value) in defaults() {
        let shown = match value {
            serde_json::Value::Null => "unset".to_owned(),
            serde_json::Value::String(s) => format!("{s:?}"),
            other => other.to_string(),
        };
        text.push_str(&format!(
            "  {key:<28} PROVD_{:<28} [{shown}]\n",
            key.to_uppercase()
        ));
    }
    text.push_str(
        "\nOther variables:\n  PROVD_CONFIG                 the configuration file [provd.toml when present]\n  \
         PROVD_LOG                    log filter, e.g. debug or provd=trace [info]\n",
    );
    text
}

fn defaults() -> Vec<(String, serde_json::Value)> {
    match serde_json::to_value(Config::default()) {
        Ok(serde_json::Value::Object(map)) => map.into_iter().collect(),
        _ => Vec::new(),
    }
}

/// The configuration figment as [`Config::load`] builds it (same sources, same order), kept
/// to ask where each value came from.
fn figment(file: Option<&Path>, overrides: &Overrides) -> Figment {
    let mut fig = Figment::from(Serialized::defaults(Config::default()));
    fig = match file {
        Some(path) => fig.merge(Toml::file(path)),
        None => fig.merge(Toml::file("provd.toml")),
    };
    fig.merge(Env::prefixed("PROVD_").ignore(&["config"]))
        .merge(Serialized::defaults(overrides))
}

/// Whether the value of `key` is a secret or may hold one.
fn redacted(key: &str, value: &serde_json::Value) -> serde_json::Value {
    match (key, value) {
        (_, serde_json::Value::Null) => serde_json::Value::Null,
        ("master_key", _) => "(set, redacted)".into(),
        (k, serde_json::Value::String(s)) if k.ends_with("_url") => redact_url(s).into(),
        (_, v) => v.clone(),
    }
}

/// `provd config show`: the effective configuration, secrets redacted, and each value's
/// source.
pub fn show(
    config: &Config,
    file: Option<&Path>,
    overrides: &Overrides,
    out: &Output,
) -> Result<()> {
    let fig = figment(file, overrides);
    let serde_json::Value::Object(values) = serde_json::to_value(config)? else {
        anyhow::bail!("configuration is not an object");
    };
    let flagged = serde_json::to_value(overrides)?;
    let rows: Vec<serde_json::Value> = values
        .iter()
        .map(|(key, value)| {
            let source = if flagged.get(key).is_some() {
                "command line".to_owned()
            } else {
                match fig.find_metadata(key) {
                    Some(m) => match &m.source {
                        Some(figment::Source::File(p)) => format!("file {}", p.display()),
                        _ if m.name.contains("environment") => {
                            format!("environment PROVD_{}", key.to_uppercase())
                        }
                        _ => "default".to_owned(),
                    },
                    None => "default".to_owned(),
                }
            };
            serde_json::json!({
                "key": key,
                "value": redacted(key, value),
                "source": source,
            })
        })
        .collect();
    out.list(&rows, &["key", "value", "source"], |r| {
        vec![
            super::output::plain(&r["key"]),
            super::output::plain(&r["value"]),
            super::output::plain(&r["source"]),
        ]
    });
    Ok(())
}
