//! Black-box tests of the live sync core: real server, real PostgreSQL, protocol clients over real
//! WebSockets.

mod access;
mod chat;
mod cluster;
mod comments;
mod convergence;
mod durability;
mod gates;
mod hocuspocus;
mod limits;
mod locks;
mod missing_dependencies;
mod projection;
mod rest;
mod revocation;
mod versions;
mod warehouse;

use nox_tests::{Session, TestApp, WsClient};
use serde_json::{json, Value};
use uuid::Uuid;

/// A server with fast compaction, an owner and one workspace.
pub async fn setup() -> (TestApp, Session, Uuid) {
    setup_with(|_| {}).await
}

pub async fn setup_with(
    adjust: impl FnOnce(&mut nox_server::config::Config),
) -> (TestApp, Session, Uuid) {
    let app = TestApp::spawn_with(|c| {
        c.compact_interval_ms = 200;
        adjust(c);
    })
    .await;
    let (owner, _, _, workspace_id) = app.client.owner_with_workspace("owner").await;
    (app, owner, workspace_id)
}

/// A connected, synced client that asked for durable acks (so tests can `settle()` it).
pub async fn client(app: &TestApp, session: &Session, workspace_id: Uuid) -> WsClient {
    let mut c = WsClient::new(app.addr, workspace_id, &session.token);
    c.connect_with("&acks=1").await;
    c.sync().await;
    c
}

pub fn block(name: &str) -> Value {
    json!({ "type": "NODE", "name": name, "config": { "x": 1 }, "visual": { "x": 10, "y": 20 } })
}

pub fn id() -> String {
    Uuid::new_v4().to_string()
}

/// Polls `check` (an SQL count or similar) until it returns true, for up to 10 s.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// Registers a user and makes it a member of the workspace's organization with `role`.
pub async fn member_with_role(app: &TestApp, workspace_id: Uuid, role: &str) -> Session {
    let user = app
        .client
        .register(&format!("{}-{}", role.to_lowercase(), &id()[..8]))
        .await;
    sqlx::query(
        "INSERT INTO org_members (org_id, user_id, role_id)
         SELECT p.org_id, $2, r.id FROM workspaces w
         JOIN projects p ON p.id = w.project_id
         JOIN roles r ON r.org_id = p.org_id AND r.name = $3
         WHERE w.id = $1",
    )
    .bind(workspace_id)
    .bind(user.user_id)
    .bind(role)
    .execute(app.pool())
    .await
    .expect("add member");
    user
}
