//! The server's Prometheus metrics, in one `prometheus_client` registry:
//! requests (counted, and timed per method, route template and status class),
//! the gate's decisions, sign-off commands, the login throttle's counters
//! (owned by `accounts`), the database pool (read at each scrape) and the
//! build. `GET /metrics` encodes the registry (`api::health`).
//!
//! Every label value comes from a closed set (route templates, never raw
//! paths; known methods, else `other`), so no client can grow the registry.

use std::fmt;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use gatehouse_core::gate::GateDecision;
use gatehouse_store::Store;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

/// `Content-Type` of the OpenMetrics text format, for scrapers that ask for it.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// `Content-Type` of the Prometheus text format 0.0.4, for everyone else.
pub const PROMETHEUS_CONTENT_TYPE: &str =
    prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Upper bounds of the latency buckets in seconds: from a read served from
/// memory to the default request timeout.
const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The `route` of a request that matched no route.
const UNMATCHED: &str = "unmatched";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    /// The matched route template (`/api/v1/projects/{key}`), or `unmatched`.
    route: String,
    /// `2xx`, `4xx`, …
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GateLabels {
    operation: &'static str,
    decision: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SignoffLabels {
    command: &'static str,
    outcome: &'static str,
}

/// What asked the gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateOperation {
    /// `GET /gate`: asked without deploying.
    Check,
    Deploy,
    BreakGlass,
    Rollback,
}

impl GateOperation {
    const ALL: [GateOperation; 4] = [Self::Check, Self::Deploy, Self::BreakGlass, Self::Rollback];

    fn as_str(self) -> &'static str {
        match self {
            Self::Check => "check",
            Self::Deploy => "deploy",
            Self::BreakGlass => "break_glass",
            Self::Rollback => "rollback",
        }
    }
}

/// A sign-off command, as `gatehouse_signoff_commands_total` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignoffCommand {
    RequestReview,
    Feedback,
    Delegate,
    Decide,
    Reset,
}

impl SignoffCommand {
    const ALL: [SignoffCommand; 5] = [
        Self::RequestReview,
        Self::Feedback,
        Self::Delegate,
        Self::Decide,
        Self::Reset,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Self::RequestReview => "request_review",
            Self::Feedback => "feedback",
            Self::Delegate => "delegate",
            Self::Decide => "decide",
            Self::Reset => "reset",
        }
    }
}

/// Whether a sign-off command went through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandOutcome {
    Accepted,
    /// Refused by the rules (permission, state, revision, input), not failed.
    Refused,
}

impl CommandOutcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Refused => "refused",
        }
    }
}

/// The text formats `/metrics` can answer in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exposition {
    /// Prometheus text 0.0.4 (the default).
    Prometheus,
    /// OpenMetrics 1.0 text, when the scraper's `Accept` asks for it.
    OpenMetrics,
}

impl Exposition {
    /// OpenMetrics when `accept` names it, Prometheus text otherwise.
    pub fn negotiate(accept: Option<&str>) -> Self {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Self::OpenMetrics,
            _ => Self::Prometheus,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Prometheus => PROMETHEUS_CONTENT_TYPE,
            Self::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
        }
    }
}

/// The registry and the handles the server updates.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Counter,
    server_errors: Counter,
    request_duration: Family<RouteLabels, Histogram, fn() -> Histogram>,
    gate_decisions: Family<GateLabels, Counter>,
    signoff_commands: Family<SignoffLabels, Counter>,
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

impl Metrics {
    /// Registers every metric; `store`'s pool and `accounts`' counters are
    /// read at each scrape.
    pub fn new(store: &Store, accounts: &crate::accounts::Accounts) -> Self {
        let mut registry = Registry::default();
        let requests = Counter::default();
        registry.register(
            "gatehouse_http_requests",
            "HTTP requests served",
            requests.clone(),
        );
        let server_errors = Counter::default();
        registry.register(
            "gatehouse_http_server_errors",
            "HTTP requests answered with a 5xx status",
            server_errors.clone(),
        );
        let request_duration: Family<RouteLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        registry.register_with_unit(
            "gatehouse_http_request_duration",
            "Time from a request's head to its answer's head, by method, route template and status class",
            Unit::Seconds,
            request_duration.clone(),
        );
        let gate_decisions = Family::<GateLabels, Counter>::default();
        registry.register(
            "gatehouse_gate_decisions",
            "Decisions of the deployment gate (allow, confirmation_required, blocked, forbidden) by operation (check, deploy, break_glass, rollback)",
            gate_decisions.clone(),
        );
        let signoff_commands = Family::<SignoffLabels, Counter>::default();
        registry.register(
            "gatehouse_signoff_commands",
            "Sign-off commands (request_review, feedback, delegate, decide, reset) by outcome (accepted, refused)",
            signoff_commands.clone(),
        );
        accounts.register_metrics(&mut registry);
        registry.register(
            "gatehouse_build",
            "Build information",
            Info::new([("version", env!("CARGO_PKG_VERSION"))]),
        );
        registry.register_collector(Box::new(PoolGauges {
            store: store.clone(),
        }));
        // Every series exists from the start at 0, so a first event is a
        // visible increase rather than a new series.
        for operation in GateOperation::ALL {
            for decision in GateDecision::ALL {
                gate_decisions.get_or_create_owned(&GateLabels {
                    operation: operation.as_str(),
                    decision: decision.api_str(),
                });
            }
        }
        for command in SignoffCommand::ALL {
            for outcome in [CommandOutcome::Accepted, CommandOutcome::Refused] {
                signoff_commands.get_or_create_owned(&SignoffLabels {
                    command: command.as_str(),
                    outcome: outcome.as_str(),
                });
            }
        }
        Metrics {
            registry,
            requests,
            server_errors,
            request_duration,
            gate_decisions,
            signoff_commands,
        }
    }

    /// Counts a request as it starts (so one that times out is counted too).
    pub fn count_request(&self) {
        self.requests.inc();
    }

    /// Times one answered request; `route` is the matched route template,
    /// `None` when no route matched.
    pub fn observe_request(
        &self,
        method: &Method,
        route: Option<&str>,
        status: StatusCode,
        elapsed: Duration,
    ) {
        if status.is_server_error() {
            self.server_errors.inc();
        }
        let labels = RouteLabels {
            method: method_label(method),
            route: route.unwrap_or(UNMATCHED).to_owned(),
            status: status_class(status),
        };
        self.request_duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// A 5xx answer the request layer never saw (the request timed out).
    pub fn count_server_error(&self) {
        self.server_errors.inc();
    }

    /// One answer of the gate, as clients see it (`allow_with_warning` is `allow`).
    pub fn gate_decision(&self, operation: GateOperation, decision: GateDecision) {
        self.gate_decisions
            .get_or_create(&GateLabels {
                operation: operation.as_str(),
                decision: decision.api_str(),
            })
            .inc();
    }

    /// One sign-off command that was accepted or refused.
    pub fn signoff_command(&self, command: SignoffCommand, outcome: CommandOutcome) {
        self.signoff_commands
            .get_or_create(&SignoffLabels {
                command: command.as_str(),
                outcome: outcome.as_str(),
            })
            .inc();
    }

    /// The registry as text in `format`.
    pub fn encode(&self, format: Exposition) -> Result<String, fmt::Error> {
        let mut text = String::new();
        match format {
            Exposition::Prometheus => {
                prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)?;
            }
            Exposition::OpenMetrics => {
                prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
            }
        }
        Ok(text)
    }
}

fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

fn status_class(s: StatusCode) -> &'static str {
    match s.as_u16() / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        _ => "5xx",
    }
}

/// The database pool's connections, read when scraped.
struct PoolGauges {
    store: Store,
}

impl fmt::Debug for PoolGauges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolGauges").finish_non_exhaustive()
    }
}

impl Collector for PoolGauges {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let pool = self.store.pool();
        let idle = i64::try_from(pool.num_idle()).unwrap_or(i64::MAX);
        for (name, help, value) in [
            (
                "gatehouse_db_pool_connections",
                "Connections the database pool holds open, in use or idle (its size).",
                i64::from(pool.size()),
            ),
            (
                "gatehouse_db_pool_idle_connections",
                "Open connections of the database pool not in use.",
                idle,
            ),
            (
                "gatehouse_db_pool_max_connections",
                "Connections the database pool may open at most.",
                i64::from(pool.options().get_max_connections()),
            ),
        ] {
            let gauge = ConstGauge::new(value);
            let metric = encoder.encode_descriptor(name, help, None, gauge.metric_type())?;
            gauge.encode(metric)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_come_from_closed_sets() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
        assert_eq!(status_class(StatusCode::OK), "2xx");
        assert_eq!(status_class(StatusCode::CONFLICT), "4xx");
        assert_eq!(status_class(StatusCode::SERVICE_UNAVAILABLE), "5xx");
    }

    #[test]
    fn openmetrics_only_when_asked_for() {
        assert_eq!(Exposition::negotiate(None), Exposition::Prometheus);
        assert_eq!(Exposition::negotiate(Some("*/*")), Exposition::Prometheus);
        assert_eq!(
            Exposition::negotiate(Some(
                "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
            )),
            Exposition::OpenMetrics
        );
    }
}
