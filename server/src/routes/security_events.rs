//! Security events of a user (failed logins, lockouts, password and MFA changes, revoked
//! sessions) written to `audit_logs`, once per organization the user belongs to.

use nox_persistence::iam::audit::{self, NewAuditEntry};
use uuid::Uuid;

use crate::http_caller::ClientInfo;
use crate::state::AppState;

/// Audit action names of the identity layer.
pub mod action {
    pub const LOGIN_FAILED: &str = "auth.login_failed";
    pub const ACCOUNT_LOCKED: &str = "auth.account_locked";
    pub const MFA_FAILED: &str = "auth.mfa_failed";
    pub const PASSWORD_CHANGED: &str = "auth.password_changed";
    pub const PASSWORD_RESET: &str = "auth.password_reset";
    pub const MFA_ENABLED: &str = "auth.mfa_enabled";
    pub const MFA_DISABLED: &str = "auth.mfa_disabled";
    pub const SESSION_REVOKED: &str = "session.revoked";
    pub const REFRESH_REUSE: &str = "session.refresh_reuse";
    pub const USER_DELETED: &str = "user.deleted";
    pub const API_KEY_CREATED: &str = "api_key.created";
    pub const API_KEY_REVOKED: &str = "api_key.revoked";
}

/// A security event about `user_id`, performed by the same user.
#[derive(Debug, Clone)]
pub struct SecurityEvent<'a> {
    pub user_id: Uuid,
    pub action: &'a str,
    pub target: Option<(&'a str, Uuid)>,
    pub metadata: Option<serde_json::Value>,
}

impl<'a> SecurityEvent<'a> {
    pub fn new(user_id: Uuid, action: &'a str) -> Self {
        Self {
            user_id,
            action,
            target: None,
            metadata: None,
        }
    }

    pub fn target(mut self, kind: &'a str, id: Uuid) -> Self {
        self.target = Some((kind, id));
        self
    }

    pub fn metadata(mut self, metadata: serde_json::Value) -> Self {
        self.metadata = Some(metadata);
        self
    }
}

/// Writes the event to every organization of the user. Best effort: the event already happened
/// (a login already failed, a session is already revoked), so a failing audit write is logged
/// rather than turned into an error for the client.
pub async fn record(state: &AppState, client: &ClientInfo, event: SecurityEvent<'_>) {
    let entry = NewAuditEntry {
        org_id: Uuid::nil(),
        actor_id: event.user_id,
        action: event.action,
        target_type: event.target.map(|(kind, _)| kind),
        target_id: event.target.map(|(_, id)| id),
        metadata: event.metadata,
        ip_address: client.ip.as_deref(),
        user_agent: client.user_agent.as_deref(),
    };
    if let Err(err) = audit::record_for_user_orgs(state.db.pool(), event.user_id, entry).await {
        tracing::warn!(error = %err, action = event.action, "could not write security audit event");
    }
}
