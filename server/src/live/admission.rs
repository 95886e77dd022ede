//! Admission of a live connection to a workspace, the same for both dialects.
//!
//! The order is fixed, so both dialects refuse the same caller for the same reason: the credential
//! ([`AccessError::Unauthenticated`]), the workspace ([`AccessError::NotFound`] for a missing or
//! foreign one), `workspace:read` ([`AccessError::MissingPermission`]), then the plan's
//! concurrent-connection quota ([`AccessError::QuotaExceeded`]) — the quota is only consulted for
//! callers who could otherwise open the workspace, so it reveals nothing to strangers.

use nox_persistence::iam::users;
use uuid::Uuid;

use crate::access::features::{self, Flag};
use crate::access::{self, quota, AccessError, AuthUser, Rights};
use crate::auth::Permission;
use crate::state::AppState;

/// A caller admitted to a workspace.
#[derive(Debug, Clone)]
pub struct Admission {
    pub workspace_id: Uuid,
    pub org_id: Uuid,
    /// The credential it was admitted with: re-checked whenever rights may have changed.
    pub caller: AuthUser,
    pub rights: Rights,
    /// Stamped onto the connection's awareness states and lock badges.
    pub user_name: Option<String>,
    /// The credential itself: a node that relays the connection to the workspace's owner
    /// presents it there, so the owner admits and re-checks the caller itself (DESIGN §7).
    pub credential: Credential,
    /// Relayed here by another node: served here or refused, never relayed again.
    pub relayed: bool,
}

/// A caller's token or API key, kept for relaying; never printed.
#[derive(Clone)]
pub struct Credential(String);

impl Credential {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credential(<redacted>)")
    }
}

/// Decides whether the holder of `credential` may open `workspace_id` live, through a dialect the
/// organization may have turned off (`dialect_flag`). A connection another node `relayed` here
/// was counted against the connection quota there (its client is connected there).
pub async fn admit(
    state: &AppState,
    credential: &str,
    workspace_id: Uuid,
    dialect_flag: Option<Flag>,
    relayed: bool,
) -> Result<Admission, AccessError> {
    let caller = access::authenticate(&state.db, &state.tokens, credential).await?;
    let grant = access::workspace(&state.db, caller, workspace_id).await?;
    grant.require(Permission::WorkspaceRead)?;
    if let Some(flag) = dialect_flag {
        features::require_enabled(&state.db, grant.org_id(), flag).await?;
    }
    if !relayed {
        quota::connection_quota(&state.db, &state.live, &state.cluster, grant.org_id()).await?;
    }
    let user_name = users::find_live(state.db.pool(), caller.user_id)
        .await?
        .and_then(|u| u.full_name.or(Some(u.email)));
    Ok(Admission {
        workspace_id,
        org_id: grant.org_id(),
        caller,
        rights: grant.rights(),
        user_name,
        credential: Credential(credential.to_string()),
        relayed,
    })
}
