//! Metadata of a declared protocol: for each operation its name, label, documentation and the
//! names, kinds and documentation of its request and reply fields. The generated
//! `OPERATIONS` constant lists them in declaration order, so documentation and tests can be
//! checked against the declaration instead of a copy of it.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::{REPLY, reply_label};

/// One field of a request or reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldInfo {
    /// Its declared name.
    pub name: &'static str,
    /// Its declared type (`u64`, `bytes`, `cap`, `Ending`, ...).
    pub kind: &'static str,
    /// Its documentation (the `///` lines, joined), in test builds of the protocol's crate only
    /// (programs do not carry it; the documentation checks run there).
    pub doc: &'static str,
}

/// One operation of a protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpInfo {
    /// The protocol's service name (`"kv"`).
    pub protocol: &'static str,
    /// The operation's name (`"put"`).
    pub name: &'static str,
    /// The request label (`words[0]`); the reply's is `REPLY | label`.
    pub label: u64,
    /// Its documentation (the `///` lines, joined), in test builds of the protocol's crate only
    /// (programs do not carry it; the documentation checks run there).
    pub doc: &'static str,
    /// Request fields, in wire order.
    pub request: &'static [FieldInfo],
    /// Name of the reply type.
    pub reply: &'static str,
    /// Reply fields, in wire order.
    pub reply_fields: &'static [FieldInfo],
}

impl OpInfo {
    /// The label of this operation's replies.
    pub const fn reply_label(&self) -> u64 {
        reply_label(self.label)
    }
}

/// Whether every label is in `1..REPLY` and no two are equal (the macro asserts it at compile
/// time).
pub const fn check_labels(ops: &[OpInfo]) -> bool {
    let mut i = 0;
    while i < ops.len() {
        if ops[i].label == 0 || ops[i].label >= REPLY {
            return false;
        }
        let mut j = i + 1;
        while j < ops.len() {
            if ops[i].label == ops[j].label {
                return false;
            }
            j += 1;
        }
        i += 1;
    }
    true
}

/// The operation labelled `label` (for the generated code; fails to compile if there is none).
pub const fn op_by_label(ops: &'static [OpInfo], label: u64) -> &'static OpInfo {
    let mut i = 0;
    while i < ops.len() {
        if ops[i].label == label {
            return &ops[i];
        }
        i += 1;
    }
    panic!("no operation has this label")
}

/// What documentation is missing: every operation, request field and reply field without `///`
/// text, and every operation whose name does not appear as `` `name` `` or `` `name(`` in
/// `guide` (a Markdown
/// document describing the protocol; pass `None` to skip that check). Each entry reads
/// `"proc.spawn"`, `"proc.spawn(container)"`, `"proc.spawn -> Spawned.pid"` or
/// `"proc.spawn: not in the guide"`.
pub fn undocumented(ops: &[OpInfo], guide: Option<&str>) -> Vec<String> {
    let mut missing = Vec::new();
    for op in ops {
        let at = format!("{}.{}", op.protocol, op.name);
        if op.doc.trim().is_empty() {
            missing.push(at.clone());
        }
        for field in op.request.iter().filter(|f| f.doc.trim().is_empty()) {
            missing.push(format!("{at}({})", field.name));
        }
        for field in op.reply_fields.iter().filter(|f| f.doc.trim().is_empty()) {
            missing.push(format!("{at} -> {}.{}", op.reply, field.name));
        }
        if let Some(guide) = guide
            && !guide.contains(&format!("`{}`", op.name))
            && !guide.contains(&format!("`{}(", op.name))
        {
            missing.push(format!("{at}: not in the guide"));
        }
    }
    missing
}
