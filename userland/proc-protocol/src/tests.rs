//! The proc protocol through the loopback, with a small in-memory `proc` as the server: it
//! shows the blocking `wait` (a deferred reply answered when the child ends), `wait_timeout`,
//! capabilities both ways, and the refusals; plus the generated round trips and fuzzing, the
//! wire layout and the command helpers.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use vessel_protocol::testing::{Example, Loopback, Mailbox, Recorder, fuzz_requests, reply_frame};
use vessel_protocol::{Answer, Caller, Cx, Deferred, Error, Refusal, undocumented};

use super::*;

impl Example for Ending {
    fn examples() -> Vec<Self> {
        vec![Ending::Code(0), Ending::Code(-1), Ending::Fault, Ending::Code(i64::MAX), Ending::Killed]
    }
}

impl Example for ProcessState {
    fn examples() -> Vec<Self> {
        vec![ProcessState::Running, ProcessState::Blocked, ProcessState::Exited]
    }
}

impl Example for Limits {
    fn examples() -> Vec<Self> {
        vec![Limits::default(), Limits([1, 2, UNLIMITED, 4, 5]), Limits([0; RESOURCES])]
    }
}

/// One nanosecond-free clock tick of the test server: an idle step.
const TICK_NS: u64 = 1_000_000;

struct Child {
    container: u64,
    pid: u64,
    /// Ticks until it exits with its pid as the code.
    runs_for: u64,
    ending: Option<Ending>,
}

/// A waiter: the process, when to give up (tick), and the kept reply.
struct Waiter {
    container: u64,
    pid: u64,
    deadline: Option<u64>,
    timed_out: Refusal,
    reply: Deferred<Exited>,
}

/// A `proc` in memory: children run for a number of idle steps (`bin/sleep <ticks>`).
#[derive(Default)]
struct Procs {
    children: Vec<Child>,
    waiters: Vec<Waiter>,
    services: BTreeMap<String, (u32, u64)>,
    now: u64,
    next_pid: u64,
}

impl Procs {
    fn container(cx: &Cx<'_, impl vessel_protocol::Reply>, container: u64) -> u64 {
        if container == 0 { cx.caller().container } else { container }
    }

    fn find(&self, container: u64, pid: u64) -> Option<usize> {
        self.children.iter().position(|c| c.container == container && c.pid == pid)
    }

    /// One tick: children run, waiters whose child ended or whose time passed are answered.
    fn idle(&mut self, mailbox: &Mailbox) {
        self.now += 1;
        for child in self.children.iter_mut().filter(|c| c.ending.is_none()) {
            child.runs_for = child.runs_for.saturating_sub(1);
            if child.runs_for == 0 {
                child.ending = Some(Ending::Code(child.pid as i64));
            }
        }
        for waiter in core::mem::take(&mut self.waiters) {
            let at = self.find(waiter.container, waiter.pid);
            match at.and_then(|i| self.children[i].ending.map(|e| (i, e))) {
                Some((i, ending)) => {
                    self.children.remove(i);
                    waiter.reply.answer(mailbox, Ok(Exited { ending })).unwrap();
                }
                None if waiter.deadline.is_some_and(|d| self.now >= d) => {
                    waiter.reply.answer(mailbox, Err(waiter.timed_out)).unwrap();
                }
                None => self.waiters.push(waiter),
            }
        }
    }

    fn wait_for(&mut self, cx: &mut Cx<'_, Exited>, container: u64, pid: u64, timeout: Option<u64>) -> Answer<Exited> {
        let container = Self::container(cx, container);
        let Some(i) = self.find(container, pid) else {
            return cx.refusal(Error::NoSuchProcess, format!("no process {pid}")).into();
        };
        if let Some(ending) = self.children[i].ending {
            self.children.remove(i);
            return Answer::Reply(Exited { ending });
        }
        let why = format!("process {pid} still runs after {} ns", timeout.unwrap_or(0));
        let timed_out = cx.refusal(Error::TimedOut, why);
        let deadline = timeout.map(|ns| self.now.saturating_add(ns.div_ceil(TICK_NS)));
        match cx.defer() {
            Ok(reply) => {
                self.waiters.push(Waiter { container, pid, deadline, timed_out, reply });
                Answer::Later
            }
            Err(refusal) => refusal.into(),
        }
    }
}

impl Server for Procs {
    fn spawn(
        &mut self,
        cx: &mut Cx<'_, Spawned>,
        container: u64,
        path_and_args: &[u8],
        _env: &[u8],
        caps: &[u32],
    ) -> Answer<Spawned> {
        let refused = match Command::parse(path_and_args) {
            _ if caps.len() > MAX_PASSED_CAPS => Some(cx.refusal(Error::TooLarge, "more than 3 capabilities")),
            None => Some(cx.refusal(Error::InvalidArgument, "the command is empty or not UTF-8")),
            Some(_) => None,
        };
        if let Some(refusal) = refused {
            for &cap in caps {
                cx.drop_cap(cap);
            }
            return refusal.into();
        }
        let command = Command { blob: path_and_args };
        let runs_for = command.parts().nth(1).and_then(|n| n.parse().ok()).unwrap_or(0);
        let container = Self::container(cx, container);
        self.next_pid += 1;
        let pid = self.next_pid;
        self.children.push(Child { container, pid, runs_for, ending: (runs_for == 0).then_some(Ending::Code(0)) });
        Answer::Reply(Spawned { pid, container })
    }

    fn wait(&mut self, cx: &mut Cx<'_, Exited>, container: u64, pid: u64) -> Answer<Exited> {
        self.wait_for(cx, container, pid, None)
    }

    fn wait_timeout(&mut self, cx: &mut Cx<'_, Exited>, container: u64, pid: u64, timeout_ns: u64) -> Answer<Exited> {
        self.wait_for(cx, container, pid, Some(timeout_ns))
    }

    fn try_wait(&mut self, cx: &mut Cx<'_, Status>, container: u64, pid: u64) -> Answer<Status> {
        let container = Self::container(cx, container);
        match self.find(container, pid) {
            None => cx.refusal(Error::NoSuchProcess, format!("no process {pid}")).into(),
            Some(i) => {
                let ending = self.children[i].ending;
                if ending.is_some() {
                    self.children.remove(i);
                }
                Answer::Reply(Status { ending })
            }
        }
    }

    fn kill(&mut self, cx: &mut Cx<'_, Done>, container: u64, pid: u64) -> Answer<Done> {
        let container = Self::container(cx, container);
        match self.find(container, pid) {
            None => cx.refusal(Error::NoSuchProcess, format!("no process {pid}")).into(),
            Some(i) => {
                self.children[i].ending.get_or_insert(Ending::Killed);
                Answer::Reply(Done)
            }
        }
    }

    fn processes(&mut self, cx: &mut Cx<'_, List>, container: u64) -> Answer<List> {
        let container = Self::container(cx, container);
        let pairs = self.children.iter().filter(|c| c.container == container).map(|c| (c.container, c.pid)).collect();
        Answer::Reply(List { pairs })
    }

    fn create(&mut self, cx: &mut Cx<'_, Created>, parent: u64, limits: Limits, name: &str) -> Answer<Created> {
        if !valid_container_name(name) {
            return cx.refusal(Error::InvalidArgument, "not a container name").into();
        }
        Answer::Reply(Created { id: parent.wrapping_mul(1000).wrapping_add(limits.0[1]) })
    }

    fn tie(&mut self, cx: &mut Cx<'_, Done>, container: u64) -> Answer<Done> {
        if container == 0 || container == cx.caller().container {
            return cx.refusal(Error::AccessDenied, "a container cannot be tied to its own process").into();
        }
        Answer::Reply(Done)
    }

    fn container_name(&mut self, _: &mut Cx<'_, Named>, container: u64) -> Answer<Named> {
        Answer::Reply(Named { name: alloc::format!("c{container}") })
    }

    fn destroy(&mut self, cx: &mut Cx<'_, Done>, container: u64) -> Answer<Done> {
        if container == 0 || container == cx.caller().container {
            return cx.refusal(Error::AccessDenied, "a container cannot destroy itself").into();
        }
        Answer::Reply(Done)
    }

    fn containers(&mut self, cx: &mut Cx<'_, List>) -> Answer<List> {
        Answer::Reply(List { pairs: vec![(cx.caller().container, 0)] })
    }

    fn info(&mut self, cx: &mut Cx<'_, Info>, container: u64) -> Answer<Info> {
        let id = Self::container(cx, container);
        Answer::Reply(Info::from_container(&ContainerInfo { id, depth: 1, limits: [9; 5], ..Default::default() }))
    }

    fn register(&mut self, cx: &mut Cx<'_, Done>, name: &str, endpoint: u32) -> Answer<Done> {
        if !valid_name(name) {
            cx.drop_cap(endpoint);
            return cx.refusal(Error::InvalidArgument, format!("bad service name {name:?}")).into();
        }
        self.services.insert(name.into(), (endpoint, 0));
        Answer::Reply(Done)
    }

    fn lookup(&mut self, cx: &mut Cx<'_, Service>, name: &str) -> Answer<Service> {
        match self.services.get(name) {
            // A send-only copy of the endpoint (here: another handle number).
            Some(&(endpoint, generation)) => Answer::Reply(Service { generation, pid: 3, endpoint: endpoint + 1000 }),
            None => cx.refusal(Error::NotFound, format!("no service {name:?}")).into(),
        }
    }

    fn supervise(
        &mut self,
        cx: &mut Cx<'_, Spawned>,
        _restarts: u64,
        name: &str,
        command: &[u8],
        caps: &[u32],
    ) -> Answer<Spawned> {
        for &h in caps {
            cx.drop_cap(h);
        }
        if !valid_name(name) || Command::parse(command).is_none() {
            return cx.refusal(Error::InvalidArgument, "bad name or command").into();
        }
        self.next_pid += 1;
        Answer::Reply(Spawned { pid: self.next_pid, container: cx.caller().container })
    }

    fn process_info(&mut self, cx: &mut Cx<'_, ProcessDetail>, container: u64, pid: u64) -> Answer<ProcessDetail> {
        let container = Self::container(cx, container);
        let Some(child) = self.find(container, pid).map(|i| &self.children[i]) else {
            return cx.refusal(Error::NoSuchProcess, format!("no process {pid}")).into();
        };
        let state = if child.ending.is_some() { ProcessState::Exited } else { ProcessState::Blocked };
        Answer::Reply(ProcessDetail {
            name: String::from("bin/sleep"),
            container,
            pid,
            state,
            threads: 1,
            pages: 21,
            cpu_ns: child.runs_for * TICK_NS,
        })
    }
}

fn procs() -> Loopback<Procs> {
    let loopback = Loopback::new(Procs::default(), dispatch::<Procs>).with_idle(Procs::idle);
    loopback.set_caller(Caller { container: 7, pid: 1, badge: 0 });
    loopback
}

#[test]
fn every_operation_round_trips() {
    assert_eq!(protocol_checks::round_trip_every_operation(), Ok(16 * vessel_protocol::testing::ROUNDS));
}

#[test]
fn wait_blocks_until_the_child_ends() {
    let lo = procs();
    let proc = Client::new(&lo);
    let child = proc.spawn(0, &command_line("bin/sleep", &["5"]), b"", &[]).unwrap();
    assert_eq!(child, Spawned { pid: 1, container: 7 });
    assert_eq!(proc.try_wait(0, 1), Ok(Status { ending: None }));
    assert_eq!(proc.wait(0, 1), Ok(Exited { ending: Ending::Code(1) }));
    assert_eq!(lo.server().now, 5);
    // Reaped: gone now.
    assert_eq!(proc.wait(7, 1).unwrap_err().error, Error::NoSuchProcess);
}

#[test]
fn wait_timeout_gives_up_and_the_process_keeps_running() {
    let lo = procs();
    let proc = Client::new(&lo);
    proc.spawn(0, &command_line("bin/sleep", &["10"]), b"", &[]).unwrap();
    let refusal = proc.wait_timeout(0, 1, 2 * TICK_NS).unwrap_err();
    let why = "proc: container 0x0000000000000007: process 1 still runs after 2000000 ns";
    assert_eq!(refusal, Refusal::new(Error::TimedOut, why));
    assert_eq!(proc.wait_timeout(0, 1, 100 * TICK_NS), Ok(Exited { ending: Ending::Code(1) }));
}

#[test]
fn kill_ends_a_waited_process() {
    let lo = procs();
    let proc = Client::new(&lo);
    proc.spawn(0, &command_line("bin/sleep", &["100"]), b"", &[]).unwrap();
    assert_eq!(proc.processes(0), Ok(List { pairs: vec![(7, 1)] }));
    assert_eq!(proc.kill(0, 1), Ok(Done));
    assert_eq!(proc.try_wait(0, 1), Ok(Status { ending: Some(Ending::Killed) }));
    assert_eq!(proc.processes(0), Ok(List { pairs: vec![] }));
}

#[test]
fn capabilities_travel_and_refused_ones_are_deleted() {
    let lo = procs();
    let proc = Client::new(&lo);
    assert_eq!(proc.register("echo", 55), Ok(Done));
    assert_eq!(proc.lookup("echo"), Ok(Service { generation: 0, pid: 3, endpoint: 1055 }));
    assert_eq!(proc.lookup("nope").unwrap_err().error, Error::NotFound);
    assert_eq!(proc.register(&"n".repeat(MAX_NAME + 1), 56).unwrap_err().error, Error::InvalidArgument);
    let refusal = proc.spawn(0, b"bin/x", b"", &[60, 61, 62, 63]).unwrap_err();
    assert_eq!(refusal, Refusal::new(Error::TooLarge, "proc: container 0x0000000000000007: more than 3 capabilities"));
    assert_eq!(proc.spawn(0, b"", b"", &[64]).unwrap_err().error, Error::InvalidArgument);
    assert_eq!(lo.mailbox().dropped(), [56, 60, 61, 62, 63, 64]);
    assert!(proc.spawn(0, b"bin/x", b"", &[65, 66, 67]).is_ok());
}

#[test]
fn containers_and_info() {
    let lo = procs();
    let proc = Client::new(&lo);
    assert_eq!(proc.create(3, Limits([1, 2, UNLIMITED, 4, 5]), ""), Ok(Created { id: 3002 }));
    assert_eq!(proc.containers(), Ok(List { pairs: vec![(7, 0)] }));
    assert_eq!(proc.destroy(0).unwrap_err().error, Error::AccessDenied);
    assert_eq!(proc.destroy(9), Ok(Done));
    let info = proc.info(0).unwrap().container();
    assert_eq!((info.id, info.depth, info.limits), (7, 1, [9; 5]));
    let full =
        ContainerInfo { id: 1, parent: 2, state: 3, depth: 4, children: 5, members: 6, limits: [7; 5], usage: [8; 5] };
    assert_eq!(Info::from_container(&full).container(), full);
    assert_eq!(proc.supervise(2, "echo", b"bin/echo", &[]).unwrap().container, 7);
}

#[test]
fn the_wire_layout_is_the_documented_one() {
    let recorder = Recorder::default();
    let proc = Client::new(&recorder);
    let _ = proc.wait(3, 4);
    let _ = proc.wait_timeout(3, 4, 5);
    let _ = proc.spawn(3, b"bin/a\0b", b"", &[8, 9]);
    let _ = proc.create(0, Limits::default(), "");
    let frames = recorder.take();
    // Register-only: the kernel's fast path.
    assert_eq!(frames[0].words, [label::wait, 3, 4, 0]);
    assert_eq!(frames[1].words, [label::wait_timeout, 3, 4, 5]);
    assert!(frames[0].data.is_empty() && frames[1].data.is_empty());
    // spawn: container, then the command's and the environment's lengths and the capability
    // count in word 2.
    assert_eq!(frames[2].words, [label::spawn, 3, 7 | 2 << 32, 0]);
    assert_eq!((&frames[2].data[..], &frames[2].caps[..]), (&b"bin/a\0b"[..], &[8, 9][..]));
    // create: parent and two limits in the registers, three in the data, then the name's
    // length (and no bytes for an empty name).
    assert_eq!(frames[3].words, [label::create, 0, UNLIMITED, UNLIMITED]);
    assert_eq!(frames[3].data[..24], [0xff; 24]);
    assert_eq!(frames[3].data[24..], [0, 0]);
    // An exit code: tag 0, then the i64 across words 1 and 2.
    let (_, exited) = reply_frame(&OPERATIONS[1], &Exited { ending: Ending::Code(-2) });
    assert_eq!(exited.words, [vessel_protocol::reply_label(label::wait), (-2i64 as u64) << 8, 0xff, 0]);
}

#[test]
fn process_info_names_the_program_and_its_state() {
    let lo = procs();
    let proc = Client::new(&lo);
    proc.spawn(0, &command_line("bin/sleep", &["3"]), b"", &[]).unwrap();
    let detail = proc.process_info(0, 1).unwrap();
    let expected = ProcessDetail {
        name: "bin/sleep".into(),
        container: 7,
        pid: 1,
        state: ProcessState::Blocked,
        threads: 1,
        pages: 21,
        cpu_ns: 3 * TICK_NS,
    };
    assert_eq!(detail, expected);
    assert_eq!(proc.process_info(0, 9).unwrap_err().error, Error::NoSuchProcess);
    // Words only for the request: the kernel's fast path.
    let recorder = Recorder::default();
    let _ = Client::new(&recorder).process_info(5, 6);
    let frames = recorder.take();
    assert_eq!((frames[0].words, frames[0].data.len()), ([label::process_info, 5, 6, 0], 0));
    // The reply: the name's length, container, pid and state (one byte) in the registers; the
    // name and the three counts that no longer fit there in the data.
    let op = OPERATIONS.iter().find(|op| op.name == "process_info").unwrap();
    let (_, reply) = reply_frame(op, &expected);
    assert_eq!(reply.words[0], vessel_protocol::reply_label(label::process_info));
    assert_eq!(reply.words[1] & 0xffff, 9, "the name's length comes first");
    assert_eq!(reply.words[1] >> 16, 7, "then the container");
    assert_eq!(reply.data.len(), 9 + 3 * 8, "{:?}", reply.data);
    assert!(reply.data.windows(9).any(|w| w == b"bin/sleep"), "{:?}", reply.data);
    // States read as words, and no other tag decodes.
    let words: Vec<String> = ProcessState::examples().iter().map(|s| s.to_string()).collect();
    assert_eq!(words, ["running", "blocked", "exited"]);
    assert_eq!(ProcessState::from_kernel(1), ProcessState::Blocked);
    assert_eq!(ProcessState::from_kernel(7), ProcessState::Exited);
    for tag in 3..=255u8 {
        let mut reader = Reader::new(vessel_protocol::Frame { words: [0, u64::from(tag), 0, 0], data: &[], caps: &[] });
        assert!(ProcessState::take(&mut reader).is_err(), "tag {tag}");
    }
}

#[test]
fn hostile_messages_never_panic() {
    let report = protocol_checks::fuzz_every_operation(0x2545_f491_4f6c_dd1d, 60_000).unwrap();
    assert!(report.accepted > 0 && report.refused > 0 && report.deferred > 0, "{report:?}");
    // And through the in-memory proc, whose own refusals must delete the capabilities too.
    let recorder = Recorder::default();
    let proc = Client::new(&recorder);
    let _ = proc.spawn(0, b"bin/sleep\x003", b"", &[1, 2]);
    let _ = proc.wait(0, 1);
    let _ = proc.wait_timeout(0, 1, 5);
    let _ = proc.register("svc", 3);
    let _ = proc.supervise(1, "svc", b"bin/svc", &[4]);
    let mut server = Procs::default();
    let report = fuzz_requests(OPERATIONS, &recorder.take(), 3, 50_000, |caller, keeper, message| {
        if server.children.len() > 100 {
            server = Procs::default();
        }
        dispatch(&mut server, caller, keeper, message)
    })
    .unwrap();
    assert!(report.accepted > 0 && report.refused > 0, "{report:?}");
}

#[test]
fn commands_are_nul_separated() {
    let mut blob = [0u8; 64];
    let n = encode_command("bin/hello", &["a", "bc"], &mut blob).unwrap();
    assert_eq!(&blob[..n], command_line("bin/hello", &["a", "bc"]));
    let command = Command::parse(&blob[..n]).unwrap();
    assert_eq!(command.path(), "bin/hello");
    assert_eq!(command.parts().collect::<Vec<_>>(), ["bin/hello", "a", "bc"]);
    assert_eq!(Command::parse(b""), None);
    assert_eq!(Command::parse(b"\xff\xfe"), None);
    // A command that does not fit is not written.
    assert_eq!(encode_command("bin/hello", &[], &mut [0u8; 4]), None);
    assert!(valid_name("echo") && !valid_name("") && !valid_name(&"x".repeat(MAX_NAME + 1)));
}

#[test]
fn every_operation_and_field_is_documented_and_in_the_guide() {
    let guide = include_str!("../../../docs/proc.md");
    assert_eq!(undocumented(OPERATIONS, Some(guide)), Vec::<String>::new());
}
