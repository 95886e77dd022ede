//! The axum [`Router`]: every route of the server, and the middleware around them (request ids,
//! tracing, body limits, JSON errors for everything the framework answers itself).

use std::convert::Infallible;

use axum::body::to_bytes;
use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderName, Request, StatusCode};
use axum::middleware::{from_fn, from_fn_with_state, map_response, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::Router;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::error::ApiError;
use crate::live::{hocuspocus, ws};
use crate::routes::{
    account, api_keys, audit, auth, billing, canvas, features, health, invitations, live, me,
    members, orgs, projects, roles, sessions, versions, warehouse, warehouse_invaders,
    warehouse_templates, workspaces,
};
use crate::routes::{chat, comments, files, notes};
use crate::state::AppState;
use crate::{http_forward, openapi, web};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// How much of a non-JSON error body is kept as the JSON error's message.
const MAX_PLAIN_MESSAGE: usize = 1024;

pub fn router(state: AppState) -> Router {
    let max_body = state.config.max_body_bytes;
    let max_upload = state.config.max_upload_bytes;
    routes()
        .layer(RequestBodyLimitLayer::new(max_body))
        .merge(upload_routes(max_upload))
        .fallback(|| async { ApiError::not_found("route") })
        // A workspace's requests go to the node that owns it (DESIGN §7); forwarded ones are
        // believed only with the cluster's relay key.
        .layer(from_fn_with_state(
            state.clone(),
            http_forward::forward_to_owner,
        ))
        .layer(from_fn_with_state(
            state.clone(),
            http_forward::accept_relayed,
        ))
        .with_state(state)
        .layer(from_fn(changes_run_to_completion))
        // Outside the body limits, so their 413 is rewritten too.
        .layer(map_response(json_errors))
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

/// Requests that change something run to their end even if the caller hangs up. The server drops
/// a request's future when its connection closes, and a change stopped halfway (a restore applied
/// without its before-restore version and audit row, a write forwarded to another node cut off)
/// is worse than one whose answer nobody reads. Reads stop with their caller.
async fn changes_run_to_completion(request: Request<Body>, next: Next) -> Response {
    if request.method().is_safe() {
        return next.run(request).await;
    }
    let work = tracing::Instrument::instrument(next.run(request), tracing::Span::current());
    match tokio::spawn(work).await {
        Ok(response) => response,
        Err(err) => ApiError::internal(err).into_response(),
    }
}

/// Gives every error the `{"error":{"code","message"}}` shape, also those that axum and tower
/// answer themselves before a handler runs (405 with an empty body, the body limit's plain-text
/// 413, a WebSocket upgrade's plain-text 400, ...). Headers such as `Allow` are kept.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(&response) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let plain = to_bytes(body, MAX_PLAIN_MESSAGE)
        .await
        .ok()
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .filter(|text| !text.is_empty());
    let mut replaced = error_for_status(status, plain).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            replaced.headers_mut().insert(name.clone(), value.clone());
        }
    }
    replaced
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"))
}

/// The stable code and a message for an error status answered without an [`ApiError`].
fn error_for_status(status: StatusCode, plain: Option<String>) -> ApiError {
    let (code, default_message) = match status {
        StatusCode::PAYLOAD_TOO_LARGE => (
            "body_too_large",
            "the request body is larger than the server accepts",
        ),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "this method is not allowed on this path; see the Allow header",
        ),
        StatusCode::NOT_FOUND => ("not_found", "route not found"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            ("unsupported_media_type", "unsupported content type")
        }
        StatusCode::UNAUTHORIZED => ("unauthorized", "authentication required"),
        StatusCode::FORBIDDEN => ("forbidden", "forbidden"),
        StatusCode::REQUEST_TIMEOUT => ("request_timeout", "the request took too long"),
        StatusCode::UPGRADE_REQUIRED => ("upgrade_required", "a protocol upgrade is required"),
        StatusCode::SERVICE_UNAVAILABLE => ("service_unavailable", "service unavailable"),
        s if s.is_server_error() => ("internal_error", "internal server error"),
        _ => ("bad_request", "the request is invalid"),
    };
    // Server errors never show their cause; client errors keep the framework's explanation.
    let message = match plain {
        Some(text) if status.is_client_error() => text,
        _ => default_message.to_string(),
    };
    ApiError::new(status, code, message)
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
        .route(
            "/me",
            get(me::get_me).patch(me::update_me).delete(me::delete_me),
        )
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
            get(versions::get)
                .patch(versions::update)
                .delete(versions::delete),
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
        .merge(warehouse_routes())
        .merge(collaboration_routes())
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
        .route(
            "/internal/v1/workspaces/{workspace_id}/canvas",
            get(http_forward::internal_canvas),
        )
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

/// Room for the multipart framing around an upload of the largest allowed size.
const UPLOAD_FRAMING_BYTES: usize = 64 * 1024;

/// The upload route, the one route outside the global body limit: its own limit is
/// `NOX_MAX_UPLOAD_BYTES` (the handler stops at the plan's smaller limit while streaming).
fn upload_routes(max_upload: usize) -> Router<AppState> {
    let limit = max_upload.saturating_add(UPLOAD_FRAMING_BYTES);
    Router::new().route(
        "/api/v1/projects/{project_id}/files",
        post(files::upload)
            .layer::<_, Infallible>(DefaultBodyLimit::max(limit))
            .layer::<_, Infallible>(RequestBodyLimitLayer::new(limit))
            .get(files::list),
    )
}

/// Comments, files, chat and notes (issue 16).
fn collaboration_routes() -> Router<AppState> {
    Router::new()
        .route(
            "/workspaces/{workspace_id}/comments",
            get(comments::list).post(comments::create),
        )
        .route(
            "/workspaces/{workspace_id}/comments/{comment_id}",
            get(comments::get)
                .patch(comments::update)
                .delete(comments::delete),
        )
        .route(
            "/workspaces/{workspace_id}/comments/{comment_id}/resolve",
            post(comments::resolve),
        )
        .route(
            "/workspaces/{workspace_id}/comments/{comment_id}/reopen",
            post(comments::reopen),
        )
        .route(
            "/projects/{project_id}/files/{file_id}",
            get(files::get).delete(files::delete),
        )
        .route(
            "/projects/{project_id}/files/{file_id}/content",
            get(files::download),
        )
        .route(
            "/projects/{project_id}/files/{file_id}/attachments",
            get(files::list_attachments).post(files::attach),
        )
        .route(
            "/projects/{project_id}/files/{file_id}/attachments/{attachment_id}",
            delete(files::detach),
        )
        .route(
            "/projects/{project_id}/attachments",
            get(files::attached_to),
        )
        .route(
            "/projects/{project_id}/chat-rooms",
            get(chat::list_rooms).post(chat::create_room),
        )
        .route(
            "/workspaces/{workspace_id}/chat-room",
            get(chat::workspace_room),
        )
        .route(
            "/chat-rooms/{room_id}/messages",
            get(chat::history).post(chat::post_message),
        )
        .route(
            "/chat-rooms/{room_id}/messages/{message_id}",
            axum::routing::patch(chat::update_message).delete(chat::delete_message),
        )
        .route(
            "/projects/{project_id}/notes",
            get(notes::list_for_project).post(notes::create_for_project),
        )
        .route(
            "/workspaces/{workspace_id}/notes",
            get(notes::list_for_workspace).post(notes::create_for_workspace),
        )
        .route(
            "/notes/{note_id}",
            get(notes::get).patch(notes::update).delete(notes::delete),
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;

    async fn json_of(response: Response) -> serde_json::Value {
        let bytes = to_bytes(response.into_body(), 1 << 16).await.expect("body");
        serde_json::from_slice(&bytes).expect("json")
    }

    #[tokio::test]
    async fn an_empty_405_becomes_json_and_keeps_allow() {
        let mut plain = Response::new(Body::empty());
        *plain.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
        plain
            .headers_mut()
            .insert(header::ALLOW, "GET,HEAD".parse().expect("header"));
        let response = json_errors(plain).await;
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(
            response.headers().get(header::ALLOW).map(|v| v.as_bytes()),
            Some(&b"GET,HEAD"[..])
        );
        assert!(is_json(&response));
        assert_eq!(
            json_of(response).await["error"]["code"],
            "method_not_allowed"
        );
    }

    #[tokio::test]
    async fn a_plain_500_hides_its_text() {
        let plain = (StatusCode::INTERNAL_SERVER_ERROR, "secret detail").into_response();
        let body = json_of(json_errors(plain).await).await;
        assert_eq!(body["error"]["code"], "internal_error");
        assert!(!body.to_string().contains("secret"));
    }

    #[tokio::test]
    async fn successes_and_json_errors_pass_untouched() {
        let ok = (StatusCode::OK, "hello").into_response();
        assert!(!is_json(&json_errors(ok).await));
        let api = ApiError::not_found("workspace").into_response();
        let body = json_of(json_errors(api).await).await;
        assert_eq!(body["error"]["message"], "workspace not found");
    }
}
