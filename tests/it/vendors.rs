//! The vendors' wire formats and answers, request by request (SPEC §3, §4, §8): a real
//! local HTTP server (httpmock) whose mocks match the exact path, method, headers and
//! JSON body of every endpoint, driven through `ferry::send::Sender` with a target read
//! from a real `ferry.toml` text. Then every documented answer is classified through
//! `Sender::send`, the arctos login and re-login flow is followed, and connection-level
//! failures (nothing listening, a timeout, a connection dropped after the request was
//! carried out) are checked against the "never create twice" rule.

use std::time::{Duration, Instant};

use crate::vendors_support::*;
use ferry::batch::Batch;
use ferry::config::Target;
use ferry::kinds::{Ctx, Kind};
use ferry::outcome::{Outcome, Stage, Trail};
use ferry::problem::{Code, Problem};
use ferry::send::{Abort, Sender, Sent};
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------

const APPOINTMENT_HEADER: &[&str] = &[
    "business_id",
    "out_task_num",
    "out_task_type",
    "task_type",
    "task_notify",
    "task_time",
    "task_remark",
    "branch_code",
    "business_code",
    "room_type",
    "video",
];

/// A plain appointment row and its exact createBlankTask body.
const APPOINTMENT: &[&str] = &[
    "15",
    "APT-1",
    "",
    "normal",
    "",
    "1703141398",
    "",
    "943",
    "2",
    "normal",
    "true",
];

fn appointment_body() -> Value {
    json!({
        "business_id": 15,
        "out_task_num": "APT-1",
        "task_type": "normal",
        "task_notify": false,
        "task_time": "1703141398",
        "branch_code": 943,
        "business_code": 2,
        "room_type": "normal",
        "video": true
    })
}

fn appointment_batch() -> Batch {
    batch(
        Kind::Appointments,
        &Ctx::default(),
        APPOINTMENT_HEADER,
        &[APPOINTMENT],
    )
}

const CALL_HEADER: &[&str] = &[
    "eventId",
    "beforeMinutes",
    "name",
    "company",
    "countryCode",
    "mobile",
    "areaCode",
    "phone",
];

/// Two mobiles and a Beijing landline, with the country code written three ways.
const CALLS: &[&[&str]] = &[
    &[
        "542818",
        "10",
        "user1",
        "quanshi.com",
        "86",
        "18100000030",
        "",
        "",
    ],
    &["542818", "10", "user2", "", "+86", "18100000031", "", ""],
    &[
        "542818",
        "10",
        "user3",
        "quanshi.com",
        "0086",
        "",
        "010",
        "58512042",
    ],
];

fn calls_batch() -> Batch {
    batch(Kind::Calls, &Ctx::default(), CALL_HEADER, CALLS)
}

fn call_body(token: &str) -> Value {
    json!({
        "token": token,
        "eventId": 542818,
        "beforeMinutes": 10,
        "callList": [
            {"name": "user1", "company": "quanshi.com", "countryCode": "86", "mobile": "18100000030"},
            {"name": "user2", "countryCode": "86", "mobile": "18100000031"},
            {"name": "user3", "company": "quanshi.com", "countryCode": "86", "areaCode": "10", "phone": "58512042"}
        ]
    })
}

/// A Quanshi answer record, as the vendor echoes it (empty strings included).
fn call_record(id: &str, name: &str, mobile: &str, area: &str, phone: &str) -> Value {
    json!({
        "id": id,
        "areaCode": area,
        "company": "quanshi.com",
        "countryCode": "86",
        "mobile": mobile,
        "name": name,
        "phone": phone
    })
}

fn quanshi_answer(code: i64, msg: &str, success: Vec<Value>, fail: Vec<Value>) -> Value {
    json!({
        "timeStamp": 1646816678200i64,
        "code": code,
        "msg": msg,
        "data": {
            "total_count": success.len() + fail.len(),
            "success_count": success.len(),
            "fail_count": fail.len(),
            "requestId": null,
            "fail_data": fail,
            "success_data": success
        },
        "requestId": "10.255.0.106_20220309_170437_1646816677951"
    })
}

const AGENT_HEADER: &[&str] = &[
    "userId",
    "callType",
    "callerPresent",
    "callNumber",
    "callNumberDefault",
    "callerPresentDefault",
];

fn agent_batch() -> Batch {
    batch(
        Kind::AgentSettings,
        &Ctx::default(),
        AGENT_HEADER,
        &[&["U-1", "", "", "", "", ""]],
    )
}

fn arctos_ok(task_num: &str) -> Reply {
    Reply::json(
        200,
        json!({"status": 1, "message": "success", "info": {"task_num": task_num}}),
    )
}

/// A fast target unless `extra` sets its own rate.
fn arctos_toml(base: &str, token_env: &str, extra: &str) -> String {
    let rate = if extra.contains("rate =") {
        ""
    } else {
        "rate = 1000\nburst = 100\n"
    };
    format!("[targets.arctos]\nbase_url = \"{base}\"\ntoken_env = \"{token_env}\"\n{rate}{extra}\n")
}

fn quanshi_toml(base: &str, token_env: &str, extra: &str) -> String {
    format!(
        "[targets.quanshi]\nbase_url = \"{base}\"\ntoken_env = \"{token_env}\"\nrate = 1000\nburst = 100\n{extra}\n"
    )
}

fn aicc_toml(base: &str, app_key_env: &str, token_env: Option<&str>, extra: &str) -> String {
    let token = token_env
        .map(|t| format!("token_env = \"{t}\"\n"))
        .unwrap_or_default();
    format!(
        "[targets.aicc]\nbase_url = \"{base}\"\napp_key_env = \"{app_key_env}\"\n{token}rate = 1000\nburst = 100\n{extra}\n"
    )
}

/// An arctos target on the server with a static token from a fresh env variable.
fn arctos_target(srv: &Server, token: &str, extra: &str) -> Target {
    let env = secret_env("FERRY_VT_ARCTOS_TOKEN", token);
    target(&arctos_toml(&srv.base_url(), &env, extra), "arctos")
}

fn quanshi_target(srv: &Server, token: &str, extra: &str) -> Target {
    let env = secret_env("FERRY_VT_QUANSHI_TOKEN", token);
    target(&quanshi_toml(&srv.base_url(), &env, extra), "quanshi")
}

fn aicc_target(srv: &Server, app_key: &str, token: Option<&str>, extra: &str) -> Target {
    let key_env = secret_env("FERRY_VT_AICC_APP_KEY", app_key);
    let token_env = token.map(|t| secret_env("FERRY_VT_AICC_TOKEN", t));
    target(
        &aicc_toml(&srv.base_url(), &key_env, token_env.as_deref(), extra),
        "aicc",
    )
}

fn sender(target: Target, kind: Kind) -> Sender {
    Sender::new(target, kind, fast()).expect("the sender starts")
}

// ---------------------------------------------------------------------------------
// Outcome helpers
// ---------------------------------------------------------------------------------

fn done(sent: Sent) -> (Vec<Outcome>, Trail) {
    match sent {
        Sent::Done { outcomes, trail } => (outcomes, trail),
        Sent::Aborted { abort, trail } => {
            panic!("expected outcomes, the batch was aborted: {abort:?} (trail {trail:?})")
        }
        Sent::Halted { trail } => panic!("expected outcomes, the batch was halted ({trail:?})"),
    }
}

fn aborted(sent: Sent) -> (Abort, Trail) {
    match sent {
        Sent::Aborted { abort, trail } => (abort, trail),
        Sent::Done { outcomes, trail } => {
            panic!("expected an abort, got outcomes {outcomes:#?} (trail {trail:?})")
        }
        Sent::Halted { trail } => panic!("expected an abort, the batch was halted ({trail:?})"),
    }
}

#[track_caller]
fn succeeded(outcome: &Outcome) -> (Option<String>, Vec<Problem>) {
    match outcome {
        Outcome::Succeeded {
            remote_id,
            warnings,
        } => (remote_id.clone(), warnings.clone()),
        other => panic!("expected success, got {other:#?}"),
    }
}

#[track_caller]
fn failed(outcome: &Outcome) -> (Stage, Problem, Option<u16>) {
    match outcome {
        Outcome::Failed {
            stage,
            problems,
            http_status,
        } => {
            assert_eq!(
                problems.len(),
                1,
                "one problem per failed row: {problems:#?}"
            );
            (*stage, problems[0].clone(), *http_status)
        }
        other => panic!("expected a failure, got {other:#?}"),
    }
}

/// Every request of the test carried its own UUID `X-Request-Id`, and the trail lists
/// the ids of `path` in attempt order.
#[track_caller]
fn assert_request_ids(srv: &Server, path: &str, trail: &Trail) {
    let all: Vec<String> = srv.log.all().iter().map(Seen::request_id).collect();
    for id in &all {
        assert!(is_uuid(id), "X-Request-Id {id:?} is not a UUID");
    }
    let mut distinct = all.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        all.len(),
        "an X-Request-Id was sent twice: {all:?}"
    );
    assert_eq!(
        trail.request_ids,
        srv.log.request_ids(path),
        "the trail must list the request ids sent to {path}, in attempt order"
    );
}

// ---------------------------------------------------------------------------------
// Wire formats
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_blank_task_body_is_the_vendor_example_with_its_json_types() {
    let srv = Server::start().await;
    let target = arctos_target(&srv, "tok-create-blank", "");
    let expected = json!({
        "business_id": 15,
        "out_task_num": "XXXXXXXXX",
        "out_task_type": "XXXXXXXXX",
        "task_type": "normal",
        "task_notify": false,
        "task_time": "1703141398",
        "task_remark": "remark_somthing",
        "branch_code": 943,
        "business_code": 2,
        "room_type": "normal",
        "video": true
    });
    let mock = srv
        .expect(
            Expect::new(CREATE_TASK, expected).bearer("tok-create-blank"),
            vec![arctos_ok("202312210000001")],
        )
        .await;
    srv.catch_all().await;
    let batch = batch(
        Kind::Appointments,
        &Ctx::default(),
        APPOINTMENT_HEADER,
        &[&[
            "15",
            "XXXXXXXXX",
            "XXXXXXXXX",
            "normal",
            "false",
            "1703141398",
            "remark_somthing",
            "943",
            "2",
            "normal",
            "true",
        ]],
    );

    let (outcomes, trail) = done(sender(target, Kind::Appointments).send(&batch).await);

    srv.assert_all_matched();
    mock.assert_calls_async(1).await;
    assert_eq!(
        succeeded(&outcomes[0]),
        (Some("202312210000001".to_string()), vec![])
    );
    assert_request_ids(&srv, CREATE_TASK, &trail);
    let seen = &srv.log.on(CREATE_TASK)[0];
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.header("content-type"), Some("application/json"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_blank_task_leaves_empty_optional_cells_out_and_always_sends_task_notify() {
    let srv = Server::start().await;
    let target = arctos_target(&srv, "tok-optional", "");
    // realtime room: no task_time; empty out_task_type, task_remark, business_code and
    // task_notify; a branch code with a leading zero stays text; booleans in other
    // spellings; choices in any case.
    let expected = json!({
        "business_id": 7,
        "out_task_num": "APT-2",
        "task_type": "custom",
        "task_notify": false,
        "branch_code": "0943",
        "room_type": "realtime",
        "video": false
    });
    srv.expect(
        Expect::new(CREATE_TASK, expected).bearer("tok-optional"),
        vec![arctos_ok("202312210000002")],
    )
    .await;
    let expected_yes = json!({
        "business_id": 8,
        "out_task_num": "APT-3",
        "task_type": "normal",
        "task_notify": true,
        "task_time": "1708581600",
        "branch_code": 85,
        "business_code": "B-2",
        "room_type": "normal",
        "video": true
    });
    srv.expect(
        Expect::new(CREATE_TASK, expected_yes).bearer("tok-optional"),
        vec![arctos_ok("202312210000003")],
    )
    .await;
    let expected_local = json!({
        "business_id": 9,
        "out_task_num": "APT-4",
        "task_type": "normal",
        "task_notify": false,
        "task_time": "1708581600",
        "branch_code": 85,
        "room_type": "normal",
        "video": true
    });
    srv.expect(
        Expect::new(CREATE_TASK, expected_local).bearer("tok-optional"),
        vec![arctos_ok("202312210000004")],
    )
    .await;
    srv.catch_all().await;
    let ctx = Ctx {
        timezone: Some(chrono_tz::Asia::Taipei),
        ..Ctx::default()
    };
    let rows = rows(
        Kind::Appointments,
        &ctx,
        APPOINTMENT_HEADER,
        &[
            &[
                "7", "APT-2", "", "Custom", "", "", "", "0943", "", "REALTIME", "n",
            ],
            &[
                "8",
                "APT-3",
                "",
                "normal",
                "Yes",
                "2024-02-22T14:00:00+08:00",
                "",
                "85",
                "B-2",
                "normal",
                "Y",
            ],
            &[
                "9",
                "APT-4",
                "",
                "normal",
                "0",
                "2024-02-22 14:00",
                "",
                "85",
                "",
                "normal",
                "1",
            ],
        ],
    );
    let sender = sender(target, Kind::Appointments);
    for row in rows {
        let batch = one_batch(Kind::Appointments, vec![row]);
        let (outcomes, _) = done(sender.send(&batch).await);
        srv.assert_all_matched();
        succeeded(&outcomes[0]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_task_moderator_sends_every_field_as_a_string() {
    let srv = Server::start().await;
    let target = arctos_target(&srv, "tok-moderator", "");
    srv.expect(
        Expect::new(
            ADD_MODERATOR,
            json!({
                "task_num": "202402220000021",
                "business_code": "2",
                "branch_code": "85",
                "emp_id": "unique_id"
            }),
        )
        .bearer("tok-moderator"),
        vec![Reply::json(
            200,
            json!({"status": 1, "message": "service member success"}),
        )],
    )
    .await;
    srv.expect(
        Expect::new(
            ADD_MODERATOR,
            json!({"task_num": "202402220000022", "emp_id": "0042"}),
        )
        .bearer("tok-moderator"),
        vec![Reply::json(
            200,
            json!({"status": "1", "message": "service member success"}),
        )],
    )
    .await;
    srv.catch_all().await;
    let rows = rows(
        Kind::Moderators,
        &Ctx::default(),
        &["task_num", "business_code", "branch_code", "emp_id"],
        &[
            &["202402220000021", "2", "85", "unique_id"],
            &["202402220000022", "", "", "0042"],
        ],
    );
    let sender = sender(target, Kind::Moderators);
    for row in rows {
        let batch = one_batch(Kind::Moderators, vec![row]);
        let (outcomes, trail) = done(sender.send(&batch).await);
        srv.assert_all_matched();
        assert_eq!(succeeded(&outcomes[0]), (None, vec![]));
        assert_eq!(trail.attempts(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_task_publisher_sends_rows_of_one_task_in_one_customer_array() {
    let srv = Server::start().await;
    let target = arctos_target(&srv, "tok-publisher", "");
    let mock = srv
        .expect(
            Expect::new(
                ADD_PUBLISHER,
                json!({
                    "task_num": "202402220000021",
                    "customer": [
                        {
                            "customer_title": "Mr.",
                            "customer_name": "name",
                            "customer_id_num": "unique_id",
                            "customer_country_code": "+886",
                            "customer_phone": "0911211211",
                            "customer_email": "lin.mei@example.com.tw"
                        },
                        {
                            "customer_title": "Ms.",
                            "customer_name": "Lin",
                            "customer_id_num": "ID-2",
                            "customer_country_code": "+886",
                            "customer_phone": "0911211212"
                        },
                        {
                            "customer_name": "Chen",
                            "customer_id_num": "ID-3"
                        },
                        {
                            "customer_name": "Wang",
                            "customer_id_num": "ID-4",
                            "customer_country_code": "+886"
                        }
                    ]
                }),
            )
            .bearer("tok-publisher"),
            vec![Reply::json(
                200,
                json!({"status": 1, "message": "customer member success"}),
            )],
        )
        .await;
    srv.catch_all().await;
    let batch = batch(
        Kind::Publishers,
        &Ctx::default(),
        &[
            "task_num",
            "customer_title",
            "customer_name",
            "customer_id_num",
            "customer_country_code",
            "customer_phone",
            "customer_email",
        ],
        &[
            &[
                "202402220000021",
                "Mr.",
                "name",
                "unique_id",
                "+886",
                "0911211211",
                "lin.mei@example.com.tw",
            ],
            &[
                "202402220000021",
                "Ms.",
                "Lin",
                "ID-2",
                "00886",
                "0911-211-212",
                "",
            ],
            &["202402220000021", "", "Chen", "ID-3", "", "", ""],
            &["202402220000021", "", "Wang", "ID-4", "(886)", "", ""],
        ],
    );

    let (outcomes, trail) = done(sender(target, Kind::Publishers).send(&batch).await);

    srv.assert_all_matched();
    mock.assert_calls_async(1).await;
    assert_eq!(outcomes.len(), 4);
    for o in &outcomes {
        assert_eq!(succeeded(o), (None, vec![]));
    }
    assert_request_ids(&srv, ADD_PUBLISHER, &trail);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_task_status_goes_to_the_configured_path() {
    let srv = Server::start().await;
    let path = "/vendor/v2/task/status/update";
    let target = arctos_target(
        &srv,
        "tok-status",
        &format!("[targets.arctos.paths]\nupdate_task_status = \"{path}\""),
    );
    let mock = srv
        .expect(
            Expect::new(
                path,
                json!({"task_num": "202406060000001", "task_status": "finished"}),
            )
            .bearer("tok-status"),
            vec![Reply::json(200, json!({"status": 1, "message": "success"}))],
        )
        .await;
    srv.catch_all().await;
    let batch = batch(
        Kind::TaskStatus,
        &Ctx::default(),
        &["task_num", "task_status"],
        &[&["202406060000001", "Finished"]],
    );

    let (outcomes, trail) = done(sender(target, Kind::TaskStatus).send(&batch).await);

    srv.assert_all_matched();
    mock.assert_calls_async(1).await;
    succeeded(&outcomes[0]);
    assert_request_ids(&srv, path, &trail);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quanshi_call_create_carries_token_event_before_minutes_and_call_list() {
    let srv = Server::start().await;
    let target = quanshi_target(&srv, "5d41c4ac806c6440eb6aa8e071115f2b", "");
    let mock = srv
        .expect(
            Expect::new(CREATE_CALL, call_body("5d41c4ac806c6440eb6aa8e071115f2b"))
                .without("authorization"),
            // In another order than sent: records are matched by number, not position.
            vec![Reply::json(
                200,
                quanshi_answer(
                    200,
                    "Successfully to create the event call!",
                    vec![
                        call_record("id-3", "user3", "", "10", "58512042"),
                        call_record("id-1", "user1", "18100000030", "", ""),
                        call_record("id-2", "user2", "18100000031", "", ""),
                    ],
                    vec![],
                ),
            )],
        )
        .await;
    // beforeMinutes left empty is the vendor's default, 30.
    srv.expect(
        Expect::new(
            CREATE_CALL,
            json!({
                "token": "5d41c4ac806c6440eb6aa8e071115f2b",
                "eventId": 542819,
                "beforeMinutes": 30,
                "callList": [{"name": "user4", "countryCode": "852", "mobile": "51234567"}]
            }),
        ),
        vec![Reply::json(
            200,
            quanshi_answer(
                200,
                "ok",
                vec![json!({"id": "id-4", "countryCode": "852", "mobile": "51234567", "name": "user4"})],
                vec![],
            ),
        )],
    )
    .await;
    srv.catch_all().await;
    let sender = sender(target, Kind::Calls);

    let (outcomes, trail) = done(sender.send(&calls_batch()).await);

    srv.assert_all_matched();
    mock.assert_calls_async(1).await;
    assert_eq!(succeeded(&outcomes[0]).0.as_deref(), Some("id-1"));
    assert_eq!(succeeded(&outcomes[1]).0.as_deref(), Some("id-2"));
    let (id, warnings) = succeeded(&outcomes[2]);
    assert_eq!(id.as_deref(), Some("id-3"));
    assert_eq!(
        warnings.iter().map(|w| w.code).collect::<Vec<_>>(),
        vec![Code::AreaCodeZeroDropped],
        "the row's own warning is kept"
    );
    assert_request_ids(&srv, CREATE_CALL, &trail);
    assert_eq!(
        trail.server_request_ids,
        vec!["10.255.0.106_20220309_170437_1646816677951".to_string()],
        "Quanshi's requestId is recorded as the server request id"
    );

    let other = batch(
        Kind::Calls,
        &Ctx::default(),
        CALL_HEADER,
        &[&["542819", "", "user4", "", "852", "5123 4567", "", ""]],
    );
    let (outcomes, _) = done(sender.send(&other).await);
    srv.assert_all_matched();
    assert_eq!(succeeded(&outcomes[0]).0.as_deref(), Some("id-4"));
}

/// Issue 7: whatever spelling a cell used, Quanshi receives the national significant
/// number (no +, country code or trunk 0), and the answer's records are matched back by
/// that form.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quanshi_receives_the_national_significant_number_whatever_the_spelling() {
    let srv = Server::start().await;
    let target = quanshi_target(&srv, "tok", "");
    let wire = [
        ("886", "912345678"),
        ("886", "912345677"),
        ("886", "912345676"),
        ("81", "9012345678"),
        ("44", "7400123456"),
        ("49", "15123456789"),
    ];
    let call_list: Vec<Value> = wire
        .iter()
        .enumerate()
        .map(|(i, (cc, mobile))| json!({"name": format!("p{i}"), "countryCode": cc, "mobile": mobile}))
        .collect();
    let records: Vec<Value> = wire
        .iter()
        .enumerate()
        .map(|(i, (cc, mobile))| json!({"id": format!("id-{i}"), "name": format!("p{i}"), "company": "", "countryCode": cc, "mobile": mobile, "areaCode": "", "phone": ""}))
        .collect();
    srv.expect(
        Expect::new(
            CREATE_CALL,
            json!({"token": "tok", "eventId": 7, "beforeMinutes": 30, "callList": call_list}),
        ),
        vec![Reply::json(200, quanshi_answer(200, "ok", records, vec![]))],
    )
    .await;
    srv.catch_all().await;
    let cells: [[&str; 4]; 6] = [
        ["p0", "886", "0912-345-678", ""],
        ["p1", "+886", "912 345 677", ""],
        ["p2", "886", "+886 912 345 676", ""],
        ["p3", "81", "090-1234-5678", ""],
        ["p4", "44", "0044 7400 123456", ""],
        ["p5", "49", "01512 3456789", ""],
    ];
    let rows: Vec<Vec<&str>> = cells
        .iter()
        .map(|[name, cc, mobile, _]| vec!["7", "", name, "", cc, mobile, "", ""])
        .collect();
    let rows: Vec<&[&str]> = rows.iter().map(Vec::as_slice).collect();
    let calls = batch(Kind::Calls, &Ctx::default(), CALL_HEADER, &rows);
    let (outcomes, _) = done(sender(target, Kind::Calls).send(&calls).await);
    srv.assert_all_matched();
    let ids: Vec<Option<String>> = outcomes.iter().map(|o| succeeded(o).0).collect();
    let want: Vec<Option<String>> = (0..6).map(|i| Some(format!("id-{i}"))).collect();
    assert_eq!(ids, want);
}

/// Issue 7: arctos receives the national format's digits, trunk 0 included (the vendor
/// example's `0911211211` for +886), whatever spelling the cell used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arctos_receives_the_national_format_whatever_the_spelling() {
    let srv = Server::start().await;
    let target = arctos_target(&srv, "tok", "");
    let customer = |id: &str, cc: &str, phone: &str| json!({"customer_name": "n", "customer_id_num": id, "customer_country_code": cc, "customer_phone": phone});
    srv.expect(
        Expect::new(
            ADD_PUBLISHER,
            json!({"task_num": "202402220000021", "customer": [
                customer("c1", "+886", "0911211211"),
                customer("c2", "+886", "0911211212"),
                customer("c3", "+886", "0911211213"),
                customer("c4", "+81", "09012345678"),
                customer("c5", "+44", "07400123456"),
                customer("c6", "+1", "2015550123"),
            ]}),
        )
        .bearer("tok"),
        vec![Reply::json(
            200,
            json!({"status": 1, "message": "customer member success"}),
        )],
    )
    .await;
    srv.catch_all().await;
    let publishers = batch(
        Kind::Publishers,
        &Ctx::default(),
        &[
            "task_num",
            "customer_name",
            "customer_id_num",
            "customer_country_code",
            "customer_phone",
        ],
        &[
            &["202402220000021", "n", "c1", "886", "911211211"],
            &["202402220000021", "n", "c2", "+886", "+886 911 211 212"],
            &["202402220000021", "n", "c3", "00886", "002 886 911 211 213"],
            &["202402220000021", "n", "c4", "81", "+81 90 1234 5678"],
            &["202402220000021", "n", "c5", "44", "7400 123456"],
            &["202402220000021", "n", "c6", "1", "1 (201) 555-0123"],
        ],
    );
    let (outcomes, _) = done(sender(target, Kind::Publishers).send(&publishers).await);
    srv.assert_all_matched();
    assert_eq!(outcomes.len(), 6);
    for outcome in &outcomes {
        succeeded(outcome);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aicc_create_sends_lists_as_arrays_with_the_app_key_and_bearer_token() {
    let srv = Server::start().await;
    let target = aicc_target(&srv, "9-app-key-3", Some("e-access-token-e"), "");
    let mock = srv
        .expect(
            Expect::new(
                CREATE_AGENT_SETTINGS,
                json!({
                    "callType": "1",
                    "userId": "1660270845627002401",
                    "callerPresent": ["12323", "232232", "12323", "12323"],
                    "callNumber": ["12323", "232343", "233", "232343"],
                    "callNumberDefault": "23232323",
                    "callerPresentDefault": "1212121212"
                }),
            )
            .header("X-APP-Key", "9-app-key-3")
            .bearer("e-access-token-e"),
            vec![Reply::json(
                200,
                json!({
                    "returnCode": "0",
                    "returnDesc": "The AgentSettings created successfully.",
                    "id": "1307145259662215169"
                }),
            )],
        )
        .await;
    srv.catch_all().await;
    let batch = batch(
        Kind::AgentSettings,
        &Ctx::default(),
        AGENT_HEADER,
        &[&[
            "1660270845627002401",
            "1",
            "12323,232232;12323 12323",
            r#"["12323","232343",233,"232343"]"#,
            "23232323",
            "1212121212",
        ]],
    );

    let (outcomes, trail) = done(sender(target, Kind::AgentSettings).send(&batch).await);

    srv.assert_all_matched();
    mock.assert_calls_async(1).await;
    assert_eq!(
        succeeded(&outcomes[0]),
        (Some("1307145259662215169".to_string()), vec![])
    );
    assert_request_ids(&srv, CREATE_AGENT_SETTINGS, &trail);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aicc_without_a_token_sends_no_authorization_header_and_no_empty_fields() {
    let srv = Server::start().await;
    let target = aicc_target(&srv, "app-key-only", None, "");
    let mock = srv
        .expect(
            Expect::new(CREATE_AGENT_SETTINGS, json!({"userId": "U-1"}))
                .header("X-APP-Key", "app-key-only")
                .without("authorization"),
            vec![Reply::json(200, json!({"returnCode": "0", "id": "77"}))],
        )
        .await;
    srv.catch_all().await;

    let (outcomes, _) = done(
        sender(target, Kind::AgentSettings)
            .send(&agent_batch())
            .await,
    );

    srv.assert_all_matched();
    mock.assert_calls_async(1).await;
    assert_eq!(succeeded(&outcomes[0]).0.as_deref(), Some("77"));
}

// ---------------------------------------------------------------------------------
// arctos answers
// ---------------------------------------------------------------------------------

/// Sends the plain appointment to an arctos target that answers from `replies`.
async fn appointment_against(extra: &str, replies: Vec<Reply>) -> (Server, Sent, Sender) {
    let srv = Server::start().await;
    let target = arctos_target(&srv, "tok-answers", extra);
    srv.expect(
        Expect::new(CREATE_TASK, appointment_body()).bearer("tok-answers"),
        replies,
    )
    .await;
    srv.catch_all().await;
    let sender = sender(target, Kind::Appointments);
    let sent = sender.send(&appointment_batch()).await;
    srv.assert_all_matched();
    (srv, sent, sender)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arctos_status_1_succeeds_with_info_task_num_as_remote_id() {
    let (srv, sent, _) = appointment_against("", vec![arctos_ok("202312210000001")]).await;
    let (outcomes, trail) = done(sent);
    assert_eq!(
        succeeded(&outcomes[0]),
        (Some("202312210000001".into()), vec![])
    );
    assert_request_ids(&srv, CREATE_TASK, &trail);
    assert_eq!(trail.attempts(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arctos_status_given_as_a_string_is_read() {
    let (_, sent, _) = appointment_against(
        "",
        vec![Reply::json(
            200,
            json!({"status": "1", "message": "success", "info": {"task_num": "202312210000009"}}),
        )],
    )
    .await;
    let (outcomes, _) = done(sent);
    assert_eq!(
        succeeded(&outcomes[0]).0.as_deref(),
        Some("202312210000009")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arctos_status_2_succeeds_and_keeps_the_message_as_a_warning() {
    let (_, sent, _) = appointment_against(
        "",
        vec![Reply::json(
            200,
            json!({"status": 2, "message": "task_time is in the past", "info": {"task_num": "202312210000005"}}),
        )],
    )
    .await;
    let (outcomes, _) = done(sent);
    let (id, warnings) = succeeded(&outcomes[0]);
    assert_eq!(id.as_deref(), Some("202312210000005"));
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert_eq!(warnings[0].code, Code::VendorWarning);
    assert!(
        warnings[0].message.contains("task_time is in the past"),
        "{warnings:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arctos_status_0_fails_remotely_with_the_message() {
    let (srv, sent, _) = appointment_against(
        "",
        vec![Reply::json(
            200,
            json!({"status": 0, "message": "branch_code 943 does not exist", "info": {}}),
        )],
    )
    .await;
    let (outcomes, trail) = done(sent);
    let (stage, problem, http) = failed(&outcomes[0]);
    assert_eq!(stage, Stage::Remote);
    assert_eq!(problem.code, Code::VendorRejected);
    assert!(
        problem.message.contains("branch_code 943 does not exist"),
        "{problem:?}"
    );
    assert_eq!(http, Some(200));
    assert_eq!(srv.log.on(CREATE_TASK).len(), 1, "a refusal is final");
    assert_eq!(trail.attempts(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arctos_http_400_fails_remotely_without_a_retry() {
    let (srv, sent, _) = appointment_against(
        "",
        vec![Reply::json(
            400,
            json!({"status": 0, "message": "business_id is required"}),
        )],
    )
    .await;
    let (outcomes, _) = done(sent);
    let (stage, problem, http) = failed(&outcomes[0]);
    assert_eq!(stage, Stage::Remote);
    assert_eq!(http, Some(400));
    assert!(
        problem.message.contains("business_id is required"),
        "{problem:?}"
    );
    assert_eq!(srv.log.on(CREATE_TASK).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arctos_401_and_403_with_a_static_token_abort_after_one_request() {
    for status in [401, 403] {
        let (srv, sent, _) = appointment_against(
            "",
            vec![Reply::json(
                status,
                json!({"status": 0, "message": "Access to the requested resource is not allowed"}),
            )],
        )
        .await;
        let (abort, trail) = aborted(sent);
        assert!(
            matches!(abort, Abort::AuthRefused(_)),
            "HTTP {status}: {abort:?}"
        );
        assert_eq!(
            srv.log.on(CREATE_TASK).len(),
            1,
            "HTTP {status}: a static token cannot be renewed"
        );
        assert_eq!(trail.attempts(), 1);
        assert!(srv.log.on(AUTH_CODE).is_empty() && srv.log.on(AUTH_LOGIN).is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arctos_404_without_a_vendor_body_means_the_endpoint_is_missing() {
    let (srv, sent, _) =
        appointment_against("", vec![Reply::raw(404, "<html>Not Found</html>")]).await;
    let (abort, _) = aborted(sent);
    assert!(matches!(abort, Abort::EndpointMissing(_)), "{abort:?}");
    assert_eq!(srv.log.on(CREATE_TASK).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arctos_404_with_a_vendor_body_fails_the_row_only() {
    let (_, sent, _) = appointment_against(
        "",
        vec![Reply::json(
            404,
            json!({"status": 0, "message": "Resource Not Found"}),
        )],
    )
    .await;
    let (outcomes, _) = done(sent);
    let (stage, problem, http) = failed(&outcomes[0]);
    assert_eq!((stage, http), (Stage::Remote, Some(404)));
    assert!(
        problem.message.contains("Resource Not Found"),
        "{problem:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_429_with_retry_after_is_honoured_and_retried_with_a_new_request_id() {
    let started = Instant::now();
    let (srv, sent, sender) = appointment_against(
        "max_retries = 3",
        vec![
            Reply::json(429, json!({"message": "Too Many Requests"})).header("Retry-After", "1"),
            arctos_ok("202312210000011"),
        ],
    )
    .await;
    let elapsed = started.elapsed();
    let (outcomes, trail) = done(sent);
    assert_eq!(
        succeeded(&outcomes[0]).0.as_deref(),
        Some("202312210000011")
    );
    assert_eq!(trail.request_ids.len(), 2, "{trail:?}");
    assert_ne!(trail.request_ids[0], trail.request_ids[1]);
    assert_request_ids(&srv, CREATE_TASK, &trail);
    assert!(
        elapsed >= Duration::from_millis(950),
        "Retry-After: 1 must be waited out, retried after {elapsed:?}"
    );
    let counters = &sender.counters;
    assert_eq!(
        counters
            .throttled
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    assert_eq!(
        counters.retries.load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    assert_eq!(counters.sent.load(std::sync::atomic::Ordering::Relaxed), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_429_without_retry_after_is_retried_with_backoff() {
    let (srv, sent, _) = appointment_against(
        "max_retries = 3",
        vec![
            Reply::json(429, json!({"message": "slow down"})),
            arctos_ok("202312210000012"),
        ],
    )
    .await;
    let (outcomes, trail) = done(sent);
    assert_eq!(
        succeeded(&outcomes[0]).0.as_deref(),
        Some("202312210000012")
    );
    assert_eq!(trail.attempts(), 2);
    assert_request_ids(&srv, CREATE_TASK, &trail);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_500_is_a_final_failure() {
    let (srv, sent, _) = appointment_against(
        "max_retries = 3",
        vec![Reply::raw(500, "Internal Server Error")],
    )
    .await;
    let (outcomes, trail) = done(sent);
    let (stage, _, http) = failed(&outcomes[0]);
    assert_eq!((stage, http), (Stage::Remote, Some(500)));
    assert_eq!(srv.log.on(CREATE_TASK).len(), 1, "500 is not retried");
    assert_eq!(trail.attempts(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_502_503_504_then_success_are_retried() {
    for status in [502, 503, 504] {
        let (srv, sent, _) = appointment_against(
            "max_retries = 3",
            vec![
                Reply::raw(status, "Service Unavailable"),
                arctos_ok("202312210000013"),
            ],
        )
        .await;
        let (outcomes, trail) = done(sent);
        assert_eq!(
            succeeded(&outcomes[0]).0.as_deref(),
            Some("202312210000013"),
            "HTTP {status}"
        );
        assert_eq!(trail.attempts(), 2, "HTTP {status}");
        assert_request_ids(&srv, CREATE_TASK, &trail);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_503_until_max_retries_is_a_final_failure_after_max_retries_plus_one_attempts() {
    let (srv, sent, sender) = appointment_against(
        "max_retries = 3",
        vec![Reply::raw(503, "Service Unavailable")],
    )
    .await;
    let (outcomes, trail) = done(sent);
    let (stage, problem, http) = failed(&outcomes[0]);
    assert_eq!((stage, http), (Stage::Remote, Some(503)));
    assert!(
        problem.message.contains("4 attempts"),
        "the message says how often it was tried: {problem:?}"
    );
    assert_eq!(srv.log.on(CREATE_TASK).len(), 4);
    assert_eq!(trail.attempts(), 4);
    assert_request_ids(&srv, CREATE_TASK, &trail);
    assert_eq!(
        sender
            .counters
            .retries
            .load(std::sync::atomic::Ordering::Relaxed),
        3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_with_200_is_unknown_for_a_create_and_never_resent() {
    let (srv, sent, _) = appointment_against(
        "max_retries = 3",
        vec![Reply::raw(200, "{\"status\": 1, \"info\": {")],
    )
    .await;
    let (outcomes, trail) = done(sent);
    let (stage, problem, http) = failed(&outcomes[0]);
    assert_eq!(stage, Stage::Unknown);
    assert_eq!(problem.code, Code::OutcomeUnknown);
    assert_eq!(http, Some(200));
    assert_eq!(
        srv.log.on(CREATE_TASK).len(),
        1,
        "a create that may have happened is never resent"
    );
    assert_eq!(trail.attempts(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_body_with_200_is_unknown_for_a_create() {
    let (srv, sent, _) = appointment_against("max_retries = 3", vec![Reply::raw(200, "")]).await;
    let (outcomes, _) = done(sent);
    let (stage, problem, _) = failed(&outcomes[0]);
    assert_eq!(
        (stage, problem.code),
        (Stage::Unknown, Code::OutcomeUnknown)
    );
    assert_eq!(srv.log.on(CREATE_TASK).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_without_a_status_is_unknown_for_a_create() {
    let (srv, sent, _) = appointment_against(
        "max_retries = 3",
        vec![Reply::json(200, json!({"message": "ok"}))],
    )
    .await;
    let (outcomes, _) = done(sent);
    let (stage, _, _) = failed(&outcomes[0]);
    assert_eq!(stage, Stage::Unknown);
    assert_eq!(srv.log.on(CREATE_TASK).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_answer_to_an_idempotent_status_update_is_retried() {
    let srv = Server::start().await;
    let path = "/api/task/status/do_update";
    let target = arctos_target(
        &srv,
        "tok-status-retry",
        &format!("max_retries = 3\n[targets.arctos.paths]\nupdate_task_status = \"{path}\""),
    );
    srv.expect(
        Expect::new(
            path,
            json!({"task_num": "202406060000001", "task_status": "canceled"}),
        )
        .bearer("tok-status-retry"),
        vec![
            Reply::raw(200, "<html>gateway hiccup"),
            Reply::json(200, json!({"status": 1, "message": "success"})),
        ],
    )
    .await;
    srv.catch_all().await;
    let batch = batch(
        Kind::TaskStatus,
        &Ctx::default(),
        &["task_num", "task_status"],
        &[&["202406060000001", "canceled"]],
    );
    let (outcomes, trail) = done(sender(target, Kind::TaskStatus).send(&batch).await);
    srv.assert_all_matched();
    succeeded(&outcomes[0]);
    assert_eq!(trail.attempts(), 2);
    assert_request_ids(&srv, path, &trail);
}

// ---------------------------------------------------------------------------------
// Quanshi answers
// ---------------------------------------------------------------------------------

async fn calls_against(replies: Vec<Reply>) -> (Server, Sent) {
    let srv = Server::start().await;
    let target = quanshi_target(&srv, "quanshi-tok", "max_retries = 3");
    srv.expect(Expect::new(CREATE_CALL, call_body("quanshi-tok")), replies)
        .await;
    srv.catch_all().await;
    let sent = sender(target, Kind::Calls).send(&calls_batch()).await;
    srv.assert_all_matched();
    (srv, sent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quanshi_record_left_out_of_the_answer_is_unknown_and_the_others_are_matched_by_number() {
    let (srv, sent) = calls_against(vec![Reply::json(
        200,
        quanshi_answer(
            200,
            "Successfully to create the event call!",
            vec![call_record("id-3", "user3", "", "10", "58512042")],
            vec![call_record("id-1", "user1", "18100000030", "", "")],
        ),
    )])
    .await;
    let (outcomes, trail) = done(sent);
    let (stage, problem, _) = failed(&outcomes[0]);
    assert_eq!((stage, problem.code), (Stage::Remote, Code::VendorRejected));
    let (stage, problem, _) = failed(&outcomes[1]);
    assert_eq!(
        (stage, problem.code),
        (Stage::Unknown, Code::OutcomeUnknown),
        "user2 is in neither list"
    );
    assert_eq!(succeeded(&outcomes[2]).0.as_deref(), Some("id-3"));
    assert_eq!(srv.log.on(CREATE_CALL).len(), 1, "never resent");
    assert_eq!(trail.attempts(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quanshi_fail_data_is_vendor_rejected_and_quotes_msg() {
    let (_, sent) = calls_against(vec![Reply::json(
        200,
        quanshi_answer(
            200,
            "Successfully to create the event call!",
            vec![],
            vec![
                call_record("id-1", "user1", "18100000030", "", ""),
                call_record("id-2", "user2", "18100000031", "", ""),
                call_record("id-3", "user3", "", "10", "58512042"),
            ],
        ),
    )])
    .await;
    let (outcomes, trail) = done(sent);
    for o in &outcomes {
        let (stage, problem, http) = failed(o);
        assert_eq!(stage, Stage::Remote);
        assert_eq!(problem.code, Code::VendorRejected);
        assert_eq!(http, Some(200));
        assert!(
            problem
                .message
                .contains("Successfully to create the event call!"),
            "msg is quoted: {problem:?}"
        );
    }
    assert_eq!(
        trail.server_request_ids,
        vec!["10.255.0.106_20220309_170437_1646816677951".to_string()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quanshi_code_401_and_403_abort_as_authentication_refused() {
    for code in [401, 403] {
        let (srv, sent) = calls_against(vec![Reply::json(
            200,
            json!({"timeStamp": 1, "code": code, "msg": "token invalid", "data": null, "requestId": "r-1"}),
        )])
        .await;
        let (abort, _) = aborted(sent);
        assert!(
            matches!(abort, Abort::AuthRefused(_)),
            "code {code}: {abort:?}"
        );
        assert_eq!(srv.log.on(CREATE_CALL).len(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quanshi_other_code_fails_every_row_of_the_batch_with_msg() {
    let (srv, sent) = calls_against(vec![Reply::json(
        200,
        json!({"timeStamp": 1, "code": 500, "msg": "event 542818 does not exist", "data": null, "requestId": "r-2"}),
    )])
    .await;
    let (outcomes, trail) = done(sent);
    assert_eq!(outcomes.len(), 3);
    for o in &outcomes {
        let (stage, problem, _) = failed(o);
        assert_eq!(stage, Stage::Remote);
        assert!(
            problem.message.contains("event 542818 does not exist"),
            "{problem:?}"
        );
    }
    assert_eq!(srv.log.on(CREATE_CALL).len(), 1);
    assert_eq!(trail.server_request_ids, vec!["r-2".to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quanshi_request_id_of_every_attempt_is_recorded() {
    let (srv, sent) = calls_against(vec![
        Reply::json(
            503,
            json!({"code": 503, "msg": "busy", "requestId": "r-first"}),
        ),
        Reply::json(
            200,
            quanshi_answer(
                200,
                "ok",
                vec![
                    call_record("id-1", "user1", "18100000030", "", ""),
                    call_record("id-2", "user2", "18100000031", "", ""),
                    call_record("id-3", "user3", "", "10", "58512042"),
                ],
                vec![],
            ),
        ),
    ])
    .await;
    let (outcomes, trail) = done(sent);
    for o in &outcomes {
        succeeded(o);
    }
    assert_request_ids(&srv, CREATE_CALL, &trail);
    assert_eq!(trail.attempts(), 2);
    assert_eq!(
        trail.server_request_ids.last().map(String::as_str),
        Some("10.255.0.106_20220309_170437_1646816677951"),
        "the deciding answer's requestId is recorded: {trail:?}"
    );
}

// ---------------------------------------------------------------------------------
// AICC answers
// ---------------------------------------------------------------------------------

async fn agent_against(replies: Vec<Reply>) -> (Server, Sent) {
    let srv = Server::start().await;
    let target = aicc_target(&srv, "aicc-key", Some("aicc-token"), "max_retries = 3");
    srv.expect(
        Expect::new(CREATE_AGENT_SETTINGS, json!({"userId": "U-1"}))
            .header("X-APP-Key", "aicc-key")
            .bearer("aicc-token"),
        replies,
    )
    .await;
    srv.catch_all().await;
    let sent = sender(target, Kind::AgentSettings)
        .send(&agent_batch())
        .await;
    srv.assert_all_matched();
    (srv, sent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aicc_return_code_0_succeeds_with_the_id() {
    let (_, sent) = agent_against(vec![Reply::json(
        200,
        json!({"returnCode": "0", "returnDesc": "ok", "id": "1307145259662215169"}),
    )])
    .await;
    let (outcomes, _) = done(sent);
    assert_eq!(
        succeeded(&outcomes[0]),
        (Some("1307145259662215169".into()), vec![])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aicc_other_return_code_fails_with_return_desc() {
    let (srv, sent) = agent_against(vec![Reply::json(
        200,
        json!({"returnCode": "1001", "returnDesc": "userId not found"}),
    )])
    .await;
    let (outcomes, _) = done(sent);
    let (stage, problem, http) = failed(&outcomes[0]);
    assert_eq!((stage, http), (Stage::Remote, Some(200)));
    assert!(problem.message.contains("userId not found"), "{problem:?}");
    assert_eq!(srv.log.on(CREATE_AGENT_SETTINGS).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aicc_http_400_and_500_fail_without_a_retry() {
    for status in [400, 500] {
        let (srv, sent) = agent_against(vec![Reply::json(status, json!({"message": "no"}))]).await;
        let (outcomes, trail) = done(sent);
        let (stage, _, http) = failed(&outcomes[0]);
        assert_eq!(
            (stage, http),
            (Stage::Remote, Some(status)),
            "HTTP {status}"
        );
        assert_eq!(
            srv.log.on(CREATE_AGENT_SETTINGS).len(),
            1,
            "HTTP {status} is not retried"
        );
        assert_eq!(trail.attempts(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aicc_401_aborts_as_authentication_refused() {
    let (srv, sent) = agent_against(vec![Reply::raw(401, "Unauthorized")]).await;
    let (abort, _) = aborted(sent);
    assert!(matches!(abort, Abort::AuthRefused(_)), "{abort:?}");
    assert_eq!(srv.log.on(CREATE_AGENT_SETTINGS).len(), 1);
}

// ---------------------------------------------------------------------------------
// arctos login (SPEC §8)
// ---------------------------------------------------------------------------------

fn code_reply(code: &str) -> Reply {
    Reply::json(
        200,
        json!({"status": 1, "message": "success", "info": {"code": code}}),
    )
}

fn token_reply(token: &str) -> Reply {
    Reply::json(
        200,
        json!({"status": 1, "message": "success", "info": {"access_token": token, "token_type": "Bearer"}}),
    )
}

fn login_body(code: &str) -> Value {
    json!({"grant_type": "authorization_code", "client_id": "ferry-client", "code": code})
}

/// A login target: license key from a fresh env variable, a MODERATOR user id.
async fn login_server(create_replies: Vec<(&str, Vec<Reply>)>) -> (Server, Target) {
    let srv = Server::start().await;
    let env = secret_env("FERRY_VT_LICENSE", "lic-0001");
    let toml = format!(
        "[targets.arctos]\nbase_url = \"{}\"\nlicense_key_env = \"{env}\"\nlogin_user_id = \"ops-import\"\nlogin_client_id = \"ferry-client\"\nmax_retries = 2\nrate = 1000\nburst = 100\n",
        srv.base_url()
    );
    srv.expect(
        Expect::new(
            AUTH_CODE,
            json!({"user_id": "ops-import", "name": "ops-import", "role": "MODERATOR"}),
        )
        .header("arc-license-key", "lic-0001")
        .without("authorization"),
        vec![
            code_reply("code-1"),
            code_reply("code-2"),
            code_reply("code-3"),
        ],
    )
    .await;
    srv.expect(
        Expect::new(AUTH_LOGIN, login_body("code-1")).without("authorization"),
        vec![token_reply("access-1")],
    )
    .await;
    srv.expect(
        Expect::new(AUTH_LOGIN, login_body("code-2")).without("authorization"),
        vec![token_reply("access-2")],
    )
    .await;
    srv.expect(
        Expect::new(AUTH_LOGIN, login_body("code-3")).without("authorization"),
        vec![token_reply("access-3")],
    )
    .await;
    for (token, replies) in create_replies {
        srv.expect(
            Expect::new(CREATE_TASK, appointment_body()).bearer(token),
            replies,
        )
        .await;
    }
    srv.catch_all().await;
    (srv, target(&toml, "arctos"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arctos_login_gets_a_code_then_a_token_and_creates_with_it() {
    let (srv, target) = login_server(vec![("access-1", vec![arctos_ok("202312210000021")])]).await;
    let sender = sender(target, Kind::Appointments);
    sender.authenticate().await.expect("the login succeeds");

    let (outcomes, trail) = done(sender.send(&appointment_batch()).await);

    srv.assert_all_matched();
    assert_eq!(
        succeeded(&outcomes[0]).0.as_deref(),
        Some("202312210000021")
    );
    let order: Vec<String> = srv.log.all().iter().map(|s| s.path.clone()).collect();
    assert_eq!(order, vec![AUTH_CODE, AUTH_LOGIN, CREATE_TASK]);
    assert_request_ids(&srv, CREATE_TASK, &trail);
    let code = &srv.log.on(AUTH_CODE)[0];
    assert_eq!(code.header("content-type"), Some("application/json"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arctos_401_on_a_create_logs_in_once_more_and_retries_with_the_new_token() {
    let (srv, target) = login_server(vec![
        (
            "access-1",
            vec![Reply::json(
                401,
                json!({"status": 0, "message": "token expired"}),
            )],
        ),
        ("access-2", vec![arctos_ok("202312210000022")]),
    ])
    .await;
    let sender = sender(target, Kind::Appointments);

    let (outcomes, trail) = done(sender.send(&appointment_batch()).await);

    srv.assert_all_matched();
    assert_eq!(
        succeeded(&outcomes[0]).0.as_deref(),
        Some("202312210000022")
    );
    assert_eq!(srv.log.on(AUTH_CODE).len(), 2, "exactly one new login");
    assert_eq!(srv.log.on(AUTH_LOGIN).len(), 2);
    let creates = srv.log.on(CREATE_TASK);
    assert_eq!(creates.len(), 2);
    assert_eq!(creates[0].header("authorization"), Some("Bearer access-1"));
    assert_eq!(creates[1].header("authorization"), Some("Bearer access-2"));
    assert_request_ids(&srv, CREATE_TASK, &trail);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arctos_403_on_a_create_is_treated_like_401() {
    let (srv, target) = login_server(vec![
        (
            "access-1",
            vec![Reply::json(
                403,
                json!({"status": 0, "message": "Access to the requested resource is not allowed"}),
            )],
        ),
        ("access-2", vec![arctos_ok("202312210000023")]),
    ])
    .await;
    let (outcomes, _) = done(
        sender(target, Kind::Appointments)
            .send(&appointment_batch())
            .await,
    );
    srv.assert_all_matched();
    succeeded(&outcomes[0]);
    assert_eq!(srv.log.on(AUTH_LOGIN).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arctos_second_401_after_a_new_login_aborts() {
    let refused = || {
        vec![Reply::json(
            401,
            json!({"status": 0, "message": "not allowed"}),
        )]
    };
    let (srv, target) = login_server(vec![("access-1", refused()), ("access-2", refused())]).await;

    let (abort, trail) = aborted(
        sender(target, Kind::Appointments)
            .send(&appointment_batch())
            .await,
    );

    srv.assert_all_matched();
    assert!(matches!(abort, Abort::AuthRefused(_)), "{abort:?}");
    assert_eq!(
        srv.log.on(AUTH_CODE).len(),
        2,
        "one login, one re-login, no more"
    );
    assert_eq!(srv.log.on(AUTH_LOGIN).len(), 2);
    assert_eq!(srv.log.on(CREATE_TASK).len(), 2);
    assert_eq!(trail.attempts(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arctos_refused_license_key_aborts_before_any_create() {
    let srv = Server::start().await;
    let env = secret_env("FERRY_VT_LICENSE", "lic-wrong");
    let toml = format!(
        "[targets.arctos]\nbase_url = \"{}\"\nlicense_key_env = \"{env}\"\nlogin_user_id = \"ops-import\"\n",
        srv.base_url()
    );
    srv.any_on(
        AUTH_CODE,
        vec![Reply::json(
            403,
            json!({"status": 0, "message": "invalid license"}),
        )],
    )
    .await;
    srv.catch_all().await;
    let sender = sender(target(&toml, "arctos"), Kind::Appointments);
    let abort = sender
        .authenticate()
        .await
        .expect_err("the license key is refused");
    assert!(matches!(abort, Abort::AuthRefused(_)), "{abort:?}");
    let (abort, trail) = aborted(sender.send(&appointment_batch()).await);
    assert!(matches!(abort, Abort::AuthRefused(_)), "{abort:?}");
    assert_eq!(trail.attempts(), 0);
    assert!(srv.log.on(CREATE_TASK).is_empty() && srv.unmatched.all().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_from_a_file_is_read_and_trimmed() {
    let srv = Server::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("arctos.token");
    std::fs::write(&file, "file-token-1\n").expect("write the token file");
    let toml = format!(
        "[targets.arctos]\nbase_url = \"{}\"\ntoken_file = {:?}\n",
        srv.base_url(),
        file.display().to_string()
    );
    srv.expect(
        Expect::new(CREATE_TASK, appointment_body()).bearer("file-token-1"),
        vec![arctos_ok("202312210000031")],
    )
    .await;
    srv.catch_all().await;
    let (outcomes, _) = done(
        sender(target(&toml, "arctos"), Kind::Appointments)
            .send(&appointment_batch())
            .await,
    );
    srv.assert_all_matched();
    succeeded(&outcomes[0]);
}

// ---------------------------------------------------------------------------------
// Connection-level failures
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_listening_is_retried_then_a_transport_failure_never_unknown() {
    let base = format!("http://127.0.0.1:{}", closed_port());
    let env = secret_env("FERRY_VT_ARCTOS_TOKEN", "tok-closed");
    let target = target(&arctos_toml(&base, &env, "max_retries = 2"), "arctos");
    let sender = sender(target, Kind::Appointments);

    let (outcomes, trail) = done(sender.send(&appointment_batch()).await);

    let (stage, problem, http) = failed(&outcomes[0]);
    assert_eq!(
        stage,
        Stage::Transport,
        "a connection never made cannot have created anything"
    );
    assert_eq!(problem.code, Code::Transport);
    assert_eq!(http, None);
    assert_eq!(trail.attempts(), 3, "max_retries + 1 attempts: {trail:?}");
    for id in &trail.request_ids {
        assert!(is_uuid(id), "{id}");
    }
    let mut ids = trail.request_ids.clone();
    ids.dedup();
    assert_eq!(ids.len(), 3, "a fresh id per attempt");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_on_a_create_is_unknown_after_one_request() {
    let srv = Server::start().await;
    let target = arctos_target(&srv, "tok-slow", "max_retries = 3\ntimeout_secs = 0.3");
    let mock = srv
        .server
        .mock_async(|when, then| {
            when.method(httpmock::Method::POST).path(CREATE_TASK);
            then.status(200)
                .delay(Duration::from_secs(2))
                .json_body(json!({"status": 1, "info": {"task_num": "202312210000041"}}));
        })
        .await;
    let (outcomes, trail) = done(
        sender(target, Kind::Appointments)
            .send(&appointment_batch())
            .await,
    );
    let (stage, problem, _) = failed(&outcomes[0]);
    assert_eq!(
        (stage, problem.code),
        (Stage::Unknown, Code::OutcomeUnknown)
    );
    assert_eq!(trail.attempts(), 1);
    assert_eq!(
        mock.calls_async().await,
        1,
        "a timed-out create is not resent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_on_a_status_update_is_retried() {
    let srv = Server::start().await;
    let path = "/api/task/status/do_update";
    let target = arctos_target(
        &srv,
        "tok-slow-status",
        &format!(
            "max_retries = 2\ntimeout_secs = 0.3\n[targets.arctos.paths]\nupdate_task_status = \"{path}\""
        ),
    );
    let mock = srv
        .server
        .mock_async(|when, then| {
            when.method(httpmock::Method::POST).path(path);
            then.status(200)
                .delay(Duration::from_secs(2))
                .json_body(json!({"status": 1}));
        })
        .await;
    let batch = batch(
        Kind::TaskStatus,
        &Ctx::default(),
        &["task_num", "task_status"],
        &[&["202406060000001", "finished"]],
    );
    let (outcomes, trail) = done(sender(target, Kind::TaskStatus).send(&batch).await);
    let (stage, _, _) = failed(&outcomes[0]);
    assert_eq!(stage, Stage::Transport);
    assert_eq!(trail.attempts(), 3);
    assert_eq!(mock.calls_async().await, 3);
}

async fn dropping_sandbox() -> ferry::sandbox::Sandbox {
    ferry::sandbox::start(ferry::sandbox::Options {
        addr: "127.0.0.1:0".parse().expect("an address"),
        drop_rate: 1.0,
        ..ferry::sandbox::Options::default()
    })
    .await
    .expect("the sandbox starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connection_after_a_create_was_carried_out_is_unknown_after_one_request() {
    let sandbox = dropping_sandbox().await;
    let url = reqwest::Url::parse(&sandbox.base_url()).expect("sandbox url");
    let mut target = ferry::sandbox::target(Kind::Appointments, url);
    target.max_retries = 3;
    let sender = Sender::new(target, Kind::Appointments, fast()).expect("sender");

    let (outcomes, trail) = done(sender.send(&appointment_batch()).await);

    let (stage, problem, _) = failed(&outcomes[0]);
    assert_eq!(
        (stage, problem.code),
        (Stage::Unknown, Code::OutcomeUnknown)
    );
    assert_eq!(trail.attempts(), 1);
    let stats = sandbox.stats();
    assert_eq!(stats["requests"][CREATE_TASK], 1, "{stats}");
    assert_eq!(stats["created"]["appointments"], 1, "{stats}");
    assert_eq!(stats["dropped"], 1, "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connection_on_an_idempotent_status_update_is_retried() {
    let sandbox = dropping_sandbox().await;
    let url = reqwest::Url::parse(&sandbox.base_url()).expect("sandbox url");
    let mut target = ferry::sandbox::target(Kind::TaskStatus, url);
    target.max_retries = 2;
    let sender = Sender::new(target, Kind::TaskStatus, fast()).expect("sender");
    let batch = batch(
        Kind::TaskStatus,
        &Ctx::default(),
        &["task_num", "task_status"],
        &[&["202406060000001", "finished"]],
    );

    let (outcomes, trail) = done(sender.send(&batch).await);

    let (stage, _, _) = failed(&outcomes[0]);
    assert_eq!(stage, Stage::Transport);
    assert_eq!(trail.attempts(), 3);
    let stats = sandbox.stats();
    assert_eq!(
        stats["requests"]["/api/task/status/do_update"], 3,
        "{stats}"
    );
    assert_eq!(stats["dropped"], 3, "{stats}");
}

// ---------------------------------------------------------------------------------
// Request ids from the server, Retry-After, pauses, rate limit
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_request_id_answered_by_the_server_is_recorded_beside_ours() {
    let (srv, sent, _) = appointment_against(
        "",
        vec![arctos_ok("202312210000051").header("X-Request-Id", "srv-req-77")],
    )
    .await;
    let (outcomes, trail) = done(sent);
    succeeded(&outcomes[0]);
    assert_request_ids(&srv, CREATE_TASK, &trail);
    assert_eq!(trail.server_request_ids, vec!["srv-req-77".to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_on_a_503_is_honoured() {
    let started = Instant::now();
    let (srv, sent, _) = appointment_against(
        "max_retries = 3",
        vec![
            Reply::raw(503, "maintenance").header("Retry-After", "1"),
            arctos_ok("202312210000052"),
        ],
    )
    .await;
    let (outcomes, trail) = done(sent);
    succeeded(&outcomes[0]);
    assert_eq!(trail.attempts(), 2);
    let creates = srv.log.on(CREATE_TASK);
    let gap = creates[1].at.duration_since(creates[0].at);
    assert!(
        gap >= Duration::from_millis(950) && started.elapsed() >= gap,
        "Retry-After: 1 must be waited out, retried after {gap:?}"
    );
}

fn second_appointment_body() -> Value {
    let mut body = appointment_body();
    body["out_task_num"] = json!("APT-2");
    body
}

fn second_appointment_batch() -> Batch {
    let mut cells = APPOINTMENT.to_vec();
    cells[1] = "APT-2";
    batch(
        Kind::Appointments,
        &Ctx::default(),
        APPOINTMENT_HEADER,
        &[&cells],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_pauses_the_whole_target_not_only_the_request_that_got_it() {
    let srv = Server::start().await;
    let target = arctos_target(&srv, "tok-pause", "max_retries = 3");
    srv.expect(
        Expect::new(CREATE_TASK, appointment_body()).bearer("tok-pause"),
        vec![
            Reply::json(429, json!({"message": "Too Many Requests"})).header("Retry-After", "1"),
            arctos_ok("202312210000061"),
        ],
    )
    .await;
    srv.expect(
        Expect::new(CREATE_TASK, second_appointment_body()).bearer("tok-pause"),
        vec![arctos_ok("202312210000062")],
    )
    .await;
    srv.catch_all().await;
    let sender = std::sync::Arc::new(sender(target, Kind::Appointments));
    let first = {
        let sender = std::sync::Arc::clone(&sender);
        tokio::spawn(async move { sender.send(&appointment_batch()).await })
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while srv.log.on(CREATE_TASK).is_empty() {
        assert!(Instant::now() < deadline, "the first request never arrived");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Let ferry read the 429 before the second batch starts.
    tokio::time::sleep(Duration::from_millis(100)).await;

    let (outcomes, _) = done(sender.send(&second_appointment_batch()).await);
    succeeded(&outcomes[0]);
    let (outcomes, _) = done(first.await.expect("the first send finishes"));
    succeeded(&outcomes[0]);

    srv.assert_all_matched();
    let creates = srv.log.on(CREATE_TASK);
    let throttled_at = creates[0].at;
    let second = creates
        .iter()
        .find(|s| s.body.contains("APT-2"))
        .expect("the second batch was sent");
    let waited = second.at.duration_since(throttled_at);
    assert!(
        waited >= Duration::from_millis(850),
        "another batch went out {waited:?} after a 429 with Retry-After: 1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_take_a_rate_limit_permit_like_first_attempts() {
    let (srv, sent, _) = appointment_against(
        "max_retries = 5\nrate = 10\nburst = 1",
        vec![
            Reply::raw(503, "busy"),
            Reply::raw(503, "busy"),
            Reply::raw(503, "busy"),
            Reply::raw(503, "busy"),
            arctos_ok("202312210000071"),
        ],
    )
    .await;
    let (outcomes, trail) = done(sent);
    succeeded(&outcomes[0]);
    assert_eq!(trail.attempts(), 5);
    let creates = srv.log.on(CREATE_TASK);
    let span = creates[4].at.duration_since(creates[0].at);
    assert!(
        span >= Duration::from_millis(380),
        "5 attempts at 10/s with a burst of 1 took only {span:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_401s_share_one_new_login() {
    let (srv, target) = login_server(vec![
        (
            "access-1",
            vec![Reply::json(401, json!({"status": 0, "message": "expired"}))],
        ),
        ("access-2", vec![arctos_ok("202312210000081")]),
    ])
    .await;
    let sender = sender(target, Kind::Appointments);
    let (a, b) = (appointment_batch(), appointment_batch());
    let (first, second) = tokio::join!(sender.send(&a), sender.send(&b));
    srv.assert_all_matched();
    succeeded(&done(first).0[0]);
    succeeded(&done(second).0[0]);
    assert_eq!(
        srv.log.on(AUTH_CODE).len(),
        2,
        "the first login and one shared new login"
    );
}

// ---------------------------------------------------------------------------------
// Redirects: a vendor API answers a POST; a redirect is not an answer. Following it
// sends the credentials (custom headers and Quanshi's body token survive reqwest's
// cross-host clean-up, which removes only Authorization and cookies) to an address the
// config never named, over any scheme, past `check_base_url`; and a 301/302/303 turns
// the create into a GET whose answer is then read as the create's.
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_never_carries_the_aicc_app_key_to_another_host() {
    let srv = Server::start().await;
    let elsewhere = Server::start().await;
    let target = aicc_target(
        &srv,
        "app-key-must-stay",
        Some("tok-must-stay"),
        "max_retries = 1",
    );
    srv.any_on(
        CREATE_AGENT_SETTINGS,
        vec![Reply::raw(307, "").header("Location", &format!("{}/collect", elsewhere.base_url()))],
    )
    .await;
    elsewhere
        .any_on(
            "/collect",
            vec![Reply::json(200, json!({"returnCode": "0", "id": "stolen"}))],
        )
        .await;

    let sent = sender(target, Kind::AgentSettings)
        .send(&agent_batch())
        .await;

    let leaked: Vec<Seen> = elsewhere.log.all();
    assert!(
        leaked.is_empty(),
        "a host the config never named received: {leaked:#?}"
    );
    if let Sent::Done { outcomes, .. } = sent {
        assert!(
            !matches!(outcomes[0], Outcome::Succeeded { .. }),
            "a redirected create is not a success: {outcomes:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_never_carries_the_quanshi_token_to_another_host() {
    let srv = Server::start().await;
    let elsewhere = Server::start().await;
    let target = quanshi_target(&srv, "quanshi-token-must-stay", "max_retries = 1");
    srv.any_on(
        CREATE_CALL,
        vec![Reply::raw(308, "").header("Location", &format!("{}/collect", elsewhere.base_url()))],
    )
    .await;
    elsewhere
        .any_on(
            "/collect",
            vec![Reply::json(200, json!({"code": 500, "msg": "no"}))],
        )
        .await;

    let _ = sender(target, Kind::Calls).send(&calls_batch()).await;

    let leaked: Vec<Seen> = elsewhere.log.all();
    assert!(
        leaked.is_empty(),
        "a host the config never named received: {leaked:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_302_on_a_create_is_not_turned_into_a_get_and_reported_as_success() {
    let srv = Server::start().await;
    let target = arctos_target(&srv, "tok-302", "max_retries = 1");
    srv.any_on(
        CREATE_TASK,
        vec![Reply::raw(302, "").header("Location", "/moved/api/task/do_add")],
    )
    .await;
    srv.any_on("/moved/api/task/do_add", vec![arctos_ok("202312219999999")])
        .await;

    let (abort, trail) = aborted(
        sender(target, Kind::Appointments)
            .send(&appointment_batch())
            .await,
    );

    let moved = srv.log.on("/moved/api/task/do_add");
    assert!(moved.is_empty(), "ferry followed the redirect: {moved:#?}");
    assert!(
        matches!(&abort, Abort::EndpointMissing(m) if m.message.contains("HTTP 302")),
        "a redirect means base_url is wrong, and the run stops: {abort:?}"
    );
    assert_eq!(trail.attempts(), 1, "a redirect is not retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_or_429_during_login_is_retried_like_any_request_not_an_auth_refusal() {
    let srv = Server::start().await;
    let env = secret_env("FERRY_VT_LICENSE", "lic-busy");
    let toml = format!(
        "[targets.arctos]\nbase_url = \"{}\"\nlicense_key_env = \"{env}\"\nlogin_user_id = \"ops-import\"\nlogin_client_id = \"ferry-client\"\nmax_retries = 3\nrate = 1000\nburst = 100\n",
        srv.base_url()
    );
    srv.expect(
        Expect::new(
            AUTH_CODE,
            json!({"user_id": "ops-import", "name": "ops-import", "role": "MODERATOR"}),
        )
        .header("arc-license-key", "lic-busy"),
        vec![Reply::raw(503, "Service Unavailable"), code_reply("code-1")],
    )
    .await;
    srv.expect(
        Expect::new(AUTH_LOGIN, login_body("code-1")),
        vec![
            Reply::json(429, json!({"message": "Too Many Requests"})),
            token_reply("access-1"),
        ],
    )
    .await;
    srv.expect(
        Expect::new(CREATE_TASK, appointment_body()).bearer("access-1"),
        vec![arctos_ok("202312210000091")],
    )
    .await;
    srv.catch_all().await;
    let sender = sender(target(&toml, "arctos"), Kind::Appointments);

    sender
        .authenticate()
        .await
        .expect("a busy login endpoint is retried, not a refusal");
    let (outcomes, _) = done(sender.send(&appointment_batch()).await);

    srv.assert_all_matched();
    succeeded(&outcomes[0]);
}

// ---------------------------------------------------------------------------------
// Answers read within bounds (issue 9): at most MAX_ANSWER_BYTES, within the timeout;
// past either, a create is unknown (never resent) and a status update is retried.
// ---------------------------------------------------------------------------------

fn raw_arctos(raw: &RawServer, extra: &str) -> Target {
    let env = secret_env("FERRY_VT_ARCTOS_TOKEN", "tok-raw");
    target(&arctos_toml(&raw.base_url(), &env, extra), "arctos")
}

/// A create against `answer`: the outcome, the attempts, and how long it took.
async fn create_against(answer: RawAnswer, extra: &str) -> (Outcome, u32, Duration, RawServer) {
    let raw = RawServer::start(answer);
    let sender = sender(raw_arctos(&raw, extra), Kind::Appointments);
    let started = Instant::now();
    let (outcomes, trail) = done(sender.send(&appointment_batch()).await);
    let took = started.elapsed();
    (outcomes[0].clone(), trail.attempts() as u32, took, raw)
}

#[track_caller]
fn assert_unknown_once(outcome: &Outcome, attempts: u32, raw: &RawServer, says: &str) {
    let (stage, problem, http) = failed(outcome);
    assert_eq!(
        (stage, problem.code),
        (Stage::Unknown, Code::OutcomeUnknown),
        "{problem:?}"
    );
    assert_eq!(http, Some(200));
    assert!(problem.message.contains(says), "{}", problem.message);
    assert!(
        problem.message.contains("--retry-unknown"),
        "{}",
        problem.message
    );
    assert_eq!(attempts, 1);
    assert_eq!(
        raw.count(),
        1,
        "a create that may have happened is never resent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_announcing_500_mb_is_not_read_and_the_create_is_unknown() {
    let (outcome, attempts, took, raw) =
        create_against(raw::announced(500 * 1024 * 1024), "max_retries = 3").await;
    assert_unknown_once(&outcome, attempts, &raw, "longer than 4 MiB");
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_chunked_answer_is_read_up_to_the_cap_and_the_create_is_unknown() {
    let (outcome, attempts, took, raw) =
        create_against(raw::endless_chunked(), "max_retries = 3\ntimeout_secs = 20").await;
    assert_unknown_once(&outcome, attempts, &raw, "longer than 4 MiB");
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dripping_answer_is_cut_by_the_timeout_and_the_create_is_unknown() {
    let (outcome, attempts, took, raw) = create_against(
        raw::drip(Duration::from_millis(50)),
        "max_retries = 3\ntimeout_secs = 0.5",
    )
    .await;
    let (_, problem, _) = failed(&outcome);
    assert!(
        problem.message.contains("timed out") || problem.message.contains("timeout"),
        "{}",
        problem.message
    );
    assert_unknown_once(&outcome, attempts, &raw, "HTTP 200");
    assert!(
        took < Duration::from_secs(3),
        "the whole body is timed: took {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_html_page_with_200_is_unknown_for_a_create_and_says_what_it_is() {
    let (outcome, attempts, _, raw) = create_against(
        raw::whole(
            200,
            "Content-Type: text/html\r\n",
            "<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>Please sign in</body></html>",
        ),
        "max_retries = 3",
    )
    .await;
    assert_unknown_once(&outcome, attempts, &raw, "an HTML page");
    let (_, problem, _) = failed(&outcome);
    assert!(problem.message.contains("base_url"), "{}", problem.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_answer_to_an_idempotent_status_update_is_retried() {
    let raw = RawServer::start(raw::endless_chunked());
    let target = raw_arctos(
        &raw,
        "max_retries = 2\n[targets.arctos.paths]\nupdate_task_status = \"/api/task/status/do_update\"",
    );
    let batch = batch(
        Kind::TaskStatus,
        &Ctx::default(),
        &["task_num", "task_status"],
        &[&["202406060000001", "finished"]],
    );
    let started = Instant::now();
    let (outcomes, trail) = done(sender(target, Kind::TaskStatus).send(&batch).await);
    let (stage, problem, _) = failed(&outcomes[0]);
    assert_eq!((stage, problem.code), (Stage::Transport, Code::Transport));
    assert!(
        problem.message.contains("longer than 4 MiB"),
        "{}",
        problem.message
    );
    assert_eq!(trail.attempts(), 3, "max_retries + 1 attempts");
    assert_eq!(raw.count(), 3);
    assert!(started.elapsed() < Duration::from_secs(20));
}

// ---------------------------------------------------------------------------------
// Redirects: reported with their status, the Location's host (never its path or
// query) and what is probably wrong with base_url; never followed.
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_names_the_host_only_and_says_how_base_url_is_wrong() {
    let srv = Server::start().await;
    let port = srv.server.port();
    for (status, location, shows, hint) in [
        (
            301,
            "https://login.example.com:8443/sso?next=/x&token=sekret-in-query".to_string(),
            "to https://login.example.com:8443 ".to_string(),
            "scheme",
        ),
        (
            308,
            "http://elsewhere.example.com/api/task/do_add?token=sekret-in-query".to_string(),
            "to http://elsewhere.example.com ".to_string(),
            "another host",
        ),
        (
            307,
            "/prefix/api/task/do_add?token=sekret-in-query".to_string(),
            format!("to http://127.0.0.1:{port} "),
            "path prefix",
        ),
    ] {
        srv.server.reset_async().await;
        srv.any_on(
            CREATE_TASK,
            vec![Reply::raw(status, "").header("Location", &location)],
        )
        .await;
        let target = arctos_target(&srv, "tok-redirect", "max_retries = 3");
        let (abort, trail) = aborted(
            sender(target, Kind::Appointments)
                .send(&appointment_batch())
                .await,
        );
        let Abort::EndpointMissing(missing) = &abort else {
            panic!("{status}: {abort:?}");
        };
        let message = &missing.message;
        assert!(message.contains(&format!("HTTP {status}")), "{message}");
        assert!(message.contains(&shows), "{status}: {message}");
        assert!(message.contains(hint), "{status}: {message}");
        assert!(message.contains("base_url"), "{message}");
        for hidden in ["sekret", "token=", "/sso", "do_add", "/prefix"] {
            assert!(
                !message.contains(hidden),
                "{status} shows {hidden}: {message}"
            );
        }
        assert_eq!(trail.attempts(), 1, "{status} is not retried");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_303_on_a_create_is_unknown_since_the_server_may_have_done_it() {
    let (srv, sent, _) = appointment_against(
        "max_retries = 3",
        vec![Reply::raw(303, "").header("Location", "/api/task/view?id=1")],
    )
    .await;
    let (outcomes, _) = done(sent);
    let (stage, problem, http) = failed(&outcomes[0]);
    assert_eq!(
        (stage, problem.code),
        (Stage::Unknown, Code::OutcomeUnknown)
    );
    assert_eq!(http, Some(303));
    assert!(problem.message.contains("HTTP 303"), "{}", problem.message);
    assert_eq!(srv.log.on(CREATE_TASK).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_during_the_arctos_login_is_reported_as_a_wrong_base_url() {
    let srv = Server::start().await;
    let env = secret_env("FERRY_VT_LICENSE", "lic-redirect");
    let toml = format!(
        "[targets.arctos]\nbase_url = \"{}\"\nlicense_key_env = \"{env}\"\nlogin_user_id = \"ops-import\"\nrate = 1000\nburst = 100\n",
        srv.base_url()
    );
    srv.any_on(
        AUTH_CODE,
        vec![Reply::raw(302, "").header("Location", "https://sso.example.com/login?code=x")],
    )
    .await;
    let sender = sender(target(&toml, "arctos"), Kind::Appointments);
    let abort = sender
        .authenticate()
        .await
        .expect_err("a redirect is no login");
    let Abort::EndpointMissing(missing) = &abort else {
        panic!("{abort:?}");
    };
    let message = &missing.message;
    assert!(
        message.contains("HTTP 302") && message.contains("https://sso.example.com"),
        "{message}"
    );
    assert!(
        !message.contains("code=x") && !message.contains("/login"),
        "{message}"
    );
}

// ---------------------------------------------------------------------------------
// Secrets quoted back by the vendor, through Sender (the binary-level checks are in
// tests/it/secrets.rs)
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_refusal_that_quotes_the_license_key_does_not_carry_it() {
    let srv = Server::start().await;
    let key = "lic/sekret+key-000111222";
    let env = secret_env("FERRY_VT_LICENSE", key);
    let toml = format!(
        "[targets.arctos]\nbase_url = \"{}\"\nlicense_key_env = \"{env}\"\nlogin_user_id = \"ops-import\"\nrate = 1000\nburst = 100\n",
        srv.base_url()
    );
    srv.any_on(
        AUTH_CODE,
        vec![Reply::json(
            403,
            json!({"status": 0, "message": format!("license key {key} is not valid")}),
        )],
    )
    .await;
    let sender = sender(target(&toml, "arctos"), Kind::Appointments);
    let abort = sender.authenticate().await.expect_err("refused");
    assert!(matches!(abort, Abort::AuthRefused(_)), "{abort:?}");
    assert!(!abort.message().contains("sekret"), "{}", abort.message());
    assert!(abort.message().contains("***"), "{}", abort.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_issued_by_the_login_and_quoted_back_is_scrubbed() {
    let (srv, target) = login_server(vec![(
        "access-1",
        vec![Reply::json(
            200,
            json!({"status": 0, "message": "session access-1 of code code-1 expired"}),
        )],
    )])
    .await;
    let sender = sender(target, Kind::Appointments);
    let (outcomes, _) = done(sender.send(&appointment_batch()).await);
    srv.assert_all_matched();
    let (_, problem, _) = failed(&outcomes[0]);
    // "access-1" and "code-1" are shorter than a fragment, so only whole ones count.
    assert!(
        !problem.message.contains("access-1") && !problem.message.contains("code-1"),
        "{}",
        problem.message
    );
}

// ---------------------------------------------------------------------------------
// Hostile and unusual answers (review of the session after issue 12)
// ---------------------------------------------------------------------------------

/// A 201 or 202 says the request was carried out: read as a failure, the next run
/// would send the row again and the vendor would hold it twice. A 2xx without an
/// answer is unknown, never resent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_2xx_is_read_as_carried_out() {
    for status in [201, 202] {
        let reply = Reply::json(
            status,
            json!({"status": 1, "message": "success", "info": {"task_num": "202312210000001"}}),
        );
        let (_, sent, _) = appointment_against("", vec![reply]).await;
        let (outcomes, _) = done(sent);
        assert_eq!(
            succeeded(&outcomes[0]),
            (Some("202312210000001".into()), vec![]),
            "HTTP {status}"
        );
    }
    let (srv, sent, _) = appointment_against("", vec![Reply::raw(204, "")]).await;
    let (outcomes, _) = done(sent);
    let (stage, problem, status) = failed(&outcomes[0]);
    assert_eq!(
        (stage, problem.code, status),
        (Stage::Unknown, Code::OutcomeUnknown, Some(204))
    );
    assert_eq!(srv.log.on(CREATE_TASK).len(), 1, "never resent");
}

/// A remote id is data that later rows send back as `task_num`: a short token's digits
/// in it are chance and stay; a long secret in it means the id is not recorded at all,
/// never recorded masked (`***0100000001` would name no task, or the wrong one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_id_is_never_rewritten_by_the_scrubber() {
    for (token, task_num, kept) in [
        ("2026", "20260100000001", true),
        ("tok-9f8e7d6c5b4a", "2026-tok-9f8e7d6c5b4a", false),
    ] {
        let srv = Server::start().await;
        let target = arctos_target(&srv, token, "");
        srv.any_on(CREATE_TASK, vec![arctos_ok(task_num)]).await;
        let sent = sender(target, Kind::Appointments)
            .send(&appointment_batch())
            .await;
        let (outcomes, _) = done(sent);
        let (remote_id, warnings) = succeeded(&outcomes[0]);
        if kept {
            assert_eq!((remote_id.as_deref(), warnings), (Some(task_num), vec![]));
        } else {
            assert_eq!(remote_id, None);
            assert_eq!(
                warnings.iter().map(|w| w.code).collect::<Vec<_>>(),
                [Code::VendorWarning]
            );
            assert!(!warnings[0].message.contains(token), "{warnings:?}");
        }
    }
}

/// A server request id is copied into every row of its batch: one of megabytes is cut.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_request_id_is_cut_to_a_sane_length() {
    let huge = "r".repeat(100_000);
    let mut answer = quanshi_answer(
        200,
        "ok",
        vec![
            call_record("id-1", "user1", "18100000030", "", ""),
            call_record("id-2", "user2", "18100000031", "", ""),
            call_record("id-3", "user3", "", "10", "58512042"),
        ],
        vec![],
    );
    answer["requestId"] = json!(huge);
    let (_, sent) = calls_against(vec![Reply::json(200, answer)]).await;
    let (_, trail) = done(sent);
    assert_eq!(trail.server_request_ids, [format!("{}…", "r".repeat(128))]);
}
