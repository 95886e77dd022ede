//! Identity and tenancy rows: users, sessions, organizations, roles, members, projects, workspaces.
//!
//! Functions here take a `&PgPool` (or a transaction) and return plain row structs; the server decides
//! who may call them.

pub mod orgs;
pub mod projects;
pub mod sessions;
pub mod users;
pub mod workspaces;
