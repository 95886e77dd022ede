//! The OpenAPI 3 document of `/api/v1`, generated from the handlers' `#[utoipa::path]`
//! annotations, served at `GET /api/v1/openapi.json` with a browsable page at `/api/v1/docs`.
//!
//! Adding a route: annotate the handler with `#[utoipa::path(...)]` (path with the `/api/v1`
//! prefix, `security(("bearer" = []))` when it needs a caller) and list it in [`ApiDoc`]'s
//! `paths(...)`; schemas referenced by paths are collected automatically. The API test
//! `openapi_lists_every_route` fails when a route of the router is missing here.

use std::sync::LazyLock;

use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::{ErrorBody, ErrorDetail, FieldErrorDoc};
use crate::extract::Json;
use crate::routes::{account, api_keys, auth, canvas, live, me, sessions, versions};
use crate::routes::{
    audit, billing, features, invitations, members, orgs, projects, roles, workspaces,
};
use crate::routes::{chat, comments, files, notes};
use crate::routes::{warehouse, warehouse_invaders, warehouse_templates};
use crate::state::AppState;
use crate::web::{DOCS_HTML, DOCS_INIT_JS, DOCS_UI_CSS, DOCS_UI_JS};

/// Declares the `bearer` scheme: an access token (JWT) or an API key (`nox_…`).
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT access token or nox_ API key")
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Nox Sync API",
        description = "Identity, tenancy and workspace administration of Nox Sync. \
            Lists are paginated with `?limit=&cursor=` and answer `{items, next_cursor}`. \
            Errors are `{\"error\": {\"code\", \"message\", \"fields\"?, \"details\"?}}`."
    ),
    modifiers(&BearerAuth),
    paths(
        auth::register, auth::login, auth::login_mfa, auth::refresh, auth::logout,
        account::verify_email, account::request_verification, account::reset_password,
        account::request_password_reset,
        me::get_me, me::update_me, me::delete_me, me::change_password,
        sessions::list, sessions::revoke,
        account::mfa_enroll, account::mfa_confirm, account::mfa_disable,
        api_keys::create, api_keys::list, api_keys::revoke,
        orgs::create, orgs::list, orgs::get, orgs::update, orgs::delete,
        roles::list, roles::create, roles::update, roles::delete,
        members::list, members::change_role, members::remove,
        invitations::create, invitations::list, invitations::resend, invitations::revoke,
        invitations::accept,
        billing::plans, billing::get_subscription, billing::change_plan, billing::usage,
        features::list, features::set, features::clear,
        audit::list,
        projects::create, projects::list, projects::get, projects::update, projects::delete,
        workspaces::create, workspaces::list, workspaces::get, workspaces::update,
        workspaces::delete,
        canvas::list_blocks, canvas::get_block, canvas::create_block, canvas::patch_block,
        canvas::delete_block, canvas::list_relations, canvas::get_relation,
        canvas::create_relation, canvas::patch_relation, canvas::delete_relation,
        live::presence, live::list_locks, live::break_lock, live::projection_status,
        warehouse::create_warehouse, warehouse::list_warehouses, warehouse::get_warehouse,
        warehouse::update_warehouse, warehouse::delete_warehouse,
        warehouse::create_collection, warehouse::list_collections, warehouse::get_collection,
        warehouse::update_collection, warehouse::delete_collection,
        warehouse_templates::create_template, warehouse_templates::save_selection,
        warehouse_templates::list_templates, warehouse_templates::get_template,
        warehouse_templates::update_template, warehouse_templates::delete_template,
        warehouse_templates::instantiate,
        warehouse_invaders::create_invader, warehouse_invaders::list_invaders,
        warehouse_invaders::get_invader, warehouse_invaders::update_invader,
        warehouse_invaders::delete_invader, warehouse_invaders::apply_invader,
        versions::create, versions::list, versions::get, versions::update, versions::delete,
        versions::canvas, versions::diff, versions::restore,
        comments::create, comments::list, comments::get, comments::update, comments::delete,
        comments::resolve, comments::reopen,
        files::upload, files::list, files::get, files::download, files::delete, files::attach,
        files::list_attachments, files::detach, files::attached_to,
        chat::create_room, chat::list_rooms, chat::workspace_room, chat::history,
        chat::post_message, chat::update_message, chat::delete_message,
        notes::create_for_project, notes::list_for_project, notes::create_for_workspace,
        notes::list_for_workspace, notes::get, notes::update, notes::delete,
    ),
    components(schemas(ErrorBody, ErrorDetail, FieldErrorDoc)),
    tags(
        (name = "auth", description = "Sign-up, login (with MFA step-up), refresh, logout, \
            email verification and password reset"),
        (name = "account"), (name = "sessions"), (name = "mfa", description = "TOTP (RFC 6238)"),
        (name = "api-keys", description = "Organization-scoped keys: Authorization: Bearer nox_… \
            or X-Api-Key"),
        (name = "organizations"), (name = "roles"), (name = "members"), (name = "invitations"),
        (name = "billing", description = "Plans, quotas and usage"),
        (name = "features", description = "Feature flags with per-organization overrides"),
        (name = "audit"), (name = "projects"), (name = "workspaces"),
        (name = "canvas", description = "Blocks and relations of the live document; writes are \
            Yjs transactions in the workspace's room"),
        (name = "live", description = "Presence, edit locks and the projection report"),
        (name = "warehouse", description = "An organization's reusable assets: collections \
            (folders), block templates (save a selection, insert it anywhere) and invader \
            definitions with JSON Schema configs"),
        (name = "versions", description = "Version history: full document states stored \
            automatically and on request; diffs; restore as a forward change"),
        (name = "comments", description = "Threads on blocks, relations and workspaces; pushed \
            live as stateless `comment.*` events (`?comments=1`)"),
        (name = "files", description = "Uploads (multipart, content-addressed, sniffed content \
            type), downloads and attachments to blocks, comments and chat messages"),
        (name = "chat", description = "Chat rooms per project and per workspace; messages are \
            stored, then pushed live as stateless `chat.*` events (`?chat=1`)"),
        (name = "notes", description = "Personal (PRIVATE) or SHARED notes of a project or a \
            workspace"),
    )
)]
pub struct ApiDoc;

/// Built once: the document is static for the life of the process.
static DOCUMENT: LazyLock<utoipa::openapi::OpenApi> = LazyLock::new(ApiDoc::openapi);

/// `GET /api/v1/openapi.json`.
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(DOCUMENT.clone())
}

/// `GET /api/v1/docs`: a Swagger UI page for the document. Its script and stylesheet are
/// embedded in the binary (`server/assets/docs/`), so the page works without network access.
pub fn docs_page() -> Router<AppState> {
    Router::new()
        .route("/docs", get(|h: HeaderMap| serve(&DOCS_HTML, h)))
        .route("/docs/init.js", get(|h: HeaderMap| serve(&DOCS_INIT_JS, h)))
        .route(
            "/docs/swagger-ui-bundle.js",
            get(|h: HeaderMap| serve(&DOCS_UI_JS, h)),
        )
        .route(
            "/docs/swagger-ui.css",
            get(|h: HeaderMap| serve(&DOCS_UI_CSS, h)),
        )
}

async fn serve(asset: &'static crate::web::Asset, headers: HeaderMap) -> Response {
    asset.respond(&headers)
}

#[cfg(test)]
mod tests {
    use crate::web::{DOCS_HTML, DOCS_INIT_JS};

    #[test]
    fn the_docs_page_loads_only_local_assets() {
        let html = std::str::from_utf8(DOCS_HTML.body).expect("utf-8");
        for local in [
            "/api/v1/docs/swagger-ui-bundle.js",
            "/api/v1/docs/swagger-ui.css",
            "/api/v1/docs/init.js",
        ] {
            assert!(html.contains(local), "{local}");
        }
        let init = std::str::from_utf8(DOCS_INIT_JS.body).expect("utf-8");
        assert!(init.contains("/api/v1/openapi.json"));
        for page in [html, init] {
            assert!(!page.contains("https://"), "an external URL in {page}");
        }
    }
}
