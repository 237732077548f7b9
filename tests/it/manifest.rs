//! Reading manifests: exact headers and rows (numbers, cells, defects) for every format
//! and encoding ferry reads, and the errors for files it cannot.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use ferry::manifest::{
    open, open_reader, spool, Format, Manifest, ManifestError, Origin, OriginManifest, RawRow,
    Source,
};
use ferry::problem::{Code, Problem};
use proptest::prelude::*;
use tempfile::TempDir;

fn write(dir: &TempDir, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).expect("write fixture");
    path
}

fn source(path: &Path) -> Source {
    Source {
        path: path.to_path_buf(),
        format: None,
        encoding: None,
        sheet: None,
    }
}

fn with_encoding(path: &Path, encoding: &str) -> Source {
    Source {
        encoding: Some(encoding.to_string()),
        ..source(path)
    }
}

/// Every row, each checked to be numbered in turn (`seq`) and then compared without it.
fn read_all(manifest: Manifest) -> (Vec<String>, Vec<RawRow>) {
    let rows = manifest
        .rows
        .map(|r| r.unwrap_or_else(|e| panic!("row error: {e}")))
        .enumerate()
        .map(|(i, mut row)| {
            assert_eq!(
                row.seq, i as u64,
                "row {}: its place among the rows read",
                row.row
            );
            row.seq = 0;
            row
        })
        .collect();
    (manifest.header, rows)
}

fn read(source: &Source) -> (Vec<String>, Vec<RawRow>) {
    read_all(open(source).unwrap_or_else(|e| panic!("open failed: {e}")))
}

/// Reads `bytes` as file `name`.
fn read_bytes(name: &str, bytes: impl AsRef<[u8]>) -> (Vec<String>, Vec<RawRow>) {
    let dir = TempDir::new().expect("temp dir");
    read(&source(&write(&dir, name, bytes)))
}

fn open_error(source: &Source) -> String {
    match open(source) {
        Ok(manifest) => panic!("expected an error, got header {:?}", manifest.header),
        Err(e) => e.to_string(),
    }
}

fn row(row: u64, cells: &[&str]) -> RawRow {
    RawRow::new(row, cells.iter().map(|c| c.to_string()).collect())
}

/// A row of a fed-back report that does not say which manifest it came from.
fn unknown_origin(mut raw: RawRow, source_row: u64) -> RawRow {
    raw.origin = Origin {
        row: source_row,
        manifest: OriginManifest::Unknown,
    };
    raw
}

fn with_defects(mut raw: RawRow, defects: Vec<Problem>) -> RawRow {
    raw.defects = defects;
    raw
}

fn header(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

// ------------------------------------------------------------------ CSV and TSV

#[test]
fn csv_with_and_without_bom() {
    let body = "name,mobile\nAda,13800138000\nBo,13900139000\n";
    let expected = (
        header(&["name", "mobile"]),
        vec![
            row(2, &["Ada", "13800138000"]),
            row(3, &["Bo", "13900139000"]),
        ],
    );
    assert_eq!(read_bytes("plain.csv", body), expected);
    assert_eq!(read_bytes("bom.csv", format!("\u{feff}{body}")), expected);
}

#[test]
fn tsv_reads_tabs_and_keeps_commas_in_cells() {
    let (h, rows) = read_bytes("calls.tsv", "name\tcompany\nAda\tAcme, Inc.\n");
    assert_eq!(h, header(&["name", "company"]));
    assert_eq!(rows, vec![row(2, &["Ada", "Acme, Inc."])]);
}

#[test]
fn explicit_format_overrides_the_extension() {
    let dir = TempDir::new().expect("temp dir");
    let path = write(&dir, "export.txt", "a\tb\n1\t2\n");
    let (h, rows) = read(&Source {
        format: Some(Format::Tsv),
        ..source(&path)
    });
    assert_eq!(h, header(&["a", "b"]));
    assert_eq!(rows, vec![row(2, &["1", "2"])]);
}

#[test]
fn quoted_cell_with_line_breaks_is_one_row() {
    let csv = "name,remark\n\"Ada\",\"line one\nline two\nline three\"\nBo,short\nCy,\"x\r\ny\"\n";
    let (_, rows) = read_bytes("m.csv", csv);
    assert_eq!(
        rows,
        vec![
            row(2, &["Ada", "line one\nline two\nline three"]),
            row(3, &["Bo", "short"]),
            // CRLF inside a cell is stored as Excel stores a line break: `\n`.
            row(4, &["Cy", "x\ny"]),
        ]
    );
}

#[test]
fn blank_lines_count_as_rows_but_are_not_yielded() {
    for newline in ["\n", "\r\n", "\r"] {
        let csv = ["a,b", "1,2", "", "", "3,4", "\"5\n5\",6", "", "7,8"].join(newline);
        let (_, rows) = read_bytes("m.csv", csv);
        assert_eq!(
            rows,
            vec![
                row(2, &["1", "2"]),
                row(5, &["3", "4"]),
                row(6, &["5\n5", "6"]),
                row(8, &["7", "8"])
            ],
            "line endings {newline:?}"
        );
    }
}

#[test]
fn leading_blank_lines_and_empty_rows_before_the_header() {
    let (h, rows) = read_bytes("m.csv", "\n,,\n  \nname,phone\n\nAda,1\n");
    assert_eq!(h, header(&["name", "phone"]));
    assert_eq!(rows, vec![row(6, &["Ada", "1"])]);
}

#[test]
fn all_empty_rows_are_skipped() {
    let (_, rows) = read_bytes("m.csv", "a,b,c\n1,2,3\n,,\n , ,\t\n4,5,6\n");
    assert_eq!(
        rows,
        vec![row(2, &["1", "2", "3"]), row(5, &["4", "5", "6"])]
    );
}

#[test]
fn ragged_rows_are_padded_or_cut_and_reported() {
    let csv = "a,b,c,d,e\n1,2,3,4,5,6,7\n1,2,3\n1,2,3,4,5,,\n";
    let (_, rows) = read_bytes("m.csv", csv);
    assert_eq!(
        rows,
        vec![
            with_defects(
                row(2, &["1", "2", "3", "4", "5"]),
                vec![Problem::new(
                    Code::RaggedRow,
                    "",
                    "row has 7 cells but the header has 5; check for an unquoted comma or a \
                     missing cell (extra cells: \"6\", \"7\")"
                )]
            ),
            with_defects(
                row(3, &["1", "2", "3", "", ""]),
                vec![Problem::new(
                    Code::RaggedRow,
                    "",
                    "row has 3 cells but the header has 5; check for an unquoted comma or a missing cell"
                )]
            ),
            // Trailing separators add only empty cells: nothing is out of line.
            row(4, &["1", "2", "3", "4", "5"]),
        ]
    );
}

#[test]
fn ragged_message_shortens_long_extra_cells() {
    let long = "x".repeat(100);
    let (_, rows) = read_bytes("m.tsv", format!("a\n1\t{long}\t2\t3\t4\n"));
    assert_eq!(rows[0].defects.len(), 1);
    assert_eq!(
        rows[0].defects[0].message,
        format!(
            "row has 5 cells but the header has 1; check for an unquoted tab or a missing cell \
             (extra cells: \"{}…\", \"2\", \"3\", … 1 more)",
            "x".repeat(20)
        )
    );
}

#[test]
fn ferry_columns_are_dropped_and_header_names_trimmed() {
    let csv = "ferry_row,FERRY_error, Name ,,mobile,ferry_key\n7,bad,Ada,x,138,k\n9,bad,,,,k\n";
    let (h, rows) = read_bytes("failed.csv", csv);
    assert_eq!(h, header(&["Name", "column_4", "mobile"]));
    // The first keeps its ferry_row as its row in a manifest ferry cannot name. The
    // second holds data only in ferry_ columns: a fed-back row whose cells the person
    // cleared is still a row (its validation says what is missing), never dropped.
    assert_eq!(
        rows,
        vec![
            unknown_origin(row(2, &["Ada", "x", "138"]), 7),
            unknown_origin(row(3, &["", "", ""]), 9),
        ]
    );
}

#[test]
fn a_header_split_at_another_separator_is_data_not_a_ferry_column() {
    // A failed.csv saved again by a spreadsheet in a European locale is split at `;`:
    // read at commas, its header is one column that starts with `ferry_`. Dropped as a
    // report column, it would leave every row empty, and every row skipped unseen.
    let csv = "ferry_row;ferry_key;name;mobile\n2;k;Ada;138\n";
    let (h, rows) = read_bytes("failed.csv", csv);
    assert_eq!(h, header(&["ferry_row;ferry_key;name;mobile"]));
    assert_eq!(rows, vec![row(2, &["2;k;Ada;138"])]);
}

#[test]
fn a_fed_back_row_keeps_the_row_and_manifest_it_first_came_from() {
    let csv = "ferry_row,ferry_source_row,ferry_source,name\n\
               2,17,0123456789ABCDEF,kept\n\
               3,,0123456789abcdef,source row cleared\n\
               4,x,0123456789abcdef,source row mangled\n\
               5,19,not-an-id,id mangled\n\
               6,12.0,0123456789abcdef,from a workbook\n\
               7,17,0123456789abcdef,a line copied from the first\n\
               8,17,fedcba9876543210,row 17 of another manifest\n";
    let (h, rows) = read_bytes("failed.csv", csv);
    assert_eq!(h, header(&["name"]));
    let from = |row: u64, id: &str| Origin {
        row,
        manifest: OriginManifest::Earlier(id.to_string()),
    };
    // Its place in the original is lost: ferry_row counts rows of this file, so it is
    // not offered instead (row 0: the reports leave ferry_source_row empty).
    let lost = |row: u64| Origin {
        row,
        manifest: OriginManifest::Unknown,
    };
    let origins: Vec<Origin> = rows.into_iter().map(|r| r.origin).collect();
    assert_eq!(
        origins,
        [
            from(17, "0123456789abcdef"),
            lost(0),
            lost(0),
            lost(19),
            from(12, "0123456789abcdef"),
            // A second claim of one original row is a copied line, not that row.
            lost(0),
            from(17, "fedcba9876543210"),
        ]
    );
    // A report of a ferry before ferry_source_row: ferry_row is the original row.
    let (_, rows) = read_bytes("failed.csv", "ferry_row,name\n7,old\n");
    assert_eq!(rows[0].origin, lost(7));
    // A manifest with no ferry columns is its own origin.
    let (_, rows) = read_bytes("m.csv", "name\nfresh\n");
    assert_eq!(rows[0].origin, Origin::here(2));
}

#[test]
fn header_only_is_zero_rows_and_empty_file_is_an_error() {
    assert_eq!(
        read_bytes("m.csv", "name,mobile\n"),
        (header(&["name", "mobile"]), vec![])
    );
    let dir = TempDir::new().expect("temp dir");
    let empty = write(&dir, "empty.csv", "");
    assert_eq!(
        open_error(&source(&empty)),
        format!("{}: the file is empty", empty.display())
    );
    let blank = write(&dir, "blank.csv", "\n\n,,\n");
    assert!(open_error(&source(&blank)).contains("no header row"));
    for name in ["e.json", "e.jsonl", "e.xlsx", "e.tsv"] {
        let empty = write(&dir, name, "");
        assert!(
            open_error(&source(&empty)).ends_with("the file is empty"),
            "{name}"
        );
    }
}

#[test]
fn a_cell_longer_than_excel_allows_is_a_defect() {
    let long = "é".repeat(40_000);
    let (_, rows) = read_bytes("m.csv", format!("name,remark\nAda,{long}\nBo,ok\n"));
    assert_eq!(rows.len(), 2);
    assert!(
        rows[0].cells[1] == long,
        "a cell within the byte bound is kept whole"
    );
    assert_eq!(
        rows[0].defects,
        vec![Problem::new(
            Code::CellTooLong,
            "remark",
            "the cell holds 40000 characters, more than the 32767 a spreadsheet cell can hold; \
             check for a missing closing quote"
        )]
    );
    assert!(rows[1].defects.is_empty());
}

#[test]
fn a_cell_past_the_byte_bound_is_cut_not_held_whole() {
    // 1 MiB in one cell: only the first 128 KiB are kept (whole characters), and the row
    // after it is read as usual.
    let big = "é".repeat(1024 * 1024 / 2);
    let (_, rows) = read_bytes("m.csv", format!("name,remark\nAda,{big}\nBo,ok\n"));
    assert_eq!(rows.len(), 2);
    assert!(
        rows[0].cells[1] == "é".repeat(128 * 1024 / 2),
        "cut at 128 KiB"
    );
    assert_eq!(
        rows[0].defects,
        vec![Problem::new(
            Code::CellTooLong,
            "remark",
            "the cell holds more than the 32767 characters a spreadsheet cell can hold (only \
             its first 128 KiB were read); check for a missing closing quote"
        )]
    );
    assert_eq!(rows[1], row(3, &["Bo", "ok"]));
}

fn unclosed(column: &str, message: &str) -> Problem {
    Problem::new(Code::UnclosedQuote, column, message)
}

#[test]
fn a_quote_left_open_to_the_end_fails_its_row_and_every_row_after_it_is_read() {
    // Issue 9: the open quote used to swallow the ten rows after it into one cell.
    let mut body = String::from("name,mobile\nAda,\"13800138000\n");
    for i in 0..10 {
        body.push_str(&format!("B{i},1390013900{i}\n"));
    }
    let (_, rows) = read_bytes("m.csv", &body);
    assert_eq!(rows.len(), 11);
    assert_eq!(
        rows[0],
        with_defects(
            row(2, &["Ada", "13800138000"]),
            vec![unclosed(
                "mobile",
                "the quote that opens the cell in column \"mobile\" is never closed: it would \
                 take in the 10 lines after it, to the end of the file, as one cell. ferry cut \
                 the cell at its first line break and read the lines after it as rows of their \
                 own. Close the quote, or write a quote that belongs to the text as two (\"\"), \
                 then feed this row again"
            )]
        )
    );
    for i in 0..10 {
        let mobile = format!("1390013900{i}");
        assert_eq!(rows[i + 1], row(i as u64 + 3, &[&format!("B{i}"), &mobile]));
    }
}

#[test]
fn a_quote_left_open_on_the_last_line_is_reported() {
    let (_, rows) = read_bytes("m.csv", "name,mobile\nAda,1\nBo,\"2");
    assert_eq!(rows[0], row(2, &["Ada", "1"]));
    assert_eq!(
        rows[1],
        with_defects(
            row(3, &["Bo", "2"]),
            vec![unclosed(
                "mobile",
                "the quote that opens the cell in column \"mobile\" is never closed: the file \
                 ends first. Close the quote, or write a quote that belongs to the text as two \
                 (\"\"), then feed this row again"
            )]
        )
    );
}

#[test]
fn a_quoted_cell_of_more_line_breaks_than_excel_allows_is_an_open_quote() {
    // The quote closes, but 300 lines later: no spreadsheet cell holds that many lines.
    let mut body = String::from("name,note\nAda,\"starts here\n");
    for i in 0..300 {
        body.push_str(&format!("r{i},v{i}\n"));
    }
    body.push_str("z\",end\n");
    let (_, rows) = read_bytes("m.csv", &body);
    assert_eq!(rows.len(), 302);
    assert_eq!(rows[0].row, 2);
    assert_eq!(rows[0].cells, ["Ada", "starts here"]);
    assert_eq!(rows[0].defects.len(), 1);
    assert_eq!(rows[0].defects[0].code, Code::UnclosedQuote);
    assert!(
        rows[0].defects[0]
            .message
            .contains("runs over more than 253 line breaks"),
        "{}",
        rows[0].defects[0].message
    );
    assert_eq!(rows[1], row(3, &["r0", "v0"]));
    assert_eq!(rows[300], row(302, &["r299", "v299"]));
    assert_eq!(rows[301], row(303, &["z\"", "end"]));
}

#[test]
fn a_quoted_cell_within_excel_s_line_breaks_is_one_row() {
    let note = vec!["line"; 254].join("\n");
    let (_, rows) = read_bytes("m.csv", format!("name,note\nAda,\"{note}\"\nBo,x\n"));
    assert_eq!(rows, vec![row(2, &["Ada", &note]), row(3, &["Bo", "x"])]);
}

#[test]
fn a_multi_line_cell_past_the_byte_bound_is_an_open_quote() {
    let long = "x".repeat(80 * 1024);
    let body = format!("name,note\nAda,\"{long}\n{long}\nBo,1\n");
    let (_, rows) = read_bytes("m.csv", body);
    assert_eq!(
        rows.len(),
        3,
        "the opening row, then the two lines it swallowed"
    );
    assert_eq!(rows[0].cells, ["Ada", long.as_str()]);
    assert_eq!(rows[0].defects[0].code, Code::UnclosedQuote);
    assert!(rows[0].defects[0].message.contains("past 32767 characters"));
    assert_eq!(rows[1].row, 3);
    assert_eq!(rows[1].cells[0], long);
    assert_eq!(rows[2], row(4, &["Bo", "1"]));
}

#[test]
fn a_header_wider_than_excel_is_an_error_naming_the_limit() {
    let dir = TempDir::new().expect("temp dir");
    let names: Vec<String> = (0..20_000).map(|i| format!("c{i}")).collect();
    let path = write(&dir, "wide.csv", format!("{}\n", names.join(",")));
    assert_eq!(
        open_error(&source(&path)),
        format!(
            "{}: the header (row 1) has 20,000 columns, more than the 16,384 (Excel's limit) \
             ferry reads; remove the columns the kind does not use, or split the file",
            path.display()
        )
    );
}

#[test]
fn a_row_wider_than_excel_is_ragged_and_its_extra_cells_are_not_held() {
    let wide = vec!["x"; 40_000].join(",");
    let (_, rows) = read_bytes("m.csv", format!("a,b\n{wide}\nc,d\n"));
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].cells, ["x", "x"]);
    assert_eq!(rows[0].defects[0].code, Code::RaggedRow);
    assert!(rows[0].defects[0]
        .message
        .starts_with("row has 40000 cells but the header has 2"));
    assert_eq!(rows[1], row(3, &["c", "d"]));
}

#[test]
fn a_cell_of_exactly_the_limit_is_fine() {
    let cell = "字".repeat(32_767);
    let (_, rows) = read_bytes("m.csv", format!("a\n{cell}\n"));
    assert!(rows[0].defects.is_empty());
}

// ------------------------------------------------------------------ encodings

const CJK_SIMPLIFIED: &str = "姓名,手机,公司\n张三,13800138000,北京科技有限公司\n";
const CJK_TRADITIONAL: &str = "姓名,手機,公司\n陳大文,0912345678,台北科技股份有限公司\n";

fn encode(encoding: &'static encoding_rs::Encoding, text: &str) -> Vec<u8> {
    encoding.encode(text).0.into_owned()
}

fn utf16(text: &str, little_endian: bool) -> Vec<u8> {
    let mut bytes = if little_endian {
        vec![0xFF, 0xFE]
    } else {
        vec![0xFE, 0xFF]
    };
    for unit in text.encode_utf16() {
        let pair = if little_endian {
            unit.to_le_bytes()
        } else {
            unit.to_be_bytes()
        };
        bytes.extend_from_slice(&pair);
    }
    bytes
}

#[test]
fn legacy_encodings_with_the_flag() {
    let dir = TempDir::new().expect("temp dir");
    let gb = write(&dir, "gb.csv", encode(encoding_rs::GB18030, CJK_SIMPLIFIED));
    let big5 = write(&dir, "big5.csv", encode(encoding_rs::BIG5, CJK_TRADITIONAL));
    let simplified = (
        header(&["姓名", "手机", "公司"]),
        vec![row(2, &["张三", "13800138000", "北京科技有限公司"])],
    );
    let traditional = (
        header(&["姓名", "手機", "公司"]),
        vec![row(2, &["陳大文", "0912345678", "台北科技股份有限公司"])],
    );
    assert_eq!(read(&with_encoding(&gb, "gb18030")), simplified);
    assert_eq!(read(&with_encoding(&gb, "GBK")), simplified);
    assert_eq!(read(&with_encoding(&big5, "big5")), traditional);
}

#[test]
fn utf16_with_bom_is_read_with_or_without_the_flag() {
    let dir = TempDir::new().expect("temp dir");
    let text = "name\tcity\r\nAda\t台北\r\n";
    let expected = (header(&["name", "city"]), vec![row(2, &["Ada", "台北"])]);
    for (name, little) in [("le.tsv", true), ("be.tsv", false)] {
        let path = write(&dir, name, utf16(text, little));
        assert_eq!(read(&source(&path)), expected, "{name} without --encoding");
        assert_eq!(
            read(&with_encoding(&path, "utf-16")),
            expected,
            "{name} utf-16"
        );
    }
    let le = write(&dir, "le2.tsv", utf16(text, true));
    assert_eq!(read(&with_encoding(&le, "UTF-16LE")), expected);
    let be = write(&dir, "be2.tsv", utf16(text, false));
    assert_eq!(read(&with_encoding(&be, "utf-16be")), expected);
}

#[test]
fn gbk_without_the_flag_is_an_error_naming_gb18030() {
    let dir = TempDir::new().expect("temp dir");
    let path = write(
        &dir,
        "manifest.csv",
        encode(encoding_rs::GBK, CJK_SIMPLIFIED),
    );
    let message = open_error(&source(&path));
    assert!(message.starts_with(&format!(
        "{}: not UTF-8 text (it looks like GB18030/GBK",
        path.display()
    )));
    assert!(message.ends_with("pass --encoding gb18030"), "{message}");
    assert!(message.contains("line 1"), "{message}");
}

#[test]
fn big5_without_the_flag_is_an_error_naming_big5() {
    let dir = TempDir::new().expect("temp dir");
    let path = write(
        &dir,
        "manifest.csv",
        encode(encoding_rs::BIG5, CJK_TRADITIONAL),
    );
    let message = open_error(&source(&path));
    assert!(message.contains("it looks like Big5"), "{message}");
    assert!(message.ends_with("pass --encoding big5"), "{message}");
}

#[test]
fn utf16_without_bom_is_named() {
    let dir = TempDir::new().expect("temp dir");
    let mut bytes = utf16("name,mobile\nAda,138\n", true);
    bytes.drain(..2);
    let path = write(&dir, "m.csv", bytes);
    assert!(open_error(&source(&path)).ends_with("pass --encoding utf-16le"));
}

#[test]
fn unknown_encoding_lists_the_accepted_names() {
    let dir = TempDir::new().expect("temp dir");
    let path = write(&dir, "m.csv", "a\n1\n");
    assert_eq!(
        open_error(&with_encoding(&path, "latin2")),
        "unknown encoding \"latin2\"; --encoding accepts utf-8, gb18030, gbk, big5, utf-16, \
         utf-16le, utf-16be, windows-1252"
    );
}

/// Western European Excel saves "CSV" as windows-1252: the error says so, and
/// `--encoding windows-1252` (or `cp1252`, `latin1`) reads it.
#[test]
fn windows_1252_is_named_in_the_error_and_read_with_the_flag() {
    let dir = TempDir::new().expect("temp dir");
    let path = write(&dir, "m.csv", b"name,city\nB\xE9atrice,K\xF6ln\n");
    let message = open_error(&source(&path));
    assert!(message.contains("windows-1252"), "{message}");
    let expected = (
        header(&["name", "city"]),
        vec![row(2, &["Béatrice", "Köln"])],
    );
    for name in ["windows-1252", "cp1252", "latin1"] {
        assert_eq!(read(&with_encoding(&path, name)), expected, "{name}");
    }
}

fn long_file_with_bad_bytes_in_row(bad_row: u64, sep: &str) -> Vec<u8> {
    let mut bytes = format!("name{sep}mobile\n").into_bytes();
    for r in 2..=bad_row + 2 {
        if r == bad_row {
            bytes.extend_from_slice(b"bad\xFF\xFEname");
            bytes.extend_from_slice(format!("{sep}13800138000\n").as_bytes());
        } else {
            bytes.extend_from_slice(format!("person {r}{sep}1380013{r:04}\n").as_bytes());
        }
    }
    bytes
}

#[test]
fn invalid_utf8_past_the_sniff_window_is_a_defect_on_its_row_only() {
    for (name, sep) in [("m.csv", ","), ("m.tsv", "\t")] {
        let bytes = long_file_with_bad_bytes_in_row(5000, sep);
        assert!(bytes.len() > 64 * 1024 * 3 / 2);
        let (_, rows) = read_bytes(name, &bytes);
        assert_eq!(rows.len(), 5001, "{name}");
        let defective: Vec<&RawRow> = rows.iter().filter(|r| !r.defects.is_empty()).collect();
        assert_eq!(defective.len(), 1);
        let bad = defective[0];
        assert_eq!(bad.row, 5000);
        assert_eq!(
            bad.cells,
            vec![
                "bad\u{FFFD}\u{FFFD}name".to_string(),
                "13800138000".to_string()
            ]
        );
        assert_eq!(bad.defects.len(), 1);
        assert_eq!(bad.defects[0].code, Code::InvalidUtf8);
        assert_eq!(bad.defects[0].field, "name");
        assert_eq!((rows[4999].row, rows[4999].defects.len()), (5001, 0));
    }
}

#[test]
fn invalid_utf8_early_is_an_error_unless_the_file_says_it_is_utf8() {
    let dir = TempDir::new().expect("temp dir");
    let body = b"name,mobile\nAda,1\nB\xE9atrice,2\n";
    let path = write(&dir, "m.csv", body);
    let message = open_error(&source(&path));
    assert!(message.contains("not UTF-8 text"), "{message}");
    assert!(message.contains("line 3"), "{message}");
    let expected = vec![
        row(2, &["Ada", "1"]),
        with_defects(
            row(3, &["B\u{FFFD}atrice", "2"]),
            vec![Problem::new(
                Code::InvalidUtf8,
                "name",
                "the cell holds bytes that are not UTF-8 text (shown as \u{FFFD}); save the file \
                 as UTF-8, or pass the right --encoding",
            )],
        ),
    ];
    // `--encoding utf-8` or a UTF-8 BOM: the file is UTF-8, and the bad cell is the row's problem.
    assert_eq!(read(&with_encoding(&path, "utf-8")).1, expected);
    let mut with_bom = b"\xEF\xBB\xBF".to_vec();
    with_bom.extend_from_slice(body);
    assert_eq!(read(&source(&write(&dir, "bom.csv", with_bom))).1, expected);
}

#[test]
fn undecodable_bytes_in_a_legacy_encoding_are_a_defect() {
    let dir = TempDir::new().expect("temp dir");
    let mut bytes = encode(encoding_rs::BIG5, "姓名,手機\n");
    bytes.extend_from_slice(b"\xFF\xFF,1\n");
    let (_, rows) = read(&with_encoding(&write(&dir, "m.csv", bytes), "big5"));
    assert_eq!(rows[0].defects.len(), 1);
    assert_eq!(rows[0].defects[0].code, Code::InvalidUtf8);
    assert_eq!(rows[0].defects[0].field, "姓名");
    assert!(rows[0].defects[0].message.contains("not Big5 text"));
}

#[test]
fn invalid_utf8_in_json_lines_past_the_window_is_a_defect() {
    let mut bytes = Vec::new();
    for line in 1..=3000u64 {
        if line == 2999 {
            bytes.extend_from_slice(b"{\"name\": \"bad\xFF\", \"mobile\": \"1\"}\n");
        } else {
            bytes.extend_from_slice(
                format!("{{\"name\": \"person {line}\", \"mobile\": \"{line}\"}}\n").as_bytes(),
            );
        }
    }
    let (_, rows) = read_bytes("m.jsonl", &bytes);
    assert_eq!(rows.len(), 3000);
    let defective: Vec<&RawRow> = rows.iter().filter(|r| !r.defects.is_empty()).collect();
    assert_eq!(defective.len(), 1);
    assert_eq!(defective[0].row, 2999);
    assert_eq!(defective[0].defects[0].code, Code::InvalidUtf8);
    assert_eq!(defective[0].defects[0].field, "name");
}

// ------------------------------------------------------------------ JSON

#[test]
fn json_array_union_header_and_value_kinds() {
    let json = r#"[
      {"userId": "u1", "callType": 1, "enabled": true, "note": null, "callNumber": ["123", "456"]},
      {"userId": "u2", "extra": {"k": [1, 2]}, "ratio": 0.5, "big": 8618100000030, "whole": 12.0},
      {"userId": "u3", "enabled": false, "ferry_row": 9}
    ]"#;
    let (h, rows) = read_bytes("agents.json", json);
    assert_eq!(
        h,
        header(&[
            "userId",
            "callType",
            "enabled",
            "note",
            "callNumber",
            "extra",
            "ratio",
            "big",
            "whole"
        ])
    );
    assert_eq!(
        rows,
        vec![
            row(
                1,
                &["u1", "1", "true", "", r#"["123","456"]"#, "", "", "", ""]
            ),
            row(
                2,
                &[
                    "u2",
                    "",
                    "",
                    "",
                    "",
                    r#"{"k":[1,2]}"#,
                    "0.5",
                    "8618100000030",
                    "12.0"
                ]
            ),
            row(3, &["u3", "", "false", "", "", "", "", "", ""]),
        ]
        .into_iter()
        // A key named ferry_row makes every object a fed-back row: the third's value
        // is its source row.
        .zip([0, 0, 9])
        .map(|(r, source_row)| unknown_origin(r, source_row))
        .collect::<Vec<_>>()
    );
}

/// serde_json read numbers through an f64: `123456789012345678901` became
/// `1.2345678901234567e+20` and `8613800138000.0` became `8613800138000`, so a phone or id
/// written as a number reached validation as a different number.
#[test]
fn json_numbers_keep_their_text() {
    let numbers = [
        "123456789012345678901",
        "-98765432109876543210987",
        "8613800138000.0",
        "8.61810000003E+12",
        "1e3",
        "1E-7",
        "-0",
        "-0.0",
        "0.1000",
        "12.50",
        "18446744073709551616",
    ];
    let objects: Vec<String> = numbers
        .iter()
        .map(|n| format!("{{\"id\": {n}, \"list\": [{n}, \"x\"]}}"))
        .collect();
    let expected: Vec<RawRow> = numbers
        .iter()
        .enumerate()
        .map(|(i, n)| row(i as u64 + 1, &[n, &format!("[{n},\"x\"]")]))
        .collect();
    let (h, rows) = read_bytes("m.json", format!("[{}]", objects.join(",\n")));
    assert_eq!(h, header(&["id", "list"]));
    assert_eq!(rows, expected);
    let (h, rows) = read_bytes("m.jsonl", objects.join("\n"));
    assert_eq!(h, header(&["id", "list"]));
    assert_eq!(rows, expected);
}

/// An array or object value is kept as compact JSON with its strings and numbers as
/// written: white space goes only between tokens, never inside a string.
#[test]
fn json_list_and_object_cells_are_compact_and_as_written() {
    let json = "[{\"a\": [ 1E3 ,\t\"x  y\" ,\n \"q\\\" ,\\\\\" ], \"b\": { \"k\" : -0.0 }}]";
    let (h, rows) = read_bytes("m.json", json);
    assert_eq!(h, header(&["a", "b"]));
    assert_eq!(
        rows,
        vec![row(1, &[r#"[1E3,"x  y","q\" ,\\"]"#, r#"{"k":-0.0}"#])]
    );
}

#[test]
fn json_array_skips_empty_objects_but_counts_them() {
    let (h, rows) = read_bytes(
        "m.json",
        r#"[{"a": "1"}, {}, {"a": null}, {"a": "  "}, {"a": 2}]"#,
    );
    assert_eq!(h, header(&["a"]));
    assert_eq!(rows, vec![row(1, &["1"]), row(5, &["2"])]);
    assert_eq!(read_bytes("m.json", "  [ ]  "), (vec![], vec![]));
}

#[test]
fn json_syntax_error_names_its_line() {
    let dir = TempDir::new().expect("temp dir");
    let path = write(
        &dir,
        "m.json",
        "[\n  {\"a\": 1},\n  {\"a\": 2,},\n  {\"a\": 3}\n]\n",
    );
    let err = open(&source(&path)).err().expect("syntax error");
    assert!(
        matches!(err, ManifestError::Syntax { line: 3, .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.starts_with(&format!("{}: line 3: ", path.display())),
        "{message}"
    );
    assert!(message.contains("not valid JSON"), "{message}");
}

#[test]
fn json_error_after_leading_blank_lines_keeps_the_file_line() {
    let dir = TempDir::new().expect("temp dir");
    let path = write(&dir, "m.json", "\n\n[\n{\"a\": 1}\n{\"a\": 2}]");
    let err = open(&source(&path)).err().expect("syntax error");
    assert_eq!(err.line(), Some(5), "{err}");
}

#[test]
fn json_element_that_is_not_an_object() {
    let dir = TempDir::new().expect("temp dir");
    let path = write(&dir, "m.json", "[{\"a\": 1},\n 42]");
    let message = open_error(&source(&path));
    assert!(
        message.contains("line 2: element 2 of the array is not an object"),
        "{message}"
    );
    let object = write(&dir, "o.json", "{\"a\": 1}\n{\"a\": 2}\n");
    assert!(open_error(&source(&object)).contains("--format jsonl"));
}

#[test]
fn json_lines_with_blank_lines() {
    let jsonl = "{\"name\": \"Ada\", \"mobile\": \"138\"}\n\n   \n{\"mobile\": 139, \"name\": \"Bo\", \"city\": \"Taipei\"}\r\n{}\n{\"name\":\"Cy\"}";
    let (h, rows) = read_bytes("calls.jsonl", jsonl);
    assert_eq!(h, header(&["name", "mobile", "city"]));
    assert_eq!(
        rows,
        vec![
            row(1, &["Ada", "138", ""]),
            row(4, &["Bo", "139", "Taipei"]),
            row(6, &["Cy", "", ""])
        ]
    );
    assert_eq!(
        read_bytes("calls.ndjson", "{\"a\":1}\n").1,
        vec![row(1, &["1"])]
    );
}

#[test]
fn json_lines_errors_name_the_line() {
    let dir = TempDir::new().expect("temp dir");
    let path = write(&dir, "m.jsonl", "{\"a\": 1}\n\n{\"a\": 2\n");
    let message = open_error(&source(&path));
    assert!(
        message.starts_with(&format!("{}: line 3: ", path.display())),
        "{message}"
    );
    let path = write(&dir, "n.jsonl", "{\"a\": 1}\n[1, 2]\n");
    assert!(open_error(&source(&path)).contains("line 2: the line is not a JSON object"));
}

#[test]
fn json_in_gb18030() {
    let dir = TempDir::new().expect("temp dir");
    let path = write(
        &dir,
        "m.json",
        encode(encoding_rs::GB18030, r#"[{"姓名": "张三"}]"#),
    );
    assert_eq!(
        read(&with_encoding(&path, "gb18030")),
        (header(&["姓名"]), vec![row(1, &["张三"])])
    );
    assert!(open_error(&source(&path)).contains("--encoding gb18030"));
}

// ------------------------------------------------------------------ XLSX

fn xlsx(dir: &TempDir, name: &str, build: impl FnOnce(&mut rust_xlsxwriter::Workbook)) -> PathBuf {
    let path = dir.path().join(name);
    let mut workbook = rust_xlsxwriter::Workbook::new();
    build(&mut workbook);
    workbook.save(&path).expect("save workbook");
    path
}

#[test]
fn xlsx_cells_read_as_excel_shows_them() {
    use rust_xlsxwriter::{ExcelDateTime, Format as XFormat};
    let dir = TempDir::new().expect("temp dir");
    let path = xlsx(&dir, "m.xlsx", |wb| {
        let ws = wb.add_worksheet();
        for (c, name) in [
            "name",
            "mobile",
            "phone",
            "when",
            "at",
            "ok",
            "ratio",
            "ferry_row",
        ]
        .iter()
        .enumerate()
        {
            ws.write_string(0, c as u16, *name).expect("write");
        }
        ws.write_string(1, 0, "Ada").expect("write");
        ws.write_number(1, 1, 911211211.0).expect("write");
        ws.write_number(1, 2, 8618100000030.0).expect("write");
        let date = ExcelDateTime::from_ymd(2024, 2, 22).expect("date");
        ws.write_datetime_with_format(1, 3, &date, &XFormat::new().set_num_format("yyyy-mm-dd"))
            .expect("write");
        let at = ExcelDateTime::from_ymd(2024, 2, 22)
            .expect("date")
            .and_hms(14, 30, 5)
            .expect("time");
        ws.write_datetime_with_format(
            1,
            4,
            &at,
            &XFormat::new().set_num_format("yyyy-mm-dd hh:mm:ss"),
        )
        .expect("write");
        ws.write_boolean(1, 5, true).expect("write");
        ws.write_number(1, 6, 0.25).expect("write");
        ws.write_number(1, 7, 2.0).expect("write");
        // Row 3 is left empty; row 4 has only its first cells.
        ws.write_string(3, 0, "Bo").expect("write");
        ws.write_string(3, 1, "+886912345678").expect("write");
    });
    let (h, rows) = read(&source(&path));
    assert_eq!(
        h,
        header(&["name", "mobile", "phone", "when", "at", "ok", "ratio"])
    );
    assert_eq!(
        rows,
        vec![
            row(
                2,
                &[
                    "Ada",
                    "911211211",
                    "8.61810000003E+12",
                    "2024-02-22",
                    "2024-02-22 14:30:05",
                    "true",
                    "0.25"
                ]
            ),
            row(4, &["Bo", "+886912345678", "", "", "", "", ""]),
        ]
        .into_iter()
        // The sheet has a ferry_row column: its rows read as fed back from a report made
        // before ferry_source_row, in a manifest ferry cannot name; Ada's ferry_row is 2,
        // Bo's is empty.
        .zip([2, 0])
        .map(|(r, source_row)| unknown_origin(r, source_row))
        .collect::<Vec<_>>()
    );
}

#[test]
fn xlsx_numbers_read_through_their_number_format() {
    use rust_xlsxwriter::{ExcelDateTime, Format as XFormat};
    let dir = TempDir::new().expect("temp dir");
    let path = xlsx(&dir, "m.xlsx", |wb| {
        let ws = wb.add_worksheet();
        let columns = [
            "padded", "whole", "general", "dashed", "built_in", "amount", "text", "when",
        ];
        for (c, name) in columns.iter().enumerate() {
            ws.write_string(0, c as u16, *name).expect("write");
        }
        let custom = |code: &str| Some(XFormat::new().set_num_format(code));
        // Built-in formats are stored by id alone: 1 is `0`, 4 `#,##0.00`, 49 `@`.
        let built_in = |id: u8| Some(XFormat::new().set_num_format_index(id));
        for (c, value, format) in [
            (0, 912_345_678.0, custom("0000000000")),
            (1, 8_613_800_138_000.0, custom("0")),
            (2, 8_613_800_138_000.0, None),
            (3, 13_800_138_000.0, custom("000-0000-0000")),
            (4, 8_613_800_138_000.0, built_in(1)),
            (5, 1_234.5, built_in(4)),
            (6, 8_613_800_138_000.0, built_in(49)),
        ] {
            match format {
                Some(format) => ws.write_number_with_format(1, c, value, &format),
                None => ws.write_number(1, c, value),
            }
            .expect("write");
        }
        let date = ExcelDateTime::from_ymd(2024, 2, 22).expect("date");
        let date_format = XFormat::new().set_num_format("yyyy-mm-dd");
        ws.write_datetime_with_format(1, 7, &date, &date_format)
            .expect("write");
    });
    let (_, rows) = read(&source(&path));
    assert_eq!(
        rows,
        vec![row(
            2,
            &[
                "0912345678",
                "8613800138000",
                "8.613800138E+12",
                "138-0013-8000",
                "8613800138000",
                "1,234.50",
                "8.613800138E+12",
                "2024-02-22",
            ]
        )]
    );
}

#[test]
fn xlsx_first_row_blank_and_sheet_choice() {
    let dir = TempDir::new().expect("temp dir");
    let path = xlsx(&dir, "m.xlsx", |wb| {
        let first = wb.add_worksheet();
        first.set_name("Notes").expect("name");
        first.write_string(0, 0, "read me").expect("write");
        let calls = wb.add_worksheet();
        calls.set_name("Calls").expect("name");
        // Rows 1 and 2 are blank; the header is on row 3.
        calls.write_string(2, 1, "name").expect("write");
        calls.write_string(2, 2, "mobile").expect("write");
        calls.write_string(3, 1, "Ada").expect("write");
        calls.write_string(3, 2, "138").expect("write");
        calls.write_string(4, 4, "stray").expect("write");
    });
    assert_eq!(read(&source(&path)), (header(&["read me"]), vec![]));
    let chosen = Source {
        sheet: Some("Calls".to_string()),
        ..source(&path)
    };
    let (h, rows) = read(&chosen);
    assert_eq!(h, header(&["column_1", "name", "mobile"]));
    assert_eq!(rows[0], row(4, &["", "Ada", "138"]));
    assert_eq!(rows[1].row, 5);
    assert_eq!(rows[1].cells, vec!["", "", ""]);
    assert_eq!(rows[1].defects.len(), 1);
    assert_eq!(rows[1].defects[0].code, Code::RaggedRow);
    assert!(rows[1].defects[0].message.contains("\"stray\""));

    let unknown = Source {
        sheet: Some("Agents".to_string()),
        ..source(&path)
    };
    assert_eq!(
        open_error(&unknown),
        format!(
            "{}: the workbook has no sheet named \"Agents\"; its sheets are \"Notes\", \"Calls\"",
            path.display()
        )
    );
}

#[test]
fn xlsx_that_is_not_a_workbook() {
    let dir = TempDir::new().expect("temp dir");
    let path = write(&dir, "m.xlsx", "name,mobile\nAda,1\n");
    assert!(open_error(&source(&path)).contains("cannot read it as an XLSX workbook"));
}

#[test]
fn a_workbook_saved_as_csv_name_is_recognised() {
    let dir = TempDir::new().expect("temp dir");
    let real = xlsx(&dir, "m.xlsx", |wb| {
        wb.add_worksheet().write_string(0, 0, "a").expect("write");
    });
    let renamed = dir.path().join("m.csv");
    std::fs::copy(real, &renamed).expect("copy");
    assert!(open_error(&source(&renamed)).contains("pass --format xlsx"));
}

// ------------------------------------------------------------------ sources

#[test]
fn format_comes_from_the_extension_or_the_flag() {
    let dir = TempDir::new().expect("temp dir");
    let path = write(&dir, "m.txt", "a\n1\n");
    assert_eq!(
        open_error(&source(&path)),
        format!(
            "{}: cannot tell the format from the extension \".txt\"; pass --format csv, tsv, json, \
             jsonl or xlsx",
            path.display()
        )
    );
    let missing = dir.path().join("missing.csv");
    assert!(open_error(&source(&missing))
        .starts_with(&format!("{}: cannot read it: ", missing.display())));
}

#[test]
fn standard_input_needs_a_format_and_is_spooled() {
    let stdin = Source {
        path: PathBuf::from("-"),
        format: None,
        encoding: None,
        sheet: None,
    };
    let err = open_reader(&stdin, Cursor::new(b"a\n1\n".to_vec()))
        .err()
        .expect("error");
    assert_eq!(
        err.to_string(),
        "<stdin>: standard input has no file name to tell the format by; pass --format csv, tsv, \
         json, jsonl or xlsx"
    );
    for (format, bytes) in [
        (Format::Csv, "a,b\n1,2\n"),
        (Format::Tsv, "a\tb\n1\t2\n"),
        (Format::Json, r#"[{"a": "1", "b": 2}]"#),
        (Format::Jsonl, "{\"a\": \"1\", \"b\": 2}\n"),
    ] {
        let source = Source {
            format: Some(format),
            ..stdin.clone()
        };
        let (h, rows) =
            read_all(open_reader(&source, Cursor::new(bytes.as_bytes().to_vec())).expect("open"));
        assert_eq!(h, header(&["a", "b"]), "{format:?}");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].cells, vec!["1", "2"]);
    }
    let source = Source {
        format: Some(Format::Json),
        ..stdin.clone()
    };
    let err = open_reader(&source, Cursor::new(b"[1".to_vec()))
        .err()
        .expect("error");
    assert!(err.to_string().starts_with("<stdin>: line 1: "), "{err}");
}

#[test]
fn xlsx_from_standard_input() {
    let dir = TempDir::new().expect("temp dir");
    let path = xlsx(&dir, "m.xlsx", |wb| {
        let ws = wb.add_worksheet();
        ws.write_string(0, 0, "a").expect("write");
        ws.write_number(1, 0, 5.0).expect("write");
    });
    let bytes = std::fs::read(path).expect("read");
    let source = Source {
        path: PathBuf::from("-"),
        format: Some(Format::Xlsx),
        encoding: None,
        sheet: None,
    };
    assert_eq!(
        read_all(open_reader(&source, Cursor::new(bytes)).expect("open")),
        (header(&["a"]), vec![row(2, &["5"])])
    );
}

/// A pipe (`ferry run <(zcat m.json.gz)`) cannot be read twice: it is spooled like
/// standard input, and named as given.
#[cfg(unix)]
#[test]
fn a_named_pipe_is_spooled() {
    let dir = TempDir::new().expect("temp dir");
    let fifo = dir.path().join("pipe.json");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("mkfifo unavailable; skipped");
        return;
    }
    let writer_path = fifo.clone();
    let writer = std::thread::spawn(move || {
        std::fs::write(writer_path, r#"[{"a": 1}, {"b": 2}]"#).expect("write pipe")
    });
    let (h, rows) = read(&source(&fifo));
    writer.join().expect("writer");
    assert_eq!(h, header(&["a", "b"]));
    assert_eq!(rows, vec![row(1, &["1", ""]), row(2, &["", "2"])]);
}

#[test]
fn spooled_input_lives_as_long_as_its_path() {
    let spooled = spool(Cursor::new(b"name\nAda\n".to_vec())).expect("spool");
    let path = spooled.to_path_buf();
    assert_eq!(std::fs::read(&path).expect("read"), b"name\nAda\n");
    drop(spooled);
    assert!(!path.exists());
}

#[test]
fn rows_can_be_dropped_early_without_hanging() {
    let mut json = String::from("[");
    for i in 0..10_000 {
        json.push_str(&format!("{}{{\"a\": {i}}}", if i > 0 { "," } else { "" }));
    }
    json.push(']');
    let dir = TempDir::new().expect("temp dir");
    let path = write(&dir, "m.json", json);
    let manifest = open(&source(&path)).expect("open");
    let first: Vec<RawRow> = manifest.rows.take(3).map(|r| r.expect("row")).collect();
    let expected: Vec<RawRow> = [row(1, &["0"]), row(2, &["1"]), row(3, &["2"])]
        .into_iter()
        .zip(0..)
        .map(|(row, seq)| RawRow { seq, ..row })
        .collect();
    assert_eq!(first, expected);
}

// ------------------------------------------------------------------ robustness

/// Peak resident memory of this process, in KiB (Linux).
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Run with `cargo test --release --test manifest -- --ignored`: reading a large file
/// must not make memory grow with it.
#[test]
#[ignore = "slow: writes and reads ~300 MB"]
fn memory_stays_flat_on_large_files() {
    use std::io::Write;
    let dir = TempDir::new().expect("temp dir");
    let rows = 2_000_000u64;
    let csv_path = dir.path().join("big.csv");
    let json_path = dir.path().join("big.json");
    let jsonl_path = dir.path().join("big.jsonl");
    {
        let mut csv = std::io::BufWriter::new(std::fs::File::create(&csv_path).expect("create"));
        let mut json = std::io::BufWriter::new(std::fs::File::create(&json_path).expect("create"));
        let mut jsonl =
            std::io::BufWriter::new(std::fs::File::create(&jsonl_path).expect("create"));
        writeln!(csv, "name,mobile,remark").expect("write");
        write!(json, "[").expect("write");
        for i in 0..rows {
            writeln!(csv, "person {i},1380013{i:07},\"some remark, quoted\"").expect("write");
            let sep = if i == 0 { "" } else { "," };
            writeln!(json, "{sep}{{\"name\": \"person {i}\", \"mobile\": {i}}}").expect("write");
            writeln!(jsonl, "{{\"name\": \"person {i}\", \"mobile\": {i}}}").expect("write");
        }
        write!(json, "]").expect("write");
    }
    let before = peak_rss_kib().unwrap_or(0);
    for path in [&csv_path, &json_path, &jsonl_path] {
        let started = std::time::Instant::now();
        let manifest = open(&source(path)).expect("open");
        let mut count = 0u64;
        for raw in manifest.rows {
            raw.expect("row");
            count += 1;
        }
        assert_eq!(count, rows);
        eprintln!("{}: {:?}", path.display(), started.elapsed());
    }
    let after = peak_rss_kib().unwrap_or(0);
    eprintln!("peak RSS {before} KiB -> {after} KiB");
    assert!(
        after.saturating_sub(before) < 64 * 1024,
        "memory grew by {} KiB",
        after - before
    );
}

fn drain(path: &Path) {
    if let Ok(manifest) = open(&source(path)) {
        assert!(manifest.rows.count() < usize::MAX);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let dir = TempDir::new().expect("temp dir");
        for name in ["p.csv", "p.tsv", "p.json", "p.jsonl", "p.xlsx"] {
            drain(&write(&dir, name, &bytes));
        }
    }

    /// Whatever bytes follow a line's marker (quotes left open included), every line's
    /// marker ends up in a cell: no row disappears without a trace.
    #[test]
    fn csv_reader_never_loses_a_line(
        lines in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..24), 1..12)
    ) {
        let dir = TempDir::new().expect("temp dir");
        let header: Vec<String> = (0..320).map(|i| format!("h{i}")).collect();
        let mut body = format!("{}\n", header.join(",")).into_bytes();
        for (i, tail) in lines.iter().enumerate() {
            // No line breaks inside a line; commas limited so a record fits the header.
            let tail: Vec<u8> = tail.iter().map(|&b| match b {
                b'\n' | b'\r' => b' ',
                b => b,
            }).collect();
            body.extend_from_slice(format!("[{i}]").as_bytes());
            body.extend_from_slice(&tail);
            body.push(b'\n');
        }
        let path = write(&dir, "p.csv", &body);
        let manifest = open(&with_encoding(&path, "utf-8")).expect("a header to read");
        let width = manifest.header.len();
        let mut text = String::new();
        let mut last = 0;
        for raw in manifest.rows {
            let raw = raw.expect("csv rows never fail");
            prop_assert_eq!(raw.cells.len(), width);
            prop_assert!(raw.row > last);
            last = raw.row;
            for cell in &raw.cells {
                text.push_str(cell);
                text.push('\u{1}');
            }
        }
        for i in 0..lines.len() {
            let marker = format!("[{i}]");
            prop_assert!(text.contains(&marker), "{} lost from {:?}", marker, text);
        }
    }

    #[test]
    fn csv_like_text_never_panics_and_rows_line_up(
        text in "[a-c,\"\r\n\t ]{0,200}"
    ) {
        let dir = TempDir::new().expect("temp dir");
        let path = write(&dir, "p.csv", &text);
        if let Ok(manifest) = open(&source(&path)) {
            let width = manifest.header.len();
            let mut last = 0;
            for raw in manifest.rows {
                let raw = raw.expect("csv rows never fail");
                prop_assert_eq!(raw.cells.len(), width);
                prop_assert!(raw.row > last);
                last = raw.row;
            }
        }
    }

    #[test]
    fn json_like_text_never_panics(text in "[\\[\\]{}\":,0-9a\n ]{0,120}") {
        let dir = TempDir::new().expect("temp dir");
        drain(&write(&dir, "p.json", &text));
        drain(&write(&dir, "p.jsonl", &text));
    }
}

// ---------------------------------------------------------------------------------------
// Whole manifests, every format, through the reader and the validator (issue 9)

/// A cell as hostile input writes one: ordinary values, quotes and separators, line
/// breaks, control characters, formula starts, long runs, odd Unicode.
fn hostile_cell() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9 ._-]{0,12}",
        "[0-9+() -]{0,20}",
        Just(String::new()),
        Just("\"".to_string()),
        Just("a\"b,\"c".to_string()),
        Just("line\nbreak".to_string()),
        Just("\r\n".to_string()),
        Just("\u{0}\u{7}\u{1b}".to_string()),
        Just("=cmd()".to_string()),
        Just("８８６".to_string()),
        Just("\u{feff}\u{200b}".to_string()),
        "\\PC{0,40}",
        "x{0,300}",
    ]
}

fn any_kind() -> impl Strategy<Value = ferry::kinds::Kind> {
    prop::sample::select(ferry::kinds::Kind::ALL.to_vec())
}

/// A manifest of `kind`: its own header (some names dropped or unknown ones added) and
/// hostile rows.
fn hostile_table() -> impl Strategy<Value = (ferry::kinds::Kind, Vec<String>, Vec<Vec<String>>)> {
    any_kind().prop_flat_map(|kind| {
        let fields: Vec<String> = kind.fields().iter().map(|f| f.to_string()).collect();
        let width = fields.len() + 1;
        (
            Just(kind),
            Just(fields),
            prop::collection::vec(prop::collection::vec(hostile_cell(), 0..=width), 0..12),
        )
    })
}

fn csv_text(header: &[String], rows: &[Vec<String>], separator: u8) -> Vec<u8> {
    let mut writer = csv::WriterBuilder::new()
        .delimiter(separator)
        .flexible(true)
        .from_writer(Vec::new());
    writer.write_record(header).unwrap();
    for row in rows {
        writer.write_record(row).unwrap();
    }
    writer.into_inner().unwrap()
}

fn json_objects(header: &[String], rows: &[Vec<String>]) -> Vec<serde_json::Value> {
    rows.iter()
        .map(|row| {
            let object: serde_json::Map<String, serde_json::Value> = header
                .iter()
                .zip(row)
                .map(|(k, v)| {
                    // Numbers and booleans where a cell reads as one, as JSON exports have.
                    let value = match v.parse::<f64>() {
                        Ok(n) if n.is_finite() => serde_json::json!(n),
                        _ if v == "true" => serde_json::json!(true),
                        _ => serde_json::json!(v),
                    };
                    (k.clone(), value)
                })
                .collect();
            serde_json::Value::Object(object)
        })
        .collect()
}

fn xlsx_bytes(header: &[String], rows: &[Vec<String>]) -> Vec<u8> {
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    for (c, name) in header.iter().enumerate() {
        sheet.write_string(0, c as u16, name).unwrap();
    }
    for (r, row) in rows.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            let (r, c) = (r as u32 + 1, c as u16);
            match cell.parse::<f64>() {
                Ok(n) if n.is_finite() => sheet.write_number(r, c, n).map(|_| ()),
                _ => sheet.write_string(r, c, cell).map(|_| ()),
            }
            .unwrap();
        }
    }
    workbook.save_to_buffer().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Whatever a manifest holds, `validate` ends without a panic, and either refuses the
    /// file as a whole (a header problem, exit 2) or accounts for every row it read:
    /// total = valid + failed, each row once.
    #[test]
    fn every_format_every_kind_no_panic_and_every_row_accounted_for(
        (kind, header, rows) in hostile_table(),
        format in prop::sample::select(vec!["csv", "tsv", "json", "jsonl", "xlsx"]),
    ) {
        let dir = TempDir::new().unwrap();
        let bytes = match format {
            "csv" => csv_text(&header, &rows, b','),
            "tsv" => csv_text(&header, &rows, b'\t'),
            "json" => serde_json::to_vec(&json_objects(&header, &rows)).unwrap(),
            "jsonl" => json_objects(&header, &rows)
                .iter()
                .flat_map(|o| {
                    let mut line = serde_json::to_vec(o).unwrap();
                    line.push(b'\n');
                    line
                })
                .collect(),
            _ => xlsx_bytes(&header, &rows),
        };
        let path = write(&dir, &format!("m.{format}"), bytes);
        let config = ferry::config::Config::parse(
            "[defaults]\ntimezone = \"Asia/Taipei\"\ncountry_code = \"886\"",
        )
        .unwrap();
        let reports = dir.path().join("reports");
        let input = ferry::pipeline::Input {
            source: source(&path),
            name: "m".into(),
            kind,
            event_id: Some(542818),
            report_dir: Some(reports.clone()),
            overwrite: false,
        };
        let result = ferry::pipeline::validate(&input, &config);
        if let Ok(report) = result {
            let c = &report.summary.counts;
            prop_assert_eq!(c.total, c.succeeded + c.failed_total);
            // Rows with content are never lost: the writers produced at most as many as
            // there are rows, and blank rows are the only ones skipped.
            prop_assert!(c.total <= rows.len() as u64);
            // A JSON object holds the header's keys only: cells past them are never written.
            let width = if format.starts_with("json") { header.len() } else { usize::MAX };
            let blank = rows
                .iter()
                .filter(|r| r.iter().take(width).all(|c| c.trim().is_empty()))
                .count();
            prop_assert!(
                c.total + blank as u64 >= rows.len() as u64,
                "{} rows read of {} ({} blank)",
                c.total,
                rows.len(),
                blank
            );
        }
    }
}
