//! The warehouse seen live (docs/design.md §17): a template inserted over HTTP appears in a stock
//! client's document at once and in the rows after compaction; the projection keeps only the
//! organization's own templates and invader definitions, and only configs their schemas accept.

use nox_tests::warehouse::simple_structure;
use nox_tests::{TestApp, WsClient};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

use crate::{client, eventually, id, setup};

async fn org_of(pool: &PgPool, workspace: Uuid) -> Uuid {
    sqlx::query_scalar(
        "SELECT p.org_id FROM workspaces w JOIN projects p ON p.id = w.project_id WHERE w.id = $1",
    )
    .bind(workspace)
    .fetch_one(pool)
    .await
    .expect("org")
}

/// Waits until everything `writer` sent is durable and compacted into the projection.
async fn compacted(writer: &mut WsClient, app: &TestApp, workspace_id: Uuid) {
    writer.settle().await;
    let pool = app.pool().clone();
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

#[tokio::test]
async fn an_inserted_template_appears_live_and_in_the_rows() {
    let (app, owner, ws) = setup().await;
    let org = org_of(app.pool(), ws).await;
    let warehouse = app.client.create_warehouse(&owner, org).await;
    // An editor draws a group with a child and a link, over the socket.
    let mut editor = client(&app, &owner, ws).await;
    let (group, child) = (id(), id());
    editor
        .put_block(
            &group,
            json!({"type": "GROUP", "name": "card", "visual": {"x": 40, "y": 40}}),
        )
        .await;
    editor
        .put_block(
            &child,
            json!({"type": "NODE", "name": "label", "parent_block_id": group,
                   "visual": {"x": 50, "y": 60}}),
        )
        .await;
    editor
        .put_relation(
            &id(),
            json!({"type": "CONTAINS", "source_block_id": group, "target_block_id": child}),
        )
        .await;
    editor.settle().await;

    let saved = app
        .client
        .post(
            &format!("/api/v1/warehouses/{warehouse}/templates/from-selection"),
            &owner.token,
            json!({"workspace_id": ws, "block_ids": [group], "name": "card"}),
        )
        .await;
    assert_eq!(saved.status, StatusCode::CREATED, "{}", saved.body);
    let template = saved.id();

    // A second stock client watches while the template is inserted over HTTP.
    let mut watcher = client(&app, &owner, ws).await;
    assert_eq!(watcher.block_count(), 2);
    let inserted = app
        .client
        .post(
            &format!("/api/v1/workspaces/{ws}/templates/{template}/instantiate"),
            &owner.token,
            json!({"x": 400, "y": 300}),
        )
        .await;
    assert_eq!(inserted.status, StatusCode::CREATED, "{}", inserted.body);
    let new_ids: Vec<String> = inserted.body["block_ids"]
        .as_array()
        .expect("ids")
        .iter()
        .map(|v| v.as_str().expect("id").to_string())
        .collect();
    watcher.pump_until(|c| c.block_count() == 4).await;
    editor.pump_until(|c| c.block_count() == 4).await;
    let doc = watcher.canvas_json();
    for new in &new_ids {
        assert_eq!(doc["blocks"][new]["origin_asset_id"], template.to_string());
    }
    let copy_of_group = new_ids
        .iter()
        .find(|i| doc["blocks"][*i]["type"] == "GROUP")
        .expect("group copy");
    assert_eq!(doc["blocks"][copy_of_group]["visual"]["x"], 400);
    assert_eq!(editor.canvas_json(), doc, "both clients converge");

    // The projection accepts the organization's own template as origin.
    let pool = app.pool().clone();
    eventually("the copies are projected with their origin", || {
        let pool = pool.clone();
        async move {
            let n: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM core_blocks WHERE origin_asset_id = $1 AND deleted_at IS NULL",
            )
            .bind(template)
            .fetch_one(&pool)
            .await
            .expect("count");
            n == 2
        }
    })
    .await;
    let relations: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM core_relations WHERE workspace_id = $1")
            .bind(ws)
            .fetch_one(app.pool())
            .await
            .expect("relations");
    assert_eq!(relations, 2);
}

#[tokio::test]
async fn the_projection_keeps_only_own_assets_and_valid_configs() {
    let (app, owner, ws) = setup().await;
    let c = &app.client;
    let schema = json!({"type": "object", "required": ["times"],
                        "properties": {"times": {"type": "integer", "minimum": 1}}});
    let org = org_of(app.pool(), ws).await;
    let warehouse = c.create_warehouse(&owner, org).await;
    let own_invader = c
        .create_invader(&owner, warehouse, "retry", schema.clone())
        .await;
    let own_template = c
        .create_template(&owner, warehouse, simple_structure(1))
        .await;
    let (other, other_org, _, _) = c.owner_with_workspace("other").await;
    let other_warehouse = c.create_warehouse(&other, other_org).await;
    let other_invader = c
        .create_invader(&other, other_warehouse, "retry", schema)
        .await;
    let other_template = c
        .create_template(&other, other_warehouse, simple_structure(1))
        .await;

    // An editor's socket writes cannot be refused: it names foreign assets and a bad config.
    let mut editor = client(&app, &owner, ws).await;
    let usage =
        |times: i64| json!({"applied_version": "1.0.0", "config_snapshot": {"times": times}});
    let (x, y, z) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let mut invaders = serde_json::Map::new();
    invaders.insert(other_invader.to_string(), usage(2));
    invaders.insert(own_invader.to_string(), usage(2));
    editor
        .put_block(
            &x.to_string(),
            json!({"type": "NODE", "origin_asset_id": other_template, "invaders": invaders}),
        )
        .await;
    editor
        .put_block(
            &y.to_string(),
            json!({"type": "NODE", "invaders": { own_invader.to_string(): usage(0) }}),
        )
        .await;
    editor
        .put_block(
            &z.to_string(),
            json!({"type": "NODE", "origin_asset_id": own_template}),
        )
        .await;
    compacted(&mut editor, &app, ws).await;

    let origin = |block: Uuid| {
        let pool = app.pool().clone();
        async move {
            sqlx::query_scalar::<_, Option<Uuid>>(
                "SELECT origin_asset_id FROM core_blocks WHERE id = $1",
            )
            .bind(block)
            .fetch_one(&pool)
            .await
            .expect("block row")
        }
    };
    assert_eq!(
        origin(x).await,
        None,
        "another organization's template is dropped"
    );
    assert_eq!(origin(z).await, Some(own_template));
    let usages: Vec<(Uuid, Uuid)> = sqlx::query_as(
        "SELECT block_id, invader_asset_id FROM block_invader_usages
         WHERE block_id = ANY($1) ORDER BY block_id",
    )
    .bind(vec![x, y, z])
    .fetch_all(app.pool())
    .await
    .expect("usages");
    assert_eq!(
        usages,
        vec![(x, own_invader)],
        "only the own, valid usage is projected"
    );

    let conflicts: Value = sqlx::query_scalar(
        "SELECT conflicts FROM workspace_projection_status WHERE workspace_id = $1",
    )
    .bind(ws)
    .fetch_one(app.pool())
    .await
    .expect("status");
    let found = |id: &str, kind: &str| {
        conflicts
            .as_array()
            .expect("conflicts")
            .iter()
            .any(|c| c["id"].as_str().is_some_and(|i| i.contains(id)) && c["kind"] == kind)
    };
    assert!(
        found(&format!("{x}/{other_invader}"), "unknown_reference"),
        "{conflicts}"
    );
    assert!(found(&x.to_string(), "unknown_reference"), "{conflicts}");
    assert!(
        found(&format!("{y}/{own_invader}"), "invalid_value"),
        "{conflicts}"
    );

    // Fixing the config in the document fixes the row at the next projection.
    editor
        .put_block(
            &y.to_string(),
            json!({"invaders": { own_invader.to_string(): usage(5) }}),
        )
        .await;
    compacted(&mut editor, &app, ws).await;
    let fixed: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM block_invader_usages WHERE block_id = $1 AND invader_asset_id = $2",
    )
    .bind(y)
    .bind(own_invader)
    .fetch_one(app.pool())
    .await
    .expect("count");
    assert_eq!(fixed, 1);
}
