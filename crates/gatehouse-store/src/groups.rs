//! Groups of users, and their memberships.

use std::collections::BTreeMap;

use gatehouse_core::audit::NewAuditEvent;
use gatehouse_core::authz::AdminRight;
use gatehouse_core::{GroupName, Timestamp, Username};
use serde::Serialize;
use serde_json::json;
use sqlx::{AnyConnection, Row};

use crate::audit::record;
use crate::error::at_field;
use crate::users;
use crate::{Ctx, Page, PageRequest, Result, StoreError, Tx};

#[derive(Debug, Clone, Serialize)]
pub struct Group {
    pub name: GroupName,
    pub description: String,
    /// Usernames, sorted.
    pub members: Vec<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

async fn members(conn: &mut AnyConnection, group_id: i64) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT u.username FROM group_members m JOIN users u ON u.id = m.user_id WHERE m.group_id = $1 ORDER BY u.username",
    )
    .bind(group_id)
    .fetch_all(conn)
    .await?)
}

async fn load(conn: &mut AnyConnection, name: &str) -> Result<(i64, Group)> {
    let row = sqlx::query(
        "SELECT id, name, description, created_at, updated_at FROM groups WHERE name = $1",
    )
    .bind(name)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| StoreError::not_found(format!("group '{name}'")))?;
    let id: i64 = row.try_get("id")?;
    let name: String = row.try_get("name")?;
    let group = Group {
        name: GroupName::parse(name)?,
        description: row.try_get("description")?,
        members: members(conn, id).await?,
        created_at: Timestamp::from_micros(row.try_get("created_at")?),
        updated_at: Timestamp::from_micros(row.try_get("updated_at")?),
    };
    Ok((id, group))
}

pub async fn get(conn: &mut AnyConnection, name: &str) -> Result<Group> {
    Ok(load(conn, name).await?.1)
}

pub async fn list(
    conn: &mut AnyConnection,
    member: Option<&str>,
    page: &PageRequest,
) -> Result<Page<Group>> {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT g.name FROM groups g WHERE g.name > $1 AND ($2 IS NULL OR EXISTS ( \
           SELECT 1 FROM group_members m JOIN users u ON u.id = m.user_id WHERE m.group_id = g.id AND u.username = $2)) \
         ORDER BY g.name LIMIT $3",
    )
    .bind(page.after.as_deref().unwrap_or(""))
    .bind(member)
    .bind(page.fetch())
    .fetch_all(&mut *conn)
    .await?;
    let mut items = Vec::with_capacity(names.len());
    for n in names {
        items.push(get(conn, &n).await?);
    }
    Ok(Page::from_rows(items, page, |g| g.name.to_string()))
}

pub async fn create(
    tx: &mut Tx,
    _: &AdminRight,
    ctx: &Ctx,
    name: &GroupName,
    description: &str,
    member_names: &[Username],
) -> Result<Group> {
    if load(tx.conn(), name.as_str()).await.is_ok() {
        return Err(StoreError::Conflict(format!(
            "group '{name}' already exists"
        )));
    }
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO groups (name, description, created_at, updated_at) VALUES ($1, $2, $3, $3) RETURNING id",
    )
    .bind(name.as_str())
    .bind(description)
    .bind(ctx.now.as_micros())
    .fetch_one(tx.conn())
    .await?;
    for (i, m) in member_names.iter().enumerate() {
        let uid = users::id_of(tx.conn(), m.as_str())
            .await
            .map_err(|e| at_field(e, &format!("members[{i}]")))?;
        sqlx::query(
            "INSERT INTO group_members (group_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(uid)
        .execute(tx.conn())
        .await?;
    }
    let group = get(tx.conn(), name.as_str()).await?;
    record(
        tx,
        ctx,
        NewAuditEvent::new(ctx.actor_name(), "group.create", format!("group:{name}"))
            .after(json!(group)),
    )
    .await?;
    Ok(group)
}

pub async fn update(
    tx: &mut Tx,
    _: &AdminRight,
    ctx: &Ctx,
    name: &str,
    description: Option<&str>,
) -> Result<Group> {
    let (id, before) = load(tx.conn(), name).await?;
    sqlx::query(
        "UPDATE groups SET description = COALESCE($1, description), updated_at = $2 WHERE id = $3",
    )
    .bind(description)
    .bind(ctx.now.as_micros())
    .bind(id)
    .execute(tx.conn())
    .await?;
    let after = get(tx.conn(), name).await?;
    record(
        tx,
        ctx,
        NewAuditEvent::new(ctx.actor_name(), "group.update", format!("group:{name}"))
            .before(json!(before))
            .after(json!(after)),
    )
    .await?;
    Ok(after)
}

/// What deleting a group takes from one project: its deploy grants to the
/// group and the group's place in reviewer roles.
#[derive(Default)]
struct ProjectLoss {
    grants: Vec<crate::deployments::Grant>,
    roles: Vec<String>,
}

/// Deletes a group with its memberships, its deploy grants and its place in
/// reviewer roles. Besides `group.delete`, each project that lost something
/// gets a `project.group_removed` event saying what (the grants as they were,
/// the role names), so its owners see it in the project's trail.
pub async fn delete(tx: &mut Tx, _: &AdminRight, ctx: &Ctx, name: &str) -> Result<()> {
    let (id, before) = load(tx.conn(), name).await?;
    let mut losses: BTreeMap<String, ProjectLoss> = BTreeMap::new();
    for g in crate::deployments::grants_of_group(tx.conn(), id).await? {
        losses.entry(g.project.clone()).or_default().grants.push(g);
    }
    let roles = sqlx::query(
        "SELECT p.key, r.name FROM project_role_groups rg JOIN project_roles r ON r.id = rg.role_id \
         JOIN projects p ON p.id = r.project_id WHERE rg.group_id = $1 ORDER BY p.key, r.name",
    )
    .bind(id)
    .fetch_all(tx.conn())
    .await?;
    for r in &roles {
        let key: String = r.try_get("key")?;
        losses
            .entry(key)
            .or_default()
            .roles
            .push(r.try_get("name")?);
    }
    for sql in [
        "DELETE FROM deploy_grants WHERE group_id = $1",
        "DELETE FROM project_role_groups WHERE group_id = $1",
        "DELETE FROM group_members WHERE group_id = $1",
        "DELETE FROM groups WHERE id = $1",
    ] {
        sqlx::query(sql).bind(id).execute(tx.conn()).await?;
    }
    record(
        tx,
        ctx,
        NewAuditEvent::new(ctx.actor_name(), "group.delete", format!("group:{name}"))
            .detail("projects", json!(losses.keys().collect::<Vec<_>>()))
            .before(json!(before)),
    )
    .await?;
    for (key, loss) in losses {
        record(
            tx,
            ctx,
            NewAuditEvent::new(
                ctx.actor_name(),
                "project.group_removed",
                format!("project:{key}"),
            )
            .project(&key)
            .detail("group", json!(name))
            .detail("deploy_grants_removed", json!(loss.grants))
            .detail("removed_from_roles", json!(loss.roles)),
        )
        .await?;
    }
    Ok(())
}

/// Adds (`add = true`) or removes a member; idempotent, audited only when it changes something.
pub async fn set_member(
    tx: &mut Tx,
    _: &AdminRight,
    ctx: &Ctx,
    name: &str,
    username: &str,
    add: bool,
) -> Result<Group> {
    let (id, before) = load(tx.conn(), name).await?;
    let uid = users::id_of(tx.conn(), username).await?;
    let is_member = before.members.iter().any(|m| m == username);
    if add == is_member {
        return Ok(before);
    }
    let sql = if add {
        "INSERT INTO group_members (group_id, user_id) VALUES ($1, $2)"
    } else {
        "DELETE FROM group_members WHERE group_id = $1 AND user_id = $2"
    };
    sqlx::query(sql)
        .bind(id)
        .bind(uid)
        .execute(tx.conn())
        .await?;
    sqlx::query("UPDATE groups SET updated_at = $1 WHERE id = $2")
        .bind(ctx.now.as_micros())
        .bind(id)
        .execute(tx.conn())
        .await?;
    let after = get(tx.conn(), name).await?;
    let action = if add {
        "group.member_add"
    } else {
        "group.member_remove"
    };
    record(
        tx,
        ctx,
        NewAuditEvent::new(ctx.actor_name(), action, format!("group:{name}"))
            .detail("member", json!(username))
            .before(json!(before.members))
            .after(json!(after.members)),
    )
    .await?;
    Ok(after)
}
