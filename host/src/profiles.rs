//! Client profiles: a config file naming servers with their token and
//! namespace, so `weft --profile prod runs` needs no environment. The file
//! is `$WEFT_CONFIG`, else `$XDG_CONFIG_HOME/weft/config.json`, else
//! `~/.config/weft/config.json`:
//!
//! ```json
//! { "default": "prod",
//!   "profiles": { "prod": { "server": "https://weft.example:7411",
//!                           "token": "weft_…", "namespace": "team-a" } } }
//! ```
//!
//! Over TLS a profile may also name `ca_cert` (PEM CAs to trust besides the
//! system's), and `client_cert` with `client_key` (mTLS).
//!
//! The environment (`WEFT_SERVER`, `WEFT_TOKEN`, `WEFT_NAMESPACE`,
//! `WEFT_CA_CERT`, `WEFT_CLIENT_CERT`, `WEFT_CLIENT_KEY`) and flags
//! override a profile.

use anyhow::{Context as _, bail};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub server: Option<String>,
    pub token: Option<String>,
    pub namespace: Option<String>,
    /// PEM CA certificates to trust for an `https://` server.
    pub ca_cert: Option<String>,
    /// A client certificate and its key (PEM), for servers that take them.
    pub client_cert: Option<String>,
    pub client_key: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    default: Option<String>,
    #[serde(default)]
    profiles: BTreeMap<String, Profile>,
}

fn config_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("WEFT_CONFIG") {
        return Some(PathBuf::from(path));
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("weft").join("config.json"))
}

/// The profile `name` (else the file's default, else none) from the
/// config file, if there is one.
pub fn load(name: Option<&str>) -> anyhow::Result<Profile> {
    let Some(path) = config_path() else {
        return Ok(Profile::default());
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && name.is_none() => {
            return Ok(Profile::default());
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let mut config: Config = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a weft config", path.display()))?;
    let Some(name) = name.map(str::to_string).or(config.default.clone()) else {
        return Ok(Profile::default());
    };
    match config.profiles.remove(&name) {
        Some(profile) => Ok(profile),
        None => bail!(
            "{} has no profile `{name}` (it has: {})",
            path.display(),
            config
                .profiles
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}
