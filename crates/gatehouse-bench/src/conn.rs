//! One persistent HTTP/1.1 keep-alive connection to a server's MLflow registry
//! API, and the timed call made over it.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;

/// A server to measure: `NAME=URL[,TOKEN]` on the command line.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    /// `host:port`, both the address connected to and the `Host` header.
    pub authority: String,
    pub token: Option<String>,
}

impl Target {
    /// Parses `NAME=http://HOST[:PORT][/],TOKEN` (the token is optional).
    pub fn parse(arg: &str) -> Result<Self> {
        let (name, rest) = arg
            .split_once('=')
            .with_context(|| format!("target {arg:?} is not NAME=URL[,TOKEN]"))?;
        let (url, token) = match rest.split_once(',') {
            Some((url, token)) => (url, Some(token.to_owned()).filter(|t| !t.is_empty())),
            None => (rest, None),
        };
        let authority = url
            .strip_prefix("http://")
            .with_context(|| format!("target {name:?}: URL {url:?} does not start with http://"))?
            .trim_end_matches('/');
        if authority.is_empty() || authority.contains('/') {
            bail!("target {name:?}: URL {url:?} must be http://HOST[:PORT], without a path");
        }
        let authority = if authority
            .rsplit_once(':')
            .is_some_and(|(_, port)| port.parse::<u16>().is_ok())
        {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        Ok(Self {
            name: name.to_owned(),
            authority,
            token,
        })
    }
}

/// The arguments of one registry call: a JSON body, or a GET query string.
pub enum Args {
    Json(Value),
    Query(Vec<(&'static str, String)>),
}

/// One registry call: method, path under `/api/2.0/mlflow/`, arguments.
pub struct Call {
    pub method: Method,
    pub path: &'static str,
    pub args: Args,
}

/// A keep-alive connection; counts the calls retried after a 5xx and the
/// connections reopened after the server closed an idle one.
pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
    authority: String,
    host: HeaderValue,
    authorization: Option<HeaderValue>,
    pub retries: u64,
    pub reopened: u64,
}

async fn open(authority: &str) -> Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(authority)
        .await
        .with_context(|| format!("cannot connect to {authority}"))?;
    stream.set_nodelay(true).context("cannot set TCP_NODELAY")?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .with_context(|| format!("HTTP/1.1 handshake with {authority} failed"))?;
    // Its errors surface in the requests sent over it.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// Statuses retried, as the MLflow client retries them: mlflow server answers
/// 500 "database is locked" under concurrent SQLite writes.
fn transient(status: StatusCode) -> bool {
    matches!(status.as_u16(), 500 | 502 | 503 | 504)
}

/// Tries of a call: the first and up to 4 retries.
const ATTEMPTS: usize = 5;

impl Conn {
    pub async fn connect(target: &Target) -> Result<Self> {
        let sender = open(&target.authority).await?;
        let host = HeaderValue::from_str(&target.authority).context("invalid host")?;
        let authorization = target
            .token
            .as_deref()
            .map(|token| HeaderValue::from_str(&format!("Bearer {token}")))
            .transpose()
            .context("the token is not a valid header value")?;
        Ok(Self {
            sender,
            authority: target.authority.clone(),
            host,
            authorization,
            retries: 0,
            reopened: 0,
        })
    }

    fn request(&self, method: &Method, uri: &str, body: &Bytes) -> Result<Request<Full<Bytes>>> {
        let mut builder = Request::builder()
            .method(method.clone())
            .uri(uri)
            .header(HOST, self.host.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(authorization) = &self.authorization {
            builder = builder.header(AUTHORIZATION, authorization.clone());
        }
        builder
            .body(Full::new(body.clone()))
            .with_context(|| format!("cannot build the request {method} {uri}"))
    }

    /// Makes `call`, retrying a 500/502/503/504 up to 4 times; returns the
    /// time from just before the request is sent to the end of the last
    /// response's body. Any other status than 200 is an error.
    pub async fn call(&mut self, call: &Call) -> Result<Duration> {
        let mut uri = format!("/api/2.0/mlflow/{}", call.path);
        let body = match &call.args {
            Args::Json(value) => {
                Bytes::from(serde_json::to_vec(value).context("cannot encode a JSON body")?)
            }
            Args::Query(pairs) => {
                uri.push('?');
                uri.push_str(
                    &form_urlencoded::Serializer::new(String::new())
                        .extend_pairs(pairs)
                        .finish(),
                );
                Bytes::new()
            }
        };
        let mut request = self.request(&call.method, &uri, &body)?;
        // A server may close a keep-alive connection left idle (a worker
        // waiting for the others); it is reopened before the call is timed.
        if self.sender.ready().await.is_err() {
            self.sender = open(&self.authority).await?;
            self.reopened += 1;
        }
        let start = Instant::now();
        let mut attempt = 1;
        loop {
            self.sender.ready().await.with_context(|| {
                format!(
                    "{} {uri}: connection to {} lost",
                    call.method, self.authority
                )
            })?;
            let response = self.sender.send_request(request).await.with_context(|| {
                format!(
                    "{} {uri}: request to {} failed",
                    call.method, self.authority
                )
            })?;
            let status = response.status();
            let data = response
                .into_body()
                .collect()
                .await
                .with_context(|| format!("{} {uri}: cannot read the response body", call.method))?
                .to_bytes();
            if transient(status) && attempt < ATTEMPTS {
                self.retries += 1;
                attempt += 1;
                request = self.request(&call.method, &uri, &body)?;
                continue;
            }
            let elapsed = start.elapsed();
            if status != StatusCode::OK {
                let head = String::from_utf8_lossy(&data[..data.len().min(300)]);
                bail!("{} {uri}: {status} {head:?}", call.method);
            }
            return Ok(elapsed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_targets() -> Result<()> {
        let t = Target::parse("gatehouse=http://127.0.0.1:9000,gh_abc")?;
        assert_eq!(
            (t.name.as_str(), t.authority.as_str()),
            ("gatehouse", "127.0.0.1:9000")
        );
        assert_eq!(t.token.as_deref(), Some("gh_abc"));
        let t = Target::parse("mlflow server (SQLite)=http://localhost/")?;
        assert_eq!(
            (t.name.as_str(), t.authority.as_str()),
            ("mlflow server (SQLite)", "localhost:80")
        );
        assert_eq!(t.token, None);
        assert!(Target::parse("x=https://h:1").is_err());
        assert!(Target::parse("http://h:1").is_err());
        assert!(Target::parse("x=http://h:1/api").is_err());
        Ok(())
    }
}
