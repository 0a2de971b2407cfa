//! Labelled data from `../shared/labeled` (read in place, never copied into the repository):
//! real captures labelled per flow by `models/captures.csv`, the benign corpus captures listed
//! in `NORMAL_FROM_CORPUS.txt`, and CIC-IDS2017 flow rows (Engelen et al.'s corrected set).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use weir_flow::{extract, ExtractOptions, FlowRecord, FEATURES, N_FEATURES};

use crate::rule::Rule;
use crate::{class_index, DataError, NORMAL};

/// One labelled capture.
#[derive(Clone, Debug)]
pub struct CaptureEntry {
    /// Path relative to the shared folder.
    pub file: String,
    /// The capture's attack class (Normal for benign captures).
    pub class: String,
    /// Which flows carry it; the others are Normal.
    pub rule: Rule,
}

/// A tiny CSV line splitter: commas, double quotes with `""` escapes.
pub fn split_csv(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// Read `models/captures.csv` (columns file, class, rule, note) and the benign corpus list.
pub fn load_manifest(manifest: &Path, shared: &Path) -> Result<Vec<CaptureEntry>, DataError> {
    let text = std::fs::read_to_string(manifest)
        .map_err(|e| DataError::Io(manifest.to_path_buf(), e.to_string()))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let cols = split_csv(line);
        let bad = |why: String| DataError::Manifest(manifest.to_path_buf(), n + 1, why);
        if cols.len() < 3 {
            return Err(bad("expected file,class,rule,note".into()));
        }
        if class_index(&cols[1]).is_none() {
            return Err(bad(format!("unknown class {:?}", cols[1])));
        }
        let rule = cols[2].parse().map_err(bad)?;
        out.push(CaptureEntry {
            file: format!("labeled/{}", cols[0]),
            class: cols[1].clone(),
            rule,
        });
    }
    let list = shared.join("labeled/NORMAL_FROM_CORPUS.txt");
    let text =
        std::fs::read_to_string(&list).map_err(|e| DataError::Io(list.clone(), e.to_string()))?;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let file = line.split_whitespace().next().unwrap_or_default();
        out.push(CaptureEntry {
            file: format!("corpus/{file}"),
            class: NORMAL.into(),
            rule: Rule::All,
        });
    }
    Ok(out)
}

/// The flows of one capture with their labels.
#[derive(Clone, Debug)]
pub struct LabelledCapture {
    /// The manifest entry.
    pub entry: CaptureEntry,
    /// Flows in output order.
    pub flows: Vec<FlowRecord>,
    /// Class index per flow.
    pub labels: Vec<u16>,
    /// Damage the reader met, if any (flows before it are kept).
    pub warning: Option<String>,
}

impl LabelledCapture {
    /// Flows that carry the capture's attack.
    pub fn attack_flows(&self) -> usize {
        let normal = class_index(NORMAL).unwrap_or(0);
        self.labels.iter().filter(|l| **l != normal).count()
    }
}

/// Run the flow stage over a capture and label its flows.
pub fn label_capture(shared: &Path, entry: &CaptureEntry) -> Result<LabelledCapture, DataError> {
    let path = shared.join(&entry.file);
    let file =
        std::fs::File::open(&path).map_err(|e| DataError::Io(path.clone(), e.to_string()))?;
    let mut flows = Vec::new();
    let summary = extract(
        std::io::BufReader::new(file),
        &ExtractOptions::default(),
        |b| flows.extend(b),
        |_| {},
    )
    .map_err(|e| DataError::Capture(path.clone(), e.to_string()))?;
    let attack = class_index(&entry.class).unwrap_or(0);
    let normal = class_index(NORMAL).unwrap_or(0);
    let labels = flows
        .iter()
        .map(|f| {
            if entry.rule.matches(f) {
                attack
            } else {
                normal
            }
        })
        .collect();
    Ok(LabelledCapture {
        entry: entry.clone(),
        flows,
        labels,
        warning: summary.error.map(|e| e.to_string()),
    })
}

/// A flow's features as the model's f32 input row.
pub fn feature_row(f: &FlowRecord) -> [f32; N_FEATURES] {
    let mut r = [0f32; N_FEATURES];
    for (o, v) in r.iter_mut().zip(&f.features) {
        *o = *v as f32;
    }
    r
}

/// Flow rows from a CICFlowMeter-style CSV with a `class` column.
#[derive(Clone, Debug, Default)]
pub struct FlowRows {
    /// `rows × N_FEATURES`, NaN for the features the CSV does not have.
    pub x: Vec<f32>,
    /// Class index per row.
    pub y: Vec<u16>,
    /// weir features the CSV has no column for (left NaN = unknown).
    pub missing: Vec<&'static str>,
}

/// Load a CSV whose header uses weir's (CICFlowMeter's) feature names and has a `class` column.
/// Infinite or unparsable cells become NaN (unknown), as CICFlowMeter's Infinity/NaN mean
/// "undefined".
pub fn load_flow_csv(path: &Path) -> Result<FlowRows, DataError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| DataError::Io(path.to_path_buf(), e.to_string()))?;
    let mut lines = text.lines();
    let header = split_csv(lines.next().unwrap_or_default());
    let col: HashMap<String, usize> = header
        .iter()
        .enumerate()
        .map(|(i, h)| (h.trim().to_ascii_lowercase(), i))
        .collect();
    let class_col = *col
        .get("class")
        .ok_or_else(|| DataError::Manifest(path.to_path_buf(), 1, "no `class` column".into()))?;
    let map: Vec<Option<usize>> = FEATURES
        .iter()
        .map(|s| col.get(&s.name.to_ascii_lowercase()).copied())
        .collect();
    let missing = FEATURES
        .iter()
        .zip(&map)
        .filter(|(_, m)| m.is_none())
        .map(|(s, _)| s.name)
        .collect();
    let mut rows = FlowRows {
        missing,
        ..Default::default()
    };
    let idx = |name: &str| FEATURES.iter().position(|s| s.name == name);
    let known_when_empty = |names: &[&str]| -> Vec<(usize, f32)> {
        names
            .iter()
            .filter_map(|n| idx(n))
            .map(|i| {
                (
                    i,
                    if FEATURES[i].name.contains("Byte ") {
                        -1.0
                    } else {
                        0.0
                    },
                )
            })
            .collect()
    };
    // A direction without payload has known payload features (entropy, printable share and
    // token count 0, first bytes -1), exactly as weir computes them; only flows that carried
    // payload leave them unknown.
    let fwd_empty = known_when_empty(&[
        "Fwd Payload Entropy",
        "Fwd Payload Printable Ratio",
        "Fwd Payload Suspicious Tokens",
        "Fwd Payload Byte 0",
        "Fwd Payload Byte 1",
        "Fwd Payload Byte 2",
        "Fwd Payload Byte 3",
        "Fwd Payload Byte 4",
        "Fwd Payload Byte 5",
        "Fwd Payload Byte 6",
        "Fwd Payload Byte 7",
    ]);
    let bwd_empty = known_when_empty(&["Bwd Payload Entropy", "Bwd Payload Printable Ratio"]);
    let (fwd_len, bwd_len) = (
        idx("Total Length of Fwd Packet"),
        idx("Total Length of Bwd Packet"),
    );
    for (n, line) in lines.enumerate() {
        let cells = split_csv(line);
        let class = cells.get(class_col).map(String::as_str).unwrap_or_default();
        let y = class_index(class).ok_or_else(|| {
            DataError::Manifest(
                path.to_path_buf(),
                n + 2,
                format!("unknown class {class:?}"),
            )
        })?;
        for m in &map {
            let v = m
                .and_then(|i| cells.get(i))
                .and_then(|c| c.trim().parse::<f32>().ok())
                .filter(|v| v.is_finite())
                .unwrap_or(f32::NAN);
            rows.x.push(v);
        }
        let row = rows.x.len() - N_FEATURES;
        for (len, fill) in [(fwd_len, &fwd_empty), (bwd_len, &bwd_empty)] {
            if let Some(l) = len {
                if rows.x[row + l] == 0.0 {
                    for &(i, v) in fill.iter() {
                        if rows.x[row + i].is_nan() {
                            rows.x[row + i] = v;
                        }
                    }
                }
            }
        }
        rows.y.push(y);
    }
    Ok(rows)
}

/// The shared data folder: `WEIR_SHARED`, else `../shared` beside the repository root `repo`.
pub fn shared_dir(repo: &Path) -> PathBuf {
    std::env::var_os("WEIR_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join("../shared"))
}
