//! The relational projection follows the document, and resolves what the tables forbid.

use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

use nox_tests::WsClient;

use crate::{block, client, eventually, setup};

type BlockRow = (String, String, Option<Uuid>, serde_json::Value, bool);

async fn block_row(pool: &PgPool, id: Uuid) -> Option<BlockRow> {
    sqlx::query_as(
        "SELECT type, name, parent_block_id, config, deleted_at IS NOT NULL FROM core_blocks WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
    .expect("block row")
}

async fn live_relations(pool: &PgPool, workspace_id: Uuid) -> Vec<Uuid> {
    sqlx::query_scalar(
        "SELECT id FROM core_relations WHERE workspace_id = $1 AND deleted_at IS NULL ORDER BY id",
    )
    .bind(workspace_id)
    .fetch_all(pool)
    .await
    .expect("relations")
}

/// Waits until everything `writer` sent is durable and compacted into the projection.
async fn compacted(writer: &mut WsClient, pool: &PgPool, workspace_id: Uuid) {
    writer.settle().await;
    let pool = pool.clone();
    eventually("compaction caught up", || {
        let pool = pool.clone();
        async move {
            nox_persistence::update_log::pending_entries(&pool, workspace_id)
                .await
                .expect("pending")
                == 0
        }
    })
    .await;
}

fn sorted(mut ids: Vec<Uuid>) -> Vec<Uuid> {
    ids.sort();
    ids
}

#[tokio::test]
async fn rows_follow_the_document() {
    let (app, owner, ws) = setup().await;
    let mut a = client(&app, &owner, ws).await;
    let [p, c] = [Uuid::new_v4(), Uuid::new_v4()];
    a.put_block(&p.to_string(), block("parent")).await;
    a.put_block(
        &c.to_string(),
        json!({ "type": "NOTE", "name": "child", "parent_block_id": p.to_string(), "config": { "size": 3 } }),
    )
    .await;
    let rel = Uuid::new_v4();
    a.put_relation(
        &rel.to_string(),
        json!({ "source_block_id": p.to_string(), "target_block_id": c.to_string(), "type": "LINK", "rules": { "max": 1 } }),
    )
    .await;
    compacted(&mut a, app.pool(), ws).await;
    let child = block_row(app.pool(), c).await.expect("child row");
    assert_eq!(
        (child.0.as_str(), child.1.as_str(), child.2),
        ("NOTE", "child", Some(p))
    );
    assert_eq!(child.3, json!({ "size": 3 }));
    assert_eq!(live_relations(app.pool(), ws).await, vec![rel]);

    // Edit, remove, re-add: only what changed is written, removal is a soft delete.
    a.put_block(&c.to_string(), json!({ "name": "renamed" }))
        .await;
    a.remove_block(&p.to_string()).await;
    compacted(&mut a, app.pool(), ws).await;
    eventually("parent soft-deleted", || async {
        block_row(app.pool(), p).await.map(|r| r.4) == Some(true)
    })
    .await;
    let child = block_row(app.pool(), c).await.expect("child row");
    assert_eq!(child.1, "renamed");
    assert_eq!(child.2, None, "a deleted parent projects as NULL");
    assert!(
        live_relations(app.pool(), ws).await.is_empty(),
        "relation to a removed block is not live"
    );

    a.put_block(&p.to_string(), block("parent again")).await;
    eventually("parent restored", || async {
        block_row(app.pool(), p).await.map(|r| (r.1, r.4)) == Some(("parent again".into(), false))
    })
    .await;
    app.stop().await;
}

#[tokio::test]
async fn conflicts_are_resolved_deterministically_and_counted() {
    let (app, owner, ws) = setup().await;
    let mut a = client(&app, &owner, ws).await;
    let mut ids: Vec<Uuid> = (0..4).map(|_| Uuid::new_v4()).collect();
    ids.sort();
    let [x, y, z, w] = [ids[0], ids[1], ids[2], ids[3]];
    // A parent cycle x → y → x, a duplicate (source, target) pair, a dangling relation, and
    // an entity whose id is not a UUID.
    a.put_block(
        &x.to_string(),
        json!({ "type": "NODE", "name": "x", "parent_block_id": y.to_string() }),
    )
    .await;
    a.put_block(
        &y.to_string(),
        json!({ "type": "NODE", "name": "y", "parent_block_id": x.to_string() }),
    )
    .await;
    a.put_block(&z.to_string(), json!({ "type": "NODE", "name": "z" }))
        .await;
    a.put_block("not-a-uuid", json!({ "type": "NODE", "name": "bad id" }))
        .await;
    a.put_block(&w.to_string(), json!({ "name": "no type" }))
        .await;
    let mut rels: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
    rels.sort();
    for r in &rels[..2] {
        a.put_relation(&r.to_string(), json!({ "source_block_id": x.to_string(), "target_block_id": z.to_string(), "type": "LINK" })).await;
    }
    a.put_relation(
        &rels[2].to_string(),
        json!({ "source_block_id": z.to_string(), "target_block_id": Uuid::new_v4().to_string(), "type": "LINK" }),
    )
    .await;
    compacted(&mut a, app.pool(), ws).await;

    let (rx, ry) = (
        block_row(app.pool(), x).await.expect("x"),
        block_row(app.pool(), y).await.expect("y"),
    );
    assert_eq!(rx.2, None, "the cycle is broken at its smallest id");
    assert_eq!(ry.2, Some(x));
    assert!(
        block_row(app.pool(), w).await.is_none(),
        "a block without a type is not projected"
    );
    assert_eq!(
        sorted(live_relations(app.pool(), ws).await),
        vec![rels[0]],
        "the smallest duplicate stays live"
    );

    let (count, conflicts): (i32, serde_json::Value) = sqlx::query_as(
        "SELECT conflict_count, conflicts FROM workspace_projection_status WHERE workspace_id = $1",
    )
    .bind(ws)
    .fetch_one(app.pool())
    .await
    .expect("status");
    let kinds: Vec<&str> = conflicts
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|c| c["kind"].as_str())
        .collect();
    for kind in [
        "parent_cycle",
        "duplicate_relation",
        "dangling_relation",
        "invalid_id",
        "missing_type",
    ] {
        assert!(kinds.contains(&kind), "missing {kind} in {conflicts}");
    }
    assert_eq!(count as usize, kinds.len());
    let metrics = reqwest::get(format!("http://{}/metrics", app.addr))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("nox_projection_conflicts{kind=\"parent_cycle\"} 1"),
        "{metrics}"
    );
    // Nothing was removed from the document.
    assert_eq!(a.block_count(), 5);
    app.stop().await;
}

#[tokio::test]
async fn a_block_id_of_another_workspace_never_touches_its_row() {
    let (app, owner, ws) = setup().await;
    let (victim, _, _, victim_ws) = app.client.owner_with_workspace("victim").await;
    let mut v = client(&app, &victim, victim_ws).await;
    let shared = Uuid::new_v4();
    v.put_block(&shared.to_string(), block("victim's block"))
        .await;
    compacted(&mut v, app.pool(), victim_ws).await;
    eventually("victim row", || async {
        block_row(app.pool(), shared).await.is_some()
    })
    .await;

    // The attacker reuses the id in their own workspace.
    let mut a = client(&app, &owner, ws).await;
    a.put_block(&shared.to_string(), block("hijacked")).await;
    compacted(&mut a, app.pool(), ws).await;
    let row = block_row(app.pool(), shared).await.expect("row");
    assert_eq!(row.1, "victim's block");
    let owner_ws: Uuid = sqlx::query_scalar("SELECT workspace_id FROM core_blocks WHERE id = $1")
        .bind(shared)
        .fetch_one(app.pool())
        .await
        .expect("owner");
    assert_eq!(owner_ws, victim_ws);
    app.stop().await;
}

/// A block deleted over HTTP takes its subtree and their relations along (the seed's `ON DELETE
/// CASCADE`): the rows follow, with no child left pointing at a deleted parent and no conflict.
#[tokio::test]
async fn an_http_delete_cascades_into_the_rows_without_conflicts() {
    let (app, owner, ws) = setup().await;
    let blocks = format!("/api/v1/workspaces/{ws}/blocks");
    let post = |body: serde_json::Value| {
        let (app, blocks, token) = (&app, blocks.clone(), owner.token.clone());
        async move {
            let reply = app.client.post(&blocks, &token, body).await;
            assert_eq!(reply.status, reqwest::StatusCode::CREATED, "{}", reply.body);
            reply.id()
        }
    };
    let parent = post(json!({ "type": "NODE" })).await;
    let child = post(json!({ "type": "NODE", "parent_block_id": parent })).await;
    let other = post(json!({ "type": "NODE" })).await;
    let relation = app
        .client
        .post(
            &format!("/api/v1/workspaces/{ws}/relations"),
            &owner.token,
            json!({ "type": "LINK", "source_block_id": other, "target_block_id": child }),
        )
        .await
        .id();
    eventually("the rows are projected", || async {
        live_relations(app.pool(), ws).await == vec![relation]
    })
    .await;

    let deleted = app
        .client
        .delete(&format!("{blocks}/{parent}"), &owner.token)
        .await;
    assert_eq!(deleted.status, reqwest::StatusCode::NO_CONTENT);
    eventually("the subtree is soft-deleted", || async {
        block_row(app.pool(), child).await.map(|r| r.4) == Some(true)
            && block_row(app.pool(), parent).await.map(|r| r.4) == Some(true)
    })
    .await;
    assert!(live_relations(app.pool(), ws).await.is_empty());
    assert_eq!(block_row(app.pool(), other).await.map(|r| r.4), Some(false));
    let conflicts: i32 = sqlx::query_scalar(
        "SELECT conflict_count FROM workspace_projection_status WHERE workspace_id = $1",
    )
    .bind(ws)
    .fetch_one(app.pool())
    .await
    .expect("status");
    assert_eq!(conflicts, 0, "nothing for the projection to repair");
    app.stop().await;
}
