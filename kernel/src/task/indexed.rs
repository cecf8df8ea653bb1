//! [`Indexed`]: a map from kernel ids to boxed records with an inline index in front, for the
//! records the IPC fast path looks up (threads and endpoints).
//!
//! Through a `BTreeMap` alone each lookup is an out-of-line search, and under an emulator every
//! return from one is looked up again after each address-space switch; the fast path makes about
//! five lookups per message. Ids are handed out in sequence, so a direct-mapped index of
//! [`INDEXED`] entries finds recent records with a few inline instructions, and the map stays
//! the authority for the rest.
//!
//! Invariant: an index entry `(id, record)` with a non-null record points at the boxed record
//! the map holds for `id` (boxes do not move when the map changes); `insert` and `remove`, the
//! only ways to change which records exist, keep it so.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;

/// Entries of the index.
const INDEXED: usize = 64;

/// Records by id; see the module documentation.
pub struct Indexed<V> {
    map: BTreeMap<u64, Box<V>>,
    index: [(u64, *mut V); INDEXED],
}

// SAFETY: the raw pointers only alias records owned by `map`, so sending the table sends them
// with their owner; it is used under the task lock like any other owned data.
unsafe impl<V: Send> Send for Indexed<V> {}

impl<V> Indexed<V> {
    /// An empty table.
    pub fn new() -> Self {
        Indexed { map: BTreeMap::new(), index: [(0, core::ptr::null_mut()); INDEXED] }
    }

    #[inline(always)]
    fn indexed(&self, id: u64) -> *mut V {
        let (at, record) = self.index[id as usize % INDEXED];
        if at == id { record } else { core::ptr::null_mut() }
    }

    /// The record of `id`.
    #[inline(always)]
    pub fn get(&self, id: &u64) -> Option<&V> {
        let record = self.indexed(*id);
        if record.is_null() {
            return self.map.get(id).map(|b| &**b);
        }
        // SAFETY: a non-null entry points at the live record of `id` (type invariant), borrowed
        // here as long as `self`.
        Some(unsafe { &*record })
    }

    /// The record of `id`, to change.
    #[inline(always)]
    pub fn get_mut(&mut self, id: &u64) -> Option<&mut V> {
        let record = self.indexed(*id);
        if record.is_null() {
            return self.map.get_mut(id).map(|b| &mut **b);
        }
        // SAFETY: as in `get`, and `&mut self` makes this the only reference.
        Some(unsafe { &mut *record })
    }

    /// Adds a record under a new id (ids are never reused).
    pub fn insert(&mut self, id: u64, record: V) {
        let slot = self.map.entry(id).insert_entry(Box::new(record)).into_mut();
        self.index[id as usize % INDEXED] = (id, &raw mut **slot);
    }

    /// Removes and returns a record.
    pub fn remove(&mut self, id: &u64) -> Option<V> {
        let entry = &mut self.index[*id as usize % INDEXED];
        if entry.0 == *id {
            *entry = (0, core::ptr::null_mut());
        }
        self.map.remove(id).map(|b| *b)
    }

    /// How many records there are.
    pub fn len(&self) -> usize {
        self.map.len()
    }
}
