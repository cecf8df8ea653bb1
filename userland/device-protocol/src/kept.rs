//! What the `device` server keeps across its restarts, and how: the virtual devices plugged
//! into containers and every grant, written after each change into the memory object `proc`
//! hands every instance of a supervised service (`vessel_proc_protocol::KEPT_PAGES`), read back
//! by the next instance. Sessions, attachments and armed terminals are not kept: their clients
//! see `PeerDied` and open again.
//!
//! The record goes through `vessel_proc_protocol::kept`, which keeps the newest record whole
//! when a write is cut short; this module is what the record holds.
//!
//! A record is read like any hostile input (another instance wrote it, but it may have died
//! mid-write or the memory may hold anything): every length is checked, names must be valid
//! device names, classes pluggable and rights known, and anything else ends the read with what
//! it had.

use alloc::string::String;
use alloc::vec::Vec;

use vessel_proc_protocol::kept::{self, Cursor};

use crate::{Class, Rights, valid_name};

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

/// The newest record in `bytes` that reads whole (nothing kept yet: empty).
pub fn load(bytes: &[u8]) -> Kept {
    kept::load(bytes).map(decode).unwrap_or_default()
}

/// Writes `kept` over the older record of `bytes`; false if it does not fit (the older record
/// stays, and the newest with it).
pub fn save(bytes: &mut [u8], kept: &Kept) -> bool {
    kept::save(bytes, &encode(kept))
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

/// The next device name (`u8` length, bytes), if it is a valid one.
fn name(at: &mut Cursor<'_>) -> Option<String> {
    let len = usize::from(at.u8()?);
    let bytes = at.take(len)?;
    core::str::from_utf8(bytes).ok().filter(|n| valid_name(n)).map(String::from)
}

/// The record's devices and grants, as far as they read well.
fn decode(record: &[u8]) -> Kept {
    let mut kept = Kept::default();
    let mut at = Cursor(record);
    let Some(count) = at.u16() else { return kept };
    for _ in 0..count {
        let plugged = (|| {
            let name = name(&mut at)?;
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
            let device = name(&mut at)?;
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
    fn hostile_records_never_panic_and_yield_only_valid_entries() {
        // The slot layer's checksum keeps damaged memory out (its own tests); a record written
        // whole but wrong (another build, a bug) reaches the decoder, so damage is saved here.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let base = encode(&sample());
        let mut memory = vec![0u8; 2048];
        for round in 0..20_000 {
            let mut record = base.clone();
            for _ in 0..1 + round % 8 {
                let at = (next() as usize) % record.len();
                record[at] = next() as u8;
            }
            record.truncate(record.len() - (next() as usize) % 4);
            assert!(kept::save(&mut memory, &record));
            let kept = load(&memory);
            assert!(kept.plugged.iter().all(|p| valid_name(&p.name) && p.class.pluggable()));
            assert!(kept.grants.iter().all(|g| valid_name(&g.device) && !g.rights.is_empty()));
        }
    }
}
