//! The store's rows as the API's answers: one `Shape` impl per row type,
//! field for field (the wire format is `gatehouse_api`'s), and the links an
//! answer carries to related resources.

use gatehouse_api as api;
use gatehouse_store as store;

/// A store row as the body the API answers with.
pub trait Shape {
    type Api;
    fn shape(self) -> Self::Api;
}

/// Every row of a list, shaped.
pub fn shape_all<T: Shape>(rows: Vec<T>) -> Vec<T::Api> {
    rows.into_iter().map(Shape::shape).collect()
}

impl<T: Shape> Shape for store::Page<T> {
    type Api = api::PageOf<T::Api>;
    fn shape(self) -> Self::Api {
        api::PageOf {
            items: shape_all(self.items),
            next_cursor: self.next_cursor,
        }
    }
}

/// A page whose rows are already the API's bodies.
pub fn page_of<T>(p: store::Page<T>) -> api::PageOf<T> {
    api::PageOf {
        items: p.items,
        next_cursor: p.next_cursor,
    }
}

/// The links of the object that audit events name `subject`.
pub fn links_for(subject: &str) -> api::Links {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("subject", subject)
        .finish();
    api::Links {
        events: format!("/api/v1/audit/events?{query}"),
    }
}

impl Shape for store::tokens::Token {
    type Api = api::identity::Token;
    fn shape(self) -> Self::Api {
        api::identity::Token {
            id: self.id,
            name: self.name,
            username: self.username,
            created_at: self.created_at,
            expires_at: self.expires_at,
            last_used_at: self.last_used_at,
            parent_id: self.parent_id,
        }
    }
}

impl Shape for store::groups::Group {
    type Api = api::groups::Group;
    fn shape(self) -> Self::Api {
        api::groups::Group {
            name: self.name,
            description: self.description,
            members: self.members,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

impl Shape for store::projects::Project {
    type Api = api::projects::Project;
    fn shape(self) -> Self::Api {
        api::projects::Project {
            key: self.key,
            name: self.name,
            description: self.description,
            risk_tier: self.risk_tier,
            archived: self.archived,
            owners: self.owners,
            contributors: self.contributors,
            created_by: self.created_by,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

impl Shape for store::models::Model {
    type Api = api::models::Model;
    fn shape(self) -> Self::Api {
        api::models::Model {
            project: self.project,
            name: self.name,
            description: self.description,
            latest_version: self.latest_version,
            created_by: self.created_by,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

impl Shape for store::versions::ModelVersion {
    type Api = api::versions::ModelVersion;
    fn shape(self) -> Self::Api {
        api::versions::ModelVersion {
            project: self.project,
            model: self.model,
            version: self.version,
            subject: self.subject,
            artifact_uri: self.artifact_uri,
            digest: self.digest,
            metrics: self.metrics,
            params: self.params,
            training_data_ref: self.training_data_ref,
            code_ref: self.code_ref,
            sensitivity: self.sensitivity,
            description: self.description,
            tags: self.tags,
            governance: shape_all(self.governance),
            created_by: self.created_by,
            created_at: self.created_at,
            updated_at: self.updated_at,
            links: None,
        }
    }
}

impl Shape for store::bundles::BundleItem {
    type Api = api::bundles::BundleItem;
    fn shape(self) -> Self::Api {
        api::bundles::BundleItem {
            model: self.model,
            version: self.version,
        }
    }
}

impl Shape for store::bundles::Bundle {
    type Api = api::bundles::Bundle;
    fn shape(self) -> Self::Api {
        api::bundles::Bundle {
            project: self.project,
            tag: self.tag,
            subject: self.subject,
            description: self.description,
            versions: shape_all(self.versions),
            governance: shape_all(self.governance),
            created_by: self.created_by,
            created_at: self.created_at,
            updated_at: self.updated_at,
            links: None,
        }
    }
}

impl Shape for store::roles::Role {
    type Api = api::roles::Role;
    fn shape(self) -> Self::Api {
        api::roles::Role {
            project: self.project,
            name: self.name,
            description: self.description,
            users: self.users,
            groups: self.groups,
            members: self.members,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

impl Shape for store::signoffs::SlotConfig {
    type Api = api::roles::SlotConfig;
    fn shape(self) -> Self::Api {
        api::roles::SlotConfig {
            id: self.id,
            kind: self.kind,
            role: self.role,
            user: self.user,
        }
    }
}

impl Shape for store::signoffs::StageConfig {
    type Api = api::roles::StageConfig;
    fn shape(self) -> Self::Api {
        api::roles::StageConfig {
            stage: self.stage,
            slots: shape_all(self.slots),
        }
    }
}

impl Shape for store::signoffs::SignoffConfig {
    type Api = api::roles::SignoffConfig;
    fn shape(self) -> Self::Api {
        api::roles::SignoffConfig {
            project: self.project,
            stages: shape_all(self.stages),
            separation_of_duties: self.separation_of_duties,
            effective_separation_of_duties: self.effective_separation_of_duties,
            configured: self.configured,
            updated_by: self.updated_by,
            updated_at: self.updated_at,
        }
    }
}

impl Shape for store::subject_status::FeedbackView {
    type Api = api::signoffs::FeedbackView;
    fn shape(self) -> Self::Api {
        api::signoffs::FeedbackView {
            approve: self.approve,
            minor_issue: self.minor_issue,
            major_issue: self.major_issue,
            distinct_approvers: self.distinct_approvers,
            open_slots: self.open_slots,
        }
    }
}

impl Shape for store::subject_status::StageStatus {
    type Api = api::signoffs::StageStatus;
    fn shape(self) -> Self::Api {
        api::signoffs::StageStatus {
            stage: self.stage,
            state: self.state,
            expired: self.expired,
            expires_at: self.expires_at,
            cycle: self.cycle,
            revision: self.revision,
            requested_by: self.requested_by,
            requested_at: self.requested_at,
            decided_by: self.decided_by,
            decision: self.decision,
            decided_at: self.decided_at,
            feedback: self.feedback.shape(),
        }
    }
}

impl Shape for store::signoffs::AnswerView {
    type Api = api::signoffs::AnswerView;
    fn shape(self) -> Self::Api {
        api::signoffs::AnswerView {
            by: self.by,
            verdict: self.verdict,
            comment: self.comment,
            at: self.at,
        }
    }
}

impl Shape for store::signoffs::DelegationView {
    type Api = api::signoffs::DelegationView;
    fn shape(self) -> Self::Api {
        api::signoffs::DelegationView {
            by: self.by,
            to: self.to,
            comment: self.comment,
            at: self.at,
        }
    }
}

impl Shape for store::signoffs::SlotView {
    type Api = api::signoffs::SlotView;
    fn shape(self) -> Self::Api {
        api::signoffs::SlotView {
            id: self.id,
            kind: self.kind,
            role: self.role,
            user: self.user,
            assignees: self.assignees,
            delegate: self.delegate,
            answer: self.answer.map(Shape::shape),
            answers: shape_all(self.answers),
            delegations: shape_all(self.delegations),
        }
    }
}

impl Shape for store::signoffs::DecisionView {
    type Api = api::signoffs::DecisionView;
    fn shape(self) -> Self::Api {
        api::signoffs::DecisionView {
            by: self.by,
            decision: self.decision,
            comment: self.comment,
            at: self.at,
            tier: self.tier,
        }
    }
}

impl Shape for store::signoffs::TermsView {
    type Api = api::signoffs::TermsView;
    fn shape(self) -> Self::Api {
        api::signoffs::TermsView {
            tier: self.tier,
            min_feedback_approvals: self.min_feedback_approvals,
            major_issue_blocks: self.major_issue_blocks,
            separation_of_duties: self.separation_of_duties,
        }
    }
}

impl Shape for store::signoffs::ResetView {
    type Api = api::signoffs::ResetView;
    fn shape(self) -> Self::Api {
        api::signoffs::ResetView {
            by: self.by,
            reason: self.reason,
            at: self.at,
        }
    }
}

impl Shape for store::signoffs::CycleView {
    type Api = api::signoffs::CycleView;
    fn shape(self) -> Self::Api {
        api::signoffs::CycleView {
            number: self.number,
            state: self.state,
            requested_by: self.requested_by,
            requested_at: self.requested_at,
            slots: shape_all(self.slots),
            decision: self.decision.map(Shape::shape),
            reset: self.reset.map(Shape::shape),
        }
    }
}

impl Shape for store::signoffs::SignoffView {
    type Api = api::signoffs::SignoffView;
    fn shape(self) -> Self::Api {
        let links = links_for(&self.subject);
        api::signoffs::SignoffView {
            subject: self.subject,
            project: self.project,
            stage: self.stage,
            state: self.state,
            expired: self.expired,
            expires_at: self.expires_at,
            locked: self.locked,
            cycle: self.cycle,
            revision: self.revision,
            subject_creator: self.subject_creator,
            requested_by: self.requested_by,
            requested_at: self.requested_at,
            notify_reviewers: self.notify_reviewers,
            terms: self.terms.map(Shape::shape),
            excluded: self.excluded,
            decision: self.decision.map(Shape::shape),
            feedback: self.feedback.shape(),
            slots: shape_all(self.slots),
            configured_slots: shape_all(self.configured_slots),
            history: shape_all(self.history),
            links,
        }
    }
}

impl Shape for store::signoffs::PendingSlot {
    type Api = api::signoffs::PendingSlot;
    fn shape(self) -> Self::Api {
        api::signoffs::PendingSlot {
            id: self.id,
            kind: self.kind,
            via: self.via,
            role: self.role,
        }
    }
}

impl Shape for store::signoffs::PendingReview {
    type Api = api::signoffs::PendingReview;
    fn shape(self) -> Self::Api {
        api::signoffs::PendingReview {
            subject: self.subject,
            project: self.project,
            stage: self.stage,
            cycle: self.cycle,
            revision: self.revision,
            requested_by: self.requested_by,
            requested_at: self.requested_at,
            slots: shape_all(self.slots),
        }
    }
}

impl Shape for store::deployments::Evidence {
    type Api = api::deployments::Evidence;
    fn shape(self) -> Self::Api {
        api::deployments::Evidence {
            policy: self.policy,
            stage_checked: self.stage_checked,
            signoff_state: self.signoff_state,
            signoff_cycle: self.signoff_cycle,
            signoff_revision: self.signoff_revision,
            expired: self.expired,
            approved_by: self.approved_by,
            approved_at: self.approved_at,
            decision: self.decision,
            reason: self.reason,
        }
    }
}

impl Shape for store::deployments::EmergencyReview {
    type Api = api::deployments::EmergencyReview;
    fn shape(self) -> Self::Api {
        api::deployments::EmergencyReview {
            id: self.id,
            deployment_id: self.deployment_id,
            project: self.project,
            subject: self.subject,
            infrastructure: self.infrastructure,
            stage: self.stage,
            state: self.state,
            opened_at: self.opened_at,
            decided_by: self.decided_by,
            decided_at: self.decided_at,
            comment: self.comment,
        }
    }
}

impl Shape for store::deployments::Deployment {
    type Api = api::deployments::Deployment;
    fn shape(self) -> Self::Api {
        api::deployments::Deployment {
            id: self.id,
            infrastructure: self.infrastructure,
            slot: self.slot,
            subject: self.subject,
            project: self.project,
            kind: self.kind,
            deployed_by: self.deployed_by,
            deployed_at: self.deployed_at,
            comment: self.comment,
            reason: self.reason,
            warning: self.warning,
            evidence: self.evidence.shape(),
            live: self.live,
            superseded_at: self.superseded_at,
            rolled_back: self.rolled_back,
            still_approved: self.still_approved,
            emergency_review: self.emergency_review.map(Shape::shape),
        }
    }
}

impl Shape for store::deployments::GateCheck {
    type Api = api::deployments::GateCheck;
    fn shape(self) -> Self::Api {
        api::deployments::GateCheck {
            decision: self.decision,
            reason: self.reason,
            subject: self.subject,
            infrastructure: self.infrastructure,
            slot: self.slot,
            policy: self.policy,
            admitted: self.admitted,
            stage_checked: self.stage_checked,
            signoff_state: self.signoff_state,
            signoff_cycle: self.signoff_cycle,
            expired: self.expired,
            open_slots: self.open_slots,
        }
    }
}

impl Shape for store::deployments::Grant {
    type Api = api::deployments::Grant;
    fn shape(self) -> Self::Api {
        api::deployments::Grant {
            id: self.id,
            project: self.project,
            infrastructure: self.infrastructure,
            stage: self.stage,
            user: self.user,
            group: self.group,
            emergency: self.emergency,
            created_by: self.created_by,
            created_at: self.created_at,
        }
    }
}

impl Shape for store::deployments::LiveAt {
    type Api = api::deployments::LiveAt;
    fn shape(self) -> Self::Api {
        api::deployments::LiveAt {
            infrastructure: self.infrastructure,
            slot: self.slot,
            stage: self.stage,
            deployment_id: self.deployment_id,
            since: self.since,
            by: self.by,
            still_approved: self.still_approved,
            break_glass: self.break_glass,
        }
    }
}

impl Shape for store::deployments::InventoryRow {
    type Api = api::deployments::InventoryRow;
    fn shape(self) -> Self::Api {
        api::deployments::InventoryRow {
            project: self.project,
            risk_tier: self.risk_tier,
            subject: self.subject,
            kind: self.kind,
            governance: shape_all(self.governance),
            live: shape_all(self.live),
            in_review: self.in_review,
            open_emergency_reviews: self.open_emergency_reviews,
        }
    }
}

impl Shape for store::infra::Infrastructure {
    type Api = api::infra::Infrastructure;
    fn shape(self) -> Self::Api {
        api::infra::Infrastructure {
            name: self.name,
            kind: self.kind,
            stage: self.stage,
            policy: self.policy,
            description: self.description,
            rollback_depth: self.rollback_depth,
            admitted_projects: self.admitted_projects,
            archived: self.archived,
            created_at: self.created_at,
            updated_at: self.updated_at,
            links: None,
        }
    }
}

impl Shape for store::audit::AuditEvent {
    type Api = api::audit::AuditEvent;
    fn shape(self) -> Self::Api {
        api::audit::AuditEvent {
            seq: self.seq,
            at: self.at,
            actor: self.actor,
            action: self.action,
            project: self.project,
            subject: self.subject,
            details: self.details,
            prev_hash: self.prev_hash,
            hash: self.hash,
        }
    }
}

impl Shape for store::audit::StoredCheckpoint {
    type Api = api::audit::StoredCheckpoint;
    fn shape(self) -> Self::Api {
        api::audit::StoredCheckpoint {
            seq: self.seq,
            hash: self.hash,
            at: self.at,
            key_id: self.key_id,
            signature: self.signature,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::links_for;

    #[test]
    fn the_events_link_encodes_the_subject() {
        assert_eq!(
            links_for("version:FRAUD/fraud scorer/3").events,
            "/api/v1/audit/events?subject=version%3AFRAUD%2Ffraud+scorer%2F3"
        );
    }
}
