//! Integration tests for `pictograph-media`, on images generated in the tests
//! themselves plus one HEIC sample stored next to this file.

use std::io::Cursor;

use image::{DynamicImage, ImageFormat, RgbImage};
use pictograph_media::{heic_to_png, probe, sniff, Format, MediaError, Probe, MAX_PIXELS};

const HEIC_SAMPLE: &[u8] = include_bytes!("data/sample-320x240.heic");

/// The six formats the `image` crate can write, with our matching `Format`.
const GENERATED: [(ImageFormat, Format); 6] = [
    (ImageFormat::Jpeg, Format::Jpeg),
    (ImageFormat::Png, Format::Png),
    (ImageFormat::Gif, Format::Gif),
    (ImageFormat::Bmp, Format::Bmp),
    (ImageFormat::Tiff, Format::Tiff),
    (ImageFormat::WebP, Format::Webp),
];

/// A deterministic pseudo-random byte stream (xorshift), so tests need no
/// extra dependency and never flake.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect()
}

/// An RGB image: a gradient, or noise when `noisy` (so it compresses badly).
fn picture(width: u32, height: u32, noisy: bool) -> RgbImage {
    let random = noise((width * height * 3) as usize, 0x5EED);
    RgbImage::from_fn(width, height, |x, y| {
        if noisy {
            let i = ((y * width + x) * 3) as usize;
            image::Rgb([random[i], random[i + 1], random[i + 2]])
        } else {
            image::Rgb([(x * 7) as u8, (y * 11) as u8, ((x + y) * 3) as u8])
        }
    })
}

fn encode(img: &RgbImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Vec::new();
    DynamicImage::ImageRgb8(img.clone())
        .write_to(&mut Cursor::new(&mut out), format)
        .unwrap_or_else(|e| panic!("encoding {format:?}: {e}"));
    out
}

#[test]
fn generated_images_sniff_and_probe() {
    let img = picture(37, 23, false);
    for (image_format, format) in GENERATED {
        let bytes = encode(&img, image_format);
        assert_eq!(sniff(&bytes), Some(format), "{image_format:?}");
        assert_eq!(
            probe(&bytes),
            Some(Probe {
                format,
                width: 37,
                height: 23
            }),
            "{image_format:?}"
        );
    }
}

#[test]
fn large_images_probe_from_first_64_kib() {
    let img = picture(1001, 701, true);
    for (image_format, format) in GENERATED {
        let bytes = encode(&img, image_format);
        assert!(bytes.len() > 64 * 1024, "{image_format:?} is too small");
        let head = &bytes[..64 * 1024];
        assert_eq!(sniff(head), Some(format), "{image_format:?}");
        let expected = Probe {
            format,
            width: 1001,
            height: 701,
        };
        if format == Format::Tiff {
            // The IFD may sit after the pixel data: then no answer, never a wrong one.
            assert!(probe(head).is_none_or(|p| p == expected));
        } else {
            assert_eq!(probe(head), Some(expected), "{image_format:?}");
        }
    }
}

#[test]
fn every_prefix_is_safe_and_never_wrong() {
    let img = picture(37, 23, false);
    for (image_format, format) in GENERATED {
        let bytes = encode(&img, image_format);
        for end in 0..=bytes.len() {
            let head = &bytes[..end];
            assert!(sniff(head).is_none_or(|f| f == format));
            if let Some(p) = probe(head) {
                assert_eq!((p.format, p.width, p.height), (format, 37, 23));
            }
        }
    }
    for end in 0..=HEIC_SAMPLE.len() {
        if let Some(p) = probe(&HEIC_SAMPLE[..end]) {
            assert_eq!((p.format, p.width, p.height), (Format::Heic, 320, 240));
        }
    }
}

#[test]
fn heic_sample_probes() {
    assert_eq!(sniff(HEIC_SAMPLE), Some(Format::Heic));
    let expected = Some(Probe {
        format: Format::Heic,
        width: 320,
        height: 240,
    });
    assert_eq!(probe(HEIC_SAMPLE), expected);
    // The `meta` box ends before byte 400; the coded picture is cut short.
    assert_eq!(probe(&HEIC_SAMPLE[..400]), expected);
}

#[test]
fn heic_to_png_decodes_sample() {
    let (png, width, height) = heic_to_png(HEIC_SAMPLE, MAX_PIXELS).expect("sample decodes");
    assert_eq!((width, height), (320, 240));
    assert_eq!(sniff(&png), Some(Format::Png));
    let decoded = image::load_from_memory_with_format(&png, ImageFormat::Png)
        .expect("output is a valid PNG")
        .to_rgb8();
    assert_eq!(decoded.dimensions(), (320, 240));

    // A yellow rectangle (about 250,200,0) on blue (about 30,120,200).
    let yellow = |p: &image::Rgb<u8>| p[0] > 200 && (150..=240).contains(&p[1]) && p[2] < 60;
    let blue = |p: &image::Rgb<u8>| p[0] < 80 && (80..=160).contains(&p[1]) && p[2] > 160;
    for (x, y) in [(160, 120), (60, 60), (180, 140)] {
        let p = decoded.get_pixel(x, y);
        assert!(yellow(p), "({x},{y}) should be yellow, is {p:?}");
    }
    for (x, y) in [(0, 0), (319, 0), (0, 239), (319, 239), (260, 120)] {
        let p = decoded.get_pixel(x, y);
        assert!(blue(p), "({x},{y}) should be blue, is {p:?}");
    }
}

#[test]
fn heic_over_the_pixel_limit_is_refused() {
    match heic_to_png(HEIC_SAMPLE, 320 * 240 - 1) {
        Err(MediaError::TooLarge { pixels, max_pixels }) => {
            assert_eq!((pixels, max_pixels), (320 * 240, 320 * 240 - 1))
        }
        other => panic!("{:?}", other.map(|(_, w, h)| (w, h))),
    }
    let (_, w, h) = heic_to_png(HEIC_SAMPLE, 320 * 240).expect("at the limit");
    assert_eq!((w, h), (320, 240));
}

#[test]
fn heic_to_png_rejects_other_input() {
    assert!(matches!(
        heic_to_png(&[], MAX_PIXELS),
        Err(MediaError::NotHeic)
    ));
    let png = encode(&picture(37, 23, false), ImageFormat::Png);
    assert!(matches!(
        heic_to_png(&png, MAX_PIXELS),
        Err(MediaError::NotHeic)
    ));
    assert!(matches!(
        heic_to_png(b"hello, world", MAX_PIXELS),
        Err(MediaError::NotHeic)
    ));
}

#[test]
fn truncated_heic_is_an_error_not_a_panic() {
    for end in 0..HEIC_SAMPLE.len() {
        match heic_to_png(&HEIC_SAMPLE[..end], MAX_PIXELS) {
            Err(MediaError::DecoderPanicked) => panic!("decoder panicked at length {end}"),
            Err(_) => {}
            Ok(_) => panic!("a {end}-byte prefix decoded"),
        }
    }
}

#[test]
fn corrupted_heic_does_not_panic() {
    for i in 0..HEIC_SAMPLE.len() {
        let mut bytes = HEIC_SAMPLE.to_vec();
        bytes[i] ^= 0xA5;
        let result = heic_to_png(&bytes, MAX_PIXELS);
        assert!(
            !matches!(result, Err(MediaError::DecoderPanicked)),
            "decoder panicked with byte {i} flipped"
        );
        if let Ok((png, w, h)) = result {
            let img = image::load_from_memory(&png).expect("valid PNG");
            assert_eq!((img.width(), img.height()), (w, h));
        }
        let _ = probe(&bytes);
    }
}

#[test]
fn non_images_give_none() {
    let random = noise(4096, 42);
    let text = b"Just a plain text file.\nBM is also how this line could start.\n";
    let samples: [&[u8]; 9] = [
        &[],
        &random,
        text,
        b"BMW 320i, 1987, good condition, low mileage",
        b"RIFF\x24\0\0\0WAVEfmt ",
        b"GIF8",
        b"\xFF\xD8",
        b"%PDF-1.7\n",
        b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>",
    ];
    for sample in samples {
        assert_eq!(sniff(sample), None, "{sample:?}");
        assert_eq!(probe(sample), None, "{sample:?}");
    }
}

/// An `ftyp` box with the given major and compatible brands.
fn ftyp(major: &[u8; 4], compatible: &[&[u8; 4]]) -> Vec<u8> {
    let size = 16 + 4 * compatible.len() as u32;
    let mut out = size.to_be_bytes().to_vec();
    out.extend_from_slice(b"ftyp");
    out.extend_from_slice(major);
    out.extend_from_slice(&[0; 4]);
    for brand in compatible {
        out.extend_from_slice(*brand);
    }
    out
}

#[test]
fn heif_brands() {
    assert_eq!(
        sniff(&ftyp(b"heic", &[b"mif1", b"heic"])),
        Some(Format::Heic)
    );
    assert_eq!(sniff(&ftyp(b"mif1", &[b"heic"])), Some(Format::Heic));
    assert_eq!(sniff(&ftyp(b"heix", &[])), Some(Format::Heic));
    assert_eq!(sniff(&ftyp(b"avif", &[b"mif1", b"miaf"])), None);
    assert_eq!(sniff(&ftyp(b"mif1", &[b"avif"])), None);
    assert_eq!(sniff(&ftyp(b"isom", &[b"iso2", b"mp41"])), None);
    assert_eq!(sniff(&ftyp(b"qt  ", &[])), None);
}

#[test]
fn jpeg_reports_stored_dimensions_despite_exif_rotation() {
    let jpeg = encode(&picture(37, 23, false), ImageFormat::Jpeg);
    // APP1 Exif with a single IFD entry: Orientation (0x0112) = 6, "rotate 90° CW".
    let mut tiff = b"II*\0\x08\0\0\0\x01\0".to_vec();
    tiff.extend_from_slice(&[0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0]);
    tiff.extend_from_slice(&[0; 4]);
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let mut rotated = jpeg[..2].to_vec();
    rotated.extend_from_slice(&[0xFF, 0xE1]);
    rotated.extend_from_slice(&(app1.len() as u16 + 2).to_be_bytes());
    rotated.extend_from_slice(&app1);
    rotated.extend_from_slice(&jpeg[2..]);

    assert!(image::load_from_memory(&rotated).is_ok());
    let p = probe(&rotated).expect("probe");
    assert_eq!((p.format, p.width, p.height), (Format::Jpeg, 37, 23));
}

/// A BMP file header followed by a DIB header of `dib` bytes, the rest zero.
fn bmp_header(dib: u32) -> Vec<u8> {
    let mut out = b"BM".to_vec();
    out.extend_from_slice(&[0; 12]);
    out.extend_from_slice(&dib.to_le_bytes());
    out.resize(14 + dib as usize, 0);
    out
}

#[test]
fn bmp_variants() {
    // Top-down bitmap: negative height.
    let mut top_down = bmp_header(40);
    top_down[18..22].copy_from_slice(&37i32.to_le_bytes());
    top_down[22..26].copy_from_slice(&(-23i32).to_le_bytes());
    let p = probe(&top_down).expect("top-down BMP");
    assert_eq!((p.format, p.width, p.height), (Format::Bmp, 37, 23));

    // OS/2 1.x core header: 16-bit sizes.
    let mut core = bmp_header(12);
    core[18..20].copy_from_slice(&37u16.to_le_bytes());
    core[20..22].copy_from_slice(&23u16.to_le_bytes());
    let p = probe(&core).expect("OS/2 BMP");
    assert_eq!((p.format, p.width, p.height), (Format::Bmp, 37, 23));

    // Negative width is invalid.
    let mut bad = bmp_header(40);
    bad[18..22].copy_from_slice(&(-37i32).to_le_bytes());
    bad[22..26].copy_from_slice(&23i32.to_le_bytes());
    assert_eq!(probe(&bad), None);
}

#[test]
fn lossy_webp_header_ignores_scaling_bits() {
    let mut webp = b"RIFF\0\0\0\0WEBPVP8 \0\0\0\0".to_vec();
    webp.extend_from_slice(&[0x10, 0x02, 0x00]); // frame tag: key frame
    webp.extend_from_slice(&[0x9D, 0x01, 0x2A]); // start code
    webp.extend_from_slice(&(37u16 | 0x4000).to_le_bytes()); // width, scale 1
    webp.extend_from_slice(&(23u16 | 0x8000).to_le_bytes()); // height, scale 2
    let p = probe(&webp).expect("lossy WebP");
    assert_eq!((p.format, p.width, p.height), (Format::Webp, 37, 23));
}

#[test]
fn from_extension() {
    let cases = [
        ("jpg", Format::Jpeg),
        ("jpeg", Format::Jpeg),
        (".JPG", Format::Jpeg),
        ("png", Format::Png),
        ("PNG", Format::Png),
        ("webp", Format::Webp),
        ("bmp", Format::Bmp),
        ("tif", Format::Tiff),
        (".tiff", Format::Tiff),
        ("gif", Format::Gif),
        ("heic", Format::Heic),
        ("HEIF", Format::Heic),
        (".heif", Format::Heic),
    ];
    for (ext, format) in cases {
        assert_eq!(Format::from_extension(ext), Some(format), "{ext}");
    }
    for ext in [
        "exe", "svg", "", ".", "..png", "jpg ", "avif", "pdf", "tiff.exe",
    ] {
        assert_eq!(Format::from_extension(ext), None, "{ext:?}");
    }
}

#[test]
fn from_mime() {
    let cases = [
        ("image/jpeg", Format::Jpeg),
        ("image/jpg", Format::Jpeg),
        ("IMAGE/JPEG", Format::Jpeg),
        ("image/png", Format::Png),
        ("image/gif", Format::Gif),
        ("image/bmp", Format::Bmp),
        ("image/x-ms-bmp", Format::Bmp),
        ("image/webp", Format::Webp),
        ("image/tiff", Format::Tiff),
        ("image/heic", Format::Heic),
        ("image/heif", Format::Heic),
        ("image/png; charset=binary", Format::Png),
        ("Image/HEIC;foo=bar", Format::Heic),
    ];
    for (mime, format) in cases {
        assert_eq!(Format::from_mime(mime), Some(format), "{mime}");
    }
    for mime in [
        "text/plain",
        "image/svg+xml",
        "application/octet-stream",
        "image/avif",
        "image",
        "",
        "png",
    ] {
        assert_eq!(Format::from_mime(mime), None, "{mime:?}");
    }
}

#[test]
fn mime_and_extension_round_trip() {
    let all = [
        Format::Jpeg,
        Format::Png,
        Format::Gif,
        Format::Bmp,
        Format::Tiff,
        Format::Webp,
        Format::Heic,
    ];
    for format in all {
        assert_eq!(Format::from_mime(format.mime()), Some(format));
        let ext = format.mime().trim_start_matches("image/");
        assert_eq!(Format::from_extension(ext), Some(format));
    }
    assert_eq!(Format::Heic.mime(), "image/heic");
    assert_eq!(Format::Jpeg.mime(), "image/jpeg");
}
