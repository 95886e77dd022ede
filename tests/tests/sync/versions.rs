//! Version history (issue 14): named and automatic versions, diffs, restore as a live forward
//! change that survives a restart, retention, and tenancy.

use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::{block, client, eventually, id, member_with_role, setup_with};
use nox_tests::{Session, TestApp};

/// A server whose automatic versions are off unless a test turns them on.
async fn setup_manual() -> (TestApp, Session, Uuid) {
    setup_with(|c| c.auto_version_secs = 0).await
}

async fn named_version(app: &TestApp, who: &Session, ws: Uuid, name: &str) -> Value {
    let reply = app
        .client
        .post(
            &format!("/api/v1/workspaces/{ws}/versions"),
            &who.token,
            json!({ "name": name, "description": format!("{name} description") }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.body
}

/// Asks to restore version `version_id` of workspace `ws`, as `who`.
async fn restore(
    app: &TestApp,
    who: &Session,
    ws: Uuid,
    version_id: impl std::fmt::Display,
) -> nox_tests::http::Reply {
    app.client
        .post(
            &format!("/api/v1/workspaces/{ws}/versions/{version_id}/restore"),
            &who.token,
            json!({}),
        )
        .await
}

/// The workspace's automatic versions, newest first (the first page of the list).
async fn automatic_versions(app: &TestApp, who: &Session, ws: Uuid) -> Vec<Value> {
    let listed = app
        .client
        .get(&format!("/api/v1/workspaces/{ws}/versions"), &who.token)
        .await;
    listed.body["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter(|v| v["kind"] == "auto")
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until the workspace has `n` automatic versions.
async fn until_automatic_versions(app: &TestApp, who: &Session, ws: Uuid, n: usize) {
    eventually(&format!("{n} automatic versions"), || async move {
        automatic_versions(app, who, ws).await.len() == n
    })
    .await;
}

fn ids(entities: &Value) -> Vec<String> {
    let mut ids: Vec<String> = entities
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|e| e["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

#[tokio::test]
async fn named_versions_are_listed_read_and_diffed_field_by_field() {
    let (app, owner, ws) = setup_manual().await;
    let mut editor = client(&app, &owner, ws).await;
    let (a, b, c, r) = (id(), id(), id(), id());
    editor.put_block(&a, block("A")).await;
    editor.put_block(&b, block("B")).await;
    editor
        .put_relation(
            &r,
            json!({ "source_block_id": a, "target_block_id": b, "type": "LINK" }),
        )
        .await;
    editor.settle().await;
    let v1 = named_version(&app, &owner, ws, "first").await;
    assert_eq!(v1["kind"], "named");
    assert_eq!(v1["block_count"], 2);
    assert_eq!(v1["relation_count"], 1);
    assert_eq!(v1["created_by"], owner.user_id.to_string());
    assert_eq!(v1["description"], "first description");
    assert!(v1["size_bytes"].as_i64().unwrap_or(0) > 0);
    let stored = v1["stored_bytes"].as_i64().unwrap_or(0);
    assert!(stored > 0 && stored <= v1["size_bytes"].as_i64().unwrap_or(0) + 8);
    let v1_id = v1["id"].as_str().expect("id").to_string();

    editor
        .put_block(
            &a,
            json!({ "name": "A renamed", "visual": { "x": 99, "y": 20 } }),
        )
        .await;
    editor.remove_block(&b).await;
    editor.put_block(&c, block("C")).await;
    editor.settle().await;
    let v2 = named_version(&app, &owner, ws, "second").await;
    let v2_id = v2["id"].as_str().expect("id").to_string();
    let base = format!("/api/v1/workspaces/{ws}/versions");

    // Newest first, paginated.
    let page = app
        .client
        .get(&format!("{base}?limit=1"), &owner.token)
        .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_eq!(page.body["items"][0]["id"], v2_id.as_str());
    let cursor = page.body["next_cursor"].as_str().expect("a second page");
    let next = app
        .client
        .get(&format!("{base}?limit=1&cursor={cursor}"), &owner.token)
        .await;
    assert_eq!(next.body["items"][0]["id"], v1_id.as_str());
    assert_eq!(next.body["next_cursor"], Value::Null);

    let meta = app
        .client
        .get(&format!("{base}/{v1_id}"), &owner.token)
        .await;
    assert_eq!(meta.status, StatusCode::OK);
    assert_eq!(meta.body["name"], "first");
    assert_eq!(meta.body["block_count"], 2);

    // The version's canvas is what it was, whatever happened since.
    let canvas = app
        .client
        .get(&format!("{base}/{v1_id}/canvas"), &owner.token)
        .await;
    assert_eq!(canvas.status, StatusCode::OK, "{}", canvas.body);
    assert_eq!(
        ids(&canvas.body["blocks"]),
        sorted(vec![a.clone(), b.clone()])
    );
    let a_then = canvas.body["blocks"]
        .as_array()
        .and_then(|bs| bs.iter().find(|x| x["id"] == a.as_str()))
        .expect("block a");
    assert_eq!(a_then["name"], "A");
    assert_eq!(a_then["type"], "NODE");
    assert_eq!(canvas.body["relations"][0]["source_block_id"], a.as_str());

    for against in ["current", v2_id.as_str()] {
        let diff = app
            .client
            .get(
                &format!("{base}/{v1_id}/diff?against={against}"),
                &owner.token,
            )
            .await;
        assert_eq!(diff.status, StatusCode::OK, "{}", diff.body);
        let blocks = &diff.body["blocks"];
        assert_eq!(ids(&blocks["added"]), vec![c.clone()], "{against}");
        assert_eq!(ids(&blocks["removed"]), vec![b.clone()], "{against}");
        assert_eq!(blocks["changed"].as_array().map(Vec::len), Some(1));
        let change = &blocks["changed"][0];
        assert_eq!(change["id"], a.as_str());
        let fields: Vec<&String> = change["fields"]
            .as_object()
            .expect("fields")
            .keys()
            .collect();
        assert_eq!(fields, ["name", "visual"], "only the fields that changed");
        assert_eq!(change["fields"]["name"]["before"], "A");
        assert_eq!(change["fields"]["name"]["after"], "A renamed");
        assert_eq!(change["fields"]["visual"]["after"]["x"], 99);
        // The relation still exists in the document (removing a block leaves it).
        assert!(diff.body["relations"]["removed"]
            .as_array()
            .is_some_and(Vec::is_empty));
    }
    let same = app
        .client
        .get(&format!("{base}/{v2_id}/diff"), &owner.token)
        .await;
    assert_eq!(same.body["against"], "current");
    assert_eq!(same.body["blocks"]["changed"], json!([]));
    assert_eq!(same.body["blocks"]["added"], json!([]));
}

#[tokio::test]
async fn bad_ids_and_bodies_answer_json_errors() {
    let (app, owner, ws) = setup_manual().await;
    let base = format!("/api/v1/workspaces/{ws}/versions");
    let bad_path = app
        .client
        .get(&format!("{base}/not-a-uuid"), &owner.token)
        .await;
    // The server's rule for every path id: a malformed one is the client's mistake, 400 (JSON).
    assert_eq!(bad_path.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad_path.code(), "invalid_id", "{}", bad_path.body);
    let missing = app
        .client
        .get(&format!("{base}/{}", Uuid::new_v4()), &owner.token)
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.code(), "not_found");
    for path in ["canvas", "diff", "restore"] {
        let url = format!("{base}/{}/{path}", Uuid::new_v4());
        let reply = if path == "restore" {
            app.client.post(&url, &owner.token, json!({})).await
        } else {
            app.client.get(&url, &owner.token).await
        };
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
    }
    let v = named_version(&app, &owner, ws, "v").await;
    let bad_against = app
        .client
        .get(
            &format!(
                "{base}/{}/diff?against=yesterday",
                v["id"].as_str().expect("id")
            ),
            &owner.token,
        )
        .await;
    assert_eq!(bad_against.status, StatusCode::UNPROCESSABLE_ENTITY);
    let blank = app
        .client
        .post(&base, &owner.token, json!({ "name": "  " }))
        .await;
    assert_eq!(
        blank.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        blank.body
    );
    let bad_limit = app
        .client
        .get(&format!("{base}?limit=0"), &owner.token)
        .await;
    assert_eq!(bad_limit.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn a_restore_is_seen_live_is_undoable_audited_and_survives_a_restart() {
    let (app, owner, ws) = setup_manual().await;
    let mut editor = client(&app, &owner, ws).await;
    let (a, b, c) = (id(), id(), id());
    editor.put_block(&a, block("A")).await;
    editor.put_block(&b, block("B")).await;
    editor.settle().await;
    let v1 = named_version(&app, &owner, ws, "good").await;
    let v1_id = v1["id"].as_str().expect("id").to_string();

    // The "bad import": a rename, a removal, an addition.
    editor.put_block(&a, json!({ "name": "broken" })).await;
    editor.remove_block(&b).await;
    editor.put_block(&c, block("C")).await;
    editor.settle().await;
    let mut watcher = client(&app, &owner, ws).await;
    assert_eq!(watcher.block_count(), 2);

    let base = format!("/api/v1/workspaces/{ws}/versions");
    let restored = restore(&app, &owner, ws, &v1_id).await;
    assert_eq!(restored.status, StatusCode::OK, "{}", restored.body);
    assert_eq!(restored.body["restored"]["id"], v1_id.as_str());
    assert_eq!(restored.body["before_restore"]["kind"], "before_restore");
    assert_eq!(restored.body["before_restore"]["block_count"], 2);
    assert_eq!(restored.body["changes"]["blocks_added"], 1);
    assert_eq!(restored.body["changes"]["blocks_removed"], 1);
    assert_eq!(restored.body["changes"]["blocks_changed"], 1);
    let before_id = restored.body["before_restore"]["id"]
        .as_str()
        .expect("id")
        .to_string();

    // Open editors jump back live.
    let back = |client: &nox_tests::WsClient| {
        let canvas = client.canvas_json();
        canvas["blocks"][&a]["name"] == "A"
            && canvas["blocks"][&b]["name"] == "B"
            && canvas["blocks"].get(&c).is_none()
    };
    watcher.pump_until(back).await;
    editor.pump_until(back).await;
    let diff = app
        .client
        .get(
            &format!("{base}/{v1_id}/diff?against=current"),
            &owner.token,
        )
        .await;
    assert_eq!(diff.body["blocks"]["added"], json!([]), "{}", diff.body);
    assert_eq!(diff.body["blocks"]["removed"], json!([]));
    assert_eq!(diff.body["blocks"]["changed"], json!([]));

    let audited: (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM audit_logs WHERE action = 'workspace.version_restored'
         AND target_id = $1 AND actor_id = $2 AND metadata->>'version_id' = $3",
    )
    .bind(ws)
    .bind(owner.user_id)
    .bind(&v1_id)
    .fetch_one(app.pool())
    .await
    .expect("audit count");
    assert_eq!(audited.0, 1);

    // Undo: restore the version taken just before the restore.
    let undo = restore(&app, &owner, ws, &before_id).await;
    assert_eq!(undo.status, StatusCode::OK, "{}", undo.body);
    let undone = |client: &nox_tests::WsClient| {
        let canvas = client.canvas_json();
        canvas["blocks"][&a]["name"] == "broken"
            && canvas["blocks"].get(&b).is_none()
            && canvas["blocks"][&c]["name"] == "C"
    };
    watcher.pump_until(undone).await;
    // Nothing already stored was rewritten: the first version still reads as it was.
    let v1_canvas = version_canvas(&app, &owner, ws, &v1_id).await;
    assert_eq!(
        ids(&v1_canvas["blocks"]),
        sorted(vec![a.clone(), b.clone()])
    );

    // And back to v1 once more, then across a restart.
    let again = restore(&app, &owner, ws, &v1_id).await;
    assert_eq!(again.status, StatusCode::OK);
    drop(editor);
    drop(watcher);
    let app = app.restart().await;
    let fresh = client(&app, &owner, ws).await;
    assert!(back(&fresh), "after a restart: {}", fresh.canvas_json());
    let listed = app.client.get(&base, &owner.token).await;
    let kinds: Vec<&str> = listed.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|v| v["kind"].as_str())
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "before_restore").count(),
        3,
        "{kinds:?}"
    );
}

#[tokio::test]
async fn automatic_versions_follow_changes_and_then_quiet() {
    let (app, owner, ws) = setup_with(|c| c.auto_version_secs = 1).await;
    let mut editor = client(&app, &owner, ws).await;
    let base = format!("/api/v1/workspaces/{ws}/versions");
    let none = automatic_versions(&app, &owner, ws).await;
    assert_eq!(none.len(), 0, "no change, no version");

    editor.put_block(&id(), block("first")).await;
    editor.settle().await;
    until_automatic_versions(&app, &owner, ws, 1).await;
    let listed = app.client.get(&base, &owner.token).await;
    let auto = &listed.body["items"][0];
    assert_eq!(auto["kind"], "auto");
    assert_eq!(auto["block_count"], 1);
    assert_eq!(auto["created_by"], Value::Null);

    editor.put_block(&id(), block("second")).await;
    editor.settle().await;
    until_automatic_versions(&app, &owner, ws, 2).await;
    let listed = app.client.get(&base, &owner.token).await;
    assert_eq!(
        listed.body["items"][0]["block_count"], 2,
        "the newest state"
    );
}

#[tokio::test]
async fn retention_prunes_old_automatic_versions_but_never_named_ones() {
    let (app, owner, ws) = setup_manual().await;
    let mut editor = client(&app, &owner, ws).await;
    editor.put_block(&id(), block("A")).await;
    editor.settle().await;
    let named = named_version(&app, &owner, ws, "keep me").await;
    let named_id: Uuid = named["id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("id");
    // History as if the workspace had been used for a long time (free plan: 30 days / 50).
    sqlx::query(
        "INSERT INTO core_snapshots
           (project_id, workspace_id, kind, name, full_state_dump, state, state_vector,
            created_at, created_by_id)
         SELECT project_id, workspace_id, k.kind, 'old', full_state_dump, state, state_vector,
                NOW() - k.age, created_by_id
         FROM core_snapshots s,
              LATERAL (SELECT 'auto' AS kind, make_interval(mins => i) AS age
                       FROM generate_series(1, 55) i
                       UNION ALL
                       SELECT 'auto', make_interval(days => 40 + i) FROM generate_series(1, 5) i
                       UNION ALL
                       SELECT 'named', make_interval(days => 400)) k
         WHERE s.id = $1",
    )
    .bind(named_id)
    .execute(app.pool())
    .await
    .expect("old versions");

    // Storing a version applies the plan's retention (here the restore's "before" version).
    let restored = restore(&app, &owner, ws, &named_id).await;
    assert_eq!(restored.status, StatusCode::OK, "{}", restored.body);

    let counts: (i64, i64, i64) = sqlx::query_as(
        "SELECT COUNT(*) FILTER (WHERE kind <> 'named'),
                COUNT(*) FILTER (WHERE kind = 'named'),
                COUNT(*) FILTER (WHERE kind <> 'named' AND created_at < NOW() - INTERVAL '30 days')
         FROM core_snapshots WHERE workspace_id = $1",
    )
    .bind(ws)
    .fetch_one(app.pool())
    .await
    .expect("counts");
    assert_eq!(counts.0, 50, "the newest 50 automatic versions stay");
    assert_eq!(counts.1, 2, "named versions are never pruned, however old");
    assert_eq!(counts.2, 0, "automatic versions older than 30 days go");
    let before_kept: (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM core_snapshots WHERE workspace_id = $1 AND kind = 'before_restore'",
    )
    .bind(ws)
    .fetch_one(app.pool())
    .await
    .expect("before");
    assert_eq!(before_kept.0, 1, "the newest (the one just taken) is kept");
}

#[tokio::test]
async fn versions_are_private_to_the_workspace_and_need_the_right_permission() {
    let (app, owner, ws) = setup_manual().await;
    let v = named_version(&app, &owner, ws, "mine").await;
    let vid = v["id"].as_str().expect("id").to_string();
    let base = format!("/api/v1/workspaces/{ws}/versions");

    let (stranger, _, _, their_ws) = app.client.owner_with_workspace("stranger").await;
    for path in [
        base.clone(),
        format!("{base}/{vid}"),
        format!("{base}/{vid}/canvas"),
        format!("{base}/{vid}/diff"),
        // Their own workspace, my version id: still not found.
        format!("/api/v1/workspaces/{their_ws}/versions/{vid}"),
        format!("/api/v1/workspaces/{their_ws}/versions/{vid}/canvas"),
    ] {
        let reply = app.client.get(&path, &stranger.token).await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{path}: {}",
            reply.body
        );
    }
    let foreign_restore = restore(&app, &stranger, their_ws, &vid).await;
    assert_eq!(foreign_restore.status, StatusCode::NOT_FOUND);
    let stranger_create = app
        .client
        .post(&base, &stranger.token, json!({ "name": "x" }))
        .await;
    assert_eq!(stranger_create.status, StatusCode::NOT_FOUND);

    let viewer = member_with_role(&app, ws, "Viewer").await;
    let listed = app.client.get(&base, &viewer.token).await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(listed.body["items"].as_array().map(Vec::len), Some(1));
    let denied = restore(&app, &viewer, ws, &vid).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    let denied_create = app
        .client
        .post(&base, &viewer.token, json!({ "name": "x" }))
        .await;
    assert_eq!(denied_create.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_room_that_unloads_with_unversioned_changes_stores_an_automatic_version() {
    // Quiet time far beyond the test: only the unload can take this version.
    let (app, owner, ws) = setup_with(|c| {
        c.auto_version_secs = 3_600;
        c.room_idle_secs = 1;
    })
    .await;
    let mut editor = client(&app, &owner, ws).await;
    editor.put_block(&id(), block("before leaving")).await;
    editor.settle().await;
    editor.disconnect().await;

    let pool = app.pool().clone();
    eventually("an automatic version when the idle room unloads", || {
        let pool = pool.clone();
        async move {
            let row: Option<(i32,)> = sqlx::query_as(
                "SELECT block_count FROM core_snapshots WHERE workspace_id = $1 AND kind = 'auto'",
            )
            .bind(ws)
            .fetch_optional(&pool)
            .await
            .expect("query");
            row == Some((1,))
        }
    })
    .await;
}

/// The server takes the state a restore replaces while it reads the version, and keeps it only if
/// the document did not move in between: edits racing the restore must be in its
/// `before_restore` version (else undoing the restore would lose them).
#[tokio::test]
async fn edits_racing_a_restore_are_in_its_before_restore_version() {
    let (app, owner, ws) = setup_manual().await;
    let mut editor = client(&app, &owner, ws).await;
    let kept = id();
    editor.put_block(&kept, block("kept")).await;
    editor.settle().await;
    let v1 = named_version(&app, &owner, ws, "one block").await;
    let url = format!(
        "/api/v1/workspaces/{ws}/versions/{}/restore",
        v1["id"].as_str().expect("id")
    );
    for round in 0..5 {
        let done = std::sync::atomic::AtomicBool::new(false);
        let restore = async {
            let reply = app.client.post(&url, &owner.token, json!({})).await;
            done.store(true, std::sync::atomic::Ordering::SeqCst);
            reply
        };
        let racing = async {
            let mut sent = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                editor.put_block(&id(), block("racing")).await;
                sent += 1;
                tokio::task::yield_now().await;
            }
            sent
        };
        let (reply, sent) = tokio::join!(restore, racing);
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert!(sent > 0, "round {round}: no edit raced the restore");
        // The restore removed every racing block it found: the state it replaced held exactly
        // those plus the kept one.
        let removed = reply.body["changes"]["blocks_removed"]
            .as_i64()
            .expect("removed");
        assert_eq!(
            reply.body["before_restore"]["block_count"].as_i64(),
            Some(1 + removed),
            "round {round}: {}",
            reply.body
        );
        let before_id = reply.body["before_restore"]["id"].as_str().expect("id");
        let before = app
            .client
            .get(
                &format!("/api/v1/workspaces/{ws}/versions/{before_id}/canvas"),
                &owner.token,
            )
            .await;
        let blocks = before.body["blocks"].as_array().expect("blocks").len();
        assert_eq!(blocks as i64, 1 + removed, "round {round}");
    }
}

/// A restore that fails leaves nothing behind: its `before_restore` version is written while the
/// version is read, in a transaction that commits only with the restore.
#[tokio::test]
async fn a_failed_restore_stores_no_before_restore_version() {
    let (app, owner, ws) = setup_manual().await;
    let mut editor = client(&app, &owner, ws).await;
    editor.put_block(&id(), block("A")).await;
    editor.settle().await;
    let v1 = named_version(&app, &owner, ws, "soon corrupt").await;
    let v1_id: Uuid = v1["id"].as_str().expect("id").parse().expect("uuid");
    sqlx::query("UPDATE core_snapshots SET state = '\\x00ff'::bytea WHERE id = $1")
        .bind(v1_id)
        .execute(app.pool())
        .await
        .expect("corrupt the state");

    let reply = restore(&app, &owner, ws, &v1_id).await;
    assert_eq!(
        reply.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{}",
        reply.body
    );
    assert_eq!(reply.code(), "internal_error");
    let stored: (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM core_snapshots WHERE workspace_id = $1 AND kind = 'before_restore'",
    )
    .bind(ws)
    .fetch_one(app.pool())
    .await
    .expect("count");
    assert_eq!(stored.0, 0, "no before_restore version");
    let audited: (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM audit_logs WHERE action = 'workspace.version_restored'
         AND target_id = $1",
    )
    .bind(ws)
    .fetch_one(app.pool())
    .await
    .expect("audit count");
    assert_eq!(audited.0, 0);
}

/// Decoded versions are kept for a moment (a restore usually follows a diff), but a version
/// deleted since is gone, not served from memory.
#[tokio::test]
async fn a_version_read_lately_and_then_deleted_is_not_found() {
    let (app, owner, ws) = setup_manual().await;
    let mut editor = client(&app, &owner, ws).await;
    editor.put_block(&id(), block("A")).await;
    editor.settle().await;
    let v1 = named_version(&app, &owner, ws, "read then deleted").await;
    let v1_id = v1["id"].as_str().expect("id").to_string();
    let base = format!("/api/v1/workspaces/{ws}/versions");
    let diff = app
        .client
        .get(&format!("{base}/{v1_id}/diff"), &owner.token)
        .await;
    assert_eq!(diff.status, StatusCode::OK, "{}", diff.body);

    sqlx::query("DELETE FROM core_snapshots WHERE id = $1::uuid")
        .bind(&v1_id)
        .execute(app.pool())
        .await
        .expect("delete the version");
    for path in ["canvas", "diff"] {
        let reply = app
            .client
            .get(&format!("{base}/{v1_id}/{path}"), &owner.token)
            .await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{path}: {}",
            reply.body
        );
    }
    let restored = restore(&app, &owner, ws, &v1_id).await;
    assert_eq!(restored.status, StatusCode::NOT_FOUND, "{}", restored.body);
}

/// A stored state the stored-update reader leaves to yrs (here a `Y.Text` among the blocks, which
/// no canvas client writes) is read through a decoded document instead: its canvas, its diff and
/// its restore work like any other version's.
#[tokio::test]
async fn a_version_the_stored_update_reader_leaves_to_yrs_is_read_through_a_document() {
    use nox_persistence::versions::{insert, NewVersion, VersionKind};
    use yrs::updates::encoder::Encode;
    use yrs::{Map, ReadTxn, StateVector, TextPrelim, Transact, WriteTxn};

    let (app, owner, ws) = setup_manual().await;
    let mut editor = client(&app, &owner, ws).await;
    let live_block = id();
    editor.put_block(&live_block, block("Live")).await;
    editor.settle().await;

    let versioned_block = id();
    let doc = nox_sync_protocol::canvas::new_canvas_doc();
    {
        let mut txn = doc.transact_mut();
        let fields = block("Versioned");
        let fields = fields.as_object().expect("object");
        nox_sync_protocol::canvas::put_block(&mut txn, &versioned_block, fields).expect("block");
        let blocks = txn.get_or_insert_map(nox_sync_protocol::canvas::BLOCKS);
        blocks.insert(&mut txn, "a-text", TextPrelim::new("not a canvas entity"));
    }
    let (state, state_vector) = {
        let txn = doc.transact();
        let state = txn.encode_state_as_update_v1(&StateVector::default());
        (state, txn.state_vector().encode_v1())
    };
    assert!(
        nox_sync_protocol::restore::StoredVersion::parse(state.clone()).is_err(),
        "the reader leaves this state to yrs"
    );
    let stored = insert(
        app.pool(),
        &NewVersion {
            workspace_id: ws,
            kind: VersionKind::Named,
            name: "with a text",
            description: None,
            created_by: None,
            state: &state,
            state_vector: &state_vector,
            block_count: 2,
            relation_count: 0,
            base_version_id: None,
        },
    )
    .await
    .expect("store")
    .expect("stored");
    let base = format!("/api/v1/workspaces/{ws}/versions/{}", stored.id);

    let canvas = app
        .client
        .get(&format!("{base}/canvas"), &owner.token)
        .await;
    assert_eq!(canvas.status, StatusCode::OK, "{}", canvas.body);
    assert!(
        ids(&canvas.body["blocks"]).contains(&versioned_block),
        "{}",
        canvas.body
    );
    let diff = app.client.get(&format!("{base}/diff"), &owner.token).await;
    assert_eq!(diff.status, StatusCode::OK, "{}", diff.body);
    let removed = ids(&diff.body["blocks"]["removed"]);
    let added = ids(&diff.body["blocks"]["added"]);
    assert!(
        removed.contains(&versioned_block) && added.contains(&live_block),
        "{}",
        diff.body
    );

    let restore = app
        .client
        .post(&format!("{base}/restore"), &owner.token, json!({}))
        .await;
    assert_eq!(restore.status, StatusCode::OK, "{}", restore.body);
    editor
        .pump_until(|c| {
            let canvas = c.canvas_json();
            canvas["blocks"].get(&versioned_block).is_some()
                && canvas["blocks"].get(&live_block).is_none()
        })
        .await;
}

/// A restore whose caller hangs up right after sending it still completes as a whole: applied,
/// with its `before_restore` version and its audit row (never an applied restore without its undo).
#[tokio::test]
async fn a_restore_whose_caller_hangs_up_still_completes_with_its_undo() {
    use tokio::io::AsyncWriteExt;

    let (app, owner, ws) = setup_manual().await;
    let mut editor = client(&app, &owner, ws).await;
    let kept = id();
    editor.put_block(&kept, block("Kept")).await;
    editor.settle().await;
    let v1 = named_version(&app, &owner, ws, "v1").await;
    let v1_id = v1["id"].as_str().expect("id").to_string();
    let added = id();
    editor.put_block(&added, block("Added later")).await;
    editor.settle().await;

    let path = format!("/api/v1/workspaces/{ws}/versions/{v1_id}/restore");
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}",
        app.addr, owner.token
    );
    let mut socket = tokio::net::TcpStream::connect(app.addr)
        .await
        .expect("connect");
    socket.write_all(request.as_bytes()).await.expect("send");
    drop(socket); // hang up without reading the answer

    editor
        .pump_until(|c| c.canvas_json()["blocks"].get(&added).is_none())
        .await;
    let pool = app.pool();
    eventually(
        "the restore's audit row and before_restore version",
        || async {
            let audited: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM audit_logs WHERE action = 'workspace.version_restored'",
            )
            .fetch_one(pool)
            .await
            .unwrap_or(0);
            let before: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM core_snapshots WHERE kind = 'before_restore'",
            )
            .fetch_one(pool)
            .await
            .unwrap_or(0);
            audited == 1 && before == 1
        },
    )
    .await;
}

#[tokio::test]
async fn what_a_restore_deletes_is_garbage_collected_once_it_is_answered() {
    let (app, owner, ws) = setup_manual().await;
    let empty = named_version(&app, &owner, ws, "empty").await;
    let empty_id = empty["id"].as_str().expect("id").to_string();
    let mut editor = client(&app, &owner, ws).await;
    let long_name = "n".repeat(2_000);
    for _ in 0..40 {
        editor.put_block(&id(), block(&long_name)).await;
    }
    editor.settle().await;
    let full = named_version(&app, &owner, ws, "full").await;
    let full_size = full["size_bytes"].as_i64().expect("size");
    assert!(full_size > 80_000, "{full}");

    let restored = restore(&app, &owner, ws, &empty_id).await;
    assert_eq!(restored.status, StatusCode::OK, "{}", restored.body);
    assert_eq!(restored.body["changes"]["blocks_removed"], 40);
    editor.pump_until(|c| c.block_count() == 0).await;

    // The restore's transaction leaves collecting its deleted content for after its answer: the
    // state holds none of the 80 KB of names by the time anything else reads it.
    let after = named_version(&app, &owner, ws, "after").await;
    let after_size = after["size_bytes"].as_i64().expect("size");
    assert!(after_size < 4_000, "deleted content still held: {after}");
    assert_eq!(after["block_count"], 0);
    // Collected content leaves the document whole: a new editor syncs it, and undoing works.
    let fresh = client(&app, &owner, ws).await;
    assert_eq!(fresh.block_count(), 0);
    let before_id = restored.body["before_restore"]["id"].as_str().expect("id");
    let undo = restore(&app, &owner, ws, &before_id).await;
    assert_eq!(undo.status, StatusCode::OK, "{}", undo.body);
    editor
        .pump_until(|c| {
            c.canvas_json()["blocks"]
                .as_object()
                .is_some_and(|b| b.len() == 40)
        })
        .await;
}

/// A canvas of `n` blocks, written and acknowledged; their ids in order.
async fn canvas_of(editor: &mut nox_tests::WsClient, n: usize) -> Vec<String> {
    let ids: Vec<String> = (0..n).map(|_| id()).collect();
    for (i, block_id) in ids.iter().enumerate() {
        editor
            .put_block(block_id, block(&format!("Block {i}")))
            .await;
    }
    editor.settle().await;
    ids
}

/// The version the canvas reads for `version_id`.
async fn version_canvas(app: &TestApp, who: &Session, ws: Uuid, version_id: &str) -> Value {
    let reply = app
        .client
        .get(
            &format!("/api/v1/workspaces/{ws}/versions/{version_id}/canvas"),
            &who.token,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body
}

fn name_in(canvas: &Value, block_id: &str) -> Value {
    canvas["blocks"]
        .as_array()
        .and_then(|blocks| blocks.iter().find(|b| b["id"] == block_id))
        .map_or(Value::Null, |b| b["name"].clone())
}

/// The state a restore replaces is stored as the changes since the newest full version (a few
/// hundred bytes instead of the whole canvas), reads like the whole state, and undoes the restore.
#[tokio::test]
async fn the_state_before_a_restore_is_stored_as_the_changes_since_the_newest_full_version() {
    let (app, owner, ws) = setup_manual().await;
    let mut editor = client(&app, &owner, ws).await;
    let blocks = canvas_of(&mut editor, 40).await;
    let v1 = named_version(&app, &owner, ws, "forty blocks").await;
    let v1_id = v1["id"].as_str().expect("id").to_string();
    assert_eq!(
        v1["base_version_id"],
        Value::Null,
        "named versions are whole"
    );

    editor
        .put_block(&blocks[0], json!({ "name": "renamed" }))
        .await;
    editor.remove_block(&blocks[1]).await;
    editor.settle().await;
    let restored = restore(&app, &owner, ws, &v1_id).await;
    assert_eq!(restored.status, StatusCode::OK, "{}", restored.body);
    let before = &restored.body["before_restore"];
    assert_eq!(before["base_version_id"], v1_id.as_str(), "{before}");
    let (before_size, full_size) = (before["size_bytes"].as_i64(), v1["size_bytes"].as_i64());
    assert!(
        before_size.zip(full_size).is_some_and(|(b, f)| b * 4 < f),
        "changes {before_size:?} against a full state of {full_size:?}"
    );
    assert_eq!(before["block_count"], 39);
    let before_id = before["id"].as_str().expect("id").to_string();

    // It reads like the whole state it replaced: its canvas, and its diff against the base.
    let read = version_canvas(&app, &owner, ws, &before_id).await;
    assert_eq!(ids(&read["blocks"]).len(), 39);
    assert_eq!(name_in(&read, &blocks[0]), "renamed");
    assert_eq!(name_in(&read, &blocks[1]), Value::Null);
    let diff = app
        .client
        .get(
            &format!("/api/v1/workspaces/{ws}/versions/{v1_id}/diff?against={before_id}"),
            &owner.token,
        )
        .await;
    assert_eq!(diff.status, StatusCode::OK, "{}", diff.body);
    assert_eq!(
        ids(&diff.body["blocks"]["removed"]),
        vec![blocks[1].clone()]
    );
    assert_eq!(diff.body["blocks"]["changed"][0]["id"], blocks[0].as_str());

    // Restoring it undoes the restore, live.
    let undo = restore(&app, &owner, ws, &before_id).await;
    assert_eq!(undo.status, StatusCode::OK, "{}", undo.body);
    let (renamed, removed) = (blocks[0].clone(), blocks[1].clone());
    editor
        .pump_until(move |c| {
            let canvas = c.canvas_json();
            canvas["blocks"][&renamed]["name"] == "renamed"
                && canvas["blocks"].get(&removed).is_none()
        })
        .await;
    // The undo's own before-restore version (the restored canvas) is stored against v1 too.
    assert_eq!(
        undo.body["before_restore"]["base_version_id"],
        v1_id.as_str()
    );

    // A base cannot be deleted while a version needs it.
    let deleted = sqlx::query("DELETE FROM core_snapshots WHERE id = $1::uuid")
        .bind(&v1_id)
        .execute(app.pool())
        .await;
    assert!(deleted.is_err(), "the base of stored changes was deleted");
}

/// Automatic versions after the first are stored as the changes since it while they stay small;
/// a canvas that doubled makes the next one whole again (it then becomes the base).
#[tokio::test]
async fn automatic_versions_are_stored_as_changes_while_those_stay_small() {
    let (app, owner, ws) = setup_with(|c| c.auto_version_secs = 1).await;
    let mut editor = client(&app, &owner, ws).await;
    let blocks = canvas_of(&mut editor, 40).await;
    until_automatic_versions(&app, &owner, ws, 1).await;
    let first = automatic_versions(&app, &owner, ws).await.remove(0);
    assert_eq!(
        first["base_version_id"],
        Value::Null,
        "nothing to be stored against"
    );

    editor
        .put_block(&blocks[3], json!({ "name": "small edit" }))
        .await;
    editor.settle().await;
    until_automatic_versions(&app, &owner, ws, 2).await;
    let second = automatic_versions(&app, &owner, ws).await.remove(0);
    assert_eq!(second["base_version_id"], first["id"], "{second}");
    let second_id = second["id"].as_str().expect("id").to_string();
    let read = version_canvas(&app, &owner, ws, &second_id).await;
    assert_eq!(name_in(&read, &blocks[3]), "small edit");
    assert_eq!(ids(&read["blocks"]).len(), 40);

    // As many blocks again: the changes weigh more than half of the base.
    canvas_of(&mut editor, 40).await;
    until_automatic_versions(&app, &owner, ws, 3).await;
    let third = automatic_versions(&app, &owner, ws).await.remove(0);
    assert_eq!(third["base_version_id"], Value::Null, "{third}");
}

/// Retention keeps a base as long as a kept version is stored against it, and never takes a base
/// from another workspace.
#[tokio::test]
async fn retention_keeps_a_base_while_a_kept_version_needs_it() {
    use nox_persistence::versions::{self, NewVersion, Retention, VersionKind};

    let (app, _owner, ws) = setup_manual().await;
    let (_, _, _, other_ws) = app.client.owner_with_workspace("another-owner").await;
    let row = |kind, base_version_id| NewVersion {
        workspace_id: ws,
        kind,
        name: "v",
        description: None,
        created_by: None,
        state: &[0, 0],
        state_vector: &[0],
        block_count: 0,
        relation_count: 0,
        base_version_id,
    };
    let insert = |version: NewVersion<'static>| {
        let pool = app.pool().clone();
        async move {
            versions::insert(&pool, &version)
                .await
                .expect("insert")
                .map(|meta| meta.id)
        }
    };
    let old_base = insert(row(VersionKind::Auto, None)).await.expect("stored");
    let delta = insert(row(VersionKind::Auto, Some(old_base)))
        .await
        .expect("stored");
    let foreign = NewVersion {
        workspace_id: other_ws,
        ..row(VersionKind::Auto, Some(old_base))
    };
    assert_eq!(insert(foreign).await, None, "a base from another workspace");
    let chained = insert(row(VersionKind::Auto, Some(delta))).await;
    assert_eq!(chained, None, "a base that is itself stored as changes");

    let keep_one = Retention {
        max_age_days: None,
        max_versions: Some(1),
    };
    let left = || {
        let pool = app.pool().clone();
        async move {
            let rows: Vec<(Uuid,)> =
                sqlx::query_as("SELECT id FROM core_snapshots WHERE workspace_id = $1")
                    .bind(ws)
                    .fetch_all(&pool)
                    .await
                    .expect("rows");
            sorted(rows.into_iter().map(|r| r.0.to_string()).collect())
        }
    };
    let now = chrono::Utc::now();
    versions::prune(app.pool(), ws, keep_one, now)
        .await
        .expect("prune");
    assert_eq!(
        left().await,
        sorted(vec![old_base.to_string(), delta.to_string()]),
        "the base stays for the delta it holds"
    );

    // A newer whole version: the delta expires, and its base with it.
    let newest = insert(row(VersionKind::Auto, None)).await.expect("stored");
    sqlx::query(
        "UPDATE core_snapshots SET created_at = NOW() - INTERVAL '1 minute' WHERE id <> $1",
    )
    .bind(newest)
    .execute(app.pool())
    .await
    .expect("age");
    let deleted = versions::prune(app.pool(), ws, keep_one, now)
        .await
        .expect("prune");
    assert_eq!(deleted, 2);
    assert_eq!(left().await, vec![newest.to_string()]);

    // Deleting the project takes a base and the versions stored against it in one go.
    insert(row(VersionKind::Auto, Some(newest)))
        .await
        .expect("stored");
    sqlx::query(
        "DELETE FROM projects WHERE id = (SELECT project_id FROM workspaces WHERE id = $1)",
    )
    .bind(ws)
    .execute(app.pool())
    .await
    .expect("the project and its versions are deleted");
    assert!(left().await.is_empty());
}

/// A version can be renamed (naming an automatic one keeps it for good) and deleted; deleting a
/// base rewrites the versions stored against it whole, so they read and restore as before. Both
/// are audited, need `workspace:write`, and stay inside the workspace.
#[tokio::test]
async fn versions_can_be_renamed_and_deleted_and_a_deleted_base_leaves_its_versions_whole() {
    let (app, owner, ws) = setup_manual().await;
    let mut editor = client(&app, &owner, ws).await;
    let blocks = canvas_of(&mut editor, 40).await;
    let v1 = named_version(&app, &owner, ws, "forty blocks").await;
    let v1_id = v1["id"].as_str().expect("id").to_string();
    editor
        .put_block(&blocks[0], json!({ "name": "renamed" }))
        .await;
    editor.settle().await;
    let restored = restore(&app, &owner, ws, &v1_id).await;
    assert_eq!(restored.status, StatusCode::OK, "{}", restored.body);
    let before_id = restored.body["before_restore"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    assert_eq!(
        restored.body["before_restore"]["base_version_id"],
        v1_id.as_str()
    );
    let base = format!("/api/v1/workspaces/{ws}/versions");

    // Named: kept for good.
    let renamed = app
        .client
        .patch(
            &format!("{base}/{before_id}"),
            &owner.token,
            json!({ "name": "  the renamed canvas  ", "description": "keep" }),
        )
        .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.body);
    assert_eq!(renamed.body["name"], "the renamed canvas");
    assert_eq!(renamed.body["kind"], "named");
    assert_eq!(renamed.body["description"], "keep");
    let cleared = app
        .client
        .patch(
            &format!("{base}/{before_id}"),
            &owner.token,
            json!({ "description": null }),
        )
        .await;
    assert_eq!(cleared.status, StatusCode::OK, "{}", cleared.body);
    assert_eq!(cleared.body["description"], Value::Null);
    assert_eq!(cleared.body["name"], "the renamed canvas", "left out: kept");
    for bad in [
        json!({}),
        json!({ "name": "" }),
        json!({ "name": "x", "kind": "auto" }),
    ] {
        let refused = app
            .client
            .patch(&format!("{base}/{before_id}"), &owner.token, bad.clone())
            .await;
        assert!(
            refused.status == StatusCode::UNPROCESSABLE_ENTITY
                || refused.status == StatusCode::BAD_REQUEST,
            "{bad}: {} {}",
            refused.status,
            refused.body
        );
        assert!(
            refused.body["error"]["code"].is_string(),
            "{}",
            refused.body
        );
    }

    // Not theirs, or not allowed.
    let (stranger, _, _, their_ws) = app.client.owner_with_workspace("stranger").await;
    let viewer = member_with_role(&app, ws, "Viewer").await;
    for (who, path, expected) in [
        (&stranger, format!("{base}/{v1_id}"), StatusCode::NOT_FOUND),
        (
            &stranger,
            format!("/api/v1/workspaces/{their_ws}/versions/{v1_id}"),
            StatusCode::NOT_FOUND,
        ),
        (&viewer, format!("{base}/{v1_id}"), StatusCode::FORBIDDEN),
    ] {
        let patched = app
            .client
            .patch(&path, &who.token, json!({ "name": "mine now" }))
            .await;
        assert_eq!(patched.status, expected, "patch {path}: {}", patched.body);
        let deleted = app.client.delete(&path, &who.token).await;
        assert_eq!(deleted.status, expected, "delete {path}: {}", deleted.body);
    }

    // Deleting the base: the version stored against it becomes whole and reads the same.
    let read_before = version_canvas(&app, &owner, ws, &before_id).await;
    let deleted = app
        .client
        .delete(&format!("{base}/{v1_id}"), &owner.token)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    let gone = app
        .client
        .get(&format!("{base}/{v1_id}"), &owner.token)
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    let again = app
        .client
        .delete(&format!("{base}/{v1_id}"), &owner.token)
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    let whole = app
        .client
        .get(&format!("{base}/{before_id}"), &owner.token)
        .await;
    assert_eq!(whole.body["base_version_id"], Value::Null, "{}", whole.body);
    assert!(whole.body["size_bytes"].as_i64() > v1["size_bytes"].as_i64().map(|s| s / 2));
    assert_eq!(
        version_canvas(&app, &owner, ws, &before_id).await,
        read_before
    );
    let audited: (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM audit_logs WHERE action = 'workspace.version_deleted'
         AND target_id = $1 AND metadata->>'version_id' = $2
         AND (metadata->>'rewritten_whole')::INT = 1",
    )
    .bind(ws)
    .bind(&v1_id)
    .fetch_one(app.pool())
    .await
    .expect("audit");
    assert_eq!(audited.0, 1);

    // And it still restores: the canvas had `renamed`.
    let undo = restore(&app, &owner, ws, &before_id).await;
    assert_eq!(undo.status, StatusCode::OK, "{}", undo.body);
    let renamed_block = blocks[0].clone();
    editor
        .pump_until(move |c| c.canvas_json()["blocks"][&renamed_block]["name"] == "renamed")
        .await;
}
