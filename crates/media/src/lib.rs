//! What the server needs to know about uploaded image bytes: which format
//! they are in ([`sniff`]), how large the picture is ([`probe`]), and a way to
//! turn HEIC/HEIF uploads into PNG ([`heic_to_png`]).
//!
//! Everything here works on byte slices and performs no I/O.

use std::io::Cursor;
use std::panic::{self, AssertUnwindSafe};

use heic_rs::{DecodeOptions, PixelLayout};
use image::codecs::png::PngEncoder;
use image::{ExtendedColorType, ImageDecoder, ImageEncoder};

/// An image format the server accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JPEG / JFIF.
    Jpeg,
    /// PNG.
    Png,
    /// GIF (87a or 89a).
    Gif,
    /// Windows / OS/2 bitmap.
    Bmp,
    /// TIFF, including BigTIFF.
    Tiff,
    /// WebP, lossy or lossless.
    Webp,
    /// HEIC / HEIF with HEVC-coded pictures (AVIF is not included).
    Heic,
}

impl Format {
    /// Canonical MIME type, e.g. `"image/jpeg"`, `"image/heic"`.
    pub fn mime(self) -> &'static str {
        match self {
            Format::Jpeg => "image/jpeg",
            Format::Png => "image/png",
            Format::Gif => "image/gif",
            Format::Bmp => "image/bmp",
            Format::Tiff => "image/tiff",
            Format::Webp => "image/webp",
            Format::Heic => "image/heic",
        }
    }

    /// Format for a file extension in any case, with or without the leading
    /// dot: `jpg jpeg png webp bmp tif tiff gif heic heif`. `None` otherwise.
    pub fn from_extension(ext: &str) -> Option<Format> {
        let ext = ext.strip_prefix('.').unwrap_or(ext);
        let format = match ext.to_ascii_lowercase().as_str() {
            "jpg" | "jpeg" => Format::Jpeg,
            "png" => Format::Png,
            "gif" => Format::Gif,
            "bmp" => Format::Bmp,
            "tif" | "tiff" => Format::Tiff,
            "webp" => Format::Webp,
            "heic" | "heif" => Format::Heic,
            _ => return None,
        };
        Some(format)
    }

    /// Format for a MIME type, case-insensitive, ignoring any parameters
    /// after `;`. Accepts the canonical types plus `image/jpg`,
    /// `image/x-ms-bmp` and `image/heif`.
    pub fn from_mime(mime: &str) -> Option<Format> {
        let essence = mime.split(';').next().unwrap_or_default().trim();
        let format = match essence.to_ascii_lowercase().as_str() {
            "image/jpeg" | "image/jpg" => Format::Jpeg,
            "image/png" => Format::Png,
            "image/gif" => Format::Gif,
            "image/bmp" | "image/x-ms-bmp" => Format::Bmp,
            "image/tiff" => Format::Tiff,
            "image/webp" => Format::Webp,
            "image/heic" | "image/heif" => Format::Heic,
            _ => return None,
        };
        Some(format)
    }
}

/// What the bytes are, from their magic numbers.
///
/// Only the first few dozen bytes are examined (for HEIC, the `ftyp` box),
/// so a short head of the file is enough. `None` for anything unrecognised,
/// including AVIF and other non-HEVC HEIF files.
pub fn sniff(head: &[u8]) -> Option<Format> {
    if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(Format::Jpeg)
    } else if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(Format::Png)
    } else if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
        Some(Format::Gif)
    } else if is_tiff(head) {
        Some(Format::Tiff)
    } else if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        Some(Format::Webp)
    } else if is_bmp(head) {
        Some(Format::Bmp)
    } else if is_heic(head) {
        Some(Format::Heic)
    } else {
        None
    }
}

/// Classic TIFF (`II*\0`, `MM\0*`) or BigTIFF (`II+\0`, `MM\0+`).
fn is_tiff(head: &[u8]) -> bool {
    [b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"]
        .iter()
        .any(|magic| head.starts_with(*magic))
}

/// `BM` followed, at offset 14, by the size of a known DIB header. The second
/// check keeps text that happens to start with "BM" from matching.
fn is_bmp(head: &[u8]) -> bool {
    head.starts_with(b"BM")
        && le_u32(head, 14)
            .is_some_and(|dib| matches!(dib, 12 | 16 | 40 | 52 | 56 | 64 | 108 | 124))
}

/// An ISO-BMFF `ftyp` box whose brands mark an HEVC-coded HEIF file.
fn is_heic(head: &[u8]) -> bool {
    if head.len() < 12 || &head[4..8] != b"ftyp" {
        return false;
    }
    let Some(size) = be_u32(head, 0).and_then(|s| usize::try_from(s).ok()) else {
        return false;
    };
    // major brand + minor version, then whole compatible brands.
    if size < 16 || size % 4 != 0 {
        return false;
    }
    let end = size.min(head.len());
    let compatible = head.get(16..end).unwrap_or_default().chunks_exact(4);
    let brands: Vec<&[u8]> = std::iter::once(&head[8..12]).chain(compatible).collect();
    let has = |set: &[&[u8; 4]]| brands.iter().any(|b| set.iter().any(|s| b == s));

    if has(&[b"avif", b"avis", b"avio"]) {
        return false;
    }
    // HEVC brands, then the generic HEIF brands (which in practice carry HEVC
    // when no AVIF brand is present).
    has(&[
        b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs",
    ]) || has(&[b"mif1", b"msf1", b"mif2", b"miaf"])
}

/// Format and pixel dimensions of an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    /// The detected format.
    pub format: Format,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

/// Format and pixel dimensions from the start of a file.
///
/// Meant to be given the first 64 KiB (or the whole file when smaller).
/// Returns `None` when the bytes are not a recognised image or the head does
/// not contain the dimensions.
///
/// - JPEG: the stored (coded) dimensions from the SOF marker; EXIF
///   orientation is *not* applied, so a portrait phone photo may report
///   landscape dimensions.
/// - TIFF: the first IFD may live anywhere in the file (often at the end);
///   if it is not inside `head` the result is `None`.
/// - HEIC: the dimensions of the primary image as [`heic_to_png`] would
///   produce them (with `irot`/`imir`/`clap` applied), read from the `meta`
///   box; when that cannot be fully parsed, the largest `ispe` box is used.
pub fn probe(head: &[u8]) -> Option<Probe> {
    let format = sniff(head)?;
    let (width, height) = match format {
        Format::Bmp => bmp_dimensions(head)?,
        Format::Webp => webp_dimensions(head)?,
        Format::Heic => heic_dimensions(head)?,
        Format::Jpeg | Format::Png | Format::Gif | Format::Tiff => imagesize_dimensions(head)?,
    };
    (width > 0 && height > 0).then_some(Probe {
        format,
        width,
        height,
    })
}

fn imagesize_dimensions(head: &[u8]) -> Option<(u32, u32)> {
    let size = imagesize::blob_size(head).ok()?;
    Some((
        u32::try_from(size.width).ok()?,
        u32::try_from(size.height).ok()?,
    ))
}

/// BMP header: OS/2 1.x core headers store 16-bit sizes, everything newer
/// signed 32-bit ones, where a negative height means a top-down bitmap.
fn bmp_dimensions(head: &[u8]) -> Option<(u32, u32)> {
    if le_u32(head, 14)? == 12 {
        let w = u16::from_le_bytes(head.get(18..20)?.try_into().ok()?);
        let h = u16::from_le_bytes(head.get(20..22)?.try_into().ok()?);
        return Some((w.into(), h.into()));
    }
    let w = i32::try_from(le_u32(head, 18)?).ok()?;
    let h = le_u32(head, 22)? as i32;
    Some((u32::try_from(w).ok()?, h.unsigned_abs()))
}

/// WebP: the first chunk after the RIFF header is `VP8 ` (lossy), `VP8L`
/// (lossless) or `VP8X` (extended, with the canvas size).
fn webp_dimensions(head: &[u8]) -> Option<(u32, u32)> {
    match head.get(12..16)? {
        b"VP8 " => {
            // 3-byte frame tag (bit 0 clear on a key frame), start code, then
            // 14-bit width and height with 2 bits of scaling each.
            if head.get(20)? & 1 != 0 || head.get(23..26)? != [0x9D, 0x01, 0x2A] {
                return None;
            }
            let w = u16::from_le_bytes(head.get(26..28)?.try_into().ok()?) & 0x3FFF;
            let h = u16::from_le_bytes(head.get(28..30)?.try_into().ok()?) & 0x3FFF;
            Some((w.into(), h.into()))
        }
        b"VP8L" => {
            if *head.get(20)? != 0x2F {
                return None;
            }
            let bits = le_u32(head, 21)?;
            Some(((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1))
        }
        b"VP8X" => {
            let b = head.get(24..30)?;
            let w = u32::from_le_bytes([b[0], b[1], b[2], 0]) + 1;
            let h = u32::from_le_bytes([b[3], b[4], b[5], 0]) + 1;
            Some((w, h))
        }
        _ => None,
    }
}

/// HEIC: the full container parse when the head allows it, else `ispe`.
fn heic_dimensions(head: &[u8]) -> Option<(u32, u32)> {
    let parsed = panic::catch_unwind(|| heic_rs::probe(head)).ok();
    match parsed {
        Some(Ok(info)) => Some((info.width, info.height)),
        _ => imagesize_dimensions(head),
    }
}

fn le_u32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

/// Why [`heic_to_png`] failed.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The bytes are not a HEIC/HEIF file.
    #[error("not a HEIC/HEIF file")]
    NotHeic,
    /// A well-formed file using a feature the decoder does not implement.
    #[error("unsupported HEIC file: {0}")]
    Unsupported(String),
    /// The image declares more pixels than the limit it was converted with.
    #[error("the image declares {pixels} pixels, more than the limit of {max_pixels}")]
    TooLarge {
        /// Pixels the file declares.
        pixels: u64,
        /// The limit.
        max_pixels: u64,
    },
    /// The file is truncated or corrupt.
    #[error("could not decode HEIC file: {0}")]
    Decode(String),
    /// The HEIC decoder panicked on this input (a decoder bug; the input is
    /// most likely malformed).
    #[error("the HEIC decoder failed unexpectedly")]
    DecoderPanicked,
    /// Encoding the decoded pixels as PNG failed.
    #[error("could not encode PNG: {0}")]
    Encode(String),
}

impl From<heic_rs::Error> for MediaError {
    fn from(err: heic_rs::Error) -> Self {
        match err {
            heic_rs::Error::Unsupported(what) => MediaError::Unsupported(what.to_owned()),
            heic_rs::Error::PixelLimit { pixels, max_pixels } => {
                MediaError::TooLarge { pixels, max_pixels }
            }
            other => MediaError::Decode(other.to_string()),
        }
    }
}

/// Decode a HEIC/HEIF file fully and re-encode it as PNG.
///
/// Returns the PNG bytes and its width and height. Rotation, mirroring and
/// cropping stored in the file are applied; an alpha plane, when present,
/// becomes an RGBA PNG; an embedded ICC profile is carried over. Images over
/// `max_pixels` (and always over [`MAX_PIXELS`]) are refused with
/// [`MediaError::TooLarge`] before they are decoded. CPU-heavy: call it off the
/// async executor (e.g. `spawn_blocking`).
pub fn heic_to_png(bytes: &[u8], max_pixels: u64) -> Result<(Vec<u8>, u32, u32), MediaError> {
    if sniff(bytes) != Some(Format::Heic) {
        return Err(MediaError::NotHeic);
    }
    // The decoder promises not to panic on bad input; it is young, so a
    // panic is still turned into an error rather than taking the caller down.
    let (image, icc) = panic::catch_unwind(AssertUnwindSafe(|| {
        decode_heic(bytes, pixel_limit(max_pixels))
    }))
    .map_err(|_| MediaError::DecoderPanicked)??;

    let color = match image.layout {
        PixelLayout::Rgba8 => ExtendedColorType::Rgba8,
        _ => ExtendedColorType::Rgb8,
    };
    let mut png = Vec::new();
    let mut encoder = PngEncoder::new(Cursor::new(&mut png));
    if let Some(icc) = icc {
        // Only fails for encoders without ICC support; PNG has it.
        let _ = encoder.set_icc_profile(icc);
    }
    encoder
        .write_image(&image.data, image.width, image.height, color)
        .map_err(|e| MediaError::Encode(e.to_string()))?;
    Ok((png, image.width, image.height))
}

/// Decode to 8-bit RGB (RGBA when the file has alpha) and fetch the primary
/// image's ICC profile, if any.
fn decode_heic(
    bytes: &[u8],
    max_pixels: u64,
) -> Result<(heic_rs::Image, Option<Vec<u8>>), MediaError> {
    let has_alpha = heic_rs::probe(bytes).is_ok_and(|info| info.has_alpha);
    let layout = if has_alpha {
        PixelLayout::Rgba8
    } else {
        PixelLayout::Rgb8
    };
    let options = DecodeOptions::default()
        .with_layout(layout)
        .with_max_pixels(Some(max_pixels));
    let image = heic_rs::decode(bytes, &options)?;
    if image.layout != layout
        || image.data.len() as u64 != image.pixel_count() * layout.bytes_per_pixel() as u64
    {
        return Err(MediaError::Decode(
            "decoder returned an unexpected pixel buffer".into(),
        ));
    }
    let icc = heic_rs::context::Context::open(bytes)
        .and_then(|ctx| ctx.props(ctx.meta.primary))
        .ok()
        .and_then(|props| props.icc.map(<[u8]>::to_vec));
    Ok((image, icc))
}

/// The size an image is displayed at: its stored size with the EXIF orientation applied, as
/// viewers (and the Python client's Pillow `exif_transpose`) show it. `bytes` should be the
/// whole file; when no orientation can be read the stored size is returned.
pub fn display_size(bytes: &[u8], probe: &Probe) -> (u32, u32) {
    use image::metadata::Orientation;
    let cursor = Cursor::new(bytes);
    let orientation = match probe.format {
        Format::Jpeg => {
            image::codecs::jpeg::JpegDecoder::new(cursor).and_then(|mut d| d.orientation())
        }
        Format::Webp => {
            image::codecs::webp::WebPDecoder::new(cursor).and_then(|mut d| d.orientation())
        }
        Format::Tiff => {
            image::codecs::tiff::TiffDecoder::new(cursor).and_then(|mut d| d.orientation())
        }
        _ => Ok(Orientation::NoTransforms),
    };
    match orientation {
        Ok(
            Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH,
        ) => (probe.height, probe.width),
        _ => (probe.width, probe.height),
    }
}

/// Most pixels an uploaded image may ever declare (128 Mi, about 134 MP): the ceiling of
/// every `max_pixels` this crate takes, and the limit a server uses by default. Anything
/// larger is refused before decoding (decompression bombs); phone cameras make 48 MP today.
pub const MAX_PIXELS: u64 = 128 * 1024 * 1024;

/// The limit in effect for a caller's `max_pixels`: never above [`MAX_PIXELS`].
fn pixel_limit(max_pixels: u64) -> u64 {
    max_pixels.min(MAX_PIXELS)
}

/// Why an uploaded image was refused by [`verify`].
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The image declares more pixels than the limit.
    #[error("the image declares {pixels} pixels, more than the limit of {limit}")]
    TooManyPixels {
        /// Pixels declared.
        pixels: u64,
        /// The limit in effect.
        limit: u64,
    },
    /// The bytes do not decode as an image of their format (truncated or corrupt).
    #[error("the image is truncated or corrupt: {0}")]
    Corrupt(String),
}

/// Checks that a whole file is an intact image of `probe.format`, refusing images that
/// declare more than `max_pixels` (and always more than [`MAX_PIXELS`]) before anything
/// else, decompression bombs among them.
///
/// JPEG and PNG, nearly every upload, are checked by their structure without decoding pixels
/// (a full decode costs milliseconds per photo): every JPEG segment is in bounds and the
/// entropy-coded data runs to an end-of-image marker; every PNG chunk is in bounds with a
/// matching CRC-32, from `IHDR` through `IDAT` to `IEND`. So a truncated file, or a PNG
/// with any byte changed, is refused. Other formats are decoded whole; HEIC is checked by
/// converting it ([`heic_to_png`]). CPU-bound: call it off the async executor.
pub fn verify(bytes: &[u8], probe: &Probe, max_pixels: u64) -> Result<(), VerifyError> {
    let limit = pixel_limit(max_pixels);
    let pixels = u64::from(probe.width) * u64::from(probe.height);
    if pixels > limit {
        return Err(VerifyError::TooManyPixels { pixels, limit });
    }
    let format = match probe.format {
        Format::Jpeg => return jpeg_structure(bytes).map_err(VerifyError::Corrupt),
        Format::Png => return png_structure(bytes).map_err(VerifyError::Corrupt),
        Format::Heic => return Ok(()),
        other => decoded_whole(other).expect("the other formats are decoded whole"),
    };
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    // Decoders also allocate for tables and strips, whatever the pixels: a low limit still
    // lets them have 64 MiB.
    limits.max_alloc = Some((limit * 8).max(64 << 20));
    reader.limits(limits);
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| reader.decode().map(|_| ())));
    match outcome {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(VerifyError::Corrupt(e.to_string())),
        Err(_) => Err(VerifyError::Corrupt("the decoder failed".into())),
    }
}

/// The decoder [`verify`] checks a format with when it decodes the whole image: none for
/// JPEG and PNG (checked by their structure) and HEIC (checked by [`heic_to_png`]).
fn decoded_whole(format: Format) -> Option<image::ImageFormat> {
    match format {
        Format::Gif => Some(image::ImageFormat::Gif),
        Format::Bmp => Some(image::ImageFormat::Bmp),
        Format::Tiff => Some(image::ImageFormat::Tiff),
        Format::Webp => Some(image::ImageFormat::WebP),
        Format::Jpeg | Format::Png | Format::Heic => None,
    }
}

/// The most memory, in bytes, that checking a whole file may take beyond the file itself:
/// [`verify`], or [`heic_to_png`] for HEIC. Reads headers only, so a server can reserve the
/// memory before it starts the check.
///
/// - JPEG and PNG: 0, as their structure is checked without decoding pixels.
/// - GIF, BMP, TIFF and WebP are decoded whole: the decoded image plus the decoder's
///   working copy, counted as twice the decoded size or that size plus 5 bytes a pixel,
///   whichever is more. Measured on 121-megapixel RGB files: TIFF peaked at about twice
///   the decoded size, lossless WebP at that size plus about 4 bytes a pixel.
/// - HEIC: 12 bytes a pixel (the decoder's planes, the RGB(A) image and the PNG made of it).
/// - 0 for bytes refused before any decoding: not an image, or over `max_pixels` (the
///   limit the check is given).
pub fn check_memory(bytes: &[u8], max_pixels: u64) -> u64 {
    let limit = pixel_limit(max_pixels);
    let Some(format) = sniff(bytes) else {
        return 0;
    };
    let pixels = || probe(bytes).map(|p| u64::from(p.width) * u64::from(p.height));
    if format == Format::Heic {
        // The decoder finds the size itself when the header read here cannot.
        let pixels = pixels().unwrap_or(limit);
        return if pixels > limit { 0 } else { pixels * 12 };
    }
    // JPEG and PNG, nearly every upload, are answered without reading their size.
    let Some(decoder) = decoded_whole(format) else {
        return 0;
    };
    let Some(pixels) = pixels().filter(|p| *p <= limit) else {
        return 0;
    };
    let decoded = panic::catch_unwind(|| {
        image::ImageReader::with_format(Cursor::new(bytes), decoder)
            .into_decoder()
            .map(|d| d.total_bytes())
    });
    // A header the decoder refuses fails the check before anything is decoded.
    let Ok(Ok(decoded)) = decoded else {
        return 0;
    };
    (2 * decoded).max(decoded + 5 * pixels)
}

/// Walks a JPEG's markers from start-of-image to end-of-image (bytes after it, which some
/// cameras append, are allowed).
fn jpeg_structure(b: &[u8]) -> Result<(), String> {
    if !b.starts_with(&[0xFF, 0xD8]) {
        return Err("no JPEG start-of-image marker".into());
    }
    let (mut frame, mut scan) = (false, false);
    let mut i = 2;
    loop {
        // A marker: 0xFF, optional 0xFF fill bytes, then the marker code.
        if b.get(i) != Some(&0xFF) {
            return Err(if i >= b.len() {
                "truncated: no end-of-image marker".into()
            } else {
                format!("expected a marker at byte {i}")
            });
        }
        while b.get(i) == Some(&0xFF) {
            i += 1;
        }
        let Some(&code) = b.get(i) else {
            return Err("truncated: no end-of-image marker".into());
        };
        i += 1;
        match code {
            0xD9 => {
                return if frame && scan {
                    Ok(())
                } else {
                    Err("end of image before any frame and scan".into())
                };
            }
            0x01 | 0xD0..=0xD7 => continue,
            0x00 | 0xD8 => return Err(format!("unexpected marker 0x{code:02X} at byte {i}")),
            _ => {}
        }
        let len = match (b.get(i), b.get(i + 1)) {
            (Some(&hi), Some(&lo)) => usize::from(hi) << 8 | usize::from(lo),
            _ => return Err("truncated inside a segment header".into()),
        };
        if len < 2 || i + len > b.len() {
            return Err(format!(
                "segment 0x{code:02X} runs past the end of the file"
            ));
        }
        i += len;
        match code {
            0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => frame = true,
            0xDA => {
                if !frame {
                    return Err("scan before any frame header".into());
                }
                scan = true;
                // Entropy-coded data: a 0xFF in it is followed by 0x00 (stuffing) or a
                // restart marker; anything else starts the next marker.
                loop {
                    let Some(at) = memchr::memchr(0xFF, &b[i..]) else {
                        return Err("truncated: no end-of-image marker".into());
                    };
                    i += at;
                    match b.get(i + 1) {
                        None => return Err("truncated: no end-of-image marker".into()),
                        Some(0x00 | 0xD0..=0xD7) => i += 2,
                        Some(0xFF) => i += 1,
                        Some(_) => break,
                    }
                }
            }
            _ => {}
        }
    }
}

/// Walks a PNG's chunks: `IHDR` first, at least one `IDAT`, every CRC-32 right, `IEND` last.
fn png_structure(b: &[u8]) -> Result<(), String> {
    const SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    if !b.starts_with(&SIGNATURE) {
        return Err("no PNG signature".into());
    }
    let mut i = SIGNATURE.len();
    let mut data = false;
    let mut first = true;
    loop {
        let Some(header) = b.get(i..i + 8) else {
            return Err("truncated: no IEND chunk".into());
        };
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let kind = &header[4..8];
        let end = i + 8 + len;
        let Some(stored) = b.get(end..end + 4) else {
            return Err(format!(
                "truncated inside the {} chunk",
                String::from_utf8_lossy(kind)
            ));
        };
        let mut crc = crc32fast::Hasher::new();
        crc.update(&b[i + 4..end]);
        if crc.finalize().to_be_bytes() != stored {
            return Err(format!(
                "the {} chunk fails its CRC check",
                String::from_utf8_lossy(kind)
            ));
        }
        if first && (kind != b"IHDR" || len != 13) {
            return Err("the first chunk is not a valid IHDR".into());
        }
        first = false;
        match kind {
            b"IDAT" => data = true,
            b"IEND" => {
                return if data {
                    Ok(())
                } else {
                    Err("no image data (IDAT) before IEND".into())
                };
            }
            _ => {}
        }
        i = end + 4;
    }
}

#[cfg(test)]
mod verify_tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    }

    fn jpeg(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x * 7) as u8, (y * 13) as u8, (x ^ y) as u8])
        });
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
        out.into_inner()
    }

    #[test]
    fn every_truncation_of_a_jpeg_or_png_is_refused() {
        for good in [jpeg(40, 30), png(40, 30)] {
            let p = probe(&good).unwrap();
            verify(&good, &p, MAX_PIXELS).unwrap();
            for cut in 0..good.len() {
                assert!(
                    matches!(
                        verify(&good[..cut], &p, MAX_PIXELS),
                        Err(VerifyError::Corrupt(_))
                    ),
                    "{:?} cut at {cut} of {} passed",
                    p.format,
                    good.len()
                );
            }
        }
    }

    #[test]
    fn jpeg_trailing_bytes_allowed_and_garbage_refused() {
        let good = jpeg(16, 16);
        let p = probe(&good).unwrap();
        let mut trailer = good.clone();
        trailer.extend_from_slice(b"camera trailer");
        verify(&trailer, &p, MAX_PIXELS).unwrap();
        // A segment length pointing past the end.
        let mut bad = good.clone();
        bad[4] = 0xFF;
        bad[5] = 0xFF;
        assert!(verify(&bad, &p, MAX_PIXELS).is_err());
        // Start and end markers with nothing in between.
        assert!(verify(&[0xFF, 0xD8, 0xFF, 0xD9], &p, MAX_PIXELS).is_err());
    }

    #[test]
    fn png_trailing_bytes_allowed_and_a_cut_iend_refused() {
        let good = png(8, 6);
        let p = probe(&good).unwrap();
        let mut trailer = good.clone();
        trailer.extend_from_slice(b"appended by some tool");
        verify(&trailer, &p, MAX_PIXELS).unwrap();
        assert!(verify(&good[..good.len() - 1], &p, MAX_PIXELS).is_err());
    }

    #[test]
    fn any_changed_byte_of_a_png_is_refused() {
        let good = png(20, 10);
        let p = probe(&good).unwrap();
        for at in (8..good.len()).step_by(7) {
            let mut bad = good.clone();
            bad[at] ^= 0x20;
            assert!(
                verify(&bad, &p, MAX_PIXELS).is_err(),
                "byte {at} changed and passed"
            );
        }
    }

    #[test]
    fn whole_images_pass_truncated_ones_and_bombs_do_not() {
        let good = png(64, 48);
        let p = probe(&good).unwrap();
        assert!(verify(&good, &p, MAX_PIXELS).is_ok());
        let cut = &good[..good.len() / 2];
        assert!(matches!(
            verify(cut, &probe(cut).unwrap(), MAX_PIXELS),
            Err(VerifyError::Corrupt(_))
        ));
        let bomb = Probe {
            format: Format::Png,
            width: 100_000,
            height: 100_000,
        };
        assert!(matches!(
            verify(&good, &bomb, MAX_PIXELS),
            Err(VerifyError::TooManyPixels { .. })
        ));
    }

    fn encoded(img: image::DynamicImage, format: image::ImageFormat) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    #[test]
    fn check_memory_counts_decoded_pixels_only_where_the_check_decodes() {
        assert_eq!(check_memory(&jpeg(300, 200), MAX_PIXELS), 0);
        assert_eq!(check_memory(&png(300, 200), MAX_PIXELS), 0);
        let (w, h) = (300u64, 200u64);
        let rgb = image::DynamicImage::ImageRgb8(image::RgbImage::new(w as u32, h as u32));
        for format in [image::ImageFormat::Tiff, image::ImageFormat::Bmp] {
            // RGB, 3 bytes a pixel: the larger rule is decoded + 5 bytes a pixel.
            assert_eq!(
                check_memory(&encoded(rgb.clone(), format), MAX_PIXELS),
                8 * w * h,
                "{format:?}"
            );
        }
        let rgba16 = image::DynamicImage::ImageRgba16(image::ImageBuffer::new(w as u32, h as u32));
        let tiff = encoded(rgba16, image::ImageFormat::Tiff);
        assert_eq!(
            check_memory(&tiff, MAX_PIXELS),
            16 * w * h,
            "16-bit RGBA TIFF: twice 8 bytes a pixel"
        );
        let gif = encoded(rgb.clone(), image::ImageFormat::Gif);
        assert_eq!(
            check_memory(&gif, MAX_PIXELS),
            9 * w * h,
            "GIF decodes to RGBA"
        );
        // Refused before decoding: a cut header, or more pixels than the limit.
        assert_eq!(check_memory(&tiff[..8], MAX_PIXELS), 0);
        let mut bomb = encoded(rgb, image::ImageFormat::Bmp);
        bomb[18..22].copy_from_slice(&100_000u32.to_le_bytes());
        bomb[22..26].copy_from_slice(&100_000u32.to_le_bytes());
        assert_eq!(check_memory(&bomb, MAX_PIXELS), 0);
        assert_eq!(check_memory(b"not an image at all", MAX_PIXELS), 0);
    }

    #[test]
    fn a_lower_limit_refuses_larger_images_before_decoding() {
        let (w, h) = (40u64, 30u64);
        let rgb = image::DynamicImage::ImageRgb8(image::RgbImage::new(w as u32, h as u32));
        let gif = encoded(rgb, image::ImageFormat::Gif);
        let at_the_limit = check_memory(&gif, w * h);
        assert_eq!(at_the_limit, 9 * w * h);
        assert_eq!(
            check_memory(&gif, w * h - 1),
            0,
            "refused, nothing reserved"
        );
        for bytes in [png(40, 30), jpeg(40, 30), gif] {
            let p = probe(&bytes).unwrap();
            assert!(verify(&bytes, &p, w * h).is_ok(), "{:?}", p.format);
            match verify(&bytes, &p, w * h - 1) {
                Err(VerifyError::TooManyPixels { pixels, limit }) => {
                    assert_eq!((pixels, limit), (w * h, w * h - 1), "{:?}", p.format)
                }
                other => panic!("{:?}: {other:?}", p.format),
            }
        }
        // No limit goes above the ceiling.
        let bomb = Probe {
            format: Format::Png,
            width: 100_000,
            height: 100_000,
        };
        match verify(&png(4, 4), &bomb, u64::MAX) {
            Err(VerifyError::TooManyPixels { limit, .. }) => assert_eq!(limit, MAX_PIXELS),
            other => panic!("{other:?}"),
        }
    }
}
