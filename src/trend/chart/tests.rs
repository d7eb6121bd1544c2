use chrono::{DateTime, Duration, TimeZone, Utc};

use super::*;
use crate::trend::{Health, Point, Position, Series};

fn end() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 31, 12, 0, 0).unwrap()
}

/// 30 days hourly, rising into class II's zone D over the last days, with a day missing.
fn series() -> Series {
    let mut series = Series::new(Position {
        source: "monitron/1/plant".into(),
        site: Some("Plant <North> & Co".into()),
        asset: Some("Pump 7".into()),
        position: Some("Motor DE".into()),
        project: Some("plant".into()),
        asset_position_id: None,
    });
    for hour in 0..(30 * 24) {
        if (200..224).contains(&hour) {
            continue;
        }
        let at = end() - Duration::hours(30 * 24 - hour);
        let rise = if hour > 600 {
            (hour - 600) as f64 * 0.06
        } else {
            0.0
        };
        series.push(Point {
            at,
            velocity: Some(1.0 + rise + (hour % 24) as f64 * 0.01),
            velocity_axes: [None; 3],
            acceleration: None,
            temperature: Some(40.0 + (hour % 24) as f64 * 0.2),
            iso_class: Some(IsoClass::II),
            models: [Some(Health::Healthy); 3],
        });
    }
    series
}

fn alarm() -> Option<Alert> {
    Some(Alert {
        at: end(),
        state: "ALARM".into(),
    })
}

#[derive(Default)]
struct Recorder {
    texts: Vec<String>,
    lines: Vec<(Color, bool, usize)>,
    rects: Vec<(f32, f32, f32, f32, Color)>,
}

impl Canvas for Recorder {
    fn rect(&mut self, x: f32, y: f32, w: f32, h: f32, fill: Color) {
        self.rects.push((x, y, w, h, fill));
    }
    fn line(&mut self, points: &[(f32, f32)], stroke: Color, _: f32, dashed: bool) {
        self.lines.push((stroke, dashed, points.len()));
    }
    fn text(&mut self, _: f32, _: f32, _: f32, _: Anchor, _: Color, text: &str) {
        self.texts.push(text.to_string());
    }
}

/// What the chart of `series` over 30 days, with `alert`, draws.
fn drawn(series: &Series, alert: Option<Alert>) -> Recorder {
    let mut recorder = Recorder::default();
    Chart {
        series,
        days: 30,
        alert,
    }
    .draw(&mut recorder);
    recorder
}

#[test]
fn the_chart_names_the_position_window_zones_and_alert() {
    let series = series();
    let r = drawn(&series, alarm());
    assert!(
        r.texts
            .contains(&"Pump 7 / Motor DE — Plant <North> & Co, plant".to_string()),
        "{:?}",
        r.texts
    );
    assert!(
        r.texts
            .iter()
            .any(|t| t
                .starts_with("2024-03-01 12:00 – 2024-03-31 12:00 UTC, 30 days, 696 measurements")),
        "{:?}",
        r.texts
    );
    for zone in ["A/B 1.12", "B/C 2.8", "C/D 7.1"] {
        assert!(
            r.texts.contains(&zone.to_string()),
            "{zone} in {:?}",
            r.texts
        );
    }
    assert_eq!(
        r.lines
            .iter()
            .filter(|(c, dashed, _)| *c == ZONE && *dashed)
            .count(),
        3
    );
    assert!(r.texts.contains(&"ALARM 2024-03-31 12:00".to_string()));
    assert!(
        r.texts
            .iter()
            .any(|t| t.contains("a reference only: Monitron adapts its own thresholds"))
    );
}

#[test]
fn a_gap_breaks_the_lines_and_is_shaded() {
    let series = series();
    let r = drawn(&series, alarm());
    // The missing day splits each series in two runs.
    assert_eq!(
        r.lines
            .iter()
            .filter(|(c, _, n)| *c == VELOCITY && *n > 2)
            .count(),
        2
    );
    assert_eq!(
        r.lines
            .iter()
            .filter(|(c, _, n)| *c == TEMPERATURE && *n > 2)
            .count(),
        2
    );
    // Shaded in both panels (the legend's swatch is 14 px high).
    let shaded = r
        .rects
        .iter()
        .filter(|(_, _, _, h, c)| *c == GAP && *h > 50.0)
        .count();
    assert_eq!(shaded, 2, "{:?}", r.rects);
    assert!(r.texts.contains(&"No data".to_string()));
}

#[test]
fn low_data_still_shows_the_reference_and_no_data_shows_an_empty_window() {
    let mut quiet = series();
    quiet.keep_between(end() - Duration::days(30), end() - Duration::days(20));
    let r = drawn(&quiet, None);
    assert!(r.texts.contains(&"B/C 2.8".to_string()));
    let empty = Series::new(Position::default());
    let r = drawn(&empty, alarm());
    assert!(r.texts.iter().any(|t| t.contains("0 measurements")));
    assert!(r.texts.iter().any(|t| t.starts_with("No ISO class")));
}

#[test]
fn the_png_is_1200_by_600_deterministic_and_plots_the_data() {
    let series = series();
    let chart = Chart {
        series: &series,
        days: 30,
        alert: alarm(),
    };
    let first = png::render(&chart).expect("renders");
    assert_eq!(
        first,
        png::render(&chart).expect("renders"),
        "the same bytes twice"
    );
    let decoder = ::png::Decoder::new(std::io::Cursor::new(&first));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut pixels = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut pixels).expect("a frame");
    assert_eq!((info.width, info.height), (1200, 600));
    let channels = info.line_size / info.width as usize;
    let colour_at = |x: usize, y: usize| {
        let i = y * info.line_size + x * channels;
        (pixels[i], pixels[i + 1], pixels[i + 2])
    };
    let velocity_pixels = (78..1104)
        .flat_map(|x| (78..352).map(move |y| (x, y)))
        .filter(|(x, y)| {
            let (r, g, b) = colour_at(*x, *y);
            b > 150 && r < 100 && g < 140
        })
        .count();
    assert!(
        velocity_pixels > 1500,
        "the velocity line is drawn: {velocity_pixels} pixels"
    );
    let red = (78..1104)
        .flat_map(|x| (78..516).map(move |y| (x, y)))
        .filter(|(x, y)| {
            let (r, g, b) = colour_at(*x, *y);
            r > 150 && g < 80 && b < 90
        })
        .count();
    assert!(red > 400, "the alarm is marked: {red} pixels");
}

#[test]
fn the_svg_escapes_names_and_draws_the_same_chart() {
    let series = series();
    let chart = Chart {
        series: &series,
        days: 30,
        alert: alarm(),
    };
    let svg = svg::render(&chart);
    assert!(
        svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"1200\" height=\"600\"")
    );
    assert!(svg.contains("Plant &lt;North&gt; &amp; Co"));
    assert!(!svg.contains("<North>"));
    assert_eq!(
        svg.matches("stroke-dasharray").count(),
        3,
        "the three zone limits"
    );
    assert_eq!(svg, svg::render(&chart));
}
