//! Amazon Monitron → SAP Advanced Event Mesh or SAP Event Mesh → SAP S/4HANA.
//!
//! # Layout
//!
//! Two data paths, and the parts they share. Arrows point down: the binaries and the CLI use
//! the paths, the paths use the shared parts, and nothing shared knows a path.
//!
//! - [`forwarder`]: PATH 1, a Lambda trigger → S3 objects (or Kinesis records) → Monitron
//!   records → events on the broker. `trigger` (what invoked it, which keys to skip),
//!   `firehose` (object bytes → JSON values), `scan` (the Monitron model and the event contract
//!   over objects), `pipeline` (one object: stream, decode, publish with bounded concurrency, by
//!   the deadline), `stream` (one Kinesis batch, and where its shard resumes), `publish` (one
//!   event: publish, record a refusal, note it done), `ledger` (what is done per object version,
//!   so a retry sends only the rest), `refusals` (events the broker refused for good, recorded),
//!   `config` and `setup` (settings and clients), `replay` (listing stored objects), `doctor`
//!   (the broker checked step by step), `series` (each measurement kept as its position's trend
//!   point, directly or through the trend queue).
//! - [`processor`]: PATH 2, a broker delivery → one typed event → the decision table → actions
//!   in S/4HANA. `config`, `setup` and `auth` (settings, clients, delivery credentials),
//!   `delivery` (what the broker pushes), `process` (the rules that match and their actions),
//!   `rules` (decision and mapping tables, actions, templates), `create`/`close`/`steps` and
//!   `notification` (the actions), `once` and `idempotency` (the idempotency protocol and its
//!   table), `episode` (alarm episodes, the holds of alarm management, and each created
//!   notification's trend chart attached), `alarms` (site
//!   records and storms, as data), `schedule` (the every-minute tick that releases holds and
//!   writes storm notifications), `invocation` (a Function URL request or the Scheduled Event),
//!   `s4` (the OData client, `limit`, its shared request rate, and `attachment`, the
//!   attachment service), `destination`, `failures`,
//!   `outcome`, `report`, `handshake` (Event Mesh's webhook handshake), `doctor` (S/4 checked
//!   step by step). The paths never import each other.
//! - Shared: [`monitron`] (the Monitron record model, recognition, classification: what both
//!   paths read, the processor in an SAP sample envelope), [`event`] (the event contract:
//!   CloudEvent or SAP envelope, source, id, topic; Event Mesh's topic alphabet), [`broker`]
//!   (one publisher, and a small trait each broker implements: Advanced Event Mesh's Solace
//!   REST, SAP Event Mesh's `messagingrest`), [`aws`] (S3 objects and locations, Secrets Manager
//!   and the broker secrets' layouts, failure records in SQS or S3 for both paths), [`http`]
//!   (the one retry schedule, SAP Gateway conventions, OAuth2 client credentials, TLS trust and
//!   identity per peer, reachability checks), [`env`] (the one environment reader), [`outcome`]
//!   (done / retry / give up), [`metrics`] (EMF lines), [`trace`] (one alert's W3C trace
//!   context, from the record to every S/4 request), [`trend`] (a position's measurement
//!   points from Monitron's hourly records, and its trend chart as PNG or SVG).
//! - [`cli`]: `e2b scan | replay | rules | reprocess | resend | episodes | doctor | console |
//!   trend`;
//!   `src/bin/`: the three binaries, wiring only.

pub mod aws;
pub mod broker;
pub mod cli;
pub mod env;
pub mod event;
pub mod forwarder;
pub mod http;
pub mod metrics;
pub mod monitron;
pub mod outcome;
pub mod processor;
pub mod trace;
pub mod trend;

/// The fuzz targets' bodies (`src/cli/fuzzing.rs`), at the path `fuzz/` calls.
#[doc(hidden)]
pub use cli::fuzzing;
