//! The checks generated with every declaration, compiled only into the protocol crate's own
//! tests (`cfg(test)` is evaluated in that crate): module `protocol_checks` with an echo server
//! and two functions, `round_trip_every_operation` and `fuzz_every_operation`, built on
//! [`crate::testing`].

/// The checks of a declaration, compiled only into the protocol crate's own tests.
#[doc(hidden)]
#[macro_export]
macro_rules! __vp_checks {
    ($vis:vis, $pname:literal; $( $label:literal $op:ident ( $($f:ident : $ft:tt),* ) -> $reply:ident; )*) => {
        #[cfg(test)]
        #[doc = concat!("Checks of the `", $pname, "` declaration for this crate's tests: every operation round-trips through the loopback (replied, deferred and refused), and hostile messages are refused without panicking.")]
        $vis mod protocol_checks {
            #![allow(unused_imports, dead_code)]
            use super::*;
            use $crate::__private::{Box, String, Vec};
            use $crate::testing::{Mailbox, pick};

            /// Answers each operation with the examples of the round and, when strict, checks
            /// that the request carried the examples of the round.
            pub struct Echo {
                /// Which examples, and which kind of answer (see `testing::echo`).
                pub round: usize,
                /// Whether to check the request fields.
                pub strict: bool,
                /// Deferred answers, sent by `idle`.
                pub pending: $crate::testing::Pending,
                /// The first request field that differed.
                pub mismatch: Option<String>,
            }

            impl Echo {
                /// A fresh echo server.
                pub fn new(strict: bool) -> Echo {
                    Echo { round: 0, strict, pending: Vec::new(), mismatch: None }
                }

                /// Sends the deferred answers.
                pub fn idle(&mut self, mailbox: &Mailbox) {
                    for answer in self.pending.drain(..) {
                        answer(mailbox);
                    }
                }
            }

            impl super::Server for Echo {
                $(
                    #[allow(clippy::too_many_arguments)]
                    fn $op(&mut self, cx: &mut $crate::Cx<'_, $reply> $(, $f: $crate::__vp_server_ty!($ft))*) -> $crate::Answer<$reply> {
                        $(
                            let expected = pick::<$crate::__vp_example_ty!($ft)>(self.round);
                            $crate::testing::expect_same(self.strict, &mut self.mismatch, cx.op(), stringify!($f), &expected, &$f);
                        )*
                        $crate::testing::echo(&mut self.pending, cx, self.round, pick::<$reply>(self.round))
                    }
                )*
            }

            /// Calls every operation with every example through the loopback and checks what
            /// the server saw and what the client got back; the number of calls checked.
            pub fn round_trip_every_operation() -> Result<usize, String> {
                let loopback = $crate::testing::Loopback::new(Echo::new(true), super::dispatch::<Echo>).with_idle(Echo::idle);
                let client = super::Client::new(&loopback);
                let mut checked = 0;
                for round in 0..$crate::testing::ROUNDS {
                    loopback.server().round = round;
                    $(
                        let op = $crate::__private::op_by_label(super::OPERATIONS, $label);
                        let got = client.$op($( pick::<$crate::__vp_example_ty!($ft)>(round) ),*);
                        let expected = $crate::testing::echo_expected(op, round, pick::<$reply>(round));
                        let mismatch = loopback.server().mismatch.take();
                        $crate::testing::check_round(op, round, &got, &expected, mismatch)?;
                        checked += 1;
                    )*
                }
                $crate::testing::check_no_caps_dropped(&loopback)?;
                Ok(checked)
            }

            /// Feeds `iterations` hostile requests to `dispatch` and hostile replies to every
            /// client decoder (mutations of valid ones and random ones), checking the answers.
            pub fn fuzz_every_operation(seed: u64, iterations: usize) -> Result<$crate::testing::FuzzReport, String> {
                let recorder = $crate::testing::Recorder::default();
                let client = super::Client::new(&recorder);
                let mut replies = Vec::new();
                for round in 0..$crate::testing::ROUNDS {
                    $(
                        let op = $crate::__private::op_by_label(super::OPERATIONS, $label);
                        let _ = client.$op($( pick::<$crate::__vp_example_ty!($ft)>(round) ),*);
                        replies.push($crate::testing::reply_frame(op, &pick::<$reply>(round)));
                    )*
                }
                let mut echo = Echo::new(false);
                let report = $crate::testing::fuzz_requests(super::OPERATIONS, &recorder.take(), seed, iterations, |caller, keeper, message| {
                    echo.round = (echo.round + 1) % 2;
                    echo.pending.clear();
                    super::dispatch(&mut echo, caller, keeper, message)
                })?;
                $crate::testing::fuzz_replies(&replies, seed ^ 0x5eed, iterations, |label, frame| match label {
                    $(
                        $label => $crate::__private::read_reply::<$reply>($crate::__private::op_by_label(super::OPERATIONS, $label), frame)
                            .map(|_| ())
                            .map_err(|(_, caps)| caps),
                    )*
                    _ => Ok(()),
                })?;
                Ok(report)
            }
        }
    };
}
