//! The report's charts: horizontal bar charts drawn by `plotters` into SVG strings that the page
//! inlines. One chart shape serves every section (shares, distributions, funnels, breakdowns),
//! so the page looks consistent and there is one place to get the layout right.

use plotters::coord::ranged1d::{IntoSegmentedCoord, SegmentValue};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// One bar: its label on the axis, its length, the text printed after it, its colour.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub note: String,
    pub color: RGBColor,
}

impl Bar {
    /// A bar for a count, annotated with the count itself.
    pub fn count(label: impl Into<String>, count: u64, color: RGBColor) -> Bar {
        Bar {
            label: label.into(),
            value: count as f64,
            note: count.to_string(),
            color,
        }
    }

    /// A bar for a count out of a total, annotated "count (p%)".
    pub fn share(label: impl Into<String>, count: u64, of: u64, color: RGBColor) -> Bar {
        Bar {
            label: label.into(),
            value: count as f64,
            note: format!("{count} ({})", percent(count, of)),
            color,
        }
    }

    /// A bar whose length is a percentage, annotated "p% (count of total)".
    pub fn rate(label: impl Into<String>, count: u64, of: u64, color: RGBColor) -> Bar {
        let value = if of == 0 {
            0.0
        } else {
            count as f64 * 100.0 / of as f64
        };
        Bar {
            label: label.into(),
            value,
            note: format!("{} ({count} of {of})", percent(count, of)),
            color,
        }
    }
}

/// `count / of` as a percentage with two decimals, `-` when `of` is 0.
pub fn percent(count: u64, of: u64) -> String {
    if of == 0 {
        "-".to_owned()
    } else {
        format!("{:.2}%", count as f64 * 100.0 / of as f64)
    }
}

pub const GREEN: RGBColor = RGBColor(46, 139, 87);
pub const RED: RGBColor = RGBColor(200, 55, 55);
pub const ORANGE: RGBColor = RGBColor(230, 140, 30);
pub const GREY: RGBColor = RGBColor(150, 150, 150);
pub const BLUE: RGBColor = RGBColor(55, 110, 190);
pub const PURPLE: RGBColor = RGBColor(130, 80, 170);
pub const TEAL: RGBColor = RGBColor(40, 150, 160);

/// Width of every chart, in pixels.
const WIDTH: u32 = 900;
/// Height of one bar's row, in pixels.
const ROW: u32 = 26;

/// A horizontal bar chart, first bar on top, as a standalone `<svg>` element. `unit` is the
/// x axis's suffix ("" for counts, "%" for rates). An empty `bars` gives a chart that says so.
pub fn bar_chart(title: &str, bars: &[Bar], unit: &str) -> Result<String, String> {
    let bars: Vec<Bar> = bars
        .iter()
        .map(|bar| Bar {
            label: svg_safe(&bar.label),
            note: svg_safe(&bar.note),
            ..bar.clone()
        })
        .collect();
    let rows = bars.len().max(1);
    let height = 90 + ROW * u32::try_from(rows).unwrap_or(u32::MAX / ROW / 2);
    // The naive font metrics of plotters without a font engine: about 7 px per character at 12 px.
    let longest = bars
        .iter()
        .map(|b| b.label.chars().count())
        .max()
        .unwrap_or(0);
    let label_area = u32::try_from(longest * 7 + 16)
        .unwrap_or(260)
        .clamp(60, 260);
    let longest_note = bars
        .iter()
        .map(|b| b.note.chars().count())
        .max()
        .unwrap_or(0);
    let max = bars.iter().map(|b| b.value).fold(0.0_f64, f64::max);
    // Leave room right of the longest bar for its note.
    let plot_width = f64::from(WIDTH - label_area - 30);
    let note_width = (longest_note as f64 * 7.0 + 10.0).min(plot_width * 0.6);
    let x_max = if max > 0.0 {
        max * plot_width / (plot_width - note_width)
    } else {
        1.0
    };
    let error = |e: &dyn std::fmt::Display| format!("cannot draw the chart {title:?}: {e}");
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| error(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(svg_safe(title), ("sans-serif", 20))
            .margin(10)
            .x_label_area_size(26)
            .y_label_area_size(label_area)
            .build_cartesian_2d(0.0..x_max, (0..rows).into_segmented())
            .map_err(|e| error(&e))?;
        // Index 0 is the bottom segment: bar i sits at rows - 1 - i so the first bar is on top.
        let label_of = |value: &SegmentValue<usize>| match value {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => rows
                .checked_sub(i + 1)
                .and_then(|index| bars.get(index))
                .map(|bar| bar.label.clone())
                .unwrap_or_default(),
            SegmentValue::Last => String::new(),
        };
        let x_label = |x: &f64| {
            if x_max <= 10.0 {
                format!("{x:.1}{unit}")
            } else {
                format!("{x:.0}{unit}")
            }
        };
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(rows)
            .y_label_formatter(&label_of)
            .x_labels(6)
            .x_label_formatter(&x_label)
            .label_style(("sans-serif", 15))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(|e| error(&e))?;
        if bars.is_empty() {
            let style = TextStyle::from(("sans-serif", 15).into_font())
                .pos(Pos::new(HPos::Left, VPos::Center));
            chart
                .draw_series(std::iter::once(Text::new(
                    "no data".to_owned(),
                    (x_max * 0.02, SegmentValue::CenterOf(0)),
                    style,
                )))
                .map_err(|e| error(&e))?;
        }
        chart
            .draw_series(bars.iter().enumerate().map(|(i, bar)| {
                let slot = rows - 1 - i;
                let mut rectangle = Rectangle::new(
                    [
                        (0.0, SegmentValue::Exact(slot)),
                        (bar.value.max(0.0), SegmentValue::Exact(slot + 1)),
                    ],
                    bar.color.filled(),
                );
                rectangle.set_margin(4, 4, 0, 0);
                rectangle
            }))
            .map_err(|e| error(&e))?;
        let note_style =
            TextStyle::from(("sans-serif", 15).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
        chart
            .draw_series(bars.iter().enumerate().map(|(i, bar)| {
                Text::new(
                    bar.note.clone(),
                    (
                        bar.value.max(0.0) + x_max * 0.01,
                        SegmentValue::CenterOf(rows - 1 - i),
                    ),
                    note_style.clone(),
                )
            }))
            .map_err(|e| error(&e))?;
        root.present().map_err(|e| error(&e))?;
    }
    Ok(svg)
}

/// Text for an SVG `<text>` element: one line (the SVG backend escapes markup characters, which
/// `labels_from_files_cannot_inject_markup` checks; labels come from files anyone can write).
fn svg_safe(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The contents of every `<text>` element of an SVG, trimmed (for tests).
#[cfg(test)]
pub(crate) fn svg_texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|element| {
            let content = element.split_once('>')?.1;
            Some(content.split("</text>").next()?.trim().to_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_is_one_svg_with_every_label_and_note_in_order() {
        let svg = bar_chart(
            "Outcomes",
            &[
                Bar::share("valid", 7, 10, GREEN),
                Bar::share("invalid", 3, 10, RED),
            ],
            "",
        )
        .unwrap();
        assert!(svg.starts_with("<svg"), "{svg}");
        assert_eq!(svg.matches("<svg").count(), 1);
        assert!(svg.trim_end().ends_with("</svg>"));
        let texts = svg_texts(&svg);
        for text in ["Outcomes", "valid", "invalid", "7 (70.00%)", "3 (30.00%)"] {
            assert!(texts.iter().any(|t| t == text), "{text} missing: {texts:?}");
        }
        // The first bar is drawn on top.
        let y_of = |needle: &str| -> f64 {
            let at = svg.find(&format!("fill=\"{needle}\"")).unwrap();
            let start = svg[..at].rfind(" y=\"").unwrap() + 4;
            svg[start..].split('"').next().unwrap().parse().unwrap()
        };
        assert!(y_of("#2E8B57") < y_of("#C83737"), "valid above invalid");
    }

    #[test]
    fn labels_from_files_cannot_inject_markup() {
        let svg = bar_chart("<script>", &[Bar::count("a<b>&'\"", 1, BLUE)], "").unwrap();
        assert!(!svg.contains("<script"), "{svg}");
        assert!(!svg.contains("<b>"), "{svg}");
        assert!(
            svg_texts(&svg)
                .iter()
                .any(|t| t == "a&lt;b&gt;&amp;&apos;&quot;"),
            "{svg}"
        );
    }

    #[test]
    fn empty_and_zero_charts_still_render() {
        let empty = bar_chart("Nothing", &[], "").unwrap();
        assert!(svg_texts(&empty).contains(&"no data".to_owned()), "{empty}");
        let zero = bar_chart("Zero", &[Bar::rate("x", 0, 0, BLUE)], "%").unwrap();
        assert!(
            svg_texts(&zero).contains(&"- (0 of 0)".to_owned()),
            "{zero}"
        );
    }
}
