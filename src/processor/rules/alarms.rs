//! The rule file's `[alarm_management]` table: on-delay, flood (storm) suppression, in the terms
//! of ISA-18.2 / IEC 62682 (`docs/alarm-management.md`).
//!
//! ```toml
//! [alarm_management]
//! on_delay = "0s"          # a new episode's notification waits this long (wall clock, from its first delivery)
//! storm_positions = 0      # 0 = off; this many positions of one site starting episodes within storm_window is a storm
//! storm_window = "60s"     # Monitron event time
//! storm_quiet = "15m"      # a storm ends this long after its last new episode ...
//! storm_max = "60m"        # ... and at the latest this long after it began
//! ```
//!
//! Rules:
//! - a duration is a whole number and a unit, `s`, `m` or `h` (`90s`, `15m`, `1h`);
//! - bounds: `on_delay` at most 1 h; `storm_positions` 0 (off) or 2 to 10,000; `storm_window`
//!   1 s to 1 h; `storm_quiet` 10 s to 24 h and at most `storm_max`, which is at most 24 h;
//! - every setting at its default (`on_delay = "0s"`, `storm_positions = 0`) changes nothing:
//!   no episode is held, no site record is written.

use std::time::Duration;

use serde::Deserialize;

/// The `[alarm_management]` settings, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlarmManagement {
    #[serde(with = "text")]
    pub on_delay: Duration,
    pub storm_positions: u32,
    #[serde(with = "text")]
    pub storm_window: Duration,
    #[serde(with = "text")]
    pub storm_quiet: Duration,
    #[serde(with = "text")]
    pub storm_max: Duration,
}

impl Default for AlarmManagement {
    fn default() -> Self {
        AlarmManagement {
            on_delay: Duration::ZERO,
            storm_positions: 0,
            storm_window: Duration::from_secs(60),
            storm_quiet: Duration::from_secs(15 * 60),
            storm_max: Duration::from_secs(60 * 60),
        }
    }
}

impl AlarmManagement {
    /// Whether anything is held: with neither, episodes act as they always did.
    pub fn active(&self) -> bool {
        self.holds_for_delay() || self.recognises_storms()
    }

    pub fn holds_for_delay(&self) -> bool {
        !self.on_delay.is_zero()
    }

    pub fn recognises_storms(&self) -> bool {
        self.storm_positions > 0
    }

    /// What is wrong with the settings, in the rule file's words.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut out_of = |name: &str, value: Duration, low: u64, high: u64| {
            if value < Duration::from_secs(low) || value > Duration::from_secs(high) {
                problems.push(format!(
                    "alarm_management.{name} = \"{}\" is outside {} to {}",
                    show(value),
                    show(Duration::from_secs(low)),
                    show(Duration::from_secs(high))
                ));
            }
        };
        out_of("on_delay", self.on_delay, 0, 3600);
        out_of("storm_window", self.storm_window, 1, 3600);
        out_of("storm_quiet", self.storm_quiet, 10, 24 * 3600);
        out_of("storm_max", self.storm_max, 10, 24 * 3600);
        if self.storm_positions == 1 || self.storm_positions > 10_000 {
            problems.push(format!(
                "alarm_management.storm_positions = {} must be 0 (off) or 2 to 10000",
                self.storm_positions
            ));
        }
        if self.storm_quiet > self.storm_max {
            problems.push(format!(
                "alarm_management.storm_quiet (\"{}\") must be at most storm_max (\"{}\")",
                show(self.storm_quiet),
                show(self.storm_max)
            ));
        }
        problems
    }

    /// What the settings mean, for `e2b rules check`.
    pub fn meaning(&self) -> Vec<String> {
        let mut lines = Vec::new();
        lines.push(if self.holds_for_delay() {
            format!(
                "on-delay: a new episode's notification is created {} after its first delivery (released by the every-minute schedule), and none if it recovers meanwhile",
                show(self.on_delay)
            )
        } else {
            "on-delay: off (a new episode's notification is created at once)".to_string()
        });
        lines.push(if self.recognises_storms() {
            format!(
                "storms: {} positions of one site starting episodes within {} (Monitron event time) are a storm: one storm notification on the site, their episodes held; it ends {} after its last new episode, at the latest {} after it began; then each position still in alert gets its own notification",
                self.storm_positions,
                show(self.storm_window),
                show(self.storm_quiet),
                show(self.storm_max)
            )
        } else {
            "storms: off (storm_positions = 0)".to_string()
        });
        lines
    }
}

/// `90s`, `15m`, `1h`: the largest unit that divides it.
pub fn show(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => "0s".to_string(),
        _ if s.is_multiple_of(3600) => format!("{}h", s / 3600),
        _ if s.is_multiple_of(60) => format!("{}m", s / 60),
        _ => format!("{s}s"),
    }
}

/// `<whole number><s|m|h>`.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("\"{text}\" is not a duration like \"45s\", \"15m\" or \"1h\""))?;
    let per = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => {
            return Err(format!(
                "\"{text}\" has no unit: write \"{n}s\", \"{n}m\" or \"{n}h\""
            ));
        }
    };
    n.checked_mul(per)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("\"{text}\" is too long"))
}

mod text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        super::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(toml_text: &str) -> Result<AlarmManagement, String> {
        #[derive(Deserialize)]
        struct File {
            alarm_management: AlarmManagement,
        }
        toml::from_str::<File>(toml_text)
            .map(|f| f.alarm_management)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn durations_read_with_their_unit_and_show_back() {
        assert_eq!(parse("45s"), Ok(Duration::from_secs(45)));
        assert_eq!(parse("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse("45").unwrap_err().contains("no unit"));
        assert!(parse("1.5m").is_err());
        assert!(parse("-3s").is_err());
        assert_eq!(show(Duration::from_secs(90)), "90s");
        assert_eq!(show(Duration::from_secs(900)), "15m");
    }

    #[test]
    fn the_defaults_hold_nothing_and_bounds_are_checked() {
        let defaults = read("[alarm_management]\n").expect("empty table");
        assert_eq!(defaults, AlarmManagement::default());
        assert!(!defaults.active() && defaults.problems().is_empty());
        let set = read(
            "[alarm_management]\non_delay = \"45s\"\nstorm_positions = 20\nstorm_window = \"60s\"\nstorm_quiet = \"5s\"\nstorm_max = \"10m\"\n",
        )
        .expect("valid toml");
        assert!(set.active());
        assert_eq!(
            set.problems(),
            ["alarm_management.storm_quiet = \"5s\" is outside 10s to 24h"]
        );
        let wrong = read(
            "[alarm_management]\nstorm_positions = 1\nstorm_quiet = \"2h\"\nstorm_max = \"1h\"\n",
        )
        .expect("valid toml");
        assert_eq!(wrong.problems().len(), 2, "{:?}", wrong.problems());
        assert!(
            read("[alarm_management]\nondelay = \"1s\"\n")
                .unwrap_err()
                .contains("unknown field")
        );
    }
}
