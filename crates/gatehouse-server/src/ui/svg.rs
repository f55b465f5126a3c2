//! Plots as SVG text, rendered on the server: no script, readable without
//! colour (every bar and mark carries its words), escaped labels.

/// Escapes text for SVG/HTML.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The fill of a sign-off state, as everywhere in the UI.
pub fn state_fill(state: &str) -> &'static str {
    match state {
        "approved" => "#1a7f37",
        "in_review" => "#bf8700",
        "rejected" => "#b42318",
        "abandoned" => "#6e7781",
        "expired" => "#57ab5a",
        _ => "#afb8c1",
    }
}

/// One bar of [`bar_chart`].
pub struct Bar<'a> {
    pub label: &'a str,
    pub value: usize,
    /// The sign-off state whose colour it takes.
    pub state: &'a str,
}

/// A horizontal bar chart: one labelled row per bar, the count written out.
/// No links inside: the page lists the same counts as links beside it (links
/// inside an image are out of reach of screen readers).
pub fn bar_chart(title: &str, bars: &[Bar<'_>]) -> String {
    const ROW: usize = 26;
    const LABEL_W: usize = 110;
    const BAR_W: usize = 240;
    let max = bars.iter().map(|b| b.value).max().unwrap_or(0).max(1);
    let h = ROW * bars.len().max(1) + 8;
    let w = LABEL_W + BAR_W + 50;
    let mut s = format!(
        r##"<svg class="plot" role="img" aria-labelledby="bc-title" viewBox="0 0 {w} {h}" width="{w}" height="{h}" xmlns="http://www.w3.org/2000/svg"><title id="bc-title">{}</title>"##,
        esc(title)
    );
    for (i, b) in bars.iter().enumerate() {
        let y = i * ROW + 4;
        let len = if b.value == 0 {
            0
        } else {
            (b.value * BAR_W / max).max(3)
        };
        s.push_str(&format!(
            r##"<text x="0" y="{ty}" font-size="13" fill="#1b1f24">{label}</text><rect x="{LABEL_W}" y="{y}" width="{len}" height="18" fill="{fill}" rx="2"><title>{label}: {v}</title></rect><text x="{tx}" y="{ty}" font-size="13" fill="#1b1f24">{v}</text>"##,
            ty = y + 14,
            label = esc(b.label),
            fill = state_fill(b.state),
            tx = LABEL_W + len + 6,
            v = b.value,
        ));
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped_and_counts_written() {
        let svg = bar_chart(
            "States <all>",
            &[
                Bar {
                    label: "approved",
                    value: 3,
                    state: "approved",
                },
                Bar {
                    label: "in review & more",
                    value: 0,
                    state: "in_review",
                },
            ],
        );
        assert!(svg.contains("States &lt;all&gt;"));
        assert!(svg.contains("in review &amp; more"));
        assert!(svg.contains(">3</text>"));
        assert!(!svg.contains("<a "), "no links inside an image");
        assert!(!svg.contains("<all>"));
    }
}

/// One version's value of a metric, for [`metric_plot`].
pub struct Point {
    pub version: i64,
    pub value: f64,
    /// Approved (and not expired) for some stage.
    pub approved: bool,
    /// The version whose page shows the plot.
    pub current: bool,
}

/// A metric across a model's versions: one dot per version, joined by a
/// line; approved versions drawn as filled green squares and named so in
/// their tooltip and in the legend; the current version ringed.
pub fn metric_plot(title: &str, metric: &str, points: &[Point]) -> String {
    const W: f64 = 520.0;
    const H: f64 = 220.0;
    const L: f64 = 56.0;
    const R: f64 = 16.0;
    const T: f64 = 16.0;
    const B: f64 = 50.0;
    let finite: Vec<&Point> = points.iter().filter(|p| p.value.is_finite()).collect();
    let mut s = format!(
        r#"<svg class="plot" role="img" aria-labelledby="mp-title" viewBox="0 0 {W} {H}" width="{W}" height="{H}" xmlns="http://www.w3.org/2000/svg"><title id="mp-title">{}</title>"#,
        esc(title)
    );
    if finite.is_empty() {
        s.push_str(r##"<text x="10" y="30" font-size="13" fill="#57606a">No version has this metric.</text></svg>"##);
        return s;
    }
    let (mut lo, mut hi) = finite.iter().fold((f64::MAX, f64::MIN), |(lo, hi), p| {
        (lo.min(p.value), hi.max(p.value))
    });
    if (hi - lo).abs() < f64::EPSILON {
        lo -= 1.0;
        hi += 1.0;
    }
    let n = finite.len();
    let x = |i: usize| {
        if n == 1 {
            L + (W - L - R) / 2.0
        } else {
            L + (W - L - R) * i as f64 / (n - 1) as f64
        }
    };
    let y = |v: f64| T + (H - T - B) * (1.0 - (v - lo) / (hi - lo));
    // Axes with the range written out.
    s.push_str(&format!(
        r##"<line x1="{L}" y1="{T}" x2="{L}" y2="{yb}" stroke="#8c959f"/><line x1="{L}" y1="{yb}" x2="{xr}" y2="{yb}" stroke="#8c959f"/><text x="{lx}" y="{ty}" font-size="11" text-anchor="end" fill="#1b1f24">{hi}</text><text x="{lx}" y="{yb}" font-size="11" text-anchor="end" fill="#1b1f24">{lo}</text>"##,
        yb = H - B,
        xr = W - R,
        lx = L - 4.0,
        ty = T + 4.0,
        hi = esc(&short(hi)),
        lo = esc(&short(lo)),
    ));
    let path: Vec<String> = finite
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{:.1},{:.1}", x(i), y(p.value)))
        .collect();
    s.push_str(&format!(
        r##"<polyline points="{}" fill="none" stroke="#57606a" stroke-width="1.5"/>"##,
        path.join(" ")
    ));
    for (i, p) in finite.iter().enumerate() {
        let (cx, cy) = (x(i), y(p.value));
        let tip = format!(
            "v{}: {} = {}{}",
            p.version,
            metric,
            short(p.value),
            if p.approved { " (approved)" } else { "" }
        );
        if p.approved {
            s.push_str(&format!(
                r##"<rect x="{:.1}" y="{:.1}" width="10" height="10" fill="#1a7f37"><title>{}</title></rect>"##,
                cx - 5.0,
                cy - 5.0,
                esc(&tip)
            ));
        } else {
            s.push_str(&format!(
                r##"<circle cx="{cx:.1}" cy="{cy:.1}" r="4.5" fill="#ffffff" stroke="#57606a" stroke-width="2"><title>{}</title></circle>"##,
                esc(&tip)
            ));
        }
        if p.current {
            s.push_str(&format!(
                r##"<circle cx="{cx:.1}" cy="{cy:.1}" r="9" fill="none" stroke="#0969da" stroke-width="2"/>"##
            ));
        }
        s.push_str(&format!(
            r##"<text x="{cx:.1}" y="{:.1}" font-size="11" text-anchor="middle" fill="#1b1f24">v{}</text>"##,
            H - B + 14.0,
            p.version
        ));
    }
    s.push_str(&format!(
        r##"<rect x="{L}" y="{ly}" width="10" height="10" fill="#1a7f37"/><text x="{tx}" y="{ty}" font-size="11" fill="#1b1f24">approved</text><circle cx="{cx}" cy="{cy}" r="4.5" fill="#ffffff" stroke="#57606a" stroke-width="2"/><text x="{tx2}" y="{ty}" font-size="11" fill="#1b1f24">not approved</text><circle cx="{cx3}" cy="{cy}" r="7" fill="none" stroke="#0969da" stroke-width="2"/><text x="{tx3}" y="{ty}" font-size="11" fill="#1b1f24">this version</text>"##,
        ly = H - 18.0,
        tx = L + 14.0,
        ty = H - 9.0,
        cx = L + 100.0,
        cy = H - 13.0,
        tx2 = L + 110.0,
        cx3 = L + 215.0,
        tx3 = L + 227.0,
    ));
    s.push_str("</svg>");
    s
}

/// A number with at most four significant decimals.
fn short(v: f64) -> String {
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_owned()
}

#[cfg(test)]
mod plot_tests {
    use super::*;

    #[test]
    fn approved_versions_are_marked_in_words_and_shape() {
        let svg = metric_plot(
            "auc per version",
            "auc",
            &[
                Point {
                    version: 1,
                    value: 0.91,
                    approved: true,
                    current: false,
                },
                Point {
                    version: 2,
                    value: 0.93,
                    approved: false,
                    current: true,
                },
            ],
        );
        assert!(svg.contains("v1: auc = 0.91 (approved)"));
        assert!(svg.contains("v2: auc = 0.93<"));
        assert_eq!(svg.matches("<polyline").count(), 1);
        assert!(svg.contains(">this version<"));
    }

    #[test]
    fn no_points_say_so() {
        assert!(metric_plot("x", "auc", &[]).contains("No version has this metric."));
        let one = metric_plot(
            "x",
            "auc",
            &[Point {
                version: 1,
                value: 1.0,
                approved: false,
                current: true,
            }],
        );
        assert!(one.contains(">v1<"));
    }
}
