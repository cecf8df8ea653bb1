//! [`Indexed`]: a map from kernel ids to heap records with an inline index in front, for the
//! records the IPC fast path looks up (threads and endpoints).
//!
//! Through a `BTreeMap` alone each lookup is an out-of-line search, and under an emulator every
//! return from one is looked up again after each address-space switch; the fast path makes about
//! five lookups per message. Ids are handed out in sequence, so a small index ([`SETS`] sets of
//! [`WAYS`] entries, by id modulo [`SETS`]) finds recent records with a few inline instructions;
//! the map stays the authority for the rest. Two ways per set keep two busy ids that share a set
//! (a client and its server, say) from evicting each other on every message, and a lookup that
//! missed puts what it found back into the index.
//!
//! Invariants: every record is a leaked `Box` owned by the table, reachable from `map` under its
//! id and freed only by `remove` (or when the table is dropped); an index entry `(id, record)`
//! with a non-null record points at the record `map` holds for `id`, and no id has two entries.
//! Records are kept as raw pointers, not `Box`es, so that moving them around inside the map never
//! invalidates the pointers in the index.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use core::ptr::NonNull;

/// Sets of the index.
const SETS: usize = 32;
/// Entries per set.
const WAYS: usize = 2;
/// An index entry: an id and its record (null: empty).
type Entry<V> = (u64, *mut V);

/// Records by id; see the module documentation.
pub struct Indexed<V> {
    map: BTreeMap<u64, NonNull<V>>,
    index: [[Entry<V>; WAYS]; SETS],
}

// SAFETY: the table owns its records (type invariant), so sending it sends them with it; it is
// used under the task lock like any other owned data.
unsafe impl<V: Send> Send for Indexed<V> {}

impl<V> Default for Indexed<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V> Indexed<V> {
    /// An empty table.
    pub fn new() -> Self {
        Indexed { map: BTreeMap::new(), index: [[(0, core::ptr::null_mut()); WAYS]; SETS] }
    }

    /// The record of `id` if the index has it.
    #[inline(always)]
    fn indexed(&self, id: u64) -> Option<NonNull<V>> {
        let set = &self.index[id as usize % SETS];
        // Empty entries are (0, null): only a non-null record counts as a match, or an empty
        // first way would hide id 0 in the second.
        let first = NonNull::new(set[0].1).filter(|_| set[0].0 == id);
        first.or_else(|| NonNull::new(set[1].1).filter(|_| set[1].0 == id))
    }

    /// The record of `id`, through the index or else the map.
    #[inline(always)]
    fn find(&self, id: u64) -> Option<NonNull<V>> {
        match self.indexed(id) {
            Some(record) => Some(record),
            None => self.find_in_map(id),
        }
    }

    /// Like `find`, and a record found in the map goes into the index.
    #[inline(always)]
    fn find_and_remember(&mut self, id: u64) -> Option<NonNull<V>> {
        match self.indexed(id) {
            Some(record) => Some(record),
            None => self.find_in_map_and_remember(id),
        }
    }

    #[cold]
    #[inline(never)]
    fn find_in_map_and_remember(&mut self, id: u64) -> Option<NonNull<V>> {
        let record = self.find_in_map(id)?;
        self.remember(id, record);
        Some(record)
    }

    /// Puts `id`'s record first in its set, the entry there moving to the second way unless
    /// that one is free and the first is empty (`id` has no entry yet).
    fn remember(&mut self, id: u64, record: NonNull<V>) {
        let set = &mut self.index[id as usize % SETS];
        if !set[0].1.is_null() {
            set[1] = set[0];
        }
        set[0] = (id, record.as_ptr());
    }

    /// Drops `id`'s index entry, if it has one.
    fn forget(&mut self, id: u64) {
        for entry in &mut self.index[id as usize % SETS] {
            if entry.0 == id {
                *entry = (0, core::ptr::null_mut());
            }
        }
    }

    /// `find` when the index does not have `id`: out of line, so each inline lookup stays a
    /// few instructions.
    #[cold]
    #[inline(never)]
    fn find_in_map(&self, id: u64) -> Option<NonNull<V>> {
        self.map.get(&id).copied()
    }

    /// The record of `id`.
    #[inline(always)]
    pub fn get(&self, id: &u64) -> Option<&V> {
        // SAFETY: the record is live and owned by the table (type invariants); the shared
        // borrow of the table keeps it so, and nothing else mutates it meanwhile.
        self.find(*id).map(|record| unsafe { record.as_ref() })
    }

    /// Where the record of `id` is, for code that needs two records at once. Dereferencing it
    /// is sound while the table is not changed (no `insert` or `remove`) and no other
    /// reference to that record is in use.
    #[inline(always)]
    pub fn get_ptr(&mut self, id: &u64) -> Option<NonNull<V>> {
        self.find_and_remember(*id)
    }

    /// The record of `id`, to change.
    #[inline(always)]
    pub fn get_mut(&mut self, id: &u64) -> Option<&mut V> {
        // SAFETY: as in `get`; the exclusive borrow of the table makes this the only reference.
        self.find_and_remember(*id).map(|mut record| unsafe { record.as_mut() })
    }

    /// The records of two different ids, both to change (Hubris's `index2_distinct`): `None` if
    /// `a == b` or either is missing. Two lookups like `get_mut`'s and one compare.
    #[inline(always)]
    pub fn get2_mut(&mut self, a: &u64, b: &u64) -> Option<(&mut V, &mut V)> {
        if a == b {
            return None;
        }
        let mut first = self.find_and_remember(*a)?;
        // Finding `b` may move `a`'s index entry or evict it, but never frees or moves the record.
        let mut second = self.find_and_remember(*b)?;
        // SAFETY: both records are live and owned by the table (type invariants), and the
        // exclusive borrow of the table, held for the lifetime of the result, keeps them so and
        // rules out any other reference to them. Different ids have different records (each is
        // its own leaked `Box`), so the two references do not alias.
        Some(unsafe { (first.as_mut(), second.as_mut()) })
    }

    /// Adds a record under a new id (ids are never reused; an old record under the same id
    /// would be freed).
    pub fn insert(&mut self, id: u64, record: V) {
        let record = NonNull::from(Box::leak(Box::new(record)));
        self.forget(id);
        if let Some(old) = self.map.insert(id, record) {
            // SAFETY: `old` was leaked by an earlier `insert` and is no longer reachable.
            drop(unsafe { Box::from_raw(old.as_ptr()) });
        }
        self.remember(id, record);
    }

    /// Removes and returns a record.
    pub fn remove(&mut self, id: &u64) -> Option<V> {
        self.forget(*id);
        let record = self.map.remove(id)?;
        // SAFETY: leaked by `insert`, and now reachable from neither the map nor the index.
        Some(*unsafe { Box::from_raw(record.as_ptr()) })
    }

    /// How many records there are.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True if there are none.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

impl<V> Drop for Indexed<V> {
    fn drop(&mut self) {
        for (_, record) in core::mem::take(&mut self.map) {
            // SAFETY: leaked by `insert` and owned by the table, which is going away.
            drop(unsafe { Box::from_raw(record.as_ptr()) });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;

    /// A record that counts its drops.
    struct Counted(u64, Rc<Cell<u32>>);

    impl Drop for Counted {
        fn drop(&mut self) {
            self.1.set(self.1.get() + 1);
        }
    }

    #[test]
    fn finds_what_was_inserted_until_removed() {
        let mut t = Indexed::new();
        assert!(t.is_empty());
        // Three ids in one set of two ways: the first is evicted from the index, found in the
        // map, and put back by `get_mut`.
        let (a, b, c) = (7, 7 + SETS as u64, 7 + 2 * SETS as u64);
        t.insert(a, "a");
        t.insert(b, "b");
        t.insert(c, "c");
        assert_eq!(t.indexed(a), None, "evicted");
        assert_eq!(t.get(&a), Some(&"a"), "found in the map");
        *t.get_mut(&a).expect("present") = "changed";
        assert!(t.indexed(a).is_some(), "a miss through get_mut goes back into the index");
        assert_eq!((t.get(&a), t.get(&b), t.get(&c)), (Some(&"changed"), Some(&"b"), Some(&"c")));
        assert_eq!(t.remove(&a), Some("changed"));
        assert_eq!(t.get(&a), None, "the index entry went with it");
        assert_eq!(t.remove(&c), Some("c"));
        assert_eq!(t.get(&c), None);
        assert_eq!(t.get(&b), Some(&"b"));
        assert_eq!(t.remove(&b), Some("b"));
        assert_eq!(t.remove(&b), None);
        assert_eq!((t.len(), t.get(&0)), (0, None), "id 0 with an empty index entry");
    }

    #[test]
    fn an_emptied_way_hides_nothing() {
        let mut t = Indexed::new();
        t.insert(0, "zero");
        t.insert(SETS as u64, "thirty-two");
        assert_eq!(t.remove(&(SETS as u64)), Some("thirty-two"));
        assert!(t.indexed(0).is_some(), "id 0 behind an emptied first way");
        t.insert(2 * SETS as u64, "sixty-four");
        assert!(t.indexed(0).is_some() && t.indexed(2 * SETS as u64).is_some(), "the free way was used");
    }

    #[test]
    fn records_stay_put_while_the_map_grows_and_shrinks() {
        let mut t = Indexed::new();
        for id in 0..1000u64 {
            t.insert(id, id * 3);
        }
        let before: Vec<*const u64> = (0..1000).map(|id| t.get(&id).expect("present") as *const u64).collect();
        for id in (0..1000u64).filter(|id| id % 3 == 0) {
            assert_eq!(t.remove(&id), Some(id * 3));
        }
        for id in 1000..2000u64 {
            t.insert(id, id * 3);
        }
        for id in (0..1000u64).filter(|id| id % 3 != 0) {
            assert_eq!(t.get(&id).map(|r| r as *const u64), Some(before[id as usize]), "record {id} moved");
        }
    }

    #[test]
    fn agrees_with_a_map_under_random_operations() {
        let mut t = Indexed::new();
        let mut model = std::collections::BTreeMap::new();
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next_id = 1u64;
        // Miri takes minutes over a few thousand steps.
        let steps = if cfg!(miri) { 2_000 } else { 50_000 };
        for step in 0..steps {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // Mostly recent ids (as the kernel's are), sometimes old or never used ones.
            let id = match state % 4 {
                0 => state % (next_id + 10),
                _ => next_id.saturating_sub(state % 80),
            };
            match (state >> 8) % 5 {
                0 | 1 => {
                    t.insert(next_id, step);
                    model.insert(next_id, step);
                    next_id += 1 + (state >> 20) % 3;
                }
                2 => assert_eq!(t.remove(&id), model.remove(&id), "step {step}: remove {id}"),
                3 => {
                    if let (Some(a), Some(b)) = (t.get_mut(&id), model.get_mut(&id)) {
                        *a += 1;
                        *b += 1;
                    }
                }
                _ => {}
            }
            assert_eq!(t.get(&id), model.get(&id), "step {step}: get {id}");
            assert_eq!(t.len(), model.len());
        }
        for (id, value) in &model {
            assert_eq!(t.get(id), Some(value));
        }
    }

    #[test]
    fn get2_mut_gives_two_distinct_records() {
        let mut t = Indexed::new();
        t.insert(1, "one");
        t.insert(2, "two");
        let (a, b) = t.get2_mut(&1, &2).expect("both present");
        assert_eq!((*a, *b), ("one", "two"));
        assert!(!core::ptr::eq(a, b));
        let (b, a) = t.get2_mut(&2, &1).expect("both present");
        assert_eq!((*a, *b), ("one", "two"), "in the order asked for");
    }

    #[test]
    fn get2_mut_refuses_the_same_id_twice() {
        let mut t = Indexed::new();
        t.insert(3, "three");
        assert!(t.get2_mut(&3, &3).is_none());
        assert!(t.get2_mut(&4, &4).is_none(), "missing and the same");
        assert_eq!(t.get(&3), Some(&"three"));
    }

    #[test]
    fn get2_mut_refuses_a_missing_id() {
        let mut t = Indexed::new();
        t.insert(5, "five");
        assert!(t.get2_mut(&5, &6).is_none(), "second missing");
        assert!(t.get2_mut(&6, &5).is_none(), "first missing");
        assert!(t.get2_mut(&6, &7).is_none(), "both missing");
        assert_eq!(t.remove(&5), Some("five"));
        t.insert(8, "eight");
        assert!(t.get2_mut(&5, &8).is_none(), "removed");
    }

    #[test]
    fn get2_mut_with_ids_that_share_a_set() {
        let mut t = Indexed::new();
        let (a, b) = (9, 9 + SETS as u64);
        t.insert(a, "a");
        t.insert(b, "b");
        assert_eq!(t.get2_mut(&a, &b).map(|(x, y)| (*x, *y)), Some(("a", "b")));
        assert_eq!(t.get2_mut(&b, &a).map(|(x, y)| (*x, *y)), Some(("b", "a")));
        assert!(t.indexed(a).is_some() && t.indexed(b).is_some(), "both still in the index");
    }

    #[test]
    fn get2_mut_finds_records_evicted_from_the_index() {
        let mut t = Indexed::new();
        // Four ids in one set of two ways: the first two are only in the map.
        let ids = [11, 11 + SETS as u64, 11 + 2 * SETS as u64, 11 + 3 * SETS as u64];
        for (n, id) in ids.iter().enumerate() {
            t.insert(*id, n);
        }
        assert!(t.indexed(ids[0]).is_none() && t.indexed(ids[1]).is_none(), "evicted");
        let (x, y) = t.get2_mut(&ids[0], &ids[1]).expect("both in the map");
        assert_eq!((*x, *y), (0, 1));
        assert!(t.indexed(ids[0]).is_some() && t.indexed(ids[1]).is_some(), "both remembered");
        // The set is now [ids[1], ids[0]]: remembering ids[3] evicts ids[0], found in the map.
        let (x, y) = t.get2_mut(&ids[3], &ids[0]).expect("both in the map");
        assert_eq!((*x, *y), (3, 0));
        // The set is now [ids[0], ids[3]]: the first record comes from the second way and is
        // evicted from the index by remembering the second while the first is held.
        let (x, y) = t.get2_mut(&ids[3], &ids[2]).expect("one in the index, one in the map");
        assert_eq!((*x, *y), (3, 2));
        *x += 30;
        *y += 20;
        assert!(t.indexed(ids[3]).is_none(), "the first was evicted by the second lookup");
        for (n, id) in ids.iter().enumerate() {
            assert_eq!(t.get(id), Some(&[0, 1, 22, 33][n]));
        }
    }

    #[test]
    fn get2_mut_changes_stay_after_the_borrow() {
        let mut t = Indexed::new();
        let (a, b) = (13, 13 + SETS as u64);
        t.insert(a, vec![1]);
        t.insert(b, vec![2]);
        t.insert(b + SETS as u64, vec![3]);
        {
            let (x, y) = t.get2_mut(&a, &b).expect("both present");
            // Move data between the two records, as a message copy from sender to receiver would.
            y.append(x);
            x.push(10);
        }
        assert_eq!(t.get(&a), Some(&vec![10]));
        assert_eq!(t.get(&b), Some(&vec![2, 1]));
        assert_eq!(t.get(&(b + SETS as u64)), Some(&vec![3]), "the third untouched");
    }

    #[test]
    fn every_record_is_dropped_once() {
        let drops = Rc::new(Cell::new(0));
        {
            let mut t = Indexed::new();
            for id in 0..100 {
                t.insert(id, Counted(id, drops.clone()));
            }
            t.insert(5, Counted(500, drops.clone()));
            assert_eq!(drops.get(), 1, "the record replaced under id 5");
            assert_eq!(t.get(&5).map(|c| c.0), Some(500));
            let removed = t.remove(&6).expect("present");
            assert_eq!((removed.0, drops.get()), (6, 1), "a removed record is handed back, not dropped");
            drop(removed);
        }
        assert_eq!(drops.get(), 101, "the table dropped the 98 left, each once");
    }
}
