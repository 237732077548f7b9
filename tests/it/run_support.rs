//! Shared helpers for the end-to-end tests of `ferry run` (`tests/it/run.rs`,
//! `tests/it/crash.rs`): a `ferry sandbox` child process with fault flags, a fresh working
//! directory with a `ferry.toml` that points at it, the real binary run there, and the
//! report folder read back with request ids and task numbers normalised, so that whole
//! report files can be compared.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const FERRY: &str = env!("CARGO_BIN_EXE_ferry");

/// The environment variables the generated `ferry.toml` names for its secrets.
pub const ARCTOS_TOKEN_ENV: &str = "FERRY_TEST_ARCTOS_TOKEN";
pub const QUANSHI_TOKEN_ENV: &str = "FERRY_TEST_QUANSHI_TOKEN";
pub const AICC_APP_KEY_ENV: &str = "FERRY_TEST_AICC_APP_KEY";

/// The sandbox's well-known credentials (`sandbox::Secrets::default()`).
pub const SANDBOX_TOKEN: &str = "sandbox-token";
pub const SANDBOX_APP_KEY: &str = "sandbox-app-key";

pub const CREATE_TASK: &str = "/api/task/do_add";
pub const ADD_MODERATOR: &str = "/api/task/service/do_add";
pub const ADD_PUBLISHER: &str = "/api/task/customer/do_add";
pub const UPDATE_TASK_STATUS: &str = "/api/task/status/do_update";
pub const CREATE_CALL: &str = "/eventopenapi/event/call/create";
pub const CREATE_AGENT_SETTINGS: &str = "/apiaccess/CC-Management/v1/openapp/agentsettings/create";

/// A `ferry sandbox` child process on a loopback port it picked itself. Killed on drop.
pub struct Sandbox {
    child: Child,
    /// Kept open so that the sandbox never writes into a closed pipe.
    _stdout: BufReader<ChildStdout>,
    /// `127.0.0.1:PORT`.
    pub addr: String,
}

impl Sandbox {
    /// Starts `ferry sandbox --addr 127.0.0.1:0 FLAGS` (port 0: the sandbox picks a free
    /// port and prints it, so parallel tests never race for one), waits for its
    /// "listening on" line and for the port to accept connections. Its log goes to
    /// `sandbox.log` in `dir`.
    pub fn start(dir: &Path, flags: &[&str]) -> Sandbox {
        let log = File::options()
            .create(true)
            .append(true)
            .open(dir.join("sandbox.log"))
            .expect("sandbox log file");
        let mut child = Command::new(FERRY)
            .args(["sandbox", "--addr", "127.0.0.1:0"])
            .args(flags)
            .current_dir(dir)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("ferry sandbox starts");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("sandbox stdout");
        let Some(url) = line.trim().strip_prefix("ferry sandbox listening on ") else {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(dir.join("sandbox.log")).unwrap_or_default();
            panic!("ferry sandbox {flags:?} did not start: stdout {line:?}, log:\n{log}");
        };
        let addr = url.trim_start_matches("http://").to_string();
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(&addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "sandbox {addr} never accepted a connection"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Sandbox {
            child,
            _stdout: stdout,
            addr,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `GET /_sandbox/stats`, over a plain TCP stream.
    pub fn stats(&self) -> Value {
        let mut stream = TcpStream::connect(&self.addr).expect("connect to the sandbox");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("read timeout");
        write!(
            stream,
            "GET /_sandbox/stats HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        )
        .expect("send the stats request");
        let mut answer = String::new();
        stream
            .read_to_string(&mut answer)
            .expect("read the stats answer");
        let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
        assert!(head.starts_with("HTTP/1.1 200"), "stats answered {head}");
        serde_json::from_str(body).unwrap_or_else(|e| panic!("stats body {body:?}: {e}"))
    }

    /// Every request the sandbox has seen on a vendor path (404s included).
    pub fn requests_total(&self) -> u64 {
        let stats = self.stats();
        let per_path: u64 = stats["requests"]
            .as_object()
            .expect("requests per path")
            .values()
            .map(|n| n.as_u64().expect("a count"))
            .sum();
        per_path + stats["not_found"].as_u64().expect("not_found")
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads a count out of the stats: `count(&stats, &["created", "appointments"])`.
pub fn count(stats: &Value, path: &[&str]) -> u64 {
    let mut v = stats;
    for p in path {
        v = &v[*p];
    }
    v.as_u64()
        .unwrap_or_else(|| panic!("stats have no count at {path:?}: {stats}"))
}

/// Target settings written into every section of the generated config: fast, and with
/// enough retries that a 30 % fault rate cannot exhaust them by bad luck
/// (0.3^11 per row).
pub const FAST: &str =
    "rate = 500\nburst = 50\nconcurrency = 8\ntimeout_secs = 10\nmax_retries = 10";

/// A `ferry.toml` with an arctos, a quanshi and an aicc target at `base_url`, their
/// secrets in environment variables, and `knobs` (TOML lines) in every target.
pub fn ferry_toml(base_url: &str, knobs: &str) -> String {
    format!(
        r#"[defaults]
timezone = "Asia/Shanghai"
country_code = "86"

[targets.arctos]
base_url = "{base_url}"
token_env = "{ARCTOS_TOKEN_ENV}"
{knobs}

[targets.arctos.paths]
update_task_status = "/api/task/status/do_update"

[targets.quanshi]
base_url = "{base_url}"
token_env = "{QUANSHI_TOKEN_ENV}"
{knobs}

[targets.aicc]
base_url = "{base_url}"
app_key_env = "{AICC_APP_KEY_ENV}"
{knobs}
"#
    )
}

/// A fresh temporary working directory for one test.
pub struct Workspace {
    dir: tempfile::TempDir,
}

/// What a finished `ferry` process left.
#[derive(Debug)]
pub struct Finished {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Workspace {
    pub fn new() -> Workspace {
        Workspace {
            dir: tempfile::tempdir().expect("a temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.join(name);
        std::fs::write(&path, contents).expect("write a test file");
        path
    }

    /// Writes `ferry.toml` for the sandbox (picked up from the working directory).
    pub fn config_for(&self, sandbox: &Sandbox, knobs: &str) {
        self.write("ferry.toml", &ferry_toml(&sandbox.url(), knobs));
    }

    /// `ferry ARGS` in this directory, with the sandbox's secrets in the environment
    /// and nothing from the outside environment that could change the run.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(FERRY);
        command
            .args(args)
            .current_dir(self.path())
            .env(ARCTOS_TOKEN_ENV, SANDBOX_TOKEN)
            .env(QUANSHI_TOKEN_ENV, SANDBOX_TOKEN)
            .env(AICC_APP_KEY_ENV, SANDBOX_APP_KEY)
            .stdin(Stdio::null());
        for var in [
            "FERRY_CONFIG",
            "RUST_LOG",
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "http_proxy",
            "https_proxy",
            "all_proxy",
        ] {
            command.env_remove(var);
        }
        command
    }

    /// Runs `ferry ARGS` to its end.
    pub fn ferry(&self, args: &[&str]) -> Finished {
        finish(self.command(args), args)
    }
}

/// Runs a prepared command to its end; a death by signal fails the test.
pub fn finish(mut command: Command, args: &[&str]) -> Finished {
    let output = command.output().expect("ferry runs");
    Finished {
        code: output.status.code().unwrap_or_else(|| {
            panic!(
                "ferry {args:?} died: {:?}\nstderr:\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            )
        }),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

impl Finished {
    /// Asserts the exit code, showing the output when it differs.
    pub fn expect(self, code: i32) -> Finished {
        assert_eq!(
            self.code, code,
            "unexpected exit code\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// One report CSV: its header and rows, BOM checked and stripped.
#[derive(Clone, Debug)]
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn read(path: &Path) -> Table {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let text = String::from_utf8(bytes).expect("reports are UTF-8");
        let text = text
            .strip_prefix('\u{feff}')
            .unwrap_or_else(|| panic!("{} has no UTF-8 BOM", path.display()));
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(text.as_bytes());
        let mut records = reader.records().map(|r| {
            r.expect("a CSV record")
                .iter()
                .map(str::to_string)
                .collect::<Vec<_>>()
        });
        let header = records.next().expect("a header row");
        let rows: Vec<Vec<String>> = records.collect();
        for row in &rows {
            assert_eq!(
                row.len(),
                header.len(),
                "{}: ragged row {row:?}",
                path.display()
            );
        }
        Table { header, rows }
    }

    /// Checks that the origin columns follow the ferry columns and that each row's
    /// origin is `expected(ferry_row)`, then drops them.
    pub fn check_and_drop_origins(&mut self, expected: impl Fn(u64) -> (String, String)) {
        let at = self.index(ORIGIN_COLUMNS[0]);
        assert_eq!(self.header[at..at + 2], ORIGIN_COLUMNS, "{:?}", self.header);
        let ferry_row = self.index("ferry_row");
        for row in &mut self.rows {
            let number: u64 = row[ferry_row].parse().expect("ferry_row is a number");
            let (source_row, source) = expected(number);
            assert_eq!(
                (row[at].as_str(), row[at + 1].as_str()),
                (source_row.as_str(), source.as_str()),
                "origin of row {number}"
            );
            row.drain(at..at + 2);
        }
        self.header.drain(at..at + 2);
    }

    pub fn index(&self, column: &str) -> usize {
        self.header
            .iter()
            .position(|h| h == column)
            .unwrap_or_else(|| panic!("no column {column} in {:?}", self.header))
    }

    pub fn column(&self, column: &str) -> Vec<&str> {
        let i = self.index(column);
        self.rows.iter().map(|r| r[i].as_str()).collect()
    }

    pub fn ferry_rows(&self) -> Vec<u64> {
        self.column("ferry_row")
            .into_iter()
            .map(|r| r.parse().unwrap_or_else(|_| panic!("ferry_row {r:?}")))
            .collect()
    }

    /// The row whose `ferry_row` is `row`.
    pub fn row(&self, row: u64) -> &[String] {
        let i = self.index("ferry_row");
        self.rows
            .iter()
            .find(|r| r[i] == row.to_string())
            .unwrap_or_else(|| panic!("no ferry_row {row} in {:?}", self.rows))
    }

    pub fn cell(&self, row: u64, column: &str) -> &str {
        &self.row(row)[self.index(column)]
    }

    /// Header, then rows in `ferry_row` order, with generated values replaced by
    /// placeholders: `<uuid>` for each X-Request-Id (their count is kept), `<task_num>`
    /// for an arctos task number (`YYYYMMDD` + 7 digits), `<quanshi-request-id>` and
    /// `<call-id>` for Quanshi's. A value that does not have its expected shape is left
    /// as it is, so the comparison shows it.
    pub fn normalised(&self) -> Vec<Vec<String>> {
        let row_col = self.index("ferry_row");
        let mut rows = self.rows.clone();
        rows.sort_by_key(|r| r[row_col].parse::<u64>().unwrap_or(u64::MAX));
        for row in &mut rows {
            for (name, cell) in self.header.iter().zip(row.iter_mut()) {
                *cell = match name.as_str() {
                    "ferry_request_id" | "ferry_server_request_id" if !cell.is_empty() => cell
                        .split(';')
                        .map(|id| {
                            if is_uuid(id) {
                                "<uuid>"
                            } else if is_quanshi_request_id(id) {
                                "<quanshi-request-id>"
                            } else {
                                id
                            }
                        })
                        .collect::<Vec<_>>()
                        .join(";"),
                    "ferry_remote_id" if is_task_num(cell) => "<task_num>".into(),
                    "ferry_remote_id" if is_object_id(cell) => "<call-id>".into(),
                    _ => cell.clone(),
                };
            }
        }
        std::iter::once(self.header.clone()).chain(rows).collect()
    }
}

pub fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

/// `YYYYMMDD` + 7 digits.
pub fn is_task_num(s: &str) -> bool {
    s.len() == 15 && s.bytes().all(|b| b.is_ascii_digit()) && s.starts_with("20")
}

/// Quanshi's `<server ip>_<yyyyMMdd>_<HHmmss>_<millis>`.
fn is_quanshi_request_id(s: &str) -> bool {
    let parts: Vec<&str> = s.split('_').collect();
    parts.len() == 4
        && parts[0].parse::<std::net::IpAddr>().is_ok()
        && parts[1..]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Quanshi record ids: 24 hex digits, like a MongoDB ObjectId.
fn is_object_id(s: &str) -> bool {
    s.len() == 24 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A run's report folder, read back.
pub struct Reports {
    pub dir: PathBuf,
    pub succeeded: Table,
    pub failed: Table,
    pub skipped: Table,
    pub unprocessed: Table,
    pub summary: Value,
}

pub const SUCCEEDED_COLUMNS: [&str; 7] = [
    "ferry_row",
    "ferry_key",
    "ferry_remote_id",
    "ferry_request_id",
    "ferry_server_request_id",
    "ferry_attempts",
    "ferry_warning",
];

pub const FAILED_COLUMNS: [&str; 10] = [
    "ferry_row",
    "ferry_key",
    "ferry_stage",
    "ferry_error_code",
    "ferry_error",
    "ferry_field",
    "ferry_http_status",
    "ferry_request_id",
    "ferry_server_request_id",
    "ferry_attempts",
];

/// The origin columns every report table has after its ferry columns.
pub const ORIGIN_COLUMNS: [&str; 2] = ["ferry_source_row", "ferry_source"];

impl Reports {
    /// The reports of a run of a manifest that is no fed-back report: every row's origin
    /// is checked to be itself (`ferry_source_row` = `ferry_row`, `ferry_source` = the
    /// manifest's id), and the two origin columns are then left out of the tables.
    pub fn read(dir: &Path) -> Reports {
        let mut reports = Reports::read_with_origins(dir);
        let id = reports.manifest_id();
        for table in [
            &mut reports.succeeded,
            &mut reports.failed,
            &mut reports.skipped,
            &mut reports.unprocessed,
        ] {
            table.check_and_drop_origins(|row| (row.to_string(), id.clone()));
        }
        reports
    }

    /// The reports as written, origin columns included.
    pub fn read_with_origins(dir: &Path) -> Reports {
        let summary_path = dir.join("summary.json");
        let summary = std::fs::read(&summary_path)
            .unwrap_or_else(|e| panic!("{}: {e}", summary_path.display()));
        Reports {
            dir: dir.to_path_buf(),
            succeeded: Table::read(&dir.join("succeeded.csv")),
            failed: Table::read(&dir.join("failed.csv")),
            skipped: Table::read(&dir.join("skipped.csv")),
            unprocessed: Table::read(&dir.join("unprocessed.csv")),
            summary: serde_json::from_slice(&summary).expect("summary.json is JSON"),
        }
    }

    /// The manifest's id in `ferry_source`: the first 16 hex digits of its SHA-256.
    pub fn manifest_id(&self) -> String {
        let sha = self.summary["manifest_sha256"]
            .as_str()
            .expect("summary.manifest_sha256");
        sha.get(..16).unwrap_or_default().to_string()
    }

    pub fn tables(&self) -> [(&'static str, &Table); 4] {
        [
            ("succeeded", &self.succeeded),
            ("failed", &self.failed),
            ("skipped", &self.skipped),
            ("unprocessed", &self.unprocessed),
        ]
    }

    pub fn counts(&self) -> &Value {
        &self.summary["counts"]
    }

    /// The SPEC §6 invariant: every input row (`rows`) in exactly one report file, and
    /// `summary.json`'s counts equal to the files' rows, with
    /// `total = succeeded + failed + skipped + unprocessed`.
    pub fn assert_accounts_for(&self, rows: impl IntoIterator<Item = u64>) {
        let expected: BTreeSet<u64> = rows.into_iter().collect();
        let mut seen: BTreeMap<u64, Vec<&str>> = BTreeMap::new();
        for (name, table) in self.tables() {
            for row in table.ferry_rows() {
                seen.entry(row).or_default().push(name);
            }
        }
        let twice: Vec<_> = seen.iter().filter(|(_, files)| files.len() > 1).collect();
        assert!(twice.is_empty(), "rows reported more than once: {twice:?}");
        let reported: BTreeSet<u64> = seen.keys().copied().collect();
        let missing: Vec<_> = expected.difference(&reported).collect();
        let extra: Vec<_> = reported.difference(&expected).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{}: rows missing from the reports {missing:?}, rows that are not in the manifest {extra:?}",
            self.dir.display()
        );

        let c = self.counts();
        let n = |k: &str| c[k].as_u64().unwrap_or_else(|| panic!("counts.{k} in {c}"));
        assert_eq!(n("total"), expected.len() as u64, "counts.total: {c}");
        assert_eq!(
            n("succeeded"),
            self.succeeded.rows.len() as u64,
            "counts.succeeded: {c}"
        );
        assert_eq!(
            n("failed_total"),
            self.failed.rows.len() as u64,
            "counts.failed_total: {c}"
        );
        assert_eq!(
            n("skipped"),
            self.skipped.rows.len() as u64,
            "counts.skipped: {c}"
        );
        assert_eq!(
            n("unprocessed"),
            self.unprocessed.rows.len() as u64,
            "counts.unprocessed: {c}"
        );
        assert_eq!(
            n("total"),
            n("succeeded") + n("failed_total") + n("skipped") + n("unprocessed"),
            "total = succeeded + failed + skipped + unprocessed: {c}"
        );
        let mut by_stage: BTreeMap<String, u64> = BTreeMap::new();
        for stage in self.failed.column("ferry_stage") {
            *by_stage.entry(stage.to_string()).or_default() += 1;
        }
        let summary_stages: BTreeMap<String, u64> = c["failed"]
            .as_object()
            .expect("counts.failed by stage")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_u64().expect("a count")))
            .filter(|(_, v)| *v > 0)
            .collect();
        assert_eq!(
            summary_stages, by_stage,
            "counts.failed by stage vs failed.csv"
        );

        assert_eq!(
            self.succeeded.header[..7],
            SUCCEEDED_COLUMNS,
            "succeeded.csv columns"
        );
        for (name, table) in &self.tables()[1..] {
            assert_eq!(table.header[..10], FAILED_COLUMNS, "{name}.csv columns");
        }
    }

    pub fn exit_code(&self) -> i64 {
        self.summary["exit_code"]
            .as_i64()
            .expect("summary.exit_code")
    }

    pub fn requests_sent(&self) -> u64 {
        self.summary["requests"]["sent"]
            .as_u64()
            .expect("requests.sent")
    }
}

/// Header of the generated appointments manifests; `note` is a column ferry does not
/// know, carried through to the reports.
pub const APPOINTMENTS_HEADER: &str =
    "business_id,out_task_num,task_type,task_notify,task_time,branch_code,business_code,room_type,video,note";

/// The cells of a valid appointment row.
pub fn appointment_cells(out_task_num: &str) -> Vec<String> {
    [
        "15",
        out_task_num,
        "normal",
        "false",
        "1796094000",
        "943",
        "2",
        "normal",
        "true",
        "generated",
    ]
    .map(str::to_string)
    .to_vec()
}

/// `n` valid appointments `{prefix}-0000`…; row `i` is on spreadsheet row `i + 2`.
pub fn appointments_csv(prefix: &str, n: usize) -> String {
    let mut csv = format!("{APPOINTMENTS_HEADER}\n");
    for i in 0..n {
        csv.push_str(&appointment_cells(&format!("{prefix}-{i:04}")).join(","));
        csv.push('\n');
    }
    csv
}

/// Spreadsheet rows 2..=n+1: the rows of a CSV manifest of `n` records.
pub fn csv_rows(n: usize) -> impl Iterator<Item = u64> {
    2..(n as u64 + 2)
}

/// A valid mainland-China mobile number: `181` and eight digits.
pub fn cn_mobile(i: usize) -> String {
    format!("181{:08}", i)
}

/// The `ferry_warning` cells of `succeeded.csv` that carry the `existed_before` warning.
pub fn existed_before_rows(table: &Table) -> Vec<u64> {
    let warning = table.index("ferry_warning");
    let row = table.index("ferry_row");
    table
        .rows
        .iter()
        .filter(|r| r[warning].starts_with("existed_before:"))
        .map(|r| r[row].parse().expect("ferry_row"))
        .collect()
}
