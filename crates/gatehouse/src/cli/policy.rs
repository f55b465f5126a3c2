//! `gatehouse tier …` (tier policies and the policy matrix), `gatehouse doc …`
//! (documents attached to versions and bundles) and `gatehouse risk …` (a
//! project's risk assessment).

use std::path::PathBuf;

use clap::Subcommand;
use gatehouse_api::policies::{
    AttachDocument, DocumentList, DocumentView, PolicyMatrix, SetTierPolicy, TierPolicyView,
};
use gatehouse_api::projects::{AssessRisk, RiskAssessment};
use gatehouse_core::inventory::{RiskTier, Stage};
use gatehouse_core::risk::{
    Availability, Consumers, DecisionLifetime, Explainability, Impact, Regulation,
};
use gatehouse_core::{DocumentName, Subject};
use serde_json::{Value, json};

use super::ClientOpts;
use super::args::word;
use super::error::CliError;
use super::http::Api;
use super::output::{self, sanitize};
use super::signoff::{parse_subject, subject_path};

#[derive(Subcommand)]
pub enum TierCommand {
    /// The policies of the four risk tiers.
    List,
    /// One tier's policy.
    Show {
        #[arg(value_parser = clap::value_parser!(u8).range(1..=4))]
        tier: u8,
    },
    /// Change a tier's policy (admins); options not given keep their value.
    /// Running reviews keep the policy they were requested under.
    Set {
        #[arg(value_parser = clap::value_parser!(u8).range(1..=4))]
        tier: u8,
        /// Feedback approvals from distinct people before the final approval
        #[arg(long, value_name = "N")]
        min_feedback_approvals: Option<u32>,
        /// Whether an open major issue blocks the final approval
        #[arg(long, value_name = "BOOL")]
        major_issue_blocks: Option<bool>,
        /// A document required before a review (repeatable; replaces the list)
        #[arg(long = "document", value_name = "NAME", value_parser = parse_doc_name)]
        documents: Vec<DocumentName>,
        /// Require no document
        #[arg(long, conflicts_with = "documents")]
        no_documents: bool,
        /// A stage the tier may deploy to (repeatable; replaces the list)
        #[arg(long = "stage", value_name = "STAGE", value_parser = word::<Stage>())]
        stages: Vec<Stage>,
        /// Approval validity in days; 0: approvals do not expire
        #[arg(long, value_name = "DAYS")]
        validity_days: Option<u32>,
    },
    /// The policy matrix: tiers × considerations.
    Matrix,
}

#[derive(Subcommand)]
pub enum DocCommand {
    /// Attach a document to a version or bundle: by --uri and --sha256, or
    /// the text of --file (at most 256 KiB, kept by Gatehouse).
    Attach {
        /// version:PROJECT/MODEL/N or bundle:PROJECT/TAG
        #[arg(value_name = "SUBJECT", value_parser = parse_subject)]
        subject: Subject,
        /// The document's name, e.g. model_card, validation_report
        name: String,
        /// Where the document is stored (with --sha256)
        #[arg(long, conflicts_with = "file", requires = "sha256")]
        uri: Option<String>,
        /// Its SHA-256 digest
        #[arg(long, value_name = "HEX")]
        sha256: Option<String>,
        /// A text file whose content Gatehouse keeps
        #[arg(long, value_name = "PATH", required_unless_present = "uri")]
        file: Option<PathBuf>,
    },
    /// A subject's documents, and what its risk tier requires.
    List {
        #[arg(value_name = "SUBJECT", value_parser = parse_subject)]
        subject: Subject,
    },
    /// One document, with its text if Gatehouse keeps it.
    Show {
        #[arg(value_name = "SUBJECT", value_parser = parse_subject)]
        subject: Subject,
        name: String,
    },
}

#[derive(Subcommand)]
pub enum RiskCommand {
    /// Answer a project's risk questionnaire; sets the suggested tier (or
    /// --tier, with --justification).
    Assess {
        project: String,
        /// internal_few, internal_many or external
        #[arg(long, value_parser = word::<Consumers>())]
        consumers: Consumers,
        /// ad_hoc, scheduled or real_time
        #[arg(long, value_parser = word::<Availability>())]
        availability: Availability,
        /// low, financial, legal or on_people
        #[arg(long, value_parser = word::<Impact>())]
        impact: Impact,
        /// none, sector_rules or personal_data
        #[arg(long, value_parser = word::<Regulation>())]
        regulation: Regulation,
        /// days, months or years
        #[arg(long, value_parser = word::<DecisionLifetime>())]
        decision_lifetime: DecisionLifetime,
        /// not_needed, helpful or required
        #[arg(long, value_parser = word::<Explainability>())]
        explainability: Explainability,
        /// The tier to set instead of the suggestion
        #[arg(long, value_parser = clap::value_parser!(u8).range(1..=4))]
        tier: Option<u8>,
        /// Why the tier differs from the suggestion
        #[arg(long)]
        justification: Option<String>,
    },
    /// A project's latest risk assessment.
    Show { project: String },
}

fn parse_doc_name(s: &str) -> Result<DocumentName, String> {
    DocumentName::parse(s).map_err(|e| e.to_string())
}

/// A request body of the API as JSON.
fn body_of<T: serde::Serialize>(body: &T) -> Value {
    serde_json::to_value(body).unwrap_or_default()
}

fn days(d: u32) -> String {
    if d == 0 {
        "never expires".into()
    } else {
        format!("{d} days")
    }
}

fn list<T: ToString>(items: &[T]) -> String {
    if items.is_empty() {
        "-".into()
    } else {
        items
            .iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn print_tier(p: &TierPolicyView) {
    outln!("tier {}", p.tier.get());
    outln!("  min_feedback_approvals  {}", p.min_feedback_approvals);
    outln!("  major_issue_blocks      {}", p.major_issue_blocks);
    outln!("  required_documents      {}", list(&p.required_documents));
    outln!("  allowed_stages          {}", list(&p.allowed_stages));
    outln!(
        "  approval_validity       {}",
        days(p.approval_validity_days)
    );
    outln!(
        "  separation_of_duties    {}",
        if p.separation_of_duties_optional {
            "optional"
        } else {
            "required"
        }
    );
}

pub async fn tier(opts: &ClientOpts, cmd: TierCommand) -> Result<(), CliError> {
    let (api, json) = (Api::from_opts(opts)?, opts.json);
    match cmd {
        TierCommand::List => {
            let answer = api.get(&["policies", "tiers"]).await?;
            if json {
                output::print_json(&answer);
                return Ok(());
            }
            let all: Vec<TierPolicyView> = api.typed(&answer)?;
            for p in &all {
                print_tier(p);
            }
        }
        TierCommand::Show { tier } => {
            let answer = api.get(&["policies", "tiers", &tier.to_string()]).await?;
            if json {
                output::print_json(&answer);
            } else {
                print_tier(&api.typed(&answer)?);
            }
        }
        TierCommand::Set {
            tier,
            min_feedback_approvals,
            major_issue_blocks,
            documents,
            no_documents,
            stages,
            validity_days,
        } => {
            let path = ["policies", "tiers", &tier.to_string()];
            let now: TierPolicyView = api.typed(&api.get(&path).await?)?;
            let body = SetTierPolicy {
                min_feedback_approvals: min_feedback_approvals
                    .unwrap_or(now.min_feedback_approvals),
                major_issue_blocks: major_issue_blocks.unwrap_or(now.major_issue_blocks),
                required_documents: match (no_documents, documents.is_empty()) {
                    (true, _) => Vec::new(),
                    (false, true) => now.required_documents,
                    (false, false) => documents,
                },
                allowed_stages: if stages.is_empty() {
                    now.allowed_stages
                } else {
                    stages
                },
                approval_validity_days: validity_days.unwrap_or(now.approval_validity_days),
            };
            let answer = api.put(&path, Some(&body_of(&body))).await?;
            if json {
                output::print_json(&answer);
            } else {
                print_tier(&api.typed(&answer)?);
            }
        }
        TierCommand::Matrix => {
            let answer = api.get(&["policies", "matrix"]).await?;
            if json {
                output::print_json(&answer);
                return Ok(());
            }
            let m: PolicyMatrix = api.typed(&answer)?;
            let rows: Vec<Value> = m
                .tiers
                .iter()
                .map(|r| {
                    json!({
                        "tier": r.tier.get(),
                        "signoffs": r.signoffs_required,
                        "major": if r.major_issue_blocks { "blocks" } else { "-" },
                        "sod": r.separation_of_duties,
                        "documents": list(&r.required_documents),
                        "checks": list(&r.checks.iter().map(|c| c.name.clone()).collect::<Vec<_>>()),
                        "stages": list(&r.allowed_stages),
                        "validity": days(r.approval_validity_days),
                    })
                })
                .collect();
            out!(
                "{}",
                output::table(
                    &rows,
                    &[
                        output::col("TIER", "tier"),
                        output::col("SIGN-OFFS", "signoffs"),
                        output::col("MAJOR ISSUE", "major"),
                        output::col("SEPARATION", "sod"),
                        output::col("DOCUMENTS", "documents"),
                        output::col("CHECKS", "checks"),
                        output::col("STAGES", "stages"),
                        output::col("VALIDITY", "validity"),
                    ]
                )
            );
        }
    }
    Ok(())
}

fn doc_path(subject: &Subject, rest: &[&str]) -> Vec<String> {
    let mut p = subject_path(subject);
    p.push("documents".into());
    p.extend(rest.iter().map(|s| s.to_string()));
    p
}

fn print_doc(d: &DocumentView) {
    let place = match (&d.uri, d.size) {
        (Some(uri), _) => sanitize(uri),
        (None, Some(size)) => format!("(text, {size} bytes)"),
        (None, None) => "-".into(),
    };
    outln!(
        "{}  {}  sha256:{}  by {} at {}",
        sanitize(&d.name),
        place,
        d.sha256,
        sanitize(&d.attached_by),
        output::when_time(Some(d.attached_at))
    );
}

pub async fn doc(opts: &ClientOpts, cmd: DocCommand) -> Result<(), CliError> {
    let (api, json) = (Api::from_opts(opts)?, opts.json);
    match cmd {
        DocCommand::Attach {
            subject,
            name,
            uri,
            sha256,
            file,
        } => {
            let body = match (uri, file) {
                (Some(uri), _) => AttachDocument {
                    uri: Some(uri),
                    sha256,
                    content: None,
                },
                (None, Some(path)) => {
                    let content = std::fs::read_to_string(&path).map_err(|e| {
                        CliError::input(format!("cannot read {}: {e}", path.display()))
                    })?;
                    AttachDocument {
                        uri: None,
                        sha256,
                        content: Some(content),
                    }
                }
                (None, None) => return Err(CliError::input("give --uri and --sha256, or --file")),
            };
            let path = doc_path(&subject, &[&name]);
            let segs: Vec<&str> = path.iter().map(String::as_str).collect();
            let answer = api.put(&segs, Some(&body_of(&body))).await?;
            if json {
                output::print_json(&answer);
            } else {
                let d: DocumentView = api.typed(&answer)?;
                out!("Attached to {subject}: ");
                print_doc(&d);
            }
        }
        DocCommand::List { subject } => {
            let path = doc_path(&subject, &[]);
            let segs: Vec<&str> = path.iter().map(String::as_str).collect();
            let answer = api.get(&segs).await?;
            if json {
                output::print_json(&answer);
                return Ok(());
            }
            let l: DocumentList = api.typed(&answer)?;
            for d in &l.items {
                print_doc(d);
            }
            if l.items.is_empty() {
                outln!("No documents attached to {subject}.");
            }
            outln!("required by the risk tier: {}", list(&l.required));
            if !l.missing.is_empty() {
                outln!("missing: {}", list(&l.missing));
            }
        }
        DocCommand::Show { subject, name } => {
            let path = doc_path(&subject, &[&name]);
            let segs: Vec<&str> = path.iter().map(String::as_str).collect();
            let answer = api.get(&segs).await?;
            if json {
                output::print_json(&answer);
                return Ok(());
            }
            let d: DocumentView = api.typed(&answer)?;
            print_doc(&d);
            if let Some(text) = &d.content {
                outln!();
                outln!("{}", sanitize(text));
            }
        }
    }
    Ok(())
}

fn print_assessment(a: &RiskAssessment) {
    outln!("project          {}", sanitize(&a.project));
    outln!(
        "suggested tier   {} ({})",
        a.suggested_tier,
        sanitize(&a.reason)
    );
    outln!("chosen tier      {}", a.chosen_tier);
    if let Some(j) = &a.justification {
        outln!("justification    {}", sanitize(j));
    }
    outln!(
        "assessed         by {} at {}",
        sanitize(&a.assessed_by),
        output::when_time(Some(a.assessed_at))
    );
}

pub async fn risk(opts: &ClientOpts, cmd: RiskCommand) -> Result<(), CliError> {
    let (api, json) = (Api::from_opts(opts)?, opts.json);
    match cmd {
        RiskCommand::Assess {
            project,
            consumers,
            availability,
            impact,
            regulation,
            decision_lifetime,
            explainability,
            tier,
            justification,
        } => {
            let body = AssessRisk {
                consumers,
                availability,
                impact,
                regulation,
                decision_lifetime,
                explainability,
                risk_tier: tier
                    .map(|t| RiskTier::new(i64::from(t)))
                    .transpose()
                    .map_err(|e| CliError::input(e.to_string()))?,
                justification,
            };
            let answer = api
                .put(
                    &["projects", &project, "risk-assessment"],
                    Some(&body_of(&body)),
                )
                .await?;
            if json {
                output::print_json(&answer);
            } else {
                print_assessment(&api.typed(&answer)?);
            }
        }
        RiskCommand::Show { project } => {
            let answer = api.get(&["projects", &project, "risk-assessment"]).await?;
            if json {
                output::print_json(&answer);
            } else {
                print_assessment(&api.typed(&answer)?);
            }
        }
    }
    Ok(())
}
