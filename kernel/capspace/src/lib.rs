//! Vessel's capabilities as pure logic: per-process capability tables and the global derivation
//! tree used for revocation (DESIGN.md section 2). The kernel owns one [`CapSpace`] and calls it
//! for every capability operation; it keeps object reference counts itself, from the caps this
//! crate returns whenever it removes some.
//!
//! Invariants:
//! - A [`Handle`] is `generation << 16 | slot index`. A slot's generation is never 0 and advances
//!   each time the slot is freed, so handle 0 is never valid and a handle to a deleted or reused
//!   slot is reported [`CapError::Stale`] instead of aliasing the new cap. Free slots are reused
//!   first-in first-out, which spreads generation wraparound (2^16 reuses of one slot) thin.
//!   [`TableId`] is built the same way, so a destroyed table's id never reaches its successor.
//! - Rights only shrink: a derived or transferred cap has at most the rights of its source at
//!   that moment. A transfer may later shrink a cap below what its earlier children got; those
//!   children keep their rights (they were handed out when the parent held them).
//! - Every cap is a node of one derivation forest: roots come from [`CapSpace::insert`], children
//!   from `duplicate` and `mint`; `transfer` moves a cap between tables without changing its node.
//!   Each node keeps its parent and an intrusive doubly linked list of its children, so `revoke`
//!   is O(descendants) with no allocation beyond its result, and `delete` is O(children):
//!   the deleted cap's children move up to its parent (or become roots).
//! - Every operation checks everything before changing anything: on error, nothing changed.
//!   No input (handle, table id, rights, badge) can make any function panic.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::fmt;
use vessel_abi::Rights;

#[cfg(test)]
mod tests;

/// Largest number of caps one table can hold (slot indices must fit a handle's 16 bits).
pub const MAX_TABLE_CAPACITY: usize = 4096;

/// Largest number of tables alive at once (a [`TableId`] carries a 16-bit index).
pub const MAX_TABLES: usize = 1 << 16;

/// Caps removed by an operation, each with the table it was in.
pub type Removed<O> = Vec<(TableId, Cap<O>)>;

/// "No node / no slot" in the intrusive links.
const NIL: u32 = u32::MAX;

/// The generation after `generation`, skipping 0 (which marks "never valid").
fn next_generation(generation: u16) -> u16 {
    match generation.wrapping_add(1) {
        0 => 1,
        next => next,
    }
}

/// Packs a 16-bit index and a generation into a handle or table id.
fn pack(index: usize, generation: u16) -> u32 {
    (u32::from(generation) << 16) | (index as u32 & 0xffff)
}

/// A user-visible handle: low 16 bits slot index, high 16 bits the slot's generation (never 0),
/// so a handle to a deleted or reused slot is detected. 0 is never a valid handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Handle(pub u32);

impl Handle {
    /// The slot index part.
    pub const fn index(self) -> usize {
        (self.0 & 0xffff) as usize
    }

    /// The generation part (0 only in forged or null handles).
    pub const fn generation(self) -> u16 {
        (self.0 >> 16) as u16
    }
}

/// Names one capability table (one per process): low 16 bits index, high 16 bits generation,
/// so the id of a destroyed table is refused even after its index is reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableId(pub u32);

/// A capability: which object, what it allows, and the badge stamped on messages sent through it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cap<O> {
    /// The kernel object it refers to.
    pub object: O,
    /// What the holder may do with the object.
    pub rights: Rights,
    /// Set once by `mint`; 0 means unbadged.
    pub badge: u64,
}

/// Why a capability operation was refused. A refused operation changed nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapError {
    /// Malformed handle (generation 0), index out of range, or empty slot.
    InvalidHandle,
    /// Generation mismatch: the slot was deleted, and maybe reused, since the handle was issued.
    Stale,
    /// The table id names no live table.
    NoTable,
    /// The destination table has no free slot (or no more tables can be created).
    TableFull,
    /// The operation needs a right the cap lacks.
    MissingRights,
    /// Only an unbadged cap may be minted.
    AlreadyBadged,
}

impl fmt::Display for CapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::InvalidHandle => "invalid capability handle",
            Self::Stale => "stale capability handle",
            Self::NoTable => "no such capability table",
            Self::TableFull => "capability table full",
            Self::MissingRights => "capability lacks a required right",
            Self::AlreadyBadged => "capability is already badged",
        })
    }
}

/// One slot of a table: empty (`node == NIL`, linked in the free list) or holding a cap node.
#[derive(Clone, Copy)]
struct Slot {
    generation: u16,
    node: u32,
    next_free: u32,
}

/// One capability table. Slots are allocated lazily up to `capacity`; freed slots queue FIFO.
struct Table {
    generation: u16,
    live: bool,
    capacity: usize,
    len: usize,
    slots: Vec<Slot>,
    free_head: u32,
    free_tail: u32,
}

impl Table {
    fn new(generation: u16, capacity: usize) -> Self {
        Self { generation, live: true, capacity, len: 0, slots: Vec::new(), free_head: NIL, free_tail: NIL }
    }

    /// Puts `node` in a free slot. The caller checked `len < capacity`, so either the free
    /// list is non-empty or fewer than `capacity` slots exist yet.
    fn alloc_slot(&mut self, node: u32) -> Handle {
        let index = if self.free_head == NIL {
            self.slots.push(Slot { generation: 1, node: NIL, next_free: NIL });
            self.slots.len() - 1
        } else {
            let index = self.free_head as usize;
            self.free_head = self.slots[index].next_free;
            if self.free_head == NIL {
                self.free_tail = NIL;
            }
            index
        };
        let slot = &mut self.slots[index];
        slot.node = node;
        slot.next_free = NIL;
        self.len += 1;
        Handle(pack(index, slot.generation))
    }

    /// Empties an occupied slot, advances its generation and queues it at the free-list tail.
    fn free_slot(&mut self, index: u32) {
        let slot = &mut self.slots[index as usize];
        slot.node = NIL;
        slot.generation = next_generation(slot.generation);
        slot.next_free = NIL;
        if self.free_tail == NIL {
            self.free_head = index;
        } else {
            self.slots[self.free_tail as usize].next_free = index;
        }
        self.free_tail = index;
        self.len -= 1;
    }
}

/// One cap and its place in the derivation forest and in the tables.
#[derive(Clone, Copy)]
struct Node<O> {
    cap: Cap<O>,
    live: bool,
    table: u32,
    slot: u32,
    parent: u32,
    first_child: u32,
    prev_sibling: u32,
    next_sibling: u32,
}

/// All capability tables of the system and the derivation forest linking their caps.
pub struct CapSpace<O> {
    tables: Vec<Table>,
    free_tables: VecDeque<u32>,
    nodes: Vec<Node<O>>,
    free_nodes: Vec<u32>,
    total: usize,
}

impl<O: Copy + Eq + fmt::Debug> Default for CapSpace<O> {
    fn default() -> Self {
        Self::new()
    }
}

impl<O: Copy + Eq + fmt::Debug> CapSpace<O> {
    /// An empty capability space: no tables, no caps.
    pub fn new() -> Self {
        Self { tables: Vec::new(), free_tables: VecDeque::new(), nodes: Vec::new(), free_nodes: Vec::new(), total: 0 }
    }

    /// A new empty table holding at most `capacity` caps (clamped to [`MAX_TABLE_CAPACITY`]).
    /// Fails with `TableFull` only when [`MAX_TABLES`] tables already exist.
    pub fn create_table(&mut self, capacity: usize) -> Result<TableId, CapError> {
        let capacity = capacity.min(MAX_TABLE_CAPACITY);
        let index = match self.free_tables.pop_front() {
            Some(index) => index as usize,
            None if self.tables.len() < MAX_TABLES => {
                self.tables.push(Table::new(1, 0));
                self.tables.len() - 1
            }
            None => return Err(CapError::TableFull),
        };
        let table = &mut self.tables[index];
        *table = Table::new(table.generation, capacity);
        Ok(TableId(pack(index, table.generation)))
    }

    /// Removes a table and every cap in it (its derived caps elsewhere stay, re-parented as in
    /// `delete`). Returns the removed caps. The id is refused from then on.
    pub fn destroy_table(&mut self, table: TableId) -> Result<Vec<Cap<O>>, CapError> {
        let index = self.table_index(table)?;
        let mut removed = Vec::with_capacity(self.tables[index].len);
        for slot in 0..self.tables[index].slots.len() {
            let node = self.tables[index].slots[slot].node;
            if node != NIL {
                removed.push(self.nodes[node as usize].cap);
                self.remove_node(node);
            }
        }
        let entry = &mut self.tables[index];
        *entry = Table::new(next_generation(entry.generation), 0);
        entry.live = false;
        self.free_tables.push_back(index as u32);
        Ok(removed)
    }

    /// Inserts an original cap (a root of the derivation tree), e.g. when an object is created.
    pub fn insert(&mut self, table: TableId, cap: Cap<O>) -> Result<Handle, CapError> {
        let dest = self.index_with_room(table)?;
        Ok(self.place(dest, cap, NIL))
    }

    /// The cap behind `handle` in `table`. O(1).
    #[inline]
    pub fn get(&self, table: TableId, handle: Handle) -> Result<Cap<O>, CapError> {
        Ok(self.nodes[self.lookup(table, handle)? as usize].cap)
    }

    /// Like `get`, but also refuses with `MissingRights` unless the cap holds all of `rights`:
    /// the check every syscall makes before using a cap.
    pub fn require(&self, table: TableId, handle: Handle, rights: Rights) -> Result<Cap<O>, CapError> {
        let cap = self.get(table, handle)?;
        if cap.rights.contains(rights) { Ok(cap) } else { Err(CapError::MissingRights) }
    }

    /// Copy with rights `cap.rights & mask` (only shrink) into `dest` (may equal `table`), as a
    /// child of the source in the derivation tree. Requires DUPLICATE on the source.
    pub fn duplicate(
        &mut self,
        table: TableId,
        handle: Handle,
        dest: TableId,
        mask: Rights,
    ) -> Result<Handle, CapError> {
        self.derive(table, handle, dest, mask, None)
    }

    /// Like duplicate but also sets a badge; only an unbadged cap may be minted (else
    /// AlreadyBadged). Requires DUPLICATE.
    pub fn mint(
        &mut self,
        table: TableId,
        handle: Handle,
        dest: TableId,
        mask: Rights,
        badge: u64,
    ) -> Result<Handle, CapError> {
        self.derive(table, handle, dest, mask, Some(badge))
    }

    /// Moves a cap to another table (the source slot is freed), keeping its place in the
    /// derivation tree. Requires TRANSFER. Rights may be shrunk by `mask` on the way. With
    /// `dest == table` the cap moves to a fresh handle in the same table (never fails for room).
    pub fn transfer(
        &mut self,
        table: TableId,
        handle: Handle,
        dest: TableId,
        mask: Rights,
    ) -> Result<Handle, CapError> {
        let node = self.lookup(table, handle)?;
        if !self.nodes[node as usize].cap.rights.contains(Rights::TRANSFER) {
            return Err(CapError::MissingRights);
        }
        let dest_index = if dest == table { self.table_index(dest)? } else { self.index_with_room(dest)? };
        let Node { table: from, slot, .. } = self.nodes[node as usize];
        self.tables[from as usize].free_slot(slot);
        let new_handle = self.tables[dest_index].alloc_slot(node);
        let moved = &mut self.nodes[node as usize];
        moved.table = dest_index as u32;
        moved.slot = new_handle.index() as u32;
        moved.cap.rights &= mask;
        Ok(new_handle)
    }

    /// Deletes one cap. Caps derived from it are re-parented to its parent (so revoking an
    /// ancestor still reaches them) or become roots.
    pub fn delete(&mut self, table: TableId, handle: Handle) -> Result<Cap<O>, CapError> {
        let node = self.lookup(table, handle)?;
        let cap = self.nodes[node as usize].cap;
        self.remove_node(node);
        Ok(cap)
    }

    /// Deletes every cap derived (transitively) from this one, in every table; the cap itself
    /// stays. Requires MANAGE. Returns the removed caps with their tables, leaves first.
    /// O(descendants): a post-order walk over the child lists, with no stack.
    pub fn revoke(&mut self, table: TableId, handle: Handle) -> Result<Vec<(TableId, Cap<O>)>, CapError> {
        self.revoke_some(table, handle, usize::MAX).map(|(removed, _)| removed)
    }

    /// Like [`revoke`](Self::revoke), but stops after removing `budget` caps, so a caller can
    /// bound the work done at once and call again: returns the removed caps and whether
    /// descendants remain. Each call resumes where the last one stopped (the walk needs no state:
    /// removed leaves are gone), at the cost of one descent from the revoked cap.
    pub fn revoke_some(
        &mut self,
        table: TableId,
        handle: Handle,
        budget: usize,
    ) -> Result<(Removed<O>, bool), CapError> {
        let root = self.lookup(table, handle)?;
        if !self.nodes[root as usize].cap.rights.contains(Rights::MANAGE) {
            return Err(CapError::MissingRights);
        }
        let mut removed = Vec::new();
        let mut current = self.nodes[root as usize].first_child;
        while current != NIL {
            if removed.len() >= budget {
                return Ok((removed, true));
            }
            let Node { first_child, parent, table, cap, .. } = self.nodes[current as usize];
            if first_child != NIL {
                current = first_child;
                continue;
            }
            removed.push((self.table_id(table), cap));
            self.remove_node(current);
            current = if parent == root { self.nodes[root as usize].first_child } else { parent };
        }
        Ok((removed, false))
    }

    /// Deletes every cap of `object` in every table (the object is being destroyed). Returns
    /// them. O(total caps).
    pub fn remove_object(&mut self, object: O) -> Vec<(TableId, Cap<O>)> {
        let mut removed = Vec::new();
        for index in 0..self.nodes.len() {
            let Node { live, cap, table, .. } = self.nodes[index];
            if live && cap.object == object {
                removed.push((self.table_id(table), cap));
                self.remove_node(index as u32);
            }
        }
        removed
    }

    /// Number of caps in a table (0 for a table that does not exist).
    pub fn len(&self, table: TableId) -> usize {
        self.table(table).map_or(0, |t| t.len)
    }

    /// Number of free slots in a table (0 for a table that does not exist), so that a caller
    /// moving several caps at once can check room for all of them first.
    pub fn free_slots(&self, table: TableId) -> usize {
        self.table(table).map_or(0, |t| t.capacity - t.len)
    }

    /// Whether `table` holds any cap to `object` (false for a table that does not exist).
    /// O(slots of the table).
    pub fn holds(&self, table: TableId, object: O) -> bool {
        self.table(table).is_ok_and(|t| {
            t.slots
                .iter()
                .any(|s| s.node != NIL && self.nodes.get(s.node as usize).is_some_and(|n| n.cap.object == object))
        })
    }

    /// Number of caps in all tables.
    pub fn total(&self) -> usize {
        self.total
    }

    /// The live table named by `id`.
    #[inline]
    fn table(&self, id: TableId) -> Result<&Table, CapError> {
        self.table_index(id).map(|index| &self.tables[index])
    }

    /// Index of the live table named by `id`.
    #[inline]
    fn table_index(&self, id: TableId) -> Result<usize, CapError> {
        let index = (id.0 & 0xffff) as usize;
        match self.tables.get(index) {
            Some(t) if t.live && t.generation == (id.0 >> 16) as u16 => Ok(index),
            _ => Err(CapError::NoTable),
        }
    }

    /// Index of the live table named by `id`, if it has a free slot.
    fn index_with_room(&self, id: TableId) -> Result<usize, CapError> {
        let index = self.table_index(id)?;
        let t = &self.tables[index];
        if t.len < t.capacity { Ok(index) } else { Err(CapError::TableFull) }
    }

    /// The current id of the live table at `index`.
    fn table_id(&self, index: u32) -> TableId {
        TableId(pack(index as usize, self.tables[index as usize].generation))
    }

    /// The node behind `handle` in `table`, with every check a user-supplied handle needs.
    #[inline]
    fn lookup(&self, table: TableId, handle: Handle) -> Result<u32, CapError> {
        let t = self.table(table)?;
        if handle.generation() == 0 {
            return Err(CapError::InvalidHandle);
        }
        let slot = t.slots.get(handle.index()).ok_or(CapError::InvalidHandle)?;
        if slot.generation != handle.generation() {
            Err(CapError::Stale)
        } else if slot.node == NIL {
            Err(CapError::InvalidHandle)
        } else {
            Ok(slot.node)
        }
    }

    /// Shared body of `duplicate` and `mint` (`badge` is `Some` for mint).
    fn derive(
        &mut self,
        table: TableId,
        handle: Handle,
        dest: TableId,
        mask: Rights,
        badge: Option<u64>,
    ) -> Result<Handle, CapError> {
        let source = self.lookup(table, handle)?;
        let cap = self.nodes[source as usize].cap;
        if !cap.rights.contains(Rights::DUPLICATE) {
            return Err(CapError::MissingRights);
        }
        if badge.is_some() && cap.badge != 0 {
            return Err(CapError::AlreadyBadged);
        }
        let dest = self.index_with_room(dest)?;
        let derived = Cap { object: cap.object, rights: cap.rights & mask, badge: badge.unwrap_or(cap.badge) };
        Ok(self.place(dest, derived, source))
    }

    /// Creates a node for `cap` under `parent` (or as a root) in table `dest`, which has room.
    fn place(&mut self, dest: usize, cap: Cap<O>, parent: u32) -> Handle {
        let node = Node {
            cap,
            live: true,
            table: dest as u32,
            slot: NIL,
            parent,
            first_child: NIL,
            prev_sibling: NIL,
            next_sibling: NIL,
        };
        let index = match self.free_nodes.pop() {
            Some(index) => {
                self.nodes[index as usize] = node;
                index
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        };
        let handle = self.tables[dest].alloc_slot(index);
        self.nodes[index as usize].slot = handle.index() as u32;
        if parent != NIL {
            let old_first = self.nodes[parent as usize].first_child;
            self.nodes[index as usize].next_sibling = old_first;
            if old_first != NIL {
                self.nodes[old_first as usize].prev_sibling = index;
            }
            self.nodes[parent as usize].first_child = index;
        }
        self.total += 1;
        handle
    }

    /// Removes a live node: unlinks it from its parent, hands its children to its parent (or
    /// makes them roots), frees its slot and recycles it. O(children).
    fn remove_node(&mut self, node: u32) {
        let Node { parent, first_child, prev_sibling, next_sibling, table, slot, .. } = self.nodes[node as usize];
        if prev_sibling != NIL {
            self.nodes[prev_sibling as usize].next_sibling = next_sibling;
        } else if parent != NIL {
            self.nodes[parent as usize].first_child = next_sibling;
        }
        if next_sibling != NIL {
            self.nodes[next_sibling as usize].prev_sibling = prev_sibling;
        }
        let mut child = first_child;
        let mut last = NIL;
        while child != NIL {
            let next = self.nodes[child as usize].next_sibling;
            let moved = &mut self.nodes[child as usize];
            moved.parent = parent;
            if parent == NIL {
                moved.prev_sibling = NIL;
                moved.next_sibling = NIL;
            }
            last = child;
            child = next;
        }
        if parent != NIL && first_child != NIL {
            // Splice the whole child list in front of the parent's children.
            let old_first = self.nodes[parent as usize].first_child;
            self.nodes[last as usize].next_sibling = old_first;
            if old_first != NIL {
                self.nodes[old_first as usize].prev_sibling = last;
            }
            self.nodes[parent as usize].first_child = first_child;
        }
        self.tables[table as usize].free_slot(slot);
        let dead = &mut self.nodes[node as usize];
        dead.live = false;
        dead.parent = NIL;
        dead.first_child = NIL;
        dead.prev_sibling = NIL;
        dead.next_sibling = NIL;
        self.free_nodes.push(node);
        self.total -= 1;
    }
}
