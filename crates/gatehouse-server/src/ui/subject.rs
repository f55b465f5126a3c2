//! Model version and bundle pages: the overview (metadata, governance status
//! per stage, where it is live, metrics across the model's versions,
//! provenance, history) and the sign-off tab (slots, answers, and the forms
//! the viewer may use: request, feedback, delegate, decide).
//!
//! Commands run through the API's own `signoffs::execute` (same rules, same
//! audit events, same metrics); which forms appear is judged by the store's
//! `signoffs::offers`, which asks core exactly as a command would.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use gatehouse_core::inventory::Stage;
use gatehouse_core::signoff::{Decision, SignoffState, SlotKind};
use gatehouse_core::{BundleTag, ModelName, ProjectKey, Subject};
use gatehouse_store::audit::{AuditFilter, Order};
use gatehouse_store::signoffs::{self, Offers, SignoffView, StageStatus};
use gatehouse_store::{PageRequest, bundles, deployments, projects, versions};
use serde::Deserialize;

use super::home::{Badge, LiveCell};
use super::page::{Chrome, PageError, PageResult, Section, render, sentence};
use super::session::{Posted, Viewer};
use super::{fmt, svg, urls};
use crate::api::signoffs::{self as api, Input as _};
use crate::app::AppState;
use crate::error::ApiError;
use gatehouse_api::signoffs as bodies;

/// Which subject a URL names.
#[derive(Debug, Clone)]
pub enum Which {
    Version(String, String, i64),
    Bundle(String, String),
}

impl Which {
    pub(crate) fn subject(&self) -> Result<Subject, PageError> {
        let bad = |e: gatehouse_core::InvalidInput| PageError::not_found(format!("{e}"));
        Ok(match self {
            Which::Version(k, m, n) => Subject::Version {
                project: ProjectKey::parse(k).map_err(bad)?,
                model: ModelName::parse(m).map_err(bad)?,
                version: u32::try_from(*n)
                    .ok()
                    .filter(|v| *v >= 1)
                    .ok_or_else(|| PageError::not_found("Versions are numbered from 1."))?,
            },
            Which::Bundle(k, t) => Subject::Bundle {
                project: ProjectKey::parse(k).map_err(bad)?,
                tag: BundleTag::parse(t).map_err(bad)?,
            },
        })
    }
}

/// A key-value line of a facts list.
pub struct Fact {
    pub name: String,
    pub value: String,
    pub href: Option<String>,
}

fn fact(name: &str, value: impl Into<String>) -> Fact {
    Fact {
        name: name.to_owned(),
        value: value.into(),
        href: None,
    }
}

/// One stage's card in the governance status section.
pub struct StageCard {
    pub stage: String,
    pub badge: Badge,
    pub cycle: u32,
    pub approve: usize,
    pub minor: usize,
    pub major: usize,
    pub requested: String,
    pub decision: String,
    pub expires: String,
    pub href: String,
}

/// What both tabs show of a subject.
pub struct Header {
    pub kind: &'static str,
    pub title: String,
    pub text: String,
    pub project: String,
    pub project_href: String,
    pub tier: u8,
    pub created_by: String,
    pub created_at: String,
    pub description: String,
    pub href: String,
    pub answer: String,
    pub answer_class: String,
}

struct Loaded {
    subject: Subject,
    header: Header,
    governance: Vec<StageStatus>,
    facts: Vec<Fact>,
    metrics: Vec<Fact>,
    params: Vec<Fact>,
    tags: Vec<Fact>,
    sensitivity: Vec<String>,
    items: Vec<Fact>,
    model: Option<(String, String)>,
}

async fn load(state: &AppState, which: &Which) -> PageResult<Loaded> {
    let subject = which.subject()?;
    let mut conn = state.store.conn().await?;
    let text = subject.to_string();
    let project = projects::get(&mut conn, subject.project().as_str()).await?;
    let stages = signoffs::governance(
        &mut conn,
        [(project.key.as_str(), text.as_str())],
        state.clock.now(),
    )
    .await?
    .stages(project.key.as_str(), &text)?;
    let href = urls::subject(&subject);
    let mut l = match which {
        Which::Version(k, m, n) => {
            let v = versions::get(&mut conn, k, m, *n).await?;
            let mut facts = vec![fact("Artifact", v.artifact_uri.clone())];
            facts.push(fact(
                "Digest",
                v.digest.clone().unwrap_or_else(|| "not given".into()),
            ));
            if let Some(d) = &v.training_data_ref {
                facts.push(fact("Training data", d.clone()));
            }
            if let Some(c) = &v.code_ref {
                facts.push(fact("Code", c.clone()));
            }
            Loaded {
                header: Header {
                    kind: "Model version",
                    title: format!("{} v{}", v.model, v.version),
                    text: text.clone(),
                    project: project.key.to_string(),
                    project_href: urls::project(project.key.as_str()),
                    tier: project.risk_tier.get(),
                    created_by: v.created_by.clone(),
                    created_at: fmt::when(v.created_at),
                    description: v.description.clone(),
                    href: href.clone(),
                    answer: String::new(),
                    answer_class: String::new(),
                },
                facts,
                metrics: v
                    .metrics
                    .iter()
                    .map(|(k, x)| fact(k, format!("{x}")))
                    .collect(),
                params: v.params.iter().map(|(k, x)| fact(k, x.clone())).collect(),
                tags: v.tags.iter().map(|(k, x)| fact(k, x.clone())).collect(),
                sensitivity: v.sensitivity.clone(),
                items: vec![],
                model: Some((k.clone(), m.clone())),
                governance: stages,
                subject: subject.clone(),
            }
        }
        Which::Bundle(k, t) => {
            let b = bundles::get(&mut conn, k, t).await?;
            Loaded {
                header: Header {
                    kind: "Bundle",
                    title: format!("bundle {}", b.tag),
                    text: text.clone(),
                    project: project.key.to_string(),
                    project_href: urls::project(project.key.as_str()),
                    tier: project.risk_tier.get(),
                    created_by: b.created_by.clone(),
                    created_at: fmt::when(b.created_at),
                    description: b.description.clone(),
                    href: href.clone(),
                    answer: String::new(),
                    answer_class: String::new(),
                },
                facts: vec![],
                metrics: vec![],
                params: vec![],
                tags: vec![],
                sensitivity: vec![],
                items: b
                    .versions
                    .iter()
                    .map(|i| Fact {
                        name: i.model.clone(),
                        value: format!("v{}", i.version),
                        href: Some(format!(
                            "/projects/{}/models/{}/versions/{}",
                            urls::seg(k),
                            urls::seg(&i.model),
                            i.version
                        )),
                    })
                    .collect(),
                model: None,
                governance: stages,
                subject: subject.clone(),
            }
        }
    };
    let (answer, class) = answer_line(&l.governance);
    l.header.answer = answer;
    l.header.answer_class = class;
    Ok(l)
}

/// The one line a person can act on, from the stages' states.
fn answer_line(stages: &[StageStatus]) -> (String, String) {
    if let Some(s) = stages.iter().find(|s| s.state == SignoffState::InReview) {
        let open = s.feedback.open_slots.len();
        return (
            format!(
                "In review for {}: {} slot{} still open (requested by {}).",
                s.stage,
                open,
                if open == 1 { "" } else { "s" },
                s.requested_by.as_deref().unwrap_or("someone")
            ),
            "in_review".into(),
        );
    }
    if let Some(s) = stages
        .iter()
        .rev()
        .find(|s| matches!(s.state, SignoffState::Rejected | SignoffState::Abandoned))
    {
        return (
            format!(
                "{} for {} by {} on {}: the sign-off is locked.",
                if s.state == SignoffState::Rejected {
                    "Rejected"
                } else {
                    "Abandoned"
                },
                s.stage,
                s.decided_by.as_deref().unwrap_or("?"),
                fmt::when_opt(s.decided_at)
            ),
            s.state.as_str().into(),
        );
    }
    if let Some(s) = stages
        .iter()
        .rev()
        .find(|s| s.state == SignoffState::Approved)
    {
        let mut line = format!(
            "Approved for {} by {} on {}",
            s.stage,
            s.decided_by.as_deref().unwrap_or("?"),
            fmt::when_opt(s.decided_at)
        );
        if s.expired {
            line.push_str(", but the approval has expired.");
            return (line, "in_review".into());
        }
        line.push('.');
        return (line, "approved".into());
    }
    ("Not yet put up for review.".into(), "not_started".into())
}

fn cards(l: &Loaded) -> Vec<StageCard> {
    l.governance
        .iter()
        .map(|s| StageCard {
            stage: s.stage.as_str().to_owned(),
            badge: Badge::of(s),
            cycle: s.cycle,
            approve: s.feedback.approve,
            minor: s.feedback.minor_issue,
            major: s.feedback.major_issue,
            requested: match (&s.requested_by, s.requested_at) {
                (Some(b), Some(t)) => format!("{b}, {}", fmt::when(t)),
                _ => String::new(),
            },
            decision: match (&s.decided_by, s.decision, s.decided_at) {
                (Some(b), Some(d), Some(t)) => format!("{d} by {b}, {}", fmt::when(t)),
                _ => String::new(),
            },
            expires: fmt::when_opt(s.expires_at),
            href: format!("{}/signoff?stage={}", l.header.href, s.stage),
        })
        .collect()
}

// ---- overview ----------------------------------------------------------------

/// One result of the subject's latest check run.
pub struct CheckRow {
    pub name: String,
    pub scope: String,
    pub blocking: bool,
    pub outcome: &'static str,
    pub outcome_class: &'static str,
    pub message: String,
    pub values: String,
}

fn check_rows(results: Vec<gatehouse_core::checks::CheckResult>) -> Vec<CheckRow> {
    use gatehouse_core::checks::{Enforcement, Outcome};
    results
        .into_iter()
        .map(|r| CheckRow {
            scope: r.scope.to_string(),
            blocking: r.enforcement == Enforcement::Blocking,
            outcome: r.outcome.as_str(),
            outcome_class: match r.outcome {
                Outcome::Pass => "approved",
                Outcome::Fail => "rejected",
                Outcome::Error => "in_review",
            },
            values: r
                .values
                .iter()
                .map(|(k, v)| match v {
                    serde_json::Value::Null => format!("{k} absent"),
                    v => format!("{k} = {v}"),
                })
                .collect::<Vec<_>>()
                .join(", "),
            name: r.name,
            message: r.message,
        })
        .collect()
}

pub struct EventRow {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub href: String,
}

#[derive(Template)]
#[template(path = "subject.html")]
struct OverviewPage {
    chrome: Chrome,
    h: Header,
    cards: Vec<StageCard>,
    /// The latest run of the subject's checks: when, why, its results.
    checks_run: Option<String>,
    checks: Vec<CheckRow>,
    live: Vec<LiveCell>,
    emergency: i64,
    docs: super::policies::DocsSection,
    facts: Vec<Fact>,
    metrics: Vec<Fact>,
    params: Vec<Fact>,
    tags: Vec<Fact>,
    sensitivity: Vec<String>,
    items: Vec<Fact>,
    plot: String,
    metric_names: Vec<String>,
    metric: String,
    events: Option<Vec<EventRow>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct OverviewQuery {
    #[serde(default)]
    metric: String,
    #[serde(default)]
    done: String,
}

async fn overview(
    state: &AppState,
    viewer: &Viewer,
    which: Which,
    q: OverviewQuery,
) -> PageResult<Response> {
    let l = load(state, &which)
        .await
        .map_err(|e| e.seen_by(Some(viewer)))?;
    let now = state.clock.now();
    let docs = super::policies::docs_section(&state.store, viewer, &l.subject, &q.done).await?;
    let mut conn = state.store.conn().await?;
    let row = deployments::inventory_of(&mut conn, &l.header.text, now).await?;
    let (live, emergency) = match row {
        Some(r) => (
            r.live
                .into_iter()
                .map(|x| LiveCell {
                    href: urls::infrastructure(&x.infrastructure),
                    infrastructure: x.infrastructure,
                    slot: x.slot,
                    still_approved: x.still_approved,
                    break_glass: x.break_glass,
                })
                .collect(),
            r.open_emergency_reviews,
        ),
        None => (vec![], 0),
    };
    let (checks_run, checks) =
        match gatehouse_store::checks::latest(&mut conn, &l.header.text).await? {
            Some(run) => (
                Some(format!(
                    "{} by {}, {}",
                    run.trigger.as_str().replace('_', " "),
                    run.evaluated_by,
                    fmt::when(run.evaluated_at)
                )),
                check_rows(run.results),
            ),
            None => (None, Vec::new()),
        };
    // A metric across the model's versions, approved versions marked.
    let (mut plot, mut metric_names, mut metric) = (String::new(), vec![], String::new());
    if let Some((k, m)) = &l.model {
        let page = versions::list(
            &mut conn,
            k,
            m,
            &Default::default(),
            &PageRequest::first(200),
        )
        .await?;
        let texts: Vec<String> = page.items.iter().map(|v| v.subject.clone()).collect();
        let gov = signoffs::governance(
            &mut conn,
            texts.iter().map(|t| (k.as_str(), t.as_str())),
            now,
        )
        .await?;
        let mut names: Vec<String> = page
            .items
            .iter()
            .flat_map(|v| v.metrics.keys().cloned())
            .collect();
        names.sort();
        names.dedup();
        metric = if names.contains(&q.metric) {
            q.metric.clone()
        } else {
            names.first().cloned().unwrap_or_default()
        };
        let mut points = Vec::new();
        for v in &page.items {
            if let Some(x) = v.metrics.get(&metric) {
                let approved = gov
                    .stages(k, &v.subject)?
                    .iter()
                    .any(|s| s.state == SignoffState::Approved && !s.expired);
                points.push(svg::Point {
                    version: v.version,
                    value: *x,
                    approved,
                    current: v.subject == l.header.text,
                });
            }
        }
        if !metric.is_empty() {
            plot = svg::metric_plot(&format!("{metric} per version of {m}"), &metric, &points);
        }
        metric_names = names;
    }
    // Its audit history, for those who may read the project's audit trail.
    let events = match super::audit_right(state, viewer, l.header.project.as_str()).await? {
        Some(right) => {
            let f = AuditFilter {
                subject: Some(l.header.text.clone()),
                order: Order::Desc,
                ..Default::default()
            };
            let page = gatehouse_store::audit::list(&mut conn, &right, &f, &PageRequest::first(50))
                .await?;
            Some(
                page.items
                    .into_iter()
                    .map(|e| EventRow {
                        at: fmt::when(e.at),
                        actor: e.actor,
                        action: e.action,
                        href: format!(
                            "/audit?{}",
                            urls::query([("seq", e.seq.to_string().as_str())])
                        ),
                    })
                    .collect(),
            )
        }
        None => None,
    };
    drop(conn);
    let page = OverviewPage {
        chrome: Chrome::new(viewer, l.header.title.clone(), Section::Other),
        cards: cards(&l),
        checks_run,
        checks,
        live,
        emergency,
        docs,
        facts: l.facts,
        metrics: l.metrics,
        params: l.params,
        tags: l.tags,
        sensitivity: l.sensitivity,
        items: l.items,
        plot,
        metric_names,
        metric,
        events,
        h: l.header,
    };
    Ok(render(StatusCode::OK, &page))
}

pub async fn version_page(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((k, m, n)): Path<(String, String, i64)>,
    Query(q): Query<OverviewQuery>,
) -> Response {
    overview(&state, &viewer, Which::Version(k, m, n), q)
        .await
        .unwrap_or_else(|e| e.seen_by(Some(&viewer)).into_response())
}

pub async fn bundle_page(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((k, t)): Path<(String, String)>,
    Query(q): Query<OverviewQuery>,
) -> Response {
    overview(&state, &viewer, Which::Bundle(k, t), q)
        .await
        .unwrap_or_else(|e| e.seen_by(Some(&viewer)).into_response())
}

// ---- sign-off tab --------------------------------------------------------------

pub struct AnswerRow {
    pub by: String,
    pub verdict: String,
    pub verdict_class: &'static str,
    pub comment: String,
    pub at: String,
}

pub struct SlotRow {
    pub id: u32,
    pub kind: &'static str,
    pub is_feedback: bool,
    pub assigned: String,
    pub assignees: String,
    pub delegate: String,
    pub answer: Option<AnswerRow>,
    pub earlier: Vec<AnswerRow>,
    pub delegations: Vec<String>,
    pub may_answer: bool,
    pub may_delegate: bool,
    pub mine: bool,
}

pub struct CycleRow {
    pub number: u32,
    pub badge_class: &'static str,
    pub state: &'static str,
    pub requested: String,
    pub decision: String,
    pub reset: String,
}

#[derive(Template)]
#[template(path = "signoff.html")]
struct SignoffPage {
    chrome: Chrome,
    h: Header,
    stages: Vec<(String, bool)>,
    stage: String,
    state_class: String,
    state_words: String,
    locked: bool,
    locked_line: String,
    answer: String,
    answer_class: String,
    cycle: u32,
    revision: u64,
    requested: String,
    terms: String,
    excluded: String,
    slots: Vec<SlotRow>,
    decision: String,
    decision_comment: String,
    may_request: bool,
    request_note: String,
    decisions: Vec<(&'static str, &'static str)>,
    why_not: String,
    history: Vec<CycleRow>,
    done: String,
    error: Option<String>,
    action_base: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct SignoffQuery {
    #[serde(default)]
    stage: String,
    #[serde(default)]
    done: String,
}

fn answer_row(a: &signoffs::AnswerView) -> AnswerRow {
    AnswerRow {
        by: a.by.clone(),
        verdict: a.verdict.as_str().replace('_', " "),
        verdict_class: match a.verdict.as_str() {
            "approve" => "approved",
            "minor_issue" => "in_review",
            _ => "rejected",
        },
        comment: a.comment.clone(),
        at: fmt::when(a.at),
    }
}

fn done_words(done: &str) -> &'static str {
    match done {
        "request" => "The review was requested.",
        "feedback" => "Your feedback was recorded.",
        "delegate" => "The slot was delegated.",
        "decide" => "Your decision was recorded.",
        _ => "",
    }
}

/// Renders the sign-off tab of `which` for `stage` (or the stage that needs
/// attention), with an error summary when a command was refused.
async fn signoff_tab(
    state: &AppState,
    viewer: &Viewer,
    which: Which,
    stage: &str,
    done: &str,
    error: Option<(StatusCode, String)>,
) -> PageResult<Response> {
    let l = load(state, &which).await?;
    let stage = if stage.is_empty() {
        l.governance
            .iter()
            .find(|s| s.state == SignoffState::InReview)
            .or(l.governance.last())
            .map(|s| s.stage)
            .unwrap_or(Stage::Prod)
    } else {
        Stage::parse(stage)
            .ok_or_else(|| PageError::not_found(format!("There is no stage {stage:?}.")))?
    };
    let ctx = viewer.ctx(state);
    let mut conn = state.store.conn().await?;
    let view = signoffs::get(&mut conn, &l.subject, stage, ctx.now).await?;
    let offers =
        signoffs::offers(&mut conn, state.store.backend(), &ctx, &l.subject, stage).await?;
    drop(conn);
    let me = viewer.username().to_string();
    let page = signoff_page(
        viewer,
        l,
        &view,
        &offers,
        &me,
        done,
        error.as_ref().map(|e| e.1.clone()),
    );
    Ok(render(error.map(|e| e.0).unwrap_or(StatusCode::OK), &page))
}

fn ok_of<T: PartialEq>(list: &[(T, Result<(), String>)], key: T) -> bool {
    list.iter().any(|(k, r)| *k == key && r.is_ok())
}

fn signoff_page(
    viewer: &Viewer,
    l: Loaded,
    v: &SignoffView,
    offers: &Offers,
    me: &str,
    done: &str,
    error: Option<String>,
) -> SignoffPage {
    let slots: Vec<SlotRow> = v
        .slots
        .iter()
        .map(|s| {
            let id = gatehouse_core::signoff::SlotId(s.id);
            let holds = match &s.delegate {
                Some(d) => d == me,
                None => s.assignees.iter().any(|a| a == me),
            };
            SlotRow {
                id: s.id,
                kind: fmt::slot_kind_words(s.kind),
                is_feedback: s.kind == SlotKind::Feedback,
                assigned: match (&s.role, &s.user) {
                    (Some(r), _) => format!("role “{r}”"),
                    (None, Some(u)) => u.clone(),
                    _ => String::new(),
                },
                assignees: s.assignees.join(", "),
                delegate: s.delegate.clone().unwrap_or_default(),
                answer: s.answer.as_ref().map(answer_row),
                earlier: s.answers.iter().rev().skip(1).map(answer_row).collect(),
                delegations: s
                    .delegations
                    .iter()
                    .map(|d| {
                        let mut line = format!("{} → {} ({})", d.by, d.to, fmt::when(d.at));
                        if !d.comment.is_empty() {
                            line.push_str(&format!(": {}", d.comment));
                        }
                        line
                    })
                    .collect(),
                may_answer: s.kind == SlotKind::Feedback && ok_of(&offers.feedback, id),
                may_delegate: ok_of(&offers.delegate, id),
                mine: holds,
            }
        })
        .collect();
    let decisions: Vec<(&'static str, &'static str)> = Decision::ALL
        .iter()
        .filter(|d| ok_of(&offers.decide, **d))
        .map(|d| {
            (
                d.as_str(),
                match d {
                    Decision::Approve => "Approve",
                    Decision::Reject => "Reject (locks the workflow)",
                    Decision::Abandon => "Abandon (locks the workflow)",
                },
            )
        })
        .collect();
    let may_request = offers.request.is_ok();
    let any_action = may_request
        || !decisions.is_empty()
        || slots.iter().any(|s| s.may_answer || s.may_delegate);
    // Why the viewer has no button, where that helps: the first refusal of
    // something they might have expected to do.
    let why_not = if any_action
        || v.locked
        || !matches!(v.state, SignoffState::NotStarted | SignoffState::InReview)
    {
        String::new()
    } else {
        let reason = match v.state {
            SignoffState::InReview => offers
                .feedback
                .iter()
                .map(|(_, r)| r)
                .chain(offers.decide.iter().map(|(_, r)| r))
                .find_map(|r| r.as_ref().err()),
            _ => offers.request.as_ref().err(),
        };
        reason
            .map(|r| capitalise(&fmt::humane(r)))
            .unwrap_or_default()
    };
    let waiting_on_me: Vec<String> = slots
        .iter()
        .filter(|s| s.mine && s.answer.is_none() && (s.may_answer || !decisions.is_empty()))
        .map(|s| format!("{} slot {}", s.kind, s.assigned))
        .collect();
    let (answer, answer_class) = if !waiting_on_me.is_empty() && v.state == SignoffState::InReview {
        (
            format!("Waiting on you: {}.", waiting_on_me.join("; ")),
            "waiting".to_owned(),
        )
    } else {
        (l.header.answer.clone(), l.header.answer_class.clone())
    };
    let decision = v
        .decision
        .as_ref()
        .map(|d| format!("{} by {} on {}", d.decision, d.by, fmt::when(d.at)))
        .unwrap_or_default();
    let locked_line = match (&v.decision, v.locked) {
        (Some(d), true) => format!(
            "{} by {} on {}: this sign-off is locked and nothing more can happen to it.",
            if d.decision == Decision::Reject {
                "Rejected"
            } else {
                "Abandoned"
            },
            d.by,
            fmt::when(d.at)
        ),
        _ => String::new(),
    };
    SignoffPage {
        chrome: Chrome::new(
            viewer,
            format!("Sign-off · {}", l.header.title),
            Section::Other,
        ),
        stages: l
            .governance
            .iter()
            .map(|s| (s.stage.as_str().to_owned(), s.stage == v.stage))
            .collect(),
        stage: v.stage.as_str().to_owned(),
        state_class: if v.expired {
            "expired".into()
        } else {
            v.state.as_str().into()
        },
        state_words: if v.expired {
            "approved (expired)".into()
        } else {
            fmt::state_words(v.state).into()
        },
        locked: v.locked,
        locked_line,
        answer,
        answer_class,
        cycle: v.cycle,
        revision: v.revision,
        requested: match (&v.requested_by, v.requested_at) {
            (Some(b), Some(t)) => format!(
                "{b} on {}{}",
                fmt::when(t),
                if v.notify_reviewers {
                    ", reviewers notified"
                } else {
                    ""
                }
            ),
            _ => String::new(),
        },
        terms: v
            .terms
            .as_ref()
            .map(|t| {
                format!(
                    "tier {}: {} distinct feedback approval{} needed{}{}",
                    t.tier.get(),
                    t.min_feedback_approvals,
                    if t.min_feedback_approvals == 1 {
                        ""
                    } else {
                        "s"
                    },
                    if t.major_issue_blocks {
                        "; an open major issue blocks approval"
                    } else {
                        ""
                    },
                    if t.separation_of_duties {
                        "; separation of duties"
                    } else {
                        ""
                    }
                )
            })
            .unwrap_or_default(),
        excluded: v.excluded.join(", "),
        slots,
        decision,
        decision_comment: v
            .decision
            .as_ref()
            .map(|d| d.comment.clone())
            .unwrap_or_default(),
        may_request,
        request_note: match v.state {
            SignoffState::NotStarted => "Starts the review with the stage's reviewer slots.".into(),
            _ => "Starts a new review cycle.".into(),
        },
        decisions,
        why_not,
        history: v
            .history
            .iter()
            .rev()
            .map(|c| CycleRow {
                number: c.number,
                badge_class: c.state.as_str(),
                state: fmt::state_words(c.state),
                requested: match (&c.requested_by, c.requested_at) {
                    (Some(b), Some(t)) => format!("{b}, {}", fmt::when(t)),
                    _ => String::new(),
                },
                decision: c
                    .decision
                    .as_ref()
                    .map(|d| {
                        format!(
                            "{} by {} ({}){}",
                            d.decision,
                            d.by,
                            fmt::when(d.at),
                            if d.comment.is_empty() {
                                String::new()
                            } else {
                                format!(": {}", d.comment)
                            }
                        )
                    })
                    .unwrap_or_default(),
                reset: c
                    .reset
                    .as_ref()
                    .map(|r| format!("reset by {} ({}): {}", r.by, fmt::when(r.at), r.reason))
                    .unwrap_or_default(),
            })
            .collect(),
        done: done_words(done).to_owned(),
        error,
        action_base: format!("{}/signoff/{}", l.header.href, v.stage),
        h: l.header,
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => {
            let mut out: String = f.to_uppercase().collect();
            out.push_str(c.as_str());
            if !out.ends_with('.') {
                out.push('.');
            }
            out
        }
        None => String::new(),
    }
}

pub async fn version_signoff(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((k, m, n)): Path<(String, String, i64)>,
    Query(q): Query<SignoffQuery>,
) -> Response {
    signoff_tab(
        &state,
        &viewer,
        Which::Version(k, m, n),
        &q.stage,
        &q.done,
        None,
    )
    .await
    .unwrap_or_else(|e| e.seen_by(Some(&viewer)).into_response())
}

pub async fn bundle_signoff(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((k, t)): Path<(String, String)>,
    Query(q): Query<SignoffQuery>,
) -> Response {
    signoff_tab(
        &state,
        &viewer,
        Which::Bundle(k, t),
        &q.stage,
        &q.done,
        None,
    )
    .await
    .unwrap_or_else(|e| e.seen_by(Some(&viewer)).into_response())
}

// ---- commands ----------------------------------------------------------------

/// Every field any of the sign-off forms sends.
#[derive(Debug, Default, Deserialize)]
pub struct CommandForm {
    #[serde(default)]
    notify_reviewers: Option<String>,
    #[serde(default)]
    slot: Option<u32>,
    #[serde(default)]
    verdict: Option<String>,
    #[serde(default)]
    comment: Option<String>,
    #[serde(default)]
    to_user: Option<String>,
    #[serde(default)]
    decision: Option<String>,
    #[serde(default)]
    revision: Option<u64>,
}

fn missing(field: &str, what: &str) -> ApiError {
    ApiError::invalid(field, format!("choose {what}"))
}

/// The core command a form asks for, validated as the API validates its body.
fn command_of(name: &str, f: CommandForm) -> Result<gatehouse_core::signoff::Command, ApiError> {
    match name {
        "request" => bodies::RequestReview {
            notify_reviewers: Some(f.notify_reviewers.is_some()),
        }
        .input(),
        "feedback" => bodies::GiveFeedback {
            slot: f.slot.ok_or_else(|| missing("slot", "a slot"))?,
            verdict: f
                .verdict
                .ok_or_else(|| missing("verdict", "approve, minor issue or major issue"))?,
            comment: f.comment,
        }
        .input(),
        "delegate" => {
            let to = f.to_user.unwrap_or_default();
            bodies::DelegateSlot {
                slot: f.slot.ok_or_else(|| missing("slot", "a slot"))?,
                to_user: gatehouse_core::Username::parse(to.trim())
                    .map_err(|e| ApiError::invalid("to_user", e.to_string()))?,
                comment: f.comment,
            }
            .input()
        }
        "decide" => bodies::Decide {
            decision: f
                .decision
                .ok_or_else(|| missing("decision", "approve, reject or abandon"))?,
            comment: f.comment,
        }
        .input(),
        other => Err(ApiError::not_found(format!(
            "no sign-off command {other:?}"
        ))),
    }
}

async fn run_command(
    state: &AppState,
    posted: Posted<CommandForm>,
    which: Which,
    stage: String,
    name: String,
) -> Response {
    let viewer = posted.viewer;
    let href = match which.subject() {
        Ok(s) => urls::subject(&s),
        Err(e) => return e.seen_by(Some(&viewer)).into_response(),
    };
    let revision = posted.form.revision;
    let result = async {
        let subject = which
            .subject()
            .map_err(|e| ApiError::not_found(e.message))?;
        let st = crate::api::roles::parse_stage("stage", &stage)?;
        let cmd = command_of(&name, posted.form)?;
        let ctx = viewer.ctx(state);
        api::execute(state, &ctx, &subject, st, cmd, revision).await
    }
    .await;
    match result {
        Ok(_) => Redirect::to(&format!(
            "{href}/signoff?{}",
            urls::query([("stage", stage.as_str()), ("done", name.as_str())])
        ))
        .into_response(),
        Err(e) => {
            let status = StatusCode::from_u16(e.status.unwrap_or_else(|| e.code.http_status()))
                .unwrap_or(StatusCode::BAD_REQUEST);
            let message = if e.code == gatehouse_core::ErrorCode::StaleRevision {
                "Someone else acted on this sign-off while you were reading it. Nothing of \
                 yours was recorded; here it is as it stands now."
                    .to_owned()
            } else {
                sentence(&e)
            };
            signoff_tab(state, &viewer, which, &stage, "", Some((status, message)))
                .await
                .unwrap_or_else(|e| e.seen_by(Some(&viewer)).into_response())
        }
    }
}

pub async fn version_command(
    State(state): State<AppState>,
    Path((k, m, n, stage, name)): Path<(String, String, i64, String, String)>,
    posted: Posted<CommandForm>,
) -> Response {
    run_command(&state, posted, Which::Version(k, m, n), stage, name).await
}

pub async fn bundle_command(
    State(state): State<AppState>,
    Path((k, t, stage, name)): Path<(String, String, String, String)>,
    posted: Posted<CommandForm>,
) -> Response {
    run_command(&state, posted, Which::Bundle(k, t), stage, name).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_become_the_api_commands() {
        let f = CommandForm {
            slot: Some(1),
            verdict: Some("minor_issue".into()),
            comment: Some("document it".into()),
            ..Default::default()
        };
        assert!(command_of("feedback", f).is_ok());
        let f = CommandForm {
            slot: Some(1),
            verdict: Some("maybe".into()),
            ..Default::default()
        };
        assert!(command_of("feedback", f).is_err());
        assert!(command_of("feedback", CommandForm::default()).is_err());
        assert!(command_of("explode", CommandForm::default()).is_err());
        let f = CommandForm {
            decision: Some("reject".into()),
            ..Default::default()
        };
        assert!(command_of("decide", f).is_ok());
        let f = CommandForm {
            slot: Some(2),
            to_user: Some("not a name!".into()),
            ..Default::default()
        };
        assert!(command_of("delegate", f).is_err());
    }

    #[test]
    fn capitalised_sentences() {
        assert_eq!(capitalise("you registered it"), "You registered it.");
        assert_eq!(capitalise(""), "");
    }
}
