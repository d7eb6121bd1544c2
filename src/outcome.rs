//! The one vocabulary of outcomes, shared by both paths.
//!
//! Every adapter error (S3, Secrets Manager, the mesh, S/4, the destinations, the failure
//! records) says what it leaves to do through [`Disposed::disposition`], and each path maps a
//! [`Disposition`] to its own reply in one place:
//!
//! | disposition | meaning | forwarder | processor (RDP reply) |
//! | --- | --- | --- | --- |
//! | `Done` | the effect happened, or had already happened | counted | 200 |
//! | `Retry` | a later attempt can succeed (5xx, 429, timeout, connection, credentials being rotated) | retried within the deadline, then the invocation fails so Lambda retries | 503 |
//! | `GiveUp` | no attempt can succeed (4xx, malformed input, missing mapping) | recorded durably (`FAILURE_RECORDS`, for `e2b resend`) and counted as done; without a place to record it, named in the invocation's error, which fails it | recorded durably, then 200 |
//!
//! No name means the opposite elsewhere: "retry" is always a later attempt, "give up" always
//! the end of trying.

/// What a failure (or a finished step) leaves to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Nothing: the effect happened, or had already happened (a duplicate).
    Done,
    /// A later attempt can succeed.
    Retry,
    /// No attempt can succeed: report or record it with its reason.
    GiveUp,
}

/// An error that knows what it leaves to do.
pub trait Disposed {
    fn disposition(&self) -> Disposition;
}
