//! Blocks and relations over HTTP go through the room: live editors see them, rows follow, locks
//! hold. Presence comes from the server's own knowledge of each socket.

use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::{block, client, eventually, member_with_role, setup};

#[tokio::test]
async fn http_writes_reach_live_editors_and_the_rows() {
    let (app, owner, ws) = setup().await;
    let mut live = client(&app, &owner, ws).await;
    let base = format!("/api/v1/workspaces/{ws}");

    let created = app
        .client
        .post(
            &format!("{base}/blocks"),
            &owner.token,
            json!({ "type": "NODE", "name": "from http", "visual": { "x": 5 } }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"]
        .as_str()
        .expect("generated id")
        .to_string();
    assert_eq!(created.body["created_by_id"], owner.user_id.to_string());
    live.pump_until(|c| c.canvas_json()["blocks"][&id]["name"] == "from http")
        .await;

    let second = Uuid::new_v4().to_string();
    let with_id = app
        .client
        .post(
            &format!("{base}/blocks"),
            &owner.token,
            json!({ "id": second, "type": "NODE", "parent_block_id": id }),
        )
        .await;
    assert_eq!(with_id.status, StatusCode::CREATED, "{}", with_id.body);
    let rel = app
        .client
        .post(
            &format!("{base}/relations"),
            &owner.token,
            json!({ "source_block_id": id, "target_block_id": second, "type": "LINK" }),
        )
        .await;
    assert_eq!(rel.status, StatusCode::CREATED, "{}", rel.body);
    let patched = app
        .client
        .patch(
            &format!("{base}/blocks/{id}"),
            &owner.token,
            json!({ "name": "renamed", "config": { "k": 1 } }),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    assert_eq!(patched.body["name"], "renamed");
    live.pump_until(|c| c.canvas_json()["blocks"][&id]["config"]["k"] == 1)
        .await;

    let listed = app
        .client
        .get(&format!("{base}/blocks?parent={id}"), &owner.token)
        .await;
    assert_eq!(listed.body["blocks"].as_array().map(|b| b.len()), Some(1));
    let rels = app
        .client
        .get(&format!("{base}/relations?source={id}"), &owner.token)
        .await;
    assert_eq!(rels.body["relations"][0]["target_block_id"], second);

    let pool = app.pool().clone();
    let block_uuid: Uuid = id.parse().expect("uuid");
    eventually("the HTTP block is projected", || {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, String>("SELECT name FROM core_blocks WHERE id = $1")
                .bind(block_uuid)
                .fetch_optional(&pool)
                .await
                .expect("row")
                .as_deref()
                == Some("renamed")
        }
    })
    .await;

    let deleted = app
        .client
        .delete(&format!("{base}/blocks/{second}"), &owner.token)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    live.pump_until(|c| c.canvas_json()["blocks"].get(&second).is_none())
        .await;
    let gone = app
        .client
        .get(&format!("{base}/blocks/{second}"), &owner.token)
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    // Who made the change is in the log.
    let authors: Vec<Option<Uuid>> =
        sqlx::query_scalar("SELECT user_id FROM workspace_update_log WHERE workspace_id = $1")
            .bind(ws)
            .fetch_all(app.pool())
            .await
            .expect("log");
    assert!(authors.iter().all(|a| *a == Some(owner.user_id)));
    app.stop().await;
}

#[tokio::test]
async fn invalid_bodies_get_field_level_errors_and_change_nothing() {
    let (app, owner, ws) = setup().await;
    let base = format!("/api/v1/workspaces/{ws}");
    let bad = app
        .client
        .post(
            &format!("{base}/blocks"),
            &owner.token,
            json!({ "type": "", "colour": "red", "config": 3, "parent_block_id": "nope" }),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = bad.body["error"]["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .filter_map(|f| f["field"].as_str())
        .collect();
    for field in ["type", "colour", "config", "parent_block_id"] {
        assert!(fields.contains(&field), "{field} missing from {}", bad.body);
    }
    let orphan = app
        .client
        .post(
            &format!("{base}/blocks"),
            &owner.token,
            json!({ "type": "NODE", "parent_block_id": Uuid::new_v4() }),
        )
        .await;
    assert_eq!(orphan.status, StatusCode::UNPROCESSABLE_ENTITY);
    let dangling = app
        .client
        .post(&format!("{base}/relations"), &owner.token, json!({ "type": "LINK", "source_block_id": Uuid::new_v4(), "target_block_id": Uuid::new_v4() }))
        .await;
    assert_eq!(dangling.status, StatusCode::UNPROCESSABLE_ENTITY);
    let missing = app
        .client
        .patch(
            &format!("{base}/blocks/{}", Uuid::new_v4()),
            &owner.token,
            json!({ "name": "x" }),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let listed = app
        .client
        .get(&format!("{base}/blocks"), &owner.token)
        .await;
    assert_eq!(listed.body["blocks"], json!([]));
    app.stop().await;
}

#[tokio::test]
async fn http_writes_respect_locks_and_permissions() {
    let (app, owner, ws) = setup().await;
    let editor = member_with_role(&app, ws, "Editor").await;
    let viewer = member_with_role(&app, ws, "Viewer").await;
    let outsider = app.client.register("outsider").await;
    let base = format!("/api/v1/workspaces/{ws}");
    let id = Uuid::new_v4().to_string();
    let mut holder = nox_tests::WsClient::new(app.addr, ws, &editor.token);
    holder.connect_with("&acks=1&locks=1").await;
    holder.sync().await;
    holder.put_block(&id, block("held")).await;
    holder.settle().await;
    holder
        .send_stateless(
            json!({ "type": "lock.acquire", "resource_type": "BLOCK", "resource_id": id }),
        )
        .await;
    holder
        .pump_until(|c| !c.events("lock.granted").is_empty())
        .await;

    let refused = app
        .client
        .patch(
            &format!("{base}/blocks/{id}"),
            &owner.token,
            json!({ "name": "x" }),
        )
        .await;
    assert_eq!(refused.status, StatusCode::LOCKED, "{}", refused.body);
    assert_eq!(refused.code(), "locked");
    // The holder itself may write through HTTP.
    let own = app
        .client
        .patch(
            &format!("{base}/blocks/{id}"),
            &editor.token,
            json!({ "name": "mine" }),
        )
        .await;
    assert_eq!(own.status, StatusCode::OK);

    let locks = app
        .client
        .get(&format!("{base}/locks"), &viewer.token)
        .await;
    let lock_id = locks.body["locks"][0]["id"]
        .as_str()
        .expect("lock id")
        .to_string();
    assert_eq!(
        app.client
            .delete(&format!("{base}/locks/{lock_id}"), &editor.token)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let broken = app
        .client
        .delete(&format!("{base}/locks/{lock_id}"), &owner.token)
        .await;
    assert_eq!(broken.status, StatusCode::NO_CONTENT);
    holder
        .pump_until(|c| !c.events("lock.released").is_empty())
        .await;
    assert_eq!(holder.events("lock.released")[0]["reason"], "broken");
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_logs WHERE action = 'lock.broken' AND actor_id = $1 AND target_id = $2",
    )
    .bind(owner.user_id)
    .bind(lock_id.parse::<Uuid>().expect("lock id"))
    .fetch_one(app.pool())
    .await
    .expect("audit");
    assert_eq!(audited, 1, "breaking a lock over HTTP is audited");
    assert_eq!(
        app.client
            .patch(
                &format!("{base}/blocks/{id}"),
                &owner.token,
                json!({ "name": "free" })
            )
            .await
            .status,
        StatusCode::OK
    );

    let viewer_write = app
        .client
        .post(
            &format!("{base}/blocks"),
            &viewer.token,
            json!({ "type": "NODE" }),
        )
        .await;
    assert_eq!(viewer_write.status, StatusCode::FORBIDDEN);
    for path in ["blocks", "relations", "presence", "locks", "projection"] {
        let r = app
            .client
            .get(&format!("{base}/{path}"), &outsider.token)
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "outsider GET {path}");
    }
    let write = app
        .client
        .post(
            &format!("{base}/blocks"),
            &outsider.token,
            json!({ "type": "NODE" }),
        )
        .await;
    assert_eq!(write.status, StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test]
async fn presence_is_what_the_server_knows_and_awareness_cannot_be_forged() {
    let (app, owner, ws) = setup().await;
    let bob = member_with_role(&app, ws, "Editor").await;
    let path = format!("/api/v1/workspaces/{ws}/presence");
    assert_eq!(
        app.client.get(&path, &owner.token).await.body["users"],
        json!([])
    );

    let _a1 = client(&app, &owner, ws).await;
    let _a2 = client(&app, &owner, ws).await;
    let mut b = client(&app, &bob, ws).await;
    let listed = app.client.get(&path, &owner.token).await;
    let users = listed.body["users"].as_array().expect("users").clone();
    assert_eq!(users.len(), 2);
    let owner_entry = users
        .iter()
        .find(|u| u["user_id"] == owner.user_id.to_string())
        .expect("owner");
    assert_eq!(owner_entry["connections"], 2);

    // Bob claims to be the owner in his awareness state; peers see Bob's real id.
    b.set_awareness(json!({ "user": { "id": owner.user_id, "name": "Owner (not really)" } }))
        .await;
    let bob_client = b.client_id();
    let mut watcher = client(&app, &owner, ws).await;
    watcher
        .pump_until(|c| matches!(c.peers_awareness.get(&bob_client), Some(Some(_))))
        .await;
    let state: serde_json::Value = serde_json::from_str(
        watcher.peers_awareness[&bob_client]
            .as_deref()
            .expect("state"),
    )
    .expect("json");
    assert_eq!(state["user"]["id"], bob.user_id.to_string());
    assert_ne!(state["user"]["name"], "Owner (not really)");

    b.disconnect().await;
    eventually("bob leaves the presence list", || async {
        app.client.get(&path, &owner.token).await.body["users"]
            .as_array()
            .map(|u| u.len())
            == Some(1)
    })
    .await;
    app.stop().await;
}

#[tokio::test]
async fn the_projection_endpoint_reports_conflicts() {
    let (app, owner, ws) = setup().await;
    let mut a = client(&app, &owner, ws).await;
    a.put_block("not-a-uuid", json!({ "type": "NODE", "name": "bad" }))
        .await;
    a.settle().await;
    let path = format!("/api/v1/workspaces/{ws}/projection");
    eventually("the conflict is reported", || async {
        let status = app.client.get(&path, &owner.token).await;
        status.body["conflict_count"] == 1 && status.body["conflicts"][0]["kind"] == "invalid_id"
    })
    .await;
    app.stop().await;
}

#[tokio::test]
async fn the_plan_limits_blocks_created_over_http() {
    let (app, owner, ws) = setup().await;
    sqlx::query(
        "UPDATE subscriptions SET quotas = jsonb_set(quotas, '{max_blocks_per_workspace}', '2')
         WHERE org_id = (SELECT p.org_id FROM workspaces w JOIN projects p ON p.id = w.project_id WHERE w.id = $1)",
    )
    .bind(ws)
    .execute(app.pool())
    .await
    .expect("lower the quota");
    let path = format!("/api/v1/workspaces/{ws}/blocks");
    for _ in 0..2 {
        let ok = app
            .client
            .post(&path, &owner.token, json!({ "type": "NODE" }))
            .await;
        assert_eq!(ok.status, StatusCode::CREATED);
    }
    let refused = app
        .client
        .post(&path, &owner.token, json!({ "type": "NODE" }))
        .await;
    assert_eq!(refused.status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(refused.code(), "quota_exceeded");
    let listed = app.client.get(&path, &owner.token).await;
    assert_eq!(listed.body["blocks"].as_array().map(|b| b.len()), Some(2));
    app.stop().await;
}
