//! Canonical annotation JSON: validation and normalisation.
//!
//! The canonical format is the wire format the official Python client parses. Its models
//! forbid unknown keys, so everything stored must be exactly canonical: validation rejects
//! unknown keys and normalisation fills defaults (`confidence`, `attributes`), drops a null
//! `created_by`, and stores every coordinate as a JSON float.
//!
//! The legacy README shorthand (`"bbox": [x, y, w, h]`, `"polygon": [[x, y], ...]`, ...)
//! is accepted on input and converted to the canonical form.
//!
//! Newer clients (pictograph 1.69) add three optional extensions: `attributes` may be an
//! object, a bbox may carry an `oriented_box` and a keypoint an `instance_id`. They are
//! rejected by default (the 1.6.3 models forbid them) and accepted with
//! [`ValidateOptions::extensions`]; [`to_legacy`] turns an extended annotation back into a
//! shape the 1.6.3 models accept.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};

/// One field error of a validation failure, FastAPI style: loc like
/// `["body","annotations",0,"bounding_box","w"]`. Missing keys read as empty, so an error
/// from any server deserializes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldError {
    /// Path to the offending value; an annotation's starts with `"body", "annotations", <index>`.
    #[serde(default)]
    pub loc: Vec<Value>,
    /// Human-readable message.
    #[serde(default)]
    pub msg: String,
    /// Machine-readable error type (`missing`, `extra_forbidden`, `value_error`, ...).
    #[serde(rename = "type", default)]
    pub kind: String,
}

impl FieldError {
    /// The location joined with dots, e.g. `body.annotations.0.name`.
    pub fn location(&self) -> String {
        self.loc
            .iter()
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(".")
    }
}

/// The annotation types, in the order used by [`count_by_type`].
pub const ANNOTATION_TYPES: [&str; 4] = ["bbox", "polygon", "polyline", "keypoint"];

/// Maximum length of a class name, in characters.
pub const MAX_NAME_CHARS: usize = 120;

/// Keys shared by every annotation, whatever its type.
const COMMON_KEYS: [&str; 5] = ["id", "name", "type", "confidence", "created_by"];

/// The keys only the extended format has: bbox `oriented_box` and keypoint `instance_id`
/// (an object `attributes` is the third extension).
pub const EXTENSION_KEYS: [&str; 2] = ["oriented_box", "instance_id"];

/// How strictly [`validate_annotations_with`] checks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ValidateOptions {
    /// Also accept the newer clients' extensions: `attributes` as an object, bbox
    /// `oriented_box` (`{cx, cy, w, h, angle}`) and keypoint `instance_id` (integer >= 1).
    /// Off by default: the strict 1.6.3 format.
    pub extensions: bool,
}

impl ValidateOptions {
    /// The strict 1.6.3 format (the default).
    pub const STRICT: ValidateOptions = ValidateOptions { extensions: false };
    /// The 1.6.3 format plus the newer clients' extensions.
    pub const EXTENDED: ValidateOptions = ValidateOptions { extensions: true };
}

/// Validate a list of annotations as received in a save request body (the value of
/// `"annotations"`), in the strict 1.6.3 format.
///
/// `classes`: the project's class names; when `Some` and non-empty, each annotation's `name`
/// must be one of them (case-sensitive). `None` or empty => any name allowed.
///
/// On success returns the canonical list to store (each element a JSON object). On failure
/// returns every error found (not just the first).
pub fn validate_annotations(
    value: &Value,
    classes: Option<&[String]>,
) -> Result<Vec<Value>, Vec<FieldError>> {
    validate_annotations_with(value, classes, ValidateOptions::STRICT)
}

/// [`validate_annotations`] with options; with [`ValidateOptions::extensions`] the newer
/// clients' keys are accepted and kept (canonicalised) in the output.
pub fn validate_annotations_with(
    value: &Value,
    classes: Option<&[String]>,
    options: ValidateOptions,
) -> Result<Vec<Value>, Vec<FieldError>> {
    let root = Loc(vec![Value::from("body"), Value::from("annotations")]);
    let mut checker = Checker {
        errors: Vec::new(),
        extensions: options.extensions,
    };
    let Some(items) = value.as_array() else {
        checker.err(&root, "list_type", "annotations must be a list");
        return Err(checker.errors);
    };
    let classes = classes.filter(|c| !c.is_empty());
    let mut seen_ids: HashSet<&str> = HashSet::new();
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let loc = root.idx(i);
        if let Some(ann) = checker.annotation(item, &loc, classes, &mut seen_ids) {
            out.push(ann);
        }
    }
    if checker.errors.is_empty() {
        Ok(out)
    } else {
        Err(checker.errors)
    }
}

/// Count of annotations per type, for statistics: returns (bbox, polygon, polyline, keypoint).
///
/// Elements without a known `type` are not counted.
pub fn count_by_type(list: &[Value]) -> [usize; 4] {
    let mut counts = [0; 4];
    for ann in list {
        let kind = ann.get("type").and_then(Value::as_str);
        if let Some(pos) = ANNOTATION_TYPES.iter().position(|t| Some(*t) == kind) {
            counts[pos] += 1;
        }
    }
    counts
}

/// The lowest `confidence` of a list (absent confidences count as 1.0); `None` when empty.
pub fn min_confidence(list: &[Value]) -> Option<f64> {
    list.iter()
        .map(|a| a.get("confidence").and_then(Value::as_f64).unwrap_or(1.0))
        .reduce(f64::min)
}

/// The key of an annotation's free-form `metadata` object. It is stored, but no official
/// client's models accept it, so readers get it only when they ask ([`without_metadata`]).
pub const METADATA_KEY: &str = "metadata";

/// The annotation without its `metadata`: what every reader gets unless it asks for it.
pub fn without_metadata(annotation: &mut Value) {
    if let Some(obj) = annotation.as_object_mut() {
        obj.remove(METADATA_KEY);
    }
}

/// The annotation in a shape the 1.6.3 models accept: `oriented_box` and `instance_id` are
/// dropped, and an object `attributes` becomes a one-element list (an empty object becomes
/// `[]`). Anything already in the 1.6.3 shape is returned unchanged.
pub fn to_legacy(annotation: &Value) -> Value {
    let Some(obj) = annotation.as_object() else {
        return annotation.clone();
    };
    let mut out = obj.clone();
    for key in EXTENSION_KEYS {
        out.remove(key);
    }
    if let Some(Value::Object(attrs)) = out.get("attributes") {
        let list = if attrs.is_empty() {
            Vec::new()
        } else {
            vec![Value::Object(attrs.clone())]
        };
        out.insert("attributes".into(), Value::Array(list));
    }
    Value::Object(out)
}

/// Whether the annotation uses any extension (and so differs from its [`to_legacy`] form).
pub fn uses_extensions(annotation: &Value) -> bool {
    annotation.as_object().is_some_and(|obj| {
        EXTENSION_KEYS.iter().any(|k| obj.contains_key(*k))
            || obj.get("attributes").is_some_and(Value::is_object)
    })
}

/// An error location under construction.
#[derive(Clone)]
struct Loc(Vec<Value>);

impl Loc {
    fn key(&self, key: &str) -> Loc {
        let mut v = self.0.clone();
        v.push(Value::from(key));
        Loc(v)
    }

    fn idx(&self, index: usize) -> Loc {
        let mut v = self.0.clone();
        v.push(Value::from(index));
        Loc(v)
    }
}

/// The four annotation types.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bbox,
    Polygon,
    Polyline,
    Keypoint,
}

impl Kind {
    fn parse(s: &str) -> Option<Kind> {
        match s {
            "bbox" => Some(Kind::Bbox),
            "polygon" => Some(Kind::Polygon),
            "polyline" => Some(Kind::Polyline),
            "keypoint" => Some(Kind::Keypoint),
            _ => None,
        }
    }

    /// The canonical geometry key.
    fn geometry_key(self) -> &'static str {
        match self {
            Kind::Bbox => "bounding_box",
            Kind::Polygon => "polygon",
            Kind::Polyline => "polyline",
            Kind::Keypoint => "keypoint",
        }
    }

    /// The geometry key in the legacy shorthand.
    fn shorthand_key(self) -> &'static str {
        match self {
            Kind::Bbox => "bbox",
            other => other.geometry_key(),
        }
    }

    /// Whether an optional `bounding_box` may accompany the geometry.
    fn allows_bounding_box(self) -> bool {
        matches!(self, Kind::Polygon | Kind::Polyline)
    }
}

/// Collects errors while validating.
#[derive(Default)]
struct Checker {
    errors: Vec<FieldError>,
    /// Accept the newer clients' extensions.
    extensions: bool,
}

/// Builds a JSON float (all numbers reaching here are finite).
fn float(f: f64) -> Value {
    Number::from_f64(f).map_or(Value::Null, Value::Number)
}

/// Builds a canonical point object.
fn point_value(x: f64, y: f64) -> Value {
    let mut m = Map::new();
    m.insert("x".into(), float(x));
    m.insert("y".into(), float(y));
    Value::Object(m)
}

impl Checker {
    fn err(&mut self, loc: &Loc, kind: &str, msg: impl Into<String>) {
        self.errors.push(FieldError {
            loc: loc.0.clone(),
            msg: msg.into(),
            kind: kind.to_string(),
        });
    }

    fn missing(&mut self, loc: &Loc) {
        self.err(loc, "missing", "field required");
    }

    /// Reports every key of `obj` not in `allowed`.
    fn forbid_extra(&mut self, obj: &Map<String, Value>, allowed: &[&str], loc: &Loc) {
        for key in obj.keys() {
            if !allowed.contains(&key.as_str()) {
                self.err(
                    &loc.key(key),
                    "extra_forbidden",
                    "extra fields not permitted",
                );
            }
        }
    }

    /// Validates one annotation; returns its canonical form when it has no error.
    fn annotation<'a>(
        &mut self,
        item: &'a Value,
        loc: &Loc,
        classes: Option<&[String]>,
        seen_ids: &mut HashSet<&'a str>,
    ) -> Option<Value> {
        let before = self.errors.len();
        let Some(obj) = item.as_object() else {
            self.err(loc, "dict_type", "annotation must be an object");
            return None;
        };

        let id = self.id(obj, loc, seen_ids);
        let name = self.name(obj, loc, classes);
        let kind = self.kind(obj, loc);
        let confidence = self.confidence(obj, loc);
        let created_by = self.created_by(obj, loc);
        let attributes = self.attributes(obj, loc);
        let metadata = self.metadata(obj, loc);

        let mut geometry: Vec<(&'static str, Value)> = Vec::new();
        let mut instance_id: Option<Option<i64>> = Some(None);
        match kind {
            Some(kind) => {
                // Shorthand input is decided per annotation: the type's geometry key holds an
                // array, or a bbox annotation carries a `bbox` key.
                let short_key = kind.shorthand_key();
                let shorthand = match kind {
                    Kind::Bbox => obj.contains_key(short_key),
                    _ => obj.get(short_key).is_some_and(Value::is_array),
                };
                let mut allowed: Vec<&str> = COMMON_KEYS.to_vec();
                allowed.extend(["attributes", "metadata"]);
                if shorthand {
                    allowed.push(short_key);
                    if let Some(g) = self.shorthand_geometry(kind, &obj[short_key], loc) {
                        geometry.push((kind.geometry_key(), g));
                    }
                } else {
                    allowed.push(kind.geometry_key());
                    if let Some(g) = self.canonical_geometry(kind, obj, loc) {
                        geometry.push((kind.geometry_key(), g));
                    }
                }
                if kind.allows_bounding_box() {
                    allowed.push("bounding_box");
                    if let Some(b) = obj.get("bounding_box").filter(|b| !b.is_null()) {
                        if let Some(b) = self.bounding_box(b, &loc.key("bounding_box")) {
                            geometry.push(("bounding_box", b));
                        }
                    }
                }
                if self.extensions && kind == Kind::Bbox {
                    allowed.push("oriented_box");
                    if let Some(o) = obj.get("oriented_box").filter(|o| !o.is_null()) {
                        if let Some(o) = self.oriented_box(o, &loc.key("oriented_box")) {
                            geometry.push(("oriented_box", o));
                        }
                    }
                }
                if self.extensions && kind == Kind::Keypoint {
                    allowed.push("instance_id");
                    instance_id = self.instance_id(obj, loc);
                }
                self.forbid_extra(obj, &allowed, loc);
            }
            None => {
                // Without a usable type the geometry cannot be checked; still report keys
                // that are valid for no type at all.
                let mut allowed: Vec<&str> = COMMON_KEYS.to_vec();
                allowed.extend(["attributes", "bounding_box", "metadata", "bbox"]);
                allowed.extend(ANNOTATION_TYPES);
                if self.extensions {
                    allowed.extend(EXTENSION_KEYS);
                }
                self.forbid_extra(obj, &allowed, loc);
            }
        }

        if self.errors.len() != before {
            return None;
        }
        let mut out = Map::new();
        out.insert("id".into(), Value::from(id?));
        out.insert("name".into(), Value::from(name?));
        out.insert("type".into(), obj.get("type")?.clone());
        for (key, value) in geometry {
            out.insert(key.into(), value);
        }
        out.insert("confidence".into(), float(confidence?));
        if let Some(by) = created_by? {
            out.insert("created_by".into(), Value::from(by));
        }
        out.insert("attributes".into(), attributes?);
        if let Some(n) = instance_id? {
            out.insert("instance_id".into(), Value::from(n));
        }
        if let Some(m) = metadata? {
            out.insert(METADATA_KEY.into(), Value::Object(m));
        }
        Some(Value::Object(out))
    }

    /// A required string field; `None` after reporting when missing or not a string.
    fn required_str<'a>(
        &mut self,
        obj: &'a Map<String, Value>,
        key: &str,
        loc: &Loc,
    ) -> Option<&'a str> {
        match obj.get(key) {
            None => {
                self.missing(&loc.key(key));
                None
            }
            Some(Value::String(s)) => Some(s),
            Some(_) => {
                self.err(
                    &loc.key(key),
                    "string_type",
                    format!("{key} must be a string"),
                );
                None
            }
        }
    }

    fn id<'a>(
        &mut self,
        obj: &'a Map<String, Value>,
        loc: &Loc,
        seen_ids: &mut HashSet<&'a str>,
    ) -> Option<&'a str> {
        let id = self.required_str(obj, "id", loc)?;
        if id.trim().is_empty() {
            self.err(&loc.key("id"), "value_error", "id must not be blank");
            return None;
        }
        if !seen_ids.insert(id) {
            self.err(
                &loc.key("id"),
                "value_error",
                format!("duplicate id '{id}': ids must be unique within the list"),
            );
            return None;
        }
        Some(id)
    }

    fn name<'a>(
        &mut self,
        obj: &'a Map<String, Value>,
        loc: &Loc,
        classes: Option<&[String]>,
    ) -> Option<&'a str> {
        let name = self.required_str(obj, "name", loc)?;
        let loc = loc.key("name");
        if name.trim().is_empty() {
            self.err(&loc, "value_error", "name must not be blank");
            return None;
        }
        if name.chars().count() > MAX_NAME_CHARS {
            self.err(
                &loc,
                "value_error",
                format!("name must be at most {MAX_NAME_CHARS} characters"),
            );
            return None;
        }
        if let Some(classes) = classes {
            if !classes.iter().any(|c| c == name) {
                self.err(
                    &loc,
                    "value_error",
                    format!(
                        "class '{name}' is not one of the project's classes: {}",
                        classes.join(", ")
                    ),
                );
                return None;
            }
        }
        Some(name)
    }

    fn kind(&mut self, obj: &Map<String, Value>, loc: &Loc) -> Option<Kind> {
        let kind = self.required_str(obj, "type", loc)?;
        let parsed = Kind::parse(kind);
        if parsed.is_none() {
            self.err(
                &loc.key("type"),
                "value_error",
                format!(
                    "type must be one of {} (got '{kind}')",
                    ANNOTATION_TYPES.join(", ")
                ),
            );
        }
        parsed
    }

    fn confidence(&mut self, obj: &Map<String, Value>, loc: &Loc) -> Option<f64> {
        let Some(value) = obj.get("confidence") else {
            return Some(1.0);
        };
        let loc = loc.key("confidence");
        let c = self.number(value, &loc, "confidence")?;
        if !(0.0..=1.0).contains(&c) {
            self.err(&loc, "value_error", "confidence must be between 0 and 1");
            return None;
        }
        Some(c)
    }

    /// `Some(None)` when absent or null (omitted from the output).
    fn created_by(&mut self, obj: &Map<String, Value>, loc: &Loc) -> Option<Option<String>> {
        match obj.get("created_by") {
            None | Some(Value::Null) => Some(None),
            Some(Value::String(s)) => Some(Some(s.clone())),
            Some(_) => {
                self.err(
                    &loc.key("created_by"),
                    "string_type",
                    "created_by must be a string or null",
                );
                None
            }
        }
    }

    fn attributes(&mut self, obj: &Map<String, Value>, loc: &Loc) -> Option<Value> {
        match obj.get("attributes") {
            None => Some(Value::Array(Vec::new())),
            Some(v @ Value::Array(_)) => Some(v.clone()),
            Some(v @ Value::Object(_)) if self.extensions => Some(v.clone()),
            Some(_) if self.extensions => {
                self.err(
                    &loc.key("attributes"),
                    "list_type",
                    "attributes must be a list or an object",
                );
                None
            }
            Some(_) => {
                self.err(
                    &loc.key("attributes"),
                    "list_type",
                    "attributes must be a list",
                );
                None
            }
        }
    }

    /// A keypoint's optional `instance_id`: an integer >= 1 (an integral float is taken);
    /// `Some(None)` when absent or null.
    fn instance_id(&mut self, obj: &Map<String, Value>, loc: &Loc) -> Option<Option<i64>> {
        let value = match obj.get("instance_id") {
            None | Some(Value::Null) => return Some(None),
            Some(v) => v,
        };
        let loc = loc.key("instance_id");
        let n = match value {
            Value::Number(n) => n.as_i64().or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                    .map(|f| f as i64)
            }),
            _ => None,
        };
        let Some(n) = n else {
            self.err(&loc, "int_type", "instance_id must be an integer");
            return None;
        };
        if n < 1 {
            self.err(&loc, "value_error", "instance_id must be at least 1");
            return None;
        }
        Some(Some(n))
    }

    /// A bbox's rotated rectangle `{cx, cy, w, h, angle?}`: w and h positive, angle in
    /// degrees within [0, 360) (default 0).
    fn oriented_box(&mut self, value: &Value, loc: &Loc) -> Option<Value> {
        let Some(obj) = value.as_object() else {
            self.err(loc, "dict_type", "oriented_box must be an object");
            return None;
        };
        let before = self.errors.len();
        let mut nums = Vec::with_capacity(5);
        for key in ["cx", "cy", "w", "h"] {
            match obj.get(key) {
                None => self.missing(&loc.key(key)),
                Some(v) => {
                    if let Some(f) = self.number(v, &loc.key(key), key) {
                        nums.push(f);
                    }
                }
            }
        }
        let angle = match obj.get("angle") {
            None | Some(Value::Null) => Some(0.0),
            Some(v) => self.number(v, &loc.key("angle"), "angle"),
        };
        self.forbid_extra(obj, &["cx", "cy", "w", "h", "angle"], loc);
        if self.errors.len() != before {
            return None;
        }
        if !self.positive_size(nums[2], nums[3], &loc.key("w"), &loc.key("h")) {
            return None;
        }
        let angle = angle?;
        if !(0.0..360.0).contains(&angle) {
            self.err(
                &loc.key("angle"),
                "value_error",
                "angle must be at least 0 and less than 360",
            );
            return None;
        }
        let mut m = Map::new();
        for (key, v) in ["cx", "cy", "w", "h", "angle"]
            .iter()
            .zip(nums.iter().chain(std::iter::once(&angle)))
        {
            m.insert((*key).into(), float(*v));
        }
        Some(Value::Object(m))
    }

    /// `metadata`: an object kept when non-empty (`Some(None)` when absent, null or empty;
    /// `None` after reporting anything else).
    fn metadata(
        &mut self,
        obj: &Map<String, Value>,
        loc: &Loc,
    ) -> Option<Option<Map<String, Value>>> {
        match obj.get(METADATA_KEY) {
            None | Some(Value::Null) => Some(None),
            Some(Value::Object(m)) => Some((!m.is_empty()).then(|| m.clone())),
            Some(_) => {
                self.err(
                    &loc.key(METADATA_KEY),
                    "dict_type",
                    "metadata must be an object",
                );
                None
            }
        }
    }

    /// A finite JSON number.
    fn number(&mut self, value: &Value, loc: &Loc, what: &str) -> Option<f64> {
        let Some(f) = value.as_f64() else {
            self.err(loc, "float_type", format!("{what} must be a number"));
            return None;
        };
        if !f.is_finite() {
            self.err(
                loc,
                "value_error",
                format!("{what} must be a finite number"),
            );
            return None;
        }
        Some(f)
    }

    /// An object with exactly the numeric fields `keys`; values in `keys` order.
    fn numeric_object(
        &mut self,
        value: &Value,
        loc: &Loc,
        what: &str,
        keys: &[&str],
    ) -> Option<Vec<f64>> {
        let Some(obj) = value.as_object() else {
            self.err(loc, "dict_type", format!("{what} must be an object"));
            return None;
        };
        let mut nums = Vec::with_capacity(keys.len());
        for key in keys {
            match obj.get(*key) {
                None => self.missing(&loc.key(key)),
                Some(v) => {
                    if let Some(f) = self.number(v, &loc.key(key), key) {
                        nums.push(f);
                    }
                }
            }
        }
        self.forbid_extra(obj, keys, loc);
        (nums.len() == keys.len()).then_some(nums)
    }

    /// A canonical point `{"x", "y"}`.
    fn point(&mut self, value: &Value, loc: &Loc) -> Option<Value> {
        let p = self.numeric_object(value, loc, "point", &["x", "y"])?;
        Some(point_value(p[0], p[1]))
    }

    /// Checks `w > 0` and `h > 0`, reporting at `loc_w` / `loc_h`.
    fn positive_size(&mut self, w: f64, h: f64, loc_w: &Loc, loc_h: &Loc) -> bool {
        let mut ok = true;
        if w <= 0.0 {
            self.err(loc_w, "value_error", "w must be greater than 0");
            ok = false;
        }
        if h <= 0.0 {
            self.err(loc_h, "value_error", "h must be greater than 0");
            ok = false;
        }
        ok
    }

    /// A canonical `bounding_box` `{"x","y","w","h"}` with positive size.
    fn bounding_box(&mut self, value: &Value, loc: &Loc) -> Option<Value> {
        let b = self.numeric_object(value, loc, "bounding_box", &["x", "y", "w", "h"])?;
        if !self.positive_size(b[2], b[3], &loc.key("w"), &loc.key("h")) {
            return None;
        }
        Some(bbox_value(&b))
    }

    /// A list of canonical points with at least `min` entries.
    fn point_list(
        &mut self,
        value: &Value,
        loc: &Loc,
        what: &str,
        min: usize,
        too_few: &str,
    ) -> Option<Vec<Value>> {
        let Some(items) = value.as_array() else {
            self.err(loc, "list_type", format!("{what} must be a list of points"));
            return None;
        };
        let mut ok = true;
        let mut points = Vec::with_capacity(items.len());
        for (j, item) in items.iter().enumerate() {
            match self.point(item, &loc.idx(j)) {
                Some(p) => points.push(p),
                None => ok = false,
            }
        }
        if items.len() < min {
            self.err(loc, "value_error", too_few);
            ok = false;
        }
        ok.then_some(points)
    }

    /// The canonical geometry under the type's geometry key.
    fn canonical_geometry(
        &mut self,
        kind: Kind,
        obj: &Map<String, Value>,
        loc: &Loc,
    ) -> Option<Value> {
        let key = kind.geometry_key();
        let gloc = loc.key(key);
        let Some(value) = obj.get(key) else {
            self.missing(&gloc);
            return None;
        };
        match kind {
            Kind::Bbox => self.bounding_box(value, &gloc),
            Kind::Keypoint => self.point(value, &gloc),
            Kind::Polygon => {
                let paths = self.wrapper(value, &gloc, "polygon", "paths")?;
                let ploc = gloc.key("paths");
                let Some(rings) = paths.as_array() else {
                    self.err(&ploc, "list_type", "paths must be a list of rings");
                    return None;
                };
                if rings.is_empty() {
                    self.err(&ploc, "value_error", "a polygon needs at least 1 ring");
                    return None;
                }
                let mut ok = true;
                let mut out = Vec::with_capacity(rings.len());
                for (r, ring) in rings.iter().enumerate() {
                    match self.point_list(ring, &ploc.idx(r), "a polygon ring", 3, RING_TOO_SHORT) {
                        Some(points) => out.push(Value::Array(points)),
                        None => ok = false,
                    }
                }
                ok.then(|| single("paths", Value::Array(out)))
            }
            Kind::Polyline => {
                let path = self.wrapper(value, &gloc, "polyline", "path")?;
                let points = self.point_list(path, &gloc.key("path"), "path", 2, PATH_TOO_SHORT)?;
                Some(single("path", Value::Array(points)))
            }
        }
    }

    /// An object with a single required key `inner`; returns that key's value.
    fn wrapper<'a>(
        &mut self,
        value: &'a Value,
        loc: &Loc,
        what: &str,
        inner: &str,
    ) -> Option<&'a Value> {
        let Some(obj) = value.as_object() else {
            self.err(loc, "dict_type", format!("{what} must be an object"));
            return None;
        };
        self.forbid_extra(obj, &[inner], loc);
        let found = obj.get(inner);
        if found.is_none() {
            self.missing(&loc.key(inner));
        }
        found
    }

    /// A shorthand array of exactly `n` numbers.
    fn number_array(
        &mut self,
        value: &Value,
        loc: &Loc,
        n: usize,
        shape: &str,
    ) -> Option<Vec<f64>> {
        let Some(items) = value.as_array() else {
            self.err(loc, "list_type", format!("expected a list {shape}"));
            return None;
        };
        if items.len() != n {
            self.err(
                loc,
                "value_error",
                format!("expected exactly {n} numbers {shape}, got {}", items.len()),
            );
            return None;
        }
        let mut nums = Vec::with_capacity(n);
        for (j, item) in items.iter().enumerate() {
            if let Some(f) = self.number(item, &loc.idx(j), "coordinate") {
                nums.push(f);
            }
        }
        (nums.len() == n).then_some(nums)
    }

    /// A shorthand list of `[x, y]` pairs.
    fn shorthand_points(&mut self, value: &Value, loc: &Loc) -> Option<Vec<(f64, f64)>> {
        // Callers only get here when `value` is an array, except for `bbox`.
        let items = value.as_array()?;
        let mut ok = true;
        let mut points = Vec::with_capacity(items.len());
        for (j, item) in items.iter().enumerate() {
            match self.number_array(item, &loc.idx(j), 2, "[x, y]") {
                Some(p) => points.push((p[0], p[1])),
                None => ok = false,
            }
        }
        ok.then_some(points)
    }

    /// Converts the legacy shorthand geometry of `kind` to canonical form.
    fn shorthand_geometry(&mut self, kind: Kind, value: &Value, loc: &Loc) -> Option<Value> {
        let gloc = loc.key(kind.shorthand_key());
        match kind {
            Kind::Bbox => {
                let b = self.number_array(value, &gloc, 4, "[x, y, w, h]")?;
                if !self.positive_size(b[2], b[3], &gloc.idx(2), &gloc.idx(3)) {
                    return None;
                }
                Some(bbox_value(&b))
            }
            Kind::Keypoint => {
                let p = self.number_array(value, &gloc, 2, "[x, y]")?;
                Some(point_value(p[0], p[1]))
            }
            Kind::Polygon => {
                let mut points = self.shorthand_points(value, &gloc)?;
                // The README example closes its ring by repeating the first point
                // (`[[10,20],[30,40],[50,60],[10,20]]`). The canonical ring is implicitly
                // closed, so a repeated closing point is dropped before the 3-point check.
                if points.len() >= 2 && points.first() == points.last() {
                    points.pop();
                }
                if points.len() < 3 {
                    self.err(&gloc, "value_error", RING_TOO_SHORT);
                    return None;
                }
                let ring = points.iter().map(|&(x, y)| point_value(x, y)).collect();
                Some(single("paths", Value::Array(vec![Value::Array(ring)])))
            }
            Kind::Polyline => {
                let points = self.shorthand_points(value, &gloc)?;
                if points.len() < 2 {
                    self.err(&gloc, "value_error", PATH_TOO_SHORT);
                    return None;
                }
                let path = points.iter().map(|&(x, y)| point_value(x, y)).collect();
                Some(single("path", Value::Array(path)))
            }
        }
    }
}

const RING_TOO_SHORT: &str = "a polygon ring needs at least 3 points";
const PATH_TOO_SHORT: &str = "a polyline path needs at least 2 points";

/// Builds a canonical bounding box from `[x, y, w, h]`.
fn bbox_value(b: &[f64]) -> Value {
    let mut m = Map::new();
    for (key, v) in ["x", "y", "w", "h"].iter().zip(b) {
        m.insert((*key).into(), float(*v));
    }
    Value::Object(m)
}

/// Builds `{key: value}`.
fn single(key: &str, value: Value) -> Value {
    let mut m = Map::new();
    m.insert(key.into(), value);
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn canonical_example() -> Value {
        json!([
            {"id":"a1","name":"car","type":"bbox","bounding_box":{"x":1.0,"y":2.0,"w":3.0,"h":4.0},"confidence":0.9,"attributes":[]},
            {"id":"6e34","name":"car","type":"polygon","polygon":{"paths":[[{"x":0.0,"y":0.0},{"x":1.0,"y":0.0},{"x":1.0,"y":1.0}]]},"confidence":1.0,"attributes":[]},
            {"id":"cb43","name":"road","type":"polyline","polyline":{"path":[{"x":0.0,"y":0.0},{"x":5.0,"y":5.0}]},"confidence":1.0,"attributes":[]},
            {"id":"cf24","name":"nose","type":"keypoint","keypoint":{"x":3.0,"y":3.0},"confidence":1.0,"attributes":[{"k":"v"}]}
        ])
    }

    fn bbox() -> Value {
        json!({"id":"b","name":"car","type":"bbox","bounding_box":{"x":1.0,"y":2.0,"w":3.0,"h":4.0}})
    }

    fn polygon() -> Value {
        json!({"id":"p","name":"car","type":"polygon",
               "polygon":{"paths":[[{"x":0.0,"y":0.0},{"x":1.0,"y":0.0},{"x":1.0,"y":1.0}]]}})
    }

    fn polyline() -> Value {
        json!({"id":"l","name":"road","type":"polyline",
               "polyline":{"path":[{"x":0.0,"y":0.0},{"x":5.0,"y":5.0}]}})
    }

    fn keypoint() -> Value {
        json!({"id":"k","name":"nose","type":"keypoint","keypoint":{"x":3.0,"y":3.0}})
    }

    /// Sets (or with `None` removes) `key` of an annotation object.
    fn with(mut ann: Value, key: &str, value: Option<Value>) -> Value {
        let obj = ann.as_object_mut().unwrap();
        match value {
            Some(v) => {
                obj.insert(key.into(), v);
            }
            None => {
                obj.remove(key);
            }
        }
        ann
    }

    fn ok(list: Value) -> Vec<Value> {
        validate_annotations(&list, None).unwrap_or_else(|e| panic!("unexpected errors: {e:?}"))
    }

    fn ok_one(ann: Value) -> Value {
        ok(json!([ann])).remove(0)
    }

    fn errs(list: Value) -> Vec<FieldError> {
        validate_annotations(&list, None).expect_err("expected validation errors")
    }

    fn errs_one(ann: Value) -> Vec<FieldError> {
        errs(json!([ann]))
    }

    /// Asserts an error with this loc (after `body, annotations`) and type is present.
    #[track_caller]
    fn assert_has(errors: &[FieldError], tail: Value, kind: &str) {
        let mut loc = vec![json!("body"), json!("annotations")];
        loc.extend(tail.as_array().unwrap().iter().cloned());
        assert!(
            errors.iter().any(|e| e.loc == loc && e.kind == kind),
            "no {kind} error at {loc:?} in {errors:#?}"
        );
    }

    /// Asserts exactly one error, with this loc and type; returns its message.
    #[track_caller]
    fn assert_single(errors: &[FieldError], tail: Value, kind: &str) -> String {
        assert_eq!(errors.len(), 1, "expected one error, got {errors:#?}");
        assert_has(errors, tail, kind);
        errors[0].msg.clone()
    }

    // --- round trip and defaults ---

    #[test]
    fn canonical_example_round_trips() {
        let list = canonical_example();
        let out = ok(list.clone());
        assert_eq!(Value::Array(out), list);
    }

    #[test]
    fn output_is_idempotent() {
        let once = ok(json!([bbox(), polygon(), polyline(), keypoint()]));
        let twice = ok(Value::Array(once.clone()));
        assert_eq!(once, twice);
    }

    #[test]
    fn empty_list_is_valid() {
        assert_eq!(ok(json!([])), Vec::<Value>::new());
    }

    #[test]
    fn defaults_confidence_and_attributes() {
        let out = ok_one(bbox());
        assert_eq!(out["confidence"], json!(1.0));
        assert!(out["confidence"].is_f64());
        assert_eq!(out["attributes"], json!([]));
        assert!(out.get("created_by").is_none());
    }

    #[test]
    fn created_by_kept_or_omitted() {
        let out = ok_one(with(bbox(), "created_by", Some(json!("alice"))));
        assert_eq!(out["created_by"], json!("alice"));
        let out = ok_one(with(bbox(), "created_by", Some(Value::Null)));
        assert!(out.get("created_by").is_none());
        let e = errs_one(with(bbox(), "created_by", Some(json!(7))));
        assert_single(&e, json!([0, "created_by"]), "string_type");
    }

    #[test]
    fn output_has_exactly_the_canonical_keys() {
        let out = ok_one(with(polygon(), "created_by", Some(json!("bob"))));
        let keys: Vec<&str> = out
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut keys = keys;
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "attributes",
                "confidence",
                "created_by",
                "id",
                "name",
                "polygon",
                "type"
            ]
        );
    }

    #[test]
    fn integer_coordinates_become_floats() {
        let ann = json!({"id":"b","name":"car","type":"bbox","bounding_box":{"x":100,"y":-2,"w":3,"h":4},"confidence":1});
        let out = ok_one(ann);
        assert_eq!(
            out["bounding_box"],
            json!({"x":100.0,"y":-2.0,"w":3.0,"h":4.0})
        );
        for key in ["x", "y", "w", "h"] {
            assert!(out["bounding_box"][key].is_f64(), "{key} not a float");
        }
        assert!(out["confidence"].is_f64());

        let ann = json!({"id":"p","name":"car","type":"polygon",
                         "polygon":{"paths":[[{"x":0,"y":0},{"x":1,"y":0},{"x":1,"y":1}]]}});
        let out = ok_one(ann);
        assert!(out["polygon"]["paths"][0][2]["x"].is_f64());
        assert_eq!(out["polygon"]["paths"][0][2], json!({"x":1.0,"y":1.0}));

        let out = ok_one(json!({"id":"k","name":"n","type":"keypoint","keypoint":{"x":3,"y":4}}));
        assert!(out["keypoint"]["x"].is_f64());
    }

    #[test]
    fn float_values_are_kept() {
        let ann = json!({"id":"b","name":"car","type":"bbox",
                         "bounding_box":{"x":-1.25,"y":0.1,"w":1e-9,"h":12345.678},"confidence":0.333});
        let out = ok_one(ann.clone());
        assert_eq!(out["bounding_box"], ann["bounding_box"]);
        assert_eq!(out["confidence"], json!(0.333));
    }

    #[test]
    fn confidence_bounds_inclusive() {
        assert_eq!(
            ok_one(with(bbox(), "confidence", Some(json!(0))))["confidence"],
            json!(0.0)
        );
        assert_eq!(
            ok_one(with(bbox(), "confidence", Some(json!(1))))["confidence"],
            json!(1.0)
        );
    }

    #[test]
    fn attributes_list_of_anything_kept() {
        let attrs = json!([1, "two", {"k":"v"}, [3], null, true]);
        let out = ok_one(with(keypoint(), "attributes", Some(attrs.clone())));
        assert_eq!(out["attributes"], attrs);
    }

    #[test]
    fn polygon_and_polyline_keep_optional_bounding_box() {
        let b = json!({"x":0.0,"y":0.0,"w":1.0,"h":1.0});
        let out = ok_one(with(polygon(), "bounding_box", Some(b.clone())));
        assert_eq!(out["bounding_box"], b);
        let out = ok_one(with(polyline(), "bounding_box", Some(b.clone())));
        assert_eq!(out["bounding_box"], b);
    }

    #[test]
    fn null_optional_bounding_box_is_dropped() {
        let out = ok_one(with(polygon(), "bounding_box", Some(Value::Null)));
        assert!(out.get("bounding_box").is_none());
    }

    #[test]
    fn horizontal_polyline_without_bounding_box_accepted() {
        let ann = json!({"id":"l","name":"road","type":"polyline",
                         "polyline":{"path":[{"x":0.0,"y":10.0},{"x":50.0,"y":10.0},{"x":100.0,"y":10.0}]}});
        let out = ok_one(ann.clone());
        assert!(out.get("bounding_box").is_none());
        assert_eq!(out["polyline"], ann["polyline"]);
    }

    #[test]
    fn polygon_with_several_rings_accepted() {
        let ring = json!([{"x":0.0,"y":0.0},{"x":1.0,"y":0.0},{"x":1.0,"y":1.0}]);
        let ann = with(polygon(), "polygon", Some(json!({"paths":[ring, ring]})));
        let out = ok_one(ann);
        assert_eq!(out["polygon"]["paths"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn negative_bbox_origin_allowed() {
        let ann = with(
            bbox(),
            "bounding_box",
            Some(json!({"x":-5.0,"y":-7.5,"w":1.0,"h":1.0})),
        );
        ok_one(ann);
    }

    // --- top level and element shape ---

    #[test]
    fn top_level_must_be_list() {
        for v in [json!({}), json!("x"), Value::Null, json!(3)] {
            let e = validate_annotations(&v, None).unwrap_err();
            assert_eq!(e.len(), 1);
            assert_eq!(e[0].loc, vec![json!("body"), json!("annotations")]);
            assert_eq!(e[0].kind, "list_type");
        }
    }

    #[test]
    fn element_must_be_object() {
        let e = errs(json!([bbox(), [1, 2], "x"]));
        assert_eq!(e.len(), 2);
        assert_has(&e, json!([1]), "dict_type");
        assert_has(&e, json!([2]), "dict_type");
    }

    #[test]
    fn loc_index_is_a_json_number() {
        let e = errs(json!([bbox(), with(bbox(), "id", None)]));
        assert_eq!(e[0].loc[2], json!(1));
        assert!(e[0].loc[2].is_u64());
    }

    #[test]
    fn field_error_serializes_fastapi_style() {
        let e = errs_one(with(bbox(), "id", None));
        let v = serde_json::to_value(&e[0]).unwrap();
        assert_eq!(
            v,
            json!({"loc":["body","annotations",0,"id"],"msg":"field required","type":"missing"})
        );
    }

    // --- id, name, type ---

    #[test]
    fn id_rules() {
        let e = errs_one(with(bbox(), "id", None));
        let msg = assert_single(&e, json!([0, "id"]), "missing");
        assert_eq!(msg, "field required");
        assert_single(
            &errs_one(with(bbox(), "id", Some(json!(5)))),
            json!([0, "id"]),
            "string_type",
        );
        assert_single(
            &errs_one(with(bbox(), "id", Some(json!("  ")))),
            json!([0, "id"]),
            "value_error",
        );
        assert_single(
            &errs_one(with(bbox(), "id", Some(json!("")))),
            json!([0, "id"]),
            "value_error",
        );
    }

    #[test]
    fn duplicate_ids_rejected_on_later_one() {
        let list = json!([bbox(), keypoint(), with(polygon(), "id", Some(json!("b")))]);
        let e = errs(list);
        let msg = assert_single(&e, json!([2, "id"]), "value_error");
        assert!(msg.contains("duplicate"), "{msg}");
        // Three copies: both later ones reported.
        let e = errs(json!([bbox(), bbox(), bbox()]));
        assert_eq!(e.len(), 2);
        assert_has(&e, json!([1, "id"]), "value_error");
        assert_has(&e, json!([2, "id"]), "value_error");
    }

    #[test]
    fn ids_are_case_sensitive() {
        ok(json!([bbox(), with(bbox(), "id", Some(json!("B")))]));
    }

    #[test]
    fn name_rules() {
        assert_single(
            &errs_one(with(bbox(), "name", None)),
            json!([0, "name"]),
            "missing",
        );
        assert_single(
            &errs_one(with(bbox(), "name", Some(json!(null)))),
            json!([0, "name"]),
            "string_type",
        );
        assert_single(
            &errs_one(with(bbox(), "name", Some(json!(" \t")))),
            json!([0, "name"]),
            "value_error",
        );
        ok_one(with(bbox(), "name", Some(json!("é".repeat(120)))));
        let e = errs_one(with(bbox(), "name", Some(json!("a".repeat(121)))));
        assert_single(&e, json!([0, "name"]), "value_error");
    }

    #[test]
    fn class_checking() {
        let classes = vec!["car".to_string(), "person".to_string()];
        let list = json!([bbox(), with(keypoint(), "name", Some(json!("dog")))]);
        let e = validate_annotations(&list, Some(&classes)).unwrap_err();
        let msg = assert_single(&e, json!([1, "name"]), "value_error");
        assert_eq!(
            msg,
            "class 'dog' is not one of the project's classes: car, person"
        );
        // Case-sensitive.
        let list = json!([with(bbox(), "name", Some(json!("Car")))]);
        assert!(validate_annotations(&list, Some(&classes)).is_err());
        // Allowed names pass.
        let list = json!([bbox(), with(keypoint(), "name", Some(json!("person")))]);
        assert!(validate_annotations(&list, Some(&classes)).is_ok());
    }

    #[test]
    fn class_checking_off_when_none_or_empty() {
        let list = json!([with(keypoint(), "name", Some(json!("dog")))]);
        assert!(validate_annotations(&list, None).is_ok());
        assert!(validate_annotations(&list, Some(&[])).is_ok());
    }

    #[test]
    fn type_rules() {
        assert_single(
            &errs_one(with(bbox(), "type", None)),
            json!([0, "type"]),
            "missing",
        );
        assert_single(
            &errs_one(with(bbox(), "type", Some(json!(1)))),
            json!([0, "type"]),
            "string_type",
        );
        let e = errs_one(with(bbox(), "type", Some(json!("box"))));
        let msg = assert_single(&e, json!([0, "type"]), "value_error");
        assert!(msg.contains("bbox, polygon, polyline, keypoint"), "{msg}");
    }

    #[test]
    fn unknown_type_still_reports_other_fields() {
        let ann =
            json!({"id":"x","name":"","type":"circle","confidence":2,"bogus":1,"bounding_box":{}});
        let e = errs_one(ann);
        assert_eq!(e.len(), 4, "{e:#?}");
        assert_has(&e, json!([0, "name"]), "value_error");
        assert_has(&e, json!([0, "type"]), "value_error");
        assert_has(&e, json!([0, "confidence"]), "value_error");
        assert_has(&e, json!([0, "bogus"]), "extra_forbidden");
    }

    // --- confidence, attributes ---

    #[test]
    fn confidence_rules() {
        let e = errs_one(with(bbox(), "confidence", Some(json!(1.5))));
        let msg = assert_single(&e, json!([0, "confidence"]), "value_error");
        assert!(msg.contains("between 0 and 1"), "{msg}");
        assert_single(
            &errs_one(with(bbox(), "confidence", Some(json!(-0.1)))),
            json!([0, "confidence"]),
            "value_error",
        );
        assert_single(
            &errs_one(with(bbox(), "confidence", Some(json!("0.5")))),
            json!([0, "confidence"]),
            "float_type",
        );
        assert_single(
            &errs_one(with(bbox(), "confidence", Some(json!(true)))),
            json!([0, "confidence"]),
            "float_type",
        );
        assert_single(
            &errs_one(with(bbox(), "confidence", Some(Value::Null))),
            json!([0, "confidence"]),
            "float_type",
        );
    }

    #[test]
    fn attributes_must_be_list() {
        let e = errs_one(with(bbox(), "attributes", Some(json!({"k":"v"}))));
        assert_single(&e, json!([0, "attributes"]), "list_type");
        let e = errs_one(with(bbox(), "attributes", Some(Value::Null)));
        assert_single(&e, json!([0, "attributes"]), "list_type");
    }

    // --- extra keys ---

    #[test]
    fn unknown_annotation_keys_rejected() {
        for key in ["oriented_box", "instance_id", "updated_at"] {
            let e = errs_one(with(bbox(), key, Some(json!({}))));
            let msg = assert_single(&e, json!([0, key]), "extra_forbidden");
            assert_eq!(msg, "extra fields not permitted");
        }
    }

    #[test]
    fn other_geometry_key_on_bbox_rejected() {
        let e = errs_one(with(bbox(), "polygon", Some(polygon()["polygon"].clone())));
        assert_single(&e, json!([0, "polygon"]), "extra_forbidden");
        let e = errs_one(with(polygon(), "keypoint", Some(json!({"x":1.0,"y":1.0}))));
        assert_single(&e, json!([0, "keypoint"]), "extra_forbidden");
    }

    #[test]
    fn extra_keys_in_geometry_and_points_rejected() {
        let ann = with(
            bbox(),
            "bounding_box",
            Some(json!({"x":1.0,"y":2.0,"w":3.0,"h":4.0,"angle":0.0})),
        );
        assert_single(
            &errs_one(ann),
            json!([0, "bounding_box", "angle"]),
            "extra_forbidden",
        );

        let ann = with(
            keypoint(),
            "keypoint",
            Some(json!({"x":1.0,"y":2.0,"visible":true})),
        );
        assert_single(
            &errs_one(ann),
            json!([0, "keypoint", "visible"]),
            "extra_forbidden",
        );

        let ann = with(
            polygon(),
            "polygon",
            Some(
                json!({"paths":[[{"x":0.0,"y":0.0},{"x":1.0,"y":0.0,"z":0.0},{"x":1.0,"y":1.0}]],"holes":[]}),
            ),
        );
        let e = errs_one(ann);
        assert_eq!(e.len(), 2, "{e:#?}");
        assert_has(&e, json!([0, "polygon", "holes"]), "extra_forbidden");
        assert_has(
            &e,
            json!([0, "polygon", "paths", 0, 1, "z"]),
            "extra_forbidden",
        );

        let ann = with(
            polyline(),
            "polyline",
            Some(json!({"path":[{"x":0.0,"y":0.0},{"x":1.0,"y":1.0}],"closed":false})),
        );
        assert_single(
            &errs_one(ann),
            json!([0, "polyline", "closed"]),
            "extra_forbidden",
        );
    }

    #[test]
    fn keypoint_with_bounding_box_rejected() {
        let ann = with(
            keypoint(),
            "bounding_box",
            Some(json!({"x":1.0,"y":2.0,"w":3.0,"h":4.0})),
        );
        assert_single(
            &errs_one(ann),
            json!([0, "bounding_box"]),
            "extra_forbidden",
        );
    }

    // --- geometry ---

    #[test]
    fn missing_geometry_rejected() {
        for (ann, key) in [
            (bbox(), "bounding_box"),
            (polygon(), "polygon"),
            (polyline(), "polyline"),
            (keypoint(), "keypoint"),
        ] {
            let e = errs_one(with(ann, key, None));
            let msg = assert_single(&e, json!([0, key]), "missing");
            assert_eq!(msg, "field required");
        }
    }

    #[test]
    fn bounding_box_rules() {
        let b = |v: Value| errs_one(with(bbox(), "bounding_box", Some(v)));
        let e = b(json!({"x":1.0,"y":2.0,"w":0.0,"h":4.0}));
        let msg = assert_single(&e, json!([0, "bounding_box", "w"]), "value_error");
        assert_eq!(msg, "w must be greater than 0");
        let e = b(json!({"x":1.0,"y":2.0,"w":3.0,"h":-4.0}));
        let msg = assert_single(&e, json!([0, "bounding_box", "h"]), "value_error");
        assert_eq!(msg, "h must be greater than 0");
        assert_single(
            &b(json!({"x":1.0,"y":2.0,"w":3.0})),
            json!([0, "bounding_box", "h"]),
            "missing",
        );
        assert_single(
            &b(json!({"x":"1","y":2.0,"w":3.0,"h":4.0})),
            json!([0, "bounding_box", "x"]),
            "float_type",
        );
        assert_single(
            &b(json!({"x":null,"y":2.0,"w":3.0,"h":4.0})),
            json!([0, "bounding_box", "x"]),
            "float_type",
        );
        assert_single(
            &b(json!({"x":false,"y":2.0,"w":3.0,"h":4.0})),
            json!([0, "bounding_box", "x"]),
            "float_type",
        );
        assert_single(
            &b(json!([1.0, 2.0, 3.0, 4.0])),
            json!([0, "bounding_box"]),
            "dict_type",
        );
    }

    #[test]
    fn optional_bounding_box_validated_on_polygon_and_polyline() {
        let bad = json!({"x":0.0,"y":0.0,"w":0.0,"h":1.0});
        let e = errs_one(with(polygon(), "bounding_box", Some(bad.clone())));
        assert_single(&e, json!([0, "bounding_box", "w"]), "value_error");
        let e = errs_one(with(polyline(), "bounding_box", Some(bad)));
        assert_single(&e, json!([0, "bounding_box", "w"]), "value_error");
    }

    #[test]
    fn polygon_rules() {
        let p = |v: Value| errs_one(with(polygon(), "polygon", Some(v)));
        let e = p(json!({"paths":[[{"x":0.0,"y":0.0},{"x":1.0,"y":0.0}]]}));
        let msg = assert_single(&e, json!([0, "polygon", "paths", 0]), "value_error");
        assert_eq!(msg, "a polygon ring needs at least 3 points");
        assert_single(
            &p(json!({"paths":[]})),
            json!([0, "polygon", "paths"]),
            "value_error",
        );
        assert_single(&p(json!({})), json!([0, "polygon", "paths"]), "missing");
        assert_single(
            &p(json!({"paths":{}})),
            json!([0, "polygon", "paths"]),
            "list_type",
        );
        assert_single(
            &p(json!({"paths":[{}]})),
            json!([0, "polygon", "paths", 0]),
            "list_type",
        );
        assert_single(&p(json!("x")), json!([0, "polygon"]), "dict_type");
        let e = p(json!({"paths":[[{"x":0.0,"y":0.0},{"x":1.0},{"x":1.0,"y":1.0}]]}));
        assert_single(&e, json!([0, "polygon", "paths", 0, 1, "y"]), "missing");
        let e = p(json!({"paths":[[{"x":0.0,"y":0.0},[1.0, 0.0],{"x":1.0,"y":1.0}]]}));
        assert_single(&e, json!([0, "polygon", "paths", 0, 1]), "dict_type");
    }

    #[test]
    fn polyline_rules() {
        let p = |v: Value| errs_one(with(polyline(), "polyline", Some(v)));
        let e = p(json!({"path":[{"x":0.0,"y":0.0}]}));
        let msg = assert_single(&e, json!([0, "polyline", "path"]), "value_error");
        assert!(msg.contains("at least 2 points"), "{msg}");
        assert_single(&p(json!({})), json!([0, "polyline", "path"]), "missing");
        assert_single(
            &p(json!({"path":"x"})),
            json!([0, "polyline", "path"]),
            "list_type",
        );
        let e = p(json!({"path":[{"x":0.0,"y":0.0},{"x":"1","y":1.0}]}));
        assert_single(&e, json!([0, "polyline", "path", 1, "x"]), "float_type");
    }

    #[test]
    fn keypoint_rules() {
        let k = |v: Value| errs_one(with(keypoint(), "keypoint", Some(v)));
        assert_single(&k(json!({"x":1.0})), json!([0, "keypoint", "y"]), "missing");
        assert_single(
            &k(json!({"x":1.0,"y":"2"})),
            json!([0, "keypoint", "y"]),
            "float_type",
        );
        assert_single(&k(json!("1,2")), json!([0, "keypoint"]), "dict_type");
    }

    // --- multiple errors ---

    #[test]
    fn multiple_errors_collected() {
        let list = json!([
            {"name":"car","type":"bbox","bounding_box":{"x":1.0,"y":2.0,"w":0.0,"h":-1.0},"confidence":1.5,"attributes":{}},
            keypoint(),
            {"id":"k","name":"nose","type":"keypoint","keypoint":{"x":1.0,"y":1.0},"bounding_box":{"x":1.0,"y":2.0,"w":3.0,"h":4.0}},
            42
        ]);
        let e = errs(list);
        assert_has(&e, json!([0, "id"]), "missing");
        assert_has(&e, json!([0, "bounding_box", "w"]), "value_error");
        assert_has(&e, json!([0, "bounding_box", "h"]), "value_error");
        assert_has(&e, json!([0, "confidence"]), "value_error");
        assert_has(&e, json!([0, "attributes"]), "list_type");
        assert_has(&e, json!([2, "id"]), "value_error");
        assert_has(&e, json!([2, "bounding_box"]), "extra_forbidden");
        assert_has(&e, json!([3]), "dict_type");
        assert_eq!(e.len(), 8, "{e:#?}");
    }

    // --- shorthand ---

    #[test]
    fn shorthand_readme_bbox() {
        let out = ok_one(
            json!({"id":"ann-1","name":"person","type":"bbox","bbox":[100,200,50,80],"confidence":1.0}),
        );
        assert_eq!(
            out,
            json!({"id":"ann-1","name":"person","type":"bbox",
                   "bounding_box":{"x":100.0,"y":200.0,"w":50.0,"h":80.0},
                   "confidence":1.0,"attributes":[]})
        );
        assert!(out["bounding_box"]["x"].is_f64());
    }

    #[test]
    fn shorthand_readme_polygon_drops_closing_point() {
        let out = ok_one(
            json!({"id":"ann-2","name":"car","type":"polygon","polygon":[[10,20],[30,40],[50,60],[10,20]]}),
        );
        assert_eq!(
            out,
            json!({"id":"ann-2","name":"car","type":"polygon",
                   "polygon":{"paths":[[{"x":10.0,"y":20.0},{"x":30.0,"y":40.0},{"x":50.0,"y":60.0}]]},
                   "confidence":1.0,"attributes":[]})
        );
    }

    #[test]
    fn shorthand_polygon_open_ring_kept() {
        let out = ok_one(
            json!({"id":"p","name":"car","type":"polygon","polygon":[[0,0],[4,0],[4,4],[0,4]]}),
        );
        assert_eq!(out["polygon"]["paths"][0].as_array().unwrap().len(), 4);
    }

    #[test]
    fn shorthand_polygon_too_short_after_dropping_closing_point() {
        let e =
            errs_one(json!({"id":"p","name":"car","type":"polygon","polygon":[[0,0],[1,1],[0,0]]}));
        let msg = assert_single(&e, json!([0, "polygon"]), "value_error");
        assert_eq!(msg, "a polygon ring needs at least 3 points");
    }

    #[test]
    fn shorthand_readme_polyline() {
        let out = ok_one(
            json!({"id":"ann-3","name":"road","type":"polyline","polyline":[[0,100],[50,100],[100,100]]}),
        );
        assert_eq!(
            out,
            json!({"id":"ann-3","name":"road","type":"polyline",
                   "polyline":{"path":[{"x":0.0,"y":100.0},{"x":50.0,"y":100.0},{"x":100.0,"y":100.0}]},
                   "confidence":1.0,"attributes":[]})
        );
        assert!(out.get("bounding_box").is_none());
    }

    #[test]
    fn shorthand_readme_keypoint() {
        let out =
            ok_one(json!({"id":"ann-4","name":"nose","type":"keypoint","keypoint":[150,200]}));
        assert_eq!(
            out,
            json!({"id":"ann-4","name":"nose","type":"keypoint",
                   "keypoint":{"x":150.0,"y":200.0},"confidence":1.0,"attributes":[]})
        );
    }

    #[test]
    fn metadata_kept_in_shorthand_and_canonical_forms() {
        let ann = json!({"id":"a","name":"car","type":"bbox","bbox":[1,2,3,4],
                         "metadata":{"source":"import"},"created_by":"bob","attributes":["x"]});
        let out = ok_one(ann);
        assert_eq!(out["metadata"], json!({"source":"import"}));
        assert!(out.get("bbox").is_none());
        assert_eq!(out["created_by"], json!("bob"));
        assert_eq!(out["attributes"], json!(["x"]));
        // Canonical input keeps it too, and the output re-validates to itself.
        assert_eq!(ok_one(out.clone()), out);
        let mut stripped = out.clone();
        without_metadata(&mut stripped);
        assert!(stripped.get("metadata").is_none());
        assert_eq!(stripped["attributes"], json!(["x"]));
        // Empty or null metadata is not stored; anything but an object is refused.
        let ann = json!({"id":"k","name":"n","type":"keypoint","keypoint":[1,2],"metadata":{}});
        assert!(ok_one(ann).get("metadata").is_none());
        let ann = with(bbox(), "metadata", Some(Value::Null));
        assert!(ok_one(ann).get("metadata").is_none());
        let ann = json!({"id":"k","name":"n","type":"keypoint","keypoint":[1,2],"metadata":"x"});
        assert_single(&errs_one(ann), json!([0, "metadata"]), "dict_type");
        let e = errs_one(with(bbox(), "metadata", Some(json!([1]))));
        assert_single(&e, json!([0, "metadata"]), "dict_type");
    }

    #[test]
    fn shorthand_output_round_trips_as_canonical() {
        let list = json!([
            {"id":"a","name":"car","type":"bbox","bbox":[1,2,3,4]},
            {"id":"b","name":"car","type":"polygon","polygon":[[10,20],[30,40],[50,60],[10,20]]},
            {"id":"c","name":"road","type":"polyline","polyline":[[0,100],[50,100]]},
            {"id":"d","name":"nose","type":"keypoint","keypoint":[150,200],"metadata":{}}
        ]);
        let out = ok(list);
        assert_eq!(ok(Value::Array(out.clone())), out);
    }

    #[test]
    fn shorthand_mixed_with_canonical_in_one_list() {
        let list = json!([bbox(), {"id":"s","name":"car","type":"bbox","bbox":[0,0,1,1]}]);
        let out = ok(list);
        assert_eq!(
            out[1]["bounding_box"],
            json!({"x":0.0,"y":0.0,"w":1.0,"h":1.0})
        );
    }

    #[test]
    fn shorthand_missing_id_reported() {
        let e = errs_one(json!({"name":"person","type":"bbox","bbox":[100,200,50,80]}));
        assert_single(&e, json!([0, "id"]), "missing");
    }

    #[test]
    fn shorthand_bbox_rules() {
        let b = |v: Value| errs_one(json!({"id":"a","name":"car","type":"bbox","bbox":v}));
        assert_single(&b(json!([1, 2, 3])), json!([0, "bbox"]), "value_error");
        assert_single(
            &b(json!([1, 2, 3, 4, 5])),
            json!([0, "bbox"]),
            "value_error",
        );
        assert_single(
            &b(json!([1, "2", 3, 4])),
            json!([0, "bbox", 1]),
            "float_type",
        );
        assert_single(&b(json!({"x":1})), json!([0, "bbox"]), "list_type");
        let e = b(json!([1, 2, 0, 4]));
        let msg = assert_single(&e, json!([0, "bbox", 2]), "value_error");
        assert_eq!(msg, "w must be greater than 0");
        assert_single(
            &b(json!([1, 2, 3, -4])),
            json!([0, "bbox", 3]),
            "value_error",
        );
    }

    #[test]
    fn shorthand_bbox_with_bounding_box_too_rejected() {
        let ann = json!({"id":"a","name":"car","type":"bbox","bbox":[1,2,3,4],
                         "bounding_box":{"x":1.0,"y":2.0,"w":3.0,"h":4.0}});
        assert_single(
            &errs_one(ann),
            json!([0, "bounding_box"]),
            "extra_forbidden",
        );
    }

    #[test]
    fn shorthand_point_rules() {
        let e = errs_one(json!({"id":"k","name":"n","type":"keypoint","keypoint":[1]}));
        assert_single(&e, json!([0, "keypoint"]), "value_error");
        let e = errs_one(json!({"id":"k","name":"n","type":"keypoint","keypoint":[1, null]}));
        assert_single(&e, json!([0, "keypoint", 1]), "float_type");
        let e = errs_one(
            json!({"id":"p","name":"n","type":"polygon","polygon":[[0,0],[1],[1,1],[0,1]]}),
        );
        assert_single(&e, json!([0, "polygon", 1]), "value_error");
        let e = errs_one(
            json!({"id":"p","name":"n","type":"polyline","polyline":[[0,0],{"x":1,"y":1}]}),
        );
        assert_single(&e, json!([0, "polyline", 1]), "list_type");
        let e = errs_one(json!({"id":"p","name":"n","type":"polyline","polyline":[[0,0]]}));
        assert_single(&e, json!([0, "polyline"]), "value_error");
    }

    #[test]
    fn shorthand_still_forbids_unknown_keys() {
        let ann = json!({"id":"a","name":"car","type":"bbox","bbox":[1,2,3,4],"instance_id":3});
        assert_single(&errs_one(ann), json!([0, "instance_id"]), "extra_forbidden");
        let ann = json!({"id":"k","name":"n","type":"keypoint","keypoint":[1,2],"bounding_box":{"x":0,"y":0,"w":1,"h":1}});
        assert_single(
            &errs_one(ann),
            json!([0, "bounding_box"]),
            "extra_forbidden",
        );
    }

    #[test]
    fn shorthand_checks_common_fields() {
        let classes = vec!["car".to_string()];
        let list = json!([{"id":"a","name":"dog","type":"bbox","bbox":[1,2,3,4],"confidence":1.5}]);
        let e = validate_annotations(&list, Some(&classes)).unwrap_err();
        assert_eq!(e.len(), 2, "{e:#?}");
        assert_has(&e, json!([0, "name"]), "value_error");
        assert_has(&e, json!([0, "confidence"]), "value_error");
    }

    // --- extensions (newer clients) ---

    fn ext_ok(list: Value) -> Vec<Value> {
        validate_annotations_with(&list, None, ValidateOptions::EXTENDED)
            .unwrap_or_else(|e| panic!("unexpected errors: {e:?}"))
    }

    fn ext_errs_one(ann: Value) -> Vec<FieldError> {
        validate_annotations_with(&json!([ann]), None, ValidateOptions::EXTENDED)
            .expect_err("expected validation errors")
    }

    #[test]
    fn strict_is_the_default_and_rejects_extensions() {
        assert_eq!(ValidateOptions::default(), ValidateOptions::STRICT);
        let obb = json!({"cx": 2.5, "cy": 4.0, "w": 3.0, "h": 4.0, "angle": 30});
        let e = errs_one(with(bbox(), "oriented_box", Some(obb)));
        assert_single(&e, json!([0, "oriented_box"]), "extra_forbidden");
        let e = errs_one(with(keypoint(), "instance_id", Some(json!(2))));
        assert_single(&e, json!([0, "instance_id"]), "extra_forbidden");
        let e = errs_one(with(keypoint(), "attributes", Some(json!({"k": "v"}))));
        assert_single(&e, json!([0, "attributes"]), "list_type");
    }

    #[test]
    fn extensions_are_accepted_and_canonicalised() {
        let list = json!([
            with(
                with(
                    bbox(),
                    "oriented_box",
                    Some(json!({"cx": 2, "cy": 4, "w": 3, "h": 4, "angle": 30}))
                ),
                "attributes",
                Some(json!({"occluded": true, "score": 3})),
            ),
            with(keypoint(), "instance_id", Some(json!(2))),
            with(
                bbox(),
                "oriented_box",
                Some(json!({"cx": 1, "cy": 1, "w": 1, "h": 1}))
            ),
            with(keypoint(), "instance_id", Some(Value::Null)),
        ]);
        let list = json!(list
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
            .map(|(i, a)| with(a.clone(), "id", Some(json!(format!("id{i}")))))
            .collect::<Vec<_>>());
        let out = ext_ok(list);
        assert_eq!(
            out[0]["oriented_box"],
            json!({"cx": 2.0, "cy": 4.0, "w": 3.0, "h": 4.0, "angle": 30.0})
        );
        assert_eq!(out[0]["attributes"], json!({"occluded": true, "score": 3}));
        assert_eq!(out[1]["instance_id"], json!(2));
        assert_eq!(out[2]["oriented_box"]["angle"], json!(0.0));
        assert!(out[3].get("instance_id").is_none());
        // Canonical output validates to itself.
        assert_eq!(ext_ok(Value::Array(out.clone())), out);
        // Plain 1.6.3 annotations are unchanged by the extended mode.
        assert_eq!(
            ext_ok(canonical_example()),
            canonical_example().as_array().unwrap().clone()
        );
    }

    #[test]
    fn extension_values_are_checked() {
        let obb = |v: Value| with(bbox(), "oriented_box", Some(v));
        let e = ext_errs_one(obb(json!({"cx": 1, "cy": 1, "w": 0, "h": 1})));
        assert_single(&e, json!([0, "oriented_box", "w"]), "value_error");
        let e = ext_errs_one(obb(json!({"cx": 1, "cy": 1, "w": 1, "h": 1, "angle": 360})));
        assert_single(&e, json!([0, "oriented_box", "angle"]), "value_error");
        let e = ext_errs_one(obb(json!({"cx": 1, "w": 1, "h": 1, "rot": 3})));
        assert_has(&e, json!([0, "oriented_box", "cy"]), "missing");
        assert_has(&e, json!([0, "oriented_box", "rot"]), "extra_forbidden");
        let e = ext_errs_one(obb(json!([1, 2, 3, 4])));
        assert_single(&e, json!([0, "oriented_box"]), "dict_type");
        // Only a bbox may carry an oriented box, only a keypoint an instance id.
        let e = ext_errs_one(with(
            polygon(),
            "oriented_box",
            Some(json!({"cx": 1, "cy": 1, "w": 1, "h": 1})),
        ));
        assert_single(&e, json!([0, "oriented_box"]), "extra_forbidden");
        let e = ext_errs_one(with(bbox(), "instance_id", Some(json!(1))));
        assert_single(&e, json!([0, "instance_id"]), "extra_forbidden");
        for bad in [json!(0), json!(-1), json!(1.5), json!("2"), json!(true)] {
            let e = ext_errs_one(with(keypoint(), "instance_id", Some(bad.clone())));
            assert_eq!(e.len(), 1, "{bad}: {e:#?}");
        }
        let e = ext_errs_one(with(keypoint(), "attributes", Some(json!("x"))));
        assert_single(&e, json!([0, "attributes"]), "list_type");
    }

    #[test]
    fn min_confidence_of_lists() {
        assert_eq!(min_confidence(&[]), None);
        let list = ok(canonical_example());
        assert_eq!(min_confidence(&list), Some(0.9));
        assert_eq!(min_confidence(&[json!({"id": "x"})]), Some(1.0));
    }

    #[test]
    fn legacy_view_strips_extensions() {
        let ann = json!({"id":"a","name":"car","type":"bbox",
            "bounding_box":{"x":1.0,"y":2.0,"w":3.0,"h":4.0},
            "oriented_box":{"cx":2.5,"cy":4.0,"w":3.0,"h":4.0,"angle":10.0},
            "confidence":1.0,"attributes":{"occluded":true}});
        assert!(uses_extensions(&ann));
        let legacy = to_legacy(&ann);
        assert!(!uses_extensions(&legacy));
        assert!(legacy.get("oriented_box").is_none());
        assert_eq!(legacy["attributes"], json!([{"occluded": true}]));
        // The legacy form passes the strict validation unchanged.
        assert_eq!(ok_one(legacy.clone()), legacy);
        let kp = json!({"id":"k","name":"nose","type":"keypoint","keypoint":{"x":1.0,"y":1.0},
            "confidence":1.0,"attributes":{},"instance_id":3});
        let legacy = to_legacy(&kp);
        assert_eq!(
            legacy,
            json!({"id":"k","name":"nose","type":"keypoint","keypoint":{"x":1.0,"y":1.0},
                "confidence":1.0,"attributes":[]})
        );
        for plain in canonical_example().as_array().unwrap() {
            assert!(!uses_extensions(plain));
            assert_eq!(&to_legacy(plain), plain);
        }
        assert_eq!(to_legacy(&json!(3)), json!(3));
    }

    // --- count_by_type ---

    #[test]
    fn counts_by_type() {
        let list = ok(canonical_example());
        assert_eq!(count_by_type(&list), [1, 1, 1, 1]);
        let list = vec![bbox(), bbox(), keypoint(), json!({"type":"box"}), json!(3)];
        assert_eq!(count_by_type(&list), [2, 0, 0, 1]);
        assert_eq!(count_by_type(&[]), [0; 4]);
    }
}
