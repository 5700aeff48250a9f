//! Benchmark charts as SVG, drawn on the server: no script, no chart library, readable without
//! JavaScript. Every point carries its numbers (`data-*` attributes and a `<title>` tooltip), so what a
//! chart shows can be checked against the API.

use std::fmt::Write;

/// One line of a chart: a name and its points, x ascending.
pub struct Series {
    pub name: String,
    pub points: Vec<Point>,
}

pub struct Point {
    pub x: f64,
    pub y: f64,
    /// The point's own attributes, e.g. `data-batch="8" data-p50="1.25"` (already escaped).
    pub data: String,
}

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 300.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 170.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 44.0;
const COLORS: [&str; 8] = [
    "#9a3412", "#1d4ed8", "#15803d", "#7e22ce", "#b45309", "#0e7490", "#be123c", "#4d7c0f",
];

pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// How the x axis maps values: linearly, or by powers of two (batch sizes 1, 2, 4, ...).
#[derive(Clone, Copy)]
pub enum Scale {
    Linear,
    Log2,
}

impl Scale {
    fn apply(self, v: f64) -> f64 {
        match self {
            Scale::Linear => v,
            Scale::Log2 => v.max(f64::MIN_POSITIVE).log2(),
        }
    }
}

/// Lines (`connect`) or a scatter of every series, with labelled axes and a legend.
pub fn chart(
    id: &str,
    x_label: &str,
    y_label: &str,
    scale: Scale,
    connect: bool,
    series: &[Series],
) -> String {
    let points = series.iter().flat_map(|s| &s.points);
    let (mut x_min, mut x_max, mut y_max) = (f64::INFINITY, f64::NEG_INFINITY, 0.0f64);
    for p in points {
        x_min = x_min.min(scale.apply(p.x));
        x_max = x_max.max(scale.apply(p.x));
        y_max = y_max.max(p.y);
    }
    if !x_min.is_finite() {
        (x_min, x_max) = (0.0, 1.0);
    }
    if (x_max - x_min).abs() < f64::EPSILON {
        (x_min, x_max) = (x_min - 1.0, x_max + 1.0);
    }
    let y_max = if y_max > 0.0 { y_max * 1.1 } else { 1.0 };
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let sx = |x: f64| LEFT + (scale.apply(x) - x_min) / (x_max - x_min) * plot_w;
    let sy = |y: f64| TOP + plot_h - y / y_max * plot_h;

    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg id="{}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{} by {}">"#,
        escape(id),
        escape(y_label),
        escape(x_label)
    );
    // Axes, with four y gridlines and the x values that occur.
    let _ = write!(
        svg,
        r##"<g stroke="#d0d7de" font-size="11" fill="#57606a"><line x1="{LEFT}" y1="{}" x2="{}" y2="{}"/><line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{}"/>"##,
        TOP + plot_h,
        LEFT + plot_w,
        TOP + plot_h,
        TOP + plot_h
    );
    for i in 0..=4 {
        let v = y_max / 4.0 * i as f64;
        let y = sy(v);
        let _ = write!(
            svg,
            r#"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke-dasharray="2 3"/><text x="{:.1}" y="{:.1}" text-anchor="end" stroke="none">{}</text>"#,
            LEFT + plot_w,
            LEFT - 6.0,
            y + 4.0,
            super::display::number(v)
        );
    }
    let mut xs: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.x))
        .collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    for x in xs.iter().take(12) {
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" stroke="none">{}</text>"#,
            sx(*x),
            TOP + plot_h + 16.0,
            super::display::number(*x)
        );
    }
    let _ = write!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" stroke="none">{}</text><text transform="translate(14 {:.1}) rotate(-90)" text-anchor="middle" stroke="none">{}</text></g>"#,
        LEFT + plot_w / 2.0,
        HEIGHT - 6.0,
        escape(x_label),
        TOP + plot_h / 2.0,
        escape(y_label)
    );
    for (i, s) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let name = escape(&s.name);
        let _ = write!(svg, r#"<g class="series" data-series="{name}">"#);
        if connect && s.points.len() > 1 {
            let path: Vec<String> = s
                .points
                .iter()
                .map(|p| format!("{:.1},{:.1}", sx(p.x), sy(p.y)))
                .collect();
            let _ = write!(
                svg,
                r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
                path.join(" ")
            );
        }
        for p in &s.points {
            let _ = write!(
                svg,
                r#"<circle class="point" cx="{:.1}" cy="{:.1}" r="4" fill="{color}" {}><title>{name}: {} at {}</title></circle>"#,
                sx(p.x),
                sy(p.y),
                p.data,
                super::display::number(p.y),
                super::display::number(p.x)
            );
        }
        let ly = TOP + 14.0 * i as f64 + 8.0;
        let _ = write!(
            svg,
            r##"<rect x="{:.1}" y="{:.1}" width="10" height="10" fill="{color}"/><text x="{:.1}" y="{:.1}" font-size="11" fill="#1b1f24">{name}</text></g>"##,
            WIDTH - RIGHT + 12.0,
            ly - 8.0,
            WIDTH - RIGHT + 26.0,
            ly + 1.0,
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_point_is_drawn_with_its_numbers_and_names_are_escaped() {
        let series = [Series {
            name: "<fp16> cpu".to_owned(),
            points: vec![
                Point {
                    x: 1.0,
                    y: 2.5,
                    data: r#"data-batch="1""#.to_owned(),
                },
                Point {
                    x: 8.0,
                    y: 9.0,
                    data: r#"data-batch="8""#.to_owned(),
                },
            ],
        }];
        let svg = chart("latency", "batch", "p50 ms", Scale::Log2, true, &series);
        assert_eq!(svg.matches("<circle").count(), 2);
        assert!(svg.contains(r#"data-batch="8""#));
        assert!(svg.contains("&lt;fp16&gt; cpu") && !svg.contains("<fp16>"));
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
    }

    #[test]
    fn an_empty_chart_still_draws() {
        assert!(chart("x", "a", "b", Scale::Linear, false, &[]).ends_with("</svg>"));
    }
}
