//! Kernel objects reached through capabilities, and the one place that knows every kind:
//! endpoints (`endpoint`), notifications (`notification`), memory objects (`memory`) and kept
//! replies (`reply`) and MSI vectors (`msi`) each live in their own module with their
//! invariants; the platform capability (`platform`) and the hardware objects made from it (port
//! ranges, interrupt lines, MMIO regions: `hardware`) have no state of their own and live
//! forever; process, container and
//! thread capabilities name things whose ids are never reused, checked at every use.
//!
//! Invariants: a counted object (one with a [`Lifecycle`]) lives while something refers to it:
//! at least one capability, or for a memory object also a mapping. Every capability that comes
//! into being is reported once to [`Tasks::cap_added`], and every one that goes (deleted,
//! revoked, its table destroyed, used up) once to [`Tasks::cap_removed`]; the kind's module
//! counts, and frees the object when the last reference goes. Adding a kind of object means a
//! module with its record and its `Lifecycle`, a table in [`Objects`] (one `kind!` line), and
//! one arm in [`Tasks::cap_changed`].

use alloc::collections::BTreeMap;

use vessel_abi::Rights;
use vessel_capspace::Cap;
use vessel_container::Index;
use vessel_indexed::Indexed;

use super::Tasks;
use super::endpoint::Endpoint;
use super::memory::Memory;
use super::msi::MsiVector;
use super::notification::Notification;
use super::reply::ReplyObject;

/// What a capability points at. Ids are never reused while the system runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectRef {
    /// An endpoint.
    Endpoint(u64),
    /// A notification.
    Notification(u64),
    /// A memory object.
    Memory(u64),
    /// I/O ports `first..=last`.
    IoPorts(u16, u16),
    /// ISA interrupt line.
    Irq(u8),
    /// Device registers: physical address and length.
    Mmio(u64, u64),
    /// A process (ids are never reused, so a capability outliving its process is harmless:
    /// every use answers `NoSuchProcess`).
    Process(u64),
    /// A container (a destroyed one's index is never valid again: every use answers
    /// `NoSuchContainer`).
    Container(Index),
    /// A thread: its process and its own id (neither is reused; see `threads`).
    Thread(u64, u64),
    /// A kept reply (see `reply`).
    Reply(u64),
    /// The authority over the hardware (`platform`).
    Platform,
    /// An MSI vector (`msi`).
    Msi(u8),
}

/// The records of the counted objects (endpoints, notifications, memory objects, kept replies),
/// each kind in a table of its own, under ids from one counter.
///
/// Invariants (the fields are private): an id is never reused, whatever its kind (the counter
/// only goes up, so a capability that outlives its object can never reach another one); a
/// record enters only through `add_*`, which draws its id, and leaves only through `remove_*`,
/// which only its kind's [`Lifecycle`] calls, when the last reference goes.
pub(super) struct Objects {
    /// Indexed, not a map: the IPC fast path looks one up on every call.
    endpoints: Indexed<Endpoint>,
    /// Indexed like endpoints: signals and waits look one up several times per round trip,
    /// and a map's search grows with every live notification (one more cost a notification
    /// round trip 72 instructions).
    notifications: Indexed<Notification>,
    memories: BTreeMap<u64, Memory>,
    replies: BTreeMap<u64, ReplyObject>,
    /// The last id drawn.
    last_id: u64,
}

/// The methods of one kind's table: look up, look up to change (for kinds whose records
/// change), add (drawing the id) and remove.
macro_rules! kind {
    ($table:ident: $record:ty, $get:ident, [$($get_mut:ident)?], $add:ident, $remove:ident) => {
        #[doc = concat!("The ", stringify!($record), " `id`, if it lives.")]
        #[inline(always)]
        pub(super) fn $get(&self, id: u64) -> Option<&$record> {
            self.$table.get(&id)
        }

        $(
            #[doc = concat!("The ", stringify!($record), " `id`, to change.")]
            #[inline(always)]
            pub(super) fn $get_mut(&mut self, id: u64) -> Option<&mut $record> {
                self.$table.get_mut(&id)
            }
        )?

        #[doc = concat!("Adds a ", stringify!($record), " under a new id, which it returns.")]
        pub(super) fn $add(&mut self, record: $record) -> u64 {
            let id = self.next_id();
            self.$table.insert(id, record);
            id
        }

        #[doc = concat!("Removes the ", stringify!($record), " `id` (its `Lifecycle` only).")]
        pub(super) fn $remove(&mut self, id: u64) -> Option<$record> {
            self.$table.remove(&id)
        }
    };
}

impl Objects {
    /// No objects.
    pub(super) fn new() -> Self {
        Objects {
            endpoints: Indexed::new(),
            notifications: Indexed::new(),
            memories: BTreeMap::new(),
            replies: BTreeMap::new(),
            last_id: 0,
        }
    }

    fn next_id(&mut self) -> u64 {
        self.last_id += 1;
        self.last_id
    }

    /// How many objects live, of every kind.
    pub(super) fn len(&self) -> usize {
        self.endpoints.len() + self.notifications.len() + self.memories.len() + self.replies.len()
    }

    kind!(endpoints: Endpoint, endpoint, [endpoint_mut], add_endpoint, remove_endpoint);
    kind!(notifications: Notification, notification, [notification_mut], add_notification, remove_notification);
    kind!(memories: Memory, memory, [memory_mut], add_memory, remove_memory);
    kind!(replies: ReplyObject, reply, [], add_reply, remove_reply);
}

/// What one kind of object does when capabilities to it come and go; implemented in the kind's
/// own module, and called only through [`Tasks::cap_changed`].
pub(super) trait Lifecycle {
    /// A capability with `rights` to object `id` now exists.
    fn cap_added(t: &mut Tasks, id: u64, rights: Rights);
    /// A capability with `rights` to object `id` is gone (or, for a new object, could not be
    /// made). If it was the last reference, the object is freed, its charge returns, and the
    /// threads waiting on it that nobody can answer now fail.
    fn cap_removed(t: &mut Tasks, id: u64, rights: Rights);
}

/// What happened to a capability.
#[derive(Clone, Copy)]
enum Change {
    Added,
    Removed,
}

impl Tasks {
    /// Accounts a capability that now exists.
    pub(super) fn cap_added(&mut self, cap: &Cap<ObjectRef>) {
        self.cap_changed(cap, Change::Added);
    }

    /// Accounts a capability that is gone; destroys objects nobody can reach any more and fails
    /// the waiters that can never be answered.
    pub(super) fn cap_removed(&mut self, cap: &Cap<ObjectRef>) {
        self.cap_changed(cap, Change::Removed);
    }

    /// Hands a capability change to the [`Lifecycle`] of its object's kind: the one list of
    /// kinds with bookkeeping. Inlined into its two callers, so each is one `match` on the
    /// kind, as when it was written out twice (capability calls and process teardown pay for
    /// every extra call here).
    #[inline(always)]
    fn cap_changed(&mut self, cap: &Cap<ObjectRef>, change: Change) {
        #[inline(always)]
        fn apply<K: Lifecycle>(t: &mut Tasks, id: u64, rights: Rights, change: Change) {
            match change {
                Change::Added => K::cap_added(t, id, rights),
                Change::Removed => K::cap_removed(t, id, rights),
            }
        }
        match cap.object {
            ObjectRef::Endpoint(id) => apply::<Endpoint>(self, id, cap.rights, change),
            ObjectRef::Notification(id) => apply::<Notification>(self, id, cap.rights, change),
            ObjectRef::Memory(id) => apply::<Memory>(self, id, cap.rights, change),
            ObjectRef::Reply(id) => apply::<ReplyObject>(self, id, cap.rights, change),
            ObjectRef::Msi(vector) => apply::<MsiVector>(self, u64::from(vector), cap.rights, change),
            // Nothing to count: see the module documentation.
            ObjectRef::IoPorts(..)
            | ObjectRef::Irq(_)
            | ObjectRef::Mmio(..)
            | ObjectRef::Platform
            | ObjectRef::Process(_)
            | ObjectRef::Container(_)
            | ObjectRef::Thread(..) => {}
        }
    }
}
