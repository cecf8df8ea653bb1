//! The field types alone: every value round-trips in both layouts (scalars in the registers,
//! or all in the data area), a cut or extended encoding is refused, a mutated one decodes only
//! to a value that encodes back to it (the encoding is canonical), every bad tag, bit, name and
//! layout is refused, and the list limits are the largest that fit one message.

use std::fmt::Debug;

use vessel_protocol::testing::{Example, OwnedFrame, Rng};
use vessel_protocol::wire::encode;
use vessel_protocol::{DecodeError, EncodeError, Field, MAX_DATA, Message, Reader, Reply};

use crate::*;

/// The largest valid entry (number `i`, for distinct names).
pub fn maximal_entry(i: usize) -> Entry {
    Entry {
        name: format!("random{i:010}"),
        class: Class::Random,
        rights: Rights::READ_WRITE,
        access: Access::Exclusive,
        holder: u64::MAX,
        blocks: u64::MAX,
        block_size: u64::MAX,
        pci: Some(Bdf { bus: 0xff, device: 31, function: 7 }),
    }
}

/// The largest valid PCI function (number `i`, on bus `i`).
pub fn maximal_function(i: usize) -> PciFunction {
    PciFunction {
        bdf: Bdf { bus: i as u8, device: 31, function: 7 },
        vendor: u16::MAX,
        device: u16::MAX,
        class: 0xff,
        subclass: 0xff,
        prog_if: 0xff,
        revision: 0xff,
        irq_line: 0xff,
        bars: [Bar::Mem32 { address: u32::MAX, size: u32::MAX, prefetchable: true }; Bar::SLOTS],
        capabilities: vec![0xff; MAX_CAPABILITIES],
        driver: Some("d".repeat(MAX_NAME)),
    }
}

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

/// Bytes `value` takes on the wire.
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
        for filler in [0, 3] {
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
    check_type::<Class>();
    check_type::<Access>();
    check_type::<Rights>();
    check_type::<Bdf>();
    check_type::<Bar>();
    check_type::<Entry>();
    check_type::<PciFunction>();
    check_type::<Entries>();
    check_type::<PciFunctions>();
}

#[test]
fn classes_and_accesses_are_one_byte_from_1() {
    for byte in 0..=u8::MAX {
        let class = decode_data::<Class>(&[byte]);
        let access = decode_data::<Access>(&[byte]);
        assert_eq!(class.is_ok(), (1..=9).contains(&byte), "class {byte}");
        assert_eq!(access.is_ok(), (1..=3).contains(&byte), "access {byte}");
        assert!(class.is_ok() || class == Err(DecodeError::BadValue));
        assert_eq!(Class::try_from(byte), class);
    }
    let names: Vec<&str> = Class::ALL.iter().map(|c| c.as_str()).collect();
    let expected = ["block", "serial", "keyboard", "framebuffer", "clock", "console", "null", "zero", "random"];
    assert_eq!(names, expected);
    for (i, class) in Class::ALL.into_iter().enumerate() {
        assert_eq!(class as usize, i + 1);
        assert_eq!(Class::from_name(class.as_str()), Some(class));
        assert_eq!(class.to_string(), class.as_str());
        assert!(valid_name(&format!("{}0", class.name_prefix())));
    }
    assert_eq!(Class::from_name("Block"), None);
    let pluggable: Vec<Class> = Class::ALL.into_iter().filter(|c| c.pluggable()).collect();
    assert_eq!(pluggable, [Class::Console, Class::Null, Class::Zero, Class::Random]);
    assert!(pluggable.iter().all(|c| c.is_byte_device()));
    assert!(!Class::Block.is_byte_device() && !Class::Clock.is_byte_device() && Class::Keyboard.is_byte_device());
    let accesses: Vec<String> = Access::ALL.iter().map(ToString::to_string).collect();
    assert_eq!(accesses, ["owner", "shared", "exclusive"]);
}

#[test]
fn rights_refuse_unknown_bits() {
    for bits in 0..4 {
        assert_eq!(Rights::from_bits(bits).map(Rights::bits), Some(bits));
        assert_eq!(decode_data::<Rights>(&bits.to_le_bytes()).map(Rights::bits), Ok(bits));
    }
    for bits in [4, 5, 1 << 8, 1 << 63, u64::MAX] {
        assert_eq!(Rights::from_bits(bits), None);
        assert_eq!(decode_data::<Rights>(&bits.to_le_bytes()), Err(DecodeError::BadValue));
    }
    let forms: Vec<String> =
        [Rights::READ_WRITE, Rights::READ, Rights::WRITE, Rights::NONE].iter().map(ToString::to_string).collect();
    assert_eq!(forms, ["rw", "r-", "-w", "--"]);
    for form in &forms {
        assert_eq!(Rights::parse(form).unwrap().to_string(), *form);
    }
    assert_eq!(
        (Rights::parse("r"), Rights::parse("w"), Rights::parse("x")),
        (Some(Rights::READ), Some(Rights::WRITE), None)
    );
    assert_eq!(Rights::READ | Rights::WRITE, Rights::READ_WRITE);
    assert!(Rights::READ_WRITE.contains(Rights::READ) && Rights::READ.contains(Rights::NONE));
    assert!(!Rights::READ.contains(Rights::READ_WRITE) && !Rights::WRITE.contains(Rights::READ));
    assert_eq!(Rights::READ_WRITE.intersection(Rights::WRITE), Rights::WRITE);
    assert_eq!(Rights::READ.intersection(Rights::WRITE), Rights::NONE);
    assert!(Rights::NONE.is_empty() && Rights::default().is_empty() && !Rights::READ.is_empty());
    assert_eq!(Rights::READ.union(Rights::NONE), Rights::READ);
}

#[test]
fn names_are_short_lowercase_ascii() {
    for good in ["blk0", "serial0", "kbd0", "fb0", "rtc0", "null0", "zero0", "random0", "console0", "virtio-blk", "a"] {
        assert!(valid_name(good), "{good}");
    }
    let longest = "n".repeat(MAX_NAME);
    assert!(valid_name(&longest));
    for bad in ["", "0blk", "Blk0", "blk 0", "blk/0", "blé0", "-x", &"n".repeat(MAX_NAME + 1)] {
        assert!(!valid_name(bad), "{bad}");
    }
    // In an entry and as a driver name: too long, empty, bad characters, not UTF-8.
    let entry_with = |name: &[u8]| {
        let mut data = encoded(&maximal_entry(0), 3).unwrap().data;
        data.splice(0..2 + MAX_NAME, (name.len() as u16).to_le_bytes().into_iter().chain(name.iter().copied()));
        decode_data::<Entry>(&data)
    };
    assert_eq!(entry_with(longest.as_bytes()).map(|e| e.name), Ok(longest.clone()));
    assert_eq!(entry_with(&[b'n'; MAX_NAME + 1]), Err(DecodeError::TooLong));
    assert_eq!(entry_with(b""), Err(DecodeError::BadValue));
    assert_eq!(entry_with(b"Blk0"), Err(DecodeError::BadValue));
    assert_eq!(entry_with(b"\xff\xfe"), Err(DecodeError::NotUtf8));
    assert!(!Entry { name: "Blk0".into(), ..maximal_entry(0) }.is_valid() && maximal_entry(0).is_valid());
    let driver = |name: &str| PciFunction { driver: Some(name.into()), ..PciFunction::default() };
    let long = driver(&"d".repeat(MAX_NAME + 1));
    assert!(!long.is_valid());
    assert_eq!(decode_data::<PciFunction>(&encoded(&long, 3).unwrap().data), Err(DecodeError::TooLong));
    assert_eq!(decode_data::<PciFunction>(&encoded(&driver("Virtio"), 3).unwrap().data), Err(DecodeError::BadValue));
}

#[test]
fn bad_tags_and_addresses_are_refused() {
    let bad = Some(DecodeError::BadValue);
    // Bdf: device below 32, function below 8.
    assert_eq!(decode_data::<Bdf>(&[0, 32, 0]).err(), bad);
    assert_eq!(decode_data::<Bdf>(&[0, 0, 8]).err(), bad);
    assert_eq!(decode_data::<Bdf>(&[0xff, 31, 7]), Ok(Bdf { bus: 0xff, device: 31, function: 7 }));
    assert!(!Bdf { bus: 0, device: 32, function: 0 }.is_valid());
    // Bar: tags 0 to 3, prefetchable 0 or 1.
    assert_eq!(decode_data::<Bar>(&[4]).err(), bad);
    assert_eq!(decode_data::<Bar>(&[2, 0, 0, 0, 0, 0, 0, 0, 0, 2]).err(), bad);
    // Entry: the pci option's tag, the class, the access, the rights.
    let entry = encoded(&maximal_entry(0), 3).unwrap().data;
    let at_pci = entry.len() - 4;
    let at_class = 2 + MAX_NAME;
    for (at, value) in
        [(at_pci, 2), (at_class, 0), (at_class, 10), (at_class + 9, 4), (at_class + 1, 4), (at_class + 8, 1)]
    {
        let mut data = entry.clone();
        data[at] = value;
        assert_eq!(decode_data::<Entry>(&data).err(), bad, "byte {at} = {value}");
    }
    // PciFunction: the driver's tag; more capability ids than allowed.
    let mut function = encoded(&PciFunction::default(), 3).unwrap().data;
    *function.last_mut().unwrap() = 2;
    assert_eq!(decode_data::<PciFunction>(&function).err(), bad);
    let many = PciFunction { capabilities: vec![1; MAX_CAPABILITIES + 1], ..PciFunction::default() };
    assert!(!many.is_valid());
    assert_eq!(decode_data::<PciFunction>(&encoded(&many, 3).unwrap().data), Err(DecodeError::TooLong));
}

/// Every assignment of None, I/O, 32-bit and 64-bit memory BARs to the six slots.
fn every_bar_layout() -> impl Iterator<Item = [Bar; Bar::SLOTS]> {
    let kinds = [
        Bar::None,
        Bar::Io { port: u32::MAX, size: u32::MAX },
        Bar::Mem32 { address: u32::MAX, size: u32::MAX, prefetchable: true },
        Bar::Mem64 { address: u64::MAX, size: u64::MAX, prefetchable: true },
    ];
    (0..4usize.pow(Bar::SLOTS as u32)).map(move |n| std::array::from_fn(|slot| kinds[n >> (2 * slot) & 3]))
}

#[test]
fn bar_layouts_are_checked_exhaustively() {
    let (mut valid, mut largest) = (0, 0);
    for bars in every_bar_layout() {
        // The rule, stated per slot: a 64-bit BAR has a next slot, and it is unused.
        let expected =
            (0..Bar::SLOTS).all(|i| !matches!(bars[i], Bar::Mem64 { .. }) || bars.get(i + 1) == Some(&Bar::None));
        assert_eq!(Bar::valid_layout(&bars), expected, "{bars:?}");
        let function = PciFunction { bars, ..PciFunction::default() };
        let data = encoded(&function, 3).unwrap().data;
        match Bar::valid_layout(&bars) {
            true => {
                valid += 1;
                let size: usize = bars.iter().map(wire_size).sum();
                assert!(size <= Bar::MAX_WIRE_BYTES, "{bars:?} takes {size} bytes");
                largest = largest.max(size);
                assert_eq!(decode_data::<PciFunction>(&data), Ok(function));
            }
            false => assert_eq!(decode_data::<PciFunction>(&data), Err(DecodeError::BadValue), "{bars:?}"),
        }
    }
    assert_eq!(largest, Bar::MAX_WIRE_BYTES);
    assert!(valid > 1000);
    assert!(Bar::valid_layout(&[
        Bar::Mem64 { address: 0, size: 0, prefetchable: false },
        Bar::None,
        Bar::None,
        Bar::None,
        Bar::None,
        Bar::None
    ]));
}

#[test]
fn the_largest_items_and_lists_fit_one_message() {
    assert_eq!((MAX_ENTRIES, MAX_FUNCTIONS), (73, 37));
    assert_eq!(wire_size(&maximal_entry(0)), Entry::MAX_WIRE_BYTES);
    assert_eq!(wire_size(&maximal_function(0)), PciFunction::MAX_WIRE_BYTES);
    for entry in Entry::examples() {
        assert!(wire_size(&entry) <= Entry::MAX_WIRE_BYTES);
    }
    for function in PciFunction::examples() {
        assert!(wire_size(&function) <= PciFunction::MAX_WIRE_BYTES);
    }
    // A full list of the largest items fits a reply and comes back whole...
    let entries = Entries((0..MAX_ENTRIES).map(maximal_entry).collect());
    let functions = PciFunctions((0..MAX_FUNCTIONS).map(maximal_function).collect());
    let list = reply_frame(label::list, &List { entries: entries.clone() });
    let pci = reply_frame(label::pci, &Functions { functions: functions.clone() });
    assert!(list.data.len() <= MAX_DATA && pci.data.len() <= MAX_DATA);
    assert_eq!(decoded::<Entries>(&list, 0), Ok(entries.clone()));
    assert_eq!(decoded::<PciFunctions>(&pci, 0), Ok(functions.clone()));
    // ...and one more does not: the limits are the largest that fit.
    let mut over = entries.0.clone();
    over.push(maximal_entry(MAX_ENTRIES));
    assert!(matches!(encoded(&Entries(over.clone()), 0), Err(EncodeError::DataTooLarge { .. })));
    let mut over_functions = functions.0.clone();
    over_functions.push(maximal_function(MAX_FUNCTIONS));
    assert!(matches!(encoded(&PciFunctions(over_functions.clone()), 0), Err(EncodeError::DataTooLarge { .. })));
    // A server keeps the first ones.
    assert_eq!(Entries::new(over), entries);
    assert_eq!(PciFunctions::new(over_functions), functions);
    // A count above the limit is refused before any item is read, even if the items would fit.
    let small = Entry { name: "n".into(), pci: None, ..maximal_entry(0) };
    let many = encoded(&Entries(vec![small; MAX_ENTRIES + 1]), 0).unwrap();
    assert_eq!(decoded::<Entries>(&many, 0), Err(DecodeError::TooLong));
    let count = (MAX_FUNCTIONS as u16 + 1).to_le_bytes();
    assert_eq!(decode_data::<PciFunctions>(&count), Err(DecodeError::TooLong));
    assert_eq!(decode_data::<Entries>(&u16::MAX.to_le_bytes()), Err(DecodeError::TooLong));
    assert_eq!(decode_data::<Entries>(&3u16.to_le_bytes()), Err(DecodeError::Truncated));
}

/// The reply `reply` to the operation labelled `op`, as the server sends it.
fn reply_frame<R: Reply>(op: u64, reply: &R) -> OwnedFrame {
    let info = OPERATIONS.iter().find(|o| o.label == op).unwrap();
    let (_, frame) = vessel_protocol::testing::reply_frame(info, reply);
    assert_eq!(frame.words[0], info.reply_label(), "{}", String::from_utf8_lossy(&frame.data));
    frame
}

#[test]
fn people_read_them_as_lspci_and_ls_would() {
    assert_eq!(Bdf { bus: 0, device: 3, function: 0 }.to_string(), "00:03.0");
    assert_eq!(Bdf { bus: 0xab, device: 0x1f, function: 7 }.to_string(), "ab:1f.7");
    let bars = [
        Bar::None,
        Bar::Io { port: 0xc040, size: 32 },
        Bar::Mem32 { address: 0xfebd_1000, size: 4096, prefetchable: false },
        Bar::Mem64 { address: 0x8_0000_0000, size: 1 << 30, prefetchable: true },
        Bar::Mem32 { address: 0, size: 3 << 20, prefetchable: true },
        Bar::Io { port: 0, size: 1000 },
    ];
    let lines: Vec<String> = bars.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "unused",
            "I/O ports at c040 [size=32]",
            "Memory at febd1000 (32-bit, non-prefetchable) [size=4K]",
            "Memory at 800000000 (64-bit, prefetchable) [size=1G]",
            "Memory at 0 (32-bit, prefetchable) [size=3M]",
            "I/O ports at 0 [size=1000]",
        ]
    );
    let ide =
        PciFunction { vendor: 0x8086, device: 0x7010, class: 1, subclass: 1, prog_if: 0x80, ..Default::default() };
    assert_eq!(ide.to_string(), "00:00.0 0101: 8086:7010 (rev 00) (prog-if 80)");
    let entry = Entry {
        name: "serial0".into(),
        class: Class::Serial,
        rights: Rights::READ,
        access: Access::Shared,
        holder: 9,
        blocks: 0,
        block_size: 0,
        pci: None,
    };
    assert_eq!(entry.to_string(), "serial0: serial, r-, shared, held by container 0x9");
    assert_eq!(maximal_entry(0).capacity(), u64::MAX);
    assert_eq!(Entry { blocks: 8, block_size: 512, ..entry }.capacity(), 4096);
    assert_eq!((max_blocks_per_request(512), max_blocks_per_request(0), max_blocks_per_request(1 << 20)), (8, 0, 0));
}
