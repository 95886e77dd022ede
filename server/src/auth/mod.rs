//! Who is calling: passwords, access tokens, refresh tokens, permissions, and the axum extractor
//! that turns an `Authorization: Bearer` header into an [`AuthUser`].

pub mod extract;
pub mod password;
pub mod permissions;
pub mod tokens;

pub use extract::AuthUser;
pub use permissions::Permission;
