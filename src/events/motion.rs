//! Motion events: frame differencing on a downscaled luma plane.
//!
//! The video thread hands each oriented picture (an `Arc`, no copy) to the motion thread through
//! a one-slot channel with `try_send`: when the motion thread is busy, pictures are skipped, never
//! waited for. The motion thread averages the Y plane over 8x8 blocks (640x480 becomes 80x60),
//! compares it with the previous small picture inside the configured region, and counts the
//! blocks whose brightness changed by more than `pixel_delta` after removing the region's mean
//! change (so auto-exposure and lights dimming are not motion). Enough changed blocks raise one
//! event; the detector re-arms after `cooldown` without motion, so a person lingering at the
//! door is one event, not one per frame.

use super::{EventBus, EventKind};
pub use crate::config::MotionSettings;
use crate::media::RawFrame;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant};

/// Each side of a block averaged into one cell of the small picture.
pub const BLOCK: usize = 8;

/// A luma plane averaged over [`BLOCK`]x[`BLOCK`] blocks; partial blocks at the edges are dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmallLuma {
    pub width: usize,
    pub height: usize,
    pub cells: Vec<u8>,
}

impl SmallLuma {
    /// Averages the Y plane of `frame` (`width` x `height`, tightly packed).
    pub fn from_luma(y: &[u8], width: usize, height: usize) -> Self {
        let (small_w, small_h) = (width / BLOCK, height / BLOCK);
        let mut sums = vec![0u32; small_w];
        let mut cells = Vec::with_capacity(small_w * small_h);
        for block_row in 0..small_h {
            sums.fill(0);
            for row in y[block_row * BLOCK * width..].chunks_exact(width).take(BLOCK) {
                for (sum, block) in sums.iter_mut().zip(row.chunks_exact(BLOCK)) {
                    *sum += block.iter().map(|&v| u32::from(v)).sum::<u32>();
                }
            }
            cells.extend(sums.iter().map(|&s| (s / (BLOCK * BLOCK) as u32) as u8));
        }
        Self { width: small_w, height: small_h, cells }
    }

    pub fn from_frame(frame: &RawFrame) -> Self {
        Self::from_luma(frame.y(), frame.width as usize, frame.height as usize)
    }
}

/// The decision logic, fed one small picture at a time with its capture time.
#[derive(Debug, Clone)]
pub struct MotionDetector {
    settings: MotionSettings,
    previous: Option<SmallLuma>,
    /// When the last motion was seen after an event; `None` while armed.
    fired_last_motion: Option<Instant>,
}

impl MotionDetector {
    pub fn new(settings: MotionSettings) -> Self {
        Self { settings, previous: None, fired_last_motion: None }
    }

    /// The share of the region's cells (percent) that changed since the previous picture;
    /// `None` for the first picture or after a size change.
    fn changed_percent(&self, current: &SmallLuma) -> Option<f32> {
        let previous = self
            .previous
            .as_ref()
            .filter(|p| p.width == current.width && p.height == current.height)?;
        let [left, top, width, height] = self.settings.region;
        let span = |start: f32, extent: f32, cells: usize| {
            let from = ((start * cells as f32).floor() as usize).min(cells);
            let to = (((start + extent) * cells as f32).ceil() as usize).clamp(from, cells);
            from..to
        };
        let (columns, rows) = (span(left, width, current.width), span(top, height, current.height));
        let area = columns.len() * rows.len();
        if area == 0 {
            return Some(0.0);
        }
        let differences = || {
            rows.clone().flat_map(|row| {
                let at = row * current.width;
                columns.clone().map(move |col| {
                    i32::from(current.cells[at + col]) - i32::from(previous.cells[at + col])
                })
            })
        };
        let mean = differences().sum::<i32>() / area as i32;
        let threshold = i32::from(self.settings.pixel_delta);
        let changed = differences().filter(|d| (d - mean).abs() > threshold).count();
        Some(changed as f32 * 100.0 / area as f32)
    }

    /// One picture at `now`; returns the changed share (percent) when it raises an event.
    pub fn observe(&mut self, current: SmallLuma, now: Instant) -> Option<f32> {
        let changed = self.changed_percent(&current);
        self.previous = Some(current);
        let moving = changed.is_some_and(|c| c >= self.settings.min_changed_percent);
        match self.fired_last_motion {
            Some(_) if moving => {
                // Motion continuing after an event extends the quiet period it must wait for.
                self.fired_last_motion = Some(now);
                None
            }
            Some(last) => {
                if now.saturating_duration_since(last) >= self.settings.cooldown {
                    self.fired_last_motion = None;
                }
                None
            }
            None if moving => {
                self.fired_last_motion = Some(now);
                changed
            }
            None => None,
        }
    }
}

/// The video thread's side: offers pictures to the motion thread without ever waiting.
#[derive(Clone)]
pub struct MotionTap(SyncSender<Arc<RawFrame>>);

impl MotionTap {
    pub fn offer(&self, frame: &Arc<RawFrame>) {
        match self.0.try_send(frame.clone()) {
            // Busy: this picture is skipped; the next one is compared with the last one seen.
            Ok(()) | Err(TrySendError::Full(_)) => {}
            // The motion thread is gone (shutdown); nothing to do.
            Err(TrySendError::Disconnected(_)) => {}
        }
    }
}

/// Starts the motion thread; it ends when every [`MotionTap`] is dropped.
pub fn spawn(settings: MotionSettings, bus: EventBus) -> std::io::Result<MotionTap> {
    let (tap, frames) = sync_channel(1);
    std::thread::Builder::new()
        .name("camrtc-motion".to_owned())
        .spawn(move || run(settings, &frames, &bus))?;
    Ok(MotionTap(tap))
}

fn run(settings: MotionSettings, frames: &Receiver<Arc<RawFrame>>, bus: &EventBus) {
    let mut detector = MotionDetector::new(settings);
    let mut last_capture: Option<Instant> = None;
    while let Ok(frame) = frames.recv() {
        // A gap (capture stopped and started again) makes the old picture a bad reference.
        if last_capture.is_some_and(|last| {
            frame.captured.instant.saturating_duration_since(last) > Duration::from_secs(2)
        }) {
            detector.previous = None;
        }
        last_capture = Some(frame.captured.instant);
        let small = SmallLuma::from_frame(&frame);
        drop(frame);
        if let Some(changed_percent) =
            detector.observe(small, last_capture.expect("set just above"))
        {
            bus.publish(EventKind::Motion { changed_percent });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::CaptureTime;

    const FRAME: Duration = Duration::from_millis(66);

    fn settings() -> MotionSettings {
        MotionSettings {
            region: [0.0, 0.0, 1.0, 1.0],
            pixel_delta: 20,
            min_changed_percent: 2.0,
            cooldown: Duration::from_secs(3),
        }
    }

    /// A 640x480 grey picture with per-pixel noise and, at (`x`, `y`), a 128x128 square with a
    /// 16-pixel checker pattern (something with texture, like a person's clothes).
    fn picture(square: Option<(usize, usize)>, seed: u32, brightness: u8) -> SmallLuma {
        let (w, h) = (640, 480);
        let mut y = vec![brightness; w * h];
        let mut state = seed.wrapping_mul(2_654_435_761).max(1);
        for v in &mut y {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            *v = v.saturating_add((state % 9) as u8); // sensor noise, ±4 around the mean
        }
        if let Some((sx, sy)) = square {
            for row in sy..sy + 128 {
                for col in sx..sx + 128 {
                    y[row * w + col] =
                        if ((row - sy) / 16 + (col - sx) / 16) % 2 == 0 { 230 } else { 40 };
                }
            }
        }
        SmallLuma::from_luma(&y, w, h)
    }

    #[test]
    fn downscale_averages_blocks() {
        let mut y = vec![0u8; 16 * 8];
        y[..8].fill(64); // one row of the first block
        let small = SmallLuma::from_luma(&y, 16, 8);
        assert_eq!((small.width, small.height), (2, 1));
        assert_eq!(small.cells, vec![8, 0]);
        // Partial blocks are dropped: 20x9 is 2x1 cells.
        let small = SmallLuma::from_luma(&[100; 20 * 9], 20, 9);
        assert_eq!((small.width, small.height, small.cells.clone()), (2, 1, vec![100, 100]));
    }

    #[test]
    fn a_still_noisy_scene_never_fires_nor_does_a_brightness_change() {
        let mut detector = MotionDetector::new(settings());
        let mut now = Instant::now();
        for frame in 0..300 {
            now += FRAME;
            assert_eq!(detector.observe(picture(None, frame, 100), now), None, "frame {frame}");
        }
        // Lights dimming: every cell changes by the same amount.
        now += FRAME;
        assert_eq!(detector.observe(picture(None, 999, 60), now), None);
    }

    #[test]
    fn a_moving_object_fires_once_until_the_cooldown_of_stillness() {
        let mut detector = MotionDetector::new(settings());
        let mut now = Instant::now();
        let mut events = 0;
        let mut step = |detector: &mut MotionDetector, square, seed| {
            now += FRAME;
            usize::from(detector.observe(picture(square, seed, 100), now).is_some())
        };
        for seed in 0..10 {
            events += step(&mut detector, None, seed);
        }
        assert_eq!(events, 0);
        // A square walking across the picture for 5 s: one event.
        for i in 0..75 {
            events += step(&mut detector, Some((i * 6, 200)), 100 + i as u32);
        }
        assert_eq!(events, 1, "continuous motion is one event");
        // It stops in place; stillness shorter than the cooldown, then it moves again: nothing.
        for i in 0..30 {
            events += step(&mut detector, Some((444, 200)), 200 + i);
        }
        for i in 0..10 {
            events += step(&mut detector, Some((444 - i * 7, 300)), 300 + i as u32);
        }
        assert_eq!(events, 1);
        // Still for longer than the cooldown: the next movement is a new event.
        for i in 0..50 {
            events += step(&mut detector, Some((381, 300)), 400 + i);
        }
        assert_eq!(events, 1);
        events += step(&mut detector, Some((100, 100)), 500);
        assert_eq!(events, 2);
    }

    #[test]
    fn motion_outside_the_region_is_ignored() {
        let mut detector =
            MotionDetector::new(MotionSettings { region: [0.5, 0.0, 0.5, 1.0], ..settings() });
        let mut now = Instant::now();
        for i in 0..40 {
            now += FRAME;
            // The square moves in the left half only.
            assert_eq!(detector.observe(picture(Some((i * 4, 100)), i as u32, 100), now), None);
        }
        now += FRAME;
        assert!(detector.observe(picture(Some((500, 100)), 77, 100), now).is_some());
    }

    /// The figure in docs/PERFORMANCE.md:
    /// `cargo test --release --lib -- --ignored --nocapture detection_cost`.
    #[test]
    #[ignore = "a measurement, not a check; run in release"]
    fn detection_cost() {
        use crate::events::sound::{SoundDetector, SoundSettings, level_dbfs};
        let frames: Vec<RawFrame> = (0..16)
            .map(|seed| {
                let mut frame = RawFrame::black(640, 480, CaptureTime::now());
                let mut state = 0x9e37_79b9u32.wrapping_mul(seed + 1);
                for v in &mut frame.i420[..640 * 480] {
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    *v = (state >> 24) as u8;
                }
                frame
            })
            .collect();
        let mut detector = MotionDetector::new(settings());
        let runs = 3000u32;
        let mut now = Instant::now();
        let started = Instant::now();
        for i in 0..runs {
            now += FRAME;
            let small = SmallLuma::from_frame(std::hint::black_box(&frames[i as usize % 16]));
            std::hint::black_box(detector.observe(small, now));
        }
        let per_frame = started.elapsed() / runs;
        let share = per_frame.as_secs_f64() * 15.0 * 100.0;
        println!(
            "motion, 640x480 Y plane: {per_frame:?} per frame = {share:.3}% of one core at 15 fps"
        );

        let chunk: Vec<i16> = (0..960).map(|i| ((i * 7919) % 20000) as i16 - 10000).collect();
        let mut sound = SoundDetector::new(SoundSettings {
            threshold_dbfs: -30.0,
            min_duration: Duration::from_secs(1),
            hold_off: Duration::from_secs(10),
        });
        let runs = 100_000u32;
        let started = Instant::now();
        for _ in 0..runs {
            now += Duration::from_millis(20);
            std::hint::black_box(sound.observe(level_dbfs(std::hint::black_box(&chunk)), now));
        }
        let per_chunk = started.elapsed() / runs;
        let share = per_chunk.as_secs_f64() * 50.0 * 100.0;
        println!("sound, 20 ms chunk at 48 kHz: {per_chunk:?} per chunk = {share:.4}% of one core");
    }

    #[test]
    fn the_tap_never_blocks_the_video_thread() {
        let (tap, frames) = sync_channel(1);
        let tap = MotionTap(tap);
        let frame = Arc::new(RawFrame::black(64, 48, CaptureTime::now()));
        for _ in 0..100 {
            tap.offer(&frame);
        }
        assert_eq!(frames.try_iter().count(), 1, "one slot; the rest were skipped");
    }
}
