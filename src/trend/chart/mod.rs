//! A position's trend chart: one drawing ([`Chart::draw`]) onto a [`Canvas`], which is a PNG
//! ([`png`], for the S/4 attachment and `e2b trend`) or an SVG ([`svg`], for the console).
//!
//! Rules:
//! - 1200 × 600, white, readable when printed: dark text of at least 12 px, lines of at least
//!   1.5 px, colours that stay apart in grey (blue velocity, orange temperature, red alert);
//! - the window is the `days` before its end (the alert's time, else the newest point); the
//!   title names the asset and position, the site and project, and the window in UTC;
//! - the upper panel is velocity RMS (mm/s) from 0, with the ISO zone limits of the position's
//!   class ([`super::iso`]) dashed and labelled; the axis reaches at least past B/C so the
//!   reference is always seen, and C/D too when the data comes near it; the legend says the
//!   zones are a reference and that Monitron adapts its own thresholds;
//! - the lower panel is temperature (°C), on its own axis;
//! - a gap is where no point came for more than 3 hours (Monitron measures hourly) or three
//!   times the usual spacing, whichever is longer: the lines break there and the gap is shaded,
//!   at the window's ends too;
//! - the alert's time is a red vertical line through both panels, labelled with its state;
//! - the same series, window and alert always give the same drawing, byte for byte: no clock,
//!   no randomness, no system font.

pub mod png;
pub mod svg;

use chrono::{DateTime, Duration, TimeZone, Utc};

use super::Series;
use super::iso::IsoClass;

pub const WIDTH: f32 = 1200.0;
pub const HEIGHT: f32 = 600.0;

/// An sRGB colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Color(pub u8, pub u8, pub u8);

impl Color {
    pub fn hex(self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }
}

const INK: Color = Color(0x1f, 0x1f, 0x1f);
const MUTED: Color = Color(0x55, 0x55, 0x55);
const GRID: Color = Color(0xdd, 0xdd, 0xdd);
const GAP: Color = Color(0xee, 0xee, 0xee);
const VELOCITY: Color = Color(0x1f, 0x5f, 0xbf);
const TEMPERATURE: Color = Color(0xd9, 0x6c, 0x00);
const ZONE: Color = Color(0x44, 0x44, 0x44);
const ALERT: Color = Color(0xc8, 0x10, 0x2e);

/// Where a text's `x` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    Start,
    Middle,
    End,
}

/// What a chart is drawn with.
pub trait Canvas {
    fn rect(&mut self, x: f32, y: f32, w: f32, h: f32, fill: Color);
    /// A polyline; `dashed` for reference lines.
    fn line(&mut self, points: &[(f32, f32)], stroke: Color, width: f32, dashed: bool);
    /// Text with its baseline at `y`.
    fn text(&mut self, x: f32, y: f32, size: f32, anchor: Anchor, color: Color, text: &str);
}

/// The alert a chart marks.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub at: DateTime<Utc>,
    /// Its state, as Monitron names it (`ALARM`, `WARNING`, …).
    pub state: String,
}

/// A series, the window to show and the alert to mark.
#[derive(Debug, Clone)]
pub struct Chart<'s> {
    pub series: &'s Series,
    pub days: u32,
    pub alert: Option<Alert>,
}

/// The plot areas and the window.
struct Frame {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    left: f32,
    right: f32,
}

impl Frame {
    fn x(&self, at: DateTime<Utc>) -> f32 {
        let span = (self.to - self.from).num_milliseconds().max(1) as f32;
        let along = (at - self.from).num_milliseconds() as f32 / span;
        self.left + along.clamp(0.0, 1.0) * (self.right - self.left)
    }
}

/// A panel's vertical scale.
struct Panel {
    top: f32,
    bottom: f32,
    low: f64,
    high: f64,
}

impl Panel {
    fn y(&self, value: f64) -> f32 {
        let along = ((value - self.low) / (self.high - self.low).max(f64::EPSILON)) as f32;
        self.bottom - along.clamp(0.0, 1.0) * (self.bottom - self.top)
    }
}

const VELOCITY_PANEL: (f32, f32) = (78.0, 352.0);
const TEMPERATURE_PANEL: (f32, f32) = (392.0, 516.0);

impl Chart<'_> {
    /// The window shown: `days` before the alert's time, or before the newest point.
    pub fn window(&self) -> (DateTime<Utc>, DateTime<Utc>) {
        let to = self
            .alert
            .as_ref()
            .map(|a| a.at)
            .or_else(|| self.series.points().last().map(|p| p.at))
            .unwrap_or(DateTime::UNIX_EPOCH);
        (to - Duration::days(i64::from(self.days.max(1))), to)
    }

    pub fn draw(&self, canvas: &mut dyn Canvas) {
        let (from, to) = self.window();
        let frame = Frame {
            from,
            to,
            left: 78.0,
            right: WIDTH - 96.0,
        };
        let points: Vec<_> = self
            .series
            .points()
            .iter()
            .filter(|p| p.at >= from && p.at <= to)
            .collect();
        canvas.rect(0.0, 0.0, WIDTH, HEIGHT, Color(0xff, 0xff, 0xff));
        self.title(canvas, &frame, points.len());

        let class = self.series.iso_class();
        let velocities = points.iter().filter_map(|p| p.velocity);
        let velocity = Panel {
            top: VELOCITY_PANEL.0,
            bottom: VELOCITY_PANEL.1,
            low: 0.0,
            high: velocity_top(velocities.fold(0.0, f64::max), class),
        };
        let temperatures: Vec<f64> = points.iter().filter_map(|p| p.temperature).collect();
        let (t_low, t_high) = temperature_range(&temperatures);
        let temperature = Panel {
            top: TEMPERATURE_PANEL.0,
            bottom: TEMPERATURE_PANEL.1,
            low: t_low,
            high: t_high,
        };

        let times: Vec<_> = points.iter().map(|p| p.at).collect();
        let gaps = gaps(&times, from, to);
        for panel in [&velocity, &temperature] {
            for (start, end) in &gaps {
                let (x0, x1) = (frame.x(*start), frame.x(*end));
                canvas.rect(x0, panel.top, x1 - x0, panel.bottom - panel.top, GAP);
            }
        }
        y_axis(canvas, &frame, &velocity, "mm/s");
        y_axis(canvas, &frame, &temperature, "°C");
        x_axis(canvas, &frame);
        if let Some(class) = class {
            zones(canvas, &frame, &velocity, class);
        }
        let breaks = |i: usize| i > 0 && is_gap(&gaps, times[i - 1], times[i]);
        plot(
            canvas,
            &frame,
            &velocity,
            &points,
            |p| p.velocity,
            &breaks,
            VELOCITY,
        );
        plot(
            canvas,
            &frame,
            &temperature,
            &points,
            |p| p.temperature,
            &breaks,
            TEMPERATURE,
        );
        if let Some(alert) = &self.alert {
            let x = frame.x(alert.at);
            canvas.line(
                &[(x, VELOCITY_PANEL.0), (x, TEMPERATURE_PANEL.1)],
                ALERT,
                2.0,
                false,
            );
            let label = format!("{} {}", alert.state, alert.at.format("%Y-%m-%d %H:%M"));
            canvas.text(
                x - 6.0,
                VELOCITY_PANEL.0 + 16.0,
                13.0,
                Anchor::End,
                ALERT,
                &label,
            );
        }
        legend(canvas, class, self.alert.is_some(), !gaps.is_empty());
    }

    fn title(&self, canvas: &mut dyn Canvas, frame: &Frame, count: usize) {
        let position = &self.series.position;
        let place: Vec<&str> = [&position.site, &position.project]
            .into_iter()
            .filter_map(|n| n.as_deref())
            .collect();
        let mut title = position.title();
        if !place.is_empty() {
            title = format!("{title} — {}", place.join(", "));
        }
        canvas.text(WIDTH / 2.0, 30.0, 20.0, Anchor::Middle, INK, &title);
        let range = format!(
            "{} – {} UTC, {} days, {count} measurement{}",
            frame.from.format("%Y-%m-%d %H:%M"),
            frame.to.format("%Y-%m-%d %H:%M"),
            self.days.max(1),
            if count == 1 { "" } else { "s" }
        );
        canvas.text(WIDTH / 2.0, 54.0, 14.0, Anchor::Middle, MUTED, &range);
    }
}

/// The velocity axis' top: past the data, and past B/C (and C/D when the data nears it).
fn velocity_top(max: f64, class: Option<IsoClass>) -> f64 {
    let mut top = (max * 1.15).max(0.5);
    if let Some(class) = class {
        let [_, bc, cd] = class.limits();
        top = top.max(bc.velocity * 1.15);
        if max >= bc.velocity {
            top = top.max(cd.velocity * 1.1);
        }
    }
    nice_ceiling(top)
}

fn temperature_range(values: &[f64]) -> (f64, f64) {
    let low = values.iter().copied().fold(f64::INFINITY, f64::min);
    let high = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !low.is_finite() || !high.is_finite() {
        return (0.0, 50.0);
    }
    let pad = ((high - low) * 0.1).max(2.0);
    let step = nice_step((high - low + 2.0 * pad) / 3.0);
    (
        ((low - pad) / step).floor() * step,
        ((high + pad) / step).ceil() * step,
    )
}

/// The gaps of a window: runs without a point longer than 3 h or three times the median
/// spacing, the window's ends included.
fn gaps(
    times: &[DateTime<Utc>],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    if times.is_empty() {
        return vec![(from, to)];
    }
    let mut spacings: Vec<i64> = times
        .windows(2)
        .map(|w| (w[1] - w[0]).num_seconds())
        .collect();
    spacings.sort_unstable();
    let median = spacings.get(spacings.len() / 2).copied().unwrap_or(3600);
    let longest = Duration::seconds((3 * median).max(3 * 3600));
    let mut edges = vec![from];
    edges.extend_from_slice(times);
    edges.push(to);
    edges
        .windows(2)
        .filter(|w| w[1] - w[0] > longest)
        .map(|w| (w[0], w[1]))
        .collect()
}

fn is_gap(gaps: &[(DateTime<Utc>, DateTime<Utc>)], a: DateTime<Utc>, b: DateTime<Utc>) -> bool {
    gaps.iter().any(|(start, end)| *start == a && *end == b)
}

fn plot(
    canvas: &mut dyn Canvas,
    frame: &Frame,
    panel: &Panel,
    points: &[&super::Point],
    value: impl Fn(&super::Point) -> Option<f64>,
    breaks: &dyn Fn(usize) -> bool,
    color: Color,
) {
    let mut run: Vec<(f32, f32)> = Vec::new();
    for (i, point) in points.iter().enumerate() {
        if breaks(i) && !run.is_empty() {
            draw_run(canvas, &run, color);
            run.clear();
        }
        if let Some(v) = value(point) {
            run.push((frame.x(point.at), panel.y(v)));
        }
    }
    draw_run(canvas, &run, color);
}

fn draw_run(canvas: &mut dyn Canvas, run: &[(f32, f32)], color: Color) {
    match run {
        [] => {}
        // A lone point is a short tick, so that it is seen.
        [(x, y)] => canvas.line(&[(x - 2.0, *y), (x + 2.0, *y)], color, 3.0, false),
        _ => canvas.line(run, color, 2.0, false),
    }
}

fn y_axis(canvas: &mut dyn Canvas, frame: &Frame, panel: &Panel, unit: &str) {
    let step = nice_step((panel.high - panel.low) / 4.0);
    let decimals = decimals_of(step);
    let mut value = (panel.low / step).ceil() * step;
    while value <= panel.high + step * 1e-6 {
        let y = panel.y(value);
        canvas.line(&[(frame.left, y), (frame.right, y)], GRID, 1.0, false);
        let label = format!("{value:.decimals$}");
        canvas.text(frame.left - 8.0, y + 4.5, 13.0, Anchor::End, MUTED, &label);
        value += step;
    }
    canvas.text(
        frame.left - 8.0,
        panel.top - 8.0,
        13.0,
        Anchor::End,
        INK,
        unit,
    );
    let edges = [
        (frame.left, panel.top),
        (frame.right, panel.top),
        (frame.right, panel.bottom),
        (frame.left, panel.bottom),
        (frame.left, panel.top),
    ];
    canvas.line(&edges, MUTED, 1.0, false);
}

fn x_axis(canvas: &mut dyn Canvas, frame: &Frame) {
    let span = frame.to - frame.from;
    let (step, label): (Duration, &str) = if span >= Duration::days(2) {
        let days = [1, 2, 5, 7, 10, 15, 30, 60]
            .into_iter()
            .find(|d| span.num_days() / d <= 8)
            .unwrap_or(90);
        (Duration::days(days), "%m-%d")
    } else {
        let hours = [1, 2, 3, 6, 12]
            .into_iter()
            .find(|h| span.num_hours() / h <= 8)
            .unwrap_or(24);
        (Duration::hours(hours), "%H:%M")
    };
    // Ticks at whole steps since the epoch: the same dates for the same window.
    let step_s = step.num_seconds().max(1);
    let mut tick = Utc
        .timestamp_opt(frame.from.timestamp().div_euclid(step_s) * step_s, 0)
        .single()
        .unwrap_or(frame.from);
    while tick <= frame.to {
        if tick >= frame.from {
            let x = frame.x(tick);
            for (top, bottom) in [VELOCITY_PANEL, TEMPERATURE_PANEL] {
                canvas.line(&[(x, top), (x, bottom)], GRID, 1.0, false);
            }
            let text = tick.format(label).to_string();
            canvas.text(
                x,
                TEMPERATURE_PANEL.1 + 18.0,
                13.0,
                Anchor::Middle,
                MUTED,
                &text,
            );
        }
        tick += step;
    }
}

fn zones(canvas: &mut dyn Canvas, frame: &Frame, panel: &Panel, class: IsoClass) {
    for limit in class.limits() {
        if limit.velocity > panel.high {
            continue;
        }
        let y = panel.y(limit.velocity);
        canvas.line(&[(frame.left, y), (frame.right, y)], ZONE, 1.5, true);
        let label = format!("{} {}", limit.name, limit.velocity);
        canvas.text(
            frame.right + 6.0,
            y + 4.5,
            13.0,
            Anchor::Start,
            ZONE,
            &label,
        );
    }
}

fn legend(canvas: &mut dyn Canvas, class: Option<IsoClass>, alert: bool, gaps: bool) {
    let y = 562.0;
    let mut x = 78.0;
    let mut item = |canvas: &mut dyn Canvas, color: Color, dashed: bool, text: &str, width: f32| {
        canvas.line(&[(x, y - 4.5), (x + 22.0, y - 4.5)], color, 2.0, dashed);
        canvas.text(x + 28.0, y, 13.0, Anchor::Start, INK, text);
        x += width;
    };
    item(canvas, VELOCITY, false, "Velocity RMS 10–1000 Hz", 215.0);
    item(canvas, TEMPERATURE, false, "Temperature", 130.0);
    if alert {
        item(canvas, ALERT, false, "Alert", 80.0);
    }
    if gaps {
        canvas.rect(x, y - 12.0, 22.0, 14.0, GAP);
        canvas.text(x + 28.0, y, 13.0, Anchor::Start, INK, "No data");
    }
    let zones = match class {
        Some(class) => format!(
            "Dashed: ISO 10816-1 / 20816-1 zone limits of class {} ({}), a reference only: Monitron adapts its own thresholds.",
            class.roman(),
            class.name()
        ),
        None => "No ISO class in the measurements: no zone limits drawn. Monitron adapts its own thresholds.".to_string(),
    };
    canvas.text(78.0, y + 24.0, 13.0, Anchor::Start, MUTED, &zones);
}

/// A round step near `raw`: 1, 2, 2.5 or 5 times a power of ten.
fn nice_step(raw: f64) -> f64 {
    if !raw.is_finite() || raw <= 0.0 {
        return 1.0;
    }
    let power = 10f64.powf(raw.log10().floor());
    let fraction = raw / power;
    let nice = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .find(|n| fraction <= *n)
        .unwrap_or(10.0);
    nice * power
}

fn nice_ceiling(value: f64) -> f64 {
    let step = nice_step(value / 4.0);
    (value / step).ceil() * step
}

fn decimals_of(step: f64) -> usize {
    let mut decimals = 0;
    while decimals < 4
        && ((step * 10f64.powi(decimals as i32)).round() - step * 10f64.powi(decimals as i32)).abs()
            > 1e-9
    {
        decimals += 1;
    }
    decimals
}

#[cfg(test)]
mod tests;
