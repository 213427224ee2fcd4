//! Passthrough: H.264 a camera (or `rpicam-vid`) already encoded goes to viewers as it is.
//!
//! Cameras send SPS/PPS once at stream start, or only every so often; a viewer joining at an IDR
//! without them cannot decode. So the latest parameter sets are cached and put in front of every
//! IDR that lacks them, and pictures before the first usable IDR are dropped.

use super::{EncodeError, Encoded, RTP_PAYLOAD_MTU};
use crate::encode::h264::nal_units;
use crate::source::AccessUnit;
use bytes::Bytes;
use rtc::rtp::codec::h264::H264Payloader;
use rtc::rtp::packetizer::Payloader;

const CODEC: &str = "H.264 passthrough";
const NAL_IDR: u8 = 5;
const NAL_SPS: u8 = 7;
const NAL_PPS: u8 = 8;
const NAL_AUD: u8 = 9;

/// Packetises an H.264 stream made elsewhere.
#[derive(Default)]
pub struct Passthrough {
    sps: Option<Bytes>,
    pps: Option<Bytes>,
    payloader: H264Payloader,
    /// Nothing is sent until an IDR with parameter sets: before it, a decoder has nothing to
    /// start from. Set again when the source is reopened.
    waiting_for_idr: bool,
    annex_b: Vec<u8>,
}

impl Passthrough {
    pub fn new() -> Self {
        Self { waiting_for_idr: true, ..Self::default() }
    }

    /// The stream starts over (the source was reopened): wait for its next IDR.
    pub fn restart(&mut self) {
        self.waiting_for_idr = true;
    }

    /// Repackages one access unit. `Ok(None)` while waiting for the first decodable IDR.
    pub fn encode(&mut self, unit: &AccessUnit) -> Result<Option<Encoded>, EncodeError> {
        let mut keyframe = false;
        let (mut has_sps, mut has_pps) = (false, false);
        for nal in nal_units(&unit.annex_b) {
            match nal.first().map(|h| h & 0x1f) {
                Some(NAL_SPS) => {
                    has_sps = true;
                    self.sps = Some(Bytes::copy_from_slice(nal));
                }
                Some(NAL_PPS) => {
                    has_pps = true;
                    self.pps = Some(Bytes::copy_from_slice(nal));
                }
                Some(NAL_IDR) => keyframe = true,
                _ => {}
            }
        }
        if keyframe && (self.sps.is_none() || self.pps.is_none()) {
            // An IDR no decoder can use; keep waiting for parameter sets.
            return Ok(None);
        }
        if self.waiting_for_idr && !keyframe {
            return Ok(None);
        }
        self.waiting_for_idr = false;

        self.annex_b.clear();
        if keyframe {
            let cached = [(has_sps, &self.sps), (has_pps, &self.pps)];
            for (present, set) in cached {
                if let (false, Some(set)) = (present, set) {
                    self.annex_b.extend_from_slice(&[0, 0, 0, 1]);
                    self.annex_b.extend_from_slice(set);
                }
            }
        }
        for nal in nal_units(&unit.annex_b) {
            if nal.first().is_some_and(|h| h & 0x1f != NAL_AUD) {
                self.annex_b.extend_from_slice(&[0, 0, 0, 1]);
                self.annex_b.extend_from_slice(nal);
            }
        }
        let payloads = self
            .payloader
            .payload(RTP_PAYLOAD_MTU, &Bytes::copy_from_slice(&self.annex_b))
            .map_err(|e| EncodeError::Encode { codec: CODEC, reason: e.to_string() })?;
        if payloads.is_empty() {
            return Ok(None);
        }
        Ok(Some(Encoded { payloads, keyframe }))
    }

    /// The Annex B bytes of the last unit sent, with any parameter sets put in front of it.
    pub fn last_annex_b(&self) -> &[u8] {
        &self.annex_b
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::CaptureTime;

    const SPS: &[u8] = &[0x67, 0x64, 0x00, 0x1f, 0xac];
    const PPS: &[u8] = &[0x68, 0xee, 0x3c, 0x80];

    fn unit(nals: &[&[u8]]) -> AccessUnit {
        let mut annex_b = Vec::new();
        for nal in nals {
            annex_b.extend_from_slice(&[0, 0, 0, 1]);
            annex_b.extend_from_slice(nal);
        }
        AccessUnit { annex_b: annex_b.into(), captured: CaptureTime::now() }
    }

    fn types(annex_b: &[u8]) -> Vec<u8> {
        nal_units(annex_b).map(|n| n[0] & 0x1f).collect()
    }

    #[test]
    fn waits_for_an_idr_then_repeats_parameter_sets_before_every_idr() {
        let mut pass = Passthrough::new();
        let p_slice: &[u8] = &[0x41, 0x9a, 1, 2];
        let idr: &[u8] = &[0x65, 0x88, 3, 4];
        assert!(pass.encode(&unit(&[p_slice])).expect("ok").is_none(), "no IDR yet");
        assert!(pass.encode(&unit(&[idr])).expect("ok").is_none(), "IDR without SPS/PPS");

        let first = pass.encode(&unit(&[&[0x09, 0xf0], SPS, PPS, idr])).expect("ok");
        let first = first.expect("decodable IDR");
        assert!(first.keyframe);
        assert_eq!(types(pass.last_annex_b()), [7, 8, 5], "the delimiter is dropped");
        assert_eq!(first.payloads[0][0] & 0x1f, 24, "SPS and PPS travel as one STAP-A");

        let next = pass.encode(&unit(&[p_slice])).expect("ok").expect("sent");
        assert!(!next.keyframe);
        assert_eq!(next.payloads, vec![Bytes::from_static(&[0x41, 0x9a, 1, 2])]);

        // A later IDR without parameter sets gets the cached ones.
        let later = pass.encode(&unit(&[idr])).expect("ok").expect("sent");
        assert!(later.keyframe);
        assert_eq!(types(pass.last_annex_b()), [7, 8, 5]);
        assert_eq!(nal_units(pass.last_annex_b()).next(), Some(SPS));

        pass.restart();
        assert!(pass.encode(&unit(&[p_slice])).expect("ok").is_none(), "reopened: wait again");
        assert!(pass.encode(&unit(&[idr])).expect("ok").expect("sent").keyframe);
    }

    #[test]
    fn large_pictures_are_fragmented_within_the_mtu() {
        let mut pass = Passthrough::new();
        let mut idr = vec![0x65, 0x88];
        idr.extend((0..5000u32).map(|i| (i % 251) as u8 | 1));
        let sent = pass.encode(&unit(&[SPS, PPS, &idr])).expect("ok").expect("sent");
        assert!(sent.payloads.len() > 4);
        assert!(sent.payloads.iter().all(|p| p.len() <= RTP_PAYLOAD_MTU));
        assert!(sent.payloads[1..].iter().all(|p| p[0] & 0x1f == 28), "FU-A fragments");
    }
}
