//! Which canvas entities may differ between the live document and a version of it, found from what
//! the live document inserted and deleted since the version — instead of comparing every entity.
//!
//! A version is an earlier state of the same document: every struct it holds is in the live
//! document under the same id (GC may have emptied it there). So an entity can differ only if the
//! live document *inserted* a struct inside it since the version (ids at or past the version's
//! state vector) or *deleted* one the version still had (the live delete set minus the version's).
//! Each such id is walked up to the root map entry it belongs to; that entry's key is "touched".
//!
//! Why ids that cannot be walked up may be skipped: an id the live document garbage-collected sits
//! under a deleted parent. If it was visible in the version, its highest deleted ancestor was
//! deleted since the version and still is an item (its own parent is alive, so it was emptied,
//! not collected): that ancestor is a candidate too and names the entity. A root-level item that
//! is neither the version's nor the live document's value of its key changed nothing either side
//! can see; the values that are, are in the index below.
//!
//! Entities whose value is not a `Y.Map` carry no id to look up: they are always compared. When the
//! version is not an earlier state of this document, or too much changed for this to pay, the
//! answer is "compare everything".

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

use yrs::branch::Branch;
use yrs::{Assoc, BranchID, IdSet, Map, Out, ReadTxn, StateVector, StickyIndex, ID};

use crate::canvas::{BLOCKS, RELATIONS};

/// The entities a restore has to compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Touched {
    /// Every entity (no cheaper answer was found).
    All,
    /// Only these keys of `blocks` and of `relations`.
    Keys {
        blocks: BTreeSet<String>,
        relations: BTreeSet<String>,
    },
}

/// How much the search may cost before it gives up and answers [`Touched::All`].
#[derive(Debug, Clone, Copy)]
pub struct SearchLimits {
    /// Candidate ids (inserted plus deleted since the version). Past this, most of the canvas
    /// changed and comparing everything is as cheap.
    pub max_candidates: u64,
    /// Wall time for walking candidates up to their entity (an id's walk goes through the history
    /// of its map key, which a key edited thousands of times makes long).
    pub max_time: Duration,
}

impl Default for SearchLimits {
    fn default() -> Self {
        SearchLimits {
            max_candidates: 50_000,
            max_time: Duration::from_millis(25),
        }
    }
}

/// The roots a restore covers, in [`Touched::Keys`] order.
const ROOTS: [&str; 2] = [BLOCKS, RELATIONS];

/// The entities of `live` that may differ from `version` (a transaction on a document holding an
/// earlier full state of `live`'s document).
pub fn touched_since<L: ReadTxn, V: ReadTxn>(
    live: &L,
    version: &V,
    limits: SearchLimits,
) -> Touched {
    touched_since_side(live, &DocSide(version), limits)
}

/// What the search needs of the version: a document, or a parsed stored state.
pub(crate) trait VersionSide {
    fn state_vector(&self) -> StateVector;
    fn delete_set(&self) -> IdSet;
    /// The keys of root `name` whose entity is one of `entities` (ids of root-level structs),
    /// plus every key whose value is not a `Y.Map` (no id to tell: always compared).
    fn entity_keys(&self, name: &str, entities: &HashSet<ID>) -> Vec<String>;
}

/// A version decoded into a document.
struct DocSide<'a, V>(&'a V);

impl<V: ReadTxn> VersionSide for DocSide<'_, V> {
    fn state_vector(&self) -> StateVector {
        self.0.state_vector()
    }
    fn delete_set(&self) -> IdSet {
        self.0.snapshot().delete_set
    }
    fn entity_keys(&self, name: &str, entities: &HashSet<ID>) -> Vec<String> {
        entity_keys(self.0, name, entities)
    }
}

impl VersionSide for super::StoredVersion {
    fn state_vector(&self) -> StateVector {
        super::StoredVersion::state_vector(self).clone()
    }
    fn delete_set(&self) -> IdSet {
        super::StoredVersion::delete_set(self).clone()
    }
    fn entity_keys(&self, name: &str, entities: &HashSet<ID>) -> Vec<String> {
        self.entries(name)
            .filter(|(_, id)| id.is_none_or(|id| entities.contains(&id)))
            .map(|(key, _)| key.to_owned())
            .collect()
    }
}

/// [`touched_since`] for any version side.
pub(crate) fn touched_since_side<L: ReadTxn>(
    live: &L,
    version: &impl VersionSide,
    limits: SearchLimits,
) -> Touched {
    let started = Instant::now();
    let Some(candidates) = candidates(live, version, limits.max_candidates) else {
        return Touched::All;
    };
    let mut walker = Walker::default();
    let mut walked = 0u32;
    for (client, ranges) in candidates.iter() {
        for range in ranges.iter() {
            for clock in range.clone() {
                walked = walked.wrapping_add(1);
                if walked % 256 == 0 && started.elapsed() > limits.max_time {
                    return Touched::All;
                }
                walker.walk(live, ID::new(*client, clock));
            }
        }
    }
    let mut keys: [BTreeSet<String>; 2] = Default::default();
    for (root, name) in ROOTS.iter().enumerate() {
        for txn_keys in [
            entity_keys(live, name, &walker.entities),
            version.entity_keys(name, &walker.entities),
        ] {
            keys[root].extend(txn_keys);
        }
    }
    let [blocks, relations] = keys;
    Touched::Keys { blocks, relations }
}

/// Ids inserted since the version plus ids deleted since it; `None` when the version is not an
/// earlier state of `live` or the set is larger than `max`.
fn candidates<L: ReadTxn>(live: &L, version: &impl VersionSide, max: u64) -> Option<IdSet> {
    let live_sv = live.state_vector();
    let version_sv = version.state_vector();
    if !is_earlier(&version_sv, &live_sv) {
        return None;
    }
    let mut set = IdSet::new();
    let mut size = 0u64;
    for (client, &clock) in live_sv.iter() {
        let from = version_sv.get(client);
        if clock > from {
            set.insert(ID::new(*client, from), clock - from);
            size += u64::from(clock - from);
        }
    }
    if size > max {
        return None;
    }
    let deleted_since = live.snapshot().delete_set.diff(&version.delete_set());
    for (_, ranges) in deleted_since.iter() {
        size += ranges
            .iter()
            .map(|r| u64::from(r.end.saturating_sub(r.start)))
            .sum::<u64>();
    }
    if size > max {
        return None;
    }
    set.merge_with(deleted_since);
    Some(set)
}

/// Whether every client's clock in `earlier` is at most its clock in `later`.
fn is_earlier(earlier: &StateVector, later: &StateVector) -> bool {
    earlier
        .iter()
        .all(|(client, &clock)| later.get(client) >= clock)
}

/// The keys of root `name` whose entity is one of `entities` (ids of root-level structs), plus every
/// key whose value is not a `Y.Map` (no id to tell: always compared).
fn entity_keys<T: ReadTxn>(txn: &T, name: &str, entities: &HashSet<ID>) -> Vec<String> {
    let Some(map) = txn.get_map(name) else {
        return Vec::new();
    };
    map.iter(txn)
        .filter(|(_, value)| match value {
            Out::YMap(entity) => match AsRef::<Branch>::as_ref(entity).id() {
                BranchID::Nested(id) => entities.contains(&id),
                BranchID::Root(_) => true,
            },
            _ => true,
        })
        .map(|(key, _)| key.to_owned())
        .collect()
}

/// Walks struct ids up to the root-level struct (an entity, or a value of another root) that
/// holds them.
#[derive(Default)]
struct Walker {
    /// Root-level structs reached.
    entities: HashSet<ID>,
    /// Nested maps already walked (e.g. a block's `visual`): the root-level struct above them.
    memo: HashMap<ID, Option<ID>>,
}

impl Walker {
    fn walk<L: ReadTxn>(&mut self, live: &L, id: ID) {
        let mut current = id;
        let mut path: Vec<ID> = Vec::new();
        let found = loop {
            if let Some(&known) = self.memo.get(&current) {
                break known;
            }
            match parent_of(live, current) {
                Some(BranchID::Nested(parent)) => {
                    path.push(parent);
                    current = parent;
                }
                Some(BranchID::Root(_)) => break Some(current),
                // Garbage-collected: see the module comment.
                None => break None,
            }
        };
        for nested in path {
            self.memo.insert(nested, found);
        }
        if let Some(entity) = found {
            self.entities.insert(entity);
        }
    }
}

/// The branch holding struct `id` (`None` for a garbage-collected struct).
fn parent_of<L: ReadTxn>(live: &L, id: ID) -> Option<BranchID> {
    StickyIndex::from_id(id, Assoc::After)
        .get_offset(live)
        .map(|offset| offset.branch.id())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use crate::canvas::{new_canvas_doc, put_block, put_relation, remove_block};
    use crate::restore::tests::copy;
    use serde_json::{json, Value};
    use yrs::{Doc, Transact};

    fn fields(value: Value) -> serde_json::Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    fn keys(doc: &Doc, version: &Doc) -> (Vec<String>, Vec<String>) {
        match touched_since(
            &doc.transact(),
            &version.transact(),
            SearchLimits::default(),
        ) {
            Touched::Keys { blocks, relations } => (
                blocks.into_iter().collect(),
                relations.into_iter().collect(),
            ),
            Touched::All => panic!("expected keys"),
        }
    }

    #[test]
    fn only_the_entities_edited_since_the_version_are_touched() {
        let doc = new_canvas_doc();
        {
            let mut txn = doc.transact_mut();
            for id in ["a", "b", "c", "d"] {
                let f = fields(json!({"type": "NODE", "name": id, "visual": {"x": 1}}));
                put_block(&mut txn, id, &f).unwrap();
            }
            let r = fields(json!({"source_block_id": "a", "target_block_id": "b", "type": "L"}));
            put_relation(&mut txn, "r", &r).unwrap();
        }
        let version = copy(&doc);
        assert_eq!(keys(&doc, &version), (vec![], vec![]), "nothing changed");

        {
            let mut txn = doc.transact_mut();
            put_block(&mut txn, "a", &fields(json!({"visual": {"x": 2}}))).unwrap();
            put_block(&mut txn, "b", &fields(json!({"name": "B2"}))).unwrap();
            remove_block(&mut txn, "c");
            put_block(&mut txn, "e", &fields(json!({"name": "E"}))).unwrap();
        }
        let (blocks, relations) = keys(&doc, &version);
        assert_eq!(blocks, ["a", "b", "c", "e"], "d is untouched");
        assert!(relations.is_empty());
    }

    #[test]
    fn another_document_or_a_later_state_means_everything() {
        let doc = new_canvas_doc();
        put_block(&mut doc.transact_mut(), "a", &fields(json!({"name": "A"}))).unwrap();
        let other = new_canvas_doc();
        put_block(
            &mut other.transact_mut(),
            "a",
            &fields(json!({"name": "A"})),
        )
        .unwrap();
        let limits = SearchLimits::default();
        assert_eq!(
            touched_since(&doc.transact(), &other.transact(), limits),
            Touched::All
        );
        let newer = copy(&doc);
        put_block(
            &mut newer.transact_mut(),
            "b",
            &fields(json!({"name": "B"})),
        )
        .unwrap();
        assert_eq!(
            touched_since(&doc.transact(), &newer.transact(), limits),
            Touched::All,
            "the version knows structs the live document lacks"
        );
        let tight = SearchLimits {
            max_candidates: 0,
            ..limits
        };
        let version = copy(&doc);
        put_block(&mut doc.transact_mut(), "a", &fields(json!({"name": "A2"}))).unwrap();
        assert_eq!(
            touched_since(&doc.transact(), &version.transact(), tight),
            Touched::All
        );
    }

    /// A small deterministic generator (xorshift64*), so a failure replays.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len() as u64) as usize]
        }
    }

    const IDS: [&str; 12] = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"];
    const FIELDS: [&str; 4] = ["name", "type", "x-unknown", "parent_block_id"];
    const NESTED: [&str; 2] = ["visual", "config"];

    /// One random edit of the kinds editors make, written with yrs directly (not through the
    /// canvas model) so that odd shapes occur too: plain JSON entities, nested maps replaced
    /// whole, keys removed, explicit nulls.
    fn random_edit(rng: &mut Rng, doc: &Doc) {
        use yrs::{Any, MapPrelim, WriteTxn};
        let mut txn = doc.transact_mut();
        let root = txn.get_or_insert_map(if rng.below(3) == 0 { RELATIONS } else { BLOCKS });
        let id = rng.pick(&IDS);
        let value = Any::from(rng.below(5) as f64);
        match rng.below(10) {
            0 => {
                root.remove(&mut txn, id);
            }
            1 => {
                root.insert(&mut txn, id, Any::from(format!("plain {}", rng.below(3))));
            }
            2 => {
                let entity = root.insert(&mut txn, id, MapPrelim::default());
                entity.insert(&mut txn, "name", value);
                let visual = entity.insert(&mut txn, "visual", MapPrelim::default());
                visual.insert(&mut txn, "x", Any::from(rng.below(3) as f64));
            }
            step => {
                let entity = match root.get(&txn, id) {
                    Some(Out::YMap(entity)) => entity,
                    _ => root.insert(&mut txn, id, MapPrelim::default()),
                };
                match step {
                    3 | 4 => {
                        entity.insert(&mut txn, rng.pick(&FIELDS), value);
                    }
                    5 => {
                        entity.remove(&mut txn, rng.pick(&FIELDS));
                    }
                    6 => {
                        entity.insert(&mut txn, rng.pick(&FIELDS), Any::Null);
                    }
                    7 => {
                        let key = rng.pick(&NESTED);
                        let inner = match entity.get(&txn, key) {
                            Some(Out::YMap(inner)) => inner,
                            _ => entity.insert(&mut txn, key, MapPrelim::default()),
                        };
                        inner.insert(&mut txn, rng.pick(&["x", "y", "k"]), value);
                    }
                    8 => {
                        let key = rng.pick(&NESTED);
                        if let Some(Out::YMap(inner)) = entity.get(&txn, key) {
                            inner.remove(&mut txn, rng.pick(&["x", "y", "k"]));
                        }
                    }
                    _ => {
                        entity.insert(&mut txn, rng.pick(&NESTED), MapPrelim::default());
                    }
                }
            }
        }
    }

    /// Brings `to` up to date with `from` (what the server and an editor exchange).
    fn sync(from: &Doc, to: &Doc) {
        use yrs::updates::decoder::Decode;
        let sv = to.transact().state_vector();
        let update = from.transact().encode_diff_v1(&sv);
        to.transact_mut()
            .apply_update(yrs::Update::decode_v1(&update).unwrap())
            .unwrap();
    }

    #[test]
    fn restoring_the_touched_entities_equals_restoring_all_of_them_on_random_edits() {
        use crate::restore::{read_raw_canvas, restore_canvas, restore_canvas_since, Compared};
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut touched_rounds = 0;
        for round in 0..300 {
            // The server's document and two editors editing concurrently, synced now and then.
            let server = new_canvas_doc();
            let editors = [new_canvas_doc(), new_canvas_doc()];
            let mut versions = Vec::new();
            for step in 0..(5 + rng.below(60)) {
                let editor = &editors[rng.below(2) as usize];
                random_edit(&mut rng, editor);
                if rng.below(3) == 0 {
                    sync(editor, &server);
                }
                if rng.below(4) == 0 {
                    random_edit(&mut rng, &server);
                }
                if rng.below(5) == 0 {
                    for editor in &editors {
                        sync(&server, editor);
                    }
                }
                if rng.below(8) == 0 || step == 0 {
                    versions.push(copy(&server));
                }
            }
            for editor in &editors {
                sync(editor, &server);
            }
            let version = &versions[rng.below(versions.len() as u64) as usize];
            let wanted = read_raw_canvas(&version.transact());

            let full = copy(&server);
            let full_before = copy(&server);
            let full_summary = restore_canvas(&mut full.transact_mut(), &version.transact());
            let (summary, compared) = restore_canvas_since(
                &mut server.transact_mut(),
                &version.transact(),
                SearchLimits::default(),
            );
            assert_eq!(
                read_raw_canvas(&full.transact()),
                wanted,
                "round {round}: full"
            );
            assert_eq!(
                read_raw_canvas(&server.transact()),
                wanted,
                "round {round}: touched ({compared:?})"
            );
            assert_eq!(summary, full_summary, "round {round}");
            assert_ne!(compared, Compared::AllAfterMismatch, "round {round}");
            if let Compared::Touched(_) = compared {
                touched_rounds += 1;
            }
            // The same restore from the stored update, without a version document.
            let state = version
                .transact()
                .encode_state_as_update_v1(&yrs::StateVector::default());
            let stored = crate::restore::StoredVersion::parse(state).unwrap();
            for (root, entities) in [(BLOCKS, &wanted.blocks), (RELATIONS, &wanted.relations)] {
                assert_eq!(stored.len(root), entities.len(), "round {round}");
                for (key, value) in entities {
                    assert_eq!(
                        stored.entity(root, key).map(|e| e.json()).as_ref(),
                        Some(value),
                        "round {round}: {root} {key}"
                    );
                }
            }
            let from_stored = copy(&full_before);
            let (stored_summary, stored_compared) = crate::restore::restore_canvas_from_stored(
                &mut from_stored.transact_mut(),
                &stored,
                SearchLimits::default(),
            );
            assert_eq!(
                read_raw_canvas(&from_stored.transact()),
                wanted,
                "round {round}: from the stored update ({stored_compared:?})"
            );
            assert_ne!(stored_compared, Compared::AllAfterMismatch, "round {round}");
            assert_eq!(stored_summary.blocks_added, full_summary.blocks_added);
            assert_eq!(stored_summary.blocks_removed, full_summary.blocks_removed);
            assert!(stored_summary.blocks_changed <= full_summary.blocks_changed);
            // The editors converge to the restored canvas too.
            for editor in &editors {
                sync(&server, editor);
                assert_eq!(read_raw_canvas(&editor.transact()), wanted, "round {round}");
            }
        }
        assert!(
            touched_rounds > 250,
            "the touched path ran {touched_rounds} times"
        );
    }
}
