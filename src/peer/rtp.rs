//! Turning shared encoded frames into one viewer's RTP packets.
//!
//! Payloads are shared (`Bytes` clones are reference counts); only the 12-byte header is per
//! viewer. RTP timestamps come from capture time on a clock shared by audio and video, so the
//! sender reports map both tracks to the same wall clock and browsers can lip-sync.

use crate::media::EncodedFrame;
use bytes::Bytes;
use rtc::rtp::extension::playout_delay_extension::PlayoutDelayExtension;
use rtc::rtp::header::{EXTENSION_PROFILE_ONE_BYTE, Extension};
use rtc::rtp::{Packet, header::Header};
use rtc::shared::marshal::Marshal;
use std::sync::OnceLock;
use std::time::Instant;

/// The instant all RTP timestamps count from. Process-wide so every track of every session
/// shares it; set long before any frame is captured.
pub fn media_epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// The playout-delay extension's largest value, in its 10 ms units (12 bits).
const PLAYOUT_MAX_UNITS: u16 =
    rtc::rtp::extension::playout_delay_extension::PLAYOUT_DELAY_MAX_VALUE;

/// Per-viewer, per-track RTP state.
#[derive(Debug, Clone)]
pub struct RtpStamper {
    pub ssrc: u32,
    pub payload_type: u8,
    clock_rate: u32,
    next_sequence: u16,
    timestamp_offset: u32,
    epoch: Instant,
    /// A one-byte header extension (id, value) put on the first packet of every frame, where
    /// receivers read per-frame extensions from.
    frame_extension: Option<Extension>,
}

impl RtpStamper {
    /// Random starting sequence number and timestamp offset, as RFC 3550 asks, so that streams
    /// cannot be spliced or predicted.
    pub fn new(ssrc: u32, payload_type: u8, clock_rate: u32, epoch: Instant) -> Self {
        Self {
            ssrc,
            payload_type,
            clock_rate,
            next_sequence: rand::random(),
            timestamp_offset: rand::random(),
            epoch,
            frame_extension: None,
        }
    }

    /// Asks the receiver to play every frame out at once and to queue at most `max_ms` (rounded
    /// down to the extension's 10 ms units), through the playout-delay extension negotiated
    /// under the one-byte id `id`.
    pub fn with_playout_delay(mut self, id: u8, max_ms: u32) -> Self {
        let units = u16::try_from(max_ms / 10).unwrap_or(u16::MAX);
        let delay = PlayoutDelayExtension { min_delay: 0, max_delay: units.min(PLAYOUT_MAX_UNITS) };
        let payload: Bytes =
            delay.marshal().expect("a playout delay always fits its 3 bytes").into();
        self.frame_extension = Some(Extension { id, payload });
        self
    }

    /// The RTP timestamp for something captured at `captured`.
    pub fn timestamp(&self, captured: Instant) -> u32 {
        let since_epoch = captured.saturating_duration_since(self.epoch);
        let ticks = since_epoch.as_nanos() * u128::from(self.clock_rate) / 1_000_000_000;
        self.timestamp_offset.wrapping_add(ticks as u32)
    }

    /// The packets of one frame, marker bit on the last (end of the access unit). An iterator
    /// rather than a Vec: the fan-out path runs once per frame per viewer, and collecting was its
    /// one allocation of our own (perf, docs/PERFORMANCE.md).
    pub fn packets<'a>(&'a mut self, frame: &'a EncodedFrame) -> impl Iterator<Item = Packet> + 'a {
        let timestamp = self.timestamp(frame.captured.instant);
        let last = frame.payloads.len().saturating_sub(1);
        frame.payloads.iter().enumerate().map(move |(i, payload)| {
            let sequence_number = self.next_sequence;
            self.next_sequence = self.next_sequence.wrapping_add(1);
            let extension = self.frame_extension.clone().filter(|_| i == 0);
            Packet {
                header: Header {
                    version: 2,
                    marker: i == last,
                    payload_type: self.payload_type,
                    sequence_number,
                    timestamp,
                    ssrc: self.ssrc,
                    extension: extension.is_some(),
                    extension_profile: if extension.is_some() {
                        EXTENSION_PROFILE_ONE_BYTE
                    } else {
                        0
                    },
                    extensions: extension.into_iter().collect(),
                    ..Default::default()
                },
                payload: payload.clone(),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::CaptureTime;
    use bytes::Bytes;
    use std::time::{Duration, SystemTime};

    fn frame(at: Instant, parts: usize) -> EncodedFrame {
        EncodedFrame {
            payloads: (0..parts).map(|i| Bytes::from(vec![i as u8; 10])).collect::<Vec<_>>().into(),
            captured: CaptureTime { instant: at, wall: SystemTime::now() },
            keyframe: false,
            duration: Duration::from_millis(33),
        }
    }

    #[test]
    fn timestamps_follow_capture_time_in_the_codec_clock() {
        let epoch = Instant::now();
        let video = RtpStamper::new(1, 102, 90_000, epoch);
        let audio = RtpStamper::new(2, 111, 48_000, epoch);
        let one_second_later = epoch + Duration::from_secs(1);
        assert_eq!(video.timestamp(one_second_later).wrapping_sub(video.timestamp(epoch)), 90_000);
        assert_eq!(audio.timestamp(one_second_later).wrapping_sub(audio.timestamp(epoch)), 48_000);
        let frame_later = epoch + Duration::from_micros(33_333);
        assert_eq!(video.timestamp(frame_later).wrapping_sub(video.timestamp(epoch)), 2999);
    }

    #[test]
    fn packets_share_payloads_number_consecutively_and_mark_the_frame_end() {
        let epoch = Instant::now();
        let mut stamper = RtpStamper::new(7, 102, 90_000, epoch);
        let first = frame(epoch + Duration::from_millis(10), 3);
        let packets: Vec<_> = stamper.packets(&first).collect();
        assert_eq!(packets.len(), 3);
        assert_eq!(packets.iter().filter(|p| p.header.marker).count(), 1);
        assert!(packets[2].header.marker);
        assert!(packets.iter().all(|p| p.header.ssrc == 7 && p.header.payload_type == 102));
        assert_eq!(
            packets[0].payload.as_ptr(),
            first.payloads[0].as_ptr(),
            "no copy of the payload"
        );
        let next: Vec<_> = stamper.packets(&frame(epoch + Duration::from_millis(43), 1)).collect();
        assert_eq!(
            next[0].header.sequence_number,
            packets[2].header.sequence_number.wrapping_add(1)
        );
        assert_eq!(next[0].header.timestamp.wrapping_sub(packets[0].header.timestamp), 2970);
    }

    #[test]
    fn the_playout_delay_rides_the_first_packet_of_each_frame() {
        let epoch = Instant::now();
        let mut stamper = RtpStamper::new(7, 102, 90_000, epoch).with_playout_delay(5, 100);
        for at in [10, 43] {
            let frame = frame(epoch + Duration::from_millis(at), 3);
            let packets: Vec<_> = stamper.packets(&frame).collect();
            let first = &packets[0].header;
            assert!(first.extension);
            assert_eq!(first.extension_profile, EXTENSION_PROFILE_ONE_BYTE);
            // min 0 and max 10 (x 10 ms), 12 bits each.
            assert_eq!(first.get_extension(5).as_deref(), Some(&[0x00, 0x00, 0x0a][..]));
            for later in &packets[1..] {
                assert!(!later.header.extension && later.header.extensions.is_empty());
            }
        }
        let units = |ms| {
            let mut stamper = RtpStamper::new(7, 102, 90_000, epoch).with_playout_delay(3, ms);
            let packet = stamper.packets(&frame(epoch, 1)).next().expect("one packet");
            let value = packet.header.get_extension(3).expect("the extension");
            u16::from_be_bytes([value[1], value[2]]) & 0x0fff
        };
        assert_eq!((units(500), units(105), units(10)), (50, 10, 1));

        let mut plain = RtpStamper::new(7, 102, 90_000, epoch);
        let packet = plain.packets(&frame(epoch, 1)).next().expect("one packet");
        assert!(!packet.header.extension && packet.header.extensions.is_empty());
    }

    #[test]
    fn sequence_numbers_wrap() {
        let epoch = Instant::now();
        let mut stamper = RtpStamper::new(7, 102, 90_000, epoch);
        stamper.next_sequence = u16::MAX;
        let packets: Vec<_> = stamper.packets(&frame(epoch, 2)).collect();
        assert_eq!(packets[0].header.sequence_number, u16::MAX);
        assert_eq!(packets[1].header.sequence_number, 0);
    }
}
