//! The update log against a real PostgreSQL: group commit across workspaces is all or nothing.

use nox_persistence::cluster::{self, Lease, LeaseOutcome, NodeInfo};
use nox_persistence::testing::{fresh_database, insert_workspace};
use nox_persistence::update_log::{self, NewLogEntry};
use sqlx::PgPool;
use uuid::Uuid;

async fn workspace(pool: &PgPool, slug: &str) -> (Uuid, Uuid) {
    insert_workspace(pool, slug).await.expect("workspace")
}

/// This test's node holds the workspace's lease.
async fn lease(pool: &PgPool, workspace_id: Uuid) -> Lease {
    let node = NodeInfo {
        id: Uuid::new_v4(),
        addr: "127.0.0.1:1".into(),
    };
    cluster::register_node(pool, &node).await.expect("node");
    let ttl = std::time::Duration::from_secs(60);
    match cluster::acquire_lease(pool, workspace_id, node.id, ttl)
        .await
        .expect("lease")
    {
        LeaseOutcome::Acquired(lease) => lease,
        other => panic!("lease not acquired: {other:?}"),
    }
}

fn entries(seqs: std::ops::RangeInclusive<i64>, user: Uuid, tag: u8) -> Vec<NewLogEntry> {
    seqs.map(|seq| NewLogEntry {
        seq,
        update: vec![tag, seq as u8],
        user_id: Some(user),
    })
    .collect()
}

#[tokio::test]
async fn one_statement_appends_the_batches_of_several_workspaces() {
    let db = fresh_database().await.expect("db");
    let (a, user_a) = workspace(&db.pool, "a").await;
    let (b, user_b) = workspace(&db.pool, "b").await;
    let (la, lb) = (lease(&db.pool, a).await, lease(&db.pool, b).await);
    let (for_a, for_b) = (entries(1..=3, user_a, 0xA), entries(1..=2, user_b, 0xB));
    let fenced = update_log::append_many(&db.pool, &[(la, &for_a), (lb, &for_b)])
        .await
        .expect("append");
    assert!(fenced.is_empty());

    let stored_a = update_log::load(&db.pool, a).await.expect("load a");
    let stored_b = update_log::load(&db.pool, b).await.expect("load b");
    let expected_a: Vec<(i64, Vec<u8>)> = (1..=3).map(|s| (s, vec![0xA, s as u8])).collect();
    let expected_b: Vec<(i64, Vec<u8>)> = (1..=2).map(|s| (s, vec![0xB, s as u8])).collect();
    assert_eq!(stored_a.log, expected_a);
    assert_eq!(stored_b.log, expected_b);
    assert_eq!(stored_a.next_seq(), 4);
    let authors: Vec<Option<Uuid>> =
        sqlx::query_scalar("SELECT user_id FROM workspace_update_log WHERE workspace_id = $1")
            .bind(b)
            .fetch_all(&db.pool)
            .await
            .expect("authors");
    assert_eq!(authors, vec![Some(user_b); 2]);
}

#[tokio::test]
async fn a_conflicting_batch_writes_nothing_for_any_workspace() {
    let db = fresh_database().await.expect("db");
    let (a, user_a) = workspace(&db.pool, "a").await;
    let (b, user_b) = workspace(&db.pool, "b").await;
    let (la, lb) = (lease(&db.pool, a).await, lease(&db.pool, b).await);
    update_log::append(&db.pool, &lb, &entries(1..=1, user_b, 0xB))
        .await
        .expect("first append");

    // b's seq 1 exists already: the whole statement fails, a's entries included.
    let (for_a, for_b) = (entries(1..=2, user_a, 0xA), entries(1..=2, user_b, 0xB));
    let failed = update_log::append_many(&db.pool, &[(la, &for_a), (lb, &for_b)]).await;
    assert!(failed.is_err(), "a duplicate seq must fail the statement");
    assert!(update_log::load(&db.pool, a).await.expect("a").is_empty());
    assert_eq!(update_log::load(&db.pool, b).await.expect("b").log.len(), 1);
}
