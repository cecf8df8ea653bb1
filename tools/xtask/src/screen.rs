//! Checks of what the guest drew, from a screendump: the user-space console's text, pixel by
//! pixel against the font.
//!
//! The console (`userland/device/src/fb.rs`) draws Noto Sans Mono 16 px glyphs in cells from the
//! top-left corner, each pixel `background + (foreground - background) × intensity / 255`. With
//! its default colours (white on black) a glyph pixel is its intensity in every channel, so the
//! expected screen follows from the font alone.

use noto_sans_mono_bitmap::{FontWeight, RasterHeight, get_raster, get_raster_width};

const WEIGHT: FontWeight = FontWeight::Regular;
const HEIGHT: RasterHeight = RasterHeight::Size16;
/// Pixel rows per text row (the console's cell height).
const CELL_HEIGHT: usize = 16;
/// A channel may differ by this much (none expected: a screendump is the framebuffer's bytes).
const TOLERANCE: u8 = 1;

/// Checks that `text` is drawn white on black from text cell (`row`, `column`), reading pixels
/// through `pixel(x, y)` (`None` outside the picture). Returns what differs, if anything.
pub fn check_text(
    pixel: &impl Fn(usize, usize) -> Option<[u8; 3]>,
    row: usize,
    column: usize,
    text: &str,
) -> Result<(), String> {
    let width = get_raster_width(WEIGHT, HEIGHT);
    let mut lit = 0;
    for (i, c) in text.chars().enumerate() {
        let raster = get_raster(c, WEIGHT, HEIGHT).ok_or_else(|| format!("{c:?} is not in the font"))?;
        let (x0, y0) = ((column + i) * width, row * CELL_HEIGHT);
        for (dy, line) in raster.raster().iter().enumerate() {
            for (dx, &intensity) in line.iter().enumerate() {
                let (x, y) = (x0 + dx, y0 + dy);
                let got = pixel(x, y).ok_or_else(|| format!("pixel ({x}, {y}) is outside the screen"))?;
                if got.iter().any(|&ch| ch.abs_diff(intensity) > TOLERANCE) {
                    return Err(format!(
                        "character {i} ({c:?}) of {text:?}: pixel ({x}, {y}) is {got:?}, the font says {intensity}"
                    ));
                }
                lit += usize::from(intensity > 0);
            }
        }
    }
    if lit == 0 {
        return Err(format!("{text:?} has no lit pixel to compare"));
    }
    Ok(())
}

/// Checks that some text row of a `height`-pixel screen starts with `text` (white on black).
pub fn find_line(pixel: impl Fn(usize, usize) -> Option<[u8; 3]>, height: usize, text: &str) -> Result<(), String> {
    if (0..height / CELL_HEIGHT).any(|row| check_text(&pixel, row, 0, text).is_ok()) {
        Ok(())
    } else {
        Err(format!("no text row starts with {text:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A screen with `text` drawn at (row, column) the way the console draws it.
    fn drawn(text: &str, row: usize, column: usize) -> impl Fn(usize, usize) -> Option<[u8; 3]> {
        let width = get_raster_width(WEIGHT, HEIGHT);
        let mut screen = vec![0u8; 640 * 480];
        for (i, c) in text.chars().enumerate() {
            let raster = get_raster(c, WEIGHT, HEIGHT).unwrap();
            for (dy, line) in raster.raster().iter().enumerate() {
                for (dx, &v) in line.iter().enumerate() {
                    screen[(row * CELL_HEIGHT + dy) * 640 + (column + i) * width + dx] = v;
                }
            }
        }
        move |x, y| (x < 640 && y < 480).then(|| [screen[y * 640 + x]; 3])
    }

    #[test]
    fn the_drawn_text_passes_and_anything_else_fails() {
        assert_eq!(check_text(&drawn("Hi!", 0, 0), 0, 0, "Hi!"), Ok(()));
        assert_eq!(check_text(&drawn("Hi!", 2, 5), 2, 5, "Hi!"), Ok(()));
        assert!(check_text(&drawn("Hi!", 0, 0), 0, 0, "Ho!").is_err());
        assert!(check_text(&drawn("Hi!", 0, 1), 0, 0, "Hi!").is_err());
        assert!(check_text(&|_, _| Some([0; 3]), 0, 0, "Hi!").is_err(), "a black screen");
        assert!(check_text(&|_, _| None, 0, 0, "Hi!").is_err(), "no screen");
        assert!(check_text(&drawn("", 0, 0), 0, 0, "   ").is_err(), "nothing lit to compare");
    }

    #[test]
    fn a_line_is_found_on_any_row_but_only_from_its_start() {
        assert_eq!(find_line(drawn("Hi!", 7, 0), 480, "Hi!"), Ok(()));
        assert!(find_line(drawn("Hi!", 7, 2), 480, "Hi!").is_err());
        assert!(find_line(drawn("Ho!", 7, 0), 480, "Hi!").is_err());
    }
}
