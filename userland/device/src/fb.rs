//! The framebuffer text console behind `console0`: the boot framebuffer, taken from the kernel on
//! first use, drawn in Noto Sans Mono 16 px cells from the top-left corner, with a cursor, 16
//! colours, scrolling, and the few terminal controls programs print (`\n`, `\r`, `\t`,
//! backspace, and `ESC [` … `m`, `H`, `J`, `K`).
//!
//! Invariants: the cursor is always inside the grid (`column < columns`, `row < rows`); every
//! pixel write is bounds-checked against the mapped framebuffer; a pixel is
//! `background + (foreground - background) × intensity / 255` per channel, so a glyph's pixels
//! can be computed exactly from the font (the harness compares screendumps that way).
//! Framebuffer memory has no side effects on reads or writes, so it is used as plain bytes.

use noto_sans_mono_bitmap::{FontWeight, RasterHeight, get_raster, get_raster_width};
use vessel_rt::abi::{Error, FramebufferInfo, PIXEL_BGR, PIXEL_GREY, PIXEL_RGB};
use vessel_rt::platform::Platform;

const WEIGHT: FontWeight = FontWeight::Regular;
const HEIGHT: RasterHeight = RasterHeight::Size16;
/// Pixel rows per text row.
pub const CELL_HEIGHT: usize = 16;
/// Pixel rows of the cursor (an underline at the bottom of its cell).
const CURSOR_ROWS: usize = 2;

/// The 16 terminal colours (VGA order: black, red, green, yellow, blue, magenta, cyan, white,
/// then the bright ones), as RGB.
pub const PALETTE: [[u8; 3]; 16] = [
    [0, 0, 0],
    [170, 0, 0],
    [0, 170, 0],
    [170, 85, 0],
    [0, 0, 170],
    [170, 0, 170],
    [0, 170, 170],
    [170, 170, 170],
    [85, 85, 85],
    [255, 85, 85],
    [85, 255, 85],
    [255, 255, 85],
    [85, 85, 255],
    [255, 85, 255],
    [85, 255, 255],
    [255, 255, 255],
];
/// Default colours: bright white on black.
const DEFAULT_FG: usize = 15;
const DEFAULT_BG: usize = 0;
/// Parameters an escape sequence keeps.
const MAX_PARAMS: usize = 4;

/// Where the byte stream is in an escape sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Escape {
    None,
    /// After `ESC`.
    Started,
    /// After `ESC [`, with the parameters so far.
    Csi {
        params: [u16; MAX_PARAMS],
        count: usize,
    },
}

/// The text console on the framebuffer.
pub struct Fb {
    pixels: &'static mut [u8],
    info: FramebufferInfo,
    columns: usize,
    rows: usize,
    column: usize,
    row: usize,
    fg: usize,
    bg: usize,
    escape: Escape,
    /// Bytes of a UTF-8 sequence not yet complete.
    partial: ([u8; 4], usize),
}

/// Pixels per text column.
pub fn cell_width() -> usize {
    get_raster_width(WEIGHT, HEIGHT)
}

impl Fb {
    /// Takes the framebuffer from the kernel (which then stops drawing its log) and clears it.
    /// `DeviceError` for a pixel format this console does not draw.
    pub fn take(platform: Platform) -> Result<Fb, Error> {
        let (mmio, info) = platform.framebuffer()?;
        let known = matches!(info.format, PIXEL_RGB | PIXEL_BGR | PIXEL_GREY);
        let fits = info.width <= info.stride
            && info
                .stride
                .checked_mul(info.height)
                .and_then(|p| p.checked_mul(info.bytes_per_pixel))
                .is_some_and(|n| n <= info.size);
        if !known || !(1..=4).contains(&info.bytes_per_pixel) || !fits {
            return Err(Error::DeviceError);
        }
        let base = mmio.map()?;
        let offset = info.address & 0xfff;
        // SAFETY: `MmioMap` mapped the whole framebuffer (from its page start) for this process
        // alone; nothing else in it aliases the range, which lives as long as the process.
        let pixels =
            unsafe { core::slice::from_raw_parts_mut((base + offset) as usize as *mut u8, info.size as usize) };
        let columns = (info.width as usize / cell_width()).max(1);
        let rows = (info.height as usize / CELL_HEIGHT).max(1);
        let mut fb = Fb {
            pixels,
            info,
            columns,
            rows,
            column: 0,
            row: 0,
            fg: DEFAULT_FG,
            bg: DEFAULT_BG,
            escape: Escape::None,
            partial: ([0; 4], 0),
        };
        fb.clear_rows(0, rows);
        fb.cursor(true);
        Ok(fb)
    }

    /// Its geometry: (pixel width, pixel height, columns, rows).
    pub fn geometry(&self) -> (u64, u64, usize, usize) {
        (self.info.width, self.info.height, self.columns, self.rows)
    }

    /// Draws `bytes` (UTF-8 text with terminal controls) at the cursor.
    pub fn write(&mut self, bytes: &[u8]) {
        self.cursor(false);
        for &b in bytes {
            self.byte(b);
        }
        self.cursor(true);
    }

    fn byte(&mut self, b: u8) {
        match self.escape {
            Escape::Started => {
                self.escape = if b == b'[' { Escape::Csi { params: [0; MAX_PARAMS], count: 0 } } else { Escape::None };
                return;
            }
            Escape::Csi { mut params, mut count } => {
                match b {
                    b'0'..=b'9' => {
                        count = count.max(1);
                        let at = (count - 1).min(MAX_PARAMS - 1);
                        params[at] = params[at].saturating_mul(10).saturating_add(u16::from(b - b'0'));
                        self.escape = Escape::Csi { params, count };
                    }
                    b';' => self.escape = Escape::Csi { params, count: (count.max(1) + 1).min(MAX_PARAMS) },
                    _ => {
                        self.escape = Escape::None;
                        self.control(b, &params[..count]);
                    }
                }
                return;
            }
            Escape::None => {}
        }
        match b {
            0x1b => self.escape = Escape::Started,
            b'\n' => self.newline(),
            b'\r' => self.column = 0,
            b'\t' => {
                self.column = ((self.column / 8 + 1) * 8).min(self.columns - 1);
            }
            0x08 => self.column = self.column.saturating_sub(1),
            _ => self.text_byte(b),
        }
    }

    /// A byte of UTF-8 text: a character once its sequence is complete (`?` for a bad one).
    fn text_byte(&mut self, b: u8) {
        if self.partial.1 == self.partial.0.len() || (b < 0x80 && self.partial.1 > 0) {
            self.partial.1 = 0;
            self.glyph('?');
        }
        let (buf, len) = &mut self.partial;
        buf[*len] = b;
        *len += 1;
        match core::str::from_utf8(&buf[..*len]) {
            Ok(s) => {
                let c = s.chars().next().unwrap_or('?');
                self.partial.1 = 0;
                if !c.is_control() {
                    self.glyph(c);
                }
            }
            Err(e) if e.error_len().is_some() => {
                self.partial.1 = 0;
                self.glyph('?');
            }
            Err(_) => {}
        }
    }

    /// `ESC [ params final`.
    fn control(&mut self, last: u8, params: &[u16]) {
        let first = params.first().copied().unwrap_or(0);
        match last {
            b'm' if params.is_empty() => self.set_colours(0),
            b'm' => params.iter().for_each(|&p| self.set_colours(p)),
            b'H' | b'f' => {
                let row = usize::from(first.max(1)) - 1;
                let column = usize::from(params.get(1).copied().unwrap_or(1).max(1)) - 1;
                self.row = row.min(self.rows - 1);
                self.column = column.min(self.columns - 1);
            }
            b'J' if first == 2 || first == 3 => {
                self.clear_rows(0, self.rows);
                self.row = 0;
                self.column = 0;
            }
            b'J' => {
                self.clear_to_line_end();
                self.clear_rows(self.row + 1, self.rows);
            }
            b'K' => self.clear_to_line_end(),
            _ => {}
        }
    }

    fn set_colours(&mut self, p: u16) {
        match p {
            0 => (self.fg, self.bg) = (DEFAULT_FG, DEFAULT_BG),
            30..=37 => self.fg = usize::from(p - 30),
            90..=97 => self.fg = usize::from(p - 90) + 8,
            39 => self.fg = DEFAULT_FG,
            40..=47 => self.bg = usize::from(p - 40),
            100..=107 => self.bg = usize::from(p - 100) + 8,
            49 => self.bg = DEFAULT_BG,
            _ => {}
        }
    }

    fn glyph(&mut self, c: char) {
        if self.column >= self.columns {
            self.newline();
        }
        let raster = get_raster(c, WEIGHT, HEIGHT).or_else(|| get_raster('?', WEIGHT, HEIGHT));
        let (x0, y0) = (self.column * cell_width(), self.row * CELL_HEIGHT);
        let (fg, bg) = (PALETTE[self.fg], PALETTE[self.bg]);
        if let Some(raster) = raster {
            for (dy, line) in raster.raster().iter().enumerate() {
                for (dx, &intensity) in line.iter().enumerate() {
                    self.pixel(x0 + dx, y0 + dy, blend(fg, bg, intensity));
                }
            }
        }
        self.column += 1;
        if self.column == self.columns {
            self.newline();
        }
    }

    fn newline(&mut self) {
        self.column = 0;
        if self.row + 1 < self.rows {
            self.row += 1;
            return;
        }
        // Scroll: every text row's pixels move up one row; the last one is cleared.
        let line = self.info.stride as usize * self.info.bytes_per_pixel as usize;
        let text_row = line * CELL_HEIGHT;
        let end = text_row * self.rows;
        if end <= self.pixels.len() {
            self.pixels.copy_within(text_row..end, 0);
        }
        self.clear_rows(self.rows - 1, self.rows);
    }

    fn clear_to_line_end(&mut self) {
        let (x0, y0) = (self.column * cell_width(), self.row * CELL_HEIGHT);
        let bg = PALETTE[self.bg];
        for y in y0..y0 + CELL_HEIGHT {
            for x in x0..self.info.width as usize {
                self.pixel(x, y, bg);
            }
        }
    }

    /// Fills text rows `first..end` with the background colour.
    fn clear_rows(&mut self, first: usize, end: usize) {
        let bg = PALETTE[self.bg];
        for y in first * CELL_HEIGHT..(end * CELL_HEIGHT).min(self.info.height as usize) {
            for x in 0..self.info.width as usize {
                self.pixel(x, y, bg);
            }
        }
    }

    /// Draws (or erases) the cursor: an underline in the foreground colour.
    fn cursor(&mut self, shown: bool) {
        let colour = if shown { PALETTE[self.fg] } else { PALETTE[self.bg] };
        let (x0, y0) = (self.column * cell_width(), self.row * CELL_HEIGHT + CELL_HEIGHT - CURSOR_ROWS);
        for y in y0..y0 + CURSOR_ROWS {
            for x in x0..x0 + cell_width() {
                self.pixel(x, y, colour);
            }
        }
    }

    fn pixel(&mut self, x: usize, y: usize, [r, g, b]: [u8; 3]) {
        let bpp = self.info.bytes_per_pixel as usize;
        let at = (y * self.info.stride as usize + x) * bpp;
        let bytes = match self.info.format {
            PIXEL_RGB => [r, g, b, 0],
            PIXEL_BGR => [b, g, r, 0],
            // Grey: the luma of the colour.
            _ => [((u16::from(r) * 77 + u16::from(g) * 150 + u16::from(b) * 29) >> 8) as u8, 0, 0, 0],
        };
        if let Some(pixel) = self.pixels.get_mut(at..at + bpp) {
            pixel.copy_from_slice(&bytes[..bpp]);
        }
    }
}

/// `bg + (fg - bg) × intensity / 255`, per channel.
pub fn blend(fg: [u8; 3], bg: [u8; 3], intensity: u8) -> [u8; 3] {
    let mix = |f: u8, b: u8| {
        let (f, b, i) = (i32::from(f), i32::from(b), i32::from(intensity));
        (b + (f - b) * i / 255) as u8
    };
    [mix(fg[0], bg[0]), mix(fg[1], bg[1]), mix(fg[2], bg[2])]
}
