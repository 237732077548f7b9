//! Huawei AICC agent settings create. AICC answers with HTTP statuses: 401 for a wrong
//! app key, 400 for a malformed request, 500 ("business failure") for values it refuses,
//! and 200 with `returnCode` "0" (created) or "1" (already exists).

use std::collections::HashSet;
use std::time::{SystemTime, UNIX_EPOCH};

use hyper::StatusCode;
use serde_json::json;

use super::fields::{self, Object};
use super::{Reply, Req, State};
use crate::kinds::Kind;

const MAX_NUMBERS: usize = 5;
const MAX_NUMBER_LEN: usize = 15;

#[derive(Debug, Default)]
pub(super) struct Store {
    users: HashSet<String>,
    last_id: u64,
}

impl Store {
    /// A 19-digit id like the vendor's, which looks like a Snowflake id (milliseconds
    /// since 2010-11-04 shifted by 22 bits); kept strictly increasing.
    fn next_id(&mut self) -> String {
        const EPOCH_MS: u64 = 1_288_834_974_657;
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let snowflake = now_ms.saturating_sub(EPOCH_MS) << 22;
        self.last_id = snowflake.max(self.last_id + 1);
        self.last_id.to_string()
    }
}

fn error(status: StatusCode, description: String) -> Reply {
    Reply::new(
        status,
        json!({"returnCode": "1", "returnDesc": description}),
    )
}

/// `POST /apiaccess/CC-Management/v1/openapp/agentsettings/create`.
pub(super) fn create_agent_settings(req: &Req<'_>, state: &mut State) -> Reply {
    let app_key = req.headers.get("x-app-key").and_then(|v| v.to_str().ok());
    if app_key != Some(req.secrets.aicc_app_key.as_str()) {
        return error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized operation: the X-APP-Key is not valid.".to_owned(),
        );
    }
    let body = match req.body {
        Ok(body) => body,
        Err(message) => return error(StatusCode::BAD_REQUEST, message.clone()),
    };
    let user_id = match read(body) {
        Ok(user_id) => user_id,
        Err(reply) => return reply,
    };
    let store = &mut state.aicc;
    if store.users.contains(user_id) {
        state.stats.duplicates(Kind::AgentSettings, 1);
        return Reply::ok(json!({
            "returnCode": "1",
            "returnDesc": "The AgentSettings of this user already exist.",
        }));
    }
    store.users.insert(user_id.to_owned());
    state.stats.created(Kind::AgentSettings, 1);
    Reply::ok(json!({
        "returnCode": "0",
        "returnDesc": "The AgentSettings created successfully.",
        "id": store.next_id(),
    }))
}

/// Checks a body: a missing field or a wrong type is a bad request (400), a value the
/// vendor refuses a business failure (500). Returns the `userId`.
fn read(body: &Object) -> Result<&str, Reply> {
    let bad_request = |message| error(StatusCode::BAD_REQUEST, message);
    let user_id = fields::req_str(body, "userId").map_err(bad_request)?;
    let call_type = fields::opt_str(body, "callType").map_err(bad_request)?;
    let lists = [
        (
            "callerPresent",
            fields::opt_str_list(body, "callerPresent").map_err(bad_request)?,
        ),
        (
            "callNumber",
            fields::opt_str_list(body, "callNumber").map_err(bad_request)?,
        ),
    ];
    let defaults = [
        (
            "callNumberDefault",
            fields::opt_str(body, "callNumberDefault").map_err(bad_request)?,
        ),
        (
            "callerPresentDefault",
            fields::opt_str(body, "callerPresentDefault").map_err(bad_request)?,
        ),
    ];

    let business_failure = |message| Err(error(StatusCode::INTERNAL_SERVER_ERROR, message));
    let too_long = |n: &str| n.chars().count() > MAX_NUMBER_LEN;
    if call_type.is_some_and(|t| !["0", "1", "2"].contains(&t)) {
        return business_failure("callType must be 0, 1 or 2".to_owned());
    }
    for (name, list) in lists {
        if list.len() > MAX_NUMBERS {
            return business_failure(format!(
                "{name} has {} numbers; at most {MAX_NUMBERS} are allowed",
                list.len()
            ));
        }
        if let Some(long) = list.into_iter().find(|n| too_long(n)) {
            return business_failure(format!(
                "{name} number {long} is longer than {MAX_NUMBER_LEN} characters"
            ));
        }
    }
    for (name, value) in defaults {
        if value.is_some_and(too_long) {
            return business_failure(format!("{name} is longer than {MAX_NUMBER_LEN} characters"));
        }
    }
    Ok(user_id)
}
