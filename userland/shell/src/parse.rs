//! The command language.
//!
//! A script is a list of chains separated by `;` or newlines; a chain is pipelines joined by
//! `&&` (run the next if the last succeeded) or `||` (if it failed); a pipeline is commands
//! joined by `|`; a command is words and redirections (`<`, `>`, `>>`, `2>`, `2>>`, `2>&1`).
//! Words: `'…'` is literal, `"…"` expands `$NAME`, `${NAME}` and `$?` and takes `\"`, `\\`,
//! `\$` escapes, a backslash outside quotes takes the next character as it is. `$0`…`$9` are a
//! script's name and arguments. `#` at the
//! start of a word comments to the end of the line. Expansion happens when a command runs
//! ([`Word::expand`]), so `false; echo $?` sees the `false`. An expanded variable stays one
//! word (no splitting), and a quoted empty string is an empty word.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

/// A piece of a word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    /// Text as typed (quotes and escapes removed).
    Text(String),
    /// A variable: its name (`?` for the last status).
    Var(String),
}

/// A word before expansion.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Word(pub Vec<Piece>);

impl Word {
    /// The word with its variables replaced by `lookup`'s values (unset: empty).
    pub fn expand(&self, lookup: &dyn Fn(&str) -> Option<String>) -> String {
        let mut out = String::new();
        for piece in &self.0 {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Var(name) => out.push_str(&lookup(name).unwrap_or_default()),
            }
        }
        out
    }

    /// The word's text if it has no variables.
    pub fn literal(&self) -> Option<String> {
        self.0
            .iter()
            .map(|p| match p {
                Piece::Text(t) => Some(t.as_str()),
                Piece::Var(_) => None,
            })
            .collect::<Option<Vec<&str>>>()
            .map(|parts| parts.concat())
    }
}

/// What a redirection does with its file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `<`: read from it.
    Read,
    /// `>`: create or empty it, write.
    Write,
    /// `>>`: create it or write at its end.
    Append,
    /// `2>&1`: standard error goes where standard output goes.
    ToStdout,
}

/// A redirection of stream `fd` (0 input, 1 output, 2 error).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redirect {
    /// The stream.
    pub fd: u8,
    /// What to do.
    pub mode: Mode,
    /// The file (empty for [`Mode::ToStdout`]).
    pub target: Word,
}

/// A command: its words (the program and its arguments) and redirections.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Command {
    /// The program, then its arguments.
    pub words: Vec<Word>,
    /// In the order written.
    pub redirects: Vec<Redirect>,
}

/// Commands joined by `|`.
pub type Pipeline = Vec<Command>;

/// How a pipeline joins the one before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// `&&`: only if the previous one succeeded.
    And,
    /// `||`: only if it failed.
    Or,
}

/// Pipelines joined by `&&` and `||`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chain {
    /// The first pipeline.
    pub first: Pipeline,
    /// The others, each with how it joins.
    pub rest: Vec<(Link, Pipeline)>,
}

/// Why a line does not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError(pub String);

impl core::fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "syntax error: {}", self.0)
    }
}

/// A token.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Word(Word),
    /// `;` or a newline.
    End,
    And,
    Or,
    Pipe,
    Redirect(u8, Mode),
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Whether `name` can be a variable's name.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.starts_with(|c: char| c.is_ascii_digit()) && name.chars().all(is_name_char)
}

struct Lexer<'a> {
    chars: core::iter::Peekable<core::str::Chars<'a>>,
}

impl Lexer<'_> {
    /// `$…` after the `$`: a variable, or a lone `$` as text.
    fn dollar(&mut self, pieces: &mut Vec<Piece>, text: &mut String) -> Result<(), SyntaxError> {
        let name = match self.chars.peek() {
            Some('?') => {
                self.chars.next();
                String::from("?")
            }
            Some('{') => {
                self.chars.next();
                let mut name = String::new();
                loop {
                    match self.chars.next() {
                        Some('}') => break,
                        Some(c) => name.push(c),
                        None => return Err(SyntaxError(String::from("`${` without its `}`"))),
                    }
                }
                if !valid_name(&name) && name != "?" {
                    return Err(SyntaxError(format!("`${{{name}}}` is not a variable name")));
                }
                name
            }
            // `$0`…`$9`: a script's name and arguments.
            Some(&c) if c.is_ascii_digit() => {
                self.chars.next();
                String::from(c)
            }
            Some(&c) if is_name_char(c) => {
                let mut name = String::new();
                while let Some(&c) = self.chars.peek().filter(|&&c| is_name_char(c)) {
                    name.push(c);
                    self.chars.next();
                }
                name
            }
            _ => {
                text.push('$');
                return Ok(());
            }
        };
        if !text.is_empty() {
            pieces.push(Piece::Text(core::mem::take(text)));
        }
        pieces.push(Piece::Var(name));
        Ok(())
    }

    /// A word starting at the next character (which is not a space or an operator).
    fn word(&mut self) -> Result<Word, SyntaxError> {
        let mut pieces = Vec::new();
        let mut text = String::new();
        while let Some(&c) = self.chars.peek() {
            match c {
                ' ' | '\t' | '\n' | ';' | '&' | '|' | '<' | '>' => break,
                '\'' => {
                    self.chars.next();
                    loop {
                        match self.chars.next() {
                            Some('\'') => break,
                            Some(c) => text.push(c),
                            None => return Err(SyntaxError(String::from("a `'` without its closing `'`"))),
                        }
                    }
                    // A quoted empty string is still a word.
                    pieces.push(Piece::Text(core::mem::take(&mut text)));
                }
                '"' => {
                    self.chars.next();
                    loop {
                        match self.chars.next() {
                            Some('"') => break,
                            Some('\\') => match self.chars.next() {
                                Some(c @ ('"' | '\\' | '$')) => text.push(c),
                                Some(c) => {
                                    text.push('\\');
                                    text.push(c);
                                }
                                None => return Err(SyntaxError(String::from("a `\"` without its closing `\"`"))),
                            },
                            Some('$') => self.dollar(&mut pieces, &mut text)?,
                            Some(c) => text.push(c),
                            None => return Err(SyntaxError(String::from("a `\"` without its closing `\"`"))),
                        }
                    }
                    pieces.push(Piece::Text(core::mem::take(&mut text)));
                }
                '\\' => {
                    self.chars.next();
                    match self.chars.next() {
                        // A backslash before a newline joins the lines.
                        Some('\n') => {}
                        Some(c) => text.push(c),
                        None => text.push('\\'),
                    }
                }
                '$' => {
                    self.chars.next();
                    self.dollar(&mut pieces, &mut text)?;
                }
                _ => {
                    text.push(c);
                    self.chars.next();
                }
            }
        }
        if !text.is_empty() || pieces.is_empty() {
            pieces.push(Piece::Text(text));
        }
        // Adjacent texts become one piece.
        let mut merged: Vec<Piece> = Vec::new();
        for piece in pieces {
            match (merged.last_mut(), piece) {
                (Some(Piece::Text(a)), Piece::Text(b)) => a.push_str(&b),
                (_, piece) => merged.push(piece),
            }
        }
        Ok(Word(merged))
    }

    fn tokens(&mut self) -> Result<Vec<Token>, SyntaxError> {
        let mut out = Vec::new();
        while let Some(&c) = self.chars.peek() {
            match c {
                ' ' | '\t' | '\r' => {
                    self.chars.next();
                }
                '\n' | ';' => {
                    self.chars.next();
                    out.push(Token::End);
                }
                '#' => {
                    while self.chars.peek().is_some_and(|&c| c != '\n') {
                        self.chars.next();
                    }
                }
                '&' => {
                    self.chars.next();
                    if self.chars.next_if_eq(&'&').is_none() {
                        return Err(SyntaxError(String::from("background jobs (`&`) are not supported")));
                    }
                    out.push(Token::And);
                }
                '|' => {
                    self.chars.next();
                    out.push(if self.chars.next_if_eq(&'|').is_some() { Token::Or } else { Token::Pipe });
                }
                '<' => {
                    self.chars.next();
                    out.push(Token::Redirect(0, Mode::Read));
                }
                '>' => {
                    self.chars.next();
                    let mode = if self.chars.next_if_eq(&'>').is_some() { Mode::Append } else { Mode::Write };
                    out.push(Token::Redirect(1, mode));
                }
                _ => {
                    let word = self.word()?;
                    // `2>`, `2>>`, `2>&1`: a bare `2` right before `>`.
                    if word.literal().as_deref() == Some("2") && self.chars.peek() == Some(&'>') {
                        self.chars.next();
                        if self.chars.next_if_eq(&'&').is_some() {
                            if self.chars.next_if_eq(&'1').is_none() {
                                return Err(SyntaxError(String::from("only `2>&1` joins streams")));
                            }
                            out.push(Token::Redirect(2, Mode::ToStdout));
                        } else {
                            let mode = if self.chars.next_if_eq(&'>').is_some() { Mode::Append } else { Mode::Write };
                            out.push(Token::Redirect(2, mode));
                        }
                    } else {
                        out.push(Token::Word(word));
                    }
                }
            }
        }
        Ok(out)
    }
}

fn describe(token: Option<&Token>) -> String {
    match token {
        None => String::from("the end of the line"),
        Some(Token::End) => String::from("`;`"),
        Some(Token::And) => String::from("`&&`"),
        Some(Token::Or) => String::from("`||`"),
        Some(Token::Pipe) => String::from("`|`"),
        Some(Token::Redirect(..)) => String::from("a redirection"),
        Some(Token::Word(w)) => format!("`{}`", w.literal().unwrap_or_else(|| "$…".to_string())),
    }
}

/// Parses a script (one line or a whole file).
pub fn parse(text: &str) -> Result<Vec<Chain>, SyntaxError> {
    let tokens = Lexer { chars: text.chars().peekable() }.tokens()?;
    let mut tokens = tokens.into_iter().peekable();
    let mut chains = Vec::new();
    loop {
        while tokens.next_if_eq(&Token::End).is_some() {}
        if tokens.peek().is_none() {
            return Ok(chains);
        }
        let first = pipeline(&mut tokens)?;
        let mut rest = Vec::new();
        loop {
            let link = match tokens.peek() {
                Some(Token::And) => Link::And,
                Some(Token::Or) => Link::Or,
                None | Some(Token::End) => break,
                other => return Err(SyntaxError(format!("unexpected {}", describe(other)))),
            };
            tokens.next();
            // A line may end after `&&` or `||` and go on on the next.
            while tokens.next_if_eq(&Token::End).is_some() {}
            rest.push((link, pipeline(&mut tokens)?));
        }
        chains.push(Chain { first, rest });
    }
}

fn pipeline(tokens: &mut core::iter::Peekable<alloc::vec::IntoIter<Token>>) -> Result<Pipeline, SyntaxError> {
    let mut commands = Vec::new();
    loop {
        let mut command = Command::default();
        loop {
            match tokens.peek() {
                Some(Token::Word(_)) => {
                    if let Some(Token::Word(w)) = tokens.next() {
                        command.words.push(w);
                    }
                }
                Some(&Token::Redirect(fd, mode)) => {
                    tokens.next();
                    let target = if mode == Mode::ToStdout {
                        Word::default()
                    } else {
                        match tokens.next() {
                            Some(Token::Word(w)) => w,
                            other => {
                                return Err(SyntaxError(format!(
                                    "a file name must follow the redirection, not {}",
                                    describe(other.as_ref())
                                )));
                            }
                        }
                    };
                    command.redirects.push(Redirect { fd, mode, target });
                }
                _ => break,
            }
        }
        if command.words.is_empty() {
            let what = if command.redirects.is_empty() { "no command" } else { "a redirection without a command" };
            return Err(SyntaxError(format!("{what} before {}", describe(tokens.peek()))));
        }
        commands.push(command);
        if tokens.next_if_eq(&Token::Pipe).is_none() {
            return Ok(commands);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(name: &str) -> Option<String> {
        match name {
            "HOME" => Some(String::from("/data")),
            "?" => Some(String::from("1")),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    /// Each command's expanded words, per pipeline, per chain.
    fn words(line: &str) -> Vec<Vec<Vec<String>>> {
        parse(line)
            .unwrap()
            .iter()
            .map(|chain| {
                core::iter::once(&chain.first)
                    .chain(chain.rest.iter().map(|(_, p)| p))
                    .flat_map(|p| p.iter())
                    .map(|c| c.words.iter().map(|w| w.expand(&vars)).collect())
                    .collect()
            })
            .collect()
    }

    #[test]
    fn words_quotes_and_escapes() {
        assert_eq!(words("echo  a   b"), [[["echo", "a", "b"]]]);
        assert_eq!(words("echo 'a  b' \"c d\" e\\ f"), [[["echo", "a  b", "c d", "e f"]]]);
        assert_eq!(words("echo '' \"\" x"), [[["echo", "", "", "x"]]]);
        assert_eq!(words("echo a'b'\"c\""), [[["echo", "abc"]]]);
        assert_eq!(words(r#"echo "a \"q\" \\ \$HOME \n""#), [[["echo", r#"a "q" \ $HOME \n"#]]]);
        assert_eq!(words("echo 'it''s'"), [[["echo", "its"]]]);
        assert_eq!(words("echo é ü 日本"), [[["echo", "é", "ü", "日本"]]]);
    }

    #[test]
    fn variables_expand_when_run_and_stay_one_word() {
        assert_eq!(
            words("echo $HOME ${HOME}/x \"$HOME y\" '$HOME' $? $NOPE. $EMPTY"),
            [[["echo", "/data", "/data/x", "/data y", "$HOME", "1", ".", ""]]]
        );
        assert_eq!(words("echo $ a$"), [[["echo", "$", "a$"]]]);
        assert_eq!(words("echo $1 $12"), [[["echo", "", "2"]]]);
        let chains = parse("echo $HOME").unwrap();
        assert_eq!(chains[0].first[0].words[1], Word(alloc::vec![Piece::Var(String::from("HOME"))]));
        assert!(parse("echo ${1x}").is_err());
        assert!(parse("echo ${HOME").is_err());
    }

    #[test]
    fn separators_chains_and_pipes() {
        let chains = parse("a; b && c || d | e\nf").unwrap();
        assert_eq!(chains.len(), 3);
        assert_eq!(chains[1].rest.iter().map(|(l, _)| *l).collect::<Vec<_>>(), [Link::And, Link::Or]);
        assert_eq!(chains[1].rest[1].1.len(), 2);
        assert_eq!(words("a;;b;"), [[["a"]], [["b"]]]);
        assert_eq!(words("a &&\n b"), [[["a"], ["b"]]]);
        assert_eq!(words("echo a#b # comment ; not run"), [[["echo", "a#b"]]]);
        assert_eq!(words("# only a comment"), Vec::<Vec<Vec<String>>>::new());
    }

    #[test]
    fn redirections() {
        let c = &parse("cat < in > out 2>> err").unwrap()[0].first[0];
        let got: Vec<(u8, Mode, String)> = c.redirects.iter().map(|r| (r.fd, r.mode, r.target.expand(&vars))).collect();
        assert_eq!(
            got,
            [(0, Mode::Read, "in".into()), (1, Mode::Write, "out".into()), (2, Mode::Append, "err".into())]
        );
        let c = &parse("ls >>log 2>&1").unwrap()[0].first[0];
        assert_eq!(c.redirects[1], Redirect { fd: 2, mode: Mode::ToStdout, target: Word::default() });
        // `2` not right before `>` is an argument.
        assert_eq!(words("echo 2 > f"), [[["echo", "2"]]]);
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let e = |line: &str| parse(line).unwrap_err().to_string();
        assert_eq!(e("| a"), "syntax error: no command before `|`");
        assert_eq!(e("a |"), "syntax error: no command before the end of the line");
        assert_eq!(e("a && && b"), "syntax error: no command before `&&`");
        assert_eq!(e("echo >"), "syntax error: a file name must follow the redirection, not the end of the line");
        assert_eq!(e("echo 'a"), "syntax error: a `'` without its closing `'`");
        assert_eq!(e("echo \"a"), "syntax error: a `\"` without its closing `\"`");
        assert_eq!(e("sleep 1 &"), "syntax error: background jobs (`&`) are not supported");
        assert_eq!(e("> f"), "syntax error: a redirection without a command before the end of the line");
    }

    #[test]
    fn names() {
        assert!(valid_name("PATH") && valid_name("_a1"));
        assert!(!valid_name("1a") && !valid_name("") && !valid_name("a-b"));
    }
}
