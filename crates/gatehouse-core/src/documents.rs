//! Documents attached to a model version or bundle (a model card, a
//! validation report), as tier policies require them: by URI with the
//! document's SHA-256 digest, or as text kept by Gatehouse (bounded), whose
//! digest is computed here.

use sha2::{Digest as _, Sha256};

use crate::InvalidInput;
use crate::inventory::{URI_MAX, check_line};
use crate::names::Digest;

/// Longest document kept as text, in bytes.
pub const DOCUMENT_TEXT_MAX: usize = 256 * 1024;

/// Where a document is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocumentSource {
    /// Stored elsewhere; the digest pins its content.
    Uri { uri: String, sha256: Digest },
    /// Kept by Gatehouse.
    Text { content: String, sha256: Digest },
}

impl DocumentSource {
    /// Builds the source from a request's fields: either `uri` and `sha256`,
    /// or `content` alone.
    pub fn from_parts(
        uri: Option<String>,
        sha256: Option<&str>,
        content: Option<String>,
    ) -> Result<Self, InvalidInput> {
        match (uri, sha256, content) {
            (Some(uri), Some(sha), None) => {
                check_line("uri", &uri, URI_MAX)?;
                let sha256 =
                    Digest::parse(sha).map_err(|e| InvalidInput::new("sha256", e.message))?;
                Ok(Self::Uri { uri, sha256 })
            }
            (Some(_), None, None) => Err(InvalidInput::new(
                "sha256",
                "a document attached by URI needs its SHA-256 digest",
            )),
            (None, sha, Some(content)) => {
                if content.len() > DOCUMENT_TEXT_MAX {
                    return Err(InvalidInput::new(
                        "content",
                        format!(
                            "a document kept as text is at most {DOCUMENT_TEXT_MAX} bytes; attach a larger one by URI and digest"
                        ),
                    ));
                }
                if content.trim().is_empty() {
                    return Err(InvalidInput::new("content", "must not be empty"));
                }
                let computed = text_digest(&content);
                if let Some(given) = sha {
                    let given =
                        Digest::parse(given).map_err(|e| InvalidInput::new("sha256", e.message))?;
                    if given != computed {
                        return Err(InvalidInput::new(
                            "sha256",
                            format!(
                                "does not match the content (its SHA-256 is {})",
                                computed.as_str()
                            ),
                        ));
                    }
                }
                Ok(Self::Text {
                    content,
                    sha256: computed,
                })
            }
            (Some(_), _, Some(_)) => Err(InvalidInput::new(
                "content",
                "give either uri and sha256, or content, not both",
            )),
            (None, _, None) => Err(InvalidInput::new(
                "uri",
                "give either uri and sha256 (a document stored elsewhere) or content (text kept by Gatehouse)",
            )),
        }
    }

    pub fn sha256(&self) -> &Digest {
        match self {
            Self::Uri { sha256, .. } | Self::Text { sha256, .. } => sha256,
        }
    }
}

/// The SHA-256 digest of a text document.
pub fn text_digest(content: &str) -> Digest {
    let hex = hex::encode(Sha256::digest(content.as_bytes()));
    Digest::parse(&hex).expect("a SHA-256 digest in hex")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    #[test]
    fn a_uri_needs_its_digest() {
        let ok =
            DocumentSource::from_parts(Some("s3://b/card.md".into()), Some(SHA), None).unwrap();
        assert_eq!(ok.sha256().as_str(), SHA);
        let e = DocumentSource::from_parts(Some("s3://b/card.md".into()), None, None).unwrap_err();
        assert_eq!(e.field, "sha256");
        let e = DocumentSource::from_parts(Some("s3://b/card.md".into()), Some("abc"), None)
            .unwrap_err();
        assert_eq!(e.field, "sha256");
        let e = DocumentSource::from_parts(Some("a\nb".into()), Some(SHA), None).unwrap_err();
        assert_eq!(e.field, "uri");
    }

    #[test]
    fn text_is_bounded_and_digested() {
        let d = DocumentSource::from_parts(None, None, Some("test".into())).unwrap();
        assert_eq!(d.sha256().as_str(), SHA);
        assert!(DocumentSource::from_parts(None, Some(SHA), Some("test".into())).is_ok());
        let e = DocumentSource::from_parts(None, Some(&"0".repeat(64)), Some("test".into()))
            .unwrap_err();
        assert!(e.message.contains(SHA), "{}", e.message);
        let big = "x".repeat(DOCUMENT_TEXT_MAX + 1);
        assert_eq!(
            DocumentSource::from_parts(None, None, Some(big))
                .unwrap_err()
                .field,
            "content"
        );
        assert!(
            DocumentSource::from_parts(None, None, Some("x".repeat(DOCUMENT_TEXT_MAX))).is_ok()
        );
        assert_eq!(
            DocumentSource::from_parts(None, None, Some("  ".into()))
                .unwrap_err()
                .field,
            "content"
        );
    }

    #[test]
    fn exactly_one_source() {
        assert_eq!(
            DocumentSource::from_parts(None, None, None)
                .unwrap_err()
                .field,
            "uri"
        );
        assert_eq!(
            DocumentSource::from_parts(Some("u".into()), Some(SHA), Some("t".into()))
                .unwrap_err()
                .field,
            "content"
        );
    }
}
