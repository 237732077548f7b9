//! Secrets never leave the places they belong (SPEC §4, §8): the real binary runs
//! `validate`, `run` (a successful run per vendor, the arctos login, refused tokens, bad
//! base URLs) and every `--help`, with known secret values in its environment and
//! `-vv` logs in text and JSON, against httpmock; then stdout, stderr and every byte of
//! every file under the working directory (reports, report.xlsx cell by cell, state
//! database) are searched for the secret strings. Also: `Secret`'s `Debug`/`Display`,
//! and literal secrets in the config refused without being echoed.
//!
//! Issue 9: vendors that quote a secret back, whole or cut, raw, JSON-escaped,
//! URL-encoded or in base64, and answers that misbehave (endless, dripping, HTML,
//! redirects); there every 8-character run of every form of every secret is searched
//! for. And property tests of the scrubber itself.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::vendors_support::*;
use base64::Engine;
use calamine::Reader;
use ferry::config::{Config, Secret};
use ferry::kinds::Kind;
use serde_json::{json, Value};

const FERRY: &str = env!("CARGO_BIN_EXE_ferry");

/// The secret values of one test, each unique so a leak is unambiguous.
struct Secrets {
    arctos_token: String,
    license_key: String,
    auth_code: String,
    access_token: String,
    quanshi_token: String,
    aicc_app_key: String,
    aicc_token: String,
}

impl Secrets {
    fn new() -> Secrets {
        // `/` and `+` make the JSON-escaped and URL-encoded forms differ from the raw
        // one; no 8 characters of a secret are a word that output uses.
        let tag = unique("s").replace('_', "-");
        let secret = |word: &str| format!("sekret/{word}+{tag}");
        Secrets {
            arctos_token: secret("Xq7ArcTok"),
            license_key: secret("Lq8ArcLic"),
            auth_code: secret("Cq9ArcCod"),
            access_token: secret("Aq6ArcAcc"),
            quanshi_token: secret("Qq5QsTok"),
            aicc_app_key: secret("Kq4AiKey"),
            aicc_token: secret("Tq3AiTok"),
        }
    }

    fn all(&self) -> Vec<&str> {
        vec![
            &self.arctos_token,
            &self.license_key,
            &self.auth_code,
            &self.access_token,
            &self.quanshi_token,
            &self.aicc_app_key,
            &self.aicc_token,
        ]
    }

    /// What the child process gets in its environment.
    fn env(&self) -> Vec<(&'static str, &str)> {
        vec![
            ("ARCTOS_TOKEN", &self.arctos_token),
            ("ARCTOS_LICENSE_KEY", &self.license_key),
            ("QUANSHI_TOKEN", &self.quanshi_token),
            ("AICC_APP_KEY", &self.aicc_app_key),
            ("AICC_TOKEN", &self.aicc_token),
        ]
    }
}

/// A fresh working directory with a `ferry.toml` whose targets point at `base`.
struct Workspace {
    dir: tempfile::TempDir,
    secrets: Secrets,
}

const APPOINTMENTS: &str =
    "business_id,out_task_num,task_type,task_notify,task_time,branch_code,room_type,video,note\n\
15,APT-1,normal,false,1703141398,943,normal,true,first\n\
15,APT-2,normal,,2024-02-22 14:00,943,normal,yes,second\n";

const APPOINTMENTS_WITH_A_BAD_ROW: &str =
    "business_id,out_task_num,task_type,task_notify,task_time,branch_code,room_type,video,note\n\
15,APT-1,normal,false,1703141398,943,normal,true,first\n\
x,APT-3,vip,,,943,normal,maybe,bad\n";

const CALLS: &str = "eventId,beforeMinutes,name,company,countryCode,mobile,areaCode,phone\n\
542818,10,user1,quanshi.com,86,18100000030,,\n\
542818,10,user2,,+86,18100000031,,\n";

const AGENT_SETTINGS: &str = "userId,callType,callNumber,callerPresentDefault\n\
U-1,1,\"12323,232343\",1212121212\n\
U-2,0,,\n";

impl Workspace {
    fn new(base: &str) -> Workspace {
        let dir = tempfile::tempdir().expect("temp dir");
        let ws = Workspace {
            dir,
            secrets: Secrets::new(),
        };
        let closed = closed_port();
        ws.write(
            "ferry.toml",
            &format!(
                r#"[defaults]
timezone = "Asia/Taipei"
country_code = "886"

[targets.arctos]
base_url = "{base}"
token_env = "ARCTOS_TOKEN"
max_retries = 1
[targets.arctos.paths]
update_task_status = "/api/task/status/do_update"

[targets.arctos_login]
vendor = "arctos"
base_url = "{base}"
license_key_env = "ARCTOS_LICENSE_KEY"
login_user_id = "ops-import"
max_retries = 1

[targets.arctos_quick]
vendor = "arctos"
base_url = "{base}"
token_env = "ARCTOS_TOKEN"
max_retries = 1
timeout_secs = 2

[targets.arctos_down]
vendor = "arctos"
base_url = "http://127.0.0.1:{closed}"
token_env = "ARCTOS_TOKEN"
max_retries = 1
timeout_secs = 2

[targets.arctos_wrong_path]
vendor = "arctos"
base_url = "{base}/no/such/prefix"
token_env = "ARCTOS_TOKEN"
max_retries = 1

[targets.quanshi]
base_url = "{base}"
token_env = "QUANSHI_TOKEN"

[targets.aicc]
base_url = "{base}"
app_key_env = "AICC_APP_KEY"
token_env = "AICC_TOKEN"
"#
            ),
        );
        ws.write("appointments.csv", APPOINTMENTS);
        ws.write("appointments-bad.csv", APPOINTMENTS_WITH_A_BAD_ROW);
        ws.write("calls.csv", CALLS);
        ws.write("agent-settings.csv", AGENT_SETTINGS);
        ws
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path().join(name);
        std::fs::write(&path, text).expect("write a workspace file");
        path
    }

    /// Runs the real binary here with the secrets in its environment.
    fn ferry(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(FERRY);
        cmd.args(args)
            .current_dir(self.path())
            .env_remove("RUST_LOG")
            .env_remove("FERRY_CONFIG")
            .stdin(Stdio::null());
        for (name, value) in self.secrets.env() {
            cmd.env(name, value);
        }
        cmd.output().expect("ferry runs")
    }

    /// `run` with verbose logs in both formats; returns the JSON-log run's output.
    fn run(&self, manifest: &str, kind: &str, target: &str, name: &str) -> Output {
        let text = self.ferry(&[
            "run",
            manifest,
            "--kind",
            kind,
            "--config",
            "ferry.toml",
            "--target",
            target,
            "--state",
            &format!("state-{name}-text.db"),
            "--report-dir",
            &format!("reports/{name}-text"),
            "-vv",
        ]);
        self.assert_clean(&text, &format!("run {name} (text logs)"));
        let json = self.ferry(&[
            "run",
            manifest,
            "--kind",
            kind,
            "--config",
            "ferry.toml",
            "--target",
            target,
            "--state",
            &format!("state-{name}-json.db"),
            "--report-dir",
            &format!("reports/{name}-json"),
            "--log-format",
            "json",
            "-vv",
        ]);
        self.assert_clean(&json, &format!("run {name} (JSON logs)"));
        assert!(
            stderr(&json).contains("\"level\":\"DEBUG\""),
            "run {name}: -vv logs at debug level, so the check above means something:\n{}",
            stderr(&json)
        );
        assert_eq!(
            text.status.code(),
            json.status.code(),
            "both log formats end the same way"
        );
        json
    }

    /// No secret in the command's output, nor in any file under the workspace.
    #[track_caller]
    fn assert_clean(&self, out: &Output, what: &str) {
        for (stream, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            for secret in self.secrets.all() {
                assert!(
                    !contains(bytes, secret.as_bytes()),
                    "{what}: {stream} shows the secret {secret:?}:\n{}",
                    String::from_utf8_lossy(bytes)
                );
            }
        }
        self.assert_files_clean(what);
    }

    #[track_caller]
    fn assert_files_clean(&self, what: &str) {
        for file in files(self.path()) {
            let bytes = std::fs::read(&file).expect("read a workspace file");
            for secret in self.secrets.all() {
                assert!(
                    !contains(&bytes, secret.as_bytes()),
                    "{what}: {} holds the secret {secret:?}",
                    file.display()
                );
            }
            // report.xlsx is a zip: its cells are compressed, so read them.
            if file.extension().is_some_and(|e| e == "xlsx") {
                for cell in xlsx_cells(&file) {
                    for secret in self.secrets.all() {
                        assert!(
                            !cell.contains(secret),
                            "{what}: a cell of {} holds the secret {secret:?}: {cell:?}",
                            file.display()
                        );
                    }
                }
            }
        }
    }

    /// Stronger than `assert_clean`: no run of 8 characters of any secret, in any of
    /// the forms a vendor may quote it in, in the output or any file.
    #[track_caller]
    fn assert_no_trace(&self, out: &Output, what: &str) {
        let windows: HashSet<Vec<u8>> = self
            .secrets
            .all()
            .iter()
            .flat_map(|secret| quoted_forms(secret))
            .flat_map(|form| {
                form.as_bytes()
                    .windows(FRAGMENT)
                    .map(<[u8]>::to_vec)
                    .collect::<Vec<_>>()
            })
            .collect();
        let trace = |bytes: &[u8]| {
            bytes
                .windows(FRAGMENT)
                .find(|w| windows.contains(*w))
                .map(|w| String::from_utf8_lossy(w).into_owned())
        };
        for (stream, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            if let Some(found) = trace(bytes) {
                panic!(
                    "{what}: {stream} shows {found:?}, part of a secret:\n{}",
                    String::from_utf8_lossy(bytes)
                );
            }
        }
        for file in files(self.path()) {
            let bytes = std::fs::read(&file).expect("read a workspace file");
            let mut texts = vec![bytes];
            if file.extension().is_some_and(|e| e == "xlsx") {
                texts.extend(xlsx_cells(&file).into_iter().map(String::into_bytes));
            }
            for text in texts {
                if let Some(found) = trace(&text) {
                    panic!(
                        "{what}: {} holds {found:?}, part of a secret:\n{}",
                        file.display(),
                        String::from_utf8_lossy(&text)
                    );
                }
            }
        }
    }

    /// The report folder's files, read back: a run really wrote its reports.
    #[track_caller]
    fn report(&self, name: &str) -> Report {
        let dir = self.path().join("reports").join(name);
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
        let summary: Value = serde_json::from_str(&read("summary.json"))
            .unwrap_or_else(|e| panic!("{}/summary.json: {e}", dir.display()));
        assert!(
            dir.join("report.xlsx").exists(),
            "{}: no report.xlsx",
            dir.display()
        );
        Report {
            summary,
            succeeded: read("succeeded.csv"),
            failed: read("failed.csv"),
            unprocessed: read("unprocessed.csv"),
        }
    }
}

struct Report {
    summary: Value,
    succeeded: String,
    failed: String,
    unprocessed: String,
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).expect("read a workspace folder") {
            let path = entry.expect("a folder entry").path();
            if path.is_dir() {
                todo.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

/// The text of every cell of every sheet.
fn xlsx_cells(path: &Path) -> Vec<String> {
    let mut book: calamine::Xlsx<_> = calamine::open_workbook(path)
        .unwrap_or_else(|e| panic!("{} is not a readable xlsx: {e}", path.display()));
    let mut cells = Vec::new();
    for sheet in book.sheet_names() {
        let range = book
            .worksheet_range(&sheet)
            .unwrap_or_else(|e| panic!("{}: sheet {sheet}: {e}", path.display()));
        cells.extend(range.used_cells().map(|(_, _, c)| c.to_string()));
        cells.push(sheet);
    }
    cells
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[track_caller]
fn assert_exit(out: &Output, code: i32, what: &str) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}: exit code\nstdout:\n{}\nstderr:\n{}",
        stdout(out),
        stderr(out)
    );
}

fn arctos_ok() -> Reply {
    Reply::json(
        200,
        json!({"status": 1, "message": "success", "info": {"task_num": "202312210000001"}}),
    )
}

fn refused(status: u16) -> Reply {
    Reply::json(
        status,
        json!({"status": 0, "message": "Access to the requested resource is not allowed"}),
    )
}

fn quanshi_ok() -> Reply {
    Reply::json(
        200,
        json!({
            "timeStamp": 1646816678200i64,
            "code": 200,
            "msg": "Successfully to create the event call!",
            "data": {
                "total_count": 2, "success_count": 2, "fail_count": 0, "requestId": null,
                "fail_data": [],
                "success_data": [
                    {"id": "c-1", "areaCode": "", "company": "quanshi.com", "countryCode": "86", "mobile": "18100000030", "name": "user1", "phone": ""},
                    {"id": "c-2", "areaCode": "", "company": "", "countryCode": "86", "mobile": "18100000031", "name": "user2", "phone": ""}
                ]
            },
            "requestId": "10.255.0.106_20220309_170437_1646816677951"
        }),
    )
}

/// The Authorization / X-APP-Key / body token values the server saw on `path`.
fn credentials_seen(srv: &Server, path: &str) -> Vec<String> {
    srv.log
        .on(path)
        .iter()
        .flat_map(|s| {
            let mut seen: Vec<String> = ["authorization", "x-app-key", "arc-license-key"]
                .iter()
                .filter_map(|h| s.header(h).map(str::to_string))
                .collect();
            if let Ok(body) = serde_json::from_str::<Value>(&s.body) {
                if let Some(t) = body.get("token").and_then(Value::as_str) {
                    seen.push(t.to_string());
                }
            }
            seen
        })
        .collect()
}

// ---------------------------------------------------------------------------------
// validate and --help
// ---------------------------------------------------------------------------------

#[test]
fn validate_shows_no_secret_in_output_logs_or_reports() {
    let ws = Workspace::new("http://127.0.0.1:9");
    for (manifest, kind, code) in [
        ("appointments-bad.csv", "appointments", 1),
        ("calls.csv", "calls", 0),
        ("agent-settings.csv", "agent-settings", 0),
    ] {
        for format in ["text", "json"] {
            let out = ws.ferry(&[
                "validate",
                manifest,
                "--kind",
                kind,
                "--config",
                "ferry.toml",
                "--report-dir",
                &format!("reports/validate-{kind}-{format}"),
                "--log-format",
                format,
                "-vv",
            ]);
            assert_exit(&out, code, &format!("validate {manifest}"));
            ws.assert_clean(&out, &format!("validate {manifest} ({format})"));
        }
    }
    let report = ws.path().join("reports/validate-appointments-json");
    for file in ["valid.csv", "failed.csv", "summary.json", "report.xlsx"] {
        assert!(report.join(file).exists(), "validate wrote no {file}");
    }
}

#[test]
fn validate_needs_no_secret_at_all() {
    let ws = Workspace::new("http://127.0.0.1:9");
    let out = Command::new(FERRY)
        .args([
            "validate",
            "calls.csv",
            "--kind",
            "calls",
            "--config",
            "ferry.toml",
            "--report-dir",
            "reports/no-secrets",
        ])
        .current_dir(ws.path())
        .env_remove("ARCTOS_TOKEN")
        .env_remove("QUANSHI_TOKEN")
        .env_remove("AICC_APP_KEY")
        .env_remove("AICC_TOKEN")
        .env_remove("ARCTOS_LICENSE_KEY")
        .output()
        .expect("ferry runs");
    assert_exit(&out, 0, "validate without secrets in the environment");
}

#[test]
fn help_of_every_subcommand_shows_no_secret() {
    let ws = Workspace::new("http://127.0.0.1:9");
    let helps: &[&[&str]] = &[
        &["--help"],
        &["-h"],
        &["--version"],
        &["validate", "--help"],
        &["run", "--help"],
        &["sandbox", "--help"],
        &["demo", "--help"],
        &["help", "run"],
        &["run", "--help", "--log-format", "json", "-vv"],
        &["validate", "-h"],
    ];
    for args in helps {
        let out = ws.ferry(args);
        assert_exit(&out, 0, &format!("ferry {}", args.join(" ")));
        assert!(
            !out.stdout.is_empty(),
            "ferry {} printed nothing",
            args.join(" ")
        );
        ws.assert_clean(&out, &format!("ferry {}", args.join(" ")));
    }
}

// ---------------------------------------------------------------------------------
// run: successful runs of every vendor
// ---------------------------------------------------------------------------------

#[test]
fn successful_arctos_run_with_a_static_token_shows_no_secret() {
    let srv = Server::start_blocking();
    let ws = Workspace::new(&srv.base_url());
    srv.any_on_blocking(CREATE_TASK, vec![arctos_ok()]);

    let out = ws.run("appointments.csv", "appointments", "arctos", "arctos-ok");

    assert_exit(&out, 0, "run --target arctos");
    let report = ws.report("arctos-ok-json");
    assert_eq!(
        report.summary["counts"]["succeeded"], 2,
        "{}",
        report.summary
    );
    assert_eq!(report.succeeded.lines().count(), 3, "{}", report.succeeded);
    let cells = xlsx_cells(&ws.path().join("reports/arctos-ok-json/report.xlsx"));
    assert!(
        cells.iter().any(|c| c == "APT-1"),
        "report.xlsx is read cell by cell: {cells:?}"
    );
    let seen = credentials_seen(&srv, CREATE_TASK);
    assert_eq!(seen.len(), 4, "two runs of two rows: {seen:?}");
    assert!(
        seen.iter()
            .all(|s| *s == format!("Bearer {}", ws.secrets.arctos_token)),
        "the token was sent: {seen:?}"
    );
}

#[test]
fn successful_arctos_login_run_shows_no_license_key_code_or_access_token() {
    let srv = Server::start_blocking();
    let ws = Workspace::new(&srv.base_url());
    srv.any_on_blocking(
        AUTH_CODE,
        vec![Reply::json(
            200,
            json!({"status": 1, "message": "success", "info": {"code": ws.secrets.auth_code}}),
        )],
    );
    srv.any_on_blocking(
        AUTH_LOGIN,
        vec![Reply::json(
            200,
            json!({"status": 1, "message": "success", "info": {"access_token": ws.secrets.access_token, "token_type": "Bearer"}}),
        )],
    );
    srv.any_on_blocking(CREATE_TASK, vec![arctos_ok()]);

    let out = ws.run(
        "appointments.csv",
        "appointments",
        "arctos_login",
        "arctos-login-ok",
    );

    assert_exit(&out, 0, "run --target arctos_login");
    assert_eq!(
        credentials_seen(&srv, AUTH_CODE),
        vec![ws.secrets.license_key.clone(); 2],
        "one login per run"
    );
    assert!(srv
        .log
        .on(AUTH_LOGIN)
        .iter()
        .all(|s| s.body.contains(&ws.secrets.auth_code)));
    let seen = credentials_seen(&srv, CREATE_TASK);
    assert_eq!(seen.len(), 4);
    assert!(seen
        .iter()
        .all(|s| *s == format!("Bearer {}", ws.secrets.access_token)));
}

#[test]
fn successful_quanshi_run_shows_no_body_token() {
    let srv = Server::start_blocking();
    let ws = Workspace::new(&srv.base_url());
    srv.any_on_blocking(CREATE_CALL, vec![quanshi_ok()]);

    let out = ws.run("calls.csv", "calls", "quanshi", "quanshi-ok");

    assert_exit(&out, 0, "run --target quanshi");
    let report = ws.report("quanshi-ok-json");
    assert!(
        report
            .succeeded
            .contains("10.255.0.106_20220309_170437_1646816677951"),
        "{}",
        report.succeeded
    );
    assert_eq!(
        credentials_seen(&srv, CREATE_CALL),
        vec![ws.secrets.quanshi_token.clone(); 2]
    );
}

#[test]
fn successful_aicc_run_shows_no_app_key_or_token() {
    let srv = Server::start_blocking();
    let ws = Workspace::new(&srv.base_url());
    srv.any_on_blocking(
        CREATE_AGENT_SETTINGS,
        vec![Reply::json(
            200,
            json!({"returnCode": "0", "returnDesc": "ok", "id": "1307145259662215169"}),
        )],
    );

    let out = ws.run("agent-settings.csv", "agent-settings", "aicc", "aicc-ok");

    assert_exit(&out, 0, "run --target aicc");
    let seen = credentials_seen(&srv, CREATE_AGENT_SETTINGS);
    assert_eq!(seen.len(), 8, "app key and token on 4 requests: {seen:?}");
    assert!(seen.contains(&ws.secrets.aicc_app_key));
    assert!(seen.contains(&format!("Bearer {}", ws.secrets.aicc_token)));
}

// ---------------------------------------------------------------------------------
// run: refused credentials
// ---------------------------------------------------------------------------------

#[test]
fn refused_arctos_token_aborts_without_showing_it() {
    let srv = Server::start_blocking();
    let ws = Workspace::new(&srv.base_url());
    srv.any_on_blocking(CREATE_TASK, vec![refused(401)]);

    let out = ws.run("appointments.csv", "appointments", "arctos", "arctos-401");

    assert_exit(&out, 3, "run with a refused token");
    let report = ws.report("arctos-401-json");
    assert!(
        report.unprocessed.lines().count() >= 2,
        "{}",
        report.unprocessed
    );
    assert!(
        stdout(&out).contains("authentication refused") || stderr(&out).contains("refused"),
        "the abort is explained:\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );
}

#[test]
fn refused_arctos_login_token_twice_aborts_without_showing_any_login_secret() {
    let srv = Server::start_blocking();
    let ws = Workspace::new(&srv.base_url());
    srv.any_on_blocking(
        AUTH_CODE,
        vec![Reply::json(
            200,
            json!({"status": 1, "message": "success", "info": {"code": ws.secrets.auth_code}}),
        )],
    );
    srv.any_on_blocking(
        AUTH_LOGIN,
        vec![Reply::json(
            200,
            json!({"status": 1, "message": "success", "info": {"access_token": ws.secrets.access_token}}),
        )],
    );
    srv.any_on_blocking(CREATE_TASK, vec![refused(403)]);

    let out = ws.run(
        "appointments.csv",
        "appointments",
        "arctos_login",
        "arctos-login-403",
    );

    assert_exit(&out, 3, "run with a refused login token");
    assert!(srv.log.on(AUTH_LOGIN).len() >= 2, "a new login was tried");
}

#[test]
fn refused_arctos_license_key_aborts_without_showing_it() {
    let srv = Server::start_blocking();
    let ws = Workspace::new(&srv.base_url());
    srv.any_on_blocking(
        AUTH_CODE,
        vec![Reply::json(
            403,
            json!({"status": 0, "message": "invalid license key"}),
        )],
    );

    let out = ws.run(
        "appointments.csv",
        "appointments",
        "arctos_login",
        "arctos-license-403",
    );

    assert_exit(&out, 3, "run with a refused license key");
    assert!(srv.log.on(CREATE_TASK).is_empty());
}

#[test]
fn refused_quanshi_token_aborts_without_showing_it() {
    let srv = Server::start_blocking();
    let ws = Workspace::new(&srv.base_url());
    srv.any_on_blocking(
        CREATE_CALL,
        vec![Reply::json(
            200,
            json!({"timeStamp": 1, "code": 401, "msg": "token invalid", "data": null, "requestId": "r-401"}),
        )],
    );

    let out = ws.run("calls.csv", "calls", "quanshi", "quanshi-401");

    assert_exit(&out, 3, "run with a refused Quanshi token");
}

#[test]
fn refused_aicc_app_key_aborts_without_showing_it() {
    let srv = Server::start_blocking();
    let ws = Workspace::new(&srv.base_url());
    srv.any_on_blocking(
        CREATE_AGENT_SETTINGS,
        vec![Reply::raw(401, "Unauthorized operation.")],
    );

    let out = ws.run("agent-settings.csv", "agent-settings", "aicc", "aicc-401");

    assert_exit(&out, 3, "run with a refused AICC app key");
}

// ---------------------------------------------------------------------------------
// run: bad base URLs
// ---------------------------------------------------------------------------------

#[test]
fn nothing_listening_at_the_base_url_shows_no_secret() {
    let ws = Workspace::new("http://127.0.0.1:9");

    let out = ws.run(
        "appointments.csv",
        "appointments",
        "arctos_down",
        "arctos-down",
    );

    assert_exit(&out, 1, "run against a closed port");
    let report = ws.report("arctos-down-json");
    assert!(report.failed.contains("transport"), "{}", report.failed);
}

#[test]
fn wrong_path_prefix_in_the_base_url_shows_no_secret() {
    let srv = Server::start_blocking();
    let ws = Workspace::new(&srv.base_url());
    srv.any_on_blocking(CREATE_TASK, vec![arctos_ok()]);

    let out = ws.run(
        "appointments.csv",
        "appointments",
        "arctos_wrong_path",
        "arctos-wrong-path",
    );

    assert!(
        matches!(out.status.code(), Some(1) | Some(3)),
        "a wrong base path fails or aborts: {:?}\n{}",
        out.status,
        stderr(&out)
    );
    assert!(srv.log.on(CREATE_TASK).is_empty());
}

#[test]
fn plain_http_to_a_remote_host_is_refused_before_any_secret_is_read() {
    let ws = Workspace::new("http://127.0.0.1:9");
    ws.write(
        "remote.toml",
        "[targets.arctos]\nbase_url = \"http://arctos.example.com\"\ntoken_env = \"ARCTOS_TOKEN\"\n",
    );
    for format in ["text", "json"] {
        let out = ws.ferry(&[
            "run",
            "appointments.csv",
            "--kind",
            "appointments",
            "--config",
            "remote.toml",
            "--state",
            "state-remote.db",
            "--log-format",
            format,
            "-vv",
        ]);
        assert_exit(&out, 2, "plain http to a remote host");
        assert!(
            stderr(&out).contains("base_url"),
            "the message names the key: {}",
            stderr(&out)
        );
        ws.assert_clean(&out, "plain http to a remote host");
    }
}

/// `ferry run appointments.csv` on the arctos target, with its own state and report
/// folder named after `name`; the caller sets the environment.
fn arctos_appointments(ws: &Workspace, name: &str) -> Command {
    let (state, dir) = (format!("state-{name}.db"), format!("reports/{name}"));
    let mut command = Command::new(FERRY);
    command
        .args([
            "run",
            "appointments.csv",
            "--kind",
            "appointments",
            "--config",
            "ferry.toml",
            "--target",
            "arctos",
            "--state",
            &state,
            "--report-dir",
            &dir,
        ])
        .current_dir(ws.path());
    command
}

#[test]
fn unset_secret_variable_is_a_config_error_that_names_the_variable() {
    let srv = Server::start_blocking();
    let ws = Workspace::new(&srv.base_url());
    srv.any_on_blocking(CREATE_TASK, vec![arctos_ok()]);
    let out = arctos_appointments(&ws, "unset")
        .env_remove("ARCTOS_TOKEN")
        .output()
        .expect("ferry runs");
    assert!(stderr(&out).contains("ARCTOS_TOKEN") || stdout(&out).contains("ARCTOS_TOKEN"));
    assert!(srv.log.all().is_empty(), "nothing was sent");
    assert_exit(&out, 2, "a secret variable that is not set");
}

/// A secret with a line break in it cannot be sent in a header: the requests could not
/// be built, and ferry took that for a vendor that does not answer (exit 3 after ten
/// tries, rows failed as transport). It is a config error now: exit 2, nothing sent,
/// the key named and the value not shown.
#[test]
fn a_secret_with_a_line_break_is_a_config_error() {
    let srv = Server::start_blocking();
    let ws = Workspace::new(&srv.base_url());
    srv.any_on_blocking(CREATE_TASK, vec![arctos_ok()]);
    let broken = "Lq8line-one\nsecond-line-Zq";
    let out = arctos_appointments(&ws, "broken")
        .env("ARCTOS_TOKEN", broken)
        .output()
        .expect("ferry runs");
    assert_exit(&out, 2, "a secret with a line break");
    assert!(
        stderr(&out).contains("targets.arctos.token") && stderr(&out).contains("control character"),
        "{}",
        stderr(&out)
    );
    for part in ["Lq8line-one", "second-line-Zq"] {
        assert!(!stderr(&out).contains(part) && !stdout(&out).contains(part));
    }
    assert!(srv.log.all().is_empty(), "nothing was sent");
}

// ---------------------------------------------------------------------------------
// The Secret type and literal secrets in the config
// ---------------------------------------------------------------------------------

#[test]
fn secret_debug_and_display_print_stars() {
    let secret = Secret::new("sekret-debug-value");
    assert_eq!(format!("{secret:?}"), "***");
    assert_eq!(format!("{secret}"), "***");
    assert_eq!(format!("{secret:#?}"), "***");
    assert_eq!(secret.expose(), "sekret-debug-value");
    let nested = vec![Some(secret.clone())];
    assert!(!format!("{nested:?}").contains("sekret"));
}

#[test]
fn debug_of_targets_and_credentials_never_shows_a_secret() {
    let target = ferry::sandbox::target(
        Kind::Calls,
        reqwest::Url::parse("http://127.0.0.1:9").expect("url"),
    );
    let debug = format!("{target:?} {target:#?}");
    assert!(
        !debug.contains("sandbox-token"),
        "a built-in secret in Debug: {debug}"
    );
    let creds = ferry::targets::Credentials {
        bearer: Some(Secret::new("sekret-bearer")),
        app_key: Some(Secret::new("sekret-app-key")),
        body_token: Some(Secret::new("sekret-body-token")),
    };
    assert!(!format!("{creds:?}").contains("sekret"));
}

#[test]
fn a_literal_secret_in_the_config_is_refused_without_echoing_it() {
    let value = "sekret-literal-0042";
    let cases = [
        ("arctos", "token"),
        ("arctos", "license_key"),
        ("quanshi", "token"),
        ("aicc", "app_key"),
        ("aicc", "token"),
    ];
    for (target, key) in cases {
        for literal in [format!("\"{value}\""), format!("'{value}'")] {
            let toml = format!(
                "[targets.{target}]\nbase_url = \"https://{target}.example.com\"\n{key} = {literal}\n"
            );
            let err = Config::parse(&toml).expect_err("a literal secret is refused");
            let message = err.to_string();
            assert!(
                !message.contains(value),
                "{target}.{key}: the refusal echoes the secret: {message}"
            );
            assert!(
                message.contains(&format!("targets.{target}.{key}")),
                "{target}.{key}: the refusal names the key: {message}"
            );
            assert!(
                message.contains(&format!("{key}_env")) && message.contains(&format!("{key}_file")),
                "{target}.{key}: the refusal says what to do instead: {message}"
            );
            assert!(!format!("{err:?}").contains(value));
        }
    }
}

#[test]
fn a_literal_secret_in_the_config_file_is_refused_by_the_binary_without_echoing_it() {
    let ws = Workspace::new("http://127.0.0.1:9");
    let value = "sekret-literal-in-file-7";
    ws.write(
        "literal.toml",
        &format!(
            "[targets.aicc]\nbase_url = \"https://service.besclouds.com\"\napp_key = \"{value}\"\n"
        ),
    );
    for command in ["validate", "run"] {
        let mut args = vec![
            command,
            "agent-settings.csv",
            "--kind",
            "agent-settings",
            "--config",
            "literal.toml",
            "--log-format",
            "json",
            "-vv",
        ];
        if command == "run" {
            args.extend(["--state", "state-literal.db"]);
        }
        let out = ws.ferry(&args);
        assert_exit(&out, 2, &format!("{command} with a literal secret"));
        let all = format!("{}{}", stdout(&out), stderr(&out));
        assert!(all.contains("targets.aicc.app_key"), "{all}");
        assert!(!all.contains(value), "{command}: {all}");
    }
}

#[test]
fn a_literal_secret_under_a_misspelled_key_is_refused_without_echoing_it() {
    let value = "sekret-misspelled-9";
    for key in ["tokne", "api_token", "app_key_value", "password"] {
        let toml = format!(
            "[targets.aicc]\nbase_url = \"https://service.besclouds.com\"\napp_key_env = \"AICC_APP_KEY\"\n{key} = \"{value}\"\n"
        );
        let err = Config::parse(&toml).expect_err("an unknown key is refused");
        let message = err.to_string();
        assert!(
            message.contains(key),
            "the message names the key: {message}"
        );
        assert!(
            !message.contains(value),
            "{key}: the refusal echoes the value: {message}"
        );
    }
}

#[test]
fn secret_file_contents_never_appear_in_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let empty = dir.path().join("empty.secret");
    std::fs::write(&empty, "  \n").expect("write");
    let missing = dir.path().join("missing.secret");
    for (path, expect) in [(&empty, "empty"), (&missing, "does not exist")] {
        let toml = format!(
            "[targets.arctos]\nbase_url = \"https://arctos.example.com\"\ntoken_file = {:?}\n",
            path.display().to_string()
        );
        let config = Config::parse(&toml).expect("a token file is fine in the config");
        let target = config.targets["arctos"].clone();
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let sender = ferry::send::Sender::new(target, Kind::Appointments, fast()).expect("sender");
        let abort = rt
            .block_on(sender.authenticate())
            .expect_err("the secret cannot be loaded");
        assert!(
            abort.message().contains(expect),
            "{path:?}: {}",
            abort.message()
        );
        assert!(
            abort.message().contains("targets.arctos.token_file"),
            "the message names the key that was set: {}",
            abort.message()
        );
        assert!(
            !abort.message().contains(&path.display().to_string()),
            "{}",
            abort.message()
        );
    }
}

/// Issue 9: the path of a `*_file` key and a `base_url` that is no https:// address
/// were quoted in their errors, but users paste secrets into the wrong key. Each error
/// names the key and what is wrong, and the value appears nowhere in the output.
#[test]
fn a_secret_pasted_into_a_file_key_or_base_url_is_never_echoed() {
    let ws = Workspace::new("http://127.0.0.1:9");
    let pasted = format!("sekret/Pq1Pasted+{}", unique("p").replace('_', "-"));
    let loopback = "base_url = \"http://127.0.0.1:9\"";
    let cases = [
        (
            format!("[targets.arctos]\n{loopback}\ntoken_file = \"{pasted}\""),
            "appointments",
            "targets.arctos.token_file: the file it names does not exist",
        ),
        (
            format!("[targets.arctos]\n{loopback}\nlicense_key_file = \"{pasted}\"\nlogin_user_id = \"ops\""),
            "appointments",
            "targets.arctos.license_key_file: the file it names does not exist",
        ),
        (
            format!("[targets.quanshi]\n{loopback}\ntoken_file = \"{pasted}\""),
            "calls",
            "targets.quanshi.token_file: the file it names does not exist",
        ),
        (
            format!("[targets.aicc]\n{loopback}\napp_key_file = \"{pasted}\""),
            "agent-settings",
            "targets.aicc.app_key_file: the file it names does not exist",
        ),
        (
            format!("[targets.aicc]\n{loopback}\napp_key_env = \"AICC_APP_KEY\"\ntoken_file = \"{pasted}\""),
            "agent-settings",
            "targets.aicc.token_file: the file it names does not exist",
        ),
        (
            format!("[targets.arctos]\nbase_url = \"{pasted}\"\ntoken_env = \"ARCTOS_TOKEN\""),
            "appointments",
            "targets.arctos.base_url: not a URL",
        ),
        (
            format!("[targets.arctos]\nbase_url = \"sekret:{pasted}\"\ntoken_env = \"ARCTOS_TOKEN\""),
            "appointments",
            "targets.arctos.base_url: not an https:// address",
        ),
        (
            format!("[targets.quanshi]\nbase_url = \"http://quanshi.example.com/{pasted}\"\ntoken_env = \"QUANSHI_TOKEN\""),
            "calls",
            "targets.quanshi.base_url: plain http://",
        ),
    ];
    for (i, (toml, kind, says)) in cases.iter().enumerate() {
        let config = format!("pasted-{i}.toml");
        ws.write(&config, toml);
        for format in ["text", "json"] {
            let out = ws.ferry(&[
                "run",
                &format!("{kind}.csv"),
                "--kind",
                kind,
                "--config",
                &config,
                "--state",
                &format!("state-pasted-{i}.db"),
                "--report-dir",
                &format!("reports/pasted-{i}-{format}"),
                "--log-format",
                format,
                "-vv",
            ]);
            assert_exit(&out, 2, toml);
            let all = format!("{}{}", stdout(&out), stderr(&out));
            assert!(all.contains(says), "{toml}\nwanted {says:?} in:\n{all}");
            for part in pasted.split(['/', '+']) {
                assert!(!all.contains(part), "{toml}\nshows {part:?}:\n{all}");
            }
            ws.assert_clean(&out, toml);
        }
    }
}

// ---------------------------------------------------------------------------------
// Secrets that come back from elsewhere
// ---------------------------------------------------------------------------------

#[test]
fn a_vendor_message_that_echoes_the_token_does_not_carry_it_into_output_or_reports() {
    let srv = Server::start_blocking();
    let ws = Workspace::new(&srv.base_url());
    // Vendors do echo what they refuse; ferry knows its secrets and must not repeat them.
    srv.any_on_blocking(
        CREATE_CALL,
        vec![Reply::json(
            200,
            json!({"timeStamp": 1, "code": 401, "msg": format!("token {} is invalid", ws.secrets.quanshi_token), "data": null, "requestId": "r-echo"}),
        )],
    );

    let out = ws.run("calls.csv", "calls", "quanshi", "quanshi-echo");

    assert_exit(&out, 3, "run with a refused Quanshi token");
}

#[test]
fn a_password_in_the_base_url_is_refused_like_any_literal_secret() {
    let value = "sekret-url-password-5";
    let toml = format!(
        "[targets.arctos]\nbase_url = \"https://ops:{value}@arctos.example.com\"\ntoken_env = \"ARCTOS_TOKEN\"\n"
    );
    let err = Config::parse(&toml).expect_err("credentials in base_url are a literal secret");
    assert!(err.to_string().contains("base_url"), "{err}");
    assert!(!err.to_string().contains(value), "{err}");
}

// ---------------------------------------------------------------------------------
// Issue 9: secrets quoted back in any form, answers that misbehave
// ---------------------------------------------------------------------------------

/// The shortest part of a secret that counts as the secret (ferry::scrub::FRAGMENT).
const FRAGMENT: usize = 8;

/// A secret as vendors quote it back, encoded here independently of ferry.
fn quoted_forms(secret: &str) -> Vec<String> {
    vec![
        secret.to_string(),
        json_escaped(secret),
        url_encoded(secret),
        base64::engine::general_purpose::STANDARD.encode(secret),
    ]
}

/// As PHP's json_encode writes it: `/` as `\/`.
fn json_escaped(secret: &str) -> String {
    let json = serde_json::to_string(secret).expect("a string serialises");
    json[1..json.len() - 1].replace('/', "\\/")
}

fn url_encoded(secret: &str) -> String {
    secret
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One failed row's stage and error code, from `failed.csv`.
fn stage_and_code(failed: &str) -> Vec<(String, String)> {
    let mut reader = csv::Reader::from_reader(failed.trim_start_matches('\u{feff}').as_bytes());
    let header = reader.headers().expect("a header").clone();
    let at = |name: &str| header.iter().position(|h| h == name).expect(name);
    let (stage, code) = (at("ferry_stage"), at("ferry_error_code"));
    reader
        .records()
        .map(|r| {
            let r = r.expect("a record");
            (r[stage].to_string(), r[code].to_string())
        })
        .collect()
}

/// Runs `kind` against `target` (both log formats), checks that it ended with `exit`
/// promptly and left no trace of any secret; returns the JSON run's report.
#[track_caller]
fn run_leaving_no_trace(ws: &Workspace, target: &str, kind: &str, name: &str, exit: i32) -> Report {
    let manifest = match kind {
        "appointments" => "appointments.csv",
        "calls" => "calls.csv",
        _ => "agent-settings.csv",
    };
    let started = Instant::now();
    let out = ws.run(manifest, kind, target, name);
    let took = started.elapsed();
    assert_exit(&out, exit, name);
    assert!(
        took < Duration::from_secs(40),
        "{name}: two runs took {took:?}"
    );
    ws.assert_no_trace(&out, name);
    ws.report(&format!("{name}-json"))
}

#[test]
fn a_secret_quoted_back_in_any_form_never_reaches_output_reports_or_the_summary() {
    struct Case {
        name: &'static str,
        target: &'static str,
        kind: &'static str,
        path: &'static str,
        reply: fn(&Secrets) -> Reply,
        exit: i32,
        outcome: Option<(&'static str, &'static str)>,
    }
    let cases = [
        Case {
            name: "token-raw",
            target: "arctos",
            kind: "appointments",
            path: CREATE_TASK,
            reply: |s| {
                Reply::json(
                    200,
                    json!({"status": 0, "message": format!("token {} is not allowed here", s.arctos_token)}),
                )
            },
            exit: 1,
            outcome: Some(("remote", "vendor_rejected")),
        },
        Case {
            // No status: the answer is unreadable, and its raw text (with `\/`) is quoted.
            name: "token-json-escaped",
            target: "arctos",
            kind: "appointments",
            path: CREATE_TASK,
            reply: |s| Reply {
                status: 200,
                headers: vec![("content-type".into(), "application/json".into())],
                body: json!({"msg": format!("token {} expired", s.arctos_token)})
                    .to_string()
                    .replace('/', "\\/")
                    .into_bytes(),
            },
            exit: 1,
            outcome: Some(("unknown", "outcome_unknown")),
        },
        Case {
            name: "token-url-encoded",
            target: "arctos",
            kind: "appointments",
            path: CREATE_TASK,
            reply: |s| {
                Reply::json(
                    200,
                    json!({"status": 0, "message": format!("denied: https://arctos.example.com/api?access_token={}", url_encoded(&s.arctos_token))}),
                )
            },
            exit: 1,
            outcome: Some(("remote", "vendor_rejected")),
        },
        Case {
            name: "app-key-base64",
            target: "aicc",
            kind: "agent-settings",
            path: CREATE_AGENT_SETTINGS,
            reply: |s| {
                Reply::raw(
                    400,
                    &format!(
                        "X-APP-Key {} is not registered; bearer {}",
                        base64::engine::general_purpose::STANDARD.encode(&s.aicc_app_key),
                        base64::engine::general_purpose::STANDARD.encode(&s.aicc_token)
                    ),
                )
            },
            exit: 1,
            outcome: Some(("remote", "http_error")),
        },
        Case {
            // The 200-character excerpt would end one character before the token's end.
            name: "token-cut-at-200",
            target: "arctos",
            kind: "appointments",
            path: CREATE_TASK,
            reply: |s| {
                let filler = "x".repeat(200 - s.arctos_token.len() + 1);
                Reply::raw(500, &format!("{filler}{} more", s.arctos_token))
            },
            exit: 1,
            outcome: Some(("remote", "http_error")),
        },
        Case {
            name: "quanshi-token-in-msg",
            target: "quanshi",
            kind: "calls",
            path: CREATE_CALL,
            reply: |s| {
                Reply::json(
                    200,
                    json!({"code": 500, "msg": format!("token {} / {} unknown", s.quanshi_token, json_escaped(&s.quanshi_token)), "data": null, "requestId": "r-1"}),
                )
            },
            exit: 1,
            outcome: Some(("remote", "vendor_error")),
        },
    ];
    for case in cases {
        let srv = Server::start_blocking();
        let ws = Workspace::new(&srv.base_url());
        srv.any_on_blocking(case.path, vec![(case.reply)(&ws.secrets)]);
        let report = run_leaving_no_trace(&ws, case.target, case.kind, case.name, case.exit);
        if let Some((stage, code)) = case.outcome {
            let rows = stage_and_code(&report.failed);
            assert!(!rows.is_empty(), "{}: {}", case.name, report.failed);
            for row in rows {
                assert_eq!(row, (stage.to_string(), code.to_string()), "{}", case.name);
            }
            assert!(
                report.failed.contains("***"),
                "{}: the message keeps its shape: {}",
                case.name,
                report.failed
            );
        }
    }
}

/// Issue 9: an arctos login refusal quoting the license key put it in stdout,
/// summary.json and unprocessed.csv.
#[test]
fn a_login_refusal_quoting_the_license_key_leaves_no_trace_of_it() {
    let srv = Server::start_blocking();
    let ws = Workspace::new(&srv.base_url());
    let key = ws.secrets.license_key.clone();
    srv.any_on_blocking(
        AUTH_CODE,
        vec![Reply::json(
            403,
            json!({"status": 0, "message": format!("license {key} ({}) refused; ends {}", json_escaped(&key), &key[..key.len() - 1])}),
        )],
    );

    let report = run_leaving_no_trace(&ws, "arctos_login", "appointments", "license-echo", 3);

    assert!(
        report.unprocessed.lines().count() >= 2,
        "{}",
        report.unprocessed
    );
    assert!(report.unprocessed.contains("***"), "{}", report.unprocessed);
    assert!(srv.log.on(CREATE_TASK).is_empty());
}

/// The same for what the login issues: the code and the access token, quoted back.
#[test]
fn a_login_code_and_token_quoted_back_leave_no_trace() {
    let srv = Server::start_blocking();
    let ws = Workspace::new(&srv.base_url());
    srv.any_on_blocking(
        AUTH_CODE,
        vec![Reply::json(
            200,
            json!({"status": 1, "info": {"code": ws.secrets.auth_code}}),
        )],
    );
    srv.any_on_blocking(
        AUTH_LOGIN,
        vec![Reply::json(
            200,
            json!({"status": 1, "info": {"access_token": ws.secrets.access_token}}),
        )],
    );
    srv.any_on_blocking(
        CREATE_TASK,
        vec![Reply::json(200, json!({"status": 0, "message": format!("token {} from code {} is read-only", ws.secrets.access_token, url_encoded(&ws.secrets.auth_code))}))],
    );

    let report = run_leaving_no_trace(&ws, "arctos_login", "appointments", "issued-echo", 1);

    assert_eq!(
        stage_and_code(&report.failed),
        vec![("remote".to_string(), "vendor_rejected".to_string()); 2]
    );
}

#[test]
fn answers_that_misbehave_end_the_attempt_promptly_and_leave_no_secret() {
    let cases: Vec<(&str, RawAnswer)> = vec![
        ("huge", raw::announced(500 * 1024 * 1024)),
        ("endless", raw::endless_chunked()),
        ("drip", raw::drip(Duration::from_millis(100))),
        (
            "html",
            raw::whole(
                200,
                "Content-Type: text/html\r\n",
                "<html><body>Sign in</body></html>",
            ),
        ),
    ];
    for (name, answer) in cases {
        let raw = RawServer::start(answer);
        let ws = Workspace::new(&raw.base_url());
        let report = run_leaving_no_trace(&ws, "arctos_quick", "appointments", name, 1);
        assert_eq!(
            stage_and_code(&report.failed),
            vec![("unknown".to_string(), "outcome_unknown".to_string()); 2],
            "{name}: {}",
            report.failed
        );
        assert_eq!(raw.count(), 4, "{name}: two rows, two runs, never resent");
    }
}

#[test]
fn a_redirect_is_reported_with_its_host_and_a_hint_never_its_query() {
    let token_holder = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let holder = std::sync::Arc::clone(&token_holder);
    let raw = RawServer::start(std::sync::Arc::new(move |s: &mut std::net::TcpStream| {
        use std::io::Write;
        let token = holder.lock().unwrap_or_else(|p| p.into_inner()).clone();
        write!(
            s,
            "HTTP/1.1 301 Moved Permanently\r\nLocation: https://moved.example.com/api/task/do_add?access_token={token}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
    }));
    let ws = Workspace::new(&raw.base_url());
    *token_holder.lock().unwrap_or_else(|p| p.into_inner()) = url_encoded(&ws.secrets.arctos_token);

    let started = Instant::now();
    let out = ws.run(
        "appointments.csv",
        "appointments",
        "arctos_quick",
        "redirect",
    );
    assert_exit(&out, 3, "a redirect stops the run");
    assert!(started.elapsed() < Duration::from_secs(30));
    ws.assert_no_trace(&out, "redirect");
    let report = ws.report("redirect-json");
    let said = format!("{}{}{}", stdout(&out), stderr(&out), report.summary);
    assert!(said.contains("HTTP 301"), "{said}");
    assert!(said.contains("https://moved.example.com"), "{said}");
    assert!(said.contains("base_url"), "{said}");
    assert!(
        !said.contains("access_token") && !said.contains("do_add?"),
        "{said}"
    );
    let requests = raw
        .requests
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    assert!(
        requests.len() <= 4,
        "at most one per row, never retried: {requests:?}"
    );
    for head in requests {
        assert!(
            head.starts_with("POST /api/task/do_add "),
            "not followed: {head}"
        );
    }
}

mod scrubber_properties {
    use super::*;
    use ferry::scrub::Scrubber;
    use proptest::prelude::*;

    fn scrubber(secret: &str) -> Scrubber {
        let mut s = Scrubber::new();
        s.add(&Secret::new(secret));
        s
    }

    /// Whether `text` holds `FRAGMENT` consecutive bytes of `form`.
    fn holds_part_of(text: &str, form: &str) -> bool {
        form.as_bytes()
            .windows(FRAGMENT.min(form.len()))
            .any(|w| text.as_bytes().windows(w.len()).any(|t| t == w))
    }

    /// Whether any base64 run of `text`, decoded at any alignment, holds `FRAGMENT`
    /// bytes of `secret` (a secret inside a longer base64 text, as in `user:token`).
    fn decodes_to_part_of(text: &str, secret: &str) -> bool {
        let alphabet = |c: char| c.is_ascii_alphanumeric() || c == '+' || c == '/';
        text.split(|c: char| !alphabet(c)).any(|run| {
            (0..4).any(|skip| {
                let run = run.get(skip..).unwrap_or("");
                let whole = &run[..run.len() / 4 * 4];
                base64::engine::general_purpose::STANDARD_NO_PAD
                    .decode(whole)
                    .is_ok_and(|bytes| {
                        secret
                            .as_bytes()
                            .windows(FRAGMENT)
                            .any(|w| bytes.windows(FRAGMENT).any(|b| b == w))
                    })
            })
        })
    }

    fn secret() -> impl Strategy<Value = String> {
        "[A-Za-z0-9/+=_.~:!\"\\\\é令-]{8,40}"
    }

    fn words() -> impl Strategy<Value = String> {
        "[ -~]{0,60}"
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn no_form_of_a_secret_survives(secret in secret(), before in words(), after in words()) {
            let s = scrubber(&secret);
            for form in quoted_forms(&secret) {
                let out = s.scrub(&format!("{before}{form}{after}"));
                prop_assert!(!holds_part_of(&out, &form), "{form:?} survives in {out:?}");
            }
        }

        #[test]
        fn a_secret_inside_longer_base64_does_not_survive(
            secret in secret(),
            user in "[a-z]{0,12}",
            after in words(),
        ) {
            let s = scrubber(&secret);
            let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{secret}"));
            let out = s.scrub(&format!("Authorization: Basic {basic} {after}"));
            prop_assert!(!decodes_to_part_of(&out, &secret), "{out:?}");
        }

        #[test]
        fn a_cut_secret_shows_nothing_of_itself(secret in secret(), keep in 8usize..40, before in words()) {
            let s = scrubber(&secret);
            let cut: String = secret.chars().take(keep).collect();
            let out = s.scrub(&format!("{before}{cut}"));
            prop_assert!(!holds_part_of(&out, &cut), "{out:?}");
        }

        #[test]
        fn an_excerpt_cut_anywhere_shows_nothing_of_any_form(
            secret in secret(),
            lead in 150usize..210,
            after in words(),
        ) {
            let s = scrubber(&secret);
            for form in quoted_forms(&secret) {
                let body = format!("{}{form}{after}", "x".repeat(lead));
                let out = s.excerpt(body.as_bytes());
                prop_assert!(!holds_part_of(&out, &form), "{form:?} in {out:?}");
                prop_assert!(out.chars().count() <= 2 + 200 + 1, "{out:?}");
            }
        }

        #[test]
        fn text_without_the_secret_is_left_alone(secret in "[A-Z]{12,20}", text in "[a-z0-9 ]{0,80}") {
            prop_assert_eq!(scrubber(&secret).scrub(&text), text);
        }
    }
}
