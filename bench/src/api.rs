//! Signing up the bench's own tenant through the HTTP API: one user, one organization on the
//! unlimited plan, one project, and as many canvas workspaces as a scenario needs.

use anyhow::{bail, Context, Result};
use futures_util::{stream, StreamExt, TryStreamExt};
use serde_json::{json, Value};
use uuid::Uuid;

/// An authenticated API client owning one organization and project.
#[derive(Clone)]
pub struct Tenant {
    http: reqwest::Client,
    base_url: String,
    pub token: String,
    pub project_id: String,
}

impl Tenant {
    pub async fn sign_up(base_url: &str) -> Result<Self> {
        let http = reqwest::Client::new();
        let tag = Uuid::new_v4().simple().to_string()[..10].to_string();
        let reply = post(
            &http,
            &format!("{base_url}/api/v1/auth/register"),
            None,
            json!({
                "email": format!("bench-{tag}@example.com"),
                "password": "bench password 123",
                "full_name": "Nox Bench",
            }),
        )
        .await?;
        let token = reply["access_token"]
            .as_str()
            .context("register: no access_token")?
            .to_string();
        let org = post(
            &http,
            &format!("{base_url}/api/v1/orgs"),
            Some(&token),
            json!({"name": format!("bench {tag}"), "slug": format!("bench-{tag}")}),
        )
        .await?;
        let org_id = id_of(&org)?;
        // The free plan caps workspaces (25) and connections; the bench needs neither cap.
        let reply = http
            .put(format!("{base_url}/api/v1/orgs/{org_id}/subscription"))
            .bearer_auth(&token)
            .json(&json!({"plan_id": "enterprise"}))
            .send()
            .await?;
        if !reply.status().is_success() {
            bail!(
                "switching to the enterprise plan: {} {}",
                reply.status(),
                reply.text().await.unwrap_or_default()
            );
        }
        let project = post(
            &http,
            &format!("{base_url}/api/v1/orgs/{org_id}/projects"),
            Some(&token),
            json!({"name": "bench", "slug": "bench"}),
        )
        .await?;
        Ok(Tenant {
            project_id: id_of(&project)?,
            http,
            base_url: base_url.to_string(),
            token,
        })
    }

    /// Creates one canvas workspace and returns its id.
    pub async fn create_workspace(&self) -> Result<String> {
        self.create_workspaces(1)
            .await?
            .pop()
            .context("no workspace")
    }

    /// Creates `count` canvas workspaces (16 requests in flight) and returns their ids.
    pub async fn create_workspaces(&self, count: usize) -> Result<Vec<String>> {
        stream::iter(0..count)
            .map(|i| async move {
                let reply = post(
                    &self.http,
                    &format!(
                        "{}/api/v1/projects/{}/workspaces",
                        self.base_url, self.project_id
                    ),
                    Some(&self.token),
                    json!({"name": format!("bench ws {i}"), "type": "CANVAS"}),
                )
                .await?;
                id_of(&reply)
            })
            .buffered(16)
            .try_collect()
            .await
    }
}

impl Tenant {
    /// `POST /api/v1{path}` with the tenant's token; the JSON answer (an error status fails).
    pub async fn post_api(&self, path: &str, body: Value) -> Result<Value> {
        let url = format!("{}/api/v1{path}", self.base_url);
        post(&self.http, &url, Some(&self.token), body).await
    }

    /// `GET /api/v1{path}` with the tenant's token; the JSON answer (an error status fails).
    pub async fn get_api(&self, path: &str) -> Result<Value> {
        let url = format!("{}/api/v1{path}", self.base_url);
        let reply = self
            .http
            .get(&url)
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        let status = reply.status();
        let text = reply.text().await.unwrap_or_default();
        if !status.is_success() {
            bail!("GET {url}: {status} {text}");
        }
        serde_json::from_str(&text).with_context(|| format!("GET {url}: not JSON: {text}"))
    }
}

async fn post(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    body: Value,
) -> Result<Value> {
    let mut request = http.post(url).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let reply = request
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = reply.status();
    let text = reply.text().await.unwrap_or_default();
    if !status.is_success() {
        bail!("POST {url}: {status} {text}");
    }
    serde_json::from_str(&text).with_context(|| format!("POST {url}: not JSON: {text}"))
}

fn id_of(value: &Value) -> Result<String> {
    Ok(value["id"]
        .as_str()
        .with_context(|| format!("no id in {value}"))?
        .to_string())
}
