//! Tier policies (administrators edit them), the policy matrix, and the
//! documents attached to model versions and bundles.

use axum::Json;
use axum::extract::State;
use gatehouse_api::policies::{
    AttachDocument, DocumentList, DocumentView, MatrixCheck, MatrixRow, PolicyMatrix,
    SetTierPolicy, TierPolicyView,
};
use gatehouse_core::authz;
use gatehouse_core::checks::{CheckScope, Enforcement};
use gatehouse_core::documents::DocumentSource;
use gatehouse_core::inventory::RiskTier;
use gatehouse_core::policy::TierPolicies;
use gatehouse_core::{DocumentName, Subject};
use gatehouse_store::{Store, StoreError, checks, documents, subjects, tiers};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Problems;
use super::projects::contribute_right;
use super::signoffs::{bundle_subject, version_subject};
use crate::app::AppState;
use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath};

fn tier_of(t: i64) -> ApiResult<RiskTier> {
    RiskTier::new(t).map_err(|e| ApiError::invalid("tier", e.message))
}

/// The policies of the four risk tiers.
#[utoipa::path(get, path = "/api/v1/policies/tiers", tag = "policies",
    responses((status = 200, body = Vec<TierPolicyView>), Problems))]
async fn list_tiers(
    State(state): State<AppState>,
    _: Auth,
) -> ApiResult<Json<Vec<TierPolicyView>>> {
    let mut conn = state.store.conn().await?;
    let all = tiers::load(&mut conn).await?;
    Ok(Json(all.iter().cloned().map(Into::into).collect()))
}

/// The policy of one risk tier.
#[utoipa::path(get, path = "/api/v1/policies/tiers/{tier}", tag = "policies",
    params(("tier" = u8, Path, minimum = 1, maximum = 4, example = 4)),
    responses((status = 200, body = TierPolicyView), Problems))]
async fn get_tier(
    State(state): State<AppState>,
    _: Auth,
    ApiPath(tier): ApiPath<i64>,
) -> ApiResult<Json<TierPolicyView>> {
    let tier = tier_of(tier)?;
    let mut conn = state.store.conn().await?;
    Ok(Json(tiers::get(&mut conn, tier).await?.into()))
}

/// Replace a risk tier's policy (administrators). Audited; running reviews
/// keep the policy they were requested under.
#[utoipa::path(put, path = "/api/v1/policies/tiers/{tier}", tag = "policies",
    params(("tier" = u8, Path, minimum = 1, maximum = 4, example = 4)),
    request_body = SetTierPolicy, responses((status = 200, body = TierPolicyView), Problems))]
async fn set_tier(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(tier): ApiPath<i64>,
    ApiJson(body): ApiJson<SetTierPolicy>,
) -> ApiResult<Json<TierPolicyView>> {
    let tier = tier_of(tier)?;
    let right = authz::admin(&auth.0)?;
    let ctx = auth.ctx(&state);
    let mut tx = state.store.begin().await?;
    let p = tiers::set(&mut tx, &right, &ctx, body.into_policy(tier)).await?;
    tx.commit().await?;
    Ok(Json(p.into()))
}

/// The columns of the policy matrix.
const CONSIDERATIONS: [&str; 8] = [
    "signoffs_required",
    "min_feedback_approvals",
    "major_issue_blocks",
    "separation_of_duties",
    "required_documents",
    "checks",
    "allowed_stages",
    "approval_validity_days",
];

fn criticality(tier: RiskTier) -> &'static str {
    match tier.get() {
        1 => "irregular, ad-hoc use; self-service analytics, run where built",
        2 => "scheduled, may be down for a short while; self-service development and scheduling",
        3 => "scheduled, needs specific monitoring; light deployment process with QA",
        _ => "operational, cannot suffer outages; fully controlled CI/CD deployment",
    }
}

/// The checks that apply to every project of each tier: the global ones and
/// the tier's own, blocking first.
fn tier_checks(shared: &[checks::Check], tier: RiskTier) -> Vec<MatrixCheck> {
    let mut out: Vec<MatrixCheck> = shared
        .iter()
        .filter(|c| match c.scope {
            CheckScope::Global => true,
            CheckScope::Tier(t) => t == tier,
            CheckScope::Project => false,
        })
        .map(|c| MatrixCheck {
            name: c.name.clone(),
            scope: match c.scope {
                CheckScope::Global => "global".into(),
                _ => "tier".into(),
            },
            blocking: c.enforcement == Enforcement::Blocking,
            expression: c.expression.clone(),
        })
        .collect();
    out.sort_by(|a, b| b.blocking.cmp(&a.blocking).then(a.name.cmp(&b.name)));
    out
}

/// The policy matrix as a value: one row per tier.
pub(crate) async fn matrix(store: &Store) -> Result<PolicyMatrix, StoreError> {
    let (all, shared): (TierPolicies, Vec<checks::Check>) = {
        let mut conn = store.conn().await?;
        (
            tiers::load(&mut conn).await?,
            checks::list_shared(&mut conn).await?,
        )
    };
    let mut rows = Vec::new();
    for p in all.iter() {
        let signoffs = match p.min_feedback_approvals {
            0 => "final approval".to_owned(),
            n => format!("{n} feedback approval(s), then the final approval"),
        };
        rows.push(MatrixRow {
            tier: p.tier,
            criticality: criticality(p.tier).to_owned(),
            signoffs_required: signoffs,
            min_feedback_approvals: p.min_feedback_approvals,
            major_issue_blocks: p.major_issue_blocks,
            separation_of_duties: if p.tier.get() == 1 {
                "optional".into()
            } else {
                "required".into()
            },
            required_documents: p.required_documents.clone(),
            checks: tier_checks(&shared, p.tier),
            allowed_stages: p.allowed_stages.clone(),
            approval_validity_days: p.approval_validity_days,
        });
    }
    Ok(PolicyMatrix {
        considerations: CONSIDERATIONS.iter().map(|c| c.to_string()).collect(),
        tiers: rows,
    })
}

/// The policy matrix: tiers × considerations (sign-offs required, feedback
/// quorum, documents, checks, allowed stages, approval validity).
#[utoipa::path(get, path = "/api/v1/policies/matrix", tag = "policies",
    responses((status = 200, body = PolicyMatrix), Problems))]
async fn get_matrix(State(state): State<AppState>, _: Auth) -> ApiResult<Json<PolicyMatrix>> {
    Ok(Json(matrix(&state.store).await?))
}

fn doc_view(d: documents::Document, content: Option<String>) -> DocumentView {
    DocumentView {
        subject: d.subject,
        name: d.name,
        uri: d.uri,
        sha256: d.sha256,
        size: d.size,
        attached_by: d.attached_by,
        attached_at: d.attached_at,
        content,
    }
}

fn doc_name(name: &str) -> ApiResult<DocumentName> {
    DocumentName::parse(name).map_err(|e| ApiError::invalid("document", e.message))
}

/// A subject's current documents with what its tier requires.
pub(crate) async fn list_of(store: &Store, subject: &Subject) -> ApiResult<DocumentList> {
    let mut conn = store.conn().await?;
    let info = subjects::resolve(&mut conn, subject).await?;
    let items = documents::current(&mut conn, &info.text).await?;
    let present = items.iter().map(|d| d.name.clone()).collect();
    let missing = info
        .policy
        .missing_documents(&present)
        .into_iter()
        .cloned()
        .collect();
    Ok(DocumentList {
        items: items.into_iter().map(|d| doc_view(d, None)).collect(),
        required: info.policy.required_documents.clone(),
        missing,
    })
}

/// Attaches a document (the project's contributors and owners).
pub(crate) async fn attach_to(
    state: &AppState,
    ctx: &gatehouse_store::Ctx,
    subject: &Subject,
    name: &str,
    body: AttachDocument,
) -> ApiResult<DocumentView> {
    let name = doc_name(name)?;
    let source = DocumentSource::from_parts(body.uri, body.sha256.as_deref(), body.content)?;
    let ctx = ctx.clone();
    let mut tx = state.store.begin().await?;
    let right = contribute_right(&mut tx, &ctx, subject.project().as_str()).await?;
    let d = documents::attach(&mut tx, &right, &ctx, subject, &name, &source).await?;
    tx.commit().await?;
    Ok(doc_view(d, None))
}

async fn read_one(store: &Store, subject: &Subject, name: &str) -> ApiResult<DocumentView> {
    let name = doc_name(name)?;
    let mut conn = store.conn().await?;
    let info = subjects::resolve(&mut conn, subject).await?;
    let (d, content) = documents::text(&mut conn, &info.text, name.as_str()).await?;
    Ok(doc_view(d, content))
}

/// A model version's documents: the current one per name, what its risk
/// tier requires and what is missing.
#[utoipa::path(get, path = "/api/v1/projects/{key}/models/{name}/versions/{n}/documents", tag = "documents",
    params(("key" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "FRAUD"), ("name" = String, Path, min_length = 1, max_length = 256, pattern = r"^[^/\u0000-\u001f\u007f-\u009f]*[^/\s\u0000-\u001f\u007f-\u009f][^/\u0000-\u001f\u007f-\u009f]*$", example = "fraud-scorer"), ("n" = i64, Path, minimum = 1, example = 1)),
    responses((status = 200, body = DocumentList), Problems))]
async fn version_documents(
    State(state): State<AppState>,
    _: Auth,
    ApiPath((key, name, n)): ApiPath<(String, String, i64)>,
) -> ApiResult<Json<DocumentList>> {
    Ok(Json(
        list_of(&state.store, &version_subject(&key, &name, n)?).await?,
    ))
}

/// Attach a document to a model version (contributors and owners): by `uri`
/// and `sha256`, or as `content` text (at most 256 KiB). Attaching a name
/// again replaces it; the earlier one stays in the audit trail.
#[utoipa::path(put, path = "/api/v1/projects/{key}/models/{name}/versions/{n}/documents/{doc}", tag = "documents",
    params(("key" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "FRAUD"), ("name" = String, Path, min_length = 1, max_length = 256, pattern = r"^[^/\u0000-\u001f\u007f-\u009f]*[^/\s\u0000-\u001f\u007f-\u009f][^/\u0000-\u001f\u007f-\u009f]*$", example = "fraud-scorer"), ("n" = i64, Path, minimum = 1, example = 1),
        ("doc" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "model_card")),
    request_body = AttachDocument, responses((status = 200, body = DocumentView), Problems))]
async fn version_attach(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((key, name, n, doc)): ApiPath<(String, String, i64, String)>,
    ApiJson(body): ApiJson<AttachDocument>,
) -> ApiResult<Json<DocumentView>> {
    let subject = version_subject(&key, &name, n)?;
    Ok(Json(
        attach_to(&state, &auth.ctx(&state), &subject, &doc, body).await?,
    ))
}

/// One document of a model version, with its text if Gatehouse keeps it.
#[utoipa::path(get, path = "/api/v1/projects/{key}/models/{name}/versions/{n}/documents/{doc}", tag = "documents",
    params(("key" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "FRAUD"), ("name" = String, Path, min_length = 1, max_length = 256, pattern = r"^[^/\u0000-\u001f\u007f-\u009f]*[^/\s\u0000-\u001f\u007f-\u009f][^/\u0000-\u001f\u007f-\u009f]*$", example = "fraud-scorer"), ("n" = i64, Path, minimum = 1, example = 1),
        ("doc" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "model_card")),
    responses((status = 200, body = DocumentView), Problems))]
async fn version_document(
    State(state): State<AppState>,
    _: Auth,
    ApiPath((key, name, n, doc)): ApiPath<(String, String, i64, String)>,
) -> ApiResult<Json<DocumentView>> {
    let subject = version_subject(&key, &name, n)?;
    Ok(Json(read_one(&state.store, &subject, &doc).await?))
}

/// A bundle's documents: the current one per name, what its risk tier
/// requires and what is missing.
#[utoipa::path(get, path = "/api/v1/projects/{key}/bundles/{tag}/documents", tag = "documents",
    params(("key" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "FRAUD"), ("tag" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "fraud-detection-v1.0")),
    responses((status = 200, body = DocumentList), Problems))]
async fn bundle_documents(
    State(state): State<AppState>,
    _: Auth,
    ApiPath((key, tag)): ApiPath<(String, String)>,
) -> ApiResult<Json<DocumentList>> {
    Ok(Json(
        list_of(&state.store, &bundle_subject(&key, &tag)?).await?,
    ))
}

/// Attach a document to a bundle (contributors and owners).
#[utoipa::path(put, path = "/api/v1/projects/{key}/bundles/{tag}/documents/{doc}", tag = "documents",
    params(("key" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "FRAUD"), ("tag" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "fraud-detection-v1.0"),
        ("doc" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "model_card")),
    request_body = AttachDocument, responses((status = 200, body = DocumentView), Problems))]
async fn bundle_attach(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((key, tag, doc)): ApiPath<(String, String, String)>,
    ApiJson(body): ApiJson<AttachDocument>,
) -> ApiResult<Json<DocumentView>> {
    let subject = bundle_subject(&key, &tag)?;
    Ok(Json(
        attach_to(&state, &auth.ctx(&state), &subject, &doc, body).await?,
    ))
}

/// One document of a bundle, with its text if Gatehouse keeps it.
#[utoipa::path(get, path = "/api/v1/projects/{key}/bundles/{tag}/documents/{doc}", tag = "documents",
    params(("key" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "FRAUD"), ("tag" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "fraud-detection-v1.0"),
        ("doc" = String, Path, pattern = "^[A-Za-z0-9._-]{1,64}$", example = "model_card")),
    responses((status = 200, body = DocumentView), Problems))]
async fn bundle_document(
    State(state): State<AppState>,
    _: Auth,
    ApiPath((key, tag, doc)): ApiPath<(String, String, String)>,
) -> ApiResult<Json<DocumentView>> {
    let subject = bundle_subject(&key, &tag)?;
    Ok(Json(read_one(&state.store, &subject, &doc).await?))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tiers))
        .routes(routes!(get_tier, set_tier))
        .routes(routes!(get_matrix))
        .routes(routes!(version_documents))
        .routes(routes!(version_attach, version_document))
        .routes(routes!(bundle_documents))
        .routes(routes!(bundle_attach, bundle_document))
}
