//! A disk in memory that records what it is asked to do: every request in order (and, when
//! asked, the bytes of every write), so a test can check the order writes reach the disk and
//! replay a prefix of them onto the image the volume started from, as a stop at that moment
//! would have left it. Used by `speed_and_order` and by the check's agreement with `fsck.fat`
//! on stopped images.
//!
//! Invariants: the bytes and the log are shared (`Rc`) between the clones of a recorder, so they
//! outlive the volume that owns one clone; the image is whole 512-byte blocks; a request past
//! its end is [`DiskError::OutOfRange`] and is not logged.

use std::cell::RefCell;
use std::rc::Rc;

use crate::{Disk, DiskError};

/// Block size of every recorder.
const BLOCK: usize = 512;

/// One request the [`Recorder`] was asked to do.
#[derive(Clone, Debug)]
pub(crate) enum Event {
    Read {
        first: u64,
        blocks: u64,
    },
    /// `data` is kept only by a recorder made with `keep_data`.
    Write {
        first: u64,
        blocks: u64,
        data: Option<Rc<[u8]>>,
    },
    Flush,
}

/// A disk in memory whose bytes and request log outlive the volume using it.
#[derive(Clone)]
pub(crate) struct Recorder {
    bytes: Rc<RefCell<Vec<u8>>>,
    log: Rc<RefCell<Vec<Event>>>,
    keep_data: bool,
}

impl Recorder {
    /// A recorder holding `image`, keeping the bytes of each write in its log if `keep_data`.
    pub(crate) fn new(image: Vec<u8>, keep_data: bool) -> Self {
        assert!(image.len().is_multiple_of(BLOCK));
        Self { bytes: Rc::new(RefCell::new(image)), log: Rc::default(), keep_data }
    }

    /// The image as it is now.
    pub(crate) fn image(&self) -> Vec<u8> {
        self.bytes.borrow().clone()
    }

    /// How many requests the log holds.
    pub(crate) fn log_len(&self) -> usize {
        self.log.borrow().len()
    }

    /// The requests since the last call, leaving the log empty.
    pub(crate) fn take_log(&self) -> Vec<Event> {
        std::mem::take(&mut *self.log.borrow_mut())
    }
}

impl Disk for Recorder {
    fn block_size(&self) -> usize {
        BLOCK
    }
    fn blocks(&self) -> u64 {
        (self.bytes.borrow().len() / BLOCK) as u64
    }
    fn read(&mut self, first: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        let start = first as usize * BLOCK;
        buf.copy_from_slice(self.bytes.borrow().get(start..start + buf.len()).ok_or(DiskError::OutOfRange)?);
        self.log.borrow_mut().push(Event::Read { first, blocks: (buf.len() / BLOCK) as u64 });
        Ok(())
    }
    fn write(&mut self, first: u64, data: &[u8]) -> Result<(), DiskError> {
        let start = first as usize * BLOCK;
        self.bytes.borrow_mut().get_mut(start..start + data.len()).ok_or(DiskError::OutOfRange)?.copy_from_slice(data);
        let kept = self.keep_data.then(|| Rc::from(data));
        self.log.borrow_mut().push(Event::Write { first, blocks: (data.len() / BLOCK) as u64, data: kept });
        Ok(())
    }
    fn flush(&mut self) -> Result<(), DiskError> {
        self.log.borrow_mut().push(Event::Flush);
        Ok(())
    }
}

/// Writes as (first block, bytes), in the order they were issued.
pub(crate) type Writes = Vec<(u64, Rc<[u8]>)>;

/// Applies `writes` (first block, bytes) to `image`.
pub(crate) fn apply(image: &mut [u8], writes: &[(u64, Rc<[u8]>)]) {
    for (first, data) in writes {
        let at = *first as usize * BLOCK;
        image[at..at + data.len()].copy_from_slice(data);
    }
}

/// The writes of a log with their bytes, and after how many of them each flush came.
pub(crate) fn writes_and_flushes(log: &[Event]) -> (Writes, Vec<usize>) {
    let mut writes = Vec::new();
    let mut flushes = Vec::new();
    for event in log {
        match event {
            Event::Write { first, data, .. } => writes.push((*first, data.clone().expect("a recorder keeping data"))),
            Event::Flush => flushes.push(writes.len()),
            Event::Read { .. } => {}
        }
    }
    (writes, flushes)
}
