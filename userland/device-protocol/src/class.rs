//! What kind of device an entry is ([`Class`]) and how the caller's container holds it
//! ([`Access`]). Each is one `u8` on the wire, numbered from 1 so that a zeroed byte is not a
//! valid value; anything outside the table decodes to `DecodeError::BadValue`.

use core::fmt;

use vessel_protocol::{DecodeError, Field, Reader, Writer};

/// What kind of device an entry is; it decides which operations apply to its sessions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Class {
    /// A block device (`blk0`): `read_blocks`, `write_blocks`, `flush`.
    Block = 1,
    /// A serial port (`serial0`): `read`, `write`.
    Serial = 2,
    /// The keyboard (`kbd0`): `read` gives the UTF-8 text of the keys pressed.
    Keyboard = 3,
    /// The boot framebuffer (`fb0`): listed, granted and opened like the others; drawing on it
    /// is not part of this protocol.
    Framebuffer = 4,
    /// The real-time clock (`rtc0`): `time`.
    Clock = 5,
    /// A console (`console0`, virtual): `write` shows text on the system console, `read` takes
    /// text typed there.
    Console = 6,
    /// A null device (`null0`, virtual): `read` answers the end at once, `write` discards.
    Null = 7,
    /// A zero device (`zero0`, virtual): `read` gives zero bytes, `write` discards.
    Zero = 8,
    /// A random device (`random0`, virtual): `read` gives random bytes, `write` discards.
    Random = 9,
}

impl Class {
    /// Every class, in wire order.
    pub const ALL: [Class; 9] = [
        Class::Block,
        Class::Serial,
        Class::Keyboard,
        Class::Framebuffer,
        Class::Clock,
        Class::Console,
        Class::Null,
        Class::Zero,
        Class::Random,
    ];

    /// The class's name for people and for `plug`'s `kind`: `"block"`, `"serial"`, ...
    pub const fn as_str(self) -> &'static str {
        match self {
            Class::Block => "block",
            Class::Serial => "serial",
            Class::Keyboard => "keyboard",
            Class::Framebuffer => "framebuffer",
            Class::Clock => "clock",
            Class::Console => "console",
            Class::Null => "null",
            Class::Zero => "zero",
            Class::Random => "random",
        }
    }

    /// The class named `name` ([`Class::as_str`]), if any.
    pub fn from_name(name: &str) -> Option<Class> {
        Class::ALL.into_iter().find(|class| class.as_str() == name)
    }

    /// How its devices' names start: `blk` (`blk0`), `serial`, `kbd`, `fb`, `rtc`, `console`,
    /// `null`, `zero`, `random`; the server appends the first free number.
    pub const fn name_prefix(self) -> &'static str {
        match self {
            Class::Block => "blk",
            Class::Serial => "serial",
            Class::Keyboard => "kbd",
            Class::Framebuffer => "fb",
            Class::Clock => "rtc",
            Class::Console => "console",
            Class::Null => "null",
            Class::Zero => "zero",
            Class::Random => "random",
        }
    }

    /// Whether `plug` creates devices of this class (the virtual ones: console, null, zero,
    /// random).
    pub const fn pluggable(self) -> bool {
        matches!(self, Class::Console | Class::Null | Class::Zero | Class::Random)
    }

    /// Whether its sessions use `read` and, but for the keyboard's, `write` (every class but
    /// block, framebuffer and clock).
    pub const fn is_byte_device(self) -> bool {
        !matches!(self, Class::Block | Class::Framebuffer | Class::Clock)
    }
}

impl TryFrom<u8> for Class {
    type Error = DecodeError;

    /// The class with wire value `value`; `BadValue` for any other.
    fn try_from(value: u8) -> Result<Class, DecodeError> {
        Class::ALL.into_iter().find(|&class| class as u8 == value).ok_or(DecodeError::BadValue)
    }
}

impl fmt::Display for Class {
    /// Its [`Class::as_str`] name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `u8`: the discriminant (1 block ... 9 random).
impl Field for Class {
    fn put(&self, w: &mut Writer<'_>) {
        w.u8(*self as u8);
    }

    fn take(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Class::try_from(r.u8()?)
    }
}

/// How the caller's container holds a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Access {
    /// It owns it: the root container's own hardware, or a virtual device plugged into it.
    Owner = 1,
    /// Granted by its parent, shared with others.
    Shared = 2,
    /// Granted by its parent exclusively: nobody outside its grant chain may use it.
    Exclusive = 3,
}

impl Access {
    /// Every access, in wire order.
    pub const ALL: [Access; 3] = [Access::Owner, Access::Shared, Access::Exclusive];

    /// Its name for people: `"owner"`, `"shared"`, `"exclusive"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Access::Owner => "owner",
            Access::Shared => "shared",
            Access::Exclusive => "exclusive",
        }
    }
}

impl TryFrom<u8> for Access {
    type Error = DecodeError;

    /// The access with wire value `value`; `BadValue` for any other.
    fn try_from(value: u8) -> Result<Access, DecodeError> {
        Access::ALL.into_iter().find(|&access| access as u8 == value).ok_or(DecodeError::BadValue)
    }
}

impl fmt::Display for Access {
    /// Its [`Access::as_str`] name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `u8`: the discriminant (1 owner, 2 shared, 3 exclusive).
impl Field for Access {
    fn put(&self, w: &mut Writer<'_>) {
        w.u8(*self as u8);
    }

    fn take(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Access::try_from(r.u8()?)
    }
}
