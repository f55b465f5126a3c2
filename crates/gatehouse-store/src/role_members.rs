//! Who holds a project's reviewer roles: the enabled members of a role (groups
//! expanded) and whether a role exists. Only SQL: read by `signoffs` (slots
//! refresh their members) and `roles`, which depends on `signoffs` to rename
//! or delete a role.

use std::collections::{BTreeMap, BTreeSet};

use gatehouse_core::Username;
use sqlx::{AnyConnection, Row};

use crate::Result;

/// The enabled users of each of these roles, groups expanded, in one
/// statement, by role id (a role without members is absent).
pub(crate) async fn members_of(
    conn: &mut AnyConnection,
    role_ids: &[i64],
) -> Result<BTreeMap<i64, BTreeSet<Username>>> {
    let mut out: BTreeMap<i64, BTreeSet<Username>> = BTreeMap::new();
    if role_ids.is_empty() {
        return Ok(out);
    }
    let list = crate::in_list(1, role_ids.len());
    let mut q = sqlx::query(sqlf!(
        "SELECT x.role_id, u.username FROM users u JOIN ( \
           SELECT ru.role_id, ru.user_id FROM project_role_users ru WHERE ru.role_id IN ({list}) \
           UNION SELECT rg.role_id, gm.user_id FROM project_role_groups rg \
             JOIN group_members gm ON gm.group_id = rg.group_id WHERE rg.role_id IN ({list})) x \
         ON x.user_id = u.id WHERE u.disabled = 0"
    ));
    for id in role_ids {
        q = q.bind(id);
    }
    for r in q.fetch_all(conn).await? {
        if let Ok(name) = Username::parse(r.try_get::<String, _>("username")?) {
            out.entry(r.try_get("role_id")?).or_default().insert(name);
        }
    }
    Ok(out)
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
    let ids: Vec<i64> = rows
        .iter()
        .map(|r| r.try_get("id"))
        .collect::<std::result::Result<_, _>>()?;
    let mut members = members_of(conn, &ids).await?;
    let mut out = BTreeMap::new();
    for (r, id) in rows.iter().zip(&ids) {
        let name: String = r.try_get("name")?;
        out.insert(name, members.remove(id).unwrap_or_default());
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
