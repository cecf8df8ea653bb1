//! Virtual consoles on the machine's one screen and keyboard, as Linux's virtual terminals:
//! `console0` is the root container's; `plug(container, "console")` gives a container one of
//! its own. Each keeps the text it was last showing and its own input; one is active: its
//! output is drawn on the framebuffer and the keyboard types into it. Alt+F1… (console 0, 1, …)
//! or the root's `console` call switch.
//!
//! Invariants: `active` always names a live console (console 0 never goes); a console's kept
//! output never exceeds `MAX_KEPT` bytes and holds at most a screenful of lines after the last
//! clear-screen, so switching redraws it without scrolling; input queues are bounded
//! (`MAX_INPUT`, extra keys dropped). The framebuffer is taken from the kernel at start, and
//! console 0 shows the kernel's output (its log, the programs' debug output) as it comes
//! (`show_log`, on the notification `LogBind` signals), as Linux's first console shows printk.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use vessel_rt::abi::Error;
use vessel_rt::platform::Platform;

use crate::fb::Fb;

/// Output bytes a console keeps for redrawing.
const MAX_KEPT: usize = 16 * 1024;
/// Lines kept before the framebuffer says how many fit.
const DEFAULT_ROWS: usize = 25;
/// Input bytes a console keeps until read.
pub const MAX_INPUT: usize = 4096;
/// The control sequence that clears the screen.
const CLEAR: &[u8] = b"\x1b[2J";

/// One virtual console.
struct Vt {
    /// Gone with its container: never shown again.
    retired: bool,
    /// The output since the last clear-screen, at most a screenful of lines.
    kept: VecDeque<u8>,
    input: VecDeque<u8>,
}

/// The consoles and the screen they share.
pub struct Consoles {
    platform: Platform,
    /// The number of the next byte of the kernel's output to show on console 0.
    log_next: u64,
    /// The framebuffer console, once taken (`Err`: no framebuffer this console can draw on).
    fb: Option<Result<Fb, Error>>,
    vts: Vec<Vt>,
    active: usize,
}

impl Consoles {
    /// Console 0, active, on the framebuffer `platform` will give.
    pub fn new(platform: Platform) -> Consoles {
        let mut consoles = Consoles { platform, log_next: 0, fb: None, vts: Vec::new(), active: 0 };
        consoles.add();
        consoles
    }

    /// Shows the kernel's output printed since the last call on console 0 (all of what the
    /// kernel keeps, the first time), saying how much was lost if the kernel dropped some
    /// before it was shown.
    pub fn show_log(&mut self) {
        let mut chunk = [0u8; 4096];
        loop {
            let Ok(got) = self.platform.log_read(self.log_next, &mut chunk) else { return };
            if got.first > self.log_next && self.log_next > 0 {
                let lost = alloc::format!("\n[{} bytes of the kernel's output lost]\n", got.first - self.log_next);
                let _ = self.write(0, lost.as_bytes());
            }
            let count = (got.next - got.first) as usize;
            self.log_next = got.next;
            if count == 0 {
                return;
            }
            // No framebuffer: console 0 still keeps the text (for a switch that never comes).
            let _ = self.write(0, &chunk[..count]);
        }
    }

    /// A new console; returns its number.
    pub fn add(&mut self) -> usize {
        self.vts.push(Vt { retired: false, kept: VecDeque::new(), input: VecDeque::new() });
        self.vts.len() - 1
    }

    /// The active console.
    pub fn active(&self) -> usize {
        self.active
    }

    /// The framebuffer, taken from the kernel the first time.
    fn fb(&mut self) -> Result<&mut Fb, Error> {
        let platform = self.platform;
        let taken = self.fb.get_or_insert_with(|| {
            let fb = Fb::take(platform);
            if let Ok(fb) = &fb {
                let (w, h, columns, rows) = fb.geometry();
                vessel_rt::println!("device: consoles on the framebuffer ({w}x{h}, {columns}x{rows} cells)");
            }
            fb
        });
        taken.as_mut().map_err(|e| *e)
    }

    fn rows(&self) -> usize {
        match &self.fb {
            Some(Ok(fb)) => fb.geometry().3,
            _ => DEFAULT_ROWS,
        }
    }

    /// Writes `data` to console `n`: kept, and drawn if it is active. `DeviceError` if it is
    /// active and there is no framebuffer to draw on.
    pub fn write(&mut self, n: usize, data: &[u8]) -> Result<(), Error> {
        let rows = self.rows();
        let vt = self.vts.get_mut(n).ok_or(Error::NotFound)?;
        keep(&mut vt.kept, data, rows);
        if n == self.active {
            self.fb()?.write(data);
        }
        Ok(())
    }

    /// Makes console `n` the active one and redraws the screen with what it keeps.
    pub fn switch(&mut self, n: usize) -> Result<(), Error> {
        if self.vts.get(n).is_none_or(|vt| vt.retired) {
            return Err(Error::NotFound);
        }
        self.active = n;
        let kept: Vec<u8> = self.vts[n].kept.iter().copied().collect();
        let fb = self.fb()?;
        fb.write(b"\x1b[0m\x1b[2J\x1b[H");
        fb.write(&kept);
        Ok(())
    }

    /// Typed input: to the active console.
    pub fn type_in(&mut self, bytes: &[u8]) {
        let vt = &mut self.vts[self.active];
        if vt.input.len() + bytes.len() <= MAX_INPUT {
            vt.input.extend(bytes);
        }
    }

    /// Appends what fits of `bytes` to console `n`'s input (input a terminal showing it
    /// passed on); returns how many it took.
    pub fn push_input(&mut self, n: usize, bytes: &[u8]) -> usize {
        let Some(vt) = self.vts.get_mut(n).filter(|vt| !vt.retired) else { return 0 };
        let count = bytes.len().min(MAX_INPUT.saturating_sub(vt.input.len()));
        vt.input.extend(&bytes[..count]);
        count
    }

    /// Puts bytes back at the front of console `n`'s input (a reader died before it got them).
    pub fn give_back(&mut self, n: usize, bytes: &[u8]) {
        if let Some(vt) = self.vts.get_mut(n) {
            crate::input::give_back(&mut vt.input, bytes);
        }
    }

    /// Drops console `n`'s input up to the last Ctrl-C; whether one was typed.
    pub fn cut_at_interrupt(&mut self, n: usize) -> bool {
        self.vts.get_mut(n).is_some_and(|vt| crate::input::cut_at_interrupt(&mut vt.input))
    }

    /// Up to `max` bytes of console `n`'s input, if some wait.
    pub fn take_input(&mut self, n: usize, max: usize) -> Option<Vec<u8>> {
        crate::input::take(&mut self.vts.get_mut(n)?.input, max)
    }

    /// Console `n`'s container is gone: it is never shown again (the screen goes back to
    /// console 0 if it was showing).
    pub fn retire(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        if let Some(vt) = self.vts.get_mut(n) {
            vt.retired = true;
            vt.kept.clear();
            vt.input.clear();
        }
        if self.active == n {
            let _ = self.switch(0);
        }
    }
}

/// Appends `data` to `kept`, then drops what a redraw would not show: everything before the
/// last clear-screen, lines beyond the last `rows`, bytes beyond `MAX_KEPT`.
fn keep(kept: &mut VecDeque<u8>, data: &[u8], rows: usize) {
    kept.extend(data);
    let bytes = kept.make_contiguous();
    let mut cut = bytes.windows(CLEAR.len()).rposition(|w| w == CLEAR).unwrap_or(0);
    // Keep the lines from the `rows`-th newline from the end.
    let mut newlines = bytes[cut..].iter().enumerate().rev().filter(|&(_, &b)| b == b'\n');
    if let Some((at, _)) = newlines.nth(rows.saturating_sub(1)) {
        cut += at + 1;
    }
    cut = cut.max(bytes.len().saturating_sub(MAX_KEPT));
    kept.drain(..cut);
}
