//! The shell's pure parts, host-tested: the command language ([`parse`]: words, quotes,
//! escapes, variables, `;`, `&&`, `||`, pipes, redirections, comments) and the line editor
//! ([`edit`]: keys from terminal bytes, editing, history, completion). `vsh` (in `vessel-apps`)
//! joins them to the terminal, `proc` and `vfs`.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod edit;
pub mod parse;
