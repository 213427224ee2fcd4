//! Opus through the `opus` crate (bundled libopus): 20 ms mono frames, in-band FEC on.

use super::{EncodeError, Encoded};
use crate::media::{AUDIO_CHUNK_SAMPLES, AUDIO_SAMPLE_RATE, PcmChunk};
use bytes::Bytes;
use opus::{Application, Bitrate, Channels, Encoder};

const CODEC: &str = "Opus";
/// An Opus packet never exceeds 1275 bytes per frame (RFC 6716 §3.2.1).
const MAX_PACKET: usize = 1275;
/// Loss the encoder plans FEC for; in-band FEC is only emitted when this is non-zero.
const EXPECTED_LOSS_PERCENT: i32 = 5;

pub struct OpusEncoder {
    encoder: Encoder,
    packet: Vec<u8>,
}

impl OpusEncoder {
    pub fn new(bitrate_kbps: u32) -> Result<Self, EncodeError> {
        let configure =
            |e: opus::Error| EncodeError::Configure { codec: CODEC, reason: e.to_string() };
        // VoIP mode keeps SILK available, which is what carries in-band FEC.
        let mut encoder = Encoder::new(AUDIO_SAMPLE_RATE, Channels::Mono, Application::Voip)
            .map_err(configure)?;
        let bps = i32::try_from(bitrate_kbps.saturating_mul(1000)).unwrap_or(i32::MAX);
        encoder.set_bitrate(Bitrate::Bits(bps)).map_err(configure)?;
        encoder.set_inband_fec(true).map_err(configure)?;
        encoder.set_packet_loss_perc(EXPECTED_LOSS_PERCENT).map_err(configure)?;
        Ok(Self { encoder, packet: vec![0; MAX_PACKET] })
    }

    /// Encodes one 20 ms chunk into one RTP payload.
    pub fn encode(&mut self, chunk: &PcmChunk) -> Result<Encoded, EncodeError> {
        if chunk.samples.len() != AUDIO_CHUNK_SAMPLES {
            return Err(EncodeError::Encode {
                codec: CODEC,
                reason: format!(
                    "chunk has {} samples, expected {AUDIO_CHUNK_SAMPLES}",
                    chunk.samples.len()
                ),
            });
        }
        let len = self
            .encoder
            .encode(&chunk.samples, &mut self.packet)
            .map_err(|e| EncodeError::Encode { codec: CODEC, reason: e.to_string() })?;
        Ok(Encoded { payloads: vec![Bytes::copy_from_slice(&self.packet[..len])], keyframe: true })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::CaptureTime;

    #[test]
    fn encodes_a_chunk_into_one_packet_and_rejects_wrong_sizes() {
        let mut encoder = OpusEncoder::new(32).expect("valid settings");
        let samples: Vec<i16> =
            (0..AUDIO_CHUNK_SAMPLES).map(|i| ((i as f32 * 0.0575).sin() * 8000.0) as i16).collect();
        let encoded =
            encoder.encode(&PcmChunk { samples, captured: CaptureTime::now() }).expect("encodes");
        assert_eq!(encoded.payloads.len(), 1);
        assert!(!encoded.payloads[0].is_empty() && encoded.payloads[0].len() <= MAX_PACKET);

        let short = PcmChunk { samples: vec![0; 100], captured: CaptureTime::now() };
        assert!(encoder.encode(&short).is_err());
    }
}
