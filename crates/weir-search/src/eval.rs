//! A query decided over a part held in memory, a column at a time: address and class terms
//! become a bitmap over the shared dictionaries (decided once per distinct value), numbers
//! compare in place, Community ID and model version are read from the frame when asked.
//!
//! An IOC list (`ip a or ip b or ...`, `not port 1 and not port 2 ...`) is decided as set
//! membership: the `=` terms of one field under one `or` (or the `!=` terms under one `and`)
//! become one check, an address set looked up once per distinct address, a port table, a
//! set of strings, so 10,000 terms cost one pass over the rows, not 10,000.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use weir_wire::columns as col;

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
    /// `table[value]` for an integer column (ports, protocol): one of a set of values.
    Table {
        col: Num,
        table: Vec<bool>,
    },
    /// Either port is in the table.
    PortTable(Vec<bool>),
    /// A text column read from the frame: one of `set` (`eq`), or none of them.
    Text {
        col: &'static str,
        set: HashSet<String>,
        eq: bool,
    },
    /// A value of the wrong kind for its field: never true.
    Never,
}

enum Node {
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    Check(Check),
}

/// A query compiled against the dictionaries of the parts it will run on (every part it
/// runs on must be loaded before it is compiled).
pub(crate) struct Compiled(Option<Node>);

/// An address check from the mask of the addresses it hits.
fn net_check(side: Side, hit: Vec<bool>, eq: bool) -> Check {
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
}

fn check(t: &Term, d: &Dicts) -> Check {
    let eq = t.op == Op::Eq;
    let net = |side| net_check(side, d.ips.mask(|ip| t.value.contains(*ip)), eq);
    let num = |col| match t.value {
        Value::Number(v) => Check::Num { col, op: t.op, v },
        _ => Check::Never,
    };
    let text = |col| match &t.value {
        Value::Text(v) => Check::Text {
            col,
            set: HashSet::from([v.clone()]),
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
        Field::CommunityId => text(col::COMMUNITY_ID),
        Field::Model => text(col::MODEL_VERSION),
    }
}

/// The field a term of a set belongs to, when the terms of one field can be decided as one
/// set lookup (address, port, protocol, class, Community ID, model version).
fn set_field(f: Field) -> bool {
    matches!(
        f,
        Field::Src
            | Field::Dst
            | Field::Ip
            | Field::Sport
            | Field::Dport
            | Field::Port
            | Field::Proto
            | Field::Class
            | Field::CommunityId
            | Field::Model
    )
}

/// `e` as a set member: its field and value when it is `field = value` (`positive`) or
/// `field != value` (not `positive`), also written `not field = value`.
fn member(e: &Expr, positive: bool) -> Option<(Field, &Value)> {
    let (t, eq) = match e {
        Expr::Term(t) => (t, t.op == Op::Eq),
        Expr::Not(inner) => match &**inner {
            Expr::Term(t) => (t, t.op != Op::Eq),
            _ => return None,
        },
        _ => return None,
    };
    (matches!(t.op, Op::Eq | Op::Ne) && eq == positive && set_field(t.field))
        .then_some((t.field, &t.value))
}

/// Addresses and networks, looked up by prefix length.
#[derive(Default)]
struct NetSet {
    v4: BTreeMap<u8, HashSet<u32>>,
    v6: BTreeMap<u8, HashSet<u128>>,
}

fn mask32(a: u32, bits: u8) -> u32 {
    if bits == 0 {
        0
    } else {
        a & (u32::MAX << (32 - u32::from(bits)))
    }
}

fn mask128(a: u128, bits: u8) -> u128 {
    if bits == 0 {
        0
    } else {
        a & (u128::MAX << (128 - u32::from(bits)))
    }
}

impl NetSet {
    fn add(&mut self, v: &Value) {
        match v {
            Value::Net(IpAddr::V4(n), bits) => {
                let bits = (*bits).min(32);
                self.v4
                    .entry(bits)
                    .or_default()
                    .insert(mask32(u32::from(*n), bits));
            }
            Value::Net(IpAddr::V6(n), bits) => {
                let bits = (*bits).min(128);
                self.v6
                    .entry(bits)
                    .or_default()
                    .insert(mask128(u128::from(*n), bits));
            }
            _ => {}
        }
    }

    /// As [`Value::contains`] for any member: an IPv4-mapped IPv6 address is its IPv4 address.
    fn contains(&self, ip: IpAddr) -> bool {
        let v4 = |a: u32| self.v4.iter().any(|(b, s)| s.contains(&mask32(a, *b)));
        match ip {
            IpAddr::V4(a) => v4(u32::from(a)),
            IpAddr::V6(a) => {
                let x = u128::from(a);
                self.v6.iter().any(|(b, s)| s.contains(&mask128(x, *b)))
                    || a.to_ipv4_mapped().is_some_and(|m| v4(u32::from(m)))
            }
        }
    }
}

/// One check for "`field` is one of `values`".
fn set_check(field: Field, values: &[&Value], d: &Dicts) -> Check {
    let table = |max: usize| {
        let mut t = vec![false; max + 1];
        for v in values {
            if let Value::Number(n) = v {
                if *n >= 0.0 && *n <= max as f64 && n.fract() == 0.0 {
                    t[*n as usize] = true;
                }
            }
        }
        t
    };
    let net = |side| {
        let mut set = NetSet::default();
        for v in values {
            set.add(v);
        }
        net_check(side, d.ips.mask(|ip| set.contains(*ip)), true)
    };
    let texts = || -> HashSet<String> {
        values
            .iter()
            .filter_map(|v| match v {
                Value::Text(t) => Some(t.clone()),
                _ => None,
            })
            .collect()
    };
    match field {
        Field::Src => net(Side::Src),
        Field::Dst => net(Side::Dst),
        Field::Ip => net(Side::Either),
        Field::Sport => Check::Table {
            col: Num::Sport,
            table: table(65535),
        },
        Field::Dport => Check::Table {
            col: Num::Dport,
            table: table(65535),
        },
        Field::Port => Check::PortTable(table(65535)),
        Field::Proto => Check::Table {
            col: Num::Proto,
            table: table(255),
        },
        Field::Class => {
            let lower: HashSet<String> = texts().iter().map(|t| t.to_ascii_lowercase()).collect();
            Check::Class(d.classes.mask(|c| lower.contains(&c.to_ascii_lowercase())))
        }
        Field::CommunityId => Check::Text {
            col: col::COMMUNITY_ID,
            set: texts(),
            eq: true,
        },
        Field::Model => Check::Text {
            col: col::MODEL_VERSION,
            set: texts(),
            eq: true,
        },
        _ => Check::Never,
    }
}

/// The children of an n-ary node, with the set members of each field gathered into one check
/// (`positive`: under `or`, the `=` terms; else under `and`, the `!=` terms, as `not` a set).
fn children(items: &[Expr], positive: bool, d: &Dicts) -> Vec<Node> {
    let mut groups: Vec<(Field, Vec<&Value>)> = Vec::new();
    let mut rest = Vec::new();
    for e in items {
        match member(e, positive) {
            Some((f, v)) => match groups.iter_mut().find(|(g, _)| *g == f) {
                Some((_, vs)) => vs.push(v),
                None => groups.push((f, vec![v])),
            },
            None => rest.push(e),
        }
    }
    let mut out: Vec<Node> = Vec::with_capacity(groups.len() + rest.len());
    for (field, values) in groups {
        let c = Node::Check(set_check(field, &values, d));
        out.push(if positive { c } else { Node::Not(Box::new(c)) });
    }
    out.extend(rest.into_iter().map(|e| node(e, d)));
    out
}

fn node(e: &Expr, d: &Dicts) -> Node {
    match e {
        Expr::And(items) => Node::And(children(items, false, d)),
        Expr::Or(items) => Node::Or(children(items, true, d)),
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
        Check::Table { col, table } => {
            let c = match col {
                Num::Sport => &p.sport,
                Num::Dport => &p.dport,
                _ => &p.proto,
            };
            c[..n].iter().map(|&x| in_table(table, x)).collect()
        }
        Check::PortTable(table) => (0..n)
            .map(|i| in_table(table, p.sport[i]) || in_table(table, p.dport[i]))
            .collect(),
        Check::Text { col, set, eq } => {
            let s = if p.df.schema().contains(col) {
                strings(&p.df, col)?
            } else {
                vec![String::new(); p.len()]
            };
            s[..n].iter().map(|s| set.contains(s) == *eq).collect()
        }
        Check::Never => vec![false; n],
    })
}

/// Whether an integer column's value (NaN when missing) is in `table`.
fn in_table(table: &[bool], x: f32) -> bool {
    x >= 0.0 && (x as usize) < table.len() && x.fract() == 0.0 && table[x as usize]
}

fn run_node(e: &Node, p: &Part, n: usize) -> PolarsResult<Vec<bool>> {
    Ok(match e {
        // The rest only where the first holds would save little: columns are cheap.
        Node::And(items) => {
            let mut x = vec![true; n];
            for c in items {
                for (x, y) in x.iter_mut().zip(run_node(c, p, n)?) {
                    *x &= y;
                }
            }
            x
        }
        Node::Or(items) => {
            let mut x = vec![false; n];
            for c in items {
                for (x, y) in x.iter_mut().zip(run_node(c, p, n)?) {
                    *x |= y;
                }
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
            col::FIRST_TS => [1i64, 2, 3, 4],
            col::LAST_TS => [10i64, 20, 30, 40],
            "proto" => [6u32, 17, 6, 1],
            col::SRC_IP => ["10.0.0.1", "10.0.0.2", "2001:db8::5", "192.168.1.9"],
            col::SRC_PORT => [40000u32, 5353, 50000, 8],
            col::DST_IP => ["10.0.0.9", "8.8.8.8", "2001:db8::1", "10.0.0.1"],
            col::DST_PORT => [22u32, 53, 443, 0],
            col::COMMUNITY_ID => ["1:a", "1:b", "1:c", "1:d"],
            "class" => ["SSH Patator", "Normal", "Port Scan", "Normal"],
            col::CLASS_PROBABILITY => [0.99f32, 0.7, 0.95, 0.5],
            "alert" => [true, false, true, false],
            "anomaly" => [3.0f32, -1.0, 7.5, 0.0],
            col::ANOMALY_PERCENTILE => [90.0f32, 10.0, 99.5, 50.0],
            col::MODEL_VERSION => ["m1", "m1", "m1", "m2"],
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
            // Sets: the `=` terms of one field under `or`, the `!=` ones under `and`.
            (
                "ip 10.0.0.1 or ip 8.8.8.8 or ip 2001:db8::/64",
                [true, true, true, true],
            ),
            (
                "src 10.0.0.1 or src 192.168.1.9",
                [true, false, false, true],
            ),
            ("ip 10.0.0.0/8 or ip 192.168.1.9", [true, true, false, true]),
            (
                "ip ::ffff:10.0.0.9 or ip 1.1.1.1",
                [false, false, false, false],
            ),
            ("port 53 or port 22 or port 8", [true, true, false, true]),
            ("not port 53 and not port 22", [false, false, true, true]),
            ("dport != 53 and dport != 443", [true, false, false, true]),
            ("cid 1:a or cid 1:c or model m2", [true, false, true, true]),
            ("cid != 1:a and cid != 1:c", [false, true, false, true]),
            (
                "proto tcp or proto icmp or port 5353",
                [true, true, true, true],
            ),
            (
                "class normal or class 'port scan' or alert true",
                [true, true, true, true],
            ),
            (
                "not class normal and not class 'port scan'",
                [true, false, false, false],
            ),
        ] {
            let query = Query::parse(q).unwrap_or_else(|e| panic!("{}", e.pointed(q)));
            assert_eq!(matches(&df, &query).unwrap(), want, "{q}");
        }
        // Random IOC-style queries decide as a term-by-term reading of the same rows does.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let values = [
            "src 10.0.0.1",
            "src 10.0.0.0/31",
            "dst 8.8.8.8",
            "ip 2001:db8::/64",
            "ip 192.168.1.9",
            "ip 10.0.0.0/8",
            "ip ::ffff:192.168.1.9",
            "port 53",
            "dport 22",
            "sport 8",
            "proto tcp",
            "proto 1",
            "class normal",
            "class \"Port Scan\"",
            "cid 1:d",
            "model m2",
            "alert true",
        ];
        for _ in 0..2_000 {
            let n = 1 + next(6) as usize;
            let or = next(2) == 0;
            let terms: Vec<String> = (0..n)
                .map(|_| {
                    let t = values[next(values.len() as u64) as usize];
                    match next(3) {
                        0 => format!("not {t}"),
                        1 if !t.starts_with("alert") => t.replacen(' ', " != ", 1),
                        _ => t.to_string(),
                    }
                })
                .collect();
            let text = terms.join(if or { " or " } else { " and " });
            let q = Query::parse(&text).unwrap_or_else(|e| panic!("{}", e.pointed(&text)));
            let each: Vec<Vec<bool>> = terms
                .iter()
                .map(|t| matches(&df, &Query::parse(t).unwrap()).unwrap())
                .collect();
            let want: Vec<bool> = (0..4)
                .map(|i| {
                    if or {
                        each.iter().any(|m| m[i])
                    } else {
                        each.iter().all(|m| m[i])
                    }
                })
                .collect();
            assert_eq!(matches(&df, &q).unwrap(), want, "{text}");
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
