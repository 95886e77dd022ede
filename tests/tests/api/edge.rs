//! The edge of the API (hardening issue items 1 and 2): text PostgreSQL cannot hold is refused
//! before any handler runs, and every error, also those the framework answers itself, has the JSON
//! shape `{"error":{"code","message"}}` with a stable code.

use nox_tests::TestApp;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

/// A body whose `name` holds a U+0000 (serde_json writes it as `\u0000`).
fn nul(text: &str) -> String {
    format!("{text}\u{0}x")
}

fn assert_invalid_text(reply: &nox_tests::http::Reply, field: &str, what: &str) {
    assert_eq!(
        reply.status,
        StatusCode::BAD_REQUEST,
        "{what}: {}",
        reply.body
    );
    assert_eq!(reply.code(), "invalid_text", "{what}: {}", reply.body);
    assert_eq!(
        reply.body["error"]["fields"][0]["field"], field,
        "{what}: {}",
        reply.body
    );
}

#[tokio::test]
async fn a_nul_in_any_text_answers_400_invalid_text() {
    let app = TestApp::spawn().await;
    let c = &app.client;
    let (owner, org, project, workspace) = c.owner_with_workspace("nul").await;
    let o = |p: &str| format!("/api/v1/orgs/{org}{p}");

    // Unauthenticated.
    let register = c
        .post_anon(
            "/api/v1/auth/register",
            json!({"email": "n@example.com", "password": "correct horse battery", "full_name": nul("N")}),
        )
        .await;
    assert_invalid_text(&register, "full_name", "register");
    let login = c.login(&nul("n@example.com"), "whatever it is").await;
    assert_invalid_text(&login, "email", "login");

    let cases: Vec<(Method, String, Value, &str)> = vec![
        (
            Method::POST,
            "/api/v1/orgs".into(),
            json!({"name": nul("o"), "slug": "nul-org"}),
            "name",
        ),
        (Method::PATCH, o(""), json!({"name": nul("o")}), "name"),
        (
            Method::PATCH,
            format!("/api/v1/projects/{project}"),
            json!({"name": nul("p")}),
            "name",
        ),
        (
            Method::POST,
            o("/roles"),
            json!({"name": nul("r"), "permissions": []}),
            "name",
        ),
        (
            Method::POST,
            o("/roles"),
            json!({"name": "r", "permissions": [nul("p")]}),
            "permissions[0]",
        ),
        (
            Method::POST,
            o("/api-keys"),
            json!({"name": nul("k")}),
            "name",
        ),
        (
            Method::POST,
            o("/invitations"),
            json!({"email": nul("i@example.com"), "role_id": Uuid::new_v4()}),
            "email",
        ),
        (
            Method::POST,
            format!("/api/v1/projects/{project}/workspaces"),
            json!({"name": nul("w"), "type": "CANVAS"}),
            "name",
        ),
        (
            Method::PATCH,
            format!("/api/v1/workspaces/{workspace}"),
            json!({"name": nul("w")}),
            "name",
        ),
        (
            Method::PUT,
            o("/features/a%00b"),
            json!({"value": true}),
            "key",
        ),
        (Method::DELETE, o("/features/a%00b"), Value::Null, "key"),
        (
            Method::PUT,
            o("/features/realtime"),
            json!({"value": {"note": nul("v")}}),
            "value.note",
        ),
    ];
    for (method, path, body, field) in cases {
        let body = (!body.is_null()).then_some(body);
        let reply = c
            .send(method.clone(), &path, Some(&owner.token), body)
            .await;
        assert_invalid_text(&reply, field, &format!("{method} {path}"));
    }

    let audit = c.get(&o("/audit-logs?action=a%00b"), &owner.token).await;
    assert_invalid_text(&audit, "action", "audit-logs?action=");

    // Nothing was written: the org kept its name and no second org appeared.
    let orgs = c.get("/api/v1/orgs", &owner.token).await;
    assert_eq!(
        orgs.body["items"].as_array().unwrap().len(),
        1,
        "{}",
        orgs.body
    );
    assert!(!orgs.body.to_string().contains("\\u0000"));
    // An escaped backslash followed by `u0000` is ordinary text.
    let fine = c
        .patch(&o(""), &owner.token, json!({"name": "back\\u0000slash"}))
        .await;
    assert_eq!(fine.status, StatusCode::OK, "{}", fine.body);
}

async fn raw(
    method: Method,
    url: String,
    body: Option<Vec<u8>>,
) -> (StatusCode, Value, reqwest::header::HeaderMap) {
    let mut req = reqwest::Client::new()
        .request(method, url)
        .header("content-type", "application/json");
    if let Some(body) = body {
        req = req.body(body);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        content_type.starts_with("application/json"),
        "{status}: content-type {content_type:?}"
    );
    (status, resp.json().await.unwrap(), headers)
}

#[tokio::test]
async fn framework_errors_have_the_json_shape() {
    let app = TestApp::spawn().await;
    let base = &app.client.base;

    // Over the 1 MiB body limit (announced by Content-Length).
    let big = vec![b' '; 2 * 1024 * 1024];
    let (status, body, _) = raw(Method::POST, format!("{base}/api/v1/auth/login"), Some(big)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["error"]["code"], "body_too_large", "{body}");

    // A method the route does not have: 405 with Allow kept.
    let (status, body, headers) = raw(Method::PUT, format!("{base}/api/v1/auth/login"), None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["error"]["code"], "method_not_allowed", "{body}");
    let allow = headers
        .get("allow")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(allow.contains("POST"), "allow: {allow:?}");

    // An unknown route stays a JSON 404.
    let (status, body, _) = raw(Method::GET, format!("{base}/api/v1/nowhere"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
}

#[tokio::test]
async fn a_malformed_id_in_a_path_answers_400_invalid_id() {
    let app = TestApp::spawn().await;
    let c = &app.client;
    let (owner, org, _project, _workspace) = c.owner_with_workspace("badid").await;
    for path in [
        "/api/v1/workspaces/not-a-uuid".to_string(),
        "/api/v1/projects/12345".to_string(),
        format!("/api/v1/orgs/{org}/members/not-a-uuid"),
        "/api/v1/me/sessions/not-a-uuid".to_string(),
    ] {
        let reply = c.get(&path, &owner.token).await;
        let reply = if reply.status == StatusCode::METHOD_NOT_ALLOWED {
            c.delete(&path, &owner.token).await
        } else {
            reply
        };
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{path}: {}",
            reply.body
        );
        assert_eq!(reply.code(), "invalid_id", "{path}");
    }
    // A well-formed id that names nothing is still a 404.
    let missing = c
        .get(
            &format!("/api/v1/workspaces/{}", Uuid::new_v4()),
            &owner.token,
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}
