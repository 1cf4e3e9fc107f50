//! Canonical annotations read into plain geometry, and geometry written back as canonical
//! JSON.

use serde_json::{json, Value};

/// The geometry of one annotation, in absolute pixels.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// Axis-aligned box: left, top, width, height.
    Box([f64; 4]),
    /// Polygon: the outline first, then holes; each ring at least 3 points.
    Polygon(Vec<Vec<[f64; 2]>>),
    /// Open path of at least 2 points.
    Polyline(Vec<[f64; 2]>),
    /// One point.
    Keypoint([f64; 2]),
}

impl Shape {
    /// The canonical type name.
    pub fn kind(&self) -> &'static str {
        match self {
            Shape::Box(_) => "bbox",
            Shape::Polygon(_) => "polygon",
            Shape::Polyline(_) => "polyline",
            Shape::Keypoint(_) => "keypoint",
        }
    }

    /// The smallest box around the shape (`[x, y, w, h]`); width/height may be 0.
    pub fn bounds(&self) -> [f64; 4] {
        let points: Vec<[f64; 2]> = match self {
            Shape::Box(b) => return *b,
            Shape::Polygon(rings) => rings.first().cloned().unwrap_or_default(),
            Shape::Polyline(p) => p.clone(),
            Shape::Keypoint(p) => vec![*p],
        };
        let mut it = points.iter();
        let Some(first) = it.next() else {
            return [0.0; 4];
        };
        let (mut x0, mut y0, mut x1, mut y1) = (first[0], first[1], first[0], first[1]);
        for p in it {
            x0 = x0.min(p[0]);
            y0 = y0.min(p[1]);
            x1 = x1.max(p[0]);
            y1 = y1.max(p[1]);
        }
        [x0, y0, x1 - x0, y1 - y0]
    }
}

/// One canonical annotation as the writers need it.
#[derive(Debug, Clone, PartialEq)]
pub struct Ann {
    /// Class label.
    pub name: String,
    /// Geometry.
    pub shape: Shape,
    /// 0 to 1.
    pub confidence: f64,
    /// It carries attributes (a non-empty list or object) other than a keypoint's
    /// [`occluded`](Ann::occluded) mark.
    pub has_attributes: bool,
    /// A keypoint labelled but not visible: its attributes say `occluded` (`true`, `"true"`,
    /// `1` or `"1"`), as a list entry `[{"occluded": "true"}]` or an object
    /// `{"occluded": "true"}`. COCO and YOLO pose write it as visibility 1; a keypoint without
    /// it is visible (2). Always false for other shapes, whose `occluded` attribute is an
    /// attribute like any other.
    pub occluded: bool,
    /// It carries metadata (a non-empty object).
    pub has_metadata: bool,
}

fn point(v: &Value) -> Option<[f64; 2]> {
    Some([v.get("x")?.as_f64()?, v.get("y")?.as_f64()?])
}

fn points(v: &Value) -> Option<Vec<[f64; 2]>> {
    v.as_array()?.iter().map(point).collect()
}

/// Reads one canonical annotation (as stored by the server); `None` when it is not one.
pub fn read_annotation(v: &Value) -> Option<Ann> {
    let name = v.get("name")?.as_str()?.to_string();
    let shape = match v.get("type")?.as_str()? {
        "bbox" => {
            let b = v.get("bounding_box")?;
            Shape::Box([
                b.get("x")?.as_f64()?,
                b.get("y")?.as_f64()?,
                b.get("w")?.as_f64()?,
                b.get("h")?.as_f64()?,
            ])
        }
        "polygon" => Shape::Polygon(
            v.pointer("/polygon/paths")?
                .as_array()?
                .iter()
                .map(points)
                .collect::<Option<Vec<_>>>()?,
        ),
        "polyline" => Shape::Polyline(points(v.pointer("/polyline/path")?)?),
        "keypoint" => Shape::Keypoint(point(v.get("keypoint")?)?),
        _ => return None,
    };
    let (occluded, other, any) = attributes_of(v.get("attributes"));
    // Only a point's visibility has a place in the formats; a box's `occluded` is an attribute
    // like any other.
    let (occluded, has_attributes) = match &shape {
        Shape::Keypoint(_) => (occluded, other),
        _ => (false, any),
    };
    let has_metadata = v
        .get("metadata")
        .and_then(Value::as_object)
        .is_some_and(|m| !m.is_empty());
    Some(Ann {
        name,
        shape,
        confidence: v.get("confidence").and_then(Value::as_f64).unwrap_or(1.0),
        has_attributes,
        has_metadata,
        occluded,
    })
}

/// The attribute key that marks a keypoint labelled but not visible.
pub const OCCLUDED: &str = "occluded";

/// Whether an attribute value says yes: `true`, `1`, or those as text (any case).
fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() == Some(1.0),
        Value::String(s) => {
            let s = s.trim();
            s.eq_ignore_ascii_case("true") || s == "1"
        }
        _ => false,
    }
}

/// Reads `attributes` (a list of entries, or one object): whether it marks the annotation
/// [`OCCLUDED`], whether it holds anything but that key, and whether it holds anything.
fn attributes_of(attributes: Option<&Value>) -> (bool, bool, bool) {
    let (mut occluded, mut other) = (false, false);
    let entries: Vec<&Value> = match attributes {
        Some(Value::Array(list)) => list.iter().collect(),
        Some(o @ Value::Object(_)) => vec![o],
        _ => Vec::new(),
    };
    let mut any = false;
    for entry in entries {
        match entry {
            Value::Object(o) => {
                any |= !o.is_empty();
                for (k, v) in o {
                    if k == OCCLUDED {
                        occluded |= truthy(v);
                    } else {
                        other = true;
                    }
                }
            }
            _ => {
                any = true;
                other = true;
            }
        }
    }
    // An empty object in a list is still an attribute entry.
    if matches!(attributes, Some(Value::Array(list)) if !list.is_empty()) {
        any = true;
    }
    (occluded, other, any)
}

/// The attributes of an imported keypoint labelled but not visible: what [`Ann::occluded`]
/// reads back (the list form every client accepts).
pub fn occluded_attributes() -> Value {
    json!([{ OCCLUDED: "true" }])
}

fn pt(p: &[f64; 2]) -> Value {
    json!({"x": p[0], "y": p[1]})
}

/// A canonical annotation (the strict format every client reads) with this id, class,
/// geometry and confidence, and no attributes.
pub fn canonical(id: &str, name: &str, shape: &Shape, confidence: f64) -> Value {
    let mut v = json!({"id": id, "name": name, "type": shape.kind()});
    let obj = v.as_object_mut().expect("object");
    match shape {
        Shape::Box([x, y, w, h]) => {
            obj.insert(
                "bounding_box".into(),
                json!({"x": x, "y": y, "w": w, "h": h}),
            );
        }
        Shape::Polygon(rings) => {
            let paths: Vec<Vec<Value>> = rings.iter().map(|r| r.iter().map(pt).collect()).collect();
            obj.insert("polygon".into(), json!({ "paths": paths }));
        }
        Shape::Polyline(path) => {
            let path: Vec<Value> = path.iter().map(pt).collect();
            obj.insert("polyline".into(), json!({ "path": path }));
        }
        Shape::Keypoint(p) => {
            obj.insert("keypoint".into(), pt(p));
        }
    }
    obj.insert("confidence".into(), json!(confidence));
    obj.insert("attributes".into(), json!([]));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_reads_back() {
        let shapes = [
            Shape::Box([1.0, 2.0, 3.0, 4.0]),
            Shape::Polygon(vec![vec![[0.0, 0.0], [4.0, 0.0], [4.0, 3.0]]]),
            Shape::Polyline(vec![[0.0, 0.0], [5.0, 5.0]]),
            Shape::Keypoint([3.0, 3.5]),
        ];
        for s in shapes {
            let v = canonical("a", "car", &s, 0.5);
            let a = read_annotation(&v).unwrap();
            assert_eq!(a.shape, s);
            assert_eq!(a.confidence, 0.5);
            assert!(!a.has_attributes);
            assert!(!a.has_metadata);
        }
    }

    #[test]
    fn bounds_of_shapes() {
        let p = Shape::Polygon(vec![vec![[1.0, 5.0], [4.0, 2.0], [3.0, 9.0]]]);
        assert_eq!(p.bounds(), [1.0, 2.0, 3.0, 7.0]);
        assert_eq!(Shape::Keypoint([2.0, 3.0]).bounds(), [2.0, 3.0, 0.0, 0.0]);
    }
}
