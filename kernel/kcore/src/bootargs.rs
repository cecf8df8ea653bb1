//! Boot arguments: `key=value` words, separated by white space, read from a small text the image
//! builder puts in the ramdisk (the bootloader has no command line). Unknown keys are ignored so
//! an older kernel boots a newer image; bytes that are not UTF-8 make the whole text empty rather
//! than half-read.

/// Parsed view over the argument text; borrows it, allocates nothing.
#[derive(Clone, Copy, Debug)]
pub struct BootArgs<'a> {
    text: &'a str,
}

impl<'a> BootArgs<'a> {
    /// Reads arguments from raw bytes (invalid UTF-8 reads as no arguments).
    pub fn parse(bytes: &'a [u8]) -> Self {
        BootArgs { text: core::str::from_utf8(bytes).unwrap_or("") }
    }

    /// All `(key, value)` pairs in order; a bare word has an empty value.
    pub fn pairs(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.text
            .split_whitespace()
            .filter(|word| !word.starts_with('#'))
            .map(|word| word.split_once('=').unwrap_or((word, "")))
    }

    /// The value of the last occurrence of `key`.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.pairs().filter(|(k, _)| *k == key).map(|(_, v)| v).last()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pairs_and_last_wins() {
        let args = BootArgs::parse(b"mode=test  log=debug\ninject=fail mode=run quiet");
        assert_eq!(args.get("mode"), Some("run"));
        assert_eq!(args.get("log"), Some("debug"));
        assert_eq!(args.get("quiet"), Some(""));
        assert_eq!(args.get("missing"), None);
    }

    #[test]
    fn hostile_bytes_read_as_nothing() {
        assert_eq!(BootArgs::parse(&[b'a', b'=', 0xff, 0xfe]).pairs().count(), 0);
        assert_eq!(BootArgs::parse(b"").pairs().count(), 0);
        assert_eq!(BootArgs::parse(b"=x").get(""), Some("x"));
    }
}
