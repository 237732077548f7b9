//! What can be wrong with a config, as data: each variant carries the key and what
//! happened, and `Display` builds the message the user reads. No message quotes a
//! secret, a `*_file` path or a `base_url`: users paste secrets into the wrong key.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use crate::kinds::{Kind, Vendor};
use crate::problem::Problem;

use super::limits::OutOfRange;

/// A config problem: the message names the key and says what to do.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: cannot read the config: {source}", path.display())]
    Read {
        path: PathBuf,
        source: Arc<io::Error>,
    },
    /// A problem found in the file at `path`.
    #[error("{}: {error}", path.display())]
    InFile {
        path: PathBuf,
        error: Box<ConfigError>,
    },
    #[error("{0}")]
    Toml(TomlError),
    #[error("defaults.timezone: {value:?} is not an IANA time zone name (e.g. \"Asia/Taipei\")")]
    Timezone { value: String },
    #[error("defaults.country_code: {}", problem.message)]
    CountryCode { problem: Problem },
    #[error("columns.{name}: unknown kind; use one of {}", Kind::ALL.map(Kind::name).join(", "))]
    UnknownKind { name: String },
    #[error(
        "columns.{name}.{field}: {} has no field {field:?}; its fields are {}",
        kind.name(),
        kind.fields().join(", ")
    )]
    UnknownField {
        name: String,
        kind: Kind,
        field: String,
    },
    /// A `[targets.<name>]` section that cannot be used.
    #[error("{}", problem.describe(name))]
    Target {
        name: String,
        problem: TargetProblem,
    },
    /// A secret named by `key` (`targets.arctos.token`) that cannot be loaded.
    #[error("{key}_{from}: {problem}")]
    Secret {
        key: String,
        from: SecretFrom,
        problem: SecretProblem,
    },
    #[error(transparent)]
    Choice(#[from] ChoiceError),
    #[error("cannot set up the HTTP client: {0}")]
    HttpClient(Arc<reqwest::Error>),
    #[error("rate: too high")]
    RateTooHigh,
}

/// A TOML error as "line N (key): what", never quoting the value: toml's own rendering
/// quotes the offending line, and serde's messages quote the value ("invalid type:
/// string \"…\""), which may be a secret under a misspelled key or pasted into the
/// wrong one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TomlError {
    /// Where the parser stopped, when it says.
    pub line: Option<usize>,
    /// The key on that line, with its section for an unknown key.
    pub key: Option<String>,
    /// The parser's words, quoted parts removed unless they quote a key. The parser's
    /// own error is not kept: its `Debug` quotes the line, value and all.
    pub what: String,
}

impl fmt::Display for TomlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, &self.key) {
            (Some(line), Some(key)) => write!(f, "line {line} ({key}): {}", self.what),
            (Some(line), None) => write!(f, "line {line}: {}", self.what),
            (None, _) => f.write_str(&self.what),
        }
    }
}

/// What is wrong with one `[targets.<name>]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetProblem {
    /// The name `sandbox` belongs to `--target sandbox`.
    Reserved,
    /// `token`, `app_key` or `license_key` written literally.
    LiteralSecret {
        twin: &'static str,
    },
    NoVendor,
    NoBaseUrl,
    BaseUrl(BaseUrlProblem),
    /// Both `{what}_env` and `{what}_file`.
    TwoSources {
        what: &'static str,
    },
    /// `{what}_env` holds what looks like the secret, not a variable's name.
    NotAVariable {
        what: &'static str,
    },
    /// A key this vendor does not use.
    NotFor {
        key: &'static str,
        vendor: Vendor,
    },
    /// A key required here: `why` says what it holds.
    Required {
        key: &'static str,
        why: &'static str,
    },
    /// arctos with a token and a license key.
    TokenAndLogin,
    /// arctos with neither.
    NoArctosAuth,
    OutOfRange {
        key: &'static str,
        range: OutOfRange,
    },
    /// `paths.<key>` that is not a path from the root.
    RelativePath {
        key: &'static str,
    },
}

impl TargetProblem {
    fn describe(&self, name: &str) -> String {
        let key = |k: &str| format!("targets.{name}.{k}");
        match self {
            TargetProblem::Reserved => format!(
                "targets.{name}: the name \"sandbox\" is reserved for the built-in loopback sandbox; rename the section"
            ),
            TargetProblem::LiteralSecret { twin } => format!(
                "{}: secrets are never written in the config; put it in an environment variable and set {twin}_env, or in a file and set {twin}_file",
                key(twin)
            ),
            TargetProblem::NoVendor => format!(
                "{}: missing; say vendor = \"arctos\", \"quanshi\" or \"aicc\"",
                key("vendor")
            ),
            TargetProblem::NoBaseUrl => {
                format!("{}: missing; the vendor's https:// address", key("base_url"))
            }
            TargetProblem::BaseUrl(why) => format!("{}: {why}", key("base_url")),
            TargetProblem::TwoSources { what } => format!(
                "{} and {}: give one of them, not both",
                key(&format!("{what}_env")),
                key(&format!("{what}_file"))
            ),
            TargetProblem::NotAVariable { what } => format!(
                "{}: this is not the name of an environment variable (letters, digits and _); it looks like the secret itself, so it is not shown here. Put the secret in a variable and name the variable (e.g. {what}_env = \"{}\"), or in a file and set {}",
                key(&format!("{what}_env")),
                format!("{name}_{what}")
                    .to_ascii_uppercase()
                    .replace(|c: char| !c.is_ascii_alphanumeric(), "_"),
                key(&format!("{what}_file"))
            ),
            TargetProblem::NotFor { key: k, vendor } => format!(
                "{}: not used by {} targets; remove it",
                key(k),
                vendor.name()
            ),
            TargetProblem::Required { key: k, why } => format!("{}: required {why}", key(k)),
            TargetProblem::TokenAndLogin => format!(
                "targets.{name}: give token_env/token_file or license_key_env/license_key_file, not both"
            ),
            TargetProblem::NoArctosAuth => format!(
                "targets.{name}: arctos needs token_env (a static token) or license_key_env with login_user_id (to log in)"
            ),
            TargetProblem::OutOfRange { key: k, range } => format!("{}: {range}", key(k)),
            TargetProblem::RelativePath { key: k } => {
                format!("{}: must start with /", key(&format!("paths.{k}")))
            }
        }
    }
}

/// Why a `base_url` is refused. No message quotes the value at all: a secret pasted
/// into `base_url` by mistake is neither a URL nor https, and would be echoed by exactly
/// these errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BaseUrlProblem {
    #[error("a user name or password in the URL is a secret written in the config; remove it (the value is not shown here) and use token_env / app_key_env")]
    UserInfo,
    #[error("not a URL ({0}); give the vendor's address, such as https://arctos.example.com (the value is not shown here, in case it is a secret)")]
    NotAUrl(url::ParseError),
    #[error("a query (?…) or fragment (#…) has no place in base_url and may carry a token; remove it (the value is not shown here) and keep only https://host and any path prefix")]
    QueryOrFragment,
    #[error("plain http:// would send credentials and personal data unencrypted; use https:// (http is allowed only for loopback hosts)")]
    PlainHttp,
    #[error("not an https:// address; use https:// (the value is not shown here, in case it is a secret)")]
    NotHttps,
}

/// Which twin of a secret's key names its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretFrom {
    Env,
    File,
}

impl fmt::Display for SecretFrom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SecretFrom::Env => "env",
            SecretFrom::File => "file",
        })
    }
}

/// Why a secret could not be loaded. A file's path is never part of it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretProblem {
    #[error(
        "the environment variable {var} is not set (or not valid UTF-8); export it before running"
    )]
    Unset { var: String },
    #[error("the file it names {}; check the path (it is not shown here, in case a secret was written in its place)", unreadable(*.0))]
    Unreadable(io::ErrorKind),
    #[error("the secret is empty")]
    Empty,
    /// A line break or other control character: a file of two lines, a value pasted
    /// with its newline. No vendor can be sent it in a header, and a request that cannot
    /// be built would look like a vendor that does not answer.
    #[error("the secret holds a control character (a line break inside it?), which cannot be sent; check the value (it is not shown here)")]
    ControlCharacter,
}

fn unreadable(kind: io::ErrorKind) -> String {
    match kind {
        io::ErrorKind::NotFound => "does not exist".to_string(),
        io::ErrorKind::InvalidData => "is not UTF-8 text".to_string(),
        kind => format!("cannot be read ({kind})"),
    }
}

/// Why no target fits a command: `config` is where the config was read from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChoiceError {
    #[error(
        "--target {name}: no [targets.{name}] in {}; configured: {}",
        described(config),
        names(configured)
    )]
    NoSuchTarget {
        name: String,
        config: Option<PathBuf>,
        configured: Vec<String>,
    },
    #[error(
        "no target for {} (vendor {}) in {}: add [targets.{}] or pass --target sandbox to try it locally",
        kind.name(),
        kind.vendor().name(),
        described(config),
        kind.vendor().name()
    )]
    NoTarget { kind: Kind, config: Option<PathBuf> },
    #[error("several {} targets are configured ({}); pick one with --target", vendor.name(), names(configured))]
    Several {
        vendor: Vendor,
        configured: Vec<String>,
    },
    #[error(
        "--target {name}: that target is a {} target, but {} goes to {}",
        vendor.name(),
        kind.name(),
        kind.vendor().name()
    )]
    WrongVendor {
        name: String,
        vendor: Vendor,
        kind: Kind,
    },
    #[error("targets.{name}.paths.update_task_status is not set: the arctos documentation does not give the updateTaskStatus path, so ferry cannot guess it. Ask the vendor and add it under [targets.{name}.paths]")]
    NoTaskStatusPath { name: String },
}

fn described(config: &Option<PathBuf>) -> String {
    match config {
        Some(p) => p.display().to_string(),
        None => "the config (no ferry.toml found)".into(),
    }
}

fn names(configured: &[String]) -> String {
    if configured.is_empty() {
        "none".into()
    } else {
        configured.join(", ")
    }
}
