//! The [`protocol!`](crate::protocol) macro: one declaration per protocol, expanded at the
//! invocation site (a protocol crate holds one protocol, so the generated names are fixed:
//! `NAME`, `OPERATIONS`, `label`, the reply structs, `Client`, `Server`, `dispatch`, and under
//! `cfg(test)` the module `protocol_checks`). The `__vp_*` helper macros map a field's
//! declared type token to its Rust types and encoding; they are not part of the API.
//!
//! A field type is one token: a keyword (`bytes`, `str`, `pairs`, `cap`, `caps`), a type name
//! in scope (`u64`, `bool`, `Ending`), an array (`[u64; 5]`), or any type in parentheses
//! (`(Option<Ending>)`).
//!
//! [`checks`] holds the checks generated for the protocol crate's tests.

mod checks;

/// Declares a protocol: its service name and operations, each with a label, documented request
/// fields and a reply. See `docs/protocols.md` and the crate documentation.
///
/// ```
/// vessel_protocol::protocol! {
///     /// The key-value example protocol.
///     pub protocol "kv" {
///         /// Store `value` under `key`.
///         1 put(
///             /// The key.
///             key: u64,
///             /// The value.
///             value: bytes,
///         ) -> Stored {
///             /// Whether an old value was overwritten.
///             replaced: bool,
///         };
///         /// Fetch the value under `key`.
///         2 get(/** The key. */ key: u64) -> Found { /** The value. */ value: bytes };
///     }
/// }
///
/// // A client over any transport, here one that finds its server gone.
/// struct Gone;
/// impl vessel_protocol::Transport for Gone {
///     fn call<R>(
///         &self,
///         stage: impl FnOnce(&mut vessel_protocol::Message<'_>) -> Result<(), vessel_protocol::Error>,
///         _read: impl FnOnce(vessel_protocol::Frame<'_>) -> R,
///     ) -> Result<R, vessel_protocol::Error> {
///         Err(vessel_protocol::Error::PeerDied)
///     }
///     fn drop_cap(&self, _handle: u32) {}
/// }
/// let refusal = Client::new(Gone).get(7).unwrap_err();
/// assert_eq!(refusal.reason, "kv.get: peer died");
/// assert_eq!((label::put, OPERATIONS[1].name), (1, "get"));
/// ```
///
/// `-> Name { fields }` declares the reply struct `Name` (a unit struct if there are no
/// fields); `-> Name` reuses one declared by another operation (or any type implementing
/// [`Reply`](crate::Reply)).
#[macro_export]
macro_rules! protocol {
    (
        $(#[doc = $pdoc:literal])*
        $vis:vis protocol $pname:literal {
            $(
                $(#[doc = $odoc:literal])*
                $label:literal $op:ident (
                    $( $(#[doc = $fdoc:literal])* $f:ident : $ft:tt ),* $(,)?
                ) -> $reply:ident $( { $($rbody:tt)* } )? ;
            )*
        }
    ) => {
        #[doc = concat!("Service name of the `", $pname, "` protocol, the start of its refusal reasons.")]
        $vis const NAME: &str = $pname;

        #[doc = concat!("The operations of the `", $pname, "` protocol, in declaration order.")]
        $vis const OPERATIONS: &[$crate::OpInfo] = &[$(
            $crate::OpInfo {
                protocol: $pname,
                name: stringify!($op),
                label: $label,
                doc: if cfg!(test) { concat!($($odoc, "\n",)*) } else { "" },
                request: &[$(
                    $crate::FieldInfo {
                        name: stringify!($f),
                        kind: $crate::__vp_kind!($ft),
                        doc: if cfg!(test) { concat!($($fdoc, "\n",)*) } else { "" },
                    },
                )*],
                reply: stringify!($reply),
                reply_fields: <$reply as $crate::Reply>::FIELDS,
            },
        )*];

        const _: () = assert!(
            $crate::check_labels(OPERATIONS),
            concat!("protocol `", $pname, "`: labels must be distinct and in 1..REPLY"),
        );

        #[doc = concat!("Request labels (`words[0]`) of the `", $pname, "` protocol; a reply's is `REPLY | label`.")]
        #[allow(non_upper_case_globals)]
        $vis mod label {
            $(
                $(#[doc = $odoc])*
                pub const $op: u64 = $label;
            )*
        }

        $($( $crate::__vp_reply! { $vis, $pname, $op, $reply { $($rbody)* } } )?)*

        $(#[doc = $pdoc])*
        #[doc = ""]
        #[doc = concat!("Client of the `", $pname, "` protocol: one method per operation, which sends the request over `T` and waits for the reply.")]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        $vis struct Client<T> {
            transport: T,
        }

        impl<T> Client<T> {
            /// A client sending over `transport`.
            pub const fn new(transport: T) -> Self {
                Client { transport }
            }

            /// The transport.
            pub fn transport(&self) -> &T {
                &self.transport
            }

            /// Gives the transport back.
            pub fn into_transport(self) -> T {
                self.transport
            }
        }

        impl<T: $crate::Transport> Client<T> {
            $(
                $(#[doc = $odoc])*
                #[allow(clippy::too_many_arguments)]
                pub fn $op(&self $(, $f: $crate::__vp_client_ty!($ft))*) -> ::core::result::Result<$reply, $crate::Refusal> {
                    // Its own description, not a pointer into `OPERATIONS`: a program links
                    // only the operations it calls.
                    const OP: &$crate::OpInfo = &$crate::OpInfo {
                        protocol: $pname,
                        name: stringify!($op),
                        label: $label,
                        doc: "",
                        request: &[$(
                            $crate::FieldInfo { name: stringify!($f), kind: $crate::__vp_kind!($ft), doc: "" },
                        )*],
                        reply: stringify!($reply),
                        reply_fields: <$reply as $crate::Reply>::FIELDS,
                    };
                    $crate::__private::call(&self.transport, OP, |w| {
                        $( $crate::__vp_put!(w, $ft, &$f); )*
                        let _ = w;
                    })
                }
            )*
        }

        $(#[doc = $pdoc])*
        #[doc = ""]
        #[doc = concat!("Server of the `", $pname, "` protocol: one method per operation, called by [`dispatch`] with the decoded fields.")]
        $vis trait Server {
            $(
                $(#[doc = $odoc])*
                #[allow(clippy::too_many_arguments)]
                fn $op(&mut self, cx: &mut $crate::Cx<'_, $reply> $(, $f: $crate::__vp_server_ty!($ft))*) -> $crate::Answer<$reply>;
            )*
        }

        #[doc = concat!("Handles one `", $pname, "` request in place: `message` holds the request received from `caller`; on return it holds the reply to send ([`Dispatched::Reply`](", stringify!($crate), "::Dispatched::Reply)), unless the server deferred it. A request that does not decode is refused, and its capabilities are deleted through `keeper`.")]
        $vis fn dispatch<S: Server + ?Sized>(
            server: &mut S,
            caller: $crate::Caller,
            keeper: &mut dyn $crate::ReplyKeeper,
            message: &mut $crate::Message<'_>,
        ) -> $crate::Dispatched {
            match message.words[0] {
                $(
                    $label => {
                        const OP: &$crate::OpInfo = $crate::__private::op_by_label(OPERATIONS, $label);
                        let reader = &mut $crate::Reader::new(message.frame());
                        #[allow(unused_labels)]
                        let decoded: ::core::result::Result<_, $crate::FieldError> = 'decode: {
                            $(
                                let $f = match $crate::__private::field($crate::__vp_take_request!(reader, $ft), stringify!($f)) {
                                    Ok(value) => value,
                                    Err(error) => break 'decode Err(error),
                                };
                            )*
                            match $crate::__private::end(reader) {
                                Ok(()) => Ok(($($f,)*)),
                                Err(error) => Err(error),
                            }
                        };
                        let error = match decoded {
                            Ok(($($f,)*)) => {
                                let mut cx = $crate::Cx::new(OP, caller, &mut *keeper);
                                let answer = <S as Server>::$op(server, &mut cx $(, $f)*);
                                return $crate::__private::conclude(cx, answer, message);
                            }
                            Err(error) => error,
                        };
                        $crate::__private::refuse_malformed(OP, error, keeper, message)
                    }
                )*
                _ => $crate::__private::refuse_unknown($pname, keeper, message),
            }
        }

        $crate::__vp_checks! {
            $vis, $pname;
            $( $label $op ( $($f : $ft),* ) -> $reply; )*
        }
    };
}

/// The declared type of a field, as text.
#[doc(hidden)]
#[macro_export]
macro_rules! __vp_kind {
    (($($t:tt)*)) => { stringify!($($t)*) };
    ($t:tt) => { stringify!($t) };
}

/// A request field's type in a client stub's arguments.
#[doc(hidden)]
#[macro_export]
macro_rules! __vp_client_ty {
    (bytes) => { &[u8] };
    (str) => { &str };
    (pairs) => { &[(u64, u64)] };
    (cap) => { u32 };
    (caps) => { &[u32] };
    (($($t:tt)*)) => { $($t)* };
    ($t:ty) => { $t };
}

/// A request field's type in a server method's arguments (borrowed from the message).
#[doc(hidden)]
#[macro_export]
macro_rules! __vp_server_ty {
    (bytes) => { &[u8] };
    (str) => { &str };
    (pairs) => { $crate::__private::Vec<(u64, u64)> };
    (cap) => { u32 };
    (caps) => { &[u32] };
    (($($t:tt)*)) => { $($t)* };
    ($t:ty) => { $t };
}

/// A reply field's (owned) type.
#[doc(hidden)]
#[macro_export]
macro_rules! __vp_reply_ty {
    (bytes) => { $crate::__private::Vec<u8> };
    (str) => { $crate::__private::String };
    (pairs) => { $crate::__private::Vec<(u64, u64)> };
    (cap) => { u32 };
    (caps) => { $crate::__private::Vec<u32> };
    (($($t:tt)*)) => { $($t)* };
    ($t:ty) => { $t };
}

/// The type whose examples feed a request field in the generated checks.
#[doc(hidden)]
#[macro_export]
macro_rules! __vp_example_ty {
    (bytes) => { &'static [u8] };
    (str) => { &'static str };
    (pairs) => { &'static [(u64, u64)] };
    (cap) => { u32 };
    (caps) => { &'static [u32] };
    (($($t:tt)*)) => { $($t)* };
    ($t:ty) => { $t };
}

/// Writes one field (`$v` is a reference to its value).
#[doc(hidden)]
#[macro_export]
macro_rules! __vp_put {
    ($w:ident, bytes, $v:expr) => { $w.bytes($v) };
    ($w:ident, str, $v:expr) => { $w.str($v) };
    ($w:ident, pairs, $v:expr) => { $w.pairs($v) };
    ($w:ident, cap, $v:expr) => { $w.cap(*$v) };
    ($w:ident, caps, $v:expr) => { $w.caps($v) };
    ($w:ident, ($($t:tt)*), $v:expr) => { <$($t)* as $crate::Field>::put($v, $w) };
    ($w:ident, $t:ty, $v:expr) => { <$t as $crate::Field>::put($v, $w) };
}

/// Reads one request field, borrowing from the message.
#[doc(hidden)]
#[macro_export]
macro_rules! __vp_take_request {
    ($r:ident, bytes) => { $r.bytes() };
    ($r:ident, str) => { $r.str() };
    ($r:ident, pairs) => { $r.pairs() };
    ($r:ident, cap) => { $r.cap() };
    ($r:ident, caps) => { $r.caps() };
    ($r:ident, ($($t:tt)*)) => { <$($t)* as $crate::Field>::take($r) };
    ($r:ident, $t:ty) => { <$t as $crate::Field>::take($r) };
}

/// Reads one reply field, owned.
#[doc(hidden)]
#[macro_export]
macro_rules! __vp_take_reply {
    ($r:ident, bytes) => { $r.bytes().map(<[u8]>::to_vec) };
    ($r:ident, str) => { $r.str().map($crate::__private::String::from) };
    ($r:ident, pairs) => { $r.pairs() };
    ($r:ident, cap) => { $r.cap() };
    ($r:ident, caps) => { $r.caps().map(<[u32]>::to_vec) };
    ($r:ident, ($($t:tt)*)) => { <$($t)* as $crate::Field>::take($r) };
    ($r:ident, $t:ty) => { <$t as $crate::Field>::take($r) };
}

/// A reply struct: a unit struct without fields, else one with public fields.
#[doc(hidden)]
#[macro_export]
macro_rules! __vp_reply_struct {
    ($(#[$m:meta])* $vis:vis $reply:ident {}) => {
        $(#[$m])*
        $vis struct $reply;
    };
    ($(#[$m:meta])* $vis:vis $reply:ident { $($body:tt)* }) => {
        $(#[$m])*
        $vis struct $reply { $($body)* }
    };
}

/// Declares a reply struct and implements [`Reply`](crate::Reply) (and, in tests,
/// [`Example`](crate::testing::Example)) for it.
#[doc(hidden)]
#[macro_export]
macro_rules! __vp_reply {
    (
        $vis:vis, $pname:literal, $op:ident,
        $reply:ident { $( $(#[doc = $rdoc:literal])* $rf:ident : $rft:tt ),* $(,)? }
    ) => {
        $crate::__vp_reply_struct! {
            #[doc = concat!("Reply of `", $pname, ".", stringify!($op), "`.")]
            #[derive(Clone, Debug, PartialEq, Eq)]
            $vis $reply { $( $(#[doc = $rdoc])* pub $rf: $crate::__vp_reply_ty!($rft), )* }
        }

        impl $crate::Reply for $reply {
            const NAME: &'static str = stringify!($reply);
            const FIELDS: &'static [$crate::FieldInfo] = &[$(
                $crate::FieldInfo {
                    name: stringify!($rf),
                    kind: $crate::__vp_kind!($rft),
                    doc: if cfg!(test) { concat!($($rdoc, "\n",)*) } else { "" },
                },
            )*];

            fn put(&self, w: &mut $crate::Writer<'_>) {
                $( $crate::__vp_put!(w, $rft, &self.$rf); )*
                let _ = w;
            }

            fn take(r: &mut $crate::Reader<'_>) -> ::core::result::Result<Self, $crate::FieldError> {
                let _ = &r;
                Ok($reply {
                    $( $rf: $crate::__private::field($crate::__vp_take_reply!(r, $rft), stringify!($rf))?, )*
                })
            }
        }

        #[cfg(test)]
        impl $crate::testing::Example for $reply {
            fn examples() -> $crate::__private::Vec<Self> {
                (0..$crate::testing::ROUNDS)
                    .map(|_round| $reply { $( $rf: $crate::testing::pick::<$crate::__vp_reply_ty!($rft)>(_round), )* })
                    .collect()
            }
        }
    };
}
