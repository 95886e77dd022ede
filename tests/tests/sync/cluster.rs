//! Several nodes on one PostgreSQL (DESIGN §7): one room per workspace in the whole cluster, on
//! the node holding its lease; sockets and requests reaching another node are relayed there;
//! rights changes and events made on one node reach sockets on the others; a node that lost its
//! lease closes its room and its clients come back through the new owner.

use std::net::SocketAddr;
use std::time::Duration;

use nox_tests::{Session, TestApp, TestNode, WsClient};
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::{block, eventually, id, member_with_role, setup_with};

/// Two nodes on one database, fast heartbeats, an owner and a workspace.
async fn two_nodes() -> (TestApp, TestNode, Session, Uuid) {
    let (app, owner, ws) = setup_with(|c| c.node_ttl_ms = 1000).await;
    let node = app.join_node().await;
    (app, node, owner, ws)
}

async fn client_at(addr: SocketAddr, session: &Session, ws: Uuid, query: &str) -> WsClient {
    let mut c = WsClient::new(addr, ws, &session.token);
    c.connect_with(query).await;
    c.sync().await;
    c
}

/// The node id holding the workspace's lease (None: released or never taken).
async fn lease_holder(app: &TestApp, ws: Uuid) -> Option<Uuid> {
    sqlx::query_scalar("SELECT node_id FROM workspace_leases WHERE workspace_id = $1")
        .bind(ws)
        .fetch_optional(app.pool())
        .await
        .expect("lease row")
        .flatten()
}

async fn org_of(app: &TestApp, ws: Uuid) -> Uuid {
    sqlx::query_scalar(
        "SELECT p.org_id FROM workspaces w JOIN projects p ON p.id = w.project_id WHERE w.id = $1",
    )
    .bind(ws)
    .fetch_one(app.pool())
    .await
    .expect("org")
}

/// The workspace's lease is held by the node listening at `addr`.
async fn assert_owned_by(app: &TestApp, ws: Uuid, addr: SocketAddr) {
    assert_eq!(
        lease_holder(app, ws).await,
        Some(node_id_at(app, addr).await)
    );
}

async fn node_id_at(app: &TestApp, addr: SocketAddr) -> Uuid {
    sqlx::query_scalar("SELECT id FROM nodes WHERE addr = $1")
        .bind(addr.to_string())
        .fetch_one(app.pool())
        .await
        .expect("node row")
}

#[tokio::test]
async fn clients_on_two_nodes_edit_one_room_on_the_owner() {
    let (app, node, owner, ws) = two_nodes().await;
    let mut on_owner = client_at(app.addr, &owner, ws, "&acks=1").await;
    let mut relayed = client_at(node.addr, &owner, ws, "&acks=1").await;
    assert_owned_by(&app, ws, app.addr).await;

    let (a, b) = (id(), id());
    relayed
        .put_block(&a, block("from the relayed client"))
        .await;
    relayed.settle().await; // the owner's durable ack came back through the relay
    on_owner
        .pump_until(|c| c.canvas_json()["blocks"].get(&a).is_some())
        .await;
    on_owner
        .put_block(&b, block("from the owner's client"))
        .await;
    relayed
        .pump_until(|c| c.canvas_json()["blocks"].get(&b).is_some())
        .await;
    assert_eq!(relayed.canvas_json(), on_owner.canvas_json());
    eventually("both blocks projected", || async {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM core_blocks WHERE workspace_id = $1 AND deleted_at IS NULL",
        )
        .bind(ws)
        .fetch_one(app.pool())
        .await
        .unwrap_or(0);
        n == 2
    })
    .await;
    // One room in the cluster: the relaying node never took the lease.
    assert_owned_by(&app, ws, app.addr).await;
    node.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn requests_to_another_node_are_served_by_the_owner() {
    let (app, node, owner, ws) = two_nodes().await;
    let mut on_owner = client_at(app.addr, &owner, ws, "&acks=1&locks=1").await;
    let block_id = id();
    let created = node
        .client
        .post(
            &format!("/api/v1/workspaces/{ws}/blocks"),
            &owner.token,
            json!({ "id": block_id, "type": "NODE", "name": "via node two" }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    on_owner
        .pump_until(|c| c.canvas_json()["blocks"].get(&block_id).is_some())
        .await;

    let listed = node
        .client
        .get(&format!("/api/v1/workspaces/{ws}/blocks"), &owner.token)
        .await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(listed.body["items"][0]["id"], block_id);
    let presence = node
        .client
        .get(&format!("/api/v1/workspaces/{ws}/presence"), &owner.token)
        .await;
    assert_eq!(presence.status, StatusCode::OK, "{}", presence.body);
    assert_eq!(presence.body["items"].as_array().map(Vec::len), Some(1));
    // A bad request stays a clear JSON error through the hop.
    let refused = node
        .client
        .post(
            &format!("/api/v1/workspaces/{ws}/blocks"),
            &owner.token,
            json!({ "id": block_id, "type": "NODE", "name": "again" }),
        )
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert_eq!(refused.code(), "id_in_use");
    node.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn locks_taken_through_one_node_are_seen_on_the_other() {
    let (app, node, owner, ws) = two_nodes().await;
    let bob = member_with_role(&app, ws, "Editor").await;
    let mut alice = client_at(app.addr, &owner, ws, "&acks=1&locks=1").await;
    let mut bobs = client_at(node.addr, &bob, ws, "&acks=1&locks=1").await;
    let block_id = id();
    alice.put_block(&block_id, block("shared")).await;
    bobs.pump_until(|c| c.canvas_json()["blocks"].get(&block_id).is_some())
        .await;

    bobs.send_stateless(json!({ "type": "lock.acquire", "resource_type": "BLOCK",
        "resource_id": block_id, "request_id": "r1" }))
        .await;
    bobs.pump_until(|c| !c.events("lock.granted").is_empty())
        .await;
    alice
        .pump_until(|c| !c.events("lock.acquired").is_empty())
        .await;
    assert_eq!(
        alice.events("lock.acquired")[0]["lock"]["user_id"],
        bob.user_id.to_string()
    );
    // Bob leaves the relaying node: the owner releases his lock and tells Alice.
    bobs.disconnect().await;
    alice
        .pump_until(|c| !c.events("lock.released").is_empty())
        .await;
    node.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn a_rights_change_on_one_node_closes_sockets_on_the_others() {
    let (app, node, owner, ws) = two_nodes().await;
    let org = org_of(&app, ws).await;
    let bob = member_with_role(&app, ws, "Editor").await;
    let _keep_room_on_app = client_at(app.addr, &owner, ws, "&acks=1").await;
    let mut direct = client_at(app.addr, &bob, ws, "&acks=1").await;
    let mut relayed = client_at(node.addr, &bob, ws, "&acks=1").await;
    // Removed through the node that holds neither socket's room.
    let removed = node
        .client
        .delete(
            &format!("/api/v1/orgs/{org}/members/{}", bob.user_id),
            &owner.token,
        )
        .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT, "{}", removed.body);
    for c in [&mut direct, &mut relayed] {
        let closed = tokio::time::timeout(Duration::from_secs(5), c.wait_closed())
            .await
            .expect("closed within seconds");
        assert_eq!(closed.code, 4403, "{closed:?}");
    }
    node.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn a_chat_message_posted_on_one_node_reaches_editors_on_the_owner() {
    let (app, node, owner, ws) = two_nodes().await;
    let mut editor = client_at(app.addr, &owner, ws, "&acks=1&chat=1").await;
    let room = node
        .client
        .get(&format!("/api/v1/workspaces/{ws}/chat-room"), &owner.token)
        .await
        .id();
    // Not a workspace path: served by the node it reached, pushed over the cluster bus.
    let sent = node
        .client
        .post(
            &format!("/api/v1/chat-rooms/{room}/messages"),
            &owner.token,
            json!({ "content": "across nodes" }),
        )
        .await;
    assert_eq!(sent.status, StatusCode::CREATED, "{}", sent.body);
    editor
        .pump_until(|c| !c.events("chat.message").is_empty())
        .await;
    assert_eq!(
        editor.events("chat.message")[0]["message"]["content"],
        "across nodes"
    );
    node.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn a_node_that_lost_its_lease_closes_the_room_and_its_clients_resume_on_the_new_owner() {
    let (app, node, owner, ws) = two_nodes().await;
    let mut c = client_at(app.addr, &owner, ws, "&acks=1").await;
    let first = id();
    c.put_block(&first, block("before the takeover")).await;
    c.settle().await;

    // The other node takes the workspace over (as it would after this node's heartbeat lapsed).
    let other = node_id_at(&app, node.addr).await;
    sqlx::query(
        "UPDATE workspace_leases SET node_id = $2, epoch = epoch + 1 WHERE workspace_id = $1",
    )
    .bind(ws)
    .bind(other)
    .execute(app.pool())
    .await
    .expect("takeover");
    let closed = tokio::time::timeout(Duration::from_secs(5), c.wait_closed())
        .await
        .expect("closed within a heartbeat or two");
    assert_eq!(closed.code, 1012, "{closed:?}");

    // Back on the same node: relayed to the new owner, which loads from storage.
    let mut again = WsClient::new(app.addr, ws, &owner.token);
    again.connect_with("&acks=1").await;
    again.sync().await;
    assert!(again.canvas_json()["blocks"].get(&first).is_some());
    let second = id();
    again.put_block(&second, block("after the takeover")).await;
    again.settle().await;
    assert_eq!(lease_holder(&app, ws).await, Some(other));
    let log_seqs: Vec<i64> = sqlx::query_scalar(
        "SELECT seq FROM workspace_update_log WHERE workspace_id = $1 ORDER BY seq",
    )
    .bind(ws)
    .fetch_all(app.pool())
    .await
    .expect("log");
    let unique: std::collections::BTreeSet<i64> = log_seqs.iter().copied().collect();
    assert_eq!(unique.len(), log_seqs.len(), "one log, no fork");
    node.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn a_hocuspocus_document_on_another_node_joins_the_owner_s_room() {
    let (app, node, owner, ws) = two_nodes().await;
    let mut yws = client_at(app.addr, &owner, ws, "&acks=1").await;
    let name = ws.to_string();
    let mut hp = nox_tests::hocuspocus::HpClient::connect(node.addr).await;
    hp.open(&name, &owner.token).await;
    hp.pump_until(|c| c.doc(&name).synced).await;

    let from_hp = id();
    hp.put_block(&name, &from_hp, block("from hocuspocus on node two"))
        .await;
    yws.pump_until(|c| c.canvas_json()["blocks"].get(&from_hp).is_some())
        .await;
    // SyncStatus (the durable ack) comes back through the relay.
    hp.pump_until(|c| c.doc(&name).sync_statuses >= c.doc(&name).updates_sent)
        .await;
    let from_yws = id();
    yws.put_block(&from_yws, block("from the owner")).await;
    hp.pump_until(|c| {
        c.doc(&name).canvas_json()["blocks"]
            .get(&from_yws)
            .is_some()
    })
    .await;
    assert_owned_by(&app, ws, app.addr).await;
    node.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn a_route_outside_the_workspace_path_reads_the_canvas_from_the_owner() {
    let (app, node, owner, ws) = two_nodes().await;
    let org = org_of(&app, ws).await;
    let warehouse = app.client.create_warehouse(&owner, org).await;
    let mut editor = client_at(app.addr, &owner, ws, "&acks=1").await;
    let group = id();
    editor
        .put_block(&group, json!({"type": "GROUP", "name": "card"}))
        .await;
    editor.settle().await;
    // Saving a selection reads the live canvas; this node has no room, the owner has.
    let saved = node
        .client
        .post(
            &format!("/api/v1/warehouses/{warehouse}/templates/from-selection"),
            &owner.token,
            json!({"workspace_id": ws, "block_ids": [group], "name": "card"}),
        )
        .await;
    assert_eq!(saved.status, StatusCode::CREATED, "{}", saved.body);
    // The internal canvas route is for nodes only.
    let stranger = node
        .client
        .get(
            &format!("/internal/v1/workspaces/{ws}/canvas"),
            &owner.token,
        )
        .await;
    assert_eq!(stranger.status, StatusCode::NOT_FOUND);
    assert_owned_by(&app, ws, app.addr).await;
    node.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn a_relayed_hocuspocus_document_that_loses_access_is_denied_alone() {
    let (app, node, owner, ws) = two_nodes().await;
    let org = org_of(&app, ws).await;
    let bob = member_with_role(&app, ws, "Editor").await;
    // Bob's own workspace in his own organization, opened on the same socket.
    let bobs_org = app
        .client
        .create_org(&bob, &format!("bob-{}", &id()[..8]))
        .await;
    let project = app.client.create_project(&bob, bobs_org, "p").await;
    let own_ws = app.client.create_workspace(&bob, project, "mine").await;
    let _room_on_app = client_at(app.addr, &owner, ws, "&acks=1").await;
    let (shared, mine) = (ws.to_string(), own_ws.to_string());
    let mut hp = nox_tests::hocuspocus::HpClient::connect(node.addr).await;
    hp.open(&shared, &bob.token).await;
    hp.open(&mine, &bob.token).await;
    hp.pump_until(|c| c.doc(&shared).synced && c.doc(&mine).synced)
        .await;

    let removed = app
        .client
        .delete(
            &format!("/api/v1/orgs/{org}/members/{}", bob.user_id),
            &owner.token,
        )
        .await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT, "{}", removed.body);
    hp.pump_until(|c| c.doc(&shared).denied.is_some()).await;
    // The socket and the other document stay: it still syncs edits.
    let block_id = id();
    hp.put_block(&mine, &block_id, block("still here")).await;
    hp.pump_until(|c| c.doc(&mine).sync_statuses >= c.doc(&mine).updates_sent)
        .await;
    assert_eq!(hp.closed, None);
    node.stop().await;
    app.stop().await;
}

#[tokio::test]
async fn the_connections_quota_counts_every_node_and_a_relayed_socket_once() {
    let (app, node, owner, ws) = two_nodes().await;
    let org = org_of(&app, ws).await;
    sqlx::query(
        "UPDATE subscriptions SET quotas = jsonb_set(quotas, '{max_connections}', '3')
         WHERE org_id = $1",
    )
    .bind(org)
    .execute(app.pool())
    .await
    .expect("lower the quota");
    let reported = |expected: i64| {
        let pool = app.pool().clone();
        async move {
            let total: Option<i64> = sqlx::query_scalar(
                "SELECT SUM(connections)::BIGINT FROM node_connections WHERE org_id = $1",
            )
            .bind(org)
            .fetch_one(&pool)
            .await
            .unwrap_or(None);
            total == Some(expected)
        }
    };
    let _on_owner = client_at(app.addr, &owner, ws, "&acks=1").await;
    let _relayed = client_at(node.addr, &owner, ws, "&acks=1").await;
    // Two clients, and the relayed one is counted on its own node only.
    eventually("both nodes reported 2 connections", || reported(2)).await;
    let _third = client_at(node.addr, &owner, ws, "&acks=1").await;
    eventually("3 connections reported", || reported(3)).await;
    // The owner node holds one client itself, but the cluster holds three: the plan's limit.
    let fourth = WsClient::new(app.addr, ws, &owner.token);
    assert_eq!(
        nox_tests::ws::upgrade_status(&fourth.url("")).await,
        Some(402)
    );
    node.stop().await;
    app.stop().await;
}
