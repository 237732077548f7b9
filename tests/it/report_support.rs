//! Report CSVs read back: shared by the suites that run `ferry` and read its
//! report folders.

/// `text` (a report CSV, BOM removed) without its origin columns, which must follow
/// the ferry columns and hold `expected(ferry_row)` on every row. Written back the way
/// ferry writes CSV, so the rest of the text compares as it was.
pub fn drop_origins(text: &str, expected: impl Fn(&str) -> (String, String)) -> String {
    let mut records = parse_csv(text);
    let at = records[0]
        .iter()
        .position(|h| h == "ferry_source_row")
        .unwrap_or_else(|| panic!("no ferry_source_row in {:?}", records[0]));
    assert_eq!(records[0][at + 1], "ferry_source", "{:?}", records[0]);
    // Right after the ferry columns of valid.csv (7) or failed.csv (10).
    assert!(at == 7 || at == 10, "{:?}", records[0]);
    for record in &mut records[1..] {
        let (source_row, source) = expected(&record[0]);
        assert_eq!(
            (record[at].as_str(), record[at + 1].as_str()),
            (source_row.as_str(), source.as_str()),
            "origin of row {}",
            record[0]
        );
    }
    let mut writer = csv::WriterBuilder::new()
        .flexible(true)
        .from_writer(Vec::new());
    for mut record in records {
        record.drain(at..at + 2);
        writer.write_record(&record).expect("write");
    }
    String::from_utf8(writer.into_inner().expect("flush")).expect("UTF-8")
}

/// The id a manifest has in `ferry_source`, from its summary.json.
pub fn manifest_id(summary: &serde_json::Value) -> String {
    let sha = summary["manifest_sha256"]
        .as_str()
        .expect("manifest_sha256");
    sha.get(..16).unwrap_or_default().to_string()
}

/// A report CSV's records (header first), parsed.
pub fn parse_csv(text: &str) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes())
        .records()
        .map(|r| {
            r.expect("a report is valid CSV")
                .iter()
                .map(str::to_string)
                .collect()
        })
        .collect()
}
