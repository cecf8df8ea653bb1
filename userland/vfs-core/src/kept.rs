//! The mounts `vfs` keeps across its restarts: every mount made through the protocol (a
//! container's VSF root, what a parent mounted into a child, what the root mounted for itself),
//! in the order they were made, so that a mount of a VSF comes after the mount that holds its
//! file. The root's own tree is not kept: the program assembles it again. The record goes into
//! the memory `proc` hands every instance through `vessel_proc_protocol::kept`, which makes a
//! write cut short harmless; this module is what the record holds.
//!
//! A record is read like hostile input: every length is checked, texts must be UTF-8 and within
//! the protocol's limits, mount points must be absolute paths, and anything else ends the read
//! with what it had. Replaying a mount runs every check a new one does, so a record can make
//! `vfs` do nothing its clients could not ask for.

use alloc::string::String;
use alloc::vec::Vec;

use vessel_proc_protocol::kept::{Cursor, put_text};
use vessel_vfs_protocol::MAX_MOUNT_TEXT;
use vessel_vfs_protocol::path::Path;

/// One mount as it was asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeptMount {
    /// The container that asked: a VSF source names a file of its namespace.
    pub caller: u64,
    /// The container whose namespace holds the mount.
    pub container: u64,
    /// Where (an absolute path).
    pub at: String,
    /// What (`mem`, `boot`, `blk:<device>`, `vsf:<path>`).
    pub source: String,
}

/// Bytes one mount takes in a record.
fn size(m: &KeptMount) -> usize {
    8 + 8 + 2 + m.at.len() + 2 + m.source.len()
}

/// The record of `mounts`, as many as fit in `capacity` bytes, first ones first (a later mount
/// may need an earlier one, never the other way round). Returns it and how many it holds.
pub fn encode(mounts: &[KeptMount], capacity: usize) -> (Vec<u8>, usize) {
    let mut out = Vec::new();
    out.extend_from_slice(&[0, 0]);
    let mut count = 0u16;
    for m in mounts {
        if out.len() + size(m) > capacity || count == u16::MAX {
            break;
        }
        out.extend_from_slice(&m.caller.to_le_bytes());
        out.extend_from_slice(&m.container.to_le_bytes());
        put_text(&mut out, &m.at);
        put_text(&mut out, &m.source);
        count += 1;
    }
    out[..2].copy_from_slice(&count.to_le_bytes());
    (out, usize::from(count))
}

/// The mounts of a record, as far as they read well: `u16` count, then each: caller and
/// container (`u64`), mount point and source (`u16` length, UTF-8). Little-endian.
pub fn decode(record: &[u8]) -> Vec<KeptMount> {
    let mut mounts = Vec::new();
    let mut at = Cursor(record);
    let Some(count) = at.u16() else { return mounts };
    for _ in 0..count {
        let mount = (|| {
            let (caller, container) = (at.u64()?, at.u64()?);
            let point = at.text(MAX_MOUNT_TEXT)?;
            Path::root().resolve(point).ok().filter(|p| p.as_str() == point)?;
            let source = at.text(MAX_MOUNT_TEXT)?;
            Some(KeptMount { caller, container, at: String::from(point), source: String::from(source) })
        })();
        match mount {
            Some(m) => mounts.push(m),
            None => break,
        }
    }
    mounts
}
