//! The CMOS real-time clock (`rtc0`): wall-clock date and time, read through the CMOS index and
//! data ports (0x70, 0x71).
//!
//! Invariants: a time is read only between updates (the update-in-progress flag clear) and twice
//! in a row with the same result, so a read never mixes the fields of two seconds; the index
//! register is always written with bit 7 set, so NMIs stay masked as the firmware left them.
//! The clock is taken as UTC (QEMU's default, `-rtc base=utc`) with the century 20xx.

use vessel_device_protocol::DateTime;
use vessel_rt::abi::Error;
use vessel_rt::ipc::IoPorts;
use vessel_rt::platform::Platform;

const INDEX: u16 = 0x70;
const DATA: u16 = 0x71;
/// Register A: bit 7, update in progress.
const STATUS_A: u8 = 0x0a;
/// Register B: bit 2 binary (else BCD), bit 1 24-hour (else 12-hour with bit 7 of the hour PM).
const STATUS_B: u8 = 0x0b;
/// Tries to find the clock between updates and read it twice alike.
const ATTEMPTS: usize = 1000;

/// The clock's registers, as read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Fields {
    second: u8,
    minute: u8,
    hour: u8,
    day: u8,
    month: u8,
    year: u8,
    status_b: u8,
}

/// The CMOS clock.
pub struct Rtc {
    ports: IoPorts,
}

impl Rtc {
    /// Takes the CMOS ports; `None` if the platform refuses them or no clock answers.
    pub fn new(platform: Platform) -> Option<Rtc> {
        let rtc = Rtc { ports: platform.ports(INDEX, DATA).ok()? };
        rtc.unix_seconds().ok().map(|_| rtc)
    }

    fn register(&self, reg: u8) -> Result<u8, Error> {
        self.ports.write(INDEX, 1, u32::from(0x80 | reg))?;
        self.ports.read(DATA, 1).map(|v| v as u8)
    }

    /// The fields, read once the clock is between updates.
    fn fields(&self) -> Result<Fields, Error> {
        for _ in 0..ATTEMPTS {
            if self.register(STATUS_A)? & 0x80 == 0 {
                return Ok(Fields {
                    second: self.register(0x00)?,
                    minute: self.register(0x02)?,
                    hour: self.register(0x04)?,
                    day: self.register(0x07)?,
                    month: self.register(0x08)?,
                    year: self.register(0x09)?,
                    status_b: self.register(STATUS_B)?,
                });
            }
        }
        Err(Error::DeviceError)
    }

    /// `restart`: the clock's driver keeps nothing between requests, so starting it again is
    /// asking the chip once more; `DeviceError` if it does not answer with a valid date.
    pub fn restart(&self) -> Result<(), Error> {
        self.unix_seconds().map(|_| ())
    }

    /// Seconds since 1970-01-01 00:00:00 UTC; `DeviceError` if the clock never settles or
    /// holds no valid date.
    pub fn unix_seconds(&self) -> Result<u64, Error> {
        let mut last = self.fields()?;
        for _ in 0..ATTEMPTS {
            let now = self.fields()?;
            if now == last {
                return to_unix(now).ok_or(Error::DeviceError);
            }
            last = now;
        }
        Err(Error::DeviceError)
    }
}

fn from_bcd(v: u8) -> u8 {
    (v >> 4) * 10 + (v & 0x0f)
}

/// The fields as seconds since the epoch, or `None` for a date the clock cannot hold.
fn to_unix(f: Fields) -> Option<u64> {
    let binary = f.status_b & 0x04 != 0;
    let h24 = f.status_b & 0x02 != 0;
    let decode = |v: u8| if binary { v } else { from_bcd(v) };
    let mut hour = decode(f.hour & 0x7f);
    if !h24 {
        // 12-hour clock: 12 AM is 0, 12 PM is 12, bit 7 is PM.
        hour = hour % 12 + if f.hour & 0x80 != 0 { 12 } else { 0 };
    }
    DateTime {
        year: 2000 + u16::from(decode(f.year)),
        month: decode(f.month),
        day: decode(f.day),
        hour,
        minute: decode(f.minute),
        second: decode(f.second),
    }
    .to_unix()
}
