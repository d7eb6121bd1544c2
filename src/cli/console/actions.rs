//! The console's changes (POST): Reprocess a processor failure, Resend a refused event, read
//! again. Every form carries the token besides the cookie (the guard has checked the origin);
//! an action first shows what it will do and asks, then runs the same code as `e2b reprocess`
//! and `e2b resend` and shows the result on the failures page.

use std::sync::Arc;

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use super::Console;
use super::pages::{Frame, failures_page, render};
use crate::aws::records::{FailureSink, FailureTarget, Found, Record};
use crate::forwarder::config::ForwarderConfig;
use crate::forwarder::refusals::RefusedEvent;
use crate::processor::config::ProcessorConfig;
use crate::processor::failures::FailureRecord;

/// SQS messages read to act on stay hidden this long (S3 records are not hidden).
const HOLD_SECONDS: i32 = 30;

/// A form body: every `name=value` pair, decoded (a name may repeat: `pick`).
fn form(body: &str) -> Vec<(String, String)> {
    let decode = |text: &str| {
        percent_encoding::percent_decode_str(&text.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    body.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(name), decode(value))
        })
        .collect()
}

fn field<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn forbidden() -> Response {
    (
        StatusCode::FORBIDDEN,
        "the form did not carry the console's token; nothing was changed",
    )
        .into_response()
}

/// Reads every source again, then back to the page it was asked from.
pub async fn refresh(State(console): State<Arc<Console>>, body: String) -> Response {
    let pairs = form(&body);
    if !field(&pairs, "token").is_some_and(|t| console.access.is_token(t)) {
        return forbidden();
    }
    console.read().await;
    let back = field(&pairs, "back")
        .filter(|b| b.starts_with('/') && !b.starts_with("//"))
        .unwrap_or("/");
    Redirect::to(back).into_response()
}

#[derive(Template)]
#[template(path = "console/confirm.html")]
struct Confirm {
    frame: Frame,
    question: String,
    items: Vec<String>,
    what: String,
    picks: Vec<String>,
    yes: String,
}

/// Reprocess or Resend the picked records: asks first, then acts.
pub async fn act(State(console): State<Arc<Console>>, body: String) -> Response {
    let pairs = form(&body);
    if !field(&pairs, "token").is_some_and(|t| console.access.is_token(t)) {
        return forbidden();
    }
    let what = field(&pairs, "what").unwrap_or_default().to_string();
    let picks: Vec<String> = pairs
        .iter()
        .filter(|(n, _)| n == "pick")
        .map(|(_, v)| v.clone())
        .collect();
    let snapshot = console.snapshot().await;
    if picks.is_empty() || !matches!(what.as_str(), "reprocess" | "resend") {
        let result = (
            false,
            "nothing selected: tick the records to act on".to_string(),
        );
        return render(failures_page(&console, &snapshot, vec![result], 1));
    }
    if field(&pairs, "confirm") != Some("yes") {
        let items = describe(&snapshot, &what, &picks);
        let (question, yes) = if what == "reprocess" {
            (
                "Run these failures again with the processor's settings? Each is removed once it is done, or failed for good again (then recorded anew).",
                format!("Reprocess {}", picks.len()),
            )
        } else {
            (
                "Send these events again to the broker, as first sent (same topic, same message id)? Each record is removed once the broker takes it.",
                format!("Resend {}", picks.len()),
            )
        };
        return render(Confirm {
            frame: Frame::new(&console, &snapshot, "Confirm", "failures"),
            question: question.to_string(),
            items,
            what,
            picks,
            yes,
        });
    }
    let results = if what == "reprocess" {
        reprocess(&console, &picks).await
    } else {
        resend(&console, &picks).await
    };
    let fresh = console.read().await;
    render(failures_page(&console, &fresh, results, 1))
}

/// What the picked records are, from the snapshot.
fn describe(snapshot: &super::snapshot::Snapshot, what: &str, picks: &[String]) -> Vec<String> {
    let named = |id: &str, event: &str, reason: &str| {
        picks
            .iter()
            .any(|p| p == id)
            .then(|| format!("event {event}: {reason}"))
    };
    if what == "reprocess" {
        snapshot
            .failures
            .as_deref()
            .unwrap_or_default()
            .iter()
            .filter_map(|f| named(&f.record.file_name(), &f.record.event_id, &f.record.reason))
            .collect()
    } else {
        snapshot
            .refusals
            .as_deref()
            .unwrap_or_default()
            .iter()
            .filter_map(|f| named(&f.record.file_name(), &f.record.event_id, &f.record.reason))
            .collect()
    }
}

/// The picked records, read again (they may have gone meanwhile).
async fn picked<R: Record>(
    console: &Console,
    target: &FailureTarget,
    picks: &[String],
) -> Result<(FailureSink, Vec<Found<R>>), String> {
    let sink = FailureSink::new(
        Some(target),
        console.clients.s3.clone(),
        &console.clients.aws,
    );
    let found = sink
        .list::<R>(super::snapshot::MAX_RECORDS, HOLD_SECONDS)
        .await?;
    let mut seen = std::collections::HashSet::new();
    let chosen = found
        .into_iter()
        .filter(|f| picks.contains(&f.record.file_name()) && seen.insert(f.record.file_name()))
        .collect();
    Ok((sink, chosen))
}

async fn reprocess(console: &Console, picks: &[String]) -> Vec<(bool, String)> {
    let Some(target) = console.sources.failures.clone() else {
        return vec![(false, "no FAILURE_RECORDS: nothing to reprocess".into())];
    };
    let config = match ProcessorConfig::from_env() {
        // What fails again is recorded where it was found.
        Ok(c) => ProcessorConfig {
            failure_records: Some(target.clone()),
            ..c
        },
        Err(e) => {
            return vec![(
                false,
                format!("reprocessing uses the processor's settings: {e}"),
            )];
        }
    };
    let processor = match crate::processor::setup::build(
        &config,
        &console.clients.aws,
        console.clients.s3.clone(),
    )
    .await
    {
        Ok(p) => p,
        Err(e) => return vec![(false, format!("cannot build the processor: {e}"))],
    };
    let (sink, chosen) = match picked::<FailureRecord>(console, &target, picks).await {
        Ok(found) => found,
        Err(e) => return vec![(false, e)],
    };
    let mut results = Vec::new();
    for found in &chosen {
        let done = crate::cli::reprocess::reprocess_one(&processor, &sink, found).await;
        for line in done.lines {
            results.push((done.resolved, line));
        }
        if let Some(problem) = done.problem {
            results.push((false, problem));
        }
    }
    if chosen.len() < picks.len() {
        results.push((
            false,
            format!(
                "{} of the selected failures were no longer recorded (done meanwhile?)",
                picks.len() - chosen.len()
            ),
        ));
    }
    results
}

async fn resend(console: &Console, picks: &[String]) -> Vec<(bool, String)> {
    let Some(target) = console.sources.refusals.clone() else {
        return vec![(
            false,
            "no FORWARDER_FAILURE_RECORDS: nothing to resend".into(),
        )];
    };
    let config = match ForwarderConfig::from_env() {
        Ok(c) => c,
        Err(e) => {
            return vec![(
                false,
                format!("resending uses the forwarder's settings: {e}"),
            )];
        }
    };
    let publisher = match crate::forwarder::setup::publisher(&config, &console.clients.aws) {
        Ok(p) => p,
        Err(e) => return vec![(false, format!("cannot build the HTTP client: {e}"))],
    };
    let (sink, chosen) = match picked::<RefusedEvent>(console, &target, picks).await {
        Ok(found) => found,
        Err(e) => return vec![(false, e)],
    };
    let mut results = Vec::new();
    for found in &chosen {
        let done = crate::cli::resend::resend_one(&publisher, &sink, found).await;
        results.push((done.resent && done.problem.is_none(), done.line));
    }
    results
}
