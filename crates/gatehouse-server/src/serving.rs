//! How connections are served: the limits that keep slow or greedy clients
//! from starving the others, the graceful shutdown with its deadline, and the
//! security headers on every answer.
//!
//! Connections are served with hyper's HTTP/1.1 directly instead of
//! `axum::serve`, which has no header-read timeout. HTTP/2 without TLS (h2c)
//! is not offered: browsers only speak HTTP/2 over TLS, which a proxy in front
//! terminates, and hyper's header-read timeout covers HTTP/1 only.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gatehouse_core::ErrorCode;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;
use tower_http::add_extension::AddExtension;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;

use crate::error::ApiError;
use crate::metrics::Metrics;

/// Default of [`HttpSettings::request_timeout`].
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Default of [`HttpSettings::header_read_timeout`].
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default of [`HttpSettings::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: u32 = 1024;
/// Default of [`HttpSettings::shutdown_grace`].
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// `max-age` of `Strict-Transport-Security`: one year.
const HSTS: &str = "max-age=31536000";
/// Nothing may be loaded or framed from an API answer; the web UI will bring
/// its own policy.
const CSP: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// Limits of the HTTP server and the headers it adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpSettings {
    /// Longest time from a request's head being read to its answer's head;
    /// then the answer is 503 `unavailable` (the handler is dropped, so its
    /// transaction rolls back).
    pub request_timeout: Duration,
    /// Longest time a client may take to send a request's head, counted from
    /// the connection's start or from the previous answer (so it also closes
    /// idle keep-alive connections); then the connection is closed.
    pub header_read_timeout: Duration,
    /// Connections served at once; further ones wait in the listen backlog.
    pub max_connections: u32,
    /// After the shutdown signal, how long requests in flight may take before
    /// their connections are closed and the server stops.
    pub shutdown_grace: Duration,
    /// The server is reached over TLS (terminated in front of it): answers
    /// carry `Strict-Transport-Security`.
    pub behind_tls: bool,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            behind_tls: false,
        }
    }
}

impl HttpSettings {
    /// Refuses limits that would make the server unusable.
    pub fn validate(&self) -> Result<(), String> {
        if self.request_timeout.is_zero() {
            return Err("request_timeout must be more than 0 seconds".into());
        }
        if self.header_read_timeout.is_zero() {
            return Err("header_read_timeout must be more than 0 seconds".into());
        }
        if self.max_connections == 0 {
            return Err("max_connections must be at least 1".into());
        }
        Ok(())
    }
}

/// The request timeout and the security headers around the API's router.
pub(crate) fn with_layers(
    router: Router,
    settings: &HttpSettings,
    metrics: Arc<Metrics>,
) -> Router {
    let mut headers = vec![
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::CACHE_CONTROL, "no-store"),
    ];
    if settings.behind_tls {
        headers.push((header::STRICT_TRANSPORT_SECURITY, HSTS));
    }
    let timed_out = TimedOut {
        after: settings.request_timeout,
        metrics,
    };
    let mut router = router
        // The timeout answers 503 with an empty body, which becomes a problem
        // just outside it; a handler's own 503 always has a content type.
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            settings.request_timeout,
        ))
        .layer(axum::middleware::map_response_with_state(
            timed_out,
            timeout_problem,
        ));
    // Handlers may set their own (a future web UI its CSP and caching).
    for (name, value) in headers {
        router = router.layer(SetResponseHeaderLayer::if_not_present(
            name,
            HeaderValue::from_static(value),
        ));
    }
    router
}

#[derive(Clone)]
struct TimedOut {
    after: Duration,
    metrics: Arc<Metrics>,
}

async fn timeout_problem(State(t): State<TimedOut>, res: Response) -> Response {
    if res.status() != StatusCode::SERVICE_UNAVAILABLE
        || res.headers().contains_key(header::CONTENT_TYPE)
    {
        return res;
    }
    // The request was counted when it started; its answer never reached the
    // counting layer.
    t.metrics.count_server_error();
    tracing::warn!(timeout = ?t.after, "request timed out");
    ApiError::new(
        ErrorCode::Unavailable,
        format!(
            "the request did not finish within {}; retry later",
            seconds(t.after)
        ),
    )
    .into_response()
}

fn seconds(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then stops
/// accepting, lets requests in flight finish for up to
/// [`HttpSettings::shutdown_grace`], closes what is left, and returns once
/// every connection is gone. Each request carries the client's address as
/// `ConnectInfo<SocketAddr>`.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    settings: HttpSettings,
    shutdown: impl Future<Output = ()>,
) {
    // One permit per open connection; the listener accepts only with a free one.
    let permits = Arc::new(Semaphore::new(settings.max_connections as usize));
    // `Some(deadline)` once shutdown has begun.
    let (stop_tx, stop_rx) = watch::channel::<Option<Instant>>(None);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = permits.clone().acquire_owned() => {
                permit.expect("the connection semaphore is never closed")
            }
        };
        let (stream, remote) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    // Out of file descriptors, most likely: wait a little
                    // rather than spin.
                    tracing::error!(error = %e, "cannot accept a connection");
                    tokio::select! {
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
            },
        };
        tokio::spawn(serve_connection(
            stream,
            remote,
            router.clone(),
            settings.header_read_timeout,
            stop_rx.clone(),
            permit,
        ));
    }
    drop(listener);
    let open = settings.max_connections as usize - permits.available_permits();
    if open > 0 {
        tracing::info!(
            open,
            grace = ?settings.shutdown_grace,
            "waiting for open connections to finish"
        );
    }
    let _ = stop_tx.send(Some(Instant::now() + settings.shutdown_grace));
    // Every connection ends by the deadline and then gives its permit back.
    let _all = permits
        .acquire_many(settings.max_connections)
        .await
        .expect("the connection semaphore is never closed");
}

async fn serve_connection(
    stream: TcpStream,
    remote: SocketAddr,
    router: Router,
    header_read_timeout: Duration,
    mut stop: watch::Receiver<Option<Instant>>,
    _permit: OwnedSemaphorePermit,
) {
    // Small JSON answers should not wait for Nagle's algorithm.
    let _ = stream.set_nodelay(true);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    let service = TowerToHyperService::new(AddExtension::new(router, ConnectInfo(remote)));
    let mut conn = std::pin::pin!(builder.serve_connection(TokioIo::new(stream), service));
    let deadline = tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!(%remote, error = %e, "connection ended with an error");
            }
            return;
        }
        deadline = stop.wait_for(Option::is_some) => match deadline {
            Ok(deadline) => (*deadline).unwrap_or_else(Instant::now),
            // The server is gone: nothing waits for this connection any more.
            Err(_) => Instant::now(),
        },
    };
    // Finish the request in flight, if any, then close; an idle connection
    // closes at once.
    conn.as_mut().graceful_shutdown();
    if tokio::time::timeout_at(deadline, conn).await.is_err() {
        tracing::warn!(%remote, "shutdown grace period over: closing a connection still in use");
    }
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_zero_limits_are_refused() {
        assert_eq!(HttpSettings::default().validate(), Ok(()));
        for broken in [
            HttpSettings {
                request_timeout: Duration::ZERO,
                ..Default::default()
            },
            HttpSettings {
                header_read_timeout: Duration::ZERO,
                ..Default::default()
            },
            HttpSettings {
                max_connections: 0,
                ..Default::default()
            },
        ] {
            assert!(broken.validate().is_err(), "{broken:?}");
        }
        let no_grace = HttpSettings {
            shutdown_grace: Duration::ZERO,
            ..Default::default()
        };
        assert_eq!(no_grace.validate(), Ok(()));
    }

    #[test]
    fn timeouts_are_written_in_seconds() {
        assert_eq!(seconds(Duration::from_secs(30)), "30 s");
        assert_eq!(seconds(Duration::from_millis(1500)), "1.5 s");
    }
}
