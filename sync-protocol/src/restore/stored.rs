//! A version's canvas read straight from its stored update (a Yjs v1 full state), without building
//! a yrs document: the structs are parsed (with yrs's own decoder), each item's map and key are
//! resolved (explicit, or inherited from its origin as Yjs does), and entities are turned into JSON
//! only when asked for. Building the document instead costs ~3× more (integrating every struct)
//! plus freeing it.
//!
//! In an integrated full state, every map key has at most one live item (the others are in the
//! delete set or emptied), so a key's value is simply its live item: no conflict resolution is
//! needed. Only what canvas documents hold is read: `Any` values and nested `Y.Map`s. A state with
//! any other content (texts, arrays, XML, sub-documents, strings), with structs a document would
//! keep pending (gaps), with a live item whose map cannot be resolved, or with two live items for
//! one key is [`Unsupported`]: the caller decodes it into a document instead.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use serde_json::{Map as JsonMap, Value};
use yrs::encoding::read::{Cursor, Read};
use yrs::updates::decoder::{Decode, Decoder, DecoderV1};
use yrs::{Any, ClientID, IdSet, StateVector, ID};

use crate::canvas::{any_to_json, canvas_from_json, CanvasState, BLOCKS, MAX_DEPTH, RELATIONS};

/// The stored state holds something this reader does not handle (or does not parse).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stored state not readable without a document: {0}")]
pub struct Unsupported(pub &'static str);

/// A string of the stored update: (offset, length) in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Text(u32, u32);

/// Which map an item belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MapKey {
    Root(Text),
    Nested(ID),
}

/// A live map value: the offset of its encoded `Any`, or the id of a nested `Y.Map`.
#[derive(Debug, Clone, Copy)]
enum Live {
    Any(u32),
    Map(ID),
}

/// A parsed version state. Keys and values stay in the update's bytes and are read when asked
/// for: a restore needs a few hundred of a canvas's entities, not all of them.
pub struct StoredVersion {
    bytes: Vec<u8>,
    state_vector: StateVector,
    delete_set: IdSet,
    /// The live entries of the root maps: (root name, key, value), sorted by root and key.
    roots: Vec<(Text, Text, Live)>,
    /// The live entries of every nested map: (map id, key, value), sorted by map id.
    nested: Vec<(ID, Text, Live)>,
    /// Where each nested map's entries are in `nested`: (map id, from, to), sorted by map id.
    nested_maps: Vec<(ID, u32, u32)>,
}

/// One struct as parsed, before its map is known.
struct Parsed {
    clock: u32,
    len: u32,
    item: Option<ParsedItem>,
}

struct ParsedItem {
    /// Where its map and key come from: given, or its origin's (else its right origin's).
    place: Place,
    /// `None`: emptied (deleted) content.
    value: Option<Live>,
}

enum Place {
    Given(MapKey, Option<Text>),
    Neighbour(ID),
}

impl StoredVersion {
    /// Parses a full state (Yjs v1 update).
    pub fn parse(bytes: Vec<u8>) -> Result<Self, Unsupported> {
        let whole = 0..bytes.len();
        Self::parse_layers(bytes, &[whole])
    }

    /// Parses a version stored as `changes` since the full state `base` (an update encoded against
    /// base's state vector, from the same document): the state both make together.
    pub fn parse_with_base(base: &[u8], changes: &[u8]) -> Result<Self, Unsupported> {
        // Offsets into the buffer are u32s: the two together must fit.
        let len = base
            .len()
            .checked_add(changes.len())
            .filter(|&len| u32::try_from(len).is_ok())
            .ok_or(Unsupported("update too large"))?;
        let mut bytes = Vec::with_capacity(len);
        bytes.extend_from_slice(base);
        bytes.extend_from_slice(changes);
        // One owned buffer, base first: every offset recorded in either region stays valid.
        Self::parse_layers(bytes, &[0..base.len(), base.len()..len])
    }

    /// Parses the updates at `regions` of `bytes` (each a Yjs v1 update; the first a full state,
    /// each later one continuing every client where the ones before it ended) as one state.
    fn parse_layers(bytes: Vec<u8>, regions: &[Range<usize>]) -> Result<Self, Unsupported> {
        let (clients, delete_set) = parse_regions(&bytes, regions)?;
        let state_vector = clients.state_vector();
        let places = resolve_all(&clients)?;
        let (mut roots, mut nested) = (Vec::new(), Vec::new());
        nested.reserve(clients.0.iter().map(|(_, structs)| structs.len()).sum());
        for ((client, structs), places) in clients.0.iter().zip(&places) {
            let mut deleted = DeletedRanges::of(&delete_set, *client);
            for (parsed, place) in structs.iter().zip(places) {
                let Some(ParsedItem {
                    value: Some(value), ..
                }) = &parsed.item
                else {
                    continue;
                };
                if deleted.overlaps(parsed.clock, parsed.clock + parsed.len) {
                    continue;
                }
                match place.flatten() {
                    Some((MapKey::Root(root), Some(key))) => roots.push((root, key, *value)),
                    Some((MapKey::Nested(map), Some(key))) => nested.push((map, key, *value)),
                    _ => return Err(Unsupported("a live item outside a known map")),
                }
            }
        }
        let raw = |t: Text| raw_of(&bytes, t);
        sort_by_root_and_key(&mut roots, &bytes);
        // Stable and adaptive: each client's entries arrive mostly in map order already.
        nested.sort_by_key(|entry| entry.0);
        let twice_in_roots = roots
            .windows(2)
            .any(|w| (raw(w[0].0), raw(w[0].1)) == (raw(w[1].0), raw(w[1].1)));
        // Nested maps are small (an entity's fields): compare within each map.
        let twice_in_nested = nested.chunk_by(|a, b| a.0 == b.0).any(|map| {
            map.iter()
                .enumerate()
                .any(|(i, a)| map[..i].iter().any(|b| raw(a.1) == raw(b.1)))
        });
        if twice_in_roots || twice_in_nested {
            return Err(Unsupported("two live values for one key"));
        }
        let mut nested_maps = Vec::new();
        let mut from = 0u32;
        for map in nested.chunk_by(|a, b| a.0 == b.0) {
            // `nested` holds fewer entries than the update has bytes: the sum fits a u32.
            let to = from.saturating_add(map.len() as u32);
            nested_maps.push((map[0].0, from, to));
            from = to;
        }
        Ok(StoredVersion {
            bytes,
            state_vector,
            delete_set,
            roots,
            nested,
            nested_maps,
        })
    }

    pub fn state_vector(&self) -> &StateVector {
        &self.state_vector
    }

    pub fn delete_set(&self) -> &IdSet {
        &self.delete_set
    }

    /// The entries of root map `root`, sorted by key.
    fn root_entries(&self, root: &str) -> &[(Text, Text, Live)] {
        let root = root.as_bytes();
        let from = self
            .roots
            .partition_point(|(r, _, _)| raw_of(&self.bytes, *r) < root);
        let to = self
            .roots
            .partition_point(|(r, _, _)| raw_of(&self.bytes, *r) <= root);
        &self.roots[from..to]
    }

    /// The entries of root map `root`: key and, for a `Y.Map` value, its id.
    pub fn entries<'a>(&'a self, root: &str) -> impl Iterator<Item = (&'a str, Option<ID>)> + 'a {
        self.root_entries(root).iter().map(|(_, key, value)| {
            let id = match value {
                Live::Map(id) => Some(*id),
                Live::Any(_) => None,
            };
            (self.text(*key), id)
        })
    }

    /// How many entries root map `root` has.
    pub fn len(&self, root: &str) -> usize {
        self.root_entries(root).len()
    }

    /// Entity `key` of root `root`.
    pub fn entity(&self, root: &str, key: &str) -> Option<StoredEntity<'_>> {
        self.entities_in_order(root).seek(key)
    }

    /// The entities of root `root`, for lookups in ascending key order.
    pub fn entities_in_order(&self, root: &str) -> KeyOrderLookup<'_> {
        KeyOrderLookup {
            version: self,
            entries: self.root_entries(root),
            at: 0,
        }
    }

    /// The `Any` encoded at `offset` (parsed once already, skipped over, so it decodes).
    fn any_at(&self, offset: u32) -> Option<Any> {
        let mut decoder = DecoderV1::new(Cursor {
            buf: &self.bytes,
            next: offset as usize,
        });
        decoder.read_any().ok()
    }

    /// The live entries of nested map `id`.
    fn nested_entries(&self, id: ID) -> &[(ID, Text, Live)] {
        let Ok(at) = self.nested_maps.binary_search_by_key(&id, |(map, ..)| *map) else {
            return &[];
        };
        let (_, from, to) = self.nested_maps[at];
        self.nested
            .get(from as usize..to as usize)
            .unwrap_or_default()
    }

    /// The fields of nested map `id`, each value read by `read`.
    fn nested_fields<'s, T>(
        &'s self,
        id: ID,
        read: impl Fn(Live) -> T + 's,
    ) -> impl Iterator<Item = (String, T)> + 's {
        self.nested_entries(id)
            .iter()
            .map(move |(_, key, value)| (self.text(*key).to_owned(), read(*value)))
    }

    fn live_json(&self, value: Live, depth: usize) -> Value {
        if depth > MAX_DEPTH {
            return Value::Null;
        }
        match value {
            Live::Any(offset) => self
                .any_at(offset)
                .map_or(Value::Null, |any| any_to_json(&any, depth)),
            Live::Map(id) => Value::Object(
                self.nested_fields(id, |value| self.live_json(value, depth + 1))
                    .collect::<JsonMap<String, Value>>(),
            ),
        }
    }

    /// The whole canvas, as [`crate::canvas::read_canvas`] reads it from the decoded document.
    pub fn canvas(&self) -> CanvasState {
        let entities = |root: &'static str| {
            self.root_entries(root)
                .iter()
                .map(move |(_, key, value)| (self.text(*key).to_owned(), self.live_json(*value, 0)))
        };
        canvas_from_json(entities(BLOCKS), entities(RELATIONS))
    }

    fn live_value(&self, value: Live, depth: usize) -> StoredValue {
        match value {
            Live::Any(offset) => StoredValue::Any(self.any_at(offset).unwrap_or(Any::Null)),
            // As deep as the JSON reader goes (nested maps of a canvas are one level deep).
            Live::Map(_) if depth > MAX_DEPTH => StoredValue::Any(Any::Null),
            Live::Map(id) => StoredValue::Map(
                self.nested_fields(id, |value| self.live_value(value, depth + 1))
                    .collect(),
            ),
        }
    }

    fn text(&self, t: Text) -> &str {
        text_of(&self.bytes, t)
    }
}

/// One entity of a stored version, read in the form its caller needs.
#[derive(Clone, Copy)]
pub struct StoredEntity<'a> {
    version: &'a StoredVersion,
    live: Live,
}

impl StoredEntity<'_> {
    /// As JSON, exactly as the canvas reads it from a document.
    pub fn json(&self) -> Value {
        self.version.live_json(self.live, 0)
    }

    /// As the values it holds, for writing it into a document again without a detour through
    /// JSON (a restore onto an empty canvas writes every entity).
    pub fn value(&self) -> StoredValue {
        self.version.live_value(self.live, 0)
    }
}

/// Lookups of one root map's entities in ascending key order (as a restore walks its sorted key
/// set): each starts where the last one ended and gallops forward, so walking every key costs a
/// comparison or two per key instead of a binary search through keys scattered over the 5 MB
/// update (a cache miss per step).
pub struct KeyOrderLookup<'a> {
    version: &'a StoredVersion,
    entries: &'a [(Text, Text, Live)],
    at: usize,
}

impl<'a> KeyOrderLookup<'a> {
    /// Entity `key`; keys must come in ascending (byte) order; an earlier key is not found.
    pub fn seek(&mut self, key: &str) -> Option<StoredEntity<'a>> {
        let (key, bytes) = (key.as_bytes(), &self.version.bytes);
        let rest = &self.entries[self.at..];
        let before = |entry: &(Text, Text, Live)| raw_of(bytes, entry.1) < key;
        // Every entry of rest[..low] is before `key`; rest[high] (when there) is not.
        let (mut low, mut high, mut step) = (0, 0, 1);
        while high < rest.len() && before(&rest[high]) {
            low = high + 1;
            high += step;
            step *= 2;
        }
        let high = high.min(rest.len());
        self.at += low + rest[low..high].partition_point(before);
        let (_, found, live) = self.entries.get(self.at)?;
        (raw_of(bytes, *found) == key).then_some(StoredEntity {
            version: self.version,
            live: *live,
        })
    }
}

/// A stored value: an `Any`, or a `Y.Map` with its entries (sorted by key).
#[derive(Debug, Clone, PartialEq)]
pub enum StoredValue {
    Any(Any),
    Map(Vec<(String, StoredValue)>),
}

impl StoredValue {
    /// The entries of a map value (a `Y.Map`, or an `Any` map), sorted by key; `None` for others.
    pub fn into_entries(self) -> Result<Vec<(String, StoredValue)>, Any> {
        match self {
            StoredValue::Map(entries) => Ok(entries),
            StoredValue::Any(Any::Map(map)) => {
                let mut entries: Vec<(String, StoredValue)> = map
                    .iter()
                    .map(|(k, v)| (k.clone(), StoredValue::Any(v.clone())))
                    .collect();
                entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                Ok(entries)
            }
            StoredValue::Any(other) => Err(other),
        }
    }

    /// As one atomic `Any` (a `Y.Map` becomes an `Any` map).
    pub fn into_any(self) -> Any {
        match self {
            StoredValue::Any(any) => any,
            StoredValue::Map(entries) => Any::Map(Arc::new(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, v.into_any()))
                    .collect::<HashMap<_, _>>(),
            )),
        }
    }
}

/// A string recorded while parsing `bytes` (valid UTF-8: the decoder checked it).
fn text_of(bytes: &[u8], t: Text) -> &str {
    std::str::from_utf8(raw_of(bytes, t)).unwrap_or_default()
}

/// The bytes of a string recorded while parsing `bytes`.
fn raw_of(bytes: &[u8], Text(offset, len): Text) -> &[u8] {
    let (from, to) = (offset as usize, offset as usize + len as usize);
    bytes.get(from..to).unwrap_or_default()
}

/// Reads strings and offsets of one update.
struct Reader<'a> {
    bytes: &'a [u8],
    decoder: DecoderV1<'a>,
}

impl<'a> Reader<'a> {
    /// Where the decoder is (what is left, measured from the end).
    fn offset(&mut self) -> Result<u32, Unsupported> {
        let left = self
            .decoder
            .read_to_end()
            .map_err(|_| Unsupported("malformed"))?
            .len();
        u32::try_from(self.bytes.len() - left).map_err(|_| Unsupported("update too large"))
    }

    fn text(&mut self) -> Result<Text, Unsupported> {
        let bytes = self.bytes;
        let s = self
            .decoder
            .read_string()
            .map_err(|_| Unsupported("malformed string"))?;
        // The decoder hands out slices of the update: where this one starts.
        let offset = (s.as_ptr() as usize)
            .checked_sub(bytes.as_ptr() as usize)
            .filter(|&at| bytes.get(at..at + s.len()) == Some(s.as_bytes()))
            .ok_or(Unsupported("a string outside the update"))?;
        let to_u32 = |n: usize| u32::try_from(n).map_err(|_| Unsupported("update too large"));
        Ok(Text(to_u32(offset)?, to_u32(s.len())?))
    }
}

/// Sorts root entries by root name, then key. The names are scattered over the update, so
/// comparing them directly misses the cache at every step: each entry is compared by its first
/// 8 bytes first (in a compact array), and by the whole names only on a tie.
fn sort_by_root_and_key(roots: &mut Vec<(Text, Text, Live)>, bytes: &[u8]) {
    let prefix = |t: Text| {
        let mut head = [0u8; 8];
        let raw = raw_of(bytes, t);
        let n = raw.len().min(8);
        head[..n].copy_from_slice(&raw[..n]);
        // Zero-padded and big-endian: ordered like the names (ties are compared in full).
        u64::from_be_bytes(head)
    };
    let mut keyed: Vec<(u64, u64, (Text, Text, Live))> = roots
        .drain(..)
        .map(|entry| (prefix(entry.0), prefix(entry.1), entry))
        .collect();
    keyed.sort_unstable_by(|a, b| {
        (a.0, a.1).cmp(&(b.0, b.1)).then_with(|| {
            let (a, b) = (&a.2, &b.2);
            (raw_of(bytes, a.0), raw_of(bytes, a.1)).cmp(&(raw_of(bytes, b.0), raw_of(bytes, b.1)))
        })
    });
    roots.extend(keyed.into_iter().map(|(_, _, entry)| entry));
}

/// Every region's structs (appended to the structs of the regions before it) and the union of
/// their delete sets.
fn parse_regions(bytes: &[u8], regions: &[Range<usize>]) -> Result<(Clients, IdSet), Unsupported> {
    let mut clients = Clients(Vec::new());
    let mut delete_set = IdSet::new();
    for (i, region) in regions.iter().enumerate() {
        // Read no further than the region's end: a malformed update cannot reach into the next.
        let bytes = bytes.get(..region.end).ok_or(Unsupported("malformed"))?;
        let gap = match i {
            // Structs after a gap stay pending in a document: not a plain full state.
            0 => Unsupported("a client twice, or not from its first clock"),
            _ => Unsupported("changes do not continue the base"),
        };
        let (layer, tail) = parse_structs(bytes, region.start, &clients, gap)?;
        let mut decoder = DecoderV1::new(Cursor {
            buf: bytes,
            next: tail,
        });
        let deleted = IdSet::decode(&mut decoder).map_err(|_| Unsupported("delete set"))?;
        clients.append(layer);
        // A union (merged into the empty set, the first region's stays as decoded): a later
        // region's set holds what was deleted since, in the earlier regions' structs too.
        delete_set.merge_with(deleted);
    }
    Ok((clients, delete_set))
}

/// The structs of the update at `bytes[start..]`, every client's in clock order, as yrs's
/// `Update::decode` reads them; and where its delete set starts. Each client must start where its
/// structs in `before` end (at clock 0 for a client `before` lacks), and come once: else `gap`.
fn parse_structs(
    bytes: &[u8],
    start: usize,
    before: &Clients,
    gap: Unsupported,
) -> Result<(Clients, usize), Unsupported> {
    let mut reader = Reader {
        bytes,
        decoder: DecoderV1::new(Cursor {
            buf: bytes,
            next: start,
        }),
    };
    let malformed = |_| Unsupported("malformed structs");
    let clients_len: u32 = reader.decoder.read_var().map_err(malformed)?;
    let mut clients: Vec<(ClientID, Vec<Parsed>)> = Vec::new();
    for _ in 0..clients_len {
        let count: u32 = reader.decoder.read_var().map_err(malformed)?;
        let client = reader.decoder.read_client().map_err(malformed)?;
        let mut clock: u32 = reader.decoder.read_var().map_err(malformed)?;
        if clock != before.end(client) {
            return Err(gap);
        }
        // The count comes from the update: capped by what its remaining bytes can hold (a
        // struct takes at least two), so a false count cannot reserve much more than that.
        let remaining = bytes.len().saturating_sub(reader.offset()? as usize);
        let mut structs = Vec::with_capacity((count as usize).min(remaining / 2));
        for _ in 0..count {
            let parsed = parse_struct(&mut reader, ID::new(client, clock))?;
            clock = clock
                .checked_add(parsed.len)
                .ok_or(Unsupported("clock overflow"))?;
            if parsed.len > 0 {
                structs.push(parsed);
            }
        }
        clients.push((client, structs));
    }
    clients.sort_unstable_by_key(|(client, _)| *client);
    if clients.windows(2).any(|w| w[0].0 == w[1].0) {
        return Err(gap);
    }
    let tail = reader.offset()? as usize;
    Ok((Clients(clients), tail))
}

/// Every client's structs in clock order, sorted by client id (an update holds a handful).
struct Clients(Vec<(ClientID, Vec<Parsed>)>);

impl Clients {
    /// Each client's clock after its last struct.
    fn state_vector(&self) -> StateVector {
        let mut state_vector = StateVector::default();
        for (client, structs) in &self.0 {
            if let Some(last) = structs.last() {
                state_vector.set_max(*client, last.clock + last.len);
            }
        }
        state_vector
    }

    /// The clock after `client`'s last struct (0 when it has none).
    fn end(&self, client: ClientID) -> u32 {
        let structs = self
            .0
            .binary_search_by_key(&client, |(c, _)| *c)
            .ok()
            .and_then(|at| self.0.get(at));
        // Parsed with a checked clock: the sum fits.
        structs
            .and_then(|(_, structs)| structs.last())
            .map_or(0, |last| last.clock.saturating_add(last.len))
    }

    /// Appends `later`'s structs of each client to its structs here (`later` continues them, as
    /// [`parse_structs`] checked), keeping the clients sorted and each once.
    fn append(&mut self, later: Clients) {
        for (client, structs) in later.0 {
            match self.0.binary_search_by_key(&client, |(c, _)| *c) {
                Ok(at) => {
                    if let Some((_, known)) = self.0.get_mut(at) {
                        known.extend(structs);
                    }
                }
                Err(at) => self.0.insert(at, (client, structs)),
            }
        }
    }

    /// The struct holding `id`: (the client's position, the struct's index).
    fn find(&self, id: ID) -> Option<(usize, usize)> {
        let at = self
            .0
            .binary_search_by_key(&id.client, |(client, _)| *client)
            .ok()?;
        let structs = &self.0[at].1;
        let index = structs
            .partition_point(|s| s.clock <= id.clock)
            .checked_sub(1)?;
        let s = structs.get(index)?;
        (id.clock < s.clock + s.len).then_some((at, index))
    }
}

/// One client's deleted clock ranges, asked about in ascending clock order (as its structs come).
struct DeletedRanges {
    /// Sorted and disjoint.
    ranges: Vec<std::ops::Range<u32>>,
    next: usize,
}

impl DeletedRanges {
    fn of(delete_set: &IdSet, client: ClientID) -> Self {
        let mut listed: Vec<std::ops::Range<u32>> = delete_set
            .get(&client)
            .map(|ranges| ranges.ranges().cloned().collect())
            .unwrap_or_default();
        // Decoded as sent: sort and merge, so one forward walk answers.
        listed.sort_unstable_by_key(|r| r.start);
        let mut ranges: Vec<std::ops::Range<u32>> = Vec::with_capacity(listed.len());
        for range in listed {
            match ranges.last_mut() {
                Some(last) if range.start <= last.end => last.end = last.end.max(range.end),
                _ => ranges.push(range),
            }
        }
        DeletedRanges { ranges, next: 0 }
    }

    /// Whether any clock of `from..to` is deleted; `from` must not decrease between calls.
    fn overlaps(&mut self, from: u32, to: u32) -> bool {
        while self.ranges.get(self.next).is_some_and(|r| r.end <= from) {
            self.next += 1;
        }
        self.ranges.get(self.next).is_some_and(|r| r.start < to)
    }
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

fn parse_struct(reader: &mut Reader, id: ID) -> Result<Parsed, Unsupported> {
    let malformed = |_| Unsupported("malformed struct");
    let clock = id.clock;
    let decoder = &mut reader.decoder;
    let info = decoder.read_info().map_err(malformed)?;
    if info == SKIP {
        // A gap: what follows would stay pending in a document (invisible). Not a plain full state.
        return Err(Unsupported("a skip (pending structs)"));
    }
    if info == GC {
        let len: u32 = decoder.read_var().map_err(malformed)?;
        return Ok(Parsed {
            clock,
            len,
            item: None,
        });
    }
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
    let place = match origin.or(right_origin) {
        Some(neighbour) => Place::Neighbour(neighbour),
        None => {
            let map = if decoder.read_parent_info().map_err(malformed)? {
                MapKey::Root(reader.text()?)
            } else {
                MapKey::Nested(reader.decoder.read_left_id().map_err(malformed)?)
            };
            let key = if info & HAS_PARENT_SUB != 0 {
                Some(reader.text()?)
            } else {
                None
            };
            Place::Given(map, key)
        }
    };
    // Only what canvas documents hold; anything else goes to the document path (whose decoder
    // yrs maintains).
    let decoder = &mut reader.decoder;
    let (len, value) = match info & CONTENT {
        CONTENT_DELETED => (decoder.read_len().map_err(malformed)?, None),
        CONTENT_ANY => {
            let count = decoder.read_len().map_err(malformed)?;
            let mut last = None;
            for _ in 0..count {
                last = Some(reader.offset()?);
                skip_any(&mut reader.decoder, 0)?;
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
        item: Some(ParsedItem { place, value }),
    })
}

/// Steps over one encoded `Any` (lib0's format, as `Any::decode` reads it) without building it.
fn skip_any(decoder: &mut DecoderV1, depth: usize) -> Result<(), Unsupported> {
    let malformed = |_| Unsupported("malformed value");
    if depth > MAX_DEPTH {
        return Err(Unsupported("value nested too deep"));
    }
    match decoder.read_u8().map_err(malformed)? {
        127 | 126 | 121 | 120 => {}
        125 => {
            decoder.read_var_signed::<i64>().map_err(malformed)?;
        }
        124 => {
            decoder.read_f32().map_err(malformed)?;
        }
        123 => {
            decoder.read_f64().map_err(malformed)?;
        }
        122 => {
            decoder.read_i64().map_err(malformed)?;
        }
        119 => {
            decoder.read_string().map_err(malformed)?;
        }
        118 => {
            let len: u32 = decoder.read_var().map_err(malformed)?;
            for _ in 0..len {
                decoder.read_string().map_err(malformed)?;
                skip_any(decoder, depth + 1)?;
            }
        }
        117 => {
            let len: u32 = decoder.read_var().map_err(malformed)?;
            for _ in 0..len {
                skip_any(decoder, depth + 1)?;
            }
        }
        116 => {
            decoder.read_buf().map_err(malformed)?;
        }
        _ => return Err(Unsupported("unknown value type")),
    }
    Ok(())
}

/// Every struct's map and key; `None` when its place leads to a collected or missing struct
/// (the item reads as collected).
type Resolved = Option<(MapKey, Option<Text>)>;

fn resolve_all(clients: &Clients) -> Result<Vec<Vec<Option<Resolved>>>, Unsupported> {
    let mut memo: Vec<Vec<Option<Resolved>>> = clients
        .0
        .iter()
        .map(|(_, structs)| vec![None; structs.len()])
        .collect();
    let mut chain = Vec::new();
    for (at, (_, structs)) in clients.0.iter().enumerate() {
        for index in 0..structs.len() {
            resolve(clients, &mut memo, (at, index), &mut chain)?;
        }
    }
    Ok(memo)
}

/// Resolves one struct (the client's position, the struct's index), walking its origin chain
/// iteratively (a key set many times in a row makes a long chain) and memoizing every link.
fn resolve(
    clients: &Clients,
    memo: &mut [Vec<Option<Resolved>>],
    start: (usize, usize),
    chain: &mut Vec<(usize, usize)>,
) -> Result<(), Unsupported> {
    chain.clear();
    let mut at = start;
    let resolved = loop {
        if let Some(known) = memo.get(at.0).and_then(|m| m.get(at.1)).copied().flatten() {
            break known;
        }
        if chain.len() > MAX_ORIGIN_CHAIN {
            return Err(Unsupported("origin chain too long"));
        }
        chain.push(at);
        let item = clients
            .0
            .get(at.0)
            .and_then(|(_, structs)| structs.get(at.1))
            .and_then(|s| s.item.as_ref());
        match item.map(|i| &i.place) {
            Some(Place::Given(map, key)) => break Some((*map, *key)),
            Some(Place::Neighbour(neighbour)) => match clients.find(*neighbour) {
                Some(next) => at = next,
                None => break None,
            },
            None => break None,
        }
    };
    for &(client, index) in chain.iter() {
        if let Some(slot) = memo.get_mut(client).and_then(|m| m.get_mut(index)) {
            *slot = Some(resolved);
        }
    }
    Ok(())
}

const MAX_ORIGIN_CHAIN: usize = 1_000_000;

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use crate::canvas::{new_canvas_doc, put_block, put_relation, remove_block};
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
            for i in 0..10 {
                let f = json!({"source_block_id": format!("b{i}"), "target_block_id": "b30",
                    "type": "depends_on", "visual": {"style": "solid"}});
                crate::canvas::put_relation(&mut txn, &format!("r{i}"), f.as_object().unwrap())
                    .unwrap();
            }
        }
        for i in 0..50 {
            let mut txn = doc.transact_mut();
            let f = json!({"name": format!("renamed {i}"), "visual": {"x": 0}});
            put_block(&mut txn, &format!("b{}", i % 7), f.as_object().unwrap()).unwrap();
            crate::canvas::remove_block(&mut txn, &format!("b{}", 20 + i % 5));
        }
        let stored = StoredVersion::parse(full_state(&doc)).unwrap();
        let raw = read_raw_canvas(&doc.transact());
        assert_eq!(stored.len(BLOCKS), raw.blocks.len());
        for (key, value) in &raw.blocks {
            assert_eq!(
                stored.entity(BLOCKS, key).map(|e| e.json()).as_ref(),
                Some(value),
                "{key}"
            );
        }
        assert!(stored.entity(BLOCKS, "b20").is_none(), "removed");
        let canvas = stored.canvas();
        assert_eq!(canvas.relations.len(), 10);
        assert_eq!(canvas, crate::canvas::read_canvas(&doc.transact()));
        assert_eq!(stored.state_vector(), &doc.transact().state_vector());
        assert_eq!(stored.delete_set(), &doc.transact().snapshot().delete_set);
    }

    #[test]
    fn lookups_in_key_order_find_what_a_binary_search_finds() {
        // Short keys, and keys alike in their first 8 bytes (sorted by their whole names),
        // written in reverse so the update's order is not the sorted one.
        let short = |i: usize| format!("b{i:03}");
        let long = |i: usize| format!("00000000-0000-4000-8000-000000000{i:03}");
        for key_of in [&short as &dyn Fn(usize) -> String, &long] {
            let doc = new_canvas_doc();
            {
                let mut txn = doc.transact_mut();
                for i in (0..300).rev().filter(|i| i % 3 != 0) {
                    let f = json!({ "name": format!("B{i}") });
                    put_block(&mut txn, &key_of(i), f.as_object().unwrap()).unwrap();
                }
            }
            let stored = StoredVersion::parse(full_state(&doc)).unwrap();
            let name = |e: StoredEntity| e.json()["name"].clone();
            // Every key, present or not, then sparse walks with growing gaps (the gallop's
            // paths).
            for stride in [1, 2, 7, 64, 299] {
                let mut lookup = stored.entities_in_order(BLOCKS);
                for i in (0..300).step_by(stride) {
                    let key = key_of(i);
                    let expected = (i % 3 != 0).then(|| json!(format!("B{i}")));
                    assert_eq!(
                        lookup.seek(&key).map(name),
                        expected,
                        "{key}, stride {stride}"
                    );
                    assert_eq!(stored.entity(BLOCKS, &key).map(name), expected, "{key}");
                }
                assert!(lookup.seek("z").is_none(), "past the end");
                assert!(
                    lookup.seek(&key_of(1)).is_none(),
                    "an earlier key is not found"
                );
            }
            let keys: Vec<&str> = stored.entries(BLOCKS).map(|(key, _)| key).collect();
            assert!(
                keys.windows(2).all(|w| w[0] < w[1]),
                "sorted by the whole key"
            );
            assert_eq!(keys.len(), 200);
            assert!(stored
                .entities_in_order(RELATIONS)
                .seek(&key_of(1))
                .is_none());
        }
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
        assert!(StoredVersion::parse(full_state(&doc)).is_err());
        assert!(StoredVersion::parse(vec![1, 2, 3]).is_err(), "garbage");
        // A later part of a document alone (as an update after a gap would be): its structs
        // would stay pending in a document.
        let canvas = new_canvas_doc();
        let block = |name: &str| json!({ "name": name }).as_object().cloned().unwrap();
        put_block(&mut canvas.transact_mut(), "first", &block("F")).unwrap();
        let sv = canvas.transact().state_vector();
        put_block(&mut canvas.transact_mut(), "later", &block("L")).unwrap();
        let later = canvas.transact().encode_diff_v1(&sv);
        assert_eq!(
            StoredVersion::parse(later).err(),
            Some(Unsupported("a client twice, or not from its first clock"))
        );
        assert!(StoredVersion::parse(full_state(&canvas)).is_ok());
        assert!(StoredVersion::parse(Vec::new()).is_err(), "nothing");
    }

    /// A canvas document of client `client` (the tests below need known client ids).
    fn canvas_doc_of(client: u64) -> yrs::Doc {
        let doc = yrs::Doc::with_options(yrs::Options {
            client_id: ClientID::new(client),
            offset_kind: yrs::OffsetKind::Utf16,
            ..yrs::Options::default()
        });
        doc.get_or_insert_map(BLOCKS);
        doc.get_or_insert_map(RELATIONS);
        doc
    }

    fn fields(value: Value) -> JsonMap<String, Value> {
        value.as_object().cloned().unwrap()
    }

    /// Applies what `from` has and `to` lacks to `to`.
    fn sync(from: &yrs::Doc, to: &yrs::Doc) {
        let sv = to.transact().state_vector();
        let update = yrs::Update::decode_v1(&from.transact().encode_state_as_update_v1(&sv));
        to.transact_mut().apply_update(update.unwrap()).unwrap();
    }

    /// Edits of client `client` made on a replica of `doc`, then merged into `doc`.
    fn edit_as(client: u64, doc: &yrs::Doc, edit: impl FnOnce(&mut yrs::TransactionMut)) {
        let peer = canvas_doc_of(client);
        sync(doc, &peer);
        edit(&mut peer.transact_mut());
        sync(&peer, doc);
    }

    /// Asserts `stored` reads what `doc` holds, as its full state read alone does.
    fn assert_reads_like(stored: &StoredVersion, doc: &yrs::Doc) {
        let whole = StoredVersion::parse(full_state(doc)).unwrap();
        let txn = doc.transact();
        assert_eq!(stored.canvas(), crate::canvas::read_canvas(&txn));
        assert_eq!(stored.canvas(), whole.canvas());
        assert_eq!(stored.state_vector(), &txn.state_vector());
        assert_eq!(stored.state_vector(), whole.state_vector());
        assert_eq!(stored.delete_set(), &txn.snapshot().delete_set);
        assert_eq!(stored.delete_set(), whole.delete_set());
        let raw = read_raw_canvas(&txn);
        for (root, entities) in [(BLOCKS, &raw.blocks), (RELATIONS, &raw.relations)] {
            assert_eq!(stored.len(root), entities.len(), "{root}");
            let keys: Vec<_> = stored.entries(root).map(|(key, _)| key).collect();
            let whole_keys: Vec<_> = whole.entries(root).map(|(key, _)| key).collect();
            assert_eq!(keys, whole_keys, "{root}");
            for (key, value) in entities {
                let entity = stored.entity(root, key).unwrap();
                assert_eq!(&entity.json(), value, "{root} {key}");
                let whole_entity = whole.entity(root, key).unwrap();
                assert_eq!(entity.value(), whole_entity.value(), "{root} {key}");
            }
        }
    }

    /// Whether `client`'s structs in `doc` have one that `sv`'s clock for it falls inside of (the
    /// update encoded against `sv` then starts with that struct's tail).
    fn starts_inside_a_struct(doc: &yrs::Doc, sv: &StateVector, client: ClientID) -> bool {
        let full = full_state(doc);
        let none = Clients(Vec::new());
        let (clients, _) = parse_structs(&full, 0, &none, Unsupported("gap")).unwrap();
        let end = sv.get(&client);
        let structs = &clients.0.iter().find(|(c, _)| *c == client).unwrap().1;
        structs
            .iter()
            .any(|s| s.clock < end && end < s.clock + s.len)
    }

    /// A canvas of client 1000 (with an edit of client 3 merged in), its full state and its state
    /// vector.
    fn base_canvas() -> (yrs::Doc, Vec<u8>, StateVector) {
        let doc = canvas_doc_of(1000);
        {
            let mut txn = doc.transact_mut();
            for i in 0..20 {
                let f = json!({"type": "NODE", "name": format!("B{i}"), "config": {"n": i},
                    "visual": {"x": i as f64, "y": 2}, "parent_block_id": null});
                put_block(&mut txn, &format!("b{i}"), &fields(f)).unwrap();
            }
            for i in 0..5 {
                let f = json!({"source_block_id": format!("b{i}"), "target_block_id": "b9",
                    "type": "depends_on", "visual": {"style": "solid"}});
                put_relation(&mut txn, &format!("r{i}"), &fields(f)).unwrap();
            }
        }
        put_block(
            &mut doc.transact_mut(),
            "b1",
            &fields(json!({"name": "first"})),
        )
        .unwrap();
        remove_block(&mut doc.transact_mut(), "b19");
        edit_as(3, &doc, |txn| {
            put_block(txn, "b2", &fields(json!({"name": "by 3"}))).unwrap();
            put_block(txn, "c3", &fields(json!({"name": "C3"}))).unwrap();
        });
        let base = full_state(&doc);
        let base_sv = doc.transact().state_vector();
        (doc, base, base_sv)
    }

    #[test]
    fn a_version_stored_as_changes_reads_like_the_whole_state() {
        let (doc, base, base_sv) = base_canvas();
        // The base's last struct of client 1000 is b1's name: overwritten twice, it and the first
        // overwrite are deleted and merged into one struct, which the changes start inside of.
        for name in ["again", "and again"] {
            put_block(
                &mut doc.transact_mut(),
                "b1",
                &fields(json!({ "name": name })),
            )
            .unwrap();
        }
        // Client 1000 continues: new blocks, renames and a nested field of base blocks (their
        // base items overwritten: deleted), a base block removed, one renamed and removed.
        for i in 0..5 {
            let mut txn = doc.transact_mut();
            put_block(&mut txn, &format!("n{i}"), &fields(json!({"name": "new"}))).unwrap();
            put_block(
                &mut txn,
                &format!("b{i}"),
                &fields(json!({"name": "again"})),
            )
            .unwrap();
        }
        put_block(
            &mut doc.transact_mut(),
            "b5",
            &fields(json!({"visual": {"x": -1}})),
        )
        .unwrap();
        put_block(
            &mut doc.transact_mut(),
            "b2",
            &fields(json!({"name": "over 3"})),
        )
        .unwrap();
        remove_block(&mut doc.transact_mut(), "b6");
        put_block(
            &mut doc.transact_mut(),
            "b7",
            &fields(json!({"name": "gone"})),
        )
        .unwrap();
        remove_block(&mut doc.transact_mut(), "b7");
        // Clients new to the base, one ordered before and one after the others.
        edit_as(7, &doc, |txn| {
            put_block(
                txn,
                "p7",
                &fields(json!({"name": "P7", "visual": {"x": 7}})),
            )
            .unwrap();
            put_block(txn, "b8", &fields(json!({"name": "by 7"}))).unwrap();
            put_block(txn, "c3", &fields(json!({"visual": {"y": 7}}))).unwrap();
        });
        edit_as(5000, &doc, |txn| {
            let f = json!({"source_block_id": "p7", "target_block_id": "b9", "type": "x"});
            put_relation(txn, "r9", &fields(f)).unwrap();
            remove_block(txn, "b10");
            crate::canvas::remove_relation(txn, "r0");
        });
        put_block(
            &mut doc.transact_mut(),
            "p7",
            &fields(json!({"name": "over 7"})),
        )
        .unwrap();

        let changes = doc.transact().encode_state_as_update_v1(&base_sv);
        let stored = StoredVersion::parse_with_base(&base, &changes).unwrap();
        assert_reads_like(&stored, &doc);
        assert!(starts_inside_a_struct(&doc, &base_sv, ClientID::new(1000)));
        // The changes did change the canvas (else the comparison above proves little).
        let before = StoredVersion::parse(base).unwrap();
        assert_ne!(before.canvas(), stored.canvas());
        assert!(stored.entity(BLOCKS, "b6").is_none() && before.entity(BLOCKS, "b6").is_some());
        assert_eq!(
            stored.entity(BLOCKS, "b5").unwrap().json()["visual"]["x"],
            json!(-1)
        );
        assert!(
            StoredVersion::parse(changes).is_err(),
            "the changes alone: not a full state"
        );
    }

    #[test]
    fn changes_that_do_not_continue_the_base_are_unsupported() {
        let (doc, base, base_sv) = base_canvas();
        let before_base = {
            let earlier = canvas_doc_of(1000);
            put_block(
                &mut earlier.transact_mut(),
                "b0",
                &fields(json!({"name": "x"})),
            )
            .unwrap();
            let sv = earlier.transact().state_vector();
            sv
        };
        put_block(
            &mut doc.transact_mut(),
            "b0",
            &fields(json!({"name": "later"})),
        )
        .unwrap();
        let later_sv = doc.transact().state_vector();
        put_block(
            &mut doc.transact_mut(),
            "b1",
            &fields(json!({"name": "later"})),
        )
        .unwrap();
        let not_continuing = Some(Unsupported("changes do not continue the base"));
        // Client 1000 starting past the base's end (a gap), or before it (an overlap).
        let past = doc.transact().encode_state_as_update_v1(&later_sv);
        assert_eq!(
            StoredVersion::parse_with_base(&base, &past).err(),
            not_continuing
        );
        let overlapping = doc.transact().encode_state_as_update_v1(&before_base);
        assert_eq!(
            StoredVersion::parse_with_base(&base, &overlapping).err(),
            not_continuing
        );
        // A full state as the changes: every base client again from clock 0.
        let whole = full_state(&doc);
        assert_eq!(
            StoredVersion::parse_with_base(&base, &whole).err(),
            not_continuing
        );
        // The changes without their base: a client not from its first clock.
        let changes = doc.transact().encode_state_as_update_v1(&base_sv);
        assert!(StoredVersion::parse_with_base(&[0, 0], &changes).is_err());
        assert!(
            StoredVersion::parse_with_base(&[], &changes).is_err(),
            "no base"
        );
        assert!(
            StoredVersion::parse_with_base(&base, &[1, 2, 3]).is_err(),
            "garbage"
        );
        assert!(
            StoredVersion::parse_with_base(&base, &[]).is_err(),
            "nothing"
        );
        // Cut anywhere, neither part reads past its end into the other, nor panics.
        for cut in 0..changes.len() {
            let _ = StoredVersion::parse_with_base(&base, &changes[..cut]);
            let _ = StoredVersion::parse_with_base(&base[..cut.min(base.len())], &changes);
        }
        assert_reads_like(
            &StoredVersion::parse_with_base(&base, &changes).unwrap(),
            &doc,
        );
    }

    #[test]
    fn changes_with_nothing_new_read_like_the_base() {
        let (doc, base, base_sv) = base_canvas();
        let changes = doc.transact().encode_state_as_update_v1(&base_sv);
        let stored = StoredVersion::parse_with_base(&base, &changes).unwrap();
        assert_reads_like(&stored, &doc);
        let alone = StoredVersion::parse(base).unwrap();
        assert_eq!(stored.canvas(), alone.canvas());
        assert_eq!(stored.state_vector(), alone.state_vector());
        assert_eq!(stored.delete_set(), alone.delete_set());
    }
}
