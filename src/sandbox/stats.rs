//! The counters behind `GET /_sandbox/stats`: what the sandbox was asked, what it
//! created, what it refused as a duplicate and which faults it injected.

use serde_json::{json, Map, Value};

use super::Route;
use crate::kinds::Kind;

#[derive(Debug, Default)]
pub(super) struct Stats {
    requests: [u64; Route::ALL.len()],
    not_found: u64,
    created: [u64; Kind::ALL.len()],
    duplicates: [u64; Kind::ALL.len()],
    pub(super) throttled: u64,
    pub(super) failed_injected: u64,
    pub(super) dropped: u64,
}

impl Stats {
    pub(super) fn request(&mut self, route: Route) {
        self.requests[route as usize] += 1;
    }

    pub(super) fn not_found(&mut self) {
        self.not_found += 1;
    }

    pub(super) fn created(&mut self, kind: Kind, n: u64) {
        self.created[kind as usize] += n;
    }

    pub(super) fn duplicates(&mut self, kind: Kind, n: u64) {
        self.duplicates[kind as usize] += n;
    }

    pub(super) fn to_json(&self) -> Value {
        let per_kind = |counts: &[u64; Kind::ALL.len()]| {
            // Named as ferry's --kind, with `_` (a JSON key a script can use as is).
            Kind::ALL
                .iter()
                .zip(counts)
                .map(|(kind, n)| (kind.name().replace('-', "_"), json!(n)))
                .collect::<Map<_, _>>()
        };
        let requests = Route::ALL
            .iter()
            .map(|route| {
                (
                    route.path().to_owned(),
                    json!(self.requests[*route as usize]),
                )
            })
            .collect::<Map<_, _>>();
        json!({
            "requests": requests,
            "created": per_kind(&self.created),
            "duplicates_rejected": per_kind(&self.duplicates),
            "throttled": self.throttled,
            "failed_injected": self.failed_injected,
            "dropped": self.dropped,
            "not_found": self.not_found,
        })
    }
}
