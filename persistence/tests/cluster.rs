//! Leases and fencing against a real PostgreSQL (docs/design.md §7): one owner per workspace, a
//! stale owner's writes refused by the database, a takeover that waits for writes in flight.

use std::time::Duration;

use nox_persistence::cluster::{self, Lease, LeaseOutcome, NodeInfo};
use nox_persistence::compaction::{self, Compaction};
use nox_persistence::error::PersistenceError;
use nox_persistence::locks::{self, EditLock};
use nox_persistence::testing::{fresh_database, insert_workspace};
use nox_persistence::update_log::{self, NewLogEntry};
use nox_sync_protocol::projection::ProjectionDiff;
use sqlx::PgPool;
use uuid::Uuid;

const TTL: Duration = Duration::from_secs(5);

async fn node(pool: &PgPool, port: u16) -> NodeInfo {
    let node = NodeInfo {
        id: Uuid::new_v4(),
        addr: format!("127.0.0.1:{port}"),
    };
    cluster::register_node(pool, &node).await.expect("register");
    node
}

async fn acquired(pool: &PgPool, workspace_id: Uuid, node: &NodeInfo) -> Lease {
    match cluster::acquire_lease(pool, workspace_id, node.id, TTL)
        .await
        .expect("acquire")
    {
        LeaseOutcome::Acquired(lease) => lease,
        other => panic!("expected the lease, got {other:?}"),
    }
}

/// The node stops heartbeating (as if SIGKILLed long enough ago).
async fn die(pool: &PgPool, node: &NodeInfo) {
    sqlx::query("UPDATE nodes SET heartbeat_at = NOW() - INTERVAL '1 hour' WHERE id = $1")
        .bind(node.id)
        .execute(pool)
        .await
        .expect("age heartbeat");
}

fn entry(seq: i64) -> Vec<NewLogEntry> {
    vec![NewLogEntry {
        seq,
        update: vec![seq as u8],
        user_id: None,
    }]
}

#[tokio::test]
async fn a_live_owner_keeps_its_workspace_and_a_dead_one_loses_it() {
    let db = fresh_database().await.expect("db");
    let ws = Uuid::new_v4();
    let (a, b) = (node(&db.pool, 1).await, node(&db.pool, 2).await);
    let first = acquired(&db.pool, ws, &a).await;
    assert_eq!(first.epoch, 1);

    let refused = cluster::acquire_lease(&db.pool, ws, b.id, TTL)
        .await
        .expect("ask");
    assert_eq!(refused, LeaseOutcome::HeldBy(a.clone()));
    assert_eq!(
        cluster::owner(&db.pool, ws, TTL).await.expect("owner"),
        Some(a.clone())
    );

    die(&db.pool, &a).await;
    assert_eq!(
        cluster::owner(&db.pool, ws, TTL).await.expect("owner"),
        None
    );
    let taken = acquired(&db.pool, ws, &b).await;
    assert_eq!(taken.epoch, 2, "a takeover bumps the epoch");
    assert_eq!(
        cluster::owner(&db.pool, ws, TTL).await.expect("owner"),
        Some(b)
    );
}

#[tokio::test]
async fn a_stale_owner_cannot_append_compact_or_lock() {
    let db = fresh_database().await.expect("db");
    let (ws, user) = insert_workspace(&db.pool, "w").await.expect("workspace");
    let (a, b) = (node(&db.pool, 1).await, node(&db.pool, 2).await);
    let stale = acquired(&db.pool, ws, &a).await;
    update_log::append(&db.pool, &stale, &entry(1))
        .await
        .expect("owner appends");
    die(&db.pool, &a).await;
    let current = acquired(&db.pool, ws, &b).await;

    let refused = update_log::append(&db.pool, &stale, &entry(2)).await;
    assert!(
        matches!(refused, Err(PersistenceError::Fenced { .. })),
        "{refused:?}"
    );
    update_log::append(&db.pool, &current, &entry(2))
        .await
        .expect("new owner appends");
    let (other_ws, _) = insert_workspace(&db.pool, "o").await.expect("workspace");
    let other = acquired(&db.pool, other_ws, &a).await;
    // In one group commit, only the stale batch is refused.
    let fenced = update_log::append_many(&db.pool, &[(stale, &entry(3)), (other, &entry(1))])
        .await
        .expect("group commit");
    assert_eq!(fenced, vec![ws]);
    let stored = update_log::load(&db.pool, ws).await.expect("load");
    assert_eq!(
        stored.log.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert_eq!(
        update_log::load(&db.pool, other_ws)
            .await
            .expect("other")
            .log
            .len(),
        1
    );

    let compacted = compaction::compact(
        &db.pool,
        Compaction {
            lease: &stale,
            workspace_id: ws,
            state: &[0, 0],
            state_vector: &[0],
            covers_seq: 2,
            diff: &ProjectionDiff::default(),
            conflicts: &[],
        },
    )
    .await;
    assert!(
        matches!(compacted, Err(PersistenceError::Fenced { .. })),
        "{compacted:?}"
    );
    assert_eq!(
        update_log::load(&db.pool, ws)
            .await
            .expect("load")
            .log
            .len(),
        2,
        "log intact"
    );

    let now = chrono::Utc::now();
    let lock = EditLock {
        id: Uuid::new_v4(),
        workspace_id: ws,
        resource_type: "BLOCK".into(),
        resource_id: Uuid::new_v4(),
        locked_by: user,
        acquired_at: now,
        expires_at: now + chrono::Duration::seconds(30),
    };
    let refused = locks::acquire(&db.pool, &stale, &lock).await;
    assert!(
        matches!(refused, Err(PersistenceError::Fenced { .. })),
        "{refused:?}"
    );
    assert!(locks::acquire(&db.pool, &current, &lock)
        .await
        .expect("lock")
        .is_some());
}

#[tokio::test]
async fn a_takeover_waits_for_the_write_in_flight_and_then_fences_it() {
    let db = fresh_database().await.expect("db");
    let ws = Uuid::new_v4();
    let (a, b) = (node(&db.pool, 1).await, node(&db.pool, 2).await);
    let old = acquired(&db.pool, ws, &a).await;

    // A write of the old owner is in flight (its transaction holds the lease row share-locked).
    let mut in_flight = db.pool.begin().await.expect("begin");
    cluster::fence(&mut in_flight, &old).await.expect("fence");
    die(&db.pool, &a).await;
    let pool = db.pool.clone();
    let b_id = b.id;
    let takeover = tokio::spawn(async move { cluster::acquire_lease(&pool, ws, b_id, TTL).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !takeover.is_finished(),
        "the takeover must wait for the write in flight"
    );
    in_flight.commit().await.expect("commit");
    let outcome = takeover.await.expect("join").expect("acquire");
    assert!(
        matches!(outcome, LeaseOutcome::Acquired(Lease { epoch: 2, .. })),
        "{outcome:?}"
    );

    // Once taken over, the old owner's next write is refused.
    let mut late = db.pool.begin().await.expect("begin");
    let fenced = cluster::fence(&mut late, &old).await;
    assert!(
        matches!(fenced, Err(PersistenceError::Fenced { .. })),
        "{fenced:?}"
    );
}

#[tokio::test]
async fn released_leases_go_at_once_and_epochs_only_grow() {
    let db = fresh_database().await.expect("db");
    let ws = Uuid::new_v4();
    let (a, b) = (node(&db.pool, 1).await, node(&db.pool, 2).await);
    let first = acquired(&db.pool, ws, &a).await;
    cluster::release_lease(&db.pool, &first)
        .await
        .expect("release");
    let second = acquired(&db.pool, ws, &b).await;
    assert_eq!(second.epoch, 2);
    cluster::deregister_node(&db.pool, b.id)
        .await
        .expect("leave");
    let third = acquired(&db.pool, ws, &a).await;
    assert_eq!(third.epoch, 3);
    let held = cluster::heartbeat(&db.pool, &a).await.expect("heartbeat");
    assert_eq!(held, vec![third]);
    let live = cluster::live_nodes(&db.pool, TTL).await.expect("nodes");
    assert_eq!(live, vec![a]);
}

#[tokio::test]
async fn large_bus_messages_travel_through_a_row() {
    let db = fresh_database().await.expect("db");
    let mut listener = cluster::listen(&db.pool, &["test_bus"])
        .await
        .expect("listen");
    let big = "x".repeat(20_000);
    cluster::notify_stored(&db.pool, "test_bus", &big)
        .await
        .expect("send");
    let note = listener.recv().await.expect("notification");
    assert!(note.payload().len() < 100);
    let payload = cluster::stored_payload(&db.pool, note.payload())
        .await
        .expect("read");
    assert_eq!(payload.as_deref(), Some(big.as_str()));
    assert_eq!(
        cluster::stored_payload(&db.pool, "{}")
            .await
            .expect("inline"),
        None
    );
}

#[tokio::test]
async fn the_first_node_s_secret_is_everyone_s() {
    let db = fresh_database().await.expect("db");
    let first = cluster::shared_secret(&db.pool, "jwt_signing", "first")
        .await
        .expect("first");
    let second = cluster::shared_secret(&db.pool, "jwt_signing", "second")
        .await
        .expect("second");
    assert_eq!((first.as_str(), second.as_str()), ("first", "first"));
}
