//! Trend chart render times (run by `bench/trend.sh`).
//!
//! `bench_trend [ROUNDS]` reads the bundled 30-day sample
//! (`events/objects/monitron-v2-trend-30d.json.gz`) into its position's series as `e2b trend`
//! does, then renders the chart ROUNDS times as PNG and as SVG and prints the median and worst
//! of each, against the baseline of encoding a blank 1200 × 600 PNG (no drawing: what the PNG
//! encoder alone costs). Target (issue 32): a PNG in at most 50 ms.

use std::time::{Duration, Instant};

use e2b::event::Origin;
use e2b::forwarder::scan::{Report, ScanConfig, Scanner};
use e2b::trend::Series;
use e2b::trend::chart::{Alert, Chart, png, svg};

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(50);
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/events/objects/monitron-v2-trend-30d.json.gz"
    );
    let object = std::fs::File::open(path).expect("the bundled sample");
    let mut series: Option<Series> = None;
    let mut scanner = Scanner::new(ScanConfig {
        measurements: true,
        ..ScanConfig::default()
    });
    let origin = Origin::Local { path: path.into() };
    let scanned = scanner.scan(&origin, object, |report| {
        if let Report::Measurement(measured) = report {
            let (position, point) = *measured;
            series
                .get_or_insert_with(|| Series::new(position))
                .push(point);
        }
        Ok::<(), std::convert::Infallible>(())
    });
    assert!(scanned.is_ok(), "the sample reads to its end");
    let series = series.expect("the sample holds measurements");
    let alert = series.points().last().map(|p| Alert {
        at: p.at + chrono::Duration::minutes(60),
        state: "ALARM".into(),
    });
    let chart = Chart {
        series: &series,
        days: 30,
        alert,
    };
    let time = |work: &dyn Fn() -> usize| {
        let mut times: Vec<Duration> = (0..rounds)
            .map(|_| {
                let start = Instant::now();
                std::hint::black_box(work());
                start.elapsed()
            })
            .collect();
        times.sort();
        (times[times.len() / 2], times[times.len() - 1])
    };
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let (png_median, png_worst) = time(&|| png::render(&chart).map(|b| b.len()).unwrap_or(0));
    let (svg_median, svg_worst) = time(&|| svg::render(&chart).len());
    let (blank_median, _) = time(&|| {
        tiny_skia::Pixmap::new(1200, 600)
            .and_then(|p| p.encode_png().ok())
            .map(|b| b.len())
            .unwrap_or(0)
    });
    let bytes = png::render(&chart).map(|b| b.len()).unwrap_or(0);
    println!(
        "{} points; PNG {bytes} bytes: median {:.1} ms, worst {:.1} ms (target <= 50 ms); SVG median {:.1} ms, worst {:.1} ms; blank 1200x600 PNG encode {:.1} ms (PNG / blank {:.1})",
        series.points().len(),
        ms(png_median),
        ms(png_worst),
        ms(svg_median),
        ms(svg_worst),
        ms(blank_median),
        ms(png_median) / ms(blank_median).max(0.001)
    );
}
