//! `ferry.toml`: targets, column aliases and defaults, read once and checked before
//! anything is sent. Everything after this module reads only the checked `Config`.
//!
//! Secrets are never written in the file: each one comes from an environment variable
//! (`*_env`) or a file (`*_file`), is read only when a run needs it, and lives in a
//! `Secret`, whose `Debug` and `Display` print `***`.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::kinds::{Kind, Vendor};
use crate::validate::phone;

/// A credential. Deliberately has no way to print itself.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The only way to the value: call it where the value goes on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Where a secret comes from, as the config names it (never the value).
#[derive(Clone, PartialEq, Eq)]
pub enum SecretSource {
    Env(String),
    /// A path is never printed: what a user pasted into `token_file` may be the token.
    File(PathBuf),
    /// Built in, for the loopback sandbox only.
    Fixed(Secret),
}

impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Env(var) => f.debug_tuple("Env").field(var).finish(),
            SecretSource::File(_) => f.write_str("File(***)"),
            SecretSource::Fixed(_) => f.write_str("Fixed(***)"),
        }
    }
}

impl SecretSource {
    /// The secret; `key` is the config key without its `_env`/`_file` ending
    /// (`targets.arctos.token`). An error names the key, and the variable (whose name
    /// was checked to look like one), but never a file's path: users paste secrets into
    /// the wrong key, and the path is the value of `*_file`.
    pub fn load(&self, key: &str) -> Result<Secret, ConfigError> {
        let (value, key) = match self {
            SecretSource::Env(var) => (
                std::env::var(var).map_err(|_| {
                    ConfigError::new(format!(
                        "{key}_env: the environment variable {var} is not set (or not valid UTF-8); export it before running"
                    ))
                })?,
                format!("{key}_env"),
            ),
            SecretSource::File(path) => (
                std::fs::read_to_string(path).map_err(|e| {
                    let why = match e.kind() {
                        std::io::ErrorKind::NotFound => "does not exist".to_string(),
                        std::io::ErrorKind::InvalidData => "is not UTF-8 text".to_string(),
                        kind => format!("cannot be read ({kind})"),
                    };
                    ConfigError::new(format!(
                        "{key}_file: the file it names {why}; check the path (it is not shown \
                         here, in case a secret was written in its place)"
                    ))
                })?,
                format!("{key}_file"),
            ),
            SecretSource::Fixed(s) => return Ok(s.clone()),
        };
        let value = value.trim();
        if value.is_empty() {
            return Err(ConfigError::new(format!("{key}: the secret is empty")));
        }
        Ok(Secret::new(value))
    }
}

/// How ferry proves itself to arctos.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArctosAuth {
    Token(SecretSource),
    Login {
        license_key: SecretSource,
        user_id: String,
        client_id: String,
    },
}

/// Per-vendor credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Auth {
    Arctos(ArctosAuth),
    Quanshi {
        token: SecretSource,
    },
    Aicc {
        app_key: SecretSource,
        token: Option<SecretSource>,
    },
}

/// One `[targets.<name>]` section, checked.
#[derive(Clone, Debug)]
pub struct Target {
    pub name: String,
    pub vendor: Vendor,
    pub base_url: reqwest::Url,
    pub auth: Auth,
    /// Requests per second.
    pub rate: f64,
    pub burst: u32,
    /// Requests in flight at once; `None`: ferry sizes it from the rate and the
    /// vendor's answer time.
    pub concurrency: Option<usize>,
    pub timeout: Duration,
    pub max_retries: u32,
    pub batch_size: usize,
    pub paths: Paths,
}

/// Endpoint paths, the vendors' by default, overridable per target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Paths {
    pub create_task: String,
    pub add_moderator: String,
    pub add_publisher: String,
    pub update_task_status: Option<String>,
    pub auth_code: String,
    pub auth_login: String,
    pub create_call: String,
    pub create_agent_settings: String,
}

impl Default for Paths {
    fn default() -> Self {
        Paths {
            create_task: "/api/task/do_add".into(),
            add_moderator: "/api/task/service/do_add".into(),
            add_publisher: "/api/task/customer/do_add".into(),
            update_task_status: None,
            auth_code: "/api/auth/code".into(),
            auth_login: "/api/auth/login".into(),
            create_call: "/eventopenapi/event/call/create".into(),
            create_agent_settings: "/apiaccess/CC-Management/v1/openapp/agentsettings/create"
                .into(),
        }
    }
}

/// The checked configuration.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// Where it was read from, for messages; `None` when no file was found.
    pub path: Option<PathBuf>,
    /// The top-level `state` setting, relative to the config file's folder.
    pub state: Option<PathBuf>,
    pub timezone: Option<chrono_tz::Tz>,
    pub country_code: Option<u16>,
    pub targets: BTreeMap<String, Target>,
    /// Extra header names, by kind then canonical field.
    pub columns: HashMap<Kind, HashMap<String, Vec<String>>>,
}

/// A config problem: the message names the key and says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ConfigError {
    pub message: String,
}

impl ConfigError {
    pub fn new(message: impl Into<String>) -> Self {
        ConfigError {
            message: message.into(),
        }
    }
}

/// `path` as written in the config file at `config`: relative to the file's folder.
fn beside(config: &Path, path: &Path) -> PathBuf {
    match config.parent() {
        Some(folder) if path.is_relative() => folder.join(path),
        _ => path.to_path_buf(),
    }
}

/// The ranges numeric settings must fall in, in the config and on the command line.
/// Outside them a value is a mistake, and some would do harm deep inside: a rate of
/// 1e-20 is a 1e20-second period, which no clock holds; a concurrency of 10^18 is that
/// many tasks.
pub mod limits {
    use std::fmt::Display;
    use std::ops::RangeInclusive;

    /// Requests per second.
    pub const RATE: RangeInclusive<f64> = 0.001..=100_000.0;
    pub const BURST: RangeInclusive<u32> = 1..=100_000;
    /// Requests in flight at once (when ferry sizes it, at most 256).
    pub const CONCURRENCY: RangeInclusive<usize> = 1..=1024;
    pub const TIMEOUT_SECS: RangeInclusive<f64> = 0.1..=3_600.0;
    pub const MAX_RETRIES: RangeInclusive<u32> = 0..=100;
    /// Rows per request for the kinds that batch.
    pub const BATCH_SIZE: RangeInclusive<usize> = 1..=10_000;

    /// `Ok` when `value` lies in `range`; else what to write instead (NaN is outside).
    pub fn check<T: PartialOrd + Display>(
        value: T,
        range: RangeInclusive<T>,
    ) -> Result<(), OutOfRange> {
        if range.contains(&value) {
            Ok(())
        } else {
            Err(OutOfRange {
                value: value.to_string(),
                start: range.start().to_string(),
                end: range.end().to_string(),
            })
        }
    }

    /// A value outside its range, and the range to give instead.
    #[derive(Debug, thiserror::Error)]
    #[error("{value} is out of range: give {start} to {end}")]
    pub struct OutOfRange {
        value: String,
        start: String,
        end: String,
    }
}

/// The most requests in flight at once that ferry allows, configured or sized.
pub const MAX_CONCURRENCY: usize = *limits::CONCURRENCY.end();

/// The name `--target sandbox` uses for the built-in loopback sandbox.
pub const SANDBOX_TARGET: &str = "sandbox";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    state: Option<PathBuf>,
    #[serde(default)]
    defaults: RawDefaults,
    #[serde(default)]
    targets: BTreeMap<String, RawTarget>,
    #[serde(default)]
    columns: BTreeMap<String, BTreeMap<String, Vec<String>>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    timezone: Option<String>,
    country_code: Option<toml::Value>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    vendor: Option<Vendor>,
    base_url: Option<String>,
    token_env: Option<String>,
    token_file: Option<PathBuf>,
    license_key_env: Option<String>,
    license_key_file: Option<PathBuf>,
    login_user_id: Option<String>,
    login_client_id: Option<String>,
    app_key_env: Option<String>,
    app_key_file: Option<PathBuf>,
    rate: Option<f64>,
    burst: Option<u32>,
    concurrency: Option<usize>,
    timeout_secs: Option<f64>,
    max_retries: Option<u32>,
    batch_size: Option<usize>,
    #[serde(default)]
    paths: BTreeMap<String, String>,
    // Literal secrets are recognised only to be refused with a useful message.
    token: Option<toml::Value>,
    app_key: Option<toml::Value>,
    license_key: Option<toml::Value>,
}

impl Config {
    /// `--config F`, else `./ferry.toml`, else `$FERRY_CONFIG`, else an empty config.
    pub fn discover(explicit: Option<&Path>) -> Result<Config, ConfigError> {
        if let Some(path) = explicit {
            return Config::load(path);
        }
        let local = Path::new("ferry.toml");
        if local.exists() {
            return Config::load(local);
        }
        if let Some(path) = std::env::var_os("FERRY_CONFIG") {
            return Config::load(Path::new(&path));
        }
        Ok(Config::default())
    }

    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::new(format!("{}: cannot read the config: {e}", path.display()))
        })?;
        let mut config = Config::parse(&text)
            .map_err(|e| ConfigError::new(format!("{}: {}", path.display(), e.message)))?;
        config.state = config.state.map(|state| beside(path, &state));
        config.path = Some(path.to_path_buf());
        Ok(config)
    }

    /// Where the state lives: `--state` (`flag`), else the config's `state`, else
    /// `.ferry/state.db` beside the config file, else in the working directory — so a
    /// cron job started from another folder finds the same state.
    pub fn state_path(&self, flag: Option<&Path>) -> PathBuf {
        let default = Path::new(".ferry").join("state.db");
        match (flag, &self.state, &self.path) {
            (Some(flag), _, _) => flag.to_path_buf(),
            (None, Some(state), _) => state.clone(),
            (None, None, Some(config)) => beside(config, &default),
            (None, None, None) => default,
        }
    }

    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig =
            toml::from_str(text).map_err(|e| ConfigError::new(toml_error(text, &e)))?;
        let timezone = raw
            .defaults
            .timezone
            .map(|tz| {
                tz.parse::<chrono_tz::Tz>().map_err(|_| {
                    ConfigError::new(format!(
                        "defaults.timezone: {tz:?} is not an IANA time zone name (e.g. \"Asia/Taipei\")"
                    ))
                })
            })
            .transpose()?;
        let country_code = raw
            .defaults
            .country_code
            .map(|v| {
                let text = match &v {
                    toml::Value::String(s) => s.clone(),
                    toml::Value::Integer(n) => n.to_string(),
                    other => other.to_string(),
                };
                phone::country_code(&text, "defaults.country_code")
                    .map_err(|p| ConfigError::new(format!("defaults.country_code: {}", p.message)))
            })
            .transpose()?;
        let mut targets = BTreeMap::new();
        for (name, raw_target) in raw.targets {
            let target = check_target(&name, raw_target)?;
            targets.insert(name, target);
        }
        let mut columns = HashMap::new();
        for (kind_name, fields) in raw.columns {
            let kind = Kind::ALL
                .into_iter()
                .find(|k| k.name() == kind_name || k.name().replace('-', "_") == kind_name)
                .ok_or_else(|| {
                    ConfigError::new(format!(
                        "columns.{kind_name}: unknown kind; use one of {}",
                        Kind::ALL.map(Kind::name).join(", ")
                    ))
                })?;
            for field in fields.keys() {
                if !kind.fields().contains(&field.as_str()) {
                    return Err(ConfigError::new(format!(
                        "columns.{kind_name}.{field}: {} has no field {field:?}; its fields are {}",
                        kind.name(),
                        kind.fields().join(", ")
                    )));
                }
            }
            columns.insert(kind, fields.into_iter().collect());
        }
        Ok(Config {
            path: None,
            state: raw.state,
            timezone,
            country_code,
            targets,
            columns,
        })
    }

    /// `--target NAME`, or the one target whose vendor serves the kind.
    pub fn target_for(&self, kind: Kind, name: Option<&str>) -> Result<&Target, ConfigError> {
        let vendor = kind.vendor();
        let target = match name {
            Some(name) => self.targets.get(name).ok_or_else(|| {
                ConfigError::new(format!(
                    "--target {name}: no [targets.{name}] in {}; configured: {}",
                    self.describe_path(),
                    self.target_names()
                ))
            })?,
            None => {
                let mut serving = self.targets.values().filter(|t| t.vendor == vendor);
                match (serving.next(), serving.next()) {
                    (Some(t), None) => t,
                    (None, _) => {
                        return Err(ConfigError::new(format!(
                            "no target for {} (vendor {}) in {}: add [targets.{}] or pass --target sandbox to try it locally",
                            kind.name(),
                            vendor.name(),
                            self.describe_path(),
                            vendor.name()
                        )))
                    }
                    (Some(_), Some(_)) => {
                        return Err(ConfigError::new(format!(
                            "several {} targets are configured ({}); pick one with --target",
                            vendor.name(),
                            self.target_names()
                        )))
                    }
                }
            }
        };
        if target.vendor != vendor {
            return Err(ConfigError::new(format!(
                "--target {}: that target is a {} target, but {} goes to {}",
                target.name,
                target.vendor.name(),
                kind.name(),
                vendor.name()
            )));
        }
        if kind == Kind::TaskStatus && target.paths.update_task_status.is_none() {
            return Err(ConfigError::new(format!(
                "targets.{}.paths.update_task_status is not set: the arctos documentation does not give the updateTaskStatus path, so ferry cannot guess it. Ask the vendor and add it under [targets.{}.paths]",
                target.name, target.name
            )));
        }
        Ok(target)
    }

    fn describe_path(&self) -> String {
        match &self.path {
            Some(p) => p.display().to_string(),
            None => "the config (no ferry.toml found)".into(),
        }
    }

    fn target_names(&self) -> String {
        if self.targets.is_empty() {
            "none".into()
        } else {
            self.targets.keys().cloned().collect::<Vec<_>>().join(", ")
        }
    }
}

fn check_target(name: &str, raw: RawTarget) -> Result<Target, ConfigError> {
    let key = |k: &str| format!("targets.{name}.{k}");
    if name == SANDBOX_TARGET {
        return Err(ConfigError::new(format!(
            "targets.{name}: the name \"sandbox\" is reserved for the built-in loopback sandbox; rename the section"
        )));
    }
    for (literal, twin) in [
        (raw.token.is_some(), "token"),
        (raw.app_key.is_some(), "app_key"),
        (raw.license_key.is_some(), "license_key"),
    ] {
        if literal {
            return Err(ConfigError::new(format!(
                "{}: secrets are never written in the config; put it in an environment variable and set {twin}_env, or in a file and set {twin}_file",
                key(twin)
            )));
        }
    }
    let vendor = match (raw.vendor, name) {
        (Some(v), _) => v,
        (None, "arctos") => Vendor::Arctos,
        (None, "quanshi") => Vendor::Quanshi,
        (None, "aicc") => Vendor::Aicc,
        (None, _) => {
            return Err(ConfigError::new(format!(
                "{}: missing; say vendor = \"arctos\", \"quanshi\" or \"aicc\"",
                key("vendor")
            )))
        }
    };
    let base = raw.base_url.ok_or_else(|| {
        ConfigError::new(format!(
            "{}: missing; the vendor's https:// address",
            key("base_url")
        ))
    })?;
    let base_url = check_base_url(&base)
        .map_err(|why| ConfigError::new(format!("{}: {why}", key("base_url"))))?;
    let secret = |env: Option<String>,
                  file: Option<PathBuf>,
                  what: &str|
     -> Result<Option<SecretSource>, ConfigError> {
        match (env, file) {
            (Some(_), Some(_)) => Err(ConfigError::new(format!(
                "{} and {}: give one of them, not both",
                key(&format!("{what}_env")),
                key(&format!("{what}_file"))
            ))),
            (Some(var), None) if !looks_like_a_variable_name(&var) => Err(ConfigError::new(format!(
                "{}: this is not the name of an environment variable (letters, digits and _); it looks like the secret itself, so it is not shown here. Put the secret in a variable and name the variable (e.g. {what}_env = \"{}\"), or in a file and set {}",
                key(&format!("{what}_env")),
                format!("{}_{}", name, what).to_ascii_uppercase().replace(|c: char| !c.is_ascii_alphanumeric(), "_"),
                key(&format!("{what}_file"))
            ))),
            (Some(var), None) => Ok(Some(SecretSource::Env(var))),
            (None, Some(path)) => Ok(Some(SecretSource::File(path))),
            (None, None) => Ok(None),
        }
    };
    let token = secret(raw.token_env, raw.token_file, "token")?;
    let license = secret(raw.license_key_env, raw.license_key_file, "license_key")?;
    let app_key = secret(raw.app_key_env, raw.app_key_file, "app_key")?;
    let not_for = |what: bool, k: &str| -> Result<(), ConfigError> {
        if what {
            Err(ConfigError::new(format!(
                "{}: not used by {} targets; remove it",
                key(k),
                vendor.name()
            )))
        } else {
            Ok(())
        }
    };
    let auth = match vendor {
        Vendor::Arctos => {
            not_for(app_key.is_some(), "app_key_env")?;
            match (token, license) {
                (Some(t), None) => Auth::Arctos(ArctosAuth::Token(t)),
                (None, Some(l)) => Auth::Arctos(ArctosAuth::Login {
                    license_key: l,
                    user_id: raw.login_user_id.ok_or_else(|| {
                        ConfigError::new(format!("{}: required with license_key_env (a MODERATOR user id)", key("login_user_id")))
                    })?,
                    client_id: raw.login_client_id.unwrap_or_else(|| "arctos-webapp".into()),
                }),
                (Some(_), Some(_)) => {
                    return Err(ConfigError::new(format!(
                        "targets.{name}: give token_env/token_file or license_key_env/license_key_file, not both"
                    )))
                }
                (None, None) => {
                    return Err(ConfigError::new(format!(
                        "targets.{name}: arctos needs token_env (a static token) or license_key_env with login_user_id (to log in)"
                    )))
                }
            }
        }
        Vendor::Quanshi => {
            not_for(app_key.is_some(), "app_key_env")?;
            not_for(license.is_some(), "license_key_env")?;
            Auth::Quanshi {
                token: token.ok_or_else(|| {
                    ConfigError::new(format!(
                        "{}: required (the Quanshi API token)",
                        key("token_env")
                    ))
                })?,
            }
        }
        Vendor::Aicc => {
            not_for(license.is_some(), "license_key_env")?;
            Auth::Aicc {
                app_key: app_key.ok_or_else(|| {
                    ConfigError::new(format!(
                        "{}: required (the AICC X-APP-Key)",
                        key("app_key_env")
                    ))
                })?,
                token,
            }
        }
    };
    let checked = |name: &str, result: Result<(), limits::OutOfRange>| {
        result.map_err(|why| ConfigError::new(format!("{}: {why}", key(name))))
    };
    let rate = raw.rate.unwrap_or(10.0);
    checked("rate", limits::check(rate, limits::RATE))?;
    let burst = raw.burst.unwrap_or((rate.ceil() as u32).max(1));
    checked("burst", limits::check(burst, limits::BURST))?;
    let concurrency = raw.concurrency;
    if let Some(c) = concurrency {
        checked("concurrency", limits::check(c, limits::CONCURRENCY))?;
    }
    let timeout_secs = raw.timeout_secs.unwrap_or(30.0);
    checked(
        "timeout_secs",
        limits::check(timeout_secs, limits::TIMEOUT_SECS),
    )?;
    let max_retries = raw.max_retries.unwrap_or(5);
    checked(
        "max_retries",
        limits::check(max_retries, limits::MAX_RETRIES),
    )?;
    let batch_size = raw.batch_size.unwrap_or(match vendor {
        Vendor::Quanshi => 100,
        _ => 50,
    });
    checked("batch_size", limits::check(batch_size, limits::BATCH_SIZE))?;
    let mut paths = Paths::default();
    for (path_key, value) in raw.paths {
        if !value.starts_with('/') {
            return Err(ConfigError::new(format!(
                "{}: must start with /",
                key(&format!("paths.{path_key}"))
            )));
        }
        let slot = match path_key.as_str() {
            "create_task" => &mut paths.create_task,
            "add_moderator" => &mut paths.add_moderator,
            "add_publisher" => &mut paths.add_publisher,
            "update_task_status" => {
                paths.update_task_status = Some(value);
                continue;
            }
            "auth_code" => &mut paths.auth_code,
            "auth_login" => &mut paths.auth_login,
            "create_call" => &mut paths.create_call,
            "create_agent_settings" => &mut paths.create_agent_settings,
            _ => {
                return Err(ConfigError::new(format!(
                    "{}: unknown path; known: create_task, add_moderator, add_publisher, update_task_status, auth_code, auth_login, create_call, create_agent_settings",
                    key(&format!("paths.{path_key}"))
                )))
            }
        };
        *slot = value;
    }
    Ok(Target {
        name: name.to_string(),
        vendor,
        base_url,
        auth,
        rate,
        burst,
        concurrency,
        timeout: Duration::from_secs_f64(timeout_secs),
        max_retries,
        batch_size,
        paths,
    })
}

/// A TOML error as "line N (key): what", never quoting the value: toml's own rendering
/// quotes the offending line, and serde's messages quote the value ("invalid type:
/// string \"…\""), which may be a secret under a misspelled key or pasted into the
/// wrong one.
fn toml_error(text: &str, e: &toml::de::Error) -> String {
    let message = e.message();
    let shown = if ["unknown field", "missing field", "duplicate key"]
        .iter()
        .any(|k| message.starts_with(k))
    {
        // These quote a key, not a value.
        message.to_string()
    } else {
        let (what, expected) = match message.find(", expected") {
            Some(at) => message.split_at(at),
            None => (message, ""),
        };
        format!("{}{expected}", without_quoted(what))
    };
    let Some(span) = e.span() else {
        return shown;
    };
    let start = span.start.min(text.len());
    let line = text[..start].matches('\n').count() + 1;
    // The key is what stands before `=` on the value's line.
    let line_start = text[..start].rfind('\n').map_or(0, |at| at + 1);
    let key = text[line_start..start]
        .split_once('=')
        .map(|(key, _)| key.trim())
        .filter(|key| {
            !key.is_empty()
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-. \"'".contains(c))
        });
    match key {
        Some(key) => format!("line {line} ({key}): {shown}"),
        None => format!("line {line}: {shown}"),
    }
}

/// `text` without its `"quoted"` and `` `quoted` `` parts.
fn without_quoted(text: &str) -> String {
    let mut out = String::new();
    let mut quote = None;
    for c in text.chars() {
        match (quote, c) {
            (None, '"' | '`') => quote = Some(c),
            (None, _) => out.push(c),
            (Some(q), _) if c == q => quote = None,
            (Some(_), _) => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether a `*_env` value reads like the name of an environment variable rather than
/// like a token pasted in its place: letters, digits and `_`, not starting with a
/// digit, and not random-looking (mixed case with digits, or a long run of letters and
/// digits with no `_`, as hex and base64 tokens are).
fn looks_like_a_variable_name(value: &str) -> bool {
    let mut chars = value.chars();
    let well_formed = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && value.len() <= 64;
    if !well_formed {
        return false;
    }
    let has = |f: fn(&char) -> bool| value.chars().any(|c| f(&c));
    let digits = has(char::is_ascii_digit);
    let mixed_case = has(char::is_ascii_lowercase) && has(char::is_ascii_uppercase);
    let longest_word = value.split('_').map(str::len).max().unwrap_or(0);
    !(digits && (mixed_case || longest_word >= 20))
}

/// https anywhere; plain http only to this machine, where nothing crosses a network.
/// A URL that carries a credential (user info, or a query such as `?token=`) is refused
/// without being quoted.
///
/// No message quotes the value at all: a secret pasted into `base_url` by mistake is
/// neither a URL nor https, and would be echoed by exactly these errors.
pub fn check_base_url(base: &str) -> Result<reqwest::Url, String> {
    let userinfo = "a user name or password in the URL is a secret written in the config; remove it (the value is not shown here) and use token_env / app_key_env";
    let url = reqwest::Url::parse(base).map_err(|e| {
        if base.contains('@') {
            userinfo.to_string()
        } else {
            format!("not a URL ({e}); give the vendor's address, such as https://arctos.example.com (the value is not shown here, in case it is a secret)")
        }
    })?;
    if !url.username().is_empty() || url.password().is_some() {
        // Never echo it: the part before @ is a credential.
        return Err(userinfo.into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("a query (?…) or fragment (#…) has no place in base_url and may carry a token; remove it (the value is not shown here) and keep only https://host and any path prefix".into());
    }
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err("plain http:// would send credentials and personal data unencrypted; use https:// (http is allowed only for loopback hosts)".into())
        }
        _ => return Err("not an https:// address; use https:// (the value is not shown here, in case it is a secret)".into()),
    }
    Ok(url)
}

fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

impl Target {
    /// The built-in `--target sandbox`: loopback, with the sandbox's own credentials.
    pub fn sandbox(kind: Kind, base_url: reqwest::Url) -> Target {
        let fixed = |s: &str| SecretSource::Fixed(Secret::new(s));
        let defaults = crate::sandbox::Secrets::default();
        let vendor = kind.vendor();
        let auth = match vendor {
            Vendor::Arctos => Auth::Arctos(ArctosAuth::Token(fixed(&defaults.arctos_token))),
            Vendor::Quanshi => Auth::Quanshi {
                token: fixed(&defaults.quanshi_token),
            },
            Vendor::Aicc => Auth::Aicc {
                app_key: fixed(&defaults.aicc_app_key),
                token: None,
            },
        };
        Target {
            name: SANDBOX_TARGET.into(),
            vendor,
            base_url,
            auth,
            rate: 1000.0,
            burst: 100,
            concurrency: None,
            timeout: Duration::from_secs(10),
            max_retries: 5,
            batch_size: if vendor == Vendor::Quanshi { 100 } else { 50 },
            paths: Paths {
                update_task_status: Some("/api/task/status/do_update".into()),
                ..Paths::default()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        Config::parse(text).expect_err("should be refused").message
    }

    #[test]
    fn a_full_config_is_read_with_defaults_filled_in() {
        let config = Config::parse(
            r#"
            [defaults]
            timezone = "Asia/Taipei"
            country_code = "+886"
            [targets.arctos]
            base_url = "https://arctos.example.com/prefix"
            token_env = "ARCTOS_TOKEN"
            rate = 5
            [targets.arctos.paths]
            update_task_status = "/api/task/status/do_update"
            [targets.staging]
            vendor = "quanshi"
            base_url = "http://127.0.0.1:9000"
            token_file = "/run/secrets/quanshi"
            [columns.calls]
            mobile = ["手机", "Mobile No."]
            "#,
        )
        .unwrap();
        assert_eq!(config.timezone, Some(chrono_tz::Asia::Taipei));
        assert_eq!(config.country_code, Some(886));
        let arctos = config.target_for(Kind::TaskStatus, None).unwrap();
        assert_eq!(arctos.rate, 5.0);
        assert_eq!(arctos.burst, 5);
        assert_eq!(arctos.concurrency, None);
        assert_eq!(arctos.batch_size, 50);
        assert_eq!(arctos.timeout, Duration::from_secs(30));
        assert_eq!(
            arctos.auth,
            Auth::Arctos(ArctosAuth::Token(SecretSource::Env("ARCTOS_TOKEN".into())))
        );
        let quanshi = config.target_for(Kind::Calls, None).unwrap();
        assert_eq!(quanshi.name, "staging");
        assert_eq!(quanshi.batch_size, 100);
        assert_eq!(
            config.columns[&Kind::Calls]["mobile"],
            vec!["手机", "Mobile No."]
        );
    }

    #[test]
    fn every_mistake_names_its_key() {
        let cases = [
            ("[defaults]\ntimezon = \"UTC\"", "timezon"),
            ("[defaults]\ntimezone = \"Mars/Olympus\"", "defaults.timezone"),
            ("[defaults]\ncountry_code = \"999\"", "defaults.country_code"),
            ("[targets.arctos]\nbase_url = \"https://a\"\ntoken = \"abc123\"", "targets.arctos.token"),
            ("[targets.arctos]\nbase_url = \"http://arctos.example.com\"\ntoken_env = \"T\"", "targets.arctos.base_url"),
            ("[targets.x]\nbase_url = \"https://a\"\ntoken_env = \"T\"", "targets.x.vendor"),
            ("[targets.arctos]\ntoken_env = \"T\"", "targets.arctos.base_url"),
            ("[targets.arctos]\nbase_url = \"https://a\"", "targets.arctos"),
            ("[targets.aicc]\nbase_url = \"https://a\"", "targets.aicc.app_key_env"),
            ("[targets.arctos]\nbase_url = \"https://a\"\ntoken_env = \"T\"\nrate = 0", "targets.arctos.rate"),
            ("[targets.arctos]\nbase_url = \"https://a\"\ntoken_env = \"T\"\n[targets.arctos.paths]\nfoo = \"/x\"", "targets.arctos.paths.foo"),
            ("[targets.sandbox]\nvendor = \"arctos\"\nbase_url = \"https://a\"\ntoken_env = \"T\"", "targets.sandbox"),
            ("[columns.calls]\nmobil = [\"x\"]", "columns.calls.mobil"),
            ("[columns.meetings]\nx = [\"y\"]", "columns.meetings"),
        ];
        for (text, key) in cases {
            let message = err(text);
            assert!(
                message.contains(key),
                "{text:?}: {message:?} should name {key}"
            );
        }
    }

    /// No number reaches a clock, a pool or an allocation unchecked (issue 9: a rate of
    /// 1e-20 or a timeout of 1e20 panicked, even in `ferry validate`).
    #[test]
    fn numbers_out_of_range_are_refused_naming_the_key_and_the_range() {
        let base = "[targets.quanshi]\nbase_url = \"https://q\"\ntoken_env = \"T\"\n";
        for (line, want) in [
            ("rate = 1e-20", "targets.quanshi.rate: 0.00000000000000000001 is out of range: give 0.001 to 100000"),
            ("rate = nan", "targets.quanshi.rate: NaN is out of range"),
            ("rate = inf", "targets.quanshi.rate: inf is out of range"),
            ("rate = 0", "targets.quanshi.rate: 0 is out of range"),
            ("burst = 0", "targets.quanshi.burst: 0 is out of range: give 1 to 100000"),
            ("concurrency = 100000000", "targets.quanshi.concurrency: 100000000 is out of range: give 1 to 1024"),
            ("timeout_secs = 1e20", "targets.quanshi.timeout_secs: 100000000000000000000 is out of range: give 0.1 to 3600"),
            ("timeout_secs = 0", "targets.quanshi.timeout_secs: 0 is out of range"),
            ("max_retries = 1000", "targets.quanshi.max_retries: 1000 is out of range: give 0 to 100"),
            ("batch_size = 0", "targets.quanshi.batch_size: 0 is out of range: give 1 to 10000"),
        ] {
            let message = err(&format!("{base}{line}"));
            assert!(message.contains(want), "{line}: {message}");
        }
    }

    #[test]
    fn a_literal_secret_is_refused_without_repeating_it() {
        let message =
            err("[targets.quanshi]\nbase_url = \"https://q\"\ntoken = \"sekret-value-42\"");
        assert!(message.contains("token_env"), "{message}");
        assert!(!message.contains("sekret-value-42"), "{message}");
    }

    #[test]
    fn task_status_needs_its_path_and_targets_must_fit_the_kind() {
        let config = Config::parse(
            "[targets.arctos]\nbase_url = \"https://a\"\ntoken_env = \"T\"\n[targets.aicc]\nbase_url = \"https://b\"\napp_key_env = \"K\"",
        )
        .unwrap();
        let message = config
            .target_for(Kind::TaskStatus, None)
            .unwrap_err()
            .message;
        assert!(message.contains("update_task_status"), "{message}");
        let message = config
            .target_for(Kind::Calls, Some("aicc"))
            .unwrap_err()
            .message;
        assert!(message.contains("aicc target"), "{message}");
        let message = config.target_for(Kind::Calls, None).unwrap_err().message;
        assert!(message.contains("--target sandbox"), "{message}");
        assert!(config.target_for(Kind::Appointments, None).is_ok());
    }

    #[test]
    fn plain_http_only_for_loopback() {
        assert!(check_base_url("http://127.0.0.1:8080").is_ok());
        assert!(check_base_url("http://localhost:8080").is_ok());
        assert!(check_base_url("http://[::1]:8080").is_ok());
        assert!(check_base_url("https://arctos.example.com").is_ok());
        assert!(check_base_url("http://10.0.0.5").is_err());
        assert!(check_base_url("http://127.0.0.1.example.com").is_err());
        assert!(check_base_url("ftp://x").is_err());
    }

    /// Issue 9: a token pasted as the value of `token_env` was quoted back by the
    /// "variable not set" error.
    #[test]
    fn a_token_pasted_as_a_variable_name_is_refused_without_repeating_it() {
        for value in [
            "sk-live-4f9a8b7c6d5e",
            "d41d8cd98f00b204e9800998ecf8427e",
            "aB3dE5fG7hJ9kL1m",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig",
            "dG9rZW4vdmFsdWU=",
        ] {
            for key in ["token_env", "app_key_env"] {
                let other = if key == "token_env" {
                    "app_key_env = \"K\"\n"
                } else {
                    ""
                };
                let message = err(&format!(
                    "[targets.aicc]\nbase_url = \"https://a\"\n{other}{key} = \"{value}\"\n"
                ));
                assert!(!message.contains(value), "{message}");
                assert!(
                    message.contains(&format!("targets.aicc.{key}")),
                    "{message}"
                );
            }
        }
        for name in [
            "ARCTOS_TOKEN",
            "arctos_token",
            "QUANSHI_TOKEN_2024",
            "_X",
            "FERRY_VT_T_123_4",
        ] {
            assert!(looks_like_a_variable_name(name), "{name}");
        }
    }

    #[test]
    fn a_value_of_the_wrong_type_is_refused_naming_the_key_not_the_value() {
        for (line, key) in [
            ("token_env = 123456789", "token_env"),
            ("rate = \"sekret-rate\"", "rate"),
            ("vendor = \"sekret-vendor\"", "vendor"),
            ("login_user_id = 987654321", "login_user_id"),
            ("burst = -424242", "burst"),
        ] {
            let message = err(&format!(
                "[targets.arctos]\nbase_url = \"https://a\"\n{line}\n"
            ));
            assert!(message.contains(&format!("({key})")), "{message}");
            for shown in ["sekret", "123456789", "987654321", "424242"] {
                assert!(!message.contains(shown), "{line}: {message}");
            }
        }
    }

    #[test]
    fn a_base_url_with_a_credential_is_refused_without_quoting_it() {
        for url in [
            "https://ops:sekret@arctos.example.com",
            "https://ops:sekret@arctos.example.com:99999",
            "https://arctos.example.com/api?token=sekret",
            "https://arctos.example.com/#sekret",
        ] {
            let why = check_base_url(url).expect_err(url);
            assert!(!why.contains("sekret"), "{why}");
        }
    }

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("sekret");
        assert_eq!(format!("{s:?} {s}"), "*** ***");
        for source in [SecretSource::Fixed(s), SecretSource::File("sekret".into())] {
            assert!(!format!("{source:?}").contains("sekret"));
        }
    }
}
