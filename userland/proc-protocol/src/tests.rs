use super::*;

fn request_round_trip(request: Request<'_>) {
    let mut words = [0; 4];
    let mut data = [0u8; 4096];
    let len = request.write(&mut words, &mut data);
    assert_eq!(Request::parse(&words, &data[..len]), Ok(request));
}

fn reply_round_trip(reply: Reply<'_>) {
    let mut words = [0; 4];
    let mut data = [0u8; 4096];
    let len = reply.write(&mut words, &mut data);
    assert_eq!(Reply::parse(&words, &data[..len]), Ok(reply));
}

#[test]
fn every_message_round_trips() {
    let mut blob = [0u8; 64];
    let n = encode_command("bin/hello", &["a", "bc"], &mut blob).unwrap();
    let command = Command { blob: &blob[..n] };
    assert_eq!(command.path(), "bin/hello");
    assert_eq!(command.parts().collect::<Vec<_>>(), ["bin/hello", "a", "bc"]);
    request_round_trip(Request::Spawn { container: 7, command });
    request_round_trip(Request::Wait { container: 0, pid: 3 });
    request_round_trip(Request::Kill { container: u64::MAX, pid: 1 });
    request_round_trip(Request::Processes { container: 9 });
    request_round_trip(Request::Create { parent: 0, limits: Limits([1, 2, UNLIMITED, 4, 5]) });
    request_round_trip(Request::Destroy { container: 11 });
    request_round_trip(Request::Containers);
    request_round_trip(Request::Info { container: 0 });
    request_round_trip(Request::Register { name: b"echo" });
    request_round_trip(Request::Lookup { name: b"echo" });
    request_round_trip(Request::Supervise { restarts: 3, name_len: 4, data: b"echobin/echo" });
    reply_round_trip(Reply::Spawned { pid: 1, container: 0xdead_beef });
    for ending in [Ending::Code(-1), Ending::Code(0), Ending::Fault, Ending::Killed] {
        reply_round_trip(Reply::Exited(ending));
    }
    reply_round_trip(Reply::Running);
    reply_round_trip(Reply::Done);
    let pairs: Vec<u8> = [1u64, 2, 3, 4].iter().flat_map(|v| v.to_le_bytes()).collect();
    reply_round_trip(Reply::List { count: 2, data: &pairs });
    assert_eq!(list_entry(&pairs, 1), Some((3, 4)));
    assert_eq!(list_entry(&pairs, 2), None);
    reply_round_trip(Reply::Created { id: 42 });
    reply_round_trip(Reply::Info { fields: core::array::from_fn(|i| i as u64 * 3) });
    reply_round_trip(Reply::Service { generation: 2 });
    reply_round_trip(Reply::Failed { code: 19 });
}

#[test]
fn hostile_messages_are_refused() {
    assert_eq!(Request::parse(&[99, 0, 0, 0], &[]), Err(DecodeError::UnknownLabel(99)));
    assert_eq!(Request::parse(&[1, 0, 0, 0], &[]), Err(DecodeError::BadValue));
    assert_eq!(Request::parse(&[1, 0, 0, 0], &[0xff, 0xfe]), Err(DecodeError::BadValue));
    assert_eq!(Request::parse(&[5, 0, 0, 0], &[0; 39]), Err(DecodeError::BadLength));
    assert_eq!(Request::parse(&[9, 0, 0, 0], &[b'a'; MAX_NAME + 1]), Err(DecodeError::BadLength));
    assert_eq!(Request::parse(&[11, 0, 100, 0], b"abc"), Err(DecodeError::BadLength));
    assert_eq!(Request::parse(&[11, 0, u64::MAX, 0], b"abc"), Err(DecodeError::BadLength));
    assert_eq!(Reply::parse(&[0x102, 7, 0, 0], &[]), Err(DecodeError::BadValue));
    assert_eq!(Reply::parse(&[0x105, u64::MAX, 0, 0], &[]), Err(DecodeError::BadLength));
    assert_eq!(Reply::parse(&[0x107, 0, 0, 0], &[0; 10]), Err(DecodeError::BadLength));
    // A command that does not fit is not written.
    let mut small = [0u8; 4];
    assert_eq!(encode_command("bin/hello", &[], &mut small), None);
    // Any words and bytes: an answer, never a panic.
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let bytes = [0x41u8; 600];
    for _ in 0..50_000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let words = [seed % 13, seed.rotate_left(9), seed % 700, seed.rotate_left(33)];
        let data = &bytes[..(seed % 600) as usize];
        let _ = Request::parse(&words, data);
        let _ = Reply::parse(&[0x100 + seed % 10, seed % 300, seed.rotate_left(3), 0], data);
    }
}
