//! Microphone capture through ALSA (`alsa` crate): 48 kHz signed 16-bit, downmixed to mono, read
//! in 20 ms chunks on the pipeline's audio thread, each stamped with when its first sample was
//! captured on the same clock as video.
//!
//! The device is opened exactly as named (`default`, `hw:1,0`, `plughw:…`, or any PCM from
//! `camrtc devices`). A `hw:` device that cannot do 48 kHz S16 is reopened as its `plughw:` twin,
//! so ALSA converts rate and format rather than us.

pub mod devices;
pub mod frames;

use self::frames::{XrunLog, XrunReport, chunk_start, downmix_into, plug_fallback};
use super::clock::{MonotonicAnchor, timespec_duration};
use super::{AudioSource, SourceError};
use crate::media::{AUDIO_CHUNK_SAMPLES, AUDIO_SAMPLE_RATE, PcmChunk};
use alsa::pcm::{Access, Format, Frames, HwParams, PCM, TstampType};
use alsa::{Direction, ValueOr};
use nix::errno::Errno;
use std::time::{Duration, Instant};

/// Periods in the device buffer: 200 ms of slack before an overrun, for a thread that also
/// encodes and may be descheduled on a busy single-board computer.
const BUFFER_PERIODS: Frames = 10;
/// No audio for this long means the device stalled (a USB microphone that hung rather than
/// disappeared); the supervisor reopens it.
const STALL_TIMEOUT_MS: u32 = 2000;
/// Overruns in a row without one good chunk: the device is not recoverable in place.
const MAX_CONSECUTIVE_XRUNS: u32 = 50;

/// Why ALSA capture could not start or continue.
#[derive(Debug, thiserror::Error)]
pub enum AlsaError {
    /// The device name does not exist, is busy, or is not permitted; `detail` is what alsa-lib
    /// itself said about it, if anything.
    #[error("cannot open ALSA capture device {device:?}: {source}{detail}")]
    Open { device: String, source: alsa::Error, detail: String },
    /// The device exists but refuses 48 kHz signed 16-bit interleaved capture, even through
    /// `plughw`.
    #[error("ALSA device {device:?} cannot capture {what}: {source}")]
    Configure { device: String, what: &'static str, source: alsa::Error },
    /// Reading failed in a way recovery cannot fix: the device was unplugged (ENODEV) or broke.
    #[error("ALSA capture from {device:?} failed: {source}")]
    Read { device: String, source: alsa::Error },
    /// The device delivered nothing for [`STALL_TIMEOUT_MS`].
    #[error("ALSA device {device:?} delivered no audio for {STALL_TIMEOUT_MS} ms")]
    Stalled { device: String },
    /// Overruns kept happening with no audio in between.
    #[error("ALSA device {device:?}: {MAX_CONSECUTIVE_XRUNS} overruns in a row")]
    XrunStorm { device: String },
    /// The ALSA configuration could not be enumerated (for `camrtc devices`).
    #[error("cannot list ALSA devices: {0}")]
    List(alsa::Error),
}

impl From<AlsaError> for SourceError {
    fn from(error: AlsaError) -> Self {
        match error {
            AlsaError::Open { .. } | AlsaError::Configure { .. } | AlsaError::List(_) => {
                SourceError::Unavailable(error.to_string())
            }
            _ => SourceError::Capture(error.to_string()),
        }
    }
}

/// An open ALSA capture stream delivering [`PcmChunk`]s.
pub struct AlsaSource {
    pcm: PCM,
    /// The name actually opened (the `plughw:` twin after a fallback).
    device: String,
    channels: usize,
    rate: u32,
    interleaved: Vec<i16>,
    xruns: XrunLog,
    /// Set for PCMs with no sound card behind them (ALSA's `file` or `null` plugins): nothing
    /// paces their reads, so chunks are released in real time from this anchor instead.
    clockless: Option<MonotonicAnchor>,
    chunks: u64,
}

impl std::fmt::Debug for AlsaSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlsaSource")
            .field("device", &self.device)
            .field("channels", &self.channels)
            .field("rate", &self.rate)
            .finish_non_exhaustive()
    }
}

/// What [`set_hw_params`] got from the device.
#[derive(Debug, Clone, Copy)]
pub struct HwSetup {
    pub channels: u32,
    pub period: Frames,
    pub buffer: Frames,
}

/// Sets 48 kHz signed 16-bit interleaved, the fewest channels the device offers, 20 ms periods
/// and a buffer of `periods` of them: the format capture and the talkback speaker share. On
/// failure, says what the device refused.
pub fn set_hw_params(pcm: &PCM, periods: Frames) -> Result<HwSetup, (&'static str, alsa::Error)> {
    let refused = |what| move |source| (what, source);
    let hw = HwParams::any(pcm).map_err(refused("at all"))?;
    hw.set_access(Access::RWInterleaved).map_err(refused("interleaved"))?;
    hw.set_format(Format::s16()).map_err(refused("signed 16-bit samples"))?;
    hw.set_rate(AUDIO_SAMPLE_RATE, ValueOr::Nearest).map_err(refused("at 48000 Hz"))?;
    // Mono when the device can, otherwise downmixed (capture) or duplicated (playback).
    let channels = hw.set_channels_near(1).map_err(refused("with 1 channel"))?;
    let chunk = AUDIO_CHUNK_SAMPLES as Frames;
    let period =
        hw.set_period_size_near(chunk, ValueOr::Nearest).map_err(refused("20 ms periods"))?;
    let buffer = hw
        .set_buffer_size_near(period.max(chunk) * periods)
        .map_err(refused("a buffer of several periods"))?;
    pcm.hw_params(&hw).map_err(refused("with these parameters"))?;
    Ok(HwSetup { channels, period, buffer })
}

impl AlsaSource {
    /// Opens `device` for 48 kHz capture, falling back from `hw:` to `plughw:` when the hardware
    /// needs conversion.
    pub fn open(device: &str) -> Result<Self, AlsaError> {
        match Self::open_exact(device) {
            Err(error @ AlsaError::Configure { .. }) => {
                let Some(plug) = plug_fallback(device) else { return Err(error) };
                tracing::info!(%error, fallback = %plug, "using ALSA's conversion instead");
                Self::open_exact(&plug)
            }
            other => other,
        }
    }

    fn open_exact(device: &str) -> Result<Self, AlsaError> {
        // alsa-lib prints its reasons to stderr, on every retry of a missing device; collect
        // them on this thread instead and put them in the one error the supervisor logs.
        let alsa_says = alsa::Output::local_error_handler().ok();
        let pcm = PCM::new(device, Direction::Capture, false).map_err(|source| {
            let said = alsa_says.map(|output| output.borrow().to_string()).unwrap_or_default();
            AlsaError::Open { device: device.to_owned(), source, detail: alsa_detail(&said) }
        })?;
        let configure = |what| {
            let device = device.to_owned();
            move |source| AlsaError::Configure { device, what, source }
        };
        let HwSetup { channels, period, buffer } = set_hw_params(&pcm, BUFFER_PERIODS)
            .map_err(|(what, source)| configure(what)(source))?;
        {
            let sw = pcm.sw_params_current().map_err(configure("software parameters"))?;
            // Status timestamps on CLOCK_MONOTONIC: the clock Instant and V4L2 buffers use.
            sw.set_tstamp_mode(true).map_err(configure("timestamps"))?;
            sw.set_tstamp_type(TstampType::Monotonic).map_err(configure("monotonic timestamps"))?;
            sw.set_avail_min(period).map_err(configure("a wake-up threshold"))?;
            pcm.sw_params(&sw).map_err(configure("software parameters"))?;
        }
        let card = pcm.info().map(|info| info.get_card()).unwrap_or(-1);
        let read_error = |source| AlsaError::Read { device: device.to_owned(), source };
        pcm.prepare().map_err(read_error)?;
        pcm.start().map_err(read_error)?;
        tracing::info!(
            device,
            channels,
            period_frames = period,
            buffer_frames = buffer,
            card,
            "ALSA capture opened at 48000 Hz"
        );
        Ok(Self {
            pcm,
            device: device.to_owned(),
            channels: channels.max(1) as usize,
            rate: AUDIO_SAMPLE_RATE,
            interleaved: vec![0; AUDIO_CHUNK_SAMPLES * channels.max(1) as usize],
            xruns: XrunLog::default(),
            clockless: (card < 0).then(MonotonicAnchor::now),
            chunks: 0,
        })
    }

    /// The name of the device actually capturing.
    pub fn device(&self) -> &str {
        &self.device
    }

    /// Overruns recovered from since the device was opened.
    pub fn xruns(&self) -> u64 {
        self.xruns.total
    }

    /// Reads exactly one chunk of interleaved frames, recovering from overruns.
    fn read_chunk(&mut self) -> Result<(), AlsaError> {
        let mut filled = 0;
        let mut consecutive_xruns = 0;
        while filled < AUDIO_CHUNK_SAMPLES {
            if self.clockless.is_none() {
                match self.pcm.wait(Some(STALL_TIMEOUT_MS)) {
                    Ok(true) => {}
                    Ok(false) => return Err(AlsaError::Stalled { device: self.device.clone() }),
                    Err(error) => {
                        self.recover(error, &mut consecutive_xruns)?;
                        filled = 0;
                        continue;
                    }
                }
            }
            let read = match self.pcm.io_i16() {
                Ok(io) => io.readi(&mut self.interleaved[filled * self.channels..]),
                Err(source) => return Err(self.read_error(source)),
            };
            match read {
                Ok(frames) => filled += frames,
                Err(error) => {
                    self.recover(error, &mut consecutive_xruns)?;
                    // The samples before an overrun are no longer contiguous with the next ones.
                    filled = 0;
                }
            }
        }
        Ok(())
    }

    /// Gets the stream running again after an overrun or a suspend, or says why it cannot.
    fn recover(&mut self, error: alsa::Error, consecutive: &mut u32) -> Result<(), AlsaError> {
        match error.errno() {
            e if e == Errno::EINTR as i32 || e == Errno::EAGAIN as i32 => Ok(()),
            e if e == Errno::EPIPE as i32 || e == Errno::ESTRPIPE as i32 => {
                *consecutive += 1;
                if *consecutive > MAX_CONSECUTIVE_XRUNS {
                    return Err(AlsaError::XrunStorm { device: self.device.clone() });
                }
                let report = self.xruns.record(Instant::now());
                self.log_xruns(report);
                self.pcm.try_recover(error, true).map_err(|source| self.read_error(source))?;
                self.pcm.start().map_err(|source| self.read_error(source))
            }
            _ => Err(self.read_error(error)),
        }
    }

    fn log_xruns(&self, report: Option<XrunReport>) {
        if let Some(report) = report {
            tracing::warn!(
                device = %self.device,
                overruns = report.batch,
                total = report.total,
                "audio capture overran (the audio thread fell behind); recovered"
            );
        }
    }

    fn read_error(&self, source: alsa::Error) -> AlsaError {
        AlsaError::Read { device: self.device.clone(), source }
    }

    fn next(&mut self) -> Result<PcmChunk, AlsaError> {
        self.read_chunk()?;
        let mut samples = Vec::with_capacity(AUDIO_CHUNK_SAMPLES);
        downmix_into(&self.interleaved, self.channels, &mut samples);
        let captured = match self.clockless {
            Some(anchor) => {
                let chunk = Duration::from_secs(AUDIO_CHUNK_SAMPLES as u64) / self.rate;
                let start = chunk * u32::try_from(self.chunks).unwrap_or(u32::MAX);
                // Release the chunk when it would have finished being recorded in real time.
                let due = anchor.instant + start + chunk;
                std::thread::sleep(due.saturating_duration_since(Instant::now()));
                anchor.after(start)
            }
            None => {
                let status = self.pcm.status().map_err(|source| self.read_error(source))?;
                let anchor = MonotonicAnchor::now();
                let stamp = status.get_htstamp();
                let at = timespec_duration(stamp.tv_sec, stamp.tv_nsec);
                // Plugins without timestamps report zero: the status was taken just now.
                let at = if at.is_zero() { anchor.monotonic } else { at };
                let start = chunk_start(at, status.get_delay(), AUDIO_CHUNK_SAMPLES, self.rate);
                anchor.capture_time(start)
            }
        };
        self.chunks += 1;
        let report = self.xruns.due(Instant::now());
        self.log_xruns(report);
        Ok(PcmChunk { samples, captured })
    }
}

/// alsa-lib's messages as one parenthesised line, or nothing.
fn alsa_detail(said: &str) -> String {
    let lines: Vec<&str> = said.lines().map(str::trim).filter(|line| !line.is_empty()).collect();
    if lines.is_empty() { String::new() } else { format!(" ({})", lines.join("; ")) }
}

impl AudioSource for AlsaSource {
    fn next_chunk(&mut self) -> Result<PcmChunk, SourceError> {
        self.next().map_err(SourceError::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_device_is_named_with_alsa_lib_reasons_and_nothing_on_stderr() {
        let error = AlsaSource::open("hw:CARD=camrtc_no_such_card,DEV=0").unwrap_err();
        assert!(matches!(error, AlsaError::Open { .. }), "{error:?}");
        let message = error.to_string();
        assert!(
            message.starts_with(
                "cannot open ALSA capture device \"hw:CARD=camrtc_no_such_card,DEV=0\": "
            ),
            "{message}"
        );
        // alsa-lib explains which part of the name it could not resolve.
        assert!(message.contains("camrtc_no_such_card") && message.contains(" ("), "{message}");
        assert!(matches!(SourceError::from(error), SourceError::Unavailable(_)));
    }

    #[test]
    fn alsa_lib_messages_become_one_line() {
        assert_eq!(alsa_detail(""), "");
        assert_eq!(alsa_detail("a: b\n\n c: d \n"), " (a: b; c: d)");
    }
}
