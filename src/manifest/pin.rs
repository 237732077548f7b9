//! A manifest pinned between ferry's passes. `run` validates the whole file first and
//! sends in a second pass; a file rewritten in between (a cron job that regenerates it, a
//! person saving it again) would have its new rows sent unvalidated, or the same rows
//! twice under other row numbers. So the file's identity (device, inode), size and
//! modification time are taken before the first pass and checked again as the second
//! pass reads (`check_row`), and its SHA-256 is compared once more at the end: any change
//! stops the run.

use std::fs::{File, Metadata};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// The longest a row is used without the file being looked at, when no bytes were read
/// meanwhile (rows still coming from a buffer): a change stops the run this promptly.
const RECHECK: Duration = Duration::from_millis(1);

/// What is pinned of a file.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Stamp {
    identity: Option<(u64, u64)>,
    len: u64,
    modified: Option<SystemTime>,
}

impl Stamp {
    fn of(meta: &Metadata) -> Stamp {
        #[cfg(unix)]
        let identity = {
            use std::os::unix::fs::MetadataExt;
            Some((meta.dev(), meta.ino()))
        };
        #[cfg(not(unix))]
        let identity = None;
        Stamp {
            identity,
            len: meta.len(),
            modified: meta.modified().ok(),
        }
    }
}

#[derive(Debug)]
pub struct Pin {
    path: PathBuf,
    stamp: Stamp,
    sha256: String,
    /// What the second pass reads, and whether it read since the last look.
    watch: Watch,
    /// When `check_row` last looked at the file.
    looked: Mutex<Instant>,
    /// `RECHECK`; longer in tests, so that only reads make the pin look.
    recheck: Duration,
}

/// What the pin keeps of the second pass's reading: whether the file was read since the
/// pin last looked at it, and a handle on each file read. When the name leads to the
/// pinned file no more, the handles tell whether what is being read still is it.
#[derive(Clone, Debug, Default)]
pub struct Watch {
    read: Arc<AtomicBool>,
    files: Arc<Mutex<Vec<File>>>,
}

impl Watch {
    /// `file`, watched: its reads are noted, and a handle on it is kept.
    pub fn file(&self, file: File) -> io::Result<Watched<File>> {
        let handle = file.try_clone()?;
        self.files
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(handle);
        Ok(Watched::new(file, Some(self.clone())))
    }
}

/// A file whose every read is noted in a [`Watch`], so the pin looks at the file before
/// any row that may hold the bytes read.
pub struct Watched<R> {
    inner: R,
    watch: Option<Watch>,
}

impl<R> Watched<R> {
    /// `inner`, its reads noted in `watch` (none: a file read without a pin).
    pub fn new(inner: R, watch: Option<Watch>) -> Watched<R> {
        Watched { inner, watch }
    }

    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }
}

impl<R: Read> Read for Watched<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        // Noted after the read, whatever it brought: bytes may not be used before the
        // pin has looked at the file since. Even a read at the end of the file counts:
        // it is what turns a line cut short (a file truncated in place) into a record.
        if let Some(watch) = &self.watch {
            watch.read.store(true, Ordering::SeqCst);
        }
        Ok(n)
    }
}

impl<R: Seek> Seek for Watched<R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.inner.seek(pos)
    }
}

/// The `Changed::what`s of a file whose name leads elsewhere now, and whose open file is
/// not the pinned one either (written to, or another file).
const REPLACED_AND_CHANGED: &str =
    "it was replaced by another file, and the file being read is no longer the one checked";
const GONE_AND_CHANGED: &str = "it is gone, and the file being read is no longer the one checked";

/// How a pinned manifest changed; the message says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the manifest {path} changed while the run was reading it ({what}); nothing more was sent: run again once the file is final (done rows are skipped)")]
pub struct Changed {
    pub path: String,
    pub what: &'static str,
}

impl Changed {
    /// Whether the run's open file still holds what the first pass read: a file
    /// replaced or deleted under its name is still whole behind the open handle, while
    /// one written to in place is not (its rows may be torn).
    pub fn still_readable(&self) -> bool {
        matches!(self.what, "it was replaced by another file" | "it is gone")
    }
}

impl Pin {
    /// Pins `path` as it is now.
    pub fn take(path: &Path) -> std::io::Result<Pin> {
        let stamp = Stamp::of(&std::fs::metadata(path)?);
        Ok(Pin {
            path: path.to_path_buf(),
            stamp,
            sha256: sha256(path)?,
            watch: Watch::default(),
            looked: Mutex::new(Instant::now()),
            recheck: RECHECK,
        })
    }

    /// What the second pass's files are watched by ([`Watch::file`]).
    pub fn watch(&self) -> Watch {
        self.watch.clone()
    }

    /// The file's SHA-256 when it was pinned.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// The check before a row of the second pass is used. The file is looked at when
    /// bytes were read since the last look (the row may hold them: written to in place,
    /// it may be torn), and at least every `RECHECK` (a file replaced or written to
    /// while rows come from a buffer stops the run at once). Looking at every row cost a
    /// `stat` per row, about 4% of a large run's CPU. One thread calls it, the one that
    /// uses the rows: a change it finds is its own to act on.
    pub fn check_row(&self) -> Result<(), Changed> {
        let mut looked = self.looked.lock().unwrap_or_else(|e| e.into_inner());
        let read = self.watch.read.swap(false, Ordering::SeqCst);
        if !read && looked.elapsed() < self.recheck {
            return Ok(());
        }
        *looked = Instant::now();
        match self.check() {
            // Replaced or deleted under its name: the rest can still be read, if what is
            // being read is the pinned file, unchanged. It is not when it was written to
            // before it was replaced, or replaced before the second pass opened it.
            Err(changed) if changed.still_readable() && !self.read_file_intact() => Err(Changed {
                what: match changed.what {
                    "it is gone" => GONE_AND_CHANGED,
                    _ => REPLACED_AND_CHANGED,
                },
                ..changed
            }),
            checked => checked,
        }
    }

    /// The second pass read to its end: the handles kept on its files are let go (a
    /// file deleted meanwhile frees its disk space).
    pub fn reading_done(&self) {
        self.watch
            .files
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Whether every file the second pass reads is the pinned one, unchanged.
    fn read_file_intact(&self) -> bool {
        let files = self.watch.files.lock().unwrap_or_else(|e| e.into_inner());
        files.iter().all(|f| {
            f.metadata()
                .is_ok_and(|meta| Stamp::of(&meta) == self.stamp)
        })
    }

    /// The cheap check: same file, size and modification time.
    pub fn check(&self) -> Result<(), Changed> {
        let changed = |what| Changed {
            path: self.path.display().to_string(),
            what,
        };
        let now = match std::fs::metadata(&self.path) {
            Ok(meta) => Stamp::of(&meta),
            Err(_) => return Err(changed("it is gone")),
        };
        if now.identity != self.stamp.identity {
            Err(changed("it was replaced by another file"))
        } else if now.len != self.stamp.len {
            Err(changed("its size changed"))
        } else if now.modified != self.stamp.modified {
            Err(changed("it was written to"))
        } else {
            Ok(())
        }
    }

    /// The whole check, at the end: the cheap one, then the content's hash.
    pub fn verify(&self) -> Result<(), Changed> {
        self.check()?;
        match sha256(&self.path) {
            Ok(sha) if sha == self.sha256 => Ok(()),
            _ => Err(Changed {
                path: self.path.display().to_string(),
                what: "its content changed",
            }),
        }
    }
}

fn sha256(path: &Path) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)?;
    Ok(format!("{:x}", hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn any_change_to_a_pinned_file_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.csv");
        std::fs::write(&path, "a\n1\n").unwrap();
        let pin = Pin::take(&path).unwrap();
        assert_eq!(pin.check(), Ok(()));
        assert_eq!(pin.verify(), Ok(()));
        // sha256sum of "a\n1\n"
        assert_eq!(
            pin.sha256(),
            "309b0e45a73d3fc5325e2b6ed0a01ef8b9cde6b05a5633c1f893f970d52bfddc"
        );

        // Same size, written again.
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&path, "a\n2\n").unwrap();
        let what = pin.check().unwrap_err().what;
        assert!(
            ["it was written to", "its content changed"].contains(&what),
            "{what}"
        );
        assert!(pin.verify().is_err());

        // Replaced by another file (a rename over it).
        let pin = Pin::take(&path).unwrap();
        let other = dir.path().join("new.csv");
        std::fs::write(&other, "a\n2\n").unwrap();
        std::fs::rename(&other, &path).unwrap();
        assert_eq!(
            pin.check().unwrap_err().what,
            "it was replaced by another file"
        );

        // Gone.
        let pin = Pin::take(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(pin.check().unwrap_err().what, "it is gone");
        let message = pin.check().unwrap_err().to_string();
        assert!(message.contains("nothing more was sent"), "{message}");
    }

    /// A pin that looks at its file only when it was read: the time check is an hour.
    fn pin_by_reads(path: &Path) -> Pin {
        Pin {
            recheck: Duration::from_secs(3600),
            ..Pin::take(path).unwrap()
        }
    }

    #[test]
    fn a_row_is_checked_after_every_read_of_the_file_even_one_at_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.csv");
        std::fs::write(&path, "a\n1\n2\n").unwrap();
        let pin = pin_by_reads(&path);
        let mut watched = pin
            .watch()
            .file(std::fs::File::open(&path).unwrap())
            .unwrap();
        let mut byte = [0u8; 1];
        watched.read_exact(&mut byte).unwrap();
        assert_eq!(pin.check_row(), Ok(()));

        // Written to in place: rows from bytes read before are the pinned file's, and
        // are used without a look; the next read's bytes may be torn, so the row after
        // it is checked.
        std::fs::write(&path, "a\n1\n2\n3\n").unwrap();
        assert_eq!(pin.check_row(), Ok(()));
        watched.read_exact(&mut byte).unwrap();
        assert_eq!(pin.check_row().unwrap_err().what, "its size changed");

        // Cut short in place after it was read to its end: the read that finds the end
        // (no bytes) is what makes a reader close a cut line as a record.
        let pin = pin_by_reads(&path);
        let mut watched = pin
            .watch()
            .file(std::fs::File::open(&path).unwrap())
            .unwrap();
        watched.read_to_end(&mut Vec::new()).unwrap();
        assert_eq!(pin.check_row(), Ok(()));
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(5)
            .unwrap();
        assert_eq!(watched.read(&mut byte).unwrap(), 0);
        assert_eq!(pin.check_row().unwrap_err().what, "its size changed");
    }

    /// A file replaced under its name can be read to its end only if the file being read
    /// is the pinned one, unchanged.
    #[test]
    fn a_replaced_file_is_read_on_only_if_the_one_being_read_is_intact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.csv");
        let other = dir.path().join("new.csv");
        let pinned = || {
            std::fs::write(&path, "a\n1\n2\n").unwrap();
            pin_by_reads(&path)
        };
        let open = |pin: &Pin| pin.watch().file(File::open(&path).unwrap()).unwrap();
        let replace = || {
            std::fs::write(&other, "a\n9\n").unwrap();
            std::fs::rename(&other, &path).unwrap();
        };
        let delete = || std::fs::remove_file(&path).unwrap();
        let append = || {
            let mut file = std::fs::OpenOptions::new().append(true).open(&path);
            file.as_mut().unwrap().write_all(b"3\n").unwrap();
        };
        // What the pin says at the next row, after a read.
        let seen = |pin: &Pin, mut watched: Watched<File>| {
            watched.read_exact(&mut [0u8; 1]).unwrap();
            let changed = pin.check_row().unwrap_err();
            (changed.what, changed.still_readable())
        };

        // Replaced or deleted while being read: the open file is whole.
        let pin = pinned();
        let watched = open(&pin);
        replace();
        assert_eq!(
            seen(&pin, watched),
            ("it was replaced by another file", true)
        );
        let pin = pinned();
        let watched = open(&pin);
        delete();
        assert_eq!(seen(&pin, watched), ("it is gone", true));

        // Written to in place, then replaced or deleted: the open file may be torn.
        let pin = pinned();
        let watched = open(&pin);
        append();
        replace();
        assert_eq!(seen(&pin, watched), (REPLACED_AND_CHANGED, false));
        let pin = pinned();
        let watched = open(&pin);
        append();
        delete();
        assert_eq!(seen(&pin, watched), (GONE_AND_CHANGED, false));

        // Replaced before the second pass opened it: what it reads was never checked.
        let pin = pinned();
        replace();
        let watched = open(&pin);
        assert_eq!(seen(&pin, watched), (REPLACED_AND_CHANGED, false));
    }

    #[test]
    fn a_row_is_checked_every_millisecond_when_nothing_was_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.csv");
        std::fs::write(&path, "a\n1\n").unwrap();
        let pin = Pin::take(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        std::thread::sleep(RECHECK * 5);
        assert_eq!(pin.check_row().unwrap_err().what, "it is gone");
    }

    /// Every format's second reading goes through `Watched`: a manifest larger than
    /// the readers' buffers, grown after its first row, fails the check of a later row
    /// though the time check never comes.
    #[test]
    fn every_format_notes_its_reads_for_the_pin() {
        let dir = tempfile::tempdir().unwrap();
        let rows: u32 = 30_000;
        let name = |i: u32| format!("{:x}", u64::from(i) * 2_654_435_761);
        let csv: String = std::iter::once("id,name\n".to_string())
            .chain((0..rows).map(|i| format!("{i},{}\n", name(i))))
            .collect();
        let jsonl: String = (0..rows)
            .map(|i| format!("{{\"id\":\"{i}\",\"name\":\"{}\"}}\n", name(i)))
            .collect();
        let mut book = rust_xlsxwriter::Workbook::new();
        let sheet = book.add_worksheet();
        for i in 0..rows {
            sheet.write_string(i, 0, name(i)).unwrap();
        }
        let files = [
            ("m.csv", csv.into_bytes()),
            ("m.jsonl", jsonl.into_bytes()),
            ("m.xlsx", book.save_to_buffer().unwrap()),
        ];
        for (name, bytes) in files {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            let pin = pin_by_reads(&path);
            let source = crate::manifest::Source {
                path: path.clone(),
                format: None,
                encoding: None,
                sheet: None,
            };
            let mut manifest = crate::manifest::open_pinned(&source, pin.watch()).unwrap();
            manifest.rows.next().unwrap().unwrap();
            assert_eq!(pin.check_row(), Ok(()), "{name}");
            std::fs::OpenOptions::new()
                .append(true)
                .open(&path)
                .unwrap()
                .write_all(b"\n")
                .unwrap();
            let seen = manifest.rows.any(|_| pin.check_row().is_err());
            assert!(seen, "{name}: a read after the change was noted");
        }
    }
}
