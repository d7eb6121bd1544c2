//! The one retry schedule: exponential backoff with full jitter, capped, bounded by a number of
//! attempts and by the caller's deadline. The mesh publisher, the S/4 client and the rule
//! files' destinations all wait by it.
//!
//! Rules:
//! - the pause after the `n`-th failed attempt is uniform in `[0, min(cap, base · 2^(n-1))]`
//!   (full jitter: many Lambdas retrying at once do not retry in step);
//! - no attempt is made after `attempts` attempts in all;
//! - no pause is taken that would end within [`MARGIN`] of the deadline: the caller reports
//!   the failure instead, while it still has time to.
//!
//! Which failures may be retried at all is the caller's to say (a write whose outcome is
//! unknown is never repeated blindly); this module only says when.

use std::time::{Duration, Instant};

/// Time kept before the deadline when deciding whether a pause fits.
pub const MARGIN: Duration = Duration::from_millis(50);

/// A retry schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The ceiling of the first pause; it doubles with each failed attempt.
    pub base: Duration,
    /// The largest ceiling.
    pub cap: Duration,
    /// Attempts in all, the first included (at least 1).
    pub attempts: u32,
}

/// Why no further attempt is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Every attempt was made.
    Attempts(u32),
    /// The next pause would run past the deadline.
    Deadline,
}

impl Backoff {
    /// The ceiling of the pause after `failed` failed attempts (1-based).
    pub fn ceiling(&self, failed: u32) -> Duration {
        self.base
            .saturating_mul(1u32 << failed.saturating_sub(1).min(20))
            .min(self.cap)
    }

    /// A pause after `failed` failed attempts: uniform in `[0, ceiling(failed)]`.
    pub fn pause(&self, failed: u32) -> Duration {
        self.ceiling(failed).mul_f64(fastrand::f64())
    }

    /// The pause to take before the next attempt, after `failed` failed attempts, or why there
    /// is none.
    pub fn next(&self, failed: u32, deadline: Instant) -> Result<Duration, Stop> {
        if failed >= self.attempts.max(1) {
            return Err(Stop::Attempts(failed));
        }
        let pause = self.pause(failed);
        if Instant::now() + pause + MARGIN >= deadline {
            return Err(Stop::Deadline);
        }
        Ok(pause)
    }
}

impl Stop {
    /// Words to add to the last failure: `(after 3 attempts)`, `(no time left to retry)`.
    pub fn describe(&self) -> String {
        match self {
            Stop::Attempts(n) => format!("after {n} attempts"),
            Stop::Deadline => "no time left to retry".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule() -> Backoff {
        Backoff {
            base: Duration::from_millis(100),
            cap: Duration::from_millis(450),
            attempts: 4,
        }
    }

    #[test]
    fn the_ceiling_doubles_up_to_the_cap() {
        let b = schedule();
        let ceilings: Vec<u128> = (1..=5).map(|n| b.ceiling(n).as_millis()).collect();
        assert_eq!(ceilings, [100, 200, 400, 450, 450]);
        assert_eq!(b.ceiling(u32::MAX), Duration::from_millis(450));
    }

    #[test]
    fn pauses_are_jittered_within_the_ceiling() {
        let b = schedule();
        let pauses: Vec<Duration> = (0..200).map(|_| b.pause(3)).collect();
        assert!(pauses.iter().all(|p| *p <= Duration::from_millis(400)));
        let distinct: std::collections::HashSet<_> = pauses.iter().collect();
        assert!(distinct.len() > 100, "full jitter, not one fixed pause");
    }

    #[test]
    fn attempts_and_the_deadline_bound_the_retries() {
        let b = schedule();
        let far = Instant::now() + Duration::from_secs(60);
        assert!(b.next(1, far).is_ok());
        assert_eq!(b.next(4, far), Err(Stop::Attempts(4)));
        let near = Instant::now() + Duration::from_millis(10);
        assert_eq!(b.next(1, near), Err(Stop::Deadline));
        let once = Backoff {
            attempts: 0,
            ..schedule()
        };
        assert_eq!(once.next(1, far), Err(Stop::Attempts(1)), "at least one");
    }
}
