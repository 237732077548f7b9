//! Mapping and validation of the six kinds, table by table: for every rule of every kind a
//! good and a bad value, the exact request body a valid row becomes (in the vendor
//! example's JSON types), the exact problem codes and fields of a rejected row, record
//! keys and duplicates, header matching, and a property test that no cell content makes
//! validation panic.
//!
//! Phone rules have their own tests (`tests/it/phone.rs`); here phones appear only as far as
//! a kind needs them (which column, which country code, what is sent).

use std::collections::HashMap;

use ferry::config::Config;
use ferry::kinds::{
    agent_settings, appointments, calls, flag_for_column, publishers, Columns, Ctx, Item, Kind,
    KindField, MappingError, Rejected, RowCells, TaskRef, Valid, Validator,
};
use ferry::problem::Problem;
use proptest::prelude::*;
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------
// Helpers

/// A manifest row as (column, cell) pairs: the header is the columns, in this order.
type Row<'a> = [(&'a str, &'a str)];

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Items as their messages write them.
fn texts(items: &[impl ToString]) -> Vec<String> {
    items.iter().map(ToString::to_string).collect()
}

fn map(kind: Kind, header: &[&str]) -> Columns {
    Columns::map(kind, &strings(header), &HashMap::new(), &[])
        .unwrap_or_else(|e| panic!("{kind:?} header {header:?}: {e}"))
}

fn validate(kind: Kind, ctx: &Ctx, row: &Row) -> Result<Valid, Rejected> {
    let header: Vec<&str> = row.iter().map(|(h, _)| *h).collect();
    let cells: Vec<String> = row.iter().map(|(_, v)| v.to_string()).collect();
    let columns = map(kind, &header);
    kind.validate(
        &RowCells {
            cells: &cells,
            columns: &columns,
        },
        ctx,
    )
}

/// `base` with some cells replaced (or columns added at the end).
fn with<'a>(base: &Row<'a>, changes: &Row<'a>) -> Vec<(&'a str, &'a str)> {
    let mut row = base.to_vec();
    for &(column, value) in changes {
        match row.iter_mut().find(|(h, _)| *h == column) {
            Some(cell) => cell.1 = value,
            None => row.push((column, value)),
        }
    }
    row
}

/// `base` without some columns.
fn without<'a>(base: &Row<'a>, columns: &[&str]) -> Vec<(&'a str, &'a str)> {
    base.iter()
        .filter(|(h, _)| !columns.contains(h))
        .copied()
        .collect()
}

/// A JSON object with some keys replaced; `null` removes a key.
fn patch(base: &Value, changes: Value) -> Value {
    let mut out = base.clone();
    let obj = out.as_object_mut().expect("an object");
    for (k, v) in changes.as_object().expect("an object") {
        if v.is_null() {
            obj.remove(k);
        } else {
            obj.insert(k.clone(), v.clone());
        }
    }
    out
}

/// What the vendor would receive for one item. The arctos kinds that name a task show it
/// as `task_num` as written (resolving an `out_task_num` is the run's job); publishers and
/// calls show the one-item request they would be batched into (Quanshi's `token` aside).
fn sent(item: &Item) -> Value {
    fn to_value(v: impl serde::Serialize) -> Value {
        serde_json::to_value(v).expect("an item always serialises")
    }
    match item {
        Item::Appointment(a) => to_value(a),
        Item::Moderator(m) => to_value(m.body(m.task.key_part())),
        Item::Publisher(p) => json!({
            "task_num": p.task.key_part(),
            "customer": [to_value(&p.customer)],
        }),
        Item::TaskStatus(t) => to_value(t.body(t.task.key_part())),
        Item::Call(c) => json!({
            "eventId": c.event_id,
            "beforeMinutes": c.before_minutes,
            "callList": [to_value(&c.entry)],
        }),
        Item::AgentSetting(a) => to_value(a),
    }
}

fn codes(problems: &[Problem]) -> Vec<(String, String)> {
    problems
        .iter()
        .map(|p| (p.code.as_str().to_string(), p.field.clone()))
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(c, f)| (c.to_string(), f.to_string()))
        .collect()
}

/// The expected fate of a row.
#[derive(Debug)]
enum Want {
    /// Valid: the body sent, and the warnings (code, field).
    Sent(Value, Vec<(&'static str, &'static str)>),
    /// Rejected: every problem (code, field), in order.
    Problems(Vec<(&'static str, &'static str)>),
}

fn ok(body: Value) -> Want {
    Want::Sent(body, Vec::new())
}

fn warned(body: Value, warnings: &[(&'static str, &'static str)]) -> Want {
    Want::Sent(body, warnings.to_vec())
}

fn bad(problems: &[(&'static str, &'static str)]) -> Want {
    Want::Problems(problems.to_vec())
}

fn check(kind: Kind, ctx: &Ctx, row: &Row, want: &Want, label: &str) {
    match (validate(kind, ctx, row), want) {
        (Ok(valid), Want::Sent(body, warnings)) => {
            assert_eq!(&sent(&valid.item), body, "{label}: body of {row:?}");
            assert_eq!(
                codes(&valid.warnings),
                pairs(warnings),
                "{label}: warnings of {row:?}"
            );
        }
        (Err(rejected), Want::Problems(problems)) => {
            assert_eq!(
                codes(&rejected.problems),
                pairs(problems),
                "{label}: problems of {row:?}: {:#?}",
                rejected.problems
            );
            for p in &rejected.problems {
                assert!(!p.message.is_empty(), "{label}: {p:?} has no message");
            }
        }
        (got, want) => panic!("{label}: row {row:?}\n got {got:#?}\nwant {want:#?}"),
    }
}

fn taipei() -> Ctx {
    Ctx {
        timezone: Some(chrono_tz::Asia::Taipei),
        ..Ctx::default()
    }
}

// ---------------------------------------------------------------------------------------
// appointments

const APPOINTMENT: &Row = &[
    ("business_id", "15"),
    ("out_task_num", "APT-1001"),
    ("out_task_type", "loan"),
    ("task_type", "normal"),
    ("task_notify", "false"),
    ("task_time", "2024-02-22T14:00:00+08:00"),
    ("task_remark", "remark_somthing"),
    ("branch_code", "943"),
    ("business_code", "2"),
    ("room_type", "normal"),
    ("video", "true"),
];

/// The vendor example's body, for `APPOINTMENT`.
fn appointment_body() -> Value {
    json!({
        "business_id": 15,
        "out_task_num": "APT-1001",
        "out_task_type": "loan",
        "task_type": "normal",
        "task_notify": false,
        "task_time": "1708581600",
        "task_remark": "remark_somthing",
        "branch_code": 943,
        "business_code": 2,
        "room_type": "normal",
        "video": true
    })
}

fn appointments(ctx: &Ctx, table: &[(&Row, Want)]) {
    for (i, (changes, want)) in table.iter().enumerate() {
        let row = with(APPOINTMENT, changes);
        check(
            Kind::Appointments,
            ctx,
            &row,
            want,
            &format!("appointments case {i} {changes:?}"),
        );
    }
}

#[test]
fn appointment_body_follows_the_vendor_example_types() {
    let valid = validate(Kind::Appointments, &taipei(), APPOINTMENT).expect("valid");
    let body = sent(&valid.item);
    assert_eq!(body, appointment_body());
    assert!(body["business_id"].is_number());
    assert!(body["task_time"].is_string());
    assert!(body["task_notify"].is_boolean() && body["video"].is_boolean());
    assert!(body["branch_code"].is_number() && body["business_code"].is_number());
    assert_eq!(valid.key, "APT-1001");
    assert!(valid.warnings.is_empty());
}

#[test]
fn appointment_empty_optional_cells_are_left_out_and_task_notify_defaults_to_false() {
    let ctx = taipei();
    let minimal = patch(
        &appointment_body(),
        json!({
            "out_task_type": null, "task_time": null, "task_remark": null,
            "business_code": null, "room_type": "realtime",
        }),
    );
    let empty_cells = with(
        APPOINTMENT,
        &[
            ("out_task_type", ""),
            ("task_notify", ""),
            ("task_time", ""),
            ("task_remark", "   "),
            ("business_code", ""),
            ("room_type", "realtime"),
        ],
    );
    check(
        Kind::Appointments,
        &ctx,
        &empty_cells,
        &ok(minimal.clone()),
        "empty cells",
    );
    // Columns that are not there at all: the same body, task_notify still sent.
    let absent = without(
        &with(APPOINTMENT, &[("room_type", "realtime")]),
        &[
            "out_task_type",
            "task_notify",
            "task_time",
            "task_remark",
            "business_code",
        ],
    );
    check(
        Kind::Appointments,
        &ctx,
        &absent,
        &ok(minimal),
        "absent columns",
    );
}

#[test]
fn appointment_booleans_accept_every_spelling_in_any_case() {
    let truths = ["true", "TRUE", "True", "1", "yes", "YES", "Yes", "y", "Y"];
    let lies = ["false", "FALSE", "False", "0", "no", "NO", "No", "n", "N"];
    for field in ["task_notify", "video"] {
        for (spellings, value) in [(&truths, true), (&lies, false)] {
            for spelling in spellings.iter() {
                let row = with(APPOINTMENT, &[(field, spelling)]);
                let want = ok(patch(&appointment_body(), json!({ field: value })));
                check(Kind::Appointments, &taipei(), &row, &want, spelling);
            }
        }
        for nonsense in [
            "maybe",
            "2",
            "-1",
            "t",
            "f",
            "on",
            "off",
            "tru",
            "yes please",
            "是",
        ] {
            let row = with(APPOINTMENT, &[(field, nonsense)]);
            let want = bad(&[("invalid_boolean", field)]);
            check(Kind::Appointments, &taipei(), &row, &want, nonsense);
        }
    }
}

#[test]
fn appointment_required_fields_integers_and_enums() {
    let body = appointment_body();
    appointments(
        &taipei(),
        &[
            // business_id: an integer, required
            (
                &[("business_id", "abc")],
                bad(&[("invalid_integer", "business_id")]),
            ),
            (
                &[("business_id", "15.5")],
                bad(&[("invalid_integer", "business_id")]),
            ),
            (
                &[("business_id", "1e3")],
                bad(&[("invalid_integer", "business_id")]),
            ),
            (&[("business_id", "")], bad(&[("required", "business_id")])),
            (
                &[("business_id", "  ")],
                bad(&[("required", "business_id")]),
            ),
            (
                &[("business_id", " 42 ")],
                ok(patch(&body, json!({"business_id": 42}))),
            ),
            // out_task_num: required, text as given
            (
                &[("out_task_num", "")],
                bad(&[("required", "out_task_num")]),
            ),
            (
                &[("out_task_num", " 00123 ")],
                ok(patch(&body, json!({"out_task_num": "00123"}))),
            ),
            // task_type: normal | custom
            (
                &[("task_type", "custom")],
                ok(patch(&body, json!({"task_type": "custom"}))),
            ),
            (
                &[("task_type", "vip")],
                bad(&[("invalid_choice", "task_type")]),
            ),
            (&[("task_type", "")], bad(&[("required", "task_type")])),
            // room_type: realtime | normal
            (
                &[("room_type", "realtime")],
                ok(patch(&body, json!({"room_type": "realtime"}))),
            ),
            (
                &[("room_type", "scheduled")],
                bad(&[("invalid_choice", "room_type")]),
            ),
            (&[("room_type", "")], bad(&[("required", "room_type")])),
            // video: required (task_notify is not)
            (&[("video", "")], bad(&[("required", "video")])),
            // branch_code: required; a number when an integer, text otherwise
            (&[("branch_code", "")], bad(&[("required", "branch_code")])),
            (
                &[("branch_code", "085")],
                ok(patch(&body, json!({"branch_code": "085"}))),
            ),
            (
                &[("branch_code", "0")],
                ok(patch(&body, json!({"branch_code": 0}))),
            ),
            (
                &[("branch_code", "TPE-1")],
                ok(patch(&body, json!({"branch_code": "TPE-1"}))),
            ),
            // business_code: optional; a number when an integer
            (
                &[("business_code", "02")],
                ok(patch(&body, json!({"business_code": "02"}))),
            ),
            (
                &[("business_code", "B7")],
                ok(patch(&body, json!({"business_code": "B7"}))),
            ),
            (
                &[("business_code", "")],
                ok(patch(&body, json!({"business_code": null}))),
            ),
            // texts pass as given
            (
                &[("out_task_type", ""), ("task_remark", "")],
                ok(patch(
                    &body,
                    json!({"out_task_type": null, "task_remark": null}),
                )),
            ),
        ],
    );
}

#[test]
fn appointment_task_time_forms() {
    let body = appointment_body();
    let at = |seconds: &str| ok(patch(&body, json!({ "task_time": seconds })));
    appointments(
        &taipei(),
        &[
            // Unix seconds, as given
            (&[("task_time", "1796094000")], at("1796094000")),
            (&[("task_time", "1703141398")], at("1703141398")),
            // RFC 3339, any offset
            (
                &[("task_time", "2024-02-22T14:00:00+08:00")],
                at("1708581600"),
            ),
            (&[("task_time", "2024-02-22T06:00:00Z")], at("1708581600")),
            (
                &[("task_time", "2024-02-22T01:00:00-05:00")],
                at("1708581600"),
            ),
            // YYYY-MM-DD HH:MM[:SS] in the configured zone (Asia/Taipei, UTC+8)
            (&[("task_time", "2026-12-01 10:00")], at("1796090400")),
            (&[("task_time", "2026-12-02 09:30:00")], at("1796175000")),
            (&[("task_time", "2024-02-22 14:00")], at("1708581600")),
            // milliseconds are not seconds
            (
                &[("task_time", "1796094000000")],
                bad(&[("invalid_time", "task_time")]),
            ),
            (
                &[("task_time", "tomorrow 10am")],
                bad(&[("invalid_time", "task_time")]),
            ),
            (
                &[("task_time", "2026-13-01 10:00")],
                bad(&[("invalid_time", "task_time")]),
            ),
            (
                &[("task_time", "2026-02-30 10:00")],
                bad(&[("invalid_time", "task_time")]),
            ),
            (
                &[("task_time", "01/12/2026 10:00")],
                bad(&[("invalid_time", "task_time")]),
            ),
            (
                &[("task_time", "-1")],
                bad(&[("invalid_time", "task_time")]),
            ),
        ],
    );
}

#[test]
fn appointment_local_time_without_a_configured_zone_is_timezone_required() {
    let body = appointment_body();
    let no_zone = Ctx::default();
    appointments(
        &no_zone,
        &[
            (
                &[("task_time", "2026-12-01 10:00")],
                bad(&[("timezone_required", "task_time")]),
            ),
            (
                &[("task_time", "2026-12-01 10:00:00")],
                bad(&[("timezone_required", "task_time")]),
            ),
            // forms that carry their own zone need no configured one
            (
                &[("task_time", "2024-02-22T14:00:00+08:00")],
                ok(body.clone()),
            ),
            (&[("task_time", "1708581600")], ok(body)),
        ],
    );
}

#[test]
fn appointment_local_time_in_a_daylight_saving_gap_is_invalid() {
    let new_york = Ctx {
        timezone: Some(chrono_tz::America::New_York),
        ..Ctx::default()
    };
    let body = appointment_body();
    appointments(
        &new_york,
        &[
            // 2026-03-08: clocks jump from 02:00 EST to 03:00 EDT
            (
                &[("task_time", "2026-03-08 01:59")],
                ok(patch(&body, json!({"task_time": "1772953140"}))),
            ),
            (
                &[("task_time", "2026-03-08 02:30")],
                bad(&[("invalid_time", "task_time")]),
            ),
            (
                &[("task_time", "2026-03-08 03:00")],
                ok(patch(&body, json!({"task_time": "1772953200"}))),
            ),
            // winter time: UTC-5
            (
                &[("task_time", "2026-12-01 10:00")],
                ok(patch(&body, json!({"task_time": "1796137200"}))),
            ),
        ],
    );
}

#[test]
fn appointment_task_time_is_required_only_for_normal_rooms() {
    let body = appointment_body();
    appointments(
        &taipei(),
        &[
            (
                &[("room_type", "normal"), ("task_time", "")],
                bad(&[("required", "task_time")]),
            ),
            (
                &[("room_type", "NORMAL"), ("task_time", "")],
                bad(&[("required", "task_time")]),
            ),
            (
                &[("room_type", "realtime"), ("task_time", "")],
                ok(patch(
                    &body,
                    json!({"room_type": "realtime", "task_time": null}),
                )),
            ),
            // a realtime room may still have a time, and it is sent
            (
                &[("room_type", "realtime")],
                ok(patch(&body, json!({"room_type": "realtime"}))),
            ),
        ],
    );
    // Without the column at all.
    let row = without(APPOINTMENT, &["task_time"]);
    check(
        Kind::Appointments,
        &taipei(),
        &row,
        &bad(&[("required", "task_time")]),
        "normal room, no task_time column",
    );
}

#[test]
fn appointment_with_several_problems_lists_them_all() {
    let row = with(
        APPOINTMENT,
        &[
            ("business_id", "abc"),
            ("task_type", "vip"),
            ("task_notify", "perhaps"),
            ("task_time", ""),
            ("branch_code", ""),
            ("video", "maybe"),
        ],
    );
    let rejected = validate(Kind::Appointments, &taipei(), &row).expect_err("rejected");
    let mut got = codes(&rejected.problems);
    got.sort();
    let mut want = pairs(&[
        ("invalid_integer", "business_id"),
        ("invalid_choice", "task_type"),
        ("invalid_boolean", "task_notify"),
        ("required", "task_time"),
        ("required", "branch_code"),
        ("invalid_boolean", "video"),
    ]);
    want.sort();
    assert_eq!(got, want);
    // The key's own field was fine, so the key is known (for duplicate detection).
    assert_eq!(rejected.key.as_deref(), Some("APT-1001"));
}

// ---------------------------------------------------------------------------------------
// moderators

const MODERATOR: &Row = &[
    ("out_task_num", "APT-1001"),
    ("business_code", "2"),
    ("branch_code", "85"),
    ("emp_id", "unique_id"),
];

#[test]
fn moderator_body_is_all_strings_as_in_the_vendor_example() {
    let valid = validate(Kind::Moderators, &Ctx::default(), MODERATOR).expect("valid");
    assert_eq!(
        valid.item,
        Item::Moderator(ferry::kinds::Moderator {
            task: TaskRef::OutTaskNum("APT-1001".into()),
            business_code: Some("2".into()),
            branch_code: Some("85".into()),
            emp_id: Some("unique_id".into()),
        })
    );
    let Item::Moderator(m) = &valid.item else {
        unreachable!()
    };
    assert_eq!(
        serde_json::to_value(m.body("202402220000021")).expect("serialises"),
        json!({
            "task_num": "202402220000021",
            "business_code": "2",
            "branch_code": "85",
            "emp_id": "unique_id"
        })
    );
    assert_eq!(valid.key, "APT-1001|unique_id");
}

#[test]
fn moderator_rules() {
    let ctx = Ctx::default();
    let table: &[(Vec<(&str, &str)>, Want)] = &[
        (
            with(
                MODERATOR,
                &[("business_code", ""), ("branch_code", ""), ("emp_id", "")],
            ),
            ok(json!({"task_num": "APT-1001"})),
        ),
        (
            without(MODERATOR, &["business_code", "branch_code"]),
            ok(json!({"task_num": "APT-1001", "emp_id": "unique_id"})),
        ),
        (
            with(MODERATOR, &[("out_task_num", "")]),
            bad(&[("task_ref_required", "task_num")]),
        ),
        (
            with(MODERATOR, &[("out_task_num", " "), ("task_num", "")]),
            bad(&[("task_ref_required", "task_num")]),
        ),
    ];
    for (i, (row, want)) in table.iter().enumerate() {
        check(
            Kind::Moderators,
            &ctx,
            row,
            want,
            &format!("moderators case {i}"),
        );
    }
}

/// `task_num` or `out_task_num`, one required, `task_num` wins: the same for the three
/// kinds that name a task.
#[test]
fn task_num_or_out_task_num_and_task_num_wins() {
    let cases: &[(Kind, &Row, &str)] = &[
        (Kind::Moderators, &[("emp_id", "ops-lee")], "|ops-lee"),
        (
            Kind::Publishers,
            &[
                ("customer_name", "Lin Wei"),
                ("customer_id_num", "A123456789"),
            ],
            "|A123456789",
        ),
        (
            Kind::TaskStatus,
            &[("task_status", "finished")],
            "|finished",
        ),
    ];
    for &(kind, rest, key_tail) in cases {
        let ctx = Ctx::default();
        let task_of = |row: Vec<(&str, &str)>| -> (TaskRef, String) {
            let valid =
                validate(kind, &ctx, &row).unwrap_or_else(|r| panic!("{kind:?} {row:?}: {r:?}"));
            let task = match valid.item {
                Item::Moderator(m) => m.task,
                Item::Publisher(p) => p.task,
                Item::TaskStatus(t) => t.task,
                other => panic!("{other:?}"),
            };
            (task, valid.key)
        };
        let row = |refs: &[(&'static str, &'static str)]| {
            let mut row = refs.to_vec();
            row.extend_from_slice(rest);
            row
        };
        assert_eq!(
            task_of(row(&[("out_task_num", "APT-1001")])),
            (
                TaskRef::OutTaskNum("APT-1001".into()),
                format!("APT-1001{key_tail}")
            ),
            "{kind:?} out_task_num only"
        );
        assert_eq!(
            task_of(row(&[("task_num", "202402220000021")])),
            (
                TaskRef::TaskNum("202402220000021".into()),
                format!("202402220000021{key_tail}")
            ),
            "{kind:?} task_num only"
        );
        assert_eq!(
            task_of(row(&[
                ("task_num", "202402220000021"),
                ("out_task_num", "APT-1001")
            ])),
            (
                TaskRef::TaskNum("202402220000021".into()),
                format!("202402220000021{key_tail}")
            ),
            "{kind:?} both: task_num wins"
        );
        assert_eq!(
            task_of(row(&[("task_num", ""), ("out_task_num", "APT-1001")])),
            (
                TaskRef::OutTaskNum("APT-1001".into()),
                format!("APT-1001{key_tail}")
            ),
            "{kind:?} empty task_num, out_task_num given"
        );
        let rejected = validate(kind, &ctx, &row(&[("task_num", ""), ("out_task_num", "")]))
            .expect_err("neither");
        assert_eq!(
            codes(&rejected.problems),
            pairs(&[("task_ref_required", "task_num")]),
            "{kind:?} neither"
        );
        assert_eq!(rejected.key, None);
    }
}

// ---------------------------------------------------------------------------------------
// publishers

const PUBLISHER: &Row = &[
    ("out_task_num", "APT-1001"),
    ("customer_title", "Mr."),
    ("customer_name", "Lin Wei"),
    ("customer_id_num", "A123456789"),
    ("customer_country_code", "+886"),
    ("customer_phone", "0911211211"),
    ("customer_email", "lin@example.com"),
];

fn publisher_body() -> Value {
    json!({
        "task_num": "APT-1001",
        "customer": [{
            "customer_title": "Mr.",
            "customer_name": "Lin Wei",
            "customer_id_num": "A123456789",
            "customer_country_code": "+886",
            "customer_phone": "0911211211",
            "customer_email": "lin@example.com"
        }]
    })
}

fn customer(changes: Value) -> Value {
    let body = publisher_body();
    json!({
        "task_num": "APT-1001",
        "customer": [patch(&body["customer"][0], changes)],
    })
}

fn publishers(ctx: &Ctx, table: &[(Vec<(&str, &str)>, Want)]) {
    for (i, (row, want)) in table.iter().enumerate() {
        check(
            Kind::Publishers,
            ctx,
            row,
            want,
            &format!("publishers case {i}"),
        );
    }
}

#[test]
fn publisher_body_follows_the_vendor_example() {
    let valid = validate(Kind::Publishers, &Ctx::default(), PUBLISHER).expect("valid");
    assert_eq!(sent(&valid.item), publisher_body());
    assert_eq!(valid.key, "APT-1001|A123456789");
}

#[test]
fn publisher_country_code_forms_are_sent_as_plus_code() {
    let ctx = Ctx::default();
    let table: Vec<_> = ["886", "+886", "00886", "(886)", " +886 "]
        .into_iter()
        .map(|cc| {
            (
                with(PUBLISHER, &[("customer_country_code", cc)]),
                ok(publisher_body()),
            )
        })
        .collect();
    publishers(&ctx, &table);
}

#[test]
fn publisher_rules() {
    let no_default = Ctx::default();
    publishers(
        &no_default,
        &[
            // required texts
            (
                with(PUBLISHER, &[("customer_name", "")]),
                bad(&[("required", "customer_name")]),
            ),
            (
                with(PUBLISHER, &[("customer_id_num", "")]),
                bad(&[("required", "customer_id_num")]),
            ),
            // optional cells left out when empty
            (
                with(PUBLISHER, &[("customer_title", ""), ("customer_email", "")]),
                ok(customer(
                    json!({"customer_title": null, "customer_email": null}),
                )),
            ),
            (
                with(
                    PUBLISHER,
                    &[("customer_country_code", ""), ("customer_phone", "")],
                ),
                ok(customer(
                    json!({"customer_country_code": null, "customer_phone": null}),
                )),
            ),
            // a country code without a phone is still sent
            (
                with(PUBLISHER, &[("customer_phone", "")]),
                ok(customer(json!({"customer_phone": null}))),
            ),
            // a phone needs a country code (from the row or the config)
            (
                with(PUBLISHER, &[("customer_country_code", "")]),
                bad(&[("country_code_required", "customer_country_code")]),
            ),
            (
                with(PUBLISHER, &[("customer_country_code", "999")]),
                bad(&[("invalid_country_code", "customer_country_code")]),
            ),
            // a landline is fine too, sent as digits with its trunk 0
            (
                with(PUBLISHER, &[("customer_phone", "02 2345 6789")]),
                ok(customer(json!({"customer_phone": "0223456789"}))),
            ),
            (
                with(PUBLISHER, &[("customer_phone", "0912-345-678")]),
                ok(customer(json!({"customer_phone": "0912345678"}))),
            ),
            // arctos gets the national format's digits, trunk 0 included, however the
            // cell wrote the number (issue 7): its national significant number,
            (
                with(PUBLISHER, &[("customer_phone", "911211215")]),
                ok(customer(json!({"customer_phone": "0911211215"}))),
            ),
            (
                with(PUBLISHER, &[("customer_phone", "９１１２１１２１５")]),
                ok(customer(json!({"customer_phone": "0911211215"}))),
            ),
            // or with its own +886 (dropped, with a warning), 00886 or Taiwan's 002
            (
                with(PUBLISHER, &[("customer_phone", "+886 911 211 215")]),
                warned(
                    customer(json!({"customer_phone": "0911211215"})),
                    &[("country_prefix_dropped", "customer_phone")],
                ),
            ),
            (
                with(PUBLISHER, &[("customer_phone", "00886911211215")]),
                warned(
                    customer(json!({"customer_phone": "0911211215"})),
                    &[("country_prefix_dropped", "customer_phone")],
                ),
            ),
            (
                with(PUBLISHER, &[("customer_phone", "002 886 911 211 215")]),
                warned(
                    customer(json!({"customer_phone": "0911211215"})),
                    &[("country_prefix_dropped", "customer_phone")],
                ),
            ),
            (
                with(PUBLISHER, &[("customer_phone", "+886 (0)911 211 215")]),
                warned(
                    customer(json!({"customer_phone": "0911211215"})),
                    &[("country_prefix_dropped", "customer_phone")],
                ),
            ),
            (
                with(PUBLISHER, &[("customer_phone", "+86 138 0013 8000")]),
                bad(&[("country_code_mismatch", "customer_phone")]),
            ),
            (
                with(PUBLISHER, &[("customer_phone", "8.86911E+11")]),
                bad(&[("scientific_notation", "customer_phone")]),
            ),
            (
                with(PUBLISHER, &[("customer_phone", "0911 211 211 ext 5")]),
                bad(&[("invalid_characters", "customer_phone")]),
            ),
            // e-mail syntax
            (
                with(PUBLISHER, &[("customer_email", "not-an-email")]),
                bad(&[("invalid_email", "customer_email")]),
            ),
            (
                with(PUBLISHER, &[("customer_email", "lin@@example.com")]),
                bad(&[("invalid_email", "customer_email")]),
            ),
            (
                with(PUBLISHER, &[("customer_email", "lin wei@example.com")]),
                bad(&[("invalid_email", "customer_email")]),
            ),
            (
                with(PUBLISHER, &[("customer_email", "@example.com")]),
                bad(&[("invalid_email", "customer_email")]),
            ),
            (
                with(
                    PUBLISHER,
                    &[("customer_email", "lin.wei+tag@mail.example.com.tw")],
                ),
                ok(customer(
                    json!({"customer_email": "lin.wei+tag@mail.example.com.tw"}),
                )),
            ),
        ],
    );
}

#[test]
fn publisher_email_must_be_a_bare_address() {
    for email in [
        "Lin Wei <lin@example.com>",
        "<lin@example.com>",
        "\"Lin\" <lin@example.com>",
    ] {
        let row = with(PUBLISHER, &[("customer_email", email)]);
        check(
            Kind::Publishers,
            &Ctx::default(),
            &row,
            &bad(&[("invalid_email", "customer_email")]),
            email,
        );
    }
}

#[test]
fn publisher_phone_without_a_row_country_code_uses_the_configured_default() {
    let default_886 = Ctx {
        country_code: Some(886),
        ..Ctx::default()
    };
    publishers(
        &default_886,
        &[
            (
                with(PUBLISHER, &[("customer_country_code", "")]),
                ok(publisher_body()),
            ),
            (
                without(PUBLISHER, &["customer_country_code"]),
                ok(publisher_body()),
            ),
            // the row's own code wins over the default
            (
                with(
                    PUBLISHER,
                    &[
                        ("customer_country_code", "86"),
                        ("customer_phone", "13800138000"),
                    ],
                ),
                ok(customer(
                    json!({"customer_country_code": "+86", "customer_phone": "13800138000"}),
                )),
            ),
            // no phone: the default is not sent on its own
            (
                with(
                    PUBLISHER,
                    &[("customer_country_code", ""), ("customer_phone", "")],
                ),
                ok(customer(
                    json!({"customer_country_code": null, "customer_phone": null}),
                )),
            ),
        ],
    );
}

#[test]
fn publisher_with_several_problems_lists_them_all() {
    let row = with(
        PUBLISHER,
        &[
            ("customer_name", ""),
            ("customer_country_code", "999"),
            ("customer_email", "nope"),
        ],
    );
    let rejected = validate(Kind::Publishers, &Ctx::default(), &row).expect_err("rejected");
    let mut got = codes(&rejected.problems);
    got.sort();
    let mut want = pairs(&[
        ("required", "customer_name"),
        ("invalid_country_code", "customer_country_code"),
        ("invalid_email", "customer_email"),
    ]);
    want.sort();
    assert_eq!(got, want);
    assert_eq!(rejected.key.as_deref(), Some("APT-1001|A123456789"));
}

// ---------------------------------------------------------------------------------------
// task-status

#[test]
fn task_status_rules() {
    let ctx = Ctx::default();
    let row = |status: &'static str| vec![("out_task_num", "APT-1001"), ("task_status", status)];
    let table: &[(Vec<(&str, &str)>, Want)] = &[
        (
            row("finished"),
            ok(json!({"task_num": "APT-1001", "task_status": "finished"})),
        ),
        (
            row("canceled"),
            ok(json!({"task_num": "APT-1001", "task_status": "canceled"})),
        ),
        (row("done"), bad(&[("invalid_choice", "task_status")])),
        (row("cancelled"), bad(&[("invalid_choice", "task_status")])),
        (row(""), bad(&[("required", "task_status")])),
        (
            vec![("task_num", ""), ("out_task_num", ""), ("task_status", "x")],
            bad(&[
                ("task_ref_required", "task_num"),
                ("invalid_choice", "task_status"),
            ]),
        ),
    ];
    for (i, (row, want)) in table.iter().enumerate() {
        check(
            Kind::TaskStatus,
            &ctx,
            row,
            want,
            &format!("task-status case {i}"),
        );
    }
    let valid = validate(Kind::TaskStatus, &ctx, &row("canceled")).expect("valid");
    assert_eq!(valid.key, "APT-1001|canceled");
    assert_eq!(
        valid.item,
        Item::TaskStatus(ferry::kinds::TaskStatusUpdate {
            task: TaskRef::OutTaskNum("APT-1001".into()),
            task_status: "canceled",
        })
    );
}

// ---------------------------------------------------------------------------------------
// calls

const CALL: &Row = &[
    ("eventId", "542818"),
    ("beforeMinutes", ""),
    ("name", "user1"),
    ("company", "quanshi.com"),
    ("countryCode", "86"),
    ("mobile", "18100000030"),
    ("areaCode", ""),
    ("phone", ""),
];

fn call(event_id: i64, before_minutes: i64, entry: Value) -> Value {
    json!({"eventId": event_id, "beforeMinutes": before_minutes, "callList": [entry]})
}

fn mobile_entry() -> Value {
    json!({"name": "user1", "company": "quanshi.com", "countryCode": "86", "mobile": "18100000030"})
}

fn calls(ctx: &Ctx, table: &[(Vec<(&str, &str)>, Want)]) {
    for (i, (row, want)) in table.iter().enumerate() {
        check(Kind::Calls, ctx, row, want, &format!("calls case {i}"));
    }
}

#[test]
fn call_body_follows_the_vendor_example_without_empty_fields() {
    let valid = validate(Kind::Calls, &Ctx::default(), CALL).expect("valid");
    // The vendor example sends "areaCode": "" and "phone": ""; ferry leaves them out.
    assert_eq!(sent(&valid.item), call(542818, 30, mobile_entry()));
    assert_eq!(valid.key, "542818|+8618100000030");
    assert_eq!(
        valid.item,
        Item::Call(ferry::kinds::Call {
            event_id: 542818,
            before_minutes: 30,
            entry: ferry::kinds::CallEntry {
                name: "user1".into(),
                company: Some("quanshi.com".into()),
                country_code: "86".into(),
                mobile: Some("18100000030".into()),
                area_code: None,
                phone: None,
            },
        })
    );
}

#[test]
fn call_rules() {
    let ctx = Ctx::default();
    let entry = mobile_entry();
    let landline = json!({"name": "user1", "company": "quanshi.com", "countryCode": "86", "areaCode": "10", "phone": "58512042"});
    calls(
        &ctx,
        &[
            // beforeMinutes: 0-60, default 30
            (
                with(CALL, &[("beforeMinutes", "0")]),
                ok(call(542818, 0, entry.clone())),
            ),
            (
                with(CALL, &[("beforeMinutes", "60")]),
                ok(call(542818, 60, entry.clone())),
            ),
            (
                with(CALL, &[("beforeMinutes", "15")]),
                ok(call(542818, 15, entry.clone())),
            ),
            (
                without(CALL, &["beforeMinutes"]),
                ok(call(542818, 30, entry.clone())),
            ),
            (
                with(CALL, &[("beforeMinutes", "61")]),
                bad(&[("out_of_range", "beforeMinutes")]),
            ),
            (
                with(CALL, &[("beforeMinutes", "-1")]),
                bad(&[("out_of_range", "beforeMinutes")]),
            ),
            (
                with(CALL, &[("beforeMinutes", "soon")]),
                bad(&[("invalid_integer", "beforeMinutes")]),
            ),
            // eventId: an integer
            (
                with(CALL, &[("eventId", "abc")]),
                bad(&[("invalid_integer", "eventId")]),
            ),
            (
                with(CALL, &[("eventId", "")]),
                bad(&[("required", "eventId")]),
            ),
            (
                with(CALL, &[("eventId", "0")]),
                bad(&[("out_of_range", "eventId")]),
            ),
            // name required, company optional
            (with(CALL, &[("name", "")]), bad(&[("required", "name")])),
            (
                with(CALL, &[("company", "")]),
                ok(call(542818, 30, patch(&entry, json!({"company": null})))),
            ),
            // countryCode: required, bare digits
            (
                with(CALL, &[("countryCode", "")]),
                bad(&[("required", "countryCode")]),
            ),
            (
                with(CALL, &[("countryCode", "+86")]),
                ok(call(542818, 30, entry.clone())),
            ),
            (
                with(CALL, &[("countryCode", "0086")]),
                ok(call(542818, 30, entry.clone())),
            ),
            (
                with(CALL, &[("countryCode", "(86)")]),
                ok(call(542818, 30, entry.clone())),
            ),
            (
                with(CALL, &[("countryCode", "999")]),
                bad(&[("invalid_country_code", "countryCode")]),
            ),
            (
                with(CALL, &[("countryCode", "852"), ("mobile", "61234567")]),
                ok(call(
                    542818,
                    30,
                    patch(&entry, json!({"countryCode": "852", "mobile": "61234567"})),
                )),
            ),
            // mobile: formatting removed
            (
                with(CALL, &[("mobile", "181 0000 0030")]),
                ok(call(542818, 30, entry.clone())),
            ),
            (
                with(CALL, &[("mobile", "1.81E+10")]),
                bad(&[("scientific_notation", "mobile")]),
            ),
            // exactly one channel
            (
                with(
                    CALL,
                    &[("mobile", ""), ("areaCode", "10"), ("phone", "58512042")],
                ),
                ok(call(542818, 30, landline.clone())),
            ),
            (
                with(
                    CALL,
                    &[("mobile", ""), ("areaCode", "010"), ("phone", "58512042")],
                ),
                warned(
                    call(542818, 30, landline.clone()),
                    &[("area_code_zero_dropped", "areaCode")],
                ),
            ),
            (
                with(CALL, &[("areaCode", "10"), ("phone", "58512042")]),
                bad(&[("channel_conflict", "phone")]),
            ),
            (
                with(CALL, &[("mobile", "")]),
                bad(&[("channel_missing", "mobile")]),
            ),
            (
                with(CALL, &[("mobile", ""), ("areaCode", "10")]),
                bad(&[("channel_missing", "mobile")]),
            ),
            // a number in the wrong column is its own error
            (
                with(
                    CALL,
                    &[("mobile", ""), ("areaCode", "10"), ("phone", "18100000032")],
                ),
                bad(&[("mobile_in_landline_column", "phone")]),
            ),
            (
                with(CALL, &[("mobile", "01058512044")]),
                bad(&[("landline_in_mobile_column", "mobile")]),
            ),
            // mainland landlines need an area code
            (
                with(CALL, &[("mobile", ""), ("phone", "58512042")]),
                bad(&[("area_code_required", "areaCode")]),
            ),
            // other countries' landlines come without one
            (
                with(
                    CALL,
                    &[
                        ("countryCode", "852"),
                        ("mobile", ""),
                        ("phone", "2123 4567"),
                    ],
                ),
                ok(call(
                    542818,
                    30,
                    json!({"name": "user1", "company": "quanshi.com", "countryCode": "852", "phone": "21234567"}),
                )),
            ),
            (
                with(
                    CALL,
                    &[
                        ("countryCode", "852"),
                        ("mobile", ""),
                        ("areaCode", "10"),
                        ("phone", "21234567"),
                    ],
                ),
                bad(&[("area_code_not_allowed", "areaCode")]),
            ),
        ],
    );
}

/// Quanshi gets the national significant number — no +, no country code, no trunk 0 —
/// however the cell wrote it, and the record key is the number's E.164 form (issue 7).
#[test]
fn call_wire_form_and_key_are_canonical_whatever_the_spelling() {
    // (countryCode cell, mobile or phone column, cell, wire number, key)
    let table: &[(&str, &str, &str, &str, &str)] = &[
        ("886", "mobile", "912345678", "912345678", "+886912345678"),
        ("886", "mobile", "0912345678", "912345678", "+886912345678"),
        (
            "886",
            "mobile",
            "0912-345-678",
            "912345678",
            "+886912345678",
        ),
        (
            "886",
            "mobile",
            "+886 912 345 678",
            "912345678",
            "+886912345678",
        ),
        (
            "886",
            "mobile",
            "00886912345678",
            "912345678",
            "+886912345678",
        ),
        (
            "886",
            "mobile",
            "002886912345678",
            "912345678",
            "+886912345678",
        ),
        (
            "886",
            "mobile",
            "０９１２３４５６７８",
            "912345678",
            "+886912345678",
        ),
        (
            "+886",
            "mobile",
            "912 345 678",
            "912345678",
            "+886912345678",
        ),
        (
            "81",
            "mobile",
            "090-1234-5678",
            "9012345678",
            "+819012345678",
        ),
        ("81", "mobile", "9012345678", "9012345678", "+819012345678"),
        (
            "44",
            "mobile",
            "07400 123456",
            "7400123456",
            "+447400123456",
        ),
        (
            "44",
            "mobile",
            "+44 7400 123456",
            "7400123456",
            "+447400123456",
        ),
        (
            "49",
            "mobile",
            "01512 3456789",
            "15123456789",
            "+4915123456789",
        ),
        (
            "86",
            "mobile",
            "+86 138 0013 8000",
            "13800138000",
            "+8613800138000",
        ),
        (
            "1",
            "mobile",
            "1 (201) 555-0123",
            "2015550123",
            "+12015550123",
        ),
        // landlines outside mainland China: the national significant number, no areaCode
        ("886", "phone", "02 2345 6789", "223456789", "+886223456789"),
        ("886", "phone", "223456789", "223456789", "+886223456789"),
        (
            "44",
            "phone",
            "020 7946 0000",
            "2079460000",
            "+442079460000",
        ),
        ("39", "phone", "06 345 6789", "063456789", "+39063456789"),
    ];
    for &(cc, column, cell, wire, e164) in table {
        let row = with(CALL, &[("countryCode", cc), ("mobile", ""), (column, cell)]);
        let label = format!("{column} {cell:?} with countryCode {cc}");
        let valid = validate(Kind::Calls, &Ctx::default(), &row)
            .unwrap_or_else(|p| panic!("{label}: {p:?}"));
        let cc_digits = cc.trim_start_matches('+');
        assert_eq!(
            sent(&valid.item),
            call(
                542818,
                30,
                json!({"name": "user1", "company": "quanshi.com", "countryCode": cc_digits, column: wire}),
            ),
            "{label}"
        );
        assert_eq!(valid.key, format!("542818|{e164}"), "{label}");
    }
}

#[test]
fn call_event_id_from_the_command_line() {
    let ctx = Ctx {
        event_id: Some(7),
        ..Ctx::default()
    };
    let entry = mobile_entry();
    calls(
        &ctx,
        &[
            // an empty cell takes --event-id
            (
                with(CALL, &[("eventId", "")]),
                ok(call(7, 30, entry.clone())),
            ),
            // a cell's own value is the row's event
            (
                with(CALL, &[("eventId", "542818")]),
                ok(call(542818, 30, entry.clone())),
            ),
            (
                with(CALL, &[("eventId", "abc")]),
                bad(&[("invalid_integer", "eventId")]),
            ),
        ],
    );
    // No eventId column at all: only possible with --event-id.
    let header: Vec<String> = without(CALL, &["eventId"])
        .iter()
        .map(|(h, _)| h.to_string())
        .collect();
    let err = Columns::map(Kind::Calls, &header, &HashMap::new(), &[]).expect_err("eventId column");
    assert!(
        matches!(&err, MappingError::MissingColumn { missing, .. } if texts(missing) == ["eventId (or pass --event-id)"]),
        "{err:?}"
    );
    let columns =
        Columns::map(Kind::Calls, &header, &HashMap::new(), &["eventId"]).expect("with --event-id");
    let cells: Vec<String> = without(CALL, &["eventId"])
        .iter()
        .map(|(_, v)| v.to_string())
        .collect();
    let valid = Kind::Calls
        .validate(
            &RowCells {
                cells: &cells,
                columns: &columns,
            },
            &ctx,
        )
        .expect("valid");
    assert_eq!(sent(&valid.item), call(7, 30, entry));
    assert_eq!(valid.key, "7|+8618100000030");
}

#[test]
fn call_with_several_problems_lists_them_all() {
    let row = with(
        CALL,
        &[
            ("eventId", "x"),
            ("beforeMinutes", "90"),
            ("name", ""),
            ("areaCode", "10"),
            ("phone", "58512042"),
        ],
    );
    let rejected = validate(Kind::Calls, &Ctx::default(), &row).expect_err("rejected");
    let mut got = codes(&rejected.problems);
    got.sort();
    let mut want = pairs(&[
        ("invalid_integer", "eventId"),
        ("out_of_range", "beforeMinutes"),
        ("required", "name"),
        ("channel_conflict", "phone"),
    ]);
    want.sort();
    assert_eq!(got, want);
}

// ---------------------------------------------------------------------------------------
// agent-settings

const AGENT: &Row = &[
    ("userId", "1660270845627002401"),
    ("callType", "1"),
    (
        "callerPresent",
        "[\"12323\",\"232232\",\"12323\",\"12323\"]",
    ),
    ("callNumber", "12323,232343,233,232343"),
    ("callNumberDefault", "23232323"),
    ("callerPresentDefault", "1212121212"),
];

/// The vendor example's request body.
fn agent_body() -> Value {
    json!({
        "callType": "1",
        "userId": "1660270845627002401",
        "callerPresent": ["12323", "232232", "12323", "12323"],
        "callNumber": ["12323", "232343", "233", "232343"],
        "callNumberDefault": "23232323",
        "callerPresentDefault": "1212121212"
    })
}

#[test]
fn agent_setting_body_follows_the_vendor_example() {
    let valid = validate(Kind::AgentSettings, &Ctx::default(), AGENT).expect("valid");
    assert_eq!(sent(&valid.item), agent_body());
    assert_eq!(valid.key, "1660270845627002401");
}

#[test]
fn agent_setting_rules() {
    let body = agent_body();
    let list = |field: &str, numbers: &[&str]| ok(patch(&body, json!({ field: numbers })));
    let table: Vec<(Vec<(&str, &str)>, Want)> = vec![
        // lists: a JSON array, or separated by , ; or spaces
        (
            with(AGENT, &[("callNumber", "[\"1\", \"2\"]")]),
            list("callNumber", &["1", "2"]),
        ),
        (
            with(AGENT, &[("callNumber", "[1, 2]")]),
            list("callNumber", &["1", "2"]),
        ),
        (
            with(AGENT, &[("callNumber", "5551001; 5551002")]),
            list("callNumber", &["5551001", "5551002"]),
        ),
        (
            with(AGENT, &[("callNumber", "1 2  3")]),
            list("callNumber", &["1", "2", "3"]),
        ),
        (
            with(AGENT, &[("callNumber", "1,2;3 4")]),
            list("callNumber", &["1", "2", "3", "4"]),
        ),
        (
            with(AGENT, &[("callNumber", "1， 2；3")]),
            list("callNumber", &["1", "2", "3"]),
        ),
        (
            with(AGENT, &[("callNumber", "800100")]),
            list("callNumber", &["800100"]),
        ),
        (
            with(AGENT, &[("callerPresent", "1,2,3,4,5")]),
            list("callerPresent", &["1", "2", "3", "4", "5"]),
        ),
        (
            with(AGENT, &[("callerPresent", "123456789012345")]),
            list("callerPresent", &["123456789012345"]),
        ),
        // at most 5, at most 15 digits each
        (
            with(AGENT, &[("callNumber", "1 2 3 4 5 6")]),
            bad(&[("too_many_numbers", "callNumber")]),
        ),
        (
            with(
                AGENT,
                &[("callerPresent", "[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\"]")],
            ),
            bad(&[("too_many_numbers", "callerPresent")]),
        ),
        (
            with(AGENT, &[("callNumber", "1234567890123456")]),
            bad(&[("number_too_long", "callNumber")]),
        ),
        (
            with(AGENT, &[("callerPresent", "12323,1234567890123456")]),
            bad(&[("number_too_long", "callerPresent")]),
        ),
        (
            with(AGENT, &[("callNumber", "12a")]),
            bad(&[("invalid_characters", "callNumber")]),
        ),
        (
            with(AGENT, &[("callNumber", "[\"1\",")]),
            bad(&[("invalid_list", "callNumber")]),
        ),
        (
            with(AGENT, &[("callNumber", "[true]")]),
            bad(&[("invalid_list", "callNumber")]),
        ),
        // JSON number items are checked as written, not as an f64 rewrote them
        (
            with(AGENT, &[("callNumber", "[123456789012345]")]),
            list("callNumber", &["123456789012345"]),
        ),
        (
            with(AGENT, &[("callNumber", "[1234567890123456789012]")]),
            bad(&[("number_too_long", "callNumber")]),
        ),
        (
            with(AGENT, &[("callNumber", "[5551001.0]")]),
            bad(&[("invalid_characters", "callNumber")]),
        ),
        (
            with(AGENT, &[("callNumber", "[1e3]")]),
            bad(&[("invalid_characters", "callNumber")]),
        ),
        // the defaults: one number, at most 15 digits
        (
            with(AGENT, &[("callNumberDefault", "123456789012345")]),
            ok(patch(
                &body,
                json!({"callNumberDefault": "123456789012345"}),
            )),
        ),
        (
            with(AGENT, &[("callNumberDefault", "1234567890123456")]),
            bad(&[("number_too_long", "callNumberDefault")]),
        ),
        (
            with(AGENT, &[("callerPresentDefault", "1234567890123456")]),
            bad(&[("number_too_long", "callerPresentDefault")]),
        ),
        (
            with(AGENT, &[("callerPresentDefault", "12-34")]),
            bad(&[("invalid_characters", "callerPresentDefault")]),
        ),
        // callType 0/1/2
        (
            with(AGENT, &[("callType", "0")]),
            ok(patch(&body, json!({"callType": "0"}))),
        ),
        (
            with(AGENT, &[("callType", "2")]),
            ok(patch(&body, json!({"callType": "2"}))),
        ),
        (
            with(AGENT, &[("callType", "3")]),
            bad(&[("invalid_choice", "callType")]),
        ),
        (
            with(AGENT, &[("callType", "direct")]),
            bad(&[("invalid_choice", "callType")]),
        ),
        // userId required
        (
            with(AGENT, &[("userId", "")]),
            bad(&[("required", "userId")]),
        ),
        // empty optional cells are left out
        (
            with(
                AGENT,
                &[
                    ("callType", ""),
                    ("callerPresent", ""),
                    ("callNumber", " "),
                    ("callNumberDefault", ""),
                    ("callerPresentDefault", ""),
                ],
            ),
            ok(json!({"userId": "1660270845627002401"})),
        ),
        (vec![("userId", "u1")], ok(json!({"userId": "u1"}))),
        // several problems, all listed
        (
            with(
                AGENT,
                &[
                    ("callType", "9"),
                    ("callNumber", "1 2 3 4 5 6"),
                    ("callNumberDefault", "1234567890123456"),
                ],
            ),
            bad(&[
                ("invalid_choice", "callType"),
                ("too_many_numbers", "callNumber"),
                ("number_too_long", "callNumberDefault"),
            ]),
        ),
    ];
    for (i, (row, want)) in table.iter().enumerate() {
        check(
            Kind::AgentSettings,
            &Ctx::default(),
            row,
            want,
            &format!("agent-settings case {i}"),
        );
    }
}

#[test]
fn agent_setting_list_items_may_not_be_empty() {
    for cell in ["[\"12323\", \"\"]", "[\"\"]", "[\" \"]"] {
        let row = with(AGENT, &[("callNumber", cell)]);
        let got = validate(Kind::AgentSettings, &Ctx::default(), &row);
        match got {
            Err(rejected) => assert_eq!(
                rejected
                    .problems
                    .iter()
                    .map(|p| p.field.as_str())
                    .collect::<Vec<_>>(),
                ["callNumber"],
                "{cell}"
            ),
            Ok(valid) => panic!("{cell}: accepted and sent as {}", sent(&valid.item)),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Record keys and duplicates

fn validator(kind: Kind, header: &[&str], ctx: Ctx) -> Validator {
    Validator::new(map(kind, header), ctx)
}

/// One row's fate in a `Validator`: its key, or its key (if known) and problems.
type Checked = Result<String, (Option<String>, Vec<Problem>)>;

/// Rows (row number, cells) through one validator; each result's key and codes.
fn through(kind: Kind, header: &[&str], ctx: Ctx, rows: &[(u64, &[&str])]) -> Vec<Checked> {
    let mut v = validator(kind, header, ctx);
    rows.iter()
        .map(|(row, cells)| {
            v.check(*row, &strings(cells), Vec::new())
                .map(|valid| valid.key)
                .map_err(|r| (r.key, r.problems))
        })
        .collect()
}

fn assert_duplicate_of(got: &Checked, key: &str, first_row: u64, label: &str) {
    let Err((Some(got_key), problems)) = got else {
        panic!("{label}: expected a duplicate, got {got:?}");
    };
    assert_eq!(got_key, key, "{label}");
    assert_eq!(
        codes(problems),
        pairs(&[("duplicate_key", "")]),
        "{label}: {problems:?}"
    );
    let message = &problems[0].message;
    assert!(
        message.contains(&format!("row {first_row}")) && message.contains(key),
        "{label}: message {message:?} should name row {first_row} and the key"
    );
}

#[test]
fn every_kind_has_its_record_key_and_duplicates_are_reported_on_later_rows() {
    struct Case {
        kind: Kind,
        ctx: Ctx,
        header: &'static [&'static str],
        /// Rows 2..: the first, a different key, then spellings of the first's key.
        rows: &'static [&'static [&'static str]],
        key: &'static str,
        other: &'static str,
    }
    let cases = [
        Case {
            kind: Kind::Appointments,
            ctx: taipei(),
            header: &[
                "business_id",
                "out_task_num",
                "task_type",
                "branch_code",
                "room_type",
                "video",
            ],
            rows: &[
                &["15", "APT-1", "custom", "943", "realtime", "true"],
                &["15", "APT-2", "custom", "943", "realtime", "true"],
                &["16", " APT-1 ", "normal", "1", "realtime", "false"],
                &["17", "APT-1", "custom", "943", "realtime", "yes"],
            ],
            key: "APT-1",
            other: "APT-2",
        },
        Case {
            kind: Kind::Moderators,
            ctx: Ctx::default(),
            header: &["task_num", "out_task_num", "emp_id", "branch_code"],
            rows: &[
                &["", "APT-1", "ops-lee", "943"],
                &["", "APT-1", "ops-wu", "943"],
                &["", "APT-1", "ops-lee", "85"],
                &["", "APT-1", " ops-lee", ""],
            ],
            key: "APT-1|ops-lee",
            other: "APT-1|ops-wu",
        },
        Case {
            kind: Kind::Publishers,
            ctx: Ctx::default(),
            header: &["out_task_num", "customer_name", "customer_id_num"],
            rows: &[
                &["APT-1", "Lin Wei", "A123456789"],
                &["APT-2", "Lin Wei", "A123456789"],
                &["APT-1", "Lin W.", "A123456789"],
                &["APT-1", "Someone", "A123456789"],
            ],
            key: "APT-1|A123456789",
            other: "APT-2|A123456789",
        },
        Case {
            kind: Kind::TaskStatus,
            ctx: Ctx::default(),
            header: &["out_task_num", "task_status"],
            rows: &[
                &["APT-1", "finished"],
                &["APT-1", "canceled"],
                &["APT-1", "FINISHED"],
                &["APT-1", "finished"],
            ],
            key: "APT-1|finished",
            other: "APT-1|canceled",
        },
        Case {
            kind: Kind::Calls,
            ctx: Ctx::default(),
            header: &[
                "eventId",
                "name",
                "countryCode",
                "mobile",
                "areaCode",
                "phone",
            ],
            rows: &[
                &["542818", "张伟", "86", "18100000030", "", ""],
                &["542819", "张伟", "86", "18100000030", "", ""],
                &["542818", "Zhang", "+86", "181 0000 0030", "", ""],
                &["542818", "张伟", "0086", "18100000030", "", ""],
            ],
            key: "542818|+8618100000030",
            other: "542819|+8618100000030",
        },
        Case {
            kind: Kind::Calls,
            ctx: Ctx::default(),
            header: &[
                "eventId",
                "name",
                "countryCode",
                "mobile",
                "areaCode",
                "phone",
            ],
            rows: &[
                &["542818", "王芳", "86", "", "10", "58512042"],
                &["542818", "王芳", "86", "", "10", "58512043"],
                &["542818", "王芳", "(86)", "", "010", "5851 2042"],
                &["542818", "王芳", "86", "", "10", "58512042"],
            ],
            key: "542818|+861058512042",
            other: "542818|+861058512043",
        },
        // One number written three ways is one key (issue 7): the national format, the
        // national significant number, and with the calling code.
        Case {
            kind: Kind::Calls,
            ctx: Ctx::default(),
            header: &["eventId", "name", "countryCode", "mobile"],
            rows: &[
                &["542818", "Lin", "886", "0912345677"],
                &["542818", "Lin", "886", "0912345676"],
                &["542818", "Lin", "886", "+886 912 345 677"],
                &["542818", "Lin", "+886", "912345677"],
            ],
            key: "542818|+886912345677",
            other: "542818|+886912345676",
        },
        Case {
            kind: Kind::AgentSettings,
            ctx: Ctx::default(),
            header: &["userId", "callType"],
            rows: &[
                &["1660270845627002401", "1"],
                &["1660270845627002402", "1"],
                &["1660270845627002401", "0"],
                &["1660270845627002401", ""],
            ],
            key: "1660270845627002401",
            other: "1660270845627002402",
        },
    ];
    for case in cases {
        let label = format!("{:?}", case.kind);
        let rows: Vec<(u64, &[&str])> = case
            .rows
            .iter()
            .enumerate()
            .map(|(i, cells)| (i as u64 + 2, *cells))
            .collect();
        let got = through(case.kind, case.header, case.ctx, &rows);
        assert_eq!(
            got[0],
            Ok(case.key.to_string()),
            "{label}: first row keeps its key"
        );
        assert_eq!(got[1], Ok(case.other.to_string()), "{label}: another key");
        assert_duplicate_of(&got[2], case.key, 2, &format!("{label} row 4"));
        assert_duplicate_of(&got[3], case.key, 2, &format!("{label} row 5"));
    }
}

#[test]
fn a_duplicate_with_problems_of_its_own_lists_them_all_and_defects_come_first() {
    let header = [
        "business_id",
        "out_task_num",
        "task_type",
        "branch_code",
        "room_type",
        "video",
    ];
    let mut v = validator(Kind::Appointments, &header, taipei());
    let first = v.check(
        2,
        &strings(&["15", "APT-1", "custom", "943", "realtime", "true"]),
        Vec::new(),
    );
    assert!(first.is_ok(), "{first:?}");
    let defect = Problem::new(ferry::problem::Code::RaggedRow, "", "row has 7 cells");
    let later = v
        .check(
            9,
            &strings(&["x", "APT-1", "custom", "943", "realtime", "true"]),
            vec![defect],
        )
        .expect_err("duplicate");
    assert_eq!(later.key.as_deref(), Some("APT-1"));
    assert_eq!(
        codes(&later.problems),
        pairs(&[
            ("ragged_row", ""),
            ("invalid_integer", "business_id"),
            ("duplicate_key", ""),
        ])
    );
    assert!(later.problems[2].message.contains("row 2"));
    // A defect alone fails an otherwise valid row.
    let defect = Problem::new(ferry::problem::Code::InvalidUtf8, "note", "bad bytes");
    let alone = v
        .check(
            10,
            &strings(&["15", "APT-3", "custom", "943", "realtime", "true"]),
            vec![defect],
        )
        .expect_err("defect");
    assert_eq!(codes(&alone.problems), pairs(&[("invalid_utf8", "note")]));
    assert_eq!(alone.key.as_deref(), Some("APT-3"));
}

#[test]
fn a_rejected_first_row_still_claims_its_key() {
    let header = [
        "business_id",
        "out_task_num",
        "task_type",
        "branch_code",
        "room_type",
        "video",
    ];
    let got = through(
        Kind::Appointments,
        &header,
        taipei(),
        &[
            (2, &["abc", "APT-1", "custom", "943", "realtime", "true"]),
            (3, &["15", "APT-1", "custom", "943", "realtime", "true"]),
        ],
    );
    assert!(
        matches!(&got[0], Err((Some(k), _)) if k == "APT-1"),
        "{got:?}"
    );
    assert_duplicate_of(&got[1], "APT-1", 2, "row 3");
}

// ---------------------------------------------------------------------------------------
// Header matching

#[test]
fn header_names_match_ignoring_case_spaces_underscores_and_dashes() {
    for written in [
        "countryCode",
        "country_code",
        "Country Code",
        "COUNTRY-CODE",
        "countrycode",
        " country code ",
        "Country_Code",
        "country\tcode",
    ] {
        let header = ["event id", "Name", written, "MOBILE"];
        let columns = map(Kind::Calls, &header);
        assert_eq!(
            columns.column_name(calls::Field::CountryCode),
            Some(written),
            "{written:?}"
        );
        let cells = strings(&["542818", "user1", "86", "18100000030"]);
        let valid = Kind::Calls
            .validate(
                &RowCells {
                    cells: &cells,
                    columns: &columns,
                },
                &Ctx::default(),
            )
            .unwrap_or_else(|r| panic!("{written:?}: {r:?}"));
        assert_eq!(valid.key, "542818|+8618100000030");
    }
    renamed(
        Kind::Appointments,
        "Business ID",
        appointments::Field::BusinessId,
    );
    renamed(
        Kind::Appointments,
        "out-task-num",
        appointments::Field::OutTaskNum,
    );
    renamed(
        Kind::Appointments,
        "TaskTime",
        appointments::Field::TaskTime,
    );
    renamed(
        Kind::Publishers,
        "Customer Phone",
        publishers::Field::CustomerPhone,
    );
    renamed(
        Kind::AgentSettings,
        "user_id",
        agent_settings::Field::UserId,
    );
    renamed(
        Kind::AgentSettings,
        "CALL NUMBER DEFAULT",
        agent_settings::Field::CallNumberDefault,
    );
    renamed(Kind::Calls, "before-minutes", calls::Field::BeforeMinutes);
    renamed(Kind::Calls, "Area Code", calls::Field::AreaCode);
}

/// A header of `kind`'s required columns with `field`'s column `written` so: the column
/// is mapped to the field.
fn renamed<F: KindField>(kind: Kind, written: &str, field: F) {
    let mut header: Vec<&str> = match kind {
        Kind::Appointments => vec![
            "business_id",
            "out_task_num",
            "task_type",
            "branch_code",
            "room_type",
            "video",
        ],
        Kind::Publishers => vec!["out_task_num", "customer_name", "customer_id_num"],
        Kind::AgentSettings => vec!["userId"],
        _ => vec!["eventId", "name", "countryCode", "mobile"],
    };
    header.retain(|h| *h != field.name());
    header.push(written);
    let columns = map(kind, &header);
    assert_eq!(
        columns.column_name(field),
        Some(written),
        "{kind:?} {written:?}"
    );
}

#[test]
fn unknown_columns_are_left_alone() {
    let columns = map(
        Kind::AgentSettings,
        &["note", "userId", "ferry_row_x", "手机"],
    );
    assert_eq!(
        columns.column_name(agent_settings::Field::UserId),
        Some("userId")
    );
    for field in [
        agent_settings::Field::CallType,
        agent_settings::Field::CallNumber,
        agent_settings::Field::CallerPresent,
    ] {
        assert_eq!(columns.column_name(field), None);
    }
}

fn sample_config() -> Config {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/ferry.toml");
    Config::load(std::path::Path::new(path)).expect("samples/ferry.toml loads")
}

#[test]
fn aliases_from_the_config_map_columns() {
    let aliases: HashMap<String, Vec<String>> = [
        ("mobile".to_string(), strings(&["手机", "Mobile No."])),
        ("name".to_string(), strings(&["姓名"])),
    ]
    .into_iter()
    .collect();
    let header = strings(&["eventId", "姓名", "Country Code", "MOBILE NO."]);
    let columns = Columns::map(Kind::Calls, &header, &aliases, &[]).expect("aliases");
    assert_eq!(
        columns.column_name(calls::Field::Mobile),
        Some("MOBILE NO.")
    );
    assert_eq!(columns.column_name(calls::Field::Name), Some("姓名"));

    // The samples' [columns.calls] maps the Chinese header of samples/calls.csv.
    let config = sample_config();
    let aliases = config
        .columns
        .get(&Kind::Calls)
        .cloned()
        .expect("[columns.calls]");
    let header = strings(&["活动ID", "姓名", "公司", "国家码", "手机", "区号", "座机"]);
    let columns = Columns::map(Kind::Calls, &header, &aliases, &[]).expect("sample header");
    for (field, column) in [
        (calls::Field::EventId, "活动ID"),
        (calls::Field::Name, "姓名"),
        (calls::Field::Company, "公司"),
        (calls::Field::CountryCode, "国家码"),
        (calls::Field::Mobile, "手机"),
        (calls::Field::AreaCode, "区号"),
        (calls::Field::Phone, "座机"),
    ] {
        assert_eq!(columns.column_name(field), Some(column), "{field:?}");
    }
    let cells = strings(&["542818", "王芳", "quanshi.com", "86", "", "010", "58512042"]);
    let valid = Kind::Calls
        .validate(
            &RowCells {
                cells: &cells,
                columns: &columns,
            },
            &Ctx::default(),
        )
        .expect("valid");
    assert_eq!(
        sent(&valid.item),
        call(
            542818,
            30,
            json!({"name": "王芳", "company": "quanshi.com", "countryCode": "86", "areaCode": "10", "phone": "58512042"})
        )
    );
    // The problem blames the column as written, and its message names it so: the
    // person's sheet has no column called "name".
    let cells = strings(&["542818", "", "", "86", "18100000030", "", ""]);
    let rejected = Kind::Calls
        .validate(
            &RowCells {
                cells: &cells,
                columns: &columns,
            },
            &Ctx::default(),
        )
        .expect_err("no name");
    assert_eq!(codes(&rejected.problems), pairs(&[("required", "姓名")]));
    assert_eq!(rejected.problems[0].message, "姓名 is required; fill it in");
}

#[test]
fn two_columns_for_one_field_is_a_mapping_error() {
    let none = HashMap::new();
    let err = Columns::map(
        Kind::AgentSettings,
        &strings(&["userId", "User_Id"]),
        &none,
        &[],
    )
    .expect_err("duplicate");
    match &err {
        MappingError::DuplicateColumn {
            field,
            first,
            second,
        } => {
            assert_eq!(
                (*field, first.as_str(), second.as_str()),
                ("userId", "userId", "User_Id")
            );
        }
        other => panic!("{other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.contains("\"userId\"") && message.contains("\"User_Id\""),
        "{message}"
    );

    let aliases: HashMap<String, Vec<String>> = [("mobile".to_string(), strings(&["手机"]))]
        .into_iter()
        .collect();
    let err = Columns::map(
        Kind::Calls,
        &strings(&["eventId", "name", "countryCode", "手机", "mobile"]),
        &aliases,
        &[],
    )
    .expect_err("alias and canonical name");
    assert!(
        matches!(&err, MappingError::DuplicateColumn { field: "mobile", first, second } if first == "手机" && second == "mobile"),
        "{err:?}"
    );
}

#[test]
fn a_missing_required_column_is_a_mapping_error_naming_it() {
    let none = HashMap::new();
    let cases: &[(Kind, &[&str], &str)] = &[
        (
            Kind::Appointments,
            &[
                "business_id",
                "out_task_num",
                "task_type",
                "branch_code",
                "room_type",
            ],
            "video",
        ),
        (
            Kind::Appointments,
            &[
                "out_task_num",
                "task_type",
                "branch_code",
                "room_type",
                "video",
            ],
            "business_id",
        ),
        (
            Kind::Moderators,
            &["emp_id", "branch_code"],
            "task_num or out_task_num",
        ),
        (
            Kind::Publishers,
            &["out_task_num", "customer_name"],
            "customer_id_num",
        ),
        (
            Kind::Publishers,
            &["customer_name", "customer_id_num"],
            "task_num or out_task_num",
        ),
        (Kind::TaskStatus, &["out_task_num"], "task_status"),
        (Kind::Calls, &["eventId", "name", "mobile"], "countryCode"),
        (Kind::Calls, &["eventId", "countryCode", "mobile"], "name"),
        (
            Kind::Calls,
            &["eventId", "name", "countryCode", "areaCode"],
            "mobile or phone",
        ),
        (Kind::AgentSettings, &["callType", "callNumber"], "userId"),
    ];
    for &(kind, header, wanted) in cases {
        let err = Columns::map(kind, &strings(header), &none, &[])
            .expect_err(&format!("{kind:?} {header:?}"));
        match &err {
            MappingError::MissingColumn {
                missing, kind: k, ..
            } => {
                assert_eq!(
                    (texts(missing).as_slice(), *k),
                    (&[wanted.to_string()][..], kind.name()),
                    "{header:?}"
                );
            }
            other => panic!("{kind:?} {header:?}: {other:?}"),
        }
        let message = err.to_string();
        assert!(message.contains(wanted), "{message}");
        for column in header {
            assert!(message.contains(column), "{message} should list {column}");
        }
    }
    // Either of task_num / out_task_num will do; phone alone will do for calls.
    map(Kind::Moderators, &["task_num"]);
    map(Kind::Calls, &["eventId", "name", "countryCode", "phone"]);
}

#[test]
fn the_readme_lists_each_kinds_required_and_optional_columns() {
    // The README's table is what a person reads before building a file: it must be the
    // code's own list, so it is rendered from it here.
    let mut table =
        String::from("| kind | required columns | optional columns |\n| --- | --- | --- |\n");
    for kind in Kind::ALL {
        let required = kind.required_columns();
        let named = |c: &str| match flag_for_column(c) {
            Some(flag) => format!("`{c}` (or `{flag}`)"),
            None => format!("`{c}`"),
        };
        let required_text: Vec<String> = required
            .iter()
            .map(|alternatives| {
                alternatives
                    .iter()
                    .map(|c| named(c))
                    .collect::<Vec<_>>()
                    .join(" or ")
            })
            .collect();
        let optional: Vec<String> = kind
            .fields()
            .iter()
            .filter(|f| !required.iter().any(|alternatives| alternatives.contains(f)))
            .map(|f| format!("`{f}`"))
            .collect();
        let optional = if optional.is_empty() {
            "—".to_string()
        } else {
            optional.join(", ")
        };
        table.push_str(&format!(
            "| {} | {} | {optional} |\n",
            kind.name(),
            required_text.join(", ")
        ));
    }
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    assert!(
        readme.contains(&table),
        "README.md should hold this table of columns:\n{table}"
    );
}

// ---------------------------------------------------------------------------------------
// No cell makes validation panic

fn is_snake_case(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.split('_').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
}

/// No `""`, no `null` anywhere in a body.
fn find_empty(value: &Value, path: &str) -> Option<String> {
    match value {
        Value::Null => Some(format!("{path} is null")),
        Value::String(s) if s.is_empty() => Some(format!("{path} is \"\"")),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| find_empty(v, &format!("{path}[{i}]"))),
        Value::Object(map) => map
            .iter()
            .find_map(|(k, v)| find_empty(v, &format!("{path}.{k}"))),
        _ => None,
    }
}

fn cell() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        Just(String::new()),
        "[0-9]{0,22}",
        "[-+()0-9 .]{0,24}",
        "[0-9]{1,3}",
        "(true|false|yes|no|y|n|1|0|TRUE|Y|maybe)",
        "(normal|custom|realtime|finished|canceled|NORMAL|x)",
        "[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}(:[0-9]{2})?(Z|[+-][0-9]{2}:[0-9]{2})?",
        // lists: JSON arrays and separated numbers (an empty item inside a JSON array is
        // a known bug, `agent_setting_list_items_may_not_be_empty`, kept out of here)
        "\\[(\"[0-9]{1,17}\", ?){0,6}\"[0-9]{1,17}\"\\]",
        "[0-9]{1,17}([,; ，]{1,2}[0-9]{1,17}){0,6}",
        "\\[[0-9, ]{0,30}\\]?",
        "[a-z.@+ ]{0,24}",
        "[０-９＋（）]{0,12}",
    ]
}

fn ctx() -> impl Strategy<Value = Ctx> {
    (
        prop::option::of(prop::sample::select(vec![
            chrono_tz::Asia::Taipei,
            chrono_tz::America::New_York,
            chrono_tz::UTC,
        ])),
        prop::option::of(prop::sample::select(vec![886u16, 86, 1, 852])),
        prop::option::of(any::<i64>()),
    )
        .prop_map(|(timezone, country_code, event_id)| Ctx {
            timezone,
            country_code,
            event_id,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_cells_never_panic_and_always_say_why(
        kind in prop::sample::select(Kind::ALL.to_vec()),
        cells in prop::collection::vec(cell(), 11),
        ctx in ctx(),
    ) {
        let fields = kind.fields();
        let header = strings(&fields);
        let cells = cells[..fields.len()].to_vec();
        let columns = Columns::map(kind, &header, &HashMap::new(), &[]).expect("canonical header");
        let record = RowCells { cells: &cells, columns: &columns };
        match kind.validate(&record, &ctx) {
            Ok(valid) => {
                prop_assert!(!valid.key.is_empty(), "{kind:?} valid without a key");
                for w in &valid.warnings {
                    prop_assert!(is_snake_case(w.code.as_str()), "{:?}", w.code);
                    prop_assert!(w.field.is_empty() || fields.contains(&w.field.as_str()), "{w:?}");
                }
                let body = sent(&valid.item);
                prop_assert_eq!(find_empty(&body, "body"), None, "{:?} {:?} sent {}", kind, cells, body);
                if kind == Kind::Appointments {
                    prop_assert!(body["business_id"].is_i64());
                    prop_assert!(body["task_notify"].is_boolean() && body["video"].is_boolean());
                    if let Some(t) = body.get("task_time") {
                        prop_assert!(t.as_str().is_some_and(|t| t.parse::<i64>().is_ok()), "task_time {t}");
                    }
                }
                if kind == Kind::Calls {
                    let before = body["beforeMinutes"].as_i64().expect("a number");
                    prop_assert!((0..=60).contains(&before));
                    let entry = &body["callList"][0];
                    prop_assert!(entry["countryCode"].as_str().is_some_and(|c| c.bytes().all(|b| b.is_ascii_digit())));
                    prop_assert!(entry.get("mobile").is_some() != entry.get("phone").is_some(), "one channel: {entry}");
                    if let Some(area) = entry.get("areaCode") {
                        prop_assert!(!area.as_str().unwrap_or("0").starts_with('0'), "areaCode {area}");
                    }
                }
                if kind == Kind::AgentSettings {
                    for list in ["callNumber", "callerPresent"] {
                        if let Some(items) = body.get(list) {
                            let items = items.as_array().expect("an array");
                            prop_assert!(items.len() <= 5);
                            for item in items {
                                prop_assert!(item.as_str().is_some_and(|s| s.len() <= 15 && s.bytes().all(|b| b.is_ascii_digit())));
                            }
                        }
                    }
                }
            }
            Err(rejected) => {
                prop_assert!(!rejected.problems.is_empty(), "{kind:?} {cells:?} rejected without a problem");
                for p in &rejected.problems {
                    prop_assert!(is_snake_case(p.code.as_str()), "{:?}", p.code);
                    prop_assert!(!p.message.is_empty(), "{p:?}");
                    prop_assert!(p.field.is_empty() || fields.contains(&p.field.as_str()), "{p:?}");
                }
            }
        }
    }
}

#[test]
fn extreme_times_do_not_panic() {
    for raw in [
        "99999999999",
        "262142-12-31 23:59",
        "+262142-12-31T23:59:59+14:00",
        "-262143-01-01 00:00",
        "9999-12-31T23:59:59-23:59",
        "0000-01-01 00:00",
    ] {
        for tz in [
            Some(chrono_tz::Asia::Taipei),
            Some(chrono_tz::Pacific::Kiritimati),
            None,
        ] {
            let row = with(APPOINTMENT, &[("task_time", raw)]);
            let ctx = Ctx {
                timezone: tz,
                ..Ctx::default()
            };
            // Either answer is fine; a panic is not.
            let _ = validate(Kind::Appointments, &ctx, &row);
        }
    }
}

/// Issue 9: a control character (a NUL left by a broken export) in a text field is
/// refused, never sent; tabs and line breaks in free text are text.
#[test]
fn control_characters_in_text_are_refused() {
    let ctx = taipei();
    appointments(
        &ctx,
        &[
            (
                &[("out_task_num", "APT-\u{0}1001")],
                bad(&[("invalid_characters", "out_task_num")]),
            ),
            (
                &[("task_remark", "line\u{7}bell")],
                bad(&[("invalid_characters", "task_remark")]),
            ),
            (
                &[("task_remark", "two\nlines\tand a tab")],
                ok(patch(
                    &appointment_body(),
                    json!({"task_remark": "two\nlines\tand a tab"}),
                )),
            ),
        ],
    );
}

/// An id that a spreadsheet showed in scientific notation has lost digits: two task
/// numbers or id card numbers would become one, and the vendor would get the wrong one.
#[test]
fn an_id_in_a_spreadsheet_s_scientific_notation_fails_its_row() {
    let cases: [(Kind, &Row, &str); 9] = [
        (Kind::Appointments, APPOINTMENT, "out_task_num"),
        (Kind::Appointments, APPOINTMENT, "branch_code"),
        (Kind::Appointments, APPOINTMENT, "business_code"),
        (Kind::Moderators, MODERATOR, "out_task_num"),
        (Kind::Moderators, MODERATOR, "emp_id"),
        (Kind::Moderators, MODERATOR, "branch_code"),
        (Kind::Publishers, PUBLISHER, "customer_id_num"),
        (
            Kind::TaskStatus,
            &[("task_num", "x"), ("task_status", "canceled")],
            "task_num",
        ),
        (Kind::AgentSettings, AGENT, "userId"),
    ];
    for (kind, base, field) in cases {
        for shown in ["2.02402221235E+14", "1E+13", "1.10101199003e+17", "5,5E-03"] {
            let row = with(base, &[(field, shown)]);
            let label = format!("{kind:?} {field} {shown}");
            let rejected = validate(kind, &taipei(), &row).expect_err(&label);
            assert_eq!(
                codes(&rejected.problems),
                pairs(&[("scientific_notation", field)]),
                "{label}"
            );
            assert_eq!(
                rejected.problems[0].message,
                format!(
                    "{field} {shown:?}: a spreadsheet shows this number in scientific \
                     notation, which loses digits; format the column as Text (or with the \
                     number format 0, so that every digit shows), check the values, and save \
                     it again"
                ),
                "{label}"
            );
        }
        // A code that only looks like a number in E notation, without the sign Excel
        // writes, is someone's code: `12E45`.
        let row = with(base, &[(field, "12E45")]);
        assert!(validate(kind, &taipei(), &row).is_ok(), "{kind:?} {field}");
    }
}

/// A JSON manifest's object value arrives as its JSON text: a name or an id nobody
/// wrote. A field that holds one fails its row; text that only starts with a brace is
/// text.
#[test]
fn a_json_object_is_no_field_s_value() {
    let object = r#"{"first": "Lin"}"#;
    for (kind, base, field) in [
        (Kind::Calls, CALL, "name"),
        (Kind::Appointments, APPOINTMENT, "out_task_num"),
        (Kind::Appointments, APPOINTMENT, "business_id"),
        (Kind::AgentSettings, AGENT, "userId"),
    ] {
        let row = with(base, &[(field, object)]);
        let label = format!("{kind:?} {field}");
        let rejected = validate(kind, &taipei(), &row).expect_err(&label);
        assert_eq!(
            codes(&rejected.problems),
            pairs(&[("nested_value", field)]),
            "{label}"
        );
        let row = with(base, &[(field, "{VIP} 1")]);
        let problems = validate(kind, &taipei(), &row)
            .err()
            .map(|r| codes(&r.problems))
            .unwrap_or_default();
        assert!(
            !problems.iter().any(|(code, _)| code == "nested_value"),
            "{label}: {problems:?}"
        );
    }
}
