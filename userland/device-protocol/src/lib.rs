//! The `device` protocol: the device server's registry. A caller lists the devices its container
//! may use, opens one by name and reads or writes it through the session handle it got back;
//! a container grants the devices it holds to its children and revokes them, plugs virtual
//! devices (`null`, `zero`, `random`, `console`) into itself or a child, and the root container
//! lists every PCI function. One [`protocol!`] declaration gives the labels, the encoding, the
//! [`Client`], the [`Server`] trait and [`dispatch`]; `docs/device.md` describes the protocol
//! and the server, `docs/protocols.md` the encoding.
//!
//! Names: a device has a stable short ASCII name (`blk0`, `serial0`, `kbd0`, `fb0`, `rtc0`,
//! `null0`, `zero0`, `random0`, `console0`; see [`valid_name`]). A session handle is a `u64`
//! token made by the server (a slot index and a generation); the server keys sessions by the
//! caller's container, which the kernel stamps on every request, so a handle from another
//! container, a closed one or a made-up one is refused with `InvalidHandle`, and one whose
//! grant was revoked with `Revoked`.
//!
//! What the macro cannot say directly: a list of entries or PCI functions is a field of our own
//! type ([`Entries`], [`PciFunctions`]: a `u16` count, then the items), since `Vec<Entry>`
//! cannot implement the protocol crate's `Field` here. The rest is built in: a `str` in a reply
//! (a `String`), `bool` (`grant`'s `exclusive`).
//! The field types and their wire forms live in private modules (`class`, `rights`, `entry`,
//! `pci`, `list`) and are re-exported here.
//!
//! [`protocol!`]: vessel_protocol::protocol
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

mod calendar;
mod class;
mod entry;
pub mod kept;
mod list;
mod pci;
mod rights;

pub use calendar::{DateTime, month_days};
pub use class::{Access, Class};
pub use entry::{Entries, Entry};
pub use pci::{Bar, Bdf, PciFunction, PciFunctions};
pub use rights::Rights;

use vessel_protocol::MAX_DATA;

/// Longest device name (and driver name), in bytes.
pub const MAX_NAME: usize = 16;
/// Most bytes one `read_blocks` or `write_blocks` moves: one message's data area.
pub const MAX_BLOCK_IO: usize = MAX_DATA;
/// Most bytes one `read` answers (whatever `max` asks).
pub const MAX_READ: usize = MAX_DATA;
/// `timeout_ns` of a `read` that waits until data comes.
pub const NO_TIMEOUT: u64 = u64::MAX;
/// Bytes of a list's count on the wire (a `u16`).
pub const LIST_COUNT_BYTES: usize = 2;
/// Most entries in a `list` reply: as many of the largest valid [`Entry`] as fit in
/// [`MAX_DATA`] after the count (a server keeps the first ones: see [`Entries::new`]).
pub const MAX_ENTRIES: usize = (MAX_DATA - LIST_COUNT_BYTES) / Entry::MAX_WIRE_BYTES;
/// Most functions in a `pci` reply: as many of the largest valid [`PciFunction`] as fit in
/// [`MAX_DATA`] after the count (see [`PciFunctions::new`]).
pub const MAX_FUNCTIONS: usize = (MAX_DATA - LIST_COUNT_BYTES) / PciFunction::MAX_WIRE_BYTES;
/// Most capability ids in a [`PciFunction`].
pub const MAX_CAPABILITIES: usize = 16;

// A full list fits in one reply; and if the types grow, the limits must stay useful (below these
// floors the lists would need paged requests rather than a server keeping the first ones).
const _: () = assert!(Entries::MAX_WIRE_BYTES <= MAX_DATA);
const _: () = assert!(PciFunctions::MAX_WIRE_BYTES <= MAX_DATA);
const _: () = assert!(MAX_ENTRIES >= 64 && MAX_FUNCTIONS >= 32);

vessel_protocol::protocol! {
    /// The `device` server: the device registry, sessions on devices, grants and virtual devices.
    pub protocol "device" {
        /// The devices the caller's container may use: for the root container every hardware
        /// device, for another container those granted to it, and the virtual devices plugged
        /// into it. At most [`MAX_ENTRIES`] (the first ones, in registry order). Never refused.
        1 list() -> List {
            /// The devices, in registry order.
            entries: Entries,
        };
        /// One device the caller's container may use. Refused with `InvalidArgument` for a
        /// name that is not [`valid_name`], `NotFound` for a device it may not use (or that
        /// does not exist: the two are not told apart).
        2 info(
            /// The device's name (`blk0`).
            name: str,
        ) -> Described {
            /// The device as the caller's container holds it.
            entry: Entry,
        };
        /// Open a device for `rights`; the handle names the session in every later request.
        /// Refused with `InvalidArgument` for a bad name or empty rights (unknown bits are
        /// refused by the decoder), `NotFound` for a device the container may not use,
        /// `MissingRights` if its grant is narrower than `rights`, `Busy` while it is granted
        /// exclusively to a container outside the caller's grant chain, `QuotaExceeded` when
        /// the server holds as many sessions as it can.
        3 open(
            /// The device's name.
            name: str,
            /// What the session may do: [`Rights::READ`], [`Rights::WRITE`] or both. On the
            /// wire a `u64`; unknown bits do not decode.
            rights: Rights,
        ) -> Opened {
            /// The session handle (the server's slot index and generation; only meaningful to
            /// the server, and only for the caller's container).
            handle: u64,
            /// Blocks of a block device (0 for a byte device).
            blocks: u64,
            /// Bytes per block of a block device (0 for a byte device).
            block_size: u64,
        };
        /// End a session (a revoked one too). Refused with `InvalidHandle` if `handle` names
        /// no open session of the caller's container.
        4 close(
            /// The session.
            handle: u64,
        ) -> Done {};
        /// Read `count` blocks from `block` on. Refused with `InvalidHandle` (no such session
        /// here), `Revoked` (its grant was taken back; the reason says by whom), `MissingRights`
        /// (not opened for reading), `WrongObject` (not a block device), `InvalidArgument`
        /// (count 0, or blocks past the end), `TooLarge` (more than [`MAX_BLOCK_IO`] bytes:
        /// see [`max_blocks_per_request`]), `DeviceError` (the hardware failed).
        5 read_blocks(
            /// The session.
            handle: u64,
            /// The first block.
            block: u64,
            /// How many blocks.
            count: u64,
        ) -> Data {
            /// The bytes read: exactly the blocks asked for (`read_blocks`); for `read`, 1 to
            /// `max` bytes, and empty only at the end of the data (`null0`).
            data: bytes,
        };
        /// Write whole blocks from `block` on. Refused as `read_blocks` (`MissingRights` if not
        /// opened for writing), and with `InvalidArgument` if `data` is empty or not a whole
        /// number of blocks.
        6 write_blocks(
            /// The session.
            handle: u64,
            /// The first block.
            block: u64,
            /// The blocks' bytes (a multiple of the block size, at most [`MAX_BLOCK_IO`]).
            data: bytes,
        ) -> Done;
        /// Make the block device's earlier writes durable. Refused with `InvalidHandle`,
        /// `Revoked`, `MissingRights` (not opened for writing), `WrongObject` (not a block
        /// device), `DeviceError`.
        7 flush(
            /// The session.
            handle: u64,
        ) -> Done;
        /// Read from a byte device (serial, console, keyboard: the UTF-8 text of the keys
        /// pressed; zero, random; null answers empty data, the end). Waits up to `timeout_ns`
        /// for at least one byte, then answers what is there, at most `max` and [`MAX_READ`]
        /// bytes. Refused with `InvalidHandle`, `Revoked`, `MissingRights` (not opened for
        /// reading), `WrongObject` (a block device, the framebuffer or a clock),
        /// `InvalidArgument` (`max` 0), `WouldBlock` (nothing there and `timeout_ns` 0),
        /// `TimedOut` (nothing came in time), `DeviceError`.
        8 read(
            /// The session.
            handle: u64,
            /// The most bytes wanted (1 or more; more than [`MAX_READ`] reads [`MAX_READ`]).
            max: u64,
            /// How long to wait for the first byte, in nanoseconds: 0 does not wait,
            /// [`NO_TIMEOUT`] waits until data comes.
            timeout_ns: u64,
        ) -> Data;
        /// Write to a byte device (null, zero and random discard). Refused with
        /// `InvalidHandle`, `Revoked`, `MissingRights` (not opened for writing), `WrongObject`
        /// (a block device, the framebuffer, a clock or the keyboard), `DeviceError`.
        9 write(
            /// The session.
            handle: u64,
            /// The bytes.
            data: bytes,
        ) -> Written {
            /// How many of the bytes were taken, from the start (fewer than sent when the
            /// device's buffer is full: send the rest again).
            count: u64,
        };
        /// Grant a device the caller's container may use to one of its children, with rights
        /// no wider than its own. An exclusive grant keeps every container outside the child's
        /// grant chain out of the device (the caller's too) until it is revoked. Refused with
        /// `InvalidArgument` (bad name, empty rights), `NoSuchContainer` (`container` is not a
        /// child of the caller's), `NotFound` (no such device here), `MissingRights` (wider
        /// than the caller's own), `Busy` (already granted to that child, held exclusively
        /// elsewhere, or, for an exclusive grant, in use or granted outside the child's chain).
        10 grant(
            /// The child container.
            container: u64,
            /// The device's name.
            name: str,
            /// What the child may do (a `u64` on the wire; unknown bits do not decode).
            rights: Rights,
            /// Whether the grant is exclusive (`bool`: a `u8`, 0 or 1).
            exclusive: bool,
        ) -> Done;
        /// Take back the caller's grant of a device to a child, the grants made from it below,
        /// and every session they opened on it: their next use is refused with `Revoked`.
        /// Refused with `InvalidArgument` (bad name), `NoSuchContainer` (not a child of the
        /// caller's), `NotFound` (the caller granted no such device to that child).
        11 revoke(
            /// The child container.
            container: u64,
            /// The device's name.
            name: str,
        ) -> Done;
        /// Create a virtual device of class `kind` for a container, which then owns it (and
        /// may grant it on). Refused with `InvalidArgument` (a kind other than `null`, `zero`,
        /// `random` or `console`: see [`Class::pluggable`]), `NoSuchContainer` (neither 0 nor
        /// a child of the caller's), `QuotaExceeded` (the registry is full).
        12 plug(
            /// The container (0: the caller's own; else a child of it).
            container: u64,
            /// The class, by its [`Class::as_str`] name.
            kind: str,
        ) -> Plugged {
            /// The new device's name (`null1`), as that container sees it.
            name: str,
        };
        /// Every PCI function of the machine, whether or not a driver took it. At most
        /// [`MAX_FUNCTIONS`] (the first ones, in bus order). Refused with `AccessDenied` for a
        /// container other than the root.
        13 pci() -> Functions {
            /// The functions, in bus, device, function order.
            functions: PciFunctions,
        };
        /// The real-time clock's time. Refused with `InvalidHandle`, `Revoked`,
        /// `MissingRights` (not opened for reading), `WrongObject` (not a clock),
        /// `DeviceError`.
        14 time(
            /// A session on the clock (`rtc0`).
            handle: u64,
        ) -> Time {
            /// Seconds since 1970-01-01 00:00:00 UTC.
            unix_seconds: u64,
        };
        /// Give a block session a shared buffer of `bytes` (whole pages, at most
        /// [`MAX_SHARED_BYTES`]) for [`read_shared`](Client::read_shared) and
        /// [`write_shared`](Client::write_shared): the disk moves data straight between it and
        /// the device, with no copy and no size limit of one message. The buffer is memory of
        /// the caller's container (charged to its quota) and comes back as a memory capability
        /// to map; it replaces the session's previous one. Refused with `InvalidHandle`,
        /// `Revoked`, `WrongObject` (not a block device), `InvalidArgument` (0, not whole pages,
        /// or over the limit), `QuotaExceeded`, `NoMemory`.
        15 share(
            /// A session on a block device.
            handle: u64,
            /// The buffer's size.
            bytes: u64,
        ) -> Shared {
            /// The buffer: a memory capability (read, write, map).
            buffer: cap,
        };
        /// Read `count` blocks from `block` into the session's shared buffer at byte `offset`
        /// (a multiple of the block size); answered when the data is there. Refused like
        /// `read_blocks`, and with `InvalidArgument` when the session has no shared buffer or
        /// the range does not fit in it.
        16 read_shared(
            /// A session opened with [`Rights::READ`].
            handle: u64,
            /// First block.
            block: u64,
            /// Blocks to read.
            count: u64,
            /// Where in the shared buffer the data goes.
            offset: u64,
        ) -> Done;
        /// Write `count` blocks at `block` from the session's shared buffer at byte `offset`.
        /// Refused like `write_blocks` and `read_shared`.
        17 write_shared(
            /// A session opened with [`Rights::WRITE`].
            handle: u64,
            /// First block.
            block: u64,
            /// Blocks to write.
            count: u64,
            /// Where in the shared buffer the data comes from.
            offset: u64,
        ) -> Done;
        /// Which console the machine's screen and keyboard serve (root container only): with a
        /// name, that console becomes the active one (as Alt+F1… do) and the screen is redrawn
        /// with what it last showed; the answer names the active console. Refused with
        /// `AccessDenied` (not the root container), `NotFound` (no console of that name),
        /// `DeviceError` (no framebuffer).
        18 console(
            /// The console to show (`console1`), or empty to only ask.
            name: str,
        ) -> Active {
            /// The console shown now.
            name: str,
        };
        /// Ctrl-C on a terminal (`serial0`, a console): with a notification and `bits` not 0,
        /// the session is armed: while it is the terminal's newest open session, a typed
        /// Ctrl-C (byte 3) is not input but signals `bits` on the notification, and the input
        /// typed before it is dropped. Without a notification (or with `bits` 0) it is
        /// disarmed. A shell arms its terminal while a program runs in the foreground. Refused
        /// with `InvalidHandle`, `Revoked`, `WrongObject` (not a terminal), `MissingRights`
        /// (without `READ`), `InvalidArgument` (more than one capability, or bits without one).
        19 interrupt(
            /// The terminal session.
            handle: u64,
            /// The bits to signal.
            bits: u64,
            /// Nothing, or a notification capability (SEND) that moves to the server.
            notification: caps,
        ) -> Done;
        /// Show a console on a terminal, as a terminal multiplexer or `docker attach` does:
        /// from now on what is written to `console` also goes out on the terminal of `handle`
        /// (a write takes only what the terminal takes), and what is typed on the terminal goes
        /// to `console`'s input while a session there reads (until then it waits on the
        /// terminal, where a Ctrl-C interrupts the terminal's own armed session). An empty
        /// `console` ends the attachment; so do closing the session, its revoke, and the end of
        /// the console's container. `console` is one the caller's container may use or one
        /// plugged into a container below it. Refused with `InvalidHandle`, `Revoked`,
        /// `WrongObject` (the session is not on a terminal), `MissingRights` (not opened for
        /// reading and writing), `NotFound` (no such console for this container),
        /// `InvalidArgument` (the console would show on itself, directly or through other
        /// attachments), `Busy` (the console or the terminal is attached through another
        /// session already).
        20 attach(
            /// A session on a terminal (`serial0`, a console), opened for reading and writing.
            handle: u64,
            /// The console to show there (`console1`), or empty to end the attachment.
            console: str,
        ) -> Done;
        /// Restart the driver of one device on its own (root container only), as after a crash
        /// of that driver, the rest of the server untouched: the device is reset and driven
        /// afresh. A disk's requests fail with `DeviceError`; bytes queued in the serial port's
        /// or the keyboard's driver are dropped; sessions, grants, shared buffers and waiting
        /// reads stay, and their next requests go to the new driver. Refused with
        /// `AccessDenied` (not the root container), `NotFound` (no such device),
        /// `WrongObject` (a virtual device: consoles, `null`, `zero`, `random`),
        /// `DeviceError` (the device did not come back).
        21 restart(
            /// The device (`blk0`).
            name: str,
        ) -> Done;
    }
}

/// The largest shared buffer of a block session (`share`): 4 MiB, the kernel's largest memory
/// object.
pub const MAX_SHARED_BYTES: u64 = 4 << 20;

/// Whether `name` is a valid device (or driver) name: 1 to [`MAX_NAME`] bytes of ASCII
/// lowercase letters, digits, `-` and `_`, starting with a letter (`blk0`, `virtio-blk`).
pub fn valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (1..=MAX_NAME).contains(&bytes.len())
        && bytes.first().is_some_and(u8::is_ascii_lowercase)
        && bytes.iter().all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// How many blocks of `block_size` bytes one `read_blocks` or `write_blocks` moves at most (0
/// for a block size of 0 or larger than [`MAX_BLOCK_IO`]).
pub const fn max_blocks_per_request(block_size: u64) -> u64 {
    match (MAX_BLOCK_IO as u64).checked_div(block_size) {
        Some(blocks) => blocks,
        None => 0,
    }
}

#[cfg(test)]
mod tests;
