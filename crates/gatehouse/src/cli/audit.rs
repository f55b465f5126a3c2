//! `audit …` and `history`: read, verify and export the audit trail.
//!
//! `audit verify` works three ways: through the server (`GET /audit/verify`),
//! offline on the database itself (`--database`, read-only, no server needed),
//! or on a JSON Lines export (`--file`). All three feed the same streaming
//! verifier of `gatehouse_core::audit_verify`.

use std::io::{BufRead, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use clap::{Args, Subcommand, ValueEnum};
use gatehouse_api::PageOf;
use gatehouse_api::audit::{AuditEvent, PublicKeys, VerifyReport};
use gatehouse_core::Timestamp;
use gatehouse_core::audit::canonical_json;
use gatehouse_core::audit_key::{AuditPublicKey, Checkpoint};
use gatehouse_core::audit_verify::{ChainEvent, Failure, Summary, Verifier, VerifyOptions};
use gatehouse_store::audit::TrustedKeys;
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::Method;
use serde_json::{Value, json};

use super::ClientOpts;
use super::args::{PageArgs, Query};
use super::error::CliError;
use super::http::Api;
use super::output::{self, Col, col, sanitize, wide};

const EVENT_COLS: &[Col] = &[
    col("SEQ", "seq"),
    col("TIME", "time"),
    col("ACTOR", "actor"),
    col("ACTION", "action"),
    wide("SUBJECT", "subject", 48),
    wide("CHANGE", "change", 60),
];

const HISTORY_COLS: &[Col] = &[
    col("TIME", "time"),
    col("SEQ", "seq"),
    col("ACTOR", "actor"),
    col("ACTION", "action"),
    wide("CHANGE", "change", 100),
];

const CHECKPOINT_COLS: &[Col] = &[
    col("SEQ", "seq"),
    col("TIME", "time"),
    col("KEY", "key_id"),
    wide("HASH", "hash", 64),
];

const KEY_COLS: &[Col] = &[
    col("KEY ID", "key_id"),
    col("CREATED", "created_at"),
    col("RETIRED", "retired_at"),
    wide("PUBLIC KEY", "public_key", 64),
];

/// Events per request when exporting or reading a whole history.
const PAGE: u32 = 500;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// List audit events, newest first (admins and auditors; project owners with --project).
    Events {
        #[command(flatten)]
        filters: Filters,
        /// Oldest first
        #[arg(long)]
        oldest_first: bool,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Verify the hash chain and the signed checkpoints: through the server, or
    /// offline on the database (--database) or on a JSON Lines export (--file).
    /// Exit code 6 when the chain is broken.
    Verify(VerifyArgs),
    /// Export audit events, oldest first, as JSON Lines (verifiable with
    /// `audit verify --file`) or CSV.
    Export(ExportArgs),
    /// List the signed checkpoints, newest first.
    Checkpoints {
        #[command(flatten)]
        page: PageArgs,
    },
    /// Sign a checkpoint of the chain now (admins).
    Checkpoint,
    /// Show the public keys that sign checkpoints (current and retired).
    Keys,
}

/// Filters of `audit events` and `audit export`.
#[derive(Args, Clone, Default)]
pub struct Filters {
    /// Only events of this project
    #[arg(long, short = 'p', value_name = "KEY")]
    pub project: Option<String>,
    /// Only events about this subject, e.g. version:FRAUD/fraud-scorer/3
    #[arg(long, value_name = "SUBJECT")]
    pub subject: Option<String>,
    /// Only events by this user
    #[arg(long, value_name = "USERNAME")]
    pub actor: Option<String>,
    /// Only events of this action, e.g. version.register
    #[arg(long, value_name = "ACTION")]
    pub action: Option<String>,
    /// Only events at or after this time (RFC 3339, e.g. 2026-11-01T00:00:00Z)
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// Only events before this time (RFC 3339)
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,
}

impl Filters {
    fn query(&self) -> Result<Vec<(String, String)>, CliError> {
        for (flag, v) in [("--from", &self.from), ("--to", &self.to)] {
            if let Some(t) = v
                && Timestamp::parse_rfc3339(t).is_none()
            {
                return Err(CliError::input(format!(
                    "{flag} {t:?} is not an RFC 3339 time such as 2026-11-23T09:40:00Z"
                )));
            }
        }
        Ok(Query::default()
            .opt("project", self.project.clone())
            .opt("subject", self.subject.clone())
            .opt("actor", self.actor.clone())
            .opt("action", self.action.clone())
            .opt("from", self.from.clone())
            .opt("to", self.to.clone())
            .0)
    }
}

#[derive(Args)]
pub struct VerifyArgs {
    /// Verify the database directly, without a server: a SQLite file (path or
    /// sqlite:PATH) or a postgres:// URL. Opened read-only.
    #[arg(long, value_name = "PATH|URL", conflicts_with = "file")]
    pub database: Option<String>,
    /// Verify a JSON Lines export (`audit export --format jsonl`)
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// With --file: also check these signed checkpoints against the export
    /// (the JSON of `gatehouse audit checkpoints --all --json`); needs --public-key
    #[arg(long, value_name = "FILE", requires = "file")]
    pub checkpoints: Option<PathBuf>,
    /// Trust only this public key for checkpoint signatures (64 hex digits, or
    /// a file with them or a PEM public key; repeatable). With --database the
    /// default is the keys stored in the database; --checkpoints needs it.
    #[arg(long = "public-key", value_name = "KEY|FILE")]
    pub public_keys: Vec<String>,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Jsonl,
    Csv,
}

#[derive(Args)]
pub struct ExportArgs {
    /// jsonl: one event per line, with seq, prev_hash and hash; csv: a table
    #[arg(long, value_enum, default_value = "jsonl")]
    pub format: Format,
    #[command(flatten)]
    pub filters: Filters,
    /// Write here instead of standard output
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Args)]
pub struct HistoryArgs {
    /// What to show, e.g. version:FRAUD/fraud-scorer/3, bundle:FRAUD/v1, project:FRAUD, user:alice
    pub subject: String,
}

pub async fn audit(opts: &ClientOpts, cmd: AuditCommand) -> Result<(), CliError> {
    match cmd {
        AuditCommand::Verify(a) => verify(opts, a).await,
        AuditCommand::Export(a) => export(opts, a).await,
        AuditCommand::Events {
            filters,
            oldest_first,
            page,
        } => {
            let api = Api::from_opts(opts)?;
            let mut q = filters.query()?;
            if oldest_first {
                q.push(("order".into(), "asc".into()));
            }
            let mut answer = api.list(&["audit", "events"], &q, &page).await?;
            if !opts.json
                && let Some(items) = answer.get_mut("items").and_then(Value::as_array_mut)
            {
                for e in items.iter_mut() {
                    decorate(e);
                }
            }
            output::print_list(opts.json, &answer, EVENT_COLS);
            Ok(())
        }
        AuditCommand::Checkpoints { page } => {
            let api = Api::from_opts(opts)?;
            let mut answer = api.list(&["audit", "checkpoints"], &[], &page).await?;
            if !opts.json
                && let Some(items) = answer.get_mut("items").and_then(Value::as_array_mut)
            {
                for c in items.iter_mut() {
                    let t = short(c.get("at"));
                    c["time"] = Value::String(t);
                }
            }
            output::print_list(opts.json, &answer, CHECKPOINT_COLS);
            Ok(())
        }
        AuditCommand::Checkpoint => {
            let api = Api::from_opts(opts)?;
            let cp = api.post(&["audit", "checkpoints"], &json!({})).await?;
            output::print_object(
                opts.json,
                &cp,
                &["seq", "hash", "at", "key_id", "signature"],
            );
            Ok(())
        }
        AuditCommand::Keys => {
            let api = Api::from_opts(opts)?;
            let answer = api.get(&["audit", "public-key"]).await?;
            if opts.json {
                output::print_json(&answer);
            } else {
                let keys: PublicKeys = api.typed(&answer)?;
                output::print_list(false, &json!({ "items": answer["keys"] }), KEY_COLS);
                if let Some(id) = keys.current_key_id {
                    outln!("current: {}", sanitize(&id));
                }
            }
            Ok(())
        }
    }
}

/// `gatehouse history SUBJECT`: the subject's events, oldest first.
pub async fn history(opts: &ClientOpts, a: HistoryArgs) -> Result<(), CliError> {
    if a.subject.trim().is_empty() {
        return Err(CliError::input("the subject must not be empty"));
    }
    let api = Api::from_opts(opts)?;
    let q = vec![
        ("subject".to_string(), a.subject.clone()),
        ("order".to_string(), "asc".to_string()),
    ];
    let page = PageArgs {
        limit: Some(PAGE),
        cursor: None,
        all: true,
    };
    let mut answer = api.list(&["audit", "events"], &q, &page).await?;
    if opts.json {
        output::print_json(&answer);
        return Ok(());
    }
    let items = answer
        .get_mut("items")
        .and_then(Value::as_array_mut)
        .map(std::mem::take)
        .unwrap_or_default();
    if items.is_empty() {
        outln!("No events about {}.", sanitize(&a.subject));
        return Ok(());
    }
    outln!("History of {}:", sanitize(&a.subject));
    let rows: Vec<Value> = items
        .into_iter()
        .map(|mut e| {
            decorate(&mut e);
            e
        })
        .collect();
    out!("{}", output::table(&rows, HISTORY_COLS));
    Ok(())
}

/// `2026-11-23T09:40:00.123456Z` → `2026-11-23 09:40:00`.
fn short(v: Option<&Value>) -> String {
    let s = v.and_then(Value::as_str).unwrap_or("");
    match (s.get(..10), s.get(11..19)) {
        (Some(d), Some(t)) => sanitize(&format!("{d} {t}")),
        _ => sanitize(s),
    }
}

/// Adds `time` and a one-line `change` summary for tables.
fn decorate(e: &mut Value) {
    let time = short(e.get("at"));
    let change = summarize(e.get("details").unwrap_or(&Value::Null));
    e["time"] = Value::String(time);
    e["change"] = Value::String(change);
}

/// What an event changed: the fields that differ between `before` and `after`.
fn summarize(details: &Value) -> String {
    let before = details.get("before").and_then(Value::as_object);
    let after = details.get("after").and_then(Value::as_object);
    match (before, after) {
        (Some(b), Some(a)) => {
            let mut changed: Vec<String> = Vec::new();
            for (k, v) in a {
                if k == "updated_at" {
                    continue;
                }
                if b.get(k) != Some(v) {
                    changed.push(format!(
                        "{k}: {} → {}",
                        output::cell(b.get(k).unwrap_or(&Value::Null)),
                        output::cell(v)
                    ));
                }
            }
            if changed.is_empty() {
                "no field changed".into()
            } else {
                changed.join("; ")
            }
        }
        (None, Some(_)) => "created".into(),
        (Some(_), None) => "removed".into(),
        (None, None) => match details.as_object() {
            Some(m) if !m.is_empty() => output::cell(details),
            _ => String::new(),
        },
    }
}

async fn verify(opts: &ClientOpts, a: VerifyArgs) -> Result<(), CliError> {
    let (outcome, source) = if let Some(db) = &a.database {
        let url = database_url(db)?;
        let trusted = if a.public_keys.is_empty() {
            TrustedKeys::Stored
        } else {
            TrustedKeys::Only(
                a.public_keys
                    .iter()
                    .map(|k| parse_public_key(k))
                    .collect::<Result<_, _>>()?,
            )
        };
        let store = gatehouse_store::Store::connect_existing(&url)
            .await
            .map_err(|e| store_error(&url, e))?;
        let outcome = gatehouse_store::audit::verify(&store, &trusted)
            .await
            .map_err(|e| store_error(&url, e))?;
        store.close().await;
        (outcome, gatehouse_store::redact_url(&url))
    } else if let Some(file) = &a.file {
        let keys = a
            .public_keys
            .iter()
            .map(|k| parse_public_key(k))
            .collect::<Result<Vec<_>, _>>()?;
        let checkpoints = match &a.checkpoints {
            Some(path) if keys.is_empty() => {
                return Err(CliError::input(format!(
                    "--checkpoints {}: give the key(s) that signed them with --public-key",
                    path.display()
                )));
            }
            Some(path) => read_checkpoints(path)?,
            None if !keys.is_empty() => {
                return Err(CliError::input(
                    "--public-key with --file needs --checkpoints FILE",
                ));
            }
            None => Vec::new(),
        };
        (
            verify_file(file, keys, checkpoints)?,
            file.display().to_string(),
        )
    } else {
        if !a.public_keys.is_empty() {
            return Err(CliError::input(
                "--public-key applies to --database or --file with --checkpoints; \
                 the server verifies with its stored keys",
            ));
        }
        let api = Api::from_opts(opts)?;
        let report = api.get(&["audit", "verify"]).await?;
        let VerifyReport { ok, message, .. } = api.typed(&report)?;
        if opts.json {
            output::print_json(&report);
        } else if ok {
            outln!("{}", sanitize(&message));
        }
        if ok {
            return Ok(());
        }
        return Err(CliError::AuditBroken(format!(
            "{} ({})",
            message,
            api.server()
        )));
    };
    match outcome {
        Ok(s) => {
            if opts.json {
                output::print_json(&summary_json(&s));
            } else {
                outln!("{s}");
            }
            Ok(())
        }
        Err(f) => {
            if opts.json {
                output::print_json(&failure_json(&f));
            }
            Err(CliError::AuditBroken(format!("{f} ({source})")))
        }
    }
}

fn summary_json(s: &Summary) -> Value {
    json!({
        "ok": true, "message": s.to_string(), "events": s.events,
        "head_seq": s.head_seq, "head_hash": s.head_hash, "checkpoints": s.checkpoints,
        "failure": null,
    })
}

fn failure_json(f: &Failure) -> Value {
    json!({
        "ok": false, "message": f.to_string(), "events": 0,
        "head_seq": null, "head_hash": null, "checkpoints": null,
        "failure": {"seq": f.seq, "reason": f.reason.as_str(), "detail": f.detail},
    })
}

fn store_error(url: &str, e: gatehouse_store::StoreError) -> CliError {
    let url = gatehouse_store::redact_url(url);
    match e {
        gatehouse_store::StoreError::Unavailable(why) => CliError::Unreachable {
            server: url,
            reason: why,
        },
        other => CliError::other(format!("{url}: {other}")),
    }
}

/// `--database`: a URL as is, or a SQLite file that must exist.
fn database_url(db: &str) -> Result<String, CliError> {
    if db.starts_with("postgres://") || db.starts_with("postgresql://") {
        return Ok(db.to_string());
    }
    let path = db.strip_prefix("sqlite:").unwrap_or(db);
    let path = path.strip_prefix("//").unwrap_or(path);
    let file = path.split('?').next().unwrap_or("");
    if file.is_empty() || !Path::new(file).is_file() {
        return Err(CliError::input(format!(
            "--database {db:?}: no such SQLite file (give a path, sqlite:PATH or a postgres:// URL)"
        )));
    }
    Ok(format!("sqlite:{path}"))
}

/// `--public-key`: 64 hex digits, or a file holding them or a PEM public key.
fn parse_public_key(raw: &str) -> Result<AuditPublicKey, CliError> {
    if let Ok(k) = AuditPublicKey::parse_hex(raw) {
        return Ok(k);
    }
    let bad = |why: &str| CliError::input(format!("--public-key {raw:?}: {why}"));
    let text = std::fs::read_to_string(raw)
        .map_err(|_| bad("neither 64 hex digits nor a readable file"))?;
    if let Ok(k) = AuditPublicKey::parse_hex(&text) {
        return Ok(k);
    }
    let body: String = text
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .concat();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .map_err(|_| bad("the file holds neither hex nor a PEM public key"))?;
    // An Ed25519 SubjectPublicKeyInfo is a 12-byte header and the 32-byte key.
    let key: [u8; 32] = der
        .get(12..)
        .filter(|_| der.len() == 44 && der.starts_with(&[0x30, 0x2a, 0x30, 0x05]))
        .and_then(|k| k.try_into().ok())
        .ok_or_else(|| bad("the PEM block is not an Ed25519 public key"))?;
    AuditPublicKey::from_bytes(key).map_err(|e| bad(&e.message))
}

/// One exported line as a chain event.
fn line_event(n: usize, line: &str) -> Result<ChainEvent, CliError> {
    let bad = |why: String| CliError::input(format!("line {n}: {why}"));
    let v: Value = serde_json::from_str(line).map_err(|e| bad(format!("not JSON: {e}")))?;
    let text = |k: &str| -> Result<String, CliError> {
        v.get(k)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| bad(format!("no text field {k:?}")))
    };
    let at = text("at")?;
    let at_micros = Timestamp::parse_rfc3339(&at)
        .ok_or_else(|| bad(format!("\"at\" {at:?} is not an RFC 3339 time")))?
        .as_micros();
    let project = match v.get("project") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(bad("\"project\" must be text or null".into())),
    };
    Ok(ChainEvent {
        seq: v
            .get("seq")
            .and_then(Value::as_i64)
            .ok_or_else(|| bad("no integer field \"seq\"".into()))?,
        at_micros,
        actor: text("actor")?,
        action: text("action")?,
        project,
        subject: text("subject")?,
        details: canonical_json(
            v.get("details")
                .ok_or_else(|| bad("no field \"details\"".into()))?,
        ),
        prev_hash: text("prev_hash")?,
        hash: text("hash")?,
    })
}

/// Checkpoints from a file: the answer of `GET /audit/checkpoints` (with
/// `items`) or a plain array, oldest or newest first.
fn read_checkpoints(path: &Path) -> Result<Vec<Checkpoint>, CliError> {
    let bad = |why: String| CliError::input(format!("--checkpoints {}: {why}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
    let items = v
        .get("items")
        .unwrap_or(&v)
        .as_array()
        .ok_or_else(|| bad("expected {\"items\": [...]} or a JSON array".into()))?;
    let mut out = Vec::with_capacity(items.len());
    for (i, c) in items.iter().enumerate() {
        let text = |k: &str| {
            c.get(k)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| bad(format!("checkpoint {i}: no text field {k:?}")))
        };
        let at = text("at")?;
        out.push(Checkpoint {
            seq: c
                .get("seq")
                .and_then(Value::as_i64)
                .ok_or_else(|| bad(format!("checkpoint {i}: no integer field \"seq\"")))?,
            hash: text("hash")?,
            at_micros: Timestamp::parse_rfc3339(&at)
                .ok_or_else(|| bad(format!("checkpoint {i}: \"at\" is not an RFC 3339 time")))?
                .as_micros(),
            key_id: text("key_id")?,
            signature: text("signature")?,
        });
    }
    out.sort_by_key(|c| c.seq);
    Ok(out)
}

/// Verifies a JSON Lines export, one line at a time. A file that starts after
/// seq 1 (an export of a time range) is verified from its first event on;
/// checkpoints below its start are not checked.
fn verify_file(
    path: &Path,
    keys: Vec<AuditPublicKey>,
    checkpoints: Vec<Checkpoint>,
) -> Result<Result<Summary, Failure>, CliError> {
    let f = std::fs::File::open(path)
        .map_err(|e| CliError::input(format!("cannot open {}: {e}", path.display())))?;
    let mut verifier: Option<Verifier> = None;
    for (i, line) in std::io::BufReader::new(f).lines().enumerate() {
        let line =
            line.map_err(|e| CliError::other(format!("cannot read {}: {e}", path.display())))?;
        if line.trim().is_empty() {
            continue;
        }
        let ev = line_event(i + 1, &line)?;
        let v = match &mut verifier {
            Some(v) => v,
            None => {
                let start_after = (ev.seq > 1).then(|| (ev.seq - 1, ev.prev_hash.clone()));
                let mut v = Verifier::new(
                    keys.clone(),
                    VerifyOptions {
                        start_after,
                        head: None,
                    },
                );
                for c in checkpoints.iter().filter(|c| c.seq >= ev.seq) {
                    if let Err(f) = v.checkpoint(c.clone()) {
                        return Ok(Err(f));
                    }
                }
                verifier.insert(v)
            }
        };
        if let Err(f) = v.event(ev) {
            return Ok(Err(f));
        }
    }
    let v = match verifier {
        Some(v) => v,
        None => {
            let mut v = Verifier::new(keys, VerifyOptions::default());
            for c in checkpoints {
                if let Err(f) = v.checkpoint(c) {
                    return Ok(Err(f));
                }
            }
            v
        }
    };
    Ok(v.finish())
}

/// CSV field, quoted when needed (RFC 4180).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

const CSV_HEADER: &str = "seq,at,actor,action,project,subject,details,prev_hash,hash";

fn csv_line(e: &Value) -> String {
    let text = |k: &str| match e.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    let details = e.get("details").map(canonical_json).unwrap_or_default();
    [
        text("seq"),
        text("at"),
        text("actor"),
        text("action"),
        text("project"),
        text("subject"),
        details,
        text("prev_hash"),
        text("hash"),
    ]
    .iter()
    .map(|f| csv_field(f))
    .collect::<Vec<_>>()
    .join(",")
}

/// Progress of an export on standard error (`indicatif`), only on a terminal.
struct Progress {
    bar: Option<ProgressBar>,
}

/// With the newest seq the export will reach: a bar of seqs.
const BAR_TEMPLATE: &str = "[{bar:30}] {percent:>3}%  {msg}  seq {pos}/{len}  {elapsed}";
/// Without it (nothing matched when the export started): a spinner.
const SPINNER_TEMPLATE: &str = "{spinner} {msg}  seq {pos}  {elapsed}";

impl Progress {
    /// `last_seq`: the newest seq the export will reach (from the first,
    /// newest-first request).
    fn new(last_seq: Option<i64>) -> Self {
        if !std::io::stderr().is_terminal() {
            return Self { bar: None };
        }
        let bar = match last_seq
            .and_then(|s| u64::try_from(s).ok())
            .filter(|&s| s > 0)
        {
            Some(total) => ProgressBar::new(total).with_style(
                ProgressStyle::with_template(BAR_TEMPLATE)
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("#>-"),
            ),
            None => ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template(SPINNER_TEMPLATE)
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            ),
        };
        Self { bar: Some(bar) }
    }

    fn update(&self, done: u64, seq: i64) {
        let Some(bar) = &self.bar else { return };
        let seq = u64::try_from(seq).unwrap_or(0);
        // Events appended while the export runs take it past the first newest seq.
        if bar.length().is_some_and(|len| seq > len) {
            bar.set_length(seq);
        }
        bar.set_position(seq);
        bar.set_message(format!("{done} events"));
    }

    fn finish(&self, done: u64, seq: i64, to: &str) {
        let Some(bar) = &self.bar else { return };
        self.update(done, seq);
        bar.finish();
        errln!(
            "exported {done} events to {to} in {:.1} s",
            bar.elapsed().as_secs_f64()
        );
    }
}

async fn export(opts: &ClientOpts, a: ExportArgs) -> Result<(), CliError> {
    let api = Api::from_opts(opts)?;
    let filters = a.filters.query()?;
    // The newest matching event, to show how far the export has come.
    let mut newest_q = filters.clone();
    newest_q.push(("limit".into(), "1".into()));
    let newest = api
        .send(Method::GET, &["audit", "events"], &newest_q, None, true)
        .await?
        .unwrap_or_default();
    let newest: PageOf<AuditEvent> = api.typed(&newest)?;
    let last_seq = newest.items.first().map(|e| e.seq);
    let (mut out, to): (Box<dyn Write>, String) = match &a.output {
        Some(p) => {
            let f = std::fs::File::create(p)
                .map_err(|e| CliError::other(format!("cannot create {}: {e}", p.display())))?;
            (Box::new(BufWriter::new(f)), p.display().to_string())
        }
        None => (
            Box::new(BufWriter::new(std::io::stdout().lock())),
            "standard output".into(),
        ),
    };
    let write_err = |e: std::io::Error| CliError::other(format!("cannot write to {to}: {e}"));
    if matches!(a.format, Format::Csv) {
        writeln!(out, "{CSV_HEADER}").map_err(write_err)?;
    }
    let progress = Progress::new(last_seq);
    let (mut done, mut seq) = (0u64, 0i64);
    let mut cursor: Option<String> = None;
    loop {
        let mut q = filters.clone();
        q.push(("order".into(), "asc".into()));
        q.push(("limit".into(), PAGE.to_string()));
        if let Some(c) = &cursor {
            q.push(("cursor".into(), c.clone()));
        }
        let page = api
            .send(Method::GET, &["audit", "events"], &q, None, true)
            .await?
            .unwrap_or_default();
        let typed: PageOf<AuditEvent> = api.typed(&page)?;
        let items = page["items"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        for (e, event) in items.iter().zip(&typed.items) {
            let line = match a.format {
                Format::Jsonl => e.to_string(),
                Format::Csv => csv_line(e),
            };
            match writeln!(out, "{line}") {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
                other => other.map_err(write_err)?,
            }
            done += 1;
            seq = event.seq;
        }
        progress.update(done, seq);
        match typed.next_cursor {
            Some(next) if !next.is_empty() && cursor.as_deref() != Some(next.as_str()) => {
                cursor = Some(next);
            }
            _ => break,
        }
    }
    match out.flush() {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
        other => other.map_err(write_err)?,
    }
    progress.finish(done, seq, &to);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_templates_parse() {
        for t in [BAR_TEMPLATE, SPINNER_TEMPLATE] {
            assert!(ProgressStyle::with_template(t).is_ok(), "{t}");
        }
    }

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\"\n"), "\"say \"\"hi\"\"\n\"");
        let line = csv_line(&json!({"seq": 3, "at": "t", "actor": "a", "action": "x.y",
            "project": null, "subject": "s", "details": {"b": 1, "a": "q,\"r\""}, "prev_hash": "p", "hash": "h"}));
        assert_eq!(line, r#"3,t,a,x.y,,s,"{""a"":""q,\""r\"""",""b"":1}",p,h"#);
    }

    #[test]
    fn changes_are_summarised() {
        assert_eq!(summarize(&json!({"after": {"a": 1}})), "created");
        assert_eq!(
            summarize(
                &json!({"before": {"a": 1, "b": 2, "updated_at": "x"}, "after": {"a": 1, "b": 3, "updated_at": "y"}})
            ),
            "b: 2 → 3"
        );
        assert_eq!(summarize(&json!({"before": {"a": 1}})), "removed");
        assert_eq!(summarize(&json!({})), "");
    }

    #[test]
    fn database_arguments_are_checked() {
        assert_eq!(
            database_url("postgres://u@h/db").unwrap(),
            "postgres://u@h/db"
        );
        assert!(database_url("/no/such/file.db").is_err());
        assert!(database_url("").is_err());
    }

    #[test]
    fn public_keys_parse_from_hex_and_pem() {
        let hex = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
        let k = parse_public_key(hex).unwrap();
        let dir = std::env::temp_dir().join(format!("gh-pk-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pem = dir.join("k.pem");
        std::fs::write(
            &pem,
            "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n-----END PUBLIC KEY-----\n",
        )
        .unwrap();
        assert_eq!(
            parse_public_key(pem.to_str().unwrap()).unwrap().key_id(),
            k.key_id()
        );
        assert!(parse_public_key("xyz").is_err());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn export_lines_become_chain_events() {
        let line = r#"{"seq":2,"at":"2026-11-23T09:40:00.000001Z","actor":"a","action":"x","project":null,"subject":"s","details":{"b":0.1,"a":[1e-7]},"prev_hash":"p","hash":"h"}"#;
        let e = line_event(1, line).unwrap();
        assert_eq!(e.at_micros, 1_795_426_800_000_001);
        assert_eq!(e.details, r#"{"a":[1e-7],"b":0.1}"#);
        assert!(line_event(1, "{").is_err());
        assert!(line_event(1, r#"{"seq":1}"#).is_err());
    }
}
