//! agent-settings → Huawei AICC `agentsettings/create`.

use serde::Serialize;

use super::Item;
use crate::validate::{Checker, Need};

pub const FIELDS: &[&str] = &[
    "userId",
    "callType",
    "callerPresent",
    "callNumber",
    "callNumberDefault",
    "callerPresentDefault",
];
const USER_ID: usize = 0;
const CALL_TYPE: usize = 1;
const CALLER_PRESENT: usize = 2;
const CALL_NUMBER: usize = 3;
const CALL_NUMBER_DEFAULT: usize = 4;
const CALLER_PRESENT_DEFAULT: usize = 5;

pub const REQUIRED_COLUMNS: &[&[&str]] = &[&["userId"]];

/// The vendor's limits: at most five numbers in a list, fifteen digits a number.
const MAX_NUMBERS: usize = 5;
const MAX_DIGITS: usize = 15;

/// The request body, field for field.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentSetting {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call_type: Option<&'static str>,
    pub user_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caller_present: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call_number: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call_number_default: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caller_present_default: Option<String>,
}

pub(super) fn validate(c: &mut Checker) -> (Option<String>, Option<Item>) {
    let user_id = c.text(USER_ID, Need::Required);
    let call_type = c.choice(CALL_TYPE, Need::Optional, &["0", "1", "2"]);
    let caller_present = c.number_list(CALLER_PRESENT, MAX_NUMBERS, MAX_DIGITS);
    let call_number = c.number_list(CALL_NUMBER, MAX_NUMBERS, MAX_DIGITS);
    let call_number_default = c.short_number(CALL_NUMBER_DEFAULT, MAX_DIGITS);
    let caller_present_default = c.short_number(CALLER_PRESENT_DEFAULT, MAX_DIGITS);
    let item = user_id.clone().map(|user_id| {
        Item::AgentSetting(AgentSetting {
            call_type,
            user_id,
            caller_present,
            call_number,
            call_number_default,
            caller_present_default,
        })
    });
    (user_id, item)
}
