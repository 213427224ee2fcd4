//! The arithmetic of ALSA capture, kept pure so it is tested without a sound card: downmixing,
//! when a chunk's first sample was captured, device-name fallbacks and overrun bookkeeping.

use std::time::{Duration, Instant};

/// Averages interleaved frames of `channels` samples into one mono sample each, replacing
/// `mono`'s contents. Averaging (rather than summing) cannot clip, and a microphone wired to only
/// one channel of a stereo pair still comes through, 6 dB quieter.
pub fn downmix_into(interleaved: &[i16], channels: usize, mono: &mut Vec<i16>) {
    mono.clear();
    if channels <= 1 {
        mono.extend_from_slice(interleaved);
        return;
    }
    let divisor = channels as i32;
    mono.extend(interleaved.chunks_exact(channels).map(|frame| {
        let sum: i32 = frame.iter().map(|&s| i32::from(s)).sum();
        // Floor division keeps the result within i16 for any mix of extremes.
        sum.div_euclid(divisor) as i16
    }));
}

/// When the first of `chunk_frames` just-read frames was captured, on the clock of `status_at`:
/// at `status_at` the device held `delay_frames` more frames not yet read, so the chunk's first
/// frame is `delay + chunk` frames older than that moment.
pub fn chunk_start(
    status_at: Duration,
    delay_frames: alsa::pcm::Frames,
    chunk_frames: usize,
    rate: u32,
) -> Duration {
    let frames = u64::try_from(delay_frames).unwrap_or(0) + chunk_frames as u64;
    let nanos = u128::from(frames) * 1_000_000_000 / u128::from(rate.max(1));
    status_at.saturating_sub(Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX)))
}

/// The `plughw:` twin of a `hw:` device name: the same card and device behind ALSA's automatic
/// rate, format and channel conversion. None for names that are not plain `hw:` devices.
pub fn plug_fallback(device: &str) -> Option<String> {
    device.strip_prefix("hw:").map(|rest| format!("plughw:{rest}"))
}

/// Overruns are counted and reported in batches: the first at once, later ones at most every
/// [`XrunLog::INTERVAL`], so a struggling board logs a line per interval, not per period.
#[derive(Debug, Default)]
pub struct XrunLog {
    pub total: u64,
    unreported: u64,
    last_report: Option<Instant>,
}

/// What to log: overruns since the last report, and since capture started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XrunReport {
    pub batch: u64,
    pub total: u64,
}

impl XrunLog {
    pub const INTERVAL: Duration = Duration::from_secs(10);

    /// Records one overrun at `now`; returns a report when one is due.
    pub fn record(&mut self, now: Instant) -> Option<XrunReport> {
        self.total += 1;
        self.unreported += 1;
        self.due(now)
    }

    /// A report of overruns not yet logged, when the interval since the last report has passed.
    pub fn due(&mut self, now: Instant) -> Option<XrunReport> {
        let quiet = self.last_report.is_none_or(|last| now >= last + Self::INTERVAL);
        if self.unreported == 0 || !quiet {
            return None;
        }
        let report = XrunReport { batch: self.unreported, total: self.total };
        self.unreported = 0;
        self.last_report = Some(now);
        Some(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downmix_averages_channels() {
        let mut mono = vec![99; 3];
        downmix_into(&[100, 300, -50, -150, 7, 8], 2, &mut mono);
        assert_eq!(mono, [200, -100, 7]);
        downmix_into(&[i16::MAX, i16::MAX, i16::MIN, i16::MIN], 2, &mut mono);
        assert_eq!(mono, [i16::MAX, i16::MIN]);
        downmix_into(&[i16::MAX, i16::MIN, i16::MIN, i16::MIN, i16::MIN, i16::MIN], 3, &mut mono);
        assert_eq!(mono, [-10923, i16::MIN]);
        // A microphone on the left channel only.
        downmix_into(&[1000, 0, -1000, 0], 2, &mut mono);
        assert_eq!(mono, [500, -500]);
    }

    #[test]
    fn mono_passes_through_and_partial_frames_are_ignored() {
        let mut mono = Vec::new();
        downmix_into(&[1, 2, 3], 1, &mut mono);
        assert_eq!(mono, [1, 2, 3]);
        downmix_into(&[1, 3, 5], 2, &mut mono);
        assert_eq!(mono, [2]);
    }

    #[test]
    fn chunk_start_counts_back_delay_and_chunk() {
        let at = Duration::from_secs(100);
        // 960 read + 480 still queued at 48 kHz: the chunk began 30 ms before the status.
        assert_eq!(chunk_start(at, 480, 960, 48_000), at - Duration::from_millis(30));
        assert_eq!(chunk_start(at, 0, 960, 48_000), at - Duration::from_millis(20));
        // ALSA reports a negative delay only in odd transient states; treat it as empty.
        assert_eq!(chunk_start(at, -5, 960, 48_000), at - Duration::from_millis(20));
        assert_eq!(chunk_start(at, 0, 441, 44_100), at - Duration::from_millis(10));
        assert_eq!(chunk_start(Duration::from_millis(5), 0, 960, 48_000), Duration::ZERO);
    }

    #[test]
    fn hw_names_fall_back_to_plughw() {
        assert_eq!(plug_fallback("hw:1,0").as_deref(), Some("plughw:1,0"));
        assert_eq!(plug_fallback("hw:Loopback,1,0").as_deref(), Some("plughw:Loopback,1,0"));
        assert_eq!(
            plug_fallback("hw:CARD=U0x46d,DEV=0").as_deref(),
            Some("plughw:CARD=U0x46d,DEV=0")
        );
        assert_eq!(plug_fallback("plughw:1,0"), None);
        assert_eq!(plug_fallback("default"), None);
        assert_eq!(plug_fallback("dsnoop:1"), None);
    }

    #[test]
    fn xruns_are_reported_once_per_interval() {
        let start = Instant::now();
        let mut log = XrunLog::default();
        assert_eq!(log.due(start), None);
        assert_eq!(log.record(start), Some(XrunReport { batch: 1, total: 1 }));
        for ms in [10, 20, 3000] {
            assert_eq!(log.record(start + Duration::from_millis(ms)), None);
        }
        assert_eq!(log.due(start + Duration::from_secs(9)), None);
        assert_eq!(log.due(start + XrunLog::INTERVAL), Some(XrunReport { batch: 3, total: 4 }));
        assert_eq!(log.due(start + Duration::from_secs(30)), None);
        assert_eq!(
            log.record(start + Duration::from_secs(31)),
            Some(XrunReport { batch: 1, total: 5 })
        );
    }
}
