//! `registered-models/*`: create, get, rename, update, delete, search, tags,
//! latest versions and aliases.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use gatehouse_core::inventory::{DESCRIPTION_MAX, check_text};
use gatehouse_core::{ModelName, ProjectKey};
use gatehouse_store::mlflow::{self as store, BindingKind, MlModel, MlVersion};
use gatehouse_store::{models, versions};
use serde_json::json;

use super::filter::{self, Entity, Filter, Search};
use super::govern::{self, Through};
use super::shape::{ModelRef, Shaper, bound_version};
use super::{
    Args, MlAuth, MlError, MlResult, PROJECT_TAG, check_alias, check_tag_key, contribute_right,
    empty, json, resolve, resolve_in, version_number,
};
use crate::app::AppState;

fn model_name(text: &str) -> MlResult<ModelName> {
    ModelName::parse(text).map_err(|e| MlError::invalid(format!("name: {}", e.message)))
}

/// A model with its versions, as MLflow shows it.
async fn shaped(state: &AppState, m: &MlModel) -> MlResult<serde_json::Value> {
    let (shaper, vs) = Shaper::for_models(state, &[m]).await?;
    Ok(serde_json::to_value(shaper.model(m, &vs)?).unwrap_or_default())
}

async fn reload(state: &AppState, project: &ProjectKey, name: &str) -> MlResult<MlModel> {
    let mut conn = state.store.conn().await?;
    Ok(store::model(&mut conn, project.as_str(), name).await?)
}

pub async fn create(
    State(state): State<AppState>,
    auth: MlAuth,
    body: Bytes,
) -> MlResult<Response> {
    let args = Args::from_body(&body)?;
    let name = model_name(&args.req("name")?)?;
    let description = args.opt("description").unwrap_or_default();
    check_text("description", &description, DESCRIPTION_MAX)?;
    let mut explicit = None;
    let mut tags = std::collections::BTreeMap::new();
    for (k, v) in args.tags()? {
        if k == PROJECT_TAG {
            explicit = Some(ProjectKey::parse(v)?);
        } else {
            check_tag_key(&k, false)?;
            tags.insert(k, v);
        }
    }
    let existing = {
        let mut conn = state.store.conn().await?;
        store::models_named(&mut conn, name.as_str()).await?
    };
    let already = || {
        MlError::new(
            "RESOURCE_ALREADY_EXISTS",
            format!("Registered Model (name={name}) already exists."),
        )
    };
    let project = match explicit {
        Some(p) => {
            if existing.iter().any(|m| m.model.project == p) {
                return Err(already());
            }
            p
        }
        // Without a project named, a registered-model name is global, as in
        // MLflow: `register_model` then goes on to add a version to it.
        None if !existing.is_empty() => return Err(already()),
        None => state.mlflow_default_project.clone().ok_or_else(|| {
            MlError::invalid(format!(
                "no project for '{name}': tag the registered model with {PROJECT_TAG}=<project key>, or configure the server's mlflow_default_project"
            ))
        })?,
    };
    let ctx = auth.ctx(&state);
    let right = contribute_right(&state, &ctx, &project).await?;
    let mut tx = state.store.begin().await?;
    models::create(&mut tx, &right, &ctx, project.as_str(), &name, &description).await?;
    if !tags.is_empty() {
        let m = store::model(tx.conn(), project.as_str(), name.as_str()).await?;
        store::set_model_tags(&mut tx, &right, &ctx, &m, &tags).await?;
    }
    tx.commit().await?;
    let m = reload(&state, &project, name.as_str()).await?;
    Ok(json(
        &json!({"registered_model": shaped(&state, &m).await?}),
    ))
}

pub async fn get(
    State(state): State<AppState>,
    _: MlAuth,
    RawQuery(q): RawQuery,
) -> MlResult<Response> {
    let args = Args::from_query(q.as_deref());
    let m = resolve(&state, &args.req("name")?).await?;
    Ok(json(
        &json!({"registered_model": shaped(&state, &m).await?}),
    ))
}

pub async fn rename(
    State(state): State<AppState>,
    auth: MlAuth,
    body: Bytes,
) -> MlResult<Response> {
    let args = Args::from_body(&body)?;
    let m = resolve(&state, &args.req("name")?).await?;
    let new_name = model_name(&args.req("new_name")?)?;
    {
        let mut conn = state.store.conn().await?;
        if !store::models_named(&mut conn, new_name.as_str())
            .await?
            .is_empty()
        {
            return Err(MlError::new(
                "RESOURCE_ALREADY_EXISTS",
                format!("Registered Model (name={new_name}) already exists."),
            ));
        }
    }
    let ctx = auth.ctx(&state);
    let right = contribute_right(&state, &ctx, &m.model.project).await?;
    let mut tx = state.store.begin().await?;
    store::rename_model(&mut tx, &right, &ctx, &m, &new_name).await?;
    tx.commit().await?;
    let m = reload(&state, &m.model.project, new_name.as_str()).await?;
    Ok(json(
        &json!({"registered_model": shaped(&state, &m).await?}),
    ))
}

pub async fn update(
    State(state): State<AppState>,
    auth: MlAuth,
    body: Bytes,
) -> MlResult<Response> {
    let args = Args::from_body(&body)?;
    let m = resolve(&state, &args.req("name")?).await?;
    let description = args.opt("description");
    if let Some(d) = &description {
        check_text("description", d, DESCRIPTION_MAX)?;
    }
    let ctx = auth.ctx(&state);
    let right = contribute_right(&state, &ctx, &m.model.project).await?;
    let mut tx = state.store.begin().await?;
    models::update(
        &mut tx,
        &right,
        &ctx,
        m.model.project.as_str(),
        m.model.name.as_str(),
        description.as_deref(),
    )
    .await?;
    tx.commit().await?;
    let m = reload(&state, &m.model.project, m.model.name.as_str()).await?;
    Ok(json(
        &json!({"registered_model": shaped(&state, &m).await?}),
    ))
}

/// Deletes a model and its versions, unless any was ever reviewed or
/// deployed (409, kept for the record).
pub async fn delete(
    State(state): State<AppState>,
    auth: MlAuth,
    body: Bytes,
) -> MlResult<Response> {
    let args = Args::from_body(&body)?;
    let m = resolve(&state, &args.req("name")?).await?;
    let (project, name) = (m.model.project.as_str(), m.model.name.as_str());
    {
        let mut conn = state.store.conn().await?;
        if let Some(subject) = store::governed_version(&mut conn, &m).await? {
            return Err(MlError::conflict(format!(
                "Registered model '{name}' cannot be deleted: {subject} was put up for review or deployed, and governed versions are kept for the record"
            )));
        }
    }
    let ctx = auth.ctx(&state);
    let right = contribute_right(&state, &ctx, &m.model.project).await?;
    let mut tx = state.store.begin().await?;
    let numbers: Vec<i64> = store::versions(tx.conn(), Some(&[m.id]))
        .await?
        .iter()
        .map(|v| v.version.version)
        .collect();
    for n in numbers {
        versions::delete(&mut tx, &right, &ctx, project, name, n).await?;
    }
    models::delete(&mut tx, &right, &ctx, project, name).await?;
    tx.commit().await?;
    Ok(empty())
}

pub async fn search(
    State(state): State<AppState>,
    _: MlAuth,
    RawQuery(q): RawQuery,
) -> MlResult<Response> {
    let args = Args::from_query(q.as_deref());
    let filter = Filter::parse(args.opt("filter").as_deref(), Entity::RegisteredModel)?;
    let max = filter::max_results(args.opt("max_results"), 100, 1000)?;
    let order = filter::parse_order(&args.list("order_by"), Entity::RegisteredModel)?;
    let offset = filter::page_offset(args.opt("page_token").as_deref())?;
    let search = Search {
        clauses: filter.into_clauses(),
        order,
        offset,
        limit: max,
    };
    let mut conn = state.store.conn().await?;
    let (page, more) = store::search_models(&mut conn, &search).await?;
    drop(conn);
    let refs: Vec<&MlModel> = page.iter().collect();
    let (shaper, vs) = Shaper::for_models(&state, &refs).await?;
    let items = page
        .iter()
        .map(|m| shaper.model(m, &vs))
        .collect::<MlResult<Vec<_>>>()?;
    let mut out = serde_json::Map::new();
    if !items.is_empty() {
        out.insert("registered_models".into(), json!(items));
    }
    if more {
        out.insert(
            "next_page_token".into(),
            json!(filter::page_token(offset + max)),
        );
    }
    Ok(json(&out))
}

/// The legacy stage names, matched case-insensitively.
pub fn canonical_stage(s: &str) -> MlResult<&'static str> {
    store::STAGES
        .iter()
        .find(|x| x.eq_ignore_ascii_case(s.trim()))
        .copied()
        .ok_or_else(|| {
            MlError::invalid(format!(
                "Invalid Model Version stage: {s}. Value must be one of None, Staging, Production, Archived."
            ))
        })
}

async fn latest(state: &AppState, args: &Args) -> MlResult<Response> {
    let m = resolve(state, &args.req("name")?).await?;
    let stages = args
        .list("stages")
        .iter()
        .map(|s| canonical_stage(s))
        .collect::<MlResult<Vec<_>>>()?;
    let (shaper, vs) = Shaper::for_models(state, &[&m]).await?;
    let picked: Vec<&MlVersion> = shaper
        .latest(m.id, &vs)
        .into_iter()
        .filter(|(stage, _)| stages.is_empty() || stages.contains(stage))
        .map(|(_, v)| v)
        .collect();
    let items = picked
        .iter()
        .map(|v| shaper.version(v))
        .collect::<MlResult<Vec<_>>>()?;
    if items.is_empty() {
        return Ok(json(&json!({})));
    }
    Ok(json(&json!({ "model_versions": items })))
}

pub async fn latest_versions(
    State(state): State<AppState>,
    _: MlAuth,
    body: Bytes,
) -> MlResult<Response> {
    latest(&state, &Args::from_body(&body)?).await
}

pub async fn latest_versions_get(
    State(state): State<AppState>,
    _: MlAuth,
    RawQuery(q): RawQuery,
) -> MlResult<Response> {
    latest(&state, &Args::from_query(q.as_deref())).await
}

pub async fn set_tag(
    State(state): State<AppState>,
    auth: MlAuth,
    body: Bytes,
) -> MlResult<Response> {
    let args = Args::from_body(&body)?;
    let m = resolve(&state, &args.req("name")?).await?;
    let key = args.req("key")?;
    check_tag_key(&key, false)?;
    let value = args.opt("value").unwrap_or_default();
    check_text("value", &value, DESCRIPTION_MAX)?;
    let ctx = auth.ctx(&state);
    let right = contribute_right(&state, &ctx, &m.model.project).await?;
    let mut tags = m.tags.clone();
    tags.insert(key, value);
    let mut tx = state.store.begin().await?;
    store::set_model_tags(&mut tx, &right, &ctx, &m, &tags).await?;
    tx.commit().await?;
    Ok(empty())
}

pub async fn delete_tag(
    State(state): State<AppState>,
    auth: MlAuth,
    body: Bytes,
) -> MlResult<Response> {
    let args = Args::from_body(&body)?;
    let m = resolve(&state, &args.req("name")?).await?;
    let key = args.req("key")?;
    check_tag_key(&key, false)?;
    if !m.tags.contains_key(&key) {
        return Ok(empty());
    }
    let ctx = auth.ctx(&state);
    let right = contribute_right(&state, &ctx, &m.model.project).await?;
    let mut tags = m.tags.clone();
    tags.remove(&key);
    let mut tx = state.store.begin().await?;
    store::set_model_tags(&mut tx, &right, &ctx, &m, &tags).await?;
    tx.commit().await?;
    Ok(empty())
}

/// Points an alias at a version: a plain label, or, for an alias bound to an
/// infrastructure, a deployment of the version through the gate.
pub async fn set_alias(
    State(state): State<AppState>,
    auth: MlAuth,
    body: Bytes,
) -> MlResult<Response> {
    let args = Args::from_body(&body)?;
    let m = resolve(&state, &args.req("name")?).await?;
    let alias = args.req("alias")?;
    check_alias(&alias)?;
    let number = version_number(&args.req("version")?)?;
    let mut conn = state.store.conn().await?;
    let v = store::version(&mut conn, m.id, number)
        .await
        .map_err(|_| version_missing(&m, number))?;
    let binding = super::bindings::binding_for(
        &state,
        &mut conn,
        &m.model.project,
        BindingKind::Alias,
        &alias,
    )
    .await?;
    drop(conn);
    let ctx = auth.ctx(&state);
    match binding {
        Some(b) => govern::deploy(&state, &ctx, &b, &v, Through::Alias(&alias)).await?,
        None => {
            let right = contribute_right(&state, &ctx, &m.model.project).await?;
            let mut tx = state.store.begin().await?;
            store::set_alias(&mut tx, &right, &ctx, &m, &alias, number).await?;
            tx.commit().await?;
        }
    }
    Ok(empty())
}

pub fn version_missing(m: &MlModel, number: i64) -> MlError {
    MlError::not_found(format!(
        "Model Version (name={}, version={number}) not found",
        m.model.name
    ))
}

pub async fn delete_alias(
    State(state): State<AppState>,
    auth: MlAuth,
    body: Bytes,
) -> MlResult<Response> {
    let args = Args::from_body(&body)?;
    let m = resolve(&state, &args.req("name")?).await?;
    let alias = args.req("alias")?;
    let mut conn = state.store.conn().await?;
    if let Some(b) = super::bindings::binding_for(
        &state,
        &mut conn,
        &m.model.project,
        BindingKind::Alias,
        &alias,
    )
    .await?
    {
        return Err(MlError::conflict(format!(
            "alias '{alias}' is bound to infrastructure '{}': it names what is deployed there; deploy or roll back in Gatehouse instead",
            b.infrastructure
        )));
    }
    drop(conn);
    let ctx = auth.ctx(&state);
    let right = contribute_right(&state, &ctx, &m.model.project).await?;
    let mut tx = state.store.begin().await?;
    store::delete_alias(&mut tx, &right, &ctx, &m, &alias).await?;
    tx.commit().await?;
    Ok(empty())
}

pub async fn get_by_alias(
    State(state): State<AppState>,
    _: MlAuth,
    RawQuery(q): RawQuery,
) -> MlResult<Response> {
    let args = Args::from_query(q.as_deref());
    let name = args.req("name")?;
    let alias = args.req("alias")?;
    let mut conn = state.store.conn().await?;
    let m = resolve_in(&state, &mut conn, &name).await?;
    let binding = super::bindings::binding_for(
        &state,
        &mut conn,
        &m.model.project,
        BindingKind::Alias,
        &alias,
    )
    .await?;
    let number = match binding {
        Some(b) => {
            drop(conn);
            let n = bound_version(&state, &b, &ModelRef::from(&m)).await?;
            conn = state.store.conn().await?;
            n
        }
        None => store::aliases(&mut conn, m.id)
            .await?
            .into_iter()
            .find(|(a, _)| *a == alias)
            .map(|(_, n)| n),
    };
    let Some(number) = number else {
        return Err(MlError::invalid(format!(
            "Registered model alias {alias} not found."
        )));
    };
    let v = store::version(&mut conn, m.id, number)
        .await
        .map_err(|_| version_missing(&m, number))?;
    drop(conn);
    let shaper = Shaper::for_versions(&state, &[&v]).await?;
    Ok(json(&json!({"model_version": shaper.version(&v)?})))
}
