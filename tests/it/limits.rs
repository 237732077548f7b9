//! Issue 9: reading limits are errors with a message, never a crash, gigabytes of RAM or
//! a silently dropped row. Each test builds its hostile file in a fresh temporary folder
//! and runs the real binary on it, asserting the exit code and the reports (or the
//! message) exactly.

use crate::xlsx_support;
use std::io::Write;
use std::path::PathBuf;

use crate::cli_support::{ferry, write, Run};
use tempfile::TempDir;

// ------------------------------------------------------------------ quotes left open

#[test]
fn an_unclosed_quote_before_ten_rows_fails_its_row_and_the_ten_are_still_read() {
    // Issue 9: the quote swallowed the ten rows after it, and the run said "10 rows, 10
    // succeeded", exit 0.
    let dir = TempDir::new().expect("temp dir");
    let mut body = String::from("userId,note\nu1,\"left open\n");
    for i in 2..=11 {
        body.push_str(&format!("u{i},fine\n"));
    }
    let manifest = write(&dir, "agents.csv", body);
    let run = ferry(&dir, "validate", &manifest, "agent-settings", &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);

    let failed = run.records("failed.csv");
    assert_eq!(failed.len(), 2, "the header and the one row: {failed:?}");
    assert_eq!(
        failed[1],
        [
            "2",
            "u1",
            "validation",
            "unclosed_quote",
            "the quote that opens the cell in column \"note\" is never closed: it would take \
             in the 10 lines after it, to the end of the file, as one cell. ferry cut the cell \
             at its first line break and read the lines after it as rows of their own. Close \
             the quote, or write a quote that belongs to the text as two (\"\"), then feed this \
             row again",
            "note",
            "",
            "",
            "",
            "0",
            "u1",
            "left open",
        ]
    );
    let valid = run.records("valid.csv");
    let rows: Vec<(&str, &str)> = valid[1..]
        .iter()
        .map(|r| (r[0].as_str(), r[7].as_str()))
        .collect();
    let expected: Vec<(String, String)> = (2..=11)
        .map(|i| ((i + 1).to_string(), format!("u{i}")))
        .collect();
    let expected: Vec<(&str, &str)> = expected
        .iter()
        .map(|(r, u)| (r.as_str(), u.as_str()))
        .collect();
    assert_eq!(rows, expected);
    let summary = run.summary();
    assert_eq!(summary["counts"]["total"], 11);
    assert_eq!(summary["counts"]["succeeded"], 10);
    assert_eq!(summary["counts"]["failed_total"], 1);
    assert_eq!(summary["exit_code"], 1);
}

#[test]
fn a_quote_that_swallows_hundreds_of_lines_is_reported_where_it_opened() {
    let dir = TempDir::new().expect("temp dir");
    let mut body = String::from("userId,note\nu0,ok\nu1,\"opens here\n");
    for i in 2..400 {
        body.push_str(&format!("u{i},fine\n"));
    }
    let manifest = write(&dir, "agents.csv", body);
    let run = ferry(&dir, "validate", &manifest, "agent-settings", &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let failed = run.records("failed.csv");
    assert_eq!(failed.len(), 2);
    assert_eq!(&failed[1][..4], ["3", "u1", "validation", "unclosed_quote"]);
    assert!(
        failed[1][4].contains("runs over more than 253 line breaks"),
        "{}",
        failed[1][4]
    );
    let valid = run.records("valid.csv");
    assert_eq!(
        valid.len(),
        1 + 1 + 398,
        "u0 and every line after the quote"
    );
    assert_eq!(valid.last().expect("rows")[..2], ["401", "u399"]);
    assert_eq!(run.summary()["counts"]["total"], 400);
}

// ------------------------------------------------------------------ wide files

#[test]
fn a_csv_of_20000_columns_is_exit_2_naming_the_limit() {
    let dir = TempDir::new().expect("temp dir");
    let mut header = vec!["userId".to_string()];
    header.extend((1..20_000).map(|i| format!("c{i}")));
    let manifest = write(&dir, "wide.csv", format!("{}\nu1\n", header.join(",")));
    let run = ferry(&dir, "validate", &manifest, "agent-settings", &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(
        run.error(),
        format!(
            "{}: the header (row 1) has 20,000 columns, more than the 16,384 (Excel's limit) \
             ferry reads; remove the columns the kind does not use, or split the file",
            manifest.display()
        )
    );
}

/// A manifest as wide as Excel allows: with the ferry columns in front, its reports are
/// wider than a sheet.
fn widest_csv(dir: &TempDir, rows: usize) -> PathBuf {
    let mut header = vec!["userId".to_string()];
    header.extend((1..16_384).map(|i| format!("c{i}")));
    let mut body = header.join(",");
    body.push('\n');
    for r in 1..=rows {
        let mut cells = vec![format!("u{r}")];
        cells.extend((1..16_384).map(|i| format!("v{i}")));
        body.push_str(&cells.join(","));
        body.push('\n');
    }
    write(dir, "wide.csv", body)
}

fn assert_cut_at_excel_s_last_column(run: &Run, table: &str) {
    // The CSV keeps every column: 7 ferry columns and the manifest's 16,384.
    let csv = run.records(&format!("{table}.csv"));
    assert_eq!(csv[0].len(), 7 + 16_384);
    assert_eq!(csv[1].last().map(String::as_str), Some("v16383"));
    // Each sheet is its CSV laid out for a person and stops at XFD: `ferry_row`, the
    // message, then the manifest's columns up to c16381; ferry's other columns are past
    // the edge.
    let book = xlsx_support::Book::open(&run.reports.join("report.xlsx"));
    // validate's workbook leaves the valid rows to valid.csv: its (empty) failed sheet
    // is the one cut.
    let (tables, sheet, message): (&[&str], _, _) = if table == "valid" {
        (&["failed"], "failed", "ferry_error")
    } else {
        (
            &["failed", "succeeded", "skipped", "unprocessed"],
            table,
            "ferry_warning",
        )
    };
    for name in tables {
        let csv = run.records_with_origins(&format!("{name}.csv"));
        xlsx_support::assert_person_sheet(&book, name, &csv);
    }
    let rows = book.text_cells(sheet);
    assert_eq!(rows[0].len(), 16_384);
    assert_eq!(rows[0][..3], ["ferry_row", message, "userId"]);
    assert_eq!(rows[0][16_383], "c16381");
    if sheet == table {
        assert_eq!(rows[1][16_383], "v16381");
    }
    let summary = book.text_cells("summary");
    let stops: Vec<String> = tables
        .iter()
        .map(|name| format!("sheet \"{name}\" at column \"c16381\""))
        .collect();
    assert_eq!(
        summary[0],
        [
            "note".to_string(),
            format!(
                "a sheet holds 16384 columns and the tables have up to 16396, so the sheets stop \
                 early ({}); the CSV files hold every column",
                stops.join(", ")
            )
        ]
    );
}

#[test]
fn validate_of_the_widest_csv_cuts_the_workbook_not_the_csv() {
    let dir = TempDir::new().expect("temp dir");
    let manifest = widest_csv(&dir, 3);
    let run = ferry(&dir, "validate", &manifest, "agent-settings", &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_cut_at_excel_s_last_column(&run, "valid");
}

#[test]
fn run_of_the_widest_csv_writes_its_reports_after_sending() {
    // Issue 9: report.xlsx broke after the rows were sent, and summary.json said exit 0.
    let dir = TempDir::new().expect("temp dir");
    let manifest = widest_csv(&dir, 2);
    let run = ferry(
        &dir,
        "run",
        &manifest,
        "agent-settings",
        &["--target", "sandbox", "--state", "state.db"],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.summary()["counts"]["succeeded"], 2);
    assert_cut_at_excel_s_last_column(&run, "succeeded");
}

// ------------------------------------------------------------------ JSON

#[test]
fn json_objects_with_a_key_each_are_exit_2_before_the_reports_grow() {
    // Issue 9: 0.9 MB of such objects made a 401 MB report.
    let dir = TempDir::new().expect("temp dir");
    let objects: Vec<String> = (0..5_000)
        .map(|i| format!("{{\"userId\":\"u{i}\",\"k{i}\":1}}"))
        .collect();
    let manifest = write(&dir, "agents.json", format!("[{}]", objects.join(",\n")));
    let run = ferry(&dir, "validate", &manifest, "agent-settings", &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(
        run.error(),
        format!(
            "{}: key \"k999\" in element 1000 is distinct key number 1,001, more than the 1,000 \
             ferry reads; every report row gets a cell for every key any object has, so write \
             the records with the same keys (an id belongs in a value, not in a key)",
            manifest.display()
        )
    );
    assert!(!run.reports.join("failed.csv").exists());
}

#[test]
fn json_lines_with_a_key_each_name_the_line() {
    let dir = TempDir::new().expect("temp dir");
    let lines: Vec<String> = (0..2_000)
        .map(|i| format!("{{\"userId\":\"u{i}\",\"k{i}\":1}}"))
        .collect();
    let manifest = write(&dir, "agents.jsonl", lines.join("\n"));
    let run = ferry(&dir, "validate", &manifest, "agent-settings", &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.error()
            .contains("key \"k999\" in line 1000 is distinct key number 1,001"),
        "{}",
        run.error()
    );
}

// ------------------------------------------------------------------ XLSX

/// A workbook written part by part, so that a test can put in it what no spreadsheet
/// would. `parts` are (name, XML) besides the package's fixed ones.
fn workbook(dir: &TempDir, name: &str, parts: &[(&str, &[u8])]) -> PathBuf {
    workbook_with_sheet_at(dir, name, "worksheets/sheet1.xml", parts)
}

/// A hand-made workbook whose relationships put its one sheet at `target`.
fn workbook_with_sheet_at(
    dir: &TempDir,
    name: &str,
    target: &str,
    parts: &[(&str, &[u8])],
) -> PathBuf {
    let path = dir.path().join(name);
    let file = std::fs::File::create(&path).expect("create xlsx");
    let mut zip = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(1))
        .large_file(true);
    let fixed: [(&str, &[u8]); 3] = [
        (
            "[Content_Types].xml",
            br#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"#,
        ),
        (
            "_rels/.rels",
            br#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#,
        ),
        (
            "xl/workbook.xml",
            br#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>"#,
        ),
    ];
    let rels = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="{target}"/></Relationships>"#
    );
    let rels: [(&str, &[u8]); 1] = [("xl/_rels/workbook.xml.rels", rels.as_bytes())];
    for (part, xml) in fixed.iter().chain(&rels).chain(parts) {
        zip.start_file(*part, options).expect("start part");
        zip.write_all(xml).expect("write part");
    }
    zip.finish().expect("finish xlsx");
    path
}

/// A hand-made workbook of one sheet, `sheet` (its XML).
fn one_sheet(dir: &TempDir, name: &str, sheet: &str) -> PathBuf {
    workbook(dir, name, &[("xl/worksheets/sheet1.xml", sheet.as_bytes())])
}

const SHEET_START: &str = r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>"#;
const SHEET_END: &str = "</sheetData></worksheet>";

fn inline_row(row: u64, value: &str) -> String {
    format!(r#"<row r="{row}"><c r="A{row}" t="inlineStr"><is><t>{value}</t></is></c></row>"#)
}

#[test]
fn a_hand_made_workbook_within_the_limits_reads() {
    // The fixture the hostile workbooks below are built from.
    let dir = TempDir::new().expect("temp dir");
    let sheet = format!(
        "{SHEET_START}{}{}{SHEET_END}",
        inline_row(1, "userId"),
        inline_row(2, "u1")
    );
    let manifest = one_sheet(&dir, "ok.xlsx", &sheet);
    let run = ferry(&dir, "validate", &manifest, "agent-settings", &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.records("valid.csv")[1][..2], ["2", "u1"]);
}

/// Validates a workbook whose one sheet is `sheet`, which ferry must refuse (exit 2, no
/// panic): the manifest's path as messages show it, and the error line.
fn refused_sheet(sheet: &str) -> (String, String) {
    let dir = TempDir::new().expect("temp dir");
    let manifest = workbook(
        &dir,
        "m.xlsx",
        &[("xl/worksheets/sheet1.xml", sheet.as_bytes())],
    );
    let run = ferry(&dir, "validate", &manifest, "agent-settings", &[]);
    assert_eq!(run.code, 2, "{sheet}\n{}", run.stderr);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    (manifest.display().to_string(), run.error())
}

/// What ferry says to do about a workbook whose parts pass a bound.
const WORKBOOK_TODO: &str = "if a spreadsheet saved it, save the sheet as CSV UTF-8 and pass \
                             that; a workbook from anywhere else may not be what it claims";

#[test]
fn a_sheet_in_a_part_not_named_as_xml_is_exit_2_not_read_unchecked() {
    // The bounds are checked on parts named .xml; calamine reads a sheet wherever the
    // workbook's relationships put it.
    let dir = TempDir::new().expect("temp dir");
    let sheet = format!(
        "{SHEET_START}{}{}{SHEET_END}",
        inline_row(1, "userId"),
        inline_row(4_000_000_000, "u2")
    );
    let manifest = workbook_with_sheet_at(
        &dir,
        "hidden-part.xlsx",
        "worksheets/sheet1.bin",
        &[("xl/worksheets/sheet1.bin", sheet.as_bytes())],
    );
    let run = ferry(&dir, "validate", &manifest, "agent-settings", &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(
        run.error(),
        format!(
            "{}: its workbook puts a sheet in the part \"worksheets/sheet1.bin\", which is not \
             named as XML (no spreadsheet does that, and ferry checks only XML parts before \
             reading them); {WORKBOOK_TODO}",
            manifest.display()
        )
    );
}

#[test]
fn a_cell_at_row_four_billion_is_exit_2_not_half_a_gigabyte() {
    let (path, error) = refused_sheet(&format!(
        "{SHEET_START}{}{}{}{SHEET_END}",
        inline_row(1, "userId"),
        inline_row(2, "u1"),
        inline_row(4_000_000_000, "u2")
    ));
    assert_eq!(
        error,
        format!(
            "{path}: its part \"xl/worksheets/sheet1.xml\" refers to row 4,000,000,000, more \
             than the 1,048,576 rows (Excel's limit) ferry reads; {WORKBOOK_TODO}"
        )
    );
}

#[test]
fn a_row_counted_on_past_the_last_row_is_exit_2() {
    // No reference past the grid: the row after Excel's last has no `r` of its own.
    let (path, error) = refused_sheet(&format!(
        "{SHEET_START}{}{}{}<row><c t=\"inlineStr\"><is><t>u2</t></is></c></row>{SHEET_END}",
        inline_row(1, "userId"),
        inline_row(2, "u1"),
        inline_row(1_048_576, "u3")
    ));
    assert_eq!(
        error,
        format!(
            "{path}: sheet \"Sheet1\" has a cell at row 1,048,577, more than the 1,048,576 rows \
             (Excel's limit) ferry reads; the file was not saved by a spreadsheet as it is; open \
             it in one and save it again, or save the sheet as CSV UTF-8"
        )
    );
}

/// Found by the fuzzer (fuzz target `xlsx_parts`, input `<sheetData><c r="AshetDat">`):
/// calamine adds up a cell reference's letters and digits in a u32 unchecked, so a long
/// one panicked its reader thread ("attempt to multiply with overflow") in debug builds,
/// and in release builds wrapped round to a cell the file never named (`A4294967297` is
/// A1, in the header). Such references are now refused before calamine reads them.
#[test]
fn fuzz_cell_reference_overflow_is_exit_2_not_a_panic() {
    let cases = [
        (
            format!(
                "{SHEET_START}{}<row r=\"2\"><c r=\"AshetDat2\" t=\"inlineStr\"><is><t>u1</t></is></c></row>{SHEET_END}",
                inline_row(1, "userId")
            ),
            "column AshetDat, more than the 16,384 columns",
        ),
        (
            format!(
                "{SHEET_START}{}{}{SHEET_END}",
                inline_row(1, "userId"),
                inline_row(4_294_967_297, "u1")
            ),
            "row 4,294,967,297, more than the 1,048,576 rows",
        ),
        (
            format!(
                "{}<dimension ref=\"A1:ZZZZZZZ1\"/><sheetData>{}{SHEET_END}",
                SHEET_START.strip_suffix("<sheetData>").expect("the sheet's start"),
                inline_row(1, "userId")
            ),
            "column ZZZZZZZ, more than the 16,384 columns",
        ),
    ];
    for (sheet, what) in cases {
        let (path, error) = refused_sheet(&sheet);
        assert_eq!(
            error,
            format!(
                "{path}: its part \"xl/worksheets/sheet1.xml\" refers to {what} (Excel's limit) \
                 ferry reads; {WORKBOOK_TODO}"
            ),
            "{sheet}"
        );
    }
    // The same fuzz target, next: calamine subtracts a dimension's start from its end.
    let (path, error) = refused_sheet(&format!(
        "{}<dimension ref=\"I1:G9\"/><sheetData>{}{SHEET_END}",
        SHEET_START
            .strip_suffix("<sheetData>")
            .expect("the sheet's start"),
        inline_row(1, "userId")
    ));
    assert_eq!(
        error,
        format!(
            "{path}: its part \"xl/worksheets/sheet1.xml\" gives the sheet's dimension as \
             \"I1:G9\", which ends before it starts; {WORKBOOK_TODO}"
        )
    );
}

#[test]
fn shared_strings_that_expand_past_the_bound_are_exit_2_before_calamine_reads_them() {
    // A zip bomb: 129 MiB of one repeated string compress to well under 1 MiB.
    let dir = TempDir::new().expect("temp dir");
    let sheet = format!(
        "{SHEET_START}{}{SHEET_END}",
        r#"<row r="1"><c r="A1" t="s"><v>0</v></c></row>"#
    );
    let mut strings = br#"<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">"#.to_vec();
    let si = b"<si><t>userId</t></si>";
    while strings.len() <= 129 << 20 {
        strings.extend_from_slice(si);
    }
    strings.extend_from_slice(b"</sst>");
    let manifest = workbook(
        &dir,
        "bomb.xlsx",
        &[
            ("xl/worksheets/sheet1.xml", sheet.as_bytes()),
            ("xl/sharedStrings.xml", &strings),
        ],
    );
    drop(strings);
    let file_size = std::fs::metadata(&manifest).expect("size").len();
    assert!(file_size < 2 << 20, "the bomb is small: {file_size}");
    let run = ferry(&dir, "validate", &manifest, "agent-settings", &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let error = run.error();
    assert!(
        error.starts_with(&format!(
            "{}: its part \"xl/sharedStrings.xml\" expands to 129.0 MiB (from ",
            manifest.display()
        )),
        "{error}"
    );
    assert!(
        error.ends_with(
            "in the file), more than the 128 MiB (uncompressed, per part other than a sheet) \
             ferry reads; if a spreadsheet saved it, save the sheet as CSV UTF-8 and pass \
             that; a workbook from anywhere else may not be what it claims"
        ),
        "{error}"
    );
}

#[test]
fn a_declared_count_of_billions_of_shared_strings_is_exit_2() {
    // calamine reserves room for the declared count before reading a string.
    let dir = TempDir::new().expect("temp dir");
    let sheet = format!(
        "{SHEET_START}{}{SHEET_END}",
        r#"<row r="1"><c r="A1" t="s"><v>0</v></c></row>"#
    );
    let strings = br#"<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="1" uniqueCount="4000000000"><si><t>userId</t></si></sst>"#;
    let manifest = workbook(
        &dir,
        "declared.xlsx",
        &[
            ("xl/worksheets/sheet1.xml", sheet.as_bytes()),
            ("xl/sharedStrings.xml", strings),
        ],
    );
    let run = ferry(&dir, "validate", &manifest, "agent-settings", &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(
        run.error(),
        format!(
            "{}: it declares 4,000,000,000 shared strings, more than the 2,000,000 ferry reads; \
             if a spreadsheet saved it, save the sheet as CSV UTF-8 and pass that; a workbook \
             from anywhere else may not be what it claims",
            manifest.display()
        )
    );
}

#[test]
fn a_cell_of_a_million_rich_text_runs_is_exit_2() {
    // Each run is short; calamine would join them into one cell of any size.
    let dir = TempDir::new().expect("temp dir");
    let mut sheet = format!(
        "{SHEET_START}{}<row r=\"2\"><c r=\"A2\" t=\"inlineStr\"><is>",
        inline_row(1, "userId")
    );
    while sheet.len() <= 2 << 20 {
        sheet.push_str("<r><t>abcdefghijklmnopqrstuvwxyz</t></r>");
    }
    sheet.push_str("</is></c></row>");
    sheet.push_str(SHEET_END);
    let manifest = one_sheet(&dir, "runs.xlsx", &sheet);
    let run = ferry(&dir, "validate", &manifest, "agent-settings", &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(
        run.error(),
        format!(
            "{}: a cell of its part \"xl/worksheets/sheet1.xml\" takes more than 1 MiB of XML, \
             more than the 1 MiB (a cell holds at most 32767 characters) ferry reads; if a \
             spreadsheet saved it, save the sheet as CSV UTF-8 and pass that; a workbook from \
             anywhere else may not be what it claims",
            manifest.display()
        )
    );
}

/// Review of issue 9: a sheet whose rows repeat (3 after 5) used to be read as two
/// records with one row number; `run` sent rows, then could never finish its reports.
/// It is refused before anything is read further, naming the rows.
#[test]
fn a_sheet_whose_rows_repeat_is_exit_2_before_anything_is_sent() {
    let dir = TempDir::new().expect("temp dir");
    let sheet = format!(
        "{SHEET_START}{}{}{}{}{SHEET_END}",
        inline_row(1, "userId"),
        inline_row(2, "u1"),
        inline_row(5, "u2"),
        inline_row(3, "u3")
    );
    let manifest = one_sheet(&dir, "order.xlsx", &sheet);
    let run = ferry(&dir, "validate", &manifest, "agent-settings", &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.error().contains("row 3 comes again after row 5"),
        "{}",
        run.stderr
    );
}

// ------------------------------------------------------------------ one row's memory

/// The long row of the tests below: `u1` and 40 notes of 30,000 characters (1.2 MB,
/// each cell within Excel's 32,767), then a row `u2`.
const NOTES: usize = 40;
const NOTE: usize = 30_000;

fn long_row_header() -> Vec<String> {
    let mut header = vec!["userId".to_string()];
    header.extend((1..=NOTES).map(|i| format!("note{i}")));
    header
}

/// The long row fails on its own, holding the first 1 MiB of its text (`u1`, 34 whole
/// notes and 28,574 characters of the 35th); the row after it is read as usual.
fn assert_long_row_fails_alone(run: &Run) {
    assert_eq!(run.code, 1, "{}", run.stderr);
    let failed = run.records("failed.csv");
    assert_eq!(failed.len(), 2, "the header and the long row");
    assert_eq!(
        failed[1][..11],
        [
            "2",
            "u1",
            "validation",
            "row_too_long",
            "the row holds more than 1 MiB of text, far more than any manifest row: only its \
             first 1 MiB was read, up to column \"note35\" (cut short there), and the cells \
             after it read as empty. Check the row for text pasted over and over or a missing \
             line break, fix it, then feed it again",
            "",
            "",
            "",
            "",
            "0",
            "u1",
        ]
    );
    let kept: Vec<usize> = failed[1][11..].iter().map(String::len).collect();
    let mut expected = vec![NOTE; 34];
    expected.push(1024 * 1024 - 2 - 34 * NOTE);
    expected.extend([0; 5]);
    assert_eq!(kept, expected);
    let valid = run.records("valid.csv");
    assert_eq!(valid.len(), 2, "the header and u2");
    assert_eq!(valid[1][..2], ["3", "u2"]);
    let summary = run.summary();
    assert_eq!(summary["counts"]["total"], 2);
    assert_eq!(summary["counts"]["failed_total"], 1);
}

#[test]
fn a_csv_row_of_1_2_mb_fails_with_row_too_long_and_the_next_row_reads() {
    // Issue 9: a row kept every cell, so one line of 16,384 cells of 128 KiB held 2 GiB.
    let dir = TempDir::new().expect("temp dir");
    let mut body = long_row_header().join(",");
    body.push_str("\nu1");
    for _ in 0..NOTES {
        body.push(',');
        body.push_str(&"x".repeat(NOTE));
    }
    body.push_str("\nu2");
    body.push_str(&",".repeat(NOTES));
    body.push('\n');
    let manifest = write(&dir, "agents.csv", body);
    let run = ferry(&dir, "validate", &manifest, "agent-settings", &[]);
    assert_long_row_fails_alone(&run);
}

#[test]
fn a_header_past_1_mib_is_exit_2() {
    let dir = TempDir::new().expect("temp dir");
    let names: Vec<String> = (0..NOTES)
        .map(|i| format!("{i}{}", "h".repeat(NOTE)))
        .collect();
    let manifest = write(
        &dir,
        "agents.csv",
        format!("userId,{}\nu1\n", names.join(",")),
    );
    let run = ferry(&dir, "validate", &manifest, "agent-settings", &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(
        run.error(),
        format!(
            "{}: the header (row 1) of the file holds more than the 1 MiB of text ferry reads \
             in a row; a header only names its columns: check that row 1 is the header",
            manifest.display()
        )
    );
}

/// A workbook written by rust_xlsxwriter, as a spreadsheet would save it.
fn spreadsheet(
    dir: &TempDir,
    name: &str,
    build: impl FnOnce(&mut rust_xlsxwriter::Workbook) -> Result<(), rust_xlsxwriter::XlsxError>,
) -> PathBuf {
    let path = dir.path().join(name);
    let mut workbook = rust_xlsxwriter::Workbook::new();
    build(&mut workbook).expect("build the workbook");
    workbook.save(&path).expect("save the workbook");
    path
}

#[test]
fn an_xlsx_row_of_1_2_mb_fails_with_row_too_long_and_the_next_row_reads() {
    // Issue 9: 1.8 MB of inline cells of 32,767 characters peaked at 538 MB.
    let dir = TempDir::new().expect("temp dir");
    let manifest = spreadsheet(&dir, "agents.xlsx", |book| {
        let sheet = book.add_worksheet();
        for (col, name) in long_row_header().iter().enumerate() {
            sheet.write_string(0, col as u16, name)?;
        }
        sheet.write_string(1, 0, "u1")?;
        let note = "x".repeat(NOTE);
        for col in 1..=NOTES {
            sheet.write_string(1, col as u16, &note)?;
        }
        sheet.write_string(2, 0, "u2")?;
        Ok(())
    });
    let run = ferry(&dir, "validate", &manifest, "agent-settings", &[]);
    assert_long_row_fails_alone(&run);
}

// ------------------------------------------------------------------ what a sheet hides

#[test]
fn cells_inside_a_merge_fail_their_rows_even_rows_with_nothing_else() {
    // Issue 9: a merged cell read as empty after its first row, silently.
    let dir = TempDir::new().expect("temp dir");
    let manifest = spreadsheet(&dir, "agents.xlsx", |book| {
        let sheet = book.add_worksheet();
        let plain = rust_xlsxwriter::Format::new();
        sheet.write_row(0, 0, ["userId", "group", "note"])?;
        sheet.write_row(1, 0, ["u1"])?;
        sheet.merge_range(1, 1, 3, 1, "G1", &plain)?;
        sheet.write_row(1, 2, ["n1"])?;
        sheet.write_row(2, 0, ["u2"])?;
        sheet.write_row(2, 2, ["n2"])?;
        sheet.write_row(3, 0, ["u3"])?;
        sheet.write_row(4, 0, ["u4"])?;
        sheet.merge_range(4, 2, 5, 2, "a note over two rows", &plain)?;
        sheet.write_row(6, 0, ["u7", "G7", "n7"])?;
        sheet.write_row(7, 0, ["u8"])?;
        sheet.merge_range(7, 1, 8, 2, "a block", &plain)?;
        sheet.write_row(8, 0, ["u9"])?;
        Ok(())
    });
    let run = ferry(&dir, "validate", &manifest, "agent-settings", &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let merged = |columns: &str, range: &str, first: &str| {
        format!(
            "{columns} inside the merged cells {range}: a merge shows its first cell's value \
             ({first}) in all its cells but stores it only there, so this row does not have it. \
             Unmerge the cells and fill in each one, then feed this row again"
        )
    };
    let failed = run.records("failed.csv");
    let expected: Vec<Vec<String>> = vec![
        failed[0].clone(),
        [
            "3",
            "u2",
            "validation",
            "merged_cell",
            &merged("column \"group\" lies", "B2:B4", "B2"),
            "group",
            "",
            "",
            "",
            "0",
            "u2",
            "",
            "n2",
        ]
        .map(String::from)
        .to_vec(),
        [
            "4",
            "u3",
            "validation",
            "merged_cell",
            &merged("column \"group\" lies", "B2:B4", "B2"),
            "group",
            "",
            "",
            "",
            "0",
            "u3",
            "",
            "",
        ]
        .map(String::from)
        .to_vec(),
        [
            "6",
            "",
            "validation",
            "merged_cell;required",
            &format!(
                "{}; userId is required; fill it in",
                merged("column \"note\" lies", "C5:C6", "C5")
            ),
            "note;userId",
            "",
            "",
            "",
            "0",
            "",
            "",
            "",
        ]
        .map(String::from)
        .to_vec(),
        [
            "8",
            "u8",
            "validation",
            "merged_cell",
            &merged("column \"note\" lies", "B8:C9", "B8"),
            "note",
            "",
            "",
            "",
            "0",
            "u8",
            "a block",
            "",
        ]
        .map(String::from)
        .to_vec(),
        [
            "9",
            "u9",
            "validation",
            "merged_cell",
            &merged("columns \"group\", \"note\" lie", "B8:C9", "B8"),
            "group",
            "",
            "",
            "",
            "0",
            "u9",
            "",
            "",
        ]
        .map(String::from)
        .to_vec(),
    ];
    assert_eq!(failed, expected);
    let valid = run.records("valid.csv");
    let rows: Vec<&str> = valid[1..].iter().map(|r| r[0].as_str()).collect();
    assert_eq!(rows, ["2", "5", "7"]);
    assert_eq!(run.summary()["counts"]["total"], 8);
}

#[test]
fn a_header_merged_across_columns_is_exit_2_naming_the_range() {
    let dir = TempDir::new().expect("temp dir");
    let manifest = spreadsheet(&dir, "agents.xlsx", |book| {
        let sheet = book.add_worksheet();
        sheet.write_row(0, 0, ["userId"])?;
        sheet.merge_range(0, 1, 0, 3, "notes", &rust_xlsxwriter::Format::new())?;
        sheet.write_row(1, 0, ["u1", "a", "b", "c"])?;
        Ok(())
    });
    let run = ferry(&dir, "validate", &manifest, "agent-settings", &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(
        run.error(),
        format!(
            "{}: the header (row 1) of sheet \"Sheet1\" has the merged cells B1:D1, and a merged \
             header names only its first column; unmerge them and give each column its own \
             name (a title above the header does not belong in a manifest: delete its row)",
            manifest.display()
        )
    );
}

#[test]
fn a_merged_range_no_spreadsheet_writes_is_exit_2_before_calamine_parses_it() {
    // Upside down (calamine's own parser subtracts the rows), and past Excel's last row.
    for range in ["B5:B2", "A1:A99999999"] {
        let dir = TempDir::new().expect("temp dir");
        let sheet = format!(
            "{SHEET_START}{}{}</sheetData><mergeCells count=\"1\"><mergeCell ref=\"{range}\"/>\
             </mergeCells></worksheet>",
            inline_row(1, "userId"),
            inline_row(2, "u1")
        );
        let manifest = one_sheet(&dir, "merged.xlsx", &sheet);
        let run = ferry(&dir, "validate", &manifest, "agent-settings", &[]);
        assert_eq!(run.code, 2, "{range}: {}", run.stderr);
        assert_eq!(
            run.error(),
            format!(
                "{}: its part \"xl/worksheets/sheet1.xml\" has a merged range that is not a \
                 range of cells within Excel's rows and columns (<mergeCell ref=\"{range}\"/>); \
                 if a spreadsheet saved it, save the sheet as CSV UTF-8 and pass that; a \
                 workbook from anywhere else may not be what it claims",
                manifest.display()
            )
        );
    }
}

#[test]
fn a_cell_given_twice_fails_its_row_and_keeps_the_first() {
    // Issue 9: the last of two cells with one reference won, silently.
    let dir = TempDir::new().expect("temp dir");
    let sheet = format!(
        "{SHEET_START}{}{}{}{SHEET_END}",
        r#"<row r="1"><c r="A1" t="inlineStr"><is><t>userId</t></is></c><c r="B1" t="inlineStr"><is><t>note</t></is></c></row>"#,
        r#"<row r="2"><c r="A2" t="inlineStr"><is><t>u1</t></is></c><c r="B2" t="inlineStr"><is><t>first</t></is></c><c r="B2" t="inlineStr"><is><t>second</t></is></c></row>"#,
        inline_row(3, "u2")
    );
    let manifest = one_sheet(&dir, "twice.xlsx", &sheet);
    let run = ferry(&dir, "validate", &manifest, "agent-settings", &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let failed = run.records("failed.csv");
    assert_eq!(
        failed[1..],
        [[
            "2",
            "u1",
            "validation",
            "duplicate_cell",
            "the sheet holds this cell (B2) twice, which no spreadsheet writes: ferry read the \
             first and cannot tell which is meant. Open the file in a spreadsheet, check the \
             cell and save it again, then feed this row again",
            "note",
            "",
            "",
            "",
            "0",
            "u1",
            "first",
        ]]
    );
    assert_eq!(run.records("valid.csv")[1][..2], ["3", "u2"]);
}

/// A workbook whose first sheet, `Old`, is hidden; `Agents`, after it, is what a person
/// sees when the file opens.
fn hidden_first_sheet(dir: &TempDir) -> PathBuf {
    spreadsheet(dir, "agents.xlsx", |book| {
        let old = book.add_worksheet().set_name("Old")?;
        old.write_row(0, 0, ["userId"])?;
        old.write_row(1, 0, ["old1"])?;
        old.set_hidden(true);
        let agents = book.add_worksheet().set_name("Agents")?;
        agents.write_row(0, 0, ["userId"])?;
        agents.write_row(1, 0, ["u1"])?;
        agents.write_row(2, 0, ["u2"])?;
        agents.set_active(true);
        Ok(())
    })
}

#[test]
fn without_sheet_the_first_visible_sheet_is_read_and_named() {
    // Issue 9: a hidden first sheet, which nobody sees in Excel, was the one read.
    let dir = TempDir::new().expect("temp dir");
    let manifest = hidden_first_sheet(&dir);
    let run = ferry(&dir, "validate", &manifest, "agent-settings", &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let valid = run.records("valid.csv");
    let rows: Vec<&[String]> = valid[1..].iter().map(|r| &r[..2]).collect();
    assert_eq!(rows, [["2", "u1"], ["3", "u2"]]);
    assert!(
        run.stderr.contains(&format!(
            "{}: reading sheet \"Agents\", the first visible one: the first sheet, \"Old\", is \
             hidden (--sheet chooses another)",
            manifest.display()
        )),
        "{}",
        run.stderr
    );

    // Named, a hidden sheet is read.
    let dir = TempDir::new().expect("temp dir");
    let manifest = hidden_first_sheet(&dir);
    let run = ferry(
        &dir,
        "validate",
        &manifest,
        "agent-settings",
        &["--sheet", "Old"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let valid = run.records("valid.csv");
    assert_eq!(valid.len(), 2);
    assert_eq!(valid[1][..2], ["2", "old1"]);
    assert!(!run.stderr.contains("first visible"), "{}", run.stderr);
}
