//! Who holds a project's reviewer roles: the enabled members of a role (groups
//! expanded) and whether a role exists. Only SQL: read by `signoffs` (slots
//! refresh their members) and `roles`, which depends on `signoffs` to rename
//! or delete a role.

use std::collections::{BTreeMap, BTreeSet};

use gatehouse_core::Username;
use sqlx::{AnyConnection, Row};

use crate::Result;

/// Enabled users of a role, groups expanded.
pub(crate) async fn role_members(
    conn: &mut AnyConnection,
    role_id: i64,
) -> Result<BTreeSet<Username>> {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT u.username FROM users u WHERE u.disabled = 0 AND u.id IN ( \
           SELECT ru.user_id FROM project_role_users ru WHERE ru.role_id = $1 \
           UNION SELECT gm.user_id FROM project_role_groups rg \
             JOIN group_members gm ON gm.group_id = rg.group_id WHERE rg.role_id = $1)",
    )
    .bind(role_id)
    .fetch_all(conn)
    .await?;
    Ok(names
        .into_iter()
        .filter_map(|n| Username::parse(n).ok())
        .collect())
}

/// The members of every role of a project, by role name.
pub async fn members_by_role(
    conn: &mut AnyConnection,
    project_id: i64,
) -> Result<BTreeMap<String, BTreeSet<Username>>> {
    let rows = sqlx::query("SELECT id, name FROM project_roles WHERE project_id = $1")
        .bind(project_id)
        .fetch_all(&mut *conn)
        .await?;
    let mut out = BTreeMap::new();
    for r in &rows {
        let id: i64 = r.try_get("id")?;
        let name: String = r.try_get("name")?;
        out.insert(name, role_members(conn, id).await?);
    }
    Ok(out)
}

/// Whether the project has a role of this name.
pub async fn exists(conn: &mut AnyConnection, project_id: i64, name: &str) -> Result<bool> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM project_roles WHERE project_id = $1 AND name = $2",
    )
    .bind(project_id)
    .bind(name)
    .fetch_one(conn)
    .await?;
    Ok(n > 0)
}
