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
mod warehouse;

/// A new member of `org` with the role `role`, joined through a real invitation.
pub async fn warehouse_member(
    app: &nox_tests::TestApp,
    owner: &nox_tests::Session,
    org: uuid::Uuid,
    role: &str,
) -> nox_tests::Session {
    let name = format!(
        "{}-{}",
        role.to_lowercase(),
        &uuid::Uuid::new_v4().simple().to_string()[..6]
    );
    app.client
        .add_member(app.pool(), owner, org, &name, role)
        .await
}
