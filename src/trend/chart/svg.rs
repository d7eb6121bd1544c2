//! The chart as SVG text, for the console's position page: the same drawing as the PNG, the
//! text left to the browser's font (DejaVu Sans when it has it, else its sans-serif).
//!
//! Rules:
//! - every text is XML-escaped: names come from Monitron records;
//! - coordinates are written with one decimal, so the same drawing is the same text.

use super::{Anchor, Canvas, Chart, Color, HEIGHT, WIDTH};

/// The chart as an SVG document.
pub fn render(chart: &Chart<'_>) -> String {
    let mut canvas = SvgCanvas {
        body: String::new(),
    };
    chart.draw(&mut canvas);
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" font-family=\"DejaVu Sans, Verdana, sans-serif\" role=\"img\">\n{}</svg>\n",
        canvas.body
    )
}

struct SvgCanvas {
    body: String,
}

/// Text as XML character data.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

impl Canvas for SvgCanvas {
    fn rect(&mut self, x: f32, y: f32, w: f32, h: f32, fill: Color) {
        self.body.push_str(&format!(
            "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" fill=\"{}\"/>\n",
            fill.hex()
        ));
    }

    fn line(&mut self, points: &[(f32, f32)], stroke: Color, width: f32, dashed: bool) {
        if points.is_empty() {
            return;
        }
        let coordinates: Vec<String> = points
            .iter()
            .map(|(x, y)| format!("{x:.1},{y:.1}"))
            .collect();
        let dash = if dashed {
            " stroke-dasharray=\"7 5\""
        } else {
            ""
        };
        self.body.push_str(&format!(
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"{width}\"{dash} stroke-linejoin=\"round\"/>\n",
            coordinates.join(" "),
            stroke.hex()
        ));
    }

    fn text(&mut self, x: f32, y: f32, size: f32, anchor: Anchor, color: Color, text: &str) {
        let anchor = match anchor {
            Anchor::Start => "start",
            Anchor::Middle => "middle",
            Anchor::End => "end",
        };
        self.body.push_str(&format!(
            "<text x=\"{x:.1}\" y=\"{y:.1}\" font-size=\"{size}\" text-anchor=\"{anchor}\" fill=\"{}\">{}</text>\n",
            color.hex(),
            escape(text)
        ));
    }
}
