//! Vessel's kernel/user ABI: the single contract shared by the kernel and the user runtime
//! (STYLE habit 1). Nothing here executes a system call; the runtime holds the `asm!` stubs.
//!
//! # Calling convention
//! `syscall` with the number in `rax` and up to six arguments in `rdi, rsi, rdx, r10, r8, r9`
//! (`rcx` and `r11` are clobbered by the instruction). On return `rax` holds 0 for success or an
//! [`Error`] code, and `rdx` the result value. Pointers are user addresses; the kernel checks each
//! one (null, kernel half, non-canonical, overflowing, unmapped, wrong permissions) and answers
//! [`Error::BadAddress`] rather than faulting. See `docs/abi.md`.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

mod ipc;
mod layout;
mod types;

pub use ipc::*;
pub use layout::*;
pub use types::*;

/// Declares the system calls (see `calls.rs`): the `Syscall` enum, `Syscall::ALL` (in number
/// order, checked at compile time), the table row each has in `docs/abi.md`, and `TryFrom<u64>`.
macro_rules! syscalls {
    ($(
        $(#[doc = $doc:literal])*
        $num:literal $name:ident($($arg:ident),*) $args:literal -> $result:literal, [$($err:ident),*] $($notes:literal)?;
    )*) => {
        /// System call numbers (`rax`).
        #[repr(u32)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Syscall {
            $( $(#[doc = $doc])* $name = $num, )*
        }

        impl Syscall {
            /// Every system call; `ALL[n]` is number `n`.
            pub const ALL: &'static [Syscall] = &[$(Syscall::$name),*];

            /// What the declaration says of the call: the row of `docs/abi.md`'s table.
            pub const fn spec(self) -> $crate::SyscallSpec {
                match self {
                    $(Syscall::$name => $crate::SyscallSpec {
                        name: stringify!($name),
                        arguments: $args,
                        result: $result,
                        errors: &[$($crate::Error::$err),*],
                        error_notes: syscalls!(@notes [$(stringify!($err)),*] $($notes)?),
                    },)*
                }
            }
        }

        /// The arguments of each system call as a struct with one field per register, in
        /// register order (`rdi, rsi, rdx, r10, r8, r9`): the kernel reads a call's registers
        /// into its struct in one place ([`SyscallArgs::from_registers`]), and the runtime's
        /// stubs write them from it ([`SyscallArgs::registers`]).
        pub mod args {
            $(
                #[doc = concat!("Arguments of `", stringify!($name), "`.")]
                #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
                pub struct $name {
                    $(
                        #[doc = concat!("`", stringify!($arg), "`.")]
                        pub $arg: u64,
                    )*
                }

                impl $crate::SyscallArgs for $name {
                    const CALL: $crate::Syscall = $crate::Syscall::$name;

                    #[inline(always)]
                    fn registers(&self) -> [u64; 6] {
                        let used: &[u64] = &[$(self.$arg),*];
                        let mut registers = [0u64; 6];
                        registers[..used.len()].copy_from_slice(used);
                        registers
                    }

                    #[inline(always)]
                    fn from_registers(registers: &[u64; 6]) -> Self {
                        // A pattern, not indexing: a call declared with more than six arguments
                        // does not compile (rather than panicking the kernel when it is made).
                        let [$($arg,)* ..] = *registers;
                        $name { $($arg),* }
                    }
                }
            )*
        }

        const _: () = {
            let mut n = 0;
            while n < Syscall::ALL.len() {
                assert!(Syscall::ALL[n] as usize == n, "system call numbers must be 0, 1, 2, ... in order");
                n += 1;
            }
        };
    };
    (@notes [$($err:expr),*] $notes:literal) => { Some($notes) };
    (@notes [$($err:expr),*]) => { None };
}

/// Declares the errors (see `calls.rs`): the `Error` enum, `Error::ALL`, `from_code` and
/// `as_str`.
macro_rules! errors {
    ($( $(#[doc = $doc:literal])* $code:literal $name:ident = $text:literal; )*) => {
        /// Errors returned in `rax`. Zero is success and is not an error.
        #[repr(u64)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Error {
            $( $(#[doc = $doc])* $name = $code, )*
        }

        impl Error {
            /// Every error, in code order.
            pub const ALL: &'static [Error] = &[$(Error::$name),*];

            /// Decodes a non-zero `rax`; unknown codes map to `InvalidArgument` rather than
            /// panicking.
            pub fn from_code(code: u64) -> Error {
                match code {
                    $($code => Error::$name,)*
                    _ => Error::InvalidArgument,
                }
            }

            /// A short description.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Error::$name => $text,)*
                }
            }

            /// The variant's name (`"PeerDied"`), as `docs/abi.md` writes it.
            pub fn name(self) -> &'static str {
                match self {
                    $(Error::$name => stringify!($name),)*
                }
            }
        }
    };
}

mod calls;

pub use calls::{Error, Syscall, args};

/// The typed arguments of one system call (generated for each, in [`args`]).
pub trait SyscallArgs: Sized {
    /// The call they belong to.
    const CALL: Syscall;
    /// The six argument registers (`rdi, rsi, rdx, r10, r8, r9`); unused ones are 0.
    fn registers(&self) -> [u64; 6];
    /// The arguments read from the six registers (the kernel's one decoding step).
    fn from_registers(registers: &[u64; 6]) -> Self;
}

/// A system call as `docs/abi.md`'s table describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyscallSpec {
    /// Its name.
    pub name: &'static str,
    /// The arguments, in register order (`rdi, rsi, rdx, r10, r8, r9`).
    pub arguments: &'static str,
    /// The result in `rdx`.
    pub result: &'static str,
    /// The errors it can return (besides `BadAddress` for pointer arguments).
    pub errors: &'static [Error],
    /// The errors column when it says more than their names (which rights, why).
    pub error_notes: Option<&'static str>,
}

impl TryFrom<u64> for Syscall {
    type Error = Error;

    fn try_from(number: u64) -> Result<Self, Error> {
        usize::try_from(number).ok().and_then(|n| Syscall::ALL.get(n)).copied().ok_or(Error::InvalidSyscall)
    }
}

/// Flag of `NotificationBind`: unbind instead.
pub const UNBIND: u64 = 1;
/// Notifications one process's end can signal (`ProcessNotify`).
pub const MAX_EXIT_EVENTS: usize = 8;

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Turns the two return registers into a `Result`.
#[inline]
pub fn decode_return(rax: u64, rdx: u64) -> Result<u64, Error> {
    if rax == 0 { Ok(rdx) } else { Err(Error::from_code(rax)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syscall_numbers_round_trip_and_unknown_ones_fail() {
        for n in 0..Syscall::ALL.len() as u64 {
            let call = Syscall::try_from(n).unwrap();
            assert_eq!(call as u64, n);
        }
        assert_eq!(Syscall::try_from(Syscall::ALL.len() as u64), Err(Error::InvalidSyscall));
        assert_eq!(Syscall::try_from(u64::MAX), Err(Error::InvalidSyscall));
    }

    #[test]
    fn error_codes_round_trip() {
        for code in 1..=Error::ALL.len() as u64 {
            let e = Error::from_code(code);
            assert_eq!(e as u64, code, "{e}");
        }
        assert_eq!(decode_return(0, 7), Ok(7));
        assert_eq!(decode_return(2, 0), Err(Error::BadAddress));
        assert_eq!(decode_return(12345, 0), Err(Error::InvalidArgument));
    }

    #[test]
    fn argument_structs_map_to_registers_in_order() {
        let registers = [1, 2, 3, 4, 5, 6];
        let call = args::Call::from_registers(&registers);
        assert_eq!((call.endpoint, call.w0, call.w3, call.meta), (1, 2, 5, 6));
        assert_eq!(call.registers(), registers);
        let recv = args::Recv::from_registers(&registers);
        assert_eq!((recv.endpoint, recv.timeout_ns, recv.flags), (1, 2, 3));
        // Registers a call does not use read as 0 when written back.
        assert_eq!(recv.registers(), [1, 2, 3, 0, 0, 0]);
        assert_eq!(args::Yield::from_registers(&registers).registers(), [0; 6]);
        assert_eq!(<args::Kill as SyscallArgs>::CALL, Syscall::Kill);
    }

    /// The system-call table and the error list in `docs/abi.md` are the declarations in
    /// `calls.rs`, row by row: nothing missing, nothing extra, nothing different.
    #[test]
    fn docs_table_matches_the_declarations() {
        let doc = include_str!("../../../docs/abi.md");
        let rows: Vec<&str> =
            doc.lines().filter(|l| l.starts_with("| ") && l[2..].starts_with(char::is_numeric)).collect();
        assert_eq!(rows.len(), Syscall::ALL.len(), "rows in the table");
        for (call, row) in Syscall::ALL.iter().zip(&rows) {
            let spec = call.spec();
            let names: Vec<&str> = spec.errors.iter().map(|e| e.name()).collect();
            // The column is the notes when there are any, else the error names.
            let errors = spec.error_notes.map_or_else(|| names.join(", "), String::from);
            let cell = |s: &str| if s.is_empty() { String::from(" ") } else { format!(" {s} ") };
            let expected = format!(
                "| {} | `{}` |{}|{}|{}|",
                *call as u32,
                spec.name,
                cell(spec.arguments),
                cell(spec.result),
                cell(&errors)
            );
            assert_eq!(*row, expected, "docs/abi.md row of {}", spec.name);
            // The notes name exactly the declared errors.
            if let Some(notes) = spec.error_notes {
                let named: Vec<&str> = Error::ALL
                    .iter()
                    .map(|e| e.name())
                    .filter(|n| notes.split(|c: char| !c.is_alphanumeric()).any(|w| w == *n))
                    .collect();
                let declared: Vec<&str> = spec.errors.iter().map(|e| e.name()).collect();
                let (mut named, mut declared) = (named, declared);
                named.sort();
                declared.sort();
                assert_eq!(named, declared, "errors named in the notes of {}", spec.name);
            }
        }
        let list: Vec<String> = Error::ALL.iter().map(|e| format!("{} {}", *e as u64, e.name())).collect();
        let paragraph = doc.split("Errors: ").nth(1).and_then(|p| p.split("\n\n").next()).unwrap_or("");
        assert_eq!(paragraph.split_whitespace().collect::<Vec<_>>().join(" "), format!("{}.", list.join(", ")));
    }
}
