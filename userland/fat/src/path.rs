//! Paths inside a volume: `/a/b/c`, resolved lexically from the root.
//!
//! A path must start with `/`. Empty components and `.` are skipped; `..` drops the previous
//! component and, at the root, stays at the root (it can never name anything outside the
//! volume). FAT has no links, so resolving `..` by text gives the same result as walking it.

use alloc::vec::Vec;

use crate::error::FsError;

/// Longest path accepted, in bytes.
pub const MAX_PATH: usize = 4096;

/// The components of `path` after resolving `.` and `..`; empty for the root.
pub(crate) fn components(path: &str) -> Result<Vec<&str>, FsError> {
    if !path.starts_with('/') || path.len() > MAX_PATH {
        return Err(FsError::InvalidPath);
    }
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            name => parts.push(name),
        }
    }
    Ok(parts)
}

/// The parent's components and the last name of `path`; the root has no name and is refused.
pub(crate) fn split_last(path: &str) -> Result<(Vec<&str>, &str), FsError> {
    let mut parts = components(path)?;
    let name = parts.pop().ok_or(FsError::InvalidPath)?;
    Ok((parts, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_dots_without_leaving_the_root() {
        assert_eq!(components("/"), Ok(vec![]));
        assert_eq!(components("/a/b/c"), Ok(vec!["a", "b", "c"]));
        assert_eq!(components("//a/./b//"), Ok(vec!["a", "b"]));
        assert_eq!(components("/a/../b"), Ok(vec!["b"]));
        assert_eq!(components("/../../a"), Ok(vec!["a"]));
        assert_eq!(components("/a/b/../../.."), Ok(vec![]));
        assert_eq!(components("a/b"), Err(FsError::InvalidPath));
        assert_eq!(components(""), Err(FsError::InvalidPath));
        assert_eq!(components(&"/a".repeat(3000)), Err(FsError::InvalidPath));
        assert_eq!(split_last("/a/b"), Ok((vec!["a"], "b")));
        assert_eq!(split_last("/a/.."), Err(FsError::InvalidPath));
    }
}
