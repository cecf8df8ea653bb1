//! Consoles shown on terminals (`attach`), as a terminal multiplexer shows a pane: a terminal
//! session (`serial0`, a console) attached to a console passes on what is typed and shows what
//! the console is given to write. `ctr run -i` attaches its terminal to the console it plugged
//! into the new container, so the program there talks to the person at the terminal without
//! holding a grant of the terminal itself.
//!
//! Invariants: a terminal shows at most one console and a console shows on at most one
//! terminal; following attachments from any device ends (`attach` refuses a cycle); an
//! attachment lives only while its session is open and unrevoked and its console's container
//! lives (`prune`, before each use). Input moves from a terminal only to the end of its chain
//! and only while a session there reads, so a Ctrl-C typed before then still reaches the
//! terminal's own armed session (`ctr` ends a program that never reads).

use alloc::format;
use alloc::vec::Vec;

use vessel_device_protocol::{Class, Done, Rights};
use vessel_protocol::{Answer, Cx};
use vessel_rt::abi::Error;

use super::{State, refuse, take_input};
use crate::console::MAX_INPUT;
use crate::input::Input;
use crate::registry::Backend;

/// A terminal session showing a console.
pub(super) struct Attachment {
    /// The session on the terminal (its owner's).
    handle: u64,
    /// The terminal's device index.
    terminal: usize,
    /// The console's device index.
    console: usize,
    /// The process that attached (its container and pid): when it ends, so does this.
    opener: (u64, u64),
}

/// Most container levels walked up from a console's container to the caller's.
const MAX_DEPTH: usize = 64;

impl State {
    /// The `attach` operation (see the protocol).
    pub(super) fn attach_console(&mut self, cx: &mut Cx<'_, Done>, handle: u64, console: &str) -> Answer<Done> {
        self.prune_attachments();
        let terminal =
            match self.session(cx, handle, Rights::READ_WRITE, |c| matches!(c, Class::Serial | Class::Console)) {
                Ok((terminal, _)) => terminal,
                Err(e) => return refuse(cx, e),
            };
        if console.is_empty() {
            self.attached.retain(|a| a.handle != handle);
            return Answer::Reply(Done);
        }
        let caller = cx.caller().container;
        let own = self.registry.find(caller, console).map(|(index, _)| index);
        let below = || {
            self.registry
                .devices
                .iter()
                .position(|d| d.name == console && d.plugged_for.is_some_and(|c| c != 0 && self.is_below(caller, c)))
        };
        let Some(index) = own.or_else(below).filter(|&i| self.registry.devices[i].class == Class::Console) else {
            return refuse(cx, (Error::NotFound, format!("no console {console:?} for this container")));
        };
        let name = |i: usize| self.registry.devices[i].name.clone();
        let mut at = index;
        loop {
            if at == terminal {
                let why = format!("{console} would show on itself through {}", name(terminal));
                return refuse(cx, (Error::InvalidArgument, why));
            }
            match self.attached.iter().find(|a| a.terminal == at) {
                Some(a) => at = a.console,
                None => break,
            }
        }
        let busy = |a: &Attachment| {
            if a.handle == handle {
                None
            } else if a.console == index {
                Some(format!("{console} shows on {} already", name(a.terminal)))
            } else if a.terminal == terminal {
                Some(format!("{} shows {} already, through another session", name(terminal), name(a.console)))
            } else {
                None
            }
        };
        if let Some(why) = self.attached.iter().find_map(busy) {
            return refuse(cx, (Error::Busy, why));
        }
        self.attached.retain(|a| a.handle != handle);
        let opener = (caller, cx.caller().pid);
        self.attached.push(Attachment { handle, terminal, console: index, opener });
        self.answer_readers();
        Answer::Reply(Done)
    }

    /// Attachments and armed terminals whose process ended go: a killed `ctr` gives its
    /// terminal back (its session stays open, for other processes of its container may use
    /// it, but what the process asked of the terminal ends with it).
    pub(super) fn forget_dead_openers(&mut self) {
        let Some(proc) = self.proc else { return };
        let dead = |&(container, pid): &(u64, u64)| match proc.process_info(container, pid) {
            Ok(detail) => detail.state == vessel_proc_protocol::ProcessState::Exited,
            Err(r) => matches!(r.error, Error::NoSuchProcess | Error::NoSuchContainer),
        };
        self.attached.retain(|a| !dead(&a.opener));
        self.armed.retain(|a| {
            let gone = dead(&a.opener);
            if gone {
                let _ = a.notification.0.delete();
            }
            !gone
        });
    }

    /// Whether container `c` lies below `ancestor` (asked of `proc`).
    fn is_below(&self, ancestor: u64, mut c: u64) -> bool {
        let Some(proc) = self.proc else { return false };
        for _ in 0..MAX_DEPTH {
            match proc.info(c) {
                Ok(info) if info.parent == ancestor => return true,
                Ok(info) if info.parent != 0 && info.parent != c => c = info.parent,
                _ => return false,
            }
        }
        false
    }

    /// Forgets attachments whose session closed or was revoked, or whose console went with its
    /// container.
    fn prune_attachments(&mut self) {
        let registry = &self.registry;
        self.attached.retain(|a| {
            registry.revoked_reason(a.handle).is_none() && registry.devices[a.console].plugged_for != Some(0)
        });
    }

    /// The console at the end of the attachments from device `index` (itself if it shows none).
    fn end_of(&self, mut index: usize) -> usize {
        while let Some(a) = self.attached.iter().find(|a| a.terminal == index) {
            index = a.console;
        }
        index
    }

    /// Moves what was typed on attached terminals to the console at the end of each chain,
    /// while a session there reads; what does not fit waits on the terminal.
    pub(super) fn route_input(&mut self) {
        self.prune_attachments();
        for i in 0..self.attached.len() {
            let from = self.attached[i].terminal;
            let end = self.end_of(from);
            let Backend::Console(to) = self.registry.devices[end].backend else { continue };
            if self.registry.newest_session(end).is_none() {
                continue;
            }
            let source = match self.registry.devices[from].backend {
                Backend::Serial => Input::Serial,
                Backend::Console(n) => Input::Console(n),
                _ => continue,
            };
            let sources = (&mut self.kbd, &mut self.serial, &mut self.consoles);
            let Some(bytes) = take_input(sources, source, MAX_INPUT) else { continue };
            let taken = self.consoles.push_input(to, &bytes);
            if taken < bytes.len() {
                self.give_back(source, &bytes[taken..]);
            }
        }
    }

    /// Writes `data` to console `index` and to the terminals showing it, up the chain; returns
    /// how many bytes were written: all of them, or what the serial port at the top took. An
    /// error only from the console itself (no framebuffer to draw on while it is active).
    pub(super) fn write_console(&mut self, index: usize, data: &[u8]) -> Result<usize, Error> {
        self.prune_attachments();
        let mut chain = Vec::new();
        let mut at = index;
        while let Some(a) = self.attached.iter().find(|a| a.console == at) {
            if chain.contains(&a.terminal) {
                break;
            }
            chain.push(a.terminal);
            at = a.terminal;
        }
        let mut count = data.len();
        if let Some(&top) = chain.last()
            && self.registry.devices[top].backend == Backend::Serial
            && let Some(serial) = &mut self.serial
        {
            count = serial.write(data);
        }
        for &shown in &chain {
            if let Backend::Console(n) = self.registry.devices[shown].backend {
                let _ = self.consoles.write(n, &data[..count]);
            }
        }
        let Backend::Console(n) = self.registry.devices[index].backend else { return Ok(count) };
        self.consoles.write(n, &data[..count]).map(|()| count)
    }
}
