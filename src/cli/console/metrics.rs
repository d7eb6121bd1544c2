//! The functions' CloudWatch metrics as the console's overview counts them: what the forwarder
//! and the processor emit in the `e2b` namespace (EMF lines, [`crate::metrics`]), by `Function`.
//!
//! Rules:
//! - one `GetMetricData` call: each metric's hourly sums over the last 7 days; the last 24 hours
//!   and the 7 days are added up from them, and the days for the chart;
//! - a metric without data points counts 0; when no metric has any, or CloudWatch cannot be
//!   read, the overview counts from the episode and failure records instead, and says why in a
//!   line: CloudWatch's status and error code, or where it could not be reached and the network's
//!   reason; never the raw answer.

use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};
use chrono::{DateTime, Duration, NaiveDate, Utc};

/// The metrics the overview shows: (function, metric, what it means to an operator).
pub const SHOWN: [(&str, &str, &str); 6] = [
    ("forwarder", "EventsForwarded", "events forwarded"),
    ("forwarder", "EventsRefused", "events refused by the broker"),
    ("processor", "EpisodesCreated", "notifications created"),
    ("processor", "EpisodesEscalated", "episodes escalated"),
    ("processor", "EpisodesClosed", "episodes closed"),
    ("processor", "Failures", "processor failures"),
];

/// Each shown metric's sums.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    /// Per [`SHOWN`] entry: (last 24 h, last 7 days).
    pub totals: Vec<(u64, u64)>,
    /// Per day of the last 7 (oldest first): (day, events forwarded, episodes closed).
    pub days: Vec<(NaiveDate, u64, u64)>,
}

/// Reads the shown metrics; `Err` says why they cannot be used.
pub async fn read(client: &aws_sdk_cloudwatch::Client) -> Result<Metrics, String> {
    let now = Utc::now();
    let start = now - Duration::days(7);
    let queries: Vec<MetricDataQuery> = SHOWN
        .iter()
        .enumerate()
        .map(|(i, (function, name, _))| {
            let metric = Metric::builder()
                .namespace(crate::metrics::NAMESPACE)
                .metric_name(*name)
                .dimensions(
                    Dimension::builder()
                        .name("Function")
                        .value(*function)
                        .build(),
                )
                .build();
            let stat = MetricStat::builder()
                .metric(metric)
                .period(3600)
                .stat("Sum")
                .build();
            MetricDataQuery::builder()
                .id(format!("m{i}"))
                .metric_stat(stat)
                .return_data(true)
                .build()
        })
        .collect();
    let mut series: Vec<Vec<(DateTime<Utc>, f64)>> = vec![Vec::new(); SHOWN.len()];
    let mut next: Option<String> = None;
    loop {
        let answer = client
            .get_metric_data()
            .set_metric_data_queries(Some(queries.clone()))
            .start_time(aws_sdk_cloudwatch::primitives::DateTime::from_secs(
                start.timestamp(),
            ))
            .end_time(aws_sdk_cloudwatch::primitives::DateTime::from_secs(
                now.timestamp(),
            ))
            .set_next_token(next.clone())
            .send()
            .await
            .map_err(|e| {
                // What CloudWatch (or whatever answered) said, in a line; the body is not shown.
                let why = match (
                    e.raw_response(),
                    e.as_service_error().and_then(|s| s.meta().code()),
                ) {
                    (Some(raw), Some(code)) => format!("answered {} {code}", raw.status().as_u16()),
                    (Some(raw), None) => format!(
                        "answered {} in another protocol (is the endpoint CloudWatch?)",
                        raw.status().as_u16()
                    ),
                    // Nothing answered: where we tried, and the network's reason.
                    (None, _) => format!(
                        "could not reach CloudWatch at {}: {}",
                        endpoint(client),
                        crate::aws::dynamo::described(&e)
                    ),
                };
                format!(
                    "CloudWatch metrics (namespace {}): {why}",
                    crate::metrics::NAMESPACE
                )
            })?;
        for result in answer.metric_data_results() {
            let Some(index) = result
                .id()
                .and_then(|id| id.strip_prefix('m'))
                .and_then(|n| n.parse::<usize>().ok())
                .filter(|n| *n < SHOWN.len())
            else {
                continue;
            };
            for (time, value) in result.timestamps().iter().zip(result.values()) {
                if let Some(at) = DateTime::from_timestamp(time.secs(), 0) {
                    series[index].push((at, *value));
                }
            }
        }
        next = answer.next_token().map(str::to_string);
        if next.is_none() {
            break;
        }
    }
    if series.iter().all(Vec::is_empty) {
        return Err(format!(
            "CloudWatch metrics: no data points in namespace {} in the last 7 days",
            crate::metrics::NAMESPACE
        ));
    }
    Ok(summed(&series, now))
}

/// Where the SDK sends CloudWatch requests, for a message: the endpoint the environment sets (the
/// service's own variable first, as the SDK reads them), else the region's.
fn endpoint(client: &aws_sdk_cloudwatch::Client) -> String {
    let env = crate::env::Env::new("console", &crate::env::process);
    env.text("AWS_ENDPOINT_URL_CLOUDWATCH")
        .or_else(|| env.text("AWS_ENDPOINT_URL"))
        .unwrap_or_else(|| match client.config().region() {
            Some(region) => format!("its endpoint in {region}"),
            None => "its endpoint (no region is set: AWS_REGION)".to_string(),
        })
}

/// The totals and days of hourly sums, as of `now`.
pub fn summed(series: &[Vec<(DateTime<Utc>, f64)>], now: DateTime<Utc>) -> Metrics {
    let day_ago = now - Duration::hours(24);
    let totals = series
        .iter()
        .map(|points| {
            let sum = |from: DateTime<Utc>| {
                points
                    .iter()
                    .filter(|(t, _)| *t >= from)
                    .map(|(_, v)| *v)
                    .sum::<f64>() as u64
            };
            (sum(day_ago), sum(now - Duration::days(7)))
        })
        .collect();
    let on = |index: usize, day: NaiveDate| {
        series
            .get(index)
            .into_iter()
            .flatten()
            .filter(|(t, _)| t.date_naive() == day)
            .map(|(_, v)| *v)
            .sum::<f64>() as u64
    };
    let days = (0..7)
        .rev()
        .map(|d| (now - Duration::days(d)).date_naive())
        .map(|day| (day, on(0, day), on(4, day)))
        .collect();
    Metrics { totals, days }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hourly_sums_make_the_day_the_week_and_the_chart() {
        let now = DateTime::from_timestamp(1_764_750_000, 0).unwrap_or_default();
        let mut series = vec![Vec::new(); SHOWN.len()];
        series[0] = vec![
            (now - Duration::hours(1), 5.0),
            (now - Duration::hours(30), 7.0),
            (now - Duration::days(8), 100.0),
        ];
        series[4] = vec![(now - Duration::hours(2), 2.0)];
        let m = summed(&series, now);
        assert_eq!(m.totals[0], (5, 12));
        assert_eq!(m.totals[4], (2, 2));
        assert_eq!(m.totals[1], (0, 0));
        assert_eq!(m.days.len(), 7);
        let today = m.days.last().copied().unwrap_or_default();
        assert_eq!(today.0, now.date_naive());
        assert_eq!((today.1, today.2), (5, 2));
    }
}
