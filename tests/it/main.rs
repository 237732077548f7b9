//! ferry's integration tests, as one test binary: the crate is linked once, and the
//! helpers are plain modules shared by every suite.

// Helpers shared by the suites.
mod cli_support;
mod report_support;
mod run_support;
mod vendors_support;
mod xlsx_support;

// The suites, one module each (`cargo test --test it run::` runs one).
mod crash;
mod kinds;
mod limits;
mod manifest;
mod phone;
mod run;
mod sandbox;
mod secrets;
mod validate_cli;
mod vendors;
