//! Access tokens (HS256 JWTs) and opaque refresh tokens.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The user id.
    pub sub: Uuid,
    /// The session (`user_sessions.id`) the token belongs to; revoking it kills the token.
    pub sid: Uuid,
    pub iat: i64,
    pub exp: i64,
}

/// Signs and verifies access tokens. Cheap to clone.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    ttl: Duration,
}

impl TokenKeys {
    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            ttl,
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    pub fn issue(
        &self,
        user_id: Uuid,
        session_id: Uuid,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let now = chrono::Utc::now().timestamp();
        let claims = AccessClaims {
            sub: user_id,
            sid: session_id,
            iat: now,
            exp: now + self.ttl.as_secs() as i64,
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
    }

    /// Checks signature, algorithm and expiry (no leeway: short tokens mean it).
    pub fn verify(&self, token: &str) -> Option<AccessClaims> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        decode::<AccessClaims>(token, &self.decoding, &validation)
            .ok()
            .map(|data| data.claims)
    }
}

/// The audience of an MFA step-up token; access tokens have none, so neither verifies as the other.
const MFA_AUDIENCE: &str = "nox-sync:mfa";
/// The `purpose` claim of an MFA step-up token.
const MFA_PURPOSE: &str = "mfa";
/// How long a user has to enter the second factor after the password was accepted.
pub const MFA_TOKEN_TTL_SECS: i64 = 300;

/// The claims of an MFA step-up token: proof that the password was right, nothing more. It
/// carries no `sid`, so it can never pass as an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MfaClaims {
    pub sub: Uuid,
    /// Unique per token: recorded when the token is redeemed, so it is redeemed once.
    pub jti: Uuid,
    pub aud: String,
    pub purpose: String,
    pub iat: i64,
    pub exp: i64,
}

impl TokenKeys {
    /// A short-lived token that `POST /auth/mfa` exchanges, with a valid code, for a session.
    pub fn issue_mfa(&self, user_id: Uuid) -> Result<String, jsonwebtoken::errors::Error> {
        let now = chrono::Utc::now().timestamp();
        let claims = MfaClaims {
            sub: user_id,
            jti: Uuid::new_v4(),
            aud: MFA_AUDIENCE.into(),
            purpose: MFA_PURPOSE.into(),
            iat: now,
            exp: now + MFA_TOKEN_TTL_SECS,
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
    }

    /// The claims of an MFA token (user, `jti`, expiry) if it is valid, unexpired and really an
    /// MFA token. Whether it was already redeemed is the caller's check (it needs the database).
    pub fn verify_mfa(&self, token: &str) -> Option<MfaClaims> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_audience(&[MFA_AUDIENCE]);
        decode::<MfaClaims>(token, &self.decoding, &validation)
            .ok()
            .filter(|data| data.claims.purpose == MFA_PURPOSE)
            .map(|data| data.claims)
    }
}

/// A fresh random opaque token (256 bits, URL-safe base64).
/// The key nodes of one cluster present to each other on relayed sockets and requests: an
/// HMAC-SHA256 of a fixed label under the token signing secret, which they all share. Knowing it
/// proves nothing about users, and it reveals nothing about the secret.
pub fn relay_key(secret: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mac) => mac,
        // HMAC takes keys of any length; this branch cannot happen.
        Err(_) => return hex::encode(Sha256::digest(secret)),
    };
    mac.update(b"nox-sync cluster relay key v1");
    hex::encode(mac.finalize().into_bytes())
}

/// Byte equality whose time does not depend on where the inputs differ (secrets, codes).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// How opaque tokens are stored: SHA-256, hex. The tokens are random, so no salt is needed.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_verify_and_tampered_ones_do_not() {
        let keys = TokenKeys::new(b"0123456789abcdef0123456789abcdef", Duration::from_secs(60));
        let (user, session) = (Uuid::new_v4(), Uuid::new_v4());
        let token = keys.issue(user, session).expect("issue");
        let claims = keys.verify(&token).expect("valid");
        assert_eq!((claims.sub, claims.sid), (user, session));

        let other = TokenKeys::new(b"another-secret-another-secret-xx", Duration::from_secs(60));
        assert!(other.verify(&token).is_none());
        assert!(keys.verify(&format!("{token}x")).is_none());
        assert!(keys.verify("garbage").is_none());
    }

    #[test]
    fn expired_tokens_are_refused() {
        let keys = TokenKeys::new(b"0123456789abcdef0123456789abcdef", Duration::from_secs(0));
        let token = keys.issue(Uuid::new_v4(), Uuid::new_v4()).expect("issue");
        std::thread::sleep(Duration::from_millis(1100));
        assert!(keys.verify(&token).is_none());
    }

    #[test]
    fn mfa_and_access_tokens_are_not_interchangeable() {
        let keys = TokenKeys::new(b"0123456789abcdef0123456789abcdef", Duration::from_secs(60));
        let user = Uuid::new_v4();
        let mfa = keys.issue_mfa(user).expect("issue");
        assert_eq!(keys.verify_mfa(&mfa).map(|c| c.sub), Some(user));
        let again = keys.issue_mfa(user).expect("issue");
        assert_ne!(
            keys.verify_mfa(&mfa).map(|c| c.jti),
            keys.verify_mfa(&again).map(|c| c.jti),
            "every MFA token has its own jti"
        );
        assert!(keys.verify(&mfa).is_none());
        let access = keys.issue(user, Uuid::new_v4()).expect("issue");
        assert!(keys.verify_mfa(&access).is_none());
    }

    #[test]
    fn random_tokens_differ_and_hash_stably() {
        let (a, b) = (random_token(), random_token());
        assert_ne!(a, b);
        assert_eq!(hash_token(&a), hash_token(&a));
        assert_eq!(hash_token(&a).len(), 64);
    }
}
