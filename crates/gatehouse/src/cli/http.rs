//! A small REST client for `/api/v1`: builds URLs with percent-encoded path
//! segments, sends the bearer token, and turns problem documents into `CliError`s.

use std::time::Duration;

use gatehouse_api::PageOf;
use reqwest::{Method, Url};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::ClientOpts;
use super::DEFAULT_SERVER;
use super::args::PageArgs;
use super::config;
use super::error::CliError;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Safety net for `--all`: never follow more pages than this.
const MAX_PAGES: usize = 10_000;

pub struct Api {
    http: reqwest::Client,
    /// The server URL as the user gave it, without a trailing slash.
    server: String,
    token: Option<String>,
}

impl Api {
    /// The server and token for a command: `--server`/`GATEHOUSE_SERVER` and
    /// `--token`/`GATEHOUSE_TOKEN` first, else the stored login. The stored token is
    /// only ever sent to the server it was issued by.
    pub fn from_opts(opts: &ClientOpts) -> Result<Self, CliError> {
        let given = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty());
        let (opt_server, opt_token) = (given(&opts.server), given(&opts.token));
        // An unreadable stored login only matters when it would be used.
        let stored = match config::load() {
            Ok(s) => s,
            Err(_) if opt_token.is_some() && opt_server.is_some() => None,
            Err(e) => return Err(e),
        };
        let server = match (&opt_server, &stored) {
            (Some(s), _) => s.clone(),
            (None, Some(c)) => c.server.clone(),
            (None, None) => DEFAULT_SERVER.to_string(),
        };
        let token = match (&opt_token, &stored) {
            (Some(t), _) => Some(t.clone()),
            (None, Some(c)) if config::same_server(&c.server, &server) => Some(c.token.clone()),
            _ => None,
        };
        Self::new(&server, token)
    }

    pub fn new(server: &str, token: Option<String>) -> Result<Self, CliError> {
        let server = check_server(server)?;
        let token = token.filter(|t| !t.trim().is_empty());
        if let Some(t) = &token
            && !t.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(CliError::input(
                "the token contains spaces or characters that cannot be sent in a header",
            ));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("gatehouse-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CliError::other(format!("cannot set up the HTTP client: {e}")))?;
        Ok(Self {
            http,
            server,
            token,
        })
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    /// `{server}/api/v1/{segments…}?{query}` with each segment percent-encoded.
    pub fn url(&self, segments: &[&str], query: &[(String, String)]) -> Result<Url, CliError> {
        let mut s = format!("{}/api/v1", self.server);
        for seg in segments {
            s.push('/');
            s.push_str(&encode_segment(seg)?);
        }
        let mut url = Url::parse(&s)
            .map_err(|e| CliError::input(format!("invalid request URL {s:?}: {e}")))?;
        if !query.is_empty() {
            let mut q = url.query_pairs_mut();
            for (k, v) in query {
                q.append_pair(k, v);
            }
        }
        Ok(url)
    }

    /// Sends one request; `Ok(None)` for an answer without a body (204).
    pub async fn send(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(String, String)],
        body: Option<&Value>,
        authenticated: bool,
    ) -> Result<Option<Value>, CliError> {
        self.send_with(method, segments, query, body, authenticated, None)
            .await
    }

    /// [`Api::send`], with an optional `If-Match` revision.
    async fn send_with(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(String, String)],
        body: Option<&Value>,
        authenticated: bool,
        if_match: Option<u64>,
    ) -> Result<Option<Value>, CliError> {
        let url = self.url(segments, query)?;
        let mut req = self.http.request(method, url);
        if authenticated {
            let Some(token) = &self.token else {
                return Err(CliError::NotLoggedIn);
            };
            req = req.bearer_auth(token);
        }
        req = req.header(reqwest::header::ACCEPT, "application/json");
        if let Some(rev) = if_match {
            req = req.header(reqwest::header::IF_MATCH, format!("\"{rev}\""));
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = req.send().await.map_err(|e| self.transport_error(e))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| self.transport_error(e))?;
        if status.is_success() {
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Ok(None);
            }
            return serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                CliError::other(format!(
                    "the server at {} answered HTTP {} with a body that is not JSON: {e}",
                    self.server,
                    status.as_u16()
                ))
            });
        }
        Err(problem(status, &bytes))
    }

    /// Reads an answer as the API's body `T` (the fields this client uses).
    pub fn typed<T: DeserializeOwned>(&self, answer: &Value) -> Result<T, CliError> {
        T::deserialize(answer).map_err(|e| {
            CliError::other(format!(
                "the server at {} answered in a shape this client does not know: {e}",
                self.server
            ))
        })
    }

    pub async fn get(&self, segments: &[&str]) -> Result<Value, CliError> {
        self.send(Method::GET, segments, &[], None, true)
            .await
            .map(Option::unwrap_or_default)
    }

    pub async fn post(&self, segments: &[&str], body: &Value) -> Result<Value, CliError> {
        self.send(Method::POST, segments, &[], Some(body), true)
            .await
            .map(Option::unwrap_or_default)
    }

    /// A POST that the server refuses with 412 `stale_revision` when the object
    /// has moved past revision `if_match`.
    pub async fn post_if_match(
        &self,
        segments: &[&str],
        body: &Value,
        if_match: Option<u64>,
    ) -> Result<Value, CliError> {
        self.send_with(Method::POST, segments, &[], Some(body), true, if_match)
            .await
            .map(Option::unwrap_or_default)
    }

    pub async fn patch(&self, segments: &[&str], body: &Value) -> Result<Value, CliError> {
        self.send(Method::PATCH, segments, &[], Some(body), true)
            .await
            .map(Option::unwrap_or_default)
    }

    pub async fn put(&self, segments: &[&str], body: Option<&Value>) -> Result<Value, CliError> {
        self.send(Method::PUT, segments, &[], body, true)
            .await
            .map(Option::unwrap_or_default)
    }

    pub async fn delete(&self, segments: &[&str]) -> Result<Option<Value>, CliError> {
        self.send(Method::DELETE, segments, &[], None, true).await
    }

    /// A list, one page or (with `--all`) every page, answered as
    /// `{"items": [...], "next_cursor": ...}`.
    pub async fn list(
        &self,
        segments: &[&str],
        filters: &[(String, String)],
        page: &PageArgs,
    ) -> Result<Value, CliError> {
        let mut items: Vec<Value> = Vec::new();
        let mut cursor = page.cursor.clone();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..MAX_PAGES {
            let mut query = filters.to_vec();
            if let Some(limit) = page.limit {
                query.push(("limit".into(), limit.to_string()));
            }
            if let Some(c) = &cursor {
                query.push(("cursor".into(), c.clone()));
            }
            let answer = self
                .send(Method::GET, segments, &query, None, true)
                .await?
                .unwrap_or_default();
            if answer.get("items").is_none_or(|i| !i.is_array()) {
                return Err(CliError::other(format!(
                    "the server at {} answered a list without \"items\"",
                    self.server
                )));
            }
            if !page.all {
                return Ok(answer);
            }
            let PageOf {
                items: page_items,
                next_cursor,
            } = self.typed::<PageOf<Value>>(&answer)?;
            items.extend(page_items);
            match next_cursor.filter(|n| !n.is_empty()) {
                None => return Ok(json!({ "items": items, "next_cursor": null })),
                Some(n) => {
                    if !seen.insert(n.clone()) {
                        return Err(CliError::other(format!(
                            "the server at {} repeated the cursor {n:?}; stopping",
                            self.server
                        )));
                    }
                    cursor = Some(n);
                }
            }
        }
        Err(CliError::other(format!(
            "more than {MAX_PAGES} pages; stopping (use --limit and --cursor)"
        )))
    }

    fn transport_error(&self, e: reqwest::Error) -> CliError {
        let reason = if e.is_timeout() {
            "timed out".to_string()
        } else if e.is_connect() {
            let text = error_chain(&e);
            if text.contains("refused") {
                "connection refused".to_string()
            } else {
                format!("cannot connect ({text})")
            }
        } else {
            error_chain(&e)
        };
        CliError::Unreachable {
            server: self.server.clone(),
            reason,
        }
    }
}

/// The innermost useful description of a transport error.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.contains(&text) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

/// A problem document (or any other error answer) as a `CliError`.
fn problem(status: reqwest::StatusCode, body: &[u8]) -> CliError {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let field = |name: &str| {
        parsed
            .as_ref()
            .and_then(|v| v.get(name))
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
            .map(str::to_string)
    };
    let detail = field("detail")
        .or_else(|| field("title"))
        .unwrap_or_else(|| {
            format!(
                "the server answered HTTP {} {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            )
            .trim_end()
            .to_string()
        });
    CliError::Api {
        status: status.as_u16(),
        code: field("code"),
        detail,
    }
}

/// Checks a server URL and returns it without a trailing slash.
fn check_server(server: &str) -> Result<String, CliError> {
    let trimmed = server.trim().trim_end_matches('/');
    let url = Url::parse(trimmed).map_err(|e| {
        CliError::input(format!(
            "invalid server URL {server:?}: {e} (expected e.g. {DEFAULT_SERVER})"
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(CliError::input(format!(
            "invalid server URL {server:?}: expected http://HOST[:PORT] or https://HOST[:PORT]"
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(CliError::input(format!(
            "invalid server URL {server:?}: must not have a query or fragment"
        )));
    }
    Ok(trimmed.to_string())
}

/// Percent-encodes one path segment: everything but RFC 3986 unreserved characters.
/// Names that a URL cannot carry as a segment (empty, `.`, `..`) are refused.
pub fn encode_segment(seg: &str) -> Result<String, CliError> {
    if seg.is_empty() {
        return Err(CliError::input(
            "a name in the request path must not be empty",
        ));
    }
    if seg == "." || seg == ".." {
        return Err(CliError::input(format!(
            "the name {seg:?} cannot be used in a URL path"
        )));
    }
    let mut out = String::with_capacity(seg.len());
    for b in seg.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(encode_segment("fraud-scorer").unwrap(), "fraud-scorer");
        assert_eq!(
            encode_segment("Fraud scorer (v2) 100%").unwrap(),
            "Fraud%20scorer%20%28v2%29%20100%25"
        );
        assert_eq!(encode_segment("a?b#c/d").unwrap(), "a%3Fb%23c%2Fd");
        assert_eq!(encode_segment("é").unwrap(), "%C3%A9");
        assert!(encode_segment("..").is_err());
        assert!(encode_segment("").is_err());
    }

    #[test]
    fn urls_keep_encoded_segments_and_queries() {
        let api = Api::new("http://127.0.0.1:8750/", None).unwrap();
        let url = api
            .url(
                &["projects", "FRAUD", "models", "my model?", "versions"],
                &[("tag".into(), "team=fraud & co".into())],
            )
            .unwrap();
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:8750/api/v1/projects/FRAUD/models/my%20model%3F/versions?tag=team%3Dfraud+%26+co"
        );
        let prefixed = Api::new("https://h.example/gatehouse/", None).unwrap();
        assert_eq!(
            prefixed.url(&["me"], &[]).unwrap().as_str(),
            "https://h.example/gatehouse/api/v1/me"
        );
    }

    #[test]
    fn server_urls_are_checked() {
        assert!(check_server("localhost:8750").is_err());
        assert!(check_server("ftp://h").is_err());
        assert!(check_server("not a url").is_err());
        assert!(check_server("http://h:1?x=1").is_err());
        assert_eq!(check_server("http://h:1/").unwrap(), "http://h:1");
    }

    #[test]
    fn problems_become_errors() {
        let body = br#"{"code":"not_found","detail":"no model 'x' in FRAUD","status":404}"#;
        let e = problem(reqwest::StatusCode::NOT_FOUND, body);
        assert_eq!(e.exit_code(), 2);
        assert_eq!(e.message(), "no model 'x' in FRAUD (not_found)");
        let e = problem(reqwest::StatusCode::BAD_GATEWAY, b"<html>");
        assert_eq!(
            e.message(),
            "the server answered HTTP 502 Bad Gateway (HTTP 502)"
        );
    }

    #[test]
    fn tokens_with_spaces_are_refused() {
        assert!(Api::new("http://h:1", Some("a b".into())).is_err());
    }
}
