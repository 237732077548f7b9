//! One run at a time per state. Two runs of one manifest on one state would both find
//! every row unsent and send it twice, and each would take the other's rows in flight for
//! unknown outcomes. So a run holds an exclusive lock on `<state>.lock` for its whole
//! life: an OS file lock (`flock`), which the kernel releases when the process dies,
//! even by `kill -9`, so a crashed run never leaves a stale lock behind. The file's
//! content says who holds it, for the message a second run prints.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// How often a run waiting with `--wait-lock` tries again.
const POLL: Duration = Duration::from_millis(200);

/// Who holds a state: written into the lock file by the holder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    pub host: String,
    pub started_at: String,
    pub manifest: String,
}

impl Holder {
    /// This process, running `manifest`.
    pub fn me(manifest: &str) -> Holder {
        Holder {
            pid: std::process::id(),
            host: host_name(),
            started_at: chrono::Utc::now().to_rfc3339(),
            manifest: manifest.to_string(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{}", held_message(.state, .holder.as_ref(), .waited))]
    Held {
        state: PathBuf,
        holder: Option<Holder>,
        waited: Option<Duration>,
    },
    #[error("cannot lock the state {}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the lock file {} was deleted or replaced while this run held it, so another run could take the same state; this run stopped: never delete a ferry lock file (the system releases it when its run ends)", .0.display())]
    Replaced(PathBuf),
}

fn held_message(state: &Path, holder: Option<&Holder>, waited: &Option<Duration>) -> String {
    let who = match holder {
        Some(h) => format!(
            "another ferry run holds the state {} (pid {} on {}, started {}, manifest {})",
            state.display(),
            h.pid,
            h.host,
            h.started_at,
            h.manifest
        ),
        None => format!("another ferry run holds the state {}", state.display()),
    };
    match waited {
        Some(w) => format!(
            "{who}, still after waiting {} s; nothing was sent: run again once it has finished",
            w.as_secs()
        ),
        None => format!(
            "{who}; nothing was sent: run again once it has finished, or pass --wait-lock SECS to wait for it (for cron jobs that may overlap)"
        ),
    }
}

/// The held lock; dropping it (or the process ending) releases it.
#[derive(Debug)]
pub struct StateLock {
    file: File,
    path: PathBuf,
}

/// The lock file of a state database.
pub fn lock_path(state: &Path) -> PathBuf {
    let mut name = state.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

impl StateLock {
    /// Takes the lock of `state`, waiting up to `wait` for another run to finish.
    pub fn acquire(
        state: &Path,
        me: &Holder,
        wait: Option<Duration>,
    ) -> Result<StateLock, LockError> {
        let io = |source| LockError::Io {
            path: lock_path(state),
            source,
        };
        if let Some(parent) = state.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        // One state, one lock, however the path is spelled: relative or absolute, or
        // through a symbolic link to the file or to a folder on the way.
        let path = lock_path(&resolve(state).map_err(io)?);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        // Never truncated on open: the holder's details must stay readable to others.
        let open = || {
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(io)
        };
        let mut file = open()?;
        let started = Instant::now();
        let mut told = false;
        loop {
            match file.try_lock() {
                // Locked, but maybe a file someone deleted or replaced after we opened
                // it: then the lock guards nothing. Open the file now there and again.
                Ok(()) if !same_file(&file, &path) => file = open()?,
                Ok(()) => break,
                Err(TryLockError::Error(e)) => return Err(io(e)),
                Err(TryLockError::WouldBlock) => {
                    let holder = read_holder(&mut file);
                    let deadline = wait.filter(|w| started.elapsed() < *w);
                    if deadline.is_none() {
                        return Err(LockError::Held {
                            state: state.to_path_buf(),
                            holder,
                            waited: wait,
                        });
                    }
                    if !told {
                        told = true;
                        let h = holder.as_ref();
                        tracing::info!(
                            state = %state.display(),
                            holder_pid = h.map(|h| h.pid),
                            holder_host = h.map(|h| h.host.as_str()),
                            holder_started_at = h.map(|h| h.started_at.as_str()),
                            holder_manifest = h.map(|h| h.manifest.as_str()),
                            "another run holds the state: waiting for it (--wait-lock)"
                        );
                    }
                    std::thread::sleep(POLL);
                }
            }
        }
        let details = serde_json::to_vec(me).unwrap_or_default();
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(&details))
            .and_then(|()| file.flush())
            .map_err(io)?;
        Ok(StateLock { file, path })
    }

    /// Fails once the lock file was deleted or replaced: a second run could then take
    /// a lock of its own and send the same rows. (The file is never stale: the kernel
    /// releases the lock when its holder ends, so there is no reason to delete it.)
    pub fn check(&self) -> Result<(), LockError> {
        if same_file(&self.file, &self.path) {
            Ok(())
        } else {
            Err(LockError::Replaced(self.path.clone()))
        }
    }
}

/// Whether `path` still names the open `file`.
fn same_file(file: &File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (file.metadata(), std::fs::metadata(path)) {
            (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (file, path);
        true
    }
}

/// The state's real path: the file's own, when it exists; else its folder's, joined
/// with its name.
fn resolve(state: &Path) -> std::io::Result<PathBuf> {
    if let Ok(real) = std::fs::canonicalize(state) {
        return Ok(real);
    }
    let folder = match state.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = state.file_name().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the state path names no file",
        )
    })?;
    Ok(std::fs::canonicalize(folder)?.join(name))
}

/// The holder's details; `None` while a new holder has not written them yet.
fn read_holder(file: &mut File) -> Option<Holder> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.take(4096).read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "an unknown host".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_one_state_is_refused_naming_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("s").join("state.db");
        let first = Holder::me("calls.csv");
        let held = StateLock::acquire(&state, &first, None).unwrap();
        let err = StateLock::acquire(&state, &Holder::me("other.csv"), None).unwrap_err();
        let LockError::Held { holder, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(holder.as_ref(), Some(&first));
        let message = err.to_string();
        for part in [
            "another ferry run holds the state",
            "calls.csv",
            "--wait-lock",
        ] {
            assert!(message.contains(part), "{part}: {message}");
        }
        // Waiting gives up after the time allowed, and says so.
        let err = StateLock::acquire(&state, &first, Some(Duration::from_millis(300))).unwrap_err();
        assert!(err.to_string().contains("still after waiting"), "{err}");
        // Released on drop: the next run gets it.
        drop(held);
        StateLock::acquire(&state, &first, None).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn one_state_has_one_lock_however_its_path_is_spelled() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("data");
        std::fs::create_dir_all(&real).unwrap();
        std::fs::write(real.join("state.db"), "").unwrap();
        let linked_folder = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &linked_folder).unwrap();
        let linked_file = dir.path().join("state-link.db");
        std::os::unix::fs::symlink(real.join("state.db"), &linked_file).unwrap();
        let _held = StateLock::acquire(&real.join("state.db"), &Holder::me("a"), None).unwrap();
        for other in [
            linked_folder.join("state.db"),
            linked_file,
            real.join(".").join("state.db"),
        ] {
            let got = StateLock::acquire(&other, &Holder::me("b"), None);
            assert!(
                matches!(got, Err(LockError::Held { .. })),
                "{}: {got:?}",
                other.display()
            );
        }
    }

    #[test]
    fn a_deleted_lock_file_is_noticed_by_its_holder() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.db");
        let held = StateLock::acquire(&state, &Holder::me("a"), None).unwrap();
        assert!(held.check().is_ok());
        std::fs::remove_file(lock_path(&state)).unwrap();
        assert!(held
            .check()
            .unwrap_err()
            .to_string()
            .contains("was deleted or replaced"));
    }

    #[test]
    fn a_waiting_run_gets_the_lock_once_the_holder_is_done() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.db");
        let held = StateLock::acquire(&state, &Holder::me("a.csv"), None).unwrap();
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(400));
            drop(held);
        });
        let got = StateLock::acquire(&state, &Holder::me("b.csv"), Some(Duration::from_secs(30)));
        releaser.join().unwrap();
        assert!(got.is_ok(), "{got:?}");
    }
}
