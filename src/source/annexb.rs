//! Splitting an Annex B H.264 byte stream (a pipe from `rpicam-vid` or ffmpeg) into access units.
//!
//! A pipe carries no framing: a NAL unit is known to be complete only when the next start code
//! arrives, and an access unit only when the first NAL unit of the next one does. So a picture
//! leaves the splitter when the next picture starts arriving, one frame interval late at worst;
//! producers write each picture in one go, so in practice that is the next frame's first write.

use super::{AccessUnit, SourceError};
use crate::media::CaptureTime;
use bytes::Bytes;

/// Bytes without any start code before we decide the stream is not H.264 at all.
const MAX_NAL_BYTES: usize = 8 * 1024 * 1024;
const START_CODE: [u8; 4] = [0, 0, 0, 1];

/// Incremental access-unit splitter; feed it whatever `read` returned.
#[derive(Debug, Default)]
pub struct AccessUnitSplitter {
    /// Unassigned bytes: from the last start code seen (or the stream start) to the end.
    pending: Vec<u8>,
    /// How far `pending` has been searched for start codes.
    scanned: usize,
    /// Whether `pending` begins with a start code (else nothing usable has arrived yet).
    in_nal: bool,
    /// When the NAL unit at the front of `pending` began arriving.
    pending_since: Option<CaptureTime>,
    /// The access unit being assembled, with 4-byte start codes.
    unit: Vec<u8>,
    unit_captured: Option<CaptureTime>,
    unit_has_picture: bool,
}

impl AccessUnitSplitter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the next bytes of the stream, received at `now`, and returns every access unit they
    /// completed.
    pub fn push(&mut self, data: &[u8], now: CaptureTime) -> Result<Vec<AccessUnit>, SourceError> {
        if self.pending.is_empty() {
            self.pending_since = Some(now);
        }
        self.pending.extend_from_slice(data);
        let mut units = Vec::new();
        loop {
            let from = self.scanned.saturating_sub(2).max(if self.in_nal { 3 } else { 0 });
            let Some(start) = find_start_code(&self.pending, from) else {
                self.scanned = self.pending.len();
                break;
            };
            // Between the front start code and this one lies one complete NAL unit; bytes before
            // the very first start code are not H.264 and are dropped.
            if self.in_nal {
                let mut end = start;
                // Trailing zeros belong to a 4-byte start code, not to the NAL unit.
                while end > 3 && self.pending[end - 1] == 0 {
                    end -= 1;
                }
                if end > 3 {
                    let nal = self.pending[3..end].to_vec();
                    let captured = self.pending_since.unwrap_or(now);
                    if let Some(unit) = self.add_nal(&nal, captured) {
                        units.push(unit);
                    }
                }
            }
            self.pending.drain(..start);
            self.in_nal = true;
            // The NAL unit now at the front began arriving in this read.
            self.pending_since = Some(now);
            self.scanned = 3;
        }
        if self.pending.len() > MAX_NAL_BYTES {
            return Err(SourceError::Capture(format!(
                "no H.264 start code in {} bytes: the stream is not Annex B H.264",
                self.pending.len()
            )));
        }
        Ok(units)
    }

    /// Appends one NAL unit; returns the previous access unit if this one begins a new one.
    fn add_nal(&mut self, nal: &[u8], captured: CaptureTime) -> Option<AccessUnit> {
        let finished = (self.unit_has_picture && begins_access_unit(nal)).then(|| self.take());
        if self.unit.is_empty() {
            self.unit_captured = Some(captured);
        }
        self.unit.extend_from_slice(&START_CODE);
        self.unit.extend_from_slice(nal);
        self.unit_has_picture |= is_picture(nal);
        finished
    }

    fn take(&mut self) -> AccessUnit {
        self.unit_has_picture = false;
        let captured = self.unit_captured.take().unwrap_or_else(CaptureTime::now);
        AccessUnit { annex_b: Bytes::from(std::mem::take(&mut self.unit)), captured }
    }
}

/// Index of the first `00 00 01` at or after `from`.
fn find_start_code(data: &[u8], from: usize) -> Option<usize> {
    data.get(from..)?.windows(3).position(|w| w == [0, 0, 1]).map(|i| i + from)
}

fn nal_type(nal: &[u8]) -> u8 {
    nal.first().map_or(0, |h| h & 0x1f)
}

/// A coded slice: non-IDR (1) or IDR (5).
fn is_picture(nal: &[u8]) -> bool {
    matches!(nal_type(nal), 1 | 5)
}

/// Whether `nal`, following a picture, starts the next access unit (H.264 7.4.1.2.3): a delimiter,
/// parameter set or SEI, or a slice that is the first of its picture (`first_mb_in_slice` = 0,
/// which Exp-Golomb codes as a single 1 bit right after the NAL header).
fn begins_access_unit(nal: &[u8]) -> bool {
    match nal_type(nal) {
        6..=9 | 14..=18 => true,
        1 | 5 => nal.get(1).is_some_and(|b| b & 0x80 != 0),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::h264::nal_units;

    fn types(unit: &AccessUnit) -> Vec<u8> {
        nal_units(&unit.annex_b).map(|n| n[0] & 0x1f).collect()
    }

    /// SPS, PPS, IDR in two slices; then two P pictures (one after an AUD); then more AUDs.
    fn stream() -> Vec<u8> {
        let mut s = Vec::new();
        for nal in [
            &[0x67, 0x42, 0xc0, 0x1f, 0xaa][..],
            &[0x68, 0xce, 0x3c, 0x80],
            &[0x65, 0x88, 0x84, 0x00, 0x00, 0x03, 0x01],
            &[0x65, 0x40, 0x11],
            &[0x41, 0x9a, 0x22],
            &[0x09, 0xf0],
            &[0x41, 0x9a, 0x33],
            &[0x09, 0xf0],
            // Only the start of this one tells the splitter the delimiter before it is whole.
            &[0x09, 0xf0],
        ] {
            s.extend_from_slice(&[0, 0, 0, 1]);
            s.extend_from_slice(nal);
        }
        s
    }

    #[test]
    fn splits_pictures_whole_however_the_bytes_arrive() {
        let whole = stream();
        for chunk in [1, 2, 3, 5, 7, whole.len()] {
            let mut splitter = AccessUnitSplitter::new();
            let mut units = Vec::new();
            for piece in whole.chunks(chunk) {
                units.extend(splitter.push(piece, CaptureTime::now()).expect("valid stream"));
            }
            let seen: Vec<Vec<u8>> = units.iter().map(types).collect();
            assert_eq!(seen, vec![vec![7, 8, 5, 5], vec![1], vec![9, 1]], "chunk size {chunk}");
            // Emulation prevention bytes and zeros inside a NAL unit survive untouched.
            let idr = nal_units(&units[0].annex_b).nth(2).expect("IDR");
            assert_eq!(idr, &[0x65, 0x88, 0x84, 0x00, 0x00, 0x03, 0x01]);
        }
    }

    #[test]
    fn a_unit_is_stamped_when_its_first_bytes_arrived() {
        let mut splitter = AccessUnitSplitter::new();
        let first = CaptureTime::now();
        let whole = stream();
        let (a, b) = whole.split_at(20);
        assert!(splitter.push(a, first).expect("valid").is_empty());
        std::thread::sleep(std::time::Duration::from_millis(5));
        let units = splitter.push(b, CaptureTime::now()).expect("valid");
        assert_eq!(units[0].captured, first);
        assert!(units[1].captured.instant > first.instant);
    }

    #[test]
    fn garbage_without_start_codes_is_refused() {
        let mut splitter = AccessUnitSplitter::new();
        let junk = vec![0xffu8; 1024 * 1024];
        let mut result = Ok(Vec::new());
        for _ in 0..9 {
            result = splitter.push(&junk, CaptureTime::now());
            if result.is_err() {
                break;
            }
        }
        let message = result.expect_err("8 MiB without a start code").to_string();
        assert!(message.contains("not Annex B H.264"), "{message}");
    }
}
