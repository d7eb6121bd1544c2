//! `e2b trend` as a newcomer runs it: the real binary on the bundled 30-day sample
//! (`events/objects/monitron-v2-trend-30d.json.gz`, made by `events/build-trend.py`), the PNG
//! decoded and looked at.

use std::path::PathBuf;
use std::process::{Command, Output};

const SAMPLE: &str = "events/objects/monitron-v2-trend-30d.json.gz";

fn e2b(args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_e2b"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("TREND_DAYS")
        .output();
    match output {
        Ok(o) => o,
        Err(e) => panic!("cannot run e2b: {e}"),
    }
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("e2b-trend-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir.join(name)
}

/// Width, height and RGB pixels of a PNG.
fn decode(png: &[u8]) -> (u32, u32, Vec<[u8; 3]>) {
    let decoder = png::Decoder::new(std::io::Cursor::new(png));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buffer = vec![0; reader.output_buffer_size().expect("its size")];
    let info = reader.next_frame(&mut buffer).expect("one frame");
    let channels = info.line_size / info.width as usize;
    let pixels = buffer[..info.line_size * info.height as usize]
        .chunks(channels)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    (info.width, info.height, pixels)
}

#[test]
fn the_bundled_sample_draws_its_30_days_with_the_alarm_marked() {
    let out = scratch("sample.png");
    let path = out.to_string_lossy().to_string();
    let run = e2b(&["trend", SAMPLE, "--out", &path]);
    assert!(run.status.success(), "{}", stderr(&run));
    let said = stderr(&run);
    assert!(
        said.contains("Pump 7 / Motor DE: 711 measurements from 2024-01-31 09:00 to 2024-03-01 09:00 UTC, ALARM at 2024-03-01 09:00:01 UTC marked"),
        "{said}"
    );
    let png = std::fs::read(&out).expect("the chart is written");
    let (width, height, pixels) = decode(&png);
    assert_eq!((width, height), (1200, 600));
    let at = |x: u32, y: u32| pixels[(y * width + x) as usize];
    // The plot area (inside the axes) is not blank: the velocity line (blue) runs across it.
    let blue = (80..1100)
        .flat_map(|x| (80..350).map(move |y| (x, y)))
        .filter(|&(x, y)| {
            let [r, g, b] = at(x, y);
            b > 150 && r < 100 && g < 140
        })
        .count();
    assert!(blue > 2000, "velocity pixels: {blue}");
    // The columns holding velocity: the whole month but the 9-hour gap.
    let columns = (80..1100)
        .filter(|&x| {
            (80..350).any(|y| {
                let [r, g, b] = at(x, y);
                b > 150 && r < 100 && g < 140
            })
        })
        .count();
    assert!(
        columns > 950,
        "velocity drawn across the month: {columns} columns"
    );
    // The alarm: a red line at the window's end, through both panels.
    let red_rows = (80..515)
        .filter(|&y| {
            (1096..1110).any(|x| {
                let [r, g, b] = at(x, y);
                r > 150 && g < 80 && b < 90
            })
        })
        .count();
    assert!(red_rows > 400, "the alarm line: {red_rows} rows");
    // The same data, the same bytes.
    let again = e2b(&["trend", SAMPLE, "--out", &path]);
    assert!(again.status.success());
    assert_eq!(std::fs::read(&out).expect("written again"), png);
}

#[test]
fn svg_is_written_for_an_svg_file_and_days_narrow_the_window() {
    let out = scratch("sample.svg");
    let path = out.to_string_lossy().to_string();
    let run = e2b(&["trend", SAMPLE, "--out", &path, "--days", "7"]);
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(
        stderr(&run).contains("from 2024-02-23 09:00 to 2024-03-01 09:00 UTC"),
        "{}",
        stderr(&run)
    );
    let svg = std::fs::read_to_string(&out).expect("the chart is written");
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(svg.contains(">Pump 7 / Motor DE — Site 1, Plant A</text>"));
    assert!(svg.contains("7 days, 168 measurements"), "one a hour");
}

#[test]
fn with_several_positions_the_one_in_alarm_is_drawn_or_the_one_named() {
    let other = "events/records/monitron-v2-measurement.json";
    let out = scratch("several.png");
    let path = out.to_string_lossy().to_string();
    let run = e2b(&["trend", SAMPLE, other, "--out", &path]);
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(stderr(&run).contains("Pump 7 / Motor DE: 711 measurements"));

    let asking = |position: &str| {
        e2b(&[
            "trend",
            SAMPLE,
            other,
            "--out",
            &path,
            "--position",
            position,
        ])
    };
    let named = asking("heizung 1 / anders");
    assert!(named.status.success(), "{}", stderr(&named));
    let said = stderr(&named);
    assert!(
        said.contains("Heizung 1 / Anders: 1 measurement from"),
        "{said}"
    );
    assert!(said.contains("no alert marked"));

    let by_id = asking("POS-1");
    assert!(by_id.status.success(), "{}", stderr(&by_id));

    let unknown = asking("Pump 8");
    assert_eq!(unknown.status.code(), Some(2));
    let listed = stderr(&unknown);
    assert!(
        listed.contains("no single position is `Pump 8`"),
        "{listed}"
    );
    assert!(
        listed.contains("Pump 7 / Motor DE (assetPositionId pos-1), 711 measurements, 2 alerts"),
        "{listed}"
    );
    assert!(
        listed.contains("Heizung 1 / Anders (assetPositionId none), 1 measurement, 0 alerts"),
        "{listed}"
    );
}

#[test]
fn objects_without_measurements_draw_nothing_and_say_so() {
    let out = scratch("none.png");
    let path = out.to_string_lossy().to_string();
    let run = e2b(&[
        "trend",
        "events/objects/monitron-v2-user-closure.json",
        "--out",
        &path,
    ]);
    assert_eq!(run.status.code(), Some(2));
    assert!(stderr(&run).contains("no measurement records in the objects: nothing to draw"));
    assert!(!out.exists());
}
