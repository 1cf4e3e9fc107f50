//! Names users give things (dataset names, image filenames, virtual folder paths, statuses)
//! and the names stored bytes are kept under (content hashes, upload ids).

use std::fmt;

/// Longest dataset name accepted.
pub const MAX_DATASET_NAME: usize = 200;
/// Longest filename accepted (bytes).
pub const MAX_FILENAME: usize = 255;
/// Longest virtual folder path accepted (bytes).
pub const MAX_FOLDER: usize = 1024;
/// Longest class name accepted (the client rejects longer ones when it parses a project).
pub const MAX_CLASS_NAME: usize = 120;

/// Why a name was refused; the message is meant for the API caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameError(pub String);

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NameError {}

fn err<T>(msg: impl Into<String>) -> Result<T, NameError> {
    Err(NameError(msg.into()))
}

/// Checks a dataset name: 1..=200 characters after trimming, no control characters.
pub fn dataset_name(raw: &str) -> Result<String, NameError> {
    let name = raw.trim();
    if name.is_empty() {
        return err("name must not be blank");
    }
    if name.chars().count() > MAX_DATASET_NAME {
        return err(format!(
            "name must be at most {MAX_DATASET_NAME} characters"
        ));
    }
    if name.chars().any(char::is_control) {
        return err("name must not contain control characters");
    }
    // In a URL path these are the current and the parent directory: no request could name
    // such a dataset.
    if name == "." || name == ".." {
        return err("name must not be . or ..");
    }
    Ok(name.to_string())
}

/// Checks an image filename: a plain base name, no separators, no `.`/`..`, no control characters.
pub fn filename(raw: &str) -> Result<String, NameError> {
    let name = raw.trim();
    if name.is_empty() {
        return err("filename must not be blank");
    }
    if name.len() > MAX_FILENAME {
        return err(format!("filename must be at most {MAX_FILENAME} bytes"));
    }
    if name == "." || name == ".." {
        return err("filename must not be '.' or '..'");
    }
    if name.contains(['/', '\\']) {
        return err("filename must not contain '/' or '\\'");
    }
    if name.chars().any(char::is_control) {
        return err("filename must not contain control characters");
    }
    Ok(name.to_string())
}

/// Normalises a virtual folder path to `/` or `/a/b`: a leading slash, no trailing slash,
/// no empty, `.` or `..` segments. `cars`, `/cars/` and `//cars` all become `/cars`.
pub fn folder_path(raw: &str) -> Result<String, NameError> {
    let mut out = String::new();
    for seg in raw.trim().split(['/', '\\']) {
        let seg = seg.trim();
        if seg.is_empty() || seg == "." {
            continue;
        }
        if seg == ".." {
            return err("folder path must not contain '..'");
        }
        if seg.chars().any(char::is_control) {
            return err("folder path must not contain control characters");
        }
        out.push('/');
        out.push_str(seg);
    }
    if out.is_empty() {
        out.push('/');
    }
    if out.len() > MAX_FOLDER {
        return err(format!("folder path must be at most {MAX_FOLDER} bytes"));
    }
    Ok(out)
}

/// The lower-cased extension of a filename without the dot, if it has one.
pub fn extension(filename: &str) -> Option<String> {
    let (stem, ext) = filename.rsplit_once('.')?;
    if stem.is_empty() || ext.is_empty() {
        return None;
    }
    Some(ext.to_ascii_lowercase())
}

/// Extensions the API accepts for uploads.
pub const SUPPORTED_EXTENSIONS: [&str; 9] = [
    "jpg", "jpeg", "png", "webp", "bmp", "tif", "tiff", "gif", "heic",
];

/// The name a copy gets when `name` is taken: `a.jpg` → `a-2.jpg` for n = 2.
pub fn numbered(filename: &str, n: u32) -> String {
    match filename.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => format!("{stem}-{n}.{ext}"),
        _ => format!("{filename}-{n}"),
    }
}

/// `name` cut to at most `max` bytes (`max` at least 32) when it is longer, for a file
/// system's limit on a path component: it keeps its extension (up to 16 bytes) and as much
/// of its start as fits, then `~` and 8 hex digits of a hash of the whole name, so two long
/// names that start alike stay apart, and the same name is always cut the same way.
pub fn shorten(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_string();
    }
    // FNV-1a: stable across builds and platforms, so a re-run finds the files it wrote.
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 && name.len() - i <= 16 => name.split_at(i),
        _ => (name, ""),
    };
    let mut cut = (max - ext.len() - 9).min(stem.len());
    while !stem.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}~{:08x}{ext}", &stem[..cut], hash as u32)
}

/// Whether `hash` is a SHA-256 in lowercase hex, the only name bytes are stored under.
pub fn is_blob_hash(hash: &str) -> bool {
    hash.len() == 64
        && hash
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// The relative path segments the bytes of `hash` are stored under: `ab`, `cd` and the hash
/// itself for a hash starting `abcd`; `None` unless [`is_blob_hash`].
pub fn blob_segments(hash: &str) -> Option<[&str; 3]> {
    is_blob_hash(hash).then(|| [&hash[0..2], &hash[2..4], hash])
}

/// Whether `id` can name a pending upload in storage: ASCII letters, digits and `-` only.
pub fn is_upload_id(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Image lifecycle status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Not started.
    New,
    /// Being annotated.
    Annotate,
    /// Waiting for review.
    Review,
    /// Finished.
    Complete,
}

impl Status {
    /// All statuses, in lifecycle order.
    pub const ALL: [Status; 4] = [
        Status::New,
        Status::Annotate,
        Status::Review,
        Status::Complete,
    ];

    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::New => "new",
            Status::Annotate => "annotate",
            Status::Review => "review",
            Status::Complete => "complete",
        }
    }

    /// Parses the wire spelling.
    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_normalise() {
        assert_eq!(folder_path("").unwrap(), "/");
        assert_eq!(folder_path("/").unwrap(), "/");
        assert_eq!(folder_path("cars").unwrap(), "/cars");
        assert_eq!(folder_path("/cars/").unwrap(), "/cars");
        assert_eq!(folder_path("//a//b/./c").unwrap(), "/a/b/c");
        assert!(folder_path("/a/../b").is_err());
        assert!(folder_path("/a\u{0}b").is_err());
    }

    #[test]
    fn filenames_checked() {
        assert_eq!(filename(" a.jpg ").unwrap(), "a.jpg");
        for bad in ["", "..", ".", "a/b.jpg", "a\\b.jpg", "a\nb.jpg"] {
            assert!(filename(bad).is_err(), "{bad:?}");
        }
        assert!(filename(&"x".repeat(256)).is_err());
    }

    #[test]
    fn extensions_and_numbering() {
        assert_eq!(extension("A.JPG").as_deref(), Some("jpg"));
        assert_eq!(extension("noext"), None);
        assert_eq!(extension(".hidden"), None);
        assert_eq!(numbered("a.jpg", 2), "a-2.jpg");
        assert_eq!(numbered("a.b.png", 3), "a.b-3.png");
        assert_eq!(numbered("noext", 2), "noext-2");
    }

    #[test]
    fn storage_names() {
        let hash = "ab".repeat(32);
        assert_eq!(blob_segments(&hash), Some(["ab", "ab", hash.as_str()]));
        for bad in [
            "",
            "AB".repeat(32).as_str(),
            &"a".repeat(63),
            &"g".repeat(64),
        ] {
            assert_eq!(blob_segments(bad), None, "{bad:?}");
        }
        assert!(is_upload_id("0f3a-9"));
        for bad in ["", "..", "a/b", "a b", "é"] {
            assert!(!is_upload_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn dataset_names_and_status() {
        assert!(dataset_name("  ").is_err());
        assert!(dataset_name(&"n".repeat(201)).is_err());
        assert_eq!(dataset_name("road signs/é").unwrap(), "road signs/é");
        assert!(dataset_name("..").is_err());
        assert!(dataset_name(" . ").is_err());
        assert_eq!(dataset_name("...").unwrap(), "...");
        assert_eq!(Status::parse("review"), Some(Status::Review));
        assert_eq!(Status::parse("in_progress"), None);
    }
}
