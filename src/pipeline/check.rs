//! The check stage of `run`: every row read and validated once before anything is sent,
//! so an unreadable file stops the run with nothing sent (exit 2), a failure limit can
//! be judged up front, and the progress bar knows the total.

use std::collections::HashMap;

use super::Input;
use crate::config::Config;
use crate::error::Error;

/// What the check learnt about the whole manifest.
pub struct Checked {
    pub total: u64,
    pub invalid: u64,
    /// Rows whose key an earlier row already has (later row → first row).
    pub repeats: HashMap<u64, u64>,
}

/// Reads and validates every row once, on a blocking thread.
pub async fn whole_manifest(input: &Input, config: &Config) -> Result<Checked, Error> {
    let (input, config) = (input.clone(), config.clone());
    tokio::task::spawn_blocking(move || check(&input, &config))
        .await
        .map_err(|source| Error::Stopped {
            what: "reader stopped",
            source,
        })?
}

fn check(input: &Input, config: &Config) -> Result<Checked, Error> {
    let mut opened = super::open(input, config)?;
    super::say_notice(&opened.manifest);
    let (mut total, mut invalid) = (0, 0);
    for raw in opened.manifest.rows {
        let raw = raw?;
        total += 1;
        if opened
            .validator
            .check(raw.row, &raw.cells, raw.defects)
            .is_err()
        {
            invalid += 1;
        }
    }
    Ok(Checked {
        total,
        invalid,
        repeats: opened.validator.into_repeats(),
    })
}
