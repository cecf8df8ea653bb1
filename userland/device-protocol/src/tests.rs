//! The device protocol through the loopback, with a small in-memory device server
//! ([`server`]): listing and opening, block and byte I/O (a `read` that waits is deferred),
//! sessions that belong to one container, grants, exclusive holders and revocation, plug, pci
//! and time; plus the generated round trips and fuzzing, the wire layout, and the refusal of
//! malformed requests. The field types alone are tested in [`fields`].
#![allow(clippy::unwrap_used)]

mod fields;
mod server;

use vessel_protocol::testing::{Example, Loopback, Recorder, fuzz_requests};
use vessel_protocol::{Caller, Error, REFUSED, Refusal, reply_label, undocumented};

use super::*;
use server::{BLOCK_SIZE, BLOCKS, CHILD, Devices, GRANDCHILD, NOW, OTHER, ROOT, SERIAL_BUFFER, TICK_NS};

impl Example for Rights {
    fn examples() -> Vec<Self> {
        vec![Rights::READ, Rights::READ_WRITE, Rights::NONE, Rights::WRITE]
    }
}

impl Example for Class {
    fn examples() -> Vec<Self> {
        Class::ALL.to_vec()
    }
}

impl Example for Access {
    fn examples() -> Vec<Self> {
        Access::ALL.to_vec()
    }
}

impl Example for Bdf {
    fn examples() -> Vec<Self> {
        vec![Bdf::default(), Bdf { bus: 0, device: 3, function: 0 }, Bdf { bus: 0xff, device: 31, function: 7 }]
    }
}

impl Example for Bar {
    fn examples() -> Vec<Self> {
        vec![
            Bar::None,
            Bar::Io { port: 0xc000, size: 64 },
            Bar::Mem32 { address: 0xfebd_1000, size: 4096, prefetchable: false },
            Bar::Mem64 { address: u64::MAX, size: u64::MAX, prefetchable: true },
            Bar::Io { port: u32::MAX, size: u32::MAX },
            Bar::Mem32 { address: u32::MAX, size: u32::MAX, prefetchable: true },
        ]
    }
}

impl Example for Entry {
    fn examples() -> Vec<Self> {
        vec![
            Entry {
                name: "blk0".into(),
                class: Class::Block,
                rights: Rights::READ_WRITE,
                access: Access::Owner,
                holder: 0,
                blocks: 65_536,
                block_size: 512,
                pci: Some(Bdf { bus: 0, device: 3, function: 0 }),
            },
            Entry {
                name: "serial0".into(),
                class: Class::Serial,
                rights: Rights::READ,
                access: Access::Exclusive,
                holder: 7,
                blocks: 0,
                block_size: 0,
                pci: None,
            },
            fields::maximal_entry(0),
        ]
    }
}

impl Example for PciFunction {
    fn examples() -> Vec<Self> {
        vec![
            PciFunction::default(),
            Devices::new().functions.pop().unwrap(),
            fields::maximal_function(0),
            PciFunction { capabilities: vec![0xff; MAX_CAPABILITIES], driver: Some("x".into()), ..Default::default() },
        ]
    }
}

impl Example for Entries {
    fn examples() -> Vec<Self> {
        let full = (0..MAX_ENTRIES).map(fields::maximal_entry).collect();
        vec![Entries::default(), Entries(Entry::examples()), Entries(full)]
    }
}

impl Example for PciFunctions {
    fn examples() -> Vec<Self> {
        let full = (0..MAX_FUNCTIONS).map(fields::maximal_function).collect();
        vec![PciFunctions::default(), PciFunctions(PciFunction::examples()), PciFunctions(full)]
    }
}

/// The in-memory server, called from `container`.
fn devices(container: u64) -> Loopback<Devices> {
    let loopback = Loopback::new(Devices::new(), dispatch::<Devices>).with_idle(Devices::idle);
    loopback.set_caller(Caller { container, pid: 1, badge: 0 });
    loopback
}

fn from(lo: &Loopback<Devices>, container: u64) {
    lo.set_caller(Caller { container, pid: 1, badge: 0 });
}

/// The refusal `device` gives a caller in `container`.
fn refusal(container: u64, error: Error, why: &str) -> Refusal {
    Refusal::in_container(NAME, container, error, why)
}

#[test]
fn every_operation_round_trips() {
    assert_eq!(protocol_checks::round_trip_every_operation(), Ok(21 * vessel_protocol::testing::ROUNDS));
}

#[test]
fn the_list_depends_on_the_container() {
    let lo = devices(ROOT);
    let device = Client::new(&lo);
    let all = device.list().unwrap().entries.0;
    let names: Vec<&str> = all.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["blk0", "serial0", "kbd0", "rtc0", "null0", "zero0", "random0"]);
    assert!(all.iter().all(|e| e.access == Access::Owner && e.rights == Rights::READ_WRITE && e.holder == 0));
    let blk = device.info("blk0").unwrap().entry;
    assert_eq!((blk.blocks, blk.block_size, blk.pci.unwrap().to_string()), (BLOCKS, BLOCK_SIZE, "00:03.0".into()));
    assert_eq!(blk.to_string(), "blk0: block, rw, owner, 16 blocks of 512 bytes, pci 00:03.0");
    assert_eq!(device.info("nope0"), Err(refusal(ROOT, Error::NotFound, "no device nope0")));
    assert_eq!(device.info("Blk0").unwrap_err().error, Error::InvalidArgument);

    // A child sees nothing until granted, then what it was granted.
    from(&lo, CHILD);
    assert_eq!(device.list().unwrap().entries, Entries::default());
    assert_eq!(device.info("blk0").unwrap_err(), refusal(CHILD, Error::NotFound, "no device blk0"));
    from(&lo, ROOT);
    device.grant(CHILD, "blk0", Rights::READ, false).unwrap();
    from(&lo, CHILD);
    let entry = device.info("blk0").unwrap().entry;
    assert_eq!((entry.rights, entry.access, entry.holder), (Rights::READ, Access::Shared, 0));
    assert_eq!(device.list().unwrap().entries.0, [entry]);
}

#[test]
fn block_io() {
    let lo = devices(ROOT);
    let device = Client::new(&lo);
    let opened = device.open("blk0", Rights::READ_WRITE).unwrap();
    assert_eq!((opened.blocks, opened.block_size), (BLOCKS, BLOCK_SIZE));
    let h = opened.handle;
    let data: Vec<u8> = (0..2 * BLOCK_SIZE).map(|i| i as u8).collect();
    assert_eq!(device.write_blocks(h, 3, &data), Ok(Done));
    assert_eq!(device.read_blocks(h, 3, 2).unwrap().data, data);
    assert_eq!(device.read_blocks(h, 0, 1).unwrap().data, [0; BLOCK_SIZE as usize]);
    assert_eq!(device.flush(h), Ok(Done));
    assert_eq!(lo.server().device("blk0").flushes, 1);
    // As much as a message holds, and not a block more.
    let most = max_blocks_per_request(BLOCK_SIZE);
    assert_eq!(most, 8);
    assert_eq!(device.read_blocks(h, 0, most).unwrap().data.len(), MAX_BLOCK_IO);
    let too_many = refusal(ROOT, Error::TooLarge, "9 blocks, at most 8 per request");
    assert_eq!(device.read_blocks(h, 0, most + 1), Err(too_many));
    let past = refusal(ROOT, Error::InvalidArgument, "2 blocks from 15 pass the end (16 blocks)");
    assert_eq!(device.read_blocks(h, BLOCKS - 1, 2), Err(past));
    assert_eq!(device.read_blocks(h, u64::MAX, 2).unwrap_err().error, Error::InvalidArgument);
    assert_eq!(device.read_blocks(h, 0, 0).unwrap_err().error, Error::InvalidArgument);
    let ragged = refusal(ROOT, Error::InvalidArgument, "100 bytes are not whole blocks");
    assert_eq!(device.write_blocks(h, 0, &[1; 100]), Err(ragged));
    assert_eq!(device.write_blocks(h, 0, &[]).unwrap_err().error, Error::InvalidArgument);
    // A request larger than a message is refused by the client, before sending.
    let huge = device.write_blocks(h, 0, &vec![0; MAX_BLOCK_IO + 512]).unwrap_err();
    assert_eq!(huge.error, Error::TooLarge);
    // Rights and classes.
    let read_only = device.open("blk0", Rights::READ).unwrap().handle;
    let denied = refusal(ROOT, Error::MissingRights, "blk0 is open r-, -w needed");
    assert_eq!(device.write_blocks(read_only, 0, &data), Err(denied));
    assert_eq!(device.flush(read_only).unwrap_err().error, Error::MissingRights);
    assert_eq!(device.read(h, 1, 0).unwrap_err(), refusal(ROOT, Error::WrongObject, "blk0 is a block device"));
    let serial = device.open("serial0", Rights::READ_WRITE).unwrap();
    assert_eq!((serial.blocks, serial.block_size), (0, 0));
    assert_eq!(device.read_blocks(serial.handle, 0, 1).unwrap_err().error, Error::WrongObject);
    assert_eq!(device.time(h).unwrap_err().error, Error::WrongObject);
}

#[test]
fn shared_buffers_move_blocks_in_place() {
    let lo = devices(ROOT);
    let device = Client::new(&lo);
    let h = device.open("blk0", Rights::READ_WRITE).unwrap().handle;
    assert_eq!(device.read_shared(h, 0, 1, 0).unwrap_err().error, Error::InvalidArgument, "no buffer yet");
    assert_eq!(device.share(h, 0).unwrap_err().error, Error::InvalidArgument);
    assert_eq!(device.share(h, 100).unwrap_err().error, Error::InvalidArgument);
    assert_eq!(device.share(h, MAX_SHARED_BYTES + 4096).unwrap_err().error, Error::InvalidArgument);
    let shared = device.share(h, 4096).unwrap();
    assert_eq!(shared.buffer, server::FIRST_BUFFER_CAP);
    // More blocks than a message holds, in one request.
    let data: Vec<u8> = (0..4096u32).map(|i| (i * 7) as u8).collect();
    lo.server().shared[0].2.copy_from_slice(&data);
    assert_eq!(device.write_shared(h, 2, 8, 0), Ok(Done));
    assert_eq!(lo.server().device("blk0").store[1024..5120], data[..]);
    assert_eq!(device.read_shared(h, 2, 1, 512), Ok(Done));
    assert_eq!(lo.server().shared[0].2[512..1024], data[..512]);
    // Outside the buffer, misaligned, or past the disk.
    assert_eq!(device.read_shared(h, 0, 9, 0).unwrap_err().error, Error::InvalidArgument);
    assert_eq!(device.read_shared(h, 0, 1, 100).unwrap_err().error, Error::InvalidArgument);
    assert_eq!(device.read_shared(h, BLOCKS - 1, 2, 0).unwrap_err().error, Error::InvalidArgument);
    assert_eq!(device.read_shared(h, 0, 0, 0).unwrap_err().error, Error::InvalidArgument);
    // Rights and sessions.
    let read_only = device.open("blk0", Rights::READ).unwrap().handle;
    device.share(read_only, 4096).unwrap();
    assert_eq!(device.write_shared(read_only, 0, 1, 0).unwrap_err().error, Error::MissingRights);
    let serial = device.open("serial0", Rights::READ_WRITE).unwrap().handle;
    assert_eq!(device.share(serial, 4096).unwrap_err().error, Error::WrongObject);
    from(&lo, CHILD);
    assert_eq!(device.share(h, 4096).unwrap_err().error, Error::InvalidHandle);
    assert_eq!(device.read_shared(h, 0, 1, 0).unwrap_err().error, Error::InvalidHandle);
}

#[test]
fn sessions_belong_to_one_container() {
    let lo = devices(ROOT);
    let device = Client::new(&lo);
    let h = device.open("null0", Rights::READ).unwrap().handle;
    // Another container cannot use or close it, even knowing the token.
    from(&lo, CHILD);
    let foreign =
        refusal(CHILD, Error::InvalidHandle, &format!("handle {h:#x} names no open device of this container"));
    assert_eq!(device.read(h, 1, 0), Err(foreign.clone()));
    assert_eq!(device.close(h), Err(foreign));
    from(&lo, ROOT);
    assert_eq!(device.close(h), Ok(Done));
    // Closed: stale, even once the slot is reused by the next session.
    let again = device.open("null0", Rights::READ).unwrap().handle;
    assert_eq!(again >> 32, h >> 32);
    assert_ne!(again, h);
    assert_eq!(device.read(h, 1, 0).unwrap_err().error, Error::InvalidHandle);
    assert_eq!(device.close(h).unwrap_err().error, Error::InvalidHandle);
    assert_eq!(device.read(u64::MAX, 1, 0).unwrap_err().error, Error::InvalidHandle);
    assert_eq!(device.read(again, 1, 0), Ok(Data { data: vec![] }));
    // Open asks for some rights, and no more than granted; the server's sessions are bounded.
    assert_eq!(device.open("null0", Rights::NONE), Err(refusal(ROOT, Error::InvalidArgument, "no rights asked")));
    while lo.server().open_sessions() < server::MAX_SESSIONS {
        device.open("zero0", Rights::READ).unwrap();
    }
    assert_eq!(device.open("zero0", Rights::READ).unwrap_err().error, Error::QuotaExceeded);
}

#[test]
fn byte_devices() {
    let lo = devices(ROOT);
    let device = Client::new(&lo);
    let open = |name| device.open(name, Rights::READ_WRITE).unwrap().handle;
    let (null, zero, random, serial, kbd) =
        (open("null0"), open("zero0"), open("random0"), open("serial0"), open("kbd0"));
    assert_eq!(device.read(null, 100, NO_TIMEOUT), Ok(Data { data: vec![] }));
    assert_eq!(device.read(zero, 5, 0), Ok(Data { data: vec![0; 5] }));
    assert_eq!(device.read(zero, u64::MAX, 0).unwrap().data.len(), MAX_READ);
    let noise = device.read(random, 64, 0).unwrap().data;
    assert!(noise.len() == 64 && noise.iter().any(|&b| b != 0));
    assert_eq!(device.read(zero, 0, 0), Err(refusal(ROOT, Error::InvalidArgument, "max 0")));
    assert_eq!(device.write(null, b"gone"), Ok(Written { count: 4 }));
    // A serial port takes what fits in its buffer.
    assert_eq!(device.write(serial, b"hello, world"), Ok(Written { count: SERIAL_BUFFER as u64 }));
    assert_eq!(device.write(serial, b"orld"), Ok(Written { count: 4 }));
    assert_eq!(lo.server().device("serial0").output, b"hello, world");
    assert_eq!(device.write(kbd, b"x").unwrap_err(), refusal(ROOT, Error::WrongObject, "kbd0 is a keyboard device"));
    // Nothing there: no wait, a wait that gives up, a wait that is answered when input comes.
    assert_eq!(device.read(kbd, 10, 0), Err(refusal(ROOT, Error::WouldBlock, "no input")));
    let timed_out = refusal(ROOT, Error::TimedOut, "no input on kbd0 after 3000000 ns");
    assert_eq!(device.read(kbd, 10, 3 * TICK_NS), Err(timed_out));
    assert_eq!(lo.server().now, 3);
    lo.server().type_in("serial0", "ok");
    assert_eq!(device.read(serial, 10, NO_TIMEOUT), Ok(Data { data: b"o".to_vec() }));
    assert_eq!(lo.server().now, 4);
    assert_eq!(device.read(serial, 10, TICK_NS), Ok(Data { data: b"k".to_vec() }));
    assert_eq!(device.read(serial, 10, 0).unwrap_err().error, Error::WouldBlock);
}

#[test]
fn grants_exclusive_holders_and_revocation() {
    let lo = devices(ROOT);
    let device = Client::new(&lo);
    // Grants go to children only, with rights no wider than the granter's.
    let not_child = refusal(ROOT, Error::NoSuchContainer, "container 0x9 is not a child of this container");
    assert_eq!(device.grant(GRANDCHILD, "blk0", Rights::READ, false), Err(not_child));
    assert_eq!(device.grant(CHILD, "nope0", Rights::READ, false).unwrap_err().error, Error::NotFound);
    assert_eq!(device.grant(CHILD, "blk0", Rights::NONE, false).unwrap_err().error, Error::InvalidArgument);
    assert_eq!(device.grant(CHILD, "blk0", Rights::READ_WRITE, false), Ok(Done));
    assert_eq!(device.grant(CHILD, "blk0", Rights::READ, false).unwrap_err().error, Error::Busy);
    from(&lo, CHILD);
    let child_session = device.open("blk0", Rights::READ_WRITE).unwrap().handle;
    assert_eq!(device.grant(GRANDCHILD, "blk0", Rights::READ, false), Ok(Done));
    from(&lo, GRANDCHILD);
    let wider = refusal(GRANDCHILD, Error::MissingRights, "blk0 is granted r- here, rw asked");
    assert_eq!(device.open("blk0", Rights::READ_WRITE), Err(wider));
    let grandchild_session = device.open("blk0", Rights::READ).unwrap().handle;
    assert_eq!(device.read_blocks(grandchild_session, 0, 1).unwrap().data.len(), BLOCK_SIZE as usize);

    // Revoking the child's grant takes back the grandchild's too, and their sessions.
    from(&lo, ROOT);
    assert_eq!(device.revoke(OTHER, "blk0").unwrap_err().error, Error::NotFound);
    assert_eq!(device.revoke(GRANDCHILD, "blk0").unwrap_err().error, Error::NoSuchContainer);
    assert_eq!(device.revoke(CHILD, "blk0"), Ok(Done));
    from(&lo, CHILD);
    let revoked = refusal(CHILD, Error::Revoked, "blk0 was revoked by container 0x1");
    assert_eq!(device.read_blocks(child_session, 0, 1), Err(revoked));
    assert_eq!(device.close(child_session), Ok(Done));
    assert_eq!(device.list().unwrap().entries, Entries::default());
    from(&lo, GRANDCHILD);
    assert_eq!(device.read_blocks(grandchild_session, 0, 1).unwrap_err().error, Error::Revoked);
    assert_eq!(device.open("blk0", Rights::READ).unwrap_err().error, Error::NotFound);

    // An exclusive grant keeps the granter and the other children out, not the holder's chain.
    from(&lo, ROOT);
    assert_eq!(device.grant(CHILD, "serial0", Rights::READ_WRITE, true), Ok(Done));
    let held = refusal(ROOT, Error::Busy, "serial0 is granted exclusively to container 0x7");
    assert_eq!(device.open("serial0", Rights::READ), Err(held));
    assert_eq!(device.grant(OTHER, "serial0", Rights::READ, false).unwrap_err().error, Error::Busy);
    let entry = device.info("serial0").unwrap().entry;
    assert_eq!((entry.access, entry.holder), (Access::Owner, CHILD));
    from(&lo, CHILD);
    assert_eq!(device.info("serial0").unwrap().entry.access, Access::Exclusive);
    assert_eq!(device.grant(GRANDCHILD, "serial0", Rights::WRITE, false), Ok(Done));
    from(&lo, GRANDCHILD);
    assert!(device.open("serial0", Rights::WRITE).is_ok());
    // Exclusive is refused while someone else has the device open.
    from(&lo, ROOT);
    device.open("zero0", Rights::READ).unwrap();
    assert_eq!(device.grant(CHILD, "zero0", Rights::READ, true).unwrap_err().error, Error::Busy);
}

#[test]
fn plugged_devices_belong_to_their_container() {
    let lo = devices(CHILD);
    let device = Client::new(&lo);
    assert_eq!(device.plug(0, "null"), Ok(Plugged { name: "null1".into() }));
    let entry = device.info("null1").unwrap().entry;
    assert_eq!((entry.class, entry.access, entry.rights), (Class::Null, Access::Owner, Rights::READ_WRITE));
    assert_eq!(device.plug(GRANDCHILD, "console"), Ok(Plugged { name: "console0".into() }));
    assert_eq!(device.info("console0").unwrap_err().error, Error::NotFound);
    assert_eq!(device.plug(OTHER, "zero").unwrap_err().error, Error::NoSuchContainer);
    let kind = refusal(CHILD, Error::InvalidArgument, "cannot plug \"block\": null, zero, random or console");
    assert_eq!(device.plug(0, "block"), Err(kind));
    assert_eq!(device.plug(0, "").unwrap_err().error, Error::InvalidArgument);
    from(&lo, GRANDCHILD);
    let console = device.open("console0", Rights::WRITE).unwrap().handle;
    assert_eq!(device.write(console, b"hi"), Ok(Written { count: 2 }));
    while lo.server().devices.len() < server::MAX_DEVICES {
        device.plug(0, "random").unwrap();
    }
    assert_eq!(device.plug(0, "random").unwrap_err().error, Error::QuotaExceeded);
}

#[test]
fn pci_is_for_the_root_and_time_for_clocks() {
    let lo = devices(ROOT);
    let device = Client::new(&lo);
    let functions = device.pci().unwrap().functions.0;
    let lines: Vec<String> = functions.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        ["00:00.0 0600: 8086:29c0 (rev 00)", "00:03.0 0100: 1af4:1001 (rev 00), irq 11, driver virtio-blk"]
    );
    assert_eq!(functions[1].bars[4].to_string(), "Memory at fe000000 (64-bit, prefetchable) [size=16K]");
    let rtc = device.open("rtc0", Rights::READ).unwrap().handle;
    assert_eq!(device.time(rtc), Ok(Time { unix_seconds: NOW }));
    assert_eq!(device.read(rtc, 8, 0).unwrap_err().error, Error::WrongObject);
    from(&lo, CHILD);
    let denied = refusal(CHILD, Error::AccessDenied, "only the root container lists PCI functions");
    assert_eq!(device.pci(), Err(denied));
    // More functions than a reply holds: the server answers the first ones.
    lo.server().functions = (0..MAX_FUNCTIONS + 5).map(fields::maximal_function).collect();
    from(&lo, ROOT);
    assert_eq!(device.pci().unwrap().functions.0.len(), MAX_FUNCTIONS);
}

#[test]
fn the_wire_layout_is_the_documented_one() {
    let recorder = Recorder::default();
    let device = Client::new(&recorder);
    let _ = device.open("blk0", Rights::READ_WRITE);
    let _ = device.read_blocks(5, 6, 7);
    let _ = device.read(5, 100, NO_TIMEOUT);
    let _ = device.grant(7, "serial0", Rights::READ, true);
    let _ = device.list();
    let frames = recorder.take();
    // open: the name's length and the rights in the registers, the name in the data.
    assert_eq!(frames[0].words, [label::open, 4 | 3 << 16, 0, 0]);
    assert_eq!(frames[0].data, b"blk0");
    // Register-only: the kernel's fast path.
    assert_eq!(frames[1].words, [label::read_blocks, 5, 6, 7]);
    assert_eq!(frames[2].words, [label::read, 5, 100, u64::MAX]);
    assert!(frames[1].data.is_empty() && frames[2].data.is_empty());
    // grant: container (word 1), name length and rights (word 2 on), exclusive (byte 18).
    assert_eq!(frames[3].words, [label::grant, 7, 7 | 1 << 16, 1 << 16]);
    assert_eq!(frames[3].data, b"serial0");
    assert_eq!(frames[4].words, [label::list, 0, 0, 0]);
    // An Opened reply is register-only too.
    let (_, opened) = vessel_protocol::testing::reply_frame(
        &OPERATIONS[2],
        &Opened { handle: 1 << 32 | 5, blocks: BLOCKS, block_size: BLOCK_SIZE },
    );
    assert_eq!(opened.words, [reply_label(label::open), 1 << 32 | 5, BLOCKS, BLOCK_SIZE]);
    assert!(opened.data.is_empty());
}

#[test]
fn malformed_requests_are_refused_with_the_field() {
    let lo = devices(ROOT);
    let expect = |words: [u64; 4], data: &[u8], reason: &str| {
        let reply = lo.raw(words, data, &[]).unwrap();
        assert_eq!(reply.words[0], REFUSED, "{reason}");
        assert_eq!(Refusal::read(reply.frame()), Refusal::new(Error::InvalidArgument, reason));
    };
    expect([label::open, 4 | 4 << 16, 0, 0], b"blk0", "device.open: field `rights`: bad value");
    expect([label::open, 4 | 1 << 63, 0, 0], b"blk0", "device.open: field `rights`: bad value");
    expect([label::open, 9, 0, 0], b"blk0", "device.open: field `name`: bad length: the data ends inside the field");
    expect([label::open, 4 | 1 << 16, 0, 0], b"blk0x", "device.open: bad length: 1 bytes of data left over");
    expect([label::grant, 7, 4 | 1 << 16, 2 << 16], b"blk0", "device.grant: field `exclusive`: bad value");
    expect([label::info, 2, 0, 0], b"\xff\xfe", "device.info: field `name`: bad value: not UTF-8");
    expect([99, 0, 0, 0], b"", "device: unknown label 99");
    expect([reply_label(label::list), 0, 0, 0], b"", "device: unknown label 4294967297");
    // A request that decodes reaches the server whatever it holds.
    let reply = lo.raw([label::close, 0x1234, 0, 0], b"", &[]).unwrap();
    assert_eq!(Refusal::read(reply.frame()).error, Error::InvalidHandle);
    // Handles that came along are deleted.
    let _ = lo.raw([label::list, 0, 0, 0], b"", &[40, 41]).unwrap();
    assert_eq!(lo.mailbox().dropped(), [40, 41]);
}

#[test]
fn hostile_messages_never_panic() {
    let report = protocol_checks::fuzz_every_operation(0x9e37_79b9_7f4a_7c15, 60_000).unwrap();
    assert!(report.accepted > 0 && report.refused > 0 && report.deferred > 0, "{report:?}");
    // And through the in-memory server, with valid requests of every operation as seeds.
    let recorder = Recorder::default();
    let device = Client::new(&recorder);
    let _ = device.list();
    let _ = device.info("blk0");
    let _ = device.open("blk0", Rights::READ_WRITE);
    let _ = device.close(1);
    let _ = device.read_blocks(1, 0, 1);
    let _ = device.write_blocks(1, 0, &[0; BLOCK_SIZE as usize]);
    let _ = device.flush(1);
    let _ = device.read(1 << 32 | 2, 1, 5);
    let _ = device.write(1, b"x");
    let _ = device.grant(CHILD, "serial0", Rights::READ, true);
    let _ = device.revoke(CHILD, "serial0");
    let _ = device.plug(0, "zero");
    let _ = device.pci();
    let _ = device.time(1);
    let _ = device.share(1, 4096);
    let _ = device.read_shared(1, 0, 1, 0);
    let _ = device.write_shared(1, 0, 1, 0);
    let _ = device.console("console0");
    let _ = device.interrupt(1, 1, &[7]);
    let _ = device.attach(1, "console1");
    let _ = device.restart("blk0");
    let seeds = recorder.take();
    assert_eq!(seeds.len(), OPERATIONS.len());
    let mut server = Devices::new();
    let report = fuzz_requests(OPERATIONS, &seeds, 5, 60_000, |caller, keeper, message| {
        if server.devices.len() >= server::MAX_DEVICES {
            server = Devices::new();
        }
        dispatch(&mut server, caller, keeper, message)
    })
    .unwrap();
    assert!(report.accepted > 0 && report.refused > 0, "{report:?}");
}

#[test]
fn every_operation_and_field_is_documented_and_in_the_guide() {
    let guide = include_str!("../../../docs/device.md");
    assert_eq!(undocumented(OPERATIONS, Some(guide)), Vec::<String>::new());
    // The labels are the documented ones, for good.
    let labels: Vec<(u64, &str)> = OPERATIONS.iter().map(|op| (op.label, op.name)).collect();
    let expected = [
        "list",
        "info",
        "open",
        "close",
        "read_blocks",
        "write_blocks",
        "flush",
        "read",
        "write",
        "grant",
        "revoke",
        "plug",
        "pci",
        "time",
        "share",
        "read_shared",
        "write_shared",
        "console",
        "interrupt",
        "attach",
        "restart",
    ];
    assert_eq!(labels, expected.iter().enumerate().map(|(i, &n)| (i as u64 + 1, n)).collect::<Vec<_>>());
    for op in OPERATIONS {
        assert!(guide.contains(&format!("| {} | `{}`", op.label, op.name)), "{} not in the table", op.name);
    }
}
