//! Path resolution under a root: the rule that makes a directory handle a true root.
//!
//! A request names an entry by a directory handle (0: the container's root) and a path below
//! it. [`resolve`] appends the path's components to the handle's own and resolves them by text:
//! `.` and empty components are skipped, and `..` drops the last component *only if it was
//! added by this path*: at the handle's own directory it stays there. A leading `/` means the
//! handle's directory too, never anything above it. No file system `vfs` serves has links, so
//! resolving `..` by text names exactly what walking it would.
//!
//! A path is refused if it holds a NUL byte or is too long: [`MAX_PATH`] bytes per path,
//! [`MAX_NAME`] bytes per component, [`MAX_DEPTH`] components at any point of the walk (so
//! `a/b/../c` counts two, then three). Names are otherwise taken as they are (spaces too);
//! each file system refuses what it cannot store.
//!
//! [`Path`] is a resolved path held as one string in absolute form (`/a/b/c`, `/` for the root),
//! which [`Path::resolve`] builds with one allocation; `vfs` keeps its namespaces, handles and
//! mounts in it, and hands file systems the part inside a mount as a `&str` of the same form,
//! which [`components`], [`split_last`] and [`is_within`] take apart without allocating.
//! [`resolve`], [`join`] and [`starts_with`] are the same rules over a list of components
//! ([`resolve`] is [`Path::resolve`]).

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Longest path a request may carry, in bytes.
pub const MAX_PATH: usize = 1024;
/// Longest component, in bytes (FAT's 255 UTF-16 units can need up to 765 bytes of UTF-8;
/// longer names than 255 bytes are refused by `vfs` for every file system alike).
pub const MAX_NAME: usize = 255;
/// Most components a path may have at any point while it is resolved.
pub const MAX_DEPTH: usize = 64;

/// Why a path was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathError {
    /// Longer than [`MAX_PATH`] bytes.
    TooLong,
    /// A component longer than [`MAX_NAME`] bytes.
    NameTooLong,
    /// Deeper than [`MAX_DEPTH`] components.
    TooDeep,
    /// A NUL byte.
    Nul,
}

impl core::fmt::Display for PathError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PathError::TooLong => write!(f, "path longer than {MAX_PATH} bytes"),
            PathError::NameTooLong => write!(f, "a name longer than {MAX_NAME} bytes"),
            PathError::TooDeep => write!(f, "path deeper than {MAX_DEPTH} directories"),
            PathError::Nul => f.write_str("path holds a NUL byte"),
        }
    }
}

/// The components of `path` resolved under `base` (the handle's own components, which `..`
/// never removes, none holding a `/`): [`Path::resolve`] over a list of components.
pub fn resolve(base: &[String], path: &str) -> Result<Vec<String>, PathError> {
    let mut text = String::new();
    for name in base {
        text.push('/');
        text.push_str(name);
    }
    let resolved = Path { text }.resolve(path)?;
    Ok(resolved.text.split('/').skip(1).map(String::from).collect())
}

/// `parts` as an absolute path (`/` for none).
pub fn join(parts: &[String]) -> String {
    if parts.is_empty() {
        return String::from("/");
    }
    let mut path = String::new();
    for part in parts {
        path.push('/');
        path.push_str(part);
    }
    path
}

/// Whether `prefix` is `parts` or one of its ancestors.
pub fn starts_with(parts: &[String], prefix: &[String]) -> bool {
    parts.len() >= prefix.len() && parts[..prefix.len()] == *prefix
}

/// A resolved path: absolute, its components separated by single `/`, none of them empty, `.`
/// or `..`, and within the limits (as [`resolve`] leaves them; [`Path::from_absolute`] trusts a
/// file system's spelling instead). Two paths are equal when their text is.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Path {
    /// The text, except that the root is empty (so that it costs no allocation and a path
    /// below a prefix is the prefix's text followed by `/name...`).
    text: String,
}

impl Path {
    /// The root, `/`.
    pub const fn root() -> Path {
        Path { text: String::new() }
    }

    /// `path` resolved under this path by the rules of [`resolve`] (this path is the base that
    /// `..` never leaves), built with one allocation.
    pub fn resolve(&self, path: &str) -> Result<Path, PathError> {
        if path.len() > MAX_PATH {
            return Err(PathError::TooLong);
        }
        let floor = self.text.len();
        // Each name kept costs its bytes and one `/`: never more than the path plus one.
        let mut text = String::with_capacity(floor + path.len() + 1);
        text.push_str(&self.text);
        let mut depth = self.depth();
        // One pass over the bytes: a component ends at a `/` or the end, and a NUL anywhere
        // refuses the path before anything else would.
        let mut refused = None;
        let mut start = 0;
        for end in 0..=path.len() {
            match path.as_bytes().get(end) {
                Some(0) => return Err(PathError::Nul),
                Some(b'/') | None => {}
                Some(_) => continue,
            }
            // Both ends are at a `/` or an end of the path, so on character boundaries.
            let part = path.get(start..end).unwrap_or_default();
            start = end + 1;
            if refused.is_some() {
                continue;
            }
            match part {
                "" | "." => {}
                ".." => {
                    if text.len() > floor {
                        let cut = text.rfind('/').unwrap_or(floor).max(floor);
                        text.truncate(cut);
                        depth -= 1;
                    }
                }
                name if name.len() > MAX_NAME => refused = Some(PathError::NameTooLong),
                _ if depth >= MAX_DEPTH => refused = Some(PathError::TooDeep),
                name => {
                    text.push('/');
                    text.push_str(name);
                    depth += 1;
                }
            }
        }
        match refused {
            Some(e) => Err(e),
            None => Ok(Path { text }),
        }
    }

    /// `text`, an absolute path a file system spelled (its names already checked), as a path;
    /// empty components are dropped. Takes over `text`'s allocation when it is already in the
    /// form a path keeps.
    pub fn from_absolute(text: String) -> Path {
        if text.starts_with('/') && !text.ends_with('/') && !text.contains("//") {
            return Path { text };
        }
        let mut path = Path::root();
        for name in components(&text) {
            path.text.push('/');
            path.text.push_str(name);
        }
        path
    }

    /// The path as text: `/` for the root, `/a/b` below it.
    pub fn as_str(&self) -> &str {
        if self.text.is_empty() { "/" } else { &self.text }
    }

    /// Whether this is the root.
    pub fn is_root(&self) -> bool {
        self.text.is_empty()
    }

    /// How many components it has (0 for the root).
    pub fn depth(&self) -> usize {
        self.text.bytes().filter(|&b| b == b'/').count()
    }

    /// Where the text of `prefix` ends in this path, if `prefix` is this path or one of its
    /// ancestors (by whole components: `/ab` is not below `/a`); what [`Path::after`] takes.
    pub fn cut(&self, prefix: &Path) -> Option<usize> {
        let cut = prefix.text.len();
        let below = self.text.starts_with(&prefix.text) && matches!(self.text.as_bytes().get(cut), None | Some(b'/'));
        below.then_some(cut)
    }

    /// Whether `prefix` is this path or one of its ancestors (by whole components).
    pub fn starts_with(&self, prefix: &Path) -> bool {
        self.cut(prefix).is_some()
    }

    /// The part of this path after `cut` (from [`Path::cut`]), as an absolute path: `/` when
    /// the cut is at the end.
    pub fn after(&self, cut: usize) -> &str {
        match self.text.get(cut..) {
            Some(rest) if !rest.is_empty() => rest,
            _ => "/",
        }
    }

    /// If this path is `from` or lies below it, the same path with `from` replaced by `onto`
    /// (what becomes of it when `from` moves to `onto`).
    pub fn rebase(&self, from: &Path, onto: &Path) -> Option<Path> {
        let rest = self.text.get(self.cut(from)?..)?;
        let mut text = String::with_capacity(onto.text.len() + rest.len());
        text.push_str(&onto.text);
        text.push_str(rest);
        Some(Path { text })
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Path({:?})", self.as_str())
    }
}

/// The components of `path`, an absolute path as a file system is given it (none for `/`).
pub fn components(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|part| !part.is_empty())
}

/// The parent of `path` (an absolute path as a file system is given it; `/` for an entry of
/// the root) and its last name; `None` for the root.
pub fn split_last(path: &str) -> Option<(&str, &str)> {
    let path = path.trim_end_matches('/');
    let (parent, name) = path.rsplit_once('/')?;
    let parent = parent.trim_end_matches('/');
    Some((if parent.is_empty() { "/" } else { parent }, name))
}

/// Whether `path` is `prefix` or lies below it, by whole components (`/ab` is not within `/a`;
/// everything is within `/`). Both are absolute paths as a file system is given them.
pub fn is_within(path: &str, prefix: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    path.starts_with(prefix) && matches!(path.as_bytes().get(prefix.len()), None | Some(b'/'))
}
