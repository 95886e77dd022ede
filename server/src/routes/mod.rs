//! The HTTP API: one module per resource. The router that assembles them is `app.rs`.

pub(crate) mod account;
pub(crate) mod api_keys;
pub(crate) mod audit;
pub(crate) mod auth;
pub(crate) mod billing;
pub(crate) mod canvas;
pub(crate) mod chat;
pub(crate) mod comments;
pub(crate) mod features;
pub(crate) mod files;
pub(crate) mod health;
pub(crate) mod invitations;
pub(crate) mod live;
pub(crate) mod me;
pub(crate) mod members;
pub(crate) mod notes;
pub(crate) mod orgs;
pub(crate) mod projects;
pub(crate) mod roles;
pub(crate) mod security_events;
pub(crate) mod sessions;
pub(crate) mod workspaces;
