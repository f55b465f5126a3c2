//! The UI's URLs of subjects and other objects (path segments escaped).

use gatehouse_core::Subject;

/// Escapes one path segment: everything but unreserved characters.
pub fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The page of a subject (`version:P/M/N` or `bundle:P/T`).
pub fn subject(s: &Subject) -> String {
    match s {
        Subject::Version {
            project,
            model,
            version,
        } => format!(
            "/projects/{}/models/{}/versions/{version}",
            seg(project.as_str()),
            seg(model.as_str())
        ),
        Subject::Bundle { project, tag } => {
            format!(
                "/projects/{}/bundles/{}",
                seg(project.as_str()),
                seg(tag.as_str())
            )
        }
    }
}

/// The page of a subject given as audit text; `#` when it does not parse.
pub fn subject_text(text: &str) -> String {
    text.parse::<Subject>()
        .map(|s| subject(&s))
        .unwrap_or_else(|_| "#".into())
}

pub fn project(key: &str) -> String {
    format!("/projects/{}", seg(key))
}

pub fn infrastructure(name: &str) -> String {
    format!("/infrastructures/{}", seg(name))
}

/// A query string from pairs (values escaped).
pub fn query<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_escaped() {
        assert_eq!(seg("fraud scorer/v2"), "fraud%20scorer%2Fv2");
        assert_eq!(seg("FRAUD"), "FRAUD");
        assert_eq!(
            subject_text("version:FRAUD/fraud scorer/3"),
            "/projects/FRAUD/models/fraud%20scorer/versions/3"
        );
        assert_eq!(
            subject_text("bundle:FRAUD/v1.0"),
            "/projects/FRAUD/bundles/v1.0"
        );
        assert_eq!(subject_text("nonsense"), "#");
    }
}
