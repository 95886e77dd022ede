//! Who is calling: passwords, access tokens, refresh tokens, API keys, TOTP, permissions, and the
//! axum extractor that turns an `Authorization: Bearer` (or `X-Api-Key`) header into an
//! [`AuthUser`].

pub mod api_key;
pub mod events;
pub mod extract;
pub mod password;
pub mod permissions;
pub mod tokens;
pub mod totp;

pub use extract::{ApiKeyScope, AuthUser};
pub use permissions::{Permission, PermissionSet};
