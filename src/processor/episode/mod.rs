//! Alarm episodes: one maintenance notification per problem of a sensor position, whatever
//! the order in which the mesh delivers its events (`docs/episodes.md`).
//!
//! - [`model`]: which events make an episode, a pure function of the events seen;
//! - [`state`]: what the position's record remembers (changes, notifications filed);
//! - [`text`]: each event's long-text line and the notification an alert would create;
//! - [`group`]: which notification holds which episodes (one open notification per position);
//! - [`plan`]: what S/4 lacks for a notification's episodes, a pure function of the record;
//! - [`store`]: the record in DynamoDB, leased by one delivery at a time;
//! - [`reconcile`]: acting on an event: lease, remember, bring S/4 to the plans;
//! - [`hold`]: alarm management: a new episode's notification held (on-delay, storms), released
//!   by the schedule;
//! - [`sites`]: the site records holds and storms are kept in;
//! - [`chart`]: a created notification's trend chart, attached in S/4.

pub mod chart;
pub mod group;
pub mod hold;
pub mod model;
pub mod plan;
pub mod reconcile;
pub mod sites;
pub mod state;
pub mod store;
pub mod text;
