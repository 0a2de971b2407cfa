//! A query decided over a part held in memory, a column at a time: address and class terms
//! become a bitmap over the shared dictionaries (decided once per distinct value), numbers
//! compare in place, Community ID and model version are read from the frame when asked.

use polars::prelude::*;
use weir_records::columns::strings;

use crate::part::{Dicts, Part, NONE};
use crate::query::{Expr, Field, Op, Query, Term, Value};

/// Which column a number term reads.
#[derive(Clone, Copy)]
enum Num {
    Sport,
    Dport,
    Proto,
    Probability,
    Anomaly,
    Percentile,
}

/// Which address a network term looks at.
#[derive(Clone, Copy)]
enum Side {
    Src,
    Dst,
    Either,
}

/// A term made ready for a part.
enum Check {
    /// `hit[id]`: the address is in the network; `eq`: the term asks for in (`!=`: not in).
    Net {
        side: Side,
        hit: Vec<bool>,
        eq: bool,
    },
    /// The one known address in the network (an id no row has when there is none).
    Addr {
        side: Side,
        id: u32,
        eq: bool,
    },
    Num {
        col: Num,
        op: Op,
        v: f64,
    },
    /// Either port (`!=`: neither is).
    Port {
        op: Op,
        v: f64,
    },
    /// `hit[id]`: the class is the term's (any case), already negated for `!=`.
    Class(Vec<bool>),
    Alert {
        value: bool,
        eq: bool,
    },
    /// A text column read from the frame, compared exactly.
    Text {
        col: &'static str,
        v: String,
        eq: bool,
    },
    /// A value of the wrong kind for its field: never true.
    Never,
}

enum Node {
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Not(Box<Node>),
    Check(Check),
}

/// A query compiled against the dictionaries of the parts it will run on (every part it
/// runs on must be loaded before it is compiled).
pub(crate) struct Compiled(Option<Node>);

fn check(t: &Term, d: &Dicts) -> Check {
    let eq = t.op == Op::Eq;
    let net = |side| {
        let hit = d.ips.mask(|ip| t.value.contains(*ip));
        let mut ids = hit
            .iter()
            .enumerate()
            .filter(|(_, h)| **h)
            .map(|(i, _)| i as u32);
        match (ids.next(), ids.next()) {
            // One address (or none) known: compare ids, no lookup per row.
            (first, None) => Check::Addr {
                side,
                id: first.unwrap_or(NONE - 1),
                eq,
            },
            _ => Check::Net { side, hit, eq },
        }
    };
    let num = |col| match t.value {
        Value::Number(v) => Check::Num { col, op: t.op, v },
        _ => Check::Never,
    };
    let text = |col| match &t.value {
        Value::Text(v) => Check::Text {
            col,
            v: v.clone(),
            eq,
        },
        _ => Check::Never,
    };
    match t.field {
        Field::Src => net(Side::Src),
        Field::Dst => net(Side::Dst),
        Field::Ip => net(Side::Either),
        Field::Sport => num(Num::Sport),
        Field::Dport => num(Num::Dport),
        Field::Port => match t.value {
            Value::Number(v) => Check::Port { op: t.op, v },
            _ => Check::Never,
        },
        Field::Proto => num(Num::Proto),
        Field::Probability => num(Num::Probability),
        Field::Anomaly => num(Num::Anomaly),
        Field::Percentile => num(Num::Percentile),
        Field::Class => match &t.value {
            Value::Text(v) => Check::Class(d.classes.mask(|c| c.eq_ignore_ascii_case(v) == eq)),
            _ => Check::Never,
        },
        Field::Alert => match t.value {
            Value::Bool(value) => Check::Alert { value, eq },
            _ => Check::Never,
        },
        Field::CommunityId => text("community_id"),
        Field::Model => text("model_version"),
    }
}

fn node(e: &Expr, d: &Dicts) -> Node {
    match e {
        Expr::And(a, b) => Node::And(Box::new(node(a, d)), Box::new(node(b, d))),
        Expr::Or(a, b) => Node::Or(Box::new(node(a, d)), Box::new(node(b, d))),
        Expr::Not(a) => Node::Not(Box::new(node(a, d))),
        Expr::Term(t) => Node::Check(check(t, d)),
    }
}

fn holds(op: Op, x: f64, v: f64) -> bool {
    op.holds(x, v)
}

/// The verdict of a check on rows `0..n` of a part.
fn run_check(c: &Check, p: &Part, n: usize) -> PolarsResult<Vec<bool>> {
    let hit = |h: &[bool], id: u32| id != NONE && h.get(id as usize).copied().unwrap_or(false);
    Ok(match c {
        Check::Net { side, hit: h, eq } => match side {
            Side::Src => p.src[..n].iter().map(|&a| hit(h, a) == *eq).collect(),
            Side::Dst => p.dst[..n].iter().map(|&a| hit(h, a) == *eq).collect(),
            Side::Either => (0..n)
                .map(|i| (hit(h, p.src[i]) || hit(h, p.dst[i])) == *eq)
                .collect(),
        },
        Check::Addr { side, id, eq } => {
            let id = *id;
            match side {
                Side::Src => p.src[..n].iter().map(|&a| (a == id) == *eq).collect(),
                Side::Dst => p.dst[..n].iter().map(|&a| (a == id) == *eq).collect(),
                Side::Either => (0..n)
                    .map(|i| (p.src[i] == id || p.dst[i] == id) == *eq)
                    .collect(),
            }
        }
        Check::Num { col, op, v } => {
            let (op, v) = (*op, *v);
            match col {
                Num::Sport => p.sport[..n]
                    .iter()
                    .map(|&x| holds(op, f64::from(x), v))
                    .collect(),
                Num::Dport => p.dport[..n]
                    .iter()
                    .map(|&x| holds(op, f64::from(x), v))
                    .collect(),
                Num::Proto => p.proto[..n]
                    .iter()
                    .map(|&x| holds(op, f64::from(x), v))
                    .collect(),
                Num::Probability => p.probability[..n]
                    .iter()
                    .map(|&x| holds(op, x, v))
                    .collect(),
                Num::Anomaly => p.anomaly[..n].iter().map(|&x| holds(op, x, v)).collect(),
                Num::Percentile => p.percentile[..n].iter().map(|&x| holds(op, x, v)).collect(),
            }
        }
        Check::Port { op, v } => (0..n)
            .map(|i| {
                let (s, d) = (f64::from(p.sport[i]), f64::from(p.dport[i]));
                if *op == Op::Ne {
                    holds(*op, s, *v) && holds(*op, d, *v)
                } else {
                    holds(*op, s, *v) || holds(*op, d, *v)
                }
            })
            .collect(),
        Check::Class(h) => p.class[..n].iter().map(|&c| h[c as usize]).collect(),
        Check::Alert { value, eq } => p.alert[..n].iter().map(|&a| (a == *value) == *eq).collect(),
        Check::Text { col, v, eq } => {
            let s = if p.df.schema().contains(col) {
                strings(&p.df, col)?
            } else {
                vec![String::new(); p.len()]
            };
            s[..n].iter().map(|s| (s == v) == *eq).collect()
        }
        Check::Never => vec![false; n],
    })
}

fn run_node(e: &Node, p: &Part, n: usize) -> PolarsResult<Vec<bool>> {
    Ok(match e {
        Node::And(a, b) => {
            let mut x = run_node(a, p, n)?;
            // The right side only where the left holds would save little: columns are cheap.
            for (x, y) in x.iter_mut().zip(run_node(b, p, n)?) {
                *x &= y;
            }
            x
        }
        Node::Or(a, b) => {
            let mut x = run_node(a, p, n)?;
            for (x, y) in x.iter_mut().zip(run_node(b, p, n)?) {
                *x |= y;
            }
            x
        }
        Node::Not(a) => run_node(a, p, n)?.into_iter().map(|x| !x).collect(),
        Node::Check(c) => run_check(c, p, n)?,
    })
}

impl Compiled {
    pub fn new(q: &Query, d: &Dicts) -> Compiled {
        Compiled(q.expr.as_ref().map(|e| node(e, d)))
    }

    /// The rows of `p` that match and overlap `[from, to)` (a flow active at or after `from`
    /// that started before `to`), ascending.
    pub fn rows(&self, p: &Part, from: i64, to: i64) -> PolarsResult<Vec<u32>> {
        // Rows are sorted by first packet: those that started before `to` are a prefix.
        let n = p.first.partition_point(|&t| t < to);
        if self.0.is_none() && from == i64::MIN {
            return Ok((0..n as u32).collect());
        }
        let keep = match &self.0 {
            Some(e) => run_node(e, p, n)?,
            None => vec![true; n],
        };
        Ok((0..n)
            .filter(|&i| keep[i] && p.last[i] >= from)
            .map(|i| i as u32)
            .collect())
    }
}

/// Whether each row of a frame with the search layout's columns matches the query (no time
/// range): what a page shows as "matches" and what tests check a search against.
pub fn matches(df: &DataFrame, q: &Query) -> PolarsResult<Vec<bool>> {
    let dicts = std::sync::RwLock::new(Dicts::default());
    // A part is sorted by time: decide on the sorted rows, then answer in the frame's order.
    let (sorted, order) = crate::part::by_time(df.clone())?;
    let part = Part::new("", sorted, &dicts)?;
    let c = Compiled::new(
        q,
        &dicts
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    let mut out = vec![false; df.height()];
    for r in c.rows(&part, i64::MIN, i64::MAX)? {
        out[order
            .as_ref()
            .map_or(r as usize, |o| o[r as usize] as usize)] = true;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Four flows written by hand, and what each query must pick, worked out by hand.
    #[test]
    fn terms_pick_the_rows_they_say() {
        let df = df!(
            "first_ts" => [1i64, 2, 3, 4],
            "last_ts" => [10i64, 20, 30, 40],
            "proto" => [6u32, 17, 6, 1],
            "src_ip" => ["10.0.0.1", "10.0.0.2", "2001:db8::5", "192.168.1.9"],
            "src_port" => [40000u32, 5353, 50000, 8],
            "dst_ip" => ["10.0.0.9", "8.8.8.8", "2001:db8::1", "10.0.0.1"],
            "dst_port" => [22u32, 53, 443, 0],
            "community_id" => ["1:a", "1:b", "1:c", "1:d"],
            "class" => ["SSH Patator", "Normal", "Port Scan", "Normal"],
            "class_probability" => [0.99f32, 0.7, 0.95, 0.5],
            "alert" => [true, false, true, false],
            "anomaly" => [3.0f32, -1.0, 7.5, 0.0],
            "anomaly_percentile" => [90.0f32, 10.0, 99.5, 50.0],
            "model_version" => ["m1", "m1", "m1", "m2"],
        )
        .unwrap();
        for (q, want) in [
            ("", [true, true, true, true]),
            ("src 10.0.0.0/24", [true, true, false, false]),
            ("ip 10.0.0.1", [true, false, false, true]),
            ("ip 2001:db8::/64", [false, false, true, false]),
            ("dst != 10.0.0.0/8", [false, true, true, false]),
            ("port 53", [false, true, false, false]),
            ("port != 53", [true, false, true, true]),
            ("dport >= 53 and proto tcp", [false, false, true, false]),
            (
                "class \"port scan\" or class 'SSH Patator'",
                [true, false, true, false],
            ),
            ("not class Normal", [true, false, true, false]),
            ("p > 0.9 and anomaly > 5", [false, false, true, false]),
            ("percentile >= 99 or alert false", [false, true, true, true]),
            (
                "cid 1:d or model m1 and proto icmp",
                [false, false, false, true],
            ),
            ("-(proto udp or proto icmp)", [true, false, true, false]),
        ] {
            let query = Query::parse(q).unwrap_or_else(|e| panic!("{}", e.pointed(q)));
            assert_eq!(matches(&df, &query).unwrap(), want, "{q}");
        }
        // The time range: active at or after `from`, started before `to`.
        let dicts = std::sync::RwLock::new(Dicts::default());
        let part = Part::new("c", df.clone(), &dicts).unwrap();
        let c = Compiled::new(&Query::default(), &dicts.read().unwrap());
        assert_eq!(c.rows(&part, 25, 4).unwrap(), [2]);
        assert_eq!(c.rows(&part, 25, 5).unwrap(), [2, 3]);
        assert_eq!(c.rows(&part, 35, 4).unwrap(), Vec::<u32>::new());
    }
}
