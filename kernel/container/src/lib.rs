//! Vessel's containers as pure logic: the container tree, hierarchical quotas (like cgroups),
//! unguessable container ids and per-container process ids. The kernel owns one [`Tree`] and calls
//! it; every process belongs to exactly one container.
//!
//! Invariants:
//! - An [`Index`] is a slot number and that slot's generation. A generation is never 0 and
//!   advances each time the slot is freed, so `Index::default()` never names a container and an
//!   index to a removed container is reported [`ContainerError::NoSuchContainer`] instead of
//!   aliasing a later one. Free slots are reused first-in first-out, which spreads generation
//!   wraparound (2^32 reuses of one slot) thin.
//! - The root always exists, is always [`State::Alive`], and is the only container without a
//!   parent. Every other container's parent is live and lists it among its children.
//! - A container's children form an intrusive doubly linked list through the slots, oldest first:
//!   the parent holds the first and last child and the child count, each child its previous and
//!   next sibling (all live). So `create` appends a child at the tail and `remove` unlinks one in
//!   O(1), whatever the number of siblings, and [`Tree::children`] walks them in creation order.
//! - Dying is closed downwards: every descendant of a dying container is dying too, since
//!   `begin_destroy` marks a whole subtree and `create` needs an alive parent. So checking the
//!   container itself for [`State::Dying`] covers all its ancestors.
//! - Usage is hierarchical: for every container and resource,
//!   `usage == own usage + sum of the children's usage`, and `usage <= limit`. A charge goes to a
//!   container and all its ancestors or to none of them; an uncharge gives back at most the
//!   container's own usage, so the accounting can never go negative or drift.
//! - Every live container's public id is in the lookup map exactly once; ids are never 0.
//! - Every operation checks everything before changing anything: on error, nothing changed.
//!   No input (garbage or stale index, id, amount) can make any function panic. Nothing recurses:
//!   walks over ancestors or subtrees are loops, so depth costs no stack.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::fmt;

#[cfg(test)]
mod tests;

/// Number of quota resources.
pub const RESOURCES: usize = 5;

/// Largest number of live containers (the root included).
pub const MAX_CONTAINERS: usize = 1 << 16;

/// "No slot" in the free list.
const NIL: u32 = u32::MAX;

/// A resource whose use is limited per container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Resource {
    /// Physical memory pages.
    Pages = 0,
    /// Processes.
    Processes = 1,
    /// Threads.
    Threads = 2,
    /// Kernel objects (endpoints, notifications, ...).
    Objects = 3,
    /// Capability table slots.
    CapSlots = 4,
}

impl Resource {
    /// Every resource, in discriminant order (so `ALL[r as usize] == r`).
    pub const ALL: [Resource; RESOURCES] =
        [Resource::Pages, Resource::Processes, Resource::Threads, Resource::Objects, Resource::CapSlots];
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pages => "pages",
            Self::Processes => "processes",
            Self::Threads => "threads",
            Self::Objects => "objects",
            Self::CapSlots => "capability slots",
        })
    }
}

/// Per-resource amounts; used for limits and usage. Index by `Resource as usize`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Amounts(pub [u64; RESOURCES]);

impl Amounts {
    /// `u64::MAX` of everything: no limit (and, in a `create` request, "inherit" for every resource).
    pub const UNLIMITED: Amounts = Amounts([u64::MAX; RESOURCES]);

    /// Nothing of anything.
    pub const ZERO: Amounts = Amounts([0; RESOURCES]);

    /// The amount of `r`.
    pub const fn get(&self, r: Resource) -> u64 {
        self.0[r as usize]
    }

    /// Sets the amount of `r` to `v`.
    pub const fn set(&mut self, r: Resource, v: u64) {
        self.0[r as usize] = v;
    }
}

/// Lifecycle of a live container. A removed container is no longer in the tree at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Normal operation.
    Alive,
    /// Being destroyed: no new charges, children or pids; waits for its usage to reach zero.
    Dying,
}

/// Why a container operation was refused. A refused operation changed nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContainerError {
    /// The index is stale, never existed, or names a removed container.
    NoSuchContainer,
    /// The container (and so its whole subtree) is being destroyed: no new charges, children or pids.
    Dying,
    /// The charge would exceed the limit of this container or of an ancestor.
    Quota(Resource),
    /// A child's requested limit exceeds what the parent has left.
    LimitTooLarge(Resource),
    /// `remove` on a container that is alive, has children, or has non-zero usage.
    NotEmpty,
    /// The root cannot be destroyed or removed.
    IsRoot,
    /// [`MAX_CONTAINERS`] containers are live already.
    TooMany,
    /// The requested id is 0 (reserved for "no container") or already names a live container.
    DuplicateId,
}

impl fmt::Display for ContainerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoSuchContainer => f.write_str("no such container"),
            Self::Dying => f.write_str("container is being destroyed"),
            Self::Quota(r) => write!(f, "quota exceeded: {r}"),
            Self::LimitTooLarge(r) => write!(f, "limit larger than the parent has left: {r}"),
            Self::NotEmpty => f.write_str("container not empty"),
            Self::IsRoot => f.write_str("the root container cannot be destroyed"),
            Self::TooMany => f.write_str("too many containers"),
            Self::DuplicateId => f.write_str("container id already in use"),
        }
    }
}

/// Names one container: slot index and that slot's generation (never 0 for a real container), so
/// a stale index is detected, never aliased. `Index::default()` never names a container.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Index {
    slot: u32,
    generation: u32,
}

/// The generation after `generation`, skipping 0 (which marks "never valid").
fn next_generation(generation: u32) -> u32 {
    match generation.wrapping_add(1) {
        0 => 1,
        next => next,
    }
}

/// Number of Feistel rounds of [`IdGenerator`].
const ROUNDS: usize = 6;

/// A 64-bit finaliser (splitmix64's): a bijective, well-mixing function.
const fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The Feistel round function: any function works for a bijection; this one mixes well.
const fn round(half: u32, key: u64) -> u32 {
    (mix64(half as u64 ^ key) >> 32) as u32
}

/// Makes unique, random-looking 64-bit container ids with O(1) memory: a keyed bijection (a
/// 6-round Feistel network on two 32-bit halves, round keys derived from the seed) applied to a
/// counter that never repeats. So an id is never reused during a boot without remembering past ids,
/// and ids do not reveal how many containers were made. 0 is never produced (it means "no
/// container" in the ABI): the one counter value that maps to 0 is skipped.
pub struct IdGenerator {
    keys: [u64; ROUNDS],
    counter: u64,
}

impl IdGenerator {
    /// A generator keyed by `seed` (the kernel passes hardware random numbers). Different seeds give
    /// unrelated sequences.
    pub fn new(seed: [u64; 4]) -> Self {
        let mut state = 0x6a09_e667_f3bc_c908_u64;
        for word in seed {
            state = mix64(state ^ word).wrapping_add(0x9e37_79b9_7f4a_7c15);
        }
        let mut keys = [0; ROUNDS];
        for key in &mut keys {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            *key = mix64(state);
        }
        Self { keys, counter: 0 }
    }

    /// The next id: never 0, never a repeat (until 2^64 calls).
    #[allow(clippy::should_implement_trait, reason = "an endless source of ids, not a collection to iterate")]
    pub fn next(&mut self) -> u64 {
        loop {
            let id = self.permute(self.counter);
            self.counter = self.counter.wrapping_add(1);
            if id != 0 {
                return id;
            }
        }
    }

    /// The keyed bijection on 64-bit values.
    fn permute(&self, value: u64) -> u64 {
        let (mut left, mut right) = ((value >> 32) as u32, value as u32);
        for &key in &self.keys {
            (left, right) = (right, left ^ round(right, key));
        }
        (u64::from(left) << 32) | u64::from(right)
    }

    /// The inverse of `permute` (tests use it to reach the counter value that maps to 0).
    #[cfg(test)]
    fn unpermute(&self, value: u64) -> u64 {
        let (mut left, mut right) = ((value >> 32) as u32, value as u32);
        for &key in self.keys.iter().rev() {
            (left, right) = (right ^ round(left, key), left);
        }
        (u64::from(left) << 32) | u64::from(right)
    }
}

/// One container of the tree.
#[derive(Clone, Debug)]
pub struct Container {
    id: u64,
    parent: Option<Index>,
    /// The oldest child (head of the sibling list).
    first_child: Option<Index>,
    /// The youngest child (tail of the sibling list).
    last_child: Option<Index>,
    /// The next older sibling (towards the head).
    prev_sibling: Option<Index>,
    /// The next younger sibling (towards the tail).
    next_sibling: Option<Index>,
    /// Length of the child list.
    child_count: usize,
    state: State,
    limits: Amounts,
    usage: Amounts,
    own: Amounts,
    depth: u32,
    next_pid: u64,
}

impl Container {
    /// The public id (never 0, unique among live containers).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The parent; `None` only for the root.
    pub fn parent(&self) -> Option<Index> {
        self.parent
    }

    /// Number of children (live, alive or dying). O(1); [`Tree::children`] lists them.
    pub fn child_count(&self) -> usize {
        self.child_count
    }

    /// Alive or dying.
    pub fn state(&self) -> State {
        self.state
    }

    /// The limits, fixed at creation.
    pub fn limits(&self) -> Amounts {
        self.limits
    }

    /// Current usage, including everything charged to descendants (hierarchical).
    pub fn usage(&self) -> Amounts {
        self.usage
    }

    /// Distance from the root (the root is 0).
    pub fn depth(&self) -> u32 {
        self.depth
    }
}

/// One slot of the tree: a container, or free (linked in the free list).
#[derive(Debug)]
struct Slot {
    generation: u32,
    container: Option<Container>,
    next_free: u32,
}

/// All containers of the system: the root and its descendants.
#[derive(Debug)]
pub struct Tree {
    slots: Vec<Slot>,
    free_head: u32,
    free_tail: u32,
    by_id: BTreeMap<u64, Index>,
    len: usize,
    root: Index,
}

impl Tree {
    /// A tree holding only the root container with this id and these limits. The caller passes a
    /// non-zero id (as [`IdGenerator`] makes); the root is never dying and never removed.
    pub fn new(root_id: u64, root_limits: Amounts) -> Self {
        let root = Index { slot: 0, generation: 1 };
        let container = Container {
            id: root_id,
            parent: None,
            first_child: None,
            last_child: None,
            prev_sibling: None,
            next_sibling: None,
            child_count: 0,
            state: State::Alive,
            limits: root_limits,
            usage: Amounts::ZERO,
            own: Amounts::ZERO,
            depth: 0,
            next_pid: 1,
        };
        let mut by_id = BTreeMap::new();
        by_id.insert(root_id, root);
        Self {
            slots: alloc::vec![Slot { generation: 1, container: Some(container), next_free: NIL }],
            free_head: NIL,
            free_tail: NIL,
            by_id,
            len: 1,
            root,
        }
    }

    /// The root container.
    pub fn root(&self) -> Index {
        self.root
    }

    /// The live container named by `at`, if any. O(1).
    pub fn get(&self, at: Index) -> Option<&Container> {
        let slot = self.slots.get(at.slot as usize)?;
        if slot.generation == at.generation { slot.container.as_ref() } else { None }
    }

    /// Mutable access to the live container named by `at`.
    fn get_mut(&mut self, at: Index) -> Option<&mut Container> {
        let slot = self.slots.get_mut(at.slot as usize)?;
        if slot.generation == at.generation { slot.container.as_mut() } else { None }
    }

    /// The children of `at`, oldest first (nothing for a stale index). O(1) per child, no
    /// allocation.
    pub fn children(&self, at: Index) -> impl Iterator<Item = Index> + '_ {
        let first = self.get(at).and_then(|c| c.first_child);
        core::iter::successors(first, move |&child| self.get(child).and_then(|c| c.next_sibling))
    }

    /// The live (alive or dying) container with this public id. O(log n).
    pub fn lookup(&self, id: u64) -> Option<Index> {
        self.by_id.get(&id).copied()
    }

    /// Number of live containers, the root included (so never 0).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: the root is always there.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// What `at` can still take of each resource: the minimum over `at` and all its ancestors of
    /// limit - usage. O(depth).
    fn headroom(&self, at: Index) -> Amounts {
        let mut left = Amounts::UNLIMITED;
        let mut current = self.get(at);
        while let Some(c) = current {
            for r in Resource::ALL {
                let here = c.limits.get(r).saturating_sub(c.usage.get(r));
                left.set(r, left.get(r).min(here));
            }
            current = c.parent.and_then(|p| self.get(p));
        }
        left
    }

    /// A new alive child of `parent` with public id `id`. For each resource, `u64::MAX` in `limits`
    /// means "inherit": the child's limit becomes what the parent has left right now (the minimum
    /// over the parent and its ancestors of limit - usage). A finite request larger than that is
    /// refused with `LimitTooLarge`. Refused: `NoSuchContainer`, `Dying` (parent dying),
    /// `DuplicateId` (0 or live), `TooMany`. O(depth + log n).
    pub fn create(&mut self, parent: Index, id: u64, limits: Amounts) -> Result<Index, ContainerError> {
        let p = self.get(parent).ok_or(ContainerError::NoSuchContainer)?;
        if p.state == State::Dying {
            return Err(ContainerError::Dying);
        }
        let depth = p.depth.saturating_add(1);
        if id == 0 || self.by_id.contains_key(&id) {
            return Err(ContainerError::DuplicateId);
        }
        if self.len >= MAX_CONTAINERS {
            return Err(ContainerError::TooMany);
        }
        let left = self.headroom(parent);
        let mut granted = limits;
        for r in Resource::ALL {
            match limits.get(r) {
                u64::MAX => granted.set(r, left.get(r)),
                asked if asked > left.get(r) => return Err(ContainerError::LimitTooLarge(r)),
                _ => {}
            }
        }
        let previous = p.last_child;
        let container = Container {
            id,
            parent: Some(parent),
            first_child: None,
            last_child: None,
            prev_sibling: previous,
            next_sibling: None,
            child_count: 0,
            state: State::Alive,
            limits: granted,
            usage: Amounts::ZERO,
            own: Amounts::ZERO,
            depth,
            next_pid: 1,
        };
        let index = self.alloc_slot(container);
        // Append at the tail of the parent's child list.
        match previous.and_then(|s| self.get_mut(s)) {
            Some(s) => s.next_sibling = Some(index),
            None => {
                if let Some(p) = self.get_mut(parent) {
                    p.first_child = Some(index);
                }
            }
        }
        if let Some(p) = self.get_mut(parent) {
            p.last_child = Some(index);
            p.child_count += 1;
        }
        self.by_id.insert(id, index);
        self.len += 1;
        Ok(index)
    }

    /// Puts `container` in a free slot (the oldest freed one, else a new one). The caller checked
    /// `len < MAX_CONTAINERS`, so slot numbers stay below it.
    fn alloc_slot(&mut self, container: Container) -> Index {
        if let Some(slot) = self.slots.get_mut(self.free_head as usize) {
            let index = Index { slot: self.free_head, generation: slot.generation };
            self.free_head = slot.next_free;
            if self.free_head == NIL {
                self.free_tail = NIL;
            }
            slot.container = Some(container);
            slot.next_free = NIL;
            index
        } else {
            let index = Index { slot: self.slots.len() as u32, generation: 1 };
            self.slots.push(Slot { generation: 1, container: Some(container), next_free: NIL });
            index
        }
    }

    /// Empties a slot, advances its generation and queues it at the free-list tail.
    fn free_slot(&mut self, at: Index) {
        let Some(slot) = self.slots.get_mut(at.slot as usize) else { return };
        slot.container = None;
        slot.generation = next_generation(slot.generation);
        slot.next_free = NIL;
        match self.slots.get_mut(self.free_tail as usize) {
            Some(tail) => tail.next_free = at.slot,
            None => self.free_head = at.slot,
        }
        self.free_tail = at.slot;
    }

    /// Charges `n` of `r` to `at` and every ancestor, all or nothing: refused with `Quota(r)` if any
    /// of them would go over its limit, with `Dying` if `at` is dying (whatever `n`), with
    /// `NoSuchContainer` for a stale index. `n == 0` succeeds on any alive container. O(depth), no
    /// allocation.
    pub fn charge(&mut self, at: Index, r: Resource, n: u64) -> Result<(), ContainerError> {
        let c = self.get(at).ok_or(ContainerError::NoSuchContainer)?;
        if c.state == State::Dying {
            return Err(ContainerError::Dying);
        }
        let mut current = Some(c);
        while let Some(c) = current {
            match c.usage.get(r).checked_add(n) {
                Some(total) if total <= c.limits.get(r) => {}
                _ => return Err(ContainerError::Quota(r)),
            }
            current = c.parent.and_then(|p| self.get(p));
        }
        if let Some(c) = self.get_mut(at) {
            c.own.set(r, c.own.get(r).saturating_add(n));
        }
        self.add_up(at, r, n, true);
        Ok(())
    }

    /// Adds (or subtracts) `n` of `r` to the usage of `at` and every ancestor. The caller checked
    /// that this neither overflows nor underflows.
    fn add_up(&mut self, at: Index, r: Resource, n: u64, add: bool) {
        let mut current = Some(at);
        while let Some(c) = current.and_then(|i| self.get_mut(i)) {
            let usage = c.usage.get(r);
            c.usage.set(r, if add { usage.saturating_add(n) } else { usage.saturating_sub(n) });
            current = c.parent;
        }
    }

    /// Gives back `n` of `r` charged to `at` itself, on `at` and every ancestor; works on dying
    /// containers too. Saturating: at most `at`'s own usage (what was charged to it and not to a
    /// descendant) is given back, so an over-large `n` cannot take from other containers' charges.
    /// A stale index is ignored. O(depth), no allocation.
    pub fn uncharge(&mut self, at: Index, r: Resource, n: u64) {
        let Some(c) = self.get_mut(at) else { return };
        let n = n.min(c.own.get(r));
        c.own.set(r, c.own.get(r) - n);
        self.add_up(at, r, n, false);
    }

    /// The next process id of `at`: its first process is pid 1, then 2, 3, ...; never reused in
    /// that container. Refused with `Dying` on a dying container (and with `Quota(Processes)` once
    /// all 2^64 - 1 pids are used, which cannot happen in practice). O(1).
    pub fn alloc_pid(&mut self, at: Index) -> Result<u64, ContainerError> {
        let c = self.get_mut(at).ok_or(ContainerError::NoSuchContainer)?;
        if c.state == State::Dying {
            return Err(ContainerError::Dying);
        }
        let pid = c.next_pid;
        c.next_pid = pid.checked_add(1).ok_or(ContainerError::Quota(Resource::Processes))?;
        Ok(pid)
    }

    /// True if `ancestor` is `at` itself or one of its ancestors (false if either is not live).
    /// O(depth).
    pub fn is_ancestor_or_self(&self, ancestor: Index, at: Index) -> bool {
        let Some(target) = self.get(ancestor) else { return false };
        let mut current = at;
        while let Some(c) = self.get(current) {
            if current == ancestor {
                return true;
            }
            match c.parent {
                Some(p) if c.depth > target.depth => current = p,
                _ => return false,
            }
        }
        false
    }

    /// Marks `at` and all its descendants dying and returns them leaves first (post-order: each
    /// container after all its descendants; siblings oldest first). Refused on the root (`IsRoot`).
    /// On an already dying container it returns the same list again. O(subtree), iterative: it
    /// follows the sibling and parent links, so it needs no stack of its own.
    pub fn begin_destroy(&mut self, at: Index) -> Result<Vec<Index>, ContainerError> {
        if self.get(at).is_none() {
            return Err(ContainerError::NoSuchContainer);
        }
        if at == self.root {
            return Err(ContainerError::IsRoot);
        }
        let mut order = Vec::new();
        let mut current = self.first_leaf(at);
        while let Some(c) = self.get_mut(current) {
            c.state = State::Dying;
            order.push(current);
            if current == at {
                break;
            }
            // After a container: its next sibling's subtree, else (all siblings done) its parent.
            current = match (c.next_sibling, c.parent) {
                (Some(next), _) => self.first_leaf(next),
                (None, Some(parent)) => parent,
                (None, None) => break,
            };
        }
        Ok(order)
    }

    /// The first container of the post-order of `at`'s subtree: down the oldest children to a leaf.
    /// O(depth).
    fn first_leaf(&self, mut at: Index) -> Index {
        while let Some(first) = self.get(at).and_then(|c| c.first_child) {
            at = first;
        }
        at
    }

    /// Removes a dying container that has no children left and zero usage: frees its slot (so its
    /// index becomes `NoSuchContainer`), drops its id from the lookup map and unlinks it from its
    /// parent. Refused: `NoSuchContainer`, `IsRoot`, `NotEmpty` (alive, children left, or usage
    /// left). O(log n): unlinking from the parent's child list is O(1), however many siblings.
    /// No allocation.
    pub fn remove(&mut self, at: Index) -> Result<(), ContainerError> {
        let c = self.get(at).ok_or(ContainerError::NoSuchContainer)?;
        if at == self.root {
            return Err(ContainerError::IsRoot);
        }
        if c.state != State::Dying || c.child_count != 0 || c.usage != Amounts::ZERO {
            return Err(ContainerError::NotEmpty);
        }
        let (id, parent, prev, next) = (c.id, c.parent, c.prev_sibling, c.next_sibling);
        // Unlink from the parent's child list: the neighbours (or the parent's ends) skip `at`.
        match prev.and_then(|s| self.get_mut(s)) {
            Some(s) => s.next_sibling = next,
            None => {
                if let Some(p) = parent.and_then(|p| self.get_mut(p)) {
                    p.first_child = next;
                }
            }
        }
        match next.and_then(|s| self.get_mut(s)) {
            Some(s) => s.prev_sibling = prev,
            None => {
                if let Some(p) = parent.and_then(|p| self.get_mut(p)) {
                    p.last_child = prev;
                }
            }
        }
        if let Some(p) = parent.and_then(|p| self.get_mut(p)) {
            p.child_count = p.child_count.saturating_sub(1);
        }
        self.by_id.remove(&id);
        self.free_slot(at);
        self.len -= 1;
        Ok(())
    }

    /// Usage of `at` not counting its descendants (its usage minus the sum of its children's).
    /// O(1).
    pub fn own_usage(&self, at: Index) -> Option<Amounts> {
        self.get(at).map(|c| c.own)
    }
}
