//! Encodes ten seconds of sound with camrtc's Opus settings and prints what came out, so the
//! encoder's cost can be counted per chunk for different signals (docs/PERFORMANCE.md):
//!
//! ```sh
//! cargo build --release --example opus_cost
//! valgrind --tool=callgrind --toggle-collect=opus_encode target/release/examples/opus_cost tone
//! espeak-ng -w speech.wav "…" && sox speech.wav -r 48000 -c 1 -b 16 -e signed speech.raw
//! valgrind --tool=callgrind --toggle-collect=opus_encode target/release/examples/opus_cost speech.raw
//! ```
//!
//! The test tone is what `camrtc-bench` measures; a microphone mostly hears speech, which costs
//! the encoder several times more.

use camrtc::encode::opus::OpusEncoder;
use camrtc::media::{AUDIO_CHUNK_SAMPLES, CaptureTime, PcmChunk};
use camrtc::source::test_audio::ToneGenerator;

fn main() {
    let source = std::env::args().nth(1).unwrap_or_else(|| "tone".to_owned());
    let chunks: Vec<Vec<i16>> = if source == "tone" {
        let mut tone = ToneGenerator::new(440);
        (0..500).map(|_| tone.next_chunk(CaptureTime::now()).samples).collect()
    } else {
        // Raw signed 16-bit little-endian mono PCM at 48 kHz.
        let bytes = std::fs::read(&source).unwrap_or_else(|e| panic!("{source}: {e}"));
        let samples: Vec<i16> =
            bytes.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect();
        samples.chunks_exact(AUDIO_CHUNK_SAMPLES).map(<[i16]>::to_vec).collect()
    };
    let mut encoder = OpusEncoder::new(32).expect("camrtc's default settings are valid");
    // Opus packet modes by the TOC byte's configuration number (RFC 6716 §3.1).
    let (mut silk, mut hybrid, mut celt, mut bytes) = (0, 0, 0, 0);
    for samples in &chunks {
        let chunk = PcmChunk { samples: samples.clone(), captured: CaptureTime::now() };
        let encoded = encoder.encode(&chunk).expect("a whole chunk encodes");
        let packet = &encoded.payloads[0];
        bytes += packet.len();
        match packet[0] >> 3 {
            0..=11 => silk += 1,
            12..=15 => hybrid += 1,
            _ => celt += 1,
        }
    }
    let seconds = chunks.len() as f64 * 0.02;
    println!(
        "{} chunks, {:.1} kbit/s; packets SILK {silk}, hybrid {hybrid}, CELT {celt}",
        chunks.len(),
        bytes as f64 * 8.0 / seconds / 1000.0
    );
}
