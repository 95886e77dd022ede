//! PostgreSQL restarts while people edit: the server keeps serving, refuses what it cannot make
//! durable, and recovers by itself once the database is back.
//!
//! Its own test binary because it stops its database: it owns a private cluster
//! ([`PrivateCluster`]) instead of the per-process one every other test shares.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use nox_persistence::testing::PrivateCluster;
use nox_server::config::Config;
use nox_server::startup::Application;
use nox_tests::ws::upgrade_status;
use nox_tests::{test_config, Session, TestClient, WsClient};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// How long the server may take to notice the database is back and serve edits again.
const RECOVERY_BOUND: Duration = Duration::from_secs(30);
/// How long an HTTP request may take while the database is down (it must fail, not hang).
const OUTAGE_ANSWER_BOUND: Duration = Duration::from_secs(5);

/// A server on the private cluster (like `TestApp`, whose constructor takes the shared one).
struct Server {
    addr: SocketAddr,
    http: TestClient,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start(config: Config) -> Server {
        let app = Application::build(config).await.expect("build application");
        let addr = app.local_addr();
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(app.run_until_stopped(async {
            let _ = stopped.await;
        }));
        Server {
            addr,
            http: TestClient::new(addr),
            stop,
            task,
        }
    }

    /// Graceful shutdown, waiting until the server has stopped.
    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.expect("server task").expect("server io");
    }
}

fn block(name: &str) -> Value {
    json!({"type": "NODE", "name": name, "visual": {"x": 1, "y": 2}})
}

fn has_block(client: &WsClient, id: &str) -> bool {
    client.canvas_json()["blocks"].get(id).is_some()
}

/// Connects with durable acks and waits for the initial sync.
async fn connect(client: &mut WsClient) {
    client.connect_with("&acks=1").await;
    client.sync().await;
}

/// Reconnects like y-websocket does after a close (retry with a short pause) until the upgrade
/// is accepted and the document synced; returns when that happened.
async fn reconnect(client: &mut WsClient, deadline: Instant) {
    loop {
        assert!(
            Instant::now() < deadline,
            "the server did not accept the client again within {RECOVERY_BOUND:?}"
        );
        if upgrade_status(&client.url("&acks=1")).await.is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    connect(client).await;
}

#[tokio::test]
async fn a_database_restart_refuses_undurable_edits_and_recovers_by_itself() {
    let mut cluster = PrivateCluster::start().await.expect("private cluster");
    let config = test_config(&cluster.url, |c| c.compact_interval_ms = 60_000);
    let server = Server::start(config.clone()).await;
    let (owner, _, _, ws) = server.http.owner_with_workspace("restart").await;
    let mut ada = WsClient::new(server.addr, ws, &owner.token);
    let mut grace = WsClient::new(server.addr, ws, &owner.token);
    connect(&mut ada).await;
    connect(&mut grace).await;

    let before = Uuid::new_v4().to_string();
    ada.put_block(&before, block("before the outage")).await;
    ada.settle().await;
    grace.pump_until(|c| has_block(c, &before)).await;

    // The database goes away (fast shutdown: its connections are terminated).
    cluster.stop().await.expect("stop PostgreSQL");
    let during = Uuid::new_v4().to_string();
    let acks_before = ada.acks;
    let edited = Instant::now();
    ada.put_block(&during, block("during the outage")).await;
    // Not durable, so refused: the room closes its peers with 1013 and delivers nothing of it.
    let closed = ada.wait_closed().await;
    assert_eq!(closed.code, 1013, "the sender: {closed:?}");
    eprintln!(
        "the refused edit closed its sender after {:?}",
        edited.elapsed()
    );
    assert_eq!(
        ada.acks, acks_before,
        "an edit that was not stored was acked"
    );
    let closed = grace.wait_closed().await;
    assert_eq!(closed.code, 1013, "the peer: {closed:?}");
    assert!(
        !has_block(&grace, &during),
        "a peer saw an update that is not durable"
    );

    // HTTP fails fast with a JSON 503, and readiness says so.
    let started = Instant::now();
    let reply = server
        .http
        .get(&format!("/api/v1/workspaces/{ws}/blocks"), &owner.token)
        .await;
    eprintln!("HTTP answered in {:?} during the outage", started.elapsed());
    assert!(
        started.elapsed() < OUTAGE_ANSWER_BOUND,
        "an HTTP request took {:?} while the database was down",
        started.elapsed()
    );
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    assert_eq!(reply.code(), "service_unavailable");
    let ready = server.http.get("/readyz", "").await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.body["status"], "not_ready");
    // Reconnecting is refused before the upgrade (authentication needs the database).
    assert_eq!(upgrade_status(&ada.url("&acks=1")).await, Some(503));

    // The database comes back; nobody restarts the server.
    cluster.start_again().await.expect("start PostgreSQL again");
    let back = Instant::now();
    let deadline = back + RECOVERY_BOUND;
    reconnect(&mut ada, deadline).await;
    reconnect(&mut grace, deadline).await;
    // Ada still holds her refused edit; the resync uploads it, and now it is stored and shared.
    ada.settle().await;
    grace.pump_until(|c| has_block(c, &during)).await;
    let after = Uuid::new_v4().to_string();
    ada.put_block(&after, block("after the outage")).await;
    ada.settle().await;
    grace.pump_until(|c| has_block(c, &after)).await;
    let recovery = back.elapsed();
    eprintln!("recovered {recovery:?} after PostgreSQL accepted connections again");
    assert!(recovery < RECOVERY_BOUND);
    let ready = server.http.get("/readyz", "").await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);

    // Everything acknowledged survives a server restart.
    ada.disconnect().await;
    grace.disconnect().await;
    server.stop().await;
    let server = Server::start(config).await;
    let mut reader = WsClient::new(server.addr, ws, &owner.token);
    connect(&mut reader).await;
    for id in [&before, &during, &after] {
        assert!(
            has_block(&reader, id),
            "block {id} is gone after the restart"
        );
    }
    assert_eq!(reader.canvas_json(), ada.canvas_json());
    assert_blocks_over_http(&server.http, &owner, ws, 3).await;
    server.stop().await;
    cluster.stop().await.expect("final stop");
}

/// The HTTP API reads the same document.
async fn assert_blocks_over_http(http: &TestClient, owner: &Session, ws: Uuid, expected: usize) {
    let reply = http
        .get(&format!("/api/v1/workspaces/{ws}/blocks"), &owner.token)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let items = reply.body["items"].as_array().map_or(0, Vec::len);
    assert_eq!(items, expected, "{}", reply.body);
}

#[tokio::test]
async fn editors_idle_through_a_database_restart_stay_connected_and_edit_afterwards() {
    let mut cluster = PrivateCluster::start().await.expect("private cluster");
    let server = Server::start(test_config(&cluster.url, |_| {})).await;
    let (owner, _, _, ws) = server.http.owner_with_workspace("idle-restart").await;
    let mut ada = WsClient::new(server.addr, ws, &owner.token);
    let mut grace = WsClient::new(server.addr, ws, &owner.token);
    connect(&mut ada).await;
    connect(&mut grace).await;

    cluster.stop().await.expect("stop PostgreSQL");
    let ready = server.http.get("/readyz", "").await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    cluster.start_again().await.expect("start PostgreSQL again");

    // Nothing needed storage meanwhile, so nobody was closed; the pool replaces its dead
    // connections by itself and the next edit is durable and shared as usual.
    let back = Instant::now();
    let block_id = Uuid::new_v4().to_string();
    ada.put_block(&block_id, block("after an idle outage"))
        .await;
    ada.settle().await;
    grace.pump_until(|c| has_block(c, &block_id)).await;
    eprintln!(
        "first edit after the restart durable and shared in {:?}",
        back.elapsed()
    );
    assert!(ada.is_connected() && grace.is_connected());
    server.stop().await;
    cluster.stop().await.expect("final stop");
}
