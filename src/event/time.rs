//! Monitron timestamps → RFC 3339 in UTC.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};

/// Converts a Monitron `timestamp` to RFC 3339 in UTC with a `Z`.
///
/// Accepted: the export's `yyyy-mm-dd hh:mm:ss.SSS` (UTC, no zone), the same with `T`, and forms
/// with a zone (`Z`, `+01:00`, `-0800`), which are converted to UTC. Fractions of a second are
/// kept (milliseconds, micro- or nanoseconds as needed). `None` when it is none of these.
pub fn to_rfc3339_utc(timestamp: &str) -> Option<String> {
    to_utc(timestamp).map(|utc| utc.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

/// A Monitron `timestamp` as a UTC time, read as [`to_rfc3339_utc`] reads it.
pub fn to_utc(timestamp: &str) -> Option<DateTime<Utc>> {
    let ts = timestamp.trim();
    if let Ok(zoned) = DateTime::parse_from_rfc3339(ts) {
        return Some(zoned.with_timezone(&Utc));
    }
    if let Some(zoned) = ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z"]
        .iter()
        .find_map(|format| DateTime::parse_from_str(ts, format).ok())
    {
        return Some(zoned.with_timezone(&Utc));
    }
    let naive = ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(ts, format).ok())?;
    Some(naive.and_utc())
}

#[cfg(test)]
mod tests {
    use super::to_rfc3339_utc;

    #[test]
    fn export_timestamps_become_utc_with_z() {
        let cases = [
            ("2023-10-29 16:38:07.476", "2023-10-29T16:38:07.476Z"),
            ("2023-11-16 17:06:10.695", "2023-11-16T17:06:10.695Z"),
            ("2024-03-01 09:00:01.500", "2024-03-01T09:00:01.500Z"),
            ("2024-03-02 10:30:00.000", "2024-03-02T10:30:00Z"),
            ("2024-03-02 10:30:00", "2024-03-02T10:30:00Z"),
            ("2024-03-02T10:30:00.123456", "2024-03-02T10:30:00.123456Z"),
            // The SAP samples' offset form.
            ("2022-11-20T22:44:17-08:00", "2022-11-21T06:44:17Z"),
            ("2022-11-20T22:44:17Z", "2022-11-20T22:44:17Z"),
            ("2022-11-20T22:44:17.25+0100", "2022-11-20T21:44:17.250Z"),
            ("2024-02-29 23:59:59.999", "2024-02-29T23:59:59.999Z"),
        ];
        for (input, expected) in cases {
            assert_eq!(to_rfc3339_utc(input).as_deref(), Some(expected), "{input}");
        }
    }

    #[test]
    fn other_text_is_not_a_time() {
        for input in [
            "",
            "yesterday",
            "2023-02-30 10:00:00.000",
            "2023-10-29",
            "1698597487476",
        ] {
            assert_eq!(to_rfc3339_utc(input), None, "{input}");
        }
    }
}
