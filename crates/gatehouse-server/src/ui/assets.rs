//! Static assets embedded in the binary, served under names that carry a hash
//! of their content (`gatehouse.<hash>.css`), so they can be cached for a year
//! and a new build never shows a stale stylesheet.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest as _, Sha256};

struct Asset {
    /// `gatehouse.css`
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "gatehouse.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../assets/gatehouse.css"),
    },
    Asset {
        name: "htmx.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../assets/htmx-2.0.11.min.js"),
    },
];

/// Each asset's served name, e.g. `gatehouse.3f2a9c0d1e4b.css`.
fn served_names() -> &'static Vec<String> {
    static NAMES: OnceLock<Vec<String>> = OnceLock::new();
    NAMES.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| {
                let hash = hex::encode(&Sha256::digest(a.bytes)[..6]);
                let (stem, ext) = a.name.rsplit_once('.').unwrap_or((a.name, ""));
                format!("{stem}.{hash}.{ext}")
            })
            .collect()
    })
}

/// The URL of an asset by its plain name (`gatehouse.css`).
pub fn url(name: &str) -> String {
    ASSETS
        .iter()
        .zip(served_names())
        .find(|(a, _)| a.name == name)
        .map(|(_, served)| format!("/static/{served}"))
        .unwrap_or_default()
}

pub async fn serve(Path(name): Path<String>) -> Response {
    match ASSETS
        .iter()
        .zip(served_names())
        .find(|(_, served)| **served == name)
    {
        Some((a, _)) => (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(a.content_type),
                ),
                (
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=31536000, immutable"),
                ),
            ],
            a.bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_a_content_hash() {
        let css = url("gatehouse.css");
        assert!(css.starts_with("/static/gatehouse.") && css.ends_with(".css"));
        assert_eq!(css.len(), "/static/gatehouse..css".len() + 12);
        assert_eq!(url("nothing.css"), "");
    }

    #[test]
    fn own_stylesheet_stays_small() {
        assert!(ASSETS[0].bytes.len() < 40 * 1024);
    }
}
