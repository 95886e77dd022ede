//! A small HTTP client for the API with helpers for the common setup steps.

use std::net::SocketAddr;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

#[derive(Clone)]
pub struct TestClient {
    pub base: String,
    http: reqwest::Client,
}

/// A registered user and its access token.
#[derive(Debug, Clone)]
pub struct Session {
    pub user_id: Uuid,
    pub email: String,
    pub token: String,
    pub refresh_token: String,
}

/// The status and parsed JSON body of a response (`Value::Null` when empty or not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Reply {
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
    /// A response header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    pub fn id(&self) -> Uuid {
        self.body["id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no id in {}", self.body))
    }
}

impl TestClient {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
        }
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        Self::reply(req).await
    }

    async fn reply(req: reqwest::RequestBuilder) -> Reply {
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.expect("body");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            body,
            headers,
        }
    }

    /// A request with extra headers (e.g. `X-Api-Key`) and no bearer token.
    pub async fn send_with_headers(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Reply {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        Self::reply(req).await
    }

    /// An unauthenticated POST.
    pub async fn post_anon(&self, path: &str, body: Value) -> Reply {
        self.send(Method::POST, path, None, Some(body)).await
    }

    /// A DELETE with a JSON body (e.g. `DELETE /me {password}`).
    pub async fn delete_with(&self, path: &str, token: &str, body: Value) -> Reply {
        self.send(Method::DELETE, path, Some(token), Some(body))
            .await
    }

    /// `POST /auth/login`.
    pub async fn login(&self, email: &str, password: &str) -> Reply {
        self.post_anon(
            "/api/v1/auth/login",
            json!({"email": email, "password": password}),
        )
        .await
    }

    /// A raw body with a content type, for malformed-input tests.
    pub async fn send_raw(&self, path: &str, content_type: &str, body: &'static str) -> Reply {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request");
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.json().await.unwrap_or(Value::Null);
        Reply {
            status,
            body,
            headers,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.send(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.send(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Reply {
        self.send(Method::PATCH, path, Some(token), Some(body))
            .await
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> Reply {
        self.send(Method::PUT, path, Some(token), Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Reply {
        self.send(Method::DELETE, path, Some(token), None).await
    }

    /// The id of the role called `name` in `org`, read through the API by a member.
    pub async fn role_id(&self, member: &Session, org: Uuid, name: &str) -> Uuid {
        let reply = self
            .get(&format!("/api/v1/orgs/{org}/roles"), &member.token)
            .await;
        assert_eq!(reply.status, StatusCode::OK, "roles: {}", reply.body);
        reply.body["items"]
            .as_array()
            .and_then(|roles| roles.iter().find(|r| r["name"] == name))
            .and_then(|r| r["id"].as_str())
            .and_then(|id| id.parse().ok())
            .unwrap_or_else(|| panic!("no role {name} in {}", reply.body))
    }

    /// Invites `email` into `org` with the role `role`; returns the invitation id.
    pub async fn invite(&self, admin: &Session, org: Uuid, email: &str, role: &str) -> Uuid {
        let role_id = self.role_id(admin, org, role).await;
        let reply = self
            .post(
                &format!("/api/v1/orgs/{org}/invitations"),
                &admin.token,
                json!({"email": email, "role_id": role_id}),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "invite: {}", reply.body);
        reply.id()
    }

    /// A new user who joined `org` with the role `role` through a real invitation.
    pub async fn add_member(
        &self,
        pool: &PgPool,
        admin: &Session,
        org: Uuid,
        name: &str,
        role: &str,
    ) -> Session {
        let user = self.register(name).await;
        self.invite(admin, org, &user.email, role).await;
        let token = invitation_token(pool, &user.email).await;
        let reply = self
            .post(
                "/api/v1/invitations/accept",
                &user.token,
                json!({ "token": token }),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "accept: {}", reply.body);
        user
    }

    /// Registers a new user with a unique email and returns its session.
    pub async fn register(&self, name: &str) -> Session {
        let email = format!("{name}-{}@example.com", Uuid::new_v4().simple());
        let reply = self
            .send(
                Method::POST,
                "/api/v1/auth/register",
                None,
                Some(
                    json!({"email": email, "password": "correct horse battery", "full_name": name}),
                ),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "register: {}",
            reply.body
        );
        Session {
            user_id: reply.body["user"]["id"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .expect("user id"),
            email,
            token: reply.body["access_token"].as_str().expect("token").into(),
            refresh_token: reply.body["refresh_token"]
                .as_str()
                .expect("refresh")
                .into(),
        }
    }

    /// Creates an organization owned by `owner` and returns its id.
    pub async fn create_org(&self, owner: &Session, slug: &str) -> Uuid {
        let reply = self
            .post(
                "/api/v1/orgs",
                &owner.token,
                json!({"name": slug, "slug": slug}),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "create org: {}",
            reply.body
        );
        reply.id()
    }

    pub async fn create_project(&self, owner: &Session, org_id: Uuid, slug: &str) -> Uuid {
        let reply = self
            .post(
                &format!("/api/v1/orgs/{org_id}/projects"),
                &owner.token,
                json!({"name": slug, "slug": slug}),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "create project: {}",
            reply.body
        );
        reply.id()
    }

    pub async fn create_workspace(&self, owner: &Session, project_id: Uuid, name: &str) -> Uuid {
        let reply = self
            .post(
                &format!("/api/v1/projects/{project_id}/workspaces"),
                &owner.token,
                json!({"name": name, "type": "CANVAS"}),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "create workspace: {}",
            reply.body
        );
        reply.id()
    }

    /// A user with an org, a project and a workspace: the usual starting point.
    pub async fn owner_with_workspace(&self, name: &str) -> (Session, Uuid, Uuid, Uuid) {
        let owner = self.register(name).await;
        let slug = format!("{name}-{}", &Uuid::new_v4().simple().to_string()[..8]);
        let org = self.create_org(&owner, &slug).await;
        let project = self.create_project(&owner, org, "main").await;
        let workspace = self.create_workspace(&owner, project, "canvas").await;
        (owner, org, project, workspace)
    }
}

/// The token in the newest mail of `kind` to `to` (the `Token: …` line the server writes), waiting
/// a little because some mails are sent in the background.
pub async fn mail_token(pool: &sqlx::PgPool, to: &str, kind: &str) -> Option<String> {
    for _ in 0..50 {
        let body: Option<String> = sqlx::query_scalar(
            "SELECT body FROM mail_outbox WHERE LOWER(to_email) = LOWER($1) AND kind = $2
             ORDER BY created_at DESC, id LIMIT 1",
        )
        .bind(to)
        .bind(kind)
        .fetch_optional(pool)
        .await
        .expect("read mail_outbox");
        if let Some(token) = body.as_deref().and_then(|b| {
            b.lines()
                .find_map(|l| l.strip_prefix("Token: ").map(str::to_string))
        }) {
            return Some(token);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    None
}

/// How many mails of `kind` went to `to`.
pub async fn mail_count(pool: &sqlx::PgPool, to: &str, kind: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM mail_outbox WHERE LOWER(to_email) = LOWER($1) AND kind = $2",
    )
    .bind(to)
    .bind(kind)
    .fetch_one(pool)
    .await
    .expect("count mail_outbox")
}

/// The accept token of the latest invitation mailed to `email`, read from `mail_outbox`.
pub async fn invitation_token(pool: &PgPool, email: &str) -> String {
    let (body,): (String,) = sqlx::query_as(
        "SELECT body FROM mail_outbox WHERE to_email = $1 AND kind = 'invitation'
         ORDER BY created_at DESC LIMIT 1",
    )
    .bind(email)
    .fetch_one(pool)
    .await
    .expect("invitation mail");
    body.lines()
        .find_map(|l| l.strip_prefix("Invitation token: "))
        .map(|t| t.trim().to_string())
        .unwrap_or_else(|| panic!("no token in mail: {body}"))
}
