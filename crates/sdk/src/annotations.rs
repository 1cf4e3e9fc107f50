//! Annotations in the canonical Pictograph JSON format, and the resource that reads and
//! replaces an image's list.
//!
//! ```
//! use pictograph::Annotation;
//! let a = Annotation::bbox("ann-1", "person", [100.0, 200.0, 50.0, 80.0]).with_confidence(0.95);
//! assert_eq!(
//!     serde_json::to_value(&a).unwrap(),
//!     serde_json::json!({"type": "bbox", "id": "ann-1", "name": "person",
//!         "bounding_box": {"x": 100.0, "y": 200.0, "w": 50.0, "h": 80.0},
//!         "confidence": 0.95, "attributes": []})
//! );
//! ```

use crate::client::Client;
use crate::error::Result;
use crate::http::{field, segment, Req};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// A point in absolute pixel coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Horizontal position.
    pub x: f64,
    /// Vertical position.
    pub y: f64,
}

impl Point {
    /// A point.
    pub fn new(x: f64, y: f64) -> Point {
        Point { x, y }
    }
}

impl From<[f64; 2]> for Point {
    fn from([x, y]: [f64; 2]) -> Point {
        Point { x, y }
    }
}

impl From<(f64, f64)> for Point {
    fn from((x, y): (f64, f64)) -> Point {
        Point { x, y }
    }
}

/// An axis-aligned box: top-left corner, width and height (both must be positive).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BoundingBox {
    /// Left edge.
    pub x: f64,
    /// Top edge.
    pub y: f64,
    /// Width.
    pub w: f64,
    /// Height.
    pub h: f64,
}

impl BoundingBox {
    /// A box.
    pub fn new(x: f64, y: f64, w: f64, h: f64) -> BoundingBox {
        BoundingBox { x, y, w, h }
    }

    /// The smallest box around `points`, if it has a positive width and height.
    pub fn around(points: impl IntoIterator<Item = Point>) -> Option<BoundingBox> {
        let mut it = points.into_iter();
        let first = it.next()?;
        let (mut x0, mut y0, mut x1, mut y1) = (first.x, first.y, first.x, first.y);
        for p in it {
            x0 = x0.min(p.x);
            y0 = y0.min(p.y);
            x1 = x1.max(p.x);
            y1 = y1.max(p.y);
        }
        (x1 > x0 && y1 > y0).then(|| BoundingBox::new(x0, y0, x1 - x0, y1 - y0))
    }
}

impl From<[f64; 4]> for BoundingBox {
    fn from([x, y, w, h]: [f64; 4]) -> BoundingBox {
        BoundingBox { x, y, w, h }
    }
}

/// Polygon geometry: the first ring is the outline, later rings are holes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolygonGeometry {
    /// Rings of at least 3 points each.
    pub paths: Vec<Vec<Point>>,
}

/// Polyline geometry: an open path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolylineGeometry {
    /// At least 2 points.
    pub path: Vec<Point>,
}

fn one() -> f64 {
    1.0
}

/// One annotation, serialized exactly as the canonical JSON (`type` is the tag).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Annotation {
    /// A bounding box.
    #[serde(rename = "bbox")]
    BBox {
        /// Unique within the image's list.
        id: String,
        /// Class label.
        name: String,
        /// The box.
        bounding_box: BoundingBox,
        /// 0 to 1.
        #[serde(default = "one")]
        confidence: f64,
        /// Who made it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        created_by: Option<String>,
        /// Free-form attributes.
        #[serde(default)]
        attributes: Vec<Value>,
        /// Free-form metadata (kept by this server; read back with [`Annotations::get`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        metadata: Option<Map<String, Value>>,
    },
    /// A polygon, possibly with holes.
    #[serde(rename = "polygon")]
    Polygon {
        /// Unique within the image's list.
        id: String,
        /// Class label.
        name: String,
        /// The rings.
        polygon: PolygonGeometry,
        /// Optional enclosing box.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bounding_box: Option<BoundingBox>,
        /// 0 to 1.
        #[serde(default = "one")]
        confidence: f64,
        /// Who made it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        created_by: Option<String>,
        /// Free-form attributes.
        #[serde(default)]
        attributes: Vec<Value>,
        /// Free-form metadata (kept by this server; read back with [`Annotations::get`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        metadata: Option<Map<String, Value>>,
    },
    /// An open polyline.
    #[serde(rename = "polyline")]
    Polyline {
        /// Unique within the image's list.
        id: String,
        /// Class label.
        name: String,
        /// The path.
        polyline: PolylineGeometry,
        /// Optional enclosing box.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bounding_box: Option<BoundingBox>,
        /// 0 to 1.
        #[serde(default = "one")]
        confidence: f64,
        /// Who made it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        created_by: Option<String>,
        /// Free-form attributes.
        #[serde(default)]
        attributes: Vec<Value>,
        /// Free-form metadata (kept by this server; read back with [`Annotations::get`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        metadata: Option<Map<String, Value>>,
    },
    /// A single point.
    #[serde(rename = "keypoint")]
    Keypoint {
        /// Unique within the image's list.
        id: String,
        /// Class label.
        name: String,
        /// The point.
        keypoint: Point,
        /// 0 to 1.
        #[serde(default = "one")]
        confidence: f64,
        /// Who made it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        created_by: Option<String>,
        /// Free-form attributes.
        #[serde(default)]
        attributes: Vec<Value>,
        /// Free-form metadata (kept by this server; read back with [`Annotations::get`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        metadata: Option<Map<String, Value>>,
    },
}

impl Annotation {
    /// A bounding box from `[x, y, width, height]` (or a [`BoundingBox`]), confidence 1.
    pub fn bbox(
        id: impl Into<String>,
        name: impl Into<String>,
        bbox: impl Into<BoundingBox>,
    ) -> Annotation {
        Annotation::BBox {
            id: id.into(),
            name: name.into(),
            bounding_box: bbox.into(),
            confidence: 1.0,
            created_by: None,
            attributes: Vec::new(),
            metadata: None,
        }
    }

    /// A polygon from one outer ring of `[x, y]` points, confidence 1.
    pub fn polygon<P: Into<Point>>(
        id: impl Into<String>,
        name: impl Into<String>,
        points: impl IntoIterator<Item = P>,
    ) -> Annotation {
        Annotation::polygon_with_holes(id, name, vec![points.into_iter().map(Into::into).collect()])
    }

    /// A polygon from rings (outline first, then holes), confidence 1.
    pub fn polygon_with_holes(
        id: impl Into<String>,
        name: impl Into<String>,
        paths: Vec<Vec<Point>>,
    ) -> Annotation {
        Annotation::Polygon {
            id: id.into(),
            name: name.into(),
            polygon: PolygonGeometry { paths },
            bounding_box: None,
            confidence: 1.0,
            created_by: None,
            attributes: Vec::new(),
            metadata: None,
        }
    }

    /// A polyline from `[x, y]` points, confidence 1.
    pub fn polyline<P: Into<Point>>(
        id: impl Into<String>,
        name: impl Into<String>,
        points: impl IntoIterator<Item = P>,
    ) -> Annotation {
        Annotation::Polyline {
            id: id.into(),
            name: name.into(),
            polyline: PolylineGeometry {
                path: points.into_iter().map(Into::into).collect(),
            },
            bounding_box: None,
            confidence: 1.0,
            created_by: None,
            attributes: Vec::new(),
            metadata: None,
        }
    }

    /// A keypoint at `[x, y]`, confidence 1.
    pub fn keypoint(
        id: impl Into<String>,
        name: impl Into<String>,
        point: impl Into<Point>,
    ) -> Annotation {
        Annotation::Keypoint {
            id: id.into(),
            name: name.into(),
            keypoint: point.into(),
            confidence: 1.0,
            created_by: None,
            attributes: Vec::new(),
            metadata: None,
        }
    }

    /// Sets the confidence (0 to 1).
    pub fn with_confidence(mut self, c: f64) -> Annotation {
        *self.common_mut().2 = c;
        self
    }

    /// Sets who made it.
    pub fn with_created_by(mut self, who: impl Into<String>) -> Annotation {
        *self.common_mut().3 = Some(who.into());
        self
    }

    /// Sets the free-form attributes.
    pub fn with_attributes(mut self, attributes: Vec<Value>) -> Annotation {
        *self.common_mut().4 = attributes;
        self
    }

    /// Sets the free-form metadata (an object; anything else, or an empty object, clears
    /// it). The official clients cannot read it, so the server returns it only to callers
    /// that ask, as [`Annotations::get`] does.
    pub fn with_metadata(mut self, metadata: Value) -> Annotation {
        *self.common_mut().5 = match metadata {
            Value::Object(m) if !m.is_empty() => Some(m),
            _ => None,
        };
        self
    }

    /// Its free-form metadata, if any.
    pub fn metadata(&self) -> Option<&Map<String, Value>> {
        match self {
            Annotation::BBox { metadata, .. }
            | Annotation::Polygon { metadata, .. }
            | Annotation::Polyline { metadata, .. }
            | Annotation::Keypoint { metadata, .. } => metadata.as_ref(),
        }
    }

    #[allow(clippy::type_complexity)]
    fn common_mut(
        &mut self,
    ) -> (
        &mut String,
        &mut String,
        &mut f64,
        &mut Option<String>,
        &mut Vec<Value>,
        &mut Option<Map<String, Value>>,
    ) {
        match self {
            Annotation::BBox {
                id,
                name,
                confidence,
                created_by,
                attributes,
                metadata,
                ..
            }
            | Annotation::Polygon {
                id,
                name,
                confidence,
                created_by,
                attributes,
                metadata,
                ..
            }
            | Annotation::Polyline {
                id,
                name,
                confidence,
                created_by,
                attributes,
                metadata,
                ..
            }
            | Annotation::Keypoint {
                id,
                name,
                confidence,
                created_by,
                attributes,
                metadata,
                ..
            } => (id, name, confidence, created_by, attributes, metadata),
        }
    }

    fn common(&self) -> (&str, &str, f64) {
        match self {
            Annotation::BBox {
                id,
                name,
                confidence,
                ..
            }
            | Annotation::Polygon {
                id,
                name,
                confidence,
                ..
            }
            | Annotation::Polyline {
                id,
                name,
                confidence,
                ..
            }
            | Annotation::Keypoint {
                id,
                name,
                confidence,
                ..
            } => (id, name, *confidence),
        }
    }

    /// Its id.
    pub fn id(&self) -> &str {
        self.common().0
    }

    /// Its class label.
    pub fn name(&self) -> &str {
        self.common().1
    }

    /// Its confidence.
    pub fn confidence(&self) -> f64 {
        self.common().2
    }

    /// The wire type: `bbox`, `polygon`, `polyline` or `keypoint`.
    pub fn kind(&self) -> &'static str {
        match self {
            Annotation::BBox { .. } => "bbox",
            Annotation::Polygon { .. } => "polygon",
            Annotation::Polyline { .. } => "polyline",
            Annotation::Keypoint { .. } => "keypoint",
        }
    }
}

/// What a save did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SaveResult {
    /// The image.
    pub image_id: String,
    /// Annotations before.
    pub previous_count: u64,
    /// Annotations now.
    pub new_count: u64,
    /// The image's lifecycle status.
    pub status: String,
}

/// What a delete removed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeleteResult {
    /// The image.
    #[serde(default)]
    pub image_id: String,
    /// Annotations removed.
    #[serde(default)]
    pub deleted_count: u64,
}

/// The annotations resource: `client.annotations()`.
#[derive(Debug, Clone)]
pub struct Annotations {
    client: Client,
}

impl Annotations {
    pub(crate) fn new(client: Client) -> Annotations {
        Annotations { client }
    }

    /// The image's annotations (empty when it has none), with their metadata.
    pub async fn get(&self, image_id: &str) -> Result<Vec<Annotation>> {
        let v = self
            .client
            .transport
            .json(
                Req::api(Method::GET, &format!("/annotations/{}", segment(image_id)))
                    .query("include", "metadata"),
            )
            .await?;
        match v.get("annotations") {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(_) => field(v, &["annotations"]),
        }
    }

    /// Replaces the image's annotations with `annotations` (an empty list clears them).
    pub async fn save(&self, image_id: &str, annotations: &[Annotation]) -> Result<SaveResult> {
        let req = Req::api(Method::POST, &format!("/annotations/{}", segment(image_id)))
            .json(&json!({"image_id": image_id, "annotations": annotations}));
        self.client.transport.parse(req).await
    }

    /// Removes every annotation of the image.
    pub async fn delete(&self, image_id: &str) -> Result<DeleteResult> {
        let v = self
            .client
            .transport
            .json(Req::api(
                Method::DELETE,
                &format!("/annotations/{}", segment(image_id)),
            ))
            .await?;
        let mut r: DeleteResult = crate::http::decode(v)?;
        if r.image_id.is_empty() {
            r.image_id = image_id.to_string();
        }
        Ok(r)
    }

    /// A bounding box from `[x, y, width, height]` (same as [`Annotation::bbox`]).
    pub fn create_bbox(
        &self,
        id: impl Into<String>,
        name: impl Into<String>,
        bbox: impl Into<BoundingBox>,
    ) -> Annotation {
        Annotation::bbox(id, name, bbox)
    }

    /// A polygon from `[x, y]` points (same as [`Annotation::polygon`]).
    pub fn create_polygon<P: Into<Point>>(
        &self,
        id: impl Into<String>,
        name: impl Into<String>,
        points: impl IntoIterator<Item = P>,
    ) -> Annotation {
        Annotation::polygon(id, name, points)
    }

    /// A polyline from `[x, y]` points (same as [`Annotation::polyline`]).
    pub fn create_polyline<P: Into<Point>>(
        &self,
        id: impl Into<String>,
        name: impl Into<String>,
        points: impl IntoIterator<Item = P>,
    ) -> Annotation {
        Annotation::polyline(id, name, points)
    }

    /// A keypoint at `[x, y]` (same as [`Annotation::keypoint`]).
    pub fn create_keypoint(
        &self,
        id: impl Into<String>,
        name: impl Into<String>,
        point: impl Into<Point>,
    ) -> Annotation {
        Annotation::keypoint(id, name, point)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_round_trips_through_core_validation() {
        let list = vec![
            Annotation::bbox("a1", "car", [1.0, 2.0, 3.0, 4.0]).with_confidence(0.9),
            Annotation::polygon("a2", "car", [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]]),
            Annotation::polyline("a3", "road", [[0.0, 100.0], [50.0, 100.0]]),
            Annotation::keypoint("a4", "nose", [3.0, 3.0])
                .with_attributes(vec![json!({"k": "v"})])
                .with_created_by("me"),
        ];
        let v = serde_json::to_value(&list).unwrap();
        assert_eq!(
            v[1],
            json!({"id":"a2","name":"car","type":"polygon",
                "polygon":{"paths":[[{"x":0.0,"y":0.0},{"x":1.0,"y":0.0},{"x":1.0,"y":1.0}]]},
                "confidence":1.0,"attributes":[]})
        );
        assert_eq!(v[3]["created_by"], "me");
        // The server's validator accepts it unchanged.
        let canonical = pictograph_core::annotation::validate_annotations(&v, None).unwrap();
        assert_eq!(Value::Array(canonical), v);
        let back: Vec<Annotation> = serde_json::from_value(v).unwrap();
        assert_eq!(back, list);
        assert_eq!(back[2].kind(), "polyline");
        assert_eq!(back[0].confidence(), 0.9);
        assert_eq!(back[3].id(), "a4");
    }

    #[test]
    fn bounding_box_around_points() {
        let b = BoundingBox::around([Point::new(1.0, 5.0), Point::new(4.0, 2.0)]).unwrap();
        assert_eq!(b, BoundingBox::new(1.0, 2.0, 3.0, 3.0));
        assert!(BoundingBox::around([Point::new(0.0, 1.0), Point::new(5.0, 1.0)]).is_none());
    }
}
