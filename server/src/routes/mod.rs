//! The HTTP API: one module per resource, assembled into one router here.

pub(crate) mod account;
pub(crate) mod api_keys;
pub(crate) mod audit;
pub(crate) mod auth;
mod authz;
pub(crate) mod billing;
pub(crate) mod canvas;
mod client;
pub(crate) mod features;
mod health;
pub(crate) mod invitations;
pub(crate) mod live;
pub(crate) mod me;
pub(crate) mod members;
pub(crate) mod orgs;
pub(crate) mod projects;
pub(crate) mod roles;
pub(crate) mod sessions;
pub(crate) mod versions;
pub(crate) mod workspaces;

use axum::routing::{delete, get, post, put};
use axum::Router;

use crate::state::AppState;

pub use authz::{require_org_member, require_permission, require_workspace_for};
pub use client::ClientInfo;

/// Every route of the server.
pub fn router() -> Router<AppState> {
    let api = Router::new()
        .route("/auth/register", post(auth::register))
        .route("/auth/login", post(auth::login))
        .route("/auth/mfa", post(auth::login_mfa))
        .route("/auth/refresh", post(auth::refresh))
        .route("/auth/logout", post(auth::logout))
        .route("/auth/verify-email", post(account::verify_email))
        .route(
            "/auth/verify-email/request",
            post(account::request_verification),
        )
        .route("/auth/password-reset", post(account::reset_password))
        .route(
            "/auth/password-reset/request",
            post(account::request_password_reset),
        )
        .route("/me", get(me::get_me).delete(me::delete_me))
        .route("/me/password", post(me::change_password))
        .route("/me/sessions", get(sessions::list))
        .route("/me/sessions/{session_id}", delete(sessions::revoke))
        .route("/me/mfa/enroll", post(account::mfa_enroll))
        .route("/me/mfa/confirm", post(account::mfa_confirm))
        .route("/me/mfa/disable", post(account::mfa_disable))
        .route(
            "/orgs/{org_id}/api-keys",
            post(api_keys::create).get(api_keys::list),
        )
        .route("/orgs/{org_id}/api-keys/{key_id}", delete(api_keys::revoke))
        .route("/orgs", post(orgs::create).get(orgs::list))
        .route(
            "/orgs/{org_id}",
            get(orgs::get).patch(orgs::update).delete(orgs::delete),
        )
        .route("/orgs/{org_id}/roles", get(roles::list).post(roles::create))
        .route(
            "/orgs/{org_id}/roles/{role_id}",
            axum::routing::patch(roles::update).delete(roles::delete),
        )
        .route("/orgs/{org_id}/members", get(members::list))
        .route(
            "/orgs/{org_id}/members/{user_id}",
            axum::routing::patch(members::change_role).delete(members::remove),
        )
        .route(
            "/orgs/{org_id}/invitations",
            post(invitations::create).get(invitations::list),
        )
        .route(
            "/orgs/{org_id}/invitations/{invitation_id}",
            delete(invitations::revoke),
        )
        .route(
            "/orgs/{org_id}/invitations/{invitation_id}/resend",
            post(invitations::resend),
        )
        .route("/invitations/accept", post(invitations::accept))
        .route("/plans", get(billing::plans))
        .route(
            "/orgs/{org_id}/subscription",
            get(billing::get_subscription).put(billing::change_plan),
        )
        .route("/orgs/{org_id}/usage", get(billing::usage))
        .route("/orgs/{org_id}/features", get(features::list))
        .route(
            "/orgs/{org_id}/features/{key}",
            put(features::set).delete(features::clear),
        )
        .route("/orgs/{org_id}/audit-logs", get(audit::list))
        .route(
            "/orgs/{org_id}/projects",
            post(projects::create).get(projects::list),
        )
        .route(
            "/projects/{project_id}",
            get(projects::get)
                .patch(projects::update)
                .delete(projects::delete),
        )
        .route(
            "/projects/{project_id}/workspaces",
            post(workspaces::create).get(workspaces::list),
        )
        .route(
            "/workspaces/{workspace_id}",
            get(workspaces::get)
                .patch(workspaces::update)
                .delete(workspaces::delete),
        )
        .route(
            "/workspaces/{workspace_id}/blocks",
            get(canvas::list_blocks).post(canvas::create_block),
        )
        .route(
            "/workspaces/{workspace_id}/blocks/{block_id}",
            get(canvas::get_block)
                .patch(canvas::patch_block)
                .delete(canvas::delete_block),
        )
        .route(
            "/workspaces/{workspace_id}/relations",
            get(canvas::list_relations).post(canvas::create_relation),
        )
        .route(
            "/workspaces/{workspace_id}/relations/{relation_id}",
            get(canvas::get_relation)
                .patch(canvas::patch_relation)
                .delete(canvas::delete_relation),
        )
        .route(
            "/workspaces/{workspace_id}/versions",
            post(versions::create).get(versions::list),
        )
        .route(
            "/workspaces/{workspace_id}/versions/{version_id}",
            get(versions::get),
        )
        .route(
            "/workspaces/{workspace_id}/versions/{version_id}/canvas",
            get(versions::canvas),
        )
        .route(
            "/workspaces/{workspace_id}/versions/{version_id}/diff",
            get(versions::diff),
        )
        .route(
            "/workspaces/{workspace_id}/versions/{version_id}/restore",
            post(versions::restore),
        )
        .route("/workspaces/{workspace_id}/presence", get(live::presence))
        .route("/workspaces/{workspace_id}/locks", get(live::list_locks))
        .route(
            "/workspaces/{workspace_id}/locks/{lock_id}",
            delete(live::break_lock),
        )
        .route(
            "/workspaces/{workspace_id}/projection",
            get(live::projection_status),
        )
        .route("/openapi.json", get(crate::openapi::openapi_json))
        .merge(crate::openapi::docs_page());
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/", get(crate::web::index))
        .route("/w/{workspace_id}", get(crate::web::workspace_page))
        .route("/assets/app.js", get(crate::web::app_js))
        .route("/assets/app.css", get(crate::web::app_css))
        .route("/metrics", get(health::metrics))
        .route("/hocuspocus", get(crate::hocuspocus::hocuspocus_socket))
        .route(
            "/ws/workspaces/{workspace_id}",
            get(crate::ws::workspace_socket),
        )
        .route("/readyz", get(health::readyz))
        .nest("/api/v1", api)
}
