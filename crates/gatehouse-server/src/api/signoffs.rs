//! Sign-offs of model versions and bundles, per stage (`DESIGN.md` §3), and the
//! reviews waiting on the caller. Each command answers with the whole sign-off
//! and its revision as `ETag`; `If-Match` makes a command conditional.

use axum::Json;
use axum::extract::State;
use axum::http::header::ETAG;
use axum::response::{IntoResponse, Response};
use gatehouse_api::signoffs::{
    Decide, DelegateSlot, GiveFeedback, Governance, RequestReview, ResetSignoff,
};
use gatehouse_api::signoffs::{PendingReview, SignoffView};
use gatehouse_core::inventory::{DESCRIPTION_MAX, check_text};
use gatehouse_core::signoff::{Command, Decision, SlotId, Verdict};
use gatehouse_core::{BundleTag, ErrorCode, ModelName, ProjectKey, Subject};
use gatehouse_store::signoffs;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::roles::parse_stage;
use super::{PageOf, PageParams, Problems, Shape, links_for, shape_all};
use crate::app::AppState;
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery, IfMatch};
use crate::metrics::{CommandOutcome, SignoffCommand};

/// A command body as the core command it asks for.
pub(crate) trait Input {
    fn input(self) -> ApiResult<Command>;
}

fn comment(c: Option<String>) -> ApiResult<String> {
    let c = c.unwrap_or_default();
    check_text("comment", &c, DESCRIPTION_MAX)?;
    Ok(c)
}

impl Input for RequestReview {
    fn input(self) -> ApiResult<Command> {
        Ok(Command::request_review(
            self.notify_reviewers.unwrap_or(false),
        ))
    }
}

impl Input for GiveFeedback {
    fn input(self) -> ApiResult<Command> {
        let verdict = Verdict::parse(&self.verdict).ok_or_else(|| {
            ApiError::invalid(
                "verdict",
                format!(
                    "unknown verdict {:?}; use one of {}",
                    self.verdict,
                    Verdict::choices()
                ),
            )
        })?;
        Ok(Command::GiveFeedback {
            slot: SlotId(self.slot),
            verdict,
            comment: comment(self.comment)?,
        })
    }
}

impl Input for DelegateSlot {
    fn input(self) -> ApiResult<Command> {
        Ok(Command::Delegate {
            slot: SlotId(self.slot),
            to_user: self.to_user,
            comment: comment(self.comment)?,
        })
    }
}

impl Input for Decide {
    fn input(self) -> ApiResult<Command> {
        let decision = Decision::parse(&self.decision).ok_or_else(|| {
            ApiError::invalid(
                "decision",
                format!(
                    "unknown decision {:?}; use one of {}",
                    self.decision,
                    Decision::choices()
                ),
            )
        })?;
        Ok(Command::Decide {
            decision,
            comment: comment(self.comment)?,
        })
    }
}

impl Input for ResetSignoff {
    fn input(self) -> ApiResult<Command> {
        Ok(Command::Reset {
            reason: self.reason,
        })
    }
}

pub(crate) fn version_subject(key: &str, name: &str, n: i64) -> ApiResult<Subject> {
    let version = u32::try_from(n)
        .ok()
        .filter(|v| *v >= 1)
        .ok_or_else(|| ApiError::invalid("version", "must be a positive integer"))?;
    Ok(Subject::Version {
        project: ProjectKey::parse(key)?,
        model: ModelName::parse(name)?,
        version,
    })
}

pub(crate) fn bundle_subject(key: &str, tag: &str) -> ApiResult<Subject> {
    Ok(Subject::Bundle {
        project: ProjectKey::parse(key)?,
        tag: BundleTag::parse(tag)?,
    })
}

fn with_etag(v: SignoffView) -> Response {
    ([(ETAG, format!("\"{}\"", v.revision))], Json(v)).into_response()
}

async fn status(state: &AppState, subject: Subject) -> ApiResult<Json<Governance>> {
    let mut conn = state.store.conn().await?;
    let info = signoffs::resolve(&mut conn, &subject).await?;
    let (project, text) = (info.project.as_str(), info.text.as_str());
    let stages = signoffs::governance(&mut conn, [(project, text)], state.clock.now())
        .await?
        .stages(project, text)?;
    let checks = gatehouse_store::checks::latest(&mut conn, text).await?;
    Ok(Json(Governance {
        subject: info.text,
        stages: shape_all(stages),
        checks: checks.map(super::checks::run_body),
    }))
}

async fn show(state: &AppState, subject: Subject, stage: &str) -> ApiResult<Response> {
    let stage = parse_stage("stage", stage)?;
    let mut conn = state.store.conn().await?;
    let v = signoffs::get(&mut conn, &subject, stage, state.clock.now()).await?;
    Ok(with_etag(v.shape()))
}

async fn run(
    state: &AppState,
    auth: &Auth,
    subject: Subject,
    stage: &str,
    if_match: IfMatch,
    input: Command,
) -> ApiResult<Response> {
    let stage = parse_stage("stage", stage)?;
    let ctx = auth.ctx(state);
    Ok(with_etag(
        execute(state, &ctx, &subject, stage, input, if_match.0)
            .await?
            .shape(),
    ))
}

/// Runs one sign-off command for the API and the web UI alike: in its own
/// transaction, counted by kind and outcome; a refusal for want of the right
/// is audited (in a transaction of its own, the command's was rolled back).
pub(crate) async fn execute(
    state: &AppState,
    ctx: &gatehouse_store::Ctx,
    subject: &Subject,
    stage: gatehouse_core::inventory::Stage,
    input: Command,
    expected_revision: Option<u64>,
) -> ApiResult<signoffs::SignoffView> {
    let command = input.name();
    let kind = metric_kind(&input);
    let input_kind = metric_kind(&input);
    let done = super::refusals::write_audited(
        state,
        async |tx| signoffs::command(tx, ctx, subject, stage, input, expected_revision).await,
        async |tx, e| {
            signoffs::record_refusal(tx, ctx, subject, stage, command, &e.to_string()).await
        },
    )
    .await;
    // Refused for its checks: the results it was refused on are kept as
    // evidence (the command's own transaction was rolled back).
    if let Err(e) = &done
        && e.code == ErrorCode::ChecksFailed
    {
        let trigger = match input_kind {
            SignoffCommand::RequestReview => gatehouse_core::checks::Trigger::ReviewRequested,
            _ => gatehouse_core::checks::Trigger::Decision,
        };
        if let Err(e) = record_checks(state, ctx, subject, trigger).await {
            tracing::warn!(error = %e, "the check results of a refused command were not recorded");
        }
    }
    // Refused for want of the tier's documents: on the record like a refusal
    // for want of the right (`signoff.refused`, with the missing ones).
    if let Err(e) = &done
        && e.code == ErrorCode::DocumentsMissing
    {
        let mut tx = state.store.begin().await?;
        signoffs::record_refusal(&mut tx, ctx, subject, stage, command, &e.detail).await?;
        tx.commit().await?;
    }
    let outcome = match &done {
        Ok(_) => Some(CommandOutcome::Accepted),
        Err(e) if is_refusal(e) => Some(CommandOutcome::Refused),
        Err(_) => None,
    };
    if let Some(o) = outcome {
        state.metrics.signoff_command(kind, o);
    }
    done
}

async fn record_checks(
    state: &AppState,
    ctx: &gatehouse_store::Ctx,
    subject: &Subject,
    trigger: gatehouse_core::checks::Trigger,
) -> Result<(), gatehouse_store::StoreError> {
    let mut tx = state.store.begin().await?;
    gatehouse_store::checks::run_for_subject(&mut tx, ctx, subject, trigger).await?;
    tx.commit().await
}

/// The command as `gatehouse_signoff_commands_total` counts it.
fn metric_kind(input: &Command) -> SignoffCommand {
    match input {
        Command::RequestReview { .. } => SignoffCommand::RequestReview,
        Command::GiveFeedback { .. } => SignoffCommand::Feedback,
        Command::Delegate { .. } => SignoffCommand::Delegate,
        Command::Decide { .. } => SignoffCommand::Decide,
        Command::Reset { .. } => SignoffCommand::Reset,
    }
}

/// The command was refused by the rules (not a failure of the database).
fn is_refusal(e: &ApiError) -> bool {
    !matches!(e.code, ErrorCode::Internal | ErrorCode::Unavailable)
}

pub(crate) use super::refusals::is_forbidden;

/// Governance status of a version: its sign-off per stage.
#[utoipa::path(get, path = "/api/v1/projects/{key}/models/{name}/versions/{n}/signoffs", tag = "signoffs",
    params(("key" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "FRAUD"), ("name" = String, Path, min_length = 1, max_length = 256, pattern = r"^[^/\u0000-\u001f\u007f-\u009f]*[^/\s\u0000-\u001f\u007f-\u009f][^/\u0000-\u001f\u007f-\u009f]*$", example = "fraud-scorer"), ("n" = i64, Path, minimum = 1, example = 1)),
    responses((status = 200, body = Governance), Problems))]
async fn version_status(
    State(state): State<AppState>,
    _: Auth,
    ApiPath((key, name, n)): ApiPath<(String, String, i64)>,
) -> ApiResult<Json<Governance>> {
    status(&state, version_subject(&key, &name, n)?).await
}

/// Governance status of a bundle: its sign-off per stage.
#[utoipa::path(get, path = "/api/v1/projects/{key}/bundles/{tag}/signoffs", tag = "signoffs",
    params(("key" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "FRAUD"), ("tag" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "fraud-detection-v1.0")),
    responses((status = 200, body = Governance), Problems))]
async fn bundle_status(
    State(state): State<AppState>,
    _: Auth,
    ApiPath((key, tag)): ApiPath<(String, String)>,
) -> ApiResult<Json<Governance>> {
    status(&state, bundle_subject(&key, &tag)?).await
}

/// A version's sign-off for one stage, with slots, answers, delegations,
/// decision and history. `ETag` carries its revision.
#[utoipa::path(get, path = "/api/v1/projects/{key}/models/{name}/versions/{n}/signoffs/{stage}", tag = "signoffs",
    params(("key" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "FRAUD"), ("name" = String, Path, min_length = 1, max_length = 256, pattern = r"^[^/\u0000-\u001f\u007f-\u009f]*[^/\s\u0000-\u001f\u007f-\u009f][^/\u0000-\u001f\u007f-\u009f]*$", example = "fraud-scorer"), ("n" = i64, Path, minimum = 1, example = 1),
        ("stage" = inline(gatehouse_api::values::Stage), Path, example = "prod")),
    responses((status = 200, body = SignoffView), Problems))]
async fn version_show(
    State(state): State<AppState>,
    _: Auth,
    ApiPath((key, name, n, stage)): ApiPath<(String, String, i64, String)>,
) -> ApiResult<Response> {
    show(&state, version_subject(&key, &name, n)?, &stage).await
}

/// A bundle's sign-off for one stage. `ETag` carries its revision.
#[utoipa::path(get, path = "/api/v1/projects/{key}/bundles/{tag}/signoffs/{stage}", tag = "signoffs",
    params(("key" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "FRAUD"), ("tag" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "fraud-detection-v1.0"), ("stage" = inline(gatehouse_api::values::Stage), Path, example = "prod")),
    responses((status = 200, body = SignoffView), Problems))]
async fn bundle_show(
    State(state): State<AppState>,
    _: Auth,
    ApiPath((key, tag, stage)): ApiPath<(String, String, String)>,
) -> ApiResult<Response> {
    show(&state, bundle_subject(&key, &tag)?, &stage).await
}

/// Generates the version and bundle handlers of one sign-off command.
macro_rules! command_handlers {
    ($doc:tt, $body:ty, $vfn:ident, $vpath:tt, $bfn:ident, $bpath:tt) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $vpath, tag = "signoffs",
            params(("key" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "FRAUD"), ("name" = String, Path, min_length = 1, max_length = 256, pattern = r"^[^/\u0000-\u001f\u007f-\u009f]*[^/\s\u0000-\u001f\u007f-\u009f][^/\u0000-\u001f\u007f-\u009f]*$", example = "fraud-scorer"), ("n" = i64, Path, minimum = 1, example = 1),
                ("stage" = inline(gatehouse_api::values::Stage), Path, example = "prod"),
                ("If-Match" = Option<String>, Header, pattern = r#"^(\*|(W/)?"[0-9]{1,18}"|[0-9]{1,18})$"#,
                    description = "Revision the command is based on (the ETag); 412 stale_revision if the sign-off moved on")),
            request_body = $body, responses((status = 200, body = SignoffView), Problems))]
        async fn $vfn(
            State(state): State<AppState>,
            auth: Auth,
            if_match: IfMatch,
            ApiPath((key, name, n, stage)): ApiPath<(String, String, i64, String)>,
            ApiJson(body): ApiJson<$body>,
        ) -> ApiResult<Response> {
            let subject = version_subject(&key, &name, n)?;
            run(&state, &auth, subject, &stage, if_match, body.input()?).await
        }

        #[doc = $doc]
        #[utoipa::path(post, path = $bpath, tag = "signoffs",
            params(("key" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "FRAUD"), ("tag" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "fraud-detection-v1.0"),
                ("stage" = inline(gatehouse_api::values::Stage), Path, example = "prod"),
                ("If-Match" = Option<String>, Header, pattern = r#"^(\*|(W/)?"[0-9]{1,18}"|[0-9]{1,18})$"#,
                    description = "Revision the command is based on (the ETag); 412 stale_revision if the sign-off moved on")),
            request_body = $body, responses((status = 200, body = SignoffView), Problems))]
        async fn $bfn(
            State(state): State<AppState>,
            auth: Auth,
            if_match: IfMatch,
            ApiPath((key, tag, stage)): ApiPath<(String, String, String)>,
            ApiJson(body): ApiJson<$body>,
        ) -> ApiResult<Response> {
            let subject = bundle_subject(&key, &tag)?;
            run(&state, &auth, subject, &stage, if_match, body.input()?).await
        }
    };
}

command_handlers!(
    "Request review (project contributors): starts the review with the stage's configured slots. Every lower configured stage must be approved first (promotion_order).",
    RequestReview,
    version_request,
    "/api/v1/projects/{key}/models/{name}/versions/{n}/signoffs/{stage}/request",
    bundle_request,
    "/api/v1/projects/{key}/bundles/{tag}/signoffs/{stage}/request"
);
command_handlers!(
    "Give or revise feedback on a slot (its assignee or delegate): approve, minor_issue or major_issue.",
    GiveFeedback,
    version_feedback,
    "/api/v1/projects/{key}/models/{name}/versions/{n}/signoffs/{stage}/feedback",
    bundle_feedback,
    "/api/v1/projects/{key}/bundles/{tag}/signoffs/{stage}/feedback"
);
command_handlers!(
    "Delegate a slot to another user (its assignee or current delegate).",
    DelegateSlot,
    version_delegate,
    "/api/v1/projects/{key}/models/{name}/versions/{n}/signoffs/{stage}/delegate",
    bundle_delegate,
    "/api/v1/projects/{key}/bundles/{tag}/signoffs/{stage}/delegate"
);
command_handlers!(
    "Decide (the final approver or its delegate): approve, reject or abandon. Reject and abandon lock the sign-off.",
    Decide,
    version_decide,
    "/api/v1/projects/{key}/models/{name}/versions/{n}/signoffs/{stage}/decide",
    bundle_decide,
    "/api/v1/projects/{key}/bundles/{tag}/signoffs/{stage}/decide"
);
command_handlers!(
    "Reset an approved sign-off (administrators): a new cycle starts in not_started; the old one stays in the history.",
    ResetSignoff,
    version_reset,
    "/api/v1/projects/{key}/models/{name}/versions/{n}/signoffs/{stage}/reset",
    bundle_reset,
    "/api/v1/projects/{key}/bundles/{tag}/signoffs/{stage}/reset"
);

/// The reviews waiting on the caller: unanswered feedback slots and final
/// approvals they hold as assignee or delegate.
#[utoipa::path(get, path = "/api/v1/reviews/pending", tag = "signoffs", params(PageParams),
    responses((status = 200, body = PageOf<PendingReview>), Problems))]
async fn pending_reviews(
    State(state): State<AppState>,
    auth: Auth,
    ApiQuery(q): ApiQuery<PageParams>,
) -> ApiResult<Json<PageOf<PendingReview>>> {
    let page = q.request()?;
    let mut conn = state.store.conn().await?;
    Ok(Json(
        signoffs::pending(&mut conn, &auth.0.username, &page)
            .await?
            .shape(),
    ))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(version_status))
        .routes(routes!(bundle_status))
        .routes(routes!(version_show))
        .routes(routes!(bundle_show))
        .routes(routes!(version_request))
        .routes(routes!(bundle_request))
        .routes(routes!(version_feedback))
        .routes(routes!(bundle_feedback))
        .routes(routes!(version_delegate))
        .routes(routes!(bundle_delegate))
        .routes(routes!(version_decide))
        .routes(routes!(bundle_decide))
        .routes(routes!(version_reset))
        .routes(routes!(bundle_reset))
        .routes(routes!(pending_reviews))
}

/// Versions with their governance status and links filled in, in two
/// statements however many there are.
pub(crate) async fn govern_versions(
    state: &AppState,
    mut vs: Vec<gatehouse_store::versions::ModelVersion>,
) -> ApiResult<Vec<gatehouse_api::versions::ModelVersion>> {
    if vs.is_empty() {
        return Ok(Vec::new());
    }
    let mut conn = state.store.conn().await?;
    let g = signoffs::governance(
        &mut conn,
        vs.iter().map(|v| (v.project.as_str(), v.subject.as_str())),
        state.clock.now(),
    )
    .await?;
    for v in &mut vs {
        v.governance = g.stages(v.project.as_str(), &v.subject)?;
    }
    Ok(vs
        .into_iter()
        .map(|v| {
            let links = links_for(&v.subject);
            gatehouse_api::versions::ModelVersion {
                links: Some(links),
                ..v.shape()
            }
        })
        .collect())
}

/// A version with its governance status filled in.
pub(crate) async fn govern_version(
    state: &AppState,
    v: gatehouse_store::versions::ModelVersion,
) -> ApiResult<gatehouse_api::versions::ModelVersion> {
    let mut vs = govern_versions(state, vec![v]).await?;
    Ok(vs.remove(0))
}

/// Bundles with their governance status and links filled in, in two
/// statements however many there are.
pub(crate) async fn govern_bundles(
    state: &AppState,
    mut bs: Vec<gatehouse_store::bundles::Bundle>,
) -> ApiResult<Vec<gatehouse_api::bundles::Bundle>> {
    if bs.is_empty() {
        return Ok(Vec::new());
    }
    let mut conn = state.store.conn().await?;
    let g = signoffs::governance(
        &mut conn,
        bs.iter().map(|b| (b.project.as_str(), b.subject.as_str())),
        state.clock.now(),
    )
    .await?;
    for b in &mut bs {
        b.governance = g.stages(b.project.as_str(), &b.subject)?;
    }
    Ok(bs
        .into_iter()
        .map(|b| {
            let links = links_for(&b.subject);
            gatehouse_api::bundles::Bundle {
                links: Some(links),
                ..b.shape()
            }
        })
        .collect())
}

/// A bundle with its governance status filled in.
pub(crate) async fn govern_bundle(
    state: &AppState,
    b: gatehouse_store::bundles::Bundle,
) -> ApiResult<gatehouse_api::bundles::Bundle> {
    let mut bs = govern_bundles(state, vec![b]).await?;
    Ok(bs.remove(0))
}
