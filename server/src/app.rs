//! The axum [`Router`]: every route of the server, and the middleware around them (request ids,
//! tracing, body limits, JSON 404s).

use axum::http::{HeaderName, Request};
use axum::routing::{delete, get, post, put};
use axum::Router;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::error::ApiError;
use crate::live::{hocuspocus, ws};
use crate::routes::{
    account, api_keys, audit, auth, billing, canvas, features, health, invitations, live, me,
    members, orgs, projects, roles, sessions, warehouse, warehouse_invaders, warehouse_templates,
    workspaces,
};
use crate::state::AppState;
use crate::{openapi, web};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub fn router(state: AppState) -> Router {
    let max_body = state.config.max_body_bytes;
    routes()
        .fallback(|| async { ApiError::not_found("route") })
        .with_state(state)
        .layer(RequestBodyLimitLayer::new(max_body))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                let request_id = req
                    .headers()
                    .get(&REQUEST_ID)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!("http", method = %req.method(), path = %req.uri().path(), request_id)
            }),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

/// Every route of the server.
fn routes() -> Router<AppState> {
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
        .merge(warehouse_routes())
        .route("/openapi.json", get(openapi::openapi_json))
        .merge(openapi::docs_page());
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/", get(web::index))
        .route("/w/{workspace_id}", get(web::workspace_page))
        .route("/assets/app.js", get(web::app_js))
        .route("/assets/app.css", get(web::app_css))
        .route("/metrics", get(health::metrics))
        .route("/hocuspocus", get(hocuspocus::hocuspocus_socket))
        .route("/ws/workspaces/{workspace_id}", get(ws::workspace_socket))
        .route("/readyz", get(health::readyz))
        .nest("/api/v1", api)
}

/// The warehouse (docs/design.md §17): warehouses, collections, templates, invader definitions.
fn warehouse_routes() -> Router<AppState> {
    use warehouse as w;
    use warehouse_invaders as inv;
    use warehouse_templates as tpl;
    Router::new()
        .route(
            "/orgs/{org_id}/warehouses",
            post(w::create_warehouse).get(w::list_warehouses),
        )
        .route(
            "/warehouses/{warehouse_id}",
            get(w::get_warehouse)
                .patch(w::update_warehouse)
                .delete(w::delete_warehouse),
        )
        .route(
            "/warehouses/{warehouse_id}/collections",
            post(w::create_collection).get(w::list_collections),
        )
        .route(
            "/collections/{collection_id}",
            get(w::get_collection)
                .patch(w::update_collection)
                .delete(w::delete_collection),
        )
        .route(
            "/warehouses/{warehouse_id}/templates",
            post(tpl::create_template).get(tpl::list_templates),
        )
        .route(
            "/warehouses/{warehouse_id}/templates/from-selection",
            post(tpl::save_selection),
        )
        .route(
            "/templates/{template_id}",
            get(tpl::get_template)
                .patch(tpl::update_template)
                .delete(tpl::delete_template),
        )
        .route(
            "/workspaces/{workspace_id}/templates/{template_id}/instantiate",
            post(tpl::instantiate),
        )
        .route(
            "/warehouses/{warehouse_id}/invaders",
            post(inv::create_invader).get(inv::list_invaders),
        )
        .route(
            "/invaders/{invader_id}",
            get(inv::get_invader)
                .patch(inv::update_invader)
                .delete(inv::delete_invader),
        )
        .route(
            "/workspaces/{workspace_id}/blocks/{block_id}/invaders/{invader_id}",
            put(inv::apply_invader),
        )
}
