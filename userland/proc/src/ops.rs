//! The `proc` operations: [`vessel_proc_protocol::Server`] for [`State`]. Each method checks
//! what the caller may see (its own container and those below it), acts, and answers; a
//! refusal names the service, the caller's container and the rule that refused it.

use alloc::format;
use alloc::string::String;

use vessel_proc_protocol::{
    Command, Created, Done, Exited, Info, Limits, List, MAX_PASSED_CAPS, Named, ProcessDetail, ProcessState, Server,
    Service, Spawned, Status, valid_container_name, valid_name,
};
use vessel_protocol::{Answer, Cx, Refusal};
use vessel_rt::abi::{ContainerLimits, Error, Rights};
use vessel_rt::container;
use vessel_rt::ipc::{Cap, Endpoint};
use vessel_rt::time;

use crate::state::{self, Node, State, Supervised};

/// A refusal of `error` for the caller of `cx`, saying `why`.
fn refuse<R: vessel_protocol::Reply, T>(cx: &Cx<'_, R>, error: Error, why: impl core::fmt::Display) -> Answer<T> {
    Answer::Refuse(cx.refusal(error, why))
}

/// The standard reason for a kernel or lookup error.
fn refused<R: vessel_protocol::Reply>(cx: &Cx<'_, R>, error: Error, what: &str) -> Refusal {
    cx.refusal(error, format!("{what}: {error}"))
}

impl State {
    /// Starts a wait for process `pid`: at once if it has ended, else keeps the reply.
    fn wait_for(&mut self, cx: &mut Cx<'_, Exited>, container: u64, pid: u64, deadline: Option<u64>) -> Answer<Exited> {
        let caller = cx.caller().container;
        let i = match self.find(caller, container, pid) {
            Ok(i) => i,
            Err(e) => return Answer::Refuse(refused(cx, e, &format!("process {pid}"))),
        };
        let record = &self.processes[i];
        if self.is_supervised(record.container, record.pid) {
            return refuse(
                cx,
                Error::AccessDenied,
                format!("process {pid} is a supervised service; only proc reaps it"),
            );
        }
        if let Some(ending) = self.reap_if_ended(i) {
            return Answer::Reply(Exited { ending });
        }
        let id = self.processes[i].container;
        match cx.defer() {
            Ok(reply) => {
                self.keep_wait(caller, id, pid, reply, deadline);
                Answer::Later
            }
            Err(refusal) => Answer::Refuse(refusal),
        }
    }
}

impl Server for State {
    fn spawn(
        &mut self,
        cx: &mut Cx<'_, Spawned>,
        container: u64,
        path_and_args: &[u8],
        env: &[u8],
        caps: &[u32],
    ) -> Answer<Spawned> {
        let drop_all = |cx: &mut Cx<'_, Spawned>| {
            for &h in caps {
                cx.drop_cap(h);
            }
        };
        if caps.len() > MAX_PASSED_CAPS {
            drop_all(cx);
            return refuse(
                cx,
                Error::TooLarge,
                format!("{} capabilities passed, at most {MAX_PASSED_CAPS}", caps.len()),
            );
        }
        let Some(command) = Command::parse(path_and_args) else {
            drop_all(cx);
            return refuse(cx, Error::InvalidArgument, "the command is empty or not UTF-8");
        };
        let target = self.visible(cx.caller().container, container).map(|n| (n.id, n.cap));
        let result = target.and_then(|(id, cap)| self.spawn(id, cap, command, env, caps).map(|pid| (pid, id)));
        // The kernel gave the child copies: ours go either way.
        drop_all(cx);
        match result {
            Ok((pid, container)) => Answer::Reply(Spawned { pid, container }),
            Err(e) => Answer::Refuse(refused(cx, e, &format!("cannot start {}", command.path()))),
        }
    }

    fn wait(&mut self, cx: &mut Cx<'_, Exited>, container: u64, pid: u64) -> Answer<Exited> {
        self.wait_for(cx, container, pid, None)
    }

    fn wait_timeout(&mut self, cx: &mut Cx<'_, Exited>, container: u64, pid: u64, timeout_ns: u64) -> Answer<Exited> {
        let deadline = time::now_ns().saturating_add(timeout_ns);
        self.wait_for(cx, container, pid, Some(deadline))
    }

    fn try_wait(&mut self, cx: &mut Cx<'_, Status>, container: u64, pid: u64) -> Answer<Status> {
        match self.find(cx.caller().container, container, pid) {
            Ok(i) if self.is_supervised(self.processes[i].container, pid) => {
                refuse(cx, Error::AccessDenied, format!("process {pid} is a supervised service; only proc reaps it"))
            }
            Ok(i) => Answer::Reply(Status { ending: self.reap_if_ended(i) }),
            Err(e) => Answer::Refuse(refused(cx, e, &format!("process {pid}"))),
        }
    }

    fn kill(&mut self, cx: &mut Cx<'_, Done>, container: u64, pid: u64) -> Answer<Done> {
        let killed = self.find(cx.caller().container, container, pid).and_then(|i| self.processes[i].handle.kill());
        match killed {
            Ok(()) => Answer::Reply(Done),
            Err(e) => Answer::Refuse(refused(cx, e, &format!("cannot kill process {pid}"))),
        }
    }

    fn process_info(&mut self, cx: &mut Cx<'_, ProcessDetail>, container: u64, pid: u64) -> Answer<ProcessDetail> {
        let caller = cx.caller();
        match self.find(caller.container, container, pid).and_then(|i| self.detail(i)) {
            Ok(mut detail) => {
                // The caller is blocked only on this answer: to itself (and in `ps`) it runs.
                if detail.container == caller.container && detail.pid == caller.pid {
                    detail.state = ProcessState::Running;
                }
                Answer::Reply(detail)
            }
            Err(e) => Answer::Refuse(refused(cx, e, &format!("process {pid}"))),
        }
    }

    fn processes(&mut self, cx: &mut Cx<'_, List>, container: u64) -> Answer<List> {
        let top = match self.visible(cx.caller().container, container) {
            Ok(node) => node.id,
            Err(e) => return Answer::Refuse(refused(cx, e, &format!("container {container:#x}"))),
        };
        let pairs = self.processes.iter().filter(|r| self.below(top, r.container)).map(|r| (r.container, r.pid));
        Answer::Reply(List { pairs: pairs.take(vessel_proc_protocol::MAX_LIST).collect() })
    }

    fn create(&mut self, cx: &mut Cx<'_, Created>, parent: u64, limits: Limits, name: &str) -> Answer<Created> {
        let (parent_id, parent_cap) = match self.visible(cx.caller().container, parent) {
            Ok(node) => (node.id, node.cap),
            Err(e) => return Answer::Refuse(refused(cx, e, &format!("parent container {parent:#x}"))),
        };
        if !valid_container_name(name) {
            return refuse(
                cx,
                Error::InvalidArgument,
                format!("{name:?} is not a container name (letters, digits, - _ ., not a digit first)"),
            );
        }
        if !name.is_empty() && self.containers.values().any(|n| n.parent == parent_id && n.name == name) {
            return refuse(
                cx,
                Error::AlreadyExists,
                format!("container {parent_id:#x} already has a child named {name:?}"),
            );
        }
        let created = parent_cap.create_child(&ContainerLimits { amounts: limits.0 }).and_then(|cap| match cap.id() {
            Ok(id) => Ok((cap, id)),
            Err(e) => {
                let _ = cap.0.delete();
                Err(e)
            }
        });
        match created {
            Ok((cap, id)) => {
                self.containers.insert(id, Node { id, parent: parent_id, cap, name: String::from(name), tied: None });
                Answer::Reply(Created { id })
            }
            Err(e) => Answer::Refuse(refused(cx, e, "cannot create a container")),
        }
    }

    fn tie(&mut self, cx: &mut Cx<'_, Done>, container: u64) -> Answer<Done> {
        let caller = *cx.caller();
        let id = match self.visible(caller.container, container) {
            Ok(node) => node.id,
            Err(e) => return Answer::Refuse(refused(cx, e, &format!("container {container:#x}"))),
        };
        if id == caller.container || id == self.root_id {
            return refuse(cx, Error::AccessDenied, "a container cannot be tied to a process inside it, nor the root");
        }
        if !self.processes.iter().any(|r| r.container == caller.container && r.pid == caller.pid) {
            let why = format!("proc did not start process {}, so it would not see it end", caller.pid);
            return refuse(cx, Error::NoSuchProcess, why);
        }
        if let Some(node) = self.containers.get_mut(&id) {
            node.tied = Some((caller.container, caller.pid));
        }
        Answer::Reply(Done)
    }

    fn container_name(&mut self, cx: &mut Cx<'_, Named>, container: u64) -> Answer<Named> {
        match self.visible(cx.caller().container, container) {
            Ok(node) => Answer::Reply(Named { name: node.name.clone() }),
            Err(e) => Answer::Refuse(refused(cx, e, &format!("container {container:#x}"))),
        }
    }

    fn destroy(&mut self, cx: &mut Cx<'_, Done>, container: u64) -> Answer<Done> {
        let caller = cx.caller().container;
        let node = match self.visible(caller, container) {
            Ok(node) => node,
            Err(e) => return Answer::Refuse(refused(cx, e, &format!("container {container:#x}"))),
        };
        if node.id == caller || node.id == self.root_id {
            return refuse(cx, Error::AccessDenied, "a container cannot destroy itself or the root");
        }
        let top = node.id;
        if let Err(e) = node.cap.destroy() {
            return Answer::Refuse(refused(cx, e, &format!("cannot destroy {top:#018x}")));
        }
        // Everything in and below it ended: reap it, refuse its waits, forget the containers.
        self.forget_below(top);
        Answer::Reply(Done)
    }

    fn containers(&mut self, cx: &mut Cx<'_, List>) -> Answer<List> {
        let caller = cx.caller().container;
        let pairs = self.containers.values().filter(|n| self.below(caller, n.id)).map(|n| (n.id, n.parent));
        Answer::Reply(List { pairs: pairs.take(vessel_proc_protocol::MAX_LIST).collect() })
    }

    fn info(&mut self, cx: &mut Cx<'_, Info>, container: u64) -> Answer<Info> {
        match self.visible(cx.caller().container, container).and_then(|n| n.cap.info()) {
            Ok(info) => Answer::Reply(Info::from_container(&info)),
            Err(e) => Answer::Refuse(refused(cx, e, &format!("container {container:#x}"))),
        }
    }

    fn register(&mut self, cx: &mut Cx<'_, Done>, name: &str, endpoint: u32) -> Answer<Done> {
        let why = if cx.caller().container != self.root_id {
            Some((Error::AccessDenied, String::from("only the root container registers services")))
        } else if !valid_name(name) {
            Some((Error::InvalidArgument, format!("bad service name {name:?}")))
        } else if self.services.iter().any(|s| s.name == name) {
            Some((Error::InvalidArgument, format!("service {name:?} exists")))
        } else {
            None
        };
        if let Some((error, why)) = why {
            cx.drop_cap(endpoint);
            return refuse(cx, error, why);
        }
        let endpoint = Endpoint(Cap(endpoint));
        let send = container::register_service(endpoint, self.root)
            .and_then(|()| endpoint.0.duplicate(Rights::SEND | Rights::TRANSFER | Rights::DUPLICATE));
        let _ = endpoint.0.delete();
        match send {
            Ok(send) => {
                self.services.push(state::Service {
                    name: String::from(name),
                    endpoint: Endpoint(send),
                    generation: 0,
                    pid: cx.caller().pid,
                    supervised: None,
                });
                Answer::Reply(Done)
            }
            Err(e) => Answer::Refuse(refused(cx, e, &format!("cannot register {name:?}"))),
        }
    }

    fn lookup(&mut self, cx: &mut Cx<'_, Service>, name: &str) -> Answer<Service> {
        let Some(service) = self.services.iter().find(|s| s.name == name) else {
            return refuse(cx, Error::NotFound, format!("no service {name:?}"));
        };
        match service.endpoint.0.duplicate(Rights::SEND | Rights::TRANSFER) {
            Ok(copy) => Answer::Reply(Service { generation: service.generation, pid: service.pid, endpoint: copy.0 }),
            Err(e) => Answer::Refuse(refused(cx, e, &format!("service {name:?}"))),
        }
    }

    fn supervise(
        &mut self,
        cx: &mut Cx<'_, Spawned>,
        restarts: u64,
        name: &str,
        command: &[u8],
        caps: &[u32],
    ) -> Answer<Spawned> {
        let refusal = if cx.caller().container != self.root_id {
            Some((Error::AccessDenied, String::from("only the root container supervises services")))
        } else if !valid_name(name) || self.services.iter().any(|s| s.name == name) {
            Some((Error::InvalidArgument, format!("bad or taken service name {name:?}")))
        } else if caps.len() > MAX_PASSED_CAPS {
            Some((Error::TooLarge, format!("{} capabilities passed, at most {MAX_PASSED_CAPS}", caps.len())))
        } else {
            None
        };
        if let Some((error, why)) = refusal {
            for &h in caps {
                cx.drop_cap(h);
            }
            return refuse(cx, error, why);
        }
        // What every instance keeps across restarts: one memory object, passed to each.
        let kept = match vessel_rt::ipc::Memory::create(vessel_proc_protocol::KEPT_PAGES) {
            Ok(memory) => memory,
            Err(e) => {
                for &h in caps {
                    cx.drop_cap(h);
                }
                return Answer::Refuse(refused(cx, e, &format!("no kept memory for service {name:?}")));
            }
        };
        let mut caps = caps.to_vec();
        caps.push(kept.0.0);
        match self.start_instance(command, &caps) {
            Ok((endpoint, pid)) => {
                let supervised = Supervised { command: command.into(), caps, restarts };
                self.services.push(state::Service {
                    name: String::from(name),
                    endpoint,
                    generation: 0,
                    pid,
                    supervised: Some(supervised),
                });
                Answer::Reply(Spawned { pid, container: self.root_id })
            }
            Err(e) => {
                let _ = kept.0.delete();
                for &h in &caps[..caps.len() - 1] {
                    cx.drop_cap(h);
                }
                Answer::Refuse(refused(cx, e, &format!("cannot start service {name:?}")))
            }
        }
    }
}
