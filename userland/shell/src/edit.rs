//! The line editor: keys decoded from terminal bytes ([`Decoder`]), a line edited by them
//! ([`Editor`]) with history and completion, and what to send the terminal to show it
//! ([`Editor::render`]).
//!
//! Keys: printable characters insert; Left/Right, Home/End (and Ctrl-A/Ctrl-E) move;
//! Backspace and Delete (Ctrl-D on a non-empty line) erase; Ctrl-U erases to the start, Ctrl-K
//! to the end, Ctrl-W the word before the cursor; Up/Down walk the history; Tab completes;
//! Ctrl-C drops the line, Ctrl-D on an empty line ends input, Ctrl-L clears the screen; Enter
//! (CR or LF, CR LF counted once) submits.

use alloc::string::String;
use alloc::vec::Vec;

/// A key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    /// A printable character.
    Char(char),
    /// Return.
    Enter,
    /// Backspace (DEL or BS).
    Backspace,
    /// Delete.
    Delete,
    /// An arrow.
    Left,
    /// An arrow.
    Right,
    /// An arrow.
    Up,
    /// An arrow.
    Down,
    /// Home.
    Home,
    /// End.
    End,
    /// Tab.
    Tab,
    /// Ctrl and a letter (`'a'` for Ctrl-A), other than those above.
    Ctrl(char),
}

/// Turns terminal bytes into keys: UTF-8, control codes, and the escape sequences terminals
/// send (`ESC [ A`, `ESC O H`, `ESC [ 3 ~`, …). Unknown sequences are dropped whole.
#[derive(Clone, Debug, Default)]
pub struct Decoder {
    pending: Vec<u8>,
    /// The last byte was a CR (so an LF right after it is the same Enter).
    after_cr: bool,
}

impl Decoder {
    /// Feeds one byte; the key it completes, if any.
    pub fn feed(&mut self, byte: u8) -> Option<Key> {
        let after_cr = core::mem::replace(&mut self.after_cr, false);
        if self.pending.is_empty() {
            return match byte {
                b'\r' => {
                    self.after_cr = true;
                    Some(Key::Enter)
                }
                b'\n' if after_cr => None,
                b'\n' => Some(Key::Enter),
                b'\t' => Some(Key::Tab),
                0x7f | 0x08 => Some(Key::Backspace),
                0x1b => {
                    self.pending.push(byte);
                    None
                }
                1..=26 => Some(Key::Ctrl(char::from(b'a' + byte - 1))),
                0..=0x1f => None,
                0x20..=0x7e => Some(Key::Char(char::from(byte))),
                _ => {
                    self.pending.push(byte);
                    self.utf8()
                }
            };
        }
        self.pending.push(byte);
        if self.pending[0] == 0x1b { self.escape() } else { self.utf8() }
    }

    fn utf8(&mut self) -> Option<Key> {
        let want = match self.pending[0] {
            0xc0..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf7 => 4,
            _ => {
                self.pending.clear();
                return None;
            }
        };
        if self.pending.len() < want {
            return None;
        }
        let key = core::str::from_utf8(&self.pending).ok().and_then(|s| s.chars().next()).map(Key::Char);
        self.pending.clear();
        key
    }

    fn escape(&mut self) -> Option<Key> {
        let seq = &self.pending[1..];
        let key = match seq {
            [] | [b'[' | b'O'] => return None,
            [b'[' | b'O', last] if last.is_ascii_alphabetic() => match last {
                b'A' => Some(Key::Up),
                b'B' => Some(Key::Down),
                b'C' => Some(Key::Right),
                b'D' => Some(Key::Left),
                b'H' => Some(Key::Home),
                b'F' => Some(Key::End),
                _ => None,
            },
            [b'[', middle @ .., b'~'] => match middle {
                b"1" | b"7" => Some(Key::Home),
                b"4" | b"8" => Some(Key::End),
                b"3" => Some(Key::Delete),
                _ => None,
            },
            // Parameters and intermediates: keep reading (bounded).
            [b'[', .., last] if (last.is_ascii_digit() || *last == b';') && seq.len() < 8 => return None,
            // Alt+key and anything else: dropped.
            _ => None,
        };
        self.pending.clear();
        key
    }
}

/// What the shell does after a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Nothing to show.
    Nothing,
    /// Show the line again ([`Editor::render`]).
    Redraw,
    /// The line is done: run it.
    Submit(String),
    /// Ctrl-C: the line was dropped (show `^C` and a new prompt).
    Cancel,
    /// Ctrl-D on an empty line: the input ended.
    Eof,
    /// Tab: complete the word before the cursor ([`Editor::word_before_cursor`],
    /// [`Editor::complete`]).
    Complete,
    /// Ctrl-L: clear the screen and show the line.
    Clear,
    /// A key with no meaning here (ring the bell).
    Bell,
}

/// Most lines kept in the history.
pub const MAX_HISTORY: usize = 500;

/// One line being edited, and the lines before it.
#[derive(Clone, Debug, Default)]
pub struct Editor {
    line: Vec<char>,
    cursor: usize,
    history: Vec<String>,
    /// Where Up/Down are in the history (`history.len()`: the line being typed).
    at: usize,
    /// The line being typed, kept while walking the history.
    draft: Vec<char>,
}

impl Editor {
    /// An editor with `history` (oldest first).
    pub fn new(history: Vec<String>) -> Editor {
        let at = history.len();
        Editor { history, at, ..Editor::default() }
    }

    /// The line as it stands.
    pub fn line(&self) -> String {
        self.line.iter().collect()
    }

    /// The line's length in characters.
    pub fn len(&self) -> usize {
        self.line.len()
    }

    /// Whether the line is empty.
    pub fn is_empty(&self) -> bool {
        self.line.is_empty()
    }

    /// The cursor's position in characters.
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    /// The history, oldest first.
    pub fn history(&self) -> &[String] {
        &self.history
    }

    /// Adds a line to the history (not blank, not the same as the last).
    pub fn remember(&mut self, line: &str) {
        let line = line.trim();
        if !line.is_empty() && self.history.last().is_none_or(|l| l != line) {
            self.history.push(String::from(line));
            if self.history.len() > MAX_HISTORY {
                self.history.remove(0);
            }
        }
        self.at = self.history.len();
    }

    fn set(&mut self, chars: Vec<char>) {
        self.line = chars;
        self.cursor = self.line.len();
    }

    /// Applies a key.
    pub fn key(&mut self, key: Key) -> Action {
        match key {
            Key::Char(c) => {
                self.line.insert(self.cursor, c);
                self.cursor += 1;
            }
            Key::Enter => {
                let line = self.line();
                self.remember(&line);
                self.set(Vec::new());
                return Action::Submit(line);
            }
            Key::Backspace if self.cursor > 0 => {
                self.cursor -= 1;
                self.line.remove(self.cursor);
            }
            Key::Delete | Key::Ctrl('d') if self.cursor < self.line.len() => {
                self.line.remove(self.cursor);
            }
            Key::Ctrl('d') if self.line.is_empty() => return Action::Eof,
            Key::Left | Key::Ctrl('b') if self.cursor > 0 => self.cursor -= 1,
            Key::Right | Key::Ctrl('f') if self.cursor < self.line.len() => self.cursor += 1,
            Key::Home | Key::Ctrl('a') => self.cursor = 0,
            Key::End | Key::Ctrl('e') => self.cursor = self.line.len(),
            Key::Ctrl('u') => {
                self.line.drain(..self.cursor);
                self.cursor = 0;
            }
            Key::Ctrl('k') => self.line.truncate(self.cursor),
            Key::Ctrl('w') => {
                let mut start = self.cursor;
                while start > 0 && self.line[start - 1] == ' ' {
                    start -= 1;
                }
                while start > 0 && self.line[start - 1] != ' ' {
                    start -= 1;
                }
                self.line.drain(start..self.cursor);
                self.cursor = start;
            }
            Key::Up if self.at > 0 => {
                if self.at == self.history.len() {
                    self.draft = self.line.clone();
                }
                self.at -= 1;
                self.set(self.history[self.at].chars().collect());
            }
            Key::Down if self.at < self.history.len() => {
                self.at += 1;
                let next = if self.at == self.history.len() {
                    core::mem::take(&mut self.draft)
                } else {
                    self.history[self.at].chars().collect()
                };
                self.set(next);
            }
            Key::Tab => return Action::Complete,
            Key::Ctrl('c') => {
                self.set(Vec::new());
                self.at = self.history.len();
                return Action::Cancel;
            }
            Key::Ctrl('l') => return Action::Clear,
            _ => return Action::Bell,
        }
        Action::Redraw
    }

    /// The word the cursor ends (for completion), and whether it is the line's first word
    /// (a command rather than a path).
    pub fn word_before_cursor(&self) -> (String, bool) {
        let mut start = self.cursor;
        while start > 0 && !matches!(self.line[start - 1], ' ' | ';' | '|' | '&' | '<' | '>') {
            start -= 1;
        }
        let before: String = self.line[..start].iter().collect();
        let first = before.trim_end().is_empty() || before.trim_end().ends_with([';', '|', '&']);
        (self.line[start..self.cursor].iter().collect(), first)
    }

    /// Completes the word before the cursor from `candidates` (the full words that could
    /// stand there): inserts what all of them share beyond the word, and a space after a
    /// single match that is not a directory (ending in `/`). Returns the candidates that
    /// match, so the caller can list them when there is more than one.
    pub fn complete(&mut self, candidates: &[String]) -> Vec<String> {
        let (word, _) = self.word_before_cursor();
        let mut matching: Vec<String> = candidates.iter().filter(|c| c.starts_with(&word)).cloned().collect();
        matching.sort();
        matching.dedup();
        let Some(first) = matching.first() else { return matching };
        let mut common: Vec<char> = first.chars().collect();
        for other in &matching[1..] {
            let shared = common.iter().zip(other.chars()).take_while(|(a, b)| **a == *b).count();
            common.truncate(shared);
        }
        let mut insert: Vec<char> = common.into_iter().skip(word.chars().count()).collect();
        if matching.len() == 1 && !first.ends_with('/') {
            insert.push(' ');
        }
        for c in insert {
            self.line.insert(self.cursor, c);
            self.cursor += 1;
        }
        matching
    }

    /// What to send to show `prompt` and the line with the cursor in place: back to the start
    /// of the row, the prompt and the line, erase the rest of the row, then back to the cursor.
    pub fn render(&self, prompt: &str) -> String {
        let mut out = String::from("\r");
        out.push_str(prompt);
        out.extend(self.line.iter());
        out.push_str("\x1b[K");
        for _ in self.cursor..self.line.len() {
            out.push('\x08');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(bytes: &[u8]) -> Vec<Key> {
        let mut d = Decoder::default();
        bytes.iter().filter_map(|&b| d.feed(b)).collect()
    }

    fn typed(editor: &mut Editor, bytes: &[u8]) -> Vec<Action> {
        keys(bytes).into_iter().map(|k| editor.key(k)).filter(|a| *a != Action::Redraw).collect()
    }

    #[test]
    fn bytes_become_keys() {
        assert_eq!(keys(b"a\r\n\n"), [Key::Char('a'), Key::Enter, Key::Enter]);
        assert_eq!(
            keys(b"\x1b[A\x1b[B\x1b[C\x1b[D\x1bOH\x1b[F"),
            [Key::Up, Key::Down, Key::Right, Key::Left, Key::Home, Key::End]
        );
        assert_eq!(
            keys(b"\x1b[1~\x1b[4~\x1b[3~\x7f\x08\t"),
            [Key::Home, Key::End, Key::Delete, Key::Backspace, Key::Backspace, Key::Tab]
        );
        assert_eq!(keys(b"\x01\x03\x04"), [Key::Ctrl('a'), Key::Ctrl('c'), Key::Ctrl('d')]);
        assert_eq!(keys("é日".as_bytes()), [Key::Char('é'), Key::Char('日')]);
        // Unknown sequences vanish whole; what follows is intact.
        assert_eq!(keys(b"\x1b[1;5Cx\x1bwy\x1b[99~z"), [Key::Char('x'), Key::Char('y'), Key::Char('z')]);
        assert_eq!(keys(b"\xffa"), [Key::Char('a')]);
    }

    #[test]
    fn editing_moves_and_erases() {
        let mut e = Editor::default();
        typed(&mut e, b"echo word\x1b[D\x1b[D\x7fX");
        assert_eq!((e.line(), e.cursor()), (String::from("echo wXrd"), 7));
        typed(&mut e, b"\x01\x1b[3~E\x05!");
        assert_eq!(e.line(), "Echo wXrd!");
        typed(&mut e, b"\x17");
        assert_eq!(e.line(), "Echo ");
        typed(&mut e, b"a b\x1b[D\x1b[D\x0b");
        assert_eq!(e.line(), "Echo a");
        typed(&mut e, b"\x15");
        assert_eq!((e.line(), e.cursor()), (String::new(), 0));
        assert_eq!(typed(&mut e, b"\x1b[D\x7f"), [Action::Bell, Action::Bell]);
    }

    #[test]
    fn enter_cancel_and_end_of_input() {
        let mut e = Editor::default();
        assert_eq!(typed(&mut e, b"ls -l\r"), [Action::Submit(String::from("ls -l"))]);
        assert_eq!(typed(&mut e, b"half\x03"), [Action::Cancel]);
        assert_eq!(e.line(), "");
        assert_eq!(typed(&mut e, b"x\x01\x04"), Vec::<Action>::new());
        assert_eq!(e.line(), "");
        assert_eq!(typed(&mut e, b"\x04"), [Action::Eof]);
    }

    #[test]
    fn history_walks_and_keeps_the_draft() {
        let mut e = Editor::new(alloc::vec![String::from("one")]);
        typed(&mut e, b"two\r  \rtwo\rdraft");
        assert_eq!(e.history(), ["one", "two"]);
        typed(&mut e, b"\x1b[A");
        assert_eq!(e.line(), "two");
        typed(&mut e, b"\x1b[A\x1b[A");
        assert_eq!(e.line(), "one");
        typed(&mut e, b"\x1b[B\x1b[B");
        assert_eq!(e.line(), "draft");
        assert_eq!(typed(&mut e, b"\x1b[B"), [Action::Bell]);
    }

    #[test]
    fn completion_inserts_the_shared_part() {
        let names = |n: &[&str]| n.iter().map(|s| String::from(*s)).collect::<Vec<_>>();
        let mut e = Editor::default();
        typed(&mut e, b"ec");
        assert_eq!(e.word_before_cursor(), (String::from("ec"), true));
        assert_eq!(e.complete(&names(&["echo", "exit", "ls"])), ["echo"]);
        assert_eq!(e.line(), "echo ");
        typed(&mut e, b"/data/f");
        assert_eq!(e.word_before_cursor(), (String::from("/data/f"), false));
        let found = e.complete(&names(&["/data/file1", "/data/file2", "/data/dir/"]));
        assert_eq!(found, ["/data/file1", "/data/file2"]);
        assert_eq!(e.line(), "echo /data/file");
        typed(&mut e, b" /data/d");
        e.complete(&names(&["/data/dir/"]));
        assert_eq!(e.line(), "echo /data/file /data/dir/");
        assert!(e.complete(&names(&["zzz"])).is_empty());
        let mut e = Editor::default();
        typed(&mut e, b"ls | ca");
        assert_eq!(e.word_before_cursor(), (String::from("ca"), true));
    }

    #[test]
    fn render_puts_the_cursor_back() {
        let mut e = Editor::default();
        typed(&mut e, b"abc\x1b[D");
        assert_eq!(e.render("$ "), "\r$ abc\x1b[K\x08");
    }
}
