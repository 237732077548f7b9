//! Arbitrary bytes as a whole manifest of every format: the first byte chooses the
//! format and the encoding (`ferry_fuzz::choose`), the rest is the file.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, file)) = data.split_first() else {
        return;
    };
    let (format, encoding) = ferry_fuzz::choose(selector);
    ferry_fuzz::read_and_validate(file, format, encoding);
});
