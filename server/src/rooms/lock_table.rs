//! [`LockTable`]: a room's view of its workspace's edit locks. Pure bookkeeping — the room makes each
//! decision durable in `edit_locks` before anyone hears of it.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use nox_persistence::locks::EditLock;
use nox_sync_protocol::locks::{LockView, ResourceType};
use uuid::Uuid;

use super::peer::ConnId;

type Key = (ResourceType, Uuid);

/// A lock and the connection that took it (released when that connection closes).
#[derive(Debug, Clone)]
pub struct HeldLock {
    pub lock: EditLock,
    pub conn: Option<ConnId>,
}

/// Why an acquire cannot be granted.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    HeldBy(EditLock),
}

#[derive(Debug, Default)]
pub struct LockTable {
    locks: HashMap<Key, HeldLock>,
}

impl LockTable {
    pub fn from_rows(rows: Vec<EditLock>) -> Self {
        let locks = rows
            .into_iter()
            .filter_map(|lock| {
                let kind = ResourceType::parse(&lock.resource_type)?;
                Some(((kind, lock.resource_id), HeldLock { lock, conn: None }))
            })
            .collect();
        Self { locks }
    }

    /// The live lock on a resource, if any.
    pub fn holder(&self, kind: ResourceType, id: Uuid, now: DateTime<Utc>) -> Option<&EditLock> {
        self.locks
            .get(&(kind, id))
            .map(|h| &h.lock)
            .filter(|lock| lock.expires_at > now)
    }

    /// The lock `user` would hold after acquiring (a renewal keeps the id and start time), or who
    /// holds it instead.
    pub fn propose(
        &self,
        workspace_id: Uuid,
        kind: ResourceType,
        resource_id: Uuid,
        user: Uuid,
        ttl_ms: u64,
        now: DateTime<Utc>,
    ) -> Result<EditLock, Refusal> {
        let expires_at = now + Duration::milliseconds(ttl_ms as i64);
        match self.holder(kind, resource_id, now) {
            Some(held) if held.locked_by != user => Err(Refusal::HeldBy(held.clone())),
            Some(own) => Ok(EditLock {
                expires_at,
                ..own.clone()
            }),
            None => Ok(EditLock {
                id: Uuid::new_v4(),
                workspace_id,
                resource_type: kind.as_str().to_string(),
                resource_id,
                locked_by: user,
                acquired_at: now,
                expires_at,
            }),
        }
    }

    /// Records a lock that storage accepted.
    pub fn insert(&mut self, kind: ResourceType, lock: EditLock, conn: Option<ConnId>) {
        self.locks
            .insert((kind, lock.resource_id), HeldLock { lock, conn });
    }

    /// Forgets `lock` unless the resource has meanwhile been locked again (another lock id).
    pub fn remove_lock(&mut self, kind: ResourceType, lock: &EditLock) {
        let key = (kind, lock.resource_id);
        if self.locks.get(&key).is_some_and(|h| h.lock.id == lock.id) {
            self.locks.remove(&key);
        }
    }

    pub fn find_by_id(&self, lock_id: Uuid) -> Option<(ResourceType, &EditLock)> {
        self.locks
            .iter()
            .find(|(_, h)| h.lock.id == lock_id)
            .map(|((kind, _), h)| (*kind, &h.lock))
    }

    /// Locks whose time is up.
    pub fn expired(&self, now: DateTime<Utc>) -> Vec<(ResourceType, EditLock)> {
        self.select(|h| h.lock.expires_at <= now)
    }

    /// Locks taken through one connection.
    pub fn taken_by(&self, conn: ConnId) -> Vec<(ResourceType, EditLock)> {
        self.select(|h| h.conn == Some(conn))
    }

    /// Every live lock, oldest first.
    pub fn live(&self, now: DateTime<Utc>) -> Vec<(ResourceType, EditLock)> {
        let mut live = self.select(|h| h.lock.expires_at > now);
        live.sort_by_key(|(_, l)| (l.acquired_at, l.id));
        live
    }

    fn select(&self, keep: impl Fn(&HeldLock) -> bool) -> Vec<(ResourceType, EditLock)> {
        self.locks
            .iter()
            .filter(|(_, h)| keep(h))
            .map(|((kind, _), h)| (*kind, h.lock.clone()))
            .collect()
    }
}

/// The wire form of a lock.
pub fn view(kind: ResourceType, lock: &EditLock, user_name: Option<String>) -> LockView {
    LockView {
        id: lock.id,
        resource_type: kind,
        resource_id: lock.resource_id,
        user_id: lock.locked_by,
        user_name,
        acquired_at: lock.acquired_at.timestamp_millis(),
        expires_at: lock.expires_at.timestamp_millis(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WS: Uuid = Uuid::nil();

    #[test]
    fn one_holder_at_a_time_and_renewal_keeps_the_lock_id() {
        let mut table = LockTable::default();
        let (alice, bob, block) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let now = Utc::now();
        let lock = table
            .propose(WS, ResourceType::Block, block, alice, 30_000, now)
            .expect("free");
        table.insert(ResourceType::Block, lock.clone(), Some(1));
        assert_eq!(
            table.propose(WS, ResourceType::Block, block, bob, 30_000, now),
            Err(Refusal::HeldBy(lock.clone()))
        );
        let later = now + Duration::seconds(10);
        let renewed = table
            .propose(WS, ResourceType::Block, block, alice, 30_000, later)
            .expect("own lock");
        assert_eq!(renewed.id, lock.id);
        assert!(renewed.expires_at > lock.expires_at);
        // A relation with the same id is a different resource.
        assert!(table
            .propose(WS, ResourceType::Relation, block, bob, 30_000, now)
            .is_ok());
    }

    #[test]
    fn expired_locks_are_free_and_listed_for_sweeping() {
        let mut table = LockTable::default();
        let (alice, bob, block) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let now = Utc::now();
        let lock = table
            .propose(WS, ResourceType::Block, block, alice, 1_000, now)
            .expect("free");
        table.insert(ResourceType::Block, lock, Some(7));
        let after = now + Duration::seconds(2);
        assert!(table.holder(ResourceType::Block, block, after).is_none());
        assert_eq!(table.expired(after).len(), 1);
        assert!(table.live(after).is_empty());
        assert!(table
            .propose(WS, ResourceType::Block, block, bob, 1_000, after)
            .is_ok());
        assert_eq!(table.taken_by(7).len(), 1);
        assert!(table.taken_by(8).is_empty());
    }
}
