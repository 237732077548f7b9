//! The crash test (SPEC §5): `ferry run` killed with SIGKILL at random moments, again and
//! again on the same state file, then finished, then finished with `--retry-unknown`.
//! No row may be lost, none created twice, and every deliberate resend must be one the
//! vendor already had.

use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::run_support::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const ROWS: usize = 2_000;
const KILLS: usize = 5;

fn run_args<'a>(dir: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "run",
        "appointments.csv",
        "--kind",
        "appointments",
        "--state",
        "state.db",
        "--report-dir",
        dir,
    ];
    args.extend_from_slice(extra);
    args
}

#[test]
fn runs_killed_at_random_moments_lose_no_row_and_create_none_twice() {
    let started = Instant::now();
    let ws = Workspace::new();
    let sandbox = Sandbox::start(ws.path(), &["--latency-ms", "5"]);
    ws.config_for(
        &sandbox,
        "rate = 1000\nburst = 50\nconcurrency = 8\ntimeout_secs = 10\nmax_retries = 5",
    );
    ws.write("appointments.csv", &appointments_csv("CRASH", ROWS));

    // Seeded, so that a failure can be replayed with the same kill times.
    let mut rng = StdRng::seed_from_u64(0x5eed_f3e7);
    let mut killed = 0;
    for round in 0..KILLS {
        let dir = format!("killed{round}");
        let log = std::fs::File::create(ws.join(&format!("{dir}.log"))).expect("log file");
        let mut child = ws
            .command(&run_args(&dir, &[]))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("ferry starts");
        let after = Duration::from_millis(rng.random_range(100..=900));
        std::thread::sleep(after);
        // SAFETY: signalling our own child, whose pid we hold.
        let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGKILL) };
        assert_eq!(rc, 0, "kill(SIGKILL)");
        let status = child.wait().expect("wait for ferry");
        if status.signal() == Some(libc::SIGKILL) {
            killed += 1;
        } else {
            // It finished first: still a valid step, but the test wants crashes.
            eprintln!("round {round}: ferry finished before the kill after {after:?}: {status:?}");
        }
        let stats = sandbox.stats();
        eprintln!(
            "round {round}: killed after {after:?}; created so far {}, duplicates {}",
            count(&stats, &["created", "appointments"]),
            count(&stats, &["duplicates_rejected", "appointments"]),
        );
        // Nothing is ever sent twice by a plain run, killed or not.
        assert_eq!(
            count(&stats, &["duplicates_rejected", "appointments"]),
            0,
            "{stats}"
        );
    }
    assert!(
        killed >= KILLS - 1,
        "only {killed} of {KILLS} runs were killed mid-way"
    );
    let created_by_killed_runs = count(&sandbox.stats(), &["created", "appointments"]);
    assert!(
        created_by_killed_runs > 0 && created_by_killed_runs < ROWS as u64,
        "the kills should land mid-run: {created_by_killed_runs} created"
    );

    // Once more to the end: every row is accounted for; the ones whose outcome the
    // kills made unknown are reported as such and not sent.
    let out = ws.ferry(&run_args("finish", &[]));
    assert!(matches!(out.code, 0 | 1), "{out:?}");
    let finish = Reports::read(&ws.join("finish"));
    finish.assert_accounts_for(csv_rows(ROWS));
    assert!(finish.unprocessed.rows.is_empty());
    assert!(
        finish
            .failed
            .column("ferry_stage")
            .iter()
            .all(|s| *s == "unknown"),
        "only unknown outcomes may fail: {:?}",
        finish.failed.rows.first()
    );
    let unknown: BTreeSet<u64> = finish.failed.ferry_rows().into_iter().collect();
    assert_eq!(out.code, if unknown.is_empty() { 0 } else { 1 });
    let stats = sandbox.stats();
    assert_eq!(
        count(&stats, &["duplicates_rejected", "appointments"]),
        0,
        "{stats}"
    );

    // And with --retry-unknown: the unknown rows are sent again on purpose.
    ws.ferry(&run_args("retry", &["--retry-unknown"])).expect(0);
    let retry = Reports::read(&ws.join("retry"));
    retry.assert_accounts_for(csv_rows(ROWS));
    assert!(retry.failed.rows.is_empty() && retry.unprocessed.rows.is_empty());
    let resent: BTreeSet<u64> = retry.succeeded.ferry_rows().into_iter().collect();
    assert_eq!(resent, unknown, "exactly the unknown rows are sent again");
    let existed: BTreeSet<u64> = existed_before_rows(&retry.succeeded).into_iter().collect();
    for row in &resent {
        // A resend the vendor did not have yet creates the task and gets its number.
        let remote_id = retry.succeeded.cell(*row, "ferry_remote_id");
        assert_eq!(
            remote_id.is_empty(),
            existed.contains(row),
            "row {row}: remote id {remote_id:?}"
        );
    }

    let stats = sandbox.stats();
    eprintln!(
        "{} unknown after {killed} kills, {} existed before; {stats}",
        unknown.len(),
        existed.len()
    );
    assert_eq!(
        count(&stats, &["duplicates_rejected", "appointments"]),
        existed.len() as u64,
        "every duplicate the sandbox saw must be a deliberate resend answered `already exists`"
    );
    assert_eq!(
        count(&stats, &["created", "appointments"]),
        ROWS as u64,
        "every row created once"
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
}
