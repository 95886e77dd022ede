//! Identity and tenancy rows: users, sessions, organizations, roles, members, projects, workspaces.
//!
//! Functions here take a `&PgPool` (or a transaction) and return plain row structs; the server decides
//! who may call them.

pub mod api_keys;
pub mod audit;
pub mod billing;
pub mod features;
pub mod invitations;
pub mod mail;
pub mod members;
pub mod mfa;
pub mod orgs;
pub mod projects;
pub mod roles;
pub mod security;
pub mod sessions;
pub mod users;
pub mod workspaces;
