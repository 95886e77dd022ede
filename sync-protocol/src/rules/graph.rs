//! Rules over the whole live canvas, checked by the HTTP edge before a server-originated edit:
//! references name live blocks, a relation links two different blocks at most once, parents never
//! loop, and what a delete removes with it. A live block is one stored under its canonical id in
//! the document's `blocks` map; the document may hold states these rules forbid (stock clients),
//! which the projection repairs, so every walk here is bounded.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use uuid::Uuid;

use super::{parse_id, parse_ref, FieldViolation, Problem};
use crate::canvas::CanvasState;

/// Whether `id` is a live block of the canvas.
pub fn is_live_block(canvas: &CanvasState, id: Uuid) -> bool {
    canvas.blocks.contains_key(&id.to_string())
}

/// `parent` as the parent of `block` (which may not exist yet): a live block, neither `block`
/// itself nor one of its descendants (that would close a cycle).
pub fn check_parent(canvas: &CanvasState, block: Uuid, parent: Uuid) -> Result<(), FieldViolation> {
    let refuse = |problem| Err(FieldViolation::new("parent_block_id", problem));
    if parent == block {
        return refuse(Problem::ParentCycle);
    }
    if !is_live_block(canvas, parent) {
        return refuse(Problem::NotALiveBlock);
    }
    // `block` is an ancestor of `parent` iff walking up from `parent` reaches it. The walk is
    // bounded by the number of blocks: the document may already hold a cycle.
    let mut cursor = parent;
    for _ in 0..canvas.blocks.len() {
        let up = canvas
            .blocks
            .get(&cursor.to_string())
            .and_then(|entry| parse_ref(&entry.parent_block_id));
        match up {
            Some(next) if next == block => return refuse(Problem::ParentCycle),
            Some(next) => cursor = next,
            None => break,
        }
    }
    Ok(())
}

/// The ends of relation `relation` (which may not exist yet): two different live blocks, not
/// already linked in this direction by another relation (`core_relations` is unique on
/// `(source_block_id, target_block_id)` among live rows).
pub fn check_relation_ends(
    canvas: &CanvasState,
    relation: Uuid,
    source: Uuid,
    target: Uuid,
) -> Result<(), Vec<FieldViolation>> {
    let mut found = Vec::new();
    for (field, end) in [("source_block_id", source), ("target_block_id", target)] {
        if !is_live_block(canvas, end) {
            found.push(FieldViolation::new(field, Problem::NotALiveBlock));
        }
    }
    if source == target {
        found.push(FieldViolation::new(
            "target_block_id",
            Problem::SelfRelation,
        ));
    }
    if found.is_empty() {
        if let Some(existing) = duplicate_of(canvas, relation, source, target) {
            let problem = Problem::DuplicateRelation { existing };
            found.push(FieldViolation::new("target_block_id", problem));
        }
    }
    if found.is_empty() {
        Ok(())
    } else {
        Err(found)
    }
}

/// Another relation with the same ends: its document key.
fn duplicate_of(
    canvas: &CanvasState,
    relation: Uuid,
    source: Uuid,
    target: Uuid,
) -> Option<String> {
    canvas
        .relations
        .iter()
        .filter(|(key, _)| parse_id(key) != Some(relation))
        .find(|(_, entry)| {
            parse_ref(&entry.source_block_id) == Some(source)
                && parse_ref(&entry.target_block_id) == Some(target)
        })
        .map(|(key, _)| key.clone())
}

/// What deleting a block removes with it, as document keys (sorted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cascade {
    /// The block and all its descendants.
    pub blocks: BTreeSet<String>,
    /// Every relation with an end among those blocks.
    pub relations: BTreeSet<String>,
}

/// What deleting live block `id` removes, following the seed's foreign keys: `parent_block_id`
/// and both relation ends are `ON DELETE CASCADE`, so the block's descendants go with it, and every
/// relation touching any removed block. Applied in the same transaction as the delete, so no
/// reader ever sees a child pointing at a removed parent or a relation dangling.
pub fn cascade(canvas: &CanvasState, id: Uuid) -> Cascade {
    let mut children: HashMap<Uuid, Vec<&str>> = HashMap::new();
    for (key, entry) in &canvas.blocks {
        if let Some(parent) = parse_ref(&entry.parent_block_id) {
            children.entry(parent).or_default().push(key);
        }
    }
    let mut removed = Cascade::default();
    removed.blocks.insert(id.to_string());
    let mut removed_ids = HashSet::from([id]);
    let mut queue = VecDeque::from([id]);
    while let Some(parent) = queue.pop_front() {
        for key in children.get(&parent).into_iter().flatten() {
            if !removed.blocks.insert((*key).to_owned()) {
                continue;
            }
            // A child under a non-id key cannot be anyone's parent: nothing to walk further.
            if let Some(child) = parse_id(key).filter(|c| removed_ids.insert(*c)) {
                queue.push_back(child);
            }
        }
    }
    for (key, entry) in &canvas.relations {
        let touches = [&entry.source_block_id, &entry.target_block_id]
            .into_iter()
            .filter_map(parse_ref)
            .any(|end| removed_ids.contains(&end));
        if touches {
            removed.relations.insert(key.clone());
        }
    }
    removed
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use crate::canvas::{BlockEntry, RelationEntry};
    use serde_json::{json, Value};

    fn uid(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn key(n: u128) -> String {
        uid(n).to_string()
    }

    fn block(parent: Option<u128>) -> BlockEntry {
        BlockEntry {
            block_type: json!("t"),
            name: json!("n"),
            parent_block_id: parent.map_or(Value::Null, |p| json!(key(p))),
            origin_asset_id: Value::Null,
            created_by_id: Value::Null,
            config: Value::Null,
            visual: Value::Null,
            invaders: Value::Null,
        }
    }

    fn relation(source: u128, target: u128) -> RelationEntry {
        RelationEntry {
            source_block_id: json!(key(source)),
            target_block_id: json!(key(target)),
            relation_type: json!("l"),
            rules: Value::Null,
            visual: Value::Null,
        }
    }

    /// 1 ← 2 ← 3 (3's parent is 2, 2's parent is 1), 4 alone; relations 50: 1→4, 51: 3→4, 52: 4→4.
    fn canvas() -> CanvasState {
        let mut canvas = CanvasState::default();
        for (id, parent) in [(1, None), (2, Some(1)), (3, Some(2)), (4, None)] {
            canvas.blocks.insert(key(id), block(parent));
        }
        for (id, (s, t)) in [(50, (1, 4)), (51, (3, 4)), (52, (4, 4))] {
            canvas.relations.insert(key(id), relation(s, t));
        }
        canvas
    }

    fn problem(result: Result<(), FieldViolation>) -> Problem {
        result.unwrap_err().problem
    }

    #[test]
    fn parents_must_be_live_and_not_below_the_block() {
        let c = canvas();
        assert_eq!(check_parent(&c, uid(4), uid(3)), Ok(()));
        assert_eq!(check_parent(&c, uid(3), uid(1)), Ok(()));
        assert_eq!(check_parent(&c, uid(99), uid(2)), Ok(()), "a new block");
        assert_eq!(
            problem(check_parent(&c, uid(2), uid(2))),
            Problem::ParentCycle
        );
        assert_eq!(
            problem(check_parent(&c, uid(1), uid(3))),
            Problem::ParentCycle
        );
        assert_eq!(
            problem(check_parent(&c, uid(1), uid(2))),
            Problem::ParentCycle
        );
        assert_eq!(
            problem(check_parent(&c, uid(1), uid(77))),
            Problem::NotALiveBlock
        );
        assert_eq!(
            check_parent(&c, uid(1), uid(3)).unwrap_err().field,
            "parent_block_id"
        );
    }

    #[test]
    fn a_cycle_already_in_the_document_does_not_hang_the_walk() {
        let mut c = canvas();
        c.blocks.insert(key(1), block(Some(3)));
        assert_eq!(check_parent(&c, uid(4), uid(1)), Ok(()));
        assert_eq!(
            problem(check_parent(&c, uid(2), uid(1))),
            Problem::ParentCycle
        );
    }

    #[test]
    fn relation_ends_are_live_different_and_unique() {
        let c = canvas();
        assert_eq!(check_relation_ends(&c, uid(60), uid(4), uid(1)), Ok(()));
        // Re-checking a relation against itself is no duplicate.
        assert_eq!(check_relation_ends(&c, uid(50), uid(1), uid(4)), Ok(()));
        let dup = check_relation_ends(&c, uid(60), uid(1), uid(4)).unwrap_err();
        assert_eq!(
            dup,
            [FieldViolation::new(
                "target_block_id",
                Problem::DuplicateRelation { existing: key(50) }
            )]
        );
        let selfish = check_relation_ends(&c, uid(60), uid(2), uid(2)).unwrap_err();
        assert_eq!(selfish[0].problem, Problem::SelfRelation);
        let dangling = check_relation_ends(&c, uid(60), uid(77), uid(78)).unwrap_err();
        let fields: Vec<&str> = dangling.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["source_block_id", "target_block_id"]);
    }

    #[test]
    fn deleting_a_block_removes_its_descendants_and_their_relations() {
        let mut c = canvas();
        c.blocks.insert("odd-key".into(), block(Some(2)));
        let removed = cascade(&c, uid(1));
        let expected: BTreeSet<String> = [key(1), key(2), key(3), "odd-key".into()]
            .into_iter()
            .collect();
        assert_eq!(removed.blocks, expected);
        assert_eq!(removed.relations, [key(50), key(51)].into_iter().collect());
        let leaf = cascade(&c, uid(4));
        assert_eq!(leaf.blocks, [key(4)].into_iter().collect());
        assert_eq!(leaf.relations.len(), 3);
    }

    #[test]
    fn a_cascade_through_a_cycle_ends() {
        let mut c = canvas();
        c.blocks.insert(key(1), block(Some(3)));
        let removed = cascade(&c, uid(2));
        assert_eq!(removed.blocks.len(), 3);
    }
}
