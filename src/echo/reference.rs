//! The far-end reference: what the talkback player actually wrote to the speaker, in 10 ms frames
//! stamped with when they reach the loudspeaker, handed to the microphone thread.
//!
//! Both ends only ever try: the player drops frames when the microphone thread is behind or
//! not running, and the microphone thread skips a round when another (stopping) pipeline still
//! holds the receiver. Neither thread ever waits for the other, so a stuck speaker cannot delay
//! the outgoing audio and a stopped pipeline cannot stall playback.

use crate::media::AUDIO_SAMPLE_RATE;
use std::collections::VecDeque;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, TryLockError};
use std::time::{Duration, Instant};

/// Samples in one 10 ms frame at 48 kHz: the unit WebRTC's audio processing works in.
pub const FRAME_SAMPLES: usize = (AUDIO_SAMPLE_RATE / 100) as usize;
/// The length of one frame.
pub const FRAME_DURATION: Duration = Duration::from_millis(10);
/// Frames waiting for the microphone thread: 1 s, more than the speaker's device buffer holds,
/// so a normal backlog never overflows while a stopped microphone thread costs only this much.
const QUEUE_FRAMES: usize = 100;
/// Frames that reached the speaker this long before the microphone frame being processed are
/// of no use as a reference (AEC3's delay estimator looks back about this far) and are dropped:
/// they were queued while no microphone thread ran.
const STALE_AFTER: Duration = Duration::from_millis(500);

/// One 10 ms frame of far-end (speaker) audio.
#[derive(Debug, Clone, PartialEq)]
pub struct FarEndFrame {
    /// When the first sample is expected to leave the loudspeaker.
    pub play_at: Instant,
    /// [`FRAME_SAMPLES`] mono samples, after volume: exactly what the device was given.
    pub samples: Vec<i16>,
}

/// The talkback player's end.
#[derive(Debug, Clone)]
pub struct FarEndTap {
    tx: SyncSender<FarEndFrame>,
    /// Samples of a frame not yet complete (the player's chunks need not be 10 ms multiples).
    partial: Vec<i16>,
    partial_at: Option<Instant>,
}

/// The microphone thread's end, shared by successive pipelines (the factory keeps it).
#[derive(Debug, Clone)]
pub struct FarEndSource(Arc<Mutex<Receiver<FarEndFrame>>>);

/// A connected tap and source.
pub fn far_end_channel() -> (FarEndTap, FarEndSource) {
    let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE_FRAMES);
    let tap = FarEndTap { tx, partial: Vec::with_capacity(FRAME_SAMPLES), partial_at: None };
    (tap, FarEndSource(Arc::new(Mutex::new(rx))))
}

impl FarEndTap {
    /// Offers samples that were just written to the speaker, whose first sample plays at
    /// `play_at`. Never blocks; returns how many whole frames were dropped because the queue
    /// was full (nobody is reading, or the reader is behind).
    pub fn offer(&mut self, samples: &[i16], play_at: Instant) -> usize {
        let mut dropped = 0;
        for (i, &sample) in samples.iter().enumerate() {
            if self.partial.is_empty() {
                self.partial_at = Some(play_at + sample_offset(i));
            }
            self.partial.push(sample);
            if self.partial.len() == FRAME_SAMPLES {
                let frame = FarEndFrame {
                    play_at: self.partial_at.take().unwrap_or(play_at),
                    samples: std::mem::replace(
                        &mut self.partial,
                        Vec::with_capacity(FRAME_SAMPLES),
                    ),
                };
                match self.tx.try_send(frame) {
                    Ok(()) | Err(TrySendError::Disconnected(_)) => {}
                    Err(TrySendError::Full(_)) => dropped += 1,
                }
            }
        }
        dropped
    }

    /// Forgets a partial frame: the next samples do not continue it (the speaker went idle).
    pub fn gap(&mut self) {
        self.partial.clear();
        self.partial_at = None;
    }
}

fn sample_offset(samples: usize) -> Duration {
    Duration::from_nanos(samples as u64 * 1_000_000_000 / u64::from(AUDIO_SAMPLE_RATE))
}

/// The microphone thread's view: far-end frames handed out in step with capture time.
#[derive(Debug)]
pub struct FarEndReader {
    source: FarEndSource,
    pending: VecDeque<FarEndFrame>,
}

impl FarEndReader {
    pub fn new(source: FarEndSource) -> Self {
        Self { source, pending: VecDeque::new() }
    }

    /// The oldest frame that has started playing by `until`, if any. Frames played long
    /// before `until` are discarded on the way.
    pub fn next_due(&mut self, until: Instant) -> Option<FarEndFrame> {
        self.pull();
        while let Some(frame) = self.pending.front() {
            if frame.play_at > until {
                return None;
            }
            let frame = self.pending.pop_front()?;
            if frame.play_at + STALE_AFTER >= until {
                return Some(frame);
            }
        }
        None
    }

    fn pull(&mut self) {
        let receiver = match self.source.0.try_lock() {
            Ok(receiver) => receiver,
            // A stopping pipeline's thread still holds it: try again next frame.
            Err(TryLockError::WouldBlock) => return,
            // The receiver is only read under the lock; a panic elsewhere leaves it usable.
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
        };
        for frame in receiver.try_iter() {
            if self.pending.len() == QUEUE_FRAMES {
                self.pending.pop_front();
            }
            self.pending.push_back(frame);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_cut_into_10_ms_frames_stamped_by_position() {
        let (mut tap, source) = far_end_channel();
        let t0 = Instant::now();
        let samples: Vec<i16> = (0..1200).map(|i| i as i16).collect();
        assert_eq!(tap.offer(&samples, t0), 0);
        let mut reader = FarEndReader::new(source);
        let far = t0 + Duration::from_millis(100);
        let first = reader.next_due(far).unwrap();
        assert_eq!(first.play_at, t0);
        assert_eq!(first.samples[0], 0);
        let second = reader.next_due(far).unwrap();
        assert_eq!(second.play_at, t0 + FRAME_DURATION);
        assert_eq!(second.samples[0], 480);
        // 240 samples wait for the rest of their frame.
        assert_eq!(reader.next_due(far), None);
        assert_eq!(tap.offer(&[7; 240], t0 + Duration::from_millis(25)), 0);
        let third = reader.next_due(far).unwrap();
        assert_eq!(third.play_at, t0 + Duration::from_millis(20));
        assert_eq!((third.samples[0], third.samples[479]), (960, 7));
    }

    #[test]
    fn frames_are_held_until_they_play_and_dropped_when_stale() {
        let (mut tap, source) = far_end_channel();
        let t0 = Instant::now();
        tap.offer(&[1; FRAME_SAMPLES], t0);
        tap.offer(&[2; FRAME_SAMPLES], t0 + Duration::from_secs(2));
        let mut reader = FarEndReader::new(source);
        assert_eq!(reader.next_due(t0 - Duration::from_millis(1)), None);
        // At t0 + 2 s the first frame is 2 s old: useless as a reference.
        let due = reader.next_due(t0 + Duration::from_secs(2)).unwrap();
        assert_eq!(due.samples[0], 2);
    }

    #[test]
    fn a_full_queue_drops_instead_of_blocking() {
        let (mut tap, _source) = far_end_channel();
        let dropped = tap.offer(&vec![0; FRAME_SAMPLES * (QUEUE_FRAMES + 3)], Instant::now());
        assert_eq!(dropped, 3);
    }

    #[test]
    fn a_gap_discards_the_partial_frame() {
        let (mut tap, source) = far_end_channel();
        let t0 = Instant::now();
        tap.offer(&[5; 100], t0);
        tap.gap();
        tap.offer(&[6; FRAME_SAMPLES], t0 + Duration::from_secs(1));
        let mut reader = FarEndReader::new(source);
        let frame = reader.next_due(t0 + Duration::from_secs(1)).unwrap();
        assert_eq!(frame.samples, vec![6; FRAME_SAMPLES]);
    }
}
