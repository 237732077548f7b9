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
    let opened = super::open(input, config)?;
    super::say_notice(&opened.manifest);
    let (mut total, mut invalid) = (0, 0);
    // On every core, in file order: the repeated keys are settled as they are read.
    let mut rows = opened.validator.in_order(opened.manifest.rows);
    for checked in &mut rows {
        let (_, verdict) = checked?;
        total += 1;
        if verdict.is_err() {
            invalid += 1;
        }
    }
    Ok(Checked {
        total,
        invalid,
        repeats: rows.into_validator().into_repeats(),
    })
}
