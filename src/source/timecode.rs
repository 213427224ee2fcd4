//! A machine-readable timecode burned into the top-left corner of test frames.
//!
//! This layout is a contract with browsers and test clients that read it back from decoded video
//! to measure glass-to-glass latency, so it must not change:
//!
//! - a 256x48 luma region at the top-left corner: 3 rows of 16 squares, each 16x16 pixels;
//! - `T` is the capture wall-clock time in Unix milliseconds modulo 2^32;
//! - row 0 carries bits 31..16 of `T`, row 1 bits 15..0, row 2 bits 15..0 of `!T` as a check;
//! - the most significant bit is leftmost; a 1 is luma 235, a 0 is luma 16;
//! - chroma is 128 (grey) inside the region so colour never leaks into the luma decision.

use crate::media::RawFrame;

/// Width in pixels of the timecode region.
pub const TIMECODE_WIDTH: u32 = 256;
/// Height in pixels of the timecode region.
pub const TIMECODE_HEIGHT: u32 = 48;

/// Side in pixels of one bit square.
const SQUARE: usize = 16;
/// Bits (squares) per row.
const BITS_PER_ROW: usize = 16;
/// Only the centre of each square is read: codec ringing and chroma blur live at the edges.
const SAMPLE_MARGIN: usize = 4;
const SAMPLE_SIDE: usize = SQUARE - 2 * SAMPLE_MARGIN;
const LUMA_ONE: u8 = 235;
const LUMA_ZERO: u8 = 16;
const CHROMA_NEUTRAL: u8 = 128;

/// Why a timecode could not be read from a picture.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimecodeError {
    /// The picture is smaller than the 256x48 timecode region.
    #[error(
        "frame {width}x{height} is smaller than the {TIMECODE_WIDTH}x{TIMECODE_HEIGHT} timecode"
    )]
    FrameTooSmall {
        /// Width of the picture, in pixels.
        width: usize,
        /// Height of the picture, in pixels.
        height: usize,
    },
    /// The stride is shorter than a row, so the layout cannot be a real picture.
    #[error("stride {stride} is smaller than width {width}")]
    InvalidStride {
        /// Bytes between the starts of consecutive rows.
        stride: usize,
        /// Width of the picture, in pixels.
        width: usize,
    },
    /// The luma buffer ends before the rows its stride and height describe.
    #[error("luma buffer has {len} bytes, {needed} needed")]
    BufferTooShort {
        /// Bytes the buffer holds.
        len: usize,
        /// Bytes `stride * (height - 1) + width` requires.
        needed: usize,
    },
    /// The check row is not the complement of the low row: no timecode, or one damaged in transit.
    #[error("check row {check:#06x} does not match low bits {low:#06x}")]
    CheckMismatch {
        /// Row 1 as read: bits 15..0 of the timecode.
        low: u16,
        /// Row 2 as read, which should have been `!low`.
        check: u16,
    },
}

/// The three 16-bit words of the timecode rows, top to bottom.
fn row_words(t: u32) -> [u16; 3] {
    [(t >> 16) as u16, t as u16, !(t as u16)]
}

/// Burns timecode `t` into the top-left corner of `frame`, clipped if the frame is smaller than the
/// region; a frame whose buffer is shorter than its dimensions imply is left untouched.
pub fn burn(frame: &mut RawFrame, t: u32) {
    let width = frame.width as usize;
    let height = frame.height as usize;
    let Some(luma_len) = width.checked_mul(height) else {
        return;
    };
    let (chroma_width, chroma_height) = (width / 2, height / 2);
    // Mirror RawFrame::u()/v() so the planes written are the planes everyone else reads.
    let chroma_plane = luma_len / 4;
    if frame.i420.len() < luma_len + 2 * chroma_plane {
        return;
    }

    let region_width = width.min(TIMECODE_WIDTH as usize);
    let region_height = height.min(TIMECODE_HEIGHT as usize);
    let (luma, chroma) = frame.i420.split_at_mut(luma_len);

    // One pre-rendered line per timecode row, copied into its 16 picture lines.
    let mut line = [0u8; TIMECODE_WIDTH as usize];
    for (row, word) in row_words(t).into_iter().enumerate() {
        for (bit, square) in line.chunks_exact_mut(SQUARE).enumerate() {
            let set = (word >> (BITS_PER_ROW - 1 - bit)) & 1 == 1;
            square.fill(if set { LUMA_ONE } else { LUMA_ZERO });
        }
        let first = row * SQUARE;
        for y in first..(first + SQUARE).min(region_height) {
            luma[y * width..y * width + region_width].copy_from_slice(&line[..region_width]);
        }
    }

    let (u, v) = chroma.split_at_mut(chroma_plane);
    let chroma_region_width = chroma_width.min(TIMECODE_WIDTH as usize / 2);
    let chroma_region_height = chroma_height.min(TIMECODE_HEIGHT as usize / 2);
    for plane in [u, &mut v[..chroma_plane]] {
        for y in 0..chroma_region_height {
            let start = y * chroma_width;
            plane[start..start + chroma_region_width].fill(CHROMA_NEUTRAL);
        }
    }
}

/// Reads the timecode from a luma plane whose rows are `stride` bytes apart.
///
/// Each square is judged by the mean of its central 8x8 pixels against the midpoint between the
/// two levels, so blur, ringing and moderate noise from a lossy codec do not flip bits.
pub fn read(luma: &[u8], stride: usize, width: usize, height: usize) -> Result<u32, TimecodeError> {
    if width < TIMECODE_WIDTH as usize || height < TIMECODE_HEIGHT as usize {
        return Err(TimecodeError::FrameTooSmall { width, height });
    }
    if stride < width {
        return Err(TimecodeError::InvalidStride { stride, width });
    }
    // Checked: absurd dimensions must come back as an error, not an overflow panic.
    let needed =
        stride.checked_mul(height - 1).and_then(|n| n.checked_add(width)).unwrap_or(usize::MAX);
    if luma.len() < needed {
        return Err(TimecodeError::BufferTooShort { len: luma.len(), needed });
    }

    let mut words = [0u16; 3];
    for (row, word) in words.iter_mut().enumerate() {
        for bit in 0..BITS_PER_ROW {
            let top = row * SQUARE + SAMPLE_MARGIN;
            let left = bit * SQUARE + SAMPLE_MARGIN;
            let sum: u32 = (top..top + SAMPLE_SIDE)
                .map(|y| {
                    let start = y * stride + left;
                    luma[start..start + SAMPLE_SIDE].iter().map(|&p| u32::from(p)).sum::<u32>()
                })
                .sum();
            // mean > (16 + 235) / 2, kept in integers: sum / 64 > 251 / 2.
            let midpoint_sum =
                (u32::from(LUMA_ZERO) + u32::from(LUMA_ONE)) * (SAMPLE_SIDE * SAMPLE_SIDE) as u32;
            let set = 2 * sum > midpoint_sum;
            *word = (*word << 1) | u16::from(set);
        }
    }

    let [high, low, check] = words;
    if check != !low {
        return Err(TimecodeError::CheckMismatch { low, check });
    }
    Ok((u32::from(high) << 16) | u32::from(low))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::CaptureTime;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn frame(width: u32, height: u32) -> RawFrame {
        RawFrame::black(width, height, CaptureTime::now())
    }

    fn read_frame(f: &RawFrame) -> Result<u32, TimecodeError> {
        read(f.y(), f.width as usize, f.width as usize, f.height as usize)
    }

    #[test]
    fn round_trip() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut values = vec![0, u32::MAX, 0xA5A5_5A5A, 1, 0x8000_0000, 0x0000_FFFF];
        values.extend((0..20).map(|_| rng.random::<u32>()));
        let mut f = frame(640, 480);
        for t in values {
            burn(&mut f, t);
            assert_eq!(read_frame(&f), Ok(t), "t = {t:#010x}");
        }
    }

    #[test]
    fn layout_matches_contract() {
        let mut f = frame(256, 144);
        burn(&mut f, 0x8000_0001);
        let y = f.y();
        let at = |x: usize, row: usize| y[row * 256 + x];
        assert_eq!(at(0, 0), 235, "row 0 MSB set");
        assert_eq!(at(16, 0), 16);
        assert_eq!(at(255, 16), 235, "row 1 LSB set");
        assert_eq!(at(0, 32), 235, "check row is the complement of row 1");
        assert_eq!(at(255, 47), 16);
        assert_eq!(at(0, 48), 16, "nothing below the region");
        assert!(f.u()[..24 * 128].iter().all(|&c| c == 128));
    }

    #[test]
    fn chroma_neutral_inside_region_only() {
        let width = 640u32;
        let mut f = frame(width, 480);
        let luma = (width * 480) as usize;
        f.i420[luma..].fill(200);
        burn(&mut f, 0x1234_5678);
        let cw = width as usize / 2;
        for plane in [f.u(), f.v()] {
            assert!((0..24).all(|y| plane[y * cw..y * cw + 128].iter().all(|&c| c == 128)));
            assert_eq!(plane[128], 200, "right of the region");
            assert_eq!(plane[24 * cw], 200, "below the region");
        }
    }

    #[test]
    fn survives_noise_and_padding() {
        let (width, height, stride) = (320usize, 240usize, 384usize);
        let mut f = frame(width as u32, height as u32);
        let t = 0xDEAD_BEEF;
        burn(&mut f, t);
        let mut rng = StdRng::seed_from_u64(42);
        let mut padded = vec![0u8; stride * height];
        for y in 0..height {
            for x in 0..width {
                let noisy = i32::from(f.y()[y * width + x]) + rng.random_range(-40..=40);
                padded[y * stride + x] = noisy.clamp(0, 255) as u8;
            }
            // Garbage in the padding must not be mistaken for picture.
            padded[y * stride + width..(y + 1) * stride].fill(255);
        }
        assert_eq!(read(&padded, stride, width, height), Ok(t));
    }

    #[test]
    fn corrupted_check_row_is_rejected() {
        let mut f = frame(256, 144);
        burn(&mut f, 0x0102_0304);
        // Flip the rightmost check square by painting it the opposite level.
        let flipped = if f.y()[40 * 256 + 248] == 235 { 16 } else { 235 };
        for y in 32..48 {
            f.i420[y * 256 + 240..y * 256 + 256].fill(flipped);
        }
        assert!(matches!(read_frame(&f), Err(TimecodeError::CheckMismatch { .. })));
    }

    #[test]
    fn blank_frame_is_rejected() {
        assert!(matches!(read_frame(&frame(256, 144)), Err(TimecodeError::CheckMismatch { .. })));
    }

    #[test]
    fn bad_geometry_is_an_error_not_a_panic() {
        let buf = vec![16u8; 256 * 48];
        assert_eq!(
            read(&buf, 255, 255, 48),
            Err(TimecodeError::FrameTooSmall { width: 255, height: 48 })
        );
        assert_eq!(
            read(&buf, 256, 256, 47),
            Err(TimecodeError::FrameTooSmall { width: 256, height: 47 })
        );
        assert_eq!(
            read(&buf, 200, 256, 48),
            Err(TimecodeError::InvalidStride { stride: 200, width: 256 })
        );
        assert!(matches!(
            read(&buf, usize::MAX, 256, usize::MAX),
            Err(TimecodeError::BufferTooShort { .. })
        ));
        assert!(matches!(
            read(&buf[..1000], 256, 256, 48),
            Err(TimecodeError::BufferTooShort { .. })
        ));
    }

    #[test]
    fn burn_clips_on_small_or_short_frames() {
        let mut small = frame(64, 32);
        burn(&mut small, u32::MAX);
        assert!(small.y().iter().all(|&p| p == 235));
        let mut short = frame(256, 144);
        short.i420.truncate(100);
        burn(&mut short, u32::MAX);
        assert!(short.i420.iter().all(|&p| p == 16));
    }
}
