//! Writes a realistic Firehose object of Monitron v2 records to stdout, for benchmarks.
//!
//! Mostly hourly measurements with varied numbers (shaped like the real record in
//! `events/records/monitron-v2-measurement.json`), about 5% asset state transitions, a few
//! sensor and gateway events, and now and then a transition delivered twice (Firehose is
//! at-least-once). Records are newline-delimited, with one in ten concatenated to the next with
//! no delimiter, as objects written with and without `AppendDelimiterToRecord` look.
//!
//! Usage: `generate_firehose [BYTES] [SEED]` (default 128 MiB, seed 1). Deterministic.

use std::io::{self, BufWriter, Write};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn float(&mut self, max: f64) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 * max
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

const SITES: [&str; 4] = ["Site 1", "Werk Süd", "Hall 2/North", "Plant A"];
const ASSETS: [&str; 6] = [
    "Pump 7",
    "Heizung 1",
    "Compressor",
    "Fan A/B",
    "Motor 12",
    "Gearbox",
];
const POSITIONS: [&str; 4] = ["Motor DE", "Motor NDE", "Anders", "Pump DE"];
const STATES: [&str; 4] = ["HEALTHY", "WARNING", "ALARM", "NEEDS_MAINTENANCE"];
const CLASSES: [&str; 3] = ["HEALTHY", "HEALTHY", "WARNING"];

fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let target: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(128 * 1024 * 1024);
    let mut rng = Rng(args.next().and_then(|a| a.parse().ok()).unwrap_or(1) | 1);
    let out = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 20, out.lock());
    let mut written = 0u64;
    let mut event_id = 100_000u64;
    let mut last_transition = String::new();
    while written < target {
        event_id += 1;
        let roll = rng.below(1000);
        let record = if roll < 48 {
            let r = transition(&mut rng, event_id);
            last_transition = r.clone();
            r
        } else if roll < 50 && !last_transition.is_empty() {
            // A transition written again by a Firehose retry.
            last_transition.clone()
        } else if roll < 54 {
            connectivity(&mut rng, event_id)
        } else {
            measurement(&mut rng, event_id)
        };
        out.write_all(record.as_bytes())?;
        written += record.len() as u64;
        if rng.below(10) != 0 {
            out.write_all(b"\n")?;
            written += 1;
        }
    }
    out.flush()
}

fn header(rng: &mut Rng, event_id: u64, event_type: &str) -> String {
    format!(
        r#""timestamp":"2024-03-{:02} {:02}:{:02}:{:02}.{:03}","eventId":"{event_id:x}-{:08x}","version":"2.0","accountId":"111122223333","projectName":"Plant A","projectId":"proj-1","eventType":"{event_type}""#,
        1 + rng.below(28),
        rng.below(24),
        rng.below(60),
        rng.below(60),
        rng.below(1000),
        rng.next() as u32,
    )
}

fn place(rng: &mut Rng) -> String {
    format!(
        r#""siteName":"{}","assetName":"{}","positionName":"{}","assetPositionURL":"https://app.monitron.aws/#/61qza4arkr/5bxx2s8f4l/@assets/{:x}/{:x}/@details","sensor":{{"physicalId":"{:012x}""#,
        rng.pick(&SITES),
        rng.pick(&ASSETS),
        rng.pick(&POSITIONS),
        rng.next() as u32,
        rng.next() as u32,
        rng.next() & 0xffff_ffff_ffff,
    )
}

fn axes(rng: &mut Rng, scale: f64) -> String {
    format!(
        r#""xAxis":{{"rms":{:.4}}},"yAxis":{{"rms":{:.4}}},"zAxis":{{"rms":{:.4}}}"#,
        rng.float(scale),
        rng.float(scale),
        rng.float(scale)
    )
}

fn total(rng: &mut Rng, scale: f64) -> String {
    format!(
        r#""totalVibration":{{"absMax":{:.4},"absMin":{},"crestFactor":{:.4},"rms":{:.4}}}"#,
        rng.float(scale),
        rng.below(2),
        rng.float(2500.0),
        rng.float(scale / 3.0)
    )
}

fn model(rng: &mut Rng, extra: &str) -> String {
    let previous = rng.pick(&CLASSES);
    let current = if rng.below(200) == 0 {
        rng.pick(&CLASSES)
    } else {
        previous
    };
    format!(
        r#"{{{extra}"previousPersistentClassificationOutput":"{previous}","persistentClassificationOutput":"{current}","pointwiseClassificationOutput":"{}"}}"#,
        rng.pick(&["HEALTHY", "INITIALIZING", "WARNING"])
    )
}

fn measurement(rng: &mut Rng, event_id: u64) -> String {
    let head = header(rng, event_id, "measurement");
    let place = place(rng);
    let (a0, a1, a1t, v, vt) = (
        axes(rng, 10.0),
        axes(rng, 0.1),
        total(rng, 0.5),
        axes(rng, 0.2),
        total(rng, 0.9),
    );
    let (temperature, ml, iso, vml) = (
        rng.float(80.0),
        model(rng, ""),
        model(rng, r#""isoClass":"CLASS4","mutedThreshold":null,"#),
        model(rng, ""),
    );
    format!(
        r#"{{{head},"eventPayload":{{{place},"rssi":-{}}},"gateway":{{"physicalId":"{:012x}"}},"measurementTrigger":"periodic","sequenceNo":{},"features":{{"acceleration":{{"band0To6000Hz":{{{a0}}},"band10To1000Hz":{{{a1t},{a1}}}}},"velocity":{{"band10To1000Hz":{{{vt},{v}}}}},"temperature":{temperature:.2}}},"models":{{"temperatureML":{ml},"vibrationISO":{iso},"vibrationML":{vml}}}}}}}"#,
        30 + rng.below(60),
        rng.next() & 0xffff_ffff_ffff,
        rng.below(100_000),
    )
}

fn transition(rng: &mut Rng, event_id: u64) -> String {
    let head = header(rng, event_id, "assetStateTransition");
    let place = place(rng);
    let previous = rng.pick(&STATES);
    let mut new = rng.pick(&STATES);
    if new == previous {
        new = "HEALTHY";
    }
    let (kind, closure) = if rng.below(4) == 0 {
        (
            "userInput",
            r#","closureCode":{"failureMode":"MISALIGNMENT","failureCause":"WEAR","actionTaken":"ADJUST","resolvedModels":["vibrationISO"]}"#,
        )
    } else {
        ("measurement", "")
    };
    format!(
        r#"{{{head},"eventPayload":{{{place}}},"assetTransitionType":"{kind}","assetState":{{"newState":"{new}","previousState":"{previous}"}}{closure},"assetPositionId":"pos-{}"}}}}"#,
        rng.below(500)
    )
}

fn connectivity(rng: &mut Rng, event_id: u64) -> String {
    if rng.below(2) == 0 {
        let event_type = rng.pick(&["sensorConnected", "sensorDisconnected"]);
        let head = header(rng, event_id, event_type);
        let place = place(rng);
        format!(r#"{{{head},"eventPayload":{{{place}}},"assetPositionId":"pos-1"}}}}"#)
    } else {
        let event_type = rng.pick(&["gatewayConnected", "gatewayDisconnected"]);
        let head = header(rng, event_id, event_type);
        format!(
            r#"{{{head},"eventPayload":{{"siteName":"{}","gatewayName":"GW hall 2","gatewayListURL":"https://app.monitron.aws/#/gw","gateway":{{"physicalId":"{:012x}"}}}}}}"#,
            rng.pick(&SITES),
            rng.next() & 0xffff_ffff_ffff
        )
    }
}
