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

use alloc::string::String;
use alloc::vec::Vec;

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
/// never removes).
pub fn resolve(base: &[String], path: &str) -> Result<Vec<String>, PathError> {
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
