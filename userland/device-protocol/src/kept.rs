//! What the `device` server keeps across its restarts, and how: the virtual devices plugged
//! into containers and every grant, written after each change into the memory object `proc`
//! hands every instance of a supervised service (`vessel_proc_protocol::KEPT_PAGES`), read back
//! by the next instance. Sessions, attachments and armed terminals are not kept: their clients
//! see `PeerDied` and open again.
//!
//! Layout: two slots of half the memory each, so a server killed in the middle of a write loses
//! at most that write: each slot is a header (`MAGIC`, a sequence number, the record's length
//! and its checksum) then the record. A write goes to the slot not holding the newest record,
//! header last; a read takes the newest slot whose header and checksum hold.
//!
//! A record is read like any hostile input (another instance wrote it, but it may have died
//! mid-write or the memory may hold anything): every length is checked, names must be valid
//! device names, classes pluggable and rights known, and anything else ends the read with what
//! it had.

use alloc::string::String;
use alloc::vec::Vec;

use crate::{Class, Rights, valid_name};

/// Marks a written slot ("VSLKEPT1").
const MAGIC: u64 = 0x3154_5045_4b4c_5356;
/// Header bytes: magic, sequence, length, checksum.
const HEADER: usize = 32;

/// A virtual device plugged into a container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plugged {
    /// Its name (`console1`).
    pub name: String,
    /// Its class (a pluggable one).
    pub class: Class,
    /// The container it was plugged into.
    pub container: u64,
}

/// A grant of the device named `device`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeptGrant {
    /// The device's name.
    pub device: String,
    /// The container holding the grant.
    pub to: u64,
    /// The container that granted it.
    pub from: u64,
    /// What it may do.
    pub rights: Rights,
    /// Whether it keeps the others out.
    pub exclusive: bool,
}

/// The lasting part of the registry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Kept {
    /// The virtual devices plugged into containers.
    pub plugged: Vec<Plugged>,
    /// Every grant.
    pub grants: Vec<KeptGrant>,
}

/// Slot `n` of `bytes` (its half).
fn slot(bytes: &[u8], n: usize) -> &[u8] {
    let half = bytes.len() / 2;
    &bytes[n * half..(n + 1) * half]
}

/// Slot `n`'s sequence and record, if its header and checksum hold.
fn read_slot(bytes: &[u8], n: usize) -> Option<(u64, &[u8])> {
    let slot = slot(bytes, n);
    if slot.len() < HEADER {
        return None;
    }
    let word = |i: usize| u64::from_le_bytes(slot[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
    let (magic, sequence, len, sum) = (word(0), word(1), word(2), word(3));
    let len = usize::try_from(len).ok().filter(|&l| l <= slot.len() - HEADER)?;
    let record = &slot[HEADER..HEADER + len];
    (magic == MAGIC && checksum(record) == sum).then_some((sequence, record))
}

/// The newest record in `bytes` that reads whole (nothing kept yet: empty).
pub fn load(bytes: &[u8]) -> Kept {
    let newest = [0, 1].into_iter().filter_map(|n| read_slot(bytes, n)).max_by_key(|&(sequence, _)| sequence);
    newest.map(|(_, record)| decode(record)).unwrap_or_default()
}

/// Writes `kept` over the older slot of `bytes`; false if it does not fit (the older record
/// stays, and the newest with it).
pub fn save(bytes: &mut [u8], kept: &Kept) -> bool {
    let record = encode(kept);
    let half = bytes.len() / 2;
    if half < HEADER || record.len() > half - HEADER {
        return false;
    }
    // The target is the slot not holding the newest record.
    let sequence = |n| read_slot(bytes, n).map(|(sequence, _)| sequence);
    let (newest, target) = match (sequence(0), sequence(1)) {
        (Some(a), Some(b)) if b > a => (b, 0),
        (Some(a), _) => (a, 1),
        (None, b) => (b.unwrap_or(0), 0),
    };
    let slot = &mut bytes[target * half..(target + 1) * half];
    // Invalidate first, then the record, then the header that makes it count.
    slot[..8].fill(0);
    slot[HEADER..HEADER + record.len()].copy_from_slice(&record);
    slot[8..16].copy_from_slice(&(newest + 1).to_le_bytes());
    slot[16..24].copy_from_slice(&(record.len() as u64).to_le_bytes());
    slot[24..32].copy_from_slice(&checksum(&record).to_le_bytes());
    slot[..8].copy_from_slice(&MAGIC.to_le_bytes());
    true
}

/// FNV-1a over the record.
fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

fn put_name(out: &mut Vec<u8>, name: &str) {
    out.push(name.len() as u8);
    out.extend_from_slice(name.as_bytes());
}

/// `u16` count of plugged devices, each: name (`u8` length, bytes), class (`u8`), container
/// (`u64`); then a `u16` count of grants, each: device name, to, from, rights (`u64` each),
/// exclusive (`u8`). Little-endian.
fn encode(kept: &Kept) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(kept.plugged.len() as u16).to_le_bytes());
    for p in &kept.plugged {
        put_name(&mut out, &p.name);
        out.push(p.class as u8);
        out.extend_from_slice(&p.container.to_le_bytes());
    }
    out.extend_from_slice(&(kept.grants.len() as u16).to_le_bytes());
    for g in &kept.grants {
        put_name(&mut out, &g.device);
        for word in [g.to, g.from, g.rights.bits()] {
            out.extend_from_slice(&word.to_le_bytes());
        }
        out.push(u8::from(g.exclusive));
    }
    out
}

/// A cursor over a record; every read checks what is left.
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_le_bytes([b[0], b[1]]))
    }

    fn u64(&mut self) -> Option<u64> {
        self.take(8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes)
    }

    fn name(&mut self) -> Option<String> {
        let len = usize::from(self.u8()?);
        let bytes = self.take(len)?;
        core::str::from_utf8(bytes).ok().filter(|n| valid_name(n)).map(String::from)
    }
}

/// The record's devices and grants, as far as they read well.
fn decode(record: &[u8]) -> Kept {
    let mut kept = Kept::default();
    let mut at = Cursor(record);
    let Some(count) = at.u16() else { return kept };
    for _ in 0..count {
        let plugged = (|| {
            let name = at.name()?;
            let code = at.u8()?;
            let class = Class::ALL.into_iter().find(|c| *c as u8 == code).filter(|c| c.pluggable())?;
            Some(Plugged { name, class, container: at.u64()? })
        })();
        match plugged {
            Some(p) => kept.plugged.push(p),
            None => return kept,
        }
    }
    let Some(count) = at.u16() else { return kept };
    for _ in 0..count {
        let grant = (|| {
            let device = at.name()?;
            let (to, from) = (at.u64()?, at.u64()?);
            let rights = Rights::from_bits(at.u64()?).filter(|r| !r.is_empty())?;
            let exclusive = match at.u8()? {
                0 => false,
                1 => true,
                _ => return None,
            };
            Some(KeptGrant { device, to, from, rights, exclusive })
        })();
        match grant {
            Some(g) => kept.grants.push(g),
            None => return kept,
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn sample() -> Kept {
        Kept {
            plugged: vec![
                Plugged { name: "console1".into(), class: Class::Console, container: 7 },
                Plugged { name: "zero1".into(), class: Class::Zero, container: 9 },
            ],
            grants: vec![
                KeptGrant { device: "blk0".into(), to: 7, from: 1, rights: Rights::READ, exclusive: false },
                KeptGrant { device: "serial0".into(), to: 9, from: 7, rights: Rights::READ_WRITE, exclusive: true },
            ],
        }
    }

    #[test]
    fn what_was_saved_loads_back_and_the_newest_wins() {
        let mut memory = vec![0u8; 16 * 1024];
        assert_eq!(load(&memory), Kept::default(), "zeroed memory keeps nothing");
        assert!(save(&mut memory, &sample()));
        assert_eq!(load(&memory), sample());
        let mut fewer = sample();
        fewer.grants.pop();
        assert!(save(&mut memory, &fewer));
        assert_eq!(load(&memory), fewer);
        assert!(save(&mut memory, &Kept::default()));
        assert_eq!(load(&memory), Kept::default());
    }

    #[test]
    fn a_write_cut_short_leaves_the_record_before_it() {
        let mut memory = vec![0u8; 16 * 1024];
        assert!(save(&mut memory, &sample()));
        let mut newer = sample();
        newer.plugged.pop();
        assert!(save(&mut memory, &newer));
        // Cut the newest write at every byte: the reader gets it whole or the one before.
        let half = memory.len() / 2;
        let newest = [0, 1].into_iter().max_by_key(|&n| read_slot(&memory, n).map(|(s, _)| s)).unwrap();
        for cut in 0..HEADER + 64 {
            let mut torn = memory.clone();
            torn[newest * half + cut..(newest + 1) * half].fill(0xa5);
            let got = load(&torn);
            assert!(got == newer || got == sample(), "cut at {cut}: {got:?}");
        }
    }

    #[test]
    fn every_write_goes_to_the_older_slot() {
        // Three records in turn: a stop in the middle of each write leaves the one just before
        // it, never an older one (a write over the newest slot would lose both).
        let mut memory = vec![0u8; 16 * 1024];
        let mut records = vec![Kept::default()];
        for n in 0..6 {
            let mut next = sample();
            next.plugged.truncate(n % 3);
            let before = memory.clone();
            assert!(save(&mut memory, &next));
            let half = memory.len() / 2;
            let written =
                (0..2).find(|&slot| memory[slot * half..(slot + 1) * half] != before[slot * half..(slot + 1) * half]);
            let Some(written) = written else { panic!("save {n} wrote nothing") };
            let mut torn = memory.clone();
            torn[written * half..written * half + 8].fill(0);
            assert_eq!(load(&torn), *records.last().unwrap(), "save {n} torn: not the record before it");
            assert_eq!(load(&memory), next);
            records.push(next);
        }
    }

    #[test]
    fn a_record_too_big_is_refused_and_the_old_one_stays() {
        let mut memory = vec![0u8; 512];
        assert!(save(&mut memory, &sample()));
        let big = Kept {
            plugged: (0..40)
                .map(|i| Plugged { name: alloc::format!("null{i}"), class: Class::Null, container: i })
                .collect(),
            grants: Vec::new(),
        };
        assert!(!save(&mut memory, &big));
        assert_eq!(load(&memory), sample());
    }

    #[test]
    fn hostile_memory_never_panics_and_yields_only_valid_entries() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut base = vec![0u8; 2048];
        assert!(save(&mut base, &sample()));
        for round in 0..20_000 {
            let mut memory = base.clone();
            for _ in 0..1 + round % 8 {
                let at = (next() as usize) % memory.len();
                memory[at] = next() as u8;
            }
            // Half the rounds make the checksum hold over the damage, to reach the decoder.
            if round % 2 == 0 {
                for n in 0..2 {
                    let half = memory.len() / 2;
                    let slot = &mut memory[n * half..(n + 1) * half];
                    let len = (u64::from_le_bytes(slot[16..24].try_into().unwrap()) as usize).min(half - HEADER);
                    let sum = checksum(&slot[HEADER..HEADER + len]);
                    slot[16..24].copy_from_slice(&(len as u64).to_le_bytes());
                    slot[24..32].copy_from_slice(&sum.to_le_bytes());
                }
            }
            let kept = load(&memory);
            assert!(kept.plugged.iter().all(|p| valid_name(&p.name) && p.class.pluggable()));
            assert!(kept.grants.iter().all(|g| valid_name(&g.device) && !g.rights.is_empty()));
        }
    }
}
