//! The arctos task API: createBlankTask (appointments), createTaskModerator,
//! createTaskPublisher, updateTaskStatus, and the license-key login that issues bearer
//! tokens. arctos reports request errors as HTTP 200 with `status` 0 and a message; only
//! refused access is an HTTP error (403).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use chrono::{Local, NaiveDate};
use hyper::header::{HeaderMap, AUTHORIZATION};
use hyper::StatusCode;
use serde_json::{json, Value};

use super::fields::{self, Object};
use super::{Reply, Req, State};
use crate::kinds::Kind;
use crate::validate::phone;

const FORBIDDEN: &str = "Access to the requested resource is not allowed";
/// An authorization code must be exchanged for a token within this time, and only once.
const CODE_LIFETIME: Duration = Duration::from_secs(10 * 60);
/// `task_num` is `YYYYMMDD` and a per-day number of this many digits.
const MAX_TASKS_PER_DAY: u32 = 9_999_999;
/// The user behind the static token (never the token itself: messages end up in reports).
const STATIC_TOKEN_USER: &str = "static-token-user";

#[derive(Debug, Default)]
pub(super) struct Store {
    /// By `task_num`.
    tasks: HashMap<String, Task>,
    out_task_nums: HashSet<String>,
    /// The day `day_seq` counts for.
    day: Option<NaiveDate>,
    day_seq: u32,
    /// Authorization code → when it was issued, and for which `user_id`.
    codes: HashMap<String, (Instant, String)>,
    /// Access token → the `user_id` it was issued for.
    tokens: HashMap<String, String>,
}

#[derive(Debug, Default)]
struct Task {
    /// `emp_id`s (or, without one, the `user_id` behind the caller's token).
    moderators: HashSet<String>,
    /// `customer_id_num`s.
    customers: HashSet<String>,
    status: Option<String>,
}

impl Store {
    fn next_task_num(&mut self, today: NaiveDate) -> Option<String> {
        if self.day != Some(today) {
            self.day = Some(today);
            self.day_seq = 0;
        }
        // The loop only matters when the clock went back to a day already counted.
        loop {
            if self.day_seq >= MAX_TASKS_PER_DAY {
                return None;
            }
            self.day_seq += 1;
            let task_num = format!("{}{:07}", today.format("%Y%m%d"), self.day_seq);
            if !self.tasks.contains_key(&task_num) {
                return Some(task_num);
            }
        }
    }

    /// Who the caller is, when its bearer token is one the sandbox accepts: the
    /// `user_id` a login was issued for, or one fixed user for the static token.
    fn caller(&self, headers: &HeaderMap, static_token: &str) -> Option<String> {
        let token = bearer(headers)?;
        if token == static_token {
            Some(STATIC_TOKEN_USER.to_owned())
        } else {
            self.tokens.get(token).cloned()
        }
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn authorized(req: &Req<'_>, store: &Store) -> bool {
    store
        .caller(req.headers, &req.secrets.arctos_token)
        .is_some()
}

fn forbidden() -> Reply {
    Reply::new(
        StatusCode::FORBIDDEN,
        json!({"status": 0, "message": FORBIDDEN}),
    )
}

/// arctos' way of saying no: HTTP 200, `status` 0.
fn refused(message: String) -> Reply {
    Reply::ok(json!({"status": 0, "message": message}))
}

fn success(message: &str) -> Reply {
    Reply::ok(json!({"status": 1, "message": message}))
}

fn body<'a>(req: &'a Req<'_>) -> Result<&'a Object, String> {
    req.body.as_ref().map_err(Clone::clone)
}

/// createBlankTask, `POST /api/task/do_add`.
pub(super) fn create_task(req: &Req<'_>, state: &mut State) -> Reply {
    if !authorized(req, &state.arctos) {
        return forbidden();
    }
    // createBlankTask always answers with an `info` object, even when it refuses.
    let refused = |message: String| Reply::ok(json!({"status": 0, "message": message, "info": {}}));
    let out_task_num = match body(req).and_then(read_task) {
        Ok(out_task_num) => out_task_num,
        Err(message) => return refused(message),
    };
    let store = &mut state.arctos;
    if store.out_task_nums.contains(out_task_num) {
        state.stats.duplicates(Kind::Appointments, 1);
        return refused(format!("out_task_num {out_task_num} already exists"));
    }
    let Some(task_num) = store.next_task_num(Local::now().date_naive()) else {
        return refused("no task_num left for today".to_owned());
    };
    store.out_task_nums.insert(out_task_num.to_owned());
    store.tasks.insert(task_num.clone(), Task::default());
    state.stats.created(Kind::Appointments, 1);
    Reply::ok(json!({"status": 1, "message": "success", "info": {"task_num": task_num}}))
}

/// Checks a createBlankTask body against the vendor's table; returns its `out_task_num`.
fn read_task(body: &Object) -> Result<&str, String> {
    fields::req_int(body, "business_id")?;
    let out_task_num = fields::req_str(body, "out_task_num")?;
    fields::opt_str(body, "out_task_type")?;
    fields::req_choice(body, "task_type", &["normal", "custom"])?;
    fields::req_bool(body, "task_notify")?;
    let room_type = fields::req_choice(body, "room_type", &["realtime", "normal"])?;
    match fields::opt_str(body, "task_time")? {
        Some(time) if !fields::is_digits(time, 1, 12) => {
            return Err("task_time must be a string of Unix seconds".to_owned())
        }
        None if room_type == "normal" => {
            return Err("task_time is required when room_type is normal".to_owned())
        }
        _ => {}
    }
    // The example says `task_remark`, the table `task_remarks`.
    fields::opt_str(body, "task_remark")?;
    fields::opt_str(body, "task_remarks")?;
    fields::req_code(body, "branch_code")?;
    fields::opt_code(body, "business_code")?;
    fields::req_bool(body, "video")?;
    Ok(out_task_num)
}

/// createTaskModerator, `POST /api/task/service/do_add`.
pub(super) fn create_moderator(req: &Req<'_>, state: &mut State) -> Reply {
    let Some(caller) = state.arctos.caller(req.headers, &req.secrets.arctos_token) else {
        return forbidden();
    };
    let result = body(req).and_then(|body| {
        let task_num = fields::req_str(body, "task_num")?;
        fields::opt_code(body, "business_code")?;
        fields::opt_code(body, "branch_code")?;
        // Without `emp_id` the vendor adds the user the token was issued for.
        let emp_id = fields::opt_str(body, "emp_id")?.filter(|id| !id.is_empty());
        let task = known_task(&mut state.arctos, task_num)?;
        if task.moderators.contains(emp_id.unwrap_or(&caller)) {
            state.stats.duplicates(Kind::Moderators, 1);
            let who = emp_id.map_or("the logged-in user".to_owned(), |id| format!("emp_id {id}"));
            return Err(format!(
                "{who} is already a moderator of task_num {task_num}"
            ));
        }
        let moderator = emp_id.map_or(caller, str::to_owned);
        task.moderators.insert(moderator);
        state.stats.created(Kind::Moderators, 1);
        Ok(success("service member success"))
    });
    result.unwrap_or_else(refused)
}

/// createTaskPublisher, `POST /api/task/customer/do_add`. The whole request succeeds or
/// fails as one.
pub(super) fn create_publisher(req: &Req<'_>, state: &mut State) -> Reply {
    if !authorized(req, &state.arctos) {
        return forbidden();
    }
    let result = body(req).and_then(|body| {
        let task_num = fields::req_str(body, "task_num")?;
        let ids = read_customers(fields::req_array(body, "customer")?)?;
        let task = known_task(&mut state.arctos, task_num)?;
        let mut in_request = HashSet::with_capacity(ids.len());
        let repeated: Vec<&str> = ids
            .iter()
            .copied()
            .filter(|id| task.customers.contains(*id) || !in_request.insert(*id))
            .collect();
        if !repeated.is_empty() {
            state
                .stats
                .duplicates(Kind::Publishers, repeated.len() as u64);
            return Err(format!(
                "customer_id_num {} already exists in task_num {task_num}",
                repeated.join(", ")
            ));
        }
        task.customers.extend(ids.iter().map(|id| (*id).to_owned()));
        state.stats.created(Kind::Publishers, ids.len() as u64);
        Ok(success("customer member success"))
    });
    result.unwrap_or_else(refused)
}

/// Checks every entry of `customer`; returns their `customer_id_num`s.
fn read_customers(customers: &[Value]) -> Result<Vec<&str>, String> {
    customers
        .iter()
        .enumerate()
        .map(|(i, customer)| {
            let customer = customer
                .as_object()
                .ok_or_else(|| format!("customer[{i}] must be an object"))?;
            let read = || {
                fields::opt_str(customer, "customer_title")?;
                fields::req_str(customer, "customer_name")?;
                let id = fields::req_str(customer, "customer_id_num")?;
                let cc = fields::opt_str(customer, "customer_country_code")?;
                if let Some(phone) = fields::opt_str(customer, "customer_phone")? {
                    check_phone(cc, phone)?;
                }
                fields::opt_str(customer, "customer_email")?;
                Ok(id)
            };
            read().map_err(|e: String| format!("customer[{i}].{e}"))
        })
        .collect()
}

/// A customer's phone in the vendor example's form: `customer_country_code` as `+886` and
/// the national format's digits, trunk `0` included (`0911211211`), of a valid number.
fn check_phone(cc: Option<&str>, phone: &str) -> Result<(), String> {
    let cc: u16 = cc
        .and_then(|c| c.strip_prefix('+'))
        .filter(|c| fields::is_digits(c, 1, 3))
        .and_then(|c| c.parse().ok())
        .ok_or(
            "customer_country_code must be a calling code like +886 when customer_phone is given",
        )?;
    match phone::read_wire(cc, phone) {
        Some(number) if number.national() == phone => Ok(()),
        Some(number) => Err(format!(
            "customer_phone must be written as {} (national format digits)",
            number.national()
        )),
        None => Err(format!("customer_phone is not a valid +{cc} number")),
    }
}

/// updateTaskStatus, `POST /api/task/status/do_update` (the sandbox's path; the vendor
/// page does not show one). Setting the status a task already has succeeds again.
pub(super) fn update_task_status(req: &Req<'_>, state: &mut State) -> Reply {
    if !authorized(req, &state.arctos) {
        return forbidden();
    }
    let result = body(req).and_then(|body| {
        let task_num = fields::req_str(body, "task_num")?;
        let status = fields::req_choice(body, "task_status", &["finished", "canceled"])?;
        let task = known_task(&mut state.arctos, task_num)?;
        match &task.status {
            Some(current) if current == status => {}
            Some(current) => {
                return Err(format!(
                    "task_num {task_num} is already {current}; it cannot become {status}"
                ))
            }
            None => {
                task.status = Some(status.to_owned());
                state.stats.created(Kind::TaskStatus, 1);
            }
        }
        Ok(success("success"))
    });
    result.unwrap_or_else(refused)
}

fn known_task<'a>(store: &'a mut Store, task_num: &str) -> Result<&'a mut Task, String> {
    store
        .tasks
        .get_mut(task_num)
        .ok_or_else(|| format!("task_num {task_num} does not exist"))
}

/// getAuthCode, `POST /api/auth/code`: header `arc-license-key`, body
/// `{"user_id", "name", "role": "MODERATOR"}`.
pub(super) fn auth_code(req: &Req<'_>, state: &mut State) -> Reply {
    let license = req
        .headers
        .get("arc-license-key")
        .and_then(|v| v.to_str().ok());
    if license != Some(req.secrets.arctos_license_key.as_str()) {
        return forbidden();
    }
    let result = body(req).and_then(|body| {
        let user_id = fields::req_str(body, "user_id")?;
        fields::req_str(body, "name")?;
        if fields::req_str(body, "role")? != "MODERATOR" {
            return Err("role must be MODERATOR".to_owned());
        }
        let codes = &mut state.arctos.codes;
        if codes.len() >= 1024 {
            codes.retain(|_, (issued, _)| issued.elapsed() < CODE_LIFETIME);
        }
        let code = random_secret();
        codes.insert(code.clone(), (Instant::now(), user_id.to_owned()));
        Ok(Reply::ok(
            json!({"status": 1, "message": "success", "info": {"code": code}}),
        ))
    });
    result.unwrap_or_else(refused)
}

/// `POST /api/auth/login`: exchanges a fresh, unused authorization code for a token.
pub(super) fn auth_login(req: &Req<'_>, state: &mut State) -> Reply {
    let result = body(req).and_then(|body| {
        if fields::req_str(body, "grant_type")? != "authorization_code" {
            return Err("grant_type must be authorization_code".to_owned());
        }
        fields::req_str(body, "client_id")?;
        let code = fields::req_str(body, "code")?;
        let store = &mut state.arctos;
        let user_id = match store.codes.remove(code) {
            Some((issued, user_id)) if issued.elapsed() < CODE_LIFETIME => user_id,
            _ => {
                return Ok(Reply::new(
                    StatusCode::FORBIDDEN,
                    json!({"status": 0, "message": "the authorization code is invalid, expired or already used"}),
                ))
            }
        };
        let token = random_secret();
        store.tokens.insert(token.clone(), user_id);
        Ok(Reply::ok(json!({
            "status": 1,
            "message": "success",
            "info": {"access_token": token, "token_type": "Bearer"},
        })))
    });
    result.unwrap_or_else(refused)
}

fn random_secret() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
