//! Credentials and the permission vocabulary, as pure building blocks: argon2id passwords, access
//! and refresh tokens, API key format, TOTP, permissions and default roles. No HTTP, no
//! authorization decisions: those are in `access/`.

pub mod api_key;
pub mod password;
pub mod permissions;
pub mod tokens;
pub mod totp;

pub use permissions::{Permission, PermissionSet};
