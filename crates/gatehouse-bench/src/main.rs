//! REST load driver of `scripts/bench-mlflow`: the same MLflow Model Registry
//! calls against each server given, throughput and p50/p99 latency side by
//! side, as a markdown table on standard output.
//!
//! For each concurrency C (1 and 8 unless `--concurrency` says otherwise) and
//! each target in turn: one warm-up pass on a connection of its own (the 5
//! writes then the 5 reads on a model `warm-<hex>`, not counted); then C
//! workers, each with one persistent HTTP/1.1 keep-alive connection
//! (TCP_NODELAY). Each worker makes ITERATIONS times the 5 durable writes on
//! models of its own (create a registered model, create a version, set a
//! version tag, set an alias, update the version's description), waits until
//! every worker is done writing, then makes ITERATIONS times the 5 reads (get
//! the model, get the version, get the version by alias, search versions by
//! name, search models by name with the MLflow client's filter, prompt clause
//! included). Each call is timed from just before its request is sent to the
//! end of its response's body; a phase's calls per second are its calls over
//! the time from the earliest start to the latest end among the workers.
//!
//! Every worker runs on one single-threaded tokio runtime: the driver uses at
//! most one core, and little of it, so that the servers measured keep the
//! rest of the machine. A 500, 502, 503 or 504 is retried up to 4 times, as
//! the MLflow client does (the retries count in the call's time, and are
//! reported); any other status than 200 stops the run (exit status 1).

mod conn;

use std::hash::{BuildHasher, RandomState};
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use hyper::Method;
use serde_json::json;
use tokio::sync::Barrier;
use tokio::task::JoinSet;

use conn::{Args, Call, Conn, Target};

/// MLflow registry REST load driver (scripts/bench-mlflow).
#[derive(Parser)]
#[command(name = "mlflow-driver")]
struct Cli {
    /// Iterations of 5 writes, then of 5 reads, per worker.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    iterations: u32,
    /// Numbers of workers (keep-alive connections), comma-separated, run in turn.
    #[arg(long, value_delimiter = ',', default_value = "1,8", value_parser = clap::value_parser!(u32).range(1..))]
    concurrency: Vec<u32>,
    /// Servers to measure, in order, as NAME=URL[,TOKEN]; the last is the
    /// baseline of the ratio column.
    #[arg(required = true, value_name = "NAME=URL[,TOKEN]")]
    targets: Vec<String>,
}

/// 8 random hex digits, to name the models of a run.
fn random_hex() -> String {
    let n = RandomState::new().hash_one(Instant::now());
    format!("{:08x}", n as u32)
}

/// The 5 durable writes on model `name`.
fn writes(name: &str) -> [Call; 5] {
    [
        Call {
            method: Method::POST,
            path: "registered-models/create",
            args: Args::Json(json!({"name": name, "tags": [{"key": "team", "value": "bench"}]})),
        },
        Call {
            method: Method::POST,
            path: "model-versions/create",
            args: Args::Json(
                json!({"name": name, "source": format!("s3://bench/{name}/1"), "run_id": "r1"}),
            ),
        },
        Call {
            method: Method::POST,
            path: "model-versions/set-tag",
            args: Args::Json(
                json!({"name": name, "version": "1", "key": "validated", "value": "true"}),
            ),
        },
        Call {
            method: Method::POST,
            path: "registered-models/alias",
            args: Args::Json(json!({"name": name, "alias": "champion", "version": "1"})),
        },
        Call {
            method: Method::PATCH,
            path: "model-versions/update",
            args: Args::Json(json!({"name": name, "version": "1", "description": "benchmarked"})),
        },
    ]
}

/// The 5 reads of model `name`.
fn reads(name: &str) -> [Call; 5] {
    let query = |pairs: &[(&'static str, &str)]| {
        Args::Query(pairs.iter().map(|&(k, v)| (k, v.to_owned())).collect())
    };
    [
        Call {
            method: Method::GET,
            path: "registered-models/get",
            args: query(&[("name", name)]),
        },
        Call {
            method: Method::GET,
            path: "model-versions/get",
            args: query(&[("name", name), ("version", "1")]),
        },
        Call {
            method: Method::GET,
            path: "registered-models/alias",
            args: query(&[("name", name), ("alias", "champion")]),
        },
        Call {
            method: Method::GET,
            path: "model-versions/search",
            args: query(&[
                ("filter", &format!("name='{name}'")),
                ("max_results", "10000"),
            ]),
        },
        Call {
            method: Method::GET,
            path: "registered-models/search",
            args: query(&[
                (
                    "filter",
                    &format!("name = '{name}' AND tag.`mlflow.prompt.is_prompt` != 'true'"),
                ),
                ("max_results", "100"),
            ]),
        },
    ]
}

/// One worker's phase: when it started and ended, and each call's time.
struct Phase {
    start: Instant,
    end: Instant,
    timings: Vec<Duration>,
}

struct WorkerResult {
    writes: Phase,
    reads: Phase,
    retries: u64,
    reopened: u64,
}

async fn phase(conn: &mut Conn, names: &[String], calls: fn(&str) -> [Call; 5]) -> Result<Phase> {
    let start = Instant::now();
    let mut timings = Vec::with_capacity(names.len() * 5);
    for name in names {
        for call in calls(name) {
            timings.push(conn.call(&call).await?);
        }
    }
    Ok(Phase {
        start,
        end: Instant::now(),
        timings,
    })
}

async fn worker(
    target: Target,
    prefix: String,
    iterations: u32,
    barrier: Arc<Barrier>,
) -> Result<WorkerResult> {
    let mut conn = Conn::connect(&target).await?;
    let names: Vec<String> = (0..iterations).map(|i| format!("{prefix}-{i}")).collect();
    barrier.wait().await;
    let writes = phase(&mut conn, &names, writes).await?;
    barrier.wait().await;
    let reads = phase(&mut conn, &names, reads).await?;
    Ok(WorkerResult {
        writes,
        reads,
        retries: conn.retries,
        reopened: conn.reopened,
    })
}

/// A phase over all workers: calls, wall time, p50 and p99 per call.
struct Row {
    calls: usize,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
}

impl Row {
    fn new<'a>(phases: impl Iterator<Item = &'a Phase> + Clone) -> Result<Self> {
        let start = phases.clone().map(|p| p.start).min().context("no worker")?;
        let end = phases.clone().map(|p| p.end).max().context("no worker")?;
        let mut flat: Vec<Duration> = phases.flat_map(|p| p.timings.iter().copied()).collect();
        flat.sort_unstable();
        let n = flat.len();
        if n == 0 {
            bail!("no call timed");
        }
        let p50 = if n % 2 == 1 {
            flat[n / 2]
        } else {
            (flat[n / 2 - 1] + flat[n / 2]) / 2
        };
        // As Python's int(n * 0.99).
        let p99 = flat[(n - 1).min((n as f64 * 0.99) as usize)];
        Ok(Self {
            calls: n,
            elapsed: end - start,
            p50,
            p99,
        })
    }

    fn rate(&self) -> f64 {
        self.calls as f64 / self.elapsed.as_secs_f64()
    }
}

struct Measured {
    reads: Row,
    writes: Row,
    retries: u64,
    reopened: u64,
}

async fn run(target: &Target, concurrency: u32, iterations: u32) -> Result<Measured> {
    // One warm-up pass (connection, server caches), not counted.
    let mut warm = Conn::connect(target).await?;
    let name = format!("warm-{}", random_hex());
    for call in writes(&name).into_iter().chain(reads(&name)) {
        warm.call(&call).await?;
    }
    drop(warm);

    let run_id = random_hex();
    let barrier = Arc::new(Barrier::new(concurrency as usize));
    let mut workers = JoinSet::new();
    for w in 0..concurrency {
        let prefix = format!("rb-{run_id}-{w}");
        workers.spawn(worker(target.clone(), prefix, iterations, barrier.clone()));
    }
    let mut results = Vec::with_capacity(concurrency as usize);
    // The first failure stops the run; dropping the set aborts the others.
    while let Some(result) = workers.join_next().await {
        results.push(result.context("a worker panicked")??);
    }
    Ok(Measured {
        reads: Row::new(results.iter().map(|r| &r.reads))?,
        writes: Row::new(results.iter().map(|r| &r.writes))?,
        retries: results.iter().map(|r| r.retries).sum(),
        reopened: results.iter().map(|r| r.reopened).sum(),
    })
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

async fn drive(cli: Cli) -> Result<()> {
    let targets = cli
        .targets
        .iter()
        .map(|t| Target::parse(t))
        .collect::<Result<Vec<_>>>()?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "| calls | concurrency | server | calls | calls/s | p50 ms | p99 ms | Gatehouse ÷ MLflow (calls/s) |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|---|---|")?;
    out.flush()?;
    for &concurrency in &cli.concurrency {
        let mut measured = Vec::with_capacity(targets.len());
        for target in &targets {
            let m = run(target, concurrency, cli.iterations)
                .await
                .with_context(|| {
                    format!(
                        "{} ({}), concurrency {concurrency}",
                        target.name, target.authority
                    )
                })?;
            measured.push((target, m));
        }
        for (target, m) in &measured {
            if m.retries > 0 {
                writeln!(
                    out,
                    "({}, concurrency {concurrency}: {} calls retried after a 5xx)",
                    target.name, m.retries
                )?;
                out.flush()?;
            }
            if m.reopened > 0 {
                eprintln!(
                    "({}, concurrency {concurrency}: {} idle connections closed by the server, reopened)",
                    target.name, m.reopened
                );
            }
        }
        let last = measured.len() - 1;
        for (label, pick) in [
            ("reads", (|m| &m.reads) as fn(&Measured) -> &Row),
            ("durable writes", |m| &m.writes),
        ] {
            let base = pick(&measured[last].1).rate();
            for (i, (target, m)) in measured.iter().enumerate() {
                let row = pick(m);
                let ratio = if i == last {
                    String::new()
                } else {
                    format!("{:.0}×", row.rate() / base)
                };
                writeln!(
                    out,
                    "| {label} | {concurrency} | {} | {} | {:.0} | {} | {} | {ratio} |",
                    target.name,
                    row.calls,
                    row.rate(),
                    ms(row.p50),
                    ms(row.p99),
                )?;
                out.flush()?;
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")
        .and_then(|runtime| runtime.block_on(drive(cli)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mlflow-driver: {e:#}");
            ExitCode::FAILURE
        }
    }
}
