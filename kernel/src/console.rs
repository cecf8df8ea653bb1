//! The framebuffer text console: what a bare-metal boot from USB shows on screen. It mirrors the
//! serial output in a fixed-size font (Noto Sans Mono, 16 px) and scrolls by moving pixel rows.
//!
//! Invariants: the cursor always lies inside the text grid; every write stays inside the
//! framebuffer slice (pixel offsets are checked against its length), whatever resolution and pixel
//! format the firmware chose.

use core::fmt::{self, Write};

use bootloader_api::info::{FrameBuffer, PixelFormat};
use noto_sans_mono_bitmap::{FontWeight, RasterHeight, get_raster, get_raster_width};
use spin::Mutex;

const HEIGHT: RasterHeight = RasterHeight::Size16;
const WEIGHT: FontWeight = FontWeight::Regular;
const LINE_HEIGHT: usize = 16;
const MARGIN: usize = 4;

struct Console {
    buffer: &'static mut [u8],
    width: usize,
    height: usize,
    stride: usize,
    bytes_per_pixel: usize,
    format: PixelFormat,
    column: usize,
    row: usize,
    /// The `device` server took the framebuffer (`FramebufferTake`): only a panic draws now.
    given_away: bool,
}

static CONSOLE: Mutex<Option<Console>> = Mutex::new(None);

/// Output printed before the framebuffer was taken over (the first boot-log lines), replayed on
/// the screen by `init` so a bare-metal boot shows the whole log. Overflow is dropped.
static BACKLOG: Mutex<Backlog> = Mutex::new(Backlog { bytes: [0; 4096], len: 0 });

struct Backlog {
    bytes: [u8; 4096],
    len: usize,
}

impl Write for Backlog {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.bytes.len() - self.len;
        // Cut at a character boundary so the replay stays valid UTF-8.
        let mut take = s.len().min(room);
        while !s.is_char_boundary(take) {
            take -= 1;
        }
        self.bytes[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        Ok(())
    }
}

/// Takes over the framebuffer and clears it.
pub fn init(framebuffer: FrameBuffer) {
    let info = framebuffer.info();
    let buffer = framebuffer.into_buffer();
    buffer.fill(0);
    let mut console = Console {
        buffer,
        width: info.width,
        height: info.height,
        stride: info.stride,
        bytes_per_pixel: info.bytes_per_pixel,
        format: info.pixel_format,
        column: 0,
        row: 0,
        given_away: false,
    };
    let backlog = BACKLOG.lock();
    let _ = console.write_str(core::str::from_utf8(&backlog.bytes[..backlog.len]).unwrap_or(""));
    drop(backlog);
    x86_64::instructions::interrupts::without_interrupts(|| *CONSOLE.lock() = Some(console));
    log::info!(
        "console: framebuffer {}x{} {:?}, {} bytes/pixel",
        info.width,
        info.height,
        info.pixel_format,
        info.bytes_per_pixel
    );
}

/// Prints to the console if there is one. Callers hold interrupts off (see `logger`).
pub fn print(args: fmt::Arguments<'_>) {
    match CONSOLE.lock().as_mut() {
        Some(console) if console.given_away => {}
        Some(console) => {
            let _ = console.write_fmt(args);
        }
        None => {
            let _ = BACKLOG.lock().write_fmt(args);
        }
    }
}

/// Prints from the panic path: takes the console even if its lock is held (the holder will
/// never run again).
pub fn emergency_print(args: fmt::Arguments<'_>) {
    // SAFETY: on the panic path interrupts are off and this CPU is the only one running, so the
    // lock holder (if any) is the code that panicked, which never resumes.
    unsafe { CONSOLE.force_unlock() };
    if let Some(console) = CONSOLE.lock().as_mut() {
        console.given_away = false;
    }
    print(args);
}

/// Gives the framebuffer to the `device` server: the kernel stops drawing (a panic still
/// draws). Returns where it is and its format, or `None` if there is no framebuffer. A
/// restarted server takes it again the same way.
pub fn give_away() -> Option<vessel_abi::FramebufferInfo> {
    x86_64::instructions::interrupts::without_interrupts(|| {
        let mut guard = CONSOLE.lock();
        let console = guard.as_mut()?;
        let virt = console.buffer.as_ptr() as u64;
        let (phys, _) = crate::mem::paging::translate(virt)?;
        console.given_away = true;
        let format = match console.format {
            PixelFormat::Rgb => vessel_abi::PIXEL_RGB,
            PixelFormat::Bgr => vessel_abi::PIXEL_BGR,
            PixelFormat::U8 => vessel_abi::PIXEL_GREY,
            _ => vessel_abi::PIXEL_UNKNOWN,
        };
        Some(vessel_abi::FramebufferInfo {
            address: phys,
            size: console.buffer.len() as u64,
            width: console.width as u64,
            height: console.height as u64,
            stride: console.stride as u64,
            bytes_per_pixel: console.bytes_per_pixel as u64,
            format,
        })
    })
}

impl Console {
    fn columns(&self) -> usize {
        (self.width.saturating_sub(2 * MARGIN) / get_raster_width(WEIGHT, HEIGHT)).max(1)
    }

    fn rows(&self) -> usize {
        (self.height.saturating_sub(2 * MARGIN) / LINE_HEIGHT).max(1)
    }

    fn newline(&mut self) {
        self.column = 0;
        if self.row + 1 < self.rows() {
            self.row += 1;
            return;
        }
        // Scroll one text line: move every pixel row up, clear the last text line.
        let line_bytes = self.stride * self.bytes_per_pixel * LINE_HEIGHT;
        let text_end = (MARGIN + self.rows() * LINE_HEIGHT) * self.stride * self.bytes_per_pixel;
        let start = MARGIN * self.stride * self.bytes_per_pixel;
        if text_end <= self.buffer.len() {
            self.buffer.copy_within(start + line_bytes..text_end, start);
            self.buffer[text_end - line_bytes..text_end].fill(0);
        }
    }

    fn put_pixel(&mut self, x: usize, y: usize, intensity: u8) {
        let offset = (y * self.stride + x) * self.bytes_per_pixel;
        let color = match self.format {
            PixelFormat::U8 => [intensity, 0, 0, 0],
            _ => [intensity, intensity, intensity, 0],
        };
        if let Some(pixel) = self.buffer.get_mut(offset..offset + self.bytes_per_pixel) {
            let n = pixel.len().min(4);
            pixel[..n].copy_from_slice(&color[..n]);
        }
    }

    fn put_char(&mut self, c: char) {
        if c == '\n' {
            self.newline();
            return;
        }
        if c == '\r' {
            self.column = 0;
            return;
        }
        if self.column >= self.columns() {
            self.newline();
        }
        let glyph = get_raster(c, WEIGHT, HEIGHT).or_else(|| get_raster('?', WEIGHT, HEIGHT));
        let Some(glyph) = glyph else { return };
        let x0 = MARGIN + self.column * get_raster_width(WEIGHT, HEIGHT);
        let y0 = MARGIN + self.row * LINE_HEIGHT;
        for (dy, line) in glyph.raster().iter().enumerate() {
            for (dx, &intensity) in line.iter().enumerate() {
                self.put_pixel(x0 + dx, y0 + dy, intensity);
            }
        }
        self.column += 1;
    }
}

impl Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        s.chars().for_each(|c| self.put_char(c));
        Ok(())
    }
}

/// The cursor (row, column), if there is a console.
pub fn cursor() -> Option<(usize, usize)> {
    x86_64::instructions::interrupts::without_interrupts(|| CONSOLE.lock().as_ref().map(|c| (c.row, c.column)))
}

/// How many pixel bytes of the text cell at (row, column) are not black.
pub fn lit_bytes_in_cell(row: usize, column: usize) -> Option<usize> {
    x86_64::instructions::interrupts::without_interrupts(|| {
        let guard = CONSOLE.lock();
        let c = guard.as_ref()?;
        let x0 = MARGIN + column * get_raster_width(WEIGHT, HEIGHT);
        let y0 = MARGIN + row * LINE_HEIGHT;
        let mut lit = 0;
        for y in y0..y0 + LINE_HEIGHT {
            let start = (y * c.stride + x0) * c.bytes_per_pixel;
            let end = start + get_raster_width(WEIGHT, HEIGHT) * c.bytes_per_pixel;
            lit += c.buffer.get(start..end)?.iter().filter(|&&b| b != 0).count();
        }
        Some(lit)
    })
}
