//! A small HTTP client for the API with helpers for the common setup steps.

use std::net::SocketAddr;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
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
}

impl Reply {
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
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
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let bytes = resp.bytes().await.expect("body");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply { status, body }
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
        let body = resp.json().await.unwrap_or(Value::Null);
        Reply { status, body }
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.send(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.send(Method::POST, path, Some(token), Some(body)).await
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
