//! A synthetic camera: scrolling colour bars and a bouncing box, stamped with a timecode.
//!
//! The motion keeps the encoder doing real inter-frame work, and the timecode lets a viewer
//! measure glass-to-glass latency without any side channel.

use super::timecode;
use super::{SourceError, VideoFrame, VideoOutput, VideoSource};
use crate::media::{CaptureTime, RawFrame};
use std::time::{Duration, Instant};

/// 75% colour bars (BT.601 limited range Y, U, V): white, yellow, cyan, green, magenta, red, blue,
/// black.
const BARS: [[u8; 3]; 8] = [
    [180, 128, 128],
    [162, 44, 142],
    [131, 156, 44],
    [112, 72, 58],
    [84, 184, 198],
    [65, 100, 212],
    [35, 212, 114],
    [16, 128, 128],
];
/// Saturated orange: a colour none of the bars has, so the box stays visible everywhere.
const BOX_COLOUR: [u8; 3] = [146, 53, 193];
/// Horizontal scroll per frame; even so luma and chroma shift by whole samples together.
const SCROLL_PX: usize = 4;
/// Box speed per frame; even for the same reason, and unequal so the path is not a 45° line.
const BOX_DX: u64 = 6;
const BOX_DY: u64 = 4;

/// A pure renderer of the test pattern; it owns precomputed rows so each frame is mostly memcpy.
#[derive(Debug, Clone)]
pub struct TestPattern {
    width: usize,
    height: usize,
    /// Two copies of one luma row of bars back to back, so any horizontal shift is one slice.
    bars_y: Vec<u8>,
    bars_u: Vec<u8>,
    bars_v: Vec<u8>,
    box_side: usize,
}

impl TestPattern {
    /// A renderer for `width` x `height` frames. I420 needs even dimensions, so odd values are
    /// rounded down (to at least 2).
    pub fn new(width: u32, height: u32) -> TestPattern {
        let width = (width as usize & !1).max(2);
        let height = (height as usize & !1).max(2);
        let chroma_width = width / 2;

        let bar_at = |x: usize| BARS[x * BARS.len() / width];
        let bars_y: Vec<u8> = (0..width).map(|x| bar_at(x)[0]).cycle().take(2 * width).collect();
        let bars_u: Vec<u8> =
            (0..chroma_width).map(|x| bar_at(2 * x)[1]).cycle().take(width).collect();
        let bars_v: Vec<u8> =
            (0..chroma_width).map(|x| bar_at(2 * x)[2]).cycle().take(width).collect();

        let box_side = ((width.min(height) / 4) & !1).max(2);
        TestPattern { width, height, bars_y, bars_u, bars_v, box_side }
    }

    /// Width of the frames this renderer produces (after rounding to even).
    pub fn width(&self) -> u32 {
        self.width as u32
    }

    /// Height of the frames this renderer produces (after rounding to even).
    pub fn height(&self) -> u32 {
        self.height as u32
    }

    /// Renders frame `frame_index`: the motion is a function of the index alone, so skipped frames
    /// jump ahead as real motion would, and the timecode carries `captured`'s wall-clock time.
    pub fn render(&mut self, frame_index: u64, captured: CaptureTime) -> RawFrame {
        let (width, height) = (self.width, self.height);
        let (chroma_width, chroma_height) = (width / 2, height / 2);
        let luma_len = width * height;
        let chroma_len = chroma_width * chroma_height;

        // `width` is even and SCROLL_PX is even, so the luma shift always maps to a whole chroma
        // sample.
        let shift = (frame_index % width as u64) as usize * SCROLL_PX % width;
        let chroma_shift = shift / 2;

        // Built by appending rows rather than zero-filling first: one pass over the memory.
        let mut i420 = Vec::with_capacity(luma_len + 2 * chroma_len);
        let row_y = &self.bars_y[shift..shift + width];
        for _ in 0..height {
            i420.extend_from_slice(row_y);
        }
        for bars in [&self.bars_u, &self.bars_v] {
            let row = &bars[chroma_shift..chroma_shift + chroma_width];
            for _ in 0..chroma_height {
                i420.extend_from_slice(row);
            }
        }

        let side = self.box_side;
        let left = bounce(frame_index, BOX_DX, width - side.min(width));
        let top = bounce(frame_index, BOX_DY, height - side.min(height));
        let (luma, chroma) = i420.split_at_mut(luma_len);
        for y in top..(top + side).min(height) {
            let start = y * width + left;
            luma[start..start + side.min(width - left)].fill(BOX_COLOUR[0]);
        }
        let (u, v) = chroma.split_at_mut(chroma_len);
        let (chroma_left, chroma_top, chroma_side) = (left / 2, top / 2, side / 2);
        for (plane, value) in [(u, BOX_COLOUR[1]), (v, BOX_COLOUR[2])] {
            for y in chroma_top..(chroma_top + chroma_side).min(chroma_height) {
                let start = y * chroma_width + chroma_left;
                plane[start..start + chroma_side.min(chroma_width - chroma_left)].fill(value);
            }
        }

        let mut frame =
            RawFrame { width: width as u32, height: height as u32, i420, captured, jpeg: None };
        // Last, so nothing drawn above can corrupt the bits a reader depends on.
        timecode::burn(&mut frame, captured.unix_millis_u32());
        frame
    }
}

/// Position along a segment of length `range`, travelling `speed` per frame and reflecting at the
/// ends; even for even `speed`, which keeps the box aligned with the chroma grid.
fn bounce(frame_index: u64, speed: u64, range: usize) -> usize {
    if range == 0 {
        return 0;
    }
    let period = 2 * range as u64;
    let travelled = (frame_index % period) * speed % period;
    let pos = if travelled <= range as u64 { travelled } else { period - travelled };
    pos as usize
}

/// Deadlines on a fixed grid `start + n / rate`, computed from `n` rather than accumulated, so
/// rounding never adds up to drift however long a source runs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pacer {
    start: Instant,
    /// Ticks per second; kept as a rate because intervals like 1/30 s are not whole nanoseconds.
    rate: u32,
}

impl Pacer {
    const NANOS_PER_SEC: u128 = 1_000_000_000;

    /// A grid whose tick 0 is `start`; a zero rate is treated as one tick per second.
    pub(crate) fn new(start: Instant, rate: u32) -> Self {
        Self { start, rate: rate.max(1) }
    }

    /// When tick `n` is due.
    pub(crate) fn deadline(&self, n: u64) -> Instant {
        let nanos = u128::from(n) * Self::NANOS_PER_SEC / u128::from(self.rate);
        let offset = Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
        // Only reachable centuries from now; not sleeping beats panicking.
        self.start.checked_add(offset).unwrap_or(self.start)
    }

    /// The last tick due at or before `now` (0 before the start).
    pub(crate) fn latest_index_at(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.start).as_nanos();
        // Inverse of the floor in `deadline`: the largest n with floor(n * 1e9 / rate) <= elapsed.
        let index = ((elapsed + 1) * u128::from(self.rate) - 1) / Self::NANOS_PER_SEC;
        u64::try_from(index).unwrap_or(u64::MAX)
    }

    /// The tick to produce next, given the one that was scheduled: unchanged if we are on time or
    /// less than one interval late (a single catch-up), otherwise the latest due tick, so a stall
    /// drops ticks instead of releasing a burst of them.
    pub(crate) fn next_index_after(&self, scheduled: u64, now: Instant) -> u64 {
        if now >= self.deadline(scheduled.saturating_add(1)) {
            self.latest_index_at(now)
        } else {
            scheduled
        }
    }

    /// Blocks until tick `scheduled` (or the tick skipped ahead to) is due and returns its index.
    pub(crate) fn wait(&self, scheduled: u64) -> u64 {
        let now = Instant::now();
        let index = self.next_index_after(scheduled, now);
        let due = self.deadline(index);
        if due > now {
            std::thread::sleep(due - now);
        }
        index
    }
}

/// A [`VideoSource`] that renders [`TestPattern`] frames in real time at a fixed frame rate.
#[derive(Debug)]
pub struct TestVideoSource {
    pattern: TestPattern,
    fps: u32,
    /// Started on the first frame, so time spent between construction and use is not "late".
    pacer: Option<Pacer>,
    next_index: u64,
}

impl TestVideoSource {
    /// A source of `width` x `height` frames (rounded down to even) at `fps` frames per second
    /// (at least 1).
    pub fn new(width: u32, height: u32, fps: u32) -> Self {
        Self {
            pattern: TestPattern::new(width, height),
            fps: fps.max(1),
            pacer: None,
            next_index: 0,
        }
    }
}

impl VideoSource for TestVideoSource {
    fn next_frame(&mut self) -> Result<VideoFrame, SourceError> {
        let fps = self.fps;
        let pacer = *self.pacer.get_or_insert_with(|| Pacer::new(Instant::now(), fps));
        let index = pacer.wait(self.next_index);
        // Stamped right at the deadline, before rendering: the picture "was taken" then.
        let captured = CaptureTime::now();
        self.next_index = index.saturating_add(1);
        Ok(VideoFrame::Raw(self.pattern.render(index, captured)))
    }

    fn output(&self) -> VideoOutput {
        VideoOutput::Raw
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::timecode::{TIMECODE_HEIGHT, TIMECODE_WIDTH};

    #[test]
    fn frame_sizes_and_plane_lengths() {
        for (w, h) in [(256, 144), (640, 480), (1920, 1080), (1000, 562)] {
            let mut pattern = TestPattern::new(w, h);
            for n in [0, 1, 7, 1_000_003, u64::MAX] {
                let f = pattern.render(n, CaptureTime::now());
                assert_eq!((f.width, f.height), (w, h));
                let luma = (w * h) as usize;
                assert_eq!(f.i420.len(), luma * 3 / 2);
                assert_eq!(f.y().len(), luma);
                assert_eq!(f.u().len(), luma / 4);
                assert_eq!(f.v().len(), luma / 4);
            }
        }
    }

    #[test]
    fn odd_and_tiny_sizes_do_not_panic() {
        for (w, h) in [(0, 0), (1, 1), (3, 5), (255, 47), (257, 145)] {
            let mut pattern = TestPattern::new(w, h);
            for n in 0..50 {
                let f = pattern.render(n, CaptureTime::now());
                assert_eq!(f.i420.len(), (f.width * f.height * 3 / 2) as usize);
                assert_eq!(f.width % 2, 0);
                assert_eq!(f.height % 2, 0);
            }
        }
    }

    #[test]
    fn content_moves_outside_the_timecode() {
        for (w, h) in [(256, 144), (1000, 562)] {
            let mut pattern = TestPattern::new(w, h);
            let now = CaptureTime::now();
            for n in [0, 1, 100, 12_345] {
                let a = pattern.render(n, now);
                let b = pattern.render(n + 1, now);
                let below = (TIMECODE_HEIGHT * w) as usize;
                assert_ne!(a.y()[below..], b.y()[below..], "{w}x{h} frame {n}");
                assert_ne!(a.u(), b.u());
            }
        }
    }

    #[test]
    fn box_is_drawn_and_moves() {
        let mut pattern = TestPattern::new(640, 480);
        let now = CaptureTime::now();
        let box_pixels = |f: &RawFrame| f.y().iter().filter(|&&p| p == BOX_COLOUR[0]).count();
        let first = pattern.render(0, now);
        // Placed clear of the timecode so nothing covers it.
        let f = pattern.render(20, now);
        assert_eq!(box_pixels(&f), 120 * 120);
        assert_ne!(first.y(), f.y());
    }

    #[test]
    fn bounce_stays_in_range() {
        for range in [0usize, 1, 2, 3, 10, 901] {
            for n in 0..5_000 {
                let pos = bounce(n, BOX_DX, range);
                assert!(pos <= range, "range {range} n {n} pos {pos}");
                assert_eq!(pos % 2, 0);
            }
        }
        assert_eq!(bounce(u64::MAX, BOX_DX, 1_000), bounce(u64::MAX % 2_000, BOX_DX, 1_000));
    }

    #[test]
    fn timecode_reads_back() {
        for (w, h) in [(256, 144), (1920, 1080)] {
            let mut pattern = TestPattern::new(w, h);
            for n in 0..200 {
                let captured = CaptureTime::now();
                let f = pattern.render(n, captured);
                let t = timecode::read(f.y(), w as usize, w as usize, h as usize);
                assert_eq!(t, Ok(captured.unix_millis_u32()));
                let cw = w as usize / 2;
                let region = (TIMECODE_WIDTH / 2) as usize;
                assert!(f.u()[..cw].iter().take(region).all(|&c| c == 128));
            }
        }
    }

    #[test]
    fn pacer_has_no_drift() {
        let start = Instant::now();
        let pacer = Pacer::new(start, 30);
        let exact = |n: u64| Duration::from_nanos(n * 1_000_000_000 / 30);
        for n in 0..=1_000 {
            assert_eq!(pacer.deadline(n) - start, exact(n));
        }
        assert_eq!(pacer.deadline(30_000) - start, Duration::from_secs(1_000));
        let audio = Pacer::new(start, 50);
        assert_eq!(audio.deadline(1_000) - start, Duration::from_secs(20));
        assert_eq!(audio.deadline(1) - start, Duration::from_millis(20));
    }

    #[test]
    fn pacer_latest_index() {
        let start = Instant::now();
        let pacer = Pacer::new(start, 30);
        assert_eq!(pacer.latest_index_at(start), 0);
        for n in [1u64, 29, 30, 999, 123_456] {
            let due = pacer.deadline(n);
            assert_eq!(pacer.latest_index_at(due), n);
            assert_eq!(pacer.latest_index_at(due - Duration::from_nanos(1)), n - 1);
        }
    }

    #[test]
    fn pacer_on_time_or_slightly_late_keeps_schedule() {
        let start = Instant::now();
        let pacer = Pacer::new(start, 30);
        assert_eq!(pacer.next_index_after(10, pacer.deadline(9)), 10, "early");
        assert_eq!(pacer.next_index_after(10, pacer.deadline(10)), 10, "exactly due");
        let almost = pacer.deadline(11) - Duration::from_nanos(1);
        assert_eq!(pacer.next_index_after(10, almost), 10, "late by under one interval");
    }

    #[test]
    fn pacer_skips_ahead_when_late() {
        let start = Instant::now();
        let pacer = Pacer::new(start, 30);
        assert_eq!(pacer.next_index_after(10, pacer.deadline(11)), 11);
        let stalled = pacer.deadline(100) + Duration::from_millis(5);
        let index = pacer.next_index_after(10, stalled);
        assert_eq!(index, 100);
        // After a skip the very next tick is on schedule again: no burst.
        assert!(pacer.deadline(index + 1) > stalled);
    }

    #[test]
    fn pacer_zero_rate_is_safe() {
        let start = Instant::now();
        let pacer = Pacer::new(start, 0);
        assert_eq!(pacer.deadline(2) - start, Duration::from_secs(2));
        let _ = pacer.deadline(u64::MAX);
        let _ = pacer.next_index_after(u64::MAX, start);
    }

    #[test]
    fn source_paces_frames() {
        let mut source = TestVideoSource::new(256, 144, 200);
        let first = source.next_frame().unwrap().captured();
        let mut previous = first.instant;
        for _ in 0..5 {
            let f = source.next_frame().unwrap().captured();
            assert!(f.instant > previous);
            previous = f.instant;
        }
        // Five 5 ms intervals, less the instant the first stamp took; a lower bound only, since
        // sleep may overshoot on a busy machine.
        assert!(previous - first.instant >= Duration::from_millis(20));
    }
}
