//! A version's canvas read straight from its stored update (a Yjs v1 full state), without building
//! a yrs document: the structs are parsed (with yrs's own decoder), each item's map and key are
//! resolved (explicit, or inherited from its origin as Yjs does), and entities are turned into JSON
//! only when asked for. Building the document instead costs ~3× more (integrating every struct)
//! plus freeing it.
//!
//! In an integrated full state, every map key has at most one live item (the others are in the
//! delete set or emptied), so a key's value is simply its live item: no conflict resolution is
//! needed. Only what canvas documents hold is read: `Any` values and nested `Y.Map`s. A state with
//! any other live content (texts, arrays, XML, sub-documents, strings), a live item whose map
//! cannot be resolved, or two live items for one key is [`Unsupported`]: the caller decodes it
//! into a document instead.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map as JsonMap, Value};
use yrs::encoding::read::{Cursor, Read};
use yrs::updates::decoder::{Decode, Decoder, DecoderV1};
use yrs::{Any, ClientID, IdSet, StateVector, ID};

use crate::canvas::{any_to_json, MAX_DEPTH};

/// The stored state holds something this reader does not handle (or does not parse).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stored state not readable without a document: {0}")]
pub struct Unsupported(pub &'static str);

/// Which map an item belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum MapKey {
    Root(Arc<str>),
    Nested(ID),
}

/// A live map value.
enum Live {
    Any(Any),
    Map(ID),
}

/// A parsed version state.
pub struct StoredVersion {
    state_vector: StateVector,
    delete_set: IdSet,
    /// The live entries of the root maps.
    roots: HashMap<Arc<str>, HashMap<Arc<str>, Live>>,
    /// The live entries of every nested map, by the map's id.
    nested: HashMap<ID, Vec<(Arc<str>, Live)>>,
}

/// One struct as parsed, before its map is known.
struct Parsed {
    clock: u32,
    len: u32,
    item: Option<ParsedItem>,
}

struct ParsedItem {
    origin: Option<ID>,
    right_origin: Option<ID>,
    parent: Option<MapKey>,
    parent_sub: Option<Arc<str>>,
    /// `None`: emptied (deleted) content.
    value: Option<Live>,
}

impl StoredVersion {
    /// Parses a full state (Yjs v1 update).
    pub fn parse(update: &[u8]) -> Result<Self, Unsupported> {
        let mut decoder = DecoderV1::new(Cursor::new(update));
        let mut clients = parse_structs(&mut decoder)?;
        let delete_set = IdSet::decode(&mut decoder).map_err(|_| Unsupported("delete set"))?;
        let mut state_vector = StateVector::default();
        for (client, structs) in &clients {
            if let (Some(first), Some(last)) = (structs.first(), structs.last()) {
                if first.clock == 0 {
                    state_vector.set_max(*client, last.clock + last.len);
                }
            }
        }
        let resolved = resolve_all(&clients)?;
        let mut version = StoredVersion {
            state_vector,
            delete_set,
            roots: HashMap::new(),
            nested: HashMap::new(),
        };
        for (client, structs) in &mut clients {
            let maps = &resolved[client];
            for (index, parsed) in structs.iter_mut().enumerate() {
                let Some(item) = parsed.item.as_mut() else {
                    continue;
                };
                let Some(value) = item.value.take() else {
                    continue;
                };
                let deleted = (parsed.clock..parsed.clock + parsed.len)
                    .any(|clock| version.delete_set.contains(&ID::new(*client, clock)));
                if deleted {
                    continue;
                }
                let Some((map, Some(key))) = maps[index].clone() else {
                    return Err(Unsupported("a live item outside a known map"));
                };
                version.add(map, key, value)?;
            }
        }
        Ok(version)
    }

    fn add(&mut self, map: MapKey, key: Arc<str>, value: Live) -> Result<(), Unsupported> {
        let twice = match map {
            MapKey::Root(name) => self
                .roots
                .entry(name)
                .or_default()
                .insert(key, value)
                .is_some(),
            MapKey::Nested(id) => {
                let entries = self.nested.entry(id).or_default();
                let twice = entries.iter().any(|(k, _)| *k == key);
                entries.push((key, value));
                twice
            }
        };
        if twice {
            return Err(Unsupported("two live values for one key"));
        }
        Ok(())
    }

    pub fn state_vector(&self) -> &StateVector {
        &self.state_vector
    }

    pub fn delete_set(&self) -> &IdSet {
        &self.delete_set
    }

    /// The entries of root map `root`: key and, for a `Y.Map` value, its id.
    pub fn entries<'a>(&'a self, root: &str) -> impl Iterator<Item = (&'a str, Option<ID>)> + 'a {
        self.roots
            .get(root)
            .into_iter()
            .flat_map(|entries| entries.iter())
            .map(|(key, value)| {
                let id = match value {
                    Live::Map(id) => Some(*id),
                    Live::Any(_) => None,
                };
                (key.as_ref(), id)
            })
    }

    /// How many entries root map `root` has.
    pub fn len(&self, root: &str) -> usize {
        self.roots.get(root).map_or(0, HashMap::len)
    }

    /// Entity `key` of root `root` as JSON, exactly as the canvas reads it from a document.
    pub fn entity_json(&self, root: &str, key: &str) -> Option<Value> {
        let value = self.roots.get(root)?.get(key)?;
        Some(self.live_json(value, 0))
    }

    fn live_json(&self, value: &Live, depth: usize) -> Value {
        if depth > MAX_DEPTH {
            return Value::Null;
        }
        match value {
            Live::Any(any) => any_to_json(any, depth),
            Live::Map(id) => Value::Object(
                self.nested
                    .get(id)
                    .into_iter()
                    .flat_map(|entries| entries.iter())
                    .map(|(key, value)| (key.to_string(), self.live_json(value, depth + 1)))
                    .collect::<JsonMap<String, Value>>(),
            ),
        }
    }
}

/// The structs of every client, in clock order, as yrs's `Update::decode` reads them.
fn parse_structs(decoder: &mut DecoderV1) -> Result<HashMap<ClientID, Vec<Parsed>>, Unsupported> {
    let malformed = |_| Unsupported("malformed structs");
    let clients_len: u32 = decoder.read_var().map_err(malformed)?;
    let mut clients: HashMap<ClientID, Vec<Parsed>> = HashMap::new();
    for _ in 0..clients_len {
        let count: u32 = decoder.read_var().map_err(malformed)?;
        let client = decoder.read_client().map_err(malformed)?;
        let mut clock: u32 = decoder.read_var().map_err(malformed)?;
        if clients.contains_key(&client) {
            return Err(Unsupported("a client twice (not a full state)"));
        }
        let structs = clients.entry(client).or_default();
        for _ in 0..count {
            let parsed = parse_struct(decoder, ID::new(client, clock))?;
            clock = clock
                .checked_add(parsed.len)
                .ok_or(Unsupported("clock overflow"))?;
            if parsed.len > 0 {
                structs.push(parsed);
            }
        }
    }
    Ok(clients)
}

const SKIP: u8 = 10;
const GC: u8 = 0;
const HAS_ORIGIN: u8 = 0b1000_0000;
const HAS_RIGHT_ORIGIN: u8 = 0b0100_0000;
const HAS_PARENT_SUB: u8 = 0b0010_0000;
const CONTENT: u8 = 0b0001_1111;
const CONTENT_DELETED: u8 = 1;
const CONTENT_TYPE: u8 = 7;
const CONTENT_ANY: u8 = 8;
const TYPE_MAP: u8 = 1;

fn parse_struct(decoder: &mut DecoderV1, id: ID) -> Result<Parsed, Unsupported> {
    let malformed = |_| Unsupported("malformed struct");
    let clock = id.clock;
    let info = decoder.read_info().map_err(malformed)?;
    match info {
        SKIP => {
            let len: u32 = decoder.read_var().map_err(malformed)?;
            Ok(Parsed {
                clock,
                len,
                item: None,
            })
        }
        GC => {
            let len = decoder.read_len().map_err(malformed)?;
            Ok(Parsed {
                clock,
                len,
                item: None,
            })
        }
        info => {
            let explicit_parent = info & (HAS_ORIGIN | HAS_RIGHT_ORIGIN) == 0;
            let origin = if info & HAS_ORIGIN != 0 {
                Some(decoder.read_left_id().map_err(malformed)?)
            } else {
                None
            };
            let right_origin = if info & HAS_RIGHT_ORIGIN != 0 {
                Some(decoder.read_right_id().map_err(malformed)?)
            } else {
                None
            };
            let parent = if explicit_parent {
                if decoder.read_parent_info().map_err(malformed)? {
                    Some(MapKey::Root(
                        decoder.read_string().map_err(malformed)?.into(),
                    ))
                } else {
                    Some(MapKey::Nested(decoder.read_left_id().map_err(malformed)?))
                }
            } else {
                None
            };
            let parent_sub = if explicit_parent && info & HAS_PARENT_SUB != 0 {
                Some(Arc::from(decoder.read_string().map_err(malformed)?))
            } else {
                None
            };
            // Only what canvas documents hold; anything else goes to the document path (whose
            // decoder yrs maintains).
            let (len, value) = match info & CONTENT {
                CONTENT_DELETED => (decoder.read_len().map_err(malformed)?, None),
                CONTENT_ANY => {
                    let count = decoder.read_len().map_err(malformed)?;
                    let mut last = None;
                    for _ in 0..count {
                        last = Some(decoder.read_any().map_err(malformed)?);
                    }
                    (count, last.map(Live::Any))
                }
                CONTENT_TYPE => match decoder.read_type_ref().map_err(malformed)? {
                    TYPE_MAP => (1, Some(Live::Map(id))),
                    _ => return Err(Unsupported("a shared type other than Y.Map")),
                },
                _ => return Err(Unsupported("content other than values and maps")),
            };
            Ok(Parsed {
                clock,
                len,
                item: Some(ParsedItem {
                    origin,
                    right_origin,
                    parent,
                    parent_sub,
                    value,
                }),
            })
        }
    }
}

/// Every struct's map and key: its own, or (as Yjs integrates it) its origin's, else its right
/// origin's; `None` when that leads to a collected or missing struct (the item reads as collected).
type Resolved = Option<(MapKey, Option<Arc<str>>)>;

fn resolve_all(
    clients: &HashMap<ClientID, Vec<Parsed>>,
) -> Result<HashMap<ClientID, Vec<Resolved>>, Unsupported> {
    let mut memo: HashMap<ClientID, Vec<Option<Resolved>>> = clients
        .iter()
        .map(|(client, structs)| (*client, vec![None; structs.len()]))
        .collect();
    for (client, structs) in clients {
        for index in 0..structs.len() {
            resolve(clients, &mut memo, (*client, index))?;
        }
    }
    Ok(memo
        .into_iter()
        .map(|(client, resolved)| (client, resolved.into_iter().map(Option::flatten).collect()))
        .collect())
}

/// Resolves one struct, walking its origin chain iteratively (a key set many times in a row makes
/// a long chain) and memoizing every link.
fn resolve(
    clients: &HashMap<ClientID, Vec<Parsed>>,
    memo: &mut HashMap<ClientID, Vec<Option<Resolved>>>,
    start: (ClientID, usize),
) -> Result<(), Unsupported> {
    let mut chain: Vec<(ClientID, usize)> = Vec::new();
    let mut at = start;
    let resolved = loop {
        if let Some(known) = &memo[&at.0][at.1] {
            break known.clone();
        }
        if chain.len() > MAX_ORIGIN_CHAIN {
            return Err(Unsupported("origin chain too long"));
        }
        chain.push(at);
        let Some(item) = &clients[&at.0][at.1].item else {
            break None;
        };
        if let Some(parent) = &item.parent {
            break Some((parent.clone(), item.parent_sub.clone()));
        }
        match item
            .origin
            .or(item.right_origin)
            .and_then(|n| find(clients, n))
        {
            Some(next) => at = next,
            None => break None,
        }
    };
    for (client, index) in chain {
        if let Some(slot) = memo.get_mut(&client).and_then(|m| m.get_mut(index)) {
            *slot = Some(resolved.clone());
        }
    }
    Ok(())
}

/// The struct holding `id`.
fn find(clients: &HashMap<ClientID, Vec<Parsed>>, id: ID) -> Option<(ClientID, usize)> {
    let structs = clients.get(&id.client)?;
    let index = structs
        .partition_point(|s| s.clock <= id.clock)
        .checked_sub(1)?;
    let s = &structs[index];
    (id.clock < s.clock + s.len).then_some((id.client, index))
}

/// Origin chains longer than this are not followed: the document path handles them.
const MAX_ORIGIN_CHAIN: usize = 1_000_000;

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use crate::canvas::{new_canvas_doc, put_block, BLOCKS};
    use crate::restore::read_raw_canvas;
    use serde_json::json;
    use yrs::{Map, ReadTxn, Text, TextPrelim, Transact, WriteTxn};

    fn full_state(doc: &yrs::Doc) -> Vec<u8> {
        doc.transact()
            .encode_state_as_update_v1(&StateVector::default())
    }

    #[test]
    fn reads_the_canvas_a_document_reads() {
        let doc = new_canvas_doc();
        {
            let mut txn = doc.transact_mut();
            for i in 0..50 {
                let f = json!({"type": "NODE", "name": format!("B{i}"), "config": {"n": i},
                    "visual": {"x": i as f64 * 1.5, "y": null}, "parent_block_id": null});
                put_block(&mut txn, &format!("b{i}"), f.as_object().unwrap()).unwrap();
            }
        }
        for i in 0..50 {
            let mut txn = doc.transact_mut();
            let f = json!({"name": format!("renamed {i}"), "visual": {"x": 0}});
            put_block(&mut txn, &format!("b{}", i % 7), f.as_object().unwrap()).unwrap();
            crate::canvas::remove_block(&mut txn, &format!("b{}", 20 + i % 5));
        }
        let stored = StoredVersion::parse(&full_state(&doc)).unwrap();
        let raw = read_raw_canvas(&doc.transact());
        assert_eq!(stored.len(BLOCKS), raw.blocks.len());
        for (key, value) in &raw.blocks {
            assert_eq!(
                stored.entity_json(BLOCKS, key).as_ref(),
                Some(value),
                "{key}"
            );
        }
        assert!(stored.entity_json(BLOCKS, "b20").is_none(), "removed");
        assert_eq!(stored.state_vector(), &doc.transact().state_vector());
        assert_eq!(stored.delete_set(), &doc.transact().snapshot().delete_set);
    }

    #[test]
    fn content_the_canvas_does_not_use_is_unsupported() {
        let doc = new_canvas_doc();
        {
            let mut txn = doc.transact_mut();
            let blocks = txn.get_or_insert_map(BLOCKS);
            let text = blocks.insert(&mut txn, "t", TextPrelim::new("hello"));
            text.insert(&mut txn, 5, " world");
        }
        assert!(StoredVersion::parse(&full_state(&doc)).is_err());
        assert!(StoredVersion::parse(&[1, 2, 3]).is_err(), "garbage");
        assert!(StoredVersion::parse(&[]).is_err(), "nothing");
    }
}
