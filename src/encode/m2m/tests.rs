//! The buffer state machine against a fake device that checks the V4L2 rules: a buffer is
//! queued only while the application owns it, and finished buffers come back in order.

use super::*;
use crate::encode::h264::nal_units;
use std::collections::VecDeque;

const SPS: &[u8] = &[0x67, 0x42, 0xc0, 0x1f, 0xda];
const PPS: &[u8] = &[0x68, 0xce, 0x3c, 0x80];

/// A pretend encoder: "hardware" runs during `wait`, coding at most `per_wait` pictures.
struct FakeEncoder {
    pictures: usize,
    bitstreams: usize,
    /// Raw buffers the driver holds, in queue order, with the picture's first luma byte.
    queued_pictures: VecDeque<(usize, u8)>,
    done_pictures: VecDeque<usize>,
    queued_bitstreams: VecDeque<usize>,
    filled: VecDeque<(usize, Bytes)>,
    per_wait: usize,
    coded: usize,
    force_next: bool,
    /// Sends SPS/PPS only with the first IDR, as bcm2835-codec does without repeat headers.
    headers_sent: bool,
}

impl FakeEncoder {
    fn new(pictures: usize, bitstreams: usize) -> Self {
        Self {
            pictures,
            bitstreams,
            queued_pictures: VecDeque::new(),
            done_pictures: VecDeque::new(),
            queued_bitstreams: VecDeque::new(),
            filled: VecDeque::new(),
            per_wait: 1,
            coded: 0,
            force_next: false,
            headers_sent: false,
        }
    }

    fn run_hardware(&mut self) {
        for _ in 0..self.per_wait {
            if self.queued_pictures.is_empty() || self.queued_bitstreams.is_empty() {
                return;
            }
            let (picture, marker) = self.queued_pictures.pop_front().expect("checked");
            let bitstream = self.queued_bitstreams.pop_front().expect("checked");
            let idr = self.coded == 0 || std::mem::take(&mut self.force_next);
            let mut out = Vec::new();
            if idr && !self.headers_sent {
                for nal in [SPS, PPS] {
                    out.extend_from_slice(&[0, 0, 0, 1]);
                    out.extend_from_slice(nal);
                }
                self.headers_sent = true;
            }
            out.extend_from_slice(&[0, 0, 0, 1, if idr { 0x65 } else { 0x41 }, 0x88, marker]);
            self.coded += 1;
            self.done_pictures.push_back(picture);
            self.filled.push_back((bitstream, Bytes::from(out)));
        }
    }
}

impl M2mDevice for FakeEncoder {
    fn buffer_counts(&self) -> (usize, usize) {
        (self.pictures, self.bitstreams)
    }

    fn queue_picture(&mut self, index: usize, frame: &RawFrame) -> Result<(), M2mError> {
        assert!(index < self.pictures, "picture buffer {index} does not exist");
        let held = self.queued_pictures.iter().any(|&(i, _)| i == index)
            || self.done_pictures.contains(&index);
        assert!(!held, "picture buffer {index} queued while the driver owns it");
        self.queued_pictures.push_back((index, frame.y()[0]));
        Ok(())
    }

    fn queue_bitstream(&mut self, index: usize) -> Result<(), M2mError> {
        assert!(index < self.bitstreams);
        let held =
            self.queued_bitstreams.contains(&index) || self.filled.iter().any(|(i, _)| *i == index);
        assert!(!held, "bitstream buffer {index} queued while the driver owns it");
        self.queued_bitstreams.push_back(index);
        Ok(())
    }

    fn wait(&mut self, _timeout: Duration) -> Result<Ready, M2mError> {
        self.run_hardware();
        Ok(Ready { picture: !self.done_pictures.is_empty(), bitstream: !self.filled.is_empty() })
    }

    fn reclaim_picture(&mut self) -> Result<Option<usize>, M2mError> {
        Ok(self.done_pictures.pop_front())
    }

    fn take_bitstream(&mut self) -> Result<Option<(usize, Bytes)>, M2mError> {
        Ok(self.filled.pop_front())
    }

    fn force_keyframe(&mut self) -> Result<(), M2mError> {
        self.force_next = true;
        Ok(())
    }
}

fn picture(marker: u8) -> RawFrame {
    let mut frame = RawFrame::black(32, 32, CaptureTime::now());
    frame.i420[0] = marker;
    frame
}

fn last_byte(coded: &CodedPicture) -> u8 {
    *nal_units(&coded.annex_b).last().and_then(|n| n.last()).expect("a slice")
}

#[test]
fn pictures_come_back_coded_in_order_with_their_capture_times() {
    let mut encoder = M2mEncoder::new(FakeEncoder::new(2, 2)).expect("buffers");
    let mut sent = Vec::new();
    for marker in 1..=10u8 {
        let frame = picture(marker);
        let captured = frame.captured;
        let coded = encoder.encode(&frame).expect("encodes");
        assert_eq!(coded.len(), 1, "one picture in, one out (picture {marker})");
        assert_eq!(last_byte(&coded[0]), marker, "the right picture");
        assert_eq!(coded[0].captured, captured, "with its own capture time");
        sent.push(coded.into_iter().next().expect("checked"));
    }
    assert!(sent[0].encoded.keyframe);
    assert!(sent[1..].iter().all(|c| !c.encoded.keyframe));
    assert_eq!(encoder.dropped, 0);
}

#[test]
fn requested_keyframes_carry_cached_parameter_sets() {
    let mut encoder = M2mEncoder::new(FakeEncoder::new(2, 2)).expect("buffers");
    encoder.encode(&picture(1)).expect("encodes");
    encoder.encode(&picture(2)).expect("encodes");
    encoder.force_keyframe().expect("forces");
    let coded = encoder.encode(&picture(3)).expect("encodes");
    assert!(coded[0].encoded.keyframe);
    let types: Vec<u8> = nal_units(&coded[0].annex_b).map(|n| n[0] & 0x1f).collect();
    assert_eq!(types, [7, 8, 5], "the driver sent no headers; the cached ones go first");
}

#[test]
fn a_busy_encoder_drops_pictures_instead_of_queueing_latency() {
    let mut device = FakeEncoder::new(2, 4);
    device.per_wait = 0;
    let mut encoder = M2mEncoder::new(device).expect("buffers");
    for marker in 1..=4 {
        assert!(encoder.encode(&picture(marker)).expect("no error").is_empty());
    }
    assert_eq!(encoder.dropped, 2, "two raw buffers, so two of four pictures fit");
    // The hardware catches up: both held pictures come out, oldest first, and buffers recycle.
    encoder.device.per_wait = 2;
    let coded = encoder.encode(&picture(5)).expect("encodes");
    let markers: Vec<u8> = coded.iter().map(last_byte).collect();
    assert_eq!(markers, [1, 2]);
    encoder.device.per_wait = 1;
    let coded = encoder.encode(&picture(6)).expect("encodes");
    assert_eq!(coded.iter().map(last_byte).collect::<Vec<_>>(), [5]);
}

#[test]
fn impossible_buffer_indices_are_protocol_errors() {
    struct Liar(FakeEncoder);
    impl M2mDevice for Liar {
        fn buffer_counts(&self) -> (usize, usize) {
            self.0.buffer_counts()
        }
        fn queue_picture(&mut self, index: usize, frame: &RawFrame) -> Result<(), M2mError> {
            self.0.queue_picture(index, frame)
        }
        fn queue_bitstream(&mut self, index: usize) -> Result<(), M2mError> {
            self.0.queue_bitstream(index)
        }
        fn wait(&mut self, timeout: Duration) -> Result<Ready, M2mError> {
            self.0.wait(timeout)
        }
        fn reclaim_picture(&mut self) -> Result<Option<usize>, M2mError> {
            Ok(Some(7))
        }
        fn take_bitstream(&mut self) -> Result<Option<(usize, Bytes)>, M2mError> {
            self.0.take_bitstream()
        }
        fn force_keyframe(&mut self) -> Result<(), M2mError> {
            self.0.force_keyframe()
        }
    }
    let mut encoder = M2mEncoder::new(Liar(FakeEncoder::new(2, 2))).expect("buffers");
    let error = encoder.encode(&picture(1)).expect_err("buffer 7 was never queued");
    assert!(error.to_string().contains("picture buffer 7 was not queued"), "{error}");
    assert!(matches!(M2mEncoder::new(FakeEncoder::new(0, 2)), Err(M2mError::Protocol(_))));
}

#[test]
fn level_covers_the_picture_rate() {
    assert_eq!(h264_level(640, 480, 30), (8, "3.0"));
    assert_eq!(h264_level(1280, 720, 30), (9, "3.1"));
    assert_eq!(h264_level(1280, 720, 60), (10, "3.2"));
    assert_eq!(h264_level(1920, 1080, 30), (11, "4.0"));
    assert_eq!(h264_level(1920, 1080, 60), (13, "4.2"));
}
