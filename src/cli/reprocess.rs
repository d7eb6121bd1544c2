//! `e2b reprocess`: list recorded failures, and run them again once the cause is fixed.

use std::process::ExitCode;

use crate::aws::records::Record;
use crate::forwarder::replay::parse_time;
use crate::processor::config::ProcessorConfig;
use crate::processor::episode::store::EpisodeStore;
use crate::processor::failures::{FailureSink, Found};
use crate::processor::idempotency::IdempotencyStore;
use crate::processor::{Outcome, Processor, setup};

#[derive(clap::Args)]
pub struct ReprocessArgs {
    /// Where the failures are recorded: `s3://bucket/prefix` or an SQS queue URL. Default: the
    /// processor's FAILURE_RECORDS.
    #[arg(long, value_name = "TARGET")]
    from: Option<String>,

    /// Only the failures of this Monitron event id (repeatable).
    #[arg(long = "id", value_name = "EVENT_ID")]
    ids: Vec<String>,

    /// Only failures recorded at or after this time (RFC 3339, or a date).
    #[arg(long, value_name = "TIME")]
    since: Option<String>,

    /// Only failures recorded before this time.
    #[arg(long, value_name = "TIME")]
    until: Option<String>,

    /// List the failures, run nothing.
    #[arg(long)]
    list: bool,

    /// At most this many failures.
    #[arg(long, default_value_t = 1000)]
    limit: usize,
}

pub fn run(args: ReprocessArgs) -> ExitCode {
    super::block_on(reprocess(args))
}

async fn reprocess(args: ReprocessArgs) -> ExitCode {
    let target = match super::records_target(args.from.as_deref(), "failures") {
        Ok(t) => t,
        Err(code) => return code,
    };
    let times = [&args.since, &args.until].map(|t| t.as_deref().map(|t| (t, parse_time(t))));
    if let Some((text, _)) = times.iter().flatten().find(|(_, parsed)| parsed.is_none()) {
        eprintln!("`{text}` is not an RFC 3339 time or a date");
        return ExitCode::from(2);
    }
    let [since, until] = times.map(|t| t.and_then(|(_, parsed)| parsed));
    let aws = super::aws().await;
    let s3 = super::s3_client(&aws).await;
    let sink = FailureSink::new(Some(&target), s3.clone(), &aws);
    // SQS messages read while re-processing stay hidden for five minutes.
    let hold = if args.list { 1 } else { 300 };
    let found: Vec<Found> = match sink.list(args.limit, hold).await {
        Ok(found) => found,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let mut seen = std::collections::HashSet::new();
    let chosen: Vec<Found> = found
        .into_iter()
        .filter(|f| seen.insert(f.record.file_name()))
        .filter(|f| args.ids.is_empty() || args.ids.contains(&f.record.event_id))
        .filter(|f| {
            let at = parse_time(&f.record.recorded_at);
            since.is_none_or(|s| at.is_some_and(|a| a >= s))
                && until.is_none_or(|u| at.is_some_and(|a| a < u))
        })
        .collect();
    if args.list {
        for f in &chosen {
            let r = &f.record;
            println!(
                "{}  event {}  rule {}  step {}  {}",
                r.recorded_at,
                r.event_id,
                r.rule.as_deref().unwrap_or("-"),
                r.step.as_deref().unwrap_or("-"),
                r.reason
            );
        }
        eprintln!("{} recorded failure(s)", chosen.len());
        return ExitCode::SUCCESS;
    }
    let config = match ProcessorConfig::from_env() {
        // What fails again is recorded where it was found, whatever FAILURE_RECORDS says.
        Ok(c) => ProcessorConfig {
            failure_records: Some(target.clone()),
            ..c
        },
        Err(e) => {
            eprintln!("re-processing uses the processor's settings: {e}");
            return ExitCode::from(2);
        }
    };
    let processor = match setup::build(&config, &aws, s3).await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let (mut resolved, mut open) = (0, 0);
    for f in chosen {
        let done = reprocess_one(&processor, &sink, &f).await;
        for line in &done.lines {
            println!("{line}");
        }
        if let Some(problem) = &done.problem {
            eprintln!("{problem}");
        }
        if done.resolved {
            resolved += 1;
        } else {
            open += 1;
        }
    }
    eprintln!("{resolved} resolved, {open} still failing");
    if open == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// What re-processing one recorded failure came to.
pub struct Reprocessed {
    /// Resolved: every rule done, the record removed.
    pub resolved: bool,
    /// One line per rule: `event ID  rule R  STATUS  notification N  (reason)`.
    pub lines: Vec<String>,
    /// What went wrong besides the outcomes (not run; the record could not be removed).
    pub problem: Option<String>,
}

/// Runs one recorded failure again (`e2b reprocess`, the console's Reprocess). Resolved, or
/// failed for good again (the processor records it anew): the record is removed. Still meeting
/// a temporary fault, or not run: the record is kept.
pub async fn reprocess_one<I>(
    processor: &Processor<I>,
    sink: &FailureSink,
    found: &Found,
) -> Reprocessed
where
    I: IdempotencyStore + EpisodeStore,
{
    let r = &found.record;
    let outcomes = match processor.reprocess(r).await {
        Ok(o) => o,
        Err(e) => {
            return Reprocessed {
                resolved: false,
                lines: Vec::new(),
                problem: Some(format!("event {}: {e}; the record is kept", r.event_id)),
            };
        }
    };
    let lines = outcomes
        .iter()
        .map(|o| {
            format!(
                "event {}  rule {}  {}{}{}",
                r.event_id,
                o.rule.as_deref().unwrap_or("-"),
                o.outcome.status(),
                o.outcome
                    .notification()
                    .map(|n| format!("  notification {n}"))
                    .unwrap_or_default(),
                o.outcome
                    .reason()
                    .map(|n| format!("  ({n})"))
                    .unwrap_or_default()
            )
        })
        .collect();
    let retry = outcomes
        .iter()
        .any(|o| matches!(o.outcome, Outcome::Retry(_)));
    let failed = outcomes
        .iter()
        .any(|o| matches!(o.outcome, Outcome::GaveUp(_)));
    // Still transient: keep the record for the next run. Failed again: the new record
    // (written by the processor) replaces this one.
    if retry {
        return Reprocessed {
            resolved: false,
            lines,
            problem: None,
        };
    }
    // Failed again in S3: the new record is named as this one (by the event and rule) and
    // replaced it; removing this one would remove the new one.
    if failed && sink.replaces_in_place() {
        return Reprocessed {
            resolved: false,
            lines,
            problem: None,
        };
    }
    let problem = sink.remove(&found.handle).await.err();
    Reprocessed {
        resolved: !failed,
        lines,
        problem,
    }
}
