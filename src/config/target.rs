//! One `[targets.<name>]` section: read by serde, then checked a part at a time — the
//! name, the vendor and its address, the credentials, the sending limits, the paths —
//! into a `Target`. Every refusal is a `TargetProblem`, which names the key.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::error::{BaseUrlProblem, ConfigError, TargetProblem};
use super::{limits, ArctosAuth, Auth, Paths, SecretSource, Target};
use crate::kinds::Vendor;

/// The name `--target sandbox` uses for the built-in loopback sandbox.
pub const SANDBOX_TARGET: &str = "sandbox";

/// What a target gets for the settings its section leaves out.
pub(crate) mod defaults {
    use crate::kinds::Vendor;

    pub const RATE: f64 = 10.0;
    pub const TIMEOUT_SECS: f64 = 30.0;
    pub const MAX_RETRIES: u32 = 5;
    pub const LOGIN_CLIENT_ID: &str = "arctos-webapp";

    /// A burst of one second's requests.
    pub fn burst(rate: f64) -> u32 {
        (rate.ceil() as u32).max(1)
    }

    /// Quanshi takes up to 100 calls a request; arctos publishers go 50 at a time.
    pub fn batch_size(vendor: Vendor) -> usize {
        match vendor {
            Vendor::Quanshi => 100,
            _ => 50,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTarget {
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
    paths: RawPaths,
    // Literal secrets are recognised only to be refused with a useful message.
    token: Option<toml::Value>,
    app_key: Option<toml::Value>,
    license_key: Option<toml::Value>,
}

/// `[targets.<name>.paths]`: each one the vendor's unless given.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPaths {
    create_task: Option<String>,
    add_moderator: Option<String>,
    add_publisher: Option<String>,
    update_task_status: Option<String>,
    auth_code: Option<String>,
    auth_login: Option<String>,
    create_call: Option<String>,
    create_agent_settings: Option<String>,
}

/// The section `[targets.<name>]`, checked.
pub(super) fn check_target(name: &str, raw: RawTarget) -> Result<Target, ConfigError> {
    check(name, raw).map_err(|problem| ConfigError::Target {
        name: name.to_string(),
        problem,
    })
}

fn check(name: &str, raw: RawTarget) -> Result<Target, TargetProblem> {
    if name == SANDBOX_TARGET {
        return Err(TargetProblem::Reserved);
    }
    refuse_literal_secrets(&raw)?;
    let vendor = vendor(name, raw.vendor)?;
    let base = raw.base_url.as_deref().ok_or(TargetProblem::NoBaseUrl)?;
    let base_url = check_base_url(base).map_err(TargetProblem::BaseUrl)?;
    let auth = auth(vendor, &raw)?;
    let numbers = Numbers::of(&raw, vendor);
    numbers.check()?;
    Ok(Target {
        name: name.to_string(),
        vendor,
        base_url,
        auth,
        rate: numbers.rate,
        burst: numbers.burst,
        concurrency: numbers.concurrency,
        timeout: Duration::from_secs_f64(numbers.timeout_secs),
        max_retries: numbers.max_retries,
        batch_size: numbers.batch_size,
        paths: raw.paths.check()?,
    })
}

fn refuse_literal_secrets(raw: &RawTarget) -> Result<(), TargetProblem> {
    for (literal, twin) in [
        (raw.token.is_some(), "token"),
        (raw.app_key.is_some(), "app_key"),
        (raw.license_key.is_some(), "license_key"),
    ] {
        if literal {
            return Err(TargetProblem::LiteralSecret { twin });
        }
    }
    Ok(())
}

/// The vendor: as given, or implied by a section named after one.
fn vendor(name: &str, given: Option<Vendor>) -> Result<Vendor, TargetProblem> {
    match (given, name) {
        (Some(v), _) => Ok(v),
        (None, "arctos") => Ok(Vendor::Arctos),
        (None, "quanshi") => Ok(Vendor::Quanshi),
        (None, "aicc") => Ok(Vendor::Aicc),
        (None, _) => Err(TargetProblem::NoVendor),
    }
}

/// The credentials the vendor needs, and none it does not use.
fn auth(vendor: Vendor, raw: &RawTarget) -> Result<Auth, TargetProblem> {
    let token = secret(&raw.token_env, &raw.token_file, "token")?;
    let license = secret(&raw.license_key_env, &raw.license_key_file, "license_key")?;
    let app_key = secret(&raw.app_key_env, &raw.app_key_file, "app_key")?;
    let not_for = |given: bool, key: &'static str| match given {
        true => Err(TargetProblem::NotFor { key, vendor }),
        false => Ok(()),
    };
    let required =
        |source: Option<SecretSource>, key, why| source.ok_or(TargetProblem::Required { key, why });
    Ok(match vendor {
        Vendor::Arctos => {
            not_for(app_key.is_some(), "app_key_env")?;
            Auth::Arctos(arctos_auth(token, license, raw)?)
        }
        Vendor::Quanshi => {
            not_for(app_key.is_some(), "app_key_env")?;
            not_for(license.is_some(), "license_key_env")?;
            let token = required(token, "token_env", "(the Quanshi API token)")?;
            Auth::Quanshi { token }
        }
        Vendor::Aicc => {
            not_for(license.is_some(), "license_key_env")?;
            let app_key = required(app_key, "app_key_env", "(the AICC X-APP-Key)")?;
            Auth::Aicc { app_key, token }
        }
    })
}

/// arctos takes a static token, or a license key to log in with.
fn arctos_auth(
    token: Option<SecretSource>,
    license: Option<SecretSource>,
    raw: &RawTarget,
) -> Result<ArctosAuth, TargetProblem> {
    match (token, license) {
        (Some(t), None) => Ok(ArctosAuth::Token(t)),
        (None, Some(license_key)) => Ok(ArctosAuth::Login {
            license_key,
            user_id: raw.login_user_id.clone().ok_or(TargetProblem::Required {
                key: "login_user_id",
                why: "with license_key_env (a MODERATOR user id)",
            })?,
            client_id: (raw.login_client_id.as_deref())
                .unwrap_or(defaults::LOGIN_CLIENT_ID)
                .into(),
        }),
        (Some(_), Some(_)) => Err(TargetProblem::TokenAndLogin),
        (None, None) => Err(TargetProblem::NoArctosAuth),
    }
}

/// Where the secret `{what}` comes from: `{what}_env` or `{what}_file`, one at most.
fn secret(
    env: &Option<String>,
    file: &Option<PathBuf>,
    what: &'static str,
) -> Result<Option<SecretSource>, TargetProblem> {
    match (env, file) {
        (Some(_), Some(_)) => Err(TargetProblem::TwoSources { what }),
        (Some(var), None) if !looks_like_a_variable_name(var) => {
            Err(TargetProblem::NotAVariable { what })
        }
        (Some(var), None) => Ok(Some(SecretSource::Env(var.clone()))),
        (None, Some(path)) => Ok(Some(SecretSource::File(path.clone()))),
        (None, None) => Ok(None),
    }
}

/// The sending settings of a section, defaults filled in.
struct Numbers {
    rate: f64,
    burst: u32,
    concurrency: Option<usize>,
    timeout_secs: f64,
    max_retries: u32,
    batch_size: usize,
}

impl Numbers {
    fn of(raw: &RawTarget, vendor: Vendor) -> Numbers {
        let rate = raw.rate.unwrap_or(defaults::RATE);
        Numbers {
            rate,
            burst: raw.burst.unwrap_or_else(|| defaults::burst(rate)),
            concurrency: raw.concurrency,
            timeout_secs: raw.timeout_secs.unwrap_or(defaults::TIMEOUT_SECS),
            max_retries: raw.max_retries.unwrap_or(defaults::MAX_RETRIES),
            batch_size: raw.batch_size.unwrap_or(defaults::batch_size(vendor)),
        }
    }

    /// Each number in its range (`limits`), in the order the section lists them.
    fn check(&self) -> Result<(), TargetProblem> {
        let out = |key| move |range| TargetProblem::OutOfRange { key, range };
        limits::check(self.rate, limits::RATE).map_err(out("rate"))?;
        limits::check(self.burst, limits::BURST).map_err(out("burst"))?;
        if let Some(c) = self.concurrency {
            limits::check(c, limits::CONCURRENCY).map_err(out("concurrency"))?;
        }
        limits::check(self.timeout_secs, limits::TIMEOUT_SECS).map_err(out("timeout_secs"))?;
        limits::check(self.max_retries, limits::MAX_RETRIES).map_err(out("max_retries"))?;
        limits::check(self.batch_size, limits::BATCH_SIZE).map_err(out("batch_size"))?;
        Ok(())
    }
}

impl RawPaths {
    fn check(self) -> Result<Paths, TargetProblem> {
        let default = Paths::default();
        let path = |key: &'static str, given: Option<String>, default: String| match given {
            Some(path) if !path.starts_with('/') => Err(TargetProblem::RelativePath { key }),
            given => Ok(given.unwrap_or(default)),
        };
        Ok(Paths {
            add_moderator: path("add_moderator", self.add_moderator, default.add_moderator)?,
            add_publisher: path("add_publisher", self.add_publisher, default.add_publisher)?,
            auth_code: path("auth_code", self.auth_code, default.auth_code)?,
            auth_login: path("auth_login", self.auth_login, default.auth_login)?,
            create_agent_settings: path(
                "create_agent_settings",
                self.create_agent_settings,
                default.create_agent_settings,
            )?,
            create_call: path("create_call", self.create_call, default.create_call)?,
            create_task: path("create_task", self.create_task, default.create_task)?,
            update_task_status: (self.update_task_status)
                .map(|given| path("update_task_status", Some(given), String::new()))
                .transpose()?,
        })
    }
}

/// Whether a `*_env` value reads like the name of an environment variable rather than
/// like a token pasted in its place: letters, digits and `_`, not starting with a
/// digit, and not random-looking (mixed case with digits, or a long run of letters and
/// digits with no `_`, as hex and base64 tokens are).
pub(super) fn looks_like_a_variable_name(value: &str) -> bool {
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
pub fn check_base_url(base: &str) -> Result<reqwest::Url, BaseUrlProblem> {
    let url = reqwest::Url::parse(base).map_err(|e| {
        if base.contains('@') {
            BaseUrlProblem::UserInfo
        } else {
            BaseUrlProblem::NotAUrl(e)
        }
    })?;
    if !url.username().is_empty() || url.password().is_some() {
        // Never echo it: the part before @ is a credential.
        return Err(BaseUrlProblem::UserInfo);
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(BaseUrlProblem::QueryOrFragment);
    }
    match url.scheme() {
        "https" => Ok(url),
        "http" if is_loopback(&url) => Ok(url),
        "http" => Err(BaseUrlProblem::PlainHttp),
        _ => Err(BaseUrlProblem::NotHttps),
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}
