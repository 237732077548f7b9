//! The check stage of `run`: every row read once before anything is sent, so an
//! unreadable file stops the run with nothing sent (exit 2) and the progress bar knows
//! the total. The rows are validated too only when a failure limit must be judged up
//! front (`--max-failed-rows`); otherwise the sending pass validates each row once, and
//! a run does not pay for validating a million rows twice.

use std::collections::HashMap;

use super::Input;
use crate::config::Config;
use crate::error::Error;

/// What the check learnt about the whole manifest.
pub struct Checked {
    pub total: u64,
    /// Set when the rows were validated as well.
    pub validated: Option<Validated>,
}

/// What validating every row up front learnt.
pub struct Validated {
    pub invalid: u64,
    /// Rows whose key an earlier row already has (later row → first row).
    pub repeats: HashMap<u64, u64>,
}

/// Reads every row once, and validates it when `validate` is set, on a blocking thread.
pub async fn whole_manifest(
    input: &Input,
    config: &Config,
    validate: bool,
) -> Result<Checked, Error> {
    let (input, config) = (input.clone(), config.clone());
    tokio::task::spawn_blocking(move || check(&input, &config, validate))
        .await
        .map_err(|source| Error::Stopped {
            what: "reader stopped",
            source,
        })?
}

fn check(input: &Input, config: &Config, validate: bool) -> Result<Checked, Error> {
    let opened = super::open(input, config)?;
    super::say_notice(&opened.manifest);
    if !validate {
        let mut total = 0;
        for row in opened.manifest.rows {
            row?;
            total += 1;
        }
        return Ok(Checked {
            total,
            validated: None,
        });
    }
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
        validated: Some(Validated {
            invalid,
            repeats: rows.into_validator().into_repeats(),
        }),
    })
}
