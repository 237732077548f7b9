//! ferry carries manifests into three vendors' REST APIs in validated, rate-limited
//! batches and accounts for every input row in its reports.
//!
//! The stages, in the order data flows through them (`pipeline` wires them):
//! manifest → kinds (mapping) → validate → batch → send → targets → state → report.

pub mod batch;
pub mod cli;
pub mod commands;
pub mod config;
pub mod demo;
pub mod error;
pub mod exit;
pub mod kinds;
pub mod lock;
pub mod logging;
pub mod manifest;
pub mod outcome;
pub mod pipeline;
pub mod problem;
pub mod reconcile;
pub mod report;
pub mod sandbox;
pub mod scrub;
pub mod send;
pub mod state;
pub mod targets;
pub mod validate;
