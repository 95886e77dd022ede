//! The HTTP API: one module per resource, assembled into one router here.

mod auth;
mod authz;
mod client;
mod health;
mod me;
mod orgs;
mod projects;
mod workspaces;

use axum::routing::{get, post};
use axum::Router;

use crate::state::AppState;

pub use authz::{require_org_member, require_permission, require_workspace};
pub use client::ClientInfo;

/// Every route of the server.
pub fn router() -> Router<AppState> {
    let api = Router::new()
        .route("/auth/register", post(auth::register))
        .route("/auth/login", post(auth::login))
        .route("/me", get(me::get_me))
        .route("/orgs", post(orgs::create).get(orgs::list))
        .route(
            "/orgs/{org_id}/projects",
            post(projects::create).get(projects::list),
        )
        .route(
            "/projects/{project_id}/workspaces",
            post(workspaces::create).get(workspaces::list),
        )
        .route("/workspaces/{workspace_id}", get(workspaces::get));
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(health::metrics))
        .route(
            "/ws/workspaces/{workspace_id}",
            get(crate::ws::workspace_socket),
        )
        .route("/readyz", get(health::readyz))
        .nest("/api/v1", api)
}
