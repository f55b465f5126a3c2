//! Printing answers: aligned tables for lists, key/value blocks for single
//! objects, or the server's JSON with `--json`.

use std::fmt::Write as _;

use gatehouse_core::Timestamp;
use serde_json::Value;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// One table column: its header and the field of each item it shows.
pub struct Col {
    pub header: &'static str,
    pub field: &'static str,
    /// Longest cell, in characters; longer text is cut with '…'.
    pub max: usize,
}

pub const fn col(header: &'static str, field: &'static str) -> Col {
    Col {
        header,
        field,
        max: 60,
    }
}

pub const fn wide(header: &'static str, field: &'static str, max: usize) -> Col {
    Col { header, field, max }
}

/// Replaces control characters (terminal escapes, newlines, tabs) so that text
/// from the server always prints as one harmless line.
pub fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// A JSON value as one line of text.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".to_string(),
        Value::Bool(true) => "yes".to_string(),
        Value::Bool(false) => "no".to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => sanitize(s),
        Value::Array(items) => {
            if items.is_empty() {
                return "-".to_string();
            }
            items
                .iter()
                .map(|item| match item {
                    Value::Object(o) if o.contains_key("model") && o.contains_key("version") => {
                        format!("{}:{}", cell(&o["model"]), cell(&o["version"]))
                    }
                    Value::Object(_) | Value::Array(_) => sanitize(&item.to_string()),
                    other => cell(other),
                })
                .collect::<Vec<_>>()
                .join(", ")
        }
        Value::Object(map) => {
            if map.is_empty() {
                return "-".to_string();
            }
            map.iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::Object(_) | Value::Array(_) => sanitize(&v.to_string()),
                        other => cell(other),
                    };
                    format!("{}={v}", sanitize(k))
                })
                .collect::<Vec<_>>()
                .join(", ")
        }
    }
}

/// Times in tables: `2026-11-23T09:40:00.123456Z` → `2026-11-23 09:40:00`.
fn short_time(field: &str, v: &Value) -> Option<String> {
    let s = v.as_str()?;
    if !field.ends_with("_at") || s.len() < 19 || !s.is_char_boundary(19) {
        return None;
    }
    let date = s.get(..10)?;
    let time = s.get(10..)?.strip_prefix('T')?.get(..8)?;
    Some(format!("{} {}", sanitize(date), sanitize(time)))
}

/// A time from the server as `2026-11-23 09:40:00`, or `-` when absent.
pub fn when(v: &Value) -> String {
    short_time("_at", v).unwrap_or_else(|| cell(v))
}

/// [`when`] of a typed answer's time.
pub fn when_time(t: Option<Timestamp>) -> String {
    when(&t.map_or(Value::Null, |t| Value::String(t.to_rfc3339())))
}

/// [`cell`] of a typed answer's optional text: sanitised, or `-`.
pub fn cell_text(s: Option<&str>) -> String {
    s.map_or_else(|| "-".to_string(), sanitize)
}

/// Columns a text takes on a terminal (wide characters count twice).
fn width(s: &str) -> usize {
    UnicodeWidthStr::width(s)
}

fn cut(s: String, max: usize) -> String {
    if width(&s) <= max {
        return s;
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = UnicodeWidthChar::width(c).unwrap_or(0);
        if used + w + 1 > max {
            break;
        }
        used += w;
        out.push(c);
    }
    out.push('…');
    out
}

/// Renders items as an aligned table with a header line.
pub fn table(items: &[Value], cols: &[Col]) -> String {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|item| {
            cols.iter()
                .map(|c| {
                    let v = item.get(c.field).unwrap_or(&Value::Null);
                    let text = short_time(c.field, v).unwrap_or_else(|| cell(v));
                    cut(text, c.max)
                })
                .collect()
        })
        .collect();
    let mut widths: Vec<usize> = cols.iter().map(|c| width(c.header)).collect();
    for row in &rows {
        for (w, text) in widths.iter_mut().zip(row) {
            *w = (*w).max(width(text));
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut l = String::new();
        for (i, (text, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                l.push_str(text);
            } else {
                let pad = w.saturating_sub(width(text));
                let _ = write!(l, "{text}{}  ", " ".repeat(pad));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(cols.iter().map(|c| c.header).collect());
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

/// Renders one object as `key: value` lines: the `first` fields in that order,
/// then every other field in the answer.
pub fn block(obj: &Value, first: &[&str]) -> String {
    let Some(map) = obj.as_object() else {
        return format!("{}\n", cell(obj));
    };
    let mut keys: Vec<&str> = first
        .iter()
        .copied()
        .filter(|k| map.contains_key(*k))
        .collect();
    for k in map.keys() {
        if !keys.contains(&k.as_str()) {
            keys.push(k);
        }
    }
    let key_width = keys.iter().map(|k| width(k)).max().unwrap_or(0);
    let mut out = String::new();
    for k in keys {
        let label = format!("{}:", sanitize(k));
        let pad = (key_width + 1).saturating_sub(width(&label));
        let _ = writeln!(out, "{label}{} {}", " ".repeat(pad), cell(&map[k]));
    }
    out
}

/// Prints `value` as pretty JSON.
pub fn print_json(value: &Value) {
    match serde_json::to_string_pretty(value) {
        Ok(s) => outln!("{s}"),
        Err(_) => outln!("{value}"),
    }
}

/// Prints a list answer: JSON, or a table plus a hint about the next page.
pub fn print_list(json: bool, answer: &Value, cols: &[Col]) {
    if json {
        print_json(answer);
        return;
    }
    let empty = Vec::new();
    let items = answer
        .get("items")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    out!("{}", table(items, cols));
    if let Some(next) = answer.get("next_cursor").and_then(Value::as_str) {
        errln!(
            "(more results: add --cursor {} or use --all)",
            sanitize(next)
        );
    }
}

/// Prints a single object: JSON, or a key/value block.
pub fn print_object(json: bool, obj: &Value, first: &[&str]) {
    if json {
        print_json(obj);
    } else {
        out!("{}", block(obj, first));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_align_and_stay_on_one_line() {
        let items = vec![
            json!({"name": "fraud scorer", "latest_version": 3, "description": "line1\nline2\x1b[31m"}),
            json!({"name": "x", "latest_version": null, "description": ""}),
        ];
        let t = table(
            &items,
            &[
                col("NAME", "name"),
                col("LATEST", "latest_version"),
                col("DESCRIPTION", "description"),
            ],
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0], "NAME          LATEST  DESCRIPTION");
        assert_eq!(lines[1], "fraud scorer  3       line1 line2 [31m");
        assert_eq!(lines[2], "x             -");
    }

    #[test]
    fn cells_render_maps_lists_and_times() {
        assert_eq!(
            cell(&json!({"auc": 0.93, "team": "fraud"})),
            "auc=0.93, team=fraud"
        );
        assert_eq!(cell(&json!([{"model": "m:x", "version": 2}])), "m:x:2");
        assert_eq!(cell(&json!(["PII", "PCI"])), "PII, PCI");
        assert_eq!(
            short_time("created_at", &json!("2026-11-23T09:40:00.123456Z")).unwrap(),
            "2026-11-23 09:40:00"
        );
        assert!(short_time("name", &json!("2026-11-23T09:40:00Z")).is_none());
        assert!(short_time("created_at", &json!("é2026-11-23T09:40:00Z")).is_none());
        assert!(short_time("created_at", &json!("2026-11-2éT09:40:00Z")).is_none());
        assert!(short_time("created_at", &json!("2026-11-23é09:40:00Z")).is_none());
    }

    #[test]
    fn blocks_put_known_fields_first() {
        let b = block(&json!({"z": 1, "name": "n", "a": true}), &["name"]);
        assert_eq!(b, "name: n\na:    yes\nz:    1\n");
    }

    #[test]
    fn long_cells_are_cut() {
        assert_eq!(cut("abcdef".into(), 4), "abc…");
        assert_eq!(cut("abc".into(), 4), "abc");
        assert_eq!(cut("日本語です".into(), 6), "日本…");
    }

    #[test]
    fn wide_characters_align() {
        let t = table(
            &[json!({"a": "日本", "b": 1}), json!({"a": "ab", "b": 2})],
            &[col("A", "a"), col("B", "b")],
        );
        assert_eq!(t, "A     B\n日本  1\nab    2\n");
    }
}
