//! [`AuthUser`]: who is calling — a verified access token whose session is still live, or an API
//! key that is unexpired and whose creator and organization still exist. Transport-neutral: the
//! HTTP extractor (`extract.rs`) and the live sockets (`live/admission.rs`) both call
//! [`authenticate`] with the raw credential.

use nox_persistence::db::Database;
use nox_persistence::iam::{api_keys, sessions};
use uuid::Uuid;

use super::AccessError;
use crate::auth::api_key::is_api_key;
use crate::auth::permissions::PermissionSet;
use crate::auth::tokens::{hash_token, TokenKeys};

/// What an API key may reach: one organization, and there only its scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiKeyScope {
    pub key_id: Uuid,
    pub org_id: Uuid,
    pub scopes: PermissionSet,
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, Copy)]
pub struct AuthUser {
    /// The user; for an API key, the user who created it (the key acts on their behalf).
    pub user_id: Uuid,
    /// The session of the access token; `Uuid::nil()` for an API key (see [`AuthUser::session`]).
    pub session_id: Uuid,
    /// Set when the caller authenticated with an API key.
    pub api_key: Option<ApiKeyScope>,
}

/// Verifies a raw credential: an API key (`nox_…`) or an access token (signature, expiry, and that
/// its session is not revoked — the session check makes logout and revocation take effect at once).
pub async fn authenticate(
    db: &Database,
    tokens: &TokenKeys,
    credential: &str,
) -> Result<AuthUser, AccessError> {
    if is_api_key(credential) {
        return from_api_key(db, credential).await;
    }
    let claims = tokens
        .verify(credential)
        .ok_or(AccessError::Unauthenticated(
            "invalid or expired access token",
        ))?;
    if !sessions::is_active(db.pool(), claims.sid, claims.sub).await? {
        return Err(AccessError::Unauthenticated("session revoked or expired"));
    }
    Ok(AuthUser {
        user_id: claims.sub,
        session_id: claims.sid,
        api_key: None,
    })
}

async fn from_api_key(db: &Database, key: &str) -> Result<AuthUser, AccessError> {
    let key = api_keys::find_usable(db.pool(), &hash_token(key))
        .await?
        .ok_or(AccessError::Unauthenticated(
            "invalid, revoked or expired API key",
        ))?;
    api_keys::touch(db.pool(), key.id).await?;
    // Keys created by this server always list their scopes; a NULL list (a hand-made row) means
    // "whatever the creator holds in the org".
    let scopes = key
        .scopes
        .as_deref()
        .map_or(PermissionSet::ALL, PermissionSet::from_strings);
    Ok(AuthUser {
        user_id: key.user_id,
        session_id: Uuid::nil(),
        api_key: Some(ApiKeyScope {
            key_id: key.id,
            org_id: key.org_id,
            scopes,
        }),
    })
}

impl AuthUser {
    /// The caller's effective permissions in `org_id`, given the `permissions` its user holds
    /// there: `None` when this credential cannot reach that organization at all (an API key of
    /// another org — answer 404), otherwise the permissions narrowed to the key's scopes.
    pub fn restrict(&self, org_id: Uuid, permissions: Vec<String>) -> Option<Vec<String>> {
        match self.api_key {
            None => Some(permissions),
            Some(key) if key.org_id == org_id => Some(key.scopes.filter(permissions)),
            Some(_) => None,
        }
    }

    /// The session id, or [`AccessError::SessionRequired`] for an API key: account management
    /// (password, MFA, sessions, minting keys) needs the user in person, not a credential they
    /// handed to a program.
    pub fn session(&self) -> Result<Uuid, AccessError> {
        match self.api_key {
            None => Ok(self.session_id),
            Some(_) => Err(AccessError::SessionRequired),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Permission;

    fn key_user(org_id: Uuid, scopes: &[&str]) -> AuthUser {
        let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        AuthUser {
            user_id: Uuid::new_v4(),
            session_id: Uuid::nil(),
            api_key: Some(ApiKeyScope {
                key_id: Uuid::new_v4(),
                org_id,
                scopes: PermissionSet::from_strings(&scopes),
            }),
        }
    }

    #[test]
    fn restrict_narrows_keys_to_their_org_and_scopes() {
        let org = Uuid::new_v4();
        let held = vec![
            Permission::WorkspaceRead.as_str().to_string(),
            Permission::ProjectManage.as_str().to_string(),
        ];
        let key = key_user(org, &["workspace:read", "workspace:write"]);
        assert_eq!(
            key.restrict(org, held.clone()),
            Some(vec!["workspace:read".to_string()])
        );
        assert_eq!(key.restrict(Uuid::new_v4(), held.clone()), None);
        assert!(key.session().is_err());

        let person = AuthUser {
            user_id: Uuid::new_v4(),
            session_id: Uuid::new_v4(),
            api_key: None,
        };
        assert_eq!(person.restrict(org, held.clone()), Some(held));
        assert!(person.session().is_ok());
    }
}
