//! Architecture support. Vessel targets x86_64 only; the module boundary keeps most `unsafe` and
//! all assembly in one place (STYLE habit 8).

pub mod x86_64;
