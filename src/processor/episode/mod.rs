//! Alarm episodes: one maintenance notification per problem of a sensor position, whatever
//! the order in which the mesh delivers its events.
//!
//! - `model`: which events make an episode, a pure function of the events seen (done);
//! - the episode store, the reconciliation of S/4 with an episode and the rule parameter that
//!   turns it on come next (issue 12); until then the actions work per event, as before.

pub mod model;
