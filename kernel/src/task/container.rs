//! Containers in the kernel: creation, destruction, information, quotas and the isolation rule
//! (DESIGN.md section 3). The tree and its hierarchical quota accounting are the pure
//! `vessel_container` crate; this module ties them to processes and objects.
//!
//! Invariants:
//! - Every process is in exactly one container, fixed at spawn; [`Containers`] lists the live ones.
//! - Usage charged to a container is returned exactly once: a process's pages, its slot in the
//!   process and thread counts and its capability table when it ends; an object's charge when the
//!   object is freed; a child container's object charge when that child is removed.
//! - Isolation: an endpoint, notification or memory object is used only from its own container,
//!   and a capability moves only into the container its object belongs to, except system-service
//!   endpoints, which any container may call and hold.
//! - A destroyed container's processes end at once; the container itself leaves the tree when
//!   its last charge returns (objects held elsewhere can keep it dying, never alive).

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;

use crate::arch::x86_64::percpu as cpu;
use vessel_abi::{ContainerInfo, ContainerLimits, Error, Exit, Rights};
use vessel_container::{Amounts, Container, ContainerError, IdGenerator, Index, Resource, State, Tree};

use super::TableId;
use super::objects::ObjectRef;
use super::thread::{self, Pid};
use super::{Tasks, with_tasks};

/// Limits of the root container, and so of everything: they bound what user space can make
/// the kernel keep on its heap (a few hundred bytes per object or container, about 1 KiB per
/// process, about 60 bytes per capability: at most about 12 MiB of the 16 MiB heap). Pages are
/// bounded by the frames that exist; running out of those is a clean `NoMemory`.
pub const ROOT_LIMITS: Amounts = Amounts([u64::MAX, 1024, 1024, 16384, 65536]);

/// The ABI error for a container-tree error.
pub(super) fn container_error(e: ContainerError) -> Error {
    match e {
        ContainerError::Quota(_) | ContainerError::LimitTooLarge(_) => Error::QuotaExceeded,
        ContainerError::NoSuchContainer | ContainerError::Dying => Error::NoSuchContainer,
        ContainerError::TooMany | ContainerError::DuplicateId => Error::NoMemory,
        ContainerError::NotEmpty | ContainerError::IsRoot => Error::InvalidArgument,
    }
}

/// The container tree (the pure `vessel_container` crate: shape, states, quotas) with what the
/// kernel keeps beside it: the id generator, each container's live processes, and the destroys
/// under way.
///
/// Invariants, kept by the methods (the fields are private):
/// - A container has a member set from its creation until it leaves the tree, holding exactly
///   its live processes: added at spawn ([`Containers::add_member`]), taken out when they end.
/// - `dying` holds each container marked dying and not removed yet, once, a subtree's leaves
///   before their parents (a destroy appends its subtree in post-order): so one pass of
///   [`Containers::remove_dead`] removes a whole subtree whose charges have all returned.
/// - `tables` names, for each live capability table, the container its slots are charged to
///   and the process it belongs to: from the table's making at spawn to its destruction.
pub(super) struct Containers {
    tree: Tree,
    ids: IdGenerator,
    members: BTreeMap<Index, BTreeSet<Pid>>,
    dying: Vec<Index>,
    tables: BTreeMap<TableId, (Index, Pid)>,
}

impl Containers {
    /// The root container alone, with ids drawn from `ids`.
    pub(super) fn new(mut ids: IdGenerator) -> Self {
        let tree = Tree::new(ids.next(), ROOT_LIMITS);
        let members = BTreeMap::from([(tree.root(), BTreeSet::new())]);
        Containers { tree, ids, members, dying: Vec::new(), tables: BTreeMap::new() }
    }

    /// The root container.
    #[inline(always)]
    pub(super) fn root(&self) -> Index {
        self.tree.root()
    }

    /// The container at `at`, alive or dying.
    #[inline(always)]
    pub(super) fn get(&self, at: Index) -> Option<&Container> {
        self.tree.get(at)
    }

    /// The container with id `id`.
    pub(super) fn lookup(&self, id: u64) -> Option<Index> {
        self.tree.lookup(id)
    }

    /// Containers in the tree, dying ones included.
    pub(super) fn len(&self) -> usize {
        self.tree.len()
    }

    /// Whether `at` is `ancestor` or lies below it.
    pub(super) fn is_ancestor_or_self(&self, ancestor: Index, at: Index) -> bool {
        self.tree.is_ancestor_or_self(ancestor, at)
    }

    /// Charges `n` of `resource` to `at` and its ancestors, all or nothing.
    #[inline(always)]
    pub(super) fn charge(&mut self, at: Index, resource: Resource, n: u64) -> Result<(), ContainerError> {
        self.tree.charge(at, resource, n)
    }

    /// Gives back `n` of `resource` to `at` and its ancestors.
    #[inline(always)]
    pub(super) fn uncharge(&mut self, at: Index, resource: Resource, n: u64) {
        self.tree.uncharge(at, resource, n);
    }

    /// The next process id of container `at`.
    pub(super) fn alloc_pid(&mut self, at: Index) -> Result<u64, ContainerError> {
        self.tree.alloc_pid(at)
    }

    /// A new child of `parent` with a fresh random id.
    pub(super) fn create(&mut self, parent: Index, limits: Amounts) -> Result<Index, ContainerError> {
        let id = self.ids.next();
        let child = self.tree.create(parent, id, limits)?;
        self.members.insert(child, BTreeSet::new());
        Ok(child)
    }

    /// Marks `at` and its descendants dying (nothing enters them any more) and queues them for
    /// removal, leaves first.
    pub(super) fn begin_destroy(&mut self, at: Index) -> Result<(), ContainerError> {
        for c in self.tree.begin_destroy(at)? {
            if !self.dying.contains(&c) {
                self.dying.push(c);
            }
        }
        Ok(())
    }

    /// Whether a destroyed container waits for its members to end or its charges to return.
    #[inline(always)]
    pub(super) fn destroying(&self) -> bool {
        !self.dying.is_empty()
    }

    /// Capability table `table` of process `pid` charges its slots to container `at`.
    pub(super) fn add_table(&mut self, table: TableId, at: Index, pid: Pid) {
        self.tables.insert(table, (at, pid));
    }

    /// The container `table` charges its slots to, and the process it belongs to.
    pub(super) fn table_owner(&self, table: TableId) -> Option<(Index, Pid)> {
        self.tables.get(&table).copied()
    }

    /// Capability table `table` is destroyed.
    pub(super) fn remove_table(&mut self, table: TableId) {
        self.tables.remove(&table);
    }

    /// Charges `n` capability slots of `table` to the container that owns the table (a table
    /// nobody owns, the kernel's own, charges nothing).
    pub(super) fn charge_slots(&mut self, table: TableId, n: u64) -> Result<(), ContainerError> {
        match self.tables.get(&table) {
            Some(&(c, _)) => self.tree.charge(c, Resource::CapSlots, n),
            None => Ok(()),
        }
    }

    /// Gives back `n` capability slots of `table`.
    pub(super) fn uncharge_slots(&mut self, table: TableId, n: u64) {
        if let Some(&(c, _)) = self.tables.get(&table) {
            self.tree.uncharge(c, Resource::CapSlots, n);
        }
    }

    /// Process `pid` joins container `at` (at spawn).
    pub(super) fn add_member(&mut self, at: Index, pid: Pid) {
        if let Some(members) = self.members.get_mut(&at) {
            members.insert(pid);
        }
    }

    /// Process `pid` of container `at` has ended.
    pub(super) fn remove_member(&mut self, at: Index, pid: Pid) {
        if let Some(members) = self.members.get_mut(&at) {
            members.remove(&pid);
        }
    }

    /// How many live processes `at` has.
    pub(super) fn member_count(&self, at: Index) -> u64 {
        self.members.get(&at).map_or(0, |m| m.len() as u64)
    }

    /// A live process of a dying container other than `spare` (the running one, which ends
    /// last): the next a destroy ends. Subtrees in the order they were destroyed, leaves first.
    pub(super) fn next_doomed(&self, spare: Pid) -> Option<Pid> {
        self.dying.iter().find_map(|c| self.members.get(c)?.iter().copied().find(|&p| p != spare))
    }

    /// Removes the dying containers whose usage has dropped to zero (their parents' object
    /// charge for them returns too). Another pass runs only while the last one made progress,
    /// for containers that became removable out of order.
    pub(super) fn remove_dead(&mut self) {
        while !self.dying.is_empty() {
            let before = self.dying.len();
            let mut kept = Vec::with_capacity(before);
            for c in core::mem::take(&mut self.dying) {
                let parent = self.tree.get(c).and_then(Container::parent);
                match self.tree.remove(c) {
                    Ok(()) => {
                        self.members.remove(&c);
                        if let Some(parent) = parent {
                            self.tree.uncharge(parent, Resource::Objects, 1);
                        }
                    }
                    Err(ContainerError::NoSuchContainer) => {}
                    Err(_) => kept.push(c),
                }
            }
            self.dying = kept;
            if self.dying.len() == before {
                return;
            }
        }
    }
}

impl Tasks {
    /// The container of a live or zombie process.
    pub(super) fn container_of(&self, pid: Pid) -> Option<Index> {
        self.processes.get(pid).map(|p| p.container)
    }

    /// The running process's container (refused once the process has ended: it may still be
    /// on the CPU for a moment, but must charge nothing more).
    pub(super) fn current_container(&self) -> Result<Index, Error> {
        match self.threads.get(&cpu::current()) {
            // Every thread of an ended process is marked dead at once.
            Some(th) if th.state != thread::State::Dead && th.pid != 0 => Ok(th.owner.container),
            _ => Err(Error::NoSuchProcess),
        }
    }

    /// Charges `n` of `resource` to `container` and its ancestors, all or nothing.
    pub(super) fn charge(&mut self, container: Index, resource: Resource, n: u64) -> Result<(), Error> {
        self.containers.charge(container, resource, n).map_err(container_error)
    }

    /// Charges `n` capability slots of `table` to the container that owns the table.
    // The IPC path calls it for every message, almost always with n = 0: that test is inlined.
    #[inline(always)]
    pub(super) fn charge_slots(&mut self, table: TableId, n: u64) -> Result<(), Error> {
        if n == 0 {
            return Ok(());
        }
        self.charge_slots_nonzero(table, n)
    }

    fn charge_slots_nonzero(&mut self, table: TableId, n: u64) -> Result<(), Error> {
        self.containers.charge_slots(table, n).map_err(container_error)
    }

    /// Gives back `n` capability slots of `table`.
    pub(super) fn uncharge_slots(&mut self, table: TableId, n: u64) {
        self.containers.uncharge_slots(table, n);
    }

    /// Destroys a capability table: its caps go (objects nobody else reaches with them) and its
    /// slots return to its container.
    pub(super) fn release_table(&mut self, table: TableId) {
        if let Ok(removed) = self.caps.destroy_table(table) {
            self.uncharge_slots(table, removed.len() as u64);
            for cap in removed {
                self.cap_removed(&cap);
            }
        }
        self.containers.remove_table(table);
    }

    /// The container an object belongs to. Hardware objects belong to the root container: raw
    /// hardware never enters another container (the `device` server mediates passthrough).
    pub(super) fn object_container(&self, object: ObjectRef) -> Option<Index> {
        match object {
            ObjectRef::Endpoint(id) => self.objects.endpoint(id).map(|e| e.container),
            ObjectRef::Notification(id) => self.objects.notification(id).map(|n| n.container),
            ObjectRef::Memory(id) => self.objects.memory(id).map(|m| m.container),
            ObjectRef::Reply(id) => self.objects.reply(id).map(|r| r.container),
            ObjectRef::Process(pid) | ObjectRef::Thread(pid, _) => self.container_of(pid),
            // A container capability lives in its parent container (the root's in the root).
            ObjectRef::Container(c) => self.containers.get(c).map(|x| x.parent().unwrap_or(c)),
            ObjectRef::IoPorts(..)
            | ObjectRef::Irq(_)
            | ObjectRef::Mmio(..)
            | ObjectRef::Platform
            | ObjectRef::Msi(_) => Some(self.containers.root()),
        }
    }

    /// Whether a capability to `object` with `rights` may enter container `to`: its own
    /// container, or a system-service endpoint without RECEIVE (only the service's own
    /// container serves it). Objects already gone may move (every use of them fails anyway).
    pub(super) fn may_enter(&self, object: ObjectRef, rights: Rights, to: Index) -> bool {
        if let ObjectRef::Endpoint(id) = object
            && !rights.contains(Rights::RECEIVE)
            && self.objects.endpoint(id).is_some_and(|e| e.service)
        {
            return true;
        }
        // A notification a client can only be signalled on may go to the system services (the
        // root container, reached only through service endpoints): a server tells its client
        // that something happened (Ctrl-C on the client's terminal), never waits on it.
        if let ObjectRef::Notification(_) = object
            && !rights.contains(Rights::RECEIVE)
            && to == self.containers.root()
        {
            return true;
        }
        self.object_container(object).is_none_or(|c| c == to)
    }

    /// Resolves a container capability with `needs`; handle 0 means the caller's own container
    /// (for reading only).
    pub(super) fn resolve_container(&self, value: u64, needs: Rights) -> Result<Index, Error> {
        if value == 0 && !needs.contains(Rights::MANAGE) {
            return self.current_container();
        }
        match self.resolve(value, needs)?.object {
            ObjectRef::Container(c) if self.containers.get(c).is_some_and(|c| c.state() == State::Alive) => Ok(c),
            ObjectRef::Container(_) => Err(Error::NoSuchContainer),
            _ => Err(Error::WrongObject),
        }
    }

    /// Destroys `at` and its descendants at once: for a container that has no members yet.
    fn destroy_container(&mut self, at: Index) -> Result<(), Error> {
        self.begin_destroying(at)?;
        self.destroy_step(usize::MAX);
        self.containers.remove_dead();
        Ok(())
    }

    /// Marks `at` and its descendants dying (nothing enters them any more) and queues them for
    /// `destroy_step`, leaves first. The members end in later steps: the destroying call's own
    /// ones, or the reaper's (`reap_slow`) if that call does not finish.
    fn begin_destroying(&mut self, at: Index) -> Result<(), Error> {
        self.containers.begin_destroy(at).map_err(container_error)?;
        super::reaper::note_work();
        Ok(())
    }

    /// Ends up to `budget` members of dying containers, each with its descendants, but never the
    /// running thread's process (it ends last, by its own destroy call, or by a later step once
    /// it is off the CPU). Returns how many it ended and whether members other than that one
    /// remain.
    pub(super) fn destroy_step(&mut self, budget: usize) -> (usize, bool) {
        let me = self.threads.get(&cpu::current()).map_or(0, |th| th.pid);
        let mut ended = 0;
        while let Some(pid) = self.containers.next_doomed(me) {
            if ended == budget {
                return (ended, true);
            }
            self.terminate(pid, Exit::Killed);
            ended += 1;
        }
        (ended, false)
    }
}

fn amounts(limits: &ContainerLimits) -> Amounts {
    Amounts(limits.amounts)
}

/// `ContainerCreate`: a child of the container `parent` names, with `limits`.
pub fn container_create(parent: u64, limits: &ContainerLimits) -> Result<u64, Error> {
    with_tasks(|t| {
        let parent = t.resolve_container(parent, Rights::MANAGE)?;
        t.charge(parent, Resource::Objects, 1)?;
        let child = match t.containers.create(parent, amounts(limits)) {
            Ok(c) => c,
            Err(e) => {
                t.containers.uncharge(parent, Resource::Objects, 1);
                return Err(container_error(e));
            }
        };
        match super::caps::create(t, ObjectRef::Container(child)) {
            Ok(handle) => Ok(handle),
            Err(e) => {
                // Nobody can name it: it goes again.
                let _ = t.destroy_container(child);
                Err(e)
            }
        }
    })
    .unwrap_or(Err(Error::NoSuchProcess))
}

/// `ContainerDestroy`. True if the caller itself was inside (it must leave the CPU for good).
///
/// The members end [`DESTROY_STEP`] at a time with interrupts let in between
/// (`preemption_point`), and what they leave behind is freed by the reaper in bounded passes
/// too, so destroying a container of a thousand processes never runs long with interrupts
/// off. Nothing enters a dying container meanwhile. The caller's own process, if it was inside,
/// ends last; if the caller dies first, the reaper finishes the work.
pub fn container_destroy(value: u64) -> Result<bool, Error> {
    let (at, mine) = with_tasks(|t| {
        let at = t.resolve_container(value, Rights::MANAGE)?;
        let mine = t.current_container()?;
        if at == t.containers.root() {
            return Err(Error::AccessDenied);
        }
        t.begin_destroying(at)?;
        Ok((at, mine))
    })
    .unwrap_or(Err(Error::NoSuchProcess))?;
    // What the members leave behind is the reaper's, after each switch and before any call
    // that needs memory (`reap_all`), a bounded pass at a time.
    while with_tasks(|t| t.destroy_step(DESTROY_STEP).1).unwrap_or(false) {
        crate::arch::x86_64::preemption_point();
    }
    with_tasks(|t| {
        let me = t.threads.get(&cpu::current()).map_or(0, |th| th.pid);
        if t.containers.get(mine).is_none_or(|c| c.state() != State::Alive) {
            t.terminate(me, Exit::Killed);
        }
        t.containers.remove_dead();
        Ok(t.containers.is_ancestor_or_self(at, mine) || t.containers.get(mine).is_none())
    })
    .unwrap_or(Err(Error::NoSuchProcess))
}

/// Members a container's destruction ends between two preemption points.
pub(super) const DESTROY_STEP: usize = 1;

/// `ContainerInfo`.
pub fn container_info(value: u64) -> Result<ContainerInfo, Error> {
    with_tasks(|t| {
        let at = t.resolve_container(value, Rights::READ)?;
        info_at(t, at)
    })
    .unwrap_or(Err(Error::NoSuchProcess))
}

/// The info of container `at`.
fn info_at(t: &Tasks, at: Index) -> Result<ContainerInfo, Error> {
    {
        let c = t.containers.get(at).ok_or(Error::NoSuchContainer)?;
        let parent = c.parent().and_then(|p| t.containers.get(p)).map_or(0, |p| p.id());
        Ok(ContainerInfo {
            id: c.id(),
            parent,
            state: u32::from(c.state() != State::Alive),
            depth: c.depth(),
            children: c.child_count() as u64,
            members: t.containers.member_count(at),
            limits: c.limits().0,
            usage: c.usage().0,
        })
    }
}

/// `ContainerLookup`: the info of the container with id `id`, the caller's or below it.
pub fn container_lookup(id: u64) -> Result<ContainerInfo, Error> {
    with_tasks(|t| {
        let own = t.current_container()?;
        let at = t.containers.lookup(id).ok_or(Error::NoSuchContainer)?;
        if !t.containers.is_ancestor_or_self(own, at) {
            return Err(Error::NoSuchContainer);
        }
        info_at(t, at)
    })
    .unwrap_or(Err(Error::NoSuchProcess))
}

/// `ServiceRegister`: marks an endpoint as a system service (needs MANAGE on the root
/// container, and MANAGE on the endpoint).
pub fn service_register(endpoint: u64, root: u64) -> Result<u64, Error> {
    with_tasks(|t| {
        let container = t.resolve_container(root, Rights::MANAGE)?;
        if container != t.containers.root() {
            return Err(Error::AccessDenied);
        }
        let id = match t.resolve(endpoint, Rights::MANAGE)?.object {
            ObjectRef::Endpoint(id) => id,
            _ => return Err(Error::WrongObject),
        };
        t.objects.endpoint_mut(id).ok_or(Error::PeerDied)?.service = true;
        Ok(0)
    })
    .unwrap_or(Err(Error::NoSuchProcess))
}
