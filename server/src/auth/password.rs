//! Password hashing with argon2id (the `argon2` crate's default algorithm and parameters).
//!
//! Hashing is deliberately slow, so both functions run on the blocking thread pool.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

/// Hashing could not run (the blocking task panicked or the hasher refused its input).
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct PasswordError(String);

fn failed(err: impl std::fmt::Display) -> PasswordError {
    PasswordError(err.to_string())
}

pub async fn hash(password: String) -> Result<String, PasswordError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(failed)
    })
    .await
    .map_err(failed)?
}

/// False for a wrong password and for a malformed stored hash alike.
pub async fn verify(password: String, stored_hash: String) -> Result<bool, PasswordError> {
    tokio::task::spawn_blocking(move || {
        let Ok(parsed) = PasswordHash::new(&stored_hash) else {
            return false;
        };
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
    .await
    .map_err(failed)
}

/// A hash of a random password, verified against when the email is unknown so that a login's
/// timing does not reveal whether an account exists.
pub async fn dummy_hash() -> Result<String, PasswordError> {
    hash("nox-sync-dummy-password".into()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_is_argon2id_and_verifies() {
        let h = hash("correct horse".into()).await.expect("hash");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("correct horse".into(), h.clone())
            .await
            .expect("verify"));
        assert!(!verify("wrong horse".into(), h).await.expect("verify"));
    }

    #[tokio::test]
    async fn malformed_hash_never_verifies() {
        assert!(!verify("x".into(), "not-a-hash".into())
            .await
            .expect("verify"));
    }
}
