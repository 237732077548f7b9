//! Fault injection: decides, for each vendor request as it arrives, whether the sandbox
//! answers it normally, throttles it, fails it, or carries it out and then drops the
//! connection.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::Options;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Fault {
    /// Answer normally.
    None,
    /// HTTP 429 with `Retry-After: 1`; nothing is carried out.
    Throttle,
    /// HTTP 503; nothing is carried out.
    Fail,
    /// Carry the request out, then close the connection without an answer.
    Drop,
}

#[derive(Debug)]
pub(super) struct Faults {
    rng: StdRng,
    throttle_rate: f64,
    fail_rate: f64,
    drop_rate: f64,
    rate_limit: Option<u32>,
    window_start: Instant,
    window_count: u32,
}

const WINDOW: Duration = Duration::from_secs(1);

impl Faults {
    pub(super) fn new(options: &Options) -> Faults {
        Faults {
            rng: StdRng::seed_from_u64(options.seed),
            throttle_rate: options.throttle_rate,
            fail_rate: options.fail_rate,
            drop_rate: options.drop_rate,
            rate_limit: options.rate_limit,
            window_start: Instant::now(),
            window_count: 0,
        }
    }

    pub(super) fn decide(&mut self, now: Instant) -> Fault {
        // Three draws for every request, whichever flags are set, so that one seed
        // gives the same sequence of faults for the same sequence of requests.
        let throttle: f64 = self.rng.random();
        let fail: f64 = self.rng.random();
        let drop: f64 = self.rng.random();
        if self.over_rate_limit(now) || throttle < self.throttle_rate {
            Fault::Throttle
        } else if fail < self.fail_rate {
            Fault::Fail
        } else if drop < self.drop_rate {
            Fault::Drop
        } else {
            Fault::None
        }
    }

    /// A fixed one-second window counting every arrival.
    fn over_rate_limit(&mut self, now: Instant) -> bool {
        let Some(limit) = self.rate_limit else {
            return false;
        };
        if now.duration_since(self.window_start) >= WINDOW {
            self.window_start = now;
            self.window_count = 0;
        }
        self.window_count = self.window_count.saturating_add(1);
        self.window_count > limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn faults(f: impl FnOnce(&mut Options)) -> Faults {
        let mut options = Options::default();
        f(&mut options);
        Faults::new(&options)
    }

    #[test]
    fn no_flags_no_faults() {
        let mut faults = faults(|_| {});
        let now = Instant::now();
        assert!((0..1000).all(|_| faults.decide(now) == Fault::None));
    }

    #[test]
    fn rate_limit_counts_per_window() {
        let mut faults = faults(|o| o.rate_limit = Some(3));
        let start = Instant::now();
        let first: Vec<_> = (0..5).map(|_| faults.decide(start)).collect();
        assert_eq!(
            first,
            [
                Fault::None,
                Fault::None,
                Fault::None,
                Fault::Throttle,
                Fault::Throttle
            ]
        );
        assert_eq!(faults.decide(start + WINDOW), Fault::None);
    }

    #[test]
    fn same_seed_same_sequence() {
        let set = |o: &mut Options| {
            o.throttle_rate = 0.3;
            o.fail_rate = 0.3;
            o.drop_rate = 0.3;
            o.seed = 42;
        };
        let (mut a, mut b) = (faults(set), faults(set));
        let now = Instant::now();
        let seq_a: Vec<_> = (0..200).map(|_| a.decide(now)).collect();
        let seq_b: Vec<_> = (0..200).map(|_| b.decide(now)).collect();
        assert_eq!(seq_a, seq_b);
        for fault in [Fault::None, Fault::Throttle, Fault::Fail, Fault::Drop] {
            assert!(seq_a.contains(&fault), "{fault:?} never drawn");
        }
    }
}
