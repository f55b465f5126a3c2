//! The deployment timeline of an infrastructure as SVG: one lane per slot, a
//! bar per live period (from the deployment to its replacement, rollback or
//! undeploy, or to now), labelled with the subject (the history table below
//! links each one); marks where a rollback or an undeploy happened;
//! break-glass bars outlined and named.

use gatehouse_store::deployments::Deployment;

use super::fmt;
use super::svg::{esc, state_fill};

/// One deployment as the timeline needs it.
#[derive(Debug, Clone)]
pub struct Event {
    pub slot: String,
    /// Subject text (`version:P/M/N`, `bundle:P/T`).
    pub subject: String,
    /// `deploy`, `rollback`, `break_glass` or `undeploy`.
    pub kind: String,
    /// Microseconds since the epoch.
    pub at: i64,
    pub superseded_at: Option<i64>,
    pub live: bool,
    /// The sign-off state the gate saw (its colour).
    pub state: String,
    pub by: String,
}

impl Event {
    pub fn of(d: &Deployment) -> Self {
        Event {
            slot: d.slot.clone(),
            subject: d.subject.clone(),
            kind: d.kind.clone(),
            at: d.deployed_at.as_micros(),
            superseded_at: d.superseded_at.map(|t| t.as_micros()),
            live: d.live,
            state: d.evidence.signoff_state.clone(),
            by: d.deployed_by.clone(),
        }
    }
}

const LABEL_W: f64 = 150.0;
const PLOT_W: f64 = 560.0;
const LANE_H: f64 = 40.0;
const TOP: f64 = 8.0;
const AXIS_H: f64 = 34.0;
/// Rough width of one character of the 11 px labels.
const CHAR_W: f64 = 6.2;

fn when_micros(t: i64) -> String {
    fmt::when(gatehouse_core::Timestamp::from_micros(t))
}

/// Shortens `s` to at most `max` characters, with `…` when cut.
fn fit(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else if max == 0 {
        String::new()
    } else {
        let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

/// The timeline of `events` (any order) up to `now` (microseconds).
pub fn timeline(title: &str, events: &[Event], now: i64) -> String {
    let mut slots: Vec<&str> = events.iter().map(|e| e.slot.as_str()).collect();
    slots.sort_unstable();
    slots.dedup();
    let lanes = slots.len().max(1);
    let h = TOP + LANE_H * lanes as f64 + AXIS_H;
    let w = LABEL_W + PLOT_W + 10.0;
    let start = events.iter().map(|e| e.at).min().unwrap_or(now).min(now);
    let span = (now - start).max(1) as f64;
    let x = |t: i64| LABEL_W + ((t.clamp(start, now) - start) as f64 / span) * PLOT_W;

    let mut s = format!(
        r##"<svg class="plot timeline" role="img" aria-labelledby="tl-title tl-desc" viewBox="0 0 {w} {h}" width="{w}" height="{h}" xmlns="http://www.w3.org/2000/svg"><title id="tl-title">{}</title><desc id="tl-desc">{}</desc>"##,
        esc(title),
        esc(&format!(
            "{} deployment{} in {} slot{}, from {} to now. Bars are live periods labelled with the subject; \
             break-glass bars have a dashed red outline and the word break-glass; triangles mark rollbacks.",
            events.len(),
            if events.len() == 1 { "" } else { "s" },
            slots.len(),
            if slots.len() == 1 { "" } else { "s" },
            when_micros(start),
        )),
    );
    if events.is_empty() {
        s.push_str(&format!(
            r##"<text x="{LABEL_W}" y="{}" font-size="13" fill="#57606a">Nothing has been deployed here yet.</text>"##,
            TOP + 24.0
        ));
    }
    for (i, slot) in slots.iter().enumerate() {
        let y = TOP + LANE_H * i as f64;
        s.push_str(&format!(
            r##"<g class="lane"><rect x="0" y="{y}" width="{w}" height="{LANE_H}" fill="{bg}"/><text x="4" y="{ty}" font-size="12" fill="#1b1f24">{label}<title>{full}</title></text></g>"##,
            bg = if i % 2 == 0 { "#f6f8fa" } else { "#ffffff" },
            ty = y + LANE_H / 2.0 + 4.0,
            label = esc(&fit(slot, 22)),
            full = esc(slot),
        ));
        for e in events.iter().filter(|e| e.slot == *slot) {
            if e.kind == "undeploy" {
                continue;
            }
            let end = match (e.superseded_at, e.live) {
                (Some(t), _) => t,
                (None, true) => now,
                (None, false) => e.at,
            };
            let x0 = x(e.at);
            let bw = (x(end) - x0).max(3.0);
            let bg = e.kind == "break_glass";
            let words = fmt::subject_words(&e.subject);
            let label = if bg {
                format!("break-glass: {words}")
            } else {
                words.clone()
            };
            let until = if e.live && e.superseded_at.is_none() {
                "now (live)".to_owned()
            } else {
                when_micros(end)
            };
            let tip = format!(
                "{label}, {kind} by {by}, {from} to {until}; sign-off {state}",
                kind = e.kind.replace('_', "-"),
                by = e.by,
                from = when_micros(e.at),
                state = e.state.replace('_', " "),
            );
            let outline = if bg {
                r##" stroke="#b42318" stroke-width="3" stroke-dasharray="5 3""##
            } else {
                r##" stroke="#1b1f24" stroke-width="0.5""##
            };
            let bar_y = y + 8.0;
            s.push_str(&format!(
                r##"<g class="{class}"><rect x="{x0:.1}" y="{bar_y}" width="{bw:.1}" height="24" rx="2" fill="{fill}" fill-opacity="0.35"{outline}><title>{tip}</title></rect>"##,
                class = if bg { "bar breakglass-bar" } else { "bar" },
                fill = state_fill(&e.state),
                tip = esc(&tip),
            ));
            let room = ((bw - 6.0) / CHAR_W).floor().max(0.0) as usize;
            if room >= 4 {
                s.push_str(&format!(
                    r##"<text x="{tx:.1}" y="{ty}" font-size="11" fill="#1b1f24"{weight}>{text}</text>"##,
                    tx = x0 + 3.0,
                    ty = bar_y + 16.0,
                    weight = if bg { r##" font-weight="700""## } else { "" },
                    text = esc(&fit(&label, room)),
                ));
            }
            s.push_str("</g>");
        }
        for e in events
            .iter()
            .filter(|e| e.slot == *slot && matches!(e.kind.as_str(), "rollback" | "undeploy"))
        {
            let mx = x(e.at);
            let what = if e.kind == "rollback" {
                format!("rollback to {}", fmt::subject_words(&e.subject))
            } else {
                format!("undeploy of {}", fmt::subject_words(&e.subject))
            };
            s.push_str(&format!(
                r##"<path class="mark {kind}" d="M{a:.1} {top} L{b:.1} {top} L{mx:.1} {tip} Z" fill="#1b1f24"><title>{t}</title></path>"##,
                kind = esc(&e.kind),
                a = mx - 5.0,
                b = mx + 5.0,
                top = y + 1.0,
                tip = y + 9.0,
                t = esc(&format!("{what} by {} at {}", e.by, when_micros(e.at))),
            ));
        }
    }
    let axis_y = TOP + LANE_H * lanes as f64;
    s.push_str(&format!(
        r##"<g class="axis"><line x1="{LABEL_W}" y1="{axis_y}" x2="{end}" y2="{axis_y}" stroke="#57606a"/><text x="{LABEL_W}" y="{ty}" font-size="11" fill="#57606a">{from}</text><text x="{end}" y="{ty}" font-size="11" fill="#57606a" text-anchor="end">now</text></g>"##,
        end = LABEL_W + PLOT_W,
        ty = axis_y + 16.0,
        from = esc(&when_micros(start)),
    ));
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000_000;

    fn ev(slot: &str, subject: &str, kind: &str, at: i64, until: Option<i64>, live: bool) -> Event {
        Event {
            slot: slot.into(),
            subject: subject.into(),
            kind: kind.into(),
            at,
            superseded_at: until,
            live,
            state: "approved".into(),
            by: "ivan".into(),
        }
    }

    #[test]
    fn one_lane_per_slot_and_bars_with_subjects() {
        let events = vec![
            ev(
                "CREDIT/credit-limit",
                "version:CREDIT/credit-limit/1",
                "deploy",
                0,
                Some(10 * H),
                false,
            ),
            ev(
                "CREDIT/credit-limit",
                "version:CREDIT/credit-limit/2",
                "deploy",
                10 * H,
                Some(20 * H),
                false,
            ),
            ev(
                "CREDIT/credit-limit",
                "version:CREDIT/credit-limit/1",
                "rollback",
                20 * H,
                None,
                true,
            ),
            ev("FRAUD", "bundle:FRAUD/v1", "deploy", 5 * H, None, true),
        ];
        let svg = timeline("Deployments on prod-api", &events, 40 * H);
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains(r#"role="img""#));
        assert!(svg.contains("<title id=\"tl-title\">Deployments on prod-api</title>"));
        assert_eq!(svg.matches(r#"<g class="lane">"#).count(), 2);
        assert_eq!(
            svg.matches("<rect x=\"").count() - 2,
            4,
            "two lane backgrounds, four bars"
        );
        assert!(svg.contains("credit-limit v2 (CREDIT)"));
        assert!(svg.contains("bundle v1 (FRAUD)"));
        assert_eq!(svg.matches("class=\"mark rollback\"").count(), 1);
        assert!(svg.contains("now (live)"));
    }

    #[test]
    fn break_glass_is_outlined_and_named() {
        let events = vec![ev("P/m", "version:P/m/3", "break_glass", H, None, true)];
        let svg = timeline("t", &events, 2 * H);
        assert!(svg.contains("breakglass-bar"));
        assert!(svg.contains("stroke-dasharray"));
        assert!(svg.contains("break-glass: m v3 (P)"));
    }

    #[test]
    fn undeploy_is_a_mark_not_a_bar() {
        let events = vec![
            ev("P/m", "version:P/m/1", "deploy", 0, Some(H), false),
            ev("P/m", "version:P/m/1", "undeploy", H, None, false),
        ];
        let svg = timeline("t", &events, 2 * H);
        assert_eq!(svg.matches("class=\"bar\"").count(), 1);
        assert_eq!(svg.matches("class=\"mark undeploy\"").count(), 1);
    }

    #[test]
    fn text_is_escaped() {
        let events = vec![ev("P/<b>", "version:P/a&b/1", "deploy", 0, None, true)];
        let svg = timeline("<script>", &events, H);
        assert!(!svg.contains("<script>"));
        assert!(!svg.contains("<b>"));
        assert!(svg.contains("&lt;script&gt;"));
        assert!(svg.contains("a&amp;b"));
    }

    #[test]
    fn empty_timeline_says_so() {
        let svg = timeline("t", &[], H);
        assert!(svg.contains("Nothing has been deployed here yet."));
        assert!(svg.ends_with("</svg>"));
    }

    #[test]
    fn labels_fit() {
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(fit("abc", 4), "abc");
        assert_eq!(fit("abc", 0), "");
    }
}
