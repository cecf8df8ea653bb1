//! Deferred replies: kept, answered later through the sender with the operation's own reply
//! encoding, and the mistakes a server can make with them.

use super::sample::{self, Blob, Client, Done, Passed, Scalars, Server, Shape, Shaped, Wide};
use crate::testing::{Loopback, Mailbox};
use crate::{Answer, Cx, Deferred, Error, Refusal};

/// A server whose operations each show one behaviour.
#[derive(Default)]
struct Scripted {
    kept: Vec<Deferred<Done>>,
    kept_pass: Vec<(Deferred<Passed>, Passed)>,
    idle_steps: usize,
    second_defer: Option<Refusal>,
}

impl Scripted {
    /// Answers the kept `nothing` requests on the third idle step.
    fn idle(&mut self, mailbox: &Mailbox) {
        self.idle_steps += 1;
        if self.idle_steps >= 3 {
            for token in self.kept.drain(..) {
                token.answer(mailbox, Ok(Done)).unwrap();
            }
            for (token, reply) in self.kept_pass.drain(..) {
                token.answer(mailbox, Ok(reply)).unwrap();
            }
        }
    }
}

impl Server for Scripted {
    /// Bug: `Later` without deferring.
    fn scalars(&mut self, _: &mut Cx<'_, Scalars>, _: u64, _: i64, _: u32, _: u16, _: u8, _: bool) -> Answer<Scalars> {
        Answer::Later
    }

    /// Defers twice: the second is refused; the first token is kept.
    fn spill(&mut self, cx: &mut Cx<'_, Done>, _: u64, _: u64, _: u64, _: u8, _: [u64; 5]) -> Answer<Done> {
        let token = cx.defer().unwrap();
        self.second_defer = cx.defer().err();
        self.kept.push(token);
        Answer::Later
    }

    /// A reply larger than a message.
    fn blob(&mut self, _: &mut Cx<'_, Blob>, _: &[u8], _: &str, _: Vec<(u64, u64)>) -> Answer<Blob> {
        Answer::Reply(Blob { data: vec![0; 5000], text: String::new(), list: Vec::new() })
    }

    /// As `note` says: `late` defers, then answers now anyway (a bug; the reply's capabilities
    /// must not leak); `many` answers with five capabilities (too many), `later-many` does so
    /// through a deferred reply.
    fn pass(&mut self, cx: &mut Cx<'_, Passed>, endpoint: u32, extra: &[u32], note: &str) -> Answer<Passed> {
        let mut reply = Passed { endpoint: endpoint + 100, extra: extra.to_vec(), note: String::new() };
        match note {
            "late" => {
                let _ = cx.defer().unwrap().into_handle();
                Answer::Reply(reply)
            }
            "many" => {
                reply.extra.extend([102, 103]);
                Answer::Reply(reply)
            }
            _ => {
                reply.extra.extend([102, 103]);
                self.kept_pass.push((cx.defer().unwrap(), reply));
                Answer::Later
            }
        }
    }

    /// The standard refusal for the caller, and a capability the method deletes itself.
    fn shape(&mut self, cx: &mut Cx<'_, Shaped>, _: Shape, _: Option<Shape>) -> Answer<Shaped> {
        Err(cx.refusal(Error::NotFound, "no such shape")).into()
    }

    /// Kept until the third idle step.
    fn nothing(&mut self, cx: &mut Cx<'_, Done>) -> Answer<Done> {
        match cx.defer() {
            Ok(token) => {
                self.kept.push(token);
                Answer::Later
            }
            Err(refusal) => refusal.into(),
        }
    }

    /// Replies at once.
    fn wide(&mut self, _: &mut Cx<'_, Wide>, fields: [u64; 16]) -> Answer<Wide> {
        Answer::Reply(Wide { fields, flag: true })
    }
}

fn scripted() -> Loopback<Scripted> {
    Loopback::new(Scripted::default(), sample::dispatch::<Scripted>).with_idle(Scripted::idle)
}

#[test]
fn a_deferred_reply_arrives_when_the_server_answers_it() {
    let lo = scripted();
    assert_eq!(Client::new(&lo).nothing(), Ok(Done));
    assert_eq!(lo.server().idle_steps, 3);
    // Deferring twice is refused; the first token still answers.
    lo.server().idle_steps = 0;
    assert_eq!(Client::new(&lo).spill(1, 2, 3, 4, [0; 5]), Ok(Done));
    let second = lo.server().second_defer.clone().unwrap();
    assert_eq!(second.error, Error::InvalidArgument);
    assert_eq!(second.reason, "sample.spill: cannot defer the reply: invalid argument");
}

#[test]
fn an_unanswered_deferred_reply_blocks() {
    let lo = Loopback::new(Scripted::default(), sample::dispatch::<Scripted>);
    let refusal = Client::new(&lo).nothing().unwrap_err();
    assert_eq!(refusal, Refusal::new(Error::WouldBlock, "sample.nothing: would block"));
    // The token answers later, once; the reply capability is then used up.
    let token = lo.server().kept.pop().unwrap();
    let handle = token.handle();
    token.answer(lo.mailbox(), Ok(Done)).unwrap();
    assert_eq!(crate::ReplySender::send_reply(lo.mailbox(), handle, |_| {}), Err(Error::InvalidHandle));
}

#[test]
fn later_without_deferring_is_refused() {
    let lo = scripted();
    let refusal = Client::new(&lo).scalars(0, 0, 0, 0, 0, false).unwrap_err();
    assert_eq!(refusal.reason, "sample.scalars: the server answered later without deferring");
}

#[test]
fn a_reply_too_large_becomes_a_refusal() {
    let lo = scripted();
    let refusal = Client::new(&lo).blob(b"", "", &[]).unwrap_err();
    assert_eq!(refusal.error, Error::TooLarge);
    assert!(refusal.reason.starts_with("sample.blob: reply too large: needs 5000 bytes"), "{refusal}");
}

#[test]
fn an_answer_after_deferring_is_dropped_with_its_capabilities() {
    let lo = scripted();
    assert_eq!(Client::new(&lo).pass(1, &[2, 3], "late").unwrap_err().error, Error::WouldBlock);
    assert_eq!(lo.mailbox().dropped(), [101, 2, 3]);
}

#[test]
fn a_reply_with_too_many_capabilities_is_refused_and_they_are_deleted() {
    let too_many = "sample.pass: reply too large: carries 5 capabilities, at most 4 fit";
    for note in ["many", "later-many"] {
        let lo = scripted();
        let refusal = Client::new(&lo).pass(1, &[2, 3], note).unwrap_err();
        assert_eq!(refusal, Refusal::new(Error::TooLarge, too_many), "{note}");
        // The first four (all a message can name) are deleted.
        assert_eq!(lo.mailbox().dropped(), [101, 2, 3, 102], "{note}");
    }
}

#[test]
fn the_standard_refusal_names_service_and_container() {
    let lo = scripted();
    lo.set_caller(crate::Caller { container: 0xabc, pid: 2, badge: 0 });
    let refusal = Client::new(&lo).shape(Shape::Dot, None).unwrap_err();
    assert_eq!(refusal, Refusal::new(Error::NotFound, "sample: container 0x0000000000000abc: no such shape"));
}

#[test]
fn a_token_can_go_to_another_thread() {
    fn send<T: Send>() {}
    send::<Deferred<Passed>>();
}
