//! Plays a talker's Opus packets on the ALSA playback device, on a thread of its own: decoding
//! and the blocking ALSA writes never run on the tokio runtime, and a speaker that is missing or
//! unplugged is reopened with the same backoff as capture devices while viewers and capture carry
//! on untouched.

use super::jitter::{JitterBuffer, Slot};
use crate::config::TalkbackConfig;
use crate::echo::FarEndTap;
use crate::media::{AUDIO_CHUNK_SAMPLES, AUDIO_SAMPLE_RATE};
use crate::source::alsa::set_hw_params;
use crate::source::supervisor::Backoff;
use alsa::Direction;
use alsa::pcm::{Frames, PCM};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Packets queued for the playback thread; more are dropped rather than block the network side.
const QUEUE_PACKETS: usize = 100;
/// No packet for this long ends a burst: what is buffered is played out.
const BURST_GAP: Duration = Duration::from_millis(200);
/// The device buffer: room for the jitter buffer's backlog without blocking the thread for long.
const BUFFER_PERIODS: Frames = 10;

/// Why the speaker could not be opened or written to.
#[derive(Debug, thiserror::Error)]
pub enum PlayerError {
    /// The device name does not exist, is busy, or is not permitted.
    #[error("cannot open ALSA playback device {device:?}: {source}")]
    Open { device: String, source: alsa::Error },
    /// The device refuses 48 kHz signed 16-bit interleaved playback.
    #[error("ALSA device {device:?} cannot play {what}: {source}")]
    Configure { device: String, what: &'static str, source: alsa::Error },
    /// Writing failed in a way recovery cannot fix (the device was unplugged).
    #[error("ALSA playback on {device:?} failed: {source}")]
    Write { device: String, source: alsa::Error },
    /// The Opus decoder could not be created.
    #[error("cannot create the Opus decoder: {0}")]
    Decoder(opus::Error),
    /// The playback thread could not be started.
    #[error("cannot start the talkback thread: {0}")]
    Thread(std::io::Error),
}

/// What the network side hands the playback thread.
#[derive(Debug)]
pub enum Input {
    /// One Opus packet of the talker's stream, with its RTP sequence number.
    Packet { seq: u16, payload: Vec<u8> },
    /// The talker stopped: play out what is buffered.
    End,
}

/// The network side's handle: never blocks.
#[derive(Debug, Clone)]
pub struct PlayerSender(SyncSender<Input>);

impl PlayerSender {
    /// Queues `input`; returns false when the playback thread is behind or gone and it was
    /// dropped.
    pub fn send(&self, input: Input) -> bool {
        match self.0.try_send(input) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
        }
    }
}

/// The playback thread; dropping every [`PlayerSender`] and the player ends it.
#[derive(Debug)]
pub struct Player {
    sender: PlayerSender,
    thread: Option<JoinHandle<()>>,
}

impl Player {
    /// Starts the playback thread for `config.device`. The device is opened on the thread, and
    /// retried there, so a missing speaker is not an error here.
    pub fn start(config: &TalkbackConfig) -> Result<Self, PlayerError> {
        Self::start_with_far_end(config, None)
    }

    /// Like [`Player::start`], and every sample written to the speaker is also offered to
    /// `far_end`, stamped with when it will be heard: the echo canceller's reference.
    pub fn start_with_far_end(
        config: &TalkbackConfig,
        far_end: Option<FarEndTap>,
    ) -> Result<Self, PlayerError> {
        let decoder = opus::Decoder::new(AUDIO_SAMPLE_RATE, opus::Channels::Mono)
            .map_err(PlayerError::Decoder)?;
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE_PACKETS);
        let depth = (config.jitter_ms / 20).max(1) as usize;
        let playback = Playback {
            device: config.device.clone(),
            volume: config.volume as f32,
            decoder,
            jitter: JitterBuffer::new(depth),
            pcm: vec![0; AUDIO_CHUNK_SAMPLES],
            far_end,
        };
        let thread = std::thread::Builder::new()
            .name("talkback".to_owned())
            .spawn(move || playback.run(&rx, Backoff::for_devices()))
            .map_err(PlayerError::Thread)?;
        Ok(Self { sender: PlayerSender(tx), thread: Some(thread) })
    }

    pub fn sender(&self) -> PlayerSender {
        self.sender.clone()
    }

    /// Ends the thread once every other sender is gone, after playing out what is queued.
    pub fn stop(mut self) {
        self.join();
    }

    fn join(&mut self) {
        let (tx, _) = std::sync::mpsc::sync_channel(0);
        // Replacing our sender drops it, so the thread sees the channel close.
        self.sender = PlayerSender(tx);
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the talkback thread panicked");
        }
    }
}

impl Drop for Player {
    fn drop(&mut self) {
        self.join();
    }
}

struct Playback {
    device: String,
    volume: f32,
    decoder: opus::Decoder,
    jitter: JitterBuffer,
    pcm: Vec<i16>,
    far_end: Option<FarEndTap>,
}

impl Playback {
    fn run(mut self, rx: &Receiver<Input>, mut backoff: Backoff) {
        let mut reported: Option<String> = None;
        loop {
            let error = match Speaker::open(&self.device) {
                Ok(mut speaker) => {
                    backoff.reset();
                    if reported.take().is_some() {
                        tracing::info!(device = %self.device, "talkback speaker is back");
                    }
                    match self.play(&mut speaker, rx) {
                        Ok(()) => return,
                        Err(error) => error,
                    }
                }
                Err(error) => error,
            };
            let message = error.to_string();
            if reported.as_deref() != Some(message.as_str()) {
                tracing::warn!(%error, "talkback speaker unavailable; retrying, viewers unaffected");
                reported = Some(message);
            }
            // Talkers' packets are discarded meanwhile, so none play late when the speaker returns.
            let until = Instant::now() + backoff.next_delay();
            while let Some(left) = until.checked_duration_since(Instant::now()) {
                match rx.recv_timeout(left) {
                    Ok(_) => {}
                    Err(RecvTimeoutError::Timeout) => break,
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            }
            self.jitter = JitterBuffer::new(self.jitter.depth());
        }
    }

    /// Plays until the channel closes (`Ok`) or the device fails (`Err`).
    fn play(&mut self, speaker: &mut Speaker, rx: &Receiver<Input>) -> Result<(), PlayerError> {
        loop {
            let closed = match rx.recv_timeout(BURST_GAP) {
                Ok(Input::Packet { seq, payload }) => {
                    self.jitter.push(seq, payload);
                    false
                }
                Ok(Input::End) | Err(RecvTimeoutError::Timeout) => {
                    self.jitter.finish();
                    false
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.jitter.finish();
                    true
                }
            };
            while let Some(slot) = self.jitter.pop() {
                let decoded = match slot {
                    Slot::Packet(payload) => self.decoder.decode(&payload, &mut self.pcm, false),
                    // An empty packet asks the decoder to conceal the loss.
                    Slot::Lost => self.decoder.decode(&[], &mut self.pcm, false),
                };
                let samples = match decoded {
                    Ok(samples) => samples,
                    Err(error) => {
                        tracing::debug!(%error, "undecodable talkback packet skipped");
                        continue;
                    }
                };
                apply_volume(&mut self.pcm[..samples], self.volume);
                speaker.write(&self.pcm[..samples])?;
                if let Some(tap) = &mut self.far_end {
                    // Never waits: frames the microphone thread is not taking are dropped.
                    tap.offer(&self.pcm[..samples], speaker.play_at(samples));
                }
            }
            if self.jitter.is_empty()
                && let Some(tap) = &mut self.far_end
            {
                // The speaker may run dry before more comes: a partial frame must not be
                // completed with samples that play later.
                tap.gap();
            }
            if closed {
                speaker.drain();
                return Ok(());
            }
        }
    }
}

/// Scales samples by `volume`, clipping rather than wrapping.
pub fn apply_volume(samples: &mut [i16], volume: f32) {
    if volume == 1.0 {
        return;
    }
    for sample in samples {
        *sample = (f32::from(*sample) * volume).round().clamp(-32768.0, 32767.0) as i16;
    }
}

/// `Frames` is a C long: 32 bits on armhf, 64 elsewhere (where a plain `i64::from` is a lint).
fn widen(frames: impl Into<i64>) -> i64 {
    frames.into()
}

/// An open ALSA playback device at 48 kHz.
struct Speaker {
    pcm: PCM,
    device: String,
    channels: usize,
    interleaved: Vec<i16>,
}

impl Speaker {
    fn open(device: &str) -> Result<Self, PlayerError> {
        let pcm = PCM::new(device, Direction::Playback, false)
            .map_err(|source| PlayerError::Open { device: device.to_owned(), source })?;
        let configure = |what| {
            let device = device.to_owned();
            move |source| PlayerError::Configure { device, what, source }
        };
        let channels = set_hw_params(&pcm, BUFFER_PERIODS)
            .map_err(|(what, source)| configure(what)(source))?
            .channels
            .max(1) as usize;
        tracing::info!(device, channels, "talkback speaker opened at 48000 Hz");
        Ok(Self { pcm, device: device.to_owned(), channels, interleaved: Vec::new() })
    }

    /// Writes mono samples, copied to every channel the device has.
    fn write(&mut self, mono: &[i16]) -> Result<(), PlayerError> {
        self.interleaved.clear();
        for &sample in mono {
            self.interleaved.extend(std::iter::repeat_n(sample, self.channels));
        }
        let mut written = 0;
        let mut recovered = false;
        while written < mono.len() {
            let result = self
                .pcm
                .io_i16()
                .and_then(|io| io.writei(&self.interleaved[written * self.channels..]));
            match result {
                Ok(frames) => written += frames,
                // An underrun between bursts is normal: prepare and go on, once per write.
                Err(error) if !recovered => {
                    recovered = true;
                    self.pcm.try_recover(error, true).map_err(|source| PlayerError::Write {
                        device: self.device.clone(),
                        source,
                    })?;
                }
                Err(source) => {
                    return Err(PlayerError::Write { device: self.device.clone(), source });
                }
            }
        }
        Ok(())
    }

    /// When the first of the `written` samples just written will leave the speaker: after what
    /// the device still holds ahead of them. Falls back to now when the device cannot say.
    fn play_at(&self, written: usize) -> Instant {
        let now = Instant::now();
        let queued = self.pcm.delay().map(widen).unwrap_or(0);
        let ahead = (queued - written as i64).max(0) as u64;
        now + Duration::from_nanos(ahead * 1_000_000_000 / u64::from(AUDIO_SAMPLE_RATE))
    }

    /// Lets what is in the device buffer play before closing.
    fn drain(&self) {
        if let Err(error) = self.pcm.drain() {
            tracing::debug!(%error, "talkback drain");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_scales_and_clips() {
        let mut samples = [1000, -1000, 20_000, -20_000];
        apply_volume(&mut samples, 2.0);
        assert_eq!(samples, [2000, -2000, 32767, -32768]);
        apply_volume(&mut samples, 0.0);
        assert_eq!(samples, [0; 4]);
    }

    #[test]
    fn a_missing_speaker_is_not_an_error_at_start_and_the_thread_ends_cleanly() {
        let config = TalkbackConfig {
            device: "camrtc-no-such-speaker".to_owned(),
            ..TalkbackConfig::default()
        };
        let player = Player::start(&config).unwrap();
        let sender = player.sender();
        assert!(sender.send(Input::Packet { seq: 1, payload: vec![0xf8, 0xff, 0xfe] }));
        drop(sender);
        player.stop();
    }
}
