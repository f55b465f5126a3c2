//! Who may do what (`DESIGN.md` §2.2). Each check returns a capability: a value
//! that only this module can make, and that the store's write functions take,
//! so a write cannot be reached without its check. Deny is the default.

use serde::{Deserialize, Serialize};

use crate::error::{ErrorCode, InvalidInput};
use crate::inventory::{DESCRIPTION_MAX, RiskTier, check_text};
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
pub struct ContributeRight {
    project: String,
}

/// Proof that the caller may edit a project and its members (owner, admin).
#[derive(Debug)]
pub struct OwnRight {
    project: String,
}

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

/// A right that names its project refuses to serve another.
fn same_project(right: &str, asked: &str) -> Result<(), Denied> {
    if right == asked {
        Ok(())
    } else {
        Err(Denied(format!(
            "the right was granted for project '{right}', not '{asked}'"
        )))
    }
}

impl ContributeRight {
    /// The project this right was granted for.
    pub fn project(&self) -> &str {
        &self.project
    }

    /// Refuses unless the right was granted for `project`.
    pub fn covers(&self, project: &str) -> Result<(), Denied> {
        same_project(&self.project, project)
    }
}

impl OwnRight {
    /// The project this right was granted for.
    pub fn project(&self) -> &str {
        &self.project
    }

    /// Refuses unless the right was granted for `project`.
    pub fn covers(&self, project: &str) -> Result<(), Denied> {
        same_project(&self.project, project)
    }
}

/// The right to register things in `project`, for one of its members.
pub fn contribute(
    p: &Principal,
    project: &str,
    role: Option<ProjectRole>,
) -> Result<ContributeRight, Denied> {
    if p.is_admin || role.is_some() {
        Ok(ContributeRight {
            project: project.to_owned(),
        })
    } else {
        Err(Denied(
            "this action needs the owner or contributor role in the project".into(),
        ))
    }
}

/// The right to edit `project` and its members, for its owners.
pub fn own(p: &Principal, project: &str, role: Option<ProjectRole>) -> Result<OwnRight, Denied> {
    if p.is_admin || role == Some(ProjectRole::Owner) {
        Ok(OwnRight {
            project: project.to_owned(),
        })
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
    fn from(o: OwnRight) -> Self {
        ContributeRight { project: o.project }
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

/// Proof that the caller may change a project's risk tier from one value to
/// another (`DESIGN.md` §2.2).
#[derive(Debug)]
pub struct TierRight {
    from: RiskTier,
    to: RiskTier,
    justification: Option<String>,
}

impl TierRight {
    pub fn from(&self) -> RiskTier {
        self.from
    }

    pub fn to(&self) -> RiskTier {
        self.to
    }

    /// The written justification (required for lowering, kept if given).
    pub fn justification(&self) -> Option<&str> {
        self.justification.as_deref()
    }
}

/// Why a tier change was refused: no right (`forbidden`) or no justification
/// (`invalid_input`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TierChangeError {
    #[error("{0}")]
    Denied(String),
    #[error(transparent)]
    InvalidInput(#[from] InvalidInput),
}

impl TierChangeError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Denied(_) => ErrorCode::Forbidden,
            Self::InvalidInput(_) => ErrorCode::InvalidInput,
        }
    }
}

/// Who may change a project's risk tier. Raising it (more process) is open to
/// the project's owners and administrators. Lowering it needs an administrator
/// or a risk officer with a written justification, and never someone who owns
/// or contributes to the project: nobody relaxes the rules over their own work.
pub fn change_tier(
    p: &Principal,
    is_risk_officer: bool,
    role: Option<ProjectRole>,
    from: RiskTier,
    to: RiskTier,
    justification: Option<&str>,
) -> Result<TierRight, TierChangeError> {
    let justification = justification.map(str::trim).filter(|j| !j.is_empty());
    if let Some(j) = justification {
        check_text("justification", j, DESCRIPTION_MAX)?;
    }
    let right = TierRight {
        from,
        to,
        justification: justification.map(str::to_owned),
    };
    if to >= from {
        return if p.is_admin || role == Some(ProjectRole::Owner) {
            Ok(right)
        } else {
            Err(TierChangeError::Denied(
                "raising a project's risk tier needs the owner role in the project or an administrator"
                    .into(),
            ))
        };
    }
    if !(p.is_admin || is_risk_officer) {
        return Err(TierChangeError::Denied(format!(
            "lowering a project's risk tier (from {} to {}) needs an administrator or a risk officer",
            from.get(),
            to.get()
        )));
    }
    if let Some(r) = role {
        return Err(TierChangeError::Denied(format!(
            "separation of duties: '{}' is {} of the project and may not lower its risk tier",
            p.username,
            match r {
                ProjectRole::Owner => "an owner",
                ProjectRole::Contributor => "a contributor",
            }
        )));
    }
    if right.justification.is_none() {
        return Err(InvalidInput::new(
            "justification",
            "lowering a project's risk tier needs a written justification",
        )
        .into());
    }
    Ok(right)
}

/// Proof that the caller may add a deploy grant of this kind for a project.
#[derive(Debug)]
pub struct GrantRight(());

/// Who may hand out deploy grants (`DESIGN.md` §2.2): a project's owners give
/// normal grants, and only on infrastructures that admit the project (for a
/// grant on every infrastructure of a stage, `admitted` is `None`: each
/// deployment checks admission again). Emergency (break-glass) grants are for
/// administrators alone. Admission binds administrators too.
pub fn grant_deploy(
    p: &Principal,
    role: Option<ProjectRole>,
    emergency: bool,
    admitted: Option<bool>,
    project: &str,
    infra: &str,
) -> Result<GrantRight, Denied> {
    if emergency && !p.is_admin {
        return Err(Denied(
            "emergency (break-glass) grants are given by administrators only".into(),
        ));
    }
    if !(p.is_admin || role == Some(ProjectRole::Owner)) {
        return Err(Denied(
            "granting deploy rights needs the owner role in the project".into(),
        ));
    }
    if admitted == Some(false) {
        return Err(Denied(format!(
            "infrastructure '{infra}' does not admit project '{project}'; an administrator must admit it first"
        )));
    }
    Ok(GrantRight(()))
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
                assert_eq!(
                    contribute(&p, "FRAUD", role).is_ok(),
                    admin_flag || role.is_some()
                );
                assert_eq!(
                    own(&p, "FRAUD", role).is_ok(),
                    admin_flag || role == Some(Owner)
                );
            }
        }
    }

    #[test]
    fn rights_name_their_project() {
        let p = user(false);
        let own = own(&p, "FRAUD", Some(ProjectRole::Owner)).unwrap();
        assert_eq!(own.project(), "FRAUD");
        assert!(own.covers("FRAUD").is_ok());
        assert!(own.covers("CHURN").is_err());
        let c: ContributeRight = own.into();
        assert!(c.covers("FRAUD").is_ok() && c.covers("CREDIT").is_err());
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

    fn tier(n: i64) -> RiskTier {
        RiskTier::new(n).unwrap()
    }

    #[test]
    fn tier_change_table() {
        use ProjectRole::*;
        for admin_flag in [false, true] {
            for officer in [false, true] {
                for role in [None, Some(Contributor), Some(Owner)] {
                    for from in 1..=4 {
                        for to in 1..=4 {
                            for just in [None, Some("  "), Some("model retired to batch use")] {
                                let p = user(admin_flag);
                                let r = change_tier(&p, officer, role, tier(from), tier(to), just);
                                let justified = just.is_some_and(|j| !j.trim().is_empty());
                                let want = if to >= from {
                                    admin_flag || role == Some(Owner)
                                } else {
                                    (admin_flag || officer) && role.is_none() && justified
                                };
                                assert_eq!(
                                    r.is_ok(),
                                    want,
                                    "admin={admin_flag} officer={officer} role={role:?} {from}->{to} {just:?}"
                                );
                                match r {
                                    Ok(right) => {
                                        assert_eq!(right.from(), tier(from));
                                        assert_eq!(right.to(), tier(to));
                                        if to < from {
                                            assert_eq!(
                                                right.justification(),
                                                Some("model retired to batch use")
                                            );
                                        }
                                    }
                                    Err(e)
                                        if to < from
                                            && (admin_flag || officer)
                                            && role.is_none() =>
                                    {
                                        assert_eq!(e.code(), ErrorCode::InvalidInput);
                                    }
                                    Err(e) => assert_eq!(e.code(), ErrorCode::Forbidden),
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn nobody_lowers_the_tier_of_their_own_project() {
        let e = change_tier(
            &user(true),
            true,
            Some(ProjectRole::Owner),
            tier(4),
            tier(1),
            Some("because"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("separation of duties"), "{e}");
    }

    #[test]
    fn grant_table() {
        use ProjectRole::*;
        for admin_flag in [false, true] {
            for role in [None, Some(Contributor), Some(Owner)] {
                for emergency in [false, true] {
                    for admitted in [None, Some(false), Some(true)] {
                        let r =
                            grant_deploy(&user(admin_flag), role, emergency, admitted, "P", "i");
                        let want = (admin_flag || (role == Some(Owner) && !emergency))
                            && admitted != Some(false);
                        assert_eq!(
                            r.is_ok(),
                            want,
                            "admin={admin_flag} role={role:?} emergency={emergency} admitted={admitted:?}"
                        );
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
