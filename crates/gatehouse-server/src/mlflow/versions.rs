//! `model-versions/*`: create, get, update, delete, search, tags, download
//! URI and the legacy stage transitions.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use gatehouse_core::inventory::{
    DESCRIPTION_MAX, REF_MAX, TAG_VALUE_MAX, URI_MAX, check_line, check_string_map, check_text,
};
use gatehouse_store::mlflow::{self as store, BindingKind, MlModel, MlVersion};
use gatehouse_store::versions::{self, NewVersion, VersionPatch};
use serde_json::json;

use super::filter::{self, Entity, Filter, Search};
use super::govern::{self, Through};
use super::models::{canonical_stage, version_missing};
use super::shape::{RUN_ID_PARAM, RUN_LINK_PARAM, Shaper};
use super::{
    Args, MlAuth, MlError, MlResult, check_tag_key, contribute_right, empty, json, resolve,
    resolve_in, version_number,
};
use crate::app::AppState;

async fn shaped(state: &AppState, v: &MlVersion) -> MlResult<serde_json::Value> {
    let shaper = Shaper::for_versions(state, &[v]).await?;
    Ok(serde_json::to_value(shaper.version(v)?).unwrap_or_default())
}

/// The model and one of its versions, from `name` and `version`.
async fn target(state: &AppState, args: &Args) -> MlResult<(MlModel, MlVersion)> {
    let name = args.req("name")?;
    let number = version_number(&args.req("version")?)?;
    let mut conn = state.store.conn().await?;
    let m = resolve_in(state, &mut conn, &name).await?;
    let v = store::version(&mut conn, m.id, number)
        .await
        .map_err(|_| version_missing(&m, number))?;
    Ok((m, v))
}

async fn reload(state: &AppState, v: &MlVersion) -> MlResult<MlVersion> {
    let mut conn = state.store.conn().await?;
    Ok(store::version(&mut conn, v.model_id, v.version.version).await?)
}

/// A source without a URI scheme (or `file:`) is a path on someone's disk:
/// MLflow accepts it only with the run it belongs to.
fn is_local_path(source: &str) -> bool {
    let lower = source.to_ascii_lowercase();
    if lower.starts_with("file:") {
        return true;
    }
    match source.split_once(':') {
        Some((scheme, _)) => {
            scheme.len() < 2
                || !scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        }
        None => true,
    }
}

pub async fn create(
    State(state): State<AppState>,
    auth: MlAuth,
    body: Bytes,
) -> MlResult<Response> {
    let args = Args::from_body(&body)?;
    let m = resolve(&state, &args.req("name")?).await?;
    let source = args.req("source")?;
    check_line("source", &source, URI_MAX)?;
    let run_id = args.opt("run_id").unwrap_or_default();
    let run_link = args.opt("run_link").unwrap_or_default();
    if is_local_path(&source) && run_id.is_empty() {
        return Err(MlError::invalid(format!(
            "Invalid model version source: '{source}'. To use a local path as a model version source, the run_id request parameter has to be specified and the local path has to be contained within the artifact directory of the run specified by the run_id."
        )));
    }
    let mut params = BTreeMap::new();
    for (key, value) in [(RUN_ID_PARAM, run_id), (RUN_LINK_PARAM, run_link)] {
        if !value.is_empty() {
            check_line(key, &value, REF_MAX)?;
            params.insert(key.to_owned(), value);
        }
    }
    let mut tags = BTreeMap::new();
    for (k, v) in args.tags()? {
        check_tag_key(&k, true)?;
        tags.insert(k, v);
    }
    check_string_map("tags", &tags)?;
    let description = args.opt("description").unwrap_or_default();
    check_text("description", &description, DESCRIPTION_MAX)?;
    let new = NewVersion {
        artifact_uri: source,
        params,
        description,
        tags,
        ..NewVersion::default()
    };
    let ctx = auth.ctx(&state);
    let right = contribute_right(&state, &ctx, &m.model.project).await?;
    let mut tx = state.store.begin().await?;
    let v = versions::register(
        &mut tx,
        &right,
        &ctx,
        m.model.project.as_str(),
        m.model.name.as_str(),
        &new,
    )
    .await?;
    tx.commit().await?;
    let mut conn = state.store.conn().await?;
    let v = store::version(&mut conn, m.id, v.version).await?;
    drop(conn);
    Ok(json(&json!({"model_version": shaped(&state, &v).await?})))
}

pub async fn get(
    State(state): State<AppState>,
    _: MlAuth,
    RawQuery(q): RawQuery,
) -> MlResult<Response> {
    let (_, v) = target(&state, &Args::from_query(q.as_deref())).await?;
    Ok(json(&json!({"model_version": shaped(&state, &v).await?})))
}

async fn patch(
    state: &AppState,
    auth: &MlAuth,
    m: &MlModel,
    v: &MlVersion,
    patch: &VersionPatch,
) -> MlResult<()> {
    let ctx = auth.ctx(state);
    let right = contribute_right(state, &ctx, &m.model.project).await?;
    let mut tx = state.store.begin().await?;
    versions::update(
        &mut tx,
        &right,
        &ctx,
        m.model.project.as_str(),
        m.model.name.as_str(),
        v.version.version,
        patch,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

pub async fn update(
    State(state): State<AppState>,
    auth: MlAuth,
    body: Bytes,
) -> MlResult<Response> {
    let args = Args::from_body(&body)?;
    let (m, v) = target(&state, &args).await?;
    if let Some(d) = args.opt("description") {
        check_text("description", &d, DESCRIPTION_MAX)?;
        let p = VersionPatch {
            description: Some(d),
            tags: None,
            tag_changes: Vec::new(),
        };
        patch(&state, &auth, &m, &v, &p).await?;
    }
    let v = reload(&state, &v).await?;
    Ok(json(&json!({"model_version": shaped(&state, &v).await?})))
}

/// Deletes a version never reviewed nor deployed (409 otherwise: kept for
/// the record).
pub async fn delete(
    State(state): State<AppState>,
    auth: MlAuth,
    body: Bytes,
) -> MlResult<Response> {
    let args = Args::from_body(&body)?;
    let (m, v) = target(&state, &args).await?;
    let ctx = auth.ctx(&state);
    let right = contribute_right(&state, &ctx, &m.model.project).await?;
    let mut tx = state.store.begin().await?;
    versions::delete(
        &mut tx,
        &right,
        &ctx,
        m.model.project.as_str(),
        m.model.name.as_str(),
        v.version.version,
    )
    .await?;
    tx.commit().await?;
    Ok(empty())
}

pub async fn search(
    State(state): State<AppState>,
    _: MlAuth,
    RawQuery(q): RawQuery,
) -> MlResult<Response> {
    let args = Args::from_query(q.as_deref());
    let filter = Filter::parse(args.opt("filter").as_deref(), Entity::ModelVersion)?;
    let max = filter::max_results(args.opt("max_results"), 10_000, 200_000)?;
    let order = filter::parse_order(&args.list("order_by"), Entity::ModelVersion)?;
    let offset = filter::page_offset(args.opt("page_token").as_deref())?;
    let search = Search {
        clauses: filter.into_clauses(),
        order,
        offset,
        limit: max,
    };
    let mut conn = state.store.conn().await?;
    let (page, more) = store::search_versions(&mut conn, &search).await?;
    drop(conn);
    let refs: Vec<&MlVersion> = page.iter().collect();
    let shaper = Shaper::for_versions(&state, &refs).await?;
    let items = page
        .iter()
        .map(|v| shaper.version(v))
        .collect::<MlResult<Vec<_>>>()?;
    let mut out = serde_json::Map::new();
    if !items.is_empty() {
        out.insert("model_versions".into(), json!(items));
    }
    if more {
        out.insert(
            "next_page_token".into(),
            json!(filter::page_token(offset + max)),
        );
    }
    Ok(json(&out))
}

pub async fn download_uri(
    State(state): State<AppState>,
    _: MlAuth,
    RawQuery(q): RawQuery,
) -> MlResult<Response> {
    let (_, v) = target(&state, &Args::from_query(q.as_deref())).await?;
    Ok(json(&json!({"artifact_uri": v.version.artifact_uri})))
}

/// Moves a version to a legacy stage; a stage bound to an infrastructure is a
/// deployment there, through the gate.
pub async fn transition_stage(
    State(state): State<AppState>,
    auth: MlAuth,
    body: Bytes,
) -> MlResult<Response> {
    let args = Args::from_body(&body)?;
    let (m, v) = target(&state, &args).await?;
    let stage = canonical_stage(&args.req("stage")?)?;
    let archive = args.bool("archive_existing_versions");
    let ctx = auth.ctx(&state);
    let mut conn = state.store.conn().await?;
    let binding = super::bindings::binding_for(
        &state,
        &mut conn,
        &m.model.project,
        BindingKind::Stage,
        stage,
    )
    .await?;
    drop(conn);
    match binding {
        Some(b) => govern::deploy(&state, &ctx, &b, &v, Through::Stage(stage, archive)).await?,
        None => {
            let right = contribute_right(&state, &ctx, &m.model.project).await?;
            let mut tx = state.store.begin().await?;
            store::set_stage(&mut tx, &right, &ctx, &v, stage, archive).await?;
            tx.commit().await?;
        }
    }
    let v = reload(&state, &v).await?;
    Ok(json(&json!({"model_version": shaped(&state, &v).await?})))
}

pub async fn set_tag(
    State(state): State<AppState>,
    auth: MlAuth,
    body: Bytes,
) -> MlResult<Response> {
    let args = Args::from_body(&body)?;
    let (m, v) = target(&state, &args).await?;
    let key = args.req("key")?;
    check_tag_key(&key, true)?;
    let value = args.opt("value").unwrap_or_default();
    check_text("value", &value, TAG_VALUE_MAX)?;
    // Applied to the tags as they stand when written (a concurrent change of
    // another tag stays); the limits are checked there.
    let p = VersionPatch {
        description: None,
        tags: None,
        tag_changes: vec![(key, Some(value))],
    };
    patch(&state, &auth, &m, &v, &p).await?;
    Ok(empty())
}

pub async fn delete_tag(
    State(state): State<AppState>,
    auth: MlAuth,
    body: Bytes,
) -> MlResult<Response> {
    let args = Args::from_body(&body)?;
    let (m, v) = target(&state, &args).await?;
    let key = args.req("key")?;
    check_tag_key(&key, true)?;
    if !v.version.tags.contains_key(&key) {
        return Ok(empty());
    }
    let p = VersionPatch {
        description: None,
        tags: None,
        tag_changes: vec![(key, None)],
    };
    patch(&state, &auth, &m, &v, &p).await?;
    Ok(empty())
}
