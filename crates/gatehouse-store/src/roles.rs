//! Project reviewer roles (`Risk & Compliance`, `IT Operations`, …): named sets
//! of users and groups that reviewer slots are assigned to. Managed by project
//! owners; not a permission level.

use std::collections::{BTreeMap, BTreeSet};

use gatehouse_core::audit::NewAuditEvent;
use gatehouse_core::authz::OwnRight;
use gatehouse_core::{GroupName, Timestamp, Username};
use serde::Serialize;
use serde_json::json;
use sqlx::{AnyConnection, Row};

use crate::audit::record;
use crate::error::at_field;
pub use crate::role_members::{exists, members_by_role};
use crate::{Ctx, Page, PageRequest, Result, StoreError, Tx, projects, signoffs, users};

#[derive(Debug, Clone, Serialize)]
pub struct Role {
    pub project: String,
    pub name: String,
    pub description: String,
    /// Users named directly, sorted.
    pub users: Vec<String>,
    /// Groups whose members belong to the role, sorted.
    pub groups: Vec<String>,
    /// Everyone the role stands for now: its users and its groups' members,
    /// enabled accounts only, sorted.
    pub members: Vec<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, Default)]
pub struct NewRole {
    pub name: String,
    pub description: String,
    pub users: Vec<Username>,
    pub groups: Vec<GroupName>,
}

#[derive(Debug, Clone, Default)]
pub struct RolePatch {
    pub name: Option<String>,
    pub description: Option<String>,
    /// Replaces the role's users.
    pub users: Option<Vec<Username>>,
    /// Replaces the role's groups.
    pub groups: Option<Vec<GroupName>>,
}

const COLS: &str = "id, name, description, created_at, updated_at";

async fn load(conn: &mut AnyConnection, project: &str, name: &str) -> Result<(i64, i64, Role)> {
    let p = projects::load(conn, project).await?;
    let row = sqlx::query(sqlf!(
        "SELECT {COLS} FROM project_roles WHERE project_id = $1 AND name = $2"
    ))
    .bind(p.id)
    .bind(name)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| StoreError::not_found(format!("role '{name}' in project '{project}'")))?;
    let id: i64 = row.try_get("id")?;
    let role = roles_from_rows(conn, project, std::slice::from_ref(&row))
        .await?
        .pop()
        .ok_or_else(|| StoreError::not_found(format!("role '{name}' in project '{project}'")))?;
    Ok((p.id, id, role))
}

pub async fn get(conn: &mut AnyConnection, project: &str, name: &str) -> Result<Role> {
    Ok(load(conn, project, name).await?.2)
}

/// All roles of a project, by name (a project has a handful).
pub async fn list(conn: &mut AnyConnection, project: &str) -> Result<Vec<Role>> {
    let every = PageRequest::first(i64::from(u32::MAX));
    Ok(list_page(conn, project, &every).await?.items)
}

/// [`list`], a page at a time, by name (the cursor is the last name).
pub async fn list_page(
    conn: &mut AnyConnection,
    project: &str,
    page: &PageRequest,
) -> Result<Page<Role>> {
    let p = projects::load(conn, project).await?;
    let rows = sqlx::query(sqlf!(
        "SELECT {COLS} FROM project_roles WHERE project_id = $1 \
         AND ($2 IS NULL OR name > $2) ORDER BY name LIMIT $3"
    ))
    .bind(p.id)
    .bind(page.after.as_deref())
    .bind(page.fetch())
    .fetch_all(&mut *conn)
    .await?;
    let out = roles_from_rows(conn, project, &rows).await?;
    Ok(Page::from_rows(out, page, |r| r.name.clone()))
}

/// Roles of `rows` with their users, groups and members: three statements
/// whatever the number of rows.
async fn roles_from_rows(
    conn: &mut AnyConnection,
    project: &str,
    rows: &[sqlx::any::AnyRow],
) -> Result<Vec<Role>> {
    let ids: Vec<i64> = rows
        .iter()
        .map(|r| r.try_get::<i64, _>("id"))
        .collect::<std::result::Result<_, _>>()?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let list = crate::in_list(1, ids.len());
    let mut named: [BTreeMap<i64, Vec<String>>; 2] = Default::default();
    let queries = [
        sqlf!(
            "SELECT ru.role_id, u.username AS name FROM project_role_users ru \
             JOIN users u ON u.id = ru.user_id WHERE ru.role_id IN ({list}) ORDER BY u.username"
        ),
        sqlf!(
            "SELECT rg.role_id, g.name FROM project_role_groups rg \
             JOIN groups g ON g.id = rg.group_id WHERE rg.role_id IN ({list}) ORDER BY g.name"
        ),
    ];
    for (query, into) in queries.into_iter().zip(named.iter_mut()) {
        let mut q = sqlx::query(query);
        for id in &ids {
            q = q.bind(id);
        }
        for r in q.fetch_all(&mut *conn).await? {
            into.entry(r.try_get("role_id")?)
                .or_default()
                .push(r.try_get("name")?);
        }
    }
    let [mut users, mut groups] = named;
    let mut members = crate::role_members::members_of(conn, &ids).await?;
    let mut out = Vec::with_capacity(rows.len());
    for (r, id) in rows.iter().zip(&ids) {
        out.push(Role {
            project: project.to_owned(),
            name: r.try_get("name")?,
            description: r.try_get("description")?,
            users: users.remove(id).unwrap_or_default(),
            groups: groups.remove(id).unwrap_or_default(),
            members: members
                .remove(id)
                .unwrap_or_default()
                .iter()
                .map(ToString::to_string)
                .collect(),
            created_at: Timestamp::from_micros(r.try_get("created_at")?),
            updated_at: Timestamp::from_micros(r.try_get("updated_at")?),
        });
    }
    Ok(out)
}

async fn set_members(
    tx: &mut Tx,
    role_id: i64,
    users: Option<&[Username]>,
    groups: Option<&[GroupName]>,
) -> Result<()> {
    if let Some(users) = users {
        sqlx::query("DELETE FROM project_role_users WHERE role_id = $1")
            .bind(role_id)
            .execute(tx.conn())
            .await?;
        let mut seen = BTreeSet::new();
        for (i, u) in users.iter().enumerate() {
            if !seen.insert(u) {
                continue;
            }
            let uid = users::id_of(tx.conn(), u.as_str())
                .await
                .map_err(|e| at_field(e, &format!("users[{i}]")))?;
            sqlx::query("INSERT INTO project_role_users (role_id, user_id) VALUES ($1, $2)")
                .bind(role_id)
                .bind(uid)
                .execute(tx.conn())
                .await?;
        }
    }
    if let Some(groups) = groups {
        sqlx::query("DELETE FROM project_role_groups WHERE role_id = $1")
            .bind(role_id)
            .execute(tx.conn())
            .await?;
        let mut seen = BTreeSet::new();
        for (i, g) in groups.iter().enumerate() {
            if !seen.insert(g) {
                continue;
            }
            let gid: Option<i64> = sqlx::query_scalar("SELECT id FROM groups WHERE name = $1")
                .bind(g.as_str())
                .fetch_optional(tx.conn())
                .await?;
            let gid = gid.ok_or_else(|| {
                at_field(
                    StoreError::not_found(format!("group '{g}'")),
                    &format!("groups[{i}]"),
                )
            })?;
            sqlx::query("INSERT INTO project_role_groups (role_id, group_id) VALUES ($1, $2)")
                .bind(role_id)
                .bind(gid)
                .execute(tx.conn())
                .await?;
        }
    }
    Ok(())
}

pub async fn create(
    tx: &mut Tx,
    right: &OwnRight,
    ctx: &Ctx,
    project: &str,
    new: &NewRole,
) -> Result<Role> {
    right.covers(project)?;
    let p = projects::load(tx.conn(), project).await?;
    if exists(tx.conn(), p.id, &new.name).await? {
        return Err(StoreError::Conflict(format!(
            "project '{project}' already has a role '{}'",
            new.name
        )));
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO project_roles (project_id, name, description, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $4) RETURNING id",
    )
    .bind(p.id)
    .bind(&new.name)
    .bind(&new.description)
    .bind(ctx.now.as_micros())
    .fetch_one(tx.conn())
    .await?;
    set_members(tx, id, Some(&new.users), Some(&new.groups)).await?;
    let role = get(tx.conn(), project, &new.name).await?;
    record(
        tx,
        ctx,
        NewAuditEvent::new(
            ctx.actor_name(),
            "role.create",
            role_subject(project, &new.name),
        )
        .project(project)
        .after(json!(role)),
    )
    .await?;
    Ok(role)
}

fn role_subject(project: &str, name: &str) -> String {
    format!("role:{project}/{name}")
}

pub async fn update(
    tx: &mut Tx,
    right: &OwnRight,
    ctx: &Ctx,
    project: &str,
    name: &str,
    patch: &RolePatch,
) -> Result<Role> {
    right.covers(project)?;
    let (project_id, id, before) = load(tx.conn(), project, name).await?;
    let new_name = patch.name.clone().unwrap_or_else(|| name.to_owned());
    if new_name != name && exists(tx.conn(), project_id, &new_name).await? {
        return Err(StoreError::Conflict(format!(
            "project '{project}' already has a role '{new_name}'"
        )));
    }
    sqlx::query(
        "UPDATE project_roles SET name = $1, description = COALESCE($2, description), updated_at = $3 \
         WHERE id = $4",
    )
    .bind(&new_name)
    .bind(patch.description.as_deref())
    .bind(ctx.now.as_micros())
    .bind(id)
    .execute(tx.conn())
    .await?;
    set_members(tx, id, patch.users.as_deref(), patch.groups.as_deref()).await?;
    // Slots name their role: follow the rename in the configuration and in
    // the reviews running now (finished cycles keep the name they had).
    let rewritten = if new_name != name {
        Some(signoffs::rename_role(tx, ctx.now, project_id, name, &new_name).await?)
    } else {
        None
    };
    let after = get(tx.conn(), project, &new_name).await?;
    let action = if new_name != name {
        "role.rename"
    } else {
        "role.update"
    };
    let mut event = NewAuditEvent::new(ctx.actor_name(), action, role_subject(project, &new_name))
        .project(project)
        .before(json!(before))
        .after(json!(after));
    if let Some(rewritten) = rewritten {
        // The running reviews it rewrote, at their new revisions.
        event = event.detail("signoffs", json!(rewritten));
    }
    record(tx, ctx, event).await?;
    Ok(after)
}

/// Deletes a role that no configured slot and no running review uses.
pub async fn delete(
    tx: &mut Tx,
    right: &OwnRight,
    ctx: &Ctx,
    project: &str,
    name: &str,
) -> Result<()> {
    right.covers(project)?;
    let (project_id, id, before) = load(tx.conn(), project, name).await?;
    if let Some(use_) = signoffs::role_in_use(tx.conn(), project_id, name).await? {
        return Err(StoreError::Conflict(format!(
            "role '{name}' is still used by {use_}; reassign those slots first"
        )));
    }
    sqlx::query("DELETE FROM project_roles WHERE id = $1")
        .bind(id)
        .execute(tx.conn())
        .await?;
    record(
        tx,
        ctx,
        NewAuditEvent::new(ctx.actor_name(), "role.delete", role_subject(project, name))
            .project(project)
            .before(json!(before)),
    )
    .await?;
    Ok(())
}
