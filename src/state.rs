//! The state database (SQLite, `--state`): for every record key of a target and kind,
//! whether it is in flight, succeeded (with remote id and request ids), failed or
//! unknown. It makes re-runs idempotent and lets a killed run be finished.
//!
//! A row is marked `in_flight` durably before its request leaves, so a crash at any
//! moment leaves either a final status or `in_flight`, which the next run treats as an
//! unknown outcome (never silently sent again, except task-status, whose updates are
//! idempotent). WAL with `synchronous=NORMAL` survives a killed process; commits are
//! grouped by the recorder, never one transaction per row.
//!
//! A run writes to `pending`, a table without an index, at its end: marks and outcomes
//! cost an append each instead of an entry at a random place of the key index. When
//! the run ends — or, after a crash, when the state is next opened — `pending` is merged
//! into `rows` in key order in one transaction ([`State::merge`]), with the same rule
//! that a recorded success is never forgotten. Until then the state is layout 3, which
//! a ferry that does not know `pending` refuses rather than miss what it holds.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::outcome::Failure;

/// What the state knows of a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    InFlight,
    Succeeded,
    Failed,
    Unknown,
    /// Marked in flight, then not sent after all (the run stopped first: refused
    /// authentication, an interrupt): a later run sends it like a new row.
    NotSent,
}

impl Status {
    fn as_str(&self) -> &'static str {
        match self {
            Status::InFlight => "in_flight",
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::Unknown => "unknown",
            Status::NotSent => "not_sent",
        }
    }

    fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "in_flight" => Status::InFlight,
            "succeeded" => Status::Succeeded,
            "failed" => Status::Failed,
            "unknown" => Status::Unknown,
            "not_sent" => Status::NotSent,
            _ => return None,
        })
    }
}

/// One key's record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub status: Status,
    pub remote_id: Option<String>,
    pub request_ids: String,
    /// The run that decided the status (for a success: the run that made it).
    pub run_id: String,
    /// When that run recorded it (RFC 3339).
    pub updated_at: String,
    /// What went wrong, for a failed or unknown status.
    pub error: Option<Failure>,
}

/// An update the recorder applies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Update {
    pub key: String,
    pub status: Status,
    pub remote_id: Option<String>,
    pub request_ids: String,
    /// What went wrong, for a failed or unknown outcome.
    pub error: Option<Failure>,
}

/// A key sent (or found done) for a row fed back from an earlier manifest: recorded so
/// that `ferry reconcile` of that manifest finds the key even when the fix changed it (a
/// corrected phone number is another key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// The earlier manifest's id (`ferry_source`) and row (`ferry_source_row`).
    pub manifest: String,
    pub row: u64,
    pub key: String,
}

impl Update {
    /// An update with no error.
    pub fn new(
        key: String,
        status: Status,
        remote_id: Option<String>,
        request_ids: String,
    ) -> Update {
        Update {
            key,
            status,
            remote_id,
            request_ids,
            error: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state database {path}: {source}{}", full_hint(source))]
    Sqlite {
        path: String,
        source: rusqlite::Error,
    },
    #[error("state database {path}: cannot create its folder: {source}")]
    Folder {
        path: String,
        source: std::io::Error,
    },
    /// The file was deleted or replaced while a run had it open: its writes would go to
    /// a file nobody will read again.
    #[error("state database {path}: {what} while the run was using it; the run stopped so that no outcome is lost: restore the state file, then run again")]
    Gone { path: String, what: &'static str },
    /// The database is missing but its write-ahead log is not: it was deleted or moved
    /// while a connection had it open (a clean close removes the log). A new state in
    /// its place would send again every row it recorded.
    #[error("state database {path} is missing, but its journal {path}-wal is here: the database was deleted or moved, perhaps while a run was using it. Nothing was sent. Restore it and run again; a new state would send again every row it recorded. To start afresh on purpose, delete {path}-wal and {path}-shm too")]
    Orphaned { path: String },
    #[error("state database {path} was written by a newer ferry (layout {found}; this one knows layouts up to {PENDING_LAYOUT}): run that version, or give a new --state file")]
    Newer { path: String, found: i64 },
}

/// SQLite's "disk is full" may be about its temporary files, which go to TMPDIR, not
/// to the state's own disk: say where they went, since the state's disk may have room.
fn full_hint(error: &rusqlite::Error) -> String {
    if error.sqlite_error_code() != Some(rusqlite::ErrorCode::DiskFull) {
        return String::new();
    }
    let temp = std::env::temp_dir();
    format!(
        " (the state's disk, or the one of SQLite's temporary files: {}, which TMPDIR sets)",
        temp.display()
    )
}

/// A connection to the state for one target and kind.
pub struct State {
    conn: Connection,
    path: String,
    /// The file's (device, inode) when it was opened, to notice it vanish or be replaced.
    identity: Option<(u64, u64)>,
    target: String,
    kind: String,
    /// The `pending` row of each key marked in flight by this connection, for its
    /// outcome to replace.
    marked: std::collections::HashMap<String, i64>,
    /// Whether `pending` may hold rows (the layout is then 3).
    unmerged: bool,
}

/// The layout this build reads and writes, kept in SQLite's `user_version`.
/// 0: ferry 0.1.0, whose calls keys held a number's digits as the cell wrote them;
/// 1: calls keyed by the number's E.164 form, so one number has one key;
/// 2: each row's last error, and the rows of earlier manifests that fed-back keys came
///    from (`sources`), for `ferry reconcile`.
const SCHEMA_VERSION: i64 = 2;
/// Layout 2 with rows in `pending` not merged yet: a ferry that knows only layout 2
/// refuses it (it would not see them), and this one merges them when it opens it.
const PENDING_LAYOUT: i64 = 3;

/// Pages the write-ahead log grows to before it is copied into the database (SQLite's
/// default is 1,000): 40 MB of disk at 4 KiB a page, no memory.
const WAL_PAGES: i64 = 10_000;

/// How long a statement waits for a lock another process holds on the database.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

// `rows` is a rowid table with a unique index on the key, not a table clustered on the
// key: keys arrive in no order (hashes of phone numbers, in effect), and a clustered
// table then rewrites a random page for every write, twice per row (in flight, then
// its outcome). Rows now go to the table's end, and reach it through `pending` in key
// order (`State::merge`), so the index too is written in order. The unique index is
// what `ON CONFLICT` names, so
// every ferry that knows layout 2 (and 0.1.0, which ignores the version) reads and
// writes this form unchanged: the version stays 2.
const ROWS: &str = "CREATE TABLE IF NOT EXISTS rows";

/// What runs recorded since the last merge, in the order they recorded it: the columns
/// of `rows`, no index (`State::merge`).
const PENDING: &str = "CREATE TABLE IF NOT EXISTS pending";

/// The columns of `rows` and `pending`.
const COLUMN_TYPES: &str = "(
    target      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    key         TEXT NOT NULL,
    status      TEXT NOT NULL,
    remote_id   TEXT,
    request_ids TEXT NOT NULL DEFAULT '',
    run_id      TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    error       TEXT
)";

/// How a recorded key takes a newer record (`excluded`): a recorded success is never
/// forgotten — a --force resend that fails (already exists) or dies must not make it
/// look undone, nor take the run and time that made it.
const KEEP_SUCCESS: &str = "
ON CONFLICT (target, kind, key) DO UPDATE SET
    status = CASE WHEN rows.status = 'succeeded' THEN 'succeeded' ELSE excluded.status END,
    remote_id = COALESCE(excluded.remote_id, rows.remote_id),
    request_ids = CASE WHEN rows.status = 'succeeded' AND excluded.status <> 'succeeded'
                       THEN rows.request_ids ELSE excluded.request_ids END,
    run_id = CASE WHEN rows.status = 'succeeded' AND excluded.status <> 'succeeded'
                  THEN rows.run_id ELSE excluded.run_id END,
    updated_at = CASE WHEN rows.status = 'succeeded' AND excluded.status <> 'succeeded'
                      THEN rows.updated_at ELSE excluded.updated_at END,
    error = CASE WHEN rows.status = 'succeeded' THEN NULL ELSE excluded.error END";

const SOURCES: &str = "
CREATE TABLE IF NOT EXISTS sources (
    target      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    manifest    TEXT NOT NULL,
    row         INTEGER NOT NULL,
    key         TEXT NOT NULL,
    PRIMARY KEY (target, kind, manifest, row, key)
) WITHOUT ROWID;
";

/// The key index of `rows`, made by [`migrate`] once the table has its rowid form.
const KEY_INDEX: &str = "CREATE UNIQUE INDEX IF NOT EXISTS rows_key ON rows (target, kind, key)";

/// The columns of `rows`, for copying it whole.
const COLUMNS: &str =
    "target, kind, key, status, remote_id, request_ids, run_id, updated_at, error";

impl State {
    pub fn open(path: &Path, target: &str, kind: &str) -> Result<State, StateError> {
        let display = path.display().to_string();
        let err = |source| StateError::Sqlite {
            path: display.clone(),
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| StateError::Folder {
                path: display.clone(),
                source,
            })?;
        }
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        if !path.exists() && Path::new(&wal).exists() {
            return Err(StateError::Orphaned { path: display });
        }
        let mut conn = Connection::open(path).map_err(err)?;
        // Other ferry runs are kept out by the run lock; only a foreign process (a
        // sqlite3 shell, a backup) can hold the database. Waiting longer than this for
        // it would look like a hang: the run stops instead (exit 3 once sending began).
        conn.busy_timeout(BUSY_TIMEOUT).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err)?;
        // A small page cache keeps memory flat however many keys the state holds.
        conn.pragma_update(None, "cache_size", -2000).map_err(err)?;
        // Random keys make every commit write pages all over the key index; a longer
        // write-ahead log between checkpoints writes each such page (and syncs) once for
        // many commits rather than once for a few.
        conn.pragma_update(None, "wal_autocheckpoint", WAL_PAGES)
            .map_err(err)?;
        conn.execute_batch(&format!("{ROWS} {COLUMN_TYPES}"))
            .map_err(err)?;
        conn.execute_batch(SOURCES).map_err(err)?;
        conn.execute_batch(&format!("{PENDING} {COLUMN_TYPES}"))
            .map_err(err)?;
        match migrate(&mut conn).map_err(err)? {
            found if found > PENDING_LAYOUT => {
                return Err(StateError::Newer {
                    path: display,
                    found,
                })
            }
            _ => {}
        }
        let mut state = State {
            conn,
            identity: file_identity(path),
            path: display,
            target: target.to_string(),
            kind: kind.to_string(),
            marked: std::collections::HashMap::new(),
            unmerged: true,
        };
        // What a run that was killed left pending is merged before anyone reads.
        state.merge()?;
        Ok(state)
    }

    /// Moves what `pending` holds into `rows`, in key order (each key's records in the
    /// order they were made), in one transaction: a crash leaves all of it pending or
    /// none. Safe at any time — an outcome whose mark was merged meanwhile is appended
    /// again (`apply`) — and cheap when nothing is pending.
    pub fn merge(&mut self) -> Result<(), StateError> {
        if !self.unmerged {
            return Ok(());
        }
        let path = &self.path;
        let err = |source| StateError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let layout: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(err)?;
        let any: bool = tx
            .query_row("SELECT EXISTS (SELECT 1 FROM pending)", [], |r| r.get(0))
            .map_err(err)?;
        if !any && layout == SCHEMA_VERSION {
            self.unmerged = false;
            return Ok(());
        }
        tx.execute_batch(&format!(
            "INSERT INTO rows ({COLUMNS}) SELECT {COLUMNS} FROM pending WHERE true
             ORDER BY target, kind, key, rowid {KEEP_SUCCESS};
             DELETE FROM pending;"
        ))
        .map_err(err)?;
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(err)?;
        tx.commit().map_err(err)?;
        self.unmerged = false;
        self.marked.clear();
        Ok(())
    }

    fn err(&self, source: rusqlite::Error) -> StateError {
        StateError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// The record of a key, if any run has touched it.
    pub fn get(&self, key: &str) -> Result<Option<Entry>, StateError> {
        self.get_in(&self.kind, key)
    }

    fn get_in(&self, kind: &str, key: &str) -> Result<Option<Entry>, StateError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT status, remote_id, request_ids, run_id, updated_at, error FROM rows
                 WHERE target = ?1 AND kind = ?2 AND key = ?3",
            )
            .map_err(|e| self.err(e))?;
        stmt.query_row(params![self.target, kind, key], |r| {
            Ok(Entry {
                // A status this ferry cannot read is in doubt, never new: treated like
                // an unknown outcome, so the row is not sent again by accident.
                status: Status::parse(&r.get::<_, String>(0)?).unwrap_or(Status::Unknown),
                remote_id: r.get(1)?,
                request_ids: r.get(2)?,
                run_id: r.get(3)?,
                updated_at: r.get(4)?,
                // Kept as JSON; one this ferry cannot read is no error recorded.
                error: r
                    .get::<_, Option<String>>(5)?
                    .and_then(|json| serde_json::from_str(&json).ok()),
            })
        })
        .optional()
        .map_err(|e| self.err(e))
    }

    /// Whether no run has recorded any key of this target and kind yet.
    pub fn is_empty(&self) -> Result<bool, StateError> {
        self.conn
            .prepare_cached(
                "SELECT NOT EXISTS (SELECT 1 FROM rows WHERE target = ?1 AND kind = ?2)",
            )
            .and_then(|mut stmt| stmt.query_row(params![self.target, self.kind], |r| r.get(0)))
            .map_err(|e| self.err(e))
    }

    /// Whether any key was fed back from the manifest `manifest` (by its id): when none
    /// was, its rows need no lookup by origin.
    pub fn has_sources_from(&self, manifest: &str) -> Result<bool, StateError> {
        self.conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM sources
                 WHERE target = ?1 AND kind = ?2 AND manifest = ?3)",
            )
            .and_then(|mut stmt| {
                stmt.query_row(params![self.target, self.kind, manifest], |r| r.get(0))
            })
            .map_err(|e| self.err(e))
    }

    /// The keys fed back from row `row` of the manifest `manifest` (by its id).
    pub fn keys_from(&self, manifest: &str, row: u64) -> Result<Vec<String>, StateError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT key FROM sources
                 WHERE target = ?1 AND kind = ?2 AND manifest = ?3 AND row = ?4",
            )
            .map_err(|e| self.err(e))?;
        let keys = stmt
            .query_map(params![self.target, self.kind, manifest, row], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        keys.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// Fails once the file this state was opened from is gone or is another file.
    pub fn check_file(&self) -> Result<(), StateError> {
        let gone = |what| StateError::Gone {
            path: self.path.clone(),
            what,
        };
        match file_identity(Path::new(&self.path)) {
            None if self.identity.is_some() => Err(gone("the file was deleted")),
            now if now != self.identity => Err(gone("the file was replaced by another")),
            _ => Ok(()),
        }
    }

    /// The arctos `task_num` an earlier appointments run recorded for `out_task_num`.
    pub fn task_num(&self, out_task_num: &str) -> Result<Option<String>, StateError> {
        Ok(self
            .get_in(crate::kinds::Kind::Appointments.name(), out_task_num)?
            .filter(|e| e.status == Status::Succeeded)
            .and_then(|e| e.remote_id))
    }

    /// Whether the appointment of `out_task_num` succeeded without arctos giving its
    /// `task_num`: a resend (`--retry-unknown`) that arctos answered "already exists".
    pub fn task_done_without_num(&self, out_task_num: &str) -> Result<bool, StateError> {
        Ok(self
            .get_in(crate::kinds::Kind::Appointments.name(), out_task_num)?
            .is_some_and(|e| e.status == Status::Succeeded && e.remote_id.is_none()))
    }

    /// Records `updates` and `links` in one transaction: the group commit. An update
    /// goes to `pending` (merged into `rows` by [`State::merge`]): a mark in flight is
    /// appended, and the outcome that follows replaces it.
    pub fn apply(
        &mut self,
        run_id: &str,
        updates: &[Update],
        links: &[Link],
    ) -> Result<(), StateError> {
        if updates.is_empty() && links.is_empty() {
            return Ok(());
        }
        let now = chrono::Utc::now().to_rfc3339();
        let path = &self.path;
        let err = |source| StateError::Sqlite {
            path: path.clone(),
            source,
        };
        // Immediate: a deferred transaction reads (`user_version`) before it writes, and
        // when another connection commits in between (a `reconcile`'s merge) SQLite
        // refuses the write at once, busy timeout or not: the run stopped with
        // "database is locked". Taking the write lock first waits like any writer.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        // Read in every transaction, not remembered: another connection's merge (a
        // `reconcile`) may have set it back to 2 since this one last wrote.
        let layout: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(err)?;
        if layout != PENDING_LAYOUT {
            tx.pragma_update(None, "user_version", PENDING_LAYOUT)
                .map_err(err)?;
        }
        let mut marked = Vec::new();
        {
            let mut append = tx
                .prepare_cached(&format!(
                    "INSERT INTO pending ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
                ))
                .map_err(err)?;
            // The record is checked to be this run's mark: a merge by another
            // connection may have emptied `pending` since, and its row number been
            // given to another record (of another key, or of this key by another run,
            // whose success must not be written over).
            let mut replace = tx
                .prepare_cached(
                    "UPDATE pending SET status = ?4, remote_id = ?5, request_ids = ?6,
                        run_id = ?7, updated_at = ?8, error = ?9
                     WHERE rowid = ?10 AND target = ?1 AND kind = ?2 AND key = ?3
                       AND status = 'in_flight' AND run_id = ?7",
                )
                .map_err(err)?;
            let mut link = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO sources (target, kind, manifest, row, key)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(err)?;
            for u in updates {
                let error = u.error.as_ref().and_then(|f| serde_json::to_string(f).ok());
                let values = params![
                    self.target,
                    self.kind,
                    u.key,
                    u.status.as_str(),
                    u.remote_id,
                    u.request_ids,
                    run_id,
                    now,
                    error,
                ];
                let replaced = match self.marked.get(&u.key) {
                    Some(&at) if u.status != Status::InFlight => {
                        let mut with_row = values.to_vec();
                        with_row.push(&at);
                        replace.execute(&*with_row).map_err(err)? == 1
                    }
                    _ => false,
                };
                if !replaced {
                    append.execute(values).map_err(err)?;
                    if u.status == Status::InFlight {
                        marked.push((u.key.clone(), tx.last_insert_rowid()));
                    }
                }
            }
            for l in links {
                link.execute(params![self.target, self.kind, l.manifest, l.row, l.key])
                    .map_err(err)?;
            }
        }
        tx.commit().map_err(err)?;
        self.unmerged = true;
        for u in updates.iter().filter(|u| u.status != Status::InFlight) {
            self.marked.remove(&u.key);
        }
        self.marked.extend(marked);
        Ok(())
    }
}

fn file_identity(path: &Path) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// Brings a state written by an older ferry up to [`SCHEMA_VERSION`], in one
/// transaction so that a crash leaves the old layout whole; returns the version found
/// (a newer one is left untouched for the caller to refuse).
fn migrate(conn: &mut Connection) -> rusqlite::Result<i64> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > SCHEMA_VERSION {
        return Ok(found);
    }
    // ferry 0.1.0 ignores the layout version: one still installed somewhere, or a
    // rollback, can add old keys to a migrated state. Such keys are rekeyed too.
    let stray: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM rows WHERE kind = ?1 AND instr(key, '|+') = 0)",
        [crate::kinds::Kind::Calls.name()],
        |r| r.get(0),
    )?;
    // Before this, `rows` was clustered on its key (its primary key an index of origin
    // `pk`): such a table is copied into the rowid form below.
    let clustered: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM pragma_index_list('rows') WHERE origin = 'pk')",
        [],
        |r| r.get(0),
    )?;
    if found == SCHEMA_VERSION && !stray && !clustered {
        tx.execute_batch(KEY_INDEX)?;
        tx.commit()?;
        return Ok(found);
    }
    // Layout 2 adds a column (the `sources` table is made by SOURCES); an old ferry that
    // writes its rows leaves it empty, which reads as "no error recorded".
    let has_error: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM pragma_table_info('rows') WHERE name = 'error')",
        [],
        |r| r.get(0),
    )?;
    if !has_error {
        tx.execute_batch("ALTER TABLE rows ADD COLUMN error TEXT")?;
    }
    if clustered {
        unclustered(&tx)?;
    }
    tx.execute_batch(KEY_INDEX)?;
    if found < 1 || stray {
        rekey_calls_v0(&tx)?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    Ok(found)
}

/// Copies a `rows` clustered on its key into the rowid form, in key order, so the copy
/// appends; memory stays flat (SQLite streams it).
fn unclustered(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(&format!(
        "ALTER TABLE rows RENAME TO rows_clustered;
         {ROWS} {COLUMN_TYPES};
         INSERT INTO rows ({COLUMNS}) SELECT {COLUMNS} FROM rows_clustered ORDER BY target, kind, key;
         DROP TABLE rows_clustered;"
    ))
}

/// Version 0 keyed calls by the digits as written, so one number could hold two keys
/// (`886|0912345677` and `886|912345677`). Each key becomes `eventId|+E164`; where two
/// old keys meet, the row that says most about what the vendor has wins — a success is
/// never forgotten, and an attempt in doubt outranks a failure — so an upgrade never
/// sends again what was done. A key that is not an old call key is kept as it is.
/// Rows are streamed through a scratch table, so memory stays flat however many there are.
fn rekey_calls_v0(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    let calls = crate::kinds::Kind::Calls.name();
    tx.execute_batch(
        "CREATE TEMP TABLE rekeyed AS SELECT * FROM rows WHERE 0;
         CREATE UNIQUE INDEX temp.rekeyed_key ON rekeyed (target, kind, key);",
    )?;
    {
        let mut read = tx.prepare(
            "SELECT target, key, status, remote_id, request_ids, run_id, updated_at, error
             FROM rows WHERE kind = ?1",
        )?;
        let mut write = tx.prepare(
            "INSERT INTO rekeyed (target, kind, key, status, remote_id, request_ids, run_id, updated_at, error)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (target, kind, key) DO UPDATE SET
                status = excluded.status, remote_id = excluded.remote_id,
                request_ids = excluded.request_ids, run_id = excluded.run_id,
                updated_at = excluded.updated_at, error = excluded.error
             WHERE (CASE excluded.status WHEN 'succeeded' THEN 3 WHEN 'in_flight' THEN 2
                                         WHEN 'failed' THEN 0 ELSE 1 END)
                 > (CASE rekeyed.status  WHEN 'succeeded' THEN 3 WHEN 'in_flight' THEN 2
                                         WHEN 'failed' THEN 0 ELSE 1 END)",
        )?;
        let mut rows = read.query([calls])?;
        while let Some(row) = rows.next()? {
            let old: String = row.get(1)?;
            let key = crate::kinds::call_key_from_v0(&old).unwrap_or(old);
            write.execute(params![
                row.get::<_, String>(0)?,
                calls,
                key,
                row.get::<_, String>(2)?,
                row.get::<_, Option<String>>(3)?,
                row.get::<_, String>(4)?,
                row.get::<_, String>(5)?,
                row.get::<_, String>(6)?,
                row.get::<_, Option<String>>(7)?,
            ])?;
        }
    }
    tx.execute("DELETE FROM rows WHERE kind = ?1", [calls])?;
    tx.execute_batch("INSERT INTO rows SELECT * FROM rekeyed; DROP TABLE temp.rekeyed;")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A full TMPDIR reads as "database or disk is full" while the state's disk has room.
    #[test]
    fn a_full_disk_error_names_where_sqlite_s_temporary_files_go() {
        let full = rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(13), None);
        let e = StateError::Sqlite {
            path: "s.db".into(),
            source: full,
        };
        let temp = std::env::temp_dir();
        assert!(e.to_string().ends_with("which TMPDIR sets)"), "{e}");
        assert!(e.to_string().contains(&temp.display().to_string()), "{e}");
        let busy = rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(5), None);
        let e = StateError::Sqlite {
            path: "s.db".into(),
            source: busy,
        };
        assert!(!e.to_string().contains("TMPDIR"), "{e}");
    }

    fn update(key: &str, status: Status, remote_id: Option<&str>) -> Update {
        Update::new(
            key.into(),
            status,
            remote_id.map(str::to_string),
            "r1".into(),
        )
    }

    /// A state as an earlier ferry wrote it: `rows` clustered on its key, with the
    /// columns of layout 1 and `extra`, then the statements `then`.
    fn written_before(extra: &str, then: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(&format!(
            "CREATE TABLE rows (
                target TEXT NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL,
                status TEXT NOT NULL, remote_id TEXT, request_ids TEXT NOT NULL DEFAULT '',
                run_id TEXT NOT NULL, updated_at TEXT NOT NULL{extra},
                PRIMARY KEY (target, kind, key)) WITHOUT ROWID;
             {then}"
        ))
        .unwrap();
        (dir, path)
    }

    fn user_version(conn: &Connection) -> i64 {
        conn.query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap()
    }

    /// A first run skips its per-row lookups on this: it must see only its own target
    /// and kind.
    #[test]
    fn a_state_is_empty_for_a_target_and_kind_until_one_of_its_keys_is_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let mut state = State::open(&path, "t", "calls").unwrap();
        assert!(state.is_empty().unwrap());
        let mut other = State::open(&path, "t", "appointments").unwrap();
        other
            .apply("run1", &[update("A", Status::InFlight, None)], &[])
            .unwrap();
        assert!(state.is_empty().unwrap());
        state
            .apply(
                "run1",
                &[update("7|+8618100000030", Status::InFlight, None)],
                &[],
            )
            .unwrap();
        state.merge().unwrap();
        assert!(!state.is_empty().unwrap());
    }

    /// SPEC §5: a state row ferry cannot read is in doubt, never new.
    #[test]
    fn a_status_this_ferry_cannot_read_is_in_doubt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let mut state = State::open(&path, "t", "calls").unwrap();
        state
            .apply(
                "run1",
                &[update("7|+8618100000030", Status::Succeeded, None)],
                &[],
            )
            .unwrap();
        state.merge().unwrap();
        state
            .conn
            .execute("UPDATE rows SET status = 'bogus'", [])
            .unwrap();
        let entry = state.get("7|+8618100000030").unwrap().unwrap();
        assert_eq!(entry.status, Status::Unknown);
    }

    /// ferry 0.1.0 ignores the layout version, so old keys can appear in a migrated state
    /// (a rollback, an old binary elsewhere): they are rekeyed on the next open.
    #[test]
    fn old_call_keys_written_after_the_migration_are_rekeyed_too() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        drop(State::open(&path, "t", "calls").unwrap());
        let conn = Connection::open(&path).unwrap();
        assert_eq!(user_version(&conn), SCHEMA_VERSION);
        // As ferry 0.1.0 writes a row: its columns named, so the newer `error` stays NULL.
        conn.execute(
            "INSERT INTO rows (target, kind, key, status, remote_id, request_ids, run_id, updated_at)
             VALUES ('t', 'calls', '5|886|0912345679', 'succeeded', 'id-1', 'r', 'run0', 'now')",
            [],
        )
        .unwrap();
        drop(conn);
        let state = State::open(&path, "t", "calls").unwrap();
        assert_eq!(
            state.get("5|+886912345679").unwrap().unwrap().status,
            Status::Succeeded
        );
        assert_eq!(state.get("5|886|0912345679").unwrap(), None);
    }

    #[test]
    fn a_failure_and_the_row_a_fed_back_key_came_from_are_kept_for_reconcile() {
        use crate::outcome::{Failure, Stage};
        use crate::problem::{Code, Problem};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let mut state = State::open(&path, "t", "calls").unwrap();
        let failure = Failure {
            stage: Stage::Remote,
            problems: vec![Problem::new(
                Code::VendorRejected,
                "mobile",
                "no such number",
            )],
            http_status: Some(200),
        };
        let mut failed = update("7|+8618100000030", Status::Failed, None);
        failed.error = Some(failure.clone());
        let fixed = update("7|+8618100000031", Status::Succeeded, Some("r-9"));
        let link = Link {
            manifest: "0123456789abcdef".into(),
            row: 12,
            key: "7|+8618100000031".into(),
        };
        state.apply("run1", &[failed, fixed], &[link]).unwrap();
        drop(state);
        let state = State::open(&path, "t", "calls").unwrap();
        assert_eq!(
            state.get("7|+8618100000030").unwrap().unwrap().error,
            Some(failure)
        );
        assert_eq!(
            state.keys_from("0123456789abcdef", 12).unwrap(),
            ["7|+8618100000031"]
        );
        assert!(state.keys_from("0123456789abcdef", 11).unwrap().is_empty());
        // Another target or kind does not see them.
        let other = State::open(&path, "t", "appointments").unwrap();
        assert!(other.keys_from("0123456789abcdef", 12).unwrap().is_empty());
    }

    #[test]
    fn a_forced_resend_that_fails_keeps_the_run_and_time_of_the_success() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let mut state = State::open(&path, "t", "appointments").unwrap();
        state
            .apply("run1", &[update("A", Status::Succeeded, Some("id-1"))], &[])
            .unwrap();
        state.merge().unwrap();
        let done = state.get("A").unwrap().unwrap();
        state
            .apply("run2", &[update("A", Status::Failed, None)], &[])
            .unwrap();
        state.merge().unwrap();
        let after = state.get("A").unwrap().unwrap();
        assert_eq!(after.status, Status::Succeeded);
        assert_eq!(
            (after.run_id, after.updated_at, after.error),
            ("run1".to_string(), done.updated_at, None)
        );
    }

    #[test]
    fn a_layout_1_state_gains_the_error_column_and_keeps_its_rows() {
        let (_dir, path) = written_before(
            "",
            "INSERT INTO rows VALUES ('t', 'calls', '5|+886912345679', 'succeeded', 'id-1', 'r', 'run0', 'then');
             PRAGMA user_version = 1;",
        );
        let state = State::open(&path, "t", "calls").unwrap();
        let entry = state.get("5|+886912345679").unwrap().unwrap();
        assert_eq!(
            (entry.status, entry.remote_id.as_deref(), entry.error),
            (Status::Succeeded, Some("id-1"), None)
        );
        assert_eq!(user_version(&state.conn), SCHEMA_VERSION);
    }

    /// Issue 12: a layout-2 state as ferry wrote it before (`rows` clustered on its key)
    /// is copied into the rowid form on open, keeping every record, and is written as
    /// before afterwards.
    #[test]
    fn a_state_clustered_on_its_key_becomes_a_rowid_table_and_keeps_its_rows() {
        let (_dir, path) = written_before(
            ", error TEXT",
            "INSERT INTO rows VALUES ('t', 'calls', '5|+886912345679', 'succeeded', 'id-1', 'r', 'run0', 'then', NULL);
             INSERT INTO rows VALUES ('t', 'calls', '5|+886912345670', 'in_flight', NULL, '', 'run0', 'then', NULL);
             PRAGMA user_version = 2;",
        );
        let mut state = State::open(&path, "t", "calls").unwrap();
        let clustered: bool = state
            .conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM pragma_index_list('rows') WHERE origin = 'pk')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(!clustered);
        let done = state.get("5|+886912345679").unwrap().unwrap();
        assert_eq!(
            (done.status, done.remote_id.as_deref(), done.run_id.as_str()),
            (Status::Succeeded, Some("id-1"), "run0")
        );
        assert_eq!(
            state.get("5|+886912345670").unwrap().unwrap().status,
            Status::InFlight
        );
        // The key is still unique: an update lands on the row, never beside it.
        state
            .apply(
                "run1",
                &[update("5|+886912345670", Status::Succeeded, Some("id-2"))],
                &[],
            )
            .unwrap();
        state.merge().unwrap();
        let count: i64 = state
            .conn
            .query_row("SELECT count(*) FROM rows", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, 2);
        assert_eq!(user_version(&state.conn), SCHEMA_VERSION);
    }

    fn pending_rows(conn: &Connection) -> Vec<(String, String)> {
        let mut stmt = conn
            .prepare("SELECT key, status FROM pending ORDER BY rowid")
            .unwrap();
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
        rows.map(Result::unwrap).collect()
    }

    /// Issue 12: a run records into `pending`; killed before its merge, it leaves a
    /// layout-3 state (which a ferry that knows only layout 2 refuses), and the next
    /// open merges it before anything is read.
    #[test]
    fn a_killed_run_s_records_stay_pending_until_the_next_open_merges_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let mut state = State::open(&path, "t", "appointments").unwrap();
        let marks = [
            update("A", Status::InFlight, None),
            update("B", Status::InFlight, None),
        ];
        state.apply("run1", &marks, &[]).unwrap();
        state
            .apply("run1", &[update("A", Status::Succeeded, Some("id-1"))], &[])
            .unwrap();
        // kill -9: the connection goes without a merge.
        std::mem::forget(state);
        let raw = Connection::open(&path).unwrap();
        assert_eq!(user_version(&raw), PENDING_LAYOUT);
        // The outcome took its mark's place: one record a key.
        assert_eq!(
            pending_rows(&raw),
            [
                ("A".to_string(), "succeeded".to_string()),
                ("B".to_string(), "in_flight".to_string())
            ]
        );
        let state = State::open(&path, "t", "appointments").unwrap();
        assert_eq!(state.get("A").unwrap().unwrap().status, Status::Succeeded);
        assert_eq!(state.get("B").unwrap().unwrap().status, Status::InFlight);
        assert!(pending_rows(&raw).is_empty());
        assert_eq!(user_version(&raw), SCHEMA_VERSION);
    }

    /// A run (`run1`) that marked `A` in flight, and another connection whose opening
    /// merged that mark meanwhile, as a `reconcile` does.
    fn a_mark_merged_by_another_connection() -> (tempfile::TempDir, std::path::PathBuf, State, State)
    {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let mut run = State::open(&path, "t", "appointments").unwrap();
        run.apply("run1", &[update("A", Status::InFlight, None)], &[])
            .unwrap();
        let other = State::open(&path, "t", "appointments").unwrap();
        (dir, path, run, other)
    }

    /// Another connection may merge while a run records (a `reconcile` opening the
    /// state): an outcome whose mark is gone is recorded again, never written over the
    /// record of a key that took its place in `pending`.
    #[test]
    fn an_outcome_whose_mark_was_merged_meanwhile_is_recorded_again() {
        let (_dir, path, mut run, mut other) = a_mark_merged_by_another_connection();
        assert_eq!(other.get("A").unwrap().unwrap().status, Status::InFlight);
        let raw = Connection::open(&path).unwrap();
        assert_eq!(user_version(&raw), SCHEMA_VERSION, "merged");
        run.apply("run1", &[update("C", Status::InFlight, None)], &[])
            .unwrap();
        // Review of issue 12: the run's next records are pending again, and a ferry that
        // knows only layout 2 must still refuse the state rather than miss them.
        assert_eq!(user_version(&raw), PENDING_LAYOUT);
        other
            .apply("run2", &[update("B", Status::InFlight, None)], &[])
            .unwrap();
        run.apply("run1", &[update("A", Status::Succeeded, Some("id-1"))], &[])
            .unwrap();
        run.merge().unwrap();
        let a = run.get("A").unwrap().unwrap();
        assert_eq!(
            (a.status, a.remote_id.as_deref()),
            (Status::Succeeded, Some("id-1"))
        );
        assert_eq!(run.get("B").unwrap().unwrap().status, Status::InFlight);
    }

    /// Review of issue 12: after another connection's merge, a run's stale mark may
    /// share its row number with another run's record of the same key (one that got
    /// past the lock); a failure then must not write over that success.
    #[test]
    fn an_outcome_never_writes_over_another_run_s_record_that_took_its_mark_s_place() {
        let (_dir, path, mut run, mut other) = a_mark_merged_by_another_connection();
        other
            .apply("run2", &[update("A", Status::Succeeded, Some("id-2"))], &[])
            .unwrap();
        let raw = Connection::open(&path).unwrap();
        assert_eq!(pending_rows(&raw), [("A".into(), "succeeded".into())]);
        run.apply("run1", &[update("A", Status::Failed, None)], &[])
            .unwrap();
        run.merge().unwrap();
        let a = run.get("A").unwrap().unwrap();
        assert_eq!(
            (a.status, a.remote_id.as_deref(), a.run_id.as_str()),
            (Status::Succeeded, Some("id-2"), "run2")
        );
    }

    #[test]
    fn records_survive_reopening_and_keep_the_remote_id() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let mut state = State::open(&path, "t", "appointments").unwrap();
        state
            .apply(
                "run1",
                &[
                    update("A", Status::InFlight, None),
                    update("B", Status::InFlight, None),
                ],
                &[],
            )
            .unwrap();
        state
            .apply(
                "run1",
                &[
                    update("A", Status::Succeeded, Some("2026112300001")),
                    // Existed before: arctos gave no task_num.
                    update("D", Status::Succeeded, None),
                ],
                &[],
            )
            .unwrap();
        drop(state);

        let state = State::open(&path, "t", "appointments").unwrap();
        assert_eq!(state.get("A").unwrap().unwrap().status, Status::Succeeded);
        assert_eq!(state.get("B").unwrap().unwrap().status, Status::InFlight);
        assert_eq!(state.get("C").unwrap(), None);
        assert_eq!(
            state.task_num("A").unwrap().as_deref(),
            Some("2026112300001")
        );
        assert_eq!(state.task_num("B").unwrap(), None);
        assert_eq!(state.task_num("D").unwrap(), None);
        let without: Vec<bool> = ["A", "B", "C", "D"]
            .iter()
            .map(|k| state.task_done_without_num(k).unwrap())
            .collect();
        assert_eq!(without, [false, false, false, true]);

        // Other kinds and targets see their own keys only, but resolve tasks.
        let other = State::open(&path, "t", "moderators").unwrap();
        assert_eq!(other.get("A").unwrap(), None);
        assert_eq!(
            other.task_num("A").unwrap().as_deref(),
            Some("2026112300001")
        );
        let elsewhere = State::open(&path, "u", "appointments").unwrap();
        assert_eq!(elsewhere.get("A").unwrap(), None);
    }
}
