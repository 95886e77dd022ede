//! Edit locks over the WebSocket: one holder, pushed to every peer, expiring, released on
//! disconnect, breakable with `locks:override`, durable across restarts.

use std::time::Duration;

use nox_tests::{Session, TestApp, WsClient};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::{block, member_with_role, setup, setup_with};

/// A connected client that asked for lock events.
async fn locker(app: &TestApp, session: &Session, ws: Uuid) -> WsClient {
    let mut c = WsClient::new(app.addr, ws, &session.token);
    c.connect_with("&acks=1&locks=1").await;
    c.sync().await;
    c.pump_until(|c| !c.events("lock.list").is_empty()).await;
    c
}

fn request(kind: &str, block: &str, extra: Value) -> Value {
    let mut msg = json!({ "type": kind, "resource_type": "BLOCK", "resource_id": block, "request_id": format!("{kind}-1") });
    if let (Some(msg), Some(extra)) = (msg.as_object_mut(), extra.as_object()) {
        msg.extend(extra.clone());
    }
    msg
}

/// Sends a request and waits for its answer (`lock.granted` or `lock.denied`).
async fn ask(c: &mut WsClient, kind: &str, block: &str, extra: Value) -> Value {
    let before = c.stateless.len();
    c.send_stateless(request(kind, block, extra)).await;
    c.pump_until(|c| {
        c.stateless[before..]
            .iter()
            .any(|e| e["type"] == "lock.granted" || e["type"] == "lock.denied")
    })
    .await;
    c.stateless[before..]
        .iter()
        .find(|e| e["type"] == "lock.granted" || e["type"] == "lock.denied")
        .cloned()
        .expect("answer")
}

async fn editor(app: &TestApp, ws: Uuid) -> Session {
    member_with_role(app, ws, "Editor").await
}

/// A block both clients see.
async fn shared_block(a: &mut WsClient, b: &mut WsClient) -> String {
    let id = Uuid::new_v4().to_string();
    a.put_block(&id, block("locked one")).await;
    b.pump_until(|c| c.canvas_json()["blocks"].get(&id).is_some())
        .await;
    id
}

#[tokio::test]
async fn a_lock_has_one_holder_and_every_peer_sees_it() {
    let (app, owner, ws) = setup().await;
    let bob = editor(&app, ws).await;
    let mut a = locker(&app, &owner, ws).await;
    let mut b = locker(&app, &bob, ws).await;
    let id = shared_block(&mut a, &mut b).await;

    let granted = ask(&mut a, "lock.acquire", &id, json!({})).await;
    assert_eq!(granted["type"], "lock.granted");
    assert_eq!(granted["request_id"], "lock.acquire-1");
    assert_eq!(granted["lock"]["user_id"], owner.user_id.to_string());
    b.pump_until(|c| !c.events("lock.acquired").is_empty())
        .await;
    assert_eq!(b.events("lock.acquired")[0]["lock"]["resource_id"], id);

    let denied = ask(&mut b, "lock.acquire", &id, json!({})).await;
    assert_eq!(denied["type"], "lock.denied");
    assert_eq!(denied["holder"]["user_id"], owner.user_id.to_string());
    assert!(denied["holder"]["expires_at"].as_i64().is_some());

    // Releasing is announced, and then the other user gets it.
    a.send_stateless(request("lock.release", &id, json!({})))
        .await;
    b.pump_until(|c| !c.events("lock.released").is_empty())
        .await;
    assert_eq!(b.events("lock.released")[0]["reason"], "released");
    assert_eq!(
        ask(&mut b, "lock.acquire", &id, json!({})).await["type"],
        "lock.granted"
    );
    let rows: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM edit_locks WHERE workspace_id = $1 AND locked_by = $2",
    )
    .bind(ws)
    .bind(bob.user_id)
    .fetch_one(app.pool())
    .await
    .expect("rows");
    assert_eq!(rows, 1, "the lock is a row");
    app.stop().await;
}

#[tokio::test]
async fn of_many_racing_users_exactly_one_wins() {
    let (app, owner, ws) = setup().await;
    let mut creator = locker(&app, &owner, ws).await;
    let id = Uuid::new_v4().to_string();
    creator.put_block(&id, block("contested")).await;
    creator.settle().await;
    let mut racers = Vec::new();
    for _ in 0..8 {
        let user = editor(&app, ws).await;
        racers.push(locker(&app, &user, ws).await);
    }
    for r in racers.iter_mut() {
        r.send_stateless(request("lock.acquire", &id, json!({})))
            .await;
    }
    let mut granted = 0;
    for r in racers.iter_mut() {
        r.pump_until(|c| {
            !c.events("lock.granted").is_empty() || !c.events("lock.denied").is_empty()
        })
        .await;
        granted += r.events("lock.granted").len();
    }
    assert_eq!(granted, 1);
    app.stop().await;
}

#[tokio::test]
async fn locks_expire_unless_renewed() {
    let (app, owner, ws) = setup().await;
    let bob = editor(&app, ws).await;
    let mut a = locker(&app, &owner, ws).await;
    let mut b = locker(&app, &bob, ws).await;
    let id = shared_block(&mut a, &mut b).await;
    assert_eq!(
        ask(&mut a, "lock.acquire", &id, json!({ "ttl_ms": 1000 })).await["type"],
        "lock.granted"
    );
    let renewed = ask(&mut a, "lock.renew", &id, json!({ "ttl_ms": 1000 })).await;
    assert_eq!(renewed["type"], "lock.granted");
    b.pump_until(|c| !c.events("lock.released").is_empty())
        .await;
    assert_eq!(b.events("lock.released")[0]["reason"], "expired");
    assert_eq!(
        ask(&mut b, "lock.acquire", &id, json!({})).await["type"],
        "lock.granted"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_closed_connection_releases_its_locks() {
    let (app, owner, ws) = setup().await;
    let bob = editor(&app, ws).await;
    let mut a = locker(&app, &owner, ws).await;
    let mut b = locker(&app, &bob, ws).await;
    let id = shared_block(&mut a, &mut b).await;
    assert_eq!(
        ask(&mut a, "lock.acquire", &id, json!({})).await["type"],
        "lock.granted"
    );
    a.disconnect().await;
    b.pump_until(|c| !c.events("lock.released").is_empty())
        .await;
    assert_eq!(b.events("lock.released")[0]["reason"], "disconnected");
    app.stop().await;
}

#[tokio::test]
async fn only_locks_override_breaks_a_lock_and_viewers_cannot_lock() {
    let (app, _owner, ws) = setup().await;
    let (holder, other, admin, viewer) = (
        editor(&app, ws).await,
        editor(&app, ws).await,
        member_with_role(&app, ws, "Admin").await,
        member_with_role(&app, ws, "Viewer").await,
    );
    let mut h = locker(&app, &holder, ws).await;
    let mut o = locker(&app, &other, ws).await;
    let id = shared_block(&mut h, &mut o).await;
    assert_eq!(
        ask(&mut h, "lock.acquire", &id, json!({})).await["type"],
        "lock.granted"
    );

    let refused = ask(&mut o, "lock.break", &id, json!({})).await;
    assert_eq!(refused["type"], "lock.denied");
    let mut v = locker(&app, &viewer, ws).await;
    let read_only = ask(&mut v, "lock.acquire", &id, json!({})).await;
    assert_eq!(read_only["type"], "lock.denied");
    assert!(read_only["reason"]
        .as_str()
        .unwrap_or("")
        .contains("read-only"));

    let mut adm = locker(&app, &admin, ws).await;
    adm.send_stateless(request("lock.break", &id, json!({})))
        .await;
    h.pump_until(|c| !c.events("lock.released").is_empty())
        .await;
    let released = h.events("lock.released")[0].clone();
    assert_eq!(released["reason"], "broken");
    assert_eq!(released["by"], admin.user_id.to_string());
    app.stop().await;
}

#[tokio::test]
async fn locks_survive_a_restart_and_are_listed_on_join() {
    let (app, owner, ws) = setup_with(|c| c.room_idle_secs = 60).await;
    let bob = editor(&app, ws).await;
    let mut a = locker(&app, &owner, ws).await;
    let mut b = locker(&app, &bob, ws).await;
    let id = shared_block(&mut a, &mut b).await;
    assert_eq!(
        ask(&mut a, "lock.acquire", &id, json!({ "ttl_ms": 60_000 })).await["type"],
        "lock.granted"
    );
    let app = app.restart().await;
    let mut b = locker(&app, &bob, ws).await;
    let list = b.events("lock.list")[0].clone();
    assert_eq!(list["locks"][0]["resource_id"], id);
    assert_eq!(
        ask(&mut b, "lock.acquire", &id, json!({})).await["type"],
        "lock.denied"
    );
    b.pump_for(Duration::from_millis(50)).await;
    app.stop().await;
}

#[tokio::test]
async fn unknown_resources_and_bad_messages_are_refused() {
    let (app, owner, ws) = setup().await;
    let mut a = locker(&app, &owner, ws).await;
    let missing = ask(
        &mut a,
        "lock.acquire",
        &Uuid::new_v4().to_string(),
        json!({}),
    )
    .await;
    assert_eq!(missing["type"], "lock.denied");
    a.send_stateless(json!({ "type": "lock.acquire", "resource_type": "TABLE" }))
        .await;
    a.pump_until(|c| !c.events("lock.error").is_empty()).await;
    // Other stateless messages are left alone, and the connection stays open.
    a.send_stateless(json!({ "type": "chat.hello" })).await;
    a.pump_for(Duration::from_millis(200)).await;
    assert!(a.closed.is_none());
    app.stop().await;
}
