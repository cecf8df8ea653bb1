//! The check that keeps `kernel/hot.ld` true: every entry of its list must place at least one
//! function or static of the built kernel in the section it names. A function renamed, moved
//! into another module or now inlined otherwise drops out of the hot pages without a word, and
//! only a benchmark would notice.

use std::path::Path;

use xmas_elf::ElfFile;
use xmas_elf::sections::SectionData;
use xmas_elf::symbol_table::Entry;

use crate::{Result, root};

/// The output sections `hot.ld` fills.
const SECTIONS: [&str; 2] = [".text.hot", ".data.hot"];

/// One `*(…)` entry of the script: the output section it is in and its patterns.
#[derive(Debug, PartialEq, Eq)]
struct Listed {
    section: String,
    patterns: Vec<String>,
}

/// The entries of each output section block (`NAME : … { … }`) of `script`; comments skipped.
/// A line in such a block that is not one `*(…)` entry is refused: the check would not see it.
fn entries(script: &str) -> std::result::Result<Vec<Listed>, String> {
    let mut text = String::new();
    let mut rest = script;
    while let Some(at) = rest.find("/*") {
        text.push_str(&rest[..at]);
        rest = rest[at..].find("*/").map_or("", |end| &rest[at + end + 2..]);
    }
    text.push_str(rest);
    let mut listed = Vec::new();
    let mut section = None;
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.split_whitespace().next().filter(|_| line.ends_with('{')) {
            section = SECTIONS.contains(&name).then(|| name.to_string());
        } else if line == "}" {
            section = None;
        } else if let Some(section) = &section {
            let inner = line.strip_prefix("*(").and_then(|l| l.strip_suffix(')'));
            match inner.filter(|i| !i.contains(['(', ')'])) {
                Some(inner) => {
                    let patterns = inner.split_whitespace().map(String::from).collect();
                    listed.push(Listed { section: section.clone(), patterns });
                }
                None if line.is_empty() => {}
                None => return Err(format!("kernel/hot.ld: `{line}` in {section} is not a `*(…)` entry")),
            }
        }
    }
    Ok(listed)
}

/// Whether `name` matches `pattern`, where `*` stands for any run of characters (the linker's
/// glob, as far as `hot.ld` uses it).
fn glob(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, tail)) => {
            let Some(rest) = name.strip_prefix(head) else { return false };
            (0..=rest.len()).filter(|&i| rest.is_char_boundary(i)).any(|i| glob(tail, &rest[i..]))
        }
    }
}

/// Whether a symbol called `symbol` came from an input section matching `pattern` (its section
/// is `.text.<symbol>`, `.data.<symbol>` or `.bss.<symbol>`; LLVM may add a `.N` suffix).
fn places(pattern: &str, symbol: &str) -> bool {
    [".text.", ".data.", ".bss."].iter().any(|prefix| glob(pattern, &format!("{prefix}{symbol}")))
}

/// Checks the kernel ELF at `elf` against `kernel/hot.ld`.
pub fn check(elf: &Path) -> Result {
    let script_path = root().join("kernel/hot.ld");
    let script = std::fs::read_to_string(&script_path).map_err(|e| format!("{}: {e}", script_path.display()))?;
    let bytes = std::fs::read(elf).map_err(|e| format!("{}: {e}", elf.display()))?;
    let file = ElfFile::new(&bytes).map_err(|e| format!("{}: {e}", elf.display()))?;
    // The address range of each hot output section, and every symbol with its address.
    let mut ranges = Vec::new();
    let mut symbols = Vec::new();
    for header in file.section_iter() {
        let name = header.get_name(&file).unwrap_or("");
        if SECTIONS.contains(&name) {
            ranges.push((name.to_string(), header.address()..header.address() + header.size()));
        }
        if let Ok(SectionData::SymbolTable64(table)) = header.get_data(&file) {
            for entry in table {
                if let Ok(symbol) = entry.get_name(&file) {
                    symbols.push((symbol.to_string(), entry.value()));
                }
            }
        }
    }
    let listed = entries(&script)?;
    if listed.is_empty() {
        return Err(format!("{}: no entries found", script_path.display()));
    }
    for (i, entry) in listed.iter().enumerate() {
        let Some((_, range)) = ranges.iter().find(|(name, _)| *name == entry.section) else {
            return Err(format!("{}: the kernel has no {} section", elf.display(), entry.section));
        };
        // The linker gives an input section to the first entry that matches it: an entry
        // counts only for symbols no earlier one takes.
        let earlier = |symbol: &str| listed[..i].iter().flat_map(|l| &l.patterns).any(|p| places(p, symbol));
        let placed = symbols.iter().any(|(symbol, at)| {
            range.contains(at) && entry.patterns.iter().any(|p| places(p, symbol)) && !earlier(symbol)
        });
        if !placed {
            return Err(format!(
                "kernel/hot.ld lists `{}`, which places nothing in {} of {}: a function renamed, \
                 moved or now inlined? Fix the list (its comment says what it is for).",
                entry.patterns.join(" "),
                entry.section,
                elf.display()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_as_the_linker_does() {
        assert!(glob(".text.*4task5sched8schedule17h*", ".text._ZN13vessel_kernel4task5sched8schedule17h0123E"));
        assert!(!glob(".text.*4task5sched8schedule17h*", ".text._ZN13vessel_kernel4task5sched9schedule217h0E"));
        assert!(glob(".text.vessel_syscall_entry", ".text.vessel_syscall_entry"));
        assert!(!glob(".text.vessel_syscall_entry", ".text.vessel_syscall_entry2"));
        assert!(glob("*a*b*", "xaybz"));
        assert!(!glob("*a*b", "xaybz"));
        assert!(places(".bss.*4task5TASKS17h*", "_ZN13vessel_kernel4task5TASKS17habcE.0"));
        assert!(!places(".bss.*4task5TASKS17h*", "_ZN13vessel_kernel4task5Tasks17habcE"));
    }

    #[test]
    fn the_kernels_script_lists_entries_of_both_sections() {
        let script = std::fs::read_to_string(root().join("kernel/hot.ld")).unwrap_or_default();
        let listed = entries(&script).unwrap();
        assert!(listed.iter().any(|l| l.section == ".text.hot" && l.patterns == [".text.vessel_syscall_entry"]));
        assert!(listed.iter().filter(|l| l.section == ".data.hot").count() >= 5, "{listed:?}");
        // Comments are skipped, including `*(`-like text inside them.
        let with_comment = "SECTIONS {\n .text.hot : ALIGN(4096) {\n /* *(.text.no) */\n *(.text.yes)\n }\n}";
        assert_eq!(
            entries(with_comment).unwrap(),
            [Listed { section: ".text.hot".into(), patterns: vec![".text.yes".into()] }]
        );
        // A line the check would not understand is refused.
        let kept = "SECTIONS {\n .text.hot : ALIGN(4096) {\n KEEP(*(.text.kept))\n }\n}";
        assert!(entries(kept).is_err());
    }
}
