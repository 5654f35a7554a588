//! Bar charts as inline SVG, drawn by plotters' SVG backend.
//!
//! Every chart in the report is one kind: labelled horizontal bars, largest first or in the
//! result's own order, so a reader compares lengths along one axis. Text and lines take their
//! colour from the page's CSS (see `report.css`), so one SVG reads in light and dark mode.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Bars drawn at most; the table under the chart holds every row.
pub const MAX_BARS: usize = 20;

const WIDTH: u32 = 760;
const BAR_HEIGHT: u32 = 24;
/// Space for the x axis and its labels.
const AXIS_HEIGHT: u32 = 36;
/// Characters of a label shown before it is cut (the table shows it whole).
const LABEL_CHARS: usize = 34;

/// Why a chart could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("drawing the chart `{title}`: {reason}")]
pub struct ChartError {
    title: String,
    reason: String,
}

/// One bar: its label and value (`None`: a null, drawn as no bar and the word null).
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub label: String,
    pub value: Option<f64>,
}

/// A horizontal bar chart of `bars` (at most [`MAX_BARS`], in the order given, first at the
/// top) as an SVG element, titled `title` for screen readers. `None` when there is nothing to
/// draw (no bars, or no value above zero).
pub fn bar_chart(title: &str, bars: &[Bar]) -> Result<Option<String>, ChartError> {
    let bars = &bars[..bars.len().min(MAX_BARS)];
    let max = bars.iter().filter_map(|b| b.value).fold(0.0_f64, f64::max);
    if bars.is_empty() || max <= 0.0 || !max.is_finite() {
        return Ok(None);
    }
    let err = |e: &dyn std::fmt::Display| ChartError {
        title: title.to_string(),
        reason: e.to_string(),
    };
    let n = bars.len();
    let height = AXIS_HEIGHT + BAR_HEIGHT * n as u32 + 8;
    let label_width = bars
        .iter()
        .map(|b| short(&b.label).chars().count())
        .max()
        .unwrap_or(0) as u32
        * 7
        + 12;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        let mut chart = ChartBuilder::on(&root)
            .margin_top(4)
            .margin_right(56)
            .x_label_area_size(AXIS_HEIGHT - 4)
            .y_label_area_size(label_width.min(WIDTH / 2))
            .build_cartesian_2d(0.0..max * 1.02, 0.0..n as f64)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .disable_y_axis()
            .x_labels(6)
            .x_label_formatter(&|v| number(*v))
            .label_style(("sans-serif", 13))
            .light_line_style(RGBAColor(128, 128, 128, 0.15))
            .bold_line_style(RGBAColor(128, 128, 128, 0.3))
            .draw()
            .map_err(|e| err(&e))?;
        // Row i from the top spans y in [n - i - 1, n - i).
        let top = |i: usize| (n - i) as f64;
        chart
            .draw_series(bars.iter().enumerate().filter_map(|(i, bar)| {
                let value = bar.value?;
                Some(Rectangle::new(
                    [(0.0, top(i) - 0.15), (value.max(0.0), top(i) - 0.85)],
                    RGBColor(38, 139, 160).filled(),
                ))
            }))
            .map_err(|e| err(&e))?;
        let label_style = TextStyle::from(("sans-serif", 13).into_font())
            .pos(Pos::new(HPos::Right, VPos::Center));
        let value_style =
            TextStyle::from(("sans-serif", 13).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
        for (i, bar) in bars.iter().enumerate() {
            let (x, y) = chart.backend_coord(&(0.0, top(i) - 0.5));
            root.draw(&Text::new(short(&bar.label), (x - 6, y), &label_style))
                .map_err(|e| err(&e))?;
            let (end, _) = chart.backend_coord(&(bar.value.unwrap_or(0.0).max(0.0), 0.0));
            let value = bar.value.map_or_else(|| "null".to_string(), number);
            root.draw(&Text::new(value, (end + 4, y), &value_style))
                .map_err(|e| err(&e))?;
        }
        root.present().map_err(|e| err(&e))?;
    }
    Ok(Some(svg.replacen(
        "<svg ",
        &format!(
            "<svg role=\"img\" aria-label=\"{}\" ",
            super::html::escape(title)
        ),
        1,
    )))
}

/// A label cut to [`LABEL_CHARS`] characters.
fn short(label: &str) -> String {
    match label.char_indices().nth(LABEL_CHARS) {
        Some((cut, _)) => format!("{}…", &label[..cut]),
        None => label.to_string(),
    }
}

/// A value as the page prints it: whole numbers with thousands separators, others to two
/// decimal places.
pub fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        let digits = format!("{}", v.abs() as i64);
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        if v < 0.0 {
            out.insert(0, '-');
        }
        out
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_grouped_by_thousands() {
        assert_eq!(number(0.0), "0");
        assert_eq!(number(999.0), "999");
        assert_eq!(number(1000.0), "1,000");
        assert_eq!(number(-1234567.0), "-1,234,567");
        assert_eq!(number(2.5), "2.50");
    }

    #[test]
    fn a_chart_has_one_bar_and_one_label_per_row_in_order() {
        let bars = [
            Bar {
                label: "Afghanistan · education".into(),
                value: Some(12.0),
            },
            Bar {
                label: "Albania".into(),
                value: Some(3.0),
            },
            Bar {
                label: "Algeria".into(),
                value: None,
            },
        ];
        let svg = bar_chart("q1", &bars).unwrap().unwrap();
        assert!(
            svg.starts_with("<svg role=\"img\" aria-label=\"q1\" "),
            "{svg}"
        );
        let first = svg.find("Afghanistan · education").unwrap();
        let second = svg.find("\nAlbania\n").unwrap();
        assert!(first < second);
        assert_eq!(
            svg.matches("<rect").count(),
            2,
            "one bar per row with a value"
        );
        assert!(svg.contains("\nnull\n"), "a null is written, not drawn");
        assert!(bar_chart("empty", &[]).unwrap().is_none());
    }
}
