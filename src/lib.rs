//! ferry carries manifests into three vendors' REST APIs in validated, rate-limited
//! batches and accounts for every input row in its reports.
//!
//! The stages, in the order data flows through them (see `pipeline`):
//! manifest → kinds (mapping) → validate → batch → send → targets → state → report.

pub mod kinds;
pub mod manifest;
pub mod problem;
pub mod sandbox;
pub mod validate;
