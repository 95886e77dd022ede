//! The malformed-input catalogue: hundreds of bad requests across every route — NUL characters,
//! overlong strings, wrong types, deep JSON, huge bodies, bad UUIDs, bad cursors and limits, foreign
//! ids, wrong content types. Each must answer a 4xx with the JSON error shape and a stable code,
//! never a 5xx; and afterwards everything that existed is still there, unchanged.

use nox_tests::TestApp;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

/// One request of the catalogue.
struct Case {
    name: String,
    method: Method,
    path: String,
    token: Option<String>,
    body: Body,
    /// The exact status the case must get, when the catalogue pins it (else any 4xx).
    expect: Option<StatusCode>,
}

enum Body {
    None,
    Json(Value),
    Raw(&'static str, Vec<u8>),
}

/// A route that takes a JSON body, with a body that would be valid.
struct BodyRoute {
    method: Method,
    path: String,
    authenticated: bool,
    valid: Value,
}

fn body_route(method: Method, path: String, authenticated: bool, valid: Value) -> BodyRoute {
    BodyRoute {
        method,
        path,
        authenticated,
        valid,
    }
}

/// The ids the routes of the fixture name.
struct Fixture {
    org: Uuid,
    project: Uuid,
    workspace: Uuid,
    role: Uuid,
    block: Uuid,
}

fn body_routes(f: &Fixture) -> Vec<BodyRoute> {
    let (org, project, ws, role, block) = (f.org, f.project, f.workspace, f.role, f.block);
    vec![
        body_route(
            Method::POST,
            "/api/v1/auth/register".into(),
            false,
            json!({"email": "new@example.com", "password": "long enough password", "full_name": "N"}),
        ),
        body_route(
            Method::POST,
            "/api/v1/auth/login".into(),
            false,
            json!({"email": "someone@example.com", "password": "long enough password"}),
        ),
        body_route(
            Method::POST,
            "/api/v1/auth/mfa".into(),
            false,
            json!({"mfa_token": "t", "code": "123456"}),
        ),
        body_route(
            Method::POST,
            "/api/v1/auth/refresh".into(),
            false,
            json!({"refresh_token": "r"}),
        ),
        body_route(
            Method::POST,
            "/api/v1/auth/verify-email".into(),
            false,
            json!({"token": "t"}),
        ),
        body_route(
            Method::POST,
            "/api/v1/auth/password-reset/request".into(),
            false,
            json!({"email": "someone@example.com"}),
        ),
        body_route(
            Method::POST,
            "/api/v1/auth/password-reset".into(),
            false,
            json!({"token": "t", "new_password": "long enough password"}),
        ),
        body_route(
            Method::POST,
            "/api/v1/invitations/accept".into(),
            true,
            json!({"token": "t"}),
        ),
        body_route(
            Method::POST,
            "/api/v1/me/password".into(),
            true,
            json!({"current_password": "wrong password!", "new_password": "another long one"}),
        ),
        body_route(
            Method::POST,
            "/api/v1/me/mfa/confirm".into(),
            true,
            json!({"code": "123456"}),
        ),
        body_route(
            Method::POST,
            "/api/v1/orgs".into(),
            true,
            json!({"name": "Other", "slug": "other-org"}),
        ),
        body_route(
            Method::PATCH,
            format!("/api/v1/orgs/{org}"),
            true,
            json!({"name": "Renamed", "slug": "renamed-org"}),
        ),
        body_route(
            Method::POST,
            format!("/api/v1/orgs/{org}/roles"),
            true,
            json!({"name": "Auditor", "permissions": ["audit:read"]}),
        ),
        body_route(
            Method::PATCH,
            format!("/api/v1/orgs/{org}/roles/{role}"),
            true,
            json!({"name": "Renamed role", "permissions": ["workspace:read"]}),
        ),
        body_route(
            Method::POST,
            format!("/api/v1/orgs/{org}/invitations"),
            true,
            json!({"email": "guest@example.com", "role_id": role}),
        ),
        body_route(
            Method::PUT,
            format!("/api/v1/orgs/{org}/subscription"),
            true,
            json!({"plan_id": "team"}),
        ),
        body_route(
            Method::PUT,
            format!("/api/v1/orgs/{org}/features/hocuspocus"),
            true,
            json!({"value": false}),
        ),
        body_route(
            Method::POST,
            format!("/api/v1/orgs/{org}/api-keys"),
            true,
            json!({"name": "ci", "scopes": ["workspace:read"]}),
        ),
        body_route(
            Method::POST,
            format!("/api/v1/orgs/{org}/projects"),
            true,
            json!({"name": "Second", "slug": "second", "description": "d"}),
        ),
        body_route(
            Method::PATCH,
            format!("/api/v1/projects/{project}"),
            true,
            json!({"name": "Renamed project", "description": "d"}),
        ),
        body_route(
            Method::POST,
            format!("/api/v1/projects/{project}/workspaces"),
            true,
            json!({"name": "Second canvas", "type": "CANVAS"}),
        ),
        body_route(
            Method::PATCH,
            format!("/api/v1/workspaces/{ws}"),
            true,
            json!({"name": "Renamed canvas"}),
        ),
        body_route(
            Method::POST,
            format!("/api/v1/workspaces/{ws}/blocks"),
            true,
            json!({"type": "NODE", "name": "Hello"}),
        ),
        body_route(
            Method::PATCH,
            format!("/api/v1/workspaces/{ws}/blocks/{block}"),
            true,
            json!({"name": "Renamed block", "type": "NODE"}),
        ),
        body_route(
            Method::POST,
            format!("/api/v1/workspaces/{ws}/relations"),
            true,
            json!({"type": "LINK", "source_block_id": block, "target_block_id": block}),
        ),
    ]
}

/// Every string of `valid` (top-level fields and string array items), each replaced by `bad`.
fn with_each_string(valid: &Value, bad: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let Some(fields) = valid.as_object() else {
        return out;
    };
    for (key, value) in fields {
        match value {
            Value::String(_) => {
                let mut body = valid.clone();
                body[key] = bad.clone();
                out.push((key.clone(), body));
            }
            Value::Array(items) if items.iter().all(Value::is_string) && !items.is_empty() => {
                let mut body = valid.clone();
                body[key] = json!([bad.clone()]);
                out.push((format!("{key}[0]"), body));
            }
            _ => {}
        }
    }
    out
}

/// Every top-level field of `valid` replaced by a value of each wrong type.
fn with_wrong_types(valid: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let Some(fields) = valid.as_object() else {
        return out;
    };
    for (key, value) in fields {
        let wrong: Vec<Value> = match value {
            Value::String(_) => vec![json!(12345), json!({"nested": true}), json!(["x"])],
            Value::Array(_) => vec![json!("not a list"), json!(7)],
            Value::Bool(_) => vec![json!("yes"), json!([true])],
            _ => continue,
        };
        for (n, w) in wrong.into_iter().enumerate() {
            let mut body = valid.clone();
            body[key] = w;
            out.push((format!("{key}#{n}"), body));
        }
    }
    out
}

fn catalogue(f: &Fixture, token: &str) -> Vec<Case> {
    let mut cases = Vec::new();
    let nul = json!("evil\u{0000}name");
    let overlong = json!("x".repeat(100_000));
    for route in body_routes(f) {
        let auth = route.authenticated.then(|| token.to_string());
        let mut push = |label: String, body: Body, expect: Option<StatusCode>| {
            cases.push(Case {
                name: format!("{} {} {label}", route.method, route.path),
                method: route.method.clone(),
                path: route.path.clone(),
                token: auth.clone(),
                body,
                expect,
            });
        };
        for (field, body) in with_each_string(&route.valid, &nul) {
            push(format!("NUL in {field}"), Body::Json(body), None);
        }
        for (field, body) in with_each_string(&route.valid, &overlong) {
            push(format!("overlong {field}"), Body::Json(body), None);
        }
        for (field, body) in with_wrong_types(&route.valid) {
            push(format!("wrong type {field}"), Body::Json(body), None);
        }
        push("array body".into(), Body::Json(json!([1, 2, 3])), None);
        push(
            "truncated JSON".into(),
            Body::Raw("application/json", br#"{"name": "#.to_vec()),
            Some(StatusCode::BAD_REQUEST),
        );
    }

    // Whole-body abuse on a few representative routes.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes();
    let huge =
        serde_json::to_vec(&json!({"name": "x".repeat(2 << 20), "slug": "huge"})).expect("json");
    for path in [
        "/api/v1/orgs".to_string(),
        format!("/api/v1/workspaces/{}/blocks", f.workspace),
    ] {
        let mut push = |label: &str, body: Body, expect: Option<StatusCode>| {
            cases.push(Case {
                name: format!("POST {path} {label}"),
                method: Method::POST,
                path: path.clone(),
                token: Some(token.to_string()),
                body,
                expect,
            });
        };
        push(
            "deep JSON",
            Body::Raw("application/json", deep.clone()),
            None,
        );
        push(
            "body over the limit",
            Body::Raw("application/json", huge.clone()),
            Some(StatusCode::PAYLOAD_TOO_LARGE),
        );
        push(
            "wrong content type",
            Body::Raw("text/plain", br#"{"name":"x"}"#.to_vec()),
            Some(StatusCode::UNSUPPORTED_MEDIA_TYPE),
        );
        push("no body", Body::None, None);
        push(
            "invalid UTF-8",
            Body::Raw("application/json", b"{\"name\": \"\xff\xfe\"}".to_vec()),
            None,
        );
    }

    // Path ids that are not UUIDs: 400, whichever id it is.
    let ids = [
        ("org", f.org),
        ("project", f.project),
        ("workspace", f.workspace),
        ("role", f.role),
        ("block", f.block),
    ];
    let templates = [
        (Method::GET, "/api/v1/orgs/{org}"),
        (Method::GET, "/api/v1/orgs/{org}/members"),
        (Method::DELETE, "/api/v1/orgs/{org}/roles/{role}"),
        (Method::GET, "/api/v1/projects/{project}"),
        (Method::GET, "/api/v1/projects/{project}/workspaces"),
        (Method::GET, "/api/v1/workspaces/{workspace}"),
        (Method::GET, "/api/v1/workspaces/{workspace}/blocks"),
        (Method::GET, "/api/v1/workspaces/{workspace}/blocks/{block}"),
        (
            Method::DELETE,
            "/api/v1/workspaces/{workspace}/locks/{block}",
        ),
        (Method::GET, "/api/v1/workspaces/{workspace}/presence"),
    ];
    for (method, template) in templates {
        for (which, _) in ids
            .iter()
            .filter(|(n, _)| template.contains(&format!("{{{n}}}")))
        {
            for bad in ["not-a-uuid", "1234", "%00"] {
                let mut path = template.to_string();
                for (name, id) in &ids {
                    let value = if name == which {
                        bad.to_string()
                    } else {
                        id.to_string()
                    };
                    path = path.replace(&format!("{{{name}}}"), &value);
                }
                cases.push(Case {
                    name: format!("{method} {template} with {which} = {bad}"),
                    method: method.clone(),
                    path,
                    token: Some(token.to_string()),
                    body: Body::None,
                    expect: Some(StatusCode::BAD_REQUEST),
                });
            }
        }
    }

    // Ids that parse but name nothing the caller can see: 404.
    let stranger = Uuid::new_v4();
    for path in [
        format!("/api/v1/orgs/{stranger}"),
        format!("/api/v1/projects/{stranger}"),
        format!("/api/v1/workspaces/{stranger}/blocks"),
        format!("/api/v1/workspaces/{}/blocks/{stranger}", f.workspace),
        format!("/api/v1/orgs/{}/roles/{stranger}", f.org),
    ] {
        cases.push(Case {
            name: format!("GET {path} (unknown id)"),
            method: if path.contains("/roles/") {
                Method::DELETE
            } else {
                Method::GET
            },
            path,
            token: Some(token.to_string()),
            body: Body::None,
            expect: Some(StatusCode::NOT_FOUND),
        });
    }

    // Bad query strings on paginated and filtered lists.
    let lists = [
        format!("/api/v1/orgs/{}/members", f.org),
        format!("/api/v1/orgs/{}/projects", f.org),
        format!("/api/v1/orgs/{}/audit-logs", f.org),
        format!("/api/v1/orgs/{}/invitations", f.org),
        format!("/api/v1/workspaces/{}/blocks", f.workspace),
        "/api/v1/orgs".to_string(),
    ];
    for list in &lists {
        for query in [
            "limit=abc",
            "limit=-5",
            "limit=99999999999999999999",
            "cursor=%%%",
            "cursor=bm90LWEtY3Vyc29y",
            "cursor=%00",
        ] {
            // A limit that is not a number is a bad query (400); a cursor the server never
            // issued may be refused as a bad query or as an invalid value (400 or 422).
            let expect = query
                .starts_with("limit")
                .then_some(StatusCode::BAD_REQUEST);
            cases.push(Case {
                name: format!("GET {list}?{query}"),
                method: Method::GET,
                path: format!("{list}?{query}"),
                token: Some(token.to_string()),
                body: Body::None,
                expect,
            });
        }
    }
    for query in [
        "action=a%00b",
        "since=yesterday",
        "actor_id=not-a-uuid",
        "target_id=1",
    ] {
        let path = format!("/api/v1/orgs/{}/audit-logs?{query}", f.org);
        cases.push(Case {
            name: format!("GET {path}"),
            method: Method::GET,
            path,
            token: Some(token.to_string()),
            body: Body::None,
            expect: Some(StatusCode::BAD_REQUEST),
        });
    }

    // Credentials that are not credentials.
    for bad in ["", "Bearer", "Bearer    ", "Basic abc", "Bearer nox_short"] {
        cases.push(Case {
            name: format!("GET /api/v1/me with Authorization {bad:?}"),
            method: Method::GET,
            path: "/api/v1/me".into(),
            token: None,
            body: Body::Raw("authorization", bad.as_bytes().to_vec()),
            expect: Some(StatusCode::UNAUTHORIZED),
        });
    }
    cases
}

/// Cases for every route the OpenAPI document lists (the matrix test keeps it equal to the
/// router): every path parameter malformed, no credential at all, and a body with a NUL character
/// sent to ids that name nothing. None of these may touch data, so valid fixture ids are never used
/// here.
fn every_route(openapi: &Value) -> Vec<Case> {
    let mut cases = Vec::new();
    let Some(paths) = openapi["paths"].as_object() else {
        return cases;
    };
    for (template, item) in paths {
        let Some(operations) = item.as_object() else {
            continue;
        };
        for (method, operation) in operations {
            let Ok(method) = method.to_uppercase().parse::<Method>() else {
                continue;
            };
            let params: Vec<String> = template
                .split('/')
                .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
                .map(str::to_string)
                .collect();
            let fill = |value: &dyn Fn(&str) -> String| {
                params.iter().fold(template.clone(), |path, p| {
                    path.replace(&format!("{{{p}}}"), &value(p))
                })
            };
            let public = operation["security"].as_array().is_none_or(Vec::is_empty);
            let with_body = matches!(method, Method::POST | Method::PUT | Method::PATCH);
            // Only operations that read a JSON body can be judged on one (`POST /auth/logout`
            // reads none, and answering it would end the fixture's session).
            let reads_body = operation["requestBody"]["content"]["application/json"].is_object();
            if !params.is_empty() {
                // An id parameter that is not a UUID is 400; a key parameter (a flag's name) that
                // names nothing is 404. Either way a JSON 4xx.
                let all_ids = params.iter().all(|p| p.ends_with("_id"));
                cases.push(Case {
                    name: format!("{method} {template} with malformed parameters"),
                    method: method.clone(),
                    path: fill(&|_| "not-a-uuid".to_string()),
                    token: Some(String::new()),
                    body: if with_body {
                        Body::Json(json!({}))
                    } else {
                        Body::None
                    },
                    expect: all_ids.then_some(StatusCode::BAD_REQUEST),
                });
            }
            let unknown = fill(&|p| {
                if p.ends_with("_id") {
                    Uuid::new_v4().to_string()
                } else {
                    "no-such-key".to_string()
                }
            });
            if !public {
                cases.push(Case {
                    name: format!("{method} {template} without a credential"),
                    method: method.clone(),
                    path: unknown.clone(),
                    token: None,
                    body: Body::None,
                    expect: Some(StatusCode::UNAUTHORIZED),
                });
            }
            if with_body && reads_body {
                cases.push(Case {
                    name: format!("{method} {template} with a NUL in the body"),
                    method: method.clone(),
                    path: unknown,
                    token: Some(String::new()),
                    body: Body::Json(json!({"name": "a\u{0000}b", "value": "\u{0000}"})),
                    expect: None,
                });
            }
        }
    }
    cases
}

/// Sends one case; returns what was wrong with the answer, if anything.
async fn check(http: &reqwest::Client, base: &str, case: &Case) -> Option<String> {
    let mut request = http.request(case.method.clone(), format!("{base}{}", case.path));
    if let Some(token) = &case.token {
        request = request.bearer_auth(token);
    }
    request = match &case.body {
        Body::None => request,
        Body::Json(value) => request.json(value),
        // An "authorization" pseudo content type carries a raw Authorization header instead.
        Body::Raw("authorization", header) => request.header("authorization", header.as_slice()),
        Body::Raw(content_type, bytes) => request
            .header("content-type", *content_type)
            .body(bytes.clone()),
    };
    let response = match request.send().await {
        Ok(response) => response,
        Err(err) => return Some(format!("no answer: {err}")),
    };
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let text = response.text().await.unwrap_or_default();
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let code = body["error"]["code"].as_str().unwrap_or_default();
    let stable = !code.is_empty() && code.chars().all(|c| c.is_ascii_lowercase() || c == '_');
    let mut problems = Vec::new();
    match case.expect {
        Some(expected) if status != expected => {
            problems.push(format!("status {status}, want {expected}"))
        }
        None if !status.is_client_error() => problems.push(format!("status {status}, want 4xx")),
        _ => {}
    }
    if !content_type.starts_with("application/json") {
        problems.push(format!("content-type {content_type:?}"));
    }
    if !stable {
        problems.push(format!(
            "no stable error code in {}",
            text.chars().take(200).collect::<String>()
        ));
    }
    (!problems.is_empty()).then(|| problems.join("; "))
}

#[tokio::test]
async fn every_malformed_request_gets_a_json_4xx_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let c = &app.client;
    let (owner, org, project, workspace) = c.owner_with_workspace("catalogue").await;
    let role = c.role_id(&owner, org, "Viewer").await;
    let created = c
        .post(
            &format!("/api/v1/workspaces/{workspace}/blocks"),
            &owner.token,
            json!({"type": "NODE", "name": "Keep me"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let block = created.id();
    let fixture = Fixture {
        org,
        project,
        workspace,
        role,
        block,
    };
    let before_org = c
        .get(&format!("/api/v1/orgs/{org}"), &owner.token)
        .await
        .body;
    let before_project = c
        .get(&format!("/api/v1/projects/{project}"), &owner.token)
        .await
        .body;

    let mut cases = catalogue(&fixture, &owner.token);
    let openapi = c
        .send(Method::GET, "/api/v1/openapi.json", None, None)
        .await
        .body;
    let mut swept = every_route(&openapi);
    for case in &mut swept {
        if case.token.as_deref() == Some("") {
            case.token = Some(owner.token.clone());
        }
    }
    assert!(swept.len() >= 100, "only {} route cases", swept.len());
    cases.extend(swept);
    assert!(cases.len() >= 100, "only {} cases", cases.len());
    let http = reqwest::Client::new();
    let mut failures = Vec::new();
    for case in &cases {
        if let Some(problem) = check(&http, &c.base, case).await {
            failures.push(format!("{}: {problem}", case.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} malformed requests were mishandled:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );

    // Nothing the catalogue sent changed anything.
    let org_now = c
        .get(&format!("/api/v1/orgs/{org}"), &owner.token)
        .await
        .body;
    assert_eq!(org_now["name"], before_org["name"]);
    assert_eq!(org_now["slug"], before_org["slug"]);
    let project_now = c
        .get(&format!("/api/v1/projects/{project}"), &owner.token)
        .await
        .body;
    assert_eq!(project_now["name"], before_project["name"]);
    let kept = c
        .get(
            &format!("/api/v1/workspaces/{workspace}/blocks/{block}"),
            &owner.token,
        )
        .await;
    assert_eq!(kept.status, StatusCode::OK);
    assert_eq!(kept.body["name"], "Keep me");
    let roles = c
        .get(&format!("/api/v1/orgs/{org}/roles"), &owner.token)
        .await;
    let names: Vec<&str> = roles.body["items"]
        .as_array()
        .map(|items| items.iter().filter_map(|r| r["name"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        names.contains(&"Viewer") && !names.contains(&"Auditor"),
        "{names:?}"
    );
    app.stop().await;
}
