//! Tests of `query`.

use super::*;

fn p(s: &str) -> Query {
    Query::parse(s).unwrap_or_else(|e| panic!("{}", e.pointed(s)))
}

#[test]
fn the_documented_queries_parse_and_print_back() {
    for (q, canonical) in [
        (
            "src 10.0.0.0/8 and class \"Port Scan\" and anomaly > 5",
            "src 10.0.0.0/8 and class \"Port Scan\" and anomaly > 5",
        ),
        (
            "ip 2001:db8::/32 and not dport 443",
            "ip 2001:db8::/32 and not dport 443",
        ),
        (
            "(class DDoS or class 'DoS Hulk') and p >= 0.9",
            "(class DDoS or class \"DoS Hulk\") and p >= 0.9",
        ),
        ("src:10.1.2.3 dport:22", "src 10.1.2.3 and dport 22"),
        ("-class Normal", "not class Normal"),
        (
            "cid \"1:LQU9qZlK+B5F3KDmev6m5PMibrg=\"",
            "cid \"1:LQU9qZlK+B5F3KDmev6m5PMibrg=\"",
        ),
        ("proto udp and port != 53", "proto 17 and port != 53"),
        (
            "alert true or percentile >= 99",
            "alert true or percentile >= 99",
        ),
        ("ip ::ffff:10.0.0.1", "ip ::ffff:10.0.0.1"),
    ] {
        let got = p(q);
        assert_eq!(got.to_string(), canonical, "{q}");
        assert_eq!(p(canonical), got, "round trip of {canonical}");
    }
    assert_eq!(p("  "), Query::default());
}

#[test]
fn and_binds_tighter_than_or() {
    let q = p("class a or class b and port 1");
    assert!(matches!(q.expr, Some(Expr::Or(..))));
    assert_eq!(q.to_string(), "class a or class b and port 1");
}

#[test]
fn mistakes_are_pointed_at() {
    for (q, at, says) in [
        ("src 10.0.0/8", 4, "not an IP address"),
        ("src 10.0.0.0/33", 4, "prefix length"),
        (
            "dst 10.0.0.1 and colour red",
            17,
            "unknown field \"colour\"",
        ),
        ("class > 3", 6, "only `=` and `!=`"),
        ("anomaly >", 9, "needs a value"),
        ("(class DDoS", 0, "never closed"),
        ("class DDoS)", 10, "without its `(`"),
        ("class \"Port Scan", 6, "quote is never closed"),
        ("p 1.5", 2, "probability"),
        ("dport 70000", 6, "not a port"),
        ("proto xyz", 6, "not a protocol"),
        ("and", 0, "unknown field"),
    ] {
        let e = Query::parse(q).unwrap_err();
        assert_eq!(e.at, at, "{q}: {}", e.pointed(q));
        assert!(e.message.contains(says), "{q}: {}", e.message);
    }
    let e = Query::parse("src 10.0.0/8 and p > 0.5").unwrap_err();
    assert_eq!(
        e.pointed("src 10.0.0/8 and p > 0.5"),
        "src 10.0.0/8 and p > 0.5\n    ^^^^^^^^ \"10.0.0/8\" is not an IP address or network (10.0.0.0/8, 2001:db8::/32)"
    );
}

#[test]
fn networks_match_by_prefix_across_families() {
    let n = |s: &str| net(s).unwrap();
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    assert!(n("10.0.0.0/8").contains(ip("10.200.1.1")));
    assert!(!n("10.0.0.0/8").contains(ip("11.0.0.1")));
    assert!(n("192.168.1.0/25").contains(ip("192.168.1.127")));
    assert!(!n("192.168.1.0/25").contains(ip("192.168.1.128")));
    assert!(n("0.0.0.0/0").contains(ip("8.8.8.8")));
    assert!(n("2001:db8::/32").contains(ip("2001:db8:ffff::1")));
    assert!(!n("2001:db8::/32").contains(ip("2001:db9::1")));
    assert!(n("10.0.0.1").contains(ip("::ffff:10.0.0.1")));
    assert!(!n("::/0").contains(ip("10.0.0.1")));
}

#[test]
fn clicking_a_value_adds_or_excludes_it() {
    let q = p("class DDoS or class \"DoS Hulk\"");
    let t = Term {
        field: Field::Dst,
        op: Op::Eq,
        value: net("10.0.0.5").unwrap(),
    };
    assert_eq!(
        q.and(t.clone()).to_string(),
        "(class DDoS or class \"DoS Hulk\") and dst 10.0.0.5"
    );
    assert_eq!(Query::default().and_not(t).to_string(), "not dst 10.0.0.5");
}

/// What a request could send to crash a server built on recursion: each is refused with a
/// limit named, or parsed without recursing on its length.
#[test]
fn hostile_queries_are_bounded_and_never_overflow() {
    let deep = format!("{}port 1{}", "(".repeat(2_000), ")".repeat(2_000));
    let e = Query::parse(&deep).unwrap_err();
    assert!(e.message.contains("the limit is 64"), "{}", e.message);
    assert_eq!(e.at, MAX_NESTING);
    let ok = format!("{}port 1{}", "(".repeat(64), ")".repeat(64));
    assert_eq!(p(&ok).to_string(), "port 1");

    let nots = format!("{}class DDoS", "not ".repeat(10_000));
    assert_eq!(p(&nots).to_string(), "class DDoS");
    let odd = format!("{}class DDoS", "not ".repeat(10_001));
    assert_eq!(p(&odd).to_string(), "not class DDoS");
    let minus = format!("{}-class DDoS", "-not ".repeat(4_999));
    assert_eq!(p(&minus).to_string(), "not class DDoS");

    let ioc: Vec<String> = (0..10_000)
        .map(|i| format!("ip 10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256))
        .collect();
    let q = p(&ioc.join(" or "));
    match &q.expr {
        Some(Expr::Or(items)) => assert_eq!(items.len(), 10_000),
        other => panic!("not one n-ary or: {other:?}"),
    }
    assert_eq!(q.to_string(), ioc.join(" or "));
    let e = Query::parse(&vec!["port 1"; MAX_TERMS + 1].join(" or ")).unwrap_err();
    assert!(
        e.message.contains("the limit is 20000 terms"),
        "{}",
        e.message
    );
    let e = Query::parse(&" ".repeat(MAX_QUERY_BYTES + 1)).unwrap_err();
    assert!(e.message.contains("bytes: the limit is"), "{}", e.message);
    // Flattened: parentheses that change nothing are gone in the canonical text.
    assert_eq!(
        p("(port 1 and (port 2 and port 3)) or ((port 4 or port 5))").to_string(),
        "port 1 and port 2 and port 3 or port 4 or port 5"
    );
    assert_eq!(
        p("not (not (port 1 or port 2))").to_string(),
        "port 1 or port 2"
    );
    // A value that starts with `-` is quoted, or it would read back as `not`.
    let q = p("cid \"-Lsperc\"");
    assert_eq!(q.to_string(), "cid \"-Lsperc\"");
    assert_eq!(p(&q.to_string()), q);
}

/// A small deterministic generator (xorshift), so the property runs without a crate and
/// the same way every time.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn random_term(r: &mut Rng) -> Term {
    let ops = [Op::Eq, Op::Ne, Op::Lt, Op::Le, Op::Gt, Op::Ge];
    let field = Field::ALL[r.below(Field::ALL.len() as u64) as usize].0;
    let op = if field.ordered() {
        ops[r.below(6) as usize]
    } else {
        ops[r.below(2) as usize]
    };
    let texts = [
        "DDoS",
        "Port Scan",
        "and",
        "a\"b",
        "x\\y",
        "1:abc+/=",
        "",
        "ünï",
        "-Lsperc",
        "-(x",
        "-1",
    ];
    let value = match field {
        Field::Src | Field::Dst | Field::Ip => {
            if r.below(2) == 0 {
                let a = std::net::Ipv4Addr::from(r.next() as u32);
                let bits = r.below(33) as u8;
                Value::Net(IpAddr::V4(a), bits)
            } else {
                let a = std::net::Ipv6Addr::from(u128::from(r.next()) << 64 | 1);
                Value::Net(IpAddr::V6(a), r.below(129) as u8)
            }
        }
        Field::Sport | Field::Dport | Field::Port => Value::Number(r.below(65536) as f64),
        Field::Proto => Value::Number(r.below(256) as f64),
        Field::Probability => Value::Number(r.below(1001) as f64 / 1000.0),
        Field::Percentile => Value::Number(r.below(10001) as f64 / 100.0),
        Field::Anomaly => Value::Number((r.below(20001) as f64 - 10000.0) / 7.0),
        Field::Alert => Value::Bool(r.below(2) == 0),
        Field::Class | Field::CommunityId | Field::Model => {
            Value::Text(texts[r.below(texts.len() as u64) as usize].to_string())
        }
    };
    Term { field, op, value }
}

fn random_expr(r: &mut Rng, depth: u32) -> Expr {
    match if depth == 0 { 0 } else { r.below(4) } {
        0 => Expr::Term(random_term(r)),
        1 => Expr::negate(random_expr(r, depth - 1)),
        k => {
            let n = 1 + r.below(4) as usize;
            let items = (0..n).map(|_| random_expr(r, depth - 1)).collect();
            if k == 2 {
                Expr::all(items)
            } else {
                Expr::any(items)
            }
        }
    }
}

/// Random queries, printed then parsed, come back the same; random text never panics,
/// and what parses prints to a canonical text that parses to the same query.
#[test]
fn random_queries_round_trip_and_random_text_never_panics() {
    let mut r = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..20_000 {
        let q = Query {
            expr: Some(random_expr(&mut r, 5)),
        };
        let text = q.to_string();
        let back = Query::parse(&text).unwrap_or_else(|e| panic!("{}", e.pointed(&text)));
        assert_eq!(back, q, "{text}");
    }
    let pieces = [
        "(", ")", " ", "and", "or", "not", "-", "\"", "'", "=", "!=", "<", ">=", ":", "src", "ip",
        "port", "class", "10.0.0.1", "::1/64", "/", "0.5", "-3", "DDoS", "é", "\\", "alert",
        "true", "p", "cid", "x",
    ];
    for _ in 0..50_000 {
        let n = r.below(12) as usize;
        let text: String = (0..n)
            .map(|_| pieces[r.below(pieces.len() as u64) as usize])
            .collect::<Vec<_>>()
            .join(if r.below(3) == 0 { "" } else { " " });
        if let Ok(q) = Query::parse(&text) {
            let canonical = q.to_string();
            let again = Query::parse(&canonical)
                .unwrap_or_else(|e| panic!("{text:?} -> {}", e.pointed(&canonical)));
            assert_eq!(again, q, "{text:?} -> {canonical:?}");
        } else if let Err(e) = Query::parse(&text) {
            let _ = e.pointed(&text);
        }
    }
}
