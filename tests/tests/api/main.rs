//! Black-box tests of the HTTP API against a real server and a real PostgreSQL.
//! One test binary, so the test cluster starts once for all of them.

#![allow(clippy::unwrap_used)]

mod account;
mod api_keys;
mod audit;
mod billing;
mod chat;
mod comments;
mod docs;
mod edge;
mod files;
mod health;
mod identity;
mod invitations;
mod malformed;
mod matrix;
mod members;
mod notes;
mod orgs;
mod projects;
mod roles;
mod security;
mod sessions;
mod tenancy;
