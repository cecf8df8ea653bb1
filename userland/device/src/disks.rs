//! Block I/O on the server's state: requests handed to the disks, their kept replies answered
//! from the disks' interrupt, and the shared buffers a session's disk reads and writes in
//! place.
//!
//! Invariants: a request is checked whole (session, rights, range, and for a shared buffer the
//! range in it) before the disk sees it; every submitted request's reply is answered exactly
//! once, `Revoked` if its session was revoked meanwhile; a shared buffer is freed only when no
//! request with the disk uses it, so the device never writes into memory that went back to the
//! system.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use vessel_device_protocol::{Data, Done, MAX_SHARED_BYTES, Rights, Shared};
use vessel_protocol::{Answer, Cx, Deferred, Refusal};
use vessel_rt::abi::{Error, Rights as CapRights};
use vessel_rt::platform::Dma;
use vessel_rt::server::Replies;

use crate::blk::Op;
use crate::ops::{BLOCK, State, refuse};
use crate::registry::Backend;
use vessel_device_protocol::Class;

/// Bytes per page (shared buffers are whole pages).
const PAGE: u64 = 4096;

/// A block request with the disk; its reply waits.
pub(crate) enum Pending {
    Read(u64, Deferred<Data>),
    Done(u64, Deferred<Done>),
    /// A request on a shared buffer (named by its physical address), busy until it returns.
    Shared(u64, Deferred<Done>, u64),
}

/// A session's shared buffer: memory of the client's container, mapped here too, which the disk
/// reads and writes in place.
pub(crate) struct Buffer {
    /// The session it serves.
    handle: u64,
    dma: Dma,
    /// Requests with the disk that use it: it is freed only when none is.
    busy: u32,
    /// Its session closed, was revoked, or took another buffer: freed once not busy.
    retired: bool,
}

impl State {
    /// The disks finished something: answer the kept replies.
    pub fn on_disk_interrupt(&mut self) {
        let mut finished = Vec::new();
        for disk in self.disks.iter_mut().flatten() {
            disk.on_interrupt();
            finished.extend(disk.completions());
        }
        self.answer_completions(finished);
    }

    /// Answers the kept replies of finished (or failed) block requests.
    fn answer_completions(&mut self, finished: Vec<crate::blk::Completion>) {
        for done in finished {
            let Some(pending) = self.pending.remove(&done.tag) else { continue };
            let handle = match &pending {
                Pending::Read(h, _) | Pending::Done(h, _) | Pending::Shared(h, _, _) => *h,
            };
            let revoked = self.registry.revoked_reason(handle);
            let refusal = |e: Error, why: String| Refusal::new(e, format!("device: {why}"));
            let result = match (revoked, done.result) {
                (Some(why), _) => Err(refusal(Error::Revoked, why)),
                (None, Err(e)) => Err(refusal(e, String::from("the disk failed the request"))),
                (None, Ok(data)) => Ok(data),
            };
            // A caller that died meanwhile is nobody's loss.
            let _ = match pending {
                Pending::Read(_, reply) => reply.answer(&Replies, result.map(|data| Data { data })),
                Pending::Done(_, reply) => reply.answer(&Replies, result.map(|_| Done)),
                Pending::Shared(_, reply, physical) => {
                    if let Some(b) = self.buffers.iter_mut().find(|b| b.dma.physical == physical) {
                        b.busy -= 1;
                    }
                    reply.answer(&Replies, result.map(|_| Done))
                }
            };
        }
        self.free_buffers();
    }

    /// Retires the buffers whose sessions no longer work, and frees the retired ones the disk
    /// no longer uses (so it never writes into memory that went back to the system).
    pub(crate) fn free_buffers(&mut self) {
        for b in &mut self.buffers {
            if self.registry.revoked_reason(b.handle).is_some() {
                b.retired = true;
            }
        }
        let before = self.buffers.len();
        self.buffers.retain(|b| {
            let done = b.retired && b.busy == 0;
            if done {
                crate::hal::unregister(b.dma);
                b.dma.free();
            }
            !done
        });
        // No request uses what was freed: the kernel may reuse its frames now.
        if self.buffers.len() < before {
            let _ = self.platform.dma_quiesce();
        }
    }

    /// Hands a checked request to the disk behind device `index`; returns its tag.
    pub(crate) fn submit(&mut self, index: usize, op: Op) -> u64 {
        let tag = self.next_tag;
        self.next_tag += 1;
        // Every caller checked the disk is there (`disk_range_check`) in this same request.
        if let Backend::Blk(n) = self.registry.devices[index].backend
            && let Some(disk) = self.disks.get_mut(n).and_then(Option::as_mut)
        {
            disk.submit(tag, op);
        }
        tag
    }

    /// `share`: a new shared buffer for session `handle`, lent to the caller's container.
    pub(crate) fn share_buffer(&mut self, cx: &mut Cx<'_, Shared>, handle: u64, bytes: u64) -> Answer<Shared> {
        if let Err(e) = self.session(cx, handle, Rights::NONE, |c| c == Class::Block) {
            return refuse(cx, e);
        }
        if bytes == 0 || !bytes.is_multiple_of(PAGE) || bytes > MAX_SHARED_BYTES {
            return refuse(
                cx,
                (
                    Error::InvalidArgument,
                    format!("a shared buffer of {bytes} bytes; whole pages up to {MAX_SHARED_BYTES} bytes"),
                ),
            );
        }
        let container = cx.caller().container;
        let dma = match self.platform.dma_for(bytes / PAGE, container) {
            Ok(dma) => dma,
            Err(e) => return refuse(cx, (e, format!("no shared buffer of {bytes} bytes for this container"))),
        };
        // The client's copy: no MANAGE (it cannot learn where the memory is), no DUPLICATE.
        let lent = CapRights::READ | CapRights::WRITE | CapRights::MAP | CapRights::TRANSFER;
        let buffer = match dma.memory.0.duplicate(lent) {
            Ok(cap) => cap.0,
            Err(e) => {
                dma.free();
                return refuse(cx, (e, String::from("cannot copy the shared buffer's capability")));
            }
        };
        for old in self.buffers.iter_mut().filter(|b| b.handle == handle) {
            old.retired = true;
        }
        crate::hal::register(dma);
        self.buffers.push(Buffer { handle, dma, busy: 0, retired: false });
        self.free_buffers();
        Answer::Reply(Shared { buffer })
    }
}

impl State {
    /// `read_shared` and `write_shared`: checked whole (session, rights, the range on the disk
    /// and in the buffer), then handed to the disk with the buffer marked busy.
    pub(crate) fn shared_io(
        &mut self,
        cx: &mut Cx<'_, Done>,
        handle: u64,
        block: u64,
        count: u64,
        offset: u64,
        write: bool,
    ) -> Answer<Done> {
        let needs = if write { Rights::WRITE } else { Rights::READ };
        let index = match self.session(cx, handle, needs, |c| c == Class::Block) {
            Ok((index, _)) => index,
            Err(e) => return refuse(cx, e),
        };
        let Some(at) = self.buffers.iter().position(|b| b.handle == handle && !b.retired) else {
            return refuse(
                cx,
                (Error::InvalidArgument, String::from("this session has no shared buffer (share first)")),
            );
        };
        let size = self.buffers[at].dma.pages * PAGE;
        let fits = offset.is_multiple_of(BLOCK)
            && count.checked_mul(BLOCK).and_then(|len| len.checked_add(offset)).is_some_and(|end| end <= size);
        if count == 0 || !fits {
            return refuse(
                cx,
                (
                    Error::InvalidArgument,
                    format!("{count} blocks at offset {offset} do not fit the {size}-byte shared buffer"),
                ),
            );
        }
        // The range on the disk, as for a request carrying its data.
        if let Err(e) = self.disk_range_check(index, block, count, write) {
            return refuse(cx, e);
        }
        let reply = match cx.defer() {
            Ok(reply) => reply,
            Err(refusal) => return Answer::Refuse(refusal),
        };
        let buffer = &mut self.buffers[at];
        buffer.busy += 1;
        let (address, physical) = (buffer.dma.address + offset, buffer.dma.physical);
        let tag = self.submit(index, Op::Shared { sector: block, sectors: count, address, write });
        self.pending.insert(tag, Pending::Shared(handle, reply, physical));
        Answer::Later
    }

    /// Checks and starts a block request, keeping its reply.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn start<R: vessel_protocol::Reply>(
        &mut self,
        cx: &mut Cx<'_, R>,
        index: usize,
        handle: u64,
        block: u64,
        count: u64,
        op: Op,
        pending: fn(u64, Deferred<R>) -> Pending,
    ) -> Answer<R> {
        // Checked before the reply is kept, so a refusal goes back at once.
        let check = self.block_request_check(index, block, count, &op);
        if let Err(e) = check {
            return refuse(cx, e);
        }
        let reply = match cx.defer() {
            Ok(reply) => reply,
            Err(refusal) => return Answer::Refuse(refusal),
        };
        let tag = self.submit(index, op);
        self.pending.insert(tag, pending(handle, reply));
        Answer::Later
    }

    /// Whether a block request carrying its data in the message may go to the disk: size (one
    /// message), then `disk_range_check`.
    pub(crate) fn block_request_check(
        &self,
        index: usize,
        block: u64,
        count: u64,
        op: &Op,
    ) -> Result<(), (Error, String)> {
        let limit = vessel_device_protocol::max_blocks_per_request(BLOCK);
        if count == 0 || count > limit {
            return Err((Error::TooLarge, format!("{count} blocks asked; 1 to {limit} per request")));
        }
        self.disk_range_check(index, block, count, matches!(op, Op::Write { .. }))
    }

    /// Whether `count` blocks at `block` lie on the disk behind device `index`, and it takes
    /// writes if `write`.
    pub(crate) fn disk_range_check(
        &self,
        index: usize,
        block: u64,
        count: u64,
        write: bool,
    ) -> Result<(), (Error, String)> {
        let device = &self.registry.devices[index];
        let Backend::Blk(n) = device.backend else {
            return Err((Error::WrongObject, format!("{} is not a block device", device.name)));
        };
        if block.checked_add(count).is_none_or(|end| end > device.blocks) {
            return Err((
                Error::InvalidArgument,
                format!(
                    "blocks {block}..{} are past the end of {} ({} blocks)",
                    block.saturating_add(count),
                    device.name,
                    device.blocks
                ),
            ));
        }
        let Some(disk) = self.disks.get(n).and_then(Option::as_ref) else {
            return Err((Error::DeviceError, format!("{} did not come back when its driver restarted", device.name)));
        };
        if write && disk.readonly {
            return Err((Error::AccessDenied, format!("{} is read-only", device.name)));
        }
        Ok(())
    }

    /// `restart` of block device `index` (the root container asked; checked by the caller):
    /// the driver of that disk alone starts again, as after a crash of it. Its requests fail
    /// with `DeviceError`; sessions, grants and shared buffers stay, and their next requests go
    /// to the new driver.
    pub(crate) fn restart_disk(&mut self, index: usize) -> Result<(), (Error, String)> {
        let device = &self.registry.devices[index];
        let name = device.name.clone();
        let Backend::Blk(n) = device.backend else {
            return Err((Error::WrongObject, format!("{name}: not a block device")));
        };
        let Some(old) = self.disks.get_mut(n).and_then(Option::take) else {
            return Err((Error::DeviceError, format!("{name} did not come back when its driver restarted")));
        };
        let at = old.at;
        let Some((function, _)) = self.functions.iter().find(|(f, _)| f.at == at) else {
            return Err((Error::DeviceError, format!("{name}: its PCI function is gone")));
        };
        let (new, failed) = old.restart(&mut self.pci, function, self.platform, self.disk_events);
        // The old queues and any request buffers went after the device was reset: their
        // memory may be reused.
        let _ = self.platform.dma_quiesce();
        self.disks[n] = new;
        self.answer_completions(failed);
        vessel_rt::println!(
            "device: {name}: driver restarted ({})",
            if self.disks[n].is_some() { "back" } else { "gone" }
        );
        match self.disks[n] {
            Some(_) => Ok(()),
            None => Err((Error::DeviceError, format!("{name} did not come back when its driver restarted"))),
        }
    }
}
