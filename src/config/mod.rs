//! `ferry.toml`: targets, column aliases and defaults, read once and checked before
//! anything is sent. Everything after this module reads only the checked `Config`.
//!
//! Secrets are never written in the file: each one comes from an environment variable
//! (`*_env`) or a file (`*_file`), is read only when a run needs it, and lives in a
//! `Secret`, whose `Debug` and `Display` print `***`.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::kinds::{Kind, Vendor};
use crate::validate::phone;

mod error;
pub(crate) mod target;

pub use error::{
    BaseUrlProblem, ChoiceError, ConfigError, SecretFrom, SecretProblem, TargetProblem, TomlError,
};
pub use target::{check_base_url, SANDBOX_TARGET};
use target::{check_target, RawTarget};

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
        let fail = |from, problem| ConfigError::Secret {
            key: key.to_string(),
            from,
            problem,
        };
        let (value, from) = match self {
            SecretSource::Env(var) => {
                let value = std::env::var(var).map_err(|_| {
                    let var = var.clone();
                    fail(SecretFrom::Env, SecretProblem::Unset { var })
                })?;
                (value, SecretFrom::Env)
            }
            SecretSource::File(path) => {
                let value = std::fs::read_to_string(path)
                    .map_err(|e| fail(SecretFrom::File, SecretProblem::Unreadable(e.kind())))?;
                (value, SecretFrom::File)
            }
            SecretSource::Fixed(s) => return Ok(s.clone()),
        };
        let value = value.trim();
        if value.is_empty() {
            return Err(fail(from, SecretProblem::Empty));
        }
        if value.chars().any(char::is_control) {
            return Err(fail(from, SecretProblem::ControlCharacter));
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

/// The vendors' endpoint paths: what a target uses unless its `[paths]` says otherwise,
/// and what the sandbox serves.
pub mod endpoints {
    pub const CREATE_TASK: &str = "/api/task/do_add";
    pub const ADD_MODERATOR: &str = "/api/task/service/do_add";
    pub const ADD_PUBLISHER: &str = "/api/task/customer/do_add";
    /// The vendor's documentation does not give this one: it is the sandbox's, and a
    /// real target must configure its own.
    pub const SANDBOX_UPDATE_TASK_STATUS: &str = "/api/task/status/do_update";
    pub const AUTH_CODE: &str = "/api/auth/code";
    pub const AUTH_LOGIN: &str = "/api/auth/login";
    pub const CREATE_CALL: &str = "/eventopenapi/event/call/create";
    pub const CREATE_AGENT_SETTINGS: &str =
        "/apiaccess/CC-Management/v1/openapp/agentsettings/create";
}

impl Default for Paths {
    fn default() -> Self {
        Paths {
            create_task: endpoints::CREATE_TASK.into(),
            add_moderator: endpoints::ADD_MODERATOR.into(),
            add_publisher: endpoints::ADD_PUBLISHER.into(),
            update_task_status: None,
            auth_code: endpoints::AUTH_CODE.into(),
            auth_login: endpoints::AUTH_LOGIN.into(),
            create_call: endpoints::CREATE_CALL.into(),
            create_agent_settings: endpoints::CREATE_AGENT_SETTINGS.into(),
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

    /// A value outside its range, and the range, as the user wrote and should write them.
    #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
    #[error("{value} is out of range: give {start} to {end}")]
    pub struct OutOfRange {
        pub value: String,
        pub start: String,
        pub end: String,
    }

    /// `Ok` when `value` lies in `range`; else what to write instead (NaN is outside).
    pub fn check<T: PartialOrd + Display>(
        value: T,
        range: RangeInclusive<T>,
    ) -> Result<(), OutOfRange> {
        if range.contains(&value) {
            Ok(())
        } else {
            // `1e308` is written out in full by Display: 309 digits in a message.
            let value = value.to_string();
            let value = match value.get(..16) {
                Some(start) if value.len() > 32 => format!("{start}… ({} characters)", value.len()),
                _ => value,
            };
            Err(OutOfRange {
                value,
                start: range.start().to_string(),
                end: range.end().to_string(),
            })
        }
    }
}

/// The most requests in flight at once that ferry allows, configured or sized.
pub const MAX_CONCURRENCY: usize = *limits::CONCURRENCY.end();

type RawColumns = BTreeMap<String, BTreeMap<String, Vec<String>>>;

/// `ferry.toml` as written; each section is checked on its own.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    state: Option<PathBuf>,
    #[serde(default)]
    defaults: RawDefaults,
    #[serde(default)]
    targets: BTreeMap<String, RawTarget>,
    #[serde(default)]
    columns: RawColumns,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    timezone: Option<String>,
    country_code: Option<toml::Value>,
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
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.to_path_buf(),
            source: Arc::new(e),
        })?;
        let mut config = Config::parse(&text).map_err(|e| ConfigError::InFile {
            path: path.to_path_buf(),
            error: Box::new(e),
        })?;
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

    /// The config in `text`, checked a section at a time.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig =
            toml::from_str(text).map_err(|e| ConfigError::Toml(toml_error(text, &e)))?;
        let (timezone, country_code) = raw.defaults.check()?;
        let mut targets = BTreeMap::new();
        for (name, raw_target) in raw.targets {
            let target = check_target(&name, raw_target)?;
            targets.insert(name, target);
        }
        Ok(Config {
            path: None,
            state: raw.state,
            timezone,
            country_code,
            targets,
            columns: check_columns(raw.columns)?,
        })
    }

    /// `--target NAME`, or the one target whose vendor serves the kind.
    pub fn target_for(&self, kind: Kind, name: Option<&str>) -> Result<&Target, ConfigError> {
        let target = self.choose_target(kind, name)?;
        if target.vendor != kind.vendor() {
            return Err(ChoiceError::WrongVendor {
                name: target.name.clone(),
                vendor: target.vendor,
                kind,
            }
            .into());
        }
        if kind == Kind::TaskStatus && target.paths.update_task_status.is_none() {
            let name = target.name.clone();
            return Err(ChoiceError::NoTaskStatusPath { name }.into());
        }
        Ok(target)
    }

    fn choose_target(&self, kind: Kind, name: Option<&str>) -> Result<&Target, ChoiceError> {
        if let Some(name) = name {
            return self
                .targets
                .get(name)
                .ok_or_else(|| ChoiceError::NoSuchTarget {
                    name: name.to_string(),
                    config: self.path.clone(),
                    configured: self.targets.keys().cloned().collect(),
                });
        }
        let vendor = kind.vendor();
        let mut serving = self.targets.values().filter(|t| t.vendor == vendor);
        match (serving.next(), serving.next()) {
            (Some(t), None) => Ok(t),
            (None, _) => Err(ChoiceError::NoTarget {
                kind,
                config: self.path.clone(),
            }),
            (Some(_), Some(_)) => Err(ChoiceError::Several {
                vendor,
                configured: self.targets.keys().cloned().collect(),
            }),
        }
    }
}

impl RawDefaults {
    /// `[defaults]`: the time zone and the country code.
    fn check(self) -> Result<(Option<chrono_tz::Tz>, Option<u16>), ConfigError> {
        let timezone = (self.timezone)
            .map(|value| {
                value
                    .parse::<chrono_tz::Tz>()
                    .map_err(|_| ConfigError::Timezone { value })
            })
            .transpose()?;
        let country_code = (self.country_code)
            .map(|v| {
                let text = match &v {
                    toml::Value::String(s) => s.clone(),
                    toml::Value::Integer(n) => n.to_string(),
                    other => other.to_string(),
                };
                phone::country_code(&text, "defaults.country_code")
                    .map_err(|problem| ConfigError::CountryCode { problem })
            })
            .transpose()?;
        Ok((timezone, country_code))
    }
}

/// `[columns.<kind>]`: extra header names for fields the kind has.
fn check_columns(
    raw: RawColumns,
) -> Result<HashMap<Kind, HashMap<String, Vec<String>>>, ConfigError> {
    let mut columns = HashMap::new();
    for (name, fields) in raw {
        let kind = Kind::ALL
            .into_iter()
            .find(|k| k.name() == name || k.name().replace('-', "_") == name)
            .ok_or_else(|| ConfigError::UnknownKind { name: name.clone() })?;
        if let Some(field) = fields.keys().find(|f| !kind.fields().contains(&f.as_str())) {
            let field = field.clone();
            return Err(ConfigError::UnknownField { name, kind, field });
        }
        columns.insert(kind, fields.into_iter().collect());
    }
    Ok(columns)
}

/// A TOML error without the value it is about: toml's own rendering quotes the
/// offending line, and serde's messages quote the value ("invalid type: string \"…\""),
/// which may be a secret under a misspelled key or pasted into the wrong one.
fn toml_error(text: &str, e: &toml::de::Error) -> TomlError {
    let message = e.message();
    let unknown = message.starts_with("unknown field");
    let what = if unknown
        || ["missing field", "duplicate key"]
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
        return TomlError {
            line: None,
            key: None,
            what,
        };
    };
    let start = span.start.min(text.len());
    let line = text[..start].matches('\n').count() + 1;
    let line_start = text[..start].rfind('\n').map_or(0, |at| at + 1);
    let key_like = |key: &&str| {
        !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-. \"'".contains(c))
    };
    let key = if unknown {
        // The span is the unknown key itself; it is named with its section, which says
        // where to look.
        // In an inline table (`paths = { foo = "/x" }`) the table's key stands first.
        let end = span.end.clamp(start, text.len());
        let table = text[line_start..start]
            .split_once('=')
            .map(|(table, _)| table.trim())
            .filter(key_like);
        let section = within(section(&text[..line_start]), table.unwrap_or_default());
        Some(text[start..end].trim())
            .filter(key_like)
            .map(|key| within(Some(&section), key))
    } else {
        // The key is what stands before `=` on the value's line.
        text[line_start..start]
            .split_once('=')
            .map(|(key, _)| key.trim())
            .filter(key_like)
            .map(str::to_string)
    };
    TomlError {
        line: Some(line),
        key,
        what,
    }
}

/// The `[section]` (or `[[section]]`) the last header line of `text` opens, if any.
fn section(text: &str) -> Option<&str> {
    text.lines()
        .rev()
        .map(str::trim)
        .find(|line| line.starts_with('['))
        .map(|line| {
            let line = line.split('#').next().unwrap_or(line).trim_end();
            line.trim_matches(|c| c == '[' || c == ']').trim()
        })
}

/// `key` in `section`, dotted; either may be empty.
fn within(section: Option<&str>, key: &str) -> String {
    match section.filter(|s| !s.is_empty()) {
        Some(section) if !key.is_empty() => format!("{section}.{key}"),
        Some(section) => section.to_string(),
        None => key.to_string(),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        Config::parse(text)
            .expect_err("should be refused")
            .to_string()
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

    /// `deny_unknown_fields` names the key with its section, and lists what it could
    /// be, like the hand-written check of `paths` it replaced.
    #[test]
    fn an_unknown_key_is_named_with_its_section() {
        for (text, want) in [
            ("[defaults]\ntimezon = \"UTC\"", "line 2 (defaults.timezon): unknown field `timezon`, expected `timezone` or `country_code`"),
            ("[targets.arctos]\nbase_url = \"https://a\"\n[targets.arctos.paths]\nfoo = \"/x\"", "line 4 (targets.arctos.paths.foo): unknown field `foo`, expected one of `create_task`"),
            ("stat = \"x\"", "line 1 (stat): unknown field `stat`"),
            ("[targets.arctos]\npaths = { foo = \"/x\" }", "line 2 (targets.arctos.paths.foo): unknown field `foo`"),
        ] {
            let message = err(text);
            assert!(message.starts_with(want), "{text:?}: {message}");
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
            ("rate = 1e300", "targets.quanshi.rate: 1000000000000000… (301 characters) is out of range"),
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
            .to_string();
        assert!(message.contains("update_task_status"), "{message}");
        let message = config
            .target_for(Kind::Calls, Some("aicc"))
            .unwrap_err()
            .to_string();
        assert!(message.contains("aicc target"), "{message}");
        let message = config
            .target_for(Kind::Calls, None)
            .unwrap_err()
            .to_string();
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
            assert!(target::looks_like_a_variable_name(name), "{name}");
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
            let why = check_base_url(url).expect_err(url).to_string();
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
