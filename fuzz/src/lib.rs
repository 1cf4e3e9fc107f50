//! Invariant checks the fuzz targets run on each input; each panics when an invariant breaks.
//!
//! They live in a library so that the seed inputs can be replayed by a plain `cargo test`
//! (see the test at the end) without libFuzzer.

use pictograph_core::annotation::{
    self, count_by_type, min_confidence, to_legacy, uses_extensions, validate_annotations,
    validate_annotations_with, FieldError, ValidateOptions,
};
use pictograph_core::form::{self, Fields, RegisterFields, UploadFields};
use pictograph_core::names::{self, Status};
use serde_json::Value;
use std::path::{Component, Path};

/// Class names the annotation target also validates against.
const CLASSES: [&str; 2] = ["car", "person"];

/// Annotation validation, canonical and shorthand: an input is a JSON list of annotations
/// (or a save body `{"annotations": [...]}`).
///
/// * an accepted list keeps every annotation, in canonical form, and re-validates to itself;
/// * whatever the strict format accepts, the extended one accepts identically;
/// * the legacy form of an extended list is accepted by the strict format unchanged;
/// * a list accepted against a class list is accepted without it, identically;
/// * a refused list reports at least one located error.
pub fn annotations(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let list = match value.get("annotations") {
        Some(inner) => inner.clone(),
        None => value,
    };
    let classes: Vec<String> = CLASSES.iter().map(|c| c.to_string()).collect();
    let mut unrestricted = Vec::new();
    for cls in [None, Some(classes.as_slice())] {
        let strict = validate_annotations(&list, cls);
        let extended = validate_annotations_with(&list, cls, ValidateOptions::EXTENDED);
        check_outcome(&list, cls, ValidateOptions::STRICT, &strict);
        check_outcome(&list, cls, ValidateOptions::EXTENDED, &extended);
        if let Ok(s) = &strict {
            assert_eq!(
                extended.as_ref().ok(),
                Some(s),
                "strict and extended differ"
            );
        }
        if let Ok(ext) = &extended {
            let legacy: Vec<Value> = ext.iter().map(to_legacy).collect();
            let again = validate_annotations(&Value::Array(legacy.clone()), cls);
            assert_eq!(again.as_ref().ok(), Some(&legacy), "legacy form refused");
        }
        match cls {
            None => unrestricted = vec![strict, extended],
            Some(_) => {
                for (restricted, free) in [strict, extended].iter().zip(&unrestricted) {
                    if let Ok(r) = restricted {
                        assert_eq!(free.as_ref().ok(), Some(r), "classes changed the output");
                    }
                }
            }
        }
    }
}

fn check_outcome(
    input: &Value,
    classes: Option<&[String]>,
    options: ValidateOptions,
    outcome: &Result<Vec<Value>, Vec<FieldError>>,
) {
    match outcome {
        Ok(out) => {
            let items = input.as_array().expect("only a list is accepted");
            assert_eq!(out.len(), items.len(), "an annotation was dropped");
            let mut ids = std::collections::HashSet::new();
            for ann in out {
                let obj = ann.as_object().expect("canonical annotations are objects");
                let id = obj["id"].as_str().expect("string id");
                assert!(!id.trim().is_empty(), "blank id accepted");
                assert!(ids.insert(id), "duplicate id accepted: {id}");
                let name = obj["name"].as_str().expect("string name");
                assert!(!name.trim().is_empty());
                if let Some(cls) = classes.filter(|c| !c.is_empty()) {
                    assert!(cls.iter().any(|c| c == name), "{name} is not a class");
                }
                let kind = obj["type"].as_str().expect("string type");
                assert!(annotation::ANNOTATION_TYPES.contains(&kind), "{kind}");
                let c = obj["confidence"].as_f64().expect("numeric confidence");
                assert!((0.0..=1.0).contains(&c), "confidence {c}");
                assert!(obj.contains_key("attributes"));
                if !options.extensions {
                    assert!(!uses_extensions(ann), "extension in strict output: {ann}");
                }
            }
            assert_eq!(count_by_type(out).iter().sum::<usize>(), out.len());
            if let Some(m) = min_confidence(out) {
                assert!((0.0..=1.0).contains(&m));
            }
            let again = validate_annotations_with(&Value::Array(out.clone()), classes, options);
            assert_eq!(
                again.as_ref().ok(),
                Some(out),
                "canonical output not a fixed point"
            );
        }
        Err(errors) => {
            assert!(!errors.is_empty(), "refused without an error");
            for e in errors {
                assert!(
                    e.loc.len() >= 2 && e.loc[0] == "body" && e.loc[1] == "annotations",
                    "error located outside the body: {e:?}"
                );
                assert!(!e.msg.is_empty() && !e.kind.is_empty(), "{e:?}");
            }
        }
    }
}

/// The content types the upload target picks from with its first byte.
const CONTENT_TYPES: [&str; 4] = [
    "application/x-www-form-urlencoded",
    "application/json",
    "APPLICATION/X-WWW-FORM-URLENCODED; charset=utf-8",
    "",
];

/// Upload-URL and register request parsing: the first byte picks a content type, the rest
/// is the body.
///
/// * a form re-encoded from its fields parses back to the same fields; a JSON body gives
///   one field per key;
/// * the upload and register fields hold only non-empty (register: trimmed) values, the
///   upload id never keeps the `gs://local/` prefix, dimensions are positive;
/// * the names and folders in them obey the [`names`] invariants.
pub fn upload_form(data: &[u8]) {
    let Some((selector, body)) = data.split_first() else {
        return;
    };
    let content_type = CONTENT_TYPES[usize::from(*selector) % CONTENT_TYPES.len()];
    let fields = match form::fields(content_type, body) {
        Ok(f) => f,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    if content_type
        .to_ascii_lowercase()
        .starts_with("application/x-www")
    {
        let encoded = encode_form(&fields);
        assert_eq!(
            form::urlencoded(encoded.as_bytes()).as_ref(),
            Ok(&fields),
            "re-encoded form differs: {encoded}"
        );
    } else {
        let v: Value = serde_json::from_slice(body).expect("accepted as JSON");
        let keys: Vec<&String> = v.as_object().expect("an object").keys().collect();
        assert_eq!(keys.len(), fields.len());
        assert!(keys.iter().all(|k| fields.contains_key(*k)));
    }

    for u in [
        UploadFields::single(&fields),
        UploadFields::bulk_item(&fields),
    ] {
        for v in [
            &u.dataset_id,
            &u.dataset,
            &u.filename,
            &u.folder,
            &u.content_type,
        ]
        .into_iter()
        .flatten()
        {
            assert!(!v.is_empty(), "empty upload field kept");
        }
        assert_eq!(
            u.filename.as_deref(),
            fields
                .get("filename")
                .map(String::as_str)
                .filter(|f| !f.is_empty())
        );
        if let Some(name) = &u.filename {
            filename(name);
        }
        if let Some(folder) = &u.folder {
            folder_path(folder);
        }
    }

    let r = RegisterFields::parse(&fields);
    for v in [&r.dataset_id, &r.dataset, &r.filename, &r.folder]
        .into_iter()
        .flatten()
    {
        assert!(
            !v.is_empty() && v.trim() == v,
            "untrimmed register field {v:?}"
        );
    }
    assert_eq!(
        r.dataset_ref(),
        r.dataset_id.as_deref().or(r.dataset.as_deref())
    );
    if let Some(id) = &r.upload_id {
        assert!(!id.starts_with(form::GCS_PREFIX), "prefix kept: {id}");
        upload_id(id);
    }
    assert!(r.width.is_none_or(|w| w > 0) && r.height.is_none_or(|h| h > 0));
    if let Some(name) = &r.filename {
        filename(name);
    }
    if let Some(folder) = &r.folder {
        folder_path(folder);
    }
}

/// A urlencoded form of `fields`, every byte but letters and digits escaped.
fn encode_form(fields: &Fields) -> String {
    let enc = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Name and path normalisation: the input (as UTF-8) as a folder path, file name, dataset
/// name, extension, status, blob hash and upload id; the input bytes as a blob hash too.
pub fn names(data: &[u8]) {
    blob_hash_of(data);
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    folder_path(s);
    filename(s);
    dataset_name(s);
    extension(s);
    upload_id(s);
    if let Some([a, b, name]) = names::blob_segments(s) {
        blob_path(a, b, name);
        assert_eq!(name, s);
    }
    if let Some(status) = Status::parse(s) {
        assert_eq!(status.as_str(), s);
    }
}

/// A root the path checks join names under.
const ROOT: &str = "/srv/pictograph";

/// Asserts that `rel` joined under [`ROOT`] adds exactly `n` plain components.
fn stays_under_root(rel: &str, n: usize) {
    let root = Path::new(ROOT);
    let joined = root.join(rel);
    assert!(joined.starts_with(root), "{rel:?} escapes the root");
    let added: Vec<Component> = joined
        .components()
        .skip(root.components().count())
        .collect();
    assert_eq!(added.len(), n, "{rel:?} is not {n} components");
    assert!(
        added.iter().all(|c| matches!(c, Component::Normal(_))),
        "{rel:?} has a special component"
    );
}

fn folder_path(raw: &str) {
    let out = names::folder_path(raw);
    let has_parent = raw.trim().split(['/', '\\']).any(|seg| seg.trim() == "..");
    let p = match out {
        Ok(p) => p,
        Err(e) => {
            assert!(!e.0.is_empty());
            return;
        }
    };
    assert!(!has_parent, "{raw:?} has a '..' segment but became {p:?}");
    assert!(p.starts_with('/'), "{p:?}");
    assert!(!p.contains(['\0', '\\']), "{p:?}");
    assert!(!p.chars().any(char::is_control), "{p:?}");
    assert!(p.len() <= names::MAX_FOLDER);
    if p != "/" {
        for seg in p[1..].split('/') {
            assert!(
                !seg.is_empty() && seg != "." && seg != ".." && seg.trim() == seg,
                "segment {seg:?} in {p:?}"
            );
        }
        stays_under_root(&p[1..], p[1..].split('/').count());
    }
    assert_eq!(names::folder_path(&p).as_ref(), Ok(&p), "not idempotent");
}

fn filename(raw: &str) {
    let Ok(n) = names::filename(raw) else {
        return;
    };
    assert!(!n.is_empty() && n.trim() == n && n.len() <= names::MAX_FILENAME);
    assert!(n != "." && n != "..", "{n:?}");
    assert!(
        !n.contains(['/', '\\']) && !n.chars().any(char::is_control),
        "{n:?}"
    );
    stays_under_root(&n, 1);
    assert_eq!(names::filename(&n).as_ref(), Ok(&n), "not idempotent");
    let copy = names::numbered(&n, 2);
    assert_ne!(copy, n);
    assert_eq!(
        names::extension(&copy),
        names::extension(&n),
        "{n:?} → {copy:?}"
    );
}

fn dataset_name(raw: &str) {
    let Ok(d) = names::dataset_name(raw) else {
        return;
    };
    assert!(!d.is_empty() && d.trim() == d);
    assert!(d.chars().count() <= names::MAX_DATASET_NAME);
    assert!(!d.chars().any(char::is_control));
    assert_eq!(names::dataset_name(&d).as_ref(), Ok(&d), "not idempotent");
}

fn extension(raw: &str) {
    if let Some(e) = names::extension(raw) {
        assert!(!e.is_empty() && !e.contains('.'), "{e:?}");
        assert_eq!(e, e.to_ascii_lowercase());
        assert!(raw.to_ascii_lowercase().ends_with(&format!(".{e}")));
    }
}

fn upload_id(raw: &str) {
    if names::is_upload_id(raw) {
        stays_under_root(&format!("uploads/{raw}"), 2);
    }
}

fn blob_path(a: &str, b: &str, name: &str) {
    assert!(names::is_blob_hash(name));
    assert_eq!((a, b), (&name[0..2], &name[2..4]));
    stays_under_root(&format!("blobs/{a}/{b}/{name}"), 4);
}

/// The input's first 32 bytes (zero-padded) as a hash: lowercase hex is one, upper case is not.
fn blob_hash_of(data: &[u8]) {
    let mut raw = [0u8; 32];
    for (dst, src) in raw.iter_mut().zip(data) {
        *dst = *src;
    }
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    let [a, b, name] = names::blob_segments(&hex).expect("a SHA-256 hex string");
    blob_path(a, b, name);
    let upper = hex.to_ascii_uppercase();
    assert_eq!(
        names::blob_segments(&upper).is_some(),
        upper == hex,
        "upper-case hex accepted"
    );
}

/// Pixels the media target allows: a check then takes a few tens of MB at most, so the
/// fuzzer stays fast, and memory that grows past it is a finding.
pub const MEDIA_PIXELS: u64 = 1 << 20;

/// The IEND chunk that ends a PNG: length 0, type, CRC.
const PNG_END: &[u8] = b"\0\0\0\0IEND\xAE\x42\x60\x82";

/// The checks every upload gets (pictograph-media), on any bytes:
///
/// * nothing panics outside the decoders, whose panics the checks catch;
/// * a probed image has the sniffed format and a non-zero size, and its displayed size is
///   that size or, for a rotation, the same turned;
/// * an image of more than the limit is refused by its declared size, and reserves nothing;
/// * the memory reserved for a check is 0 for JPEG and PNG (never decoded) and otherwise
///   bounded by the limit (at most 32 bytes a pixel);
/// * a verified JPEG or PNG stays verified with bytes appended (trailers are allowed); a
///   verified PNG whose first IEND chunk ends the input does not verify with its last byte
///   cut off;
/// * a HEIC file converted is at most the limit, and its PNG is probed at the size the
///   conversion reported and passes the same checks.
pub fn media(data: &[u8]) {
    use pictograph_media::{
        check_memory, display_size, heic_to_png, probe, sniff, verify, Format, VerifyError,
    };
    let sniffed = sniff(data);
    let reserved = check_memory(data, MEDIA_PIXELS);
    assert!(
        reserved <= 32 * MEDIA_PIXELS,
        "{reserved} bytes reserved for at most {MEDIA_PIXELS} pixels"
    );
    if matches!(sniffed, None | Some(Format::Jpeg | Format::Png)) {
        assert_eq!(reserved, 0, "{sniffed:?} is never decoded");
    }
    let Some(p) = probe(data) else {
        return;
    };
    assert_eq!(Some(p.format), sniffed, "probe and sniff disagree");
    assert!(p.width > 0 && p.height > 0, "an empty size: {p:?}");
    let shown = display_size(data, &p);
    assert!(
        shown == (p.width, p.height) || shown == (p.height, p.width),
        "{shown:?} for {p:?}"
    );
    let pixels = u64::from(p.width) * u64::from(p.height);
    let verified = verify(data, &p, MEDIA_PIXELS);
    if pixels > MEDIA_PIXELS {
        assert!(
            matches!(verified, Err(VerifyError::TooManyPixels { pixels: n, limit })
                if n == pixels && limit == MEDIA_PIXELS),
            "{pixels} pixels: {verified:?}"
        );
        assert_eq!(reserved, 0, "a refused image reserved memory");
    }
    match p.format {
        Format::Jpeg | Format::Png if verified.is_ok() => {
            let mut longer = data.to_vec();
            longer.extend_from_slice(b"trailer");
            assert!(
                verify(&longer, &p, MEDIA_PIXELS).is_ok(),
                "trailing bytes refused"
            );
            // The chunk walk stops at the first IEND (its bytes are always these), so only
            // when that one ends the input is the cut inside the PNG.
            let first_end = data
                .windows(PNG_END.len())
                .position(|w| w == PNG_END)
                .map(|at| at + PNG_END.len());
            if p.format == Format::Png && first_end == Some(data.len()) {
                let cut = &data[..data.len() - 1];
                assert!(verify(cut, &p, MEDIA_PIXELS).is_err(), "a cut PNG passed");
            }
        }
        Format::Heic => {
            if let Ok((png, w, h)) = heic_to_png(data, MEDIA_PIXELS) {
                assert!(
                    u64::from(w) * u64::from(h) <= MEDIA_PIXELS,
                    "{w}x{h} converted"
                );
                let out = probe(&png).expect("the PNG made is probed");
                assert_eq!((out.format, out.width, out.height), (Format::Png, w, h));
                assert!(
                    verify(&png, &out, MEDIA_PIXELS).is_ok(),
                    "the PNG made is refused"
                );
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    /// Replays the seed inputs, and the crashes found before (`regressions/`), through the
    /// checks: each must pass them.
    #[test]
    fn seeds_and_past_crashes_pass() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        type Check = fn(&[u8]);
        let targets: [(&str, Check); 4] = [
            ("annotations", super::annotations),
            ("upload_form", super::upload_form),
            ("names", super::names),
            ("media", super::media),
        ];
        let mut replayed = 0;
        for (name, check) in targets {
            for dir in ["seeds", "regressions"] {
                let Ok(entries) = std::fs::read_dir(root.join(dir).join(name)) else {
                    continue;
                };
                for entry in entries {
                    let path = entry.expect("directory entry").path();
                    check(&std::fs::read(&path).expect("seed file"));
                    replayed += 1;
                }
            }
        }
        assert!(replayed >= 10, "only {replayed} seed inputs found");
    }
}
