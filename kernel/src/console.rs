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
}

static CONSOLE: Mutex<Option<Console>> = Mutex::new(None);

/// Takes over the framebuffer and clears it.
pub fn init(framebuffer: FrameBuffer) {
    let info = framebuffer.info();
    let buffer = framebuffer.into_buffer();
    buffer.fill(0);
    *CONSOLE.lock() = Some(Console {
        buffer,
        width: info.width,
        height: info.height,
        stride: info.stride,
        bytes_per_pixel: info.bytes_per_pixel,
        format: info.pixel_format,
        column: 0,
        row: 0,
    });
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
    if let Some(console) = CONSOLE.lock().as_mut() {
        let _ = console.write_fmt(args);
    }
}

/// Prints from the panic path: takes the console even if its lock is held (the holder will
/// never run again).
pub fn emergency_print(args: fmt::Arguments<'_>) {
    // SAFETY: on the panic path interrupts are off and this CPU is the only one running, so the
    // lock holder (if any) is the code that panicked, which never resumes.
    unsafe { CONSOLE.force_unlock() };
    print(args);
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
