//! Fills a database with a long, valid audit chain by bulk SQL, for the
//! benchmark `scripts/bench-audit-verify` (not used by the server).
//!
//! usage: audit-fill DATABASE_URL EVENTS [CHECKPOINT_EVERY]
//!
//! The database is migrated first and must hold no events yet. Events get
//! realistic details (a version snapshot with metrics), valid hashes, and a
//! checkpoint every CHECKPOINT_EVERY (default 1000) signed with a fixed key
//! whose seed is 32 bytes of 0x2a.

use std::time::Instant;

use gatehouse_core::audit::{EventFields, GENESIS_HASH, canonical_json, event_hash};
use gatehouse_core::audit_key::AuditSigner;
use gatehouse_store::Store;
use serde_json::json;

/// Rows per INSERT statement (9 parameters each, well under SQLite's limit).
const BATCH: usize = 500;

struct Row {
    seq: i64,
    at: i64,
    actor: String,
    action: &'static str,
    project: Option<&'static str>,
    subject: String,
    details: String,
    prev_hash: String,
    hash: String,
}

fn usage() -> ! {
    eprintln!("usage: audit-fill DATABASE_URL EVENTS [CHECKPOINT_EVERY]");
    std::process::exit(2);
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(url), Some(n)) = (args.get(1), args.get(2).and_then(|n| n.parse::<i64>().ok()))
    else {
        usage()
    };
    let every: i64 = match args.get(3) {
        Some(e) => e.parse().unwrap_or_else(|_| usage()),
        None => 1000,
    };
    let started = Instant::now();
    let store = Store::connect(url).await?;
    let signer = AuditSigner::from_seed([42; 32]);
    let mut tx = store.pool().begin().await?;
    let existing: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events")
        .fetch_one(&mut *tx)
        .await?;
    if existing > 0 {
        return Err(format!("{url} already holds {existing} audit events").into());
    }
    sqlx::query(
        "INSERT INTO audit_keys (key_id, public_key, created_at) VALUES ($1, $2, 0) \
         ON CONFLICT (key_id) DO NOTHING",
    )
    .bind(signer.key_id())
    .bind(signer.public_key().to_hex())
    .execute(&mut *tx)
    .await?;

    let t0: i64 = 1_795_426_800_000_000;
    let mut prev = GENESIS_HASH.to_owned();
    let mut batch: Vec<Row> = Vec::with_capacity(BATCH);
    let mut checkpoints = Vec::new();
    for seq in 1..=n {
        let version = seq % 50 + 1;
        let details = canonical_json(&json!({
            "after": {
                "project": "FRAUD", "model": "fraud-scorer", "version": version,
                "artifact_uri": format!("s3://models/fraud/fraud-scorer/{version}/model.pkl"),
                "metrics": {"auc": 0.9 + (seq % 97) as f64 / 1000.0, "precision": 0.88},
                "tags": {"team": "fraud"}, "sensitivity": ["PII"],
            }
        }));
        let (actor, action) = if seq % 3 == 0 {
            ("alice".to_owned(), "version.update")
        } else {
            (format!("user{}", seq % 17), "version.register")
        };
        let subject = format!("version:FRAUD/fraud-scorer/{version}");
        let at = t0 + seq * 1_000;
        let hash = event_hash(
            &prev,
            &EventFields {
                seq,
                at_micros: at,
                actor: &actor,
                action,
                project: Some("FRAUD"),
                subject: &subject,
                details: &details,
            },
        );
        if every > 0 && seq % every == 0 {
            checkpoints.push(signer.sign(seq, &hash, at));
        }
        batch.push(Row {
            seq,
            at,
            actor,
            action,
            project: Some("FRAUD"),
            subject,
            details,
            prev_hash: std::mem::replace(&mut prev, hash.clone()),
            hash,
        });
        if batch.len() == BATCH || seq == n {
            insert(&mut tx, &batch).await?;
            batch.clear();
        }
    }
    for cp in &checkpoints {
        sqlx::query(
            "INSERT INTO audit_checkpoints (seq, hash, at, key_id, signature) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(cp.seq)
        .bind(&cp.hash)
        .bind(cp.at_micros)
        .bind(&cp.key_id)
        .bind(&cp.signature)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
        .bind(n)
        .bind(&prev)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    store.close().await;
    eprintln!(
        "audit-fill: {n} events, {} checkpoints, head {prev} in {:.1} s",
        checkpoints.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn insert(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    rows: &[Row],
) -> Result<(), sqlx::Error> {
    let mut sql = String::from(
        "INSERT INTO audit_events (seq, at, actor, action, project, subject, details, prev_hash, hash) VALUES ",
    );
    for i in 0..rows.len() {
        let b = i * 9;
        if i > 0 {
            sql.push(',');
        }
        sql.push_str(&format!(
            "(${},${},${},${},${},${},${},${},${})",
            b + 1,
            b + 2,
            b + 3,
            b + 4,
            b + 5,
            b + 6,
            b + 7,
            b + 8,
            b + 9
        ));
    }
    // Only placeholders are formatted into the text; every value is bound.
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for r in rows {
        q = q
            .bind(r.seq)
            .bind(r.at)
            .bind(r.actor.as_str())
            .bind(r.action)
            .bind(r.project)
            .bind(r.subject.as_str())
            .bind(r.details.as_str())
            .bind(r.prev_hash.as_str())
            .bind(r.hash.as_str());
    }
    q.execute(&mut **tx).await?;
    Ok(())
}
