//! API keys: shown once, stored hashed, limited to their organization and scopes.

use nox_tests::{Session, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

fn keys_path(org: Uuid) -> String {
    format!("/api/v1/orgs/{org}/api-keys")
}

async fn owner_org(app: &TestApp, name: &str) -> (Session, Uuid) {
    let user = app.client.register(name).await;
    let slug = format!("{name}-{}", &Uuid::new_v4().simple().to_string()[..8]);
    let org = app.client.create_org(&user, &slug).await;
    (user, org)
}

async fn create_key(app: &TestApp, owner: &Session, org: Uuid, body: Value) -> (String, Value) {
    let reply = app.client.post(&keys_path(org), &owner.token, body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    (reply.body["key"].as_str().unwrap().to_string(), reply.body)
}

/// A request authenticated by `X-Api-Key`.
async fn with_key(
    app: &TestApp,
    method: Method,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> StatusCode {
    app.client
        .send_with_headers(method, path, &[("x-api-key", key)], body)
        .await
        .status
}

#[tokio::test]
async fn keys_are_shown_once_listed_without_secrets_and_revocable() {
    let app = TestApp::spawn().await;
    let (owner, org) = owner_org(&app, "keys").await;
    let (key, created) = create_key(&app, &owner, org, json!({"name": "ci"})).await;
    assert!(key.starts_with("nox_"), "{key}");
    let prefix = created["key_prefix"].as_str().unwrap();
    assert!(key.starts_with(&format!("{prefix}_")));
    assert_eq!(created["name"], "ci");
    // Default scopes: everything the creator holds (an owner holds all ten).
    assert_eq!(created["scopes"].as_array().unwrap().len(), 10);
    let key_id = created["id"].as_str().unwrap().to_string();

    let list = app.client.get(&keys_path(org), &owner.token).await;
    assert_eq!(list.status, StatusCode::OK);
    let items = list.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert!(items[0].get("key").is_none() && items[0].get("key_hash").is_none());
    assert!(!list.body.to_string().contains(&key));
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM api_keys WHERE key_hash = $1")
        .bind(&key)
        .fetch_one(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(stored, 0, "the key is stored hashed");

    // The key authenticates, by either header, and its use is recorded.
    let projects = format!("/api/v1/orgs/{org}/projects");
    assert_eq!(
        with_key(&app, Method::GET, &projects, &key, None).await,
        StatusCode::OK
    );
    assert_eq!(app.client.get(&projects, &key).await.status, StatusCode::OK);
    let used: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM api_keys WHERE id = $1::text::uuid AND last_used_at IS NOT NULL",
    )
    .bind(&key_id)
    .fetch_one(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(used, 1);

    let revoke = app
        .client
        .delete(&format!("{}/{key_id}", keys_path(org)), &owner.token)
        .await;
    assert_eq!(revoke.status, StatusCode::NO_CONTENT);
    assert_eq!(
        with_key(&app, Method::GET, &projects, &key, None).await,
        StatusCode::UNAUTHORIZED
    );
    let again = app
        .client
        .delete(&format!("{}/{key_id}", keys_path(org)), &owner.token)
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);

    let audited: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM audit_logs WHERE org_id = $1 AND target_type = 'api_key' ORDER BY created_at",
    )
    .bind(org)
    .fetch_all(&app.db.pool)
    .await
    .unwrap();
    assert_eq!(audited, ["api_key.created", "api_key.revoked"]);
}

#[tokio::test]
async fn a_key_works_only_in_its_org_and_within_its_scopes() {
    let app = TestApp::spawn().await;
    let (owner, org) = owner_org(&app, "scoped").await;
    let slug = format!("other-{}", &Uuid::new_v4().simple().to_string()[..8]);
    let other_org = app.client.create_org(&owner, &slug).await;

    let (read_only, _) = create_key(
        &app,
        &owner,
        org,
        json!({"name": "reader", "scopes": ["workspace:read"]}),
    )
    .await;
    let (manager, _) = create_key(
        &app,
        &owner,
        org,
        json!({"name": "builder", "scopes": ["project:manage"]}),
    )
    .await;

    let projects = format!("/api/v1/orgs/{org}/projects");
    let new_project = || {
        Some(
            json!({"name": "From key", "slug": format!("p-{}", &Uuid::new_v4().simple().to_string()[..8])}),
        )
    };
    assert_eq!(
        with_key(&app, Method::POST, &projects, &read_only, new_project()).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        with_key(&app, Method::POST, &projects, &manager, new_project()).await,
        StatusCode::CREATED
    );
    // The creator is a member of the other org too, but the key is not: 404 there.
    let elsewhere = format!("/api/v1/orgs/{other_org}/projects");
    assert_eq!(
        with_key(&app, Method::GET, &elsewhere, &read_only, None).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        with_key(&app, Method::POST, &elsewhere, &manager, new_project()).await,
        StatusCode::NOT_FOUND
    );
    // Account management needs a person, not a key.
    assert_eq!(
        with_key(&app, Method::GET, "/api/v1/me/sessions", &manager, None).await,
        StatusCode::FORBIDDEN
    );
    // A key cannot mint keys.
    assert_eq!(
        with_key(
            &app,
            Method::POST,
            &keys_path(org),
            &manager,
            Some(json!({"name": "x"}))
        )
        .await,
        StatusCode::FORBIDDEN
    );
    // A key cannot found an organization (it would escape its own).
    assert_eq!(
        with_key(
            &app,
            Method::POST,
            "/api/v1/orgs",
            &manager,
            Some(json!({"name": "Escape", "slug": "escape-hatch"}))
        )
        .await,
        StatusCode::FORBIDDEN
    );
    // Garbage keys are refused.
    assert_eq!(
        with_key(&app, Method::GET, &projects, "nox_deadbeef_nope", None).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        with_key(&app, Method::GET, &projects, "not-a-key", None).await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn expired_keys_are_refused() {
    let app = TestApp::spawn().await;
    let (owner, org) = owner_org(&app, "expiry").await;
    let past = create_past(&app, &owner, org).await;
    assert_eq!(past.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(past.body["error"]["fields"][0]["field"], "expires_at");

    let (key, created) = create_key(
        &app,
        &owner,
        org,
        json!({"name": "short", "expires_at": "2999-01-01T00:00:00Z"}),
    )
    .await;
    assert!(created["expires_at"]
        .as_str()
        .unwrap()
        .starts_with("2999-01-01"));
    let projects = format!("/api/v1/orgs/{org}/projects");
    assert_eq!(
        with_key(&app, Method::GET, &projects, &key, None).await,
        StatusCode::OK
    );
    sqlx::query("UPDATE api_keys SET expires_at = NOW() - INTERVAL '1 second' WHERE org_id = $1")
        .bind(org)
        .execute(&app.db.pool)
        .await
        .unwrap();
    assert_eq!(
        with_key(&app, Method::GET, &projects, &key, None).await,
        StatusCode::UNAUTHORIZED
    );
}

async fn create_past(app: &TestApp, owner: &Session, org: Uuid) -> nox_tests::http::Reply {
    app.client
        .post(
            &keys_path(org),
            &owner.token,
            json!({"name": "old", "expires_at": "2001-01-01T00:00:00Z"}),
        )
        .await
}

#[tokio::test]
async fn creating_keys_is_validated_and_needs_the_permission() {
    let app = TestApp::spawn().await;
    let (owner, org) = owner_org(&app, "rules").await;

    let invalid = app
        .client
        .post(
            &keys_path(org),
            &owner.token,
            json!({"name": " ", "scopes": ["workspace:read", "bogus"]}),
        )
        .await;
    assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(invalid.body["error"]["fields"][0]["field"], "name");
    let unknown = app
        .client
        .post(
            &keys_path(org),
            &owner.token,
            json!({"name": "k", "scopes": ["workspace:read", "bogus"]}),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(unknown.body["error"]["fields"][0]["field"], "scopes[1]");
    let missing = app
        .client
        .post(&keys_path(org), &owner.token, json!({}))
        .await;
    assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);

    // Scopes must be a subset of what the creator holds: narrow the owner's role to check.
    sqlx::query(
        "UPDATE roles SET permissions = ARRAY['api_keys:manage', 'workspace:read']
         WHERE id = (SELECT role_id FROM org_members WHERE org_id = $1 AND user_id = $2)",
    )
    .bind(org)
    .bind(owner.user_id)
    .execute(&app.db.pool)
    .await
    .unwrap();
    let too_much = app
        .client
        .post(
            &keys_path(org),
            &owner.token,
            json!({"name": "k", "scopes": ["org:admin"]}),
        )
        .await;
    assert_eq!(too_much.status, StatusCode::FORBIDDEN);
    assert_eq!(too_much.code(), "scope_not_held");
    let (_, default) = create_key(&app, &owner, org, json!({"name": "default"})).await;
    assert_eq!(
        default["scopes"],
        json!(["workspace:read", "api_keys:manage"])
    );

    // Without api_keys:manage: 403; not a member: 404; anonymous: 401.
    sqlx::query(
        "UPDATE roles SET permissions = ARRAY['workspace:read']
         WHERE id = (SELECT role_id FROM org_members WHERE org_id = $1 AND user_id = $2)",
    )
    .bind(org)
    .bind(owner.user_id)
    .execute(&app.db.pool)
    .await
    .unwrap();
    let denied = app
        .client
        .post(&keys_path(org), &owner.token, json!({"name": "k"}))
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.client.get(&keys_path(org), &owner.token).await.status,
        StatusCode::FORBIDDEN
    );

    let stranger = app.client.register("stranger").await;
    let hidden = app
        .client
        .post(&keys_path(org), &stranger.token, json!({"name": "k"}))
        .await;
    assert_eq!(hidden.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.client
            .get(&keys_path(org), &stranger.token)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let key_id = default["id"].as_str().unwrap();
    let steal = app
        .client
        .delete(&format!("{}/{key_id}", keys_path(org)), &stranger.token)
        .await;
    assert_eq!(steal.status, StatusCode::NOT_FOUND);
    let anon = app
        .client
        .post_anon(&keys_path(org), json!({"name": "k"}))
        .await;
    assert_eq!(anon.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_key_of_another_org_cannot_be_revoked_through_this_one() {
    let app = TestApp::spawn().await;
    let (owner, org) = owner_org(&app, "mine").await;
    let (other, other_org) = owner_org(&app, "theirs").await;
    let (_, theirs) = create_key(&app, &other, other_org, json!({"name": "theirs"})).await;
    let id = theirs["id"].as_str().unwrap();
    let reply = app
        .client
        .delete(&format!("{}/{id}", keys_path(org)), &owner.token)
        .await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.client
            .get(&keys_path(other_org), &other.token)
            .await
            .body["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}
