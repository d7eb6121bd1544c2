//! `e2b replay s3://bucket/prefix`: stored objects through the forwarder again.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio_util::io::SyncIoBridge;

use crate::aws::s3::{ObjectStore, S3Location};
use crate::event::Origin;
use crate::forwarder::config::ForwarderConfig;
use crate::forwarder::replay::{Invoker, Listed, list_objects, notification_for, parse_time};
use crate::forwarder::scan::{Report, ScanConfig, Scanner};
use crate::forwarder::trigger::ObjectRef;
use crate::forwarder::{ObjectOutcome, setup};

use super::progress::Progress;

#[derive(clap::Args)]
pub struct ReplayArgs {
    /// Where the Firehose objects are: `s3://bucket/prefix`.
    #[arg(value_name = "S3_PREFIX")]
    location: String,

    /// Only objects written at or after this time (RFC 3339, or a date: midnight UTC).
    #[arg(long, value_name = "TIME")]
    since: Option<String>,

    /// Only objects written before this time.
    #[arg(long, value_name = "TIME")]
    until: Option<String>,

    /// Decode and count, publish nothing.
    #[arg(long, conflicts_with = "invoke")]
    dry_run: bool,

    /// Hand each object to this deployed forwarder function as an asynchronous invocation
    /// instead of publishing from here.
    #[arg(long, value_name = "FUNCTION")]
    invoke: Option<String>,
}

/// How a replay went.
#[derive(Default)]
struct Tally {
    objects: usize,
    failed: usize,
    events: u64,
}

pub fn run(args: ReplayArgs) -> ExitCode {
    let Some(location) = S3Location::parse(&args.location) else {
        eprintln!(
            "e2b replay: `{}` is not an s3://bucket/prefix location",
            args.location
        );
        return ExitCode::from(2);
    };
    let mut times = [None, None];
    for (slot, (flag, value)) in times
        .iter_mut()
        .zip([("--since", &args.since), ("--until", &args.until)])
    {
        if let Some(text) = value {
            match parse_time(text) {
                Some(t) => *slot = Some(t),
                None => {
                    eprintln!(
                        "e2b replay: {flag} `{text}` is neither RFC 3339 nor a YYYY-MM-DD date"
                    );
                    return ExitCode::from(2);
                }
            }
        }
    }
    let runtime = match super::runtime() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("e2b replay: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(replay(&args, &location, times[0], times[1])) {
        Ok(tally) if tally.failed == 0 => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(code) => code,
    }
}

async fn replay(
    args: &ReplayArgs,
    location: &S3Location,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
) -> Result<Tally, ExitCode> {
    // Settings first: a publishing replay needs the forwarder's configuration, a dry run the
    // forwarder's selection (FORWARD_MODEL_TRANSITIONS, ...) without a broker.
    let settings = |e: crate::env::ConfigError| {
        eprintln!("e2b replay: {e}");
        ExitCode::from(2)
    };
    let config = if args.dry_run || args.invoke.is_some() {
        None
    } else {
        Some(ForwarderConfig::from_env().map_err(settings)?)
    };
    let dry_run_scan = if args.dry_run {
        Some(crate::forwarder::config::scan_settings(crate::env::process).map_err(settings)?)
    } else {
        None
    };
    let aws = super::aws().await;
    let s3 = super::s3_client(&aws).await;
    let listed = list_objects(&s3, location, since, until)
        .await
        .map_err(|e| {
            eprintln!("e2b replay: {e}");
            ExitCode::FAILURE
        })?;
    eprintln!(
        "e2b replay: {} object(s) under s3://{}/{}{}",
        listed.len(),
        location.bucket,
        location.key,
        window_text(since, until)
    );
    let mut progress = Progress::new("e2b replay", "objects", listed.len());
    let mut tally = Tally::default();
    if let Some(function) = &args.invoke {
        let lambda = aws_sdk_lambda::Client::new(&aws);
        for object in &listed {
            let result = lambda
                .queue_invocation(function, &notification_for(&location.bucket, object))
                .await;
            tally.record(&mut progress, &location.bucket, object, result.map(|()| 0));
        }
        tally.finish(&progress, "invocation(s) queued");
    } else if let Some(config) = config {
        for warning in &config.warnings {
            eprintln!("e2b replay: warning: {warning}");
        }
        let forwarder = setup::forwarder(&config, &aws).map_err(|e| {
            eprintln!("e2b replay: cannot build the HTTP client: {e}");
            ExitCode::FAILURE
        })?;
        // Made by the forwarder at the first object, from its settings, then kept across them.
        let mut scanner = None;
        let deadline = Instant::now() + Duration::from_secs(24 * 3600);
        for object in &listed {
            let outcome = forwarder
                .forward_object(&mut scanner, &object_ref(location, object), deadline)
                .await;
            let result = match outcome {
                ObjectOutcome::Done { delivered, .. } => Ok(delivered),
                ObjectOutcome::Complete
                | ObjectOutcome::Filtered(_)
                | ObjectOutcome::Missing(_) => Ok(0),
                ObjectOutcome::Retry(failure) => Err(failure.to_string()),
            };
            tally.record(&mut progress, &location.bucket, object, result);
        }
        tally.finish(&progress, "event(s) delivered");
    } else {
        let scan = dry_run_scan.unwrap_or_default();
        let mut scanner = Some(Scanner::new(scan.clone()));
        for object in &listed {
            let result =
                count_events(&s3, &scan, &mut scanner, &object_ref(location, object)).await;
            tally.record(&mut progress, &location.bucket, object, result);
        }
        tally.finish(&progress, "event(s) would be published (dry run)");
    }
    Ok(tally)
}

fn object_ref(location: &S3Location, object: &Listed) -> ObjectRef {
    ObjectRef {
        location: S3Location::new(&location.bucket, &object.key),
        version_id: None,
        // No ETag: a replay is a deliberate re-send, which the delivery ledger leaves alone.
        etag: None,
        size: Some(object.size),
    }
}

/// Decodes an object and counts the events it would publish.
async fn count_events(
    s3: &aws_sdk_s3::Client,
    scan: &ScanConfig,
    scanner: &mut Option<Scanner>,
    object: &ObjectRef,
) -> Result<u64, String> {
    let body = s3.open(object).await.map_err(|e| e.to_string())?;
    let bridge = SyncIoBridge::new(body);
    let mut decoder = scanner.take().unwrap_or_else(|| Scanner::new(scan.clone()));
    let origin = Origin::S3(object.location.clone());
    let (decoder, result) = tokio::task::spawn_blocking(move || {
        let mut events = 0u64;
        let result = decoder.scan(&origin, bridge, |report| {
            if let Report::Event(_) = report {
                events += 1;
            }
            Ok::<(), String>(())
        });
        (decoder, result.map(|_| events).map_err(|e| e.to_string()))
    })
    .await
    .map_err(|e| format!("the decoding thread failed: {e}"))?;
    *scanner = Some(decoder);
    result
}

impl Tally {
    fn finish(&self, progress: &Progress, what: &str) {
        progress.finish(&format!(
            "{} object(s), {} {what}, {} object(s) failed",
            self.objects, self.events, self.failed
        ));
    }

    fn record(
        &mut self,
        progress: &mut Progress,
        bucket: &str,
        object: &Listed,
        result: Result<u64, String>,
    ) {
        self.objects += 1;
        match result {
            Ok(events) => {
                self.events += events;
                progress.step(
                    &format!("{} events", self.events),
                    &format!("s3://{bucket}/{}: {events}", object.key),
                );
            }
            Err(e) => {
                self.failed += 1;
                progress.fail(&format!("s3://{bucket}/{}: {e}", object.key));
            }
        }
    }
}

fn window_text(since: Option<DateTime<Utc>>, until: Option<DateTime<Utc>>) -> String {
    match (since, until) {
        (None, None) => String::new(),
        (Some(s), None) => format!(" written since {}", s.to_rfc3339()),
        (None, Some(u)) => format!(" written before {}", u.to_rfc3339()),
        (Some(s), Some(u)) => format!(" written from {} to {}", s.to_rfc3339(), u.to_rfc3339()),
    }
}
