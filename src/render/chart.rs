//! Inline SVG bar charts for HTML pages: a y axis with rounded ticks, labelled axes, the value
//! of each bar, a legend, and bars stacked by series. No scripts, no external assets; text
//! takes the page's colour, so the charts follow a dark colour scheme too.

use std::fmt::Write;

pub use crate::report::number;
use crate::report::{Chart, Series};

/// Bar colours, distinct from one another and legible on a light or a dark page.
const PALETTE: &[&str] = &[
    "#2f81f7", "#d2479a", "#2da44e", "#bf8700", "#8957e5", "#e5534b", "#1b9aaa", "#8c959f",
];

/// Numbers the charts drawn, so that the ids of several on one page differ.
static CHARTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

const MAX_WIDTH: f64 = 760.0;
const MIN_WIDTH: f64 = 400.0;
const HEIGHT: f64 = 300.0;
const LEFT: f64 = 72.0;
const RIGHT: f64 = 16.0;
const BOTTOM: f64 = 64.0;

/// The chart as an `<svg>` element, or a sentence when it has nothing to draw.
pub fn render(chart: &Chart) -> String {
    let totals: Vec<f64> = (0..chart.categories.len())
        .map(|i| {
            chart
                .series
                .iter()
                .map(|s| s.values.get(i).copied().unwrap_or(0.0).max(0.0))
                .sum()
        })
        .collect();
    let max = totals.iter().copied().fold(0.0_f64, f64::max);
    if chart.categories.is_empty() {
        return format!(
            r#"<p class="empty">{}: nothing to draw.</p>"#,
            escape(&chart.title)
        );
    }
    // Narrow for few bars, so that a chart shrunk into a card keeps legible text.
    let width = (LEFT + RIGHT + 90.0 * chart.categories.len() as f64).clamp(MIN_WIDTH, MAX_WIDTH);
    let legend = chart.series.len() > 1 || chart.series.first().is_some_and(|s| !s.name.is_empty());
    let top = if legend { 62.0 } else { 40.0 };
    let plot_height = HEIGHT - top - BOTTOM;
    let plot_width = width - LEFT - RIGHT;
    let (step, ticks) = ticks(max);
    let scale_max = step * ticks as f64;
    let y_of = |v: f64| top + plot_height - v / scale_max * plot_height;

    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="chart" role="img" viewBox="0 0 {width} {HEIGHT}" width="{width}" height="{HEIGHT}" aria-labelledby="chart-{id}-title chart-{id}-desc" font-size="12" fill="currentColor"><title id="chart-{id}-title">{title}</title><desc id="chart-{id}-desc">{desc}</desc><text x="{LEFT}" y="18" font-size="14" font-weight="600">{title}</text>"#,
        title = escape(&chart.title),
        desc = escape(&describe(chart, &totals)),
        id = CHARTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
    );
    if legend {
        let mut x = LEFT;
        svg.push_str(r#"<g class="legend">"#);
        for (i, series) in chart.series.iter().enumerate() {
            let _ = write!(
                svg,
                r#"<rect x="{x:.1}" y="30" width="12" height="12" fill="{}"></rect><text x="{:.1}" y="40">{}</text>"#,
                colour(i),
                x + 16.0,
                escape(&series.name)
            );
            x += 16.0 + 7.0 * series.name.chars().count() as f64 + 18.0;
        }
        svg.push_str("</g>");
    }

    // The y axis: gridlines, tick values and its label.
    svg.push_str(r#"<g class="axis axis-y">"#);
    for tick in 0..=ticks {
        let value = step * tick as f64;
        let y = y_of(value);
        let _ = write!(
            svg,
            r#"<line x1="{LEFT}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="currentColor" stroke-opacity="{}"></line><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            width - RIGHT,
            if tick == 0 { "0.6" } else { "0.15" },
            LEFT - 6.0,
            y + 4.0,
            number(
                value,
                if step.fract() == 0.0 {
                    0
                } else {
                    chart.decimals
                }
            )
        );
    }
    let _ = write!(
        svg,
        r#"<text class="label" transform="translate(16 {:.1}) rotate(-90)" text-anchor="middle">{}</text></g>"#,
        top + plot_height / 2.0,
        escape(&chart.y_label)
    );

    // The bars, each a stack of its series, with its total above it.
    let slot = plot_width / chart.categories.len() as f64;
    let bar = (slot * 0.7).clamp(1.0, 64.0);
    let values_shown = chart.categories.len() <= 24;
    let every = chart.categories.len().div_ceil(16).max(1);
    for (i, category) in chart.categories.iter().enumerate() {
        let x = LEFT + i as f64 * slot + (slot - bar) / 2.0;
        let _ = write!(
            svg,
            r#"<g class="bar" data-category="{}">"#,
            escape(category)
        );
        let mut base = 0.0;
        for (s, series) in chart.series.iter().enumerate() {
            let value = series.values.get(i).copied().unwrap_or(0.0).max(0.0);
            if value == 0.0 {
                continue;
            }
            let (y0, y1) = (y_of(base), y_of(base + value));
            let _ = write!(
                svg,
                r#"<rect x="{x:.1}" y="{y1:.1}" width="{bar:.1}" height="{:.1}" fill="{}"><title>{}{}: {}</title></rect>"#,
                (y0 - y1).max(0.5),
                colour(s),
                escape(category),
                if chart.series.len() > 1 {
                    format!(", {}", escape(&series.name))
                } else {
                    String::new()
                },
                number(value, chart.decimals)
            );
            base += value;
        }
        if values_shown {
            let _ = write!(
                svg,
                r#"<text class="value" x="{:.1}" y="{:.1}" text-anchor="middle" font-size="11">{}</text>"#,
                x + bar / 2.0,
                y_of(totals[i]) - 4.0,
                number(totals[i], chart.decimals)
            );
        }
        svg.push_str("</g>");
        if i % every == 0 {
            let _ = write!(
                svg,
                r#"<text class="tick" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                x + bar / 2.0,
                top + plot_height + 16.0,
                escape(&shorten(category, (slot * every as f64 / 7.0) as usize))
            );
        }
    }
    let _ = write!(
        svg,
        r#"<g class="axis axis-x"><text class="label" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text></g></svg>"#,
        LEFT + plot_width / 2.0,
        HEIGHT - 12.0,
        escape(&chart.x_label)
    );
    svg
}

/// A sentence saying what the chart shows, for screen readers.
fn describe(chart: &Chart, totals: &[f64]) -> String {
    let bars: Vec<String> = chart
        .categories
        .iter()
        .zip(totals)
        .map(|(c, t)| format!("{c}: {}", number(*t, chart.decimals)))
        .collect();
    format!(
        "{} by {}. {}",
        chart.y_label,
        chart.x_label,
        bars.join("; ")
    )
}

/// A tick step (1, 2, 2.5 or 5 times a power of ten) and how many steps reach `max`.
fn ticks(max: f64) -> (f64, u32) {
    if max <= 0.0 || !max.is_finite() {
        return (1.0, 1);
    }
    let raw = max / 4.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    let step = if max >= 1.0 { step.max(1.0) } else { step };
    (step, (max / step).ceil().max(1.0) as u32)
}

fn colour(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

fn shorten(text: &str, max: usize) -> String {
    let max = max.max(4);
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        text.chars().take(max - 1).collect::<String>() + "…"
    }
}

/// One series of a plain bar chart.
pub fn single(name: &str, values: Vec<f64>) -> Vec<Series> {
    vec![Series {
        name: name.to_owned(),
        values,
    }]
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(series: Vec<Series>, categories: &[&str]) -> Chart {
        Chart {
            title: "Cost <by> month".into(),
            x_label: "month".into(),
            y_label: "cost (USD)".into(),
            decimals: 2,
            categories: categories.iter().map(|c| (*c).to_owned()).collect(),
            series,
        }
    }

    #[test]
    fn one_bar_per_category_with_axes_values_and_escaped_text() {
        let svg = render(&chart(
            single("", vec![1200.0, 300.5, 0.0]),
            &["2026-09", "b&c", "2026-11"],
        ));
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches(r#"<g class="bar""#).count(), 3);
        assert!(svg.contains("Cost &lt;by&gt; month") && svg.contains("b&amp;c"));
        assert!(svg.contains(">cost (USD)</text>") && svg.contains(">month</text>"));
        assert!(svg.contains(">1,200.00</text>") && svg.contains(">300.50</text>"));
        // Ticks of 500 up to 1,500: 0, 500, 1,000, 1,500.
        assert!(
            svg.contains(">1,500</text>") && svg.contains(">500</text>"),
            "{svg}"
        );
        assert!(!svg.contains(r#"class="legend""#));
    }

    #[test]
    fn stacked_series_get_a_legend_and_one_rect_each() {
        let svg = render(&chart(
            vec![
                Series {
                    name: "web".into(),
                    values: vec![1.0, 2.0],
                },
                Series {
                    name: "db".into(),
                    values: vec![3.0, 0.0],
                },
            ],
            &["a", "b"],
        ));
        assert!(svg.contains(r#"class="legend""#) && svg.contains(">web</text>"));
        assert_eq!(svg.matches("<rect").count(), 2 + 3, "{svg}");
        assert!(svg.contains(">4.00</text>"), "the stack's total: {svg}");
    }

    #[test]
    fn an_empty_chart_says_so_in_words() {
        let text = render(&chart(Vec::new(), &[]));
        assert!(text.contains("nothing to draw"), "{text}");
    }

    #[test]
    fn numbers_group_thousands_and_keep_their_sign() {
        assert_eq!(number(1234567.891, 2), "1,234,567.89");
        assert_eq!(number(-1234.5, 1), "-1,234.5");
        assert_eq!(number(999.0, 0), "999");
        assert_eq!(number(-0.001, 2), "0.00");
        assert_eq!(ticks(1200.0), (500.0, 3));
        assert_eq!(ticks(3.0), (1.0, 3));
    }
}
