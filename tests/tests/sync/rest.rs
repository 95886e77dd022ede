//! Blocks and relations over HTTP go through the room: live editors see them, rows follow, locks
//! hold. Presence comes from the server's own knowledge of each socket.

use reqwest::StatusCode;
use serde_json::{json, Value};
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
    assert_eq!(listed.body["items"].as_array().map(|b| b.len()), Some(1));
    let rels = app
        .client
        .get(&format!("{base}/relations?source={id}"), &owner.token)
        .await;
    assert_eq!(rels.body["items"][0]["target_block_id"], second);

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
    assert_eq!(listed.body["items"], json!([]));
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
    let lock_id = locks.body["items"][0]["id"]
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
        app.client.get(&path, &owner.token).await.body["items"],
        json!([])
    );

    let _a1 = client(&app, &owner, ws).await;
    let _a2 = client(&app, &owner, ws).await;
    let mut b = client(&app, &bob, ws).await;
    let listed = app.client.get(&path, &owner.token).await;
    let users = listed.body["items"].as_array().expect("items").clone();
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
        app.client.get(&path, &owner.token).await.body["items"]
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
    assert_eq!(listed.body["items"].as_array().map(|b| b.len()), Some(2));
    app.stop().await;
}

/// Posts `body` to `path` and returns the created id (201 asserted).
async fn create(app: &nox_tests::TestApp, token: &str, path: &str, body: Value) -> String {
    let reply = app.client.post(path, token, body).await;
    assert_eq!(
        reply.status,
        StatusCode::CREATED,
        "POST {path}: {}",
        reply.body
    );
    reply.id().to_string()
}

/// The `field` names of a 422 `validation_failed` answer (asserted).
fn refused_fields(reply: &nox_tests::http::Reply) -> Vec<String> {
    assert_eq!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        reply.body
    );
    assert_eq!(reply.code(), "validation_failed");
    reply.body["error"]["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .filter_map(|f| f["field"].as_str().map(str::to_owned))
        .collect()
}

fn ids_of(list: &Value) -> Vec<String> {
    let items = list["items"].as_array().expect("items");
    items
        .iter()
        .map(|i| i["id"].as_str().expect("id").to_owned())
        .collect()
}

#[tokio::test]
async fn deleting_a_block_over_http_takes_its_subtree_and_relations_in_one_update() {
    let (app, owner, ws) = setup().await;
    let base = format!("/api/v1/workspaces/{ws}");
    let blocks = format!("{base}/blocks");
    let relations = format!("{base}/relations");
    let parent = create(&app, &owner.token, &blocks, json!({ "type": "NODE" })).await;
    let child = create(
        &app,
        &owner.token,
        &blocks,
        json!({ "type": "NODE", "parent_block_id": parent }),
    )
    .await;
    let grandchild = create(
        &app,
        &owner.token,
        &blocks,
        json!({ "type": "NODE", "parent_block_id": child }),
    )
    .await;
    let other = create(&app, &owner.token, &blocks, json!({ "type": "NODE" })).await;
    for (source, target) in [(&other, &grandchild), (&parent, &other), (&child, &other)] {
        let body = json!({ "type": "LINK", "source_block_id": source, "target_block_id": target });
        create(&app, &owner.token, &relations, body).await;
    }
    let kept = create(
        &app,
        &owner.token,
        &blocks,
        json!({ "type": "NODE", "parent_block_id": other }),
    )
    .await;
    let kept_link = json!({ "type": "LINK", "source_block_id": other, "target_block_id": kept });
    let kept_relation = create(&app, &owner.token, &relations, kept_link).await;

    // A stock-style editor counts the updates it receives from here on.
    let mut live = client(&app, &owner, ws).await;
    let received = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = received.clone();
    live.doc
        .observe_update_v1("count-remote", move |_, _| {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        })
        .expect("observe");

    let deleted = app
        .client
        .delete(&format!("{blocks}/{parent}"), &owner.token)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    live.pump_until(|c| c.canvas_json()["blocks"].get(&parent).is_none())
        .await;
    let canvas = live.canvas_json();
    assert_eq!(
        received.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the delete and its cascade arrive as one update"
    );
    let mut left: Vec<&String> = canvas["blocks"]
        .as_object()
        .expect("blocks")
        .keys()
        .collect();
    left.sort();
    let mut expected = vec![&other, &kept];
    expected.sort();
    assert_eq!(left, expected, "descendants went with the block");
    let relations_left: Vec<&String> = canvas["relations"]
        .as_object()
        .expect("relations")
        .keys()
        .collect();
    assert_eq!(
        relations_left,
        [&kept_relation],
        "relations touching them went too"
    );

    let listed = app.client.get(&blocks, &owner.token).await;
    let mut listed_ids = ids_of(&listed.body);
    listed_ids.sort();
    assert_eq!(listed_ids.iter().collect::<Vec<_>>(), expected);
    let listed = app.client.get(&relations, &owner.token).await;
    assert_eq!(ids_of(&listed.body), [kept_relation]);
    app.stop().await;
}

#[tokio::test]
async fn a_delete_whose_cascade_touches_a_lock_of_someone_else_is_refused_whole() {
    let (app, owner, ws) = setup().await;
    let editor = member_with_role(&app, ws, "Editor").await;
    let blocks = format!("/api/v1/workspaces/{ws}/blocks");
    let parent = create(&app, &owner.token, &blocks, json!({ "type": "NODE" })).await;
    let child = create(
        &app,
        &owner.token,
        &blocks,
        json!({ "type": "NODE", "parent_block_id": parent }),
    )
    .await;
    let mut holder = nox_tests::WsClient::new(app.addr, ws, &editor.token);
    holder.connect_with("&locks=1").await;
    holder.sync().await;
    holder
        .send_stateless(
            json!({ "type": "lock.acquire", "resource_type": "BLOCK", "resource_id": child }),
        )
        .await;
    holder
        .pump_until(|c| !c.events("lock.granted").is_empty())
        .await;

    let refused = app
        .client
        .delete(&format!("{blocks}/{parent}"), &owner.token)
        .await;
    assert_eq!(refused.status, StatusCode::LOCKED, "{}", refused.body);
    let listed = app.client.get(&blocks, &owner.token).await;
    assert_eq!(ids_of(&listed.body).len(), 2, "nothing was deleted");
    app.stop().await;
}

#[tokio::test]
async fn duplicates_self_relations_cycles_and_strange_blocks_are_refused_naming_the_field() {
    let (app, owner, ws) = setup().await;
    let base = format!("/api/v1/workspaces/{ws}");
    let blocks = format!("{base}/blocks");
    let relations = format!("{base}/relations");
    let a = create(&app, &owner.token, &blocks, json!({ "type": "NODE" })).await;
    let b = create(&app, &owner.token, &blocks, json!({ "type": "NODE" })).await;
    let c = create(
        &app,
        &owner.token,
        &blocks,
        json!({ "type": "NODE", "parent_block_id": b }),
    )
    .await;
    let link =
        |s: &str, t: &str| json!({ "type": "LINK", "source_block_id": s, "target_block_id": t });
    let a_to_b = create(&app, &owner.token, &relations, link(&a, &b)).await;
    create(&app, &owner.token, &relations, link(&b, &a)).await;

    let duplicate = app
        .client
        .post(&relations, &owner.token, link(&a, &b))
        .await;
    assert_eq!(refused_fields(&duplicate), ["target_block_id"]);
    let selfish = app
        .client
        .post(&relations, &owner.token, link(&a, &a))
        .await;
    assert_eq!(refused_fields(&selfish), ["target_block_id"]);
    let patched_to_self = app
        .client
        .patch(
            &format!("{relations}/{a_to_b}"),
            &owner.token,
            json!({ "target_block_id": a }),
        )
        .await;
    assert_eq!(refused_fields(&patched_to_self), ["target_block_id"]);
    let patched_to_duplicate = app
        .client
        .patch(
            &format!("{relations}/{a_to_b}"),
            &owner.token,
            json!({ "source_block_id": b, "target_block_id": a }),
        )
        .await;
    assert_eq!(refused_fields(&patched_to_duplicate), ["target_block_id"]);

    for parent in [&b, &c] {
        let cycle = app
            .client
            .patch(
                &format!("{blocks}/{b}"),
                &owner.token,
                json!({ "parent_block_id": parent }),
            )
            .await;
        assert_eq!(
            refused_fields(&cycle),
            ["parent_block_id"],
            "parent {parent}"
        );
    }

    // Blocks of another workspace (the caller's own) are no blocks here.
    let project: Uuid = sqlx::query_scalar("SELECT project_id FROM workspaces WHERE id = $1")
        .bind(ws)
        .fetch_one(app.pool())
        .await
        .expect("project");
    let elsewhere_ws = app.client.create_workspace(&owner, project, "second").await;
    let elsewhere = create(
        &app,
        &owner.token,
        &format!("/api/v1/workspaces/{elsewhere_ws}/blocks"),
        json!({ "type": "NODE" }),
    )
    .await;
    let foreign_parent = app
        .client
        .post(
            &blocks,
            &owner.token,
            json!({ "type": "NODE", "parent_block_id": elsewhere }),
        )
        .await;
    assert_eq!(refused_fields(&foreign_parent), ["parent_block_id"]);
    let foreign_end = app
        .client
        .post(&relations, &owner.token, link(&elsewhere, &a))
        .await;
    assert_eq!(refused_fields(&foreign_end), ["source_block_id"]);

    // Nothing refused reached the document; detaching is still allowed.
    let listed = app.client.get(&relations, &owner.token).await;
    assert_eq!(ids_of(&listed.body).len(), 2);
    let detached = app
        .client
        .patch(
            &format!("{blocks}/{c}"),
            &owner.token,
            json!({ "parent_block_id": null }),
        )
        .await;
    assert_eq!(detached.status, StatusCode::OK, "{}", detached.body);
    assert_eq!(detached.body["parent_block_id"], Value::Null);
    assert_eq!(
        app.client
            .get(&format!("{blocks}/{b}"), &owner.token)
            .await
            .body["parent_block_id"],
        Value::Null
    );
    app.stop().await;
}

/// Waits until `id` is a projected row of `table`.
async fn projected(app: &nox_tests::TestApp, table: &str, id: &str) {
    let pool = app.pool().clone();
    let id: Uuid = id.parse().expect("uuid");
    let sql = format!("SELECT count(*) FROM {table} WHERE id = $1");
    eventually("the row is projected", || {
        let (pool, sql) = (pool.clone(), sql.clone());
        async move {
            sqlx::query_scalar::<_, i64>(&sql)
                .bind(id)
                .fetch_one(&pool)
                .await
                .expect("count")
                == 1
        }
    })
    .await;
}

#[tokio::test]
async fn an_id_taken_anywhere_gets_one_answer_that_does_not_say_where() {
    let (app, owner, ws) = setup().await;
    let blocks = format!("/api/v1/workspaces/{ws}/blocks");
    let relations = format!("/api/v1/workspaces/{ws}/relations");
    let project: Uuid = sqlx::query_scalar("SELECT project_id FROM workspaces WHERE id = $1")
        .bind(ws)
        .fetch_one(app.pool())
        .await
        .expect("project");
    let own_other_ws = app.client.create_workspace(&owner, project, "second").await;
    let (stranger, _, _, stranger_ws) = app.client.owner_with_workspace("stranger").await;

    let in_own_other = create(
        &app,
        &owner.token,
        &format!("/api/v1/workspaces/{own_other_ws}/blocks"),
        json!({ "type": "NODE" }),
    )
    .await;
    let stranger_blocks = format!("/api/v1/workspaces/{stranger_ws}/blocks");
    let in_other_org = create(
        &app,
        &stranger.token,
        &stranger_blocks,
        json!({ "type": "NODE" }),
    )
    .await;
    let second = create(
        &app,
        &stranger.token,
        &stranger_blocks,
        json!({ "type": "NODE" }),
    )
    .await;
    let other_org_relation = create(
        &app,
        &stranger.token,
        &format!("/api/v1/workspaces/{stranger_ws}/relations"),
        json!({ "type": "LINK", "source_block_id": in_other_org, "target_block_id": second }),
    )
    .await;
    let here = create(&app, &owner.token, &blocks, json!({ "type": "NODE" })).await;
    projected(&app, "core_blocks", &in_own_other).await;
    projected(&app, "core_blocks", &in_other_org).await;
    projected(&app, "core_relations", &other_org_relation).await;

    let mut answers = Vec::new();
    for id in [&in_own_other, &in_other_org, &here] {
        let reply = app
            .client
            .post(&blocks, &owner.token, json!({ "id": id, "type": "NODE" }))
            .await;
        assert_eq!(reply.status, StatusCode::CONFLICT, "{}", reply.body);
        answers.push(reply.body);
    }
    assert_eq!(answers[0]["error"]["code"], "id_in_use");
    assert_eq!(
        answers[0], answers[1],
        "own other workspace and another org answer alike"
    );
    assert_eq!(
        answers[0], answers[2],
        "and so does an id of this workspace"
    );

    let relation_reply = app
        .client
        .post(
            &relations,
            &owner.token,
            json!({ "id": other_org_relation, "type": "LINK", "source_block_id": here,
                    "target_block_id": Uuid::new_v4() }),
        )
        .await;
    // A taken id is refused before the ends (here: no block) are looked at.
    assert_eq!(
        relation_reply.status,
        StatusCode::CONFLICT,
        "{}",
        relation_reply.body
    );
    assert_eq!(relation_reply.body, answers[0]);

    // Nothing was written here, and the other org's row is untouched.
    let gone = app
        .client
        .get(&format!("{blocks}/{in_other_org}"), &owner.token)
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    let owner_ws: Uuid = sqlx::query_scalar("SELECT workspace_id FROM core_blocks WHERE id = $1")
        .bind(in_other_org.parse::<Uuid>().expect("uuid"))
        .fetch_one(app.pool())
        .await
        .expect("row");
    assert_eq!(owner_ws, stranger_ws);
    app.stop().await;
}

#[tokio::test]
async fn block_relation_and_lock_lists_page_by_id_with_limit_and_cursor() {
    let (app, owner, ws) = setup().await;
    let base = format!("/api/v1/workspaces/{ws}");
    let blocks = format!("{base}/blocks");
    let mut created = Vec::new();
    for _ in 0..5 {
        created.push(create(&app, &owner.token, &blocks, json!({ "type": "NODE" })).await);
    }
    created.sort();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            None => format!("{blocks}?limit=2"),
            Some(c) => format!("{blocks}?limit=2&cursor={c}"),
        };
        let page = app.client.get(&path, &owner.token).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let ids = ids_of(&page.body);
        assert!(ids.len() <= 2);
        seen.extend(ids);
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, created, "every block once, in id order");
    let whole = app.client.get(&blocks, &owner.token).await;
    assert_eq!(ids_of(&whole.body), created);
    assert_eq!(whole.body["next_cursor"], Value::Null);

    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("cursor=%21%21", "cursor"),
    ] {
        let bad = app
            .client
            .get(&format!("{blocks}?{query}"), &owner.token)
            .await;
        assert_eq!(refused_fields(&bad), [field], "{query}");
    }

    let relations = format!("{base}/relations");
    for pair in created.windows(2) {
        let body =
            json!({ "type": "LINK", "source_block_id": pair[0], "target_block_id": pair[1] });
        create(&app, &owner.token, &relations, body).await;
    }
    let first = app
        .client
        .get(&format!("{relations}?limit=3"), &owner.token)
        .await;
    assert_eq!(ids_of(&first.body).len(), 3);
    let next = first.body["next_cursor"].as_str().expect("a cursor");
    let rest = app
        .client
        .get(&format!("{relations}?limit=3&cursor={next}"), &owner.token)
        .await;
    assert_eq!(ids_of(&rest.body).len(), 1);
    assert_eq!(rest.body["next_cursor"], Value::Null);

    let mut locker = nox_tests::WsClient::new(app.addr, ws, &owner.token);
    locker.connect_with("&locks=1").await;
    locker.sync().await;
    for id in &created[..2] {
        locker
            .send_stateless(
                json!({ "type": "lock.acquire", "resource_type": "BLOCK", "resource_id": id }),
            )
            .await;
    }
    locker
        .pump_until(|c| c.events("lock.granted").len() == 2)
        .await;
    let locks = format!("{base}/locks");
    let first = app
        .client
        .get(&format!("{locks}?limit=1"), &owner.token)
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let next = first.body["next_cursor"].as_str().expect("a cursor");
    let second = app
        .client
        .get(&format!("{locks}?limit=1&cursor={next}"), &owner.token)
        .await;
    let mut locked: Vec<String> = [&first, &second]
        .iter()
        .map(|page| {
            page.body["items"][0]["resource_id"]
                .as_str()
                .expect("lock")
                .to_owned()
        })
        .collect();
    locked.sort();
    assert_eq!(locked, created[..2]);
    assert_eq!(second.body["next_cursor"], Value::Null);
    app.stop().await;
}
