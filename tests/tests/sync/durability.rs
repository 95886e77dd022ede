//! What is acknowledged is stored: the log before broadcast, restarts, compaction, imports, unload.

use nox_persistence::{cluster, update_log};
use nox_sync_protocol::canvas;
use serde_json::json;
use uuid::Uuid;
use yrs::updates::decoder::Decode;
use yrs::{Doc, Transact, Update};

use crate::{block, client, eventually, id, setup, setup_with};

/// The document exactly as storage holds it (snapshot + log), read without the server.
pub(crate) async fn stored_doc(pool: &sqlx::PgPool, workspace_id: Uuid) -> Doc {
    let stored = update_log::load(pool, workspace_id).await.expect("load");
    let doc = canvas::new_canvas_doc();
    {
        let mut txn = doc.transact_mut();
        let entries = stored
            .snapshot
            .iter()
            .chain(stored.log.iter().map(|(_, b)| b));
        for bytes in entries {
            txn.apply_update(Update::decode_v1(bytes).expect("stored update decodes"))
                .expect("apply");
        }
    }
    doc
}

/// [`stored_doc`]'s canvas as JSON.
pub(crate) async fn stored_canvas(pool: &sqlx::PgPool, workspace_id: Uuid) -> serde_json::Value {
    let doc = stored_doc(pool, workspace_id).await;
    let canvas = canvas::read_canvas(&doc.transact());
    serde_json::to_value(canvas).expect("json")
}

#[tokio::test]
async fn an_update_is_stored_before_any_peer_sees_it() {
    // Slow compaction so the update is still in the log, not only in a snapshot.
    let (app, owner, ws) = setup_with(|c| c.compact_interval_ms = 60_000).await;
    let mut a = client(&app, &owner, ws).await;
    let mut b = client(&app, &owner, ws).await;
    for i in 0..5 {
        let block_id = id();
        a.put_block(&block_id, block(&format!("durable {i}"))).await;
        b.pump_until(|c| c.canvas_json()["blocks"].get(&block_id).is_some())
            .await;
        // B has it, so storage must have it already: no waiting here.
        let stored = stored_canvas(app.pool(), ws).await;
        assert!(
            stored["blocks"].get(&block_id).is_some(),
            "block {i} was broadcast before it was stored"
        );
    }
    let users: Vec<Option<Uuid>> =
        sqlx::query_scalar("SELECT user_id FROM workspace_update_log WHERE workspace_id = $1")
            .bind(ws)
            .fetch_all(app.pool())
            .await
            .expect("log rows");
    assert!(!users.is_empty());
    assert!(
        users.iter().all(|u| *u == Some(owner.user_id)),
        "the log records who sent each update"
    );
    app.stop().await;
}

#[tokio::test]
async fn content_survives_a_restart() {
    let (app, owner, ws) = setup().await;
    let mut a = client(&app, &owner, ws).await;
    let (x, y) = (id(), id());
    a.put_block(&x, block("x")).await;
    a.put_block(
        &y,
        json!({ "type": "NOTE", "name": "y", "parent_block_id": x }),
    )
    .await;
    a.put_relation(
        &id(),
        json!({ "source_block_id": x, "target_block_id": y, "type": "LINK" }),
    )
    .await;
    a.put_block(&x, json!({ "config": { "color": "red" } }))
        .await;
    let mut b = client(&app, &owner, ws).await;
    b.pump_until(|c| c.canvas_json()["blocks"][&x]["config"]["color"] == "red")
        .await;
    let before = a.canvas_json();
    a.disconnect().await;
    b.disconnect().await;

    let app = app.restart().await;
    let fresh = client(&app, &owner, ws).await;
    assert_eq!(fresh.canvas_json(), before);
    app.stop().await;
}

#[tokio::test]
async fn compaction_folds_the_log_into_a_snapshot() {
    let (app, owner, ws) = setup().await;
    let mut a = client(&app, &owner, ws).await;
    for i in 0..10 {
        a.put_block(&id(), block(&format!("b{i}"))).await;
    }
    a.settle().await;
    let pool = app.pool().clone();
    eventually("the log is compacted", || {
        let pool = pool.clone();
        async move {
            update_log::pending_entries(&pool, ws)
                .await
                .expect("pending")
                == 0
                && sqlx::query_scalar::<_, i64>(
                    "SELECT count(*) FROM workspace_update_log WHERE workspace_id = $1",
                )
                .bind(ws)
                .fetch_one(&pool)
                .await
                .expect("count")
                    == 0
        }
    })
    .await;
    let covers: i64 =
        sqlx::query_scalar("SELECT covers_seq FROM workspace_snapshots WHERE workspace_id = $1")
            .bind(ws)
            .fetch_one(app.pool())
            .await
            .expect("snapshot");
    assert!(
        covers >= 10,
        "the snapshot covers every update (covers_seq {covers})"
    );
    assert_eq!(stored_canvas(app.pool(), ws).await, a.canvas_json());
    app.stop().await;
}

#[tokio::test]
async fn imported_rows_are_built_into_the_document_once() {
    let (app, owner, ws) = setup().await;
    let (parent, child) = (Uuid::new_v4(), Uuid::new_v4());
    sqlx::query(
        "INSERT INTO core_blocks (id, workspace_id, parent_block_id, type, name, config)
         VALUES ($1, $3, NULL, 'GROUP', 'imported parent', '{\"k\": 1}'),
                ($2, $3, $1, 'NODE', 'imported child', '{}')",
    )
    .bind(parent)
    .bind(child)
    .bind(ws)
    .execute(app.pool())
    .await
    .expect("import blocks");
    sqlx::query(
        "INSERT INTO core_relations (workspace_id, source_block_id, target_block_id, type)
         VALUES ($1, $2, $3, 'CONTAINS')",
    )
    .bind(ws)
    .bind(parent)
    .bind(child)
    .execute(app.pool())
    .await
    .expect("import relation");

    let c = client(&app, &owner, ws).await;
    let canvas = c.canvas_json();
    assert_eq!(
        canvas["blocks"][parent.to_string()]["name"],
        "imported parent"
    );
    assert_eq!(
        canvas["blocks"][child.to_string()]["parent_block_id"],
        parent.to_string()
    );
    assert_eq!(canvas["blocks"][parent.to_string()]["config"]["k"], 1);
    assert_eq!(canvas["relations"].as_object().map(|r| r.len()), Some(1));
    let snapshots: i64 =
        sqlx::query_scalar("SELECT count(*) FROM workspace_snapshots WHERE workspace_id = $1")
            .bind(ws)
            .fetch_one(app.pool())
            .await
            .expect("count");
    assert_eq!(snapshots, 1, "the built document is stored at once");
    app.stop().await;
}

#[tokio::test]
async fn idle_rooms_unload_and_reload_from_storage() {
    let (app, owner, ws) = setup_with(|c| c.room_idle_secs = 1).await;
    let block_id = id();
    {
        let mut a = client(&app, &owner, ws).await;
        a.put_block(&block_id, block("kept")).await;
        a.settle().await;
        a.disconnect().await;
    }
    let metrics_url = format!("http://{}/metrics", app.addr);
    eventually("the idle room unloads", || {
        let url = metrics_url.clone();
        async move {
            let text = reqwest::get(url)
                .await
                .expect("metrics")
                .text()
                .await
                .expect("text");
            text.contains("nox_rooms_loaded 0")
        }
    })
    .await;
    let c = client(&app, &owner, ws).await;
    assert_eq!(c.canvas_json()["blocks"][&block_id]["name"], "kept");
    app.stop().await;
}

#[tokio::test]
async fn graceful_shutdown_compacts_and_closes_with_1012() {
    // Compaction would never run on its own during this test.
    let (app, owner, ws) = setup_with(|c| c.compact_interval_ms = 600_000).await;
    let mut a = client(&app, &owner, ws).await;
    for i in 0..3 {
        a.put_block(&id(), block(&format!("s{i}"))).await;
    }
    a.settle().await;
    let pool = app.pool().clone();
    let stopping = tokio::spawn(app.stop());
    let closed = a.wait_closed().await;
    assert_eq!(closed.code, 1012);
    stopping.await.expect("stopped");
    let log: i64 =
        sqlx::query_scalar("SELECT count(*) FROM workspace_update_log WHERE workspace_id = $1")
            .bind(ws)
            .fetch_one(&pool)
            .await
            .expect("log");
    assert_eq!(log, 0, "shutdown folded the log into the snapshot");
    assert_eq!(stored_canvas(&pool, ws).await, a.canvas_json());
    let rows: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM core_blocks WHERE workspace_id = $1 AND deleted_at IS NULL",
    )
    .bind(ws)
    .fetch_one(&pool)
    .await
    .expect("rows");
    assert_eq!(rows, 3, "and projected it");
}

/// After a graceful restart storage holds one snapshot and no log: a cold room answers joiners with
/// those bytes while it builds the document. Edits, HTTP reads and greetings that arrive meanwhile
/// wait for the built room and are neither lost nor reordered.
#[tokio::test]
async fn a_cold_room_serves_its_snapshot_and_takes_what_arrives_while_it_loads() {
    let (app, owner, ws) = setup().await;
    let mut a = client(&app, &owner, ws).await;
    for i in 0..300 {
        a.put_block(&id(), block(&format!("block {i}"))).await;
    }
    a.settle().await;
    let before = a.canvas_json();
    a.disconnect().await;

    let app = app.restart().await;
    let pending = update_log::pending_entries(app.pool(), ws)
        .await
        .expect("pending");
    assert_eq!(pending, 0, "a graceful restart leaves only the snapshot");
    let stored = update_log::load(app.pool(), ws).await.expect("load");
    assert!(stored.snapshot.is_some() && stored.log.is_empty());

    // Joiners and an HTTP read race the load; one joiner brings an edit made offline.
    let late = id();
    let mut offline = nox_tests::WsClient::new(app.addr, ws, &owner.token);
    offline.put_block(&late, block("made offline")).await;
    let mut fresh = nox_tests::WsClient::new(app.addr, ws, &owner.token);
    let blocks_path = format!("/api/v1/workspaces/{ws}/blocks?limit=1000");
    let (_, _, listed) = tokio::join!(
        fresh.connect(),
        offline.connect_with("&acks=1"),
        app.client.get(&blocks_path, &owner.token)
    );
    assert_eq!(listed.status, reqwest::StatusCode::OK, "{}", listed.body);
    let listed_count = listed.body["items"]
        .as_array()
        .map(Vec::len)
        .expect("a list of blocks");
    assert!(
        listed_count >= 300,
        "the HTTP read saw the loaded document, got {listed_count} blocks"
    );
    assert_eq!(
        fresh.canvas_json()["blocks"].as_object().map(|b| b.len()),
        before["blocks"].as_object().map(|b| b.len()),
        "the fresh joiner holds the complete stored document"
    );

    // The offline edit goes up in answer to the built room's SyncStep1, and comes back acked.
    tokio::join!(
        fresh.pump_until(|c| c.canvas_json()["blocks"].get(&late).is_some()),
        offline.pump_until(|c| c.acks >= 1)
    );
    offline.disconnect().await;
    fresh.disconnect().await;
    let stored = stored_canvas(app.pool(), ws).await;
    assert_eq!(stored["blocks"][&late]["name"], "made offline");
    app.stop().await;
}

/// `count` more workspaces in the project of `ws`, created directly as rows.
async fn sibling_workspaces(pool: &sqlx::PgPool, ws: Uuid, count: i32) -> Vec<Uuid> {
    sqlx::query_scalar(
        "INSERT INTO workspaces (project_id, name, type, created_by)
         SELECT project_id, 'sibling ' || g, type, created_by
         FROM workspaces, generate_series(1, $2) AS g WHERE id = $1
         RETURNING id",
    )
    .bind(ws)
    .bind(count)
    .fetch_all(pool)
    .await
    .expect("workspaces")
}

/// Leases of the workspaces for a node of the test's own (registered with a fresh heartbeat).
async fn leases(pool: &sqlx::PgPool, workspaces: &[Uuid]) -> Vec<cluster::Lease> {
    let node = cluster::NodeInfo {
        id: Uuid::new_v4(),
        addr: "127.0.0.1:1".into(),
    };
    cluster::register_node(pool, &node).await.expect("node");
    let mut leases = Vec::new();
    for ws in workspaces {
        let ttl = std::time::Duration::from_secs(60);
        match cluster::acquire_lease(pool, *ws, node.id, ttl).await {
            Ok(cluster::LeaseOutcome::Acquired(lease)) => leases.push(lease),
            other => panic!("no lease for {ws}: {other:?}"),
        }
    }
    leases
}

fn log_entry(seq: i64, tag: u8) -> update_log::NewLogEntry {
    update_log::NewLogEntry {
        seq,
        update: vec![tag],
        user_id: None,
    }
}

#[tokio::test]
async fn batches_of_many_rooms_that_arrive_together_share_one_commit() {
    let (app, _owner, ws) = setup().await;
    let workspaces = sibling_workspaces(app.pool(), ws, 20).await;
    let metrics = nox_server::metrics::Metrics::new();
    let db = nox_persistence::db::Database::from_pool(app.pool().clone());
    let writer = nox_server::rooms::LogWriter::spawn(db, metrics.clone());

    let leases = leases(app.pool(), &workspaces).await;
    // All 20 hand-overs happen in one poll of this (single-threaded) test, before the writer runs.
    let appends = leases.iter().enumerate().map(|(i, lease)| {
        let entries = vec![log_entry(1, i as u8), log_entry(2, i as u8)];
        writer.append(*lease, entries)
    });
    let results = futures_util::future::join_all(appends).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");

    assert_eq!(metrics.log_commit_workspaces.get_sample_count(), 1);
    assert_eq!(metrics.log_commit_workspaces.get_sample_sum(), 20.0);
    for (i, ws) in workspaces.iter().enumerate() {
        let stored = update_log::load(app.pool(), *ws).await.expect("load");
        assert_eq!(stored.log, vec![(1, vec![i as u8]), (2, vec![i as u8])]);
    }
    app.stop().await;
}

#[tokio::test]
async fn a_room_whose_batch_is_refused_does_not_fail_the_others_in_its_commit() {
    let (app, _owner, ws) = setup().await;
    let workspaces = sibling_workspaces(app.pool(), ws, 3).await;
    let db = nox_persistence::db::Database::from_pool(app.pool().clone());
    let writer = nox_server::rooms::LogWriter::spawn(db, nox_server::metrics::Metrics::new());
    let leases = leases(app.pool(), &workspaces).await;
    // The middle workspace already holds seq 1: its batch breaks the shared statement.
    update_log::append(app.pool(), &leases[1], &[log_entry(1, 9)])
        .await
        .expect("first entry");

    let appends = leases
        .iter()
        .map(|lease| writer.append(*lease, vec![log_entry(1, 7)]));
    let results = futures_util::future::join_all(appends).await;
    assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
    assert!(results[1].is_err(), "the conflicting batch must fail");
    for (ws, expected) in [(0, 7u8), (1, 9), (2, 7)] {
        let stored = update_log::load(app.pool(), workspaces[ws])
            .await
            .expect("load");
        assert_eq!(stored.log, vec![(1, vec![expected])]);
    }
    app.stop().await;
}
