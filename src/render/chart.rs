//! Inline SVG charts for HTML reports: no scripts, no external assets.

use std::fmt::Write;

/// A bar chart of `points` (label, value), values in `unit`, as an `<svg>` element.
/// Negative values are drawn as zero-height bars; labels and values are escaped.
pub fn bar_chart(title: &str, unit: &str, points: &[(String, f64, String)]) -> String {
    const WIDTH: f64 = 720.0;
    const HEIGHT: f64 = 240.0;
    const TOP: f64 = 28.0;
    const BOTTOM: f64 = 40.0;
    const LEFT: f64 = 16.0;
    let plot_height = HEIGHT - TOP - BOTTOM;
    let max = points
        .iter()
        .map(|(_, v, _)| *v)
        .fold(0.0_f64, f64::max)
        .max(f64::MIN_POSITIVE);
    let slot = (WIDTH - 2.0 * LEFT) / points.len().max(1) as f64;
    let bar = (slot * 0.7).max(1.0);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg role="img" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" height="{HEIGHT}" aria-label="{}">"#,
        escape(title)
    );
    let _ = write!(
        svg,
        r#"<title>{}</title><text x="{LEFT}" y="18" font-size="13" fill="currentColor">{} ({})</text>"#,
        escape(title),
        escape(title),
        escape(unit)
    );
    for (i, (label, value, shown)) in points.iter().enumerate() {
        let h = (value.max(0.0) / max) * plot_height;
        let x = LEFT + i as f64 * slot + (slot - bar) / 2.0;
        let y = TOP + plot_height - h;
        let _ = write!(
            svg,
            r##"<g><title>{label}: {shown}</title><rect x="{x:.1}" y="{y:.1}" width="{bar:.1}" height="{h:.1}" fill="#0969da"></rect></g>"##,
            label = escape(label),
            shown = escape(shown),
        );
        if points.len() <= 31 {
            let _ = write!(
                svg,
                r#"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="middle" fill="currentColor">{}</text>"#,
                x + bar / 2.0,
                HEIGHT - BOTTOM + 14.0,
                escape(label)
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

/// A bar chart of cost per time bucket, for the cost report's HTML page.
pub fn cost_over_time(series: &[(time::Date, rust_decimal::Decimal)], unit: &str) -> String {
    use rust_decimal::prelude::ToPrimitive;
    let points: Vec<(String, f64, String)> = series
        .iter()
        .map(|(day, amount)| {
            (
                day.to_string(),
                amount.to_f64().unwrap_or_default(),
                format!("{} {unit}", amount.round_dp(2)),
            )
        })
        .collect();
    bar_chart("Cost over time", unit, &points)
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

    #[test]
    fn bars_scale_to_the_largest_value_and_text_is_escaped() {
        let svg = bar_chart(
            "Cost <by> day",
            "USD",
            &[
                ("a".into(), 10.0, "10.00".into()),
                ("b&c".into(), 5.0, "5.00".into()),
            ],
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("Cost &lt;by&gt; day") && svg.contains("b&amp;c"));
        assert!(
            svg.contains(r#"height="172.0""#) && svg.contains(r#"height="86.0""#),
            "{svg}"
        );
    }
}
