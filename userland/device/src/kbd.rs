//! The PS/2 keyboard (`kbd0`, and the input of `console0`): interrupt-driven, decoded with
//! `pc-keyboard` (US layout, scancode set 1 as the i8042 controller translates it), into text:
//! a character as UTF-8, Ctrl+letter as its control code, arrows and the like as the terminal's
//! escape sequences (`ESC [ A` …); Alt+F1… are not input but console switches (`take_switch`).
//!
//! Invariants: the controller's configuration always has translation and the keyboard
//! interrupt on (set at start); each interrupt drains every byte the controller holds, then
//! acknowledges the line; input waits in a bounded queue (`MAX_INPUT` bytes; a key that does
//! not fit whole is dropped, never half of it).

use alloc::collections::VecDeque;

use pc_keyboard::{DecodedKey, HandleControl, KeyCode, PS2Keyboard, ScancodeSet1, layouts::Us104Key};
use vessel_rt::abi::Error;
use vessel_rt::ipc::{IoPorts, Irq, Notification};
use vessel_rt::platform::Platform;

const DATA: u16 = 0x60;
const STATUS: u16 = 0x64;
/// Status: a byte waits in the output buffer.
const OUTPUT_FULL: u32 = 1 << 0;
/// Status: the controller has not taken the last byte written yet.
const INPUT_FULL: u32 = 1 << 1;
/// Configuration byte: first port interrupt, scancode translation to set 1.
const CONFIG_IRQ: u8 = 1 << 0;
const CONFIG_TRANSLATE: u8 = 1 << 6;
/// Input kept until read.
pub const MAX_INPUT: usize = 4096;

/// A decoder in its first state: scan code set 1 (the controller translates), US layout.
fn decoder() -> PS2Keyboard<Us104Key, ScancodeSet1> {
    PS2Keyboard::new(ScancodeSet1::new(), Us104Key, HandleControl::MapLettersToUnicode)
}

/// Status polls before the controller counts as absent.
const POLLS: usize = 100_000;

/// The keyboard.
pub struct Kbd {
    data: IoPorts,
    status: IoPorts,
    irq: Irq,
    decoder: PS2Keyboard<Us104Key, ScancodeSet1>,
    input: VecDeque<u8>,
    /// Alt+F`n+1` was pressed: switch to console `n` (taken by `take_switch`).
    switch: Option<usize>,
}

impl Kbd {
    /// Takes the controller's ports and line 1, turns translation and the interrupt on, and
    /// binds the line to `bits` of `events`.
    pub fn new(platform: Platform, events: Notification, bits: u64) -> Result<Kbd, Error> {
        let kbd = Kbd {
            data: platform.ports(DATA, DATA)?,
            status: platform.ports(STATUS, STATUS)?,
            irq: platform.irq(1)?,
            decoder: decoder(),
            input: VecDeque::new(),
            switch: None,
        };
        kbd.configure()?;
        kbd.irq.bind(events, bits)?;
        Ok(kbd)
    }

    /// Turns the controller's translation and interrupt on (keeping the rest of its
    /// configuration byte).
    fn configure(&self) -> Result<(), Error> {
        self.command(0x20)?;
        let config = self.read_data()?;
        self.command(0x60)?;
        self.write_data(config | CONFIG_IRQ | CONFIG_TRANSLATE)
    }

    /// `restart`: the driver starts again as after a crash of it. Keys typed and not read,
    /// a console switch not yet taken and a half-decoded key are dropped (returns how many
    /// bytes), bytes waiting in the controller are drained, the controller is configured
    /// afresh and the line acknowledged. `DeviceError` if the controller does not answer.
    pub fn restart(&mut self) -> Result<usize, Error> {
        let dropped = self.input.len();
        self.input.clear();
        self.switch = None;
        self.decoder = decoder();
        for _ in 0..16 {
            if self.status()? & OUTPUT_FULL == 0 {
                break;
            }
            self.data.read(DATA, 1)?;
        }
        self.configure()?;
        let _ = self.irq.ack();
        Ok(dropped)
    }

    fn status(&self) -> Result<u32, Error> {
        self.status.read(STATUS, 1)
    }

    fn command(&self, byte: u8) -> Result<(), Error> {
        self.wait_writable()?;
        self.status.write(STATUS, 1, u32::from(byte))
    }

    fn write_data(&self, byte: u8) -> Result<(), Error> {
        self.wait_writable()?;
        self.data.write(DATA, 1, u32::from(byte))
    }

    fn wait_writable(&self) -> Result<(), Error> {
        for _ in 0..POLLS {
            if self.status()? & INPUT_FULL == 0 {
                return Ok(());
            }
        }
        Err(Error::DeviceError)
    }

    fn read_data(&self) -> Result<u8, Error> {
        for _ in 0..POLLS {
            if self.status()? & OUTPUT_FULL != 0 {
                return self.data.read(DATA, 1).map(|b| b as u8);
            }
        }
        Err(Error::DeviceError)
    }

    /// The line fired: decode every byte waiting, acknowledge, and look again (the line is
    /// edge-triggered and masked until the acknowledgement: a byte that came before it raised
    /// no edge of its own).
    pub fn on_interrupt(&mut self) {
        loop {
            while self.status().is_ok_and(|s| s & OUTPUT_FULL != 0) {
                let Ok(byte) = self.data.read(DATA, 1) else { break };
                if let Ok(Some(event)) = self.decoder.add_byte(byte as u8)
                    && let Some(key) = self.decoder.process_keyevent(event)
                {
                    self.push(key);
                }
            }
            let _ = self.irq.ack();
            if !self.status().is_ok_and(|s| s & OUTPUT_FULL != 0) {
                return;
            }
        }
    }

    fn push(&mut self, key: DecodedKey) {
        const F_KEYS: [KeyCode; 12] = [
            KeyCode::F1,
            KeyCode::F2,
            KeyCode::F3,
            KeyCode::F4,
            KeyCode::F5,
            KeyCode::F6,
            KeyCode::F7,
            KeyCode::F8,
            KeyCode::F9,
            KeyCode::F10,
            KeyCode::F11,
            KeyCode::F12,
        ];
        if let DecodedKey::RawKey(code) = key
            && self.decoder.get_modifiers().is_alt()
            && let Some(n) = F_KEYS.iter().position(|&f| f == code)
        {
            self.switch = Some(n);
            return;
        }
        let mut utf8 = [0u8; 4];
        let bytes: &[u8] = match key {
            DecodedKey::Unicode(c) => c.encode_utf8(&mut utf8).as_bytes(),
            DecodedKey::RawKey(code) => match code {
                KeyCode::ArrowUp => b"\x1b[A",
                KeyCode::ArrowDown => b"\x1b[B",
                KeyCode::ArrowRight => b"\x1b[C",
                KeyCode::ArrowLeft => b"\x1b[D",
                KeyCode::Home => b"\x1b[H",
                KeyCode::End => b"\x1b[F",
                KeyCode::Delete => b"\x1b[3~",
                KeyCode::PageUp => b"\x1b[5~",
                KeyCode::PageDown => b"\x1b[6~",
                _ => b"",
            },
        };
        if self.input.len() + bytes.len() <= MAX_INPUT {
            self.input.extend(bytes);
        }
    }

    /// Puts input back at the front (a reader died before it got it).
    pub fn give_back(&mut self, bytes: &[u8]) {
        crate::input::give_back(&mut self.input, bytes);
    }

    /// Takes up to `max` bytes of input, if some wait.
    pub fn take(&mut self, max: usize) -> Option<alloc::vec::Vec<u8>> {
        crate::input::take(&mut self.input, max)
    }

    /// The console switch asked for with Alt+F1…, if any since the last call.
    pub fn take_switch(&mut self) -> Option<usize> {
        self.switch.take()
    }

    /// All input waiting, if any.
    pub fn take_all(&mut self) -> Option<alloc::vec::Vec<u8>> {
        (!self.input.is_empty()).then(|| self.input.drain(..).collect())
    }
}
