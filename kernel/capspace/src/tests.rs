//! Host tests: each operation's checks one by one, then a random-operation run against a simple
//! reference model.

use super::*;
use alloc::vec;

type Space = CapSpace<u32>;

const ALL: Rights = Rights::all();

fn cap(object: u32, rights: Rights) -> Cap<u32> {
    Cap { object, rights, badge: 0 }
}

fn space_with_tables(capacities: &[usize]) -> (Space, Vec<TableId>) {
    let mut space = Space::new();
    let tables = capacities.iter().map(|&c| space.create_table(c).unwrap()).collect();
    (space, tables)
}

/// Deterministic xorshift64 generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn rights(&mut self) -> Rights {
        Rights::from_bits_truncate(self.next() as u32)
    }
}

#[test]
fn rights_only_shrink_for_duplicate_mint_and_transfer() {
    for bits in 0..=0xffu32 {
        let rights = Rights::from_bits_truncate(bits);
        for mask_bits in 0..=0xffu32 {
            let mask = Rights::from_bits_truncate(mask_bits);
            let (mut space, t) = space_with_tables(&[4, 4]);
            let h = space.insert(t[0], cap(1, rights)).unwrap();
            let dup = space.duplicate(t[0], h, t[1], mask);
            let minted = space.mint(t[0], h, t[1], mask, 9);
            if rights.contains(Rights::DUPLICATE) {
                assert_eq!(space.get(t[1], dup.unwrap()), Ok(cap(1, rights & mask)));
                assert_eq!(space.get(t[1], minted.unwrap()), Ok(Cap { object: 1, rights: rights & mask, badge: 9 }));
            } else {
                assert_eq!(dup, Err(CapError::MissingRights));
                assert_eq!(minted, Err(CapError::MissingRights));
            }
            match space.transfer(t[0], h, t[1], mask) {
                Ok(moved) => {
                    assert!(rights.contains(Rights::TRANSFER));
                    assert_eq!(space.get(t[1], moved), Ok(cap(1, rights & mask)));
                }
                Err(e) => {
                    assert_eq!(e, CapError::MissingRights);
                    assert!(!rights.contains(Rights::TRANSFER));
                    assert_eq!(space.get(t[0], h), Ok(cap(1, rights)));
                }
            }
        }
    }
}

#[test]
fn each_operation_refused_for_each_missing_right() {
    let (mut space, t) = space_with_tables(&[8, 8]);
    let without = |right: Rights| ALL - right;
    let h = space.insert(t[0], cap(1, without(Rights::DUPLICATE))).unwrap();
    assert_eq!(space.duplicate(t[0], h, t[1], ALL), Err(CapError::MissingRights));
    assert_eq!(space.mint(t[0], h, t[1], ALL, 5), Err(CapError::MissingRights));
    let h = space.insert(t[0], cap(2, without(Rights::TRANSFER))).unwrap();
    assert_eq!(space.transfer(t[0], h, t[1], ALL), Err(CapError::MissingRights));
    assert_eq!(space.transfer(t[0], h, t[0], ALL), Err(CapError::MissingRights));
    let h = space.insert(t[0], cap(3, without(Rights::MANAGE))).unwrap();
    space.duplicate(t[0], h, t[1], ALL).unwrap();
    assert_eq!(space.revoke(t[0], h), Err(CapError::MissingRights));
    assert_eq!(space.require(t[0], h, Rights::MANAGE), Err(CapError::MissingRights));
    assert_eq!(space.require(t[0], h, Rights::READ | Rights::SEND).unwrap().object, 3);
    assert_eq!((space.len(t[0]), space.len(t[1]), space.total()), (3, 1, 4));
}

#[test]
fn stale_handle_after_delete() {
    let (mut space, t) = space_with_tables(&[4]);
    let h = space.insert(t[0], cap(1, ALL)).unwrap();
    assert_eq!(space.delete(t[0], h), Ok(cap(1, ALL)));
    assert_eq!(space.get(t[0], h), Err(CapError::Stale));
    assert_eq!(space.delete(t[0], h), Err(CapError::Stale));
    assert_eq!(space.duplicate(t[0], h, t[0], ALL), Err(CapError::Stale));
    assert_eq!(space.transfer(t[0], h, t[0], ALL), Err(CapError::Stale));
    assert_eq!(space.revoke(t[0], h), Err(CapError::Stale));
}

#[test]
fn stale_handle_after_slot_reuse_does_not_alias() {
    let (mut space, t) = space_with_tables(&[1]);
    let old = space.insert(t[0], cap(1, ALL)).unwrap();
    space.delete(t[0], old).unwrap();
    let new = space.insert(t[0], cap(2, ALL)).unwrap();
    assert_eq!(new.index(), old.index(), "capacity 1: the same slot is reused");
    assert_ne!(new, old);
    assert_eq!(space.get(t[0], old), Err(CapError::Stale));
    assert_eq!(space.delete(t[0], old), Err(CapError::Stale));
    assert_eq!(space.get(t[0], new), Ok(cap(2, ALL)));
    // Many reuses of one slot never give back an earlier handle (until 2^16 - 1 reuses).
    let mut seen = vec![old, new];
    let mut current = new;
    for _ in 0..1000 {
        space.delete(t[0], current).unwrap();
        current = space.insert(t[0], cap(3, ALL)).unwrap();
        assert!(!seen.contains(&current));
        seen.push(current);
    }
}

#[test]
fn generation_skips_zero_on_wraparound() {
    let (mut space, t) = space_with_tables(&[1]);
    let mut h = space.insert(t[0], cap(1, ALL)).unwrap();
    for _ in 0..u16::MAX as usize + 3 {
        space.delete(t[0], h).unwrap();
        h = space.insert(t[0], cap(1, ALL)).unwrap();
        assert_ne!(h.generation(), 0);
        assert_ne!(h, Handle(0));
    }
    assert_eq!(next_generation(u16::MAX), 1);
}

#[test]
fn null_and_garbage_handles_refused() {
    let (mut space, t) = space_with_tables(&[8]);
    let live = space.insert(t[0], cap(1, ALL)).unwrap();
    let bad = [Handle(0), Handle(live.index() as u32), Handle(pack(1, 1)), Handle(pack(0xffff, 1)), Handle(u32::MAX)];
    for h in bad {
        assert_eq!(space.get(t[0], h), Err(CapError::InvalidHandle), "{h:?}");
        assert_eq!(space.delete(t[0], h), Err(CapError::InvalidHandle));
    }
    let mut rng = Rng(0x1234_5678);
    for _ in 0..10_000 {
        let h = Handle(rng.next() as u32);
        if h != live {
            assert!(space.get(t[0], h).is_err());
            assert!(space.duplicate(t[0], h, t[0], ALL).is_err());
            assert!(space.transfer(t[0], h, t[0], ALL).is_err());
            assert!(space.revoke(t[0], h).is_err());
            assert!(space.delete(t[0], h).is_err());
        }
        assert_eq!(space.get(TableId(rng.next() as u32 | 0x8000_0000), live), Err(CapError::NoTable));
    }
    assert_eq!(space.get(TableId(0), live), Err(CapError::NoTable));
    assert_eq!(space.total(), 1);
}

#[test]
fn transfer_moves_the_cap() {
    let (mut space, t) = space_with_tables(&[4, 4]);
    let h = space.insert(t[0], Cap { object: 7, rights: ALL, badge: 3 }).unwrap();
    let moved = space.transfer(t[0], h, t[1], ALL - Rights::WRITE).unwrap();
    assert_eq!(space.get(t[0], h), Err(CapError::Stale));
    assert_eq!(space.get(t[1], moved), Ok(Cap { object: 7, rights: ALL - Rights::WRITE, badge: 3 }));
    assert_eq!((space.len(t[0]), space.len(t[1]), space.total()), (0, 1, 1));
    // Within one table: a fresh handle, even when the table is full.
    let (mut space, t) = space_with_tables(&[1]);
    let h = space.insert(t[0], cap(1, ALL)).unwrap();
    let moved = space.transfer(t[0], h, t[0], ALL).unwrap();
    assert_ne!(moved, h);
    assert_eq!(space.get(t[0], h), Err(CapError::Stale));
    assert_eq!(space.get(t[0], moved), Ok(cap(1, ALL)));
    assert_eq!(space.total(), 1);
}

#[test]
fn refused_transfer_loses_and_duplicates_nothing() {
    let (mut space, t) = space_with_tables(&[4, 1]);
    space.insert(t[1], cap(9, ALL)).unwrap();
    let h = space.insert(t[0], cap(1, ALL)).unwrap();
    assert_eq!(space.transfer(t[0], h, t[1], ALL), Err(CapError::TableFull));
    let gone = space.create_table(4).unwrap();
    space.destroy_table(gone).unwrap();
    assert_eq!(space.transfer(t[0], h, gone, ALL), Err(CapError::NoTable));
    let weak = space.insert(t[0], cap(2, ALL - Rights::TRANSFER)).unwrap();
    space.delete(t[1], space_handle(&space, t[1])).unwrap();
    assert_eq!(space.transfer(t[0], weak, t[1], ALL), Err(CapError::MissingRights));
    assert_eq!(space.get(t[0], h), Ok(cap(1, ALL)));
    assert_eq!(space.get(t[0], weak), Ok(cap(2, ALL - Rights::TRANSFER)));
    assert_eq!((space.len(t[0]), space.len(t[1]), space.total()), (2, 0, 2));
}

/// The handle of the only cap in a table (slot 0, generation 1).
fn space_handle(space: &Space, table: TableId) -> Handle {
    let h = Handle(pack(0, 1));
    assert!(space.get(table, h).is_ok());
    h
}

#[test]
fn refused_duplicate_creates_nothing() {
    let (mut space, t) = space_with_tables(&[4, 0]);
    let h = space.insert(t[0], cap(1, ALL)).unwrap();
    assert_eq!(space.duplicate(t[0], h, t[1], ALL), Err(CapError::TableFull));
    assert_eq!(space.mint(t[0], h, t[1], ALL, 1), Err(CapError::TableFull));
    assert_eq!(space.duplicate(t[0], h, TableId(0x0001_0007), ALL), Err(CapError::NoTable));
    assert_eq!(space.total(), 1);
    // Nothing was linked under the source either: revoking it removes nothing.
    assert_eq!(space.revoke(t[0], h), Ok(vec![]));
}

#[test]
fn mint_badges_once() {
    let (mut space, t) = space_with_tables(&[8]);
    let h = space.insert(t[0], cap(1, ALL)).unwrap();
    let badged = space.mint(t[0], h, t[0], ALL, 42).unwrap();
    assert_eq!(space.get(t[0], badged).unwrap().badge, 42);
    assert_eq!(space.mint(t[0], badged, t[0], ALL, 43), Err(CapError::AlreadyBadged));
    let copy = space.duplicate(t[0], badged, t[0], ALL).unwrap();
    assert_eq!(space.get(t[0], copy).unwrap().badge, 42, "duplicate keeps the badge");
    assert_eq!(space.mint(t[0], copy, t[0], ALL, 44), Err(CapError::AlreadyBadged));
    assert_eq!(space.total(), 3);
}

#[test]
fn revoke_reaches_every_table_and_keeps_the_original() {
    let (mut space, t) = space_with_tables(&[8, 8, 8, 8]);
    let root = space.insert(t[0], cap(1, ALL)).unwrap();
    let child = space.duplicate(t[0], root, t[1], ALL).unwrap();
    let grandchild = space.mint(t[1], child, t[2], ALL, 5).unwrap();
    let moved = space.transfer(t[2], grandchild, t[3], ALL).unwrap();
    let sibling = space.duplicate(t[0], root, t[0], ALL).unwrap();
    let other = space.insert(t[1], cap(1, ALL)).unwrap();
    let mut removed = space.revoke(t[0], root).unwrap();
    removed.sort_by_key(|(table, cap)| (*table, cap.badge));
    assert_eq!(
        removed,
        vec![(t[0], cap(1, ALL)), (t[1], cap(1, ALL)), (t[3], Cap { object: 1, rights: ALL, badge: 5 })]
    );
    assert_eq!(space.get(t[0], root), Ok(cap(1, ALL)));
    for (table, h) in [(t[1], child), (t[3], moved), (t[0], sibling)] {
        assert_eq!(space.get(table, h), Err(CapError::Stale));
    }
    assert_eq!(space.get(t[1], other), Ok(cap(1, ALL)), "an unrelated root of the same object stays");
    assert_eq!(space.total(), 2);
    assert_eq!(space.revoke(t[0], root), Ok(vec![]));
}

#[test]
fn revoke_in_steps_removes_the_same_caps_as_revoke_at_once() {
    // A tree three levels deep over four tables: 1 + 4 + 16 + 64 descendants of one root.
    let build = || {
        let (mut space, t) = space_with_tables(&[128, 128, 128, 128]);
        let root = space.insert(t[0], cap(7, ALL)).unwrap();
        let mut level = vec![(t[0], root)];
        for depth in 1..4 {
            let mut next = Vec::new();
            for &(table, h) in &level {
                for i in 0..4 {
                    let to = t[(depth + i) % 4];
                    next.push((to, space.duplicate(table, h, to, ALL).unwrap()));
                }
            }
            level = next;
        }
        (space, t, root)
    };
    let (mut whole, t, root) = build();
    let mut expected = whole.revoke(t[0], root).unwrap();
    assert_eq!(expected.len(), 4 + 16 + 64);

    for budget in [1, 3, 10, 84, 1000] {
        let (mut space, t, root) = build();
        let mut removed = Vec::new();
        let mut calls = 0;
        loop {
            let (some, more) = space.revoke_some(t[0], root, budget).unwrap();
            assert!(some.len() <= budget, "budget {budget}: a step removed {}", some.len());
            removed.extend(some);
            calls += 1;
            if !more {
                break;
            }
        }
        assert_eq!(calls, 84usize.div_ceil(budget), "budget {budget}: steps");
        removed.sort_by_key(|&(table, c)| (table, c.badge));
        expected.sort_by_key(|&(table, c)| (table, c.badge));
        assert_eq!(removed, expected, "budget {budget}");
        assert_eq!(space.total(), 1, "only the revoked cap stays");
        assert_eq!(space.get(t[0], root), Ok(cap(7, ALL)));
        assert_eq!(space.revoke_some(t[0], root, budget), Ok((vec![], false)));
    }
}

#[test]
fn revoke_of_a_middle_cap_keeps_its_ancestors_and_siblings() {
    let (mut space, t) = space_with_tables(&[8, 8]);
    let root = space.insert(t[0], cap(1, ALL)).unwrap();
    let a = space.duplicate(t[0], root, t[1], ALL).unwrap();
    let b = space.duplicate(t[0], root, t[1], ALL).unwrap();
    let under_a = space.duplicate(t[1], a, t[0], ALL).unwrap();
    let under_b = space.duplicate(t[1], b, t[0], ALL).unwrap();
    assert_eq!(space.revoke(t[1], a).unwrap().len(), 1);
    assert_eq!(space.get(t[0], under_a), Err(CapError::Stale));
    assert!(space.get(t[0], under_b).is_ok() && space.get(t[1], b).is_ok() && space.get(t[1], a).is_ok());
    assert_eq!(space.revoke(t[0], root).unwrap().len(), 3);
    assert_eq!(space.total(), 1);
}

#[test]
fn delete_reparents_children_so_revoke_still_reaches_them() {
    let (mut space, t) = space_with_tables(&[8, 8, 8]);
    let root = space.insert(t[0], cap(1, ALL)).unwrap();
    let middle = space.duplicate(t[0], root, t[1], ALL).unwrap();
    let kids: Vec<_> = (0..3).map(|_| space.duplicate(t[1], middle, t[2], ALL).unwrap()).collect();
    let other_child = space.duplicate(t[0], root, t[0], ALL).unwrap();
    space.delete(t[1], middle).unwrap();
    let removed = space.revoke(t[0], root).unwrap();
    assert_eq!(removed.len(), 4);
    for kid in kids {
        assert_eq!(space.get(t[2], kid), Err(CapError::Stale));
    }
    assert_eq!(space.get(t[0], other_child), Err(CapError::Stale));
    assert_eq!(space.total(), 1);
}

#[test]
fn delete_of_a_root_makes_its_children_roots() {
    let (mut space, t) = space_with_tables(&[8]);
    let root = space.insert(t[0], cap(1, ALL)).unwrap();
    let a = space.duplicate(t[0], root, t[0], ALL).unwrap();
    let b = space.duplicate(t[0], root, t[0], ALL).unwrap();
    let under_b = space.duplicate(t[0], b, t[0], ALL).unwrap();
    space.delete(t[0], root).unwrap();
    assert_eq!(space.revoke(t[0], a), Ok(vec![]), "a is a root now, not b's sibling");
    assert_eq!(space.revoke(t[0], b), Ok(vec![(t[0], cap(1, ALL))]));
    assert_eq!(space.get(t[0], under_b), Err(CapError::Stale));
    assert_eq!(space.total(), 2);
}

#[test]
fn destroy_table_removes_its_caps_and_keeps_derived_ones() {
    let (mut space, t) = space_with_tables(&[8, 8]);
    let root = space.insert(t[0], cap(1, ALL)).unwrap();
    let doomed = space.duplicate(t[0], root, t[1], ALL).unwrap();
    let under_doomed = space.duplicate(t[1], doomed, t[0], ALL).unwrap();
    space.insert(t[1], cap(2, ALL)).unwrap();
    let mut removed = space.destroy_table(t[1]).unwrap();
    removed.sort_by_key(|c| c.object);
    assert_eq!(removed, vec![cap(1, ALL), cap(2, ALL)]);
    assert_eq!(space.get(t[1], doomed), Err(CapError::NoTable));
    assert_eq!(space.destroy_table(t[1]), Err(CapError::NoTable));
    assert_eq!(space.insert(t[1], cap(3, ALL)), Err(CapError::NoTable));
    assert_eq!(space.len(t[1]), 0);
    assert_eq!(space.get(t[0], under_doomed), Ok(cap(1, ALL)));
    // The re-parented cap is still reached by revoking the root.
    assert_eq!(space.revoke(t[0], root), Ok(vec![(t[0], cap(1, ALL))]));
    // The index is reused under a new id; the old id stays dead.
    let reborn = space.create_table(8).unwrap();
    assert_eq!(reborn.0 & 0xffff, t[1].0 & 0xffff);
    assert_ne!(reborn, t[1]);
    assert_eq!(space.get(t[1], doomed), Err(CapError::NoTable));
    assert_eq!(space.get(reborn, doomed), Err(CapError::InvalidHandle));
    assert_eq!(space.total(), 1);
}

#[test]
fn remove_object_removes_every_cap_of_it() {
    let (mut space, t) = space_with_tables(&[8, 8]);
    let a = space.insert(t[0], cap(1, ALL)).unwrap();
    let b = space.insert(t[0], cap(2, ALL)).unwrap();
    let a2 = space.duplicate(t[0], a, t[1], ALL).unwrap();
    space.mint(t[1], a2, t[1], ALL, 4).unwrap();
    let b2 = space.duplicate(t[0], b, t[1], ALL).unwrap();
    let removed = space.remove_object(1);
    assert_eq!(removed.len(), 3);
    assert!(removed.iter().all(|(_, c)| c.object == 1));
    assert_eq!(space.remove_object(1), vec![]);
    assert_eq!(space.get(t[0], a), Err(CapError::Stale));
    assert_eq!(space.revoke(t[0], b), Ok(vec![(t[1], cap(2, ALL))]));
    assert_eq!(space.get(t[1], b2), Err(CapError::Stale));
    assert_eq!(space.total(), 1);
}

#[test]
fn capacity_limits() {
    let (mut space, t) = space_with_tables(&[3, 0, MAX_TABLE_CAPACITY + 100]);
    let handles: Vec<_> = (0..3).map(|i| space.insert(t[0], cap(i, ALL)).unwrap()).collect();
    assert_eq!(space.insert(t[0], cap(9, ALL)), Err(CapError::TableFull));
    assert_eq!(space.duplicate(t[0], handles[0], t[0], ALL), Err(CapError::TableFull));
    assert_eq!(space.free_slots(t[0]), 0);
    assert_eq!(space.insert(t[1], cap(9, ALL)), Err(CapError::TableFull));
    space.delete(t[0], handles[1]).unwrap();
    assert_eq!(space.free_slots(t[0]), 1);
    space.insert(t[0], cap(9, ALL)).unwrap();
    // Capacity is clamped to MAX_TABLE_CAPACITY.
    assert_eq!(space.free_slots(t[2]), MAX_TABLE_CAPACITY);
    for i in 0..MAX_TABLE_CAPACITY {
        let h = space.insert(t[2], cap(i as u32, ALL)).unwrap();
        assert_eq!(h.index(), i);
    }
    assert_eq!(space.insert(t[2], cap(0, ALL)), Err(CapError::TableFull));
    assert_eq!(space.total(), 3 + MAX_TABLE_CAPACITY);
    // At most MAX_TABLES tables at once.
    let mut space = Space::new();
    for _ in 0..MAX_TABLES {
        space.create_table(0).unwrap();
    }
    assert_eq!(space.create_table(1), Err(CapError::TableFull));
}

/// One cap as the reference model sees it.
#[derive(Clone, Copy)]
struct ModelCap {
    table: usize,
    handle: Handle,
    cap: Cap<u32>,
    parent: Option<usize>,
    /// Rights when created: no descendant may ever exceed them.
    ceiling: Rights,
    alive: bool,
}

/// The obvious implementation: a flat list with parent links, searched linearly.
struct Model {
    caps: Vec<ModelCap>,
    tables: Vec<(TableId, usize)>,
    dead: Vec<(TableId, Handle)>,
    /// Ids of the live caps, so that each step costs O(live), not O(ever created).
    live_ids: Vec<usize>,
}

impl Model {
    fn count(&self, table: usize) -> usize {
        self.live_ids.iter().filter(|&&c| self.caps[c].table == table).count()
    }

    fn has_room(&self, table: usize) -> bool {
        self.count(table) < self.tables[table].1
    }

    fn add(&mut self, table: usize, handle: Handle, cap: Cap<u32>, parent: Option<usize>) {
        self.live_ids.push(self.caps.len());
        self.caps.push(ModelCap { table, handle, cap, parent, ceiling: cap.rights, alive: true });
    }

    fn kill(&mut self, id: usize) {
        let ModelCap { table, handle, parent, .. } = self.caps[id];
        self.caps[id].alive = false;
        self.dead.push((self.tables[table].0, handle));
        self.live_ids.retain(|&c| c != id);
        for &c in &self.live_ids {
            if self.caps[c].parent == Some(id) {
                self.caps[c].parent = parent;
            }
        }
    }

    fn is_descendant(&self, mut id: usize, ancestor: usize) -> bool {
        while let Some(parent) = self.caps[id].parent {
            if parent == ancestor {
                return true;
            }
            id = parent;
        }
        false
    }

    fn live(&self) -> Vec<usize> {
        debug_assert!(self.live_ids.iter().all(|&c| self.caps[c].alive));
        self.live_ids.clone()
    }
}

/// Outcome counters of the random run.
#[derive(Default)]
struct Hits {
    derived: usize,
    transferred: usize,
    revoked: usize,
    table_full: usize,
    missing_rights: usize,
    already_badged: usize,
    tables_destroyed: usize,
    stale_refused: usize,
}

fn sorted(mut caps: Vec<(TableId, Cap<u32>)>) -> Vec<(TableId, u32, u32, u64)> {
    caps.sort_by_key(|(t, c)| (*t, c.object, c.rights.bits(), c.badge));
    caps.into_iter().map(|(t, c)| (t, c.object, c.rights.bits(), c.badge)).collect()
}

#[test]
fn random_operations_match_a_reference_model() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut space = Space::new();
    let mut model = Model { caps: Vec::new(), tables: Vec::new(), dead: Vec::new(), live_ids: Vec::new() };
    for _ in 0..4 {
        let capacity = 4 + rng.below(12);
        model.tables.push((space.create_table(capacity).unwrap(), capacity));
    }
    // How often each interesting outcome happened, so the run provably exercised it.
    let mut hits = Hits::default();
    for step in 0..30_000 {
        let live = model.live();
        let pick = if live.is_empty() { None } else { Some(live[rng.below(live.len())]) };
        let dest = rng.below(4);
        // Masks and new rights lean towards keeping rights, so derivation chains grow deep.
        let mask = if rng.below(2) == 0 { ALL } else { rng.rights() | rng.rights() };
        let op = rng.below(100);
        match (op, pick) {
            (0..=14, _) | (_, None) => {
                let badge = if rng.below(4) == 0 { rng.next() | 1 } else { 0 };
                let new = Cap { object: rng.below(6) as u32, rights: rng.rights() | rng.rights(), badge };
                let got = space.insert(model.tables[dest].0, new);
                if model.has_room(dest) {
                    model.add(dest, got.unwrap(), new, None);
                } else {
                    assert_eq!(got, Err(CapError::TableFull));
                    hits.table_full += 1;
                }
            }
            (15..=44, Some(id)) => {
                let src = model.caps[id];
                let minting = op >= 35;
                let badge = rng.next();
                let (t, d) = (model.tables[src.table].0, model.tables[dest].0);
                let got = if minting {
                    space.mint(t, src.handle, d, mask, badge)
                } else {
                    space.duplicate(t, src.handle, d, mask)
                };
                if !src.cap.rights.contains(Rights::DUPLICATE) {
                    assert_eq!(got, Err(CapError::MissingRights));
                    hits.missing_rights += 1;
                } else if minting && src.cap.badge != 0 {
                    assert_eq!(got, Err(CapError::AlreadyBadged));
                    hits.already_badged += 1;
                } else if !model.has_room(dest) {
                    assert_eq!(got, Err(CapError::TableFull));
                    hits.table_full += 1;
                } else {
                    hits.derived += 1;
                    let badge = if minting { badge } else { src.cap.badge };
                    let new = Cap { object: src.cap.object, rights: src.cap.rights & mask, badge };
                    model.add(dest, got.unwrap(), new, Some(id));
                }
            }
            (45..=59, Some(id)) => {
                let src = model.caps[id];
                let got = space.transfer(model.tables[src.table].0, src.handle, model.tables[dest].0, mask);
                if !src.cap.rights.contains(Rights::TRANSFER) {
                    assert_eq!(got, Err(CapError::MissingRights));
                    hits.missing_rights += 1;
                } else if dest != src.table && !model.has_room(dest) {
                    assert_eq!(got, Err(CapError::TableFull));
                    hits.table_full += 1;
                } else {
                    hits.transferred += 1;
                    model.dead.push((model.tables[src.table].0, src.handle));
                    let moved = &mut model.caps[id];
                    moved.table = dest;
                    moved.handle = got.unwrap();
                    moved.cap.rights &= mask;
                }
            }
            (60..=79, Some(id)) => {
                let src = model.caps[id];
                assert_eq!(space.delete(model.tables[src.table].0, src.handle), Ok(src.cap));
                model.kill(id);
            }
            (80..=94, Some(id)) => {
                let src = model.caps[id];
                let got = space.revoke(model.tables[src.table].0, src.handle);
                if src.cap.rights.contains(Rights::MANAGE) {
                    let doomed: Vec<usize> = live.iter().copied().filter(|&c| model.is_descendant(c, id)).collect();
                    let expected =
                        doomed.iter().map(|&c| (model.tables[model.caps[c].table].0, model.caps[c].cap)).collect();
                    assert_eq!(sorted(got.unwrap()), sorted(expected));
                    hits.revoked += doomed.len();
                    for c in doomed {
                        model.kill(c);
                    }
                } else {
                    assert_eq!(got, Err(CapError::MissingRights));
                    hits.missing_rights += 1;
                }
            }
            (95..=96, _) => {
                let object = rng.below(6) as u32;
                let doomed: Vec<usize> = live.iter().copied().filter(|&c| model.caps[c].cap.object == object).collect();
                let expected =
                    doomed.iter().map(|&c| (model.tables[model.caps[c].table].0, model.caps[c].cap)).collect();
                assert_eq!(sorted(space.remove_object(object)), sorted(expected));
                for c in doomed {
                    model.kill(c);
                }
            }
            (97, _) if rng.below(2) == 0 => {
                let doomed: Vec<usize> = live.iter().copied().filter(|&c| model.caps[c].table == dest).collect();
                let t = model.tables[dest].0;
                let removed = space.destroy_table(t).unwrap().into_iter().map(|c| (t, c)).collect();
                let expected = doomed.iter().map(|&c| (t, model.caps[c].cap)).collect();
                assert_eq!(sorted(removed), sorted(expected));
                hits.tables_destroyed += 1;
                for c in doomed {
                    model.kill(c);
                }
                let capacity = rng.below(16);
                model.tables[dest] = (space.create_table(capacity).unwrap(), capacity);
            }
            _ => {
                if !model.dead.is_empty() {
                    let (t, h) = model.dead[rng.below(model.dead.len())];
                    let got = space.get(t, h);
                    assert!(matches!(got, Err(CapError::Stale | CapError::NoTable)), "step {step}: {got:?}");
                    hits.stale_refused += 1;
                }
            }
        }
        assert_eq!(space.total(), model.live().len(), "step {step}");
        for (i, &(t, _)) in model.tables.iter().enumerate() {
            assert_eq!(space.len(t), model.count(i), "step {step}");
        }
        for id in model.live() {
            let c = model.caps[id];
            assert_eq!(space.get(model.tables[c.table].0, c.handle), Ok(c.cap), "step {step}");
            let mut ancestor = c.parent;
            while let Some(a) = ancestor {
                assert!(model.caps[a].ceiling.contains(c.cap.rights), "step {step}: rights grew");
                ancestor = model.caps[a].parent;
            }
        }
    }
    assert!(model.caps.len() > 5_000, "the run exercised enough caps");
    let Hits {
        derived,
        transferred,
        revoked,
        table_full,
        missing_rights,
        already_badged,
        tables_destroyed,
        stale_refused,
    } = hits;
    for (name, count) in [
        ("derived", derived),
        ("transferred", transferred),
        ("revoked", revoked),
        ("table_full", table_full),
        ("missing_rights", missing_rights),
        ("already_badged", already_badged),
        ("tables_destroyed", tables_destroyed),
        ("stale_refused", stale_refused),
    ] {
        assert!(count >= 50, "only {count} {name}");
    }
}

#[test]
fn holds_tells_whether_a_table_still_reaches_an_object() {
    let mut space: CapSpace<u32> = CapSpace::new();
    let a = space.create_table(8).unwrap();
    let b = space.create_table(8).unwrap();
    let original = space.insert(a, Cap { object: 7, rights: Rights::all(), badge: 0 }).unwrap();
    assert!(space.holds(a, 7) && !space.holds(b, 7) && !space.holds(a, 8));
    let copy = space.duplicate(a, original, b, Rights::all()).unwrap();
    let second = space.duplicate(b, copy, b, Rights::all()).unwrap();
    assert!(space.holds(b, 7));
    space.delete(b, copy).unwrap();
    assert!(space.holds(b, 7), "one copy is left");
    space.delete(b, second).unwrap();
    assert!(!space.holds(b, 7));
    space.destroy_table(a).unwrap();
    assert!(!space.holds(a, 7), "a destroyed table holds nothing");
}
