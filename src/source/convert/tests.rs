//! Conversions checked against pictures packed by hand here, independently of the `yuv` crate.

use super::*;

const W: usize = 64;
const H: usize = 48;

/// A picture whose every sample is distinct enough to catch swapped planes, rows or columns.
fn reference() -> RawFrame {
    let mut frame = RawFrame::black(W as u32, H as u32, CaptureTime::now());
    let (y, chroma) = frame.i420.split_at_mut(W * H);
    let (u, v) = chroma.split_at_mut(W * H / 4);
    for (i, p) in y.iter_mut().enumerate() {
        *p = (16 + (i % W) * 3 + (i / W) * 2) as u8;
    }
    for (i, (u, v)) in u.iter_mut().zip(v.iter_mut()).enumerate() {
        *u = (40 + (i % (W / 2)) * 5) as u8;
        *v = (200 - (i / (W / 2)) * 4) as u8;
    }
    frame
}

fn layout(format: PixelFormat, stride: usize) -> Layout {
    Layout { format, width: W as u32, height: H as u32, stride: stride as u32 }
}

/// Packed 4:2:2 with each 4:2:0 chroma row used for two lines; `order` gives the byte positions
/// of Y0, U, Y1, V in each 4-byte group. Rows are padded to `stride` with junk.
fn pack_422(frame: &RawFrame, order: [usize; 4], stride: usize) -> Vec<u8> {
    let mut out = vec![0xeeu8; stride * H];
    for row in 0..H {
        for pair in 0..W / 2 {
            let group = &mut out[row * stride + pair * 4..][..4];
            group[order[0]] = frame.y()[row * W + 2 * pair];
            group[order[1]] = frame.u()[(row / 2) * (W / 2) + pair];
            group[order[2]] = frame.y()[row * W + 2 * pair + 1];
            group[order[3]] = frame.v()[(row / 2) * (W / 2) + pair];
        }
    }
    out
}

fn padded_rows(plane: &[u8], width: usize, stride: usize) -> Vec<u8> {
    plane
        .chunks(width)
        .flat_map(|row| row.iter().copied().chain(std::iter::repeat_n(0xee, stride - width)))
        .collect()
}

#[test]
fn packed_422_formats_convert_exactly() {
    let original = reference();
    for (format, order) in [(PixelFormat::Yuyv, [0, 1, 2, 3]), (PixelFormat::Uyvy, [1, 0, 3, 2])] {
        for stride in [2 * W, 2 * W + 32] {
            let packed = pack_422(&original, order, stride);
            let frame = to_i420(layout(format, stride), &packed, original.captured)
                .unwrap_or_else(|e| panic!("{format:?}: {e}"));
            assert_eq!((frame.width, frame.height), (W as u32, H as u32));
            assert_eq!(frame.y(), original.y(), "{format:?} luma, stride {stride}");
            assert_eq!(frame.u(), original.u(), "{format:?} U, stride {stride}");
            assert_eq!(frame.v(), original.v(), "{format:?} V, stride {stride}");
        }
    }
}

#[test]
fn planar_formats_convert_exactly_with_padded_lines() {
    let original = reference();
    for stride in [W, W + 64] {
        let mut yu12 = padded_rows(original.y(), W, stride);
        yu12.extend(padded_rows(original.u(), W / 2, stride / 2));
        yu12.extend(padded_rows(original.v(), W / 2, stride / 2));
        let frame = to_i420(layout(PixelFormat::Yu12, stride), &yu12, original.captured)
            .expect("YU12 converts");
        assert_eq!(frame.i420, original.i420, "YU12, stride {stride}");

        let interleaved: Vec<u8> =
            original.u().iter().zip(original.v()).flat_map(|(&u, &v)| [u, v]).collect();
        let mut nv12 = padded_rows(original.y(), W, stride);
        nv12.extend(padded_rows(&interleaved, W, stride));
        let frame = to_i420(layout(PixelFormat::Nv12, stride), &nv12, original.captured)
            .expect("NV12 converts");
        assert_eq!(frame.i420, original.i420, "NV12, stride {stride}");
    }
}

#[test]
fn short_buffers_and_odd_sizes_are_errors_not_panics() {
    let error = to_i420(layout(PixelFormat::Yuyv, 0), &[0; 100], CaptureTime::now())
        .expect_err("truncated");
    assert!(error.to_string().contains("too small for 64x48"), "{error}");
    let odd = Layout { format: PixelFormat::Nv12, width: 63, height: 48, stride: 0 };
    assert!(matches!(
        to_i420(odd, &[0; 10_000], CaptureTime::now()),
        Err(ConvertError::OddSize { .. })
    ));
    let error = decode_mjpeg(&[0xff, 0xd8, 0xff, 0xd9], CaptureTime::now()).expect_err("empty");
    assert!(error.to_string().contains("MJPEG"), "{error}");
}

#[test]
fn mjpeg_decodes_to_the_encoded_picture() {
    // An RGB picture with smooth gradients (JPEG's easy case) and a sharp-edged block.
    let mut rgb = vec![0u8; W * H * 3];
    for (i, px) in rgb.chunks_exact_mut(3).enumerate() {
        let (x, y) = (i % W, i / W);
        let block = (16..32).contains(&x) && (16..32).contains(&y);
        px.copy_from_slice(&if block {
            [20, 200, 40]
        } else {
            [(x * 4) as u8, (y * 5) as u8, 128]
        });
    }
    let mut jpeg = Vec::new();
    jpeg_encoder::Encoder::new(&mut jpeg, 95)
        .encode(&rgb, W as u16, H as u16, jpeg_encoder::ColorType::Rgb)
        .expect("test picture encodes");

    let frame =
        to_i420(layout(PixelFormat::Mjpeg, 0), &jpeg, CaptureTime::now()).expect("MJPEG decodes");
    assert_eq!((frame.width, frame.height), (W as u32, H as u32));
    // Compare luma with BT.601 limited-range Y of the original RGB, computed here.
    let expected_y = |px: &[u8]| {
        16.0 + (65.481 * f64::from(px[0]) + 128.553 * f64::from(px[1]) + 24.966 * f64::from(px[2]))
            / 255.0
    };
    let diffs: Vec<f64> = rgb
        .chunks_exact(3)
        .zip(frame.y())
        .map(|(px, &y)| (expected_y(px) - f64::from(y)).abs())
        .collect();
    let mean = diffs.iter().sum::<f64>() / diffs.len() as f64;
    assert!(mean < 2.0, "mean luma error {mean:.2}");
    // Inside the green block, chroma is strongly below neutral in U and V alike.
    let (u, v) = (frame.u()[12 * (W / 2) + 12], frame.v()[12 * (W / 2) + 12]);
    assert!(u < 100 && v < 100, "green block chroma U {u} V {v}");
}

/// Luma at (x, y) of a frame.
fn luma(frame: &RawFrame, x: usize, y: usize) -> u8 {
    frame.y()[y * frame.width as usize + x]
}

#[test]
fn rotation_is_clockwise_and_flips_mirror() {
    let original = reference();
    let at = |o: Orientation| o.apply(original.clone()).expect("orientation applies");
    let (w, h) = (W, H);

    let r90 = at(Orientation { rotate: 90, ..Orientation::default() });
    assert_eq!((r90.width, r90.height), (H as u32, W as u32));
    let r270 = at(Orientation { rotate: 270, ..Orientation::default() });
    // Every sample of every plane: clockwise, the original's bottom-left corner becomes the
    // top-left. (A wrong SIMD transpose once broke half of each block, not the corners.)
    for (plane, (pw, ph)) in [(0, (w, h)), (1, (w / 2, h / 2)), (2, (w / 2, h / 2))] {
        let sample = |f: &RawFrame, x: usize, y: usize| {
            [f.y(), f.u(), f.v()][plane][y * (f.width as usize >> (plane.min(1))) + x]
        };
        for y in 0..pw {
            for x in 0..ph {
                let at = format!("plane {plane} ({x},{y})");
                assert_eq!(sample(&r90, x, y), sample(&original, y, ph - 1 - x), "90° {at}");
                assert_eq!(sample(&r270, x, y), sample(&original, pw - 1 - y, x), "270° {at}");
            }
        }
    }
    let r180 = at(Orientation { rotate: 180, ..Orientation::default() });
    assert_eq!(luma(&r180, 0, 0), luma(&original, w - 1, h - 1));
    assert_eq!(r180.u()[0], original.u()[original.u().len() - 1], "chroma rotates too");

    let hflip = at(Orientation { hflip: true, ..Orientation::default() });
    assert_eq!(luma(&hflip, 0, 3), luma(&original, w - 1, 3), "hflip mirrors left-right");
    let vflip = at(Orientation { vflip: true, ..Orientation::default() });
    assert_eq!(luma(&vflip, 3, 0), luma(&original, 3, h - 1), "vflip mirrors top-bottom");
    let both = at(Orientation { hflip: true, vflip: true, ..Orientation::default() });
    assert_eq!(both.i420, r180.i420, "both flips are a half turn");

    let same = at(Orientation::default());
    assert_eq!(same.i420, original.i420);
}

/// Not a test: the cost of quarter turns, for docs/PERFORMANCE.md.
/// `cargo test --release --lib -- --ignored --nocapture quarter_turn_cost`
#[test]
#[ignore = "benchmark"]
fn quarter_turn_cost() {
    for (w, h) in [(640u32, 480u32), (1280, 720)] {
        let frame = RawFrame::black(w, h, CaptureTime::now());
        for rotate in [90, 270] {
            let turn = Orientation { rotate, ..Orientation::default() };
            let runs = 200;
            let started = std::time::Instant::now();
            for _ in 0..runs {
                let turned = turn.apply(std::hint::black_box(frame.clone())).expect("turns");
                std::hint::black_box(turned);
            }
            let per_frame = started.elapsed() / runs;
            println!("{w}x{h} I420 turned {rotate}° (copy included): {per_frame:?} per frame");
        }
    }
}
