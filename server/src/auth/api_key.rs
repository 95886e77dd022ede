//! API key strings: `nox_<prefix8>_<secret>`. The prefix is stored in clear so a key can be
//! recognised in a list; the whole key is stored only as its SHA-256.

use rand::RngCore;

use super::tokens::{hash_token, random_token};

/// Every key starts with this, which is how a bearer credential is told apart from a JWT.
pub const KEY_MARKER: &str = "nox_";

/// A freshly minted key: `full` is shown to its creator once, the rest is stored.
#[derive(Debug, Clone)]
pub struct MintedKey {
    pub full: String,
    /// `nox_<prefix8>`, kept in `api_keys.key_prefix`.
    pub prefix: String,
    pub hash: String,
}

pub fn mint() -> MintedKey {
    let mut bytes = [0u8; 4];
    rand::thread_rng().fill_bytes(&mut bytes);
    let prefix = format!("{KEY_MARKER}{}", hex::encode(bytes));
    let full = format!("{prefix}_{}", random_token());
    let hash = hash_token(&full);
    MintedKey { full, prefix, hash }
}

/// Whether a presented credential is an API key rather than an access token.
pub fn is_api_key(credential: &str) -> bool {
    credential.starts_with(KEY_MARKER)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_keys_have_the_documented_shape() {
        let key = mint();
        assert!(is_api_key(&key.full));
        assert!(key.full.starts_with(&format!("{}_", key.prefix)));
        assert_eq!(key.prefix.len(), 12);
        assert_eq!(key.hash, hash_token(&key.full));
        assert_ne!(mint().full, key.full);
        assert!(!is_api_key("eyJhbGciOi"));
    }
}
