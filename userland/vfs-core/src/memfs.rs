//! [`MemFs`]: a file system held entirely in memory, for `mem` mounts (scratch space, the
//! default root before a disk is mounted). It behaves like the FAT layer wherever `vfs` can
//! tell, so a client sees the same results and errors on both.
//!
//! The tree is an arena: a `Vec` of node slots, the root in slot 0, each directory a
//! `BTreeMap` from name to slot, each file a `Vec<u8>`. A path is resolved by one map lookup
//! per component (O(depth · log n)), a listing comes out in name order, and freed slots are
//! reused through a free list. Nothing recurses over the tree, so no shape of tree (however
//! deep renames make it) can exhaust the stack, even when the file system is dropped.
//!
//! Invariants: every slot named by a directory holds a node; a slot is named by exactly one
//! directory (the root by none); free slots are named by none; `used` is the sum of the files'
//! lengths and never exceeds `limit`. A failed operation changes nothing.
//!
//! Limits:
//! - Only file data counts against the limit given to [`MemFs::new`]; names and nodes cost
//!   memory too but are not counted, and a growing file's buffer may hold up to twice its
//!   length (amortised growth; a shrinking truncate gives the excess back).
//! - Files are at most [`MAX_FILE_SIZE`] bytes, as on FAT.
//! - Everything is lost when the file system is dropped; there are no links, permissions or
//!   times other than the last modification (from the clock set by [`MemFs::set_clock`]).
//! - The depth of the tree is not bounded here: `vfs` bounds the paths that reach it.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use vessel_fat::MAX_FILE_SIZE;
use vessel_vfs_protocol::path::{components, is_within, split_last};
use vessel_vfs_protocol::{DirEntry, Kind};

use crate::fs::{FileSystem, FsError, Meta, Sink};

/// The root directory's slot.
const ROOT: usize = 0;

/// What a slot index pointing nowhere is reported as (it would be a bug in this module).
const DANGLING: FsError = FsError::Corrupt("memfs: a directory names a free node");

/// One file or directory.
struct Node {
    /// Last modification, in seconds since the Unix epoch.
    modified: u64,
    body: Body,
}

enum Body {
    /// A file's bytes.
    File(Vec<u8>),
    /// A directory's entries: name to slot.
    Dir(BTreeMap<String, usize>),
}

impl Node {
    fn kind(&self) -> Kind {
        match self.body {
            Body::File(_) => Kind::File,
            Body::Dir(_) => Kind::Dir,
        }
    }

    fn size(&self) -> u64 {
        match &self.body {
            Body::File(data) => data.len() as u64,
            Body::Dir(_) => 0,
        }
    }
}

/// A file system in memory, with a limit on the bytes its files hold.
pub struct MemFs {
    /// Node slots; `None` for a free one (listed in `free`).
    nodes: Vec<Option<Node>>,
    /// Free slots, reused before the arena grows.
    free: Vec<usize>,
    /// Most file bytes allowed in total.
    limit: u64,
    /// File bytes held in total.
    used: u64,
    /// Seconds since the Unix epoch, for modification times.
    clock: fn() -> u64,
}

/// The clock until [`MemFs::set_clock`]: always the epoch.
fn epoch() -> u64 {
    0
}

impl MemFs {
    /// An empty file system (just the root directory) whose files may hold `limit_bytes` bytes
    /// in total.
    pub fn new(limit_bytes: u64) -> MemFs {
        let root = Node { modified: 0, body: Body::Dir(BTreeMap::new()) };
        MemFs { nodes: alloc::vec![Some(root)], free: Vec::new(), limit: limit_bytes, used: 0, clock: epoch }
    }

    /// Sets the clock giving modification times, in seconds since the Unix epoch (until then,
    /// every time is 0).
    pub fn set_clock(&mut self, now: fn() -> u64) {
        self.clock = now;
    }

    /// Bytes the files hold in total.
    pub fn used_bytes(&self) -> u64 {
        self.used
    }

    /// Most bytes the files may hold in total, as given to [`MemFs::new`].
    pub fn limit_bytes(&self) -> u64 {
        self.limit
    }

    fn node(&self, at: usize) -> Result<&Node, FsError> {
        self.nodes.get(at).and_then(Option::as_ref).ok_or(DANGLING)
    }

    fn node_mut(&mut self, at: usize) -> Result<&mut Node, FsError> {
        self.nodes.get_mut(at).and_then(Option::as_mut).ok_or(DANGLING)
    }

    /// The slot `path` names: `NotFound` if a component is missing, `NotADirectory` if one
    /// before the last is a file.
    fn lookup(&self, path: &str) -> Result<usize, FsError> {
        let mut at = ROOT;
        for name in components(path) {
            at = match &self.node(at)?.body {
                Body::Dir(children) => *children.get(name).ok_or(FsError::NotFound)?,
                Body::File(_) => return Err(FsError::NotADirectory),
            };
        }
        Ok(at)
    }

    /// The slot of the directory `path` names (`NotADirectory` if it is a file).
    fn dir(&self, path: &str) -> Result<usize, FsError> {
        let at = self.lookup(path)?;
        match self.node(at)?.body {
            Body::Dir(_) => Ok(at),
            Body::File(_) => Err(FsError::NotADirectory),
        }
    }

    /// The directory holding `path`'s last component, and that name (`InvalidPath` for the
    /// root, which has neither).
    fn parent<'p>(&self, path: &'p str) -> Result<(usize, &'p str), FsError> {
        let (parent, name) = split_last(path).ok_or(FsError::InvalidPath)?;
        Ok((self.dir(parent)?, name))
    }

    /// The slot of the entry `name` in the directory in slot `dir`, if there is one.
    fn child(&self, dir: usize, name: &str) -> Result<Option<usize>, FsError> {
        match &self.node(dir)?.body {
            Body::Dir(children) => Ok(children.get(name).copied()),
            Body::File(_) => Err(DANGLING),
        }
    }

    /// The entries of the directory in slot `dir`.
    fn children_mut(&mut self, dir: usize) -> Result<&mut BTreeMap<String, usize>, FsError> {
        match &mut self.node_mut(dir)?.body {
            Body::Dir(children) => Ok(children),
            Body::File(_) => Err(DANGLING),
        }
    }

    /// The bytes of the file `path` names (`IsADirectory` for a directory).
    fn file_mut(&mut self, path: &str) -> Result<&mut Node, FsError> {
        let at = self.lookup(path)?;
        let node = self.node_mut(at)?;
        match node.body {
            Body::File(_) => Ok(node),
            Body::Dir(_) => Err(FsError::IsADirectory),
        }
    }

    /// Sets a node's modification time.
    fn touch(&mut self, at: usize, now: u64) -> Result<(), FsError> {
        self.node_mut(at)?.modified = now;
        Ok(())
    }

    /// Puts `node` in a slot (a free one first) and returns the slot.
    fn alloc(&mut self, node: Node) -> Result<usize, FsError> {
        if let Some(at) = self.free.pop() {
            let slot = self.nodes.get_mut(at).ok_or(DANGLING)?;
            *slot = Some(node);
            return Ok(at);
        }
        self.nodes.try_reserve(1).map_err(|_| FsError::NoSpace)?;
        self.nodes.push(Some(node));
        Ok(self.nodes.len() - 1)
    }

    /// Frees slot `at` (already unnamed), giving its file bytes back.
    fn release(&mut self, at: usize) -> Result<(), FsError> {
        let node = self.nodes.get_mut(at).and_then(Option::take).ok_or(DANGLING)?;
        self.used = self.used.saturating_sub(node.size());
        self.free.push(at);
        Ok(())
    }

    /// Adds an entry named by `path`, holding `body`.
    fn add(&mut self, path: &str, body: Body) -> Result<(), FsError> {
        let (parent, name) = self.parent(path)?;
        if self.child(parent, name)?.is_some() {
            return Err(FsError::AlreadyExists);
        }
        let now = (self.clock)();
        let at = self.alloc(Node { modified: now, body })?;
        self.children_mut(parent)?.insert(String::from(name), at);
        self.touch(parent, now)
    }
}

/// Grows `data` with zeros to `len` bytes, failing (unchanged) with `NoSpace` if memory runs out.
fn grow(data: &mut Vec<u8>, len: usize) -> Result<(), FsError> {
    if let Some(more) = len.checked_sub(data.len()) {
        data.try_reserve(more).map_err(|_| FsError::NoSpace)?;
        data.resize(len, 0);
    }
    Ok(())
}

/// A byte position as an index into a file's bytes (every position up to [`MAX_FILE_SIZE`]
/// fits on the targets Vessel builds for).
fn index(pos: u64) -> Result<usize, FsError> {
    usize::try_from(pos).map_err(|_| FsError::FileTooLarge)
}

impl FileSystem for MemFs {
    fn stat(&mut self, path: &str) -> Result<Meta, FsError> {
        let node = self.node(self.lookup(path)?)?;
        Ok(Meta { kind: node.kind(), size: node.size(), modified: node.modified })
    }

    fn read(&mut self, path: &str, offset: u64, buf: &mut [u8]) -> Result<usize, FsError> {
        let node = self.node(self.lookup(path)?)?;
        let Body::File(data) = &node.body else {
            return Err(FsError::IsADirectory);
        };
        let Some(rest) = usize::try_from(offset).ok().and_then(|start| data.get(start..)) else {
            return Ok(0);
        };
        let n = rest.len().min(buf.len());
        if let (Some(to), Some(from)) = (buf.get_mut(..n), rest.get(..n)) {
            to.copy_from_slice(from);
        }
        Ok(n)
    }

    fn read_to(&mut self, path: &str, offset: u64, len: usize, sink: &mut dyn Sink) -> Result<usize, FsError> {
        let node = self.node(self.lookup(path)?)?;
        let Body::File(data) = &node.body else {
            return Err(FsError::IsADirectory);
        };
        let Some(rest) = usize::try_from(offset).ok().and_then(|start| data.get(start..)) else {
            return Ok(0);
        };
        let piece = &rest[..rest.len().min(len)];
        Ok(if piece.is_empty() || !sink.take(piece) { 0 } else { piece.len() })
    }

    fn write(&mut self, path: &str, offset: u64, data: &[u8]) -> Result<usize, FsError> {
        let (limit, used, now) = (self.limit, self.used, (self.clock)());
        let node = self.file_mut(path)?;
        if data.is_empty() {
            return Ok(0);
        }
        let end =
            offset.checked_add(data.len() as u64).filter(|&end| end <= MAX_FILE_SIZE).ok_or(FsError::FileTooLarge)?;
        let Body::File(bytes) = &mut node.body else {
            return Err(FsError::IsADirectory);
        };
        let added = end.saturating_sub(bytes.len() as u64);
        let used = used.checked_add(added).filter(|&u| u <= limit).ok_or(FsError::NoSpace)?;
        let (start, end) = (index(offset)?, index(end)?);
        grow(bytes, end)?;
        bytes.get_mut(start..end).ok_or(DANGLING)?.copy_from_slice(data);
        node.modified = now;
        self.used = used;
        Ok(data.len())
    }

    fn truncate(&mut self, path: &str, len: u64) -> Result<(), FsError> {
        let (limit, used, now) = (self.limit, self.used, (self.clock)());
        let node = self.file_mut(path)?;
        if len > MAX_FILE_SIZE {
            return Err(FsError::FileTooLarge);
        }
        let Body::File(bytes) = &mut node.body else {
            return Err(FsError::IsADirectory);
        };
        let old = bytes.len() as u64;
        let used = if len > old {
            let used = used.checked_add(len - old).filter(|&u| u <= limit).ok_or(FsError::NoSpace)?;
            grow(bytes, index(len)?)?;
            used
        } else {
            bytes.truncate(index(len)?);
            // Give memory back once most of the buffer is unused, not on every small cut.
            if bytes.capacity() / 2 > bytes.len() {
                bytes.shrink_to_fit();
            }
            used.saturating_sub(old - len)
        };
        node.modified = now;
        self.used = used;
        Ok(())
    }

    fn create(&mut self, path: &str) -> Result<(), FsError> {
        self.add(path, Body::File(Vec::new()))
    }

    fn mkdir(&mut self, path: &str) -> Result<(), FsError> {
        self.add(path, Body::Dir(BTreeMap::new()))
    }

    fn remove(&mut self, path: &str) -> Result<(), FsError> {
        let (parent, name) = self.parent(path)?;
        let at = self.child(parent, name)?.ok_or(FsError::NotFound)?;
        if matches!(&self.node(at)?.body, Body::Dir(children) if !children.is_empty()) {
            return Err(FsError::NotEmpty);
        }
        let now = (self.clock)();
        self.children_mut(parent)?.remove(name);
        self.release(at)?;
        self.touch(parent, now)
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<(), FsError> {
        let (from_parent, from_name) = self.parent(from)?;
        let at = self.child(from_parent, from_name)?.ok_or(FsError::NotFound)?;
        let (to_parent, to_name) = self.parent(to)?;
        if from == to {
            return Ok(());
        }
        let moving_dir = self.node(at)?.kind() == Kind::Dir;
        if moving_dir && is_within(to, from) {
            return Err(FsError::InvalidPath);
        }
        let existing = self.child(to_parent, to_name)?;
        if let Some(old) = existing {
            match (&self.node(at)?.body, &self.node(old)?.body) {
                (Body::File(_), Body::Dir(_)) => return Err(FsError::IsADirectory),
                (Body::Dir(_), Body::File(_)) => return Err(FsError::NotADirectory),
                (Body::Dir(_), Body::Dir(children)) if !children.is_empty() => return Err(FsError::NotEmpty),
                _ => {}
            }
        }
        let now = (self.clock)();
        if let Some(old) = existing {
            self.children_mut(to_parent)?.remove(to_name);
            self.release(old)?;
        }
        self.children_mut(from_parent)?.remove(from_name);
        self.children_mut(to_parent)?.insert(String::from(to_name), at);
        self.touch(at, now)?;
        self.touch(from_parent, now)?;
        self.touch(to_parent, now)
    }

    fn read_dir(&mut self, path: &str) -> Result<Vec<DirEntry>, FsError> {
        let Body::Dir(children) = &self.node(self.dir(path)?)?.body else {
            return Err(FsError::NotADirectory);
        };
        children
            .iter()
            .map(|(name, &at)| {
                let node = self.node(at)?;
                Ok(DirEntry { name: name.clone(), kind: node.kind(), size: node.size() })
            })
            .collect()
    }

    fn sync(&mut self) -> Result<(), FsError> {
        Ok(())
    }
}

/// A summary (the contents could be megabytes).
impl fmt::Debug for MemFs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemFs")
            .field("nodes", &self.nodes.len().saturating_sub(self.free.len()))
            .field("used", &self.used)
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::format;
    use std::string::{String, ToString};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::vec::Vec;

    use super::*;

    /// `"a/b/c"` as the absolute path a file system is given (`"/"` for `""`, the root).
    fn p(path: &str) -> String {
        abs(&path.split('/').filter(|c| !c.is_empty()).map(String::from).collect::<Vec<_>>())
    }

    /// Components as the absolute path a file system is given (`"/"` for none).
    fn abs(parts: &[String]) -> String {
        vessel_vfs_protocol::path::join(parts)
    }

    /// Every entry below the root, depth first in name order: path, kind, bytes (files), time.
    fn snapshot(fs: &mut MemFs) -> Vec<(Vec<String>, Kind, Vec<u8>, u64)> {
        let mut out = Vec::new();
        let mut stack = alloc::vec![Vec::new()];
        while let Some(dir) = stack.pop() {
            for entry in fs.read_dir(&abs(&dir)).unwrap().into_iter().rev() {
                let mut path = dir.clone();
                path.push(entry.name);
                let meta = fs.stat(&abs(&path)).unwrap();
                assert_eq!((meta.kind, meta.size), (entry.kind, entry.size));
                let bytes = if entry.kind == Kind::File { read_all(fs, &abs(&path)) } else { Vec::new() };
                if entry.kind == Kind::Dir {
                    stack.push(path.clone());
                }
                out.push((path, entry.kind, bytes, meta.modified));
            }
        }
        out.sort();
        out
    }

    /// The whole file, read in one call.
    fn read_all(fs: &mut MemFs, path: &str) -> Vec<u8> {
        let size = fs.stat(path).unwrap().size;
        let mut buf = alloc::vec![0xAA; size as usize + 7];
        let n = fs.read(path, 0, &mut buf).unwrap();
        assert_eq!(n as u64, size);
        buf.truncate(n);
        buf
    }

    /// Sum of the files' sizes, counted by walking the tree.
    fn counted_bytes(fs: &mut MemFs) -> u64 {
        snapshot(fs).iter().map(|(_, _, bytes, _)| bytes.len() as u64).sum()
    }

    use crate::tests::XorShift;

    #[test]
    fn an_empty_file_system_has_just_the_root() {
        let mut fs = MemFs::new(1024);
        assert_eq!(fs.stat("/"), Ok(Meta { kind: Kind::Dir, size: 0, modified: 0 }));
        assert_eq!(fs.read_dir("/"), Ok(Vec::new()));
        assert_eq!((fs.used_bytes(), fs.limit_bytes()), (0, 1024));
        assert_eq!(fs.sync(), Ok(()));
        assert!(format!("{fs:?}").contains("used: 0"));
    }

    #[test]
    fn writes_and_reads_at_offsets() {
        let mut fs = MemFs::new(1 << 20);
        fs.create(&p("f")).unwrap();
        assert_eq!(fs.stat(&p("f")), Ok(Meta { kind: Kind::File, size: 0, modified: 0 }));
        assert_eq!(fs.write(&p("f"), 0, b"hello world"), Ok(11));
        assert_eq!(fs.write(&p("f"), 6, b"WORLD!"), Ok(6));
        assert_eq!(read_all(&mut fs, &p("f")), b"hello WORLD!");
        let mut buf = [0u8; 5];
        assert_eq!(fs.read(&p("f"), 3, &mut buf), Ok(5));
        assert_eq!(&buf, b"lo WO");
        assert_eq!(fs.read(&p("f"), 9, &mut buf), Ok(3));
        assert_eq!(&buf[..3], b"LD!");
        assert_eq!(fs.read(&p("f"), 12, &mut buf), Ok(0));
        assert_eq!(fs.read(&p("f"), 1000, &mut buf), Ok(0));
        assert_eq!(fs.read(&p("f"), u64::MAX, &mut buf), Ok(0));
        assert_eq!(fs.read(&p("f"), 0, &mut []), Ok(0));
        assert_eq!(fs.write(&p("f"), 0, b""), Ok(0));
        assert_eq!(fs.write(&p("f"), u64::MAX, b""), Ok(0));
        assert_eq!(fs.stat(&p("f")).unwrap().size, 12);
        assert_eq!(fs.used_bytes(), 12);
        assert_eq!(fs.read_dir("/"), Ok(alloc::vec![DirEntry { name: "f".into(), kind: Kind::File, size: 12 }]));
    }

    #[test]
    fn a_gap_reads_as_zeros() {
        let mut fs = MemFs::new(1 << 20);
        fs.create(&p("f")).unwrap();
        fs.write(&p("f"), 0, b"ab").unwrap();
        fs.write(&p("f"), 10, b"cd").unwrap();
        assert_eq!(read_all(&mut fs, &p("f")), b"ab\0\0\0\0\0\0\0\0cd");
        fs.create(&p("g")).unwrap();
        fs.write(&p("g"), 5000, b"x").unwrap();
        let bytes = read_all(&mut fs, &p("g"));
        assert_eq!(bytes.len(), 5001);
        assert!(bytes[..5000].iter().all(|&b| b == 0));
        assert_eq!(fs.used_bytes(), 12 + 5001);
    }

    #[test]
    fn truncate_shrinks_and_grows() {
        let mut fs = MemFs::new(1 << 20);
        fs.create(&p("f")).unwrap();
        fs.write(&p("f"), 0, &[7u8; 100_000]).unwrap();
        fs.truncate(&p("f"), 10).unwrap();
        assert_eq!(read_all(&mut fs, &p("f")), [7u8; 10]);
        assert_eq!(fs.used_bytes(), 10);
        fs.truncate(&p("f"), 20).unwrap();
        let mut want = alloc::vec![7u8; 10];
        want.resize(20, 0);
        assert_eq!(read_all(&mut fs, &p("f")), want);
        assert_eq!(fs.used_bytes(), 20);
        fs.truncate(&p("f"), 20).unwrap();
        fs.truncate(&p("f"), 0).unwrap();
        assert_eq!(fs.stat(&p("f")).unwrap().size, 0);
        assert_eq!(fs.used_bytes(), 0);
        // Bytes cut off do not come back when the file grows again.
        fs.write(&p("f"), 0, b"xyz").unwrap();
        fs.truncate(&p("f"), 1).unwrap();
        fs.truncate(&p("f"), 3).unwrap();
        assert_eq!(read_all(&mut fs, &p("f")), b"x\0\0");
    }

    #[test]
    fn nested_directories() {
        let mut fs = MemFs::new(1 << 20);
        fs.mkdir(&p("a")).unwrap();
        fs.mkdir(&p("a/b")).unwrap();
        fs.mkdir(&p("a/b/c")).unwrap();
        fs.create(&p("a/b/c/deep")).unwrap();
        fs.write(&p("a/b/c/deep"), 0, b"down here").unwrap();
        fs.create(&p("a/top")).unwrap();
        assert_eq!(fs.stat(&p("a/b")).unwrap().kind, Kind::Dir);
        assert_eq!(read_all(&mut fs, &p("a/b/c/deep")), b"down here");
        let names: Vec<_> = fs.read_dir(&p("a")).unwrap().into_iter().map(|e| (e.name, e.kind)).collect();
        assert_eq!(names, [("b".to_string(), Kind::Dir), ("top".to_string(), Kind::File)]);
        assert_eq!(fs.remove(&p("a/b")), Err(FsError::NotEmpty));
        fs.remove(&p("a/b/c/deep")).unwrap();
        fs.remove(&p("a/b/c")).unwrap();
        fs.remove(&p("a/b")).unwrap();
        assert_eq!(fs.stat(&p("a/b/c/deep")), Err(FsError::NotFound));
        assert_eq!(fs.read_dir(&p("a")).unwrap().len(), 1);
        // 64 levels, the most `vfs` lets a path have.
        let mut path = String::new();
        for i in 0..64 {
            path.push_str(&format!("/d{i}"));
            fs.mkdir(&path).unwrap();
        }
        assert_eq!(fs.stat(&path).unwrap().kind, Kind::Dir);
    }

    #[test]
    fn non_ascii_and_255_byte_names() {
        let mut fs = MemFs::new(1 << 20);
        let long = "x".repeat(255);
        let long_accented = format!("{}x", "é".repeat(127));
        assert_eq!(long_accented.len(), 255);
        let names = ["Ünïcödé näme.txt", "日本語", "emoji 🦀", " spaced ", long.as_str(), long_accented.as_str()];
        for name in names {
            let path = format!("/{name}");
            fs.create(&path).unwrap();
            fs.write(&path, 0, name.as_bytes()).unwrap();
        }
        fs.mkdir(&p("répertoire")).unwrap();
        fs.create(&p("répertoire/fichier")).unwrap();
        for name in names {
            assert_eq!(read_all(&mut fs, &format!("/{name}")), name.as_bytes());
        }
        let listed: Vec<String> = fs.read_dir("/").unwrap().into_iter().map(|e| e.name).collect();
        let mut want: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        want.push("répertoire".into());
        want.sort();
        assert_eq!(listed, want);
        // Names are compared as bytes: no case folding, no normalisation.
        assert_eq!(fs.stat(&p("日本語")).unwrap().kind, Kind::File);
        assert_eq!(fs.stat(&p("ünïcödé näme.txt")), Err(FsError::NotFound));
        assert_eq!(fs.stat(&p("X".repeat(255).as_str())), Err(FsError::NotFound));
    }

    #[test]
    fn a_directory_of_1000_files() {
        let mut fs = MemFs::new(1 << 20);
        fs.mkdir(&p("many")).unwrap();
        let name = |i: u32| format!("/many/file{i:04}");
        for i in 0..1000u32 {
            fs.create(&name(i)).unwrap();
            fs.write(&name(i), 0, &i.to_le_bytes()[..(i % 4) as usize + 1]).unwrap();
        }
        assert_eq!(fs.create(&name(500)), Err(FsError::AlreadyExists));
        let listed = fs.read_dir(&p("many")).unwrap();
        assert_eq!(listed.len(), 1000);
        for (i, entry) in (0..1000u32).zip(&listed) {
            assert_eq!(entry.name, format!("file{i:04}"));
            assert_eq!((entry.kind, entry.size), (Kind::File, u64::from(i % 4) + 1));
            let mut buf = [0u8; 4];
            let n = fs.read(&name(i), 0, &mut buf).unwrap();
            assert_eq!(buf[..n], i.to_le_bytes()[..n]);
        }
        assert_eq!(fs.used_bytes(), (0..1000u64).map(|i| i % 4 + 1).sum());
        for i in (0..1000u32).rev() {
            fs.remove(&name(i)).unwrap();
        }
        assert_eq!(fs.read_dir(&p("many")), Ok(Vec::new()));
        assert_eq!(fs.used_bytes(), 0);
        fs.remove(&p("many")).unwrap();
        // The freed slots are reused: the arena does not grow for the next thousand.
        let slots = fs.nodes.len();
        fs.mkdir(&p("many")).unwrap();
        for i in 0..1000u32 {
            fs.create(&name(i)).unwrap();
        }
        assert_eq!(fs.nodes.len(), slots);
    }

    #[test]
    fn a_16_mib_file_in_4_kib_pieces() {
        const SIZE: usize = 16 << 20;
        let mut fs = MemFs::new(SIZE as u64);
        let want = XorShift(0x5eed).bytes(SIZE);
        fs.create(&p("big")).unwrap();
        for (i, piece) in want.chunks(4096).enumerate() {
            assert_eq!(fs.write(&p("big"), (i * 4096) as u64, piece), Ok(4096));
        }
        assert_eq!(fs.stat(&p("big")).unwrap().size, SIZE as u64);
        assert_eq!(fs.used_bytes(), SIZE as u64);
        assert_eq!(fs.write(&p("big"), SIZE as u64, b"!"), Err(FsError::NoSpace));
        let mut got = Vec::with_capacity(SIZE);
        let mut buf = alloc::vec![0u8; 4096];
        loop {
            let n = fs.read(&p("big"), got.len() as u64, &mut buf).unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        assert!(got == want, "16 MiB file read back differs");
        // Unaligned reads agree too.
        let mut odd = alloc::vec![0u8; 10_007];
        for offset in [1u64, 4095, 4097, SIZE as u64 - 10_007, SIZE as u64 - 3] {
            let n = fs.read(&p("big"), offset, &mut odd).unwrap();
            assert_eq!(odd[..n], want[offset as usize..][..n]);
        }
        fs.remove(&p("big")).unwrap();
        assert_eq!(fs.used_bytes(), 0);
    }

    #[test]
    fn rename_within_and_across_directories() {
        let mut fs = MemFs::new(1 << 20);
        fs.mkdir(&p("src")).unwrap();
        fs.mkdir(&p("dst")).unwrap();
        fs.create(&p("src/f")).unwrap();
        fs.write(&p("src/f"), 0, b"contents").unwrap();
        fs.rename(&p("src/f"), &p("src/g")).unwrap();
        assert_eq!(fs.stat(&p("src/f")), Err(FsError::NotFound));
        assert_eq!(read_all(&mut fs, &p("src/g")), b"contents");
        fs.rename(&p("src/g"), &p("dst/h")).unwrap();
        assert_eq!(fs.read_dir(&p("src")), Ok(Vec::new()));
        assert_eq!(read_all(&mut fs, &p("dst/h")), b"contents");
        // A directory moves with everything below it.
        fs.mkdir(&p("src/sub")).unwrap();
        fs.create(&p("src/sub/inner")).unwrap();
        fs.rename(&p("src"), &p("dst/moved")).unwrap();
        assert_eq!(fs.stat(&p("src")), Err(FsError::NotFound));
        assert_eq!(fs.stat(&p("dst/moved/sub/inner")).unwrap().kind, Kind::File);
        // And up again, to the root.
        fs.rename(&p("dst/moved/sub"), &p("sub")).unwrap();
        assert_eq!(fs.stat(&p("sub/inner")).unwrap().kind, Kind::File);
        // Renaming to itself does nothing.
        let before = snapshot(&mut fs);
        fs.rename(&p("dst/h"), &p("dst/h")).unwrap();
        fs.rename(&p("sub"), &p("sub")).unwrap();
        assert_eq!(snapshot(&mut fs), before);
        assert_eq!(fs.used_bytes(), 8);
    }

    #[test]
    fn rename_replaces_a_file_or_an_empty_directory_and_refuses_a_directory_into_itself() {
        let mut fs = MemFs::new(1 << 20);
        fs.create(&p("a")).unwrap();
        fs.write(&p("a"), 0, b"new").unwrap();
        fs.create(&p("b")).unwrap();
        fs.write(&p("b"), 0, b"old contents").unwrap();
        assert_eq!(fs.used_bytes(), 15);
        fs.rename(&p("a"), &p("b")).unwrap();
        assert_eq!(read_all(&mut fs, &p("b")), b"new");
        assert_eq!(fs.stat(&p("a")), Err(FsError::NotFound));
        assert_eq!(fs.used_bytes(), 3);

        fs.mkdir(&p("d")).unwrap();
        fs.create(&p("d/x")).unwrap();
        fs.mkdir(&p("empty")).unwrap();
        fs.rename(&p("d"), &p("empty")).unwrap();
        assert_eq!(fs.stat(&p("empty/x")).unwrap().kind, Kind::File);
        assert_eq!(fs.stat(&p("d")), Err(FsError::NotFound));

        fs.mkdir(&p("empty/inner")).unwrap();
        let before = snapshot(&mut fs);
        assert_eq!(fs.rename(&p("empty"), &p("empty/inner")), Err(FsError::InvalidPath));
        assert_eq!(fs.rename(&p("empty"), &p("empty/inner/deeper")), Err(FsError::InvalidPath));
        assert_eq!(fs.rename(&p("empty"), &p("empty/new")), Err(FsError::InvalidPath));
        // Onto an ancestor: the ancestor is not empty (it holds the source).
        assert_eq!(fs.rename(&p("empty/inner"), &p("empty")), Err(FsError::NotEmpty));
        assert_eq!(fs.rename(&p("empty/x"), &p("empty")), Err(FsError::IsADirectory));
        assert_eq!(snapshot(&mut fs), before);
        // A name that merely starts like the directory's is not inside it.
        fs.rename(&p("empty"), &p("empty2")).unwrap();
        assert_eq!(fs.stat(&p("empty2/inner")).unwrap().kind, Kind::Dir);
    }

    #[test]
    fn no_space_at_the_limit_changes_nothing() {
        let mut fs = MemFs::new(100);
        fs.create(&p("a")).unwrap();
        fs.create(&p("b")).unwrap();
        fs.write(&p("a"), 0, &[1; 60]).unwrap();
        let before = snapshot(&mut fs);
        assert_eq!(fs.write(&p("b"), 0, &[2; 41]), Err(FsError::NoSpace));
        assert_eq!(fs.write(&p("b"), 40, b"x"), Err(FsError::NoSpace));
        assert_eq!(fs.write(&p("a"), 59, &[3; 42]), Err(FsError::NoSpace));
        assert_eq!(fs.truncate(&p("b"), 41), Err(FsError::NoSpace));
        assert_eq!(fs.truncate(&p("a"), MAX_FILE_SIZE), Err(FsError::NoSpace));
        assert_eq!(fs.write(&p("b"), MAX_FILE_SIZE - 1, b"x"), Err(FsError::NoSpace));
        assert_eq!(snapshot(&mut fs), before);
        assert_eq!(fs.used_bytes(), 60);

        // Exactly at the limit is fine; overwriting inside a full file still is.
        fs.write(&p("b"), 0, &[2; 40]).unwrap();
        assert_eq!(fs.used_bytes(), 100);
        fs.write(&p("a"), 10, &[9; 50]).unwrap();
        fs.truncate(&p("a"), 60).unwrap();
        assert_eq!(fs.create(&p("c")), Ok(()));
        assert_eq!(fs.write(&p("c"), 0, b"x"), Err(FsError::NoSpace));
        assert_eq!(fs.used_bytes(), 100);

        // Removing frees space.
        fs.remove(&p("b")).unwrap();
        assert_eq!(fs.used_bytes(), 60);
        fs.write(&p("c"), 0, &[4; 40]).unwrap();
        assert_eq!(fs.write(&p("c"), 40, b"x"), Err(FsError::NoSpace));
        // So does truncating, and renaming over a file.
        fs.truncate(&p("a"), 10).unwrap();
        assert_eq!(fs.used_bytes(), 50);
        fs.write(&p("c"), 40, &[5; 50]).unwrap();
        assert_eq!(fs.used_bytes(), 100);
        fs.rename(&p("a"), &p("c")).unwrap();
        assert_eq!(fs.used_bytes(), 10);
        assert_eq!(counted_bytes(&mut fs), 10);

        let mut none = MemFs::new(0);
        none.create(&p("f")).unwrap();
        none.mkdir(&p("d")).unwrap();
        assert_eq!(none.write(&p("f"), 0, b"x"), Err(FsError::NoSpace));
        assert_eq!(none.truncate(&p("f"), 0), Ok(()));
    }

    #[test]
    fn every_error() {
        let mut fs = MemFs::new(1 << 20);
        fs.mkdir(&p("d")).unwrap();
        fs.create(&p("d/f")).unwrap();
        fs.write(&p("d/f"), 0, b"data").unwrap();
        fs.mkdir(&p("e")).unwrap();
        fs.mkdir(&p("full")).unwrap();
        fs.create(&p("full/x")).unwrap();
        fs.create(&p("g")).unwrap();
        let before = snapshot(&mut fs);
        let mut buf = [0u8; 8];
        use FsError::*;

        assert_eq!(fs.stat(&p("nope")), Err(NotFound));
        assert_eq!(fs.stat(&p("nope/x")), Err(NotFound));
        assert_eq!(fs.stat(&p("d/f/x")), Err(NotADirectory));
        assert_eq!(fs.stat(&p("d/f/x/y")), Err(NotADirectory));

        assert_eq!(fs.read(&p("d"), 0, &mut buf), Err(IsADirectory));
        assert_eq!(fs.read("/", 0, &mut buf), Err(IsADirectory));
        assert_eq!(fs.read(&p("nope"), 0, &mut buf), Err(NotFound));
        assert_eq!(fs.read(&p("d/f/x"), 0, &mut buf), Err(NotADirectory));
        assert_eq!(fs.write(&p("d"), 0, b"x"), Err(IsADirectory));
        assert_eq!(fs.write(&p("d"), 0, b""), Err(IsADirectory));
        assert_eq!(fs.write("/", 0, b"x"), Err(IsADirectory));
        assert_eq!(fs.write(&p("nope"), 0, b"x"), Err(NotFound));
        assert_eq!(fs.write(&p("g/x"), 0, b"x"), Err(NotADirectory));
        assert_eq!(fs.truncate(&p("d"), 0), Err(IsADirectory));
        assert_eq!(fs.truncate(&p("nope"), 0), Err(NotFound));
        assert_eq!(fs.truncate(&p("g/x"), 0), Err(NotADirectory));

        assert_eq!(fs.write(&p("g"), MAX_FILE_SIZE, b"x"), Err(FileTooLarge));
        assert_eq!(fs.write(&p("g"), MAX_FILE_SIZE - 1, b"xy"), Err(FileTooLarge));
        assert_eq!(fs.write(&p("g"), u64::MAX, b"xy"), Err(FileTooLarge));
        assert_eq!(fs.write(&p("g"), u64::MAX - 1, b"xy"), Err(FileTooLarge));
        assert_eq!(fs.truncate(&p("g"), MAX_FILE_SIZE + 1), Err(FileTooLarge));
        assert_eq!(fs.truncate(&p("g"), u64::MAX), Err(FileTooLarge));

        assert_eq!(fs.read_dir(&p("d/f")), Err(NotADirectory));
        assert_eq!(fs.read_dir(&p("nope")), Err(NotFound));
        assert_eq!(fs.read_dir(&p("d/f/x")), Err(NotADirectory));

        assert_eq!(fs.create(&p("d")), Err(AlreadyExists));
        assert_eq!(fs.create(&p("d/f")), Err(AlreadyExists));
        assert_eq!(fs.mkdir(&p("d")), Err(AlreadyExists));
        assert_eq!(fs.mkdir(&p("d/f")), Err(AlreadyExists));
        assert_eq!(fs.create(&p("nope/f")), Err(NotFound));
        assert_eq!(fs.mkdir(&p("nope/f")), Err(NotFound));
        assert_eq!(fs.create(&p("d/f/x")), Err(NotADirectory));
        assert_eq!(fs.mkdir(&p("d/f/x")), Err(NotADirectory));
        assert_eq!(fs.create("/"), Err(InvalidPath));
        assert_eq!(fs.mkdir("/"), Err(InvalidPath));

        assert_eq!(fs.remove("/"), Err(InvalidPath));
        assert_eq!(fs.remove(&p("d")), Err(NotEmpty));
        assert_eq!(fs.remove(&p("nope")), Err(NotFound));
        assert_eq!(fs.remove(&p("nope/x")), Err(NotFound));
        assert_eq!(fs.remove(&p("d/f/x")), Err(NotADirectory));

        assert_eq!(fs.rename("/", &p("x")), Err(InvalidPath));
        assert_eq!(fs.rename(&p("d"), "/"), Err(InvalidPath));
        assert_eq!(fs.rename(&p("g"), "/"), Err(InvalidPath));
        assert_eq!(fs.rename(&p("nope"), &p("x")), Err(NotFound));
        assert_eq!(fs.rename(&p("d/f/x"), &p("x")), Err(NotADirectory));
        assert_eq!(fs.rename(&p("g"), &p("nope/x")), Err(NotFound));
        assert_eq!(fs.rename(&p("g"), &p("d/f/x")), Err(NotADirectory));
        assert_eq!(fs.rename(&p("d"), &p("d/sub")), Err(InvalidPath));
        assert_eq!(fs.rename(&p("d"), &p("d/f")), Err(InvalidPath));
        assert_eq!(fs.rename(&p("g"), &p("e")), Err(IsADirectory));
        assert_eq!(fs.rename(&p("e"), &p("g")), Err(NotADirectory));
        assert_eq!(fs.rename(&p("e"), &p("full")), Err(NotEmpty));
        assert_eq!(fs.rename(&p("d"), &p("full")), Err(NotEmpty));

        assert_eq!(snapshot(&mut fs), before);
        assert_eq!(fs.used_bytes(), 4);
    }

    static CLOCK: AtomicU64 = AtomicU64::new(0);

    fn test_clock() -> u64 {
        CLOCK.load(Ordering::Relaxed)
    }

    #[test]
    fn modification_times_follow_the_clock() {
        let mut fs = MemFs::new(1 << 20);
        fs.set_clock(test_clock);
        let at = |fs: &mut MemFs, path: &str| fs.stat(&p(path)).unwrap().modified;
        CLOCK.store(10, Ordering::Relaxed);
        fs.mkdir(&p("a")).unwrap();
        fs.mkdir(&p("b")).unwrap();
        CLOCK.store(20, Ordering::Relaxed);
        fs.create(&p("a/f")).unwrap();
        assert_eq!((at(&mut fs, "a/f"), at(&mut fs, "a"), at(&mut fs, ""), at(&mut fs, "b")), (20, 20, 10, 10));
        CLOCK.store(30, Ordering::Relaxed);
        fs.write(&p("a/f"), 0, b"x").unwrap();
        assert_eq!((at(&mut fs, "a/f"), at(&mut fs, "a")), (30, 20));
        CLOCK.store(40, Ordering::Relaxed);
        fs.truncate(&p("a/f"), 0).unwrap();
        assert_eq!(at(&mut fs, "a/f"), 40);
        CLOCK.store(50, Ordering::Relaxed);
        fs.rename(&p("a/f"), &p("b/f")).unwrap();
        assert_eq!((at(&mut fs, "b/f"), at(&mut fs, "a"), at(&mut fs, "b"), at(&mut fs, "")), (50, 50, 50, 10));
        CLOCK.store(60, Ordering::Relaxed);
        fs.remove(&p("b/f")).unwrap();
        assert_eq!((at(&mut fs, "b"), at(&mut fs, "a")), (60, 50));
        // A failed operation touches nothing.
        CLOCK.store(70, Ordering::Relaxed);
        assert_eq!(fs.create(&p("a")), Err(FsError::AlreadyExists));
        assert_eq!(fs.remove(&p("a/nope")), Err(FsError::NotFound));
        assert_eq!((at(&mut fs, ""), at(&mut fs, "a")), (10, 50));
        // A read or a listing neither.
        fs.read_dir(&p("a")).unwrap();
        assert_eq!(at(&mut fs, "a"), 50);
    }

    /// The reference: every entry by full path, `None` for a directory (the root implied).
    struct Model {
        tree: BTreeMap<Vec<String>, Option<Vec<u8>>>,
        limit: u64,
    }

    impl Model {
        fn used(&self) -> u64 {
            self.tree.values().flatten().map(|d| d.len() as u64).sum()
        }

        /// The entry `path` names: `Some(bytes)` for a file, `None` for a directory.
        fn get(&self, path: &[String]) -> Result<Option<&Vec<u8>>, FsError> {
            for i in 1..path.len() {
                match self.tree.get(&path[..i]) {
                    None => return Err(FsError::NotFound),
                    Some(Some(_)) => return Err(FsError::NotADirectory),
                    Some(None) => {}
                }
            }
            if path.is_empty() {
                return Ok(None);
            }
            self.tree.get(path).map(Option::as_ref).ok_or(FsError::NotFound)
        }

        fn dir(&self, path: &[String]) -> Result<(), FsError> {
            match self.get(path)? {
                None => Ok(()),
                Some(_) => Err(FsError::NotADirectory),
            }
        }

        fn parent(&self, path: &[String]) -> Result<(), FsError> {
            let (_, parent) = path.split_last().ok_or(FsError::InvalidPath)?;
            self.dir(parent)
        }

        fn children(&self, path: &[String]) -> Vec<Vec<String>> {
            let path = path.to_vec();
            self.tree
                .range(path.clone()..)
                .take_while(|(k, _)| k.starts_with(&path))
                .filter(|(k, _)| k.len() == path.len() + 1)
                .map(|(k, _)| k.clone())
                .collect()
        }

        fn file(&mut self, path: &[String]) -> Result<&mut Vec<u8>, FsError> {
            self.get(path)?.ok_or(FsError::IsADirectory)?;
            self.tree.get_mut(path).and_then(Option::as_mut).ok_or(FsError::NotFound)
        }

        fn stat(&self, path: &[String]) -> Result<(Kind, u64), FsError> {
            Ok(match self.get(path)? {
                None => (Kind::Dir, 0),
                Some(d) => (Kind::File, d.len() as u64),
            })
        }

        fn read(&self, path: &[String], offset: u64, len: usize) -> Result<Vec<u8>, FsError> {
            let data = self.get(path)?.ok_or(FsError::IsADirectory)?;
            let start = (offset.min(data.len() as u64)) as usize;
            Ok(data[start..].iter().take(len).copied().collect())
        }

        fn write(&mut self, path: &[String], offset: u64, bytes: &[u8]) -> Result<usize, FsError> {
            let (limit, used) = (self.limit, self.used());
            let data = self.file(path)?;
            if bytes.is_empty() {
                return Ok(0);
            }
            let end = offset.checked_add(bytes.len() as u64).filter(|&e| e <= MAX_FILE_SIZE);
            let end = end.ok_or(FsError::FileTooLarge)?;
            if used + end.saturating_sub(data.len() as u64) > limit {
                return Err(FsError::NoSpace);
            }
            if data.len() < end as usize {
                data.resize(end as usize, 0);
            }
            data[offset as usize..end as usize].copy_from_slice(bytes);
            Ok(bytes.len())
        }

        fn truncate(&mut self, path: &[String], len: u64) -> Result<(), FsError> {
            let (limit, used) = (self.limit, self.used());
            let data = self.file(path)?;
            if len > MAX_FILE_SIZE {
                return Err(FsError::FileTooLarge);
            }
            if used + len.saturating_sub(data.len() as u64) > limit {
                return Err(FsError::NoSpace);
            }
            data.resize(len as usize, 0);
            Ok(())
        }

        fn add(&mut self, path: &[String], entry: Option<Vec<u8>>) -> Result<(), FsError> {
            self.parent(path)?;
            if self.tree.contains_key(path) {
                return Err(FsError::AlreadyExists);
            }
            self.tree.insert(path.to_vec(), entry);
            Ok(())
        }

        fn remove(&mut self, path: &[String]) -> Result<(), FsError> {
            self.parent(path)?;
            match self.tree.get(path) {
                None => return Err(FsError::NotFound),
                Some(None) if !self.children(path).is_empty() => return Err(FsError::NotEmpty),
                _ => {}
            }
            self.tree.remove(path);
            Ok(())
        }

        fn rename(&mut self, from: &[String], to: &[String]) -> Result<(), FsError> {
            self.parent(from)?;
            let from_is_dir = self.tree.get(from).ok_or(FsError::NotFound)?.is_none();
            self.parent(to)?;
            if from == to {
                return Ok(());
            }
            if from_is_dir && to.starts_with(from) {
                return Err(FsError::InvalidPath);
            }
            match (from_is_dir, self.tree.get(to)) {
                (false, Some(None)) => return Err(FsError::IsADirectory),
                (true, Some(Some(_))) => return Err(FsError::NotADirectory),
                (true, Some(None)) if !self.children(to).is_empty() => return Err(FsError::NotEmpty),
                _ => {}
            }
            self.tree.remove(to);
            let moved: Vec<Vec<String>> = self.tree.keys().filter(|k| k.starts_with(from)).cloned().collect();
            for old in moved {
                let entry = self.tree.remove(&old).unwrap();
                let mut new = to.to_vec();
                new.extend_from_slice(&old[from.len()..]);
                self.tree.insert(new, entry);
            }
            Ok(())
        }

        fn read_dir(&self, path: &[String]) -> Result<Vec<DirEntry>, FsError> {
            self.dir(path)?;
            Ok(self
                .children(path)
                .into_iter()
                .map(|k| {
                    let (kind, size) = self.stat(&k).unwrap();
                    DirEntry { name: k.last().unwrap().clone(), kind, size }
                })
                .collect())
        }
    }

    /// A path of up to 3 components from a small alphabet, so operations collide often.
    fn random_path(rng: &mut XorShift) -> Vec<String> {
        const NAMES: [&str; 4] = ["a", "b", "é", "ab"];
        let depth = match rng.below(16) {
            0 => 0,
            1..=5 => 1,
            6..=11 => 2,
            _ => 3,
        };
        (0..depth).map(|_| NAMES[rng.below(4) as usize].to_string()).collect()
    }

    /// An offset or a length: mostly small, sometimes at the edges of what a file can hold.
    fn random_position(rng: &mut XorShift) -> u64 {
        match rng.below(40) {
            0 => MAX_FILE_SIZE - rng.below(4),
            1 => u64::MAX - rng.below(4),
            2 => MAX_FILE_SIZE + rng.below(4),
            _ => rng.below(700),
        }
    }

    #[test]
    fn random_operations_agree_with_a_model() {
        const LIMIT: u64 = 3000;
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let mut fs = MemFs::new(LIMIT);
        let mut model = Model { tree: BTreeMap::new(), limit: LIMIT };
        let mut seen = BTreeSet::new();
        for step in 0..20_000u32 {
            let path = random_path(&mut rng);
            let (op, outcome) = match rng.below(100) {
                0..=24 => {
                    let offset = random_position(&mut rng);
                    let len = rng.below(300) as usize;
                    let data = rng.bytes(len);
                    let got = fs.write(&abs(&path), offset, &data);
                    assert_eq!(got, model.write(&path, offset, &data), "step {step}: write {path:?} at {offset}");
                    ("write", got.map(|_| ()))
                }
                25..=39 => {
                    let offset = random_position(&mut rng);
                    let mut buf = alloc::vec![0u8; rng.below(400) as usize];
                    let got = fs.read(&abs(&path), offset, &mut buf).map(|n| buf[..n].to_vec());
                    assert_eq!(got, model.read(&path, offset, buf.len()), "step {step}: read {path:?} at {offset}");
                    ("read", got.map(|_| ()))
                }
                40..=47 => {
                    let len = random_position(&mut rng);
                    let got = fs.truncate(&abs(&path), len);
                    assert_eq!(got, model.truncate(&path, len), "step {step}: truncate {path:?} to {len}");
                    ("truncate", got)
                }
                48..=57 => {
                    let got = fs.create(&abs(&path));
                    assert_eq!(got, model.add(&path, Some(Vec::new())), "step {step}: create {path:?}");
                    ("create", got)
                }
                58..=67 => {
                    let got = fs.mkdir(&abs(&path));
                    assert_eq!(got, model.add(&path, None), "step {step}: mkdir {path:?}");
                    ("mkdir", got)
                }
                68..=77 => {
                    let got = fs.remove(&abs(&path));
                    assert_eq!(got, model.remove(&path), "step {step}: remove {path:?}");
                    ("remove", got)
                }
                78..=89 => {
                    let to = random_path(&mut rng);
                    let got = fs.rename(&abs(&path), &abs(&to));
                    assert_eq!(got, model.rename(&path, &to), "step {step}: rename {path:?} to {to:?}");
                    ("rename", got)
                }
                90..=94 => {
                    let got = fs.stat(&abs(&path)).map(|m| (m.kind, m.size));
                    assert_eq!(got, model.stat(&path), "step {step}: stat {path:?}");
                    assert!(got.is_err() || fs.stat(&abs(&path)).unwrap().modified == 0);
                    ("stat", got.map(|_| ()))
                }
                _ => {
                    let got = fs.read_dir(&abs(&path));
                    assert_eq!(got, model.read_dir(&path), "step {step}: read_dir {path:?}");
                    ("read_dir", got.map(|_| ()))
                }
            };
            seen.insert(format!("{op} {outcome:?}"));
            assert_eq!(fs.used_bytes(), model.used(), "step {step}: used bytes");
            if step % 500 == 0 {
                let tree: Vec<_> = snapshot(&mut fs).into_iter().map(|(k, kind, bytes, _)| (k, kind, bytes)).collect();
                let want: Vec<_> = model
                    .tree
                    .iter()
                    .map(|(k, v)| match v {
                        Some(bytes) => (k.clone(), Kind::File, bytes.clone()),
                        None => (k.clone(), Kind::Dir, Vec::new()),
                    })
                    .collect();
                assert_eq!(tree, want, "step {step}: trees differ");
                assert_eq!(fs.nodes.len() - fs.free.len(), model.tree.len() + 1, "step {step}: live nodes");
            }
        }
        // The run reached the interesting outcomes, not just the easy ones.
        for outcome in [
            "write Ok(())",
            "write Err(NoSpace)",
            "write Err(FileTooLarge)",
            "write Err(IsADirectory)",
            "write Err(NotADirectory)",
            "write Err(NotFound)",
            "truncate Ok(())",
            "truncate Err(NoSpace)",
            "truncate Err(FileTooLarge)",
            "read Ok(())",
            "create Err(AlreadyExists)",
            "mkdir Ok(())",
            "remove Ok(())",
            "remove Err(NotEmpty)",
            "remove Err(InvalidPath)",
            "rename Ok(())",
            "rename Err(InvalidPath)",
            "rename Err(NotEmpty)",
            "rename Err(IsADirectory)",
            "rename Err(NotADirectory)",
            "read_dir Ok(())",
            "read_dir Err(NotADirectory)",
        ] {
            assert!(seen.contains(outcome), "never saw {outcome}; saw {seen:?}");
        }
    }
}
