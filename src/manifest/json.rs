//! JSON manifests: an array of objects, or JSON Lines (one object per line).
//!
//! Objects need not share their keys, so the header is the union of all keys in order of
//! first appearance, and that takes a first pass over the file. The first pass also checks
//! the whole file (syntax, every element an object), so a broken file fails before
//! anything is sent. The second pass yields rows. Neither pass holds more than one element
//! in memory: the array is walked element by element with a serde `SeqAccess` (on a
//! helper thread feeding a bounded channel for the second pass), JSON Lines line by line.
//! Values are read as the text the file holds (numbers are never rewritten by a float),
//! and an object that gives a key twice fails its row: no value is silently chosen.

use std::collections::HashMap;
use std::fmt;
use std::io::{BufRead, BufReader, Read};

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::encoding::Text;
use super::limits::{JSON_ELEMENT_BYTES, JSON_KEYS};
use super::{
    spawn_reader, ChannelRecords, Flaw, ManifestError, Msg, Passed, Place, Record, RecordSender,
    Syntax, Unreadable,
};
use crate::problem::{Code, Problem};

/// The keys seen so far, trimmed, in order of first appearance.
#[derive(Default)]
pub(crate) struct Keys {
    names: Vec<String>,
    index: HashMap<String, usize>,
}

impl Keys {
    fn add(&mut self, key: &str) {
        let key = key.trim();
        if !self.index.contains_key(key) {
            self.index.insert(key.to_string(), self.names.len());
            self.names.push(key.to_string());
        }
    }
}

/// How a JSON manifest's rows are read once its header is known.
pub(crate) struct Header {
    keys: Keys,
    /// The file had bytes that are not text: cells holding U+FFFD are reported.
    flag_replacements: bool,
}

impl Header {
    /// The keys, trimmed, in order of first appearance.
    pub(crate) fn names(&self) -> Vec<String> {
        self.keys.names.clone()
    }
}

// ---------------------------------------------------------------- JSON array

/// First pass over an array: checks it and collects the header.
pub(crate) fn scan_array(path: &str, text: Text) -> Result<Header, ManifestError> {
    let replaced = text.replaced.clone();
    let (reader, skipped_lines) = open_array(path, text.reader)?;
    let mut reader = Bounded::new(reader);
    let read = reader.read.clone();
    let mut keys = Keys::default();
    let mut element = 0u64;
    let mut de = serde_json::Deserializer::from_reader(&mut reader);
    let result = de::Deserializer::deserialize_seq(
        &mut de,
        ScanArray {
            keys: &mut keys,
            element: &mut element,
            read: &read,
        },
    )
    .and_then(|()| de.end());
    if let Err(e) = result {
        if keys.names.len() > JSON_KEYS {
            return Err(too_many_keys(path, &keys, Place::Element(element)));
        }
        if read.get() > JSON_ELEMENT_BYTES {
            return Err(element_too_long(path, Place::ArrayElement(element)));
        }
        return Err(array_error(path, e, element, skipped_lines));
    }
    Ok(Header {
        keys,
        flag_replacements: replaced.load(std::sync::atomic::Ordering::Relaxed),
    })
}

/// Second pass over an array: its rows, element by element.
pub(crate) fn array_rows(
    path: &str,
    text: Text,
    header: Header,
) -> Result<ChannelRecords, ManifestError> {
    let (reader, skipped_lines) = open_array(path, text.reader)?;
    let owned_path = path.to_string();
    spawn_reader(path, "ferry-json-reader", move |tx| {
        // The first pass checked every element's size: this one cannot pass the bound.
        let mut reader = reader;
        let mut element = 0u64;
        let mut stopped = false;
        let mut de = serde_json::Deserializer::from_reader(&mut reader);
        let rows = ArrayRows {
            header: &header,
            tx: &tx,
            element: &mut element,
            stopped: &mut stopped,
        };
        let result = de::Deserializer::deserialize_seq(&mut de, rows).and_then(|()| de.end());
        match result {
            Ok(()) => Ok(()),
            Err(_) if stopped => Err(None),
            Err(e) => Err(Some(array_error(&owned_path, e, element, skipped_lines))),
        }
    })
}

/// Skips the whitespace before the array and checks that it is one. Returns the reader
/// standing on the `[` and the number of lines skipped (serde counts from there).
fn open_array(
    path: &str,
    reader: Box<dyn Read + Send>,
) -> Result<(BufReader<Box<dyn Read + Send>>, u64), ManifestError> {
    let mut reader = BufReader::new(reader);
    let mut lines = 0u64;
    loop {
        let buf = reader.fill_buf().map_err(|source| ManifestError::Io {
            path: path.to_string(),
            source,
        })?;
        let Some(&first) = buf.first() else {
            return Err(ManifestError::Unreadable {
                path: path.to_string(),
                why: Unreadable::Empty,
            });
        };
        let skip = buf.iter().take_while(|b| b.is_ascii_whitespace()).count();
        lines += buf[..skip].iter().filter(|b| **b == b'\n').count() as u64;
        if skip == 0 {
            return match first {
                b'[' => Ok((reader, lines)),
                b'{' => Err(ManifestError::Syntax {
                    path: path.to_string(),
                    line: lines + 1,
                    why: Syntax::ObjectNotArray,
                }),
                _ => Err(ManifestError::Syntax {
                    path: path.to_string(),
                    line: lines + 1,
                    why: Syntax::NotArray,
                }),
            };
        }
        reader.consume(skip);
    }
}

fn array_error(
    path: &str,
    error: serde_json::Error,
    element: u64,
    skipped_lines: u64,
) -> ManifestError {
    if error.is_io() {
        return ManifestError::Unreadable {
            path: path.to_string(),
            why: Unreadable::Json(error),
        };
    }
    ManifestError::Syntax {
        path: path.to_string(),
        line: error.line() as u64 + skipped_lines,
        why: Syntax::Array { element, error },
    }
}

struct ScanArray<'a> {
    keys: &'a mut Keys,
    element: &'a mut u64,
    /// Bytes read in the current element (`Bounded`'s count).
    read: &'a ReadCount,
}

impl<'de> Visitor<'de> for ScanArray<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        loop {
            *self.element += 1;
            self.read.set(0);
            if seq
                .next_element_seed(ScanObject { keys: self.keys })?
                .is_none()
            {
                *self.element -= 1;
                return Ok(());
            }
        }
    }
}

/// Collects one object's keys; its values are skipped, not built.
struct ScanObject<'a> {
    keys: &'a mut Keys,
}

impl<'de> DeserializeSeed<'de> for ScanObject<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ScanObject<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object (one record: {\"column\": value, ...})")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            self.keys.add(&key);
            if self.keys.names.len() > JSON_KEYS {
                return Err(de::Error::custom("too many distinct keys"));
            }
            map.next_value::<IgnoredAny>()?;
        }
        Ok(())
    }
}

struct ArrayRows<'a> {
    header: &'a Header,
    tx: &'a RecordSender,
    element: &'a mut u64,
    stopped: &'a mut bool,
}

impl<'de> Visitor<'de> for ArrayRows<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        loop {
            *self.element += 1;
            let Some(object) = seq.next_element_seed(RowObject {
                header: self.header,
            })?
            else {
                return Ok(());
            };
            let record = record(*self.element, object, self.header);
            if self.tx.send(Msg::Record(record)).is_err() {
                *self.stopped = true;
                return Err(de::Error::custom("the reader was dropped"));
            }
        }
    }
}

/// One object's cells in header order, and the keys it gave more than once.
struct Object {
    cells: Vec<String>,
    /// (cell index, how many times the object gave that key).
    repeated: Vec<(usize, u32)>,
}

/// Reads one object into cells in header order.
struct RowObject<'a> {
    header: &'a Header,
}

impl<'de> DeserializeSeed<'de> for RowObject<'_> {
    type Value = Object;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Object, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RowObject<'_> {
    type Value = Object;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object (one record: {\"column\": value, ...})")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Object, A::Error> {
        let width = self.header.keys.names.len();
        let mut cells = vec![String::new(); width];
        let mut given = vec![0u32; width];
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let value: Box<RawValue> = map.next_value()?;
            // A key the first pass did not see cannot happen unless the file changed
            // in between; such a value is dropped rather than misplaced.
            let Some(&i) = self.header.keys.index.get(key.trim()) else {
                continue;
            };
            given[i] = given[i].saturating_add(1);
            // serde_json would keep the last of a repeated key's values; the row fails
            // instead (`duplicate_field`), and its report shows the first that is not
            // empty: a row whose cell showed an empty first value could be skipped as
            // empty, and the other values lost without a word.
            if cells[i].trim().is_empty() {
                cells[i] = cell_text(&value).map_err(de::Error::custom)?;
            }
        }
        let repeated = given
            .into_iter()
            .enumerate()
            .filter(|&(_, times)| times > 1)
            .collect();
        Ok(Object { cells, repeated })
    }
}

fn record(row: u64, object: Object, header: &Header) -> Record {
    let mut record = Record::new(row, object.cells);
    if header.flag_replacements {
        record.flaws = record
            .cells
            .iter()
            .enumerate()
            .filter(|(_, c)| c.contains('\u{FFFD}'))
            .map(|(i, _)| (i, Flaw::BadText))
            .collect();
    }
    record.flaws.extend(
        object
            .repeated
            .into_iter()
            .map(|(i, times)| (i, Flaw::Repeated { times })),
    );
    record
}

/// The problem of a row whose object gives the key of column `name` `times` times.
pub(crate) fn repeated_key(name: &str, times: u32) -> Problem {
    let times = match times {
        2 => "twice".to_string(),
        n => format!("{n} times"),
    };
    Problem::new(
        Code::DuplicateField,
        name,
        format!(
            "the object gives the key \"{name}\" {times} (spaces around a key do not count): a \
             record holds one value per key, and ferry does not pick one; keep the right value \
             and remove the others (the report shows the first that is not empty)"
        ),
    )
}

/// A JSON value as cell text: strings as they are, numbers and booleans exactly as
/// written, null empty, arrays and objects as compact JSON (a later stage reads a list
/// cell such as `["123","456"]`).
///
/// The value is read raw, not as a `serde_json::Value`: a `Value` holds a number as an
/// f64 or a 64-bit integer, so `123456789012345678901` would become
/// `1.2345678901234567e+20` and `8613800138000.0` `8613800138000`, and a phone or id
/// written as a number would reach validation (whose `decimal_notation` and
/// `scientific_notation` checks look at the text) as a different number. serde_json's
/// `arbitrary_precision` keeps digits but not the text either (`1E3` reads `1e+3`), and
/// it would change every `Value` in the program.
fn cell_text(value: &RawValue) -> Result<String, serde_json::Error> {
    let text = value.get();
    match text.as_bytes().first() {
        Some(b'"') => serde_json::from_str(text),
        Some(b'[' | b'{') => Ok(compact(text)),
        _ if text == "null" => Ok(String::new()),
        _ => Ok(text.to_string()),
    }
}

/// Valid JSON without the white space between its tokens.
fn compact(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in json.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            in_string = c == '"';
            out.push(c);
        }
    }
    out
}

// ---------------------------------------------------------------- limits

type ReadCount = std::rc::Rc<std::cell::Cell<u64>>;

/// A reader that fails once more than `JSON_ELEMENT_BYTES` were read since its count was
/// last set to 0 (at each element of the array): serde_json would build a string of
/// any length.
struct Bounded<R> {
    inner: R,
    read: ReadCount,
}

impl<R> Bounded<R> {
    fn new(inner: R) -> Self {
        Bounded {
            inner,
            read: ReadCount::default(),
        }
    }
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.read.get() > JSON_ELEMENT_BYTES {
            return Err(std::io::Error::other("element too long"));
        }
        let n = self.inner.read(buf)?;
        self.read.set(self.read.get() + n as u64);
        Ok(n)
    }
}

fn too_many_keys(path: &str, keys: &Keys, place: Place) -> ManifestError {
    let last = keys.names.last().cloned().unwrap_or_default();
    ManifestError::Limit {
        path: path.to_string(),
        passed: Passed::JsonKeys {
            last,
            count: keys.names.len(),
            place,
        },
    }
}

fn element_too_long(path: &str, place: Place) -> ManifestError {
    ManifestError::Limit {
        path: path.to_string(),
        passed: Passed::JsonElement { place },
    }
}

// ---------------------------------------------------------------- JSON Lines

/// First pass over JSON Lines: checks every line and collects the header.
pub(crate) fn scan_lines(path: &str, text: Text) -> Result<Header, ManifestError> {
    let replaced = text.replaced.clone();
    let mut keys = Keys::default();
    let mut lines = Lines::new(text.reader);
    while let Some((line_no, line)) = lines.next_line(path)? {
        let mut de = serde_json::Deserializer::from_slice(line);
        ScanObject { keys: &mut keys }
            .deserialize(&mut de)
            .and_then(|()| de.end())
            .map_err(|e| {
                if keys.names.len() > JSON_KEYS {
                    too_many_keys(path, &keys, Place::Line(line_no))
                } else {
                    line_error(path, e, line_no)
                }
            })?;
    }
    Ok(Header {
        keys,
        flag_replacements: replaced.load(std::sync::atomic::Ordering::Relaxed),
    })
}

/// Second pass over JSON Lines: one row per non-blank line, numbered by line.
pub(crate) fn line_rows(
    path: &str,
    text: Text,
    header: Header,
) -> impl Iterator<Item = Result<Record, ManifestError>> + Send {
    let path = path.to_string();
    let mut lines = Lines::new(text.reader);
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let result = match lines.next_line(&path) {
            Ok(None) => None,
            Ok(Some((line_no, line))) => {
                let mut de = serde_json::Deserializer::from_slice(line);
                Some(
                    RowObject { header: &header }
                        .deserialize(&mut de)
                        .and_then(|object| de.end().map(|()| object))
                        .map(|object| record(line_no, object, &header))
                        .map_err(|e| line_error(&path, e, line_no)),
                )
            }
            Err(e) => Some(Err(e)),
        };
        done = !matches!(result, Some(Ok(_)));
        result
    })
}

fn line_error(path: &str, error: serde_json::Error, line: u64) -> ManifestError {
    ManifestError::Syntax {
        path: path.to_string(),
        line,
        why: Syntax::Line { error },
    }
}

/// Lines of a text, blank ones skipped but counted.
struct Lines {
    reader: BufReader<Box<dyn Read + Send>>,
    buf: Vec<u8>,
    line_no: u64,
}

impl Lines {
    fn new(reader: Box<dyn Read + Send>) -> Self {
        Lines {
            reader: BufReader::new(reader),
            buf: Vec::new(),
            line_no: 0,
        }
    }

    fn next_line(&mut self, path: &str) -> Result<Option<(u64, &[u8])>, ManifestError> {
        loop {
            self.buf.clear();
            let n = (&mut self.reader)
                .take(JSON_ELEMENT_BYTES + 1)
                .read_until(b'\n', &mut self.buf)
                .map_err(|source| ManifestError::Io {
                    path: path.to_string(),
                    source,
                })?;
            if n == 0 {
                return Ok(None);
            }
            self.line_no += 1;
            if n as u64 > JSON_ELEMENT_BYTES {
                return Err(element_too_long(path, Place::Line(self.line_no)));
            }
            if !self.buf.iter().all(u8::is_ascii_whitespace) {
                return Ok(Some((self.line_no, &self.buf)));
            }
        }
    }
}
