//! `pictograph export` and `pictograph import` against a real server started in-process:
//! COCO, YOLO, VOC and pictograph folders made here with real image files, idempotent
//! imports, round trips import → export → import, warnings for what a format cannot hold,
//! and bad input.

use pictograph::{Annotation, Client, ImageListOptions};
use pictograph_server::auth::{create_key, Role};
use pictograph_server::{App, Config};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

struct Server {
    _app: App,
    url: String,
    key: String,
    other_key: String,
    dir: tempfile::TempDir,
}

async fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(dir.path().join("data"));
    config.listen = "127.0.0.1:0".parse().unwrap();
    let app = App::start(config).await.unwrap();
    let key = create_key(&app.state.store, "org", Role::Owner, "unlimited")
        .await
        .unwrap();
    let other_key = create_key(&app.state.store, "other-org", Role::Owner, "unlimited")
        .await
        .unwrap();
    Server {
        url: format!("http://{}", app.addr),
        _app: app,
        key,
        other_key,
        dir,
    }
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn ok(&self) -> Value {
        assert_eq!(
            self.code, 0,
            "stdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }
}

impl Server {
    fn run_as(&self, key: &str, args: &[&str]) -> Out {
        let mut c = Command::new(env!("CARGO_BIN_EXE_pictograph"));
        for (k, _) in std::env::vars() {
            if k.starts_with("PICTOGRAPH_") {
                c.env_remove(k);
            }
        }
        c.env("PICTOGRAPH_CONFIG_DIR", self.dir.path().join("no-config"))
            .env("PICTOGRAPH_BASE_URL", &self.url)
            .env("PICTOGRAPH_API_KEY", key)
            .args(args)
            .stdin(Stdio::null());
        let out = c.output().expect("run pictograph");
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn run(&self, args: &[&str]) -> Out {
        self.run_as(&self.key, args)
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn client(&self) -> Client {
        Client::builder(self.key.clone())
            .base_url(self.url.clone())
            .build()
            .unwrap()
    }

    fn import(&self, folder: &Path, format: &str, dataset: &str) -> Value {
        self.run(&[
            "import",
            folder.to_str().unwrap(),
            "--format",
            format,
            "--dataset",
            dataset,
            "--create",
            "--json",
        ])
        .ok()
    }

    fn export(&self, dataset: &str, format: &str, out: &str, extra: &[&str]) -> (PathBuf, Value) {
        let dir = self.path(out);
        let mut args = vec![
            "export",
            dataset,
            dir.to_str().unwrap(),
            "--format",
            format,
            "--json",
        ];
        args.extend_from_slice(extra);
        let v = self.run(&args).ok();
        (dir, v)
    }
}

/// A PNG of `w`×`h` whose pixels depend on `seed`.
fn png(path: &Path, w: u32, h: u32, seed: u8) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([seed, (x * 7) as u8, (y * 11) as u8])
    })
    .save_with_format(path, image::ImageFormat::Png)
    .unwrap();
}

/// A COCO folder: boxes, a polygon, a one-point keypoint, a score, an image without labels.
fn coco_folder(root: &Path) {
    png(&root.join("images/cars/a.png"), 40, 30, 1);
    png(&root.join("images/b.png"), 32, 24, 2);
    png(&root.join("images/cars/c.png"), 16, 16, 3);
    let doc = json!({
        "images": [
            {"id": 1, "file_name": "cars/a.png", "width": 40, "height": 30},
            {"id": 2, "file_name": "b.png", "width": 32, "height": 24},
            {"id": 3, "file_name": "cars/c.png", "width": 16, "height": 16},
        ],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [2, 3, 10, 5], "area": 50, "iscrowd": 0, "segmentation": []},
            {"id": 2, "image_id": 1, "category_id": 3, "bbox": [0, 0, 20, 10], "area": 100, "iscrowd": 0,
             "segmentation": [[0, 0, 20, 0, 20, 10]]},
            {"id": 3, "image_id": 1, "category_id": 4, "keypoints": [5, 6, 2], "num_keypoints": 1,
             "bbox": [5, 6, 0, 0], "area": 0, "iscrowd": 0},
            {"id": 4, "image_id": 2, "category_id": 2, "bbox": [1.5, 2.25, 7, 8], "area": 56, "iscrowd": 0, "score": 0.75},
        ],
        "categories": [
            {"id": 1, "name": "car"}, {"id": 2, "name": "bus"}, {"id": 3, "name": "road"},
            {"id": 4, "name": "nose", "keypoints": ["nose"], "skeleton": []},
        ],
    });
    std::fs::create_dir_all(root.join("annotations")).unwrap();
    std::fs::write(
        root.join("annotations/instances.json"),
        serde_json::to_vec(&doc).unwrap(),
    )
    .unwrap();
}

/// A YOLO folder with a train and a val split.
fn yolo_folder(root: &Path) {
    png(&root.join("images/train/x.png"), 50, 40, 4);
    png(&root.join("images/train/sub/z.png"), 64, 48, 5);
    png(&root.join("images/val/y.png"), 30, 20, 6);
    let label = |rel: &str, text: &str| {
        let p = root.join("labels").join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    label("train/x.txt", "0 0.5 0.5 0.2 0.25\n1 0.3 0.7 0.1 0.2\n");
    label("train/sub/z.txt", "");
    label("val/y.txt", "1 0.25 0.5 0.1 0.3\n");
    std::fs::write(
        root.join("data.yaml"),
        "train: images/train\nval: images/val\nnc: 2\nnames:\n  0: cat\n  1: dog\n",
    )
    .unwrap();
}

/// A VOC folder: one annotated image, one without an XML file.
fn voc_folder(root: &Path) {
    png(&root.join("JPEGImages/p.png"), 30, 20, 7);
    png(&root.join("JPEGImages/sub/q.png"), 10, 10, 8);
    std::fs::create_dir_all(root.join("Annotations")).unwrap();
    std::fs::write(
        root.join("Annotations/p.xml"),
        "<annotation><folder></folder><filename>p.png</filename>\
         <size><width>30</width><height>20</height><depth>3</depth></size>\
         <object><name>person</name><difficult>0</difficult>\
         <bndbox><xmin>1</xmin><ymin>2</ymin><xmax>11</xmax><ymax>12</ymax></bndbox></object>\
         <object><name>tree &amp; bush</name>\
         <bndbox><xmin>3.5</xmin><ymin>4</ymin><xmax>9</xmax><ymax>19.5</ymax></bndbox></object>\
         </annotation>",
    )
    .unwrap();
}

/// (folder, filename) → (width, height, annotations) of every image of a dataset.
type State = BTreeMap<(String, String), (u32, u32, Vec<Value>)>;

async fn state(client: &Client, dataset: &str) -> State {
    let page = client
        .datasets()
        .list_images(
            dataset,
            ImageListOptions {
                limit: Some(1000),
                ..ImageListOptions::default()
            },
        )
        .await
        .unwrap();
    let mut out = State::new();
    for img in page.images {
        let anns: Vec<Annotation> = client.annotations().get(&img.id).await.unwrap();
        let anns = anns
            .iter()
            .map(|a| serde_json::to_value(a).unwrap())
            .collect();
        out.insert(
            (img.folder().to_string(), img.filename.clone()),
            (img.width.unwrap(), img.height.unwrap(), anns),
        );
    }
    out
}

/// Equal JSON, numbers within `tol`.
fn close(a: &Value, b: &Value, tol: f64) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            (x.as_f64().unwrap() - y.as_f64().unwrap()).abs() <= tol
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| close(p, q, tol))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| close(v, w, tol)))
        }
        _ => a == b,
    }
}

fn assert_same(a: &State, b: &State, tol: f64) {
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "image sets differ"
    );
    for (k, (w, h, anns)) in a {
        let (w2, h2, anns2) = &b[k];
        assert_eq!((w, h), (w2, h2), "size of {k:?}");
        assert!(
            close(&json!(anns), &json!(anns2), tol),
            "annotations of {k:?} differ:\n{anns:#?}\n{anns2:#?}"
        );
    }
}

fn warning(v: &Value, code: &str) -> u64 {
    v["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["code"] == code)
        .map_or(0, |w| w["count"].as_u64().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coco_import_is_idempotent_and_round_trips() {
    let s = start().await;
    let client = s.client();
    let src = s.path("coco-src");
    coco_folder(&src);

    let first = s.import(&src, "coco", "cars");
    assert_eq!(first["created"], true);
    assert_eq!(first["uploaded"], 3);
    assert_eq!(first["annotations"], 4);
    assert_eq!(first["annotations_saved"], 2);
    let before = state(&client, "cars").await;
    let a = &before[&("/cars".to_string(), "a.png".to_string())];
    assert_eq!((a.0, a.1), (40, 30));
    let kinds: Vec<&str> = a.2.iter().map(|x| x["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["bbox", "polygon", "keypoint"]);
    assert_eq!(
        a.2[0]["bounding_box"],
        json!({"x": 2.0, "y": 3.0, "w": 10.0, "h": 5.0})
    );
    assert_eq!(a.2[2]["keypoint"], json!({"x": 5.0, "y": 6.0}));
    let b = &before[&("/".to_string(), "b.png".to_string())];
    assert_eq!(b.2[0]["confidence"], 0.75);
    let ds = client.datasets().get("cars").await.unwrap();
    let classes: Vec<&str> = ds.classes.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(classes, ["car", "bus", "road", "nose"]);

    // A re-run uploads nothing and saves nothing.
    let again = s.import(&src, "coco", "cars");
    assert_eq!(again["uploaded"], 0);
    assert_eq!(again["existing"], 3);
    assert_eq!(again["annotations_saved"], 0);
    assert_eq!(again["annotations_unchanged"], 3);
    assert_eq!(state(&client, "cars").await, before);

    // import → export → import into a new dataset: the same images and annotations.
    let (out, exported) = s.export("cars", "coco", "coco-out", &[]);
    assert_eq!(exported["images"], 3);
    assert_eq!(exported["warnings"], json!([]));
    assert!(out.join("images/cars/a.png").is_file());
    assert_eq!(
        std::fs::read(out.join("images/cars/a.png")).unwrap(),
        std::fs::read(src.join("images/cars/a.png")).unwrap()
    );
    s.import(&out, "coco", "cars-copy");
    assert_same(&before, &state(&client, "cars-copy").await, 0.0);

    // A second export into the same folder fetches no image again.
    let (_, again) = s.export("cars", "coco", "coco-out", &[]);
    assert_eq!(again["images_present"], 3);
    assert_eq!(again["images_downloaded"], 0);

    // The lossless format keeps everything, ids included.
    let (native, _) = s.export("cars", "pictograph", "native-out", &[]);
    s.import(&native, "pictograph", "cars-native");
    assert_eq!(state(&client, "cars-native").await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn yolo_and_voc_round_trip() {
    let s = start().await;
    let client = s.client();

    let src = s.path("yolo-src");
    yolo_folder(&src);
    let first = s.import(&src, "yolo", "pets");
    assert_eq!(first["uploaded"], 3);
    assert_eq!(first["annotations"], 3);
    let before = state(&client, "pets").await;
    let x = &before[&("/train".to_string(), "x.png".to_string())];
    assert_eq!(
        x.2[0]["bounding_box"],
        json!({"x": 20.0, "y": 15.0, "w": 10.0, "h": 10.0})
    );
    assert!(before.contains_key(&("/train/sub".to_string(), "z.png".to_string())));
    let again = s.import(&src, "yolo", "pets");
    assert_eq!(
        (
            again["uploaded"].as_u64(),
            again["annotations_saved"].as_u64()
        ),
        (Some(0), Some(0))
    );

    let (out, exported) = s.export("pets", "yolo", "yolo-out", &[]);
    assert_eq!(exported["warnings"], json!([]));
    let yaml = std::fs::read_to_string(out.join("data.yaml")).unwrap();
    assert!(yaml.contains("val: images/val"), "{yaml}");
    assert_eq!(
        std::fs::read_to_string(out.join("labels/val/y.txt")).unwrap(),
        "1 0.25 0.5 0.1 0.3\n"
    );
    assert!(out.join("images/train/sub/z.png").is_file());
    assert!(out.join("labels/train/sub/z.txt").is_file());
    s.import(&out, "yolo", "pets-copy");
    // Normalising and scaling back costs at most float rounding.
    assert_same(&before, &state(&client, "pets-copy").await, 1e-9);

    let src = s.path("voc-src");
    voc_folder(&src);
    let first = s.import(&src, "voc", "people");
    assert_eq!(first["uploaded"], 2);
    assert_eq!(first["annotations"], 2);
    let before = state(&client, "people").await;
    let p = &before[&("/".to_string(), "p.png".to_string())];
    assert_eq!(p.2[1]["name"], "tree & bush");
    assert_eq!(
        p.2[1]["bounding_box"],
        json!({"x": 2.5, "y": 3.0, "w": 6.5, "h": 16.5})
    );
    let (out, exported) = s.export("people", "voc", "voc-out", &[]);
    assert_eq!(exported["warnings"], json!([]));
    assert!(out.join("Annotations/sub/q.xml").is_file());
    let ids = std::fs::read_to_string(out.join("ImageSets/Main/trainval.txt")).unwrap();
    let mut ids: Vec<&str> = ids.lines().collect();
    ids.sort();
    assert_eq!(ids, ["p", "sub/q"]);
    s.import(&out, "voc", "people-copy");
    assert_same(&before, &state(&client, "people-copy").await, 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_warn_about_what_a_format_cannot_hold() {
    let s = start().await;
    let client = s.client();
    let src = s.path("coco-src");
    coco_folder(&src);
    s.import(&src, "coco", "mixed");
    // Add a polyline and attributes to the image that has a box, a polygon and a keypoint.
    let page = client
        .datasets()
        .list_images("mixed", ImageListOptions::default())
        .await
        .unwrap();
    let a = page.images.iter().find(|i| i.filename == "a.png").unwrap();
    let mut anns = client.annotations().get(&a.id).await.unwrap();
    anns.push(Annotation::polyline(
        "line-1",
        "road",
        [[0.0, 0.0], [5.0, 5.0], [9.0, 2.0]],
    ));
    anns.push(
        Annotation::bbox("box-9", "car", [30.0, 20.0, 20.0, 20.0])
            .with_attributes(vec![json!({"occluded": true})])
            .with_metadata(json!({"source": "review"})),
    );
    client.annotations().save(&a.id, &anns).await.unwrap();

    let (_, coco) = s.export("mixed", "coco", "w-coco", &[]);
    assert_eq!(warning(&coco, "polyline_dropped"), 1);
    assert_eq!(warning(&coco, "attributes_dropped"), 1);
    assert_eq!(warning(&coco, "metadata_dropped"), 1);
    assert_eq!(warning(&coco, "keypoint_dropped"), 0);

    let (out, yolo) = s.export("mixed", "yolo", "w-yolo", &[]);
    assert_eq!(warning(&yolo, "polyline_dropped"), 1);
    assert_eq!(warning(&yolo, "keypoint_dropped"), 1);
    assert_eq!(warning(&yolo, "polygon_dropped"), 1);
    assert_eq!(warning(&yolo, "confidence_dropped"), 1);
    assert_eq!(warning(&yolo, "box_clipped"), 1);
    let labels = std::fs::read_to_string(out.join("labels/train/cars/a.txt")).unwrap();
    assert_eq!(labels.lines().count(), 2, "{labels}");
    let run = s.run(&[
        "export",
        "mixed",
        s.path("w-yolo-text").to_str().unwrap(),
        "--format",
        "yolo",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "warning: 1 polyline annotation(s) dropped: YOLO detection labels hold boxes only"
        ),
        "{}",
        run.stderr
    );

    let (out, yolo) = s.export("mixed", "yolo", "w-yolo-boxes", &["--polygons-as-boxes"]);
    assert_eq!(warning(&yolo, "polygon_dropped"), 0);
    assert_eq!(warning(&yolo, "polygon_as_box"), 1);
    let labels = std::fs::read_to_string(out.join("labels/train/cars/a.txt")).unwrap();
    assert_eq!(labels.lines().count(), 3, "{labels}");

    let (_, voc) = s.export("mixed", "voc", "w-voc", &[]);
    assert_eq!(warning(&voc, "polyline_dropped"), 1);
    assert_eq!(warning(&voc, "keypoint_dropped"), 1);
    assert_eq!(warning(&voc, "polygon_dropped"), 1);

    let (_, native) = s.export("mixed", "pictograph", "w-native", &[]);
    assert_eq!(native["warnings"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_and_changes_nothing() {
    let s = start().await;
    let client = s.client();
    let src = s.path("coco-src");
    coco_folder(&src);
    s.import(&src, "coco", "mine");

    // Unknown format: a usage error before any request.
    let out = s.run(&[
        "export",
        "mine",
        s.path("x").to_str().unwrap(),
        "--format",
        "tfrecord",
    ]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("tfrecord"), "{}", out.stderr);

    // A folder that is not in the format: refused before the dataset is created.
    let out = s.run(&[
        "import",
        src.to_str().unwrap(),
        "--format",
        "yolo",
        "--dataset",
        "never",
        "--create",
    ]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("data.yaml"), "{}", out.stderr);
    assert!(client.datasets().get("never").await.is_err());

    // Another organisation's dataset does not exist for this key.
    let out = s.run_as(
        &s.other_key,
        &[
            "export",
            "mine",
            s.path("y").to_str().unwrap(),
            "--format",
            "coco",
            "--json",
        ],
    );
    assert_eq!(out.code, 1);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["error"]["status"], 404);
    assert!(!s.path("y").join("annotations").exists());
    let out = s.run_as(
        &s.other_key,
        &[
            "import",
            src.to_str().unwrap(),
            "--format",
            "coco",
            "--dataset",
            "mine",
            "--json",
        ],
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["error"]["status"], 404);

    // A missing dataset without --create.
    let out = s.run(&[
        "import",
        src.to_str().unwrap(),
        "--format",
        "coco",
        "--dataset",
        "absent",
    ]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("404"), "{}", out.stderr);
    assert!(
        out.stderr
            .trim_end()
            .ends_with("; add --create to create it"),
        "{}",
        out.stderr
    );

    // Its progress lines count files only: an import moves no bytes of its own to count.
    let out = s.run(&[
        "import",
        src.to_str().unwrap(),
        "--format",
        "coco",
        "--dataset",
        "fresh",
        "--create",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("import: ") && l.contains(" files"))
        .collect();
    assert!(!lines.is_empty(), "{}", out.stderr);
    assert!(lines.iter().all(|l| !l.contains("B/s")), "{lines:?}");
}

/// The manifest a local export keeps of what it wrote (a server's archive has none).
const MANIFEST: &str = ".pictograph-export";

/// Every file under `root` but the export manifest, relative, sorted, with its bytes.
fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                if rel != MANIFEST {
                    out.insert(rel, std::fs::read(&p).unwrap());
                }
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_export_archive_equals_the_client_export() {
    let s = start().await;
    let src = s.path("coco-src");
    coco_folder(&src);
    s.import(&src, "coco", "both");
    for format in ["coco", "yolo", "voc", "pictograph"] {
        let (local, client_side) = s.export("both", format, &format!("{format}-local"), &[]);
        let archive = s.path(&format!("{format}.tar"));
        let server_side = s
            .run(&[
                "export",
                "both",
                archive.to_str().unwrap(),
                "--format",
                format,
                "--server",
                "--json",
            ])
            .ok();
        assert_eq!(server_side["images"], 3);
        assert_eq!(server_side["warnings"], client_side["warnings"], "{format}");
        let unpacked = s.path(&format!("{format}-unpacked"));
        std::fs::create_dir_all(&unpacked).unwrap();
        let out = Command::new("tar")
            .arg("-xf")
            .arg(&archive)
            .arg("-C")
            .arg(&unpacked)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (a, b) = (tree(&local), tree(&unpacked));
        assert_eq!(
            a.keys().collect::<Vec<_>>(),
            b.keys().collect::<Vec<_>>(),
            "{format}"
        );
        for (path, bytes) in &a {
            assert!(bytes == &b[path], "{format}: {path} differs");
        }
    }

    // The four jobs are listed newest first; deleting one forgets it.
    let listed = s.run(&["exports", "list", "both", "--json"]).ok();
    assert_eq!(listed["total"], 4, "{listed}");
    let formats: Vec<&str> = listed["exports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["format"].as_str().unwrap())
        .collect();
    assert_eq!(formats, ["pictograph", "voc", "yolo", "coco"]);
    let id = listed["exports"][3]["id"].as_str().unwrap();
    let gone = s.run(&["exports", "cancel", "both", id, "--json"]).ok();
    assert_eq!(gone["deleted"]["id"], id);
    assert_eq!(gone["deleted"]["state"], "complete");
    let table = s.run(&["exports", "list", "both"]);
    assert_eq!(table.code, 0, "{}", table.stderr);
    assert!(table.stdout.contains("pictograph") && !table.stdout.contains(id));
    let again = s.run(&["exports", "cancel", "both", id]);
    assert_eq!(again.code, 1);
    assert!(again.stderr.contains("404"), "{}", again.stderr);
    // Another organisation sees neither the dataset's jobs nor the job.
    let other = s.run_as(&s.other_key, &["exports", "list", "both"]);
    assert_eq!(other.code, 1);

    // Plain progress of a server export counts images only: the server reports no bytes.
    let plain_archive = s.path("plain.tar");
    let plain = s.run(&[
        "export",
        "both",
        plain_archive.to_str().unwrap(),
        "--format",
        "coco",
        "--server",
    ]);
    assert_eq!(plain.code, 0, "{}", plain.stderr);
    assert!(
        plain.stderr.contains("export: 3/3 files"),
        "{}",
        plain.stderr
    );
    assert!(!plain.stderr.contains("B/s"), "{}", plain.stderr);
}

/// A YOLO folder of `n` images in two splits; the last image's label uses class 1 (`dog`),
/// every other one class 0 (`cat`).
fn many_yolo(root: &Path, n: usize) {
    std::fs::write(root.join("data.yaml"), "names:\n  0: cat\n  1: dog\n").unwrap();
    for i in 0..n {
        let split = if i % 2 == 0 { "train" } else { "val" };
        png(
            &root.join(format!("images/{split}/{i:04}.png")),
            8,
            6,
            (i % 251) as u8,
        );
        let label = root.join(format!("labels/{split}/{i:04}.txt"));
        std::fs::create_dir_all(label.parent().unwrap()).unwrap();
        let class = if i + 1 == n { 1 } else { 0 };
        std::fs::write(label, format!("{class} 0.5 0.5 0.25 0.5\n")).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_larger_than_a_chunk_into_an_existing_dataset_is_idempotent() {
    let s = start().await;
    let client = s.client();
    // Part of the folder is imported first, with a class set of its own.
    let part = s.path("part");
    std::fs::create_dir_all(&part).unwrap();
    many_yolo(&part, 40);
    std::fs::remove_file(part.join("labels/val/0039.txt")).unwrap();
    std::fs::write(part.join("data.yaml"), "names:\n  0: cat\n").unwrap();
    let first = s.import(&part, "yolo", "pets");
    assert_eq!(first["uploaded"], 40);
    let ds = client.datasets().get("pets").await.unwrap();
    let classes: Vec<&str> = ds.classes.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(classes, ["cat"]);

    // The whole folder (more images than one chunk of 256): the 40 are found, not sent again.
    let full = s.path("full");
    std::fs::create_dir_all(&full).unwrap();
    many_yolo(&full, 300);
    std::fs::write(full.join("data.yaml"), "names:\n  0: cat\n  1: dog\n").unwrap();
    let second = s.import(&full, "yolo", "pets");
    assert_eq!(second["images"], 300, "{second}");
    assert_eq!(second["uploaded"], 260);
    assert_eq!(second["existing"], 40);
    assert_eq!(second["annotations"], 300);
    // 0039 had no label before; the other 39 already had the same box.
    assert_eq!(second["annotations_saved"], 261);
    assert_eq!(second["annotations_unchanged"], 39);
    assert_eq!(second["classes_added"], json!(["dog"]));
    let ds = client.datasets().get("pets").await.unwrap();
    assert_eq!(ds.image_count, 300);

    let third = s.import(&full, "yolo", "pets");
    assert_eq!(third["uploaded"], 0);
    assert_eq!(third["existing"], 300);
    assert_eq!(third["annotations_saved"], 0);
    assert_eq!(third["classes_added"], json!([]));
}

/// Asserts a failed run ended with one clear line naming `names` (no panic, no trace).
fn assert_one_line_error(out: &Out, names: &[&str]) {
    assert_ne!(out.code, 0, "{}", out.stderr);
    assert!(
        !out.stderr.contains("panicked") && !out.stderr.contains("backtrace"),
        "{}",
        out.stderr
    );
    let last = out.stderr.trim_end().lines().last().unwrap_or_default();
    for n in names {
        assert!(last.contains(n), "{n:?} not in the error: {}", out.stderr);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_folders_stop_before_anything_is_imported() {
    let s = start().await;
    let client = s.client();
    let import = |folder: &Path, format: &str, dataset: &str| {
        s.run(&[
            "import",
            folder.to_str().unwrap(),
            "--format",
            format,
            "--dataset",
            dataset,
            "--create",
        ])
    };

    let coco = s.path("bad-coco");
    coco_folder(&coco);
    std::fs::write(
        coco.join("annotations/instances.json"),
        r#"{"images": [{"id": 1, "file_name": "b.png"}], "annotations": [{"image_id": 1,"#,
    )
    .unwrap();
    assert_one_line_error(&import(&coco, "coco", "c"), &["instances.json"]);

    let voc = s.path("bad-voc");
    voc_folder(&voc);
    std::fs::write(
        voc.join("Annotations/sub/q.xml"),
        "<annotation><object><name>x</name><bndbox><xmin>1</xmin></bndbox></object></annotation>",
    )
    .ok();
    std::fs::create_dir_all(voc.join("Annotations/sub")).unwrap();
    std::fs::write(
        voc.join("Annotations/sub/q.xml"),
        "<annotation><object><name>x</name><bndbox><xmin>nan</xmin><ymin>1</ymin>\
         <xmax>2</xmax><ymax>2</ymax></bndbox></object></annotation>",
    )
    .unwrap();
    assert_one_line_error(&import(&voc, "voc", "v"), &["q.xml", "xmin"]);

    let yolo = s.path("bad-yolo");
    yolo_folder(&yolo);
    std::fs::write(yolo.join("data.yaml"), "names:\n  0: cat\n  2: dog\n").unwrap();
    assert_one_line_error(&import(&yolo, "yolo", "y"), &["data.yaml"]);

    let native = s.path("bad-native");
    std::fs::create_dir_all(native.join("images")).unwrap();
    png(&native.join("images/a.png"), 4, 4, 1);
    std::fs::write(native.join("dataset.json"), r#"{"classes": ["a"]}"#).unwrap();
    std::fs::write(
        native.join("annotations.jsonl"),
        "{\"file\": \"a.png\", \"folder\": \"/\", \"filename\": \"a.png\", \"annotations\": []}\n{not json\n",
    )
    .unwrap();
    assert_one_line_error(
        &import(&native, "pictograph", "n"),
        &["annotations.jsonl", "line 2"],
    );

    for name in ["c", "v", "y", "n"] {
        assert!(
            client.datasets().get(name).await.is_err(),
            "{name} was created"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unicode_names_round_trip_through_every_format() {
    let s = start().await;
    let client = s.client();
    let src = s.path("uni-src");
    png(&src.join("images/train/Straße 1/bild ä.png"), 40, 20, 1);
    png(&src.join("images/val/日本/写真 #1.png"), 20, 40, 2);
    png(&src.join("images/val/日本/empty.png"), 8, 8, 3);
    let label = |rel: &str, text: &str| {
        let p = src.join("labels").join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    label(
        "train/Straße 1/bild ä.txt",
        "0 0.5 0.5 0.5 0.5\n1 0.25 0.25 0.1 0.2\n",
    );
    label("val/日本/写真 #1.txt", "1 0.5 0.5 0.2 0.1\n\n\n");
    std::fs::write(
        src.join("data.yaml"),
        "names:\n  0: \"Fußgänger: rot\"\n  1: 'traffic light # 2'\n  2: 未使用\n",
    )
    .unwrap();
    let first = s.import(&src, "yolo", "üni");
    assert_eq!(first["uploaded"], 3, "{first}");
    assert_eq!(first["annotations"], 3, "{first}");
    let before = state(&client, "üni").await;
    let again = s.import(&src, "yolo", "üni");
    assert_eq!(
        (
            again["uploaded"].as_u64(),
            again["annotations_saved"].as_u64()
        ),
        (Some(0), Some(0)),
        "{again}"
    );
    let ds = client.datasets().get("üni").await.unwrap();
    let classes: Vec<&str> = ds.classes.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(classes, ["Fußgänger: rot", "traffic light # 2", "未使用"]);

    for (format, tol) in [
        ("yolo", 1e-9),
        ("coco", 0.0),
        ("voc", 0.0),
        ("pictograph", 0.0),
    ] {
        let (out, exported) = s.export("üni", format, &format!("uni-{format}"), &[]);
        assert_eq!(exported["images"], 3, "{format}: {exported}");
        assert_eq!(exported["warnings"], json!([]), "{format}");
        let copy = format!("üni {format}");
        let imported = s.import(&out, format, &copy);
        assert_eq!(imported["uploaded"], 3, "{format}: {imported}");
        assert_same(&before, &state(&client, &copy).await, tol);
        let ds = client.datasets().get(&copy).await.unwrap();
        let copied: Vec<&str> = ds.classes.iter().map(|c| c.name.as_str()).collect();
        // VOC files name only the classes objects use.
        let expected: &[&str] = if format == "voc" {
            &classes[..2]
        } else {
            &classes
        };
        assert_eq!(copied, expected, "{format}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lossless_format_re_imports_without_changes() {
    let s = start().await;
    let client = s.client();
    let src = s.path("coco-src");
    coco_folder(&src);
    s.import(&src, "coco", "full");
    let page = client
        .datasets()
        .list_images("full", ImageListOptions::default())
        .await
        .unwrap();
    let a = page.images.iter().find(|i| i.filename == "a.png").unwrap();
    let mut anns = client.annotations().get(&a.id).await.unwrap();
    anns.push(
        Annotation::bbox("box-9", "car", [3.0, 4.0, 5.0, 6.0])
            .with_attributes(vec![json!({"occluded": true})])
            .with_metadata(json!({"source": "review"})),
    );
    client.annotations().save(&a.id, &anns).await.unwrap();
    let before = state(&client, "full").await;

    let (out, _) = s.export("full", "pictograph", "full-native", &[]);
    let first = s.import(&out, "pictograph", "full-copy");
    assert_eq!(first["uploaded"], 3, "{first}");
    assert_eq!(state(&client, "full-copy").await, before);
    let again = s.import(&out, "pictograph", "full-copy");
    assert_eq!(again["uploaded"], 0, "{again}");
    assert_eq!(again["annotations_saved"], 0, "{again}");
    assert_eq!(state(&client, "full-copy").await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_dataset_exports_its_classes() {
    let s = start().await;
    let client = s.client();
    client
        .projects()
        .create(
            "empty",
            pictograph::CreateProject::default().classes(vec![
                pictograph::DatasetClass::new("b"),
                pictograph::DatasetClass::new("a"),
            ]),
        )
        .await
        .unwrap();
    for format in ["coco", "yolo", "voc", "pictograph"] {
        let (out, v) = s.export("empty", format, &format!("empty-{format}"), &[]);
        assert_eq!(v["images"], 0, "{format}: {v}");
        if format != "voc" {
            let copy = format!("empty-{format}-copy");
            let imported = s.import(&out, format, &copy);
            assert_eq!(imported["images"], 0, "{format}: {imported}");
            let ds = client.datasets().get(&copy).await.unwrap();
            let classes: Vec<&str> = ds.classes.iter().map(|c| c.name.as_str()).collect();
            assert_eq!(classes, ["b", "a"], "{format}");
        }
    }
}

/// Images whose output files would collide: `a.jpg` and `a.png` (one label file in YOLO and
/// VOC), `/x.png` and `/train/x.png` (one path in the YOLO layout), and an image `b.png` next
/// to a folder `/b.png`. Uploaded in this order (the export's order), each with its own size
/// and box.
const CLASHING: [(&str, &str); 6] = [
    ("/", "a.jpg"),
    ("/", "a.png"),
    ("/", "x.png"),
    ("/train", "x.png"),
    ("/", "b.png"),
    ("/b.png", "c.png"),
];

/// (width, height, annotations) of every image, sorted: what a dataset holds, whatever the
/// names (every image of [`CLASHING`] has its own size).
fn contents(state: &State) -> Vec<(u32, u32, Vec<Value>)> {
    let mut v: Vec<_> = state.values().cloned().collect();
    v.sort_by_key(|(w, h, _)| (*w, *h));
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_sharing_output_names_are_numbered_in_every_format() {
    let s = start().await;
    let client = s.client();
    let ds = client
        .projects()
        .create("clash", pictograph::CreateProject::default())
        .await
        .unwrap();
    for (i, (folder, name)) in CLASHING.iter().enumerate() {
        let (w, h) = (40 + i as u32, 30 + i as u32);
        let file = s.path(&format!("up/{i}/{name}"));
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([i as u8, x as u8, y as u8]));
        let format = if name.ends_with(".jpg") {
            image::ImageFormat::Jpeg
        } else {
            image::ImageFormat::Png
        };
        img.save_with_format(&file, format).unwrap();
        let up = client
            .images()
            .upload(
                &ds.id,
                &file,
                pictograph::UploadOptions::default().folder_path(*folder),
            )
            .await
            .unwrap();
        let b = i as f64;
        let ann = Annotation::bbox(format!("box-{i}"), "car", [1.0 + b, 2.0, 10.0 + b, 5.0]);
        client.annotations().save(&up.id, &[ann]).await.unwrap();
    }
    let before = state(&client, "clash").await;
    assert_eq!(before.len(), CLASHING.len());

    let expected: [(&str, &[&str], u64); 4] = [
        (
            "yolo",
            &[
                "images/train/a.jpg",
                "images/train/a-2.png",
                "images/train/x.png",
                "images/train/x-2.png",
                "images/train/b.png",
                "images/train/b-2.png/c.png",
                "labels/train/a.txt",
                "labels/train/a-2.txt",
                "labels/train/x.txt",
                "labels/train/x-2.txt",
                "labels/train/b.txt",
                "labels/train/b-2.png/c.txt",
            ],
            3,
        ),
        (
            "voc",
            &[
                "JPEGImages/a.jpg",
                "JPEGImages/a-2.png",
                "JPEGImages/x.png",
                "JPEGImages/train/x.png",
                "JPEGImages/b.png",
                "JPEGImages/b-2.png/c.png",
                "Annotations/a.xml",
                "Annotations/a-2.xml",
                "Annotations/x.xml",
                "Annotations/train/x.xml",
                "Annotations/b.xml",
                "Annotations/b-2.png/c.xml",
            ],
            2,
        ),
        (
            "coco",
            &[
                "images/a.jpg",
                "images/a.png",
                "images/x.png",
                "images/train/x.png",
                "images/b.png",
                "images/b-2.png/c.png",
            ],
            1,
        ),
        (
            "pictograph",
            &[
                "images/a.jpg",
                "images/a.png",
                "images/x.png",
                "images/train/x.png",
                "images/b.png",
                "images/b-2.png/c.png",
            ],
            1,
        ),
    ];
    for (format, files, renamed) in expected {
        let (out, v) = s.export("clash", format, &format!("clash-{format}"), &[]);
        assert_eq!(v["images"], 6, "{format}: {v}");
        assert_eq!(
            warning(&v, "renamed_to_avoid_collision"),
            renamed,
            "{format}: {v}"
        );
        assert_eq!(warning(&v, "label_file_shared"), 0, "{format}: {v}");
        let written = tree(&out);
        for f in files {
            assert!(
                written.contains_key(*f),
                "{format}: no {f} in {:?}",
                written.keys()
            );
        }
        // Each image file holds its own image.
        let images = written.keys().filter(|k| {
            let k = k.as_str();
            k.ends_with(".png") || k.ends_with(".jpg")
        });
        assert_eq!(images.count(), 6, "{format}: {:?}", written.keys());

        // Run twice, the export names every file the same way; so does the server's archive.
        let (again, _) = s.export("clash", format, &format!("clash-{format}-again"), &[]);
        assert_eq!(tree(&again), written, "{format}");
        let archive = s.path(&format!("clash-{format}.tar"));
        let server_side = s
            .run(&[
                "export",
                "clash",
                archive.to_str().unwrap(),
                "--format",
                format,
                "--server",
                "--json",
            ])
            .ok();
        assert_eq!(server_side["warnings"], v["warnings"], "{format}");
        let unpacked = s.path(&format!("clash-{format}-unpacked"));
        std::fs::create_dir_all(&unpacked).unwrap();
        let tar = Command::new("tar")
            .arg("-xf")
            .arg(&archive)
            .arg("-C")
            .arg(&unpacked)
            .output()
            .unwrap();
        assert!(
            tar.status.success(),
            "{}",
            String::from_utf8_lossy(&tar.stderr)
        );
        assert!(tree(&unpacked) == written, "{format}: the archive differs");

        // Read back, every image comes with its own labels.
        let copy = format!("clash {format}");
        let imported = s.import(&out, format, &copy);
        assert_eq!(imported["uploaded"], 6, "{format}: {imported}");
        let after = state(&client, &copy).await;
        if format == "pictograph" {
            assert_eq!(after, before, "the lossless format keeps the names");
        }
        let (a, b) = (contents(&before), contents(&after));
        assert_eq!(a.len(), b.len(), "{format}");
        for ((w, h, anns), (w2, h2, anns2)) in a.iter().zip(&b) {
            assert_eq!((w, h), (w2, h2), "{format}");
            let (boxes, boxes2): (Vec<&Value>, Vec<&Value>) = (
                anns.iter().map(|x| &x["bounding_box"]).collect(),
                anns2.iter().map(|x| &x["bounding_box"]).collect(),
            );
            assert!(
                close(&json!(boxes), &json!(boxes2), 1e-9),
                "{format}: {w}x{h}: {boxes:?} != {boxes2:?}"
            );
        }
    }
}

/// A YOLO export read back into a new dataset puts the root folder's images at the root and
/// a real `/train` folder's in `/train` (the layout puts both in the train split); a
/// re-export into the same folder leaves exactly the current dataset there and keeps the
/// user's own files; a folder of someone else's is refused unless `--force`; an export that
/// did not finish is not imported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn yolo_folders_round_trip_and_re_exports_stay_exact() {
    let s = start().await;
    let client = s.client();
    let ds = client
        .projects()
        .create("mixed-folders", pictograph::CreateProject::default())
        .await
        .unwrap();
    let uploads = [
        ("/", "a.png"),
        ("/", "b.png"),
        ("/train", "c.png"),
        ("/val", "d.png"),
        ("/cars", "e.png"),
    ];
    let mut ids = Vec::new();
    for (i, (folder, name)) in uploads.iter().enumerate() {
        let file = s.path(&format!("up/{i}/{name}"));
        png(&file, 20 + i as u32, 10, i as u8);
        let up = client
            .images()
            .upload(
                &ds.id,
                &file,
                pictograph::UploadOptions::default().folder_path(*folder),
            )
            .await
            .unwrap();
        // Named as an import names them, so that a round trip compares whole annotations.
        let ann = Annotation::bbox("ann-1", "car", [1.0, 1.0, 4.0 + i as f64, 5.0]);
        client.annotations().save(&up.id, &[ann]).await.unwrap();
        ids.push(up.id);
    }
    let before = state(&client, "mixed-folders").await;
    let (out, first) = s.export("mixed-folders", "yolo", "mixed-yolo", &[]);
    assert_eq!(first["files_removed"], 0);
    assert!(out.join("images/train/a.png").is_file());
    assert!(out.join("images/train/c.png").is_file());
    assert!(out.join("images/val/d.png").is_file());
    s.import(&out, "yolo", "mixed-copy");
    assert_same(&before, &state(&client, "mixed-copy").await, 1e-9);

    // The user adds a file of their own; two images leave the dataset.
    std::fs::write(out.join("README.txt"), b"my notes").unwrap();
    client.images().delete(&ids[1], false).await.unwrap();
    client.images().delete(&ids[4], false).await.unwrap();
    let (_, again) = s.export("mixed-folders", "yolo", "mixed-yolo", &[]);
    assert_eq!(again["images"], 3, "{again}");
    assert_eq!(again["files_removed"], 4, "{again}");
    let files: Vec<String> = tree(&out).into_keys().collect();
    assert_eq!(
        files,
        [
            "README.txt",
            "data.yaml",
            "images/train/a.png",
            "images/train/c.png",
            "images/val/d.png",
            "labels/train/a.txt",
            "labels/train/c.txt",
            "labels/val/d.txt",
        ]
    );
    assert!(!out.join("images/train/cars").exists());
    s.import(&out, "yolo", "mixed-copy-2");
    let now = state(&client, "mixed-folders").await;
    assert_eq!(now.len(), 3);
    assert_same(&now, &state(&client, "mixed-copy-2").await, 1e-9);

    // A non-empty folder that holds no export: refused with a hint, untouched; then forced.
    let theirs = s.path("theirs");
    std::fs::create_dir_all(&theirs).unwrap();
    std::fs::write(theirs.join("data.yaml"), b"their own").unwrap();
    let refused = s.run(&[
        "export",
        "mixed-folders",
        theirs.to_str().unwrap(),
        "--format",
        "yolo",
    ]);
    assert_one_line_error(&refused, &["not empty", "--force"]);
    assert_eq!(
        refused.stderr.matches("ever removed").count(),
        1,
        "{}",
        refused.stderr
    );
    assert_eq!(tree(&theirs).len(), 1);
    assert!(!theirs.join(MANIFEST).exists());
    let (_, forced) = s.export("mixed-folders", "yolo", "theirs", &["--force"]);
    assert_eq!(forced["images"], 3, "{forced}");

    // An export that stopped midway (its manifest still says so) is not imported.
    let manifest = std::fs::read_to_string(out.join(MANIFEST)).unwrap();
    std::fs::write(
        out.join(MANIFEST),
        manifest.replacen("\"complete\"", "\"writing\"", 1),
    )
    .unwrap();
    let out_run = s.run(&[
        "import",
        out.to_str().unwrap(),
        "--format",
        "yolo",
        "--dataset",
        "never",
        "--create",
    ]);
    assert_one_line_error(&out_run, &["did not finish"]);
    assert!(client.datasets().get("never").await.is_err());
}

/// COCO keypoints through import and export: visibility 1 comes back as 1 (the keypoint is
/// marked `occluded` in between), 2 as 2, 0 is no keypoint; exported as YOLO, the pose's
/// joints become pose lines, which read back as the same keypoints.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keypoint_visibility_and_pose_round_trip() {
    let s = start().await;
    let client = s.client();
    let src = s.path("pose-src");
    png(&src.join("images/p.png"), 100, 80, 9);
    let doc = json!({
        "images": [{"id": 1, "file_name": "p.png", "width": 100, "height": 80}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 40, 60], "area": 2400,
             "iscrowd": 0, "keypoints": [20, 20, 2, 30, 25, 1, 0, 0, 0], "num_keypoints": 2},
            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [60, 10, 30, 60], "area": 1800,
             "iscrowd": 0, "keypoints": [70, 20, 1, 0, 0, 0, 80, 60, 2], "num_keypoints": 2},
        ],
        "categories": [{"id": 1, "name": "person", "keypoints": ["nose", "eye", "foot"],
                        "skeleton": [[1, 2]]}],
    });
    std::fs::create_dir_all(src.join("annotations")).unwrap();
    std::fs::write(src.join("annotations/instances.json"), doc.to_string()).unwrap();
    let imported = s.import(&src, "coco", "people");
    assert_eq!(imported["annotations"], 6, "{imported}");
    assert_eq!(imported["warnings"], json!([]), "{imported}");
    let before = state(&client, "people").await;
    let p = &before[&("/".to_string(), "p.png".to_string())];
    let occluded: Vec<&str> =
        p.2.iter()
            .filter(|a| a["attributes"] == json!([{"occluded": "true"}]))
            .map(|a| a["name"].as_str().unwrap())
            .collect();
    assert_eq!(occluded, ["person/eye", "person/nose"]);

    // COCO: the visibilities come back as they were.
    let (out, exported) = s.export("people", "coco", "people-coco", &[]);
    assert_eq!(exported["warnings"], json!([]), "{exported}");
    let v: Value =
        serde_json::from_slice(&std::fs::read(out.join("annotations/instances.json")).unwrap())
            .unwrap();
    let mut visibility: Vec<(f64, f64, u64)> = v["annotations"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a.get("keypoints"))
        .map(|k| {
            (
                k[0].as_f64().unwrap(),
                k[1].as_f64().unwrap(),
                k[2].as_u64().unwrap(),
            )
        })
        .collect();
    visibility.sort_by(|a, b| a.partial_cmp(b).unwrap());
    assert_eq!(
        visibility,
        [
            (20.0, 20.0, 2),
            (30.0, 25.0, 1),
            (70.0, 20.0, 1),
            (80.0, 60.0, 2)
        ]
    );
    s.import(&out, "coco", "people-coco");
    assert_same(&before, &state(&client, "people-coco").await, 0.0);

    // YOLO: pose lines, one per person, the joints in their boxes.
    let (out, exported) = s.export("people", "yolo", "people-yolo", &[]);
    assert_eq!(exported["warnings"], json!([]), "{exported}");
    let yaml = std::fs::read_to_string(out.join("data.yaml")).unwrap();
    assert!(yaml.contains("kpt_shape: [3, 3]\n"), "{yaml}");
    assert!(yaml.contains("names:\n  0: \"person\"\n"), "{yaml}");
    assert!(
        yaml.contains("kpt_names:\n  0:\n    - \"nose\"\n    - \"eye\"\n    - \"foot\"\n"),
        "{yaml}"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("labels/train/p.txt")).unwrap(),
        "0 0.3 0.5 0.4 0.75 0.2 0.25 2 0.3 0.3125 1 0 0 0\n\
         0 0.75 0.5 0.3 0.75 0.7 0.25 1 0 0 0 0.8 0.75 2\n"
    );
    s.import(&out, "yolo", "people-yolo");
    let after = state(&client, "people-yolo").await;
    // Read back: the same annotations (within float rounding), whatever their order and ids.
    let sorted = |anns: &Vec<Value>| {
        let mut v: Vec<Value> = anns
            .iter()
            .map(|a| {
                let mut a = a.clone();
                a.as_object_mut().unwrap().remove("id");
                a
            })
            .collect();
        let key = |a: &Value| {
            let g = if a["type"] == "keypoint" {
                &a["keypoint"]
            } else {
                &a["bounding_box"]
            };
            let x = g["x"].as_f64().unwrap().round() as i64;
            (a["type"].to_string(), a["name"].to_string(), x)
        };
        v.sort_by_key(key);
        json!(v)
    };
    let key = ("/".to_string(), "p.png".to_string());
    let (a, b) = (sorted(&before[&key].2), sorted(&after[&key].2));
    assert!(close(&a, &b, 1e-9), "{a:#}\n{b:#}");
    let ds = client.datasets().get("people-yolo").await.unwrap();
    let classes: Vec<&str> = ds.classes.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        classes,
        ["person", "person/nose", "person/eye", "person/foot"]
    );
}
