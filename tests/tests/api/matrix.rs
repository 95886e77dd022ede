//! The tenancy matrix: for every org-scoped route, a user of another organization gets 404 and
//! changes nothing, and a Viewer gets 403 on every mutating route. Also checks that the OpenAPI
//! document lists every `/api/v1` route of the router.

use nox_tests::{Session, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

/// The ids a route template can name.
struct Ids {
    org: Uuid,
    project: Uuid,
    workspace: Uuid,
    role: Uuid,
    member: Uuid,
    invitation: Uuid,
    api_key: Uuid,
    warehouse: Uuid,
    collection: Uuid,
    template: Uuid,
    invader: Uuid,
    chat_room: Uuid,
    note: Uuid,
}

/// One route: method, path template (`{org}`, `{project}`, ...) and a valid body.
struct Route {
    method: Method,
    path: &'static str,
    body: Option<Value>,
}

fn route(method: Method, path: &'static str, body: Option<Value>) -> Route {
    Route { method, path, body }
}

/// Every route that takes an organization, project, workspace, role, member, invitation or key id.
fn org_scoped_routes(ids: &Ids) -> Vec<Route> {
    let role = ids.role.to_string();
    vec![
        route(Method::GET, "/api/v1/orgs/{org}", None),
        route(
            Method::PATCH,
            "/api/v1/orgs/{org}",
            Some(json!({"name": "pwned"})),
        ),
        route(Method::DELETE, "/api/v1/orgs/{org}", None),
        route(Method::GET, "/api/v1/orgs/{org}/roles", None),
        route(
            Method::POST,
            "/api/v1/orgs/{org}/roles",
            Some(json!({"name": "Spy", "permissions": ["workspace:read"]})),
        ),
        route(
            Method::PATCH,
            "/api/v1/orgs/{org}/roles/{role}",
            Some(json!({"permissions": ["workspace:read"]})),
        ),
        route(Method::DELETE, "/api/v1/orgs/{org}/roles/{role}", None),
        route(Method::GET, "/api/v1/orgs/{org}/members", None),
        route(
            Method::PATCH,
            "/api/v1/orgs/{org}/members/{member}",
            Some(json!({ "role_id": role })),
        ),
        route(Method::DELETE, "/api/v1/orgs/{org}/members/{member}", None),
        route(Method::GET, "/api/v1/orgs/{org}/invitations", None),
        route(
            Method::POST,
            "/api/v1/orgs/{org}/invitations",
            Some(json!({"email": "spy@example.com", "role_id": role})),
        ),
        route(
            Method::POST,
            "/api/v1/orgs/{org}/invitations/{invitation}/resend",
            None,
        ),
        route(
            Method::DELETE,
            "/api/v1/orgs/{org}/invitations/{invitation}",
            None,
        ),
        route(Method::GET, "/api/v1/orgs/{org}/subscription", None),
        route(
            Method::PUT,
            "/api/v1/orgs/{org}/subscription",
            Some(json!({"plan_id": "team"})),
        ),
        route(Method::GET, "/api/v1/orgs/{org}/usage", None),
        route(Method::GET, "/api/v1/orgs/{org}/features", None),
        route(
            Method::PUT,
            "/api/v1/orgs/{org}/features/hocuspocus",
            Some(json!({"value": true})),
        ),
        route(
            Method::DELETE,
            "/api/v1/orgs/{org}/features/hocuspocus",
            None,
        ),
        route(Method::GET, "/api/v1/orgs/{org}/audit-logs", None),
        route(Method::GET, "/api/v1/orgs/{org}/api-keys", None),
        route(
            Method::POST,
            "/api/v1/orgs/{org}/api-keys",
            Some(json!({"name": "spy", "scopes": ["workspace:read"]})),
        ),
        route(Method::DELETE, "/api/v1/orgs/{org}/api-keys/{key}", None),
        route(Method::GET, "/api/v1/orgs/{org}/projects", None),
        route(
            Method::POST,
            "/api/v1/orgs/{org}/projects",
            Some(json!({"name": "spy", "slug": "spy"})),
        ),
        route(Method::GET, "/api/v1/projects/{project}", None),
        route(
            Method::PATCH,
            "/api/v1/projects/{project}",
            Some(json!({"name": "pwned"})),
        ),
        route(Method::DELETE, "/api/v1/projects/{project}", None),
        route(Method::GET, "/api/v1/projects/{project}/workspaces", None),
        route(
            Method::POST,
            "/api/v1/projects/{project}/workspaces",
            Some(json!({"name": "spy", "type": "CANVAS"})),
        ),
        route(Method::GET, "/api/v1/workspaces/{workspace}", None),
        route(
            Method::PATCH,
            "/api/v1/workspaces/{workspace}",
            Some(json!({"name": "pwned"})),
        ),
        route(Method::DELETE, "/api/v1/workspaces/{workspace}", None),
        route(Method::GET, "/api/v1/workspaces/{workspace}/blocks", None),
        route(
            Method::POST,
            "/api/v1/workspaces/{workspace}/blocks",
            Some(json!({"type": "NODE", "name": "spy"})),
        ),
        route(
            Method::GET,
            "/api/v1/workspaces/{workspace}/blocks/{uuid}",
            None,
        ),
        route(
            Method::PATCH,
            "/api/v1/workspaces/{workspace}/blocks/{uuid}",
            Some(json!({"name": "pwned"})),
        ),
        route(
            Method::DELETE,
            "/api/v1/workspaces/{workspace}/blocks/{uuid}",
            None,
        ),
        route(
            Method::GET,
            "/api/v1/workspaces/{workspace}/relations",
            None,
        ),
        route(
            Method::POST,
            "/api/v1/workspaces/{workspace}/relations",
            Some(
                json!({"type": "LINK", "source_block_id": Uuid::nil(), "target_block_id": Uuid::nil()}),
            ),
        ),
        route(
            Method::GET,
            "/api/v1/workspaces/{workspace}/relations/{uuid}",
            None,
        ),
        route(
            Method::PATCH,
            "/api/v1/workspaces/{workspace}/relations/{uuid}",
            Some(json!({"type": "pwned"})),
        ),
        route(
            Method::DELETE,
            "/api/v1/workspaces/{workspace}/relations/{uuid}",
            None,
        ),
        route(Method::GET, "/api/v1/workspaces/{workspace}/presence", None),
        route(Method::GET, "/api/v1/workspaces/{workspace}/locks", None),
        route(
            Method::DELETE,
            "/api/v1/workspaces/{workspace}/locks/{uuid}",
            None,
        ),
        route(
            Method::GET,
            "/api/v1/workspaces/{workspace}/projection",
            None,
        ),
        route(Method::GET, "/api/v1/workspaces/{workspace}/comments", None),
        route(
            Method::POST,
            "/api/v1/workspaces/{workspace}/comments",
            Some(json!({"content": "spy"})),
        ),
        route(
            Method::GET,
            "/api/v1/workspaces/{workspace}/comments/{uuid}",
            None,
        ),
        route(
            Method::PATCH,
            "/api/v1/workspaces/{workspace}/comments/{uuid}",
            Some(json!({"content": "pwned"})),
        ),
        route(
            Method::DELETE,
            "/api/v1/workspaces/{workspace}/comments/{uuid}",
            None,
        ),
        route(
            Method::POST,
            "/api/v1/workspaces/{workspace}/comments/{uuid}/resolve",
            None,
        ),
        route(
            Method::POST,
            "/api/v1/workspaces/{workspace}/comments/{uuid}/reopen",
            None,
        ),
        route(Method::GET, "/api/v1/projects/{project}/chat-rooms", None),
        route(
            Method::POST,
            "/api/v1/projects/{project}/chat-rooms",
            Some(json!({"name": "spy"})),
        ),
        route(
            Method::GET,
            "/api/v1/workspaces/{workspace}/chat-room",
            None,
        ),
        route(Method::GET, "/api/v1/chat-rooms/{chat_room}/messages", None),
        route(
            Method::POST,
            "/api/v1/chat-rooms/{chat_room}/messages",
            Some(json!({"content": "spy"})),
        ),
        route(
            Method::PATCH,
            "/api/v1/chat-rooms/{chat_room}/messages/{uuid}",
            Some(json!({"content": "pwned"})),
        ),
        route(
            Method::DELETE,
            "/api/v1/chat-rooms/{chat_room}/messages/{uuid}",
            None,
        ),
        route(Method::GET, "/api/v1/projects/{project}/notes", None),
        route(
            Method::POST,
            "/api/v1/projects/{project}/notes",
            Some(json!({"title": "spy"})),
        ),
        route(Method::GET, "/api/v1/workspaces/{workspace}/notes", None),
        route(
            Method::POST,
            "/api/v1/workspaces/{workspace}/notes",
            Some(json!({"title": "spy"})),
        ),
        route(Method::GET, "/api/v1/notes/{note}", None),
        route(
            Method::PATCH,
            "/api/v1/notes/{note}",
            Some(json!({"title": "pwned"})),
        ),
        route(Method::DELETE, "/api/v1/notes/{note}", None),
        route(
            Method::GET,
            "/api/v1/projects/{project}/attachments?target_type=BLOCK&target_id={uuid}",
            None,
        ),
        route(Method::GET, "/api/v1/projects/{project}/files", None),
        route(
            Method::POST,
            "/api/v1/projects/{project}/files",
            Some(json!({})),
        ),
        route(Method::GET, "/api/v1/projects/{project}/files/{uuid}", None),
        route(
            Method::GET,
            "/api/v1/projects/{project}/files/{uuid}/content",
            None,
        ),
        route(
            Method::DELETE,
            "/api/v1/projects/{project}/files/{uuid}",
            None,
        ),
        route(
            Method::GET,
            "/api/v1/projects/{project}/files/{uuid}/attachments",
            None,
        ),
        route(
            Method::POST,
            "/api/v1/projects/{project}/files/{uuid}/attachments",
            Some(json!({"target_type": "COMMENT", "target_id": Uuid::nil()})),
        ),
        route(
            Method::DELETE,
            "/api/v1/projects/{project}/files/{uuid}/attachments/{uuid}",
            None,
        ),
    ]
    .into_iter()
    .chain(warehouse_routes(ids))
    .collect()
}

/// The warehouse's routes (docs/design.md §17), with valid bodies.
fn warehouse_routes(ids: &Ids) -> Vec<Route> {
    let structure = json!({"blocks": [{"id": Uuid::new_v4(), "type": "NODE"}]});
    vec![
        route(Method::GET, "/api/v1/orgs/{org}/warehouses", None),
        route(
            Method::POST,
            "/api/v1/orgs/{org}/warehouses",
            Some(json!({"name": "spy"})),
        ),
        route(Method::GET, "/api/v1/warehouses/{warehouse}", None),
        route(
            Method::PATCH,
            "/api/v1/warehouses/{warehouse}",
            Some(json!({"name": "pwned"})),
        ),
        route(Method::DELETE, "/api/v1/warehouses/{warehouse}", None),
        route(
            Method::GET,
            "/api/v1/warehouses/{warehouse}/collections",
            None,
        ),
        route(
            Method::POST,
            "/api/v1/warehouses/{warehouse}/collections",
            Some(json!({"name": "spy"})),
        ),
        route(Method::GET, "/api/v1/collections/{collection}", None),
        route(
            Method::PATCH,
            "/api/v1/collections/{collection}",
            Some(json!({"name": "pwned"})),
        ),
        route(Method::DELETE, "/api/v1/collections/{collection}", None),
        route(
            Method::GET,
            "/api/v1/warehouses/{warehouse}/templates",
            None,
        ),
        route(
            Method::POST,
            "/api/v1/warehouses/{warehouse}/templates",
            Some(json!({"name": "spy", "structure_data": structure})),
        ),
        route(
            Method::POST,
            "/api/v1/warehouses/{warehouse}/templates/from-selection",
            Some(
                json!({"workspace_id": ids.workspace, "block_ids": [Uuid::new_v4()],
                        "name": "spy"}),
            ),
        ),
        route(Method::GET, "/api/v1/templates/{template}", None),
        route(
            Method::PATCH,
            "/api/v1/templates/{template}",
            Some(json!({"name": "pwned"})),
        ),
        route(Method::DELETE, "/api/v1/templates/{template}", None),
        route(
            Method::POST,
            "/api/v1/workspaces/{workspace}/templates/{template}/instantiate",
            Some(json!({"x": 0, "y": 0})),
        ),
        route(Method::GET, "/api/v1/warehouses/{warehouse}/invaders", None),
        route(
            Method::POST,
            "/api/v1/warehouses/{warehouse}/invaders",
            Some(json!({"code": "spy", "name": "spy", "category": "c", "config_schema": {}})),
        ),
        route(Method::GET, "/api/v1/invaders/{invader}", None),
        route(
            Method::PATCH,
            "/api/v1/invaders/{invader}",
            Some(json!({"name": "pwned"})),
        ),
        route(Method::DELETE, "/api/v1/invaders/{invader}", None),
        route(
            Method::PUT,
            "/api/v1/workspaces/{workspace}/blocks/{uuid}/invaders/{invader}",
            Some(json!({"config": {}})),
        ),
    ]
}

fn fill(template: &str, ids: &Ids) -> String {
    template
        .replace("{org}", &ids.org.to_string())
        .replace("{project}", &ids.project.to_string())
        .replace("{workspace}", &ids.workspace.to_string())
        .replace("{role}", &ids.role.to_string())
        .replace("{member}", &ids.member.to_string())
        .replace("{invitation}", &ids.invitation.to_string())
        .replace("{key}", &ids.api_key.to_string())
        .replace("{warehouse}", &ids.warehouse.to_string())
        .replace("{collection}", &ids.collection.to_string())
        .replace("{template}", &ids.template.to_string())
        .replace("{invader}", &ids.invader.to_string())
        .replace("{chat_room}", &ids.chat_room.to_string())
        .replace("{note}", &ids.note.to_string())
        .replace("{uuid}", &Uuid::new_v4().to_string())
}

/// Everything of `org` a route could change, as text: equal before and after means untouched.
async fn fingerprint(pool: &PgPool, org: Uuid) -> String {
    let queries = [
        "SELECT row_to_json(t)::text FROM organizations t WHERE id = $1",
        "SELECT row_to_json(t)::text FROM roles t WHERE org_id = $1 ORDER BY id",
        "SELECT row_to_json(t)::text FROM org_members t WHERE org_id = $1 ORDER BY id",
        "SELECT row_to_json(t)::text FROM invitations t WHERE org_id = $1 ORDER BY id",
        "SELECT row_to_json(t)::text FROM subscriptions t WHERE org_id = $1",
        "SELECT row_to_json(t)::text FROM org_usage_metrics t WHERE org_id = $1 ORDER BY id",
        "SELECT row_to_json(t)::text FROM org_feature_overrides t WHERE org_id = $1 ORDER BY id",
        "SELECT row_to_json(t)::text FROM projects t WHERE org_id = $1 ORDER BY id",
        "SELECT row_to_json(t)::text FROM workspaces t
           WHERE project_id IN (SELECT id FROM projects WHERE org_id = $1) ORDER BY id",
        "SELECT row_to_json(t)::text FROM api_keys t WHERE org_id = $1 ORDER BY id",
        "SELECT row_to_json(t)::text FROM warehouses t WHERE owner_id = $1 ORDER BY id",
        "SELECT row_to_json(t)::text FROM asset_collections t
           WHERE warehouse_id IN (SELECT id FROM warehouses WHERE owner_id = $1) ORDER BY id",
        "SELECT row_to_json(t)::text FROM assets_block_templates t
           WHERE warehouse_id IN (SELECT id FROM warehouses WHERE owner_id = $1) ORDER BY id",
        "SELECT row_to_json(t)::text FROM assets_invader_definitions t
           WHERE warehouse_id IN (SELECT id FROM warehouses WHERE owner_id = $1) ORDER BY id",
        "SELECT COUNT(*)::text FROM audit_logs WHERE org_id = $1",
        // A workspace's default room is made by its first reader, so only project rooms count.
        "SELECT row_to_json(t)::text FROM chat_rooms t
           WHERE org_id = $1 AND workspace_id IS NULL ORDER BY id",
        "SELECT row_to_json(t)::text FROM chat_messages t WHERE room_id IN
           (SELECT id FROM chat_rooms WHERE org_id = $1) ORDER BY id",
        "SELECT row_to_json(t)::text FROM notes t WHERE org_id = $1 ORDER BY id",
        "SELECT row_to_json(t)::text FROM files t WHERE project_id IN
           (SELECT id FROM projects WHERE org_id = $1) ORDER BY id",
        "SELECT row_to_json(t)::text FROM comments t WHERE workspace_id IN
           (SELECT w.id FROM workspaces w JOIN projects p ON p.id = w.project_id
            WHERE p.org_id = $1) ORDER BY id",
        "SELECT COUNT(*)::text FROM workspace_update_log l JOIN workspaces w ON w.id = l.workspace_id
           JOIN projects p ON p.id = w.project_id WHERE p.org_id = $1",
    ];
    let mut out = String::new();
    for q in queries {
        let rows: Vec<(String,)> = sqlx::query_as(q).bind(org).fetch_all(pool).await.unwrap();
        for (row,) in rows {
            out.push_str(&row);
            out.push('\n');
        }
    }
    out
}

/// Org A with one of everything, its owner and a Viewer; org B with its owner.
async fn two_orgs(app: &TestApp) -> (Ids, Session, Session, Ids) {
    let c = &app.client;
    let (owner_a, org, project, workspace) = c.owner_with_workspace("alice").await;
    let viewer = c
        .add_member(app.pool(), &owner_a, org, "victor", "Viewer")
        .await;
    let invitation = c
        .invite(&owner_a, org, "pending@example.com", "Editor")
        .await;
    let key = c
        .post(
            &format!("/api/v1/orgs/{org}/api-keys"),
            &owner_a.token,
            json!({"name": "ci", "scopes": ["workspace:read"]}),
        )
        .await;
    assert_eq!(key.status, StatusCode::CREATED, "{}", key.body);
    let api_key = key.body["api_key"]["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| key.id());
    let assets_a = warehouse_assets(app, &owner_a, org).await;
    let ids_a = Ids {
        org,
        project,
        workspace,
        role: c.role_id(&owner_a, org, "Editor").await,
        member: viewer.user_id,
        invitation,
        api_key,
        warehouse: assets_a[0],
        collection: assets_a[1],
        template: assets_a[2],
        invader: assets_a[3],
        chat_room: c
            .post(
                &format!("/api/v1/projects/{project}/chat-rooms"),
                &owner_a.token,
                json!({"name": "general"}),
            )
            .await
            .id(),
        note: c
            .post(
                &format!("/api/v1/projects/{project}/notes"),
                &owner_a.token,
                json!({"title": "plan", "visibility": "SHARED"}),
            )
            .await
            .id(),
    };
    let (owner_b, org_b, project_b, workspace_b) = c.owner_with_workspace("bob").await;
    let assets_b = warehouse_assets(app, &owner_b, org_b).await;
    let ids_b = Ids {
        org: org_b,
        project: project_b,
        workspace: workspace_b,
        role: c.role_id(&owner_b, org_b, "Editor").await,
        member: owner_b.user_id,
        invitation: c
            .invite(&owner_b, org_b, "other@example.com", "Viewer")
            .await,
        api_key: Uuid::new_v4(),
        warehouse: assets_b[0],
        collection: assets_b[1],
        template: assets_b[2],
        invader: assets_b[3],
        chat_room: Uuid::new_v4(),
        note: Uuid::new_v4(),
    };
    (ids_a, owner_b, viewer, ids_b)
}

/// `[warehouse, collection, template, invader definition]` of `org`.
async fn warehouse_assets(app: &TestApp, owner: &Session, org: Uuid) -> [Uuid; 4] {
    let c = &app.client;
    let warehouse = c.create_warehouse(owner, org).await;
    let collection = c
        .post(
            &format!("/api/v1/warehouses/{warehouse}/collections"),
            &owner.token,
            json!({"name": "folder"}),
        )
        .await
        .id();
    let template = c
        .create_template(owner, warehouse, nox_tests::warehouse::simple_structure(1))
        .await;
    let invader = c
        .create_invader(owner, warehouse, "inv", json!({"type": "object"}))
        .await;
    [warehouse, collection, template, invader]
}

#[tokio::test]
async fn another_orgs_owner_gets_404_everywhere_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let (a, owner_b, _viewer, b) = two_orgs(&app).await;
    let before = fingerprint(app.pool(), a.org).await;
    for r in org_scoped_routes(&a) {
        let path = fill(r.path, &a);
        let reply = app
            .client
            .send(
                r.method.clone(),
                &path,
                Some(&owner_b.token),
                r.body.clone(),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{} {path}: {}",
            r.method,
            reply.body
        );
        assert_eq!(reply.code(), "not_found", "{} {path}", r.method);
        assert!(
            !reply.body.to_string().contains(&a.org.to_string()),
            "{} {path} leaks the org id",
            r.method
        );
    }
    // B's own organization with A's sub-resource ids: still nothing of A's is reachable.
    let mixed = Ids {
        org: b.org,
        project: a.project,
        workspace: a.workspace,
        role: a.role,
        member: a.member,
        invitation: a.invitation,
        api_key: a.api_key,
        warehouse: a.warehouse,
        collection: a.collection,
        template: a.template,
        invader: a.invader,
        chat_room: a.chat_room,
        note: a.note,
    };
    for r in org_scoped_routes(&a) {
        let names_child = [
            "{role}",
            "{member}",
            "{invitation}",
            "{key}",
            "{template}",
            "{invader}",
            "{chat_room}",
            "{note}",
        ]
        .iter()
        .any(|p| r.path.contains(p));
        if !names_child {
            continue;
        }
        let path = fill(r.path, &mixed);
        let reply = app
            .client
            .send(
                r.method.clone(),
                &path,
                Some(&owner_b.token),
                r.body.clone(),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{} {path}: {}",
            r.method,
            reply.body
        );
    }
    assert_eq!(
        fingerprint(app.pool(), a.org).await,
        before,
        "org A changed"
    );
}

#[tokio::test]
async fn a_viewer_gets_403_on_every_mutating_route_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let (a, _owner_b, viewer, _b) = two_orgs(&app).await;
    // Acting on someone else: the Viewer targets the Editor role and another member.
    let other = app.client.register("olga").await;
    sqlx::query(
        "INSERT INTO org_members (org_id, user_id, role_id)
         SELECT $1, $2, id FROM roles WHERE org_id = $1 AND name = 'Editor'",
    )
    .bind(a.org)
    .bind(other.user_id)
    .execute(app.pool())
    .await
    .unwrap();
    let ids = Ids {
        member: other.user_id,
        ..a
    };
    let before = fingerprint(app.pool(), ids.org).await;
    let mut mutating = 0;
    for r in org_scoped_routes(&ids) {
        let path = fill(r.path, &ids);
        let reply = app
            .client
            .send(r.method.clone(), &path, Some(&viewer.token), r.body.clone())
            .await;
        if r.method == Method::GET {
            // Reads are either allowed to every member or need a permission a Viewer lacks;
            // an entity id made up for the test is simply not found.
            let made_up = r.path.contains("{uuid}") && reply.status == StatusCode::NOT_FOUND;
            assert!(
                reply.status == StatusCode::OK || reply.status == StatusCode::FORBIDDEN || made_up,
                "GET {path}: {} {}",
                reply.status,
                reply.body
            );
            continue;
        }
        mutating += 1;
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "{} {path}: {}",
            r.method,
            reply.body
        );
    }
    assert!(mutating >= 20, "only {mutating} mutating routes checked");
    assert_eq!(
        fingerprint(app.pool(), ids.org).await,
        before,
        "org A changed"
    );
}

/// Every `(method, path)` of the router under `/api/v1`, as the OpenAPI document must list them.
const API_ROUTES: &[(&str, &str)] = &[
    ("post", "/api/v1/auth/register"),
    ("post", "/api/v1/auth/login"),
    ("post", "/api/v1/auth/mfa"),
    ("post", "/api/v1/auth/refresh"),
    ("post", "/api/v1/auth/logout"),
    ("post", "/api/v1/auth/verify-email"),
    ("post", "/api/v1/auth/verify-email/request"),
    ("post", "/api/v1/auth/password-reset"),
    ("post", "/api/v1/auth/password-reset/request"),
    ("get", "/api/v1/me"),
    ("patch", "/api/v1/me"),
    ("delete", "/api/v1/me"),
    ("post", "/api/v1/me/password"),
    ("get", "/api/v1/me/sessions"),
    ("delete", "/api/v1/me/sessions/{session_id}"),
    ("post", "/api/v1/me/mfa/enroll"),
    ("post", "/api/v1/me/mfa/confirm"),
    ("post", "/api/v1/me/mfa/disable"),
    ("post", "/api/v1/orgs/{org_id}/api-keys"),
    ("get", "/api/v1/orgs/{org_id}/api-keys"),
    ("delete", "/api/v1/orgs/{org_id}/api-keys/{key_id}"),
    ("post", "/api/v1/orgs"),
    ("get", "/api/v1/orgs"),
    ("get", "/api/v1/orgs/{org_id}"),
    ("patch", "/api/v1/orgs/{org_id}"),
    ("delete", "/api/v1/orgs/{org_id}"),
    ("get", "/api/v1/orgs/{org_id}/roles"),
    ("post", "/api/v1/orgs/{org_id}/roles"),
    ("patch", "/api/v1/orgs/{org_id}/roles/{role_id}"),
    ("delete", "/api/v1/orgs/{org_id}/roles/{role_id}"),
    ("get", "/api/v1/orgs/{org_id}/members"),
    ("patch", "/api/v1/orgs/{org_id}/members/{user_id}"),
    ("delete", "/api/v1/orgs/{org_id}/members/{user_id}"),
    ("post", "/api/v1/orgs/{org_id}/invitations"),
    ("get", "/api/v1/orgs/{org_id}/invitations"),
    (
        "delete",
        "/api/v1/orgs/{org_id}/invitations/{invitation_id}",
    ),
    (
        "post",
        "/api/v1/orgs/{org_id}/invitations/{invitation_id}/resend",
    ),
    ("post", "/api/v1/invitations/accept"),
    ("get", "/api/v1/plans"),
    ("get", "/api/v1/orgs/{org_id}/subscription"),
    ("put", "/api/v1/orgs/{org_id}/subscription"),
    ("get", "/api/v1/orgs/{org_id}/usage"),
    ("get", "/api/v1/orgs/{org_id}/features"),
    ("put", "/api/v1/orgs/{org_id}/features/{key}"),
    ("delete", "/api/v1/orgs/{org_id}/features/{key}"),
    ("get", "/api/v1/orgs/{org_id}/audit-logs"),
    ("post", "/api/v1/orgs/{org_id}/projects"),
    ("get", "/api/v1/orgs/{org_id}/projects"),
    ("get", "/api/v1/projects/{project_id}"),
    ("patch", "/api/v1/projects/{project_id}"),
    ("delete", "/api/v1/projects/{project_id}"),
    ("post", "/api/v1/projects/{project_id}/workspaces"),
    ("get", "/api/v1/projects/{project_id}/workspaces"),
    ("get", "/api/v1/workspaces/{workspace_id}"),
    ("patch", "/api/v1/workspaces/{workspace_id}"),
    ("delete", "/api/v1/workspaces/{workspace_id}"),
    ("get", "/api/v1/workspaces/{workspace_id}/blocks"),
    ("post", "/api/v1/workspaces/{workspace_id}/blocks"),
    ("get", "/api/v1/workspaces/{workspace_id}/blocks/{block_id}"),
    (
        "patch",
        "/api/v1/workspaces/{workspace_id}/blocks/{block_id}",
    ),
    (
        "delete",
        "/api/v1/workspaces/{workspace_id}/blocks/{block_id}",
    ),
    ("get", "/api/v1/workspaces/{workspace_id}/relations"),
    ("post", "/api/v1/workspaces/{workspace_id}/relations"),
    (
        "get",
        "/api/v1/workspaces/{workspace_id}/relations/{relation_id}",
    ),
    (
        "patch",
        "/api/v1/workspaces/{workspace_id}/relations/{relation_id}",
    ),
    (
        "delete",
        "/api/v1/workspaces/{workspace_id}/relations/{relation_id}",
    ),
    ("get", "/api/v1/workspaces/{workspace_id}/presence"),
    ("get", "/api/v1/workspaces/{workspace_id}/locks"),
    (
        "delete",
        "/api/v1/workspaces/{workspace_id}/locks/{lock_id}",
    ),
    ("get", "/api/v1/workspaces/{workspace_id}/projection"),
    ("post", "/api/v1/orgs/{org_id}/warehouses"),
    ("get", "/api/v1/orgs/{org_id}/warehouses"),
    ("get", "/api/v1/warehouses/{warehouse_id}"),
    ("patch", "/api/v1/warehouses/{warehouse_id}"),
    ("delete", "/api/v1/warehouses/{warehouse_id}"),
    ("post", "/api/v1/warehouses/{warehouse_id}/collections"),
    ("get", "/api/v1/warehouses/{warehouse_id}/collections"),
    ("get", "/api/v1/collections/{collection_id}"),
    ("patch", "/api/v1/collections/{collection_id}"),
    ("delete", "/api/v1/collections/{collection_id}"),
    ("post", "/api/v1/warehouses/{warehouse_id}/templates"),
    ("get", "/api/v1/warehouses/{warehouse_id}/templates"),
    (
        "post",
        "/api/v1/warehouses/{warehouse_id}/templates/from-selection",
    ),
    ("get", "/api/v1/templates/{template_id}"),
    ("patch", "/api/v1/templates/{template_id}"),
    ("delete", "/api/v1/templates/{template_id}"),
    (
        "post",
        "/api/v1/workspaces/{workspace_id}/templates/{template_id}/instantiate",
    ),
    ("post", "/api/v1/warehouses/{warehouse_id}/invaders"),
    ("get", "/api/v1/warehouses/{warehouse_id}/invaders"),
    ("get", "/api/v1/invaders/{invader_id}"),
    ("patch", "/api/v1/invaders/{invader_id}"),
    ("delete", "/api/v1/invaders/{invader_id}"),
    (
        "put",
        "/api/v1/workspaces/{workspace_id}/blocks/{block_id}/invaders/{invader_id}",
    ),
    ("post", "/api/v1/workspaces/{workspace_id}/versions"),
    ("get", "/api/v1/workspaces/{workspace_id}/versions"),
    (
        "get",
        "/api/v1/workspaces/{workspace_id}/versions/{version_id}",
    ),
    (
        "patch",
        "/api/v1/workspaces/{workspace_id}/versions/{version_id}",
    ),
    (
        "delete",
        "/api/v1/workspaces/{workspace_id}/versions/{version_id}",
    ),
    (
        "get",
        "/api/v1/workspaces/{workspace_id}/versions/{version_id}/canvas",
    ),
    (
        "get",
        "/api/v1/workspaces/{workspace_id}/versions/{version_id}/diff",
    ),
    (
        "post",
        "/api/v1/workspaces/{workspace_id}/versions/{version_id}/restore",
    ),
    ("get", "/api/v1/workspaces/{workspace_id}/comments"),
    ("post", "/api/v1/workspaces/{workspace_id}/comments"),
    (
        "get",
        "/api/v1/workspaces/{workspace_id}/comments/{comment_id}",
    ),
    (
        "patch",
        "/api/v1/workspaces/{workspace_id}/comments/{comment_id}",
    ),
    (
        "delete",
        "/api/v1/workspaces/{workspace_id}/comments/{comment_id}",
    ),
    (
        "post",
        "/api/v1/workspaces/{workspace_id}/comments/{comment_id}/resolve",
    ),
    (
        "post",
        "/api/v1/workspaces/{workspace_id}/comments/{comment_id}/reopen",
    ),
    ("get", "/api/v1/projects/{project_id}/attachments"),
    ("post", "/api/v1/projects/{project_id}/files"),
    ("get", "/api/v1/projects/{project_id}/files"),
    ("post", "/api/v1/projects/{project_id}/notes"),
    ("get", "/api/v1/projects/{project_id}/notes"),
    ("post", "/api/v1/workspaces/{workspace_id}/notes"),
    ("get", "/api/v1/workspaces/{workspace_id}/notes"),
    ("get", "/api/v1/notes/{note_id}"),
    ("patch", "/api/v1/notes/{note_id}"),
    ("delete", "/api/v1/notes/{note_id}"),
    ("post", "/api/v1/projects/{project_id}/chat-rooms"),
    ("get", "/api/v1/projects/{project_id}/chat-rooms"),
    ("get", "/api/v1/workspaces/{workspace_id}/chat-room"),
    ("get", "/api/v1/chat-rooms/{room_id}/messages"),
    ("post", "/api/v1/chat-rooms/{room_id}/messages"),
    (
        "patch",
        "/api/v1/chat-rooms/{room_id}/messages/{message_id}",
    ),
    (
        "delete",
        "/api/v1/chat-rooms/{room_id}/messages/{message_id}",
    ),
    ("get", "/api/v1/projects/{project_id}/files/{file_id}"),
    ("delete", "/api/v1/projects/{project_id}/files/{file_id}"),
    (
        "get",
        "/api/v1/projects/{project_id}/files/{file_id}/content",
    ),
    (
        "post",
        "/api/v1/projects/{project_id}/files/{file_id}/attachments",
    ),
    (
        "get",
        "/api/v1/projects/{project_id}/files/{file_id}/attachments",
    ),
    (
        "delete",
        "/api/v1/projects/{project_id}/files/{file_id}/attachments/{attachment_id}",
    ),
];

#[tokio::test]
async fn openapi_lists_every_route() {
    let app = TestApp::spawn().await;
    let user = app.client.register("docs").await;
    // The document is public: API clients generate code from it before they have a token.
    let doc = app
        .client
        .send(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(doc.status, StatusCode::OK);
    assert!(doc.body["openapi"].as_str().unwrap().starts_with("3."));
    assert!(doc.body["components"]["securitySchemes"]["bearer"].is_object());
    let mut missing = Vec::new();
    for (method, path) in API_ROUTES {
        let op = &doc.body["paths"][*path][*method];
        if !op.is_object() {
            missing.push(format!("{method} {path}"));
        }
    }
    assert!(missing.is_empty(), "not in openapi.json: {missing:#?}");
    // ... and nothing documented that the router does not serve.
    let documented: usize = doc.body["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|k| ["get", "post", "put", "patch", "delete"].contains(&k.as_str()))
                .count()
        })
        .sum();
    assert_eq!(documented, API_ROUTES.len());
    // Every documented route is really served (not 404/405 for an authenticated caller).
    for (method, path) in API_ROUTES {
        let concrete = path
            .split('/')
            .map(|seg| {
                if seg.starts_with('{') {
                    Uuid::new_v4().to_string()
                } else {
                    seg.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        let m: Method = method.to_uppercase().parse().unwrap();
        let reply = app
            .client
            .send(m, &concrete, Some(&user.token), Some(json!({})))
            .await;
        assert_ne!(
            reply.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path} is not routed"
        );
        if reply.status == StatusCode::NOT_FOUND {
            assert_eq!(reply.code(), "not_found", "{method} {path} is not routed");
        }
    }
    let page = app.client.get("/api/v1/docs", &user.token).await;
    assert_eq!(page.status, StatusCode::OK);
}
