//! The chart as a PNG: drawn with `tiny-skia` (anti-aliased, pure Rust), text from the glyph
//! outlines of an embedded font (`ttf-parser`), so nothing depends on the system's fonts or
//! libraries.
//!
//! Rules:
//! - the font is DejaVu Sans cut to Latin-1 and a few punctuation marks (`DejaVuSans-subset.ttf`
//!   beside this file, 17 KB; its licence in `DejaVu-LICENSE.txt`); a character it lacks is
//!   drawn as `?`;
//! - the same drawing gives the same bytes: `tiny-skia` rasterises deterministically and the
//!   PNG carries no time.

use tiny_skia::{FillRule, Paint, PathBuilder, Pixmap, Rect, Stroke, StrokeDash, Transform};
use ttf_parser::{Face, GlyphId, OutlineBuilder};

use super::{Anchor, Canvas, Chart, Color, HEIGHT, WIDTH};

static FONT: &[u8] = include_bytes!("DejaVuSans-subset.ttf");

/// The chart as PNG bytes; `Err` says what failed (an encoder error, or the embedded font
/// unreadable, which a build would have caught).
pub fn render(chart: &Chart<'_>) -> Result<Vec<u8>, String> {
    let face =
        Face::parse(FONT, 0).map_err(|e| format!("the embedded font cannot be read: {e}"))?;
    let pixmap = Pixmap::new(WIDTH as u32, HEIGHT as u32)
        .ok_or_else(|| "the chart's image cannot be allocated".to_string())?;
    let mut canvas = PngCanvas { pixmap, face };
    chart.draw(&mut canvas);
    canvas
        .pixmap
        .encode_png()
        .map_err(|e| format!("the chart cannot be encoded as PNG: {e}"))
}

struct PngCanvas<'f> {
    pixmap: Pixmap,
    face: Face<'f>,
}

fn paint(color: Color) -> Paint<'static> {
    let mut paint = Paint::default();
    paint.set_color_rgba8(color.0, color.1, color.2, 0xff);
    paint.anti_alias = true;
    paint
}

impl Canvas for PngCanvas<'_> {
    fn rect(&mut self, x: f32, y: f32, w: f32, h: f32, fill: Color) {
        if let Some(rect) = Rect::from_xywh(x, y, w, h) {
            self.pixmap
                .fill_rect(rect, &paint(fill), Transform::identity(), None);
        }
    }

    fn line(&mut self, points: &[(f32, f32)], stroke: Color, width: f32, dashed: bool) {
        let mut builder = PathBuilder::new();
        for (i, (x, y)) in points.iter().enumerate() {
            if i == 0 {
                builder.move_to(*x, *y);
            } else {
                builder.line_to(*x, *y);
            }
        }
        let Some(path) = builder.finish() else {
            return;
        };
        let style = Stroke {
            width,
            dash: if dashed {
                StrokeDash::new(vec![7.0, 5.0], 0.0)
            } else {
                None
            },
            ..Stroke::default()
        };
        self.pixmap
            .stroke_path(&path, &paint(stroke), &style, Transform::identity(), None);
    }

    fn text(&mut self, x: f32, y: f32, size: f32, anchor: Anchor, color: Color, text: &str) {
        let scale = size / f32::from(self.face.units_per_em());
        let glyphs: Vec<GlyphId> = text
            .chars()
            .map(|c| {
                self.face
                    .glyph_index(c)
                    .or_else(|| self.face.glyph_index('?'))
                    .unwrap_or(GlyphId(0))
            })
            .collect();
        let advance = |g: GlyphId| f32::from(self.face.glyph_hor_advance(g).unwrap_or(0)) * scale;
        let width: f32 = glyphs.iter().map(|g| advance(*g)).sum();
        let mut pen = match anchor {
            Anchor::Start => x,
            Anchor::Middle => x - width / 2.0,
            Anchor::End => x - width,
        };
        let mut outline = Outline {
            builder: PathBuilder::new(),
            scale,
            x: pen,
            y,
        };
        for glyph in glyphs {
            outline.x = pen;
            self.face.outline_glyph(glyph, &mut outline);
            pen += advance(glyph);
        }
        if let Some(path) = outline.builder.finish() {
            self.pixmap.fill_path(
                &path,
                &paint(color),
                FillRule::Winding,
                Transform::identity(),
                None,
            );
        }
    }
}

/// A glyph's outline in font units → a path at the pen, y down.
struct Outline {
    builder: PathBuilder,
    scale: f32,
    x: f32,
    y: f32,
}

impl Outline {
    fn at(&self, x: f32, y: f32) -> (f32, f32) {
        (self.x + x * self.scale, self.y - y * self.scale)
    }
}

impl OutlineBuilder for Outline {
    fn move_to(&mut self, x: f32, y: f32) {
        let (x, y) = self.at(x, y);
        self.builder.move_to(x, y);
    }
    fn line_to(&mut self, x: f32, y: f32) {
        let (x, y) = self.at(x, y);
        self.builder.line_to(x, y);
    }
    fn quad_to(&mut self, x1: f32, y1: f32, x: f32, y: f32) {
        let ((x1, y1), (x, y)) = (self.at(x1, y1), self.at(x, y));
        self.builder.quad_to(x1, y1, x, y);
    }
    fn curve_to(&mut self, x1: f32, y1: f32, x2: f32, y2: f32, x: f32, y: f32) {
        let ((x1, y1), (x2, y2), (x, y)) = (self.at(x1, y1), self.at(x2, y2), self.at(x, y));
        self.builder.cubic_to(x1, y1, x2, y2, x, y);
    }
    fn close(&mut self) {
        self.builder.close();
    }
}
