//! The vibration severity zones of ISO 10816-1 (now ISO 20816-1), the reference lines of a
//! position's chart.
//!
//! Rules:
//! - Monitron names a position's machine class in `models.vibrationISO.isoClass`: `CLASS1` …
//!   `CLASS4` are ISO's classes I–IV (small machines; medium; large on rigid foundations; large
//!   on soft foundations); any other name (the v1 documentation's `FAN_BV2`) has no zones here;
//! - the zone limits are the standard's typical boundaries of broadband velocity RMS in mm/s:
//!   A/B (newly commissioned), B/C (unrestricted long-term operation), C/D (damage):
//!
//! | class | A/B | B/C | C/D |
//! | --- | --- | --- | --- |
//! | I | 0.71 | 1.8 | 4.5 |
//! | II | 1.12 | 2.8 | 7.1 |
//! | III | 1.8 | 4.5 | 11.2 |
//! | IV | 2.8 | 7.1 | 18.0 |
//!
//! - they are a reference, not Monitron's thresholds: Monitron adapts its own, and the chart's
//!   legend says so.

/// A machine class of ISO 10816-1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum IsoClass {
    I,
    II,
    III,
    IV,
}

impl IsoClass {
    /// Monitron's name (`CLASS1` … `CLASS4`, any case) → the class.
    pub fn from_name(name: &str) -> Option<IsoClass> {
        Some(match name.to_ascii_uppercase().as_str() {
            "CLASS1" => IsoClass::I,
            "CLASS2" => IsoClass::II,
            "CLASS3" => IsoClass::III,
            "CLASS4" => IsoClass::IV,
            _ => return None,
        })
    }

    /// Monitron's name of the class.
    pub fn name(self) -> &'static str {
        match self {
            IsoClass::I => "CLASS1",
            IsoClass::II => "CLASS2",
            IsoClass::III => "CLASS3",
            IsoClass::IV => "CLASS4",
        }
    }

    /// The roman numeral ISO writes.
    pub fn roman(self) -> &'static str {
        match self {
            IsoClass::I => "I",
            IsoClass::II => "II",
            IsoClass::III => "III",
            IsoClass::IV => "IV",
        }
    }

    /// The zone limits A/B, B/C and C/D in mm/s.
    pub fn limits(self) -> [Limit; 3] {
        let [ab, bc, cd] = match self {
            IsoClass::I => [0.71, 1.8, 4.5],
            IsoClass::II => [1.12, 2.8, 7.1],
            IsoClass::III => [1.8, 4.5, 11.2],
            IsoClass::IV => [2.8, 7.1, 18.0],
        };
        [
            Limit {
                name: "A/B",
                velocity: ab,
            },
            Limit {
                name: "B/C",
                velocity: bc,
            },
            Limit {
                name: "C/D",
                velocity: cd,
            },
        ]
    }
}

/// One zone boundary.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    pub name: &'static str,
    /// Velocity RMS, mm/s.
    pub velocity: f64,
}
