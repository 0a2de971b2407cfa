//! A query over the rows of a search part: the columns a query names, read once, and a
//! verdict per row.

use std::net::IpAddr;

use polars::prelude::*;
use weir_records::columns::{f64s, i64s, strings};

use crate::query::{Expr, Field, Query, Term, Value};

/// The columns of a frame a query needs, as plain vectors.
#[derive(Default)]
struct Cols {
    src: Vec<Option<IpAddr>>,
    dst: Vec<Option<IpAddr>>,
    sport: Vec<f64>,
    dport: Vec<f64>,
    proto: Vec<f64>,
    class: Vec<String>,
    probability: Vec<f64>,
    anomaly: Vec<f64>,
    percentile: Vec<f64>,
    alert: Vec<bool>,
    cid: Vec<String>,
    model: Vec<String>,
}

fn fields(e: &Expr, out: &mut Vec<Field>) {
    match e {
        Expr::And(a, b) | Expr::Or(a, b) => {
            fields(a, out);
            fields(b, out);
        }
        Expr::Not(a) => fields(a, out),
        Expr::Term(t) => out.push(t.field),
    }
}

fn ips(df: &DataFrame, name: &str) -> PolarsResult<Vec<Option<IpAddr>>> {
    Ok(strings(df, name)?.iter().map(|s| s.parse().ok()).collect())
}

impl Cols {
    fn read(df: &DataFrame, q: &Query) -> PolarsResult<Cols> {
        let mut need = Vec::new();
        if let Some(e) = &q.expr {
            fields(e, &mut need);
        }
        let mut c = Cols::default();
        let has = |f: Field| need.contains(&f);
        if has(Field::Src) || has(Field::Ip) {
            c.src = ips(df, "src_ip")?;
        }
        if has(Field::Dst) || has(Field::Ip) {
            c.dst = ips(df, "dst_ip")?;
        }
        if has(Field::Sport) || has(Field::Port) {
            c.sport = f64s(df, "src_port")?;
        }
        if has(Field::Dport) || has(Field::Port) {
            c.dport = f64s(df, "dst_port")?;
        }
        if has(Field::Proto) {
            c.proto = f64s(df, "proto")?;
        }
        if has(Field::Class) {
            c.class = strings(df, "class")?;
        }
        if has(Field::Probability) {
            c.probability = f64s(df, "class_probability")?;
        }
        if has(Field::Anomaly) {
            c.anomaly = f64s(df, "anomaly")?;
        }
        if has(Field::Percentile) {
            c.percentile = f64s(df, "anomaly_percentile")?;
        }
        if has(Field::Alert) {
            let a = df.column("alert")?.cast(&DataType::Boolean)?;
            c.alert = a.bool()?.iter().map(|v| v.unwrap_or(false)).collect();
        }
        if has(Field::CommunityId) {
            c.cid = strings(df, "community_id")?;
        }
        if has(Field::Model) {
            c.model = strings(df, "model_version")?;
        }
        Ok(c)
    }
}

fn net(v: &Value, ip: Option<IpAddr>) -> bool {
    ip.is_some_and(|ip| v.contains(ip))
}

fn num(t: &Term, x: f64) -> bool {
    match t.value {
        Value::Number(v) => t.op.holds(x, v),
        _ => false,
    }
}

fn text(t: &Term, s: &str, any_case: bool) -> bool {
    let Value::Text(v) = &t.value else {
        return false;
    };
    let eq = if any_case {
        s.eq_ignore_ascii_case(v)
    } else {
        s == v
    };
    eq == (t.op == crate::Op::Eq)
}

fn term(t: &Term, c: &Cols, i: usize) -> bool {
    let eq = t.op == crate::Op::Eq;
    match t.field {
        // An address term with `!=` is "not in the network".
        Field::Src => net(&t.value, c.src[i]) == eq,
        Field::Dst => net(&t.value, c.dst[i]) == eq,
        Field::Ip => (net(&t.value, c.src[i]) || net(&t.value, c.dst[i])) == eq,
        Field::Sport => num(t, c.sport[i]),
        Field::Dport => num(t, c.dport[i]),
        // Either port; `port != 53`: neither side is 53.
        Field::Port if t.op == crate::Op::Ne => num(t, c.sport[i]) && num(t, c.dport[i]),
        Field::Port => num(t, c.sport[i]) || num(t, c.dport[i]),
        Field::Proto => num(t, c.proto[i]),
        Field::Class => text(t, &c.class[i], true),
        Field::Probability => num(t, c.probability[i]),
        Field::Anomaly => num(t, c.anomaly[i]),
        Field::Percentile => num(t, c.percentile[i]),
        Field::Alert => matches!(t.value, Value::Bool(b) if (c.alert[i] == b) == eq),
        Field::CommunityId => text(t, &c.cid[i], false),
        Field::Model => text(t, &c.model[i], false),
    }
}

fn eval(e: &Expr, c: &Cols, i: usize) -> bool {
    match e {
        Expr::And(a, b) => eval(a, c, i) && eval(b, c, i),
        Expr::Or(a, b) => eval(a, c, i) || eval(b, c, i),
        Expr::Not(a) => !eval(a, c, i),
        Expr::Term(t) => term(t, c, i),
    }
}

/// Which rows of a search part match the query and overlap `[from, to)` (a flow active at or
/// after `from` that started before `to`).
pub(crate) fn mask(df: &DataFrame, q: &Query, from: i64, to: i64) -> PolarsResult<BooleanChunked> {
    let n = df.height();
    let c = Cols::read(df, q)?;
    let (first, last) = (i64s(df, "first_ts")?, i64s(df, "last_ts")?);
    Ok((0..n)
        .map(|i| last[i] >= from && first[i] < to && q.expr.as_ref().is_none_or(|e| eval(e, &c, i)))
        .collect())
}

/// Whether each row of a frame with the search layout's columns matches the query (no time
/// range): what a page shows as "matches" and what tests check a search against.
pub fn matches(df: &DataFrame, q: &Query) -> PolarsResult<Vec<bool>> {
    Ok(mask(df, q, i64::MIN, i64::MAX)?
        .iter()
        .map(|v| v.unwrap_or(false))
        .collect())
}

/// `idx` sorted by `v` (stable: ties keep their order; missing values last either way).
fn sort_idx<T>(
    idx: &mut [IdxSize],
    v: &[Option<T>],
    descending: bool,
    cmp: impl Fn(&T, &T) -> std::cmp::Ordering,
) {
    use std::cmp::Ordering;
    idx.sort_by(|a, b| match (&v[*a as usize], &v[*b as usize]) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) if descending => cmp(y, x),
        (Some(x), Some(y)) => cmp(x, y),
    });
}

/// Row order by one column (stable: ties keep their order; missing values last). Integers
/// and timestamps compare as integers (as f64, timestamps in ns would tie within ~256 ns).
pub(crate) fn order(df: &DataFrame, col: &str, descending: bool) -> PolarsResult<Vec<IdxSize>> {
    let mut idx: Vec<IdxSize> = (0..df.height() as IdxSize).collect();
    let c = df.column(col)?;
    let dt = c.dtype();
    if dt.is_integer() || matches!(dt, DataType::Datetime(..) | DataType::Boolean) {
        let v: Vec<Option<i64>> = c.cast(&DataType::Int64)?.i64()?.iter().collect();
        sort_idx(&mut idx, &v, descending, Ord::cmp);
    } else if dt.is_float() {
        let v: Vec<Option<f64>> = f64s(df, col)?
            .into_iter()
            .map(|x| (!x.is_nan()).then_some(x))
            .collect();
        sort_idx(&mut idx, &v, descending, f64::total_cmp);
    } else {
        let v: Vec<Option<String>> = strings(df, col)?.into_iter().map(Some).collect();
        sort_idx(&mut idx, &v, descending, Ord::cmp);
    }
    Ok(idx)
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
        // Timestamps sort as integers: 1 ns apart is an order, not a tie.
        let t = 1_700_000_000_000_000_000i64;
        let ts = df!("first_ts" => [t + 1, t, t + 2]).unwrap();
        assert_eq!(order(&ts, "first_ts", false).unwrap(), [1, 0, 2]);
        assert_eq!(order(&ts, "first_ts", true).unwrap(), [2, 0, 1]);
        // The time range: active at or after `from`, started before `to`.
        let m = mask(&df, &Query::default(), 25, 4).unwrap();
        let got: Vec<bool> = m.iter().map(|v| v.unwrap()).collect();
        assert_eq!(got, [false, false, true, false]);
    }
}
