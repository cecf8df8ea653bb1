//! Reading `fsck.fat -n`: its complaints, and which of them an unclean stop may leave behind
//! (the rules `docs/vfs.md` states for a power loss between syncs: lost clusters, a cluster
//! chain longer than its file, a wrong FSInfo free count, FATs that differ but are intact, the
//! dirty bit, the orphaned start of a long name whose entry never reached the disk). The crash test (`cargo xtask test --crash-only`) and the FAT layer's write-order
//! tests judge images by the same rules.

/// What `fsck.fat -n` said of an image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing to complain about.
    Clean,
    /// Only what an unclean stop may leave: each complaint on one line.
    Accepted(Vec<String>),
    /// Something else: why (without the output, which the caller shows as it likes).
    Damaged(String),
}

/// Judges `fsck.fat -n`'s exit code and output.
pub fn verdict(code: Option<i32>, text: &str) -> Verdict {
    let found = complaints(text);
    match code {
        Some(0) if found.is_empty() => Verdict::Clean,
        Some(0 | 1) if found.is_empty() => Verdict::Damaged(String::from("exit status 1 with no complaint recognised")),
        Some(0 | 1) => match found.iter().find(|c| !acceptable(c)) {
            Some(bad) => Verdict::Damaged(format!("not what an unclean stop may leave: {}", bad.join(" / "))),
            None => Verdict::Accepted(found.iter().map(|c| c.join(" ")).collect()),
        },
        other => Verdict::Damaged(format!("exit status {other:?}")),
    }
}

/// `fsck.fat`'s complaints: each a line at the left margin with the indented lines after it
/// (`/PATH` then `  Contains a free cluster …`), without the banner, `Leaving filesystem
/// unchanged.` and the closing `IMAGE: N files, A/B clusters`.
pub fn complaints(text: &str) -> Vec<Vec<String>> {
    let mut all: Vec<Vec<String>> = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim();
        let noise = trimmed.is_empty()
            || trimmed.starts_with("fsck.fat ")
            || trimmed.starts_with("Checking we can access the last sector")
            || trimmed == "Leaving filesystem unchanged."
            || (trimmed.contains(" files, ") && trimmed.ends_with(" clusters"));
        if noise {
            continue;
        }
        match all.last_mut() {
            Some(complaint) if line.starts_with(' ') => complaint.push(trimmed.to_string()),
            _ => all.push(vec![trimmed.to_string()]),
        }
    }
    all
}

/// Whether one complaint is something an unclean stop may leave.
pub fn acceptable(complaint: &[String]) -> bool {
    let Some(head) = complaint.first() else { return true };
    let details = &complaint[1..];
    let only = |allowed: &[&str]| details.iter().all(|d| allowed.iter().any(|a| d.starts_with(a)));
    if head.starts_with("Reclaimed ") && head.contains(" unused cluster") {
        return details.is_empty();
    }
    if head.starts_with("Free cluster summary wrong") || head.starts_with("Free cluster summary uninitialized") {
        return only(&["Auto-correcting."]);
    }
    if head == "FATs differ but appear to be intact." {
        return only(&["Using first FAT."]);
    }
    // The first slots of a long name written before the rest of its entry (a name split
    // across clusters): `fsck.fat` deletes them itself. A fragment without its start is not
    // this (`Long filename fragment … found outside a LFN sequence`: not auto-corrected).
    if head.starts_with("Orphaned long file name part ") {
        return only(&["Auto-deleting."]);
    }
    if head.starts_with("Dirty bit is set.") {
        return only(&["Automatically removing dirty bit."]);
    }
    // `/PATH` with `File size is S bytes, cluster chain length is > C bytes.` and
    // `Truncating file to S bytes.`: a chain longer than its file.
    if head.starts_with('/') && !head.ends_with(" and") {
        return details.len() == 2
            && details[0].starts_with("File size is ")
            && details[0].contains("cluster chain length is > ")
            && details[1].starts_with("Truncating file to ");
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    const BANNER: &str = "fsck.fat 4.2 (2021-01-31)\n";
    const END: &str = "\nLeaving filesystem unchanged.\nimg: 51 files, 4/68528 clusters\n";

    fn judge(code: i32, body: &str) -> Verdict {
        verdict(Some(code), &format!("{BANNER}{body}{END}"))
    }

    #[test]
    fn an_unclean_stops_leftovers_are_accepted_and_damage_is_not() {
        assert_eq!(verdict(Some(0), &format!("{BANNER}img: 3 files, 4/100 clusters\n")), Verdict::Clean);
        let accepted = [
            "Reclaimed 8 unused clusters (4096 bytes).",
            "Free cluster summary wrong (68525 vs. really 68524)\n  Auto-correcting.",
            "FATs differ but appear to be intact.\n  Using first FAT.",
            "Orphaned long file name part \"t\"\n  Auto-deleting.",
            "/A/B.BIN\n  File size is 700 bytes, cluster chain length is > 1024 bytes.\n  Truncating file to 700 bytes.",
        ];
        for body in accepted {
            assert!(matches!(judge(1, body), Verdict::Accepted(_)), "{body}");
        }
        let damaged = [
            "Long filename fragment \" long name.tx\" found outside a LFN sequence.\n  (Maybe the start bit is missing \
             on the last fragment)\n  Not auto-correcting this.",
            "/FULL\n  Has a large number of bad entries. (15/29)\n  Not dropping it in auto-mode.",
            "Orphaned long file name part \"t\"\n  Not auto-deleting.",
            "/A\n  Contains a free cluster (77). Assuming EOF.",
        ];
        for body in damaged {
            assert!(matches!(judge(1, body), Verdict::Damaged(_)), "{body}");
        }
        assert!(matches!(judge(4, "Reclaimed 8 unused clusters (4096 bytes)."), Verdict::Damaged(_)));
    }
}
