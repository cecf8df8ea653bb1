//! Host tests: round trips through the writer, and hand-made or mutated archives the reader must
//! refuse without panicking.

use super::*;

/// Appends a hand-made record with chosen `namesize` and `filesize`, for archives the writer
/// would refuse to produce.
fn raw_record(out: &mut Vec<u8>, name: &[u8], namesize: u32, filesize: u32, data: &[u8]) {
    out.extend_from_slice(b"070701");
    for value in [1, 0o100_644, 0, 0, 1, 0, filesize, 0, 0, 0, 0, namesize, 0] {
        out.extend_from_slice(format!("{value:08x}").as_bytes());
    }
    for part in [name, data] {
        out.extend_from_slice(part);
        out.resize(out.len().next_multiple_of(4), 0);
    }
}

fn trailer(out: &mut Vec<u8>) {
    raw_record(out, b"TRAILER!!!\0", 11, 0, b"");
}

/// One hand-made record followed by a trailer.
fn one_record(name: &[u8], namesize: u32, filesize: u32, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    raw_record(&mut out, name, namesize, filesize, data);
    trailer(&mut out);
    out
}

fn sample() -> Vec<u8> {
    let mut writer = Writer::new();
    writer.add_dir("etc").unwrap();
    writer.add_file("etc/motd", 0o644, b"hello, vessel").unwrap();
    writer.add_file("empty", 0o600, b"").unwrap();
    writer.add_file("bin/init", 0o755, &[0x7f; 37]).unwrap();
    for n in 1..5 {
        writer.add_file(&format!("pad{n}"), 0o644, &vec![b'p'; n]).unwrap();
    }
    writer.finish()
}

/// Checks what an accepted archive hands out: everything borrowed from `bytes`.
fn check_inside(bytes: &[u8], archive: &Archive<'_>) {
    let outer = bytes.as_ptr_range();
    let mut count = 0;
    for entry in archive.entries() {
        for inner in [entry.data.as_ptr_range(), entry.path.as_bytes().as_ptr_range()] {
            assert!(outer.start <= inner.start && inner.end <= outer.end, "entry outside the input");
        }
        assert!(archive.get(entry.path).is_some());
        count += 1;
    }
    assert_eq!(count, archive.len());
}

#[test]
fn round_trip_with_every_padding_case_and_a_large_file() {
    let big: Vec<u8> = (0..100 * 1024u32).map(|i| (i * 7 + i / 251) as u8).collect();
    let mut writer = Writer::new();
    writer.add_dir("./sys").unwrap();
    for n in 0..10 {
        writer.add_file(&format!("/sys/size{n}"), 0o644, &big[..n]).unwrap();
    }
    writer.add_file("big", 0o4755, &big).unwrap();
    writer.add_file("empty", 0o600, &[]).unwrap();
    let bytes = writer.finish();
    assert_eq!(bytes.len() % 4, 0);
    assert_eq!(&bytes[6..14], b"00000001", "first inode is 1");

    let archive = Archive::new(&bytes).unwrap();
    assert_eq!((archive.len(), archive.is_empty(), archive.entries().size_hint()), (13, false, (13, Some(13))));
    let entries: Vec<Entry<'_>> = archive.entries().collect();
    assert_eq!(entries[0], Entry { path: "sys", mode: 0o040_755, data: &[] });
    assert!(entries[0].is_dir() && !entries[0].is_file());
    for (n, entry) in entries[1..11].iter().enumerate() {
        assert_eq!((entry.path, entry.mode, entry.data), (format!("sys/size{n}").as_str(), 0o100_644, &big[..n]));
        assert!(entry.is_file() && !entry.is_dir());
        assert_eq!((entry.data.as_ptr() as usize - bytes.as_ptr() as usize) % 4, 0, "data is 4-aligned");
    }
    assert_eq!((entries[11].path, entries[11].mode, entries[11].data), ("big", 0o104_755, &big[..]));
    assert_eq!((entries[12].path, entries[12].data), ("empty", &[][..]));

    let empty = Writer::new().finish();
    let archive = Archive::new(&empty).unwrap();
    assert!(archive.is_empty() && archive.entries().next().is_none());
}

#[test]
fn get_normalises_both_sides() {
    let bytes = sample();
    let archive = Archive::new(&bytes).unwrap();
    for path in ["etc/motd", "./etc/motd", "/etc/motd", ".//./etc/motd"] {
        assert_eq!(archive.get(path).unwrap().data, b"hello, vessel", "{path}");
    }
    assert!(archive.get("etc").unwrap().is_dir());
    assert_eq!(archive.get("motd"), None);
    assert_eq!(archive.get("TRAILER!!!"), None);
}

#[test]
fn gnu_style_dot_names_read_normalised() {
    // `find . | cpio -o -H newc` stores "." and "./name".
    let mut bytes = Vec::new();
    raw_record(&mut bytes, b".\0", 2, 0, b"");
    raw_record(&mut bytes, b"./init\0", 7, 3, b"abc");
    trailer(&mut bytes);
    let archive = Archive::new(&bytes).unwrap();
    let paths: Vec<&str> = archive.entries().map(|entry| entry.path).collect();
    assert_eq!(paths, ["", "init"]);
    assert_eq!(archive.get("/init").unwrap().data, b"abc");
}

#[test]
fn every_truncation_is_an_error_and_padding_after_trailer_is_fine() {
    let bytes = sample();
    for cut in 0..bytes.len() {
        assert!(Archive::new(&bytes[..cut]).is_err(), "prefix of {cut} bytes accepted");
    }
    let mut padded = bytes.clone();
    padded.extend_from_slice(&[0xa5; 512]);
    assert_eq!(Archive::new(&padded).unwrap().len(), 8);
}

#[test]
fn hostile_sizes_are_truncated() {
    let cases = [
        one_record(b"x\0", 2, 0xffff_ffff, b"abc"),
        one_record(b"x\0", 0xffff_ffff, 0, b""),
        one_record(b"x\0", 2, 0xffff_fffc, b""),
    ];
    for bytes in cases {
        assert_eq!(Archive::new(&bytes).err(), Some(Error::Truncated { offset: 0 }));
    }
    // A bad second record reports its own offset.
    let mut bytes = Vec::new();
    raw_record(&mut bytes, b"ok\0", 3, 1, b"a");
    raw_record(&mut bytes, b"x\0", 2, 0x7fff_ffff, b"");
    assert_eq!(Archive::new(&bytes).err(), Some(Error::Truncated { offset: 120 }));
}

#[test]
fn hostile_names_are_bad_names() {
    let names: [&[u8]; 8] = [b"xy", b"", b"a\0b\0", b"\xff\0", b"..\0", b"../etc\0", b"a/../../b\0", b"/a/..\0"];
    for name in names {
        let bytes = one_record(name, name.len() as u32, 0, b"");
        assert_eq!(Archive::new(&bytes).err(), Some(Error::BadName { offset: 0 }), "{name:?}");
    }
    for name in [&b"a..b\0"[..], b"...\0", b"a/.../b\0"] {
        assert!(Archive::new(&one_record(name, name.len() as u32, 0, b"")).is_ok(), "{name:?}");
    }
}

#[test]
fn bad_magic_bad_numbers_and_missing_trailer() {
    let mut bytes = one_record(b"x\0", 2, 0, b"");
    let second = bytes.len() - 124;
    for magic in [b"070702", b"070707", b"070700"] {
        bytes[second..second + 6].copy_from_slice(magic);
        assert_eq!(Archive::new(&bytes).err(), Some(Error::BadMagic { offset: second }));
    }

    let mut bytes = one_record(b"x\0", 2, 0, b"");
    bytes[6 + 6 * 8 + 3] = b'g';
    assert_eq!(Archive::new(&bytes).err(), Some(Error::BadNumber { offset: 0, field: "filesize" }));
    bytes[6 + 8] = b' ';
    assert_eq!(Archive::new(&bytes).err(), Some(Error::BadNumber { offset: 0, field: "mode" }));

    let mut bytes = Vec::new();
    raw_record(&mut bytes, b"x\0", 2, 0, b"");
    assert_eq!(Archive::new(&bytes).err(), Some(Error::MissingTrailer));
    assert_eq!(Archive::new(&[]).err(), Some(Error::MissingTrailer));
}

#[test]
fn mutated_archives_never_panic() {
    let base = sample();
    let headers: Vec<usize> = (0..base.len()).filter(|&i| base[i..].starts_with(b"070701")).collect();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut random = move |below: usize| {
        // xorshift64: deterministic, so a failure reproduces.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % below as u64) as usize
    };
    let hex_values: [&[u8; 8]; 5] = [b"FFFFFFFF", b"7FFFFFFF", b"FFFFFFFC", b"00000000", b"0000006E"];
    let (mut accepted, mut refused) = (0, 0);
    for _ in 0..30_000 {
        let mut bytes = base.clone();
        for _ in 0..1 + random(3) {
            let field = headers[random(headers.len())] + 6 + 8 * random(13);
            match random(6) {
                0 => bytes[random(base.len())] ^= 1 << random(8),
                1 => bytes[random(base.len())] = random(256) as u8,
                2 => bytes[field..field + 8].copy_from_slice(hex_values[random(hex_values.len())]),
                3 => bytes[field + random(8)] = b"0123456789abcdefG "[random(18)],
                4 => bytes.truncate(random(base.len())),
                _ => bytes.insert(random(base.len()), random(256) as u8),
            }
            if bytes.len() < base.len() {
                break; // later offsets may be gone
            }
        }
        match Archive::new(&bytes) {
            Ok(archive) => {
                check_inside(&bytes, &archive);
                accepted += 1;
            }
            Err(_) => refused += 1,
        }
    }
    assert!(accepted > 1000 && refused > 1000, "accepted {accepted}, refused {refused}");
}

#[test]
fn writer_refuses_what_reader_refuses() {
    let mut writer = Writer::new();
    writer.add_file("ok", 0o644, b"1").unwrap();
    for path in ["", "/", ".", "./", "..", "a/../b", "a/..", "TRAILER!!!", "./TRAILER!!!", "a\0b"] {
        assert_eq!(writer.add_file(path, 0o644, b""), Err(Error::BadName { offset: 120 }), "{path:?}");
        assert_eq!(writer.add_dir(path), Err(Error::BadName { offset: 120 }), "{path:?}");
    }
    let bytes = writer.finish();
    assert_eq!(Archive::new(&bytes).unwrap().len(), 1);
}

#[test]
fn errors_read_clearly() {
    assert_eq!(Error::Truncated { offset: 1234 }.to_string(), "bootfs: entry at byte 1234 is truncated");
    assert_eq!(
        Error::BadNumber { offset: 8, field: "namesize" }.to_string(),
        "bootfs: header at byte 8 has a namesize field that is not 8 hex digits"
    );
    assert_eq!(Error::MissingTrailer.to_string(), "bootfs: archive ends without a TRAILER!!! entry");
}

/// Unpacks `image` into a buffer of its stated length.
fn unpacked(image: &[u8]) -> Result<Vec<u8>, UnpackError> {
    let len = unpacked_len(image).ok_or(UnpackError::BadHeader)??;
    let mut out = vec![0u8; len];
    let mut state = miniz_oxide::inflate::core::DecompressorOxide::new();
    unpack(image, &mut out, &mut state).map(|()| out)
}

#[test]
fn a_packed_archive_unpacks_to_the_same_bytes() {
    let archive = sample();
    let packed = pack(&archive);
    assert!(packed.starts_with(&PACKED_MAGIC));
    assert_eq!(unpacked_len(&packed), Some(Ok(archive.len())));
    assert_eq!(unpacked(&packed), Ok(archive.clone()));
    // A plain archive is not packed.
    assert_eq!(unpacked_len(&archive), None);
    // Repetitive data packs small.
    let big = vec![0x5A; 1 << 20];
    assert!(pack(&big).len() < 8192);
    assert_eq!(unpacked(&pack(&big)), Ok(big));
}

/// Damaged packed archives are refused with a reason, never unpacked to wrong bytes, never a
/// panic: every cut, every single flipped byte, a wrong stated length, a wrong buffer.
#[test]
fn damaged_packed_archives_are_refused() {
    let archive = sample();
    let packed = pack(&archive);
    for cut in 0..packed.len() {
        assert!(unpacked(&packed[..cut]).is_err(), "cut at {cut}");
    }
    for at in 0..packed.len() {
        let mut bad = packed.clone();
        bad[at] ^= 0x41;
        match unpacked(&bad) {
            Ok(bytes) => panic!("byte {at} flipped still unpacked ({} bytes)", bytes.len()),
            Err(_) if at < 8 => assert_eq!(unpacked_len(&bad), None),
            Err(_) => {}
        }
    }
    let mut longer = packed.clone();
    longer[8..16].copy_from_slice(&(archive.len() as u64 + 1).to_le_bytes());
    assert_eq!(unpacked(&longer), Err(UnpackError::LengthMismatch { stated: archive.len() + 1 }));
    let mut shorter = packed.clone();
    shorter[8..16].copy_from_slice(&(archive.len() as u64 - 1).to_le_bytes());
    assert_eq!(unpacked(&shorter), Err(UnpackError::LengthMismatch { stated: archive.len() - 1 }));
    let mut state = miniz_oxide::inflate::core::DecompressorOxide::new();
    let mut small = vec![0u8; archive.len() - 1];
    assert_eq!(unpack(&packed, &mut small, &mut state), Err(UnpackError::WrongLength { stated: archive.len() }));
    assert_eq!(unpack(&archive, &mut small, &mut state), Err(UnpackError::BadHeader));
    assert_eq!(unpacked(&PACKED_MAGIC), Err(UnpackError::BadHeader));
}
