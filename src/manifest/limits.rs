//! Every bound ferry puts on what it reads, in one place (the README's Limits table
//! lists them). Each protects memory, or time, from a file that is malformed or hostile,
//! and each is met with a message that names the file, the limit and what to do — never
//! a crash, gigabytes of RAM, or a row that silently disappears.
//!
//! Two rules behind the numbers: where Excel has a limit, it is ferry's (a manifest is a
//! sheet a person can open, fix and feed back); where it has none, the bound sits far
//! above any real manifest and far below what would hurt the machine.

/// Characters in a cell: Excel's limit. A longer cell fails its row (`cell_too_long`).
pub const CELL_CHARS: usize = 32_767;

/// Bytes of one CSV/TSV cell kept in memory: room for `CELL_CHARS` characters of any
/// script (at most 4 bytes each), so a cell cut here is always past `CELL_CHARS` and its
/// row fails with `cell_too_long`; the rest of the cell is read past, not kept.
pub const CELL_BYTES: usize = 4 * CELL_CHARS + 4;

// Even a cell of 4-byte characters kept to CELL_BYTES holds more than CELL_CHARS.
const _: () = assert!(CELL_BYTES / 4 > CELL_CHARS);

/// Line breaks in one quoted CSV/TSV cell: Excel's limit (253 line feeds per cell).
/// A quoted cell running over more lines (or to the end of the file) is a quote left
/// open: its row fails with `unclosed_quote` and the lines after it are read as rows.
pub const CELL_LINE_BREAKS: u64 = 253;

/// Columns of a manifest: Excel's last column is XFD.
pub const COLUMNS: usize = 16_384;

/// Bytes of text kept for one CSV/TSV or XLSX row. `COLUMNS` cells of `CELL_CHARS`
/// would be gigabytes; a real manifest row is a few hundred bytes. Past it the row's
/// later cells are read past, not kept, and the row fails with `row_too_long`.
pub const ROW_BYTES: usize = 1024 * 1024;

// A row keeps at least one whole cell of any script.
const _: () = assert!(ROW_BYTES > CELL_BYTES);

/// Bytes of records read ahead on a reader thread (`RecordSender`), waiting for the
/// validator: a few hundred rows of a real manifest, or 32 rows of `ROW_BYTES`. A single
/// larger record still passes on its own.
pub const CHANNEL_BYTES: u64 = 32 * 1024 * 1024;

/// Rows of a sheet: Excel's last row. (CSV and JSON rows are lines or elements of the
/// file itself, so their numbers cannot run ahead of the file's size.)
pub const SHEET_ROWS: u64 = 1_048_576;

/// Distinct keys in a JSON manifest. Objects need not share their keys, and every row of
/// every report gets a cell for every key, so a file whose objects each bring keys of
/// their own (ids used as keys) would make reports of rows × keys cells.
pub const JSON_KEYS: usize = 1_000;

/// Bytes of one JSON Lines line or one element of a JSON array: far above a record of
/// `JSON_KEYS` full cells' worth of real data, far below what would hurt.
pub const JSON_ELEMENT_BYTES: u64 = 16 * 1024 * 1024;

/// Uncompressed bytes of one worksheet part of an XLSX file. The sheet is streamed, so
/// this bounds reading time more than memory; a full 1,048,576-row sheet of ten columns
/// is about a quarter of it.
pub const XLSX_SHEET_BYTES: u64 = 1024 * 1024 * 1024;

/// Uncompressed bytes of any other XML part of an XLSX file (shared strings, styles,
/// workbook): calamine holds these in memory whole.
pub const XLSX_PART_BYTES: u64 = 128 * 1024 * 1024;

/// Distinct texts in an XLSX file's shared-strings table (held in memory whole), counted
/// and as declared (calamine reserves room for the declared number up front).
pub const XLSX_SHARED_STRINGS: u64 = 2_000_000;

/// Bytes of XML for one cell of a sheet or one shared string (rich-text runs included),
/// and of any single tag or text in an XLSX part: a cell of `CELL_CHARS` characters,
/// escaped and formatted, is well under it.
pub const XLSX_ELEMENT_BYTES: u64 = 1024 * 1024;

/// Merged ranges (`<mergeCell>`) in one worksheet part. A real sheet has a handful;
/// each costs a little memory and a check on every row it covers.
pub const XLSX_MERGED_RANGES: u64 = 10_000;

/// Cell formats (`<xf>`) in an XLSX file's styles: Excel's own limit. calamine builds a
/// style record for each (with its own copy of the number format), all held in memory.
pub const XLSX_STYLES: u64 = 64_000;

/// Bytes of XML for one number format (`<numFmt .../>`): Excel allows a format code of
/// 255 characters; calamine copies it into every style that uses it.
pub const XLSX_NUMBER_FORMAT_BYTES: u64 = 4 * 1024;

/// A byte count for messages: `1 GiB`, `128 MiB`, `1.5 MiB`, `812 bytes`.
pub fn bytes(n: u64) -> String {
    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * KIB;
    const GIB: u64 = 1024 * MIB;
    let (unit, name) = match n {
        n if n >= GIB => (GIB, "GiB"),
        n if n >= MIB => (MIB, "MiB"),
        n if n >= KIB => (KIB, "KiB"),
        _ => return format!("{n} bytes"),
    };
    if n.is_multiple_of(unit) {
        format!("{} {name}", n / unit)
    } else {
        format!("{:.1} {name}", n as f64 / unit as f64)
    }
}

/// `16384` as `16,384`, for messages.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_counts_read_as_a_person_writes_them() {
        assert_eq!(bytes(812), "812 bytes");
        assert_eq!(bytes(XLSX_SHEET_BYTES), "1 GiB");
        assert_eq!(bytes(XLSX_PART_BYTES), "128 MiB");
        assert_eq!(bytes(1536 * 1024), "1.5 MiB");
        assert_eq!(count(16_384), "16,384");
        assert_eq!(count(1_048_576), "1,048,576");
        assert_eq!(count(999), "999");
    }
}
