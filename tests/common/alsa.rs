//! Sound without a sound card: ALSA's `file` PCM plugin over the `null` PCM reads capture data
//! from a raw file, so the daemon's real ALSA capture path runs on any build machine.

use camrtc::config::{AudioSourceKind, Config};
use std::f64::consts::TAU;
use std::path::{Path, PathBuf};

/// Writes `seconds` of a `freq_hz` sine at -12 dBFS as raw interleaved S16LE, 48 kHz, with the
/// same signal in each of `channels` channels.
pub fn write_tone(path: &Path, freq_hz: f64, seconds: u32, channels: usize) {
    write_tone_at(path, freq_hz, seconds, channels, 48_000);
}

/// [`write_tone`] at another sample rate.
pub fn write_tone_at(path: &Path, freq_hz: f64, seconds: u32, channels: usize, rate: u32) {
    let peak = 0.25 * f64::from(i16::MAX);
    let mut bytes = Vec::new();
    for i in 0..rate as usize * seconds as usize {
        let sample = ((TAU * freq_hz * i as f64 / f64::from(rate)).sin() * peak).round() as i16;
        for _ in 0..channels {
            bytes.extend_from_slice(&sample.to_le_bytes());
        }
    }
    std::fs::write(path, bytes).expect("write the tone file");
}

/// Writes an ALSA configuration (the system one plus a capture PCM `pcm_name` serving `infile`)
/// into `dir` and points this process's ALSA at it.
///
/// Must run before anything in the process touches ALSA or starts a thread that reads the
/// environment: call it first thing in a test binary's only test.
pub fn use_file_pcm(dir: &Path, pcm_name: &str, infile: &Path) -> PathBuf {
    let config = dir.join("asound.conf");
    let text = format!(
        "</usr/share/alsa/alsa.conf>\n\
         pcm.{pcm_name} {{\n  type file\n  slave.pcm \"null\"\n  file \"/dev/null\"\n  \
         infile \"{}\"\n  format \"raw\"\n}}\n",
        infile.display()
    );
    std::fs::write(&config, text).expect("write the ALSA configuration");
    // SAFETY: the caller runs this before any other thread exists that could read the
    // environment concurrently (see above).
    unsafe { std::env::set_var("ALSA_CONFIG_PATH", &config) };
    config
}

/// Writes an ALSA configuration with a playback PCM `camrtc_speaker` that stores raw S16 mono
/// samples in `outfile`, and points this process's ALSA at it. Same precondition as
/// [`use_file_pcm`]. The file lags what was written by one device buffer until the device is
/// closed: the plugin writes out only what leaves its buffer.
pub fn use_file_speaker(dir: &Path, outfile: &Path) -> PathBuf {
    let config = dir.join("asound.conf");
    let text = format!(
        "</usr/share/alsa/alsa.conf>\npcm.camrtc_speaker {{\n  type file\n  slave.pcm \"null\"\n  \
         file \"{}\"\n  format \"raw\"\n}}\n",
        outfile.display()
    );
    std::fs::write(&config, text).expect("write the ALSA configuration");
    // SAFETY: as in use_file_pcm, the caller runs this before any other thread exists.
    unsafe { std::env::set_var("ALSA_CONFIG_PATH", &config) };
    config
}

/// The samples `use_file_speaker`'s device has played so far.
pub fn played_samples(outfile: &Path) -> Vec<i16> {
    let bytes = std::fs::read(outfile).unwrap_or_default();
    bytes.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect()
}

/// A tone's frequency from its zero crossings.
pub fn zero_crossing_hz(samples: &[i16]) -> f64 {
    let crossings = samples.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
    crossings as f64 / 2.0 / (samples.len() as f64 / 48_000.0)
}

/// The demo config with ALSA capture from `device` and the smallest, slowest picture (the VM runs
/// the video encoder and decoder several times slower).
pub fn config(device: &str) -> Config {
    let mut config = super::demo_config(256, 144);
    config.video.fps = 5;
    config.video.bitrate_kbps = 200;
    config.audio.source = AudioSourceKind::Alsa;
    config.audio.device = device.to_owned();
    config
}

/// A runtime built after [`use_file_pcm`] has set the environment (tests using it are plain
/// `#[test]`s for that reason).
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Asserts that decoded audio carries `hz` at about -12 dBFS; returns the measured frequency.
/// The level is judged by RMS, which one click at a capture discontinuity (an overrun on a slow
/// machine) cannot move the way it moves the peak.
pub fn assert_tone(received: &super::whep_client::Received, hz: f64) -> f64 {
    let measured = received.tone_hz();
    assert!((measured - hz).abs() < 5.0, "tone measured at {measured:.1} Hz, expected {hz}");
    // Skip the decoder's first 100 ms, as tone_hz does.
    let samples = &received.audio[received.audio.len().min(4800)..];
    let power = samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>();
    let rms = (power / samples.len().max(1) as f64).sqrt();
    // A -12 dBFS sine (peak 8192) has an RMS of 5793.
    assert!((4500.0..=7000.0).contains(&rms), "about -12 dBFS, RMS {rms:.0}");
    measured
}

/// A daemon capturing from ALSA `device` and one WHEP viewer that has posted its offer.
pub async fn daemon_and_viewer(device: &str) -> (super::Daemon, super::whep_client::WhepClient) {
    super::init_logs();
    let daemon = super::Daemon::start(config(device)).await;
    let client = super::whep_client::WhepClient::new().await;
    client.post(&daemon.url("/whep")).await.expect("201 Created");
    (daemon, client)
}

/// `aplay` playing the raw 48 kHz S16LE `tone` of `channels` channels into the loopback card's
/// playback side (hw:Loopback,0,0), whose sound comes out of hw:Loopback,1,0. VM tests only.
pub fn play_into_loopback(tone: &Path, channels: u32) -> std::process::Child {
    play_into_loopback_at(tone, channels, 48_000)
}

/// [`play_into_loopback`] for a tone at another sample rate; snd-aloop then runs its capture side
/// at that rate too.
pub fn play_into_loopback_at(tone: &Path, channels: u32, rate: u32) -> std::process::Child {
    std::process::Command::new("aplay")
        .args(["-q", "-D", "hw:Loopback,0,0", "-t", "raw", "-f", "S16_LE"])
        .args(["-r", &rate.to_string(), "-c", &channels.to_string()])
        .arg(tone)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("aplay runs (alsa-utils)")
}
