//! Raw edits of sound images, for making damage by hand: FAT entries in one copy or all, chains,
//! free clusters, and a simple directory reader that finds an entry's slots by path.
//!
//! Invariants: these read images the tests made sound (they index without checks and panic on
//! anything else); edits go only where the caller says, every FAT copy only through `fat_set`.

use super::geometry;
use crate::FatType;
use crate::boot::{Geometry, Root};

/// The FAT entry of `cluster` in FAT copy `copy`.
pub(super) fn fat_get(image: &[u8], g: &Geometry, copy: u64, cluster: u32) -> u32 {
    let base = (g.fat_start + copy * g.fat_size) as usize;
    let c = cluster as usize;
    match g.fat_type {
        FatType::Fat12 => {
            let v = u16::from_le_bytes([image[base + c * 3 / 2], image[base + c * 3 / 2 + 1]]) as u32;
            if c % 2 == 1 { v >> 4 } else { v & 0xFFF }
        }
        FatType::Fat16 => u16::from_le_bytes([image[base + 2 * c], image[base + 2 * c + 1]]) as u32,
        FatType::Fat32 => u32::from_le_bytes(image[base + 4 * c..base + 4 * c + 4].try_into().unwrap()) & 0x0FFF_FFFF,
    }
}

/// Sets the FAT entry of `cluster` in FAT copy `copy`.
pub(super) fn fat_set_copy(image: &mut [u8], g: &Geometry, copy: u64, cluster: u32, value: u32) {
    let base = (g.fat_start + copy * g.fat_size) as usize;
    let c = cluster as usize;
    match g.fat_type {
        FatType::Fat12 => {
            let at = base + c * 3 / 2;
            let old = u16::from_le_bytes([image[at], image[at + 1]]);
            let v = (value & 0xFFF) as u16;
            let new = if c % 2 == 1 { (old & 0x000F) | v << 4 } else { (old & 0xF000) | v };
            image[at..at + 2].copy_from_slice(&new.to_le_bytes());
        }
        FatType::Fat16 => image[base + 2 * c..base + 2 * c + 2].copy_from_slice(&(value as u16).to_le_bytes()),
        FatType::Fat32 => image[base + 4 * c..base + 4 * c + 4].copy_from_slice(&value.to_le_bytes()),
    }
}

/// Sets the FAT entry of `cluster` in every FAT copy.
pub(super) fn fat_set(image: &mut [u8], g: &Geometry, cluster: u32, value: u32) {
    for copy in 0..u64::from(g.fat_count) {
        fat_set_copy(image, g, copy, cluster, value);
    }
}

/// The end-of-chain mark of a FAT type.
pub(super) fn eoc(t: FatType) -> u32 {
    match t {
        FatType::Fat12 => 0xFFF,
        FatType::Fat16 => 0xFFFF,
        FatType::Fat32 => 0x0FFF_FFFF,
    }
}

/// The chain starting at `first` (first FAT; the image is assumed sound).
pub(super) fn chain(image: &[u8], g: &Geometry, first: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut c = first;
    while g.is_data_cluster(c.into()) && out.len() <= g.cluster_count as usize {
        out.push(c);
        c = fat_get(image, g, 0, c);
    }
    out
}

/// The first free cluster at or after `from`.
pub(super) fn free_cluster(image: &[u8], g: &Geometry, from: u32) -> u32 {
    (from..=g.max_cluster()).find(|&c| fat_get(image, g, 0, c) == 0).expect("a free cluster")
}

/// A directory entry found in an image.
#[derive(Clone, Debug)]
pub(super) struct Found {
    /// Offset of its 8.3 entry.
    pub(super) at: usize,
    /// Offsets of its long-name slots, first slot first.
    pub(super) slots: Vec<usize>,
    pub(super) name: String,
    pub(super) start: u32,
    pub(super) size: u32,
    pub(super) attr: u8,
}

/// The byte ranges of the directory starting at `start` (0: the FAT12/16 root).
pub(super) fn dir_ranges(image: &[u8], g: &Geometry, start: u32) -> Vec<std::ops::Range<usize>> {
    match (g.root, start) {
        (Root::Fixed { start, size }, 0) => std::iter::once(start as usize..(start + size) as usize).collect(),
        (Root::Chain(root), 0) => dir_ranges(image, g, root),
        _ => chain(image, g, start)
            .into_iter()
            .map(|c| {
                let at = g.cluster_offset(c.into()).unwrap() as usize;
                at..at + g.cluster_size as usize
            })
            .collect(),
    }
}

/// The entries of a directory (a simple reader for sound images: long names are taken as they
/// come).
pub(super) fn dir_entries(image: &[u8], g: &Geometry, start: u32) -> Vec<Found> {
    let mut out = Vec::new();
    let mut slots = Vec::new();
    let mut units: Vec<u16> = Vec::new();
    for range in dir_ranges(image, g, start) {
        for at in range.step_by(32) {
            let e = &image[at..at + 32];
            if e[0] == 0 || e[0] == 0xE5 {
                slots.clear();
                continue;
            }
            if e[11] == 0x0F {
                if e[0] & 0x40 != 0 {
                    slots.clear();
                    units = vec![0; (e[0] & 0x1F) as usize * 13];
                }
                let n = (e[0] & 0x1F) as usize;
                let pos = (1..11).step_by(2).chain((14..26).step_by(2)).chain((28..32).step_by(2));
                for (i, p) in pos.enumerate() {
                    if let Some(u) = units.get_mut((n - 1) * 13 + i) {
                        *u = u16::from_le_bytes([e[p], e[p + 1]]);
                    }
                }
                slots.push(at);
                continue;
            }
            let name = if slots.is_empty() {
                let base = String::from_utf8_lossy(&e[..8]).trim_end().to_string();
                let ext = String::from_utf8_lossy(&e[8..11]).trim_end().to_string();
                if ext.is_empty() { base } else { format!("{base}.{ext}") }
            } else {
                let end = units.iter().position(|&u| u == 0).unwrap_or(units.len());
                String::from_utf16_lossy(&units[..end])
            };
            let lo = u16::from_le_bytes([e[26], e[27]]) as u32;
            let hi = if g.fat_type == FatType::Fat32 { (u16::from_le_bytes([e[20], e[21]]) as u32) << 16 } else { 0 };
            let size = u32::from_le_bytes(e[28..32].try_into().unwrap());
            out.push(Found { at, slots: std::mem::take(&mut slots), name, start: lo | hi, size, attr: e[11] });
        }
    }
    out
}

/// The entry at `path` (components matched without regard to case).
pub(super) fn find(image: &[u8], path: &str) -> Found {
    let g = geometry(image);
    let mut dir = 0;
    let mut found = None;
    for part in path.split('/').filter(|p| !p.is_empty()) {
        let entry = dir_entries(image, &g, dir)
            .into_iter()
            .find(|e| e.name.eq_ignore_ascii_case(part))
            .unwrap_or_else(|| panic!("{path}: no {part}"));
        dir = entry.start;
        found = Some(entry);
    }
    found.expect("a path below the root")
}

/// Writes a little-endian field.
pub(super) fn put_le(image: &mut [u8], at: usize, value: u64, bytes: usize) {
    image[at..at + bytes].copy_from_slice(&value.to_le_bytes()[..bytes]);
}
