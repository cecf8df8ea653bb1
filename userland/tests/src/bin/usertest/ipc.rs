//! Capability and IPC tests: rights, duplication, stale handles, revocation across processes,
//! calls with data and capabilities, peer death, many clients, notifications, shared memory.
//! Every test ends by checking the kernel's object and capability counts are back where they
//! started.

use alloc::format;
use alloc::vec::Vec;

use vessel_rt::abi::{Error, Exit, MapFlags, Meta, ObjectKind, Rights};
use vessel_rt::ipc::{Cap, Endpoint, Memory, Notification};
use vessel_rt::{process, sys, time};

use crate::{TestResult, check};

pub const TESTS: &[crate::Test] = &[
    ("cap::each_operation_needs_its_right", each_operation_needs_its_right),
    ("cap::duplicate_never_adds_rights", duplicate_never_adds_rights),
    ("cap::stale_handles_refused", stale_handles_refused),
    ("cap::revoke_reaches_other_processes", revoke_reaches_other_processes),
    ("ipc::call_reply_with_stamped_identity", call_reply_with_stamped_identity),
    ("ipc::data_and_capability_transfer", data_and_capability_transfer),
    ("ipc::refused_transfers_lose_nothing", refused_transfers_lose_nothing),
    ("ipc::peer_death_gives_errors_not_hangs", peer_death_gives_errors_not_hangs),
    ("ipc::thirty_two_clients_all_answered", thirty_two_clients_all_answered),
    ("notification::signal_wait_poll_timeout", signal_wait_poll_timeout),
    ("memory::shared_between_processes", shared_between_processes),
    ("memory::revoking_a_memory_capability_unmaps_it", revoking_a_memory_capability_unmaps_it),
    ("process::capability_lets_another_process_kill", process_capability_lets_another_process_kill),
    ("ipc::typed_protocol_round_trip", typed_protocol_round_trip),
    ("ipc::small_messages_take_the_fast_path", small_messages_take_the_fast_path),
    ("ipc::a_call_ends_a_receive_deadline", a_call_ends_a_receive_deadline),
];

/// Object and capability counts, to check each test cleans up after itself.
pub(crate) fn counts() -> Result<(u64, u64), alloc::string::String> {
    sys::kernel_stats().map(|s| (s.objects, s.caps)).map_err(|e| format!("stats: {e}"))
}

pub(crate) fn e(what: &str) -> impl FnOnce(Error) -> alloc::string::String + '_ {
    move |err| format!("{what}: {err}")
}

pub(crate) fn finished(before: (u64, u64)) -> TestResult {
    sys::yield_now();
    let after = counts()?;
    check!(after == before, "objects/caps {before:?} before, {after:?} after");
    Ok(())
}

fn each_operation_needs_its_right() -> TestResult {
    let before = counts()?;
    let ep = Endpoint::create().map_err(e("endpoint"))?;
    let all = Rights::all();
    // With the right the operation gets past the rights check (and would block: WouldBlock).
    check!(ep.try_call([0; 4], Meta::default()) == Err(Error::WouldBlock), "call with SEND");
    check!(ep.try_recv() == Err(Error::WouldBlock), "recv with RECEIVE");
    check!(ep.recv_timeout(20_000_000) == Err(Error::TimedOut), "timed receive with nobody calling");
    let no_send = Endpoint(ep.0.duplicate(all - Rights::SEND).map_err(e("dup"))?);
    check!(no_send.try_call([0; 4], Meta::default()) == Err(Error::MissingRights), "call without SEND");
    let no_recv = Endpoint(ep.0.duplicate(all - Rights::RECEIVE).map_err(e("dup"))?);
    check!(no_recv.try_recv() == Err(Error::MissingRights), "recv without RECEIVE");
    let no_dup = ep.0.duplicate(all - Rights::DUPLICATE).map_err(e("dup"))?;
    check!(no_dup.duplicate(all) == Err(Error::MissingRights), "duplicate without DUPLICATE");
    check!(no_dup.mint(all, 5) == Err(Error::MissingRights), "mint without DUPLICATE");
    let no_manage = ep.0.duplicate(all - Rights::MANAGE).map_err(e("dup"))?;
    check!(no_manage.revoke() == Err(Error::MissingRights), "revoke without MANAGE");
    let no_transfer = ep.0.duplicate(all - Rights::TRANSFER).map_err(e("dup"))?;
    check!(
        process::spawn_with_caps("bin/true", &[], &[no_transfer.0]) == Err(Error::MissingRights),
        "handing over without TRANSFER"
    );
    let n = Notification::create().map_err(e("notification"))?;
    let no_signal = Notification(n.0.duplicate(all - Rights::SEND).map_err(e("dup"))?);
    check!(no_signal.signal(1) == Err(Error::MissingRights), "signal without SEND");
    let no_wait = Notification(n.0.duplicate(all - Rights::RECEIVE).map_err(e("dup"))?);
    check!(no_wait.poll() == Err(Error::MissingRights), "poll without RECEIVE");
    let m = Memory::create(1).map_err(e("memory"))?;
    let no_map = Memory(m.0.duplicate(all - Rights::MAP).map_err(e("dup"))?);
    check!(no_map.map(MapFlags::empty()) == Err(Error::MissingRights), "map without MAP");
    let read_only = Memory(m.0.duplicate(all - Rights::WRITE).map_err(e("dup"))?);
    check!(read_only.map(MapFlags::WRITE) == Err(Error::MissingRights), "writable map without WRITE");
    // Wrong kinds and bad handles.
    check!(Notification(ep.0).signal(1) == Err(Error::WrongObject), "signal on an endpoint");
    check!(Endpoint(n.0).try_recv() == Err(Error::WrongObject), "recv on a notification");
    check!(Cap(0).inspect() == Err(Error::InvalidHandle), "handle 0");
    check!(Cap(0xdead_beef).inspect().is_err(), "garbage handle");
    for cap in [
        ep.0,
        no_send.0,
        no_recv.0,
        no_dup,
        no_manage,
        no_transfer,
        n.0,
        no_signal.0,
        no_wait.0,
        m.0,
        no_map.0,
        read_only.0,
    ] {
        cap.delete().map_err(e("delete"))?;
    }
    finished(before)
}

fn duplicate_never_adds_rights() -> TestResult {
    let before = counts()?;
    let ep = Endpoint::create().map_err(e("endpoint"))?;
    let reduced = ep.0.duplicate(Rights::SEND | Rights::DUPLICATE).map_err(e("dup"))?;
    let again = reduced.duplicate(Rights::all()).map_err(e("dup again"))?;
    let info = again.inspect().map_err(e("inspect"))?;
    check!(info.rights == (Rights::SEND | Rights::DUPLICATE).bits(), "rights grew to {:#x}", info.rights);
    check!(info.kind == ObjectKind::Endpoint as u32, "kind {}", info.kind);
    let badged = ep.0.mint(Rights::SEND | Rights::DUPLICATE, 42).map_err(e("mint"))?;
    check!(badged.inspect().map(|i| i.badge) == Ok(42), "badge");
    check!(badged.mint(Rights::all(), 7) == Err(Error::InvalidArgument), "re-badging a badged capability");
    for cap in [again, reduced, badged, ep.0] {
        cap.delete().map_err(e("delete"))?;
    }
    finished(before)
}

fn stale_handles_refused() -> TestResult {
    let before = counts()?;
    let n = Notification::create().map_err(e("notification"))?;
    n.0.delete().map_err(e("delete"))?;
    check!(n.0.inspect() == Err(Error::StaleHandle), "deleted handle still works");
    check!(n.signal(1) == Err(Error::StaleHandle), "signal through a deleted handle");
    // The slot is reused by the next capability; the old handle must not reach it.
    let fresh = Notification::create().map_err(e("notification"))?;
    check!(n.0.inspect() == Err(Error::StaleHandle), "old handle aliases the new capability");
    check!(fresh.0.inspect().is_ok(), "new capability");
    fresh.0.delete().map_err(e("delete"))?;
    finished(before)
}

fn revoke_reaches_other_processes() -> TestResult {
    let before = counts()?;
    let ep = Endpoint::create().map_err(e("endpoint"))?;
    let pid = process::spawn_with_caps("bin/probe", &["hold"], &[ep.0.0]).map_err(e("spawn"))?;
    time::sleep_ms(20);
    let removed = ep.0.revoke().map_err(e("revoke"))?;
    check!(removed == 1, "revoke removed {removed} capabilities, expected the child's one");
    check!(process::wait(pid) == Ok(Exit::Code(0)), "the child kept its capability");
    check!(ep.0.inspect().is_ok(), "revoke removed the original too");
    ep.0.delete().map_err(e("delete"))?;
    finished(before)
}

fn echo_server(ep: Endpoint) -> Result<u64, alloc::string::String> {
    process::spawn_with_caps("bin/probe", &["echo-server"], &[ep.0.0]).map_err(e("spawn server"))
}

fn stop_server(ep: Endpoint, server: u64) -> TestResult {
    let last = ep.call([u64::MAX, 0, 0, 0], Meta::default()).map_err(e("stop call"))?;
    check!(last.words[0] == 0, "stop reply {:?}", last.words);
    check!(process::wait(server) == Ok(Exit::Code(0)), "server exit");
    Ok(())
}

fn call_reply_with_stamped_identity() -> TestResult {
    let before = counts()?;
    let ep = Endpoint::create().map_err(e("endpoint"))?;
    let server = echo_server(ep)?;
    let badged = Endpoint(ep.0.mint(Rights::SEND, 77).map_err(e("mint"))?);
    let reply = badged.call([41, 0, 0, 0], Meta::default()).map_err(e("call"))?;
    check!(reply.words[0] == 42, "reply word {}", reply.words[0]);
    check!(reply.words[1] == 77, "server saw badge {}", reply.words[1]);
    check!(reply.words[2] == sys::process_id(), "server saw sender pid {}", reply.words[2]);
    check!(reply.badge == 0, "replies carry no badge");
    let plain = ep.call([1, 0, 0, 0], Meta::default()).map_err(e("call"))?;
    check!(plain.words[1] == 0, "unbadged call delivered badge {}", plain.words[1]);
    stop_server(ep, server)?;
    badged.0.delete().map_err(e("delete"))?;
    ep.0.delete().map_err(e("delete"))?;
    finished(before)
}

fn data_and_capability_transfer() -> TestResult {
    let before = counts()?;
    let ep = Endpoint::create().map_err(e("endpoint"))?;
    let server = echo_server(ep)?;
    let n = Notification::create().map_err(e("notification"))?;
    let given = n.0.duplicate(Rights::all()).map_err(e("dup"))?;
    {
        // SAFETY: the buffer is used only to stage this call and read its reply.
        let buffer = unsafe { vessel_rt::ipc::buffer() };
        for (i, b) in buffer.data.iter_mut().enumerate() {
            *b = i as u8;
        }
        buffer.caps[0] = given.0;
    }
    let reply = ep.call([5, 0, 0, 0], Meta { data_len: 4096, cap_count: 1, flags: 0 }).map_err(e("call"))?;
    check!(reply.words[3] == 4096 && reply.meta.data_len == 4096, "data length {:?}", reply);
    // SAFETY: read after the call returned.
    let buffer = unsafe { vessel_rt::ipc::buffer() };
    check!(buffer.data.iter().rev().enumerate().all(|(i, &b)| b == i as u8), "4 KiB did not come back reversed");
    check!(given.inspect() == Err(Error::StaleHandle), "a moved capability stayed with the sender");
    check!(n.wait_timeout(2_000_000_000) == Ok(0x10), "the server could not use the capability it received");
    stop_server(ep, server)?;
    for cap in [n.0, ep.0] {
        cap.delete().map_err(e("delete"))?;
    }
    finished(before)
}

fn refused_transfers_lose_nothing() -> TestResult {
    let before = counts()?;
    let ep = Endpoint::create().map_err(e("endpoint"))?;
    let server = echo_server(ep)?;
    let n = Notification::create().map_err(e("notification"))?;
    let sticky = n.0.duplicate(Rights::all() - Rights::TRANSFER).map_err(e("dup"))?;
    // SAFETY: staging only.
    unsafe { vessel_rt::ipc::buffer() }.caps[0] = sticky.0;
    let meta = Meta { cap_count: 1, ..Meta::default() };
    check!(ep.call([1, 0, 0, 0], meta) == Err(Error::MissingRights), "moved a capability without TRANSFER");
    check!(sticky.inspect().is_ok(), "refused transfer lost the capability");
    check!(ep.call([1, 0, 0, 0], Meta { cap_count: 5, ..Meta::default() }) == Err(Error::TooLarge), "5 capabilities");
    check!(ep.call([1, 0, 0, 0], Meta { data_len: 4097, ..Meta::default() }) == Err(Error::TooLarge), "4097 bytes");
    // SAFETY: staging only.
    unsafe { vessel_rt::ipc::buffer() }.caps[0] = 0xffff;
    check!(ep.call([1, 0, 0, 0], meta) == Err(Error::InvalidHandle), "bogus handle in a message");
    // The server is still fine.
    check!(ep.call([9, 0, 0, 0], Meta::default()).map(|r| r.words[0]) == Ok(10), "server after refusals");
    stop_server(ep, server)?;
    for cap in [sticky, n.0, ep.0] {
        cap.delete().map_err(e("delete"))?;
    }
    finished(before)
}

fn peer_death_gives_errors_not_hangs() -> TestResult {
    let before = counts()?;
    // 1. The server dies while our call is in its hands.
    let ep = Endpoint::create().map_err(e("endpoint"))?;
    let server = process::spawn_with_caps("bin/probe", &["die-on-request"], &[ep.0.0]).map_err(e("spawn"))?;
    check!(ep.call([1, 0, 0, 0], Meta::default()) == Err(Error::PeerDied), "call to a server that died");
    check!(process::wait(server) == Ok(Exit::Code(0)), "server exit");
    // 2. The only receiver is gone: calls fail at once instead of queueing forever.
    let send_only = Endpoint(ep.0.duplicate(Rights::SEND).map_err(e("dup"))?);
    let server = process::spawn_with_caps("bin/probe", &["die-on-request"], &[ep.0.0]).map_err(e("spawn"))?;
    ep.0.delete().map_err(e("delete"))?;
    check!(send_only.call([1, 0, 0, 0], Meta::default()) == Err(Error::PeerDied), "first call");
    check!(process::wait(server) == Ok(Exit::Code(0)), "server exit");
    check!(send_only.call([2, 0, 0, 0], Meta::default()) == Err(Error::PeerDied), "call with no receiver left");
    send_only.0.delete().map_err(e("delete"))?;
    // 3. The caller dies before the reply: the server's reply says so.
    let ep = Endpoint::create().map_err(e("endpoint"))?;
    let server = process::spawn_with_caps("bin/probe", &["reply-late"], &[ep.0.0]).map_err(e("spawn"))?;
    let client = process::spawn_with_caps("bin/probe", &["ipc-client", "1"], &[ep.0.0]).map_err(e("spawn"))?;
    time::sleep_ms(30);
    process::kill(client).map_err(e("kill"))?;
    check!(process::wait(client) == Ok(Exit::Killed), "client");
    check!(process::wait(server) == Ok(Exit::Code(0)), "the reply to a dead caller did not say PeerDied");
    ep.0.delete().map_err(e("delete"))?;
    finished(before)
}

fn thirty_two_clients_all_answered() -> TestResult {
    let before = counts()?;
    let ep = Endpoint::create().map_err(e("endpoint"))?;
    let server = echo_server(ep)?;
    let clients: Vec<u64> = (0..32)
        .map(|_| process::spawn_with_caps("bin/probe", &["ipc-client", "25"], &[ep.0.0]))
        .collect::<Result<_, _>>()
        .map_err(e("spawn client"))?;
    for (i, pid) in clients.into_iter().enumerate() {
        check!(process::wait(pid) == Ok(Exit::Code(0)), "client {i} got a wrong or missing reply");
    }
    stop_server(ep, server)?;
    ep.0.delete().map_err(e("delete"))?;
    finished(before)
}

fn signal_wait_poll_timeout() -> TestResult {
    let before = counts()?;
    let n = Notification::create().map_err(e("notification"))?;
    check!(n.poll() == Ok(0), "fresh notification has bits");
    n.signal(0b101).map_err(e("signal"))?;
    n.signal(0b010).map_err(e("signal"))?;
    check!(n.poll() == Ok(0b111), "bits not accumulated");
    check!(n.poll() == Ok(0), "poll did not clear");
    check!(n.wait_timeout(30_000_000) == Err(Error::TimedOut), "timed wait");
    let child = process::spawn_with_caps("bin/probe", &["signal", "64"], &[n.0.0]).map_err(e("spawn"))?;
    check!(n.wait() == Ok(64), "signal from another process");
    check!(process::wait(child) == Ok(Exit::Code(0)), "child");
    n.0.delete().map_err(e("delete"))?;
    finished(before)
}

fn shared_between_processes() -> TestResult {
    let before = counts()?;
    let stats_before = sys::kernel_stats().map_err(e("stats"))?;
    let m = Memory::create(1).map_err(e("memory"))?;
    let addr = m.map(MapFlags::WRITE).map_err(e("map"))?;
    let words = addr as usize as *mut u64;
    // SAFETY: one writable page of the memory object is mapped at `addr`.
    unsafe { core::ptr::write_volatile(words, 0x1234) };
    let child = process::spawn_with_caps("bin/probe", &["shared"], &[m.0.0]).map_err(e("spawn"))?;
    check!(process::wait(child) == Ok(Exit::Code(0)), "child did not see our write");
    // SAFETY: as above.
    let seen = unsafe { core::ptr::read_volatile(words.add(1)) };
    check!(seen == 0x5678, "we did not see the child's write: {seen:#x}");
    // A memory-object mapping goes whole or not at all.
    // SAFETY: the refused call unmaps nothing; nothing uses the mapping after the second one.
    check!(unsafe { sys::mem_unmap(addr, 2) } == Err(Error::InvalidArgument), "unmap past the mapping");
    // SAFETY: as above.
    unsafe { sys::mem_unmap(addr, 1) }.map_err(e("unmap"))?;
    m.0.delete().map_err(e("delete"))?;
    frames_back(&stats_before)?;
    finished(before)
}

/// Free frames are where they were in `before`.
fn frames_back(before: &vessel_rt::abi::KernelStats) -> TestResult {
    let after = sys::kernel_stats().map_err(e("stats"))?;
    let (before, after) = (before.available_frames(), after.available_frames());
    check!(after == before, "available frames {before} -> {after}");
    Ok(())
}

fn revoking_a_memory_capability_unmaps_it() -> TestResult {
    let before = counts()?;
    let stats_before = sys::kernel_stats().map_err(e("stats"))?;
    let m = Memory::create(1).map_err(e("memory"))?;
    let n = Notification::create().map_err(e("notification"))?;
    let child = process::spawn_with_caps("bin/probe", &["map-and-touch"], &[m.0.0, n.0.0]).map_err(e("spawn"))?;
    check!(n.wait_timeout(5_000_000_000) == Ok(1), "the child did not map the memory");
    // The child's capability is derived from ours: revoking takes it, and with it the mapping.
    check!(m.0.revoke() == Ok(1), "revoke removed one capability");
    let exit = process::wait(child).map_err(e("wait"))?;
    check!(
        matches!(exit, Exit::Fault { kind: vessel_rt::abi::FaultKind::PageFault, .. }),
        "the child touched revoked memory and ended {exit:?}"
    );
    m.0.delete().map_err(e("delete"))?;
    n.0.delete().map_err(e("delete"))?;
    frames_back(&stats_before)?;
    finished(before)
}

fn process_capability_lets_another_process_kill() -> TestResult {
    let before = counts()?;
    check!(vessel_rt::ipc::ProcessHandle::of(1) == Err(Error::NoSuchProcess), "capability to init (not a child)");
    let victim = process::spawn("bin/probe", &["spin"]).map_err(e("spawn"))?;
    let handle = vessel_rt::ipc::ProcessHandle::of(victim).map_err(e("process cap"))?;
    check!(handle.0.inspect().map(|i| i.detail) == Ok(victim), "capability names pid {victim}");
    let weak = vessel_rt::ipc::ProcessHandle(handle.0.duplicate(Rights::all() - Rights::MANAGE).map_err(e("dup"))?);
    check!(weak.kill() == Err(Error::MissingRights), "kill without MANAGE");
    // A sibling, not the parent, ends the victim through the capability it was given.
    let killer = process::spawn_with_caps("bin/probe", &["kill-via-cap"], &[handle.0.0]).map_err(e("spawn"))?;
    check!(process::wait(killer) == Ok(Exit::Code(0)), "the killer failed");
    check!(process::wait(victim) == Ok(Exit::Killed), "the victim was not killed");
    check!(handle.kill() == Err(Error::NoSuchProcess), "killing an ended process");
    weak.0.delete().map_err(e("delete"))?;
    handle.0.delete().map_err(e("delete"))?;
    finished(before)
}

fn typed_protocol_round_trip() -> TestResult {
    use vessel_kv_protocol::{Client, Found, Stored};
    let before = counts()?;
    let ep = Endpoint::create().map_err(e("endpoint"))?;
    let server = process::spawn_with_caps("bin/probe", &["kv-server"], &[ep.0.0]).map_err(e("spawn"))?;
    let kv = Client::new(ep);
    let r = |what: &'static str| move |refusal: vessel_protocol::Refusal| format!("{what}: {refusal}");
    check!(kv.put(1, b"one").map_err(r("put"))? == Stored { replaced: false }, "first put");
    check!(kv.put(1, b"uno").map_err(r("put"))? == Stored { replaced: true }, "second put");
    check!(kv.get(1).map_err(r("get"))? == Found { value: b"uno".to_vec() }, "get");
    // Refusals carry the error and a reason naming the service and the caller's container.
    let missing = kv.get(2).err();
    let own = vessel_rt::container::own().map_err(e("own"))?.id;
    let expected = format!("kv: container {own:#018x}: no value under key 2");
    check!(
        missing.as_ref().is_some_and(|m| m.error == Error::NotFound && m.reason == expected),
        "missing key: {missing:?}"
    );
    let long = kv.put(3, &[7; vessel_kv_protocol::MAX_VALUE + 1]).err().map(|m| m.error);
    check!(long == Some(Error::TooLarge), "a too-long value: {long:?}");
    // A hand-made message the protocol does not know is refused with a reason, not ignored or
    // fatal.
    let raw = ep.call([77, 0, 0, 0], Meta::default()).map_err(e("raw call"))?;
    check!(raw.words[0] == vessel_protocol::REFUSED, "unknown label answered with {:?}", raw.words);
    check!(raw.words[1] == Error::InvalidArgument as u64 && raw.meta.data_len > 0, "refusal {:?}", raw);
    check!(kv.get(1).map_err(r("get"))?.value == b"uno", "server state after a bad message");
    process::kill(server).map_err(e("kill"))?;
    check!(process::wait(server) == Ok(Exit::Killed), "server");
    ep.0.delete().map_err(e("delete"))?;
    finished(before)
}

/// Messages the kernel's general IPC path has delivered (the fast path's are not counted).
fn general_messages() -> Result<u64, alloc::string::String> {
    sys::kernel_stats().map(|s| s.ipc_general).map_err(e("stats"))
}

/// The stamped identity in our IPC buffer: (sender pid, sender container, badge).
fn header() -> (u64, u64, u64) {
    // SAFETY: read right after a call returned, before anything else uses the buffer.
    let buffer = unsafe { vessel_rt::ipc::buffer() };
    (buffer.sender_pid, buffer.sender_container, buffer.badge)
}

/// Fills the stamped fields of our IPC buffer with garbage, so a stamp the kernel skips shows.
fn wipe_header() {
    // SAFETY: nothing else uses this thread's buffer between calls.
    let buffer = unsafe { vessel_rt::ipc::buffer() };
    (buffer.sender_pid, buffer.sender_container, buffer.badge) = (u64::MAX, u64::MAX, u64::MAX);
}

/// Fills the first `len` data bytes of this thread's IPC buffer with a pattern of `round`.
fn stage_pattern(round: u64, len: usize) {
    // SAFETY: nothing else uses this thread's buffer between calls.
    let buffer = unsafe { vessel_rt::ipc::buffer() };
    for (i, byte) in buffer.data[..len].iter_mut().enumerate() {
        *byte = (i as u64 ^ round.wrapping_mul(0x9E37)) as u8;
    }
}

/// Whether the first `len` data bytes of this thread's IPC buffer are the pattern of `round`
/// inverted (what `identity-echo` answers).
fn holds_inverted_pattern(round: u64, len: usize) -> bool {
    // SAFETY: read right after the call returned.
    let buffer = unsafe { vessel_rt::ipc::buffer() };
    buffer.data[..len].iter().enumerate().all(|(i, &byte)| byte == !((i as u64 ^ round.wrapping_mul(0x9E37)) as u8))
}

/// Calls and replies without capabilities whose data fits the first page of the IPC buffer,
/// with the partner waiting, go through the kernel's fast path and deliver exactly what the
/// general path does (registers, data and stamped header, both ways); a message with more data
/// does not take it. The server (`identity-echo`) answers with the stamp it found in its own
/// buffer and the data inverted.
fn small_messages_take_the_fast_path() -> TestResult {
    let before = counts()?;
    let ep = Endpoint::create().map_err(e("endpoint"))?;
    let server = process::spawn_with_caps("bin/probe", &["identity-echo"], &[ep.0.0]).map_err(e("spawn"))?;
    let me = sys::process_id();
    // A call with a full data area goes through the general path both ways: the reference.
    let full = vessel_rt::abi::MAX_MESSAGE_DATA;
    let start = general_messages()?;
    wipe_header();
    stage_pattern(0, full);
    let meta = Meta { data_len: full as u16, ..Meta::default() };
    let general = ep.call([1, 0, 0, 0], meta).map_err(e("full call"))?;
    let container = general.words[3];
    check!(general.words[..3] == [2, 0, me], "general path: the server saw {:?}", general.words);
    check!(holds_inverted_pattern(0, full), "general path: the data did not come back inverted");
    let reference = header();
    check!(reference == (server, container, 0), "general path: reply header {reference:?}, server {server}");
    let general_count = general_messages()? - start;
    check!(general_count == 2, "{general_count} of 2 messages of {full} bytes took the general path");
    let badged = Endpoint(ep.0.mint(Rights::SEND, 0x5eed).map_err(e("mint"))?);
    let start = general_messages()?;
    const ROUNDS: u64 = 200;
    // TIMEOUT means nothing to a call; it only makes our r9 non-zero, so a reply that left the
    // caller's r9 alone would show in `meta`.
    let meta = Meta { flags: vessel_rt::abi::TIMEOUT, ..Meta::default() };
    for i in 0..ROUNDS {
        wipe_header();
        let reply = badged.call([i, 0, 0, 0], meta).map_err(e("call"))?;
        check!(reply.words == [i + 1, 0x5eed, me, container], "round {i}: the server saw {:?}", reply.words);
        check!(reply.badge == 0 && reply.meta == Meta::default(), "round {i}: reply {reply:?}");
        check!(header() == reference, "round {i}: reply header {:?}, general path {reference:?}", header());
    }
    // Each round is two messages (call, reply), all of them on the fast path.
    let general = general_messages()? - start;
    check!(general == 0, "{general} of {} register-only messages took the general path", 2 * ROUNDS);
    // Data up to the end of the buffer's first page: the fast path too, bytes and lengths intact.
    let start = general_messages()?;
    let first_page = vessel_rt::abi::PAGE_SIZE as usize - vessel_rt::abi::IPC_DATA_OFFSET;
    for (i, len) in [1, 16, 200, 4000, first_page].into_iter().enumerate() {
        let i = i as u64 + 1;
        wipe_header();
        stage_pattern(i, len);
        let reply = ep.call([i, 0, 0, 0], Meta { data_len: len as u16, ..Meta::default() }).map_err(e("data call"))?;
        check!(reply.words == [i + 1, 0, me, container], "{len} bytes: the server saw {:?}", reply.words);
        check!(reply.meta == Meta { data_len: len as u16, ..Meta::default() }, "{len} bytes: reply {reply:?}");
        check!(holds_inverted_pattern(i, len), "{len} bytes: the data did not come back inverted");
        check!(header() == reference, "{len} bytes: reply header {:?}, general path {reference:?}", header());
    }
    let general = general_messages()? - start;
    check!(general == 0, "{general} of 10 messages with data in the first page took the general path");
    // One byte past the first page: the general path, the data intact.
    let start = general_messages()?;
    stage_pattern(9, first_page + 1);
    let meta = Meta { data_len: (first_page + 1) as u16, ..Meta::default() };
    let reply = ep.call([9, 0, 0, 0], meta).map_err(e("data call"))?;
    check!(reply.meta.data_len as usize == first_page + 1, "past the first page: reply {reply:?}");
    check!(holds_inverted_pattern(9, first_page + 1), "past the first page: the data did not come back inverted");
    let general = general_messages()? - start;
    check!(general == 2, "{general} of 2 messages past the first page took the general path");
    stop_server(ep, server)?;
    for cap in [badged.0, ep.0] {
        cap.delete().map_err(e("delete"))?;
    }
    finished(before)
}

/// A call that reaches a receiver waiting with a deadline ends the deadline: it never fires
/// later, in a receive it was not set for (see the `deadline-then-wait` probe).
fn a_call_ends_a_receive_deadline() -> TestResult {
    let before = counts()?;
    let ep = Endpoint::create().map_err(e("endpoint"))?;
    let server = process::spawn_with_caps("bin/probe", &["deadline-then-wait"], &[ep.0.0]).map_err(e("spawn"))?;
    // Let the server block in its timed receive first.
    let deadline = time::now_ns() + 2_000_000_000;
    while sys::process_info(server).map(|i| i.state) != Ok(1) && time::now_ns() < deadline {
        sys::yield_now();
    }
    let start = general_messages()?;
    let reply = ep.call([41, 0, 0, 0], Meta::default()).map_err(e("first call"))?;
    check!(reply.words[0] == 42, "first reply {:?}", reply.words);
    // A receiver with a deadline is left to the general path (which takes it off the sleepers);
    // the server answers with `Reply`, which is always the general path.
    let general = general_messages()? - start;
    check!(general == 2, "{general} of 2 messages to a receiver with a deadline took the general path");
    // Past its 30 ms timed receive, into the plain one.
    time::sleep_ms(100);
    let reply = ep.call([7, 0, 0, 0], Meta::default());
    let exit = process::wait(server);
    check!(exit == Ok(Exit::Code(0)), "server {exit:?} (3: a receive returned without a message)");
    check!(reply.map(|r| r.words[0]) == Ok(8), "second call {reply:?}");
    ep.0.delete().map_err(e("delete"))?;
    finished(before)
}
