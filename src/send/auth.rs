//! The credentials of a run: loaded once before the first row is sent, learned by the
//! scrubber before they are used, and replaced by a new arctos login when a token is
//! refused. What the arctos login sends and how its answers read lives in
//! `targets::arctos`; here it is carried out, under the rate limit and with retries.

use super::{step::Course, Abort, Sender};
use crate::config::{ArctosAuth, Auth, Secret, SecretSource};
use crate::outcome::Trail;
use crate::targets::arctos::{self, LoginStep, LoginVerdict};
use crate::targets::{Credentials, Request};

impl Sender {
    /// Whether a refused token can be replaced by logging in again.
    pub(super) fn can_log_in(&self) -> bool {
        matches!(self.target.auth, Auth::Arctos(ArctosAuth::Login { .. }))
    }

    /// The current credentials and their generation; with `stale = Some(generation)`,
    /// replaced by a new login unless another request already did that.
    pub(super) async fn credentials(
        &self,
        stale: Option<u64>,
    ) -> Result<(u64, Credentials), Abort> {
        let mut slot = self.credentials.lock().await;
        if let Some((generation, creds)) = slot.as_ref() {
            if stale != Some(*generation) {
                return Ok((*generation, creds.clone()));
            }
        }
        let generation = slot.as_ref().map_or(0, |(g, _)| g + 1);
        let creds = self.load_credentials().await?;
        *slot = Some((generation, creds.clone()));
        Ok((generation, creds))
    }

    /// One secret of the target's config, learned for scrubbing at once.
    fn load(&self, source: &SecretSource, key: &str) -> Result<Secret, Abort> {
        let secret = source
            .load(&format!("targets.{}.{key}", self.target.name))
            .map_err(Abort::Config)?;
        self.learn(&secret);
        Ok(secret)
    }

    async fn load_credentials(&self) -> Result<Credentials, Abort> {
        Ok(match &self.target.auth {
            Auth::Arctos(ArctosAuth::Token(t)) => Credentials {
                bearer: Some(self.load(t, "token")?),
                ..Credentials::default()
            },
            Auth::Arctos(ArctosAuth::Login {
                license_key,
                user_id,
                client_id,
            }) => {
                let key = self.load(license_key, "license_key")?;
                let token = self.log_in(&key, user_id, client_id).await?;
                Credentials {
                    bearer: Some(token),
                    ..Credentials::default()
                }
            }
            Auth::Quanshi { token } => Credentials {
                body_token: Some(self.load(token, "token")?),
                ..Credentials::default()
            },
            Auth::Aicc { app_key, token } => Credentials {
                app_key: Some(self.load(app_key, "app_key")?),
                bearer: token.as_ref().map(|t| self.load(t, "token")).transpose()?,
                ..Credentials::default()
            },
        })
    }

    /// arctos: license key → authorization code → access token. The code expires in
    /// ten minutes, so it is exchanged at once.
    async fn log_in(
        &self,
        license_key: &Secret,
        user_id: &str,
        client_id: &str,
    ) -> Result<Secret, Abort> {
        let request = arctos::code_request(&self.target, license_key, user_id);
        let code = self.login_step(LoginStep::Code, &request).await?;
        let request = arctos::login_request(&self.target, client_id, &code);
        self.login_step(LoginStep::Token, &request).await
    }

    /// One login request, retried like any other on a retryable status and on lost
    /// connections; any other refusal stops the run.
    async fn login_step(&self, step: LoginStep, request: &Request) -> Result<Secret, Abort> {
        let mut course = Course::new(self.target.max_retries, false, false);
        loop {
            // A login request takes a rate-limit permit like any other.
            self.wait_turn().await;
            let verdict = match self.post(request, &mut Trail::default()).await {
                Ok(answer) => step.read(&answer.response(&self.scrubber())),
                Err(failure) => step.unanswered(&failure.message),
            };
            match verdict {
                LoginVerdict::Issued(secret) => {
                    // The code and the token are secrets from the moment they exist.
                    self.learn(&secret);
                    return Ok(secret);
                }
                LoginVerdict::Retry { after, refused } => match course.take_retry() {
                    Some(retry) => self.wait_retry(retry, after).await,
                    None => return Err(Abort::AuthRefused(refused)),
                },
                LoginVerdict::Refused(refused) => return Err(Abort::AuthRefused(refused)),
                LoginVerdict::Redirected(missing) => return Err(Abort::EndpointMissing(missing)),
            }
        }
    }
}
