//! `e2b resend`: list the events the broker refused (the forwarder's failure records), and send
//! them again once the cause is fixed (a topic permission granted, a size limit raised).
//!
//! Each record's message goes out as it was first sent: same topic, same message id (the event
//! id, so subscribers still de-duplicate), same payload. A record whose message the broker takes
//! is removed; one refused again, or not delivered for now, is kept. Exit status 0 when every
//! chosen record was resent.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use crate::aws::records::{FailureSink, Found};
use crate::aws::secrets::SecretStore;
use crate::broker::Publisher;
use crate::forwarder::config::ForwarderConfig;
use crate::forwarder::refusals::RefusedEvent;
use crate::forwarder::setup;

use super::progress::Progress;

#[derive(clap::Args)]
pub struct ResendArgs {
    /// Where the refusals are recorded: an SQS queue URL or `s3://bucket/prefix`. Default: the
    /// forwarder's FAILURE_RECORDS.
    #[arg(long, value_name = "TARGET")]
    from: Option<String>,

    /// Only the refusals of this event id (repeatable).
    #[arg(long = "id", value_name = "EVENT_ID")]
    ids: Vec<String>,

    /// List the refusals, send nothing.
    #[arg(long)]
    list: bool,

    /// At most this many records.
    #[arg(long, default_value_t = 1000)]
    limit: usize,

    /// Also print the count as a CloudWatch EMF line (`EventsResent`) on stdout, for a job whose
    /// output CloudWatch Logs reads.
    #[arg(long)]
    metrics: bool,
}

/// Time allowed for one message, retries included.
const PER_MESSAGE: Duration = Duration::from_secs(60);

pub fn run(args: ResendArgs) -> ExitCode {
    super::block_on(resend(args))
}

async fn resend(args: ResendArgs) -> ExitCode {
    let target = match super::records_target(args.from.as_deref(), "refusals") {
        Ok(t) => t,
        Err(code) => return code,
    };
    // The settings are checked before any SQS message is hidden by reading it.
    let config = if args.list {
        None
    } else {
        match ForwarderConfig::from_env() {
            Ok(c) => Some(c),
            Err(e) => {
                eprintln!("e2b resend: sending uses the forwarder's settings: {e}");
                return ExitCode::from(2);
            }
        }
    };
    let aws = super::aws().await;
    let s3 = super::s3_client(&aws).await;
    let sink = FailureSink::new(Some(&target), s3, &aws);
    // SQS messages read while sending stay hidden for five minutes.
    let hold = if args.list { 1 } else { 300 };
    let found: Vec<Found<RefusedEvent>> = match sink.list(args.limit, hold).await {
        Ok(found) => found,
        Err(e) => {
            eprintln!("e2b resend: {e}");
            return ExitCode::FAILURE;
        }
    };
    let chosen: Vec<Found<RefusedEvent>> = found
        .into_iter()
        .filter(|f| args.ids.is_empty() || args.ids.contains(&f.record.event_id))
        .collect();
    let Some(config) = config else {
        for f in &chosen {
            let r = &f.record;
            println!(
                "{}  event {}  topic {}  {} {}  from {} record {}",
                r.recorded_at, r.event_id, r.topic, r.status, r.reason, r.object, r.record
            );
        }
        eprintln!("e2b resend: {} refused event(s)", chosen.len());
        return ExitCode::SUCCESS;
    };
    let publisher = match setup::publisher(&config, &aws) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("e2b resend: cannot build the HTTP client: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.metrics {
        crate::metrics::enable();
    }
    let mut progress = Progress::new("e2b resend", "records", chosen.len());
    let (mut resent, mut kept) = (0usize, 0usize);
    for f in chosen {
        let done = resend_one(&publisher, &sink, &f).await;
        match (&done.problem, done.resent) {
            (None, true) => {
                resent += 1;
                progress.step(&format!("{resent} resent"), &done.line);
            }
            (Some(_), true) => {
                resent += 1;
                progress.fail(&done.line);
            }
            (_, false) => {
                kept += 1;
                progress.fail(&done.line);
            }
        }
    }
    progress.finish(&format!("{resent} resent, {kept} kept"));
    crate::metrics::emit("e2b-resend", &[("EventsResent", resent as u64)]);
    if kept == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// What sending one refused event again came to.
pub struct Resent {
    /// The broker took it.
    pub resent: bool,
    /// What happened, for a person.
    pub line: String,
    /// What went wrong (not delivered; delivered but the record stays).
    pub problem: Option<String>,
}

/// Sends one refused event again as it was first sent (`e2b resend`, the console's Resend);
/// the record is removed once the broker takes it, and kept otherwise.
pub async fn resend_one<S: SecretStore>(
    publisher: &Publisher<S>,
    sink: &FailureSink,
    found: &Found<RefusedEvent>,
) -> Resent {
    let r = &found.record;
    let deadline = Instant::now() + PER_MESSAGE;
    match publisher
        .send(r.message(), &r.correlation_id, deadline)
        .await
    {
        Ok(_) => match sink.remove(&found.handle).await {
            Ok(()) => Resent {
                resent: true,
                line: format!("event {} resent to {}", r.event_id, r.topic),
                problem: None,
            },
            Err(e) => Resent {
                resent: true,
                line: format!(
                    "event {} resent, but its record stays ({e}); a later resend sends it again with the same message id",
                    r.event_id
                ),
                problem: Some(e),
            },
        },
        Err(e) => Resent {
            resent: false,
            line: format!("event {}: {e}; the record is kept", r.event_id),
            problem: Some(e.to_string()),
        },
    }
}
