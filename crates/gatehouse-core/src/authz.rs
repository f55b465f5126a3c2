//! Who may do what (`DESIGN.md` §2.2). Each check returns a capability: a value
//! that only this module can make, and that the store's write functions take,
//! so a write cannot be reached without its check. Deny is the default.

use serde::{Deserialize, Serialize};

use crate::names::Username;

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub username: Username,
    pub is_admin: bool,
}

/// A user's standing in one governed project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProjectRole {
    Contributor,
    Owner,
}

impl ProjectRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Contributor => "contributor",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "owner" => Some(Self::Owner),
            "contributor" => Some(Self::Contributor),
            _ => None,
        }
    }
}

/// Why an action was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Denied(pub String);

/// Proof that the caller is an administrator.
#[derive(Debug)]
pub struct AdminRight(());

/// Proof that the caller may register things in a project (contributor, owner, admin).
#[derive(Debug)]
pub struct ContributeRight(());

/// Proof that the caller may edit a project and its members (owner, admin).
#[derive(Debug)]
pub struct OwnRight(());

/// Proof that the caller acts on their own account, or is an admin.
#[derive(Debug)]
pub struct SelfOrAdminRight(());

pub fn admin(p: &Principal) -> Result<AdminRight, Denied> {
    if p.is_admin {
        Ok(AdminRight(()))
    } else {
        Err(Denied("this action needs an administrator".into()))
    }
}

pub fn contribute(p: &Principal, role: Option<ProjectRole>) -> Result<ContributeRight, Denied> {
    if p.is_admin || role.is_some() {
        Ok(ContributeRight(()))
    } else {
        Err(Denied(
            "this action needs the owner or contributor role in the project".into(),
        ))
    }
}

pub fn own(p: &Principal, role: Option<ProjectRole>) -> Result<OwnRight, Denied> {
    if p.is_admin || role == Some(ProjectRole::Owner) {
        Ok(OwnRight(()))
    } else {
        Err(Denied(
            "this action needs the owner role in the project".into(),
        ))
    }
}

pub fn self_or_admin(p: &Principal, user: &Username) -> Result<SelfOrAdminRight, Denied> {
    if p.is_admin || &p.username == user {
        Ok(SelfOrAdminRight(()))
    } else {
        Err(Denied(
            "only the user themselves or an administrator may do this".into(),
        ))
    }
}

impl From<OwnRight> for ContributeRight {
    fn from(_: OwnRight) -> Self {
        ContributeRight(())
    }
}

/// Proof that the caller may read audit events: the whole log (administrators
/// and auditors) or one project's events (that project's owners).
#[derive(Debug)]
pub struct AuditReadRight {
    project: Option<String>,
}

impl AuditReadRight {
    /// The one project this right is limited to; `None` for the whole log.
    pub fn project(&self) -> Option<&str> {
        self.project.as_deref()
    }
}

/// The whole audit log, its verification and checkpoints: administrators and auditors.
pub fn audit_all(p: &Principal, is_auditor: bool) -> Result<AuditReadRight, Denied> {
    if p.is_admin || is_auditor {
        Ok(AuditReadRight { project: None })
    } else {
        Err(Denied(
            "reading the whole audit log needs an administrator or auditor; \
             project owners may read their project's events with project=KEY"
                .into(),
        ))
    }
}

/// The events of one project: administrators, auditors and the project's owners.
pub fn audit_project(
    p: &Principal,
    is_auditor: bool,
    project: &str,
    role: Option<ProjectRole>,
) -> Result<AuditReadRight, Denied> {
    if p.is_admin || is_auditor {
        Ok(AuditReadRight { project: None })
    } else if role == Some(ProjectRole::Owner) {
        Ok(AuditReadRight {
            project: Some(project.to_owned()),
        })
    } else {
        Err(Denied(format!(
            "reading the audit events of project '{project}' needs its owner role, or an administrator or auditor"
        )))
    }
}

/// A project must always keep at least one owner.
pub fn check_owner_removal(remaining_owners: usize) -> Result<(), Denied> {
    if remaining_owners == 0 {
        Err(Denied("a project must keep at least one owner".into()))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(admin: bool) -> Principal {
        Principal {
            username: Username::parse("u").unwrap(),
            is_admin: admin,
        }
    }

    #[test]
    fn permission_table() {
        use ProjectRole::*;
        let roles = [None, Some(Contributor), Some(Owner)];
        for admin_flag in [false, true] {
            for role in roles {
                let p = user(admin_flag);
                assert_eq!(admin(&p).is_ok(), admin_flag);
                assert_eq!(contribute(&p, role).is_ok(), admin_flag || role.is_some());
                assert_eq!(own(&p, role).is_ok(), admin_flag || role == Some(Owner));
            }
        }
    }

    #[test]
    fn self_or_admin_rule() {
        let me = user(false);
        assert!(self_or_admin(&me, &Username::parse("u").unwrap()).is_ok());
        assert!(self_or_admin(&me, &Username::parse("v").unwrap()).is_err());
        assert!(self_or_admin(&user(true), &Username::parse("v").unwrap()).is_ok());
    }

    #[test]
    fn audit_read_table() {
        use ProjectRole::*;
        for admin_flag in [false, true] {
            for auditor in [false, true] {
                let p = user(admin_flag);
                let all = audit_all(&p, auditor);
                assert_eq!(all.is_ok(), admin_flag || auditor);
                for role in [None, Some(Contributor), Some(Owner)] {
                    let r = audit_project(&p, auditor, "FRAUD", role);
                    match r {
                        Ok(right) if admin_flag || auditor => assert_eq!(right.project(), None),
                        Ok(right) => {
                            assert_eq!(role, Some(Owner));
                            assert_eq!(right.project(), Some("FRAUD"));
                        }
                        Err(_) => assert!(!admin_flag && !auditor && role != Some(Owner)),
                    }
                }
            }
        }
    }

    #[test]
    fn last_owner_stays() {
        assert!(check_owner_removal(0).is_err());
        assert!(check_owner_removal(1).is_ok());
    }
}
