//! Message transfer: what moves from sender to receiver besides the four register words. A
//! message may carry data and capabilities in the IPC buffer (`vessel_abi::IpcBuffer`); the
//! kernel copies between the two processes' buffer frames through the direct map (`frame`) and
//! stamps the sender's badge (in `rdi`), process id and container id (in the receiver's buffer
//! header). A blocked thread's user registers are in the trap frame at the top of its kernel
//! stack; the message's registers are written there.
//!
//! Invariants: all checks happen before anything moves, so a refused transfer changes nothing
//! (neither buffer, nor either capability table, nor any charge); a moved capability leaves the
//! sender's table and its slot is charged to the receiver's container instead; a capability
//! enters only the container its object belongs to (`Tasks::may_enter`).

use vessel_abi::{
    Error, IPC_CAPS_OFFSET, IPC_DATA_OFFSET, IPC_SENDER_OFFSET, MAX_MESSAGE_CAPS, MAX_MESSAGE_DATA, Meta, Rights,
};
use vessel_capspace::{Handle, TableId};
use vessel_container::Index;

use super::Tasks;
use super::caps::cap_error;
use super::frame::{frame_of, write_header};
use super::thread::{Owner, Tid};

/// The kernel-written start of an IPC buffer (the layout of `vessel_abi::IpcBuffer`).
#[repr(C)]
#[derive(Clone, Copy)]
pub(super) struct Header {
    caps: [u32; MAX_MESSAGE_CAPS],
    sender_pid: u64,
    sender_container: u64,
    badge: u64,
}

const _: () = assert!(core::mem::offset_of!(Header, caps) == IPC_CAPS_OFFSET);
const _: () = assert!(core::mem::offset_of!(Header, sender_pid) == IPC_SENDER_OFFSET);
const _: () = assert!(core::mem::offset_of!(Header, badge) == core::mem::offset_of!(vessel_abi::IpcBuffer, badge));

impl Header {
    /// The header of a message without capabilities from a thread of process `sender`.
    #[inline(always)]
    pub(super) fn stamped(sender: &Owner, badge: u64) -> Header {
        Header { caps: [0; MAX_MESSAGE_CAPS], sender_pid: sender.vpid, sender_container: sender.container_id, badge }
    }
}

impl Tasks {
    /// Moves a message from `from` to `to`: data, capabilities, the stamped identity, and the
    /// registers. All checks happen before anything moves.
    pub(super) fn transfer(
        &mut self,
        from: Tid,
        to: Tid,
        badge: u64,
        words: [u64; 4],
        meta: Meta,
    ) -> Result<(), Error> {
        let data_len = usize::from(meta.data_len);
        let cap_count = usize::from(meta.cap_count);
        if data_len > MAX_MESSAGE_DATA || cap_count > MAX_MESSAGE_CAPS {
            return Err(Error::TooLarge);
        }
        // One lookup per thread (the same errors as `table_of`); nothing below changes owners.
        let sender = self.threads.get(&from).map(|th| th.owner).ok_or(Error::NoSuchProcess)?;
        let (receiver, header_frame) =
            self.threads.get(&to).map(|th| (th.owner, th.ipc_frames[0])).ok_or(Error::NoSuchProcess)?;
        let (from_table, to_table, to_container) = (sender.table, receiver.table, receiver.container);
        // Registers-only messages (the common case) skip the payload work, which could not fail
        // or change anything for them.
        let moved = if cap_count > 0 || data_len > 0 {
            self.transfer_payload(from, to, (from_table, to_table, to_container), cap_count, data_len)?
        } else {
            [0u32; MAX_MESSAGE_CAPS]
        };
        // The stamped header: new handles, sender pid, container id, badge (`IpcBuffer`'s first
        // 40 bytes).
        let header = Header { caps: moved, ..Header::stamped(&sender, badge) };
        let header_frame = match header_frame {
            Some(frame) => frame,
            None => self.ipc_frame(to, 0, true)?.ok_or(Error::NoMemory)?,
        };
        write_header(header_frame, header);
        let frame = frame_of(self, to).ok_or(Error::PeerDied)?;
        frame.rax = 0;
        frame.rdi = badge;
        frame.rsi = words[0];
        frame.rdx = words[1];
        frame.r10 = words[2];
        frame.r8 = words[3];
        frame.r9 = Meta { flags: 0, ..meta }.to_word();
        self.general_messages += 1;
        Ok(())
    }

    /// The part of `transfer` that moves data and capabilities: checks everything, then moves,
    /// and returns the receiver's handles of the moved capabilities. Out of line and not in the
    /// hot text: register-only messages never come here.
    #[inline(never)]
    fn transfer_payload(
        &mut self,
        from: Tid,
        to: Tid,
        (from_table, to_table, to_container): (TableId, TableId, Index),
        cap_count: usize,
        data_len: usize,
    ) -> Result<[u32; MAX_MESSAGE_CAPS], Error> {
        let handles: [u32; MAX_MESSAGE_CAPS] =
            if cap_count > 0 { self.read_buffer_words(from, IPC_CAPS_OFFSET)? } else { [0; MAX_MESSAGE_CAPS] };
        // What each capability names, kept from the checks for after the move.
        let mut objects = [None; MAX_MESSAGE_CAPS];
        for (i, &h) in handles[..cap_count].iter().enumerate() {
            // The same capability twice would move once and then fail half-way.
            if handles[..i].contains(&h) {
                return Err(Error::InvalidArgument);
            }
            let cap = self.caps.get(from_table, Handle(h)).map_err(cap_error)?;
            objects[i] = Some(cap.object);
            if !cap.rights.contains(Rights::TRANSFER) {
                return Err(Error::MissingRights);
            }
            if !self.may_enter(cap.object, cap.rights, to_container) {
                return Err(Error::CrossContainer);
            }
        }
        if self.caps.free_slots(to_table) < cap_count {
            return Err(Error::TableFull);
        }
        // The receiver's header page must exist before a capability moves (mapping it may fail).
        if cap_count > 0 {
            self.ipc_frame(to, 0, true)?;
        }
        // The receiver's container pays for the slots the capabilities take there.
        self.charge_slots(to_table, cap_count as u64)?;
        if data_len > 0
            && let Err(e) = self.copy_buffer(from, to, IPC_DATA_OFFSET, data_len)
        {
            self.uncharge_slots(to_table, cap_count as u64);
            return Err(e);
        }
        let mut moved = [0u32; MAX_MESSAGE_CAPS];
        for (i, &h) in handles[..cap_count].iter().enumerate() {
            match self.caps.transfer(from_table, Handle(h), to_table, Rights::all()) {
                Ok(new) => {
                    moved[i] = new.0;
                    self.uncharge_slots(from_table, 1);
                    if let Some(object) = objects[i] {
                        self.access_maybe_lost(from_table, object);
                    }
                }
                Err(e) => {
                    // Checked above, so not expected; the slots not used go back.
                    self.uncharge_slots(to_table, (cap_count - i) as u64);
                    return Err(cap_error(e));
                }
            }
        }
        Ok(moved)
    }
}
