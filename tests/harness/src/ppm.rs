//! Screendumps: binary PPM (`P6`, maxval 255, what QEMU's `screendump` writes) parsed into an
//! [`Image`], and the few questions tests ask of one (a pixel, how many pixels in a rectangle differ
//! from the background, which pixels are ink).
//!
//! Invariants:
//! - [`parse`] never panics and never allocates more than the raster it was given: the header's
//!   size is checked (with overflow checks) against the bytes present before anything is built.
//!   Anything but one complete `P6` image with maxval 255 is refused with a reason: a bad magic,
//!   a missing or non-decimal or out-of-range number, a zero dimension, another maxval, a short
//!   raster, or bytes after it.
//! - The header follows the netpbm spec: tokens are separated by whitespace (space, TAB, CR, LF)
//!   or comments (`#` through the next CR or LF), and exactly one whitespace character (which may
//!   end a comment) separates the maxval from the raster.
//! - A parsed [`Image`] has `pixels.len() == width * height`, row-major from the top-left corner;
//!   every accessor checks its coordinates (outside the image is `None` or clipped, never a panic),
//!   so an `Image` whose public fields were changed by hand stays safe to query.

/// One pixel: red, green, blue.
pub type Rgb = [u8; 3];

/// A decoded screendump.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    /// Pixels per row.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// `width * height` pixels, row by row from the top-left corner.
    pub pixels: Vec<Rgb>,
}

/// A rectangle of pixels: `width` × `height` from the top-left corner (`x`, `y`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rect {
    /// Left column.
    pub x: usize,
    /// Top row.
    pub y: usize,
    /// Columns.
    pub width: usize,
    /// Rows.
    pub height: usize,
}

impl Rect {
    /// The rectangle `width` × `height` at (`x`, `y`).
    pub fn new(x: usize, y: usize, width: usize, height: usize) -> Self {
        Rect { x, y, width, height }
    }
}

/// Which pixels of a rectangle are ink (differ from the background), row-major.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mask {
    /// Columns.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// `width * height` flags, row by row.
    pub bits: Vec<bool>,
}

impl Mask {
    /// Whether (`x`, `y`) (relative to the mask) is ink; `false` outside the mask.
    pub fn get(&self, x: usize, y: usize) -> bool {
        x < self.width && y < self.height && self.bits.get(y * self.width + x).copied().unwrap_or(false)
    }

    /// How many pixels are ink.
    pub fn count(&self) -> usize {
        self.bits.iter().filter(|&&b| b).count()
    }

    /// The smallest rectangle (relative to the mask) holding every ink pixel; `None` if there is none.
    pub fn bounding_box(&self) -> Option<Rect> {
        let (mut left, mut top, mut right, mut bottom) = (usize::MAX, usize::MAX, 0, 0);
        for y in 0..self.height {
            for x in 0..self.width {
                if self.get(x, y) {
                    (left, top) = (left.min(x), top.min(y));
                    (right, bottom) = (right.max(x), bottom.max(y));
                }
            }
        }
        (left != usize::MAX).then(|| Rect::new(left, top, right - left + 1, bottom - top + 1))
    }

    /// The mask as text, `#` for ink and `.` for background, one line per row (for failure logs).
    pub fn render(&self) -> String {
        let mut text = String::with_capacity((self.width + 1) * self.height);
        for y in 0..self.height {
            text.extend((0..self.width).map(|x| if self.get(x, y) { '#' } else { '.' }));
            text.push('\n');
        }
        text
    }
}

impl Image {
    /// Parses a `P6` file; see [`parse`].
    pub fn parse(bytes: &[u8]) -> Result<Image, String> {
        parse(bytes)
    }

    /// The pixel at (`x`, `y`), `None` outside the image.
    pub fn pixel(&self, x: usize, y: usize) -> Option<Rgb> {
        if x >= self.width || y >= self.height {
            return None;
        }
        self.pixels.get(y.checked_mul(self.width)?.checked_add(x)?).copied()
    }

    /// The whole image as a rectangle.
    pub fn bounds(&self) -> Rect {
        Rect::new(0, 0, self.width, self.height)
    }

    /// `rect` clipped to the image.
    pub fn clip(&self, rect: Rect) -> Rect {
        let x = rect.x.min(self.width);
        let y = rect.y.min(self.height);
        let right = rect.x.saturating_add(rect.width).min(self.width);
        let bottom = rect.y.saturating_add(rect.height).min(self.height);
        Rect::new(x, y, right - x, bottom - y)
    }

    /// The most common colour (ties: the one met first), the background of a text screen; `None`
    /// for an empty image.
    pub fn dominant(&self) -> Option<Rgb> {
        let mut counts: std::collections::HashMap<Rgb, (usize, usize)> = std::collections::HashMap::new();
        for (i, &p) in self.pixels.iter().enumerate() {
            counts.entry(p).or_insert((0, i)).0 += 1;
        }
        counts.into_iter().max_by_key(|&(_, (n, first))| (n, std::cmp::Reverse(first))).map(|(p, _)| p)
    }

    /// How many pixels of `rect` (clipped to the image) differ from `background`.
    pub fn count_differing(&self, rect: Rect, background: Rgb) -> usize {
        self.mask(rect, background).count()
    }

    /// The ink of `rect` (clipped to the image): which pixels differ from `background`.
    pub fn mask(&self, rect: Rect, background: Rgb) -> Mask {
        let rect = self.clip(rect);
        let mut bits = Vec::with_capacity(rect.width * rect.height);
        for y in rect.y..rect.y + rect.height {
            bits.extend((rect.x..rect.x + rect.width).map(|x| self.pixel(x, y).is_some_and(|p| p != background)));
        }
        Mask { width: rect.width, height: rect.height, bits }
    }

    /// The image as a `P6` file (to keep a failing screendump beside the logs).
    pub fn to_ppm(&self) -> Vec<u8> {
        let mut bytes = format!("P6\n{} {}\n255\n", self.width, self.height).into_bytes();
        bytes.extend(self.pixels.iter().flatten());
        bytes
    }
}

/// Whitespace as the netpbm spec counts it.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// A read position in the header.
struct Header<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Header<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// Skips a comment starting at the current `#`, through its ending CR or LF (inclusive).
    fn skip_comment(&mut self) -> Result<(), String> {
        match self.bytes[self.pos..].iter().position(|&b| b == b'\n' || b == b'\r') {
            Some(end) => {
                self.pos += end + 1;
                Ok(())
            }
            None => Err("comment runs to the end of the file".into()),
        }
    }

    /// Skips whitespace and comments; at least one is required before `what`.
    fn separator(&mut self, what: &str) -> Result<(), String> {
        let start = self.pos;
        loop {
            match self.peek() {
                Some(b) if is_space(b) => self.pos += 1,
                Some(b'#') => self.skip_comment()?,
                _ => break,
            }
        }
        if self.pos == start {
            return Err(format!("no whitespace before the {what} (offset {start})"));
        }
        Ok(())
    }

    /// A decimal number (`what` names it in errors); it ends at the first non-digit.
    fn number(&mut self, what: &str) -> Result<u32, String> {
        let start = self.pos;
        let mut value: u32 = 0;
        while let Some(b) = self.peek().filter(u8::is_ascii_digit) {
            value = value
                .checked_mul(10)
                .and_then(|v| v.checked_add(u32::from(b - b'0')))
                .ok_or_else(|| format!("{what} is too large"))?;
            self.pos += 1;
        }
        if self.pos == start {
            return Err(match self.peek() {
                None => format!("file ends before the {what}"),
                Some(b) => format!("expected the {what} at offset {start}, found byte {b:#04x}"),
            });
        }
        Ok(value)
    }
}

/// Parses one binary PPM (`P6`) with maxval 255. Malformed input is an error with a reason, never
/// a panic (see the module invariants).
pub fn parse(bytes: &[u8]) -> Result<Image, String> {
    if !bytes.starts_with(b"P6") {
        return Err(format!("not a binary PPM: magic {:?}", String::from_utf8_lossy(&bytes[..bytes.len().min(2)])));
    }
    let mut header = Header { bytes, pos: 2 };
    header.separator("width")?;
    let width = header.number("width")?;
    header.separator("height")?;
    let height = header.number("height")?;
    header.separator("maxval")?;
    let maxval = header.number("maxval")?;
    // Exactly one whitespace character before the raster; a comment here ends with it.
    match header.peek() {
        Some(b'#') => header.skip_comment()?,
        Some(b) if is_space(b) => header.pos += 1,
        Some(b) => return Err(format!("expected whitespace after the maxval, found byte {b:#04x}")),
        None => return Err("file ends after the maxval".into()),
    }
    if width == 0 || height == 0 {
        return Err(format!("empty image ({width}x{height})"));
    }
    if maxval != 255 {
        return Err(format!("maxval {maxval} is not supported (only 255)"));
    }
    let (width, height) = (width as usize, height as usize);
    let size = width
        .checked_mul(height)
        .and_then(|n| n.checked_mul(3))
        .ok_or_else(|| format!("{width}x{height} is too large"))?;
    let raster = &bytes[header.pos..];
    if raster.len() < size {
        return Err(format!("raster truncated: {} of {size} bytes for {width}x{height}", raster.len()));
    }
    if raster.len() > size {
        return Err(format!("{} bytes after the {width}x{height} raster", raster.len() - size));
    }
    let pixels = raster.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect();
    Ok(Image { width, height, pixels })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 3×2 image: red, green, blue / black, white, black.
    const RASTER: [u8; 18] = [255, 0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 0, 0, 0];

    fn file(header: &str) -> Vec<u8> {
        let mut bytes = header.as_bytes().to_vec();
        bytes.extend(RASTER);
        bytes
    }

    fn good() -> Image {
        parse(&file("P6\n3 2\n255\n")).expect("a plain header parses")
    }

    #[test]
    fn plain_file() {
        let image = good();
        assert_eq!((image.width, image.height), (3, 2));
        assert_eq!(image.pixel(0, 0), Some([255, 0, 0]));
        assert_eq!(image.pixel(2, 0), Some([0, 0, 255]));
        assert_eq!(image.pixel(1, 1), Some([255, 255, 255]));
        assert_eq!(image.pixel(3, 0), None);
        assert_eq!(image.pixel(0, 2), None);
        assert_eq!(image.pixel(usize::MAX, usize::MAX), None);
    }

    #[test]
    fn comments_and_whitespace_anywhere_the_spec_allows() {
        for header in [
            "P6 3 2 255 ",
            "P6\t3\t2\t255\t",
            "P6\r\n3 2\r\n255\r",
            "P6\n# made by a test\n3 2\n255\n",
            "P6#magic comment\n3#w\n2#h\r255\n",
            "P6\n3\n\n \n2\n# one\n# two\n255\n",
            // The comment after the maxval ends with the one whitespace byte before the raster.
            "P6\n3 2\n255#last\n",
        ] {
            assert_eq!(parse(&file(header)).as_ref(), Ok(&good()), "{header:?}");
        }
    }

    #[test]
    fn the_raster_may_start_with_whitespace_bytes() {
        // Only one byte separates the maxval from the raster; a raster starting with 0x0a is data.
        let mut bytes = b"P6\n1 1\n255\n".to_vec();
        bytes.extend([b'\n', b' ', b'#']);
        let image = parse(&bytes).expect("one pixel");
        assert_eq!(image.pixel(0, 0), Some([b'\n', b' ', b'#']));
    }

    #[test]
    fn malformed_headers_are_refused() {
        for (header, reason) in [
            ("P3\n3 2\n255\n", "magic"),
            ("P6", "width"),
            ("P63 2\n255\n", "whitespace"),
            ("P6\n3\n255\n", "maxval"),
            ("P6\n-3 2\n255\n", "width"),
            ("P6\n3 x\n255\n", "height"),
            ("P6\n3 2\n65535\n", "maxval 65535"),
            ("P6\n3 2\n15\n", "maxval 15"),
            ("P6\n0 2\n255\n", "empty"),
            ("P6\n3 0\n255\n", "empty"),
            ("P6\n99999999999 2\n255\n", "too large"),
            ("P6\n3 2\n255", "whitespace"),
            ("P6\n3 2\n255x", "whitespace"),
            ("P6\n3 2\n# never ends", "comment"),
        ] {
            let err = parse(&file(header)).expect_err(header);
            assert!(err.contains(reason), "{header:?}: {err}");
        }
        assert!(parse(b"").is_err());
        assert!(parse(b"P").is_err());
        assert!(parse(b"P6\n3 2\n255").is_err());
        assert!(parse(b"P6\n3 2\n255\n# not a comment in the raster").is_err());
    }

    #[test]
    fn a_huge_header_is_refused_without_allocating() {
        let err = parse(b"P6\n4294967295 4294967295\n255\n\0\0\0").expect_err("no such raster");
        assert!(err.contains("truncated") || err.contains("too large"), "{err}");
    }

    #[test]
    fn short_or_long_rasters_are_refused() {
        let full = file("P6\n3 2\n255\n");
        for cut in 1..=RASTER.len() {
            let err = parse(&full[..full.len() - cut]).expect_err("truncated");
            assert!(err.contains("truncated"), "{cut}: {err}");
        }
        let mut long = full.clone();
        long.push(0);
        assert!(parse(&long).expect_err("trailing byte").contains("after the"));
    }

    #[test]
    fn no_prefix_and_no_mutation_panics() {
        let full = file("P6\n# c\n3 2\n255\n");
        for end in 0..full.len() {
            let _ = parse(&full[..end]);
        }
        // Deterministic byte mutations (a small LCG): every result is Ok or Err, never a panic,
        // and an Ok image always satisfies the length invariant.
        let mut seed: u64 = 0x5eed;
        for _ in 0..20_000 {
            let mut bytes = full.clone();
            for _ in 0..3 {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let at = (seed >> 33) as usize % bytes.len();
                bytes[at] = (seed >> 13) as u8;
            }
            if let Ok(image) = parse(&bytes) {
                assert_eq!(image.pixels.len(), image.width * image.height);
            }
        }
    }

    #[test]
    fn round_trip_through_to_ppm() {
        let image = good();
        assert_eq!(parse(&image.to_ppm()), Ok(image));
    }

    #[test]
    fn regions_masks_and_the_background() {
        // 8×4 black with a 2×2 white block at (5, 1) and one grey pixel at (0, 3).
        let mut image = Image { width: 8, height: 4, pixels: vec![[0; 3]; 32] };
        for (x, y) in [(5, 1), (6, 1), (5, 2), (6, 2)] {
            image.pixels[y * 8 + x] = [255; 3];
        }
        image.pixels[3 * 8] = [128; 3];
        assert_eq!(image.dominant(), Some([0; 3]));
        assert_eq!(image.count_differing(image.bounds(), [0; 3]), 5);
        assert_eq!(image.count_differing(Rect::new(4, 0, 4, 4), [0; 3]), 4);
        assert_eq!(image.count_differing(Rect::new(6, 2, 100, 100), [0; 3]), 1, "clipped to the image");
        assert_eq!(image.count_differing(Rect::new(100, 100, 5, 5), [0; 3]), 0, "entirely outside");
        assert_eq!(image.count_differing(Rect::new(usize::MAX, 0, usize::MAX, 1), [0; 3]), 0);
        let mask = image.mask(Rect::new(4, 0, 4, 4), [0; 3]);
        assert_eq!((mask.width, mask.height, mask.count()), (4, 4, 4));
        assert!(mask.get(1, 1) && mask.get(2, 2) && !mask.get(0, 0) && !mask.get(9, 9));
        assert_eq!(mask.bounding_box(), Some(Rect::new(1, 1, 2, 2)));
        assert_eq!(mask.render(), "....\n.##.\n.##.\n....\n");
        assert_eq!(image.mask(Rect::new(0, 0, 2, 2), [0; 3]).bounding_box(), None);
        // Against white the black pixels are the ink.
        assert_eq!(image.count_differing(image.bounds(), [255; 3]), 28);
        assert_eq!(Image { width: 0, height: 0, pixels: Vec::new() }.dominant(), None);
    }

    #[test]
    fn accessors_survive_inconsistent_fields() {
        let image = Image { width: 4, height: 4, pixels: vec![[1; 3]; 3] };
        assert_eq!(image.pixel(3, 3), None);
        assert_eq!(image.count_differing(image.bounds(), [0; 3]), 3);
    }
}
