//! One finished `ferry` process and its report folder, read back: shared by the suites
//! that run the real binary on a manifest and check what it printed and wrote.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use tempfile::TempDir;

use crate::report_support::{self, parse_csv};

pub const BOM: &[u8] = b"\xEF\xBB\xBF";

/// One finished `ferry` process.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// The `--report-dir` it was given.
    pub reports: PathBuf,
}

impl Run {
    pub fn file(&self, name: &str) -> Vec<u8> {
        let path = self.reports.join(name);
        std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{}: {e}\nstderr: {}", path.display(), self.stderr))
    }

    /// A report CSV as written, its BOM checked and removed.
    pub fn csv_with_origins(&self, name: &str) -> String {
        let bytes = self.file(name);
        assert!(bytes.starts_with(BOM), "{name} must start with a UTF-8 BOM");
        String::from_utf8(bytes[BOM.len()..].to_vec()).expect("reports are UTF-8")
    }

    /// A report CSV of a manifest that is no fed-back report, as text without its two
    /// origin columns, after checking that every row is its own origin
    /// (`ferry_source_row` = `ferry_row`, `ferry_source` = the manifest's id).
    pub fn csv(&self, name: &str) -> String {
        let id = self.manifest_id();
        self.csv_origins(name, |row| (row.to_string(), id.clone()))
    }

    /// A report CSV as text without its two origin columns, after checking that every
    /// row's origin is `expected(ferry_row)`: (`ferry_source_row`, `ferry_source`).
    pub fn csv_origins(&self, name: &str, expected: impl Fn(&str) -> (String, String)) -> String {
        report_support::drop_origins(&self.csv_with_origins(name), expected)
    }

    /// The manifest's id in `ferry_source`: the first 16 hex digits of its SHA-256.
    pub fn manifest_id(&self) -> String {
        report_support::manifest_id(&self.summary())
    }

    /// A report CSV's records (header first), parsed, without the origin columns.
    pub fn records(&self, name: &str) -> Vec<Vec<String>> {
        parse_csv(&self.csv(name))
    }

    /// A report CSV's records as written, origin columns included.
    pub fn records_with_origins(&self, name: &str) -> Vec<Vec<String>> {
        parse_csv(&self.csv_with_origins(name))
    }

    pub fn summary(&self) -> Value {
        serde_json::from_slice(&self.file("summary.json")).expect("summary.json is JSON")
    }

    /// The one `error:` line a refused command prints.
    pub fn error(&self) -> String {
        self.stderr
            .lines()
            .find_map(|l| l.strip_prefix("error: "))
            .unwrap_or_else(|| panic!("no error line in:\n{}", self.stderr))
            .to_string()
    }
}

/// Runs `ferry <args>` in `dir` (so no `./ferry.toml` is found by accident), with the
/// report folder `dir/reports` added to a `validate`.
pub fn ferry_in(dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> Run {
    let reports = dir.join("reports");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferry"));
    cmd.args(args)
        .current_dir(dir)
        .env_remove("FERRY_CONFIG")
        .env("NO_COLOR", "1")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if args.first() == Some(&"validate") {
        cmd.arg("--report-dir").arg(&reports);
    }
    let mut child = cmd.spawn().expect("ferry starts");
    if let Some(bytes) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        pipe.write_all(bytes).expect("write stdin");
    }
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().expect("ferry finishes");
    let run = Run {
        code: status.code().expect("exited, not killed"),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        reports,
    };
    assert!(
        !run.stderr.contains("panicked") && !run.stderr.contains("RUST_BACKTRACE"),
        "ferry {args:?} panicked:\n{}",
        run.stderr
    );
    run
}

/// `ferry <command> <manifest> --kind <kind> --report-dir reports <extra>` in `dir`.
pub fn ferry(dir: &TempDir, command: &str, manifest: &Path, kind: &str, extra: &[&str]) -> Run {
    let manifest = manifest.display().to_string();
    let mut args = vec![command, manifest.as_str(), "--kind", kind];
    let reports = dir.path().join("reports").display().to_string();
    if command != "validate" {
        args.extend(["--report-dir", reports.as_str()]);
    }
    args.extend_from_slice(extra);
    ferry_in(dir.path(), &args, None)
}

/// `ferry validate <manifest> --kind <kind> <extra...>` in a fresh folder.
pub fn validate(dir: &TempDir, manifest: &Path, kind: &str, extra: &[&str]) -> Run {
    ferry(dir, "validate", manifest, kind, extra)
}

pub fn write(dir: &TempDir, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).expect("write manifest");
    path
}
