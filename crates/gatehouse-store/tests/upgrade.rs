//! Upgrading a database that an earlier release filled: migration 0005
//! (deployment slots, admission, the risk officer flag) keeps every
//! deployment's history and liveness, admits the projects that held grants or
//! deployments, and its one-time task removes (on the record) the emergency
//! grants no administrator gave. Runs on SQLite and on the PostgreSQL server
//! of `TEST_POSTGRES_URL` (default postgres://postgres@127.0.0.1:5432/postgres).

use gatehouse_core::Timestamp;
use gatehouse_store::{Store, tasks};
use sqlx::{Connection, Executor, Row};

const T: i64 = 1_795_000_000_000_000;

async fn fill_as_release_4(store: &Store) {
    let mut c = store.conn().await.unwrap();
    let stmts = [
        "INSERT INTO users (id, username, is_admin, created_at, updated_at) VALUES (1, 'admin', 1, 1, 1)",
        "INSERT INTO users (id, username, is_admin, created_at, updated_at) VALUES (2, 'mark', 0, 1, 1)",
        "INSERT INTO projects (id, key, name, risk_tier, created_by, created_at, updated_at) VALUES (1, 'FRAUD', 'Fraud', 4, 'mark', 1, 1)",
        "INSERT INTO projects (id, key, name, risk_tier, created_by, created_at, updated_at) VALUES (2, 'CHURN', 'Churn', 3, 'mark', 1, 1)",
        "INSERT INTO projects (id, key, name, risk_tier, created_by, created_at, updated_at) VALUES (3, 'PRICING', 'Pricing', 1, 'mark', 1, 1)",
        "INSERT INTO infrastructures (id, name, kind, stage, policy, created_at, updated_at) VALUES (1, 'dev-api', 'api_node', 'dev', 'always', 1, 1)",
        "INSERT INTO infrastructures (id, name, kind, stage, policy, created_at, updated_at) VALUES (2, 'prod-api', 'api_node', 'prod', 'prevent', 1, 1)",
        "INSERT INTO infrastructures (id, name, kind, stage, policy, created_at, updated_at) VALUES (3, 'prod-batch', 'automation_node', 'prod', 'prevent', 1, 1)",
        // A normal grant by an owner, emergency grants by an owner and by an
        // admin, and a stage-wide grant.
        "INSERT INTO deploy_grants (project_id, infra_id, user_id, emergency, created_by, created_at) VALUES (1, 2, 2, 0, 'mark', 1)",
        "INSERT INTO deploy_grants (project_id, infra_id, user_id, emergency, created_by, created_at) VALUES (2, 2, 2, 1, 'mark', 1)",
        "INSERT INTO deploy_grants (project_id, infra_id, user_id, emergency, created_by, created_at) VALUES (1, 2, 2, 1, 'admin', 1)",
        "INSERT INTO deploy_grants (project_id, stage, user_id, emergency, created_by, created_at) VALUES (3, 'dev', 2, 0, 'mark', 1)",
        // dev-api: FRAUD's model, superseded by CHURN's (one slot per
        // infrastructure then). prod-batch: a bundle, live.
        "INSERT INTO deployments (id, infra_id, project_id, subject, kind, checked_stage, deployed_by, deployed_at, evidence, live, superseded_at) VALUES (1, 1, 1, 'version:FRAUD/fraud scorer 2/13', 'deploy', 'prod', 'mark', 10, '{}', 0, 20)",
        "INSERT INTO deployments (id, infra_id, project_id, subject, kind, checked_stage, deployed_by, deployed_at, evidence, live) VALUES (2, 1, 2, 'version:CHURN/churn-predictor/2', 'deploy', 'prod', 'mark', 20, '{}', 1)",
        "INSERT INTO deployments (id, infra_id, project_id, subject, kind, checked_stage, deployed_by, deployed_at, evidence, live) VALUES (3, 3, 1, 'bundle:FRAUD/fraud-v1.0', 'deploy', 'prod', 'mark', 30, '{}', 1)",
        // A live API token and a revoked one (migration 0006 gives the live
        // one an expiry 90 days after the migration).
        "INSERT INTO api_tokens (id, user_id, name, token_hash, created_at) VALUES (1, 2, 'ci', 'h1', 1)",
        "INSERT INTO api_tokens (id, user_id, name, token_hash, created_at, revoked_at) VALUES (2, 2, 'old', 'h2', 1, 2)",
    ];
    for s in stmts {
        c.execute(s).await.unwrap_or_else(|e| panic!("{s}: {e}"));
    }
}

async fn upgrade_story(url: &str) {
    let old = Store::connect_at_version(url, 4).await.unwrap();
    fill_as_release_4(&old).await;
    old.close().await;

    let store = Store::connect(url).await.unwrap();
    let mut c = store.conn().await.unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64;
    let expiry: Vec<(i64, Option<i64>)> =
        sqlx::query("SELECT id, expires_at FROM api_tokens ORDER BY id")
            .fetch_all(&mut *c)
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get("id"), r.get("expires_at")))
            .collect();
    let in_90_days = now + 90 * 86_400_000_000;
    assert!(
        matches!(expiry[0], (1, Some(e)) if (e - in_90_days).abs() < 3_600_000_000),
        "{expiry:?}"
    );
    assert_eq!(expiry[1], (2, None));
    let rows = sqlx::query("SELECT id, slot, live, superseded_at FROM deployments ORDER BY id")
        .fetch_all(&mut *c)
        .await
        .unwrap();
    let got: Vec<(i64, String, i64, Option<i64>)> = rows
        .iter()
        .map(|r| {
            (
                r.get("id"),
                r.get("slot"),
                r.get("live"),
                r.get("superseded_at"),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (1, "FRAUD/fraud scorer 2".to_owned(), 0, Some(20)),
            (2, "CHURN/churn-predictor".to_owned(), 1, None),
            (3, "FRAUD".to_owned(), 1, None),
        ]
    );
    let admitted = |name: &'static str| {
        let q =
            sqlx::query_scalar::<_, String>("SELECT admitted FROM infrastructures WHERE name = $1")
                .bind(name);
        async { q }
    };
    let mut admitted_of = Vec::new();
    for name in ["dev-api", "prod-api", "prod-batch"] {
        let text: String = admitted(name).await.fetch_one(&mut *c).await.unwrap();
        let list: Vec<String> = serde_json::from_str(&text).unwrap();
        admitted_of.push((name, list));
    }
    assert_eq!(
        admitted_of,
        vec![
            // Deployments, and the stage-wide dev grant of PRICING.
            (
                "dev-api",
                vec!["CHURN".into(), "FRAUD".into(), "PRICING".into()]
            ),
            // A normal grant and the admin's emergency grant; CHURN's only
            // right there was an emergency grant its owner gave: not admitted.
            ("prod-api", vec!["FRAUD".into()]),
            ("prod-batch", vec!["FRAUD".into()]),
        ]
    );
    let officer: i64 =
        sqlx::query_scalar("SELECT is_risk_officer FROM users WHERE username = 'mark'")
            .fetch_one(&mut *c)
            .await
            .unwrap();
    assert_eq!(officer, 0);
    drop(c);

    // The one-time task: the owner's emergency grant goes, on the record.
    let ran = tasks::run_pending(&store, Timestamp::from_micros(T))
        .await
        .unwrap();
    assert_eq!(
        ran,
        vec!["revoke_emergency_grants_not_by_admins".to_owned()]
    );
    let mut c = store.conn().await.unwrap();
    let left: Vec<(i64, String)> = sqlx::query(
        "SELECT project_id, created_by FROM deploy_grants WHERE emergency = 1 ORDER BY id",
    )
    .fetch_all(&mut *c)
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get("project_id"), r.get("created_by")))
    .collect();
    assert_eq!(left, vec![(1, "admin".to_owned())]);
    let events: Vec<(String, String, String)> =
        sqlx::query("SELECT actor, action, project FROM audit_events ORDER BY seq")
            .fetch_all(&mut *c)
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get("actor"), r.get("action"), r.get("project")))
            .collect();
    assert_eq!(
        events,
        vec![(
            "system".to_owned(),
            "deploy_grant.delete".to_owned(),
            "CHURN".to_owned()
        )]
    );
    drop(c);
    // Once only.
    let again = tasks::run_pending(&store, Timestamp::from_micros(T))
        .await
        .unwrap();
    assert!(again.is_empty());
    store.close().await;
}

#[tokio::test]
async fn upgrade_to_slots_and_admission_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("g.db").display());
    upgrade_story(&url).await;
}

#[tokio::test]
async fn upgrade_to_slots_and_admission_on_postgres() {
    let admin = std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    gatehouse_store::install_drivers();
    let mut a = sqlx::AnyConnection::connect(&admin)
        .await
        .expect("the PostgreSQL test server must be reachable (TEST_POSTGRES_URL)");
    // Leftovers of a crashed run.
    let old: Vec<String> = sqlx::query_scalar(
        "SELECT datname::text FROM pg_database WHERE datname LIKE 'gatehouse_upgrade_%'",
    )
    .fetch_all(&mut a)
    .await
    .unwrap();
    for db in old {
        a.execute(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE {db} WITH (FORCE)"
        )))
        .await
        .unwrap();
    }
    let name = format!("gatehouse_upgrade_{:016x}", rand::random::<u64>());
    a.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .unwrap();
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
    let url = format!("{base}/{name}");
    upgrade_story(&url).await;
    a.execute(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE {name} WITH (FORCE)"
    )))
    .await
    .unwrap();
}
