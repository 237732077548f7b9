//! `ferry run` end to end: the real binary in a fresh directory against a `ferry sandbox`
//! child process (or httpmock where the sandbox cannot play the part), checking exit
//! codes, whole report files and the sandbox's own counts (SPEC §1, §4, §5, §6, §7).

use crate::run_support::*;
use crate::xlsx_support;

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|c| c.to_string()).collect()
}

/// `FERRY_COLUMNS ++ cells`: one expected normalised report row.
fn line(ferry: &[&str], cells: &[String]) -> Vec<String> {
    s(ferry).into_iter().chain(cells.iter().cloned()).collect()
}

/// A CSV manifest: the header line, then one line per row.
fn csv_text(header: &str, rows: &[Vec<String>]) -> String {
    std::iter::once(header.to_string())
        .chain(rows.iter().map(|r| r.join(",")))
        .map(|l| l + "\n")
        .collect()
}

fn header(ferry: &[&str], manifest_header: &str) -> Vec<String> {
    line(ferry, &s(&manifest_header.split(',').collect::<Vec<_>>()))
}

#[test]
fn happy_path_appointments_then_moderators_publishers_and_status_by_out_task_num() {
    let ws = Workspace::new();
    let sandbox = Sandbox::start(ws.path(), &[]);
    ws.config_for(&sandbox, FAST);

    // Appointments: 20 good rows, then three that fail validation.
    let mut rows: Vec<Vec<String>> = (0..20)
        .map(|i| appointment_cells(&format!("APT-{i:04}")))
        .collect();
    let mut bad_choice = appointment_cells("APT-0020");
    bad_choice[2] = "vip".into();
    let duplicate = appointment_cells("APT-0003");
    let mut bad_integer = appointment_cells("APT-0021");
    bad_integer[0] = "abc".into();
    rows.extend([bad_choice.clone(), duplicate.clone(), bad_integer.clone()]);
    let manifest = csv_text(APPOINTMENTS_HEADER, &rows);
    let path = ws.write("appointments.csv", &manifest);
    let out = ws
        .ferry(&[
            "run",
            "appointments.csv",
            "--kind",
            "appointments",
            "--config",
            "ferry.toml",
            "--target",
            "arctos",
            "--state",
            "state.db",
            "--report-dir",
            "reports/appointments",
        ])
        .expect(1);
    assert!(
        out.stdout
            .contains("23 rows: 20 succeeded, 3 failed, 0 skipped, 0 unprocessed"),
        "{}",
        out.stdout
    );

    let appointments = Reports::read(&ws.join("reports/appointments"));
    appointments.assert_accounts_for(csv_rows(23));
    let mut expected = vec![header(&SUCCEEDED_COLUMNS, APPOINTMENTS_HEADER)];
    for (i, cells) in rows.iter().take(20).enumerate() {
        let row = (i + 2).to_string();
        let key = format!("APT-{i:04}");
        expected.push(line(
            &[&row, &key, "<task_num>", "<uuid>", "", "1", ""],
            cells,
        ));
    }
    assert_eq!(appointments.succeeded.normalised(), expected);
    assert_eq!(
        appointments.failed.normalised(),
        vec![
            header(&FAILED_COLUMNS, APPOINTMENTS_HEADER),
            line(
                &[
                    "22",
                    "APT-0020",
                    "validation",
                    "invalid_choice",
                    "task_type must be one of normal, custom, got \"vip\"",
                    "task_type",
                    "",
                    "",
                    "",
                    "0"
                ],
                &bad_choice
            ),
            line(
                &[
                    "23",
                    "APT-0003",
                    "validation",
                    "duplicate_key",
                    "the same record key \"APT-0003\" is already on row 5; each record may appear once: remove or merge one of them",
                    "",
                    "",
                    "",
                    "",
                    "0"
                ],
                &duplicate
            ),
            line(
                &[
                    "24",
                    "APT-0021",
                    "validation",
                    "invalid_integer",
                    "business_id must be a whole number, got \"abc\"",
                    "business_id",
                    "",
                    "",
                    "",
                    "0"
                ],
                &bad_integer
            ),
        ]
    );
    // Distinct task numbers, distinct request ids.
    let task_nums: std::collections::BTreeSet<&str> = appointments
        .succeeded
        .column("ferry_remote_id")
        .into_iter()
        .collect();
    assert_eq!(task_nums.len(), 20);
    let ids: std::collections::BTreeSet<&str> = appointments
        .succeeded
        .column("ferry_request_id")
        .into_iter()
        .collect();
    assert_eq!(ids.len(), 20);

    let summary = &appointments.summary;
    assert_eq!(summary["command"], "run");
    assert_eq!(summary["kind"], "appointments");
    assert_eq!(summary["target"], "arctos");
    assert_eq!(summary["exit_code"], 1);
    assert_eq!(summary["counts"]["failed"]["validation"], 3);
    assert_eq!(summary["requests"]["sent"], 20);
    assert_eq!(summary["requests"]["retries"], 0);
    assert_eq!(summary["requests"]["throttled_429"], 0);
    use sha2::Digest;
    let sha = format!("{:x}", sha2::Sha256::digest(std::fs::read(&path).unwrap()));
    assert_eq!(summary["manifest_sha256"], sha.as_str());
    for key in ["run_id", "manifest", "started_at", "finished_at"] {
        assert!(
            summary[key].as_str().is_some_and(|v| !v.is_empty()),
            "summary.{key}: {summary}"
        );
    }

    // Moderators by out_task_num, one by task_num directly, one whose appointment
    // failed (dependency), one naming no task at all (validation).
    let direct_task = appointments
        .succeeded
        .cell(12, "ferry_remote_id")
        .to_string();
    let mod_header = "task_num,out_task_num,emp_id,note";
    let mut mod_rows: Vec<Vec<String>> = Vec::new();
    for t in 0..10 {
        for emp in ["ops-a", "ops-b"] {
            mod_rows.push(s(&["", &format!("APT-{t:04}"), emp, ""]));
        }
    }
    mod_rows.push(s(&["", "APT-0020", "ops-a", "appointment failed"]));
    mod_rows.push(s(&[&direct_task, "", "ops-c", "direct"]));
    mod_rows.push(s(&["", "", "ops-d", "no task"]));
    let manifest = csv_text(mod_header, &mod_rows);
    ws.write("moderators.csv", &manifest);
    ws.ferry(&[
        "run",
        "moderators.csv",
        "--kind",
        "moderators",
        "--state",
        "state.db",
        "--report-dir",
        "reports/moderators",
    ])
    .expect(1);
    let moderators = Reports::read(&ws.join("reports/moderators"));
    moderators.assert_accounts_for(csv_rows(mod_rows.len()));
    let mut expected = vec![header(&SUCCEEDED_COLUMNS, mod_header)];
    for (i, cells) in mod_rows.iter().take(20).enumerate() {
        let row = (i + 2).to_string();
        let key = format!("{}|{}", cells[1], cells[2]);
        expected.push(line(&[&row, &key, "", "<uuid>", "", "1", ""], cells));
    }
    let direct_key = format!("{direct_task}|ops-c");
    expected.push(line(
        &["23", &direct_key, "", "<uuid>", "", "1", ""],
        &mod_rows[21],
    ));
    assert_eq!(moderators.succeeded.normalised(), expected);
    assert_eq!(
        moderators.failed.normalised(),
        vec![
            header(&FAILED_COLUMNS, mod_header),
            line(
                &[
                    "22",
                    "APT-0020|ops-a",
                    "dependency",
                    "unknown_task",
                    "no task_num is recorded for out_task_num \"APT-0020\" on target arctos: run the appointments manifest first with the same --target and --state, or give task_num",
                    "out_task_num",
                    "",
                    "",
                    "",
                    "0"
                ],
                &mod_rows[20]
            ),
            line(
                &[
                    "24",
                    "",
                    "validation",
                    "task_ref_required",
                    "task_num or out_task_num is required: name the arctos task this row belongs to",
                    "task_num",
                    "",
                    "",
                    "",
                    "0"
                ],
                &mod_rows[22]
            ),
        ]
    );

    // Publishers: three per task travel in one request; a bad email fails validation,
    // an unknown task fails its dependency.
    let pub_header = "out_task_num,customer_name,customer_id_num,customer_country_code,customer_phone,customer_email";
    let mut pub_rows: Vec<Vec<String>> = Vec::new();
    for t in 0..5 {
        for j in 0..3 {
            pub_rows.push(s(&[
                &format!("APT-{t:04}"),
                &format!("Customer {t}-{j}"),
                &format!("ID{t}{j}"),
                "86",
                &cn_mobile(t * 10 + j),
                &format!("c{t}{j}@example.com"),
            ]));
        }
    }
    pub_rows.push(s(&[
        "APT-0005",
        "Bad Mail",
        "ID50",
        "86",
        &cn_mobile(50),
        "not-an-email",
    ]));
    pub_rows.push(s(&[
        "APT-0099",
        "No Task",
        "ID99",
        "86",
        &cn_mobile(99),
        "",
    ]));
    let manifest = csv_text(pub_header, &pub_rows);
    ws.write("publishers.csv", &manifest);
    ws.ferry(&[
        "run",
        "publishers.csv",
        "--kind",
        "publishers",
        "--state",
        "state.db",
        "--report-dir",
        "reports/publishers",
    ])
    .expect(1);
    let publishers = Reports::read(&ws.join("reports/publishers"));
    publishers.assert_accounts_for(csv_rows(pub_rows.len()));
    let mut expected = vec![header(&SUCCEEDED_COLUMNS, pub_header)];
    for (i, cells) in pub_rows.iter().take(15).enumerate() {
        let row = (i + 2).to_string();
        let key = format!("{}|{}", cells[0], cells[2]);
        expected.push(line(&[&row, &key, "", "<uuid>", "", "1", ""], cells));
    }
    assert_eq!(publishers.succeeded.normalised(), expected);
    // One request per task: the rows of a task share their request id.
    for t in 0..5u64 {
        let first = publishers.succeeded.cell(2 + 3 * t, "ferry_request_id");
        for j in 1..3 {
            assert_eq!(
                publishers.succeeded.cell(2 + 3 * t + j, "ferry_request_id"),
                first
            );
        }
    }
    assert_eq!(publishers.requests_sent(), 5);
    assert_eq!(
        publishers.failed.normalised(),
        vec![
            header(&FAILED_COLUMNS, pub_header),
            line(
                &[
                    "17",
                    "APT-0005|ID50",
                    "validation",
                    "invalid_email",
                    "customer_email \"not-an-email\" is not a valid e-mail address (expected name@example.com)",
                    "customer_email",
                    "",
                    "",
                    "",
                    "0"
                ],
                &pub_rows[15]
            ),
            line(
                &[
                    "18",
                    "APT-0099|ID99",
                    "dependency",
                    "unknown_task",
                    "no task_num is recorded for out_task_num \"APT-0099\" on target arctos: run the appointments manifest first with the same --target and --state, or give task_num",
                    "out_task_num",
                    "",
                    "",
                    "",
                    "0"
                ],
                &pub_rows[16]
            ),
        ]
    );

    // Task status by out_task_num, through the configured path.
    let status_header = "out_task_num,task_status";
    ws.write(
        "status.csv",
        &format!("{status_header}\nAPT-0000,finished\nAPT-0001,canceled\nAPT-0002,done\n"),
    );
    ws.ferry(&[
        "run",
        "status.csv",
        "--kind",
        "task-status",
        "--state",
        "state.db",
        "--report-dir",
        "reports/status",
    ])
    .expect(1);
    let status = Reports::read(&ws.join("reports/status"));
    status.assert_accounts_for(csv_rows(3));
    assert_eq!(
        status.succeeded.normalised(),
        vec![
            header(&SUCCEEDED_COLUMNS, status_header),
            s(&[
                "2",
                "APT-0000|finished",
                "",
                "<uuid>",
                "",
                "1",
                "",
                "APT-0000",
                "finished"
            ]),
            s(&[
                "3",
                "APT-0001|canceled",
                "",
                "<uuid>",
                "",
                "1",
                "",
                "APT-0001",
                "canceled"
            ]),
        ]
    );
    assert_eq!(
        status.failed.normalised(),
        vec![
            header(&FAILED_COLUMNS, status_header),
            s(&[
                "4",
                "",
                "validation",
                "invalid_choice",
                "task_status must be one of finished, canceled, got \"done\"",
                "task_status",
                "",
                "",
                "",
                "0",
                "APT-0002",
                "done"
            ]),
        ]
    );

    let stats = sandbox.stats();
    assert_eq!(count(&stats, &["created", "appointments"]), 20);
    assert_eq!(count(&stats, &["created", "moderators"]), 21);
    assert_eq!(count(&stats, &["created", "publishers"]), 15);
    assert_eq!(count(&stats, &["created", "task_status"]), 2);
    for kind in ["appointments", "moderators", "publishers", "task_status"] {
        assert_eq!(count(&stats, &["duplicates_rejected", kind]), 0, "{stats}");
    }
    assert_eq!(count(&stats, &["requests", CREATE_TASK]), 20);
    assert_eq!(count(&stats, &["requests", ADD_MODERATOR]), 21);
    assert_eq!(count(&stats, &["requests", ADD_PUBLISHER]), 5);
    assert_eq!(count(&stats, &["requests", UPDATE_TASK_STATUS]), 2);
}

/// `ferry run MANIFEST --kind KIND --state state.db --report-dir reports/DIR EXTRA…`.
fn run_args<'a>(manifest: &'a str, kind: &'a str, dir: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "run",
        manifest,
        "--kind",
        kind,
        "--state",
        "state.db",
        "--report-dir",
        dir,
    ];
    args.extend_from_slice(extra);
    args
}

#[test]
fn second_run_sends_nothing_and_force_sends_again() {
    let ws = Workspace::new();
    let sandbox = Sandbox::start(ws.path(), &[]);
    ws.config_for(&sandbox, FAST);
    let n = 50;
    ws.write("appointments.csv", &appointments_csv("RE", n));

    ws.ferry(&run_args("appointments.csv", "appointments", "r1", &[]))
        .expect(0);
    let first = Reports::read(&ws.join("r1"));
    first.assert_accounts_for(csv_rows(n));
    assert_eq!(first.succeeded.rows.len(), n);
    let run_id = first.summary["run_id"]
        .as_str()
        .expect("run_id")
        .to_string();
    let requests_before = sandbox.requests_total();
    assert_eq!(requests_before, n as u64);

    // Again: every row already succeeded, so nothing is sent.
    ws.ferry(&run_args("appointments.csv", "appointments", "r2", &[]))
        .expect(0);
    let second = Reports::read(&ws.join("r2"));
    second.assert_accounts_for(csv_rows(n));
    assert_eq!(
        sandbox.requests_total(),
        requests_before,
        "a second run sent requests"
    );
    assert_eq!(second.requests_sent(), 0);
    assert_eq!(second.exit_code(), 0);
    let mut expected = vec![header(&FAILED_COLUMNS, APPOINTMENTS_HEADER)];
    for i in 0..n {
        let row = (i + 2) as u64;
        let key = format!("RE-{i:04}");
        let message = format!(
            "already succeeded in run {run_id} (remote id {}); --force sends it again",
            first.succeeded.cell(row, "ferry_remote_id")
        );
        expected.push(line(
            &[
                &row.to_string(),
                &key,
                "",
                "already_succeeded",
                &message,
                "",
                "",
                "",
                "",
                "0",
            ],
            &appointment_cells(&key),
        ));
    }
    assert_eq!(second.skipped.normalised(), expected);

    // --force sends them again; the sandbox already has every out_task_num.
    ws.ferry(&run_args(
        "appointments.csv",
        "appointments",
        "r3",
        &["--force"],
    ))
    .expect(1);
    let forced = Reports::read(&ws.join("r3"));
    forced.assert_accounts_for(csv_rows(n));
    let mut expected = vec![header(&FAILED_COLUMNS, APPOINTMENTS_HEADER)];
    for i in 0..n {
        let key = format!("RE-{i:04}");
        let message = format!("arctos refused the row: out_task_num {key} already exists");
        expected.push(line(
            &[
                &(i + 2).to_string(),
                &key,
                "remote",
                "vendor_rejected",
                &message,
                "",
                "200",
                "<uuid>",
                "",
                "1",
            ],
            &appointment_cells(&key),
        ));
    }
    assert_eq!(forced.failed.normalised(), expected);
    assert_eq!(forced.summary["counts"]["failed"]["remote"], n);
    let stats = sandbox.stats();
    assert_eq!(count(&stats, &["created", "appointments"]), n as u64);
    assert_eq!(
        count(&stats, &["duplicates_rejected", "appointments"]),
        n as u64
    );
    assert_eq!(count(&stats, &["requests", CREATE_TASK]), 2 * n as u64);
}

#[test]
fn forced_resend_refused_as_duplicate_keeps_the_earlier_success() {
    let ws = Workspace::new();
    let sandbox = Sandbox::start(ws.path(), &[]);
    ws.config_for(&sandbox, FAST);
    ws.write("appointments.csv", &appointments_csv("KEEP", 3));
    ws.ferry(&run_args("appointments.csv", "appointments", "r1", &[]))
        .expect(0);
    ws.ferry(&run_args(
        "appointments.csv",
        "appointments",
        "r2",
        &["--force"],
    ))
    .expect(1);

    // The tasks exist (run 1 created them; the forced resend changed nothing at the
    // vendor): a plain re-run skips them, and references to them resolve.
    let requests = sandbox.requests_total();
    ws.ferry(&run_args("appointments.csv", "appointments", "r3", &[]))
        .expect(0);
    let third = Reports::read(&ws.join("r3"));
    third.assert_accounts_for(csv_rows(3));
    assert_eq!(third.skipped.rows.len(), 3);
    assert_eq!(
        sandbox.requests_total(),
        requests,
        "rows that succeeded in run 1 were sent again"
    );

    ws.write("moderators.csv", "out_task_num,emp_id\nKEEP-0000,ops-a\n");
    ws.ferry(&run_args("moderators.csv", "moderators", "r4", &[]))
        .expect(0);
    let stats = sandbox.stats();
    assert_eq!(count(&stats, &["created", "moderators"]), 1);
}

#[test]
fn target_sandbox_runs_without_any_config_file() {
    let ws = Workspace::new();
    assert!(!ws.join("ferry.toml").exists());
    let n = 30;
    ws.write("appointments.csv", &appointments_csv("SB", n));
    let out = ws
        .ferry(&run_args(
            "appointments.csv",
            "appointments",
            "r1",
            &["--target", "sandbox"],
        ))
        .expect(0);
    assert!(
        out.stdout.contains("→ sandbox (appointments)"),
        "{}",
        out.stdout
    );
    let reports = Reports::read(&ws.join("r1"));
    reports.assert_accounts_for(csv_rows(n));
    assert_eq!(reports.summary["target"], "sandbox");
    let mut expected = vec![header(&SUCCEEDED_COLUMNS, APPOINTMENTS_HEADER)];
    for i in 0..n {
        let key = format!("SB-{i:04}");
        expected.push(line(
            &[
                &(i + 2).to_string(),
                &key,
                "<task_num>",
                "<uuid>",
                "",
                "1",
                "",
            ],
            &appointment_cells(&key),
        ));
    }
    assert_eq!(reports.succeeded.normalised(), expected);

    // Calls too: one batch, matched back record by record, with Quanshi's request id.
    let calls_header = "eventId,name,countryCode,mobile";
    let mut calls = format!("{calls_header}\n");
    for i in 0..20 {
        calls.push_str(&format!("542818,Caller {i},86,{}\n", cn_mobile(i)));
    }
    ws.write("calls.csv", &calls);
    ws.ferry(&[
        "run",
        "calls.csv",
        "--kind",
        "calls",
        "--target",
        "sandbox",
        "--state",
        "state.db",
        "--report-dir",
        "r2",
    ])
    .expect(0);
    let reports = Reports::read(&ws.join("r2"));
    reports.assert_accounts_for(csv_rows(20));
    let mut expected = vec![header(&SUCCEEDED_COLUMNS, calls_header)];
    for i in 0..20 {
        let mobile = cn_mobile(i);
        let key = reports
            .succeeded
            .cell(i as u64 + 2, "ferry_key")
            .to_string();
        assert!(
            key.contains(&mobile) && key.contains("542818"),
            "key {key:?}"
        );
        expected.push(line(
            &[
                &(i + 2).to_string(),
                &key,
                "<call-id>",
                "<uuid>",
                "<quanshi-request-id>",
                "1",
                "",
            ],
            &s(&["542818", &format!("Caller {i}"), "86", &mobile]),
        ));
    }
    assert_eq!(reports.succeeded.normalised(), expected);
    assert_eq!(reports.requests_sent(), 1);
}

/// Runs `n` appointments against a sandbox with `flags`; every row must succeed, each
/// created once. Returns the reports and the sandbox's stats.
fn survive(flags: &[&str], extra: &[&str], n: usize) -> (Reports, serde_json::Value) {
    let ws = Workspace::new();
    let sandbox = Sandbox::start(ws.path(), flags);
    ws.config_for(&sandbox, FAST);
    ws.write("appointments.csv", &appointments_csv("F", n));
    let started = std::time::Instant::now();
    ws.ferry(&run_args("appointments.csv", "appointments", "r", extra))
        .expect(0);
    eprintln!("{flags:?} {extra:?}: {n} rows in {:?}", started.elapsed());
    let reports = Reports::read(&ws.join("r"));
    reports.assert_accounts_for(csv_rows(n));
    assert_eq!(reports.succeeded.rows.len(), n, "every row succeeds");
    let stats = sandbox.stats();
    assert_eq!(
        count(&stats, &["created", "appointments"]),
        n as u64,
        "{stats}"
    );
    assert_eq!(
        count(&stats, &["duplicates_rejected", "appointments"]),
        0,
        "{stats}"
    );
    // Every attempt is in the reports, and each got its own request id.
    let attempts: u64 = reports
        .succeeded
        .column("ferry_attempts")
        .iter()
        .map(|a| a.parse::<u64>().expect("attempts"))
        .sum();
    assert_eq!(attempts, reports.requests_sent());
    assert_eq!(attempts, count(&stats, &["requests", CREATE_TASK]));
    for row in reports.succeeded.normalised().iter().skip(1) {
        let ids = &row[3];
        let n: usize = row[5].parse().expect("attempts");
        assert_eq!(ids, &vec!["<uuid>"; n].join(";"), "request ids of {row:?}");
        assert!(
            is_task_num(&row[2]) || row[2] == "<task_num>",
            "remote id of {row:?}"
        );
    }
    (reports, stats)
}

#[test]
fn fail_rate_503s_are_retried_until_every_row_succeeds_once() {
    let (reports, stats) = survive(&["--fail-rate", "0.3", "--seed", "7"], &[], 100);
    let injected = count(&stats, &["failed_injected"]);
    assert!(injected > 0, "{stats}");
    assert_eq!(
        reports.summary["requests"]["retries"], injected,
        "one retry per 503"
    );
    assert!(reports
        .succeeded
        .column("ferry_attempts")
        .iter()
        .any(|a| *a != "1"));
}

#[test]
fn throttle_rate_429s_are_waited_out_and_counted() {
    let (reports, stats) = survive(
        &["--throttle-rate", "0.3", "--seed", "11"],
        &["--concurrency", "32"],
        40,
    );
    let throttled = count(&stats, &["throttled"]);
    assert!(throttled > 0, "{stats}");
    assert_eq!(reports.summary["requests"]["throttled_429"], throttled);
    assert_eq!(reports.summary["requests"]["retries"], throttled);
}

#[test]
fn sandbox_rate_limit_is_survived_without_duplicates() {
    let (reports, stats) = survive(&["--rate-limit", "20"], &["--rate", "100"], 100);
    assert!(count(&stats, &["throttled"]) > 0, "{stats}");
    assert_eq!(
        reports.summary["requests"]["throttled_429"],
        count(&stats, &["throttled"])
    );
}

#[test]
fn dropped_answers_are_unknown_and_resent_only_with_retry_unknown() {
    let ws = Workspace::new();
    let sandbox = Sandbox::start(ws.path(), &["--drop-rate", "0.3", "--seed", "5"]);
    ws.config_for(&sandbox, FAST);
    let n = 100;
    ws.write("appointments.csv", &appointments_csv("D", n));

    // The sandbox carries every request out, but a third of the answers never come:
    // those rows are unknown, never sent again, never duplicated.
    ws.ferry(&run_args("appointments.csv", "appointments", "r1", &[]))
        .expect(1);
    let first = Reports::read(&ws.join("r1"));
    first.assert_accounts_for(csv_rows(n));
    let stats = sandbox.stats();
    let dropped = count(&stats, &["dropped"]);
    assert!(dropped > 0, "{stats}");
    assert_eq!(
        first.failed.rows.len() as u64,
        dropped,
        "one unknown row per dropped answer"
    );
    assert_eq!(count(&stats, &["created", "appointments"]), n as u64);
    assert_eq!(count(&stats, &["duplicates_rejected", "appointments"]), 0);
    assert_eq!(
        first.requests_sent(),
        n as u64,
        "a create with an unknown outcome is not retried"
    );
    for row in first.failed.normalised().iter().skip(1) {
        assert_eq!(row[2], "unknown", "{row:?}");
        assert_eq!(row[3], "outcome_unknown", "{row:?}");
        assert!(row[4].contains("--retry-unknown"), "{row:?}");
        assert_eq!(
            (row[7].as_str(), row[9].as_str()),
            ("<uuid>", "1"),
            "{row:?}"
        );
    }
    let unknown: std::collections::BTreeSet<u64> = first.failed.ferry_rows().into_iter().collect();

    // A plain re-run leaves them unknown and sends nothing at all.
    let requests = sandbox.requests_total();
    ws.ferry(&run_args("appointments.csv", "appointments", "r2", &[]))
        .expect(1);
    let second = Reports::read(&ws.join("r2"));
    second.assert_accounts_for(csv_rows(n));
    assert_eq!(sandbox.requests_total(), requests);
    assert_eq!(second.requests_sent(), 0);
    assert_eq!(
        second
            .failed
            .ferry_rows()
            .into_iter()
            .collect::<std::collections::BTreeSet<_>>(),
        unknown
    );
    assert!(second
        .failed
        .column("ferry_stage")
        .iter()
        .all(|s| *s == "unknown"));
    assert_eq!(second.skipped.rows.len(), n - unknown.len());

    // --retry-unknown resends them on purpose: the sandbox says each exists, so each
    // ends succeeded with `existed_before`. The drop rate still applies, so repeat until
    // none is left.
    let mut existed = std::collections::BTreeSet::new();
    let mut resent = 0;
    for attempt in 0.. {
        assert!(
            attempt < 15,
            "unknown rows left after 15 runs with --retry-unknown"
        );
        let dir = format!("retry{attempt}");
        let out = ws.ferry(&run_args(
            "appointments.csv",
            "appointments",
            &dir,
            &["--retry-unknown"],
        ));
        let reports = Reports::read(&ws.join(&dir));
        reports.assert_accounts_for(csv_rows(n));
        resent += reports.requests_sent();
        for row in existed_before_rows(&reports.succeeded) {
            assert_eq!(
                reports.succeeded.cell(row, "ferry_remote_id"),
                "",
                "no remote id without one in the answer"
            );
            assert!(existed.insert(row), "row {row} existed before twice");
        }
        assert_eq!(
            reports.succeeded.rows.len(),
            existed_before_rows(&reports.succeeded).len()
        );
        if out.code == 0 {
            assert!(reports.failed.rows.is_empty());
            break;
        }
        out.expect(1);
    }
    assert_eq!(existed, unknown, "exactly the unknown rows existed before");
    let stats = sandbox.stats();
    assert_eq!(
        count(&stats, &["created", "appointments"]),
        n as u64,
        "no row created twice"
    );
    assert_eq!(
        count(&stats, &["duplicates_rejected", "appointments"]),
        resent,
        "only deliberate resends were duplicates"
    );
}

#[test]
fn remote_refusals_are_reported_with_the_vendors_message() {
    let ws = Workspace::new();
    let sandbox = Sandbox::start(ws.path(), &[]);
    ws.config_for(&sandbox, FAST);
    let header_line = "task_num,emp_id";
    ws.write(
        "moderators.csv",
        &format!("{header_line}\n209901010000001,ops-a\n"),
    );
    ws.ferry(&run_args("moderators.csv", "moderators", "r", &[]))
        .expect(1);
    let reports = Reports::read(&ws.join("r"));
    reports.assert_accounts_for(csv_rows(1));
    assert_eq!(
        reports.failed.normalised(),
        vec![
            header(&FAILED_COLUMNS, header_line),
            s(&[
                "2",
                "209901010000001|ops-a",
                "remote",
                "vendor_rejected",
                "arctos refused the row: task_num 209901010000001 does not exist",
                "",
                "200",
                "<uuid>",
                "",
                "1",
                "209901010000001",
                "ops-a"
            ]),
        ]
    );
}

#[test]
fn agent_settings_with_more_than_five_numbers_fail_validation_and_are_not_sent() {
    let ws = Workspace::new();
    let sandbox = Sandbox::start(ws.path(), &[]);
    ws.config_for(&sandbox, FAST);
    ws.write(
        "agents.json",
        r#"[{"userId": "1660270845627002401", "callNumber": "1 2 3 4 5 6"},
            {"userId": "1660270845627002402", "callNumber": ["5551001", "5551002"]}]"#,
    );
    ws.ferry(&run_args("agents.json", "agent-settings", "r", &[]))
        .expect(1);
    let reports = Reports::read(&ws.join("r"));
    reports.assert_accounts_for([1, 2]);
    assert_eq!(reports.failed.cell(1, "ferry_stage"), "validation");
    assert_eq!(
        reports.failed.cell(1, "ferry_error_code"),
        "too_many_numbers"
    );
    assert_eq!(reports.failed.cell(1, "ferry_field"), "callNumber");
    assert_eq!(reports.failed.cell(1, "ferry_attempts"), "0");
    assert!(is_uuid(reports.succeeded.cell(2, "ferry_request_id")));
    let stats = sandbox.stats();
    assert_eq!(count(&stats, &["requests", CREATE_AGENT_SETTINGS]), 1);
    assert_eq!(count(&stats, &["created", "agent_settings"]), 1);
}

#[test]
fn aicc_500_is_a_final_remote_failure_with_its_http_status() {
    // The sandbox answers 500 for more than five numbers, but ferry never sends such a
    // row (see above): a mock plays AICC refusing a row ferry thinks is fine.
    let server = httpmock::MockServer::start();
    let mock = server.mock(|when, then| {
        when.method(httpmock::Method::POST).path(CREATE_AGENT_SETTINGS);
        then.status(500)
            .header("content-type", "application/json")
            .body(r#"{"returnCode":"1","returnDesc":"callNumber has 6 numbers; at most 5 are allowed"}"#);
    });
    let ws = Workspace::new();
    ws.write("ferry.toml", &ferry_toml(&server.base_url(), FAST));
    let header_line = "userId,callNumber";
    ws.write(
        "agents.csv",
        &format!("{header_line}\n1660270845627002401,5551001\n"),
    );
    ws.ferry(&run_args("agents.csv", "agent-settings", "r", &[]))
        .expect(1);
    let reports = Reports::read(&ws.join("r"));
    reports.assert_accounts_for(csv_rows(1));
    let row = &reports.failed.normalised()[1];
    assert_eq!(
        row[..4],
        s(&["2", "1660270845627002401", "remote", "vendor_error"])[..],
        "{row:?}"
    );
    assert!(
        row[4].contains("AICC answered 500") && row[4].contains("at most 5 are allowed"),
        "{row:?}"
    );
    assert_eq!(row[6..10], s(&["500", "<uuid>", "", "1"])[..], "{row:?}");
    assert_eq!(mock.calls(), 1, "a 500 is final: not retried");
}

/// Asserts an aborted run: exit 3, the reason in the summary, and every row that was
/// not carried out in `unprocessed.csv` as `not_attempted` with that reason: "not
/// attempted" when no request of it left, "sent, but not carried out" when one did (a
/// 401, a 404 for the endpoint), as its request ids and attempts show.
fn assert_aborted(reports: &Reports, reason: &str) {
    assert_eq!(reports.exit_code(), 3);
    let aborted = reports.summary["aborted"].as_str().unwrap_or_default();
    assert!(
        aborted.contains(reason),
        "summary.aborted {aborted:?} should say {reason:?}"
    );
    assert!(
        !reports.unprocessed.rows.is_empty(),
        "nothing in unprocessed.csv"
    );
    for row in reports.unprocessed.normalised().iter().skip(1) {
        assert_eq!(row[2], "", "{row:?}");
        assert_eq!(row[3], "not_attempted", "{row:?}");
        let said = match row[9].as_str() {
            "0" => "not attempted: ",
            _ => "sent, but not carried out: ",
        };
        assert!(
            row[4].starts_with(said) && row[4].contains(reason),
            "{row:?}"
        );
    }
}

#[test]
fn wrong_token_aborts_with_exit_3_and_a_fixed_token_finishes() {
    let ws = Workspace::new();
    let sandbox = Sandbox::start(ws.path(), &[]);
    ws.config_for(&sandbox, FAST);
    let n = 40;
    ws.write("appointments.csv", &appointments_csv("AUTH", n));
    let wrong = "not-the-sandbox-token-8f2c";
    let args = run_args("appointments.csv", "appointments", "r1", &[]);
    let mut command = ws.command(&args);
    command.env(ARCTOS_TOKEN_ENV, wrong);
    let out = finish(command, &args).expect(3);
    let reports = Reports::read(&ws.join("r1"));
    reports.assert_accounts_for(csv_rows(n));
    assert_aborted(&reports, "authentication refused");
    assert_eq!(
        reports.unprocessed.rows.len(),
        n,
        "nothing succeeded, nothing failed"
    );
    let stats = sandbox.stats();
    assert_eq!(count(&stats, &["created", "appointments"]), 0);
    assert!(
        count(&stats, &["requests", CREATE_TASK]) <= 8,
        "at most one refused request per worker: {stats}"
    );
    // The secret appears nowhere.
    let mut everything = out.stdout + &out.stderr;
    for file in [
        "succeeded.csv",
        "failed.csv",
        "skipped.csv",
        "unprocessed.csv",
        "summary.json",
    ] {
        everything += &std::fs::read_to_string(ws.join("r1").join(file)).unwrap();
    }
    assert!(!everything.contains(wrong), "the token leaked");
    // reconcile agrees with the run: nothing was sent, so nothing failed (rows the
    // refused requests carried were recorded as not sent, not as failed).
    let out = ws
        .ferry(&reconcile_args("appointments.csv", "appointments", "c1"))
        .expect(1);
    assert!(
        out.stdout.contains(&format!(
            "{n} rows: 0 done, 0 failed, 0 in doubt, {n} never attempted"
        )),
        "{}",
        out.stdout
    );

    // "fix the cause and run again": everything goes through.
    ws.ferry(&run_args("appointments.csv", "appointments", "r2", &[]))
        .expect(0);
    let reports = Reports::read(&ws.join("r2"));
    reports.assert_accounts_for(csv_rows(n));
    assert_eq!(reports.succeeded.rows.len(), n);
    assert_eq!(
        count(&sandbox.stats(), &["created", "appointments"]),
        n as u64
    );
}

#[test]
fn base_url_path_prefix_that_404s_every_request_aborts() {
    let ws = Workspace::new();
    let sandbox = Sandbox::start(ws.path(), &[]);
    ws.write(
        "ferry.toml",
        &ferry_toml(&format!("{}/v2", sandbox.url()), FAST),
    );
    let n = 40;
    ws.write("appointments.csv", &appointments_csv("P", n));
    ws.ferry(&run_args("appointments.csv", "appointments", "r", &[]))
        .expect(3);
    let reports = Reports::read(&ws.join("r"));
    reports.assert_accounts_for(csv_rows(n));
    assert_aborted(&reports, "404");
    let stats = sandbox.stats();
    assert!(
        count(&stats, &["not_found"]) <= 8,
        "kept sending after 404s: {stats}"
    );
}

#[test]
fn endpoint_that_answers_a_plain_404_aborts_with_exit_3() {
    let server = httpmock::MockServer::start();
    let mock = server.mock(|when, then| {
        when.method(httpmock::Method::POST);
        then.status(404)
            .header("content-type", "text/html")
            .body("<html>Not Found</html>");
    });
    let ws = Workspace::new();
    ws.write("ferry.toml", &ferry_toml(&server.base_url(), FAST));
    let n = 40;
    ws.write("appointments.csv", &appointments_csv("P", n));
    ws.ferry(&run_args("appointments.csv", "appointments", "r", &[]))
        .expect(3);
    let reports = Reports::read(&ws.join("r"));
    reports.assert_accounts_for(csv_rows(n));
    assert_aborted(&reports, "the endpoint does not exist");
    assert_eq!(reports.unprocessed.rows.len(), n);
    assert!(
        mock.calls() <= 8,
        "kept sending after 404s: {}",
        mock.calls()
    );
}

#[test]
fn max_failed_rows_aborts_once_passed() {
    let ws = Workspace::new();
    let sandbox = Sandbox::start(ws.path(), &[]);
    ws.config_for(&sandbox, FAST);
    // Every row names a task that does not exist: each is refused.
    let n = 30;
    let mut manifest = "task_num,emp_id\n".to_string();
    for i in 0..n {
        manifest.push_str(&format!("209901010000001,ops-{i}\n"));
    }
    ws.write("moderators.csv", &manifest);
    let extra = ["--max-failed-rows", "2", "--concurrency", "1"];
    ws.ferry(&run_args("moderators.csv", "moderators", "r", &extra))
        .expect(3);
    let reports = Reports::read(&ws.join("r"));
    reports.assert_accounts_for(csv_rows(n));
    assert_aborted(&reports, "3 rows failed, more than --max-failed-rows 2");
    assert_eq!(reports.failed.ferry_rows(), vec![2, 3, 4]);
    assert_eq!(reports.unprocessed.rows.len(), n - 3);
    assert_eq!(count(&sandbox.stats(), &["requests", ADD_MODERATOR]), 3);
}

#[test]
fn max_failed_rows_counts_every_failed_row() {
    let ws = Workspace::new();
    let sandbox = Sandbox::start(ws.path(), &[]);
    ws.config_for(&sandbox, FAST);
    // Two rows fail validation (not more than the limit on their own), then one is
    // refused by the vendor: three failed rows, more than 2.
    let mut manifest = format!("{APPOINTMENTS_HEADER}\n");
    for out in ["BAD-1", "BAD-2"] {
        let mut cells = appointment_cells(out);
        cells[0] = "abc".into();
        manifest.push_str(&(cells.join(",") + "\n"));
    }
    ws.write("first.csv", &appointments_csv("MX", 1));
    ws.ferry(&[
        "run",
        "first.csv",
        "--kind",
        "appointments",
        "--state",
        "other.db",
        "--report-dir",
        "r0",
    ])
    .expect(0);
    manifest.push_str(&(appointment_cells("MX-0000").join(",") + "\n"));
    for i in 1..30 {
        manifest.push_str(&(appointment_cells(&format!("MX-{i:04}")).join(",") + "\n"));
    }
    ws.write("appointments.csv", &manifest);
    let extra = ["--max-failed-rows", "2", "--concurrency", "1"];
    ws.ferry(&run_args("appointments.csv", "appointments", "r", &extra))
        .expect(3);
    let reports = Reports::read(&ws.join("r"));
    reports.assert_accounts_for(csv_rows(32));
    assert_aborted(&reports, "more than --max-failed-rows 2");
    assert!(count(&sandbox.stats(), &["created", "appointments"]) < 30);
}

#[test]
fn more_invalid_rows_than_max_failed_rows_sends_nothing() {
    let ws = Workspace::new();
    let sandbox = Sandbox::start(ws.path(), &[]);
    ws.config_for(&sandbox, FAST);
    let mut manifest = appointments_csv("V", 10);
    for out in ["BAD-1", "BAD-2", "BAD-3"] {
        let mut cells = appointment_cells(out);
        cells[8] = "maybe".into();
        manifest.push_str(&(cells.join(",") + "\n"));
    }
    ws.write("appointments.csv", &manifest);
    ws.ferry(&run_args(
        "appointments.csv",
        "appointments",
        "r",
        &["--max-failed-rows", "2"],
    ))
    .expect(3);
    let reports = Reports::read(&ws.join("r"));
    reports.assert_accounts_for(csv_rows(13));
    assert_aborted(
        &reports,
        "3 rows failed validation, more than --max-failed-rows 2; nothing was sent",
    );
    assert_eq!(reports.failed.ferry_rows(), vec![12, 13, 14]);
    assert!(reports
        .failed
        .column("ferry_error_code")
        .iter()
        .all(|c| *c == "invalid_boolean"));
    assert_eq!(reports.unprocessed.rows.len(), 10);
    assert_eq!(sandbox.requests_total(), 0);
}

/// The check validates every row before sending only for `--max-failed-rows` (the
/// limit is judged before anything leaves, on every core, in chunks of rows); otherwise
/// the sending pass finds repeated keys itself. Both ways fail the same rows, a number
/// written two ways included, near its first row and far past it.
#[test]
fn repeated_keys_are_found_alike_with_or_without_a_failure_limit() {
    let ws = Workspace::new();
    let mut manifest = "eventId,name,countryCode,mobile,areaCode,phone\n\
         1001,Chen,86,18100000030,,\n\
         1001,Lin,886,0912345677,,\n\
         1001,Chen again,86,+86 181 0000 0030,,\n\
         1001,Lin again,886,+886 912 345 677,,\n\
         1001,Wong,852,61234567,,\n"
        .to_string();
    for i in 0..1500 {
        manifest.push_str(&format!("1001,P{i},86,{},,\n", cn_mobile(100_000 + i)));
    }
    manifest
        .push_str("1001,P0 again,86,+86 181 0010 0000,,\n1001,Chen once more,86,181-0000-0030,,\n");
    ws.write("calls.csv", &manifest);
    let mut seen = Vec::new();
    for (dir, state, limit) in [
        ("plain", "plain.db", &[][..]),
        ("limited", "limited.db", &["--max-failed-rows", "5"][..]),
    ] {
        // A sandbox each: the second run's numbers are new to its event too.
        let sandbox = Sandbox::start(ws.path(), &[]);
        ws.config_for(&sandbox, FAST);
        let mut args = vec!["run", "calls.csv", "--kind", "calls", "--state", state];
        args.extend(["--report-dir", dir]);
        args.extend_from_slice(limit);
        ws.ferry(&args).expect(1);
        let reports = Reports::read(&ws.join(dir));
        reports.assert_accounts_for(csv_rows(1507));
        assert_eq!(reports.failed.ferry_rows(), [4, 5, 1507, 1508], "{dir}");
        let first_row = |key: &str, row: u64| {
            format!("the same record key \"1001|{key}\" is already on row {row}; each record may appear once: remove or merge one of them")
        };
        assert_eq!(
            reports.failed.column("ferry_error"),
            [
                first_row("+8618100000030", 2),
                first_row("+886912345677", 3),
                first_row("+8618100100000", 7),
                first_row("+8618100000030", 2),
            ],
            "{dir}"
        );
        assert_eq!(reports.succeeded.rows.len(), 1503, "{dir}");
        seen.push((
            reports.failed.normalised(),
            // In row order: the file is in the order answers came.
            {
                let rows = reports.succeeded.ferry_rows().into_iter();
                let mut done: Vec<_> = rows.zip(reports.succeeded.column("ferry_key")).collect();
                done.sort();
                format!("{done:?}")
            },
            sandbox.requests_total(),
        ));
    }
    assert_eq!(seen[0], seen[1]);
}

/// Exit 2 with `needle` in the error, and nothing sent.
fn assert_refused(ws: &Workspace, sandbox: &Sandbox, args: &[&str], needle: &str) {
    let out = ws.ferry(args).expect(2);
    assert!(
        out.stderr.contains(needle),
        "stderr should mention {needle:?}:\n{}",
        out.stderr
    );
    assert_eq!(sandbox.requests_total(), 0, "ferry {args:?} sent requests");
}

#[test]
fn config_manifest_and_usage_errors_exit_2_and_send_nothing() {
    let ws = Workspace::new();
    let sandbox = Sandbox::start(ws.path(), &[]);
    ws.write("appointments.csv", &appointments_csv("E", 5));
    ws.write("status.csv", "out_task_num,task_status\nE-0000,finished\n");

    // An unknown key is named.
    let config = ferry_toml(&sandbox.url(), FAST)
        .replace("max_retries = 10", "max_retries = 10\nretry_budget = 3");
    ws.write("typo.toml", &config);
    let args = run_args(
        "appointments.csv",
        "appointments",
        "r",
        &["--config", "typo.toml"],
    );
    assert_refused(&ws, &sandbox, &args, "retry_budget");

    // task-status without its path says which setting is missing.
    let config = ferry_toml(&sandbox.url(), FAST).replace(
        "[targets.arctos.paths]\nupdate_task_status = \"/api/task/status/do_update\"\n",
        "",
    );
    assert!(!config.contains("update_task_status"));
    ws.write("nopath.toml", &config);
    let args = run_args(
        "status.csv",
        "task-status",
        "r",
        &["--config", "nopath.toml"],
    );
    assert_refused(&ws, &sandbox, &args, "update_task_status");

    ws.config_for(&sandbox, FAST);
    // A manifest that cannot be read.
    let args = run_args("missing.csv", "appointments", "r", &[]);
    assert_refused(&ws, &sandbox, &args, "missing.csv");
    // A manifest without a required column.
    ws.write("nocolumn.csv", "business_id,out_task_num\n15,E-0000\n");
    let args = run_args("nocolumn.csv", "appointments", "r", &[]);
    assert_refused(
        &ws,
        &sandbox,
        &args,
        "no columns for the required fields task_type; branch_code; room_type; video;",
    );
    // Usage errors.
    let args = run_args("appointments.csv", "appointments", "r", &["--rate", "0"]);
    assert_refused(&ws, &sandbox, &args, "--rate");
    assert_refused(&ws, &sandbox, &["run", "appointments.csv"], "--kind");
    let args = run_args(
        "appointments.csv",
        "appointments",
        "r",
        &["--target", "nowhere"],
    );
    assert_refused(&ws, &sandbox, &args, "nowhere");
}

/// Waits for a child, killing it (and failing) after `limit`.
fn wait_for(
    child: &mut std::process::Child,
    limit: std::time::Duration,
) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait for ferry") {
            return status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ferry did not stop within {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Starts a slow run of `n` appointments (sandbox latency 200 ms, 5 requests a
/// second), sends `signal` 1.5 s after its first request reached the sandbox, and
/// checks what SPEC §1 promises for an interrupt: exit 130, in-flight requests finished
/// and recorded, complete reports. Returns them.
fn interrupted_run(ws: &Workspace, sandbox: &Sandbox, n: usize, signal: libc::c_int) -> Reports {
    ws.write("appointments.csv", &appointments_csv("INT", n));
    let args = run_args("appointments.csv", "appointments", "r1", &["--rate", "5"]);
    let mut child = ws
        .command(&args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("ferry starts");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while sandbox.requests_total() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "ferry never sent a request"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(1500));
    // SAFETY: signalling our own child, whose pid we hold.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, signal) };
    assert_eq!(rc, 0, "kill({signal})");
    let status = wait_for(&mut child, std::time::Duration::from_secs(20));
    assert_eq!(status.code(), Some(130), "{status:?}");

    let reports = Reports::read(&ws.join("r1"));
    reports.assert_accounts_for(csv_rows(n));
    assert_eq!(reports.exit_code(), 130);
    assert!(
        !reports.succeeded.rows.is_empty(),
        "nothing was sent in 1.5 s"
    );
    assert!(
        reports.failed.rows.is_empty(),
        "in-flight requests must be finished, not left unknown"
    );
    assert!(
        reports.unprocessed.rows.len() > n / 2,
        "{} unprocessed",
        reports.unprocessed.rows.len()
    );
    for row in reports.unprocessed.normalised().iter().skip(1) {
        assert_eq!(row[3], "not_attempted", "{row:?}");
        assert!(row[4].contains("interrupted"), "{row:?}");
        assert_eq!((row[7].as_str(), row[9].as_str()), ("", "0"), "{row:?}");
    }
    let stats = sandbox.stats();
    assert_eq!(
        count(&stats, &["created", "appointments"]),
        reports.succeeded.rows.len() as u64
    );
    reports
}

#[test]
fn sigint_finishes_what_is_in_flight_writes_the_reports_and_a_rerun_completes() {
    let ws = Workspace::new();
    let sandbox = Sandbox::start(ws.path(), &["--latency-ms", "200"]);
    ws.config_for(&sandbox, FAST);
    let n = 200;
    let first = interrupted_run(&ws, &sandbox, n, libc::SIGINT);

    // The rest, without sending anything twice.
    let extra = ["--rate", "500", "--concurrency", "50"];
    ws.ferry(&run_args("appointments.csv", "appointments", "r2", &extra))
        .expect(0);
    let second = Reports::read(&ws.join("r2"));
    second.assert_accounts_for(csv_rows(n));
    let sorted = |mut rows: Vec<u64>| {
        rows.sort_unstable();
        rows
    };
    assert_eq!(
        sorted(second.skipped.ferry_rows()),
        sorted(first.succeeded.ferry_rows())
    );
    assert_eq!(second.succeeded.rows.len(), first.unprocessed.rows.len());
    let stats = sandbox.stats();
    assert_eq!(count(&stats, &["created", "appointments"]), n as u64);
    assert_eq!(count(&stats, &["duplicates_rejected", "appointments"]), 0);
}

#[test]
fn sigterm_is_an_interrupt_too() {
    let ws = Workspace::new();
    let sandbox = Sandbox::start(ws.path(), &["--latency-ms", "200"]);
    ws.config_for(&sandbox, FAST);
    interrupted_run(&ws, &sandbox, 100, libc::SIGTERM);
}

#[test]
fn aicc_wrong_app_key_aborts_with_exit_3() {
    let ws = Workspace::new();
    let sandbox = Sandbox::start(ws.path(), &[]);
    ws.config_for(&sandbox, FAST);
    let mut manifest = "userId,callType\n".to_string();
    for i in 0..20 {
        manifest.push_str(&format!("16602708456270{i:05},1\n"));
    }
    ws.write("agents.csv", &manifest);
    let args = run_args("agents.csv", "agent-settings", "r", &[]);
    let mut command = ws.command(&args);
    command.env(AICC_APP_KEY_ENV, "not-the-app-key");
    finish(command, &args).expect(3);
    let reports = Reports::read(&ws.join("r"));
    reports.assert_accounts_for(csv_rows(20));
    assert_aborted(&reports, "authentication refused");
    assert_eq!(reports.unprocessed.rows.len(), 20);
    assert_eq!(count(&sandbox.stats(), &["created", "agent_settings"]), 0);
}

#[test]
fn rate_is_kept_and_reached_when_the_server_is_slow() {
    // 100 ms per answer and 50 requests a second: ten in flight hide the latency. The
    // sandbox would answer 429 to more than 55 arrivals in any one-second window.
    let ws = Workspace::new();
    let sandbox = Sandbox::start(ws.path(), &["--latency-ms", "100", "--rate-limit", "55"]);
    ws.config_for(
        &sandbox,
        "rate = 50\nburst = 1\nconcurrency = 10\ntimeout_secs = 10\nmax_retries = 10",
    );
    let n = 100;
    ws.write("appointments.csv", &appointments_csv("RATE", n));
    ws.ferry(&run_args("appointments.csv", "appointments", "r", &[]))
        .expect(0);
    let reports = Reports::read(&ws.join("r"));
    reports.assert_accounts_for(csv_rows(n));
    let stats = sandbox.stats();
    assert_eq!(
        count(&stats, &["throttled"]),
        0,
        "ferry exceeded its rate: {stats}"
    );
    let achieved = reports.summary["requests"]["achieved_rate"]
        .as_f64()
        .expect("achieved_rate");
    assert!(
        (40.0..=55.0).contains(&achieved),
        "achieved {achieved}/s for a rate of 50/s"
    );
}

#[test]
fn stdin_manifest_is_named_stdin_in_the_reports() {
    let ws = Workspace::new();
    let manifest = appointments_csv("IN", 5);
    let args = [
        "run",
        "-",
        "--format",
        "csv",
        "--kind",
        "appointments",
        "--target",
        "sandbox",
        "--state",
        "state.db",
        "--report-dir",
        "r",
    ];
    let mut child = ws
        .command(&args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("ferry starts");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("piped stdin");
        stdin
            .write_all(manifest.as_bytes())
            .expect("write the manifest");
    }
    let out = child.wait_with_output().expect("ferry runs");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let reports = Reports::read(&ws.join("r"));
    reports.assert_accounts_for(csv_rows(5));
    assert_eq!(reports.summary["manifest"], "<stdin>");
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("<stdin> → sandbox"),
        "{out:?}"
    );
}

/// Issue 7: a state written by ferry 0.1.0 keyed calls by the digits as the cell wrote
/// them (`886|0912345677` and `886|912345677` for one number). The fixture in
/// `tests/data/state-v0.1.0/` was made by that release's own `run --target sandbox` of the
/// `calls.csv` beside it. An upgrade rekeys the state in place, so nothing that succeeded
/// is sent again, whichever spelling the next manifest uses.
#[test]
fn state_written_by_ferry_0_1_0_is_migrated_and_nothing_done_is_sent_again() {
    let ws = Workspace::new();
    let data = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/state-v0.1.0");
    for name in ["state.db", "calls.csv"] {
        std::fs::copy(data.join(name), ws.join(name)).expect("copy the fixture");
    }
    let sandbox = ["--target", "sandbox"];

    // The same manifest again: the six numbers it sent are skipped; row 4 is row 3's
    // number in another spelling, now a duplicate; row 9 (a national significant number
    // that 0.1.0 refused) is new and sent.
    ws.ferry(&run_args("calls.csv", "calls", "r1", &sandbox))
        .expect(1);
    let first = Reports::read(&ws.join("r1"));
    first.assert_accounts_for(csv_rows(8));
    assert_eq!(
        first.skipped.column("ferry_key"),
        [
            "1001|+8618100000030",
            "1001|+886912345677",
            "1001|+85261234567",
            "1001|+861058512042",
            "1001|+447400123456",
            "1001|+819012345678",
        ]
    );
    assert_eq!(first.skipped.ferry_rows(), [2, 3, 5, 6, 7, 8]);
    assert_eq!(first.failed.ferry_rows(), [4]);
    assert_eq!(first.failed.cell(4, "ferry_error_code"), "duplicate_key");
    assert_eq!(first.succeeded.column("ferry_key"), ["1001|+886912345678"]);
    assert_eq!(first.requests_sent(), 1);

    // Every number written another way: all already done, nothing sent.
    ws.write(
        "respelled.csv",
        "eventId,name,countryCode,mobile,areaCode,phone\n\
         1001,Chen,86,+86 181 0000 0030,,\n\
         1001,Lin,886,912 345 677,,\n\
         1001,Wong,852,00852 6123 4567,,\n\
         1001,Wang,+86,,10,5851 2042\n\
         1001,Smith,44,+447400123456,,\n\
         1001,Sato,81,9012345678,,\n\
         1001,Bad,886,0912-345-678,,\n",
    );
    ws.ferry(&run_args("respelled.csv", "calls", "r2", &sandbox))
        .expect(0);
    let second = Reports::read(&ws.join("r2"));
    second.assert_accounts_for(csv_rows(7));
    assert_eq!(second.skipped.rows.len(), 7);
    assert_eq!(second.requests_sent(), 0);

    // The two old keys of one number became one record, and the layout is recorded.
    let db = rusqlite::Connection::open(ws.join("state.db")).expect("open the state");
    let version: i64 = db
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("user_version");
    assert_eq!(version, 2);
    let mut keys = db
        .prepare("SELECT key, status FROM rows WHERE kind = 'calls' ORDER BY key")
        .expect("query");
    let keys: Vec<(String, String)> = keys
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("rows")
        .map(|r| r.expect("a row"))
        .collect();
    let succeeded = |k: &str| (k.to_string(), "succeeded".to_string());
    assert_eq!(
        keys,
        [
            succeeded("1001|+447400123456"),
            succeeded("1001|+819012345678"),
            succeeded("1001|+85261234567"),
            succeeded("1001|+861058512042"),
            succeeded("1001|+8618100000030"),
            succeeded("1001|+886912345677"),
            succeeded("1001|+886912345678"),
        ]
    );
}

/// A state whose layout is newer than this ferry knows is refused before anything is
/// sent, never misread.
#[test]
fn state_from_a_newer_ferry_is_refused_with_exit_2() {
    let ws = Workspace::new();
    let db = rusqlite::Connection::open(ws.join("state.db")).expect("create a state");
    db.pragma_update(None, "user_version", 99)
        .expect("set layout");
    drop(db);
    ws.write(
        "calls.csv",
        "eventId,name,countryCode,mobile\n1001,Chen,86,18100000030\n",
    );
    let out = ws
        .ferry(&run_args(
            "calls.csv",
            "calls",
            "r1",
            &["--target", "sandbox"],
        ))
        .expect(2);
    assert!(
        out.stderr.contains("written by a newer ferry (layout 99"),
        "{}",
        out.stderr
    );
}

/// Issue 8: two runs of one manifest on one state must never both send. While a run
/// holds the state, a second exits 2 at once, sending nothing, and names the holder; a
/// third with `--wait-lock` waits for the first and then finds everything done. The
/// sandbox sees every row once.
#[test]
fn a_second_run_on_a_held_state_exits_2_and_one_with_wait_lock_waits_its_turn() {
    let ws = Workspace::new();
    let sandbox = Sandbox::start(ws.path(), &["--latency-ms", "100"]);
    ws.config_for(&sandbox, FAST);
    let n = 40;
    ws.write("appointments.csv", &appointments_csv("LOCK", n));
    let first_args = run_args("appointments.csv", "appointments", "r1", &["--rate", "10"]);
    let mut first = start_sending(&ws, &sandbox, &first_args);

    let refused = ws
        .ferry(&run_args("appointments.csv", "appointments", "r2", &[]))
        .expect(2);
    for part in [
        "another ferry run holds the state",
        &format!("pid {}", first.id()),
        "appointments.csv",
        "nothing was sent",
        "--wait-lock",
    ] {
        assert!(refused.stderr.contains(part), "{part}: {}", refused.stderr);
    }
    assert!(!ws.join("r2").exists(), "a refused run writes no reports");

    let waiting = ws
        .command(&run_args(
            "appointments.csv",
            "appointments",
            "r3",
            &["--wait-lock", "120"],
        ))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("ferry starts");
    let status = wait_for(&mut first, std::time::Duration::from_secs(60));
    assert_eq!(status.code(), Some(0), "{status:?}");
    let mut waiting = waiting;
    let status = wait_for(&mut waiting, std::time::Duration::from_secs(60));
    assert_eq!(status.code(), Some(0), "{status:?}");

    let first = Reports::read(&ws.join("r1"));
    first.assert_accounts_for(csv_rows(n));
    assert_eq!(first.succeeded.rows.len(), n);
    let third = Reports::read(&ws.join("r3"));
    third.assert_accounts_for(csv_rows(n));
    assert_eq!(third.skipped.rows.len(), n);
    assert_eq!(third.requests_sent(), 0);
    let stats = sandbox.stats();
    assert_eq!(count(&stats, &["created", "appointments"]), n as u64);
    assert_eq!(count(&stats, &["duplicates_rejected", "appointments"]), 0);
}

/// Issue 8: a cron job started from another folder finds the same state: without
/// `--state` it lives beside the config file (or where the config's `state` says,
/// relative to the config file), and the summary says which.
#[test]
fn the_state_lives_beside_the_config_whatever_the_working_directory() {
    let ws = Workspace::new();
    let sandbox = Sandbox::start(ws.path(), &[]);
    std::fs::create_dir_all(ws.join("etc")).expect("mkdir");
    std::fs::create_dir_all(ws.join("elsewhere")).expect("mkdir");
    ws.write("etc/ferry.toml", &ferry_toml(&sandbox.url(), FAST));
    let n = 5;
    ws.write("appointments.csv", &appointments_csv("LOC", n));
    let args = |dir: &str| {
        vec![
            "run".to_string(),
            ws.join("appointments.csv").display().to_string(),
            "--kind".into(),
            "appointments".into(),
            "--config".into(),
            ws.join("etc/ferry.toml").display().to_string(),
            "--report-dir".into(),
            ws.join(dir).display().to_string(),
        ]
    };
    let run_in = |cwd: &str, dir: &str| {
        let args = args(dir);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut command = ws.command(&args);
        command.current_dir(ws.join(cwd));
        finish(command, &args)
    };
    run_in(".", "r1").expect(0);
    let state = ws.join("etc/.ferry/state.db");
    assert!(state.exists(), "the state is beside the config");
    let first = Reports::read(&ws.join("r1"));
    assert_eq!(first.summary["state"], state.display().to_string());
    // From another folder: the same state, so nothing is sent again.
    let out = run_in("elsewhere", "r2").expect(0);
    assert!(
        out.stdout.contains(&format!("state: {}", state.display())),
        "{}",
        out.stdout
    );
    assert_eq!(Reports::read(&ws.join("r2")).skipped.rows.len(), n);
    assert!(!ws.join("elsewhere/.ferry").exists());

    // The config's own `state`, relative to the config file.
    ws.write(
        "etc/ferry.toml",
        &format!(
            "state = \"db/ferry-state.db\"\n{}",
            ferry_toml(&sandbox.url(), FAST)
        ),
    );
    // A new state knows nothing yet, so the rows go out again and the sandbox, which
    // has them, refuses them as duplicates.
    run_in("elsewhere", "r3").expect(1);
    assert!(ws.join("etc/db/ferry-state.db").exists());
    assert_eq!(Reports::read(&ws.join("r3")).failed.rows.len(), n);
    assert_eq!(
        count(&sandbox.stats(), &["duplicates_rejected", "appointments"]),
        n as u64
    );
}

/// Issue 8: a report folder is never the manifest's own folder (feeding back a fixed
/// `failed.csv` with `--report-dir` set to its folder overwrote it while it was read), and
/// an earlier run's reports are never mixed with a new run's: a non-empty folder is
/// refused unless `--overwrite`, which replaces ferry's own files and nothing else.
#[test]
fn report_dir_holding_the_manifest_or_an_earlier_run_is_refused_before_anything_is_sent() {
    let ws = Workspace::new();
    let n = 4;
    let mut manifest = appointments_csv("RD", n);
    manifest.push_str("15,RD-BAD,,normal,,,,943,2,normal,maybe\n");
    ws.write("appointments.csv", &manifest);
    let sandbox = ["--target", "sandbox"];
    ws.ferry(&run_args(
        "appointments.csv",
        "appointments",
        "r1",
        &sandbox,
    ))
    .expect(1);
    let failed_before = std::fs::read(ws.join("r1/failed.csv")).expect("failed.csv");

    // Feeding back r1/failed.csv into r1 itself: refused, the file untouched.
    let out = ws
        .ferry(&run_args("r1/failed.csv", "appointments", "r1", &sandbox))
        .expect(2);
    assert!(out.stderr.contains("holds the manifest"), "{}", out.stderr);
    assert!(out.stderr.contains("nothing was sent"), "{}", out.stderr);
    assert_eq!(
        std::fs::read(ws.join("r1/failed.csv")).expect("read"),
        failed_before
    );
    let out = ws
        .ferry(&run_args(
            "r1/failed.csv",
            "appointments",
            "r1",
            &["--target", "sandbox", "--overwrite"],
        ))
        .expect(2);
    assert!(out.stderr.contains("holds the manifest"), "{}", out.stderr);

    // Another manifest into r1: refused without --overwrite.
    let validate = |extra: &[&str]| {
        let mut args = vec![
            "validate",
            "appointments.csv",
            "--kind",
            "appointments",
            "--report-dir",
            "r1",
        ];
        args.extend_from_slice(extra);
        ws.ferry(&args)
    };
    let out = validate(&[]).expect(2);
    assert!(out.stderr.contains("already holds files"), "{}", out.stderr);
    assert!(out.stderr.contains("--overwrite"), "{}", out.stderr);
    // A file where the folder should be: said so, not a bare "File exists".
    let out = ws
        .ferry(&[
            "validate",
            "appointments.csv",
            "--kind",
            "appointments",
            "--report-dir",
            "appointments.csv",
        ])
        .expect(2);
    assert!(
        out.stderr
            .contains("--report-dir appointments.csv: it is a file, not a folder"),
        "{}",
        out.stderr
    );
    assert_eq!(
        std::fs::read(ws.join("r1/failed.csv")).expect("read"),
        failed_before
    );

    // With --overwrite: ferry's old files are replaced (the run's succeeded.csv does not
    // linger beside validate's valid.csv), a file of the user's stays.
    ws.write("r1/notes.txt", "mine");
    validate(&["--overwrite"]).expect(1);
    let mut names: Vec<String> = std::fs::read_dir(ws.join("r1"))
        .expect("r1")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "failed.csv",
            "notes.txt",
            "report.xlsx",
            "summary.json",
            "valid.csv"
        ]
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ws.join("r1/summary.json")).expect("read"))
            .expect("JSON");
    assert_eq!(summary["command"], "validate");
}

/// Starts `ferry ARGS` and returns once its first request has reached the sandbox.
fn start_sending(ws: &Workspace, sandbox: &Sandbox, args: &[&str]) -> std::process::Child {
    let before = sandbox.requests_total();
    let child = ws
        .command(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("ferry starts");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while sandbox.requests_total() == before {
        assert!(std::time::Instant::now() < deadline, "ferry never sent");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child
}

/// What SPEC §1 promises for every way out after sending began: the exit code, a
/// summary.json whose counts add up with every row in exactly one report, and a vendor
/// that created nothing twice and exactly what the reports call succeeded.
fn assert_stopped_honestly(
    ws: &Workspace,
    sandbox: &Sandbox,
    child: std::process::Child,
    dir: &str,
    n: usize,
    reason: &str,
) -> Reports {
    let output = child.wait_with_output().expect("ferry finishes");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    let reports = Reports::read(&ws.join(dir));
    reports.assert_accounts_for(csv_rows(n));
    assert_eq!(reports.exit_code(), 3);
    let aborted = reports.summary["aborted"].as_str().unwrap_or_default();
    assert!(aborted.contains(reason), "{reason}: {aborted}");
    assert!(
        !reports.unprocessed.rows.is_empty(),
        "the run should have stopped early"
    );
    // What the vendor created is what the reports call succeeded, plus the rows it
    // answered after the state failed: those are reported in doubt, as the state has them.
    let in_doubt = reports
        .failed
        .column("ferry_error")
        .iter()
        .filter(|e| e.contains("the vendor answered success"))
        .count();
    let stats = sandbox.stats();
    assert_eq!(count(&stats, &["duplicates_rejected", "appointments"]), 0);
    assert_eq!(
        count(&stats, &["created", "appointments"]),
        (reports.succeeded.rows.len() + in_doubt) as u64
    );
    reports
}

/// Issue 8: a state file deleted while a run sends used to give exit 0, and the next
/// run resent everything. Now the next group commit notices, no more is sent, and the run
/// exits 3 with complete reports.
#[test]
fn state_deleted_mid_run_stops_it_with_exit_3() {
    let ws = Workspace::new();
    let sandbox = Sandbox::start(ws.path(), &["--latency-ms", "50"]);
    ws.config_for(&sandbox, FAST);
    let n = 60;
    ws.write("appointments.csv", &appointments_csv("GONE", n));
    let args = run_args("appointments.csv", "appointments", "r1", &["--rate", "10"]);
    let child = start_sending(&ws, &sandbox, &args);
    std::thread::sleep(std::time::Duration::from_millis(300));
    for name in ["state.db", "state.db-wal", "state.db-shm"] {
        let _ = std::fs::remove_file(ws.join(name));
    }
    assert_stopped_honestly(&ws, &sandbox, child, "r1", n, "the file was deleted");
}

/// Issue 8: a manifest rewritten while a run sends (same number of rows, other
/// contents) used to go unnoticed, and its rows were sent. Now the next batch notices:
/// nothing of the new file is sent, and the run exits 3.
#[test]
fn manifest_replaced_mid_run_stops_it_before_more_is_sent() {
    let ws = Workspace::new();
    let sandbox = Sandbox::start(ws.path(), &["--latency-ms", "50"]);
    ws.config_for(&sandbox, FAST);
    let n = 60;
    ws.write("appointments.csv", &appointments_csv("OLD", n));
    let args = run_args("appointments.csv", "appointments", "r1", &["--rate", "10"]);
    let child = start_sending(&ws, &sandbox, &args);
    std::thread::sleep(std::time::Duration::from_millis(300));
    ws.write("new.csv", &appointments_csv("NEW", n));
    std::fs::rename(ws.join("new.csv"), ws.join("appointments.csv")).expect("replace");
    let reports = assert_stopped_honestly(
        &ws,
        &sandbox,
        child,
        "r1",
        n,
        "changed while the run was reading it",
    );
    for key in reports.succeeded.column("ferry_key") {
        assert!(key.starts_with("OLD-"), "{key}");
    }
}

/// A mount made for a test, unmounted when dropped. `tmpfs` gives `None` where this
/// machine does not allow mounting (the test then says so and checks nothing).
struct Mount(std::path::PathBuf);

impl Mount {
    fn tmpfs(path: &std::path::Path, size: &str) -> Option<Mount> {
        std::fs::create_dir_all(path).expect("mkdir");
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("cannot mount a tmpfs here: the full-disk test checks nothing");
        }
        ok.then(|| Mount(path.to_path_buf()))
    }

    /// Fills what is left of it.
    fn fill(&self) {
        self.fill_leaving(0);
    }

    /// Fills it but for `free` bytes (rounded to the block the file system counts in).
    fn fill_leaving(&self, free: u64) {
        use std::io::Write;
        let mut file = std::fs::File::create(self.0.join("filler")).expect("filler");
        let block = vec![0u8; 4096];
        while file.write_all(&block).is_ok() {}
        let _ = file.sync_all();
        let full = file.metadata().expect("filler size").len();
        file.set_len(full.saturating_sub(free)).expect("free some");
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// Issue 8: a full disk under the state used to end in exit 2, "nothing was sent", after
/// sending. Now no more is sent once a commit fails, and the run exits 3 with its reports.
#[test]
fn state_disk_full_mid_run_stops_it_with_exit_3() {
    let ws = Workspace::new();
    let Some(disk) = Mount::tmpfs(&ws.join("disk"), "2m") else {
        return;
    };
    let sandbox = Sandbox::start(ws.path(), &["--latency-ms", "50"]);
    ws.config_for(&sandbox, FAST);
    let n = 60;
    ws.write("appointments.csv", &appointments_csv("FULL", n));
    let mut args = run_args("appointments.csv", "appointments", "r1", &["--rate", "10"]);
    args[5] = "disk/state.db";
    let child = start_sending(&ws, &sandbox, &args);
    std::thread::sleep(std::time::Duration::from_millis(300));
    disk.fill();
    assert_stopped_honestly(
        &ws,
        &sandbox,
        child,
        "r1",
        n,
        "the state could not be written",
    );
}

/// Issue 8: a full disk under the report folder: no more is sent, the exit is 3 (never
/// 2 after sending), and the state keeps every outcome, so a run with a new report
/// folder finishes the job without sending anything twice. Under `--log-format json`
/// stderr holds JSON lines only.
#[test]
fn report_disk_full_mid_run_stops_it_with_exit_3_and_a_rerun_finishes() {
    let ws = Workspace::new();
    let Some(disk) = Mount::tmpfs(&ws.join("disk"), "1m") else {
        return;
    };
    let sandbox = Sandbox::start(ws.path(), &["--latency-ms", "50"]);
    ws.config_for(&sandbox, FAST);
    let n = 60;
    ws.write("appointments.csv", &appointments_csv("RFULL", n));
    let args = run_args(
        "appointments.csv",
        "appointments",
        "disk/r1",
        &["--rate", "10", "--log-format", "json"],
    );
    let child = start_sending(&ws, &sandbox, &args);
    std::thread::sleep(std::time::Duration::from_millis(300));
    disk.fill();
    let output = child.wait_with_output().expect("ferry finishes");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(3), "{stdout}");
    let stderr = json_lines(&String::from_utf8_lossy(&output.stderr));
    assert_eq!(
        stderr.last().map(|l| l["exit_code"].clone()),
        Some(3.into())
    );
    assert!(stdout.contains("is incomplete"), "{stdout}");
    assert!(
        stdout.contains("the reports could not be written"),
        "{stdout}"
    );
    let created = count(&sandbox.stats(), &["created", "appointments"]);
    assert!(created < n as u64, "it should have stopped early");

    ws.ferry(&run_args("appointments.csv", "appointments", "r2", &[]))
        .expect(0);
    let second = Reports::read(&ws.join("r2"));
    second.assert_accounts_for(csv_rows(n));
    assert_eq!(second.skipped.rows.len() as u64, created);
    let stats = sandbox.stats();
    assert_eq!(count(&stats, &["created", "appointments"]), n as u64);
    assert_eq!(count(&stats, &["duplicates_rejected", "appointments"]), 0);
}

/// Issue 9: when report.xlsx met a full disk, zip's `ZipWriter` printed "ZipWriter::drop:
/// failed to finalize archive" on stderr as it was dropped, a line that is not JSON.
/// Whatever room the disk has left, stderr holds JSON lines only, a report.xlsx that is
/// there opens, and one that could not be written is said so in summary.json.
#[test]
fn report_xlsx_on_a_full_disk_leaves_json_lines_only() {
    let ws = Workspace::new();
    let Some(disk) = Mount::tmpfs(&ws.join("disk"), "1m") else {
        return;
    };
    let mut manifest = String::from("userId,callType,callNumber\n");
    for i in 0..40 {
        manifest.push_str(&format!("u{i},1,5551{i:03}\n"));
    }
    ws.write("agents.csv", &manifest);
    let mut xlsx_alone_failed = false;
    for pages in 0..16 {
        let _ = std::fs::remove_dir_all(ws.join("disk/r"));
        disk.fill_leaving(pages * 4096);
        let out = ws.ferry(&[
            "validate",
            "agents.csv",
            "--kind",
            "agent-settings",
            "--report-dir",
            "disk/r",
            "--log-format",
            "json",
        ]);
        let lines = json_lines(&out.stderr);
        let last = lines
            .last()
            .unwrap_or_else(|| panic!("{pages}: no log line"));
        assert_eq!(last["exit_code"], out.code, "{pages} pages: {}", out.stderr);
        assert!(matches!(out.code, 0 | 2), "{pages} pages: {}", out.stderr);
        assert!(
            !ws.join("disk/r/.summary.json.partial").exists(),
            "{pages} pages: a half-written summary was left"
        );
        let xlsx = ws.join("disk/r/report.xlsx");
        if xlsx.exists() {
            calamine::open_workbook::<calamine::Xlsx<_>, _>(&xlsx)
                .unwrap_or_else(|e| panic!("{pages} pages: a broken report.xlsx was left: {e}"));
        }
        if let Ok(summary) = std::fs::read(ws.join("disk/r/summary.json")) {
            let summary: serde_json::Value =
                serde_json::from_slice(&summary).expect("summary.json is whole");
            let aborted = summary["aborted"].as_str().unwrap_or_default();
            if aborted.contains("report.xlsx could not be written") {
                assert!(!xlsx.exists(), "{pages} pages");
                assert_eq!(out.code, 2, "{pages} pages: nothing was sent");
                xlsx_alone_failed = true;
            }
        }
    }
    assert!(
        xlsx_alone_failed,
        "some room on the disk fits the CSV files and summary.json, not report.xlsx"
    );
}

/// Issue 8: a dead endpoint (connection refused) used to fail every row one by one, and
/// the summary counted requests "sent" that never reached a server. Now a run of failed
/// connections stops the run (exit 3) with the rest unprocessed, and nothing is counted
/// as sent.
#[test]
fn a_dead_endpoint_aborts_instead_of_failing_every_row() {
    let ws = Workspace::new();
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    ws.write(
        "ferry.toml",
        &ferry_toml(
            &format!("http://127.0.0.1:{port}"),
            "rate = 500\nburst = 50\ntimeout_secs = 5\nmax_retries = 1",
        ),
    );
    let n = 200;
    ws.write("appointments.csv", &appointments_csv("DEAD", n));
    let out = ws
        .ferry(&run_args("appointments.csv", "appointments", "r1", &[]))
        .expect(3);
    let reports = Reports::read(&ws.join("r1"));
    reports.assert_accounts_for(csv_rows(n));
    let aborted = reports.summary["aborted"].as_str().unwrap_or_default();
    assert!(
        aborted.contains(&format!("127.0.0.1:{port} does not answer")),
        "{aborted}\n{}",
        out.stderr
    );
    assert!(
        reports.unprocessed.rows.len() > n / 2,
        "{} unprocessed",
        reports.unprocessed.rows.len()
    );
    for stage in reports.failed.column("ferry_stage") {
        assert_eq!(stage, "transport");
    }
    assert_eq!(reports.requests_sent(), 0, "no request reached a server");
}

/// Issue 8: with a configured concurrency too small for the rate at the vendor's answer
/// time (2 in flight × 100 ms = 20/s, for a rate of 50), ferry says so once, with the
/// number to set.
#[test]
fn a_concurrency_that_holds_the_rate_down_is_named_once() {
    let ws = Workspace::new();
    let sandbox = Sandbox::start(ws.path(), &["--latency-ms", "100"]);
    ws.config_for(
        &sandbox,
        "rate = 50\nburst = 5\nconcurrency = 2\ntimeout_secs = 10\nmax_retries = 3",
    );
    let n = 40;
    ws.write("appointments.csv", &appointments_csv("SLOW", n));
    let out = ws
        .ferry(&run_args("appointments.csv", "appointments", "r1", &[]))
        .expect(0);
    let warnings: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("concurrency 2 holds the rate to about"))
        .collect();
    assert_eq!(warnings.len(), 1, "{}", out.stderr);
    assert!(
        warnings[0].contains("set concurrency = "),
        "{}",
        warnings[0]
    );
    assert!(warnings[0].contains("[targets.arctos]"), "{}", warnings[0]);
}

/// Every line of `stderr`, parsed: under `--log-format json` each one must be JSON.
fn json_lines(stderr: &str) -> Vec<serde_json::Value> {
    stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// Issue 8: under `--log-format json` every stderr line is JSON — a fatal error, and the
/// end-of-run summary with what a log shipper needs — and the text summary says how long
/// the run took, prints the problem table, and after an abort the command that finishes
/// the job.
#[test]
fn the_operator_sees_json_lines_only_and_a_summary_that_says_what_next() {
    let ws = Workspace::new();
    let sandbox = Sandbox::start(ws.path(), &[]);
    ws.config_for(&sandbox, FAST);
    let n = 6;
    let mut manifest = appointments_csv("OPS", n);
    manifest.push_str("15,OPS-BAD,,normal,,,,943,2,normal,maybe\n");
    ws.write("appointments.csv", &manifest);

    let out = ws
        .ferry(&run_args(
            "appointments.csv",
            "appointments",
            "r1",
            &["--log-format", "json"],
        ))
        .expect(1);
    let lines = json_lines(&out.stderr);
    let summary = lines
        .iter()
        .find(|l| l["event"] == "summary")
        .unwrap_or_else(|| panic!("no summary event in {}", out.stderr));
    assert_eq!(summary["exit_code"], 1);
    assert_eq!(summary["total"], n as u64 + 1);
    assert_eq!(summary["succeeded"], n as u64);
    assert_eq!(summary["failed"], 1);
    assert_eq!(summary["report_dir"], "r1");
    assert_eq!(summary["state"], "state.db");
    assert!(summary["duration_secs"].as_f64().is_some(), "{summary}");
    let written = Reports::read(&ws.join("r1"));
    assert_eq!(summary["run_id"], written.summary["run_id"]);

    // A fatal error is a JSON line too, before and after the flags are parsed.
    let out = ws
        .ferry(&[
            "run",
            "missing.csv",
            "--kind",
            "appointments",
            "--log-format",
            "json",
        ])
        .expect(2);
    let lines = json_lines(&out.stderr);
    assert!(
        lines
            .iter()
            .any(|l| l["event"] == "fatal" && l["exit_code"] == 2),
        "{}",
        out.stderr
    );
    let out = ws
        .ferry(&["run", "x.csv", "--kind", "nope", "--log-format", "json"])
        .expect(2);
    assert_eq!(json_lines(&out.stderr)[0]["event"], "fatal");

    // Text: the duration, the problem table, and after an abort what to run next.
    let out = ws
        .ferry(&run_args(
            "appointments.csv",
            "appointments",
            "r2",
            &["--max-failed-rows", "0", "--force"],
        ))
        .expect(3);
    let stdout = &out.stdout;
    assert!(
        stdout.contains(" s\n") && stdout.contains(", in "),
        "{stdout}"
    );
    assert!(stdout.contains("invalid_boolean"), "{stdout}");
    assert!(
        stdout.contains(
            "to finish the job (done rows are skipped): ferry run appointments.csv --kind appointments --state state.db --max-failed-rows 0\n"
        ),
        "{stdout}"
    );
}

/// Issue 8: another process holding the state database (a sqlite3 shell mid-write, say)
/// while a run sends: once a commit has waited its limit, the run stops with exit 3 and
/// complete reports instead of exit 2.
#[test]
fn state_locked_by_another_process_mid_run_stops_it_with_exit_3() {
    let ws = Workspace::new();
    let sandbox = Sandbox::start(ws.path(), &["--latency-ms", "50"]);
    ws.config_for(&sandbox, FAST);
    let n = 400;
    ws.write("appointments.csv", &appointments_csv("BUSY", n));
    let args = run_args("appointments.csv", "appointments", "r1", &["--rate", "20"]);
    let child = start_sending(&ws, &sandbox, &args);
    let db = rusqlite::Connection::open(ws.join("state.db")).expect("open the state");
    db.execute_batch("BEGIN IMMEDIATE")
        .expect("take the write lock");
    let reports = assert_stopped_honestly(&ws, &sandbox, child, "r1", n, "database is locked");
    drop(db);
    assert!(reports.succeeded.rows.len() < n);
}

/// Issue 8: a state on a read-only filesystem is refused before anything is sent
/// (exit 2, and the sandbox saw nothing).
#[test]
fn state_on_a_read_only_filesystem_is_exit_2_with_nothing_sent() {
    let ws = Workspace::new();
    std::fs::create_dir_all(ws.join("src")).expect("mkdir");
    std::fs::create_dir_all(ws.join("ro")).expect("mkdir");
    let mounted = std::process::Command::new("mount")
        .args(["--bind"])
        .arg(ws.join("src"))
        .arg(ws.join("ro"))
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("cannot bind-mount here: the read-only test checks nothing");
        return;
    }
    let unmount = Mount(ws.join("ro"));
    let read_only = std::process::Command::new("mount")
        .args(["-o", "remount,ro,bind"])
        .arg(ws.join("ro"))
        .status()
        .is_ok_and(|s| s.success());
    assert!(read_only, "remount read-only");
    let sandbox = Sandbox::start(ws.path(), &[]);
    ws.config_for(&sandbox, FAST);
    ws.write("appointments.csv", &appointments_csv("RO", 3));
    let mut args = run_args("appointments.csv", "appointments", "r1", &[]);
    args[5] = "ro/state.db";
    let out = ws.ferry(&args).expect(2);
    assert!(
        out.stderr.contains("Read-only file system"),
        "{}",
        out.stderr
    );
    assert_eq!(sandbox.requests_total(), 0);
    drop(unmount);
}

/// Issue 9: absurd flag values are usage errors that name the flag and its range — never
/// a panic, never gigabytes of tasks.
#[test]
fn numeric_flags_out_of_range_are_exit_2_naming_the_range() {
    let ws = Workspace::new();
    ws.write("appointments.csv", &appointments_csv("FLAG", 2));
    for (flag, value, want) in [
        (
            "--rate",
            "1e-20",
            "--rate: 0.00000000000000000001 is out of range: give 0.001 to 100000",
        ),
        ("--rate", "NaN", "--rate: NaN is out of range"),
        (
            "--concurrency",
            "9223372036854775807",
            "--concurrency: 9223372036854775807 is out of range: give 1 to 1024",
        ),
        ("--concurrency", "0", "--concurrency: 0 is out of range"),
        (
            "--batch-size",
            "0",
            "--batch-size: 0 is out of range: give 1 to 10000",
        ),
    ] {
        let out = ws
            .ferry(&run_args(
                "appointments.csv",
                "appointments",
                "r",
                &["--target", "sandbox", flag, value],
            ))
            .expect(2);
        assert!(out.stderr.contains(want), "{flag} {value}: {}", out.stderr);
        assert!(!ws.join("r").exists());
    }
}

/// Issue 9: SIGTERM during `ferry validate` used to kill it (143 in a shell); it exits
/// 130, like every other interrupted command.
#[test]
fn sigterm_during_validate_exits_130() {
    let ws = Workspace::new();
    let mut manifest = String::from("eventId,name,countryCode,mobile\n");
    // Long enough that it is still reading when the signal comes.
    for i in 0..1_000_000 {
        manifest.push_str(&format!("1,n{i},86,138{i:08}\n"));
    }
    ws.write("calls.csv", &manifest);
    let mut child = ws
        .command(&[
            "validate",
            "calls.csv",
            "--kind",
            "calls",
            "--report-dir",
            "r",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("ferry starts");
    std::thread::sleep(std::time::Duration::from_millis(300));
    // SAFETY: signalling our own child, whose pid we hold.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(rc, 0);
    let status = wait_for(&mut child, std::time::Duration::from_secs(30));
    assert_eq!(status.code(), Some(130), "{status:?}");
    assert!(
        !ws.join("r/summary.json").exists(),
        "an interrupted validate is incomplete"
    );
}

/// Review of issue 8: after Ctrl-C, batches that were waiting for their turn (the rate
/// limit) used to be sent anyway. Nothing leaves after the interrupt beyond what was
/// already on the wire.
#[test]
fn nothing_waiting_for_its_turn_is_sent_after_an_interrupt() {
    let ws = Workspace::new();
    let sandbox = Sandbox::start(ws.path(), &[]);
    ws.config_for(
        &sandbox,
        "rate = 1\nburst = 1\ntimeout_secs = 10\nmax_retries = 3",
    );
    let n = 20;
    ws.write("appointments.csv", &appointments_csv("WAIT", n));
    let args = run_args("appointments.csv", "appointments", "r1", &[]);
    let mut child = start_sending(&ws, &sandbox, &args);
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let at_signal = count(&sandbox.stats(), &["created", "appointments"]);
    // SAFETY: signalling our own child, whose pid we hold.
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) },
        0
    );
    let status = wait_for(&mut child, std::time::Duration::from_secs(20));
    assert_eq!(status.code(), Some(130), "{status:?}");
    let created = count(&sandbox.stats(), &["created", "appointments"]);
    assert!(
        created <= at_signal + 1,
        "{created} created, {at_signal} at the signal"
    );
    let reports = Reports::read(&ws.join("r1"));
    reports.assert_accounts_for(csv_rows(n));
    assert_eq!(reports.succeeded.rows.len() as u64, created);
}

/// Review of issue 8: two runs on different states must not write one report folder.
#[test]
fn two_runs_cannot_share_a_report_folder() {
    let ws = Workspace::new();
    let sandbox = Sandbox::start(ws.path(), &["--latency-ms", "50"]);
    ws.config_for(&sandbox, FAST);
    ws.write("a.csv", &appointments_csv("SHA", 40));
    ws.write("b.csv", &appointments_csv("SHB", 40));
    let first = start_sending(
        &ws,
        &sandbox,
        &[
            "run",
            "a.csv",
            "--kind",
            "appointments",
            "--state",
            "a.db",
            "--report-dir",
            "r",
            "--rate",
            "10",
        ],
    );
    let out = ws
        .ferry(&[
            "run",
            "b.csv",
            "--kind",
            "appointments",
            "--state",
            "b.db",
            "--report-dir",
            "r",
        ])
        .expect(2);
    assert!(
        out.stderr
            .contains("another ferry run is writing its reports there"),
        "{}",
        out.stderr
    );
    let output = first.wait_with_output().expect("ferry finishes");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let reports = Reports::read(&ws.join("r"));
    reports.assert_accounts_for(csv_rows(40));
    for key in reports.succeeded.column("ferry_key") {
        assert!(key.starts_with("SHA-"), "{key}");
    }
}

/// Review of issue 8: a manifest reached through a symbolic link into the report folder
/// is still the report folder's file: refused, never deleted by --overwrite.
#[test]
fn a_manifest_linked_into_the_report_folder_is_never_overwritten() {
    let ws = Workspace::new();
    std::fs::create_dir_all(ws.join("fb")).expect("mkdir");
    let manifest = appointments_csv("LNK", 2);
    ws.write("fb/failed.csv", &manifest);
    std::os::unix::fs::symlink(ws.join("fb/failed.csv"), ws.join("feed.csv")).expect("symlink");
    let out = ws
        .ferry(&run_args(
            "feed.csv",
            "appointments",
            "fb",
            &["--target", "sandbox", "--overwrite"],
        ))
        .expect(2);
    assert!(out.stderr.contains("holds the manifest"), "{}", out.stderr);
    assert_eq!(
        std::fs::read_to_string(ws.join("fb/failed.csv")).expect("read"),
        manifest
    );
}

/// Review of issue 8: `ferry demo --report-dir .ferry` used to delete the real state.
#[test]
fn the_demo_never_takes_a_folder_that_is_not_a_demos() {
    let ws = Workspace::new();
    std::fs::create_dir_all(ws.join(".ferry")).expect("mkdir");
    ws.write(".ferry/state.db", "precious");
    let out = ws.ferry(&["demo", "--report-dir", ".ferry"]).expect(2);
    assert!(
        out.stderr.contains("not an earlier demo's"),
        "{}",
        out.stderr
    );
    assert_eq!(
        std::fs::read_to_string(ws.join(".ferry/state.db")).expect("read"),
        "precious"
    );
    // Its own folder it may take again.
    ws.ferry(&["demo", "--report-dir", "d"]).expect(0);
    ws.ferry(&["demo", "--report-dir", "d"]).expect(0);
}

/// Review of issue 8: the lock file is never stale; one deleted while its run holds it
/// stops that run (another could now take the same state), with exit 3.
#[test]
fn a_lock_file_deleted_mid_run_stops_the_run() {
    let ws = Workspace::new();
    let sandbox = Sandbox::start(ws.path(), &["--latency-ms", "50"]);
    ws.config_for(&sandbox, FAST);
    let n = 60;
    ws.write("appointments.csv", &appointments_csv("LCK", n));
    let args = run_args("appointments.csv", "appointments", "r1", &["--rate", "10"]);
    let child = start_sending(&ws, &sandbox, &args);
    std::thread::sleep(std::time::Duration::from_millis(300));
    std::fs::remove_file(ws.join("state.db.lock")).expect("delete the lock file");
    assert_stopped_honestly(
        &ws,
        &sandbox,
        child,
        "r1",
        n,
        "was deleted or replaced while this run held it",
    );
}

/// Review of issue 8: an endpoint that accepts connections and never answers is an
/// abort too, after a few attempts, not one outcome in doubt per row.
#[test]
fn a_silent_endpoint_aborts_after_a_few_attempts() {
    let ws = Workspace::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    // Accepts, reads nothing, answers nothing.
    let _silent = std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    ws.write(
        "ferry.toml",
        &ferry_toml(
            &format!("http://127.0.0.1:{port}"),
            "rate = 500\nburst = 50\ntimeout_secs = 0.5\nmax_retries = 1",
        ),
    );
    let n = 100;
    ws.write("appointments.csv", &appointments_csv("MUTE", n));
    let started = std::time::Instant::now();
    ws.ferry(&run_args("appointments.csv", "appointments", "r1", &[]))
        .expect(3);
    let reports = Reports::read(&ws.join("r1"));
    reports.assert_accounts_for(csv_rows(n));
    let aborted = reports.summary["aborted"].as_str().unwrap_or_default();
    assert!(aborted.contains("does not answer"), "{aborted}");
    assert!(
        reports.failed.rows.len() <= 16,
        "{} in doubt",
        reports.failed.rows.len()
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}

/// Review of issue 8: a manifest truncated in place while a run reads it: reading stops
/// at the change (a torn row is never reported as a validation failure to "fix"), the
/// summary says how many rows it holds, and the exit is 3.
#[test]
fn a_manifest_truncated_in_place_stops_reading_at_the_change() {
    let ws = Workspace::new();
    let sandbox = Sandbox::start(ws.path(), &["--latency-ms", "50"]);
    ws.config_for(&sandbox, FAST);
    let n = 2000;
    ws.write("appointments.csv", &appointments_csv("TRN", n));
    let args = run_args("appointments.csv", "appointments", "r1", &["--rate", "10"]);
    let child = start_sending(&ws, &sandbox, &args);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(ws.join("appointments.csv"))
        .expect("open");
    file.set_len(5000).expect("truncate in place");
    drop(file);
    let output = child.wait_with_output().expect("ferry finishes");
    assert_eq!(output.status.code(), Some(3));
    let reports = Reports::read(&ws.join("r1"));
    let total = reports.summary["counts"]["total"].as_u64().expect("total");
    assert!(total < n as u64, "{total}");
    reports.assert_accounts_for(2..total + 2);
    assert!(
        reports.failed.rows.is_empty(),
        "no torn row is blamed: {:?}",
        reports.failed.rows
    );
    let aborted = reports.summary["aborted"].as_str().unwrap_or_default();
    assert!(
        aborted.contains(&format!(
            "the reports hold the {total} rows read before it changed"
        )),
        "{aborted}"
    );
}

/// A batch waiting for its turn (here a permit 100 s away; a `Retry-After` of up to
/// 120 s is the same wait) used to hold an interrupted run until the wait was over:
/// past systemd's 90 s stop timeout, that is a SIGKILL and no reports. It ends at once,
/// the waiting rows unprocessed.
#[test]
fn an_interrupt_cuts_a_long_wait_for_a_turn_short() {
    let ws = Workspace::new();
    let sandbox = Sandbox::start(ws.path(), &[]);
    ws.config_for(
        &sandbox,
        "rate = 0.01\nburst = 1\nbatch_size = 1\nmax_retries = 0",
    );
    let n = 3;
    ws.write("appointments.csv", &appointments_csv("LONG", n));
    let args = run_args("appointments.csv", "appointments", "r1", &[]);
    let mut child = start_sending(&ws, &sandbox, &args);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    interrupt(&child);
    let status = wait_for(&mut child, std::time::Duration::from_secs(30));
    assert_eq!(status.code(), Some(130), "{status:?}");
    let reports = Reports::read(&ws.join("r1"));
    reports.assert_accounts_for(csv_rows(n));
    assert_eq!(count(&sandbox.stats(), &["created", "appointments"]), 1);
    assert_eq!(reports.succeeded.rows.len(), 1);
    assert_eq!(reports.unprocessed.rows.len(), 2);
    let summary = reports.summary;
    assert_eq!(summary["requests"]["retries"], 0, "{summary:#}");
}

/// Sends SIGINT to a running ferry, as Ctrl-C would.
fn interrupt(child: &std::process::Child) {
    // SAFETY: signalling our own child, whose pid we hold.
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) },
        0
    );
}

/// Review of issue 8: a second interrupt used to exit at once without summary.json. It
/// still stops at once — without waiting for the vendor — but the rows on the wire are
/// reported in doubt and the queued ones unprocessed, so every row is accounted for; the
/// next run agrees (in doubt, not sent) and finishes the rest without duplicates.
#[test]
fn a_second_interrupt_stops_at_once_and_still_writes_every_report() {
    let ws = Workspace::new();
    let sandbox = Sandbox::start(ws.path(), &["--latency-ms", "3000"]);
    ws.config_for(&sandbox, FAST);
    let n = 40;
    ws.write("appointments.csv", &appointments_csv("TWICE", n));
    let args = run_args(
        "appointments.csv",
        "appointments",
        "r1",
        &["--rate", "20", "--concurrency", "4"],
    );
    let mut child = start_sending(&ws, &sandbox, &args);
    interrupt(&child);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let second = std::time::Instant::now();
    interrupt(&child);
    let status = wait_for(&mut child, std::time::Duration::from_secs(20));
    assert_eq!(status.code(), Some(130), "{status:?}");
    assert!(
        second.elapsed() < std::time::Duration::from_millis(2500),
        "waited for the vendor"
    );
    let first = Reports::read(&ws.join("r1"));
    first.assert_accounts_for(csv_rows(n));
    assert_eq!(first.exit_code(), 130);
    let in_doubt = first
        .failed
        .column("ferry_stage")
        .iter()
        .filter(|s| **s == "unknown")
        .count();
    assert!(in_doubt > 0, "requests were on the wire");

    ws.ferry(&run_args("appointments.csv", "appointments", "r2", &[]))
        .expect(1);
    let second = Reports::read(&ws.join("r2"));
    second.assert_accounts_for(csv_rows(n));
    assert_eq!(
        second
            .failed
            .column("ferry_stage")
            .iter()
            .filter(|s| **s == "unknown")
            .count(),
        in_doubt,
        "the rows in doubt stay in doubt, unsent"
    );
    // The rows in doubt may or may not have been carried out (the vendor saw the
    // connection close); nothing was sent twice either way.
    let stats = sandbox.stats();
    assert_eq!(count(&stats, &["duplicates_rejected", "appointments"]), 0);
    let created = count(&stats, &["created", "appointments"]);
    assert!(
        (n - in_doubt) as u64 <= created && created <= n as u64,
        "{created}"
    );
}

/// Review of issue 12: a second interrupt reported every batch a sender held as in
/// doubt, also those still waiting for their rate-limit turn, which never left. Now
/// only a row whose request reached the vendor is in doubt; the others are not sent,
/// and the next run sends them.
#[test]
fn a_second_interrupt_reports_rows_still_waiting_for_their_turn_not_sent() {
    let ws = Workspace::new();
    let sandbox = Sandbox::start(ws.path(), &[]);
    ws.config_for(&sandbox, FAST);
    let n = 40;
    ws.write("appointments.csv", &appointments_csv("TURN", n));
    // Four senders, a request every half second: at any moment three or four of them
    // wait for their turn, and the sandbox answers the one that left at once.
    let args = run_args(
        "appointments.csv",
        "appointments",
        "r1",
        &["--rate", "2", "--concurrency", "4"],
    );
    let mut child = start_sending(&ws, &sandbox, &args);
    std::thread::sleep(std::time::Duration::from_millis(700));
    interrupt(&child);
    std::thread::sleep(std::time::Duration::from_millis(100));
    interrupt(&child);
    let status = wait_for(&mut child, std::time::Duration::from_secs(20));
    assert_eq!(status.code(), Some(130), "{status:?}");
    let first = Reports::read(&ws.join("r1"));
    first.assert_accounts_for(csv_rows(n));
    let created = count(&sandbox.stats(), &["created", "appointments"]);
    let succeeded = first.succeeded.rows.len() as u64;
    let in_doubt = first.failed.column("ferry_stage").len() as u64;
    // Every row in doubt is one whose request the sandbox took (the one answered
    // as the interrupt came, at most); nothing else failed.
    assert!(
        in_doubt <= created - succeeded,
        "{in_doubt} in doubt, but the vendor created only {created} of which {succeeded} succeeded"
    );
    assert!(
        !first.unprocessed.rows.is_empty(),
        "rows waited for their turn"
    );

    ws.ferry(&run_args("appointments.csv", "appointments", "r2", &[]))
        .expect(if in_doubt == 0 { 0 } else { 1 });
    let second = Reports::read(&ws.join("r2"));
    second.assert_accounts_for(csv_rows(n));
    assert_eq!(second.failed.rows.len() as u64, in_doubt);
    let stats = sandbox.stats();
    assert_eq!(count(&stats, &["duplicates_rejected", "appointments"]), 0);
    assert_eq!(
        count(&stats, &["created", "appointments"]),
        n as u64,
        "the rows not sent were sent by the next run"
    );
}

// ---------------------------------------------------------------------------------------
// ferry reconcile: where each row of a manifest stands, after any number of rounds

fn reconcile_args<'a>(manifest: &'a str, kind: &'a str, dir: &'a str) -> Vec<&'a str> {
    vec![
        "reconcile",
        manifest,
        "--kind",
        kind,
        "--state",
        "state.db",
        "--report-dir",
        dir,
    ]
}

#[test]
fn reconcile_of_the_original_finds_a_row_whose_fix_changed_its_key() {
    let ws = Workspace::new();
    let sandbox = Sandbox::start(ws.path(), &[]);
    ws.config_for(&sandbox, FAST);
    ws.write(
        "calls.csv",
        "eventId,name,countryCode,mobile\n\
         1001,Chen,86,18100000030\n\
         1001,Li,86,1810000003\n\
         1001,Wang,86,18100000032\n",
    );
    ws.ferry(&run_args("calls.csv", "calls", "r1", &[]))
        .expect(1);

    // Before the fix: two rows done, one failed with its validation problem.
    let out = ws
        .ferry(&reconcile_args("calls.csv", "calls", "c1"))
        .expect(1);
    assert!(
        out.stdout
            .contains("3 rows: 2 done, 1 failed, 0 in doubt, 0 never attempted"),
        "{}",
        out.stdout
    );
    let before = Reports::read(&ws.join("c1"));
    before.assert_accounts_for(2..=4);
    assert_eq!(before.succeeded.ferry_rows(), [2, 4]);
    assert_eq!(before.failed.ferry_rows(), [3]);
    assert_eq!(before.failed.column("ferry_stage"), ["validation"]);
    assert_eq!(before.summary["command"], "reconcile");
    assert_eq!(before.requests_sent(), 0);

    // The coordinator fixes the number in failed.csv and feeds it back.
    let failed = std::fs::read_to_string(ws.join("r1/failed.csv")).expect("failed.csv");
    let fixed = failed.replace(",Li,86,1810000003", ",Li,86,18100000031");
    assert_ne!(fixed, failed);
    ws.write("fixed.csv", &fixed);
    ws.ferry(&run_args("fixed.csv", "calls", "r2", &[]))
        .expect(0);
    let original_id = Reports::read(&ws.join("r1")).manifest_id();
    let mut second = Reports::read_with_origins(&ws.join("r2"));
    second
        .succeeded
        .check_and_drop_origins(|_| ("3".to_string(), original_id.clone()));

    // The original sheet is now all done; the fixed row is found by where it came from.
    let out = ws
        .ferry(&reconcile_args("calls.csv", "calls", "c2"))
        .expect(0);
    assert!(
        out.stdout
            .contains("3 rows: 3 done, 0 failed, 0 in doubt, 0 never attempted"),
        "{}",
        out.stdout
    );
    let after = Reports::read(&ws.join("c2"));
    after.assert_accounts_for(2..=4);
    assert_eq!(
        after.succeeded.column("ferry_key"),
        [
            "1001|+8618100000030",
            "1001|+8618100000031",
            "1001|+8618100000032"
        ]
    );
    assert!(
        after.succeeded.column("ferry_warning")[1].starts_with("already_succeeded: done: run "),
        "{:?}",
        after.succeeded.column("ferry_warning")
    );
    assert_eq!(after.summary["exit_code"], 0);
    // Reconciling sent nothing: three calls were created, by the two runs.
    assert_eq!(count(&sandbox.stats(), &["created", "calls"]), 3);
}

#[test]
fn reconcile_says_which_rows_are_in_doubt_and_which_were_never_attempted() {
    let ws = Workspace::new();
    // Every request is carried out and its answer lost: the outcomes are unknown.
    let sandbox = Sandbox::start(ws.path(), &["--drop-rate", "1"]);
    ws.config_for(&sandbox, FAST);
    ws.write("three.csv", &appointments_csv("D", 3));
    let run = ws.ferry(&run_args("three.csv", "appointments", "r1", &[]));
    assert_ne!(run.code, 0, "{}", run.stdout);
    // The same rows and two more that no run has seen.
    ws.write("five.csv", &appointments_csv("D", 5));
    let out = ws
        .ferry(&reconcile_args("five.csv", "appointments", "c1"))
        .expect(1);
    assert!(
        out.stdout
            .contains("5 rows: 0 done, 0 failed, 3 in doubt, 2 never attempted"),
        "{}",
        out.stdout
    );
    let reports = Reports::read(&ws.join("c1"));
    reports.assert_accounts_for(csv_rows(5));
    assert_eq!(reports.failed.ferry_rows(), [2, 3, 4]);
    assert_eq!(reports.failed.column("ferry_stage"), ["unknown"; 3]);
    assert_eq!(reports.unprocessed.ferry_rows(), [5, 6]);
    assert_eq!(
        reports.unprocessed.column("ferry_error_code"),
        ["not_attempted"; 2]
    );
}

#[test]
fn reconcile_without_a_state_is_exit_2_and_creates_none() {
    let ws = Workspace::new();
    ws.write("three.csv", &appointments_csv("N", 3));
    let out = ws
        .ferry(&[
            "reconcile",
            "three.csv",
            "--kind",
            "appointments",
            "--target",
            "sandbox",
            "--state",
            "nowhere.db",
        ])
        .expect(2);
    assert!(
        out.stderr.contains("nowhere.db: no such file"),
        "{}",
        out.stderr
    );
    assert!(!ws.join("nowhere.db").exists());
}

/// A report table as its CSV has it: header first.
fn records(table: &Table) -> Vec<Vec<String>> {
    std::iter::once(table.header.clone())
        .chain(table.rows.iter().cloned())
        .collect()
}

/// Issue 10: report.xlsx is for a person: a run's workers finish rows in their own
/// order, but every sheet lists them by `ferry_row`, `failed` first and open.
#[test]
fn report_xlsx_of_a_run_lists_rows_in_ferry_row_order_though_they_finished_out_of_order() {
    let ws = Workspace::new();
    // Answered late, and a 503 now and then: a retried row finishes after later ones.
    let flags = ["--latency-ms", "20", "--fail-rate", "0.3", "--seed", "5"];
    let sandbox = Sandbox::start(ws.path(), &flags);
    ws.config_for(&sandbox, FAST);
    let rows: Vec<Vec<String>> = (0..120)
        .map(|i| {
            let mut cells = appointment_cells(&format!("ORDER-{i:04}"));
            if i % 15 == 7 {
                cells[2] = "vip".into();
            }
            cells
        })
        .collect();
    ws.write("appointments.csv", &csv_text(APPOINTMENTS_HEADER, &rows));
    ws.ferry(&run_args("appointments.csv", "appointments", "r1", &[]))
        .expect(1);
    let reports = Reports::read_with_origins(&ws.join("r1"));
    let finished = reports.succeeded.ferry_rows();
    assert!(
        !finished.is_sorted(),
        "the test needs rows that finish out of order: {finished:?}"
    );
    let book = xlsx_support::Book::open(&ws.join("r1/report.xlsx"));
    assert_eq!(
        book.sheet_names(),
        ["failed", "succeeded", "skipped", "unprocessed", "summary"]
    );
    assert_eq!(book.active_sheet(), "failed");
    for (name, table) in reports.tables() {
        xlsx_support::assert_person_sheet(&book, name, &records(table));
    }
    let sheet_rows: Vec<String> = book.text_cells("succeeded")[1..]
        .iter()
        .map(|r| r[0].clone())
        .collect();
    let mut sorted = finished.clone();
    sorted.sort_unstable();
    assert_eq!(
        sheet_rows,
        sorted.iter().map(u64::to_string).collect::<Vec<_>>()
    );
    assert_eq!(
        book.text_cells("failed")[0][..4],
        ["ferry_row", "ferry_error", "business_id", "out_task_num"]
    );
}

#[test]
fn report_xlsx_of_a_run_without_failures_opens_on_the_first_sheet_with_rows() {
    let ws = Workspace::new();
    let sandbox = Sandbox::start(ws.path(), &[]);
    ws.config_for(&sandbox, FAST);
    ws.write("appointments.csv", &appointments_csv("OPEN", 5));
    ws.ferry(&run_args("appointments.csv", "appointments", "r1", &[]))
        .expect(0);
    let book = xlsx_support::Book::open(&ws.join("r1/report.xlsx"));
    assert_eq!(book.active_sheet(), "succeeded");
    // Again: every row is done already.
    ws.ferry(&run_args("appointments.csv", "appointments", "r2", &[]))
        .expect(0);
    let book = xlsx_support::Book::open(&ws.join("r2/report.xlsx"));
    assert_eq!(book.active_sheet(), "skipped");
    let reports = Reports::read_with_origins(&ws.join("r2"));
    for (name, table) in reports.tables() {
        xlsx_support::assert_person_sheet(&book, name, &records(table));
    }
}

/// A workbook as a person's spreadsheet program saves it again: every sheet and cell
/// kept, numbers as numbers, and `fix` applied to the `failed` sheet's cells by column
/// name.
fn resave_workbook(
    from: &std::path::Path,
    to: &std::path::Path,
    fix: impl Fn(&str, &str) -> Option<String>,
) {
    use calamine::{Data, Reader};
    let mut source: calamine::Xlsx<_> = calamine::open_workbook(from).expect("report.xlsx opens");
    let mut book = rust_xlsxwriter::Workbook::new();
    for name in source.sheet_names() {
        let range = source.worksheet_range(&name).expect("a sheet");
        let rows: Vec<Vec<Data>> = range.rows().map(<[Data]>::to_vec).collect();
        let sheet = book.add_worksheet();
        sheet.set_name(&name).expect("sheet name");
        let header: Vec<String> = rows
            .first()
            .map(|r| r.iter().map(|c| c.to_string()).collect())
            .unwrap_or_default();
        for (r, row) in rows.iter().enumerate() {
            for (c, cell) in row.iter().enumerate() {
                let (r, c) = (r as u32, c as u16);
                let fixed = (name == "failed" && r > 0)
                    .then(|| fix(&header[c as usize], &cell.to_string()))
                    .flatten();
                match (fixed, cell) {
                    (Some(text), _) => sheet.write_string(r, c, text),
                    (None, Data::Float(f)) => sheet.write_number(r, c, *f),
                    (None, Data::Int(i)) => sheet.write_number(r, c, *i as f64),
                    (None, Data::Empty) => continue,
                    (None, other) => sheet.write_string(r, c, other.to_string()),
                }
                .expect("write a cell");
            }
        }
    }
    book.save(to).expect("save the fixed workbook");
}

#[test]
fn round_trip_run_fix_the_failed_sheet_feed_the_workbook_back_and_reconcile_all_done() {
    let ws = Workspace::new();
    let sandbox = Sandbox::start(ws.path(), &[]);
    ws.config_for(&sandbox, FAST);
    // The coordinator's sheet: two good rows, a mistyped number, a wrong country code.
    let original = ws.join("calls.xlsx");
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    let rows = [
        ["eventId", "name", "countryCode", "手机"],
        ["1001", "Chen", "86", "18100000030"],
        ["1001", "Li", "86", "1810000003"],
        ["1001", "Wang", "86", "18100000032"],
        ["1001", "Kim", "999", "18100000033"],
    ];
    for (r, row) in rows.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            sheet
                .write_string(r as u32, c as u16, *cell)
                .expect("write");
        }
    }
    book.save(&original).expect("save");
    ws.write(
        "ferry.toml",
        &format!(
            "{}\n[columns.calls]\nmobile = [\"手机\"]\n",
            ferry_toml(&sandbox.url(), FAST)
        ),
    );
    ws.ferry(&run_args("calls.xlsx", "calls", "r1", &[]))
        .expect(1);
    let first = Reports::read(&ws.join("r1"));
    assert_eq!(first.failed.ferry_rows(), [3, 5]);
    assert_eq!(first.failed.column("ferry_field"), ["手机", "countryCode"]);

    // Fixed in the failed sheet, saved, fed back as it is: no --sheet.
    resave_workbook(
        &ws.join("r1/report.xlsx"),
        &ws.join("fixed.xlsx"),
        |column, cell| match (column, cell) {
            ("手机", "1810000003") => Some("18100000031".into()),
            ("countryCode", "999") => Some("86".into()),
            _ => None,
        },
    );
    let out = ws
        .ferry(&run_args("fixed.xlsx", "calls", "r2", &[]))
        .expect(0);
    assert!(
        out.stderr
            .contains("is a ferry report: reading its \"failed\" sheet"),
        "{}",
        out.stderr
    );
    let original_id = first.manifest_id();
    let mut second = Reports::read_with_origins(&ws.join("r2"));
    second.succeeded.check_and_drop_origins(|row| {
        // The fed-back sheet's rows 2 and 3 are the original's rows 3 and 5.
        let source = [("2", "3"), ("3", "5")]
            .iter()
            .find(|(r, _)| *r == row.to_string())
            .map(|(_, s)| s.to_string())
            .expect("a fed-back row");
        (source, original_id.clone())
    });
    assert_eq!(second.succeeded.rows.len(), 2);

    // The original sheet, reconciled: every row done, the fixes found where they came from.
    let out = ws
        .ferry(&reconcile_args("calls.xlsx", "calls", "c"))
        .expect(0);
    assert!(
        out.stdout
            .contains("4 rows: 4 done, 0 failed, 0 in doubt, 0 never attempted"),
        "{}",
        out.stdout
    );
    let reconciled = Reports::read(&ws.join("c"));
    reconciled.assert_accounts_for(2..=5);
    assert_eq!(reconciled.succeeded.ferry_rows(), [2, 3, 4, 5]);
    assert_eq!(count(&sandbox.stats(), &["created", "calls"]), 4);
}

#[test]
fn reconcile_counts_a_fed_back_row_found_already_done_and_never_a_copied_line() {
    let ws = Workspace::new();
    let sandbox = Sandbox::start(ws.path(), &[]);
    ws.config_for(&sandbox, FAST);
    // Row 3 repeats row 2's record; row 4's number is mistyped.
    ws.write(
        "calls.csv",
        "eventId,name,countryCode,mobile\n\
         1001,Chen,86,18100000030\n\
         1001,Chen,86,18100000030\n\
         1001,Li,86,1810000003\n",
    );
    ws.ferry(&run_args("calls.csv", "calls", "r1", &[]))
        .expect(1);
    // Fed back: row 3 is found already done (skipped); row 4 is left wrong, and a line
    // copied from it adds a new person with a good number.
    let failed = std::fs::read_to_string(ws.join("r1/failed.csv")).expect("failed.csv");
    let li = failed
        .lines()
        .find(|l| l.contains(",Li,"))
        .expect("Li's line");
    let copy = li
        .replace(",Li,86,1810000003", ",Wu,86,18100000036")
        .replacen("4,", "9,", 1);
    ws.write("fixed.csv", &format!("{failed}{copy}\n"));
    let out = ws
        .ferry(&run_args("fixed.csv", "calls", "r2", &[]))
        .expect(1);
    assert!(
        out.stderr
            .contains("1 rows of this fed-back report do not say which row"),
        "{}",
        out.stderr
    );
    let second = Reports::read_with_origins(&ws.join("r2"));
    assert_eq!(second.skipped.rows.len(), 1);
    assert_eq!(second.succeeded.rows.len(), 1);
    assert_eq!(second.succeeded.column("ferry_source_row"), [""]);
    assert_eq!(second.succeeded.column("ferry_source"), [""]);

    // Row 3 counts as done (its record was); Li's row does not: Wu's success is not hers.
    let out = ws
        .ferry(&reconcile_args("calls.csv", "calls", "c"))
        .expect(1);
    assert!(
        out.stdout
            .contains("3 rows: 2 done, 1 failed, 0 in doubt, 0 never attempted"),
        "{}",
        out.stdout
    );
    let reconciled = Reports::read(&ws.join("c"));
    assert_eq!(reconciled.succeeded.ferry_rows(), [2, 3]);
    assert_eq!(reconciled.failed.ferry_rows(), [4]);
}

/// A `reconcile` beside a live run reads the state without the run lock, and merges
/// what is pending. The run's next write, begun as a read, was then refused at once
/// ("database is locked", busy timeout or not): exit 3, rows on the wire in doubt. A
/// run's writes take the write lock first now, and wait for the merge like any writer.
#[test]
fn a_reconcile_beside_a_live_run_does_not_stop_it() {
    let ws = Workspace::new();
    let sandbox = Sandbox::start(ws.path(), &["--latency-ms", "5"]);
    ws.config_for(&sandbox, "rate = 2000\nburst = 50\nconcurrency = 16");
    let n = 3000;
    ws.write("appointments.csv", &appointments_csv("LIVE", n));
    let args = run_args("appointments.csv", "appointments", "r1", &[]);
    let mut child = start_sending(&ws, &sandbox, &args);
    let mut reconciles = 0;
    while child.try_wait().expect("poll ferry").is_none() && reconciles < 20 {
        let dir = format!("rec{reconciles}");
        let out = ws
            .command(&[
                "reconcile",
                "appointments.csv",
                "--kind",
                "appointments",
                "--state",
                "state.db",
                "--report-dir",
                &dir,
                "-q",
            ])
            .output()
            .expect("reconcile runs");
        // 1: not every row is done yet; never a fault.
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        reconciles += 1;
    }
    assert!(reconciles > 0);
    let output = child.wait_with_output().expect("ferry finishes");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let reports = Reports::read(&ws.join("r1"));
    reports.assert_accounts_for(csv_rows(n));
    assert_eq!(reports.succeeded.rows.len(), n);
    assert_eq!(
        count(&sandbox.stats(), &["created", "appointments"]),
        n as u64
    );
}

/// A state deleted while a run sends stops the run (exit 3), and then the printed
/// "to finish the job" command would have sent every row again into a fresh state.
/// It is not printed; and the rerun refuses the missing database whose journal is still
/// there (exit 2, nothing sent) until the state is restored or the journal removed.
#[test]
fn a_state_deleted_during_a_run_is_never_silently_started_afresh() {
    let ws = Workspace::new();
    let sandbox = Sandbox::start(ws.path(), &[]);
    ws.config_for(&sandbox, "rate = 20\nburst = 1");
    let n = 400;
    ws.write("appointments.csv", &appointments_csv("GONE", n));
    let args = run_args("appointments.csv", "appointments", "r1", &[]);
    let child = start_sending(&ws, &sandbox, &args);
    std::thread::sleep(std::time::Duration::from_millis(500));
    std::fs::remove_file(ws.join("state.db")).expect("delete the state");
    let output = child.wait_with_output().expect("ferry finishes");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(3), "{stdout}");
    assert!(stdout.contains("restore the state file"), "{stdout}");
    assert!(!stdout.contains("to finish the job"), "{stdout}");
    let created = count(&sandbox.stats(), &["created", "appointments"]);
    let rerun = ws
        .command(&run_args("appointments.csv", "appointments", "r2", &[]))
        .output()
        .expect("ferry runs");
    let stderr = String::from_utf8_lossy(&rerun.stderr);
    assert_eq!(rerun.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("state database state.db is missing, but its journal state.db-wal is here"),
        "{stderr}"
    );
    assert_eq!(
        count(&sandbox.stats(), &["created", "appointments"]),
        created
    );
    assert!(!ws.join("state.db").exists());
}
