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
    /// Where the bar links to (its evidence).
    pub href: String,
}

/// A horizontal bar chart: one labelled row per bar, the count written out.
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
            r##"<a href="{href}"><text x="0" y="{ty}" font-size="13" fill="#1b1f24">{label}</text><rect x="{LABEL_W}" y="{y}" width="{len}" height="18" fill="{fill}" rx="2"><title>{label}: {v}</title></rect><text x="{tx}" y="{ty}" font-size="13" fill="#1b1f24">{v}</text></a>"##,
            href = esc(&b.href),
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
                    href: "/?state=approved".into(),
                },
                Bar {
                    label: "in review & more",
                    value: 0,
                    state: "in_review",
                    href: "/?a=1&b=2".into(),
                },
            ],
        );
        assert!(svg.contains("States &lt;all&gt;"));
        assert!(svg.contains("in review &amp; more"));
        assert!(svg.contains(">3</text>"));
        assert!(svg.contains("/?a=1&amp;b=2"));
        assert!(!svg.contains("<all>"));
    }
}
