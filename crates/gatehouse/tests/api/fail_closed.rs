use gatehouse_store::Backend;
use serde_json::json;
use sqlx::AssertSqlSafe;

use crate::helpers::*;

/// If the audit event cannot be written, the change is not made either.
#[tokio::test]
async fn a_change_whose_audit_event_fails_is_rolled_back() {
    let app = spawn_app().await;
    let statements: &[&str] = match app.store.backend() {
        Backend::Sqlite => &["CREATE TRIGGER audit_closed BEFORE INSERT ON audit_events \
             BEGIN SELECT RAISE(ABORT, 'audit closed'); END;"],
        Backend::Postgres => &[
            "CREATE FUNCTION audit_closed() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'audit closed'; END $$;",
            "CREATE TRIGGER audit_closed BEFORE INSERT ON audit_events \
             FOR EACH ROW EXECUTE FUNCTION audit_closed();",
        ],
    };
    for sql in statements {
        sqlx::raw_sql(AssertSqlSafe(*sql))
            .execute(app.store.pool())
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    let audit_before = app.count("audit_events").await;
    let head_before: i64 = sqlx::query_scalar("SELECT seq FROM audit_head WHERE id = 1")
        .fetch_one(app.store.pool())
        .await
        .unwrap();

    let r = app
        .post("/projects", json!({"key": "LOST", "name": "Never written"}))
        .await;
    r.problem(500, "internal");
    assert!(
        !r.body.to_string().contains("audit closed"),
        "storage details leak to the client: {}",
        r.body
    );

    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM projects WHERE key = 'LOST'")
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    assert_eq!(rows, 0, "the project was written without its audit event");
    assert_eq!(app.count("project_members").await, 0);
    assert_eq!(app.count("audit_events").await, audit_before);
    let head_after: i64 = sqlx::query_scalar("SELECT seq FROM audit_head WHERE id = 1")
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    assert_eq!(head_after, head_before);
    app.get("/projects/LOST").await.problem(404, "not_found");
}

/// A checkpoint is signed in the transaction of the event that reaches it: if
/// it cannot be written, neither is the event nor the change.
#[tokio::test]
async fn a_change_whose_checkpoint_fails_is_rolled_back() {
    let app = spawn_app_with(AppOptions {
        audit_checkpoint_every: 1,
        ..Default::default()
    })
    .await;
    let statements: &[&str] = match app.store.backend() {
        Backend::Sqlite => &[
            "CREATE TRIGGER checkpoints_closed BEFORE INSERT ON audit_checkpoints \
             BEGIN SELECT RAISE(ABORT, 'checkpoints closed'); END;",
        ],
        Backend::Postgres => &[
            "CREATE FUNCTION checkpoints_closed() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'checkpoints closed'; END $$;",
            "CREATE TRIGGER checkpoints_closed BEFORE INSERT ON audit_checkpoints \
             FOR EACH ROW EXECUTE FUNCTION checkpoints_closed();",
        ],
    };
    for sql in statements {
        sqlx::raw_sql(AssertSqlSafe(*sql))
            .execute(app.store.pool())
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    let before = app.snapshot().await;
    app.post("/groups", json!({"name": "never"}))
        .await
        .problem(500, "internal");
    app.post("/audit/checkpoints", json!({}))
        .await
        .problem(500, "internal");
    let after = app.snapshot().await;
    app.assert_unchanged(&before, &after, "a change without its checkpoint");
}
