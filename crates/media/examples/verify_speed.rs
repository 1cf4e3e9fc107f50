//! How fast uploads are checked: `verify` (the structure walk every JPEG and PNG upload gets)
//! against SHA-256 (the hash every upload gets) over the same generated photos, as medians
//! of several rounds and their ratio. Not a test: run it with
//! `cargo run --release -p pictograph-media --example verify_speed`.

use image::{ImageFormat, Rgb, RgbImage};
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};
use std::io::Cursor;
use std::time::Instant;

/// A 640×480 picture with smooth shapes and sensor-like noise, so that it compresses like a
/// photo rather than like a flat test card.
fn picture(seed: u64) -> RgbImage {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let (cx, cy) = (rng.random_range(0.0..640.0), rng.random_range(0.0..480.0));
    RgbImage::from_fn(640, 480, |x, y| {
        let d = ((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2)).sqrt();
        let base = [(d * 0.7) as u8, (x / 3) as u8, (y / 2) as u8];
        Rgb(base.map(|c| c.wrapping_add(rng.random_range(0..24))))
    })
}

fn encoded(format: ImageFormat, n: u64) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let mut out = Cursor::new(Vec::new());
            picture(i).write_to(&mut out, format).expect("encode");
            out.into_inner()
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Median seconds of `rounds` runs of `f` over every file.
fn timed(files: &[Vec<u8>], rounds: usize, f: impl Fn(&[u8])) -> f64 {
    median(
        (0..rounds)
            .map(|_| {
                let t = Instant::now();
                files.iter().for_each(|b| f(b));
                t.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

fn main() {
    for (name, format) in [("JPEG", ImageFormat::Jpeg), ("PNG", ImageFormat::Png)] {
        let files = encoded(format, 200);
        let mb = files.iter().map(Vec::len).sum::<usize>() as f64 / 1e6;
        let verify = timed(&files, 9, |b| {
            let probe = pictograph_media::probe(b).expect("probe");
            pictograph_media::verify(b, &probe, pictograph_media::MAX_PIXELS).expect("verify");
        });
        let hash = timed(&files, 9, |b| {
            std::hint::black_box(Sha256::digest(b));
        });
        println!(
            "{name}: {} files, {mb:.0} MB; verify {:.1} ms ({:.2} GB/s), SHA-256 {:.1} ms \
             ({:.2} GB/s); verify/SHA-256 {:.2}",
            files.len(),
            verify * 1e3,
            mb / 1e3 / verify,
            hash * 1e3,
            mb / 1e3 / hash,
            verify / hash
        );
    }
}
