//! The `e2b` command line: `scan` (local files, stdin, S3) and `replay` (a prefix and time range
//! of stored objects through the forwarder again), `rules`, `reprocess` (the processor's
//! failure records), `resend` (the forwarder's), `episodes`, `doctor` (every configured
//! peer checked: DNS, TCP, TLS, logon), `console` (a web console for operators) and `trend` (a
//! position's trend chart from export objects).

pub mod console;
mod doctor;
mod episodes;
#[doc(hidden)]
pub mod fuzzing;
mod progress;
mod replay;
pub mod reprocess;
pub mod resend;
mod rules;
mod rules_episode;
mod s4_requests;
mod scan;
mod trend;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "e2b",
    version,
    about = "Amazon Monitron alerts → SAP Advanced Event Mesh → SAP S/4HANA"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Decode Firehose objects and print the events the forwarder would publish.
    ///
    /// Each forwarded record's payload goes to stdout, one JSON value per line, in input order;
    /// problems and the summary go to stderr. Exit status 0 when every object was read to its
    /// end (broken records inside it are reported and skipped), 1 when one could not be.
    Scan(scan::ScanArgs),
    /// Send the objects stored under an S3 prefix (within a time range) through the forwarder
    /// again: to backfill, or to re-send after an outage.
    ///
    /// Publishes with the forwarder's configuration (the same environment variables as the
    /// Lambda), or with --invoke hands each object to the deployed forwarder as an asynchronous
    /// invocation. Exit status 0 when every object went through, 1 otherwise, 2 for wrong options
    /// or settings.
    Replay(replay::ReplayArgs),
    /// Check a decision table, or see what an event would do under it.
    #[command(subcommand)]
    Rules(rules::RulesCommand),
    /// List the processor's recorded failures, or run them again once the cause is fixed.
    ///
    /// Runs with the processor's configuration (the same environment variables as the Lambda).
    /// A failure that is resolved, or fails for good again (recorded anew), is removed; one
    /// that still meets a temporary fault is kept. Exit status 0 when all were resolved.
    Reprocess(reprocess::ReprocessArgs),
    /// List the events the broker refused for good (the forwarder's failure records), or send
    /// them again once the cause is fixed.
    ///
    /// Sends with the forwarder's configuration (the same environment variables as the Lambda),
    /// each message as first sent: same topic, same message id, same payload. A record resent is
    /// removed; one refused again or not delivered for now is kept. Exit status 0 when every
    /// chosen record was resent.
    Resend(resend::ResendArgs),
    /// List the alarm episodes the processor keeps (open ones by default), with their
    /// notifications.
    ///
    /// Reads the episode records in the processor's idempotency table (IDEMPOTENCY_TABLE, or
    /// --table). Exit status 0 when the table could be read.
    Episodes(episodes::EpisodesArgs),
    /// Check every peer the functions' environment variables name: the secret, DNS, TCP, TLS
    /// (and which CA vouched), the logon; one line a check, with what to fix.
    ///
    /// Uses the same environment variables as the Lambdas (AEM_REST_URL and
    /// AEM_CREDENTIALS_SECRET; S4_BASE_URL and S4_CREDENTIALS_SECRET) and honours HTTPS_PROXY.
    /// The same checks run inside the functions, which see their VPC: invoke the forwarder with
    /// {"e2b": "doctor"}, or GET the processor's Function URL with ?e2b=doctor and its
    /// credentials. Exit status 0 when every check passed, 1 otherwise, 2 with nothing to check.
    Doctor(doctor::DoctorArgs),
    /// Serve a web console on 127.0.0.1: every alarm's way to S/4 (episodes, notifications,
    /// timelines), the failures and refusals with Reprocess and Resend.
    ///
    /// Reads with your AWS credentials and the functions' environment variables
    /// (IDEMPOTENCY_TABLE, FAILURE_RECORDS for the processor's failures,
    /// FORWARDER_FAILURE_RECORDS for the forwarder's refusals; Reprocess and Resend use the
    /// processor's and the forwarder's settings). Prints a URL with a random access token; every
    /// request without it is refused.
    Console(console::ConsoleArgs),
    /// Draw a position's trend chart (PNG, or SVG) from export objects: velocity with the ISO
    /// zone limits of its class, temperature, gaps, and its newest alert marked.
    ///
    /// Reads files, `-` or `s3://bucket/key` as `scan` does; try it on the bundled sample:
    /// `e2b trend events/objects/monitron-v2-trend-30d.json.gz --out trend.png`. Exit status 0
    /// when the chart was written, 1 when an object could not be read or the file written, 2
    /// when no single position can be chosen (they are listed).
    Trend(trend::TrendArgs),
}

/// Runs the command line.
pub fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Scan(args) => scan::run(args),
        Command::Replay(args) => replay::run(args),
        Command::Rules(command) => rules::run(command),
        Command::Reprocess(args) => reprocess::run(args),
        Command::Resend(args) => resend::run(args),
        Command::Episodes(args) => episodes::run(args),
        Command::Doctor(args) => doctor::run(args),
        Command::Console(args) => console::run(args),
        Command::Trend(args) => trend::run(args),
    }
}

/// Where failure records are: `--from`, else `FAILURE_RECORDS`; `what` names them in the
/// message when neither says. A wrong value is exit status 2, said on stderr.
fn records_target(
    from: Option<&str>,
    what: &str,
) -> Result<crate::aws::records::FailureTarget, ExitCode> {
    let Some(text) = from
        .map(str::to_string)
        .or_else(|| crate::env::Env::new("CLI", &crate::env::process).text("FAILURE_RECORDS"))
    else {
        eprintln!(
            "say where the {what} are: --from s3://bucket/prefix or a queue URL (or set FAILURE_RECORDS)"
        );
        return Err(ExitCode::from(2));
    };
    crate::aws::records::FailureTarget::parse(&text).map_err(|e| {
        eprintln!("--from {e}");
        ExitCode::from(2)
    })
}

/// Runs a command's work on the CLI's runtime; a runtime that cannot start is exit status 1.
fn block_on(work: impl std::future::Future<Output = ExitCode>) -> ExitCode {
    match runtime() {
        Ok(runtime) => runtime.block_on(work),
        Err(e) => {
            eprintln!("cannot start: {e}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}

/// The AWS configuration from the environment (`AWS_PROFILE`, `AWS_REGION`, `AWS_ENDPOINT_URL`, ...).
async fn aws() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// An S3 client; `S3_FORCE_PATH_STYLE=true` for S3-compatible stores and emulators (read as
/// every flag is, see [`crate::env`]; a value that is no flag is said and taken as false).
async fn s3_client(aws: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let mut env = crate::env::Env::new("CLI", &crate::env::process);
    let path_style = env.flag("S3_FORCE_PATH_STYLE");
    if let Err(e) = env.finish() {
        eprintln!("warning: {e}");
    }
    crate::aws::s3::client(aws, path_style)
}
