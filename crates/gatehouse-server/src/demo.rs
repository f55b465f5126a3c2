//! The demo organisation (`gatehouse serve --demo`): people in each role,
//! projects of several risk tiers, models with versions carrying realistic
//! metrics, a bundle, groups, a risk officer (rita), and one infrastructure
//! per governance policy, each admitting the demo projects that run there.
//! Seeded only into an empty inventory; the passwords are fixed so that the
//! README tour can be followed verbatim.

use std::collections::BTreeMap;

use gatehouse_core::authz::{self, Principal, ProjectRole};
use gatehouse_core::checks::{CheckScope, Enforcement};
use gatehouse_core::documents::DocumentSource;
use gatehouse_core::gate::Admission;
use gatehouse_core::inventory::{InfraKind, Policy, RiskTier, Stage};
use gatehouse_core::{
    BundleTag, CheckName, Digest, DocumentName, GroupName, InfraName, ModelName, ProjectKey,
    Subject, Username,
};
use gatehouse_store::bundles::BundleItem;
use gatehouse_store::infra::NewInfra;
use gatehouse_store::projects::NewProject;
use gatehouse_store::users::NewUser;
use gatehouse_store::versions::NewVersion;
use gatehouse_store::{
    Ctx, StoreError, bundles, checks, documents, groups, infra, models, projects, users, versions,
};

use crate::app::{AppState, StartError};
use crate::auth::hash_password;

pub const ADMIN_PASSWORD: &str = "demo-admin";

/// (username, display name, role in the organisation)
const PEOPLE: &[(&str, &str, &str)] = &[
    ("alice", "Alice Martin", "Data scientist"),
    ("mark", "Mark Okafor", "Manager"),
    ("quinn", "Quinn Larsen", "QA analyst"),
    ("ivan", "Ivan Petrov", "IT engineer"),
    ("rita", "Rita Gomes", "Risk officer"),
];

fn password_of(user: &str) -> String {
    format!("demo-{user}")
}

/// The demo users the demo seeds and their passwords. Not `admin`: it is
/// created by the bootstrap, with [`ADMIN_PASSWORD`] only when no other
/// password was given.
pub fn credentials() -> Vec<(String, String)> {
    PEOPLE
        .iter()
        .map(|(u, _, _)| ((*u).to_owned(), password_of(u)))
        .collect()
}

/// What `--demo` found and did at a start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemoSeed {
    /// Seeded now into an empty inventory.
    Seeded,
    /// Seeded at an earlier start (the demo users exist); nothing changed.
    AlreadySeeded,
    /// The inventory holds other content: nothing seeded.
    NotEmpty,
}

fn key<T>(r: Result<T, gatehouse_core::InvalidInput>) -> Result<T, StartError> {
    r.map_err(|e| StartError::Other(format!("demo data: {e}")))
}

fn principal(name: &str, is_admin: bool) -> Result<Principal, StartError> {
    Ok(Principal {
        username: key(Username::parse(name))?,
        is_admin,
    })
}

fn metrics(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

fn strings(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// (project, model, description, versions as (metrics, description))
type DemoModel = (
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static [(&'static str, f64)], &'static str)],
);

/// Seeds the demo organisation unless the inventory already has content.
pub async fn seed(state: &AppState) -> Result<DemoSeed, StartError> {
    let mut conn = state.store.conn().await?;
    let has_projects = !projects::list(
        &mut conn,
        &Default::default(),
        &gatehouse_store::PageRequest::first(1),
    )
    .await?
    .items
    .is_empty();
    let has_people = users::find(&mut conn, "alice").await?.is_some();
    drop(conn);
    if has_projects || has_people {
        tracing::info!("demo data not seeded: the inventory is not empty");
        return Ok(if has_people {
            DemoSeed::AlreadySeeded
        } else {
            DemoSeed::NotEmpty
        });
    }
    seed_all(state).await.map_err(|e| match e {
        SeedError::Store(s) => StartError::Store(s),
        SeedError::Start(s) => s,
    })?;
    tracing::info!("demo organisation seeded");
    Ok(DemoSeed::Seeded)
}

enum SeedError {
    Store(StoreError),
    Start(StartError),
}

impl From<StoreError> for SeedError {
    fn from(e: StoreError) -> Self {
        SeedError::Store(e)
    }
}

impl From<StartError> for SeedError {
    fn from(e: StartError) -> Self {
        SeedError::Start(e)
    }
}

impl From<gatehouse_core::InvalidInput> for SeedError {
    fn from(e: gatehouse_core::InvalidInput) -> Self {
        SeedError::Start(StartError::Other(format!("demo data: {e}")))
    }
}

impl From<authz::Denied> for SeedError {
    fn from(e: authz::Denied) -> Self {
        SeedError::Start(StartError::Other(format!("demo data: {e}")))
    }
}

async fn seed_all(state: &AppState) -> Result<(), SeedError> {
    let now = state.clock.now();
    let admin = principal("admin", true)?;
    let admin_ctx = Ctx {
        actor: admin.clone(),
        now,
    };
    let admin_right = authz::admin(&admin)?;
    let mut tx = state.store.begin().await?;

    // People and groups.
    for (u, display, role) in PEOPLE {
        let hash = hash_password(&password_of(u))
            .map_err(|_| StartError::Other("cannot hash a demo password".into()))?;
        users::create(
            &mut tx,
            &admin_right,
            &admin_ctx,
            &NewUser {
                username: Username::parse(*u)?,
                display_name: format!("{display} ({role})"),
                email: format!("{u}@example.com"),
                is_admin: false,
                is_auditor: false,
                // The risk officer may lower a project's tier.
                is_risk_officer: *u == "rita",
                password_hash: Some(hash),
            },
        )
        .await?;
    }
    for (g, desc, members) in [
        ("data-science", "Data scientists", &["alice"][..]),
        ("risk-compliance", "Risk & Compliance", &["rita"][..]),
        ("it-operations", "IT Operations", &["ivan"][..]),
        ("qa", "Quality assurance", &["quinn"][..]),
    ] {
        let members = members
            .iter()
            .map(|m| Username::parse(*m))
            .collect::<Result<Vec<_>, _>>()?;
        groups::create(
            &mut tx,
            &admin_right,
            &admin_ctx,
            &GroupName::parse(g)?,
            desc,
            &members,
        )
        .await?;
    }

    // Projects: created by their owners.
    let mark = principal("mark", false)?;
    let alice = principal("alice", false)?;
    let mark_ctx = Ctx {
        actor: mark.clone(),
        now,
    };
    let alice_ctx = Ctx {
        actor: alice.clone(),
        now,
    };
    for (k, name, tier, desc, creator, contributors) in [
        (
            "FRAUD",
            "Card fraud detection",
            4,
            "Real-time scoring of card transactions",
            &mark_ctx,
            &["alice"][..],
        ),
        (
            "CHURN",
            "Customer churn",
            3,
            "Monthly churn propensity for retention campaigns",
            &mark_ctx,
            &["alice"][..],
        ),
        (
            "PRICING",
            "Pricing experiments",
            1,
            "Ad-hoc price elasticity analyses",
            &alice_ctx,
            &[][..],
        ),
    ] {
        let new = NewProject {
            key: ProjectKey::parse(k)?,
            name: name.into(),
            description: desc.into(),
            risk_tier: RiskTier::new(tier)?,
            owners: vec![],
            contributors: contributors
                .iter()
                .map(|c| Username::parse(*c))
                .collect::<Result<Vec<_>, _>>()?,
        };
        projects::create(&mut tx, creator, &new).await?;
    }

    // Models and versions, registered by alice.
    // Qualification checks: tier 4 versions need an AUC of 0.90 (blocking)
    // and are measured for fairness (advisory); nothing may carry health
    // data unnoticed (advisory, everywhere).
    for (name, scope, expression, enforcement, description) in [
        (
            "min-auc",
            CheckScope::Tier(RiskTier::new(4)?),
            "subject.kind != 'version' || metrics.auc >= 0.90",
            Enforcement::Blocking,
            "A tier 4 model version scores an AUC of at least 0.90",
        ),
        (
            "fairness",
            CheckScope::Tier(RiskTier::new(4)?),
            "subject.kind != 'version' || metrics.disparate_impact >= 0.8",
            Enforcement::Advisory,
            "Disparate impact of at least 0.8 (the four-fifths rule)",
        ),
        (
            "no-phi",
            CheckScope::Global,
            "!('PHI' in sensitivity)",
            Enforcement::Advisory,
            "Health data needs the privacy office's sign-off",
        ),
    ] {
        let new = checks::NewCheck {
            name: CheckName::parse(name)?,
            expression: expression.into(),
            enforcement,
            description: description.into(),
        };
        checks::create_shared(&mut tx, &admin_right, &admin_ctx, scope, &new).await?;
    }
    let versions_of: &[DemoModel] = &[
        (
            "FRAUD",
            "fraud-scorer",
            "Gradient-boosted scorer of card transactions",
            &[
                (
                    &[
                        ("auc", 0.912),
                        ("precision", 0.81),
                        ("recall", 0.74),
                        ("disparate_impact", 0.86),
                    ],
                    "baseline",
                ),
                (
                    &[
                        ("auc", 0.934),
                        ("precision", 0.84),
                        ("recall", 0.77),
                        ("disparate_impact", 0.88),
                    ],
                    "more features",
                ),
                (
                    &[
                        ("auc", 0.941),
                        ("precision", 0.86),
                        ("recall", 0.79),
                        ("disparate_impact", 0.91),
                    ],
                    "retrained on Q3 data",
                ),
            ],
        ),
        (
            "FRAUD",
            "transaction-anomaly",
            "Unsupervised anomaly detector",
            &[
                (&[("auc", 0.871), ("precision", 0.62)], "isolation forest"),
                (
                    &[("auc", 0.889), ("precision", 0.66)],
                    "tuned contamination",
                ),
            ],
        ),
        (
            "CHURN",
            "churn-predictor",
            "Monthly churn propensity",
            &[
                (&[("auc", 0.802), ("f1", 0.58)], "logistic regression"),
                (
                    &[("auc", 0.846), ("f1", 0.63), ("disparate_impact", 0.83)],
                    "gradient boosting",
                ),
            ],
        ),
        (
            "PRICING",
            "price-elasticity",
            "Elasticity estimates per segment",
            &[(&[("r2", 0.71), ("mape", 0.084)], "first estimate")],
        ),
    ];
    for (project, model, desc, vs) in versions_of {
        let contribute = authz::contribute(&alice, project, Some(ProjectRole::Contributor))?;
        let ctx = &alice_ctx;
        models::create(
            &mut tx,
            &contribute,
            ctx,
            project,
            &ModelName::parse(*model)?,
            desc,
        )
        .await?;
        for (i, (m, note)) in vs.iter().enumerate() {
            let n = i + 1;
            let digest_hex = format!(
                "{:0>64}",
                format!("{:x}", (project.len() * 1000 + model.len() * 10 + n) * 7919)
            );
            let new = NewVersion {
                artifact_uri: format!(
                    "s3://models/{}/{model}/{n}/model.pkl",
                    project.to_lowercase()
                ),
                digest: Some(Digest::parse(&digest_hex)?),
                metrics: metrics(m),
                params: strings(&[
                    ("max_depth", "8"),
                    ("learning_rate", "0.05"),
                    ("n_estimators", "400"),
                ]),
                training_data_ref: Some(format!(
                    "warehouse://{}/training/2026-q{}",
                    project.to_lowercase(),
                    n.min(4)
                )),
                code_ref: Some(format!(
                    "git+https://git.example.com/{}/{model}@v{n}",
                    project.to_lowercase()
                )),
                sensitivity: if *project == "FRAUD" {
                    vec!["PCI".into(), "PII".into()]
                } else {
                    vec!["PII".into()]
                },
                description: (*note).to_owned(),
                tags: strings(&[(
                    "team",
                    if *project == "PRICING" {
                        "pricing"
                    } else {
                        "risk-analytics"
                    },
                )]),
            };
            versions::register(&mut tx, &contribute, ctx, project, model, &new).await?;
            let subject = Subject::Version {
                project: ProjectKey::parse(*project)?,
                model: ModelName::parse(*model)?,
                version: u32::try_from(n).unwrap_or(1),
            };
            attach_demo_documents(&mut tx, &contribute, ctx, &subject).await?;
        }
    }
    bundles::create(
        &mut tx,
        &authz::contribute(&alice, "FRAUD", Some(ProjectRole::Contributor))?,
        &alice_ctx,
        "FRAUD",
        &BundleTag::parse("fraud-detection-v1.0")?,
        "Scorer and anomaly detector for the nightly batch",
        &[
            BundleItem {
                model: "fraud-scorer".into(),
                version: 2,
            },
            BundleItem {
                model: "transaction-anomaly".into(),
                version: 1,
            },
        ],
    )
    .await?;
    attach_demo_documents(
        &mut tx,
        &authz::contribute(&alice, "FRAUD", Some(ProjectRole::Contributor))?,
        &alice_ctx,
        &Subject::Bundle {
            project: ProjectKey::parse("FRAUD")?,
            tag: BundleTag::parse("fraud-detection-v1.0")?,
        },
    )
    .await?;
    seed_signoffs(&mut tx, now).await?;

    // Infrastructures, one per policy and kind.
    // Infrastructures, one per policy and kind, each admitting the demo
    // projects that may run there (PRICING, tier 1, stays off production).
    for (name, kind, stage, policy, desc, admitted) in [
        (
            "dev-api",
            InfraKind::ApiNode,
            Stage::Dev,
            Policy::Always,
            "Development API node",
            &["*"][..],
        ),
        (
            "qa-api",
            InfraKind::ApiNode,
            Stage::Qa,
            Policy::Warn,
            "QA API node",
            &["CHURN", "CREDIT", "FRAUD", "PRICING"][..],
        ),
        (
            "prod-api",
            InfraKind::ApiNode,
            Stage::Prod,
            Policy::Prevent,
            "Production API node",
            &["CHURN", "CREDIT", "FRAUD"][..],
        ),
        (
            "prod-automation",
            InfraKind::AutomationNode,
            Stage::Prod,
            Policy::Prevent,
            "Production automation node (batch scoring)",
            &["FRAUD"][..],
        ),
    ] {
        let new = NewInfra {
            name: InfraName::parse(name)?,
            kind,
            stage,
            policy,
            description: desc.into(),
            rollback_depth: infra::DEFAULT_ROLLBACK_DEPTH,
            admitted: Admission::parse("admitted_projects", admitted)?,
        };
        infra::create(&mut tx, &admin_right, &admin_ctx, &new).await?;
    }

    tx.commit().await?;
    Ok(())
}

/// Project `CREDIT` (tier 2, owner mark): reviewer roles, a `prod` sign-off
/// with a risk officer's feedback slot and quinn as final approver, and the
/// versions of `credit-limit` in every sign-off state: 1 approved, 2 rejected,
/// 3 abandoned, 4 in review with a minor issue, 5 not started.
async fn seed_signoffs(
    tx: &mut gatehouse_store::Tx,
    now: gatehouse_core::Timestamp,
) -> Result<(), SeedError> {
    use gatehouse_core::Subject;
    use gatehouse_core::signoff::{Command, Decision, SlotId, SlotKind, Verdict};
    use gatehouse_store::roles::{self, NewRole};
    use gatehouse_store::signoffs::{self, AssigneeRef, NewConfig};

    let ctx_of = |name: &str| -> Result<Ctx, SeedError> {
        Ok(Ctx {
            actor: principal(name, false)?,
            now,
        })
    };
    let (mark, alice) = (ctx_of("mark")?, ctx_of("alice")?);
    let new = NewProject {
        key: ProjectKey::parse("CREDIT")?,
        name: "Credit limits".into(),
        description: "Credit limit recommendations for card holders".into(),
        risk_tier: RiskTier::new(2)?,
        owners: vec![],
        contributors: vec![Username::parse("alice")?],
    };
    projects::create(tx, &mark, &new).await?;
    let own = authz::own(&mark.actor, "CREDIT", Some(ProjectRole::Owner))?;
    for (name, who) in [("Risk & Compliance", "rita"), ("IT Operations", "ivan")] {
        let role = NewRole {
            name: name.into(),
            description: String::new(),
            users: vec![Username::parse(who)?],
            groups: vec![],
        };
        roles::create(tx, &own, &mark, "CREDIT", &role).await?;
    }
    let config = NewConfig {
        stages: vec![(
            Stage::Prod,
            vec![
                (
                    SlotKind::Feedback,
                    AssigneeRef::Role("Risk & Compliance".into()),
                ),
                (
                    SlotKind::FinalApproval,
                    AssigneeRef::User(Username::parse("quinn")?),
                ),
            ],
        )],
        separation_of_duties: true,
    };
    signoffs::set_config(tx, &own, &mark, "CREDIT", &config).await?;
    let contribute = authz::contribute(&alice.actor, "CREDIT", Some(ProjectRole::Contributor))?;
    models::create(
        tx,
        &contribute,
        &alice,
        "CREDIT",
        &ModelName::parse("credit-limit")?,
        "Recommended credit limit per card holder",
    )
    .await?;
    for n in 1..=5 {
        let new = NewVersion {
            artifact_uri: format!("s3://models/credit/credit-limit/{n}/model.pkl"),
            metrics: metrics(&[
                ("rmse", 410.0 - f64::from(n) * 12.5),
                ("r2", 0.70 + f64::from(n) * 0.01),
            ]),
            sensitivity: vec!["PII".into()],
            description: format!("monthly retrain {n}"),
            ..Default::default()
        };
        versions::register(tx, &contribute, &alice, "CREDIT", "credit-limit", &new).await?;
    }
    let (rita, quinn) = (ctx_of("rita")?, ctx_of("quinn")?);
    let subject = |n: u32| -> Result<Subject, SeedError> {
        Ok(Subject::Version {
            project: ProjectKey::parse("CREDIT")?,
            model: ModelName::parse("credit-limit")?,
            version: n,
        })
    };
    let feedback = |verdict, comment: &str| Command::GiveFeedback {
        slot: SlotId(1),
        verdict,
        comment: comment.into(),
    };
    let decide = |decision, comment: &str| Command::Decide {
        decision,
        comment: comment.into(),
    };
    let request = || Command::request_review(false);
    let steps: Vec<(u32, &Ctx, Command)> = vec![
        (1, &alice, request()),
        (
            1,
            &rita,
            feedback(Verdict::Approve, "fair lending checks pass"),
        ),
        (
            1,
            &quinn,
            decide(Decision::Approve, "approved for production"),
        ),
        (2, &alice, request()),
        (
            2,
            &rita,
            feedback(Verdict::MajorIssue, "uses a proxy for age"),
        ),
        (
            2,
            &quinn,
            decide(Decision::Reject, "rejected: see the risk review"),
        ),
        (3, &alice, request()),
        (
            3,
            &quinn,
            decide(Decision::Abandon, "superseded by version 4"),
        ),
        (4, &alice, request()),
        (
            4,
            &rita,
            feedback(Verdict::MinorIssue, "document the income source"),
        ),
    ];
    for (n, ctx, cmd) in steps {
        signoffs::command(tx, ctx, &subject(n)?, Stage::Prod, cmd, None).await?;
    }
    Ok(())
}

/// The documents the shipped tier policies ask of the demo's tier 3 and 4
/// subjects (`CHURN`: a model card; `FRAUD`: a model card and a validation
/// report), attached by URI and digest.
async fn attach_demo_documents(
    tx: &mut gatehouse_store::Tx,
    right: &authz::ContributeRight,
    ctx: &Ctx,
    subject: &Subject,
) -> Result<(), StoreError> {
    let names: &[&str] = match subject.project().as_str() {
        "FRAUD" => &["model_card", "validation_report"],
        "CHURN" => &["model_card"],
        _ => &[],
    };
    for name in names {
        let uri = format!(
            "s3://governance/{}/{name}.md",
            subject.to_string().replace([':', '/'], "-").to_lowercase()
        );
        let source = DocumentSource::Uri {
            sha256: gatehouse_core::documents::text_digest(&uri),
            uri,
        };
        documents::attach(
            tx,
            right,
            ctx,
            subject,
            &DocumentName::parse(*name)?,
            &source,
        )
        .await?;
    }
    Ok(())
}
