//! A packed boot file system: the archive compressed (zlib: DEFLATE with an Adler-32 check) behind
//! a 16-byte header, so that the bootloader, whose BIOS stage copies the ramdisk into memory a
//! byte at a time, has a third as much to copy. The kernel unpacks it once at boot.
//!
//! Layout: [`PACKED_MAGIC`] (8 bytes), the unpacked length (u64, little-endian), the zlib
//! stream. The bytes are untrusted: [`unpack`] fills exactly the stated length or fails, checks
//! the stream's checksum, and neither panics nor writes outside `out` on any input.

use core::fmt;

use miniz_oxide::inflate::TINFLStatus;
use miniz_oxide::inflate::core::inflate_flags::{
    TINFL_FLAG_PARSE_ZLIB_HEADER, TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF,
};
use miniz_oxide::inflate::core::{DecompressorOxide, decompress};

/// The first bytes of a packed archive (an archive itself starts `070701`).
pub const PACKED_MAGIC: [u8; 8] = *b"VBFSZLB1";
/// Header bytes before the stream.
const HEADER: usize = 16;
/// The most DEFLATE's output can exceed its input by, as a factor.
const MAX_RATIO: u64 = 1032;

/// The decompressor's working memory, for [`unpack`].
pub type UnpackState = DecompressorOxide;

/// Why a packed archive could not be unpacked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnpackError {
    /// The header is cut short, or states a length the stream cannot hold.
    BadHeader,
    /// The output buffer is not the stated length.
    WrongLength {
        /// The length the header states.
        stated: usize,
    },
    /// The stream is damaged (bad zlib header, bad DEFLATE data or a checksum mismatch).
    Damaged,
    /// The stream ends before the stated length, or holds more than it.
    LengthMismatch {
        /// The length the header states.
        stated: usize,
    },
}

impl fmt::Display for UnpackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadHeader => f.write_str("packed bootfs: header cut short, or states more than its stream holds"),
            Self::WrongLength { stated } => write!(f, "packed bootfs: needs a buffer of exactly {stated} bytes"),
            Self::Damaged => f.write_str("packed bootfs: the compressed stream is damaged"),
            Self::LengthMismatch { stated } => {
                write!(f, "packed bootfs: the stream does not unpack to the stated {stated} bytes")
            }
        }
    }
}

/// The unpacked length of `image` if it is a packed archive (`None` if it does not start with
/// [`PACKED_MAGIC`]: a plain archive, or anything else), or why its header is unusable.
pub fn unpacked_len(image: &[u8]) -> Option<Result<usize, UnpackError>> {
    if !image.starts_with(&PACKED_MAGIC) {
        return None;
    }
    let Some(len) = image.get(8..HEADER) else { return Some(Err(UnpackError::BadHeader)) };
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(len);
    // DEFLATE expands at most 1032 to 1: a larger stated length is a damaged header, refused
    // before a caller sets memory aside for it.
    let most = (image.len() - HEADER) as u64 * MAX_RATIO;
    let stated = u64::from_le_bytes(bytes);
    Some(usize::try_from(stated).ok().filter(|_| stated <= most).ok_or(UnpackError::BadHeader))
}

/// Unpacks the packed archive `image` into `out`, which must be exactly its unpacked length
/// ([`unpacked_len`]). `state` is the decompressor's working memory (about 11 KiB: the caller
/// decides where it lives).
pub fn unpack(image: &[u8], out: &mut [u8], state: &mut UnpackState) -> Result<(), UnpackError> {
    let stated = match unpacked_len(image) {
        Some(result) => result?,
        None => return Err(UnpackError::BadHeader),
    };
    if out.len() != stated {
        return Err(UnpackError::WrongLength { stated });
    }
    state.init();
    let flags = TINFL_FLAG_PARSE_ZLIB_HEADER | TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF;
    let stream = &image[HEADER..];
    let (status, _, written) = decompress(state, stream, out, 0, flags);
    match status {
        TINFLStatus::Done if written == stated => Ok(()),
        TINFLStatus::Done | TINFLStatus::HasMoreOutput | TINFLStatus::NeedsMoreInput => {
            Err(UnpackError::LengthMismatch { stated })
        }
        _ => Err(UnpackError::Damaged),
    }
}

/// Packs `archive` (the build tool's side): the header, then the archive compressed at
/// miniz's best level.
#[cfg(any(test, feature = "writer"))]
pub fn pack(archive: &[u8]) -> alloc::vec::Vec<u8> {
    let mut out = alloc::vec::Vec::with_capacity(archive.len() / 2);
    out.extend_from_slice(&PACKED_MAGIC);
    out.extend_from_slice(&(archive.len() as u64).to_le_bytes());
    out.extend_from_slice(&miniz_oxide::deflate::compress_to_vec_zlib(archive, 10));
    out
}
