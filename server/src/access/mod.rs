//! Who is calling and what they may do: the authorization core, shared by HTTP routes and live
//! WebSocket connections alike.
//!
//! Nothing here knows HTTP or WebSocket. Every decision is an [`AccessError`] or a value; the
//! route boundary turns the error into an `ApiError` (`error.rs`), the socket boundary into a close
//! code or a Hocuspocus `PermissionDenied` (`live/`). So a rule — "another organization's workspace
//! is indistinguishable from a missing one", "API keys only reach their organization and scopes" —
//! is written once and holds on every transport.
//!
//! - [`caller`]: the credential (access token or API key) → [`AuthUser`].
//! - [`tenancy`]: organization membership, workspace and project reachability, permissions.
//! - [`rights`]: what a live connection may do in its workspace ([`Rights`]), and its re-check.
//! - [`features`]: the feature flags the server acts on, typed, and the gate on them.
//! - [`quota`]: plan limits checked before admitting work (concurrent connections).
//! - [`registry`]: the open live connections, so a rights change reaches them at once.

pub mod caller;
pub mod features;
pub mod quota;
pub mod registry;
pub mod rights;
pub mod tenancy;

pub use caller::{authenticate, ApiKeyScope, AuthUser};
pub use registry::{LiveAccess, LiveConn, Registration, Scope, PERIODIC_RECHECK};
pub use rights::Rights;
pub use tenancy::{
    org_member, org_permission, project, require, require_grantable, workspace,
    workspace_permission, WorkspaceGrant,
};

use nox_persistence::error::PersistenceError;

use crate::auth::Permission;

/// Why access was refused. Transport-neutral: routes answer it as HTTP, sockets as close codes.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// No usable credential: missing, malformed, expired, or its session / key was revoked.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// The resource does not exist *or* the caller may not know it exists (another organization's),
    /// so the two cannot be told apart.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A member of the organization without the needed permission.
    #[error("this action needs the '{}' permission", .0.as_str())]
    MissingPermission(Permission),
    /// Granting (or taking away) a role holding permissions the caller does not hold.
    #[error("you cannot grant or revoke permissions you do not hold: {0}")]
    NotGrantable(String),
    /// Account management needs the person, not an API key they handed to a program.
    #[error("this endpoint needs a user session, not an API key")]
    SessionRequired,
    /// The workspace's project is ARCHIVED: read-only until it is ACTIVE again.
    #[error(
        "the project is archived: its workspaces are read-only until its status is ACTIVE again"
    )]
    ProjectArchived,
    /// The organization turned this feature off (a feature flag).
    #[error("the '{0}' feature is turned off for this organization")]
    FeatureDisabled(&'static str),
    /// The plan's limit is reached; upgrading fixes it.
    #[error("{0}")]
    QuotaExceeded(String),
    /// The decision could not be made: storage failed. Never a refusal on its own.
    #[error("authorization could not be checked: {0}")]
    Storage(#[from] PersistenceError),
}
