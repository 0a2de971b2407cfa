//! Evaluation on held-out captures: per-class precision/recall/F1 over flows, the confusion
//! matrix, per capture whether its labelled attack was found, the share of benign flows
//! flagged, and the anomaly score's AUROC.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use crate::data::LabelledCapture;
use crate::{family, CLASSES, NORMAL};

/// One held-out capture's outcome.
#[derive(Clone, Debug, Serialize)]
pub struct CaptureResult {
    /// Path under the shared folder.
    pub file: String,
    /// Its labelled class.
    pub class: String,
    /// Flows in it.
    pub flows: usize,
    /// Flows labelled as the attack.
    pub attack_flows: usize,
    /// Flows predicted as each non-Normal class.
    pub flagged: BTreeMap<String, usize>,
    /// For attack captures: was the class (or its family) among the flagged classes.
    pub found: Option<bool>,
    /// For attack captures: was the exact class among the flagged classes.
    pub found_exact: Option<bool>,
    /// Every non-Normal prediction: its class and probability (for the threshold table).
    #[serde(skip)]
    pub alerts: Vec<(u16, f32)>,
}

/// Per-class figures over flows.
#[derive(Clone, Debug, Serialize)]
pub struct ClassMetrics {
    /// Class name.
    pub class: String,
    /// Flows labelled with it.
    pub support: u64,
    /// Flows predicted as it.
    pub predicted: u64,
    /// TP / predicted (NaN when nothing was predicted).
    pub precision: f64,
    /// TP / support (NaN when there is no support).
    pub recall: f64,
    /// Harmonic mean of the two.
    pub f1: f64,
}

/// The evaluation of a set of held-out captures.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Evaluation {
    /// `confusion[true][predicted]` flow counts.
    pub confusion: Vec<Vec<u64>>,
    /// One entry per capture.
    pub captures: Vec<CaptureResult>,
    /// Anomaly scores of flows labelled Normal, and of flows of each attack class.
    #[serde(skip)]
    scores: Vec<(u16, f32)>,
    /// A non-Normal verdict below this probability counts as Normal (the alert threshold
    /// the headline figures, tables and confusion matrix are at).
    pub min_probability: f32,
}

fn normal() -> u16 {
    crate::class_index(NORMAL).unwrap_or(0)
}

impl Evaluation {
    /// Empty evaluation (every non-Normal verdict alerts).
    pub fn new() -> Self {
        Evaluation {
            confusion: vec![vec![0; CLASSES.len()]; CLASSES.len()],
            ..Default::default()
        }
    }

    /// Empty evaluation at an alert threshold.
    pub fn at(min_probability: f32) -> Self {
        Evaluation {
            min_probability,
            ..Self::new()
        }
    }

    /// Benign captures with any alert, and benign captures.
    pub fn benign_captures_alerted(&self) -> (usize, usize) {
        let b: Vec<bool> = self
            .captures
            .iter()
            .filter(|c| c.class == NORMAL)
            .map(|c| !c.flagged.is_empty())
            .collect();
        (b.iter().filter(|x| **x).count(), b.len())
    }

    /// Add one held-out capture with the predicted class, its probability and the anomaly
    /// score of each flow.
    pub fn add(
        &mut self,
        c: &LabelledCapture,
        predicted: &[u16],
        probability: &[f32],
        anomaly: &[f32],
    ) {
        let mut flagged = BTreeMap::new();
        let mut alerts = Vec::new();
        for (i, (&y, &p)) in c.labels.iter().zip(predicted).enumerate() {
            let q = probability.get(i).copied().unwrap_or(1.0);
            if p != normal() {
                alerts.push((p, q));
            }
            let p = if q >= self.min_probability {
                p
            } else {
                normal()
            };
            self.confusion[y as usize][p as usize] += 1;
            if p != normal() {
                *flagged.entry(CLASSES[p as usize].to_string()).or_insert(0) += 1;
            }
            if let Some(s) = anomaly.get(i) {
                self.scores.push((y, *s));
            }
        }
        let attack = c.entry.class != NORMAL;
        let found = attack.then(|| flagged.keys().any(|k| family(k) == family(&c.entry.class)));
        let found_exact = attack.then(|| flagged.contains_key(&c.entry.class));
        self.captures.push(CaptureResult {
            file: c.entry.file.clone(),
            class: c.entry.class.clone(),
            flows: c.flows.len(),
            attack_flows: c.attack_flows(),
            flagged,
            found,
            found_exact,
            alerts,
        });
    }

    /// Per-class precision, recall and F1 over flows, for classes with support or predictions.
    pub fn per_class(&self) -> Vec<ClassMetrics> {
        let k = CLASSES.len();
        (0..k)
            .filter_map(|c| {
                let support: u64 = self.confusion[c].iter().sum();
                let predicted: u64 = (0..k).map(|t| self.confusion[t][c]).sum();
                if support == 0 && predicted == 0 {
                    return None;
                }
                let tp = self.confusion[c][c] as f64;
                let precision = tp / predicted as f64;
                let recall = tp / support as f64;
                let f1 = if tp == 0.0 {
                    0.0
                } else {
                    2.0 * precision * recall / (precision + recall)
                };
                Some(ClassMetrics {
                    class: CLASSES[c].into(),
                    support,
                    predicted,
                    precision,
                    recall,
                    f1,
                })
            })
            .collect()
    }

    /// Attack captures whose class (family) was found, and how many attack captures there are.
    pub fn found(&self) -> (usize, usize) {
        let a: Vec<bool> = self.captures.iter().filter_map(|c| c.found).collect();
        (a.iter().filter(|f| **f).count(), a.len())
    }

    /// The same with the exact class.
    pub fn found_exact(&self) -> (usize, usize) {
        let a: Vec<bool> = self.captures.iter().filter_map(|c| c.found_exact).collect();
        (a.iter().filter(|f| **f).count(), a.len())
    }

    /// Flows of benign captures flagged as an attack, and all flows of benign captures.
    pub fn benign_flagged(&self) -> (usize, usize) {
        self.captures
            .iter()
            .filter(|c| c.class == NORMAL)
            .fold((0, 0), |(f, n), c| {
                (f + c.flagged.values().sum::<usize>(), n + c.flows)
            })
    }

    /// AUROC of the anomaly score separating flows of `classes` (positives) from Normal flows.
    /// `None` without both kinds.
    pub fn auroc(&self, classes: &[u16]) -> Option<f64> {
        let mut v: Vec<(f32, bool)> = self
            .scores
            .iter()
            .filter(|(y, _)| *y == normal() || classes.contains(y))
            .map(|(y, s)| (*s, *y != normal()))
            .collect();
        auroc(&mut v)
    }

    /// At each alert threshold on the predicted class's probability: attack captures found
    /// (an alert of the labelled family), benign flows flagged, and benign captures with any
    /// alert (Markdown). How `--min-probability`'s default is chosen.
    pub fn threshold_table(&self) -> String {
        let mut s = String::from(
            "| min probability | attack captures found | benign flows flagged | benign captures with an alert |\n|---:|---:|---:|---:|\n",
        );
        for t in [0.0f32, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95] {
            let (mut found, mut attacks, mut bf, mut bn, mut bc, mut benign) = (0, 0, 0, 0, 0, 0);
            for c in &self.captures {
                let kept = c.alerts.iter().filter(|(_, p)| *p >= t);
                if c.class == NORMAL {
                    let n = kept.count();
                    bf += n;
                    bn += c.flows;
                    benign += 1;
                    bc += usize::from(n > 0);
                } else {
                    attacks += 1;
                    let mut kept = kept;
                    found += usize::from(
                        kept.any(|(k, _)| family(CLASSES[*k as usize]) == family(&c.class)),
                    );
                }
            }
            let _ = writeln!(
                s,
                "| {t:.2} | {found}/{attacks} ({:.0}%) | {bf}/{bn} ({:.2}%) | {bc}/{benign} |",
                100.0 * found as f64 / attacks.max(1) as f64,
                100.0 * bf as f64 / bn.max(1) as f64
            );
        }
        s
    }

    /// The report as text (what `weir eval` prints).
    pub fn report(&self) -> String {
        let mut s = String::new();
        let (f, n) = self.found();
        let (fe, _) = self.found_exact();
        let (bf, bn) = self.benign_flagged();
        let _ = writeln!(
            s,
            "attack captures found: {f}/{n} ({:.0}%; exact class {fe}/{n})",
            100.0 * f as f64 / n.max(1) as f64
        );
        let (bc, bcn) = self.benign_captures_alerted();
        let _ = writeln!(
            s,
            "benign flows flagged:  {bf}/{bn} ({:.2}%)",
            100.0 * bf as f64 / bn.max(1) as f64
        );
        let _ = writeln!(
            s,
            "benign captures with any alert: {bc}/{bcn} ({:.1}%)  (alert threshold {:.2})\n",
            100.0 * bc as f64 / bcn.max(1) as f64,
            self.min_probability
        );
        s.push_str("Alert threshold (`--min-probability`): a flow alerts when its class is not Normal with at least this probability.\n\n");
        s.push_str(&self.threshold_table());
        s.push('\n');
        s.push_str(&self.class_table());
        s.push('\n');
        s.push_str(&self.confusion_table());
        s.push('\n');
        s.push_str(&self.capture_table());
        s
    }

    /// Per-class table (Markdown).
    pub fn class_table(&self) -> String {
        let mut s = String::from(
            "| class | flows | predicted | precision | recall | F1 |\n|---|---:|---:|---:|---:|---:|\n",
        );
        let pct = |v: f64| {
            if v.is_nan() {
                "–".to_string()
            } else {
                format!("{:.3}", v)
            }
        };
        for m in self.per_class() {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} |",
                m.class,
                m.support,
                m.predicted,
                pct(m.precision),
                pct(m.recall),
                pct(m.f1)
            );
        }
        s
    }

    /// Confusion matrix over the classes that occur (Markdown; rows true, columns predicted).
    pub fn confusion_table(&self) -> String {
        let k = CLASSES.len();
        let used: Vec<usize> = (0..k)
            .filter(|&c| {
                self.confusion[c].iter().sum::<u64>() > 0
                    || (0..k).any(|t| self.confusion[t][c] > 0)
            })
            .collect();
        let short = |c: usize| {
            CLASSES[c]
                .replace("Web Attack - ", "Web ")
                .replace("DoS ", "")
                .replace("Patator", "Pat.")
        };
        let mut s = String::from("| true \\ predicted |");
        for &c in &used {
            let _ = write!(s, " {} |", short(c));
        }
        s.push_str("\n|---|");
        s.push_str(&"---:|".repeat(used.len()));
        s.push('\n');
        for &t in &used {
            let _ = write!(s, "| {} |", CLASSES[t]);
            for &p in &used {
                let _ = write!(s, " {} |", self.confusion[t][p]);
            }
            s.push('\n');
        }
        s
    }

    /// Per-capture table of the attack captures (Markdown).
    pub fn capture_table(&self) -> String {
        let mut s = String::from(
            "| capture | class | flows | attack flows | found | flagged as |\n|---|---|---:|---:|---|---|\n",
        );
        for c in self.captures.iter().filter(|c| c.found.is_some()) {
            let flagged: Vec<String> = c.flagged.iter().map(|(k, v)| format!("{k} {v}")).collect();
            let found = match (c.found, c.found_exact) {
                (Some(true), Some(true)) => "yes",
                (Some(true), _) => "family",
                _ => "NO",
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} |",
                c.file.trim_start_matches("labeled/attacks/"),
                c.class,
                c.flows,
                c.attack_flows,
                found,
                flagged.join(", ")
            );
        }
        s
    }
}

/// Area under the ROC curve of scores (higher = positive), ties counted half.
pub fn auroc(v: &mut [(f32, bool)]) -> Option<f64> {
    let pos = v.iter().filter(|x| x.1).count();
    let neg = v.len() - pos;
    if pos == 0 || neg == 0 {
        return None;
    }
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    // rank-sum (Mann-Whitney U) with average ranks for ties
    let mut rank_sum = 0f64;
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j < v.len() && v[j].0 == v[i].0 {
            j += 1;
        }
        let avg = (i + 1 + j) as f64 / 2.0;
        rank_sum += avg * v[i..j].iter().filter(|x| x.1).count() as f64;
        i = j;
    }
    let u = rank_sum - (pos * (pos + 1)) as f64 / 2.0;
    Some(u / (pos as f64 * neg as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auroc_of_known_orderings() {
        let mut perfect = vec![(0.1, false), (0.2, false), (0.9, true), (0.8, true)];
        assert_eq!(auroc(&mut perfect), Some(1.0));
        let mut inverted = vec![(0.9, false), (0.1, true)];
        assert_eq!(auroc(&mut inverted), Some(0.0));
        let mut ties = vec![(0.5, false), (0.5, true)];
        assert_eq!(auroc(&mut ties), Some(0.5));
        let mut mixed = vec![(1.0, false), (2.0, true), (3.0, false), (4.0, true)];
        assert_eq!(auroc(&mut mixed), Some(0.75));
        assert_eq!(auroc(&mut [(1.0, true)]), None);
    }
}
