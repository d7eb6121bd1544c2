//! The storm notification's texts: one notification on the site's technical object for a whole
//! flood (ISA-18.2's "common alarm"), naming every position that took part.
//!
//! Rules:
//! - its short text is `Monitron storm: <site>, N positions`, the site's name cut so that the
//!   count always shows within S/4's 40 characters;
//! - its long text starts with what happened and what is held, then one line per position
//!   (`<site / asset / position>: ALARM since 2024-05-01 02:40:00 UTC`), written in blocks of at
//!   most 1,333 characters (one S/4 request each, never one per position), and ends with a
//!   closing line with the counts;
//! - no line starts with `Position: `, so the notification is never taken for a position's own
//!   (`episode` adopts those by that line); its external reference is made from the site and the
//!   storm's start, so a create whose answer was lost is found again.

use chrono::DateTime;

use crate::http::sap::cut;
use crate::processor::notification::external_reference;
use crate::processor::rules::alarms::{AlarmManagement, show};

use super::site::{SiteEntry, Storm, StormSummary};

/// The most a long-text block written at once holds (`MaintNotifLongTextForEdit`).
pub const BLOCK: usize = 1333;

/// The site's name in its key (`<project> / <site>`).
pub fn site_name(site_key: &str) -> &str {
    site_key.rsplit(" / ").next().unwrap_or(site_key)
}

/// The storm notification's external reference.
pub fn reference(site_key: &str, began_ms: i64) -> String {
    external_reference("storm", &format!("{site_key}\n{began_ms}"))
}

/// `Monitron storm: <site>, N positions`, at most 40 characters.
pub fn title(site_key: &str, positions: usize) -> String {
    let suffix = format!(", {positions} positions");
    let prefix = "Monitron storm: ";
    let room = 40usize.saturating_sub(prefix.len() + suffix.len());
    format!("{prefix}{}{suffix}", cut(site_name(site_key), room))
}

/// The long text's start.
pub fn header(site_key: &str, storm: &Storm, settings: &AlarmManagement) -> String {
    format!(
        "Amazon Monitron: alarm flood (storm) at site {}\nRecognised at {}: {} or more positions of the site started episodes within {}. Their episodes are held while the storm lasts (until {} without a new one, at most {}); each position still in alert then gets a notification of its own.\nPositions:",
        cut(site_key, 200),
        time(storm.began_ms),
        settings.storm_positions,
        show(settings.storm_window),
        show(settings.storm_quiet),
        show(settings.storm_max),
    )
}

/// A position's line.
pub fn line(entry: &SiteEntry) -> String {
    let joined = if entry.joined {
        " (its open notification took the episode)"
    } else {
        ""
    };
    format!(
        "{}: {} since {}{joined}",
        entry.label,
        entry.state,
        time(entry.event_ms)
    )
}

/// The closing line.
pub fn closing(summary: &StormSummary) -> String {
    let others = summary
        .positions
        .saturating_sub(summary.released + summary.recovered);
    let others = if others > 0 {
        format!(
            " {others} had a notification already (opened before the storm was recognised, or open when their episode began)."
        )
    } else {
        String::new()
    };
    format!(
        "Storm over at {}: {} positions; {} still in alert got a notification of their own, {} recovered meanwhile and got none.{others}",
        time(summary.ended_ms),
        summary.positions,
        summary.released,
        summary.recovered
    )
}

/// Lines joined into blocks of at most [`BLOCK`] characters; a longer line is cut.
pub fn blocks(lines: &[String]) -> Vec<(String, usize)> {
    let mut found: Vec<(String, usize)> = Vec::new();
    for line in lines {
        let line = cut(line, BLOCK);
        match found.last_mut() {
            Some((text, n)) if text.chars().count() + 1 + line.chars().count() <= BLOCK => {
                text.push('\n');
                text.push_str(&line);
                *n += 1;
            }
            _ => found.push((line, 1)),
        }
    }
    found
}

fn time(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_title_keeps_the_count_within_40_characters() {
        let t = title("Plant / Dusseldorf North Compressor Hall 7", 1234);
        assert!(t.chars().count() <= 40, "{t}");
        assert!(t.ends_with(", 1234 positions") && t.starts_with("Monitron storm: Dusseldo"));
        assert_eq!(title("P / S1", 60), "Monitron storm: S1, 60 positions");
    }

    #[test]
    fn lines_go_in_blocks_that_fit_and_none_is_a_position_line() {
        let lines: Vec<String> = (0..100)
            .map(|i| {
                format!("Site 1 / Asset {i} / Position {i}: ALARM since 2024-05-01 02:40:00 UTC")
            })
            .collect();
        let blocks = blocks(&lines);
        assert!(blocks.len() > 1 && blocks.len() < 10, "{}", blocks.len());
        assert!(blocks.iter().all(|(b, _)| b.chars().count() <= BLOCK));
        assert_eq!(blocks.iter().map(|(_, n)| n).sum::<usize>(), 100);
        assert!(lines.iter().all(|l| !l.starts_with("Position: ")));
        assert_eq!(reference("P / S1", 5).len(), 20);
    }
}
