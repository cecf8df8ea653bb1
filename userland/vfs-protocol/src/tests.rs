//! The vfs protocol on the host: examples of its field types for the generated round trips and
//! fuzzing; the field encodings (canonical, refusing unknown bits, bad tags and list counts past
//! their limits); full `readdir` pages and `MAX_IO` transfers through the loopback with a small
//! server ([`Tree`]), which show the byte budgets are honest; the wire layout; path resolution
//! under a root; and the rights the open flags carry.
#![allow(clippy::unwrap_used)]

use std::fmt::Debug;

use vessel_protocol::testing::{Example, Loopback, OwnedFrame, Recorder, Rng, fuzz_requests};
use vessel_protocol::wire::encode;
use vessel_protocol::{
    Answer, Caller, Cx, DecodeError, EncodeError, Error, Field, FieldError, MAX_DATA, Message, REFUSED, Reader,
    Refusal, Reply, reply_label, undocumented,
};

use super::*;
use path::{
    MAX_DEPTH, MAX_NAME, MAX_PATH, Path, PathError, components, is_within, join, resolve, split_last, starts_with,
};

// Examples of every field type the declaration uses (the generated checks pick from them).

impl Example for OpenFlags {
    fn examples() -> Vec<Self> {
        vec![
            OpenFlags::READ,
            OpenFlags::ALL,
            OpenFlags::NONE,
            OpenFlags::READ | OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::EXCLUSIVE,
            OpenFlags::READ | OpenFlags::DIRECTORY,
            OpenFlags::WRITE | OpenFlags::TRUNCATE | OpenFlags::APPEND,
        ]
    }
}

impl Example for Rights {
    fn examples() -> Vec<Self> {
        vec![Rights::READ, Rights::READ_WRITE, Rights::NONE, Rights::WRITE]
    }
}

impl Example for Kind {
    fn examples() -> Vec<Self> {
        vec![Kind::File, Kind::Dir]
    }
}

impl Example for Whence {
    fn examples() -> Vec<Self> {
        vec![Whence::Start, Whence::Current, Whence::End]
    }
}

impl Example for Stat {
    fn examples() -> Vec<Self> {
        vec![
            Stat { kind: Kind::File, size: 0, modified: 0, read_only: false },
            Stat { kind: Kind::Dir, size: 0, modified: 1_700_000_000, read_only: true },
            Stat { kind: Kind::File, size: u64::MAX, modified: u64::MAX, read_only: true },
        ]
    }
}

impl Example for DirEntry {
    fn examples() -> Vec<Self> {
        vec![
            entry("a", Kind::File, 0),
            entry("ünïcödé ✓ 漢字.txt", Kind::File, 12_345),
            entry(&longest_name(0), Kind::Dir, 0),
            entry(&widest_name(0), Kind::File, u64::MAX),
        ]
    }
}

impl Example for DirEntries {
    fn examples() -> Vec<Self> {
        vec![
            DirEntries::default(),
            DirEntries(DirEntry::examples()),
            full_page(longest_name, Kind::File, u64::MAX),
            full_page(widest_name, Kind::Dir, 0),
            full_page(|i| i.to_string(), Kind::File, u64::MAX),
        ]
    }
}

impl Example for Mount {
    fn examples() -> Vec<Self> {
        vec![
            mount("/", "mem", false),
            mount("/boot", "boot", true),
            mount("/data", "blk:blk0", false),
            mount("/home/ünï/漢字", "vsf:/images/c ✓.vsf", false),
        ]
    }
}

impl Example for Mounts {
    fn examples() -> Vec<Self> {
        vec![Mounts::default(), Mounts(Mount::examples()), full_mounts()]
    }
}

fn entry(name: &str, kind: Kind, size: u64) -> DirEntry {
    DirEntry { name: name.into(), kind, size }
}

fn mount(path: &str, source: &str, read_only: bool) -> Mount {
    Mount { path: path.into(), source: source.into(), read_only }
}

/// An ASCII name of exactly [`MAX_NAME`] bytes, distinct for each `i`.
fn longest_name(i: usize) -> String {
    let tag = format!("{i:04}-");
    format!("{tag}{}", "n".repeat(MAX_NAME - tag.len()))
}

/// A name of exactly [`MAX_NAME`] bytes of 3-byte UTF-8 characters (85 of them), distinct for
/// each `i` below 20,000.
fn widest_name(i: usize) -> String {
    let first = char::from_u32(0x4e00 + i as u32).unwrap();
    assert_eq!(first.len_utf8(), 3);
    let name = format!("{first}{}", "漢".repeat(MAX_NAME / 3 - 1));
    assert_eq!(name.len(), MAX_NAME);
    name
}

/// Entries named `name(0)`, `name(1)`… added while [`DirEntries::fits`] says they fit, as a
/// server fills a `readdir` page.
fn full_page(name: impl Fn(usize) -> String, kind: Kind, size: u64) -> DirEntries {
    let mut page = DirEntries::default();
    let mut used = 0;
    loop {
        let next = DirEntry { name: name(page.0.len()), kind, size };
        if !page.fits(used, &next) {
            return page;
        }
        used += next.wire_bytes();
        page.0.push(next);
    }
}

/// [`MAX_MOUNTS`] mounts with long, non-ASCII paths and sources (as long as a full table can
/// carry in one reply: about 120 bytes each).
fn full_mounts() -> Mounts {
    Mounts(
        (0..MAX_MOUNTS)
            .map(|i| {
                let path = format!("/m{i:02}/{}", "ü".repeat(57));
                let source = format!("vsf:/v{i:02}/{}", "✓".repeat(36));
                assert_eq!((path.len(), source.len()), (119, 117));
                mount(&path, &source, i % 2 == 0)
            })
            .collect(),
    )
}

// The field encodings alone (as in device-protocol's `fields` tests).

/// `value` encoded after `filler` words of zeros (3 fill the registers: then every scalar of
/// `value` goes to the data area).
fn encoded<T: Field>(value: &T, filler: usize) -> Result<OwnedFrame, EncodeError> {
    let mut data = vec![0u8; MAX_DATA];
    let mut message = Message::new(&mut data);
    encode(&mut message, 0, |w| {
        for _ in 0..filler {
            w.u64(0);
        }
        value.put(w);
    })?;
    Ok(OwnedFrame::from(message.frame()))
}

/// Decodes what [`encoded`] wrote, checking that everything was read.
fn decoded<T: Field>(frame: &OwnedFrame, filler: usize) -> Result<T, DecodeError> {
    let mut r = Reader::new(frame.frame());
    for _ in 0..filler {
        r.u64()?;
    }
    let value = T::take(&mut r)?;
    r.finish()?;
    Ok(value)
}

/// Bytes `value` takes in the data area when the registers are full.
fn wire_size<T: Field>(value: &T) -> usize {
    encoded(value, 3).unwrap().data.len()
}

/// Decodes `data` (all in the data area) as a `T`.
fn decode_data<T: Field>(data: &[u8]) -> Result<T, DecodeError> {
    decoded(&OwnedFrame { words: [0; 4], data: data.to_vec(), caps: vec![] }, 3)
}

fn check_type<T: Field + Example + Debug + PartialEq>() {
    let mut rng = Rng::new(0x5eed);
    for value in T::examples() {
        for filler in [0, 1, 3] {
            let frame = encoded(&value, filler).unwrap();
            assert_eq!(decoded::<T>(&frame, filler).as_ref(), Ok(&value));
        }
        let data = encoded(&value, 3).unwrap().data;
        for cut in 0..data.len() {
            assert_eq!(decode_data::<T>(&data[..cut]), Err(DecodeError::Truncated), "{value:?} cut at {cut}");
        }
        let mut longer = data.clone();
        longer.push(0);
        assert_eq!(decode_data::<T>(&longer), Err(DecodeError::TrailingData(1)));
        // Mutated: refused, or a value whose encoding is exactly the mutated bytes.
        for _ in 0..300 {
            let mut mutated = data.clone();
            for _ in 0..=rng.below(3) {
                let at = rng.index(mutated.len());
                if let Some(byte) = mutated.get_mut(at) {
                    *byte = if rng.below(2) == 0 { rng.bits() as u8 } else { *byte ^ 1 << rng.below(8) };
                }
            }
            if let Ok(other) = decode_data::<T>(&mutated) {
                assert_eq!(encoded(&other, 3).unwrap().data, mutated, "{other:?}");
            }
        }
    }
}

#[test]
fn every_type_round_trips_and_refuses_cut_extended_or_mutated_encodings() {
    check_type::<OpenFlags>();
    check_type::<Rights>();
    check_type::<Kind>();
    check_type::<Whence>();
    check_type::<Stat>();
    check_type::<DirEntry>();
    check_type::<DirEntries>();
    check_type::<Mount>();
    check_type::<Mounts>();
}

#[test]
fn the_examples_have_their_edge_cases() {
    // A full page of the longest names, of the widest names, and one of MAX_DIR_PAGE entries.
    let pages = DirEntries::examples();
    assert!(pages[0].0.is_empty());
    let (longest, widest, most) = (&pages[2].0, &pages[3].0, &pages[4].0);
    let per_page = DIR_PAGE_BYTES / (MAX_NAME + 11);
    assert_eq!((longest.len(), widest.len(), most.len()), (per_page, per_page, MAX_DIR_PAGE));
    assert!(longest.iter().chain(widest).all(|e| e.name.len() == MAX_NAME));
    assert!(widest.iter().all(|e| e.name.chars().count() == MAX_NAME / 3));
    assert_eq!(full_mounts().0.len(), MAX_MOUNTS);
    assert!(OpenFlags::examples().contains(&OpenFlags::ALL) && Rights::examples().contains(&Rights::NONE));
}

#[test]
fn open_flags_and_rights_refuse_unknown_bits() {
    for bits in 0..=OpenFlags::ALL.bits() {
        assert_eq!(OpenFlags::from_bits(bits).map(OpenFlags::bits), Some(bits));
        assert_eq!(decode_data::<OpenFlags>(&bits.to_le_bytes()).map(OpenFlags::bits), Ok(bits));
    }
    assert_eq!(OpenFlags::ALL.bits(), 0x7f);
    for bits in [0x80, 0xff, 1 << 8, 1 << 32, 1 << 63, u64::MAX] {
        assert_eq!(OpenFlags::from_bits(bits), None, "{bits:#x}");
        assert_eq!(decode_data::<OpenFlags>(&bits.to_le_bytes()), Err(DecodeError::BadValue), "{bits:#x}");
    }
    for bits in 0..4 {
        assert_eq!(Rights::from_bits(bits).map(Rights::bits), Some(bits));
        assert_eq!(decode_data::<Rights>(&bits.to_le_bytes()).map(Rights::bits), Ok(bits));
    }
    assert_eq!(Rights::ALL, Rights::READ_WRITE);
    for bits in [4, 5, 7, 0x7f, 1 << 8, 1 << 63, u64::MAX] {
        assert_eq!(Rights::from_bits(bits), None, "{bits:#x}");
        assert_eq!(decode_data::<Rights>(&bits.to_le_bytes()), Err(DecodeError::BadValue), "{bits:#x}");
    }
    // A cut u64 is truncated, not a smaller set.
    assert_eq!(decode_data::<OpenFlags>(&[1, 0, 0]), Err(DecodeError::Truncated));
}

#[test]
fn kinds_and_whences_are_one_byte_tags() {
    for byte in 0..=u8::MAX {
        let kind = decode_data::<Kind>(&[byte]);
        let whence = decode_data::<Whence>(&[byte]);
        let expected_kind = match byte {
            1 => Ok(Kind::File),
            2 => Ok(Kind::Dir),
            _ => Err(DecodeError::BadValue),
        };
        let expected_whence = match byte {
            0 => Ok(Whence::Start),
            1 => Ok(Whence::Current),
            2 => Ok(Whence::End),
            _ => Err(DecodeError::BadValue),
        };
        assert_eq!((kind, whence), (expected_kind, expected_whence), "byte {byte}");
    }
    for kind in Kind::examples() {
        assert_eq!(encoded(&kind, 3).unwrap().data, [kind as u8 + 1]);
    }
    for whence in Whence::examples() {
        assert_eq!(encoded(&whence, 3).unwrap().data, [whence as u8]);
    }
    // Inside a Stat and a DirEntry, a bad tag or a bool other than 0 and 1 is refused too.
    let stat = encoded(&Stat { kind: Kind::Dir, size: 1, modified: 2, read_only: true }, 3).unwrap().data;
    assert_eq!(stat.len(), 1 + 8 + 8 + 1);
    for (at, value) in [(0, 0), (0, 3), (0, 0xff), (17, 2), (17, 0xff)] {
        let mut data = stat.clone();
        data[at] = value;
        assert_eq!(decode_data::<Stat>(&data), Err(DecodeError::BadValue), "byte {at} = {value}");
    }
    let dir_entry = encoded(&entry("x", Kind::File, 9), 3).unwrap().data;
    let mut bad = dir_entry.clone();
    bad[3] = 0;
    assert_eq!(decode_data::<DirEntry>(&bad), Err(DecodeError::BadValue));
    bad[3] = 2;
    assert_eq!(decode_data::<DirEntry>(&bad), Ok(entry("x", Kind::Dir, 9)));
    let mut not_utf8 = dir_entry;
    not_utf8[2] = 0xff;
    assert_eq!(decode_data::<DirEntry>(&not_utf8), Err(DecodeError::NotUtf8));
    let mut mount_data = encoded(&mount("/", "mem", false), 3).unwrap().data;
    *mount_data.last_mut().unwrap() = 2;
    assert_eq!(decode_data::<Mount>(&mount_data), Err(DecodeError::BadValue));
}

#[test]
fn list_counts_above_their_limits_are_refused_before_any_item() {
    // A count past the limit is refused even when the items are there and would fit a message.
    let small = entry("", Kind::File, 0);
    let most = DirEntries(vec![small.clone(); MAX_DIR_PAGE]);
    assert_eq!(decoded::<DirEntries>(&encoded(&most, 0).unwrap(), 0), Ok(most));
    let many = encoded(&DirEntries(vec![small; MAX_DIR_PAGE + 1]), 0).unwrap();
    assert!(many.data.len() < MAX_DATA);
    assert_eq!(decoded::<DirEntries>(&many, 0), Err(DecodeError::TooLong));
    let root = mount("/", "mem", false);
    let mounts = Mounts(vec![root.clone(); MAX_MOUNTS]);
    assert_eq!(decoded::<Mounts>(&encoded(&mounts, 0).unwrap(), 0), Ok(mounts));
    let too_many = encoded(&Mounts(vec![root; MAX_MOUNTS + 1]), 0).unwrap();
    assert_eq!(decoded::<Mounts>(&too_many, 0), Err(DecodeError::TooLong));
    // Bare counts: above the limit TooLong (nothing else read), at most the limit Truncated.
    for (count, expected) in [
        (MAX_DIR_PAGE + 1, DecodeError::TooLong),
        (usize::from(u16::MAX), DecodeError::TooLong),
        (MAX_DIR_PAGE, DecodeError::Truncated),
        (1, DecodeError::Truncated),
    ] {
        let bytes = (count as u16).to_le_bytes();
        assert_eq!(decode_data::<DirEntries>(&bytes), Err(expected), "{count} entries");
    }
    for (count, expected) in [
        (MAX_MOUNTS + 1, DecodeError::TooLong),
        (usize::from(u16::MAX), DecodeError::TooLong),
        (MAX_MOUNTS, DecodeError::Truncated),
    ] {
        let bytes = (count as u16).to_le_bytes();
        assert_eq!(decode_data::<Mounts>(&bytes), Err(expected), "{count} mounts");
    }
    assert_eq!(decode_data::<DirEntries>(&[0, 0]), Ok(DirEntries::default()));
    assert_eq!(decode_data::<Mounts>(&[0, 0]), Ok(Mounts::default()));
    // In a reply, the error names the field.
    let mut data = vec![0u8; MAX_DATA];
    let mut message = Message::new(&mut data);
    encode(&mut message, reply_label(label::readdir), |w| {
        w.u16(MAX_DIR_PAGE as u16 + 1);
        w.u64(0);
    })
    .unwrap();
    let listing = <Listing as Reply>::take(&mut Reader::new(message.frame()));
    assert_eq!(listing, Err(FieldError { field: Some("entries"), error: DecodeError::TooLong }));
    encode(&mut message, reply_label(label::mounts), |w| w.u16(MAX_MOUNTS as u16 + 1)).unwrap();
    let list = <MountList as Reply>::take(&mut Reader::new(message.frame()));
    assert_eq!(list, Err(FieldError { field: Some("mounts"), error: DecodeError::TooLong }));
}

#[test]
fn wire_bytes_is_what_an_entry_takes_in_the_data_area() {
    let mut examples = DirEntry::examples();
    examples.push(entry("", Kind::Dir, 0));
    examples.push(entry(&"é".repeat(127), Kind::File, 1));
    for entry in examples {
        assert_eq!(wire_size(&entry), entry.wire_bytes(), "{entry:?}");
    }
    assert_eq!(entry(&longest_name(0), Kind::File, 0).wire_bytes(), MAX_NAME + 11);
}

// A full readdir page: the budget of DIR_PAGE_BYTES leaves room for the rest of the reply.

// Honest even if no scalar went in the registers: the entries, the count and `next`.
const _: () = assert!(DIR_PAGE_BYTES + 2 + 8 <= MAX_DATA, "a full readdir page may not fit one reply");

/// The frame a server sends for `reply` to the operation labelled `op`.
fn reply_frame<R: Reply>(op: u64, reply: &R) -> OwnedFrame {
    let info = OPERATIONS.iter().find(|o| o.label == op).unwrap();
    let (_, frame) = vessel_protocol::testing::reply_frame(info, reply);
    assert_eq!(frame.words[0], info.reply_label(), "{}", String::from_utf8_lossy(&frame.data));
    frame
}

/// Reads back a reply frame made by [`reply_frame`].
fn read_back<R: Reply>(frame: &OwnedFrame) -> Result<R, FieldError> {
    let mut r = Reader::new(frame.frame());
    let reply = R::take(&mut r)?;
    vessel_protocol::wire::end(&r)?;
    Ok(reply)
}

#[test]
fn a_full_page_of_the_longest_names_fits_one_reply() {
    for page in [
        full_page(longest_name, Kind::File, u64::MAX),
        full_page(widest_name, Kind::Dir, u64::MAX),
        full_page(|i| format!("{i}"), Kind::File, u64::MAX),
        full_page(|_| String::new(), Kind::File, u64::MAX),
    ] {
        assert!(!page.0.is_empty() && page.0.len() <= MAX_DIR_PAGE);
        let listing = Listing { entries: page, next: u64::MAX };
        let frame = reply_frame(label::readdir, &listing);
        assert!(frame.data.len() <= MAX_DATA);
        assert_eq!(read_back::<Listing>(&frame), Ok(listing));
    }
    // Every name length, each page filled as far as `fits` allows, and pages whose last
    // entries are cut to use the budget to the byte.
    for len in 0..=MAX_NAME {
        let page = full_page(|i| format!("{:0len$}", i % 10), Kind::File, u64::MAX);
        let used: usize = page.0.iter().map(DirEntry::wire_bytes).sum();
        assert!(used <= DIR_PAGE_BYTES);
        assert!(page.0.len() == MAX_DIR_PAGE || used + len + 11 > DIR_PAGE_BYTES, "{len}: stopped early");
        let listing = Listing { entries: page, next: u64::MAX };
        assert_eq!(read_back::<Listing>(&reply_frame(label::readdir, &listing)), Ok(listing), "{len}");
    }
    let mut page = DirEntries::default();
    let mut used = 0;
    while used < DIR_PAGE_BYTES {
        let len = (DIR_PAGE_BYTES - used).saturating_sub(11).min(MAX_NAME);
        let next = entry(&"ü".repeat(len / 2), Kind::Dir, u64::MAX);
        if !page.fits(used, &next) {
            break;
        }
        used += next.wire_bytes();
        page.0.push(next);
    }
    assert_eq!(used, DIR_PAGE_BYTES);
    let listing = Listing { entries: page, next: u64::MAX };
    assert_eq!(read_back::<Listing>(&reply_frame(label::readdir, &listing)), Ok(listing));
    // One more longest entry than `fits` allows would not go: the budget is needed.
    let mut over = full_page(longest_name, Kind::File, u64::MAX);
    let extra = entry(&longest_name(99), Kind::File, 0);
    let used: usize = over.0.iter().map(DirEntry::wire_bytes).sum();
    assert!(!over.fits(used, &extra));
    over.0.push(extra.clone());
    over.0.push(extra);
    let (_, frame) = vessel_protocol::testing::reply_frame(&OPERATIONS[8], &Listing { entries: over, next: 0 });
    assert_ne!(frame.words[0], reply_label(label::readdir));
}

#[test]
fn fits_stops_at_max_dir_page() {
    let mut page = DirEntries::default();
    let tiny = entry("", Kind::File, 0);
    for _ in 0..MAX_DIR_PAGE {
        assert!(page.fits(0, &tiny));
        page.0.push(tiny.clone());
    }
    assert!(!page.fits(0, &tiny));
    let empty = DirEntries::default();
    let longest = entry(&longest_name(0), Kind::File, 0);
    assert!(empty.fits(DIR_PAGE_BYTES - longest.wire_bytes(), &longest));
    assert!(!empty.fits(DIR_PAGE_BYTES - longest.wire_bytes() + 1, &longest));
}

// A small server: one directory listed by pages, a file read and written MAX_IO bytes at a
// time, a mount table, and paths resolved with `path::resolve`.

/// The container the tests call from.
const CALLER: u64 = 5;

#[derive(Default)]
struct Tree {
    listing: Vec<DirEntry>,
    mounts: Mounts,
    written: Vec<u8>,
}

impl Tree {
    fn not_here<R: Reply>(cx: &mut Cx<'_, R>) -> Answer<R> {
        cx.refusal(Error::InvalidArgument, "not served by this test").into()
    }

    fn resolved<R: Reply>(cx: &mut Cx<'_, R>, dir: u64, path: &str) -> Result<Vec<String>, Refusal> {
        if dir != ROOT {
            return Err(cx.refusal(Error::InvalidHandle, format!("handle {dir:#x} is not open")));
        }
        resolve(&[], path).map_err(|e| cx.refusal(Error::InvalidArgument, format!("bad path: {e}")))
    }
}

impl Server for Tree {
    fn open(&mut self, cx: &mut Cx<'_, Opened>, dir: u64, path: &str, flags: OpenFlags) -> Answer<Opened> {
        if flags.rights().is_empty() {
            return cx.refusal(Error::InvalidArgument, "no rights asked").into();
        }
        match Tree::resolved(cx, dir, path) {
            Ok(parts) => {
                let kind = if flags.contains(OpenFlags::DIRECTORY) { Kind::Dir } else { Kind::File };
                let stat = Stat { kind, size: parts.len() as u64, modified: 0, read_only: false };
                Answer::Reply(Opened { handle: 1 << 32 | flags.rights().bits(), stat })
            }
            Err(refusal) => refusal.into(),
        }
    }

    fn close(&mut self, cx: &mut Cx<'_, Done>, _handle: u64) -> Answer<Done> {
        Tree::not_here(cx)
    }

    fn read(&mut self, _cx: &mut Cx<'_, Data>, handle: u64, max: u64) -> Answer<Data> {
        let n = usize::try_from(max).unwrap_or(usize::MAX).min(MAX_IO);
        Answer::Reply(Data { data: vec![handle as u8; n] })
    }

    fn write(&mut self, _cx: &mut Cx<'_, Written>, _handle: u64, data: &[u8]) -> Answer<Written> {
        self.written.extend_from_slice(data);
        Answer::Reply(Written { count: data.len() as u64 })
    }

    fn pread(&mut self, cx: &mut Cx<'_, Data>, handle: u64, _offset: u64, max: u64) -> Answer<Data> {
        self.read(cx, handle, max)
    }

    fn pwrite(&mut self, cx: &mut Cx<'_, Written>, handle: u64, _offset: u64, data: &[u8]) -> Answer<Written> {
        self.write(cx, handle, data)
    }

    fn seek(&mut self, cx: &mut Cx<'_, Position>, _handle: u64, whence: Whence, offset: i64) -> Answer<Position> {
        match (whence, u64::try_from(offset)) {
            (Whence::Start, Ok(offset)) => Answer::Reply(Position { offset }),
            _ => Tree::not_here(cx),
        }
    }

    fn stat(&mut self, cx: &mut Cx<'_, Status>, dir: u64, path: &str) -> Answer<Status> {
        match Tree::resolved(cx, dir, path) {
            Ok(parts) if parts.is_empty() => {
                Answer::Reply(Status { stat: Stat { kind: Kind::Dir, size: 0, modified: 0, read_only: false } })
            }
            Ok(parts) => cx.refusal(Error::NotFound, format!("{}: no such file or directory", join(&parts))).into(),
            Err(refusal) => refusal.into(),
        }
    }

    fn readdir(&mut self, cx: &mut Cx<'_, Listing>, dir: u64, start: u64) -> Answer<Listing> {
        if dir != ROOT {
            return cx.refusal(Error::InvalidHandle, format!("handle {dir:#x} is not open")).into();
        }
        let mut entries = DirEntries::default();
        let mut used = 0;
        for entry in self.listing.iter().skip(usize::try_from(start).unwrap_or(usize::MAX)) {
            if !entries.fits(used, entry) {
                break;
            }
            used += entry.wire_bytes();
            entries.0.push(entry.clone());
        }
        let next = start.saturating_add(entries.0.len() as u64);
        Answer::Reply(Listing { entries, next })
    }

    fn mkdir(&mut self, cx: &mut Cx<'_, Done>, _dir: u64, _path: &str) -> Answer<Done> {
        Tree::not_here(cx)
    }

    fn remove(&mut self, cx: &mut Cx<'_, Done>, _dir: u64, _path: &str) -> Answer<Done> {
        Tree::not_here(cx)
    }

    fn rename(&mut self, cx: &mut Cx<'_, Done>, _dir: u64, _from: &str, _to: &str) -> Answer<Done> {
        Tree::not_here(cx)
    }

    fn truncate(&mut self, cx: &mut Cx<'_, Done>, _handle: u64, _len: u64) -> Answer<Done> {
        Tree::not_here(cx)
    }

    fn sync(&mut self, _cx: &mut Cx<'_, Done>, _handle: u64) -> Answer<Done> {
        Answer::Reply(Done)
    }

    fn duplicate(&mut self, _cx: &mut Cx<'_, Opened>, handle: u64, rights: Rights) -> Answer<Opened> {
        let stat = Stat { kind: Kind::File, size: 0, modified: 0, read_only: false };
        Answer::Reply(Opened { handle: handle.wrapping_add(rights.bits()), stat })
    }

    fn mount(&mut self, cx: &mut Cx<'_, Done>, _container: u64, path: &str, source: &str) -> Answer<Done> {
        if self.mounts.0.len() >= MAX_MOUNTS {
            return cx.refusal(Error::QuotaExceeded, format!("{MAX_MOUNTS} mounts already")).into();
        }
        match Tree::resolved(cx, ROOT, path) {
            Ok(parts) => {
                self.mounts.0.push(mount(&join(&parts), source, source == "boot"));
                Answer::Reply(Done)
            }
            Err(refusal) => refusal.into(),
        }
    }

    fn unmount(&mut self, cx: &mut Cx<'_, Done>, _container: u64, _path: &str) -> Answer<Done> {
        Tree::not_here(cx)
    }

    fn mounts(&mut self, _cx: &mut Cx<'_, MountList>, _container: u64) -> Answer<MountList> {
        Answer::Reply(MountList { mounts: self.mounts.clone() })
    }

    fn create_vsf(&mut self, cx: &mut Cx<'_, Done>, _dir: u64, _path: &str, _bytes: u64) -> Answer<Done> {
        Tree::not_here(cx)
    }

    fn share(&mut self, cx: &mut Cx<'_, Shared>, _bytes: u64) -> Answer<Shared> {
        Tree::not_here(cx)
    }

    fn read_shared(
        &mut self,
        cx: &mut Cx<'_, Written>,
        _handle: u64,
        _offset: u64,
        _len: u64,
        _at: u64,
    ) -> Answer<Written> {
        Tree::not_here(cx)
    }

    fn write_shared(
        &mut self,
        cx: &mut Cx<'_, Written>,
        _handle: u64,
        _offset: u64,
        _len: u64,
        _at: u64,
    ) -> Answer<Written> {
        Tree::not_here(cx)
    }

    fn read_window(&mut self, cx: &mut Cx<'_, Written>, _handle: u64, _offset: u64, _len: u64) -> Answer<Written> {
        Tree::not_here(cx)
    }

    fn open_in(&mut self, cx: &mut Cx<'_, Opened>, _container: u64, _path: &str, _flags: OpenFlags) -> Answer<Opened> {
        Tree::not_here(cx)
    }

    fn pipe(&mut self, cx: &mut Cx<'_, Piped>) -> Answer<Piped> {
        Tree::not_here(cx)
    }
}

fn tree(listing: Vec<DirEntry>) -> Loopback<Tree> {
    let loopback = Loopback::new(Tree { listing, ..Tree::default() }, dispatch::<Tree>);
    loopback.set_caller(Caller { container: CALLER, pid: 1, badge: 0 });
    loopback
}

fn refusal(error: Error, why: &str) -> Refusal {
    Refusal::in_container(NAME, CALLER, error, why)
}

#[test]
fn every_operation_round_trips() {
    assert_eq!(protocol_checks::round_trip_every_operation(), Ok(25 * vessel_protocol::testing::ROUNDS));
}

#[test]
fn a_large_directory_is_listed_in_full_pages() {
    // Longest names, widest names, short names and empty-ish ones, mixed.
    let listing: Vec<DirEntry> = (0..700)
        .map(|i| match i % 4 {
            0 => entry(&longest_name(i), Kind::File, u64::MAX),
            1 => entry(&widest_name(i), Kind::Dir, 0),
            2 => entry(&format!("f{i}"), Kind::File, i as u64),
            _ => entry(&"ü".repeat(i % 128), Kind::File, 1),
        })
        .collect();
    let lo = tree(listing.clone());
    let vfs = Client::new(&lo);
    let mut seen = Vec::new();
    let mut start = 0;
    let mut pages = 0;
    loop {
        let page = vfs.readdir(ROOT, start).unwrap();
        assert_eq!(page.next, start + page.entries.0.len() as u64);
        if page.entries.0.is_empty() {
            break;
        }
        let used: usize = page.entries.0.iter().map(DirEntry::wire_bytes).sum();
        assert!(used <= DIR_PAGE_BYTES && page.entries.0.len() <= MAX_DIR_PAGE);
        seen.extend(page.entries.0);
        start = page.next;
        pages += 1;
    }
    assert_eq!(seen, listing);
    let total: usize = listing.iter().map(DirEntry::wire_bytes).sum();
    assert!(pages >= total.div_ceil(DIR_PAGE_BYTES) && pages <= 2 * total.div_ceil(DIR_PAGE_BYTES), "{pages}");
    // Pages of only the longest names, and of MAX_DIR_PAGE short ones.
    let lo = tree((0..40).map(|i| entry(&widest_name(i), Kind::File, u64::MAX)).collect());
    let per_page = DIR_PAGE_BYTES / (MAX_NAME + 11);
    assert_eq!(Client::new(&lo).readdir(ROOT, 0).unwrap().entries.0.len(), per_page);
    let lo = tree((0..1000).map(|i| entry(&format!("{i}"), Kind::File, 0)).collect());
    let vfs = Client::new(&lo);
    let first = vfs.readdir(ROOT, 0).unwrap();
    assert_eq!((first.entries.0.len(), first.next), (MAX_DIR_PAGE, MAX_DIR_PAGE as u64));
    assert_eq!(vfs.readdir(ROOT, 999).unwrap().entries.0, [entry("999", Kind::File, 0)]);
    assert_eq!(vfs.readdir(ROOT, u64::MAX), Ok(Listing { entries: DirEntries::default(), next: u64::MAX }));
    assert_eq!(vfs.readdir(7, 0), Err(refusal(Error::InvalidHandle, "handle 0x7 is not open")));
}

#[test]
fn max_io_bytes_go_each_way_in_one_message() {
    let lo = tree(vec![]);
    let vfs = Client::new(&lo);
    assert_eq!(vfs.read(0xa5, u64::MAX).unwrap().data, vec![0xa5; MAX_IO]);
    assert_eq!(vfs.pread(0x5a, u64::MAX, MAX_IO as u64).unwrap().data, vec![0x5a; MAX_IO]);
    assert_eq!(vfs.read(1, 0).unwrap().data, b"");
    let data: Vec<u8> = (0..MAX_IO).map(|i| (i * 7) as u8).collect();
    assert_eq!(vfs.write(1, &data), Ok(Written { count: MAX_IO as u64 }));
    assert_eq!(vfs.pwrite(1, u64::MAX, &data), Ok(Written { count: MAX_IO as u64 }));
    assert_eq!(lo.server().written, [&data[..], &data[..]].concat());
    // A request larger than a message is refused by the client before it is sent.
    let huge = vfs.write(1, &vec![0; MAX_DATA + 1]).unwrap_err();
    assert_eq!(huge.error, Error::TooLarge);
    assert_eq!(lo.server().written.len(), 2 * MAX_IO);
}

#[test]
fn a_full_mount_table_comes_back_whole() {
    let lo = tree(vec![]);
    let vfs = Client::new(&lo);
    assert_eq!(vfs.mounts(0), Ok(MountList { mounts: Mounts::default() }));
    assert_eq!(vfs.mount(0, "/", "mem"), Ok(Done));
    assert_eq!(vfs.mount(0, "boot/./x/..", "boot"), Ok(Done));
    let bad = vfs.mount(0, "/a\0b", "mem").unwrap_err();
    assert_eq!(bad, refusal(Error::InvalidArgument, "bad path: path holds a NUL byte"));
    let expected = vec![mount("/", "mem", false), mount("/boot", "boot", true)];
    assert_eq!(vfs.mounts(0).unwrap().mounts.0, expected);
    lo.server().mounts = full_mounts();
    assert_eq!(vfs.mounts(0).unwrap().mounts, full_mounts());
    assert_eq!(vfs.mount(0, "/more", "mem").unwrap_err().error, Error::QuotaExceeded);
}

#[test]
fn path_errors_reach_the_caller_with_the_reason() {
    let lo = tree(vec![]);
    let vfs = Client::new(&lo);
    let name = "n".repeat(MAX_NAME + 1);
    let why = format!("bad path: a name longer than {MAX_NAME} bytes");
    assert_eq!(vfs.open(ROOT, &name, OpenFlags::READ), Err(refusal(Error::InvalidArgument, &why)));
    let long = "a/".repeat(MAX_PATH / 2 + 1);
    let reason = vfs.stat(ROOT, &long).unwrap_err().reason;
    assert!(reason.ends_with(": bad path: path longer than 1024 bytes"), "{reason}");
    let deep = "d/".repeat(MAX_DEPTH + 1);
    let reason = vfs.stat(ROOT, &deep).unwrap_err().reason;
    assert!(reason.ends_with(": bad path: path deeper than 64 directories"), "{reason}");
    assert_eq!(vfs.stat(ROOT, "/../.././"), Ok(Status { stat: Stat { kind: Kind::Dir, ..Stat::examples()[0] } }));
    let missing = refusal(Error::NotFound, "/ü/漢字: no such file or directory");
    assert_eq!(vfs.stat(ROOT, "../ü//./漢字/"), Err(missing));
    let opened = vfs.open(ROOT, "a/b/c", OpenFlags::ALL).unwrap();
    assert_eq!((opened.handle, opened.stat.size, opened.stat.kind), (1 << 32 | 3, 3, Kind::Dir));
    assert_eq!(vfs.open(ROOT, "a", OpenFlags::CREATE).unwrap_err(), refusal(Error::InvalidArgument, "no rights asked"));
}

#[test]
fn the_wire_layout_is_the_documented_one() {
    let recorder = Recorder::default();
    let vfs = Client::new(&recorder);
    let _ = vfs.open(ROOT, "/a/b", OpenFlags::READ | OpenFlags::DIRECTORY);
    let _ = vfs.seek(5, Whence::End, -1);
    let _ = vfs.readdir(3, 17);
    let _ = vfs.duplicate(9, Rights::WRITE);
    let _ = vfs.rename(ROOT, "x", "yz");
    let frames = recorder.take();
    // open: dir (word 1), the path's length then the flags (word 2 on), the path in the data.
    assert_eq!(frames[0].words, [label::open, 0, 4 | 0x41 << 16, 0]);
    assert_eq!(frames[0].data, b"/a/b");
    // seek: register-only, whence in byte 8, offset from byte 9.
    assert_eq!(frames[1].words, [label::seek, 5, 2 | u64::MAX << 8, 0xff]);
    assert!(frames[1].data.is_empty());
    assert_eq!(frames[2].words, [label::readdir, 3, 17, 0]);
    assert_eq!(frames[3].words, [label::duplicate, 9, 2, 0]);
    // rename: both lengths in the registers, both names in the data, in order.
    assert_eq!(frames[4].words, [label::rename, 0, 1 | 2 << 16, 0]);
    assert_eq!(frames[4].data, b"xyz");
    // An Opened reply: the handle, then the Stat (its last byte goes in the registers too).
    let stat = Stat { kind: Kind::Dir, size: 7, modified: 9, read_only: true };
    let frame = reply_frame(label::open, &Opened { handle: 1 << 32 | 5, stat });
    assert_eq!(frame.words, [reply_label(label::open), 1 << 32 | 5, 2 | 7 << 8, 1 << 8]);
    assert_eq!(frame.data, 9u64.to_le_bytes());
}

#[test]
fn malformed_requests_are_refused_with_the_field() {
    let lo = tree(vec![]);
    let expect = |words: [u64; 4], data: &[u8], reason: &str| {
        let reply = lo.raw(words, data, &[]).unwrap();
        assert_eq!(reply.words[0], REFUSED, "{reason}");
        assert_eq!(Refusal::read(reply.frame()), Refusal::new(Error::InvalidArgument, reason));
    };
    expect([label::open, 0, 1 | 0x80 << 16, 0], b"a", "vfs.open: field `flags`: bad value");
    expect([label::open, 0, 1 | 1 << 16, 1 << 15], b"a", "vfs.open: field `flags`: bad value");
    expect(
        [label::open, 0, 9 | 1 << 16, 0],
        b"a",
        "vfs.open: field `path`: bad length: the data ends inside the field",
    );
    expect([label::open, 0, 2 | 1 << 16, 0], b"\xff\xfe", "vfs.open: field `path`: bad value: not UTF-8");
    expect([label::seek, 1, 3, 0], b"", "vfs.seek: field `whence`: bad value");
    expect([label::seek, 1, 0xff, 0], b"", "vfs.seek: field `whence`: bad value");
    expect([label::duplicate, 1, 4, 0], b"", "vfs.duplicate: field `rights`: bad value");
    expect([label::duplicate, 1, u64::MAX, 0], b"", "vfs.duplicate: field `rights`: bad value");
    expect([label::readdir, 0, 0, 0], b"x", "vfs.readdir: bad length: 1 bytes of data left over");
    expect([26, 0, 0, 0], b"", "vfs: unknown label 26");
    expect([0, 0, 0, 0], b"", "vfs: unknown label 0");
    // The good forms of the same requests reach the server.
    let reply = lo.raw([label::seek, 1, 8 << 8, 0], b"", &[]).unwrap();
    assert_eq!(reply.words[..2], [reply_label(label::seek), 8]);
    let reply = lo.raw([label::duplicate, 1, 3, 0], b"", &[]).unwrap();
    assert_eq!(reply.words[..2], [reply_label(label::duplicate), 4]);
    // Handles that came along are deleted.
    let _ = lo.raw([label::sync, 0, 0, 0], b"", &[40, 41]).unwrap();
    assert_eq!(lo.mailbox().dropped(), [40, 41]);
}

#[test]
fn hostile_messages_never_panic() {
    let report = protocol_checks::fuzz_every_operation(0x9e37_79b9_7f4a_7c15, 60_000).unwrap();
    assert!(report.accepted > 0 && report.refused > 0 && report.deferred > 0, "{report:?}");
    // And through the test server, with valid requests of every operation as seeds.
    let recorder = Recorder::default();
    let vfs = Client::new(&recorder);
    let _ = vfs.open(ROOT, "a/b", OpenFlags::READ | OpenFlags::CREATE);
    let _ = vfs.close(1);
    let _ = vfs.read(1, 10);
    let _ = vfs.write(1, b"data");
    let _ = vfs.pread(1, 2, 3);
    let _ = vfs.pwrite(1, 2, "ü".as_bytes());
    let _ = vfs.seek(1, Whence::Current, -5);
    let _ = vfs.stat(ROOT, "");
    let _ = vfs.readdir(ROOT, 0);
    let _ = vfs.mkdir(ROOT, "d");
    let _ = vfs.remove(ROOT, "d");
    let _ = vfs.rename(ROOT, "a", "b");
    let _ = vfs.truncate(1, 0);
    let _ = vfs.sync(0);
    let _ = vfs.duplicate(1, Rights::READ);
    let _ = vfs.mount(0, "/data", "mem");
    let _ = vfs.unmount(0, "/data");
    let _ = vfs.mounts(0);
    let _ = vfs.create_vsf(ROOT, "c.vsf", 1 << 20);
    let _ = vfs.share(4096);
    let _ = vfs.read_shared(1, POSITION, 10, 0);
    let _ = vfs.write_shared(1, 0, 10, 4);
    let _ = vfs.open_in(7, "/bin/true", OpenFlags::READ);
    let _ = vfs.pipe();
    let _ = vfs.read_window(1, POSITION, 10);
    let seeds = recorder.take();
    assert_eq!(seeds.len(), OPERATIONS.len());
    let listing: Vec<DirEntry> = (0..50).map(|i| entry(&longest_name(i), Kind::File, 0)).collect();
    let mut server = Tree { listing, ..Tree::default() };
    let report = fuzz_requests(OPERATIONS, &seeds, 7, 60_000, |caller, keeper, message| {
        server.written.clear();
        if server.mounts.0.len() >= MAX_MOUNTS {
            server.mounts = Mounts::default();
        }
        dispatch(&mut server, caller, keeper, message)
    })
    .unwrap();
    assert!(report.accepted > 0 && report.refused > 0 && report.deferred == 0, "{report:?}");
}

#[test]
fn every_operation_and_field_is_documented() {
    assert_eq!(undocumented(OPERATIONS, Some(include_str!("../../../docs/vfs.md"))), Vec::<String>::new());
    let labels: Vec<(u64, &str)> = OPERATIONS.iter().map(|op| (op.label, op.name)).collect();
    let expected = [
        "open",
        "close",
        "read",
        "write",
        "pread",
        "pwrite",
        "seek",
        "stat",
        "readdir",
        "mkdir",
        "remove",
        "rename",
        "truncate",
        "sync",
        "duplicate",
        "mount",
        "unmount",
        "mounts",
        "create_vsf",
        "share",
        "read_shared",
        "write_shared",
        "open_in",
        "pipe",
        "read_window",
    ];
    assert_eq!(labels, expected.iter().enumerate().map(|(i, &n)| (i as u64 + 1, n)).collect::<Vec<_>>());
    assert_eq!(NAME, "vfs");
}

// Paths under a root.

fn parts(names: &[&str]) -> Vec<String> {
    names.iter().map(|&n| String::from(n)).collect()
}

#[test]
fn dot_dot_never_climbs_above_the_base() {
    let base = parts(&["a", "b"]);
    assert_eq!(resolve(&base, "../../../x"), Ok(parts(&["a", "b", "x"])));
    assert_eq!(resolve(&base, ".."), Ok(base.clone()));
    assert_eq!(resolve(&base, "x/y/../../.."), Ok(base.clone()));
    assert_eq!(resolve(&base, "x/../../y"), Ok(parts(&["a", "b", "y"])));
    assert_eq!(resolve(&base, "x/y/.."), Ok(parts(&["a", "b", "x"])));
    assert_eq!(resolve(&[], "../.."), Ok(vec![]));
    // A chain of `../` as long as a path may be, and one longer.
    let climb = "../".repeat(MAX_PATH / 3);
    assert!(climb.len() <= MAX_PATH);
    assert_eq!(resolve(&base, &climb), Ok(base.clone()));
    assert_eq!(resolve(&base, &format!("{climb}z")), Ok(parts(&["a", "b", "z"])));
    assert_eq!(resolve(&base, &"../".repeat(10_000)), Err(PathError::TooLong));
    // A `..` named by a longer component is a name, not a climb.
    assert_eq!(resolve(&base, "..."), Ok(parts(&["a", "b", "..."])));
    assert_eq!(resolve(&base, ".. "), Ok(parts(&["a", "b", ".. "])));
}

#[test]
fn leading_slash_dot_and_empty_components_mean_the_base() {
    let base = parts(&["a", "b"]);
    for path in ["", "/", ".", "./", "/.", "//", "/././/", "/.."] {
        assert_eq!(resolve(&base, path), Ok(base.clone()), "{path:?}");
    }
    assert_eq!(resolve(&base, "/x"), Ok(parts(&["a", "b", "x"])));
    assert_eq!(resolve(&base, "//x//y/"), Ok(parts(&["a", "b", "x", "y"])));
    assert_eq!(resolve(&base, "./x/./y/."), Ok(parts(&["a", "b", "x", "y"])));
    assert_eq!(resolve(&base, "a/../b"), Ok(parts(&["a", "b", "b"])));
    assert_eq!(resolve(&[], "a/../b"), Ok(parts(&["b"])));
    assert_eq!(resolve(&[], "/a/b/c/../../d"), Ok(parts(&["a", "d"])));
}

#[test]
fn limits_and_nul_are_refused() {
    // Length: MAX_PATH bytes go, one more does not (in bytes, not characters).
    let exact = format!("{}{}", "x/".repeat(MAX_PATH / 2 - 1), "yz");
    assert_eq!(exact.len(), MAX_PATH);
    assert!(resolve(&[], &exact).is_err_and(|e| e == PathError::TooDeep));
    let name = |c: &str| c.repeat(MAX_NAME);
    let shallow = format!("/{}/{}/{}/{}", name("a"), name("b"), name("c"), name("d"));
    assert_eq!(shallow.len(), MAX_PATH);
    assert_eq!(resolve(&[], &shallow).map(|p| p.len()), Ok(4));
    assert_eq!(resolve(&[], &format!("{shallow}/")), Err(PathError::TooLong));
    assert_eq!(resolve(&[], &"é".repeat(MAX_PATH / 2 + 1)), Err(PathError::TooLong));
    // Names: MAX_NAME bytes go, one more does not; 3-byte characters count as 3.
    assert_eq!(resolve(&[], &longest_name(0)), Ok(vec![longest_name(0)]));
    assert_eq!(resolve(&[], &"n".repeat(MAX_NAME + 1)), Err(PathError::NameTooLong));
    assert_eq!(resolve(&[], &widest_name(1)), Ok(vec![widest_name(1)]));
    assert_eq!(resolve(&[], &format!("ok/{}ü", widest_name(1))), Err(PathError::NameTooLong));
    assert_eq!(resolve(&[], &"漢".repeat(MAX_NAME / 3 + 1)), Err(PathError::NameTooLong));
    // Depth: MAX_DEPTH components in all, the base's included.
    let deepest = "d/".repeat(MAX_DEPTH);
    assert_eq!(resolve(&[], &deepest).map(|p| p.len()), Ok(MAX_DEPTH));
    assert_eq!(resolve(&[], &format!("{deepest}e")), Err(PathError::TooDeep));
    assert_eq!(resolve(&[], &format!("{deepest}../e")).map(|p| p.len()), Ok(MAX_DEPTH));
    let base = parts(&["a", "b"]);
    assert_eq!(resolve(&base, &"d/".repeat(MAX_DEPTH - 2)).map(|p| p.len()), Ok(MAX_DEPTH));
    assert_eq!(resolve(&base, &"d/".repeat(MAX_DEPTH - 1)), Err(PathError::TooDeep));
    let full_base: Vec<String> = (0..MAX_DEPTH).map(|i| i.to_string()).collect();
    assert_eq!(resolve(&full_base, "/.."), Ok(full_base.clone()));
    assert_eq!(resolve(&full_base, "x"), Err(PathError::TooDeep));
    // NUL, wherever it is, even in a component that would be skipped.
    for path in ["\0", "a\0", "a/\0/b", "./\0", "../\0"] {
        assert_eq!(resolve(&base, path), Err(PathError::Nul), "{path:?}");
    }
    assert_eq!(PathError::Nul.to_string(), "path holds a NUL byte");
    assert_eq!(PathError::TooLong.to_string(), "path longer than 1024 bytes");
    assert_eq!(PathError::NameTooLong.to_string(), "a name longer than 255 bytes");
    assert_eq!(PathError::TooDeep.to_string(), "path deeper than 64 directories");
}

#[test]
fn non_ascii_names_are_kept_as_they_are() {
    let base = parts(&["ü"]);
    assert_eq!(resolve(&base, "漢字/ünïcödé ✓/..//x y"), Ok(parts(&["ü", "漢字", "x y"])));
    assert_eq!(resolve(&[], "Ω/\u{301}/ .txt"), Ok(parts(&["Ω", "\u{301}", " .txt"])));
    assert_eq!(join(&parts(&["ü", "漢字"])), "/ü/漢字");
}

#[test]
fn join_and_starts_with() {
    assert_eq!(join(&[]), "/");
    assert_eq!(join(&parts(&["a"])), "/a");
    assert_eq!(join(&parts(&["a", "b", "c"])), "/a/b/c");
    // A joined path resolves back to its parts.
    for names in [&["a"][..], &["a", "b c", "ü"], &[], &["...", ".x"]] {
        let p = parts(names);
        assert_eq!(resolve(&[], &join(&p)), Ok(p.clone()), "{names:?}");
    }
    let ab = parts(&["a", "b"]);
    assert!(starts_with(&ab, &[]));
    assert!(starts_with(&ab, &parts(&["a"])));
    assert!(starts_with(&ab, &ab));
    assert!(!starts_with(&ab, &parts(&["a", "b", "c"])));
    assert!(!starts_with(&ab, &parts(&["b"])));
    // By components, not by text.
    assert!(!starts_with(&parts(&["a", "bc"]), &ab));
    assert!(!starts_with(&parts(&["ab"]), &parts(&["a"])));
    assert!(starts_with(&[], &[]));
    assert!(!starts_with(&[], &parts(&["a"])));
}

/// `names` as a resolved [`Path`], built from the root.
fn path_of(names: &[&str]) -> Path {
    Path::root().resolve(&names.join("/")).unwrap()
}

/// The resolution rules written out over a list of components, step by step: the model
/// [`Path::resolve`] (and so [`resolve`]) is checked against.
fn model_resolve(base: &[String], path: &str) -> Result<Vec<String>, PathError> {
    if path.len() > MAX_PATH {
        return Err(PathError::TooLong);
    }
    if path.contains('\0') {
        return Err(PathError::Nul);
    }
    let mut parts: Vec<String> = base.to_vec();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.len() > base.len() {
                    parts.pop();
                }
            }
            name if name.len() > MAX_NAME => return Err(PathError::NameTooLong),
            name => {
                if parts.len() >= MAX_DEPTH {
                    return Err(PathError::TooDeep);
                }
                parts.push(String::from(name));
            }
        }
    }
    Ok(parts)
}

#[test]
fn a_path_resolves_as_the_components_do() {
    // Every combination of a few bases and pieces, and the error cases: `Path::resolve` (and
    // `resolve`, built on it) gives the same entry (or the same error) as the model, spelled as
    // `join` spells it.
    let bases: Vec<Vec<String>> = vec![
        vec![],
        parts(&["a"]),
        parts(&["a", "b"]),
        parts(&["ü", "漢字"]),
        (0..MAX_DEPTH).map(|i| i.to_string()).collect(),
        (0..MAX_DEPTH - 1).map(|i| i.to_string()).collect(),
    ];
    let pieces = ["", "/", ".", "..", "x", "ab", "...", ".. ", "x y", "\0", "é", "/..", "//"];
    let mut paths: Vec<String> = Vec::new();
    for a in pieces {
        for b in pieces {
            for c in pieces {
                paths.push(format!("{a}/{b}/{c}"));
                paths.push(format!("{a}{b}/{c}"));
            }
        }
    }
    paths.extend([
        "../".repeat(MAX_PATH / 3),
        "../".repeat(10_000),
        "d/".repeat(MAX_DEPTH),
        format!("{}e", "d/".repeat(MAX_DEPTH)),
        format!("{}../e", "d/".repeat(MAX_DEPTH)),
        "n".repeat(MAX_NAME),
        "n".repeat(MAX_NAME + 1),
        format!("x/{}/..", "n".repeat(MAX_NAME + 1)),
        "x/".repeat(MAX_PATH / 2),
        format!("{}/", "x/".repeat(MAX_PATH / 2)),
        // A NUL after what would be refused for another reason: NUL is what is said.
        format!("{}/\0", "n".repeat(MAX_NAME + 1)),
        format!("{}e/x\0", "d/".repeat(MAX_DEPTH)),
    ]);
    let mut compared = 0;
    for base in &bases {
        let base_path = Path::root().resolve(&join(base)).unwrap();
        assert_eq!(base_path.depth(), base.len());
        for path in &paths {
            let want = model_resolve(base, path);
            assert_eq!(resolve(base, path), want, "{base:?} {path:?}");
            let got = base_path.resolve(path);
            let spelled = want.as_ref().map(|p| join(p)).map_err(|e| *e);
            assert_eq!(got.as_ref().map(|p| String::from(p.as_str())).map_err(|e| *e), spelled, "{base:?} {path:?}");
            if let Ok(got) = got {
                assert_eq!(got.depth(), want.as_ref().unwrap().len());
                assert!(got.starts_with(&base_path), "{base:?} {path:?}: left the base");
            }
            compared += 1;
        }
    }
    assert!(compared > 10_000);
}

#[test]
fn a_path_keeps_to_the_rules_of_resolve() {
    let base = path_of(&["a", "b"]);
    assert_eq!(base.as_str(), "/a/b");
    // `..` stays at the base; `.`, empty components and a leading `/` mean the base.
    for path in ["", "/", ".", "./", "/.", "//", "/././/", "/..", "..", "../..", "x/y/../../.."] {
        assert_eq!(base.resolve(path), Ok(base.clone()), "{path:?}");
    }
    assert_eq!(base.resolve("../../../x").unwrap().as_str(), "/a/b/x");
    assert_eq!(base.resolve("x/../../y").unwrap().as_str(), "/a/b/y");
    assert_eq!(base.resolve("//x//y/").unwrap().as_str(), "/a/b/x/y");
    assert_eq!(base.resolve("...").unwrap().as_str(), "/a/b/...");
    assert_eq!(Path::root().resolve("/a/b/c/../../d").unwrap().as_str(), "/a/d");
    assert_eq!(Path::root().resolve("../.."), Ok(Path::root()));
    // The limits and NUL, with the same errors.
    assert_eq!(base.resolve(&"../".repeat(10_000)), Err(PathError::TooLong));
    assert_eq!(Path::root().resolve(&"n".repeat(MAX_NAME + 1)), Err(PathError::NameTooLong));
    assert_eq!(Path::root().resolve(&"n".repeat(MAX_NAME)).map(|p| p.depth()), Ok(1));
    assert_eq!(Path::root().resolve(&"d/".repeat(MAX_DEPTH)).map(|p| p.depth()), Ok(MAX_DEPTH));
    assert_eq!(Path::root().resolve(&format!("{}e", "d/".repeat(MAX_DEPTH))), Err(PathError::TooDeep));
    assert_eq!(base.resolve(&"d/".repeat(MAX_DEPTH - 1)), Err(PathError::TooDeep));
    for path in ["\0", "a\0", "a/\0/b", "./\0", "../\0"] {
        assert_eq!(base.resolve(path), Err(PathError::Nul), "{path:?}");
    }
    // A name that is too long is refused even if a later `..` would drop it.
    assert_eq!(base.resolve(&format!("{}/..", "n".repeat(MAX_NAME + 1))), Err(PathError::NameTooLong));
}

#[test]
fn the_root_is_slash() {
    let root = Path::root();
    assert!(root.is_root() && root == Path::default());
    assert_eq!(
        (root.as_str(), root.to_string(), format!("{root:?}")),
        ("/", String::from("/"), String::from("Path(\"/\")"))
    );
    assert_eq!(root.depth(), 0);
    let top = root.resolve("top").unwrap();
    assert!(!top.is_root());
    assert_eq!((top.as_str(), top.depth()), ("/top", 1));
    // Every path starts with the root, whose part after it is the whole path.
    let ab = path_of(&["a", "b"]);
    assert!(ab.starts_with(&root) && root.starts_with(&root) && !root.starts_with(&ab));
    assert_eq!(ab.cut(&root).map(|cut| ab.after(cut)), Some("/a/b"));
    assert_eq!(root.cut(&root).map(|cut| root.after(cut)), Some("/"));
    assert_eq!(Path::from_absolute(String::from("/")), root);
    assert_eq!(Path::from_absolute(String::new()), root);
}

#[test]
fn a_prefix_is_whole_components() {
    let a = path_of(&["a"]);
    let ab = path_of(&["a", "b"]);
    assert!(ab.starts_with(&a) && ab.starts_with(&ab) && a.starts_with(&a));
    assert!(!a.starts_with(&ab));
    // By components, not by text.
    assert!(!path_of(&["ab"]).starts_with(&a));
    assert!(!path_of(&["a", "bc"]).starts_with(&ab));
    assert!(!path_of(&["a b"]).starts_with(&a));
    // What lies below a prefix, as an absolute path.
    let deep = path_of(&["a", "b", "c", "d"]);
    assert_eq!(deep.cut(&ab).map(|cut| deep.after(cut)), Some("/c/d"));
    assert_eq!(ab.cut(&ab).map(|cut| ab.after(cut)), Some("/"));
    assert_eq!(path_of(&["a", "bc"]).cut(&ab), None);
    // Moving a prefix moves what is below it, and nothing else.
    let x = path_of(&["x"]);
    assert_eq!(deep.rebase(&ab, &x), Some(path_of(&["x", "c", "d"])));
    assert_eq!(ab.rebase(&ab, &x), Some(x.clone()));
    assert_eq!(deep.rebase(&ab, &Path::root()), Some(path_of(&["c", "d"])));
    assert_eq!(deep.rebase(&Path::root(), &x), Some(path_of(&["x", "a", "b", "c", "d"])));
    assert_eq!(path_of(&["a", "bc"]).rebase(&ab, &x), None);
    assert_eq!(a.rebase(&ab, &x), None);
    // The same rule over the absolute text a file system is given.
    assert!(is_within("/a/b", "/a") && is_within("/a", "/a") && is_within("/a", "/") && is_within("/", "/"));
    assert!(!is_within("/ab", "/a") && !is_within("/a", "/a/b") && !is_within("/", "/a"));
}

#[test]
fn a_path_comes_apart_without_copies() {
    let path = path_of(&["ü", "漢字", "x y"]);
    assert_eq!(path.as_str(), "/ü/漢字/x y");
    assert_eq!(path.depth(), 3);
    assert_eq!(components(path.as_str()).collect::<Vec<_>>(), ["ü", "漢字", "x y"]);
    assert_eq!(components("/").count(), 0);
    assert_eq!(split_last("/ü/漢字"), Some(("/ü", "漢字")));
    assert_eq!(split_last("/a"), Some(("/", "a")));
    assert_eq!(split_last("/"), None);
    // A file system's spelling is taken over as it is, empty components dropped.
    assert_eq!(Path::from_absolute(String::from("/A/Bc")), path_of(&["A", "Bc"]));
    assert_eq!(Path::from_absolute(String::from("//A//Bc/")), path_of(&["A", "Bc"]));
    assert_eq!(Path::from_absolute(String::from("A/Bc")), path_of(&["A", "Bc"]));
}

// Open flags and rights.

#[test]
fn open_flags_give_only_read_and_write_rights() {
    for bits in 0..=OpenFlags::ALL.bits() {
        let flags = OpenFlags::from_bits(bits).unwrap();
        let rights = flags.rights();
        assert_eq!(rights.bits(), bits & 3, "{flags:?}");
        assert_eq!(rights.contains(Rights::READ), flags.contains(OpenFlags::READ), "{flags:?}");
        assert_eq!(rights.contains(Rights::WRITE), flags.contains(OpenFlags::WRITE), "{flags:?}");
        assert!(Rights::ALL.contains(rights));
    }
    let other = OpenFlags::CREATE | OpenFlags::EXCLUSIVE | OpenFlags::TRUNCATE | OpenFlags::APPEND;
    assert_eq!((other | OpenFlags::DIRECTORY).rights(), Rights::NONE);
    assert_eq!(OpenFlags::ALL.rights(), Rights::READ_WRITE);
    assert_eq!((OpenFlags::WRITE | OpenFlags::APPEND).rights(), Rights::WRITE);
    // The flags are distinct single bits.
    let all = [
        OpenFlags::READ,
        OpenFlags::WRITE,
        OpenFlags::CREATE,
        OpenFlags::EXCLUSIVE,
        OpenFlags::TRUNCATE,
        OpenFlags::APPEND,
        OpenFlags::DIRECTORY,
    ];
    let union = all.iter().fold(OpenFlags::NONE, |acc, &f| acc | f);
    assert_eq!(union, OpenFlags::ALL);
    assert!(all.iter().all(|f| f.bits().count_ones() == 1));
    assert_eq!(all.iter().map(|f| f.bits()).sum::<u64>(), OpenFlags::ALL.bits());
}

#[test]
fn rights_are_shown_as_ls_would() {
    let forms: Vec<String> =
        [Rights::READ_WRITE, Rights::READ, Rights::WRITE, Rights::NONE].iter().map(ToString::to_string).collect();
    assert_eq!(forms, ["rw", "r-", "-w", "--"]);
    assert_eq!(Rights::default().to_string(), "--");
    assert_eq!(Rights::READ | Rights::WRITE, Rights::READ_WRITE);
    assert!(Rights::READ_WRITE.contains(Rights::READ) && Rights::READ.contains(Rights::NONE));
    assert!(!Rights::READ.contains(Rights::READ_WRITE) && !Rights::WRITE.contains(Rights::READ));
    assert_eq!(Rights::READ_WRITE.intersection(Rights::WRITE), Rights::WRITE);
    assert_eq!(Rights::READ.intersection(Rights::WRITE), Rights::NONE);
    assert_eq!(Rights::READ_WRITE.difference(Rights::READ), Rights::WRITE);
    assert_eq!(Rights::READ.difference(Rights::READ_WRITE), Rights::NONE);
    assert!(Rights::NONE.is_empty() && !Rights::WRITE.is_empty());
    assert!(OpenFlags::default().is_empty() && OpenFlags::ALL.difference(OpenFlags::ALL).is_empty());
}
