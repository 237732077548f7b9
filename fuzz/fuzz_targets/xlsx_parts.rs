//! Arbitrary bytes as the XML parts of an otherwise valid workbook, so the fuzzer works
//! on what ferry and calamine make of a sheet rather than on the zip around it: the
//! input is the sheet, then optionally shared strings and styles, split at 0xFF.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let parts = data.split(|b| *b == ferry_fuzz::PART_SEPARATOR).take(3);
    let workbook = ferry_fuzz::xlsx_from_parts(parts);
    ferry_fuzz::read_and_validate(&workbook, ferry::manifest::Format::Xlsx, None);
});
