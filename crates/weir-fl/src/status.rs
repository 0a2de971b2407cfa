//! The federation as people see it (`weir fl status`, the web app's federation page): the
//! current version and open round, every version's card, every round's verdicts and result,
//! the registered nodes.

use serde::{Deserialize, Serialize};
use weir_store::Store;
use weir_wire::federation::{CurrentModel, FederationView, RoundRow, VersionRow};

use crate::registry::{Card, Pointer, Registry, RegistryError};
use crate::round::{node_keys, RoundResult, Verdict};

/// One round: its verdicts and how it ended (if it has).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoundView {
    /// The round.
    pub round: u64,
    /// Every verdict, in key order.
    pub verdicts: Vec<Verdict>,
    /// How it closed; `None` while open.
    pub result: Option<RoundResult>,
}

/// The federation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Federation {
    /// The pointer, when the registry has one (`None`: no registry here).
    pub pointer: Option<Pointer>,
    /// Every version's card, ascending (a version whose card is unreadable has none).
    pub versions: Vec<(u64, Option<Card>)>,
    /// Rounds, newest first.
    pub rounds: Vec<RoundView>,
    /// Registered node ids, sorted.
    pub nodes: Vec<String>,
}

impl Federation {
    /// The federation as its web page shows it: versions newest first with what went in and
    /// what was left out, rounds with their accepted and refused updates.
    pub fn view(&self) -> FederationView {
        let f = self;
        let versions = f
            .versions
            .iter()
            .rev()
            .map(|(v, card)| {
                let c = card.clone().unwrap_or_default();
                VersionRow {
                    version: *v,
                    round: c.round,
                    made_by: if card.is_some() {
                        c.made_by
                    } else {
                        "(card unreadable)".into()
                    },
                    included: c.included.iter().map(|i| i.node.clone()).collect(),
                    samples: c.samples,
                    excluded: c
                        .excluded
                        .iter()
                        .map(|e| (e.node.clone(), e.reason.clone()))
                        .collect(),
                    macro_f1: c.metrics.as_ref().map(|m| m.macro_f1),
                    base_macro_f1: c.metrics.as_ref().map(|m| m.base_macro_f1),
                }
            })
            .collect();
        let rounds = f
            .rounds
            .iter()
            .map(|r| RoundRow {
                round: r.round,
                outcome: r
                    .result
                    .as_ref()
                    .map_or_else(|| "open".to_string(), |x| x.outcome.clone()),
                version: r.result.as_ref().and_then(|x| x.version),
                accepted: r
                    .verdicts
                    .iter()
                    .filter(|v| v.accepted)
                    .map(|v| (v.node.clone(), v.samples, v.norm))
                    .collect(),
                refused: r
                    .verdicts
                    .iter()
                    .filter_map(|v| Some((v.node.clone(), v.rejection.as_ref()?.to_string())))
                    .collect(),
            })
            .collect();
        FederationView {
            current: f.pointer.clone().map(|p| CurrentModel {
                version: p.version,
                round: p.round,
                reason: p.reason,
            }),
            nodes: f.nodes.clone(),
            versions,
            rounds,
        }
    }
}

/// Read the federation from a store (an empty one reads as no registry).
pub fn federation(store: &dyn Store) -> Result<Federation, RegistryError> {
    let reg = Registry::new(store, None);
    let pointer = reg.pointer()?.map(|(p, _)| p);
    let versions = reg
        .versions()?
        .into_iter()
        .map(|v| (v, reg.card(v).ok()))
        .collect();
    let mut rounds = Vec::new();
    for r in store.children("fl/rounds/")? {
        let Some(n) = r.strip_prefix("round-").and_then(|n| n.parse::<u64>().ok()) else {
            continue;
        };
        let mut verdicts = Vec::new();
        for k in store.list(&crate::round::verdicts_prefix(n))? {
            if let Ok(v) = serde_json::from_slice::<Verdict>(&store.get(&k)?) {
                verdicts.push(v);
            }
        }
        let result = store
            .get(&crate::round::result_key(n))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        rounds.push(RoundView {
            round: n,
            verdicts,
            result,
        });
    }
    rounds.sort_by_key(|r| std::cmp::Reverse(r.round));
    let mut nodes: Vec<String> = node_keys(store)?.into_keys().collect();
    nodes.sort();
    Ok(Federation {
        pointer,
        versions,
        rounds,
        nodes,
    })
}

impl Federation {
    /// For a terminal.
    pub fn text(&self) -> String {
        use std::fmt::Write;
        let mut o = String::new();
        let Some(p) = &self.pointer else {
            return "no registry here (start one with `weir fl init`)\n".into();
        };
        let _ = writeln!(
            o,
            "serving version {} ({}), round {} open; {}",
            p.version,
            p.reason,
            p.round,
            match self.nodes.len() {
                0 => "no node registered yet (weir fl register)".to_string(),
                1 => format!("1 node registered: {}", self.nodes[0]),
                n => format!("{n} nodes registered: {}", self.nodes.join(", ")),
            }
        );
        let _ = writeln!(o, "\nversion  round  made by                                   included  excluded  macro-F1 (base)");
        for (v, c) in &self.versions {
            match c {
                Some(c) => {
                    let _ = writeln!(
                        o,
                        "{v:>7}  {:>5}  {:<40}  {:>8}  {:>8}  {}",
                        c.round.map_or("-".into(), |r| r.to_string()),
                        c.made_by,
                        c.included.len(),
                        c.excluded.len(),
                        c.metrics.as_ref().map_or("-".into(), |m| format!(
                            "{:.3} ({:.3})",
                            m.macro_f1, m.base_macro_f1
                        ))
                    );
                }
                None => {
                    let _ = writeln!(o, "{v:>7}  (card unreadable)");
                }
            }
        }
        for r in &self.rounds {
            let _ = writeln!(
                o,
                "\nround {}: {}",
                r.round,
                r.result.as_ref().map_or("open".to_string(), |x| format!(
                    "{}{} ({})",
                    x.outcome,
                    x.version.map_or(String::new(), |v| format!(" version {v}")),
                    x.closed_by
                ))
            );
            for v in &r.verdicts {
                match &v.rejection {
                    None => {
                        let _ = writeln!(
                            o,
                            "  accepted  {:<16} {} samples, norm {:.3}",
                            v.node, v.samples, v.norm
                        );
                    }
                    Some(why) => {
                        let _ = writeln!(o, "  refused   {:<16} {why}", v.node);
                    }
                }
            }
        }
        o
    }
}
