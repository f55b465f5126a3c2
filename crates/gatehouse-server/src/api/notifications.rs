//! Notifications: the caller's preferences, dead letters and the delivery
//! log (administrators), webhooks (administrators and project owners), test
//! messages.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use gatehouse_api::notifications::{
    CreateWebhook, Delivery, DeliveryAttempt, DeliveryDetail, DeliveryList, NotificationPrefs,
    TestNotification, Webhook, WebhookList,
};
use gatehouse_core::authz;
use gatehouse_core::notify::{Channel, DeliveryState, EventKind, Notice, WebhookFormat};
use gatehouse_store::notifications::{self as store, NewWebhook, Prefs, WebhookRight};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Problems, created};
use crate::app::AppState;
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery};

fn delivery(d: store::Delivery) -> Delivery {
    Delivery {
        id: d.id,
        channel: d.channel,
        target: d.target,
        webhook_id: d.webhook_id,
        event_id: d.event_id,
        kind: d.kind,
        project: d.project,
        subject: d.notice.subject,
        summary: d.notice.summary,
        state: d.state,
        attempts: d.attempts,
        last_error: d.last_error,
        created_at: d.created_at,
        delivered_at: d.delivered_at,
    }
}

fn webhook(w: store::Webhook) -> Webhook {
    Webhook {
        id: w.id,
        url: w.url,
        kinds: w.kinds,
        projects: w.projects,
        format: w.format,
        created_by: w.created_by,
        created_at: w.created_at,
    }
}

/// The caller's notification preferences.
#[utoipa::path(get, path = "/api/v1/me/notifications", tag = "notifications",
    responses((status = 200, body = NotificationPrefs), Problems))]
async fn get_prefs(
    State(state): State<AppState>,
    auth: Auth,
) -> ApiResult<Json<NotificationPrefs>> {
    let mut conn = state.store.conn().await?;
    let p = store::prefs(&mut conn, auth.0.username.as_str()).await?;
    Ok(Json(NotificationPrefs {
        muted: p.muted,
        subscriptions: p.subscriptions,
        digest: p.digest,
    }))
}

/// Replace the caller's notification preferences.
#[utoipa::path(put, path = "/api/v1/me/notifications", tag = "notifications",
    request_body = NotificationPrefs,
    responses((status = 200, body = NotificationPrefs), Problems))]
async fn put_prefs(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<NotificationPrefs>,
) -> ApiResult<Json<NotificationPrefs>> {
    if body.subscriptions.len() > 100 {
        return Err(ApiError::invalid("subscriptions", "at most 100 projects"));
    }
    let ctx = auth.ctx(&state);
    let mut tx = state.store.begin().await?;
    let p = store::set_prefs(
        &mut tx,
        &ctx,
        &Prefs {
            muted: body.muted,
            subscriptions: body.subscriptions,
            digest: body.digest,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Json(NotificationPrefs {
        muted: p.muted,
        subscriptions: p.subscriptions,
        digest: p.digest,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    /// Only deliveries with an id below this (the next page).
    #[param(minimum = 1)]
    pub before: Option<i64>,
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

fn limit(q: &DeliveryQuery) -> ApiResult<i64> {
    match q.limit {
        None => Ok(100),
        Some(n) if (1..=500).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::invalid(
            "limit",
            "limit must be between 1 and 500",
        )),
    }
}

/// Dead letters: deliveries parked after their last attempt (administrators).
#[utoipa::path(get, path = "/api/v1/notifications/dead", tag = "notifications",
    params(DeliveryQuery), responses((status = 200, body = DeliveryList), Problems))]
async fn list_dead(
    State(state): State<AppState>,
    auth: Auth,
    ApiQuery(q): ApiQuery<DeliveryQuery>,
) -> ApiResult<Json<DeliveryList>> {
    authz::admin(&auth.0)?;
    let mut conn = state.store.conn().await?;
    let rows = store::list(
        &mut conn,
        Some(DeliveryState::Dead),
        None,
        q.before,
        limit(&q)?,
    )
    .await?;
    Ok(Json(DeliveryList {
        items: rows.into_iter().map(delivery).collect(),
    }))
}

async fn detail(state: &AppState, id: i64) -> ApiResult<DeliveryDetail> {
    let mut conn = state.store.conn().await?;
    let (d, attempts) = store::get(&mut conn, id).await?;
    Ok(DeliveryDetail {
        delivery: delivery(d),
        attempt_log: attempts
            .into_iter()
            .map(|a| DeliveryAttempt {
                at: a.at,
                status: a.status,
                response_code: a.response_code,
                error: a.error,
            })
            .collect(),
    })
}

/// One delivery with every attempt (administrators).
#[utoipa::path(get, path = "/api/v1/notifications/{id}", tag = "notifications",
    params(("id" = i64, Path, minimum = 1)),
    responses((status = 200, body = DeliveryDetail), Problems))]
async fn get_delivery(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<DeliveryDetail>> {
    authz::admin(&auth.0)?;
    Ok(Json(detail(&state, id).await?))
}

/// Put a dead letter back in the queue, due now (administrators).
#[utoipa::path(post, path = "/api/v1/notifications/{id}/retry", tag = "notifications",
    params(("id" = i64, Path, minimum = 1)),
    responses((status = 200, body = Delivery), Problems))]
async fn retry(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Delivery>> {
    let right = authz::admin(&auth.0)?;
    let ctx = auth.ctx(&state);
    let mut tx = state.store.begin().await?;
    let d = store::retry(&mut tx, &right, &ctx, id).await?;
    tx.commit().await?;
    Ok(Json(delivery(d)))
}

/// Queue a test message to an e-mail address or a webhook (administrators);
/// follow it with `GET /api/v1/notifications/{id}`.
#[utoipa::path(post, path = "/api/v1/notifications/test", tag = "notifications",
    request_body = TestNotification,
    responses((status = 201, body = Delivery), Problems))]
async fn send_test(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<TestNotification>,
) -> ApiResult<Response> {
    let right = authz::admin(&auth.0)?;
    let (channel, target) = match (&body.email, body.webhook) {
        (Some(e), None) if e.contains('@') && e.len() <= 320 => {
            (Channel::Email, e.trim().to_owned())
        }
        (Some(_), None) => return Err(ApiError::invalid("email", "not an e-mail address")),
        (None, Some(id)) => (Channel::Webhook, id.to_string()),
        _ => {
            return Err(ApiError::invalid(
                "email",
                "give exactly one of email and webhook",
            ));
        }
    };
    let ctx = auth.ctx(&state);
    let notice = Notice {
        kind: EventKind::Test,
        project: String::new(),
        subject: "test".into(),
        stage: None,
        actor: ctx.actor_name().to_owned(),
        summary: format!("{} sent a test message from Gatehouse", ctx.actor_name()),
        comment: String::new(),
        link: "/".into(),
        at: ctx.now.to_rfc3339(),
    };
    let mut tx = state.store.begin().await?;
    let id = store::send_test(&mut tx, &right, &ctx, channel, &target, &notice).await?;
    tx.commit().await?;
    Ok(created(detail(&state, id).await?.delivery))
}

/// Webhooks: all for administrators, their own for others.
#[utoipa::path(get, path = "/api/v1/webhooks", tag = "notifications",
    responses((status = 200, body = WebhookList), Problems))]
async fn list_webhooks(State(state): State<AppState>, auth: Auth) -> ApiResult<Json<WebhookList>> {
    let mut conn = state.store.conn().await?;
    let hooks = store::webhooks(&mut conn, &auth.0).await?;
    Ok(Json(WebhookList {
        items: hooks.into_iter().map(webhook).collect(),
    }))
}

/// Register a webhook (administrators; project owners for their projects).
/// The URL must be http or https on a host of the server's allow-list.
#[utoipa::path(post, path = "/api/v1/webhooks", tag = "notifications",
    request_body = CreateWebhook,
    responses((status = 201, body = Webhook), Problems))]
async fn create_webhook(
    State(state): State<AppState>,
    auth: Auth,
    ApiJson(body): ApiJson<CreateWebhook>,
) -> ApiResult<Response> {
    let projects = body.projects.unwrap_or_default();
    let kinds = body.kinds.unwrap_or_default();
    if projects.len() > 100 {
        return Err(ApiError::invalid("projects", "at most 100 projects"));
    }
    let secret = body.secret.trim().to_owned();
    if !(16..=200).contains(&secret.chars().count()) {
        return Err(ApiError::invalid(
            "secret",
            "the secret must be 16 to 200 characters",
        ));
    }
    if body.url.len() > 2000 {
        return Err(ApiError::invalid("url", "at most 2000 characters"));
    }
    state
        .notifier
        .webhook_policy()
        .check_url(&body.url)
        .map_err(|e| ApiError::invalid("url", e))?;
    let mut conn = state.store.conn().await?;
    let admin = authz::admin(&auth.0);
    let right = match &admin {
        Ok(a) => WebhookRight::Admin(a),
        Err(denied) => {
            if projects.is_empty() {
                return Err(ApiError::from(authz::Denied(format!(
                    "{}; a project owner names the projects of the webhook",
                    denied.0
                ))));
            }
            let mut rights = Vec::new();
            for p in &projects {
                let role =
                    gatehouse_store::projects::role_of(&mut conn, p, auth.0.username.as_str())
                        .await?;
                rights.push(authz::own(&auth.0, p, role)?);
            }
            WebhookRight::Owner(rights)
        }
    };
    drop(conn);
    let ctx = auth.ctx(&state);
    let mut tx = state.store.begin().await?;
    let w = store::create_webhook(
        &mut tx,
        &right,
        &ctx,
        &NewWebhook {
            url: body.url,
            kinds,
            projects,
            secret,
            format: body.format.unwrap_or(WebhookFormat::Json),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(created(webhook(w)))
}

/// Remove a webhook (its creator or an administrator).
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "notifications",
    params(("id" = i64, Path, minimum = 1)),
    responses((status = 204, description = "Removed"), Problems))]
async fn delete_webhook(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    let ctx = auth.ctx(&state);
    let mut tx = state.store.begin().await?;
    store::remove_webhook(&mut tx, &ctx, id).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A webhook's deliveries, newest first (its creator or an administrator).
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", tag = "notifications",
    params(("id" = i64, Path, minimum = 1), DeliveryQuery),
    responses((status = 200, body = DeliveryList), Problems))]
async fn webhook_deliveries(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<DeliveryQuery>,
) -> ApiResult<Json<DeliveryList>> {
    let mut conn = state.store.conn().await?;
    let w = store::webhook(&mut conn, id).await?;
    if !auth.0.is_admin && w.created_by != auth.0.username.as_str() {
        return Err(ApiError::from(authz::Denied(format!(
            "webhook {id} belongs to '{}'",
            w.created_by
        ))));
    }
    let rows = store::list(&mut conn, None, Some(id), q.before, limit(&q)?).await?;
    Ok(Json(DeliveryList {
        items: rows.into_iter().map(delivery).collect(),
    }))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_prefs, put_prefs))
        .routes(routes!(list_dead))
        .routes(routes!(send_test))
        .routes(routes!(get_delivery))
        .routes(routes!(retry))
        .routes(routes!(list_webhooks, create_webhook))
        .routes(routes!(delete_webhook))
        .routes(routes!(webhook_deliveries))
}
