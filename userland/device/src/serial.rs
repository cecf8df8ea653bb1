//! The 16550 UART behind `serial0`: COM2 (ports 0x2f8-0x2ff, ISA line 3), the first serial port
//! the kernel does not log to (COM1 carries the kernel's log and panics, so its registers stay
//! the kernel's alone). Driven through `uart_16550` 0.9 with a backend that goes through the
//! port capability, interrupt-driven both ways: received bytes wait in a queue for `read`,
//! written bytes in another that the transmit-empty interrupt drains.
//!
//! Invariants: both queues are bounded (`MAX_QUEUE`): a `write` takes only what fits (the
//! protocol's short count), received bytes past the bound are dropped; the transmit-empty
//! interrupt is enabled exactly while bytes wait to go out; every interrupt drains what the
//! UART holds, then acknowledges the line.

use alloc::collections::VecDeque;

use uart_16550::backend::Backend;
use uart_16550::spec::registers::{IER, LSR};
use uart_16550::{BaudRate, Config, Uart16550};
use vessel_rt::abi::Error;
use vessel_rt::ipc::{IoPorts, Irq, Notification};
use vessel_rt::platform::Platform;

/// COM2's first port and interrupt line.
const BASE: u16 = 0x2f8;
const LINE: u8 = 3;
/// Bytes each queue holds.
pub const MAX_QUEUE: usize = 4096;

/// Register access through the port capability (the crate's registers 0-7 from `BASE`).
struct Ports(IoPorts);

impl Backend for Ports {
    unsafe fn read(&mut self, register_offset: u8) -> u8 {
        self.0.read(BASE + u16::from(register_offset), 1).map_or(0xff, |v| v as u8)
    }

    unsafe fn write(&mut self, register_offset: u8, value: u8) {
        let _ = self.0.write(BASE + u16::from(register_offset), 1, u32::from(value));
    }
}

/// 115200 8N1 with FIFOs and the receive interrupt.
fn config() -> Config {
    Config { interrupts: IER::DATA_READY, baud_rate: BaudRate::Baud115200, ..Config::DEFAULT }
}

/// The serial port.
pub struct Serial {
    uart: Uart16550<Ports>,
    irq: Irq,
    input: VecDeque<u8>,
    output: VecDeque<u8>,
}

impl Serial {
    /// Takes COM2's ports and line, sets it to 115200 8N1 with FIFOs and the receive interrupt,
    /// and binds the line to `bits` of `events`. `NotFound` if no UART answers there.
    pub fn new(platform: Platform, events: Notification, bits: u64) -> Result<Serial, Error> {
        let ports = platform.ports(BASE, BASE + 7)?;
        // SAFETY: the capability covers exactly the UART's eight registers, for as long as the
        // server lives; nothing else in the server touches them.
        let mut uart = unsafe { Uart16550::new_with_backend(Ports(ports)) };
        uart.init(config()).map_err(|_| Error::NotFound)?;
        let irq = platform.irq(LINE)?;
        irq.bind(events, bits)?;
        Ok(Serial { uart, irq, input: VecDeque::new(), output: VecDeque::new() })
    }

    /// `restart`: the driver starts again as after a crash of it. What it held is dropped
    /// (bytes received and not read, bytes not yet sent; returns how many), the UART is set up
    /// afresh, and the line acknowledged so an interrupt lost meanwhile cannot stall it.
    /// `DeviceError` if the UART does not answer.
    pub fn restart(&mut self) -> Result<usize, Error> {
        let dropped = self.input.len() + self.output.len();
        self.input.clear();
        self.output.clear();
        self.uart.init(config()).map_err(|_| Error::DeviceError)?;
        let _ = self.irq.ack();
        Ok(dropped)
    }

    /// The line fired: take what arrived, send what fits, acknowledge; then look again. ISA
    /// lines are edge-triggered and the kernel masks the line until the acknowledgement, so a
    /// byte that arrived before it raised no edge of its own: without the second look it would
    /// wait (with every later one) for an interrupt that never comes.
    pub fn on_interrupt(&mut self) {
        loop {
            while let Ok(byte) = self.uart.try_receive_byte() {
                if self.input.len() < MAX_QUEUE {
                    self.input.push_back(byte);
                }
            }
            self.pump();
            let _ = self.irq.ack();
            let lsr = self.uart.lsr();
            let more_out = !self.output.is_empty() && lsr.contains(LSR::THR_EMPTY);
            if !lsr.contains(LSR::DATA_READY) && !more_out {
                return;
            }
        }
    }

    /// Queues what fits of `data` for sending; returns how many bytes it took.
    /// A line feed goes out as CR LF, as terminals expect (a Unix tty's `onlcr`).
    pub fn write(&mut self, data: &[u8]) -> usize {
        let mut taken = 0;
        for &byte in data {
            let room = MAX_QUEUE - self.output.len();
            if byte == b'\n' && room >= 2 {
                self.output.extend(b"\r\n");
            } else if byte != b'\n' && room >= 1 {
                self.output.push_back(byte);
            } else {
                break;
            }
            taken += 1;
        }
        self.pump();
        taken
    }

    /// Moves queued bytes into the UART's FIFO while it has room; the transmit-empty interrupt
    /// stays on while bytes remain.
    fn pump(&mut self) {
        while let Some(&byte) = self.output.front() {
            if self.uart.try_send_byte(byte).is_err() {
                break;
            }
            self.output.pop_front();
        }
        if self.output.is_empty() {
            self.uart.disable_interrupts(IER::THR_EMPTY);
        } else {
            self.uart.enable_interrupts(IER::THR_EMPTY);
        }
    }

    /// Puts received bytes back at the front (a reader died before it got them).
    pub fn give_back(&mut self, bytes: &[u8]) {
        crate::input::give_back(&mut self.input, bytes);
    }

    /// Drops the received bytes up to the last Ctrl-C; whether one came.
    pub fn cut_at_interrupt(&mut self) -> bool {
        crate::input::cut_at_interrupt(&mut self.input)
    }

    /// Takes up to `max` bytes of received bytes, if some wait.
    pub fn take(&mut self, max: usize) -> Option<alloc::vec::Vec<u8>> {
        crate::input::take(&mut self.input, max)
    }
}
