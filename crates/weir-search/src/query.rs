//! The query language: what an analyst types in the search box, and what the URL carries.
//!
//! ```text
//! src 10.0.0.0/8 and class "Port Scan" and anomaly > 5
//! ip 2001:db8::/32 and not dport 443
//! (class DDoS or class "DoS Hulk") and p >= 0.9
//! cid "1:LQU9qZlK+B5F3KDmev6m5PMibrg="
//! ```
//!
//! A query is terms joined by `and` (also implied between two terms), `or` and `not` (or a
//! leading `-`), with parentheses; `and` binds tighter than `or`. A term is a field, an
//! optional comparison (`=`, `!=`, `<`, `<=`, `>`, `>=`; `:` is `=`) and a value, quoted
//! when it holds spaces. Fields:
//!
//! | field | matches | values |
//! |---|---|---|
//! | `src`, `dst`, `ip` (either side) | the address | an IPv4/IPv6 address or CIDR |
//! | `sport`, `dport`, `port` (either side) | the port | 0-65535, compared |
//! | `proto` | the IP protocol | `tcp`, `udp`, `icmp`, `icmp6`, or a number |
//! | `class` | the predicted class | a class name, any case |
//! | `p` (`probability`) | the predicted class's probability | 0-1, compared |
//! | `anomaly` | the anomaly score | a number, compared |
//! | `percentile` | the anomaly percentile | 0-100, compared |
//! | `alert` | whether the flow raised an alert | `true`, `false` |
//! | `cid` (`community_id`) | the Community ID | as printed |
//! | `model` | the model version that decided | as printed |
//!
//! A mistake is a [`ParseError`] that says where it is ([`ParseError::pointed`] draws a
//! caret under it), never a guess.
//!
//! A query comes from anybody who can send a request, so its size is bounded: at most
//! [`MAX_QUERY_BYTES`] bytes, [`MAX_TERMS`] terms and [`MAX_NESTING`] nested parentheses, each
//! refused with an error that names the limit. Nothing recurses on the query's length: `and`
//! and `or` are n-ary (a 10,000-term IOC list is one node with 10,000 children, which the
//! evaluator decides as set membership), a run of `not` is decided by its parity, and only
//! parentheses nest.

use std::fmt;
use std::net::IpAddr;
use weir_wire::columns as col;

/// A parsed query. `Query::default()` (the empty query) matches everything.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Query {
    /// The expression; `None` matches every flow.
    pub expr: Option<Expr>,
}

/// The longest query text taken, in bytes (a 10,000-address IOC list is ~200 KB).
pub const MAX_QUERY_BYTES: usize = 1 << 20;

/// The most terms one query may hold.
pub const MAX_TERMS: usize = 20_000;

/// The deepest nesting of parentheses.
pub const MAX_NESTING: usize = 64;

/// A boolean expression over terms, in the form the parser builds: `And` and `Or` hold two
/// or more children and never a child of their own kind (`a and (b and c)` is one `And` of
/// three), and `Not` never holds a `Not`. [`Expr::all`], [`Expr::any`] and [`Expr::negate`]
/// keep that form; printing then parsing gives the same expression back.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// Every one.
    And(Vec<Expr>),
    /// Any one.
    Or(Vec<Expr>),
    /// Not.
    Not(Box<Expr>),
    /// One condition.
    Term(Term),
}

impl Expr {
    /// Every one of `items` (flattened; one item is itself). Panics on none.
    pub fn all(items: Vec<Expr>) -> Expr {
        Expr::joined(items, true)
    }

    /// Any one of `items` (flattened; one item is itself). Panics on none.
    pub fn any(items: Vec<Expr>) -> Expr {
        Expr::joined(items, false)
    }

    fn joined(items: Vec<Expr>, and: bool) -> Expr {
        let mut out = Vec::with_capacity(items.len());
        for e in items {
            match (e, and) {
                (Expr::And(v), true) | (Expr::Or(v), false) => out.extend(v),
                (e, _) => out.push(e),
            }
        }
        assert!(!out.is_empty(), "an expression of no terms");
        if out.len() == 1 {
            return out.pop().expect("one item");
        }
        if and {
            Expr::And(out)
        } else {
            Expr::Or(out)
        }
    }

    /// Not `e` (`not not e` is `e`).
    pub fn negate(e: Expr) -> Expr {
        match e {
            Expr::Not(inner) => *inner,
            e => Expr::Not(Box::new(e)),
        }
    }
}

/// One condition on one field.
#[derive(Clone, Debug, PartialEq)]
pub struct Term {
    /// What it looks at.
    pub field: Field,
    /// How it compares.
    pub op: Op,
    /// With what.
    pub value: Value,
}

/// The fields a query can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// Source (initiator) address.
    Src,
    /// Destination (responder) address.
    Dst,
    /// Either address.
    Ip,
    /// Source port.
    Sport,
    /// Destination port.
    Dport,
    /// Either port.
    Port,
    /// IP protocol number.
    Proto,
    /// Predicted class.
    Class,
    /// The predicted class's probability.
    Probability,
    /// Anomaly score.
    Anomaly,
    /// Anomaly percentile.
    Percentile,
    /// Whether the flow raised an alert.
    Alert,
    /// Community ID.
    CommunityId,
    /// Model version.
    Model,
}

impl Field {
    /// Every field with its names (the first is the canonical one).
    pub const ALL: &'static [(Field, &'static [&'static str])] = &[
        (Field::Src, &["src"]),
        (Field::Dst, &["dst"]),
        (Field::Ip, &["ip", "host"]),
        (Field::Sport, &["sport"]),
        (Field::Dport, &["dport"]),
        (Field::Port, &["port"]),
        (Field::Proto, &["proto"]),
        (Field::Class, &["class"]),
        (Field::Probability, &["p", "probability"]),
        (Field::Anomaly, &["anomaly"]),
        (Field::Percentile, &["percentile"]),
        (Field::Alert, &["alert"]),
        (Field::CommunityId, &["cid", col::COMMUNITY_ID]),
        (Field::Model, &["model"]),
    ];

    /// The field a word names.
    pub fn from_name(s: &str) -> Option<Field> {
        let lower = s.to_ascii_lowercase();
        Field::ALL
            .iter()
            .find(|(_, names)| names.contains(&lower.as_str()))
            .map(|(f, _)| *f)
    }

    /// The canonical name.
    pub fn name(self) -> &'static str {
        Field::ALL
            .iter()
            .find(|(f, _)| *f == self)
            .map_or("?", |(_, n)| n[0])
    }

    /// Whether values are compared as numbers (`<`, `>` allowed).
    fn ordered(self) -> bool {
        matches!(
            self,
            Field::Sport
                | Field::Dport
                | Field::Port
                | Field::Proto
                | Field::Probability
                | Field::Anomaly
                | Field::Percentile
        )
    }
}

/// A comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `=` (or `:`, or nothing).
    Eq,
    /// `!=`.
    Ne,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
}

impl Op {
    fn symbol(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }

    /// `a OP b` for ordered values.
    pub fn holds<T: PartialOrd>(self, a: T, b: T) -> bool {
        match self {
            Op::Eq => a == b,
            Op::Ne => a != b,
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Gt => a > b,
            Op::Ge => a >= b,
        }
    }
}

/// A value, already checked against its field.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// An address or a network: `addr/prefix` (a plain address is a /32 or /128).
    Net(IpAddr, u8),
    /// A number.
    Number(f64),
    /// Text (class, Community ID, model version).
    Text(String),
    /// `true` / `false`.
    Bool(bool),
}

impl Value {
    /// Whether `ip` is inside this network (false for non-network values).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let Value::Net(net, bits) = self else {
            return false;
        };
        match (net, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => prefix_eq(&n.octets(), &a.octets(), *bits),
            (IpAddr::V6(n), IpAddr::V6(a)) => prefix_eq(&n.octets(), &a.octets(), *bits),
            // An IPv4-mapped IPv6 address is the IPv4 address.
            (IpAddr::V4(n), IpAddr::V6(a)) => a
                .to_ipv4_mapped()
                .is_some_and(|a| prefix_eq(&n.octets(), &a.octets(), *bits)),
            (IpAddr::V6(_), IpAddr::V4(_)) => false,
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let (whole, rest) = ((bits / 8) as usize, bits % 8);
    if a[..whole] != b[..whole] {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    a[whole] & mask == b[whole] & mask
}

/// Where a query is wrong and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message} (at character {})", .at + 1)]
pub struct ParseError {
    /// Byte offset of the mistake in the query.
    pub at: usize,
    /// Its length in bytes (at least 1).
    pub len: usize,
    /// What is wrong, and what would be right.
    pub message: String,
}

impl ParseError {
    /// The query with a caret line under the mistake and the message, for a terminal or a
    /// `<pre>` under the search box.
    pub fn pointed(&self, query: &str) -> String {
        let col = query[..self.at.min(query.len())].chars().count();
        let width = query
            .get(self.at..(self.at + self.len).min(query.len()))
            .map_or(1, |s| s.chars().count().max(1));
        format!(
            "{query}\n{}{} {}",
            " ".repeat(col),
            "^".repeat(width),
            self.message
        )
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Word(String),
    Quoted(String),
    Op(Op),
    Colon,
    Open,
    Close,
    Minus,
}

#[derive(Clone, Debug)]
struct Token {
    tok: Tok,
    at: usize,
    len: usize,
}

fn lex(s: &str) -> Result<Vec<Token>, ParseError> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        let tok = match c {
            b'(' => {
                i += 1;
                Tok::Open
            }
            b')' => {
                i += 1;
                Tok::Close
            }
            // `field:value`: a colon right after a field name.
            b':' if out.last().is_some_and(|t: &Token| {
                t.at + t.len == i && matches!(&t.tok, Tok::Word(w) if Field::from_name(w).is_some())
            }) =>
            {
                i += 1;
                Tok::Colon
            }
            b'=' => {
                i += if b.get(i + 1) == Some(&b'=') { 2 } else { 1 };
                Tok::Op(Op::Eq)
            }
            b'!' if b.get(i + 1) == Some(&b'=') => {
                i += 2;
                Tok::Op(Op::Ne)
            }
            b'<' | b'>' => {
                let eq = b.get(i + 1) == Some(&b'=');
                i += if eq { 2 } else { 1 };
                Tok::Op(match (c, eq) {
                    (b'<', false) => Op::Lt,
                    (b'<', true) => Op::Le,
                    (_, false) => Op::Gt,
                    (_, true) => Op::Ge,
                })
            }
            // `-term`: not (a `-` followed by a digit is a negative number).
            b'-' if b
                .get(i + 1)
                .is_some_and(|n| n.is_ascii_alphabetic() || *n == b'(') =>
            {
                i += 1;
                Tok::Minus
            }
            b'"' | b'\'' => {
                let quote = c;
                let mut v = String::new();
                i += 1;
                loop {
                    match b.get(i) {
                        None => {
                            return Err(ParseError {
                                at: start,
                                len: s.len() - start,
                                message: "this quote is never closed".into(),
                            })
                        }
                        Some(&q) if q == quote => {
                            i += 1;
                            break;
                        }
                        Some(b'\\') if b.get(i + 1).is_some() => {
                            let ch = s[i + 1..].chars().next().unwrap_or('\\');
                            v.push(ch);
                            i += 1 + ch.len_utf8();
                        }
                        Some(_) => {
                            let ch = s[i..].chars().next().unwrap_or(' ');
                            v.push(ch);
                            i += ch.len_utf8();
                        }
                    }
                }
                Tok::Quoted(v)
            }
            _ => {
                let ends_word = |i: usize| {
                    b[i].is_ascii_whitespace()
                        || matches!(b[i], b'(' | b')' | b'"' | b'\'' | b'=' | b'<' | b'>')
                        || (b[i] == b'!' && b.get(i + 1) == Some(&b'='))
                };
                while i < b.len() && !ends_word(i) {
                    // A colon right after a field name is the `field:value` form.
                    if b[i] == b':' && Field::from_name(&s[start..i]).is_some() {
                        break;
                    }
                    i += 1;
                }
                if i == start {
                    let ch = s[i..].chars().next().unwrap_or('?');
                    return Err(ParseError {
                        at: i,
                        len: ch.len_utf8(),
                        message: format!("unexpected {ch:?}"),
                    });
                }
                Tok::Word(s[start..i].to_string())
            }
        };
        out.push(Token {
            tok,
            at: start,
            len: i - start,
        });
    }
    Ok(out)
}

struct Parser<'a> {
    src: &'a str,
    toks: Vec<Token>,
    pos: usize,
    /// Parentheses open at this point.
    depth: usize,
    /// Terms read so far.
    terms: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.toks.get(self.pos)
    }

    fn keyword(&self, k: &str) -> bool {
        matches!(self.peek(), Some(Token { tok: Tok::Word(w), .. }) if w.eq_ignore_ascii_case(k))
    }

    fn end(&self) -> ParseError {
        ParseError {
            at: self.src.len(),
            len: 1,
            message: "the query ends here, but a value or a term is missing".into(),
        }
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        let mut items = vec![self.and()?];
        while self.keyword("or") {
            self.pos += 1;
            items.push(self.and()?);
        }
        Ok(Expr::any(items))
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut items = vec![self.not()?];
        loop {
            if self.keyword("and") {
                self.pos += 1;
            } else if self.peek().is_none()
                || self.keyword("or")
                || matches!(
                    self.peek(),
                    Some(Token {
                        tok: Tok::Close,
                        ..
                    })
                )
            {
                return Ok(Expr::all(items));
            }
            // Two terms side by side: `and`.
            items.push(self.not()?);
        }
    }

    /// A run of `not` (or `-`) is decided by its parity, without recursing on its length.
    fn not(&mut self) -> Result<Expr, ParseError> {
        let mut negate = false;
        while self.keyword("not")
            || matches!(
                self.peek(),
                Some(Token {
                    tok: Tok::Minus,
                    ..
                })
            )
        {
            self.pos += 1;
            negate = !negate;
        }
        let e = self.atom()?;
        Ok(if negate { Expr::negate(e) } else { e })
    }

    fn atom(&mut self) -> Result<Expr, ParseError> {
        let Some(t) = self.peek().cloned() else {
            return Err(self.end());
        };
        match &t.tok {
            Tok::Open => {
                if self.depth >= MAX_NESTING {
                    return Err(ParseError {
                        at: t.at,
                        len: 1,
                        message: format!(
                            "more than {MAX_NESTING} nested `(`: the limit is {MAX_NESTING} levels"
                        ),
                    });
                }
                self.pos += 1;
                self.depth += 1;
                let e = self.or()?;
                self.depth -= 1;
                match self.peek() {
                    Some(Token {
                        tok: Tok::Close, ..
                    }) => {
                        self.pos += 1;
                        Ok(e)
                    }
                    Some(o) => Err(ParseError {
                        at: o.at,
                        len: o.len,
                        message: "expected `)` to close the `(` before it, or `and`/`or`".into(),
                    }),
                    None => Err(ParseError {
                        at: t.at,
                        len: 1,
                        message: "this `(` is never closed".into(),
                    }),
                }
            }
            Tok::Word(w) => {
                let Some(field) = Field::from_name(w) else {
                    let names: Vec<&str> = Field::ALL.iter().map(|(_, n)| n[0]).collect();
                    return Err(ParseError {
                        at: t.at,
                        len: t.len,
                        message: format!(
                            "unknown field {w:?}: a term is a field and a value, fields are {}",
                            names.join(", ")
                        ),
                    });
                };
                self.terms += 1;
                if self.terms > MAX_TERMS {
                    return Err(ParseError {
                        at: t.at,
                        len: t.len,
                        message: format!(
                            "more than {MAX_TERMS} terms: the limit is {MAX_TERMS} terms per query"
                        ),
                    });
                }
                self.pos += 1;
                let op = match self.peek().map(|t| t.tok.clone()) {
                    Some(Tok::Op(op)) => {
                        self.pos += 1;
                        op
                    }
                    Some(Tok::Colon) => {
                        self.pos += 1;
                        Op::Eq
                    }
                    _ => Op::Eq,
                };
                let op_tok = self.toks.get(self.pos.saturating_sub(1)).cloned();
                if !field.ordered() && !matches!(op, Op::Eq | Op::Ne) {
                    let o = op_tok.unwrap_or(t.clone());
                    return Err(ParseError {
                        at: o.at,
                        len: o.len,
                        message: format!(
                            "{} is not a number: only `=` and `!=` compare it",
                            field.name()
                        ),
                    });
                }
                let Some(v) = self.peek().cloned() else {
                    return Err(ParseError {
                        message: format!("{} needs a value", field.name()),
                        ..self.end()
                    });
                };
                let text = match &v.tok {
                    Tok::Word(s) | Tok::Quoted(s) => s.clone(),
                    _ => {
                        return Err(ParseError {
                            at: v.at,
                            len: v.len,
                            message: format!("{} needs a value here", field.name()),
                        })
                    }
                };
                self.pos += 1;
                let value = value(field, &text).map_err(|message| ParseError {
                    at: v.at,
                    len: v.len,
                    message,
                })?;
                Ok(Expr::Term(Term { field, op, value }))
            }
            _ => Err(ParseError {
                at: t.at,
                len: t.len,
                message: "expected a term (a field and a value, such as `src 10.0.0.0/8`)".into(),
            }),
        }
    }
}

/// A value for a field, or why it is not one.
fn value(field: Field, s: &str) -> Result<Value, String> {
    match field {
        Field::Src | Field::Dst | Field::Ip => net(s),
        Field::Sport | Field::Dport | Field::Port => s
            .parse::<u16>()
            .map(|p| Value::Number(f64::from(p)))
            .map_err(|_| format!("{s:?} is not a port (0-65535)")),
        Field::Proto => match s.to_ascii_lowercase().as_str() {
            "tcp" => Ok(Value::Number(6.0)),
            "udp" => Ok(Value::Number(17.0)),
            "icmp" => Ok(Value::Number(1.0)),
            "icmp6" | "ipv6-icmp" => Ok(Value::Number(58.0)),
            "sctp" => Ok(Value::Number(132.0)),
            n => n
                .parse::<u8>()
                .map(|p| Value::Number(f64::from(p)))
                .map_err(|_| format!("{s:?} is not a protocol: tcp, udp, icmp, icmp6 or 0-255")),
        },
        Field::Probability => number(s).and_then(|p| {
            if (0.0..=1.0).contains(&p) {
                Ok(Value::Number(p))
            } else {
                Err(format!("{s} is not a probability (0 to 1)"))
            }
        }),
        Field::Percentile => number(s).and_then(|p| {
            if (0.0..=100.0).contains(&p) {
                Ok(Value::Number(p))
            } else {
                Err(format!("{s} is not a percentile (0 to 100)"))
            }
        }),
        Field::Anomaly => number(s).map(Value::Number),
        Field::Alert => match s.to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Ok(Value::Bool(true)),
            "false" | "no" | "0" => Ok(Value::Bool(false)),
            _ => Err(format!("{s:?}: alert is true or false")),
        },
        Field::Class | Field::CommunityId | Field::Model => Ok(Value::Text(s.to_string())),
    }
}

fn number(s: &str) -> Result<f64, String> {
    s.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| format!("{s:?} is not a number"))
}

/// An address or CIDR (`10.0.0.0/8`, `2001:db8::/32`, `10.1.2.3`).
fn net(s: &str) -> Result<Value, String> {
    let (addr, bits) = match s.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    };
    let ip: IpAddr = addr.parse().map_err(|_| {
        format!("{s:?} is not an IP address or network (10.0.0.0/8, 2001:db8::/32)")
    })?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let bits = match bits {
        None => max,
        Some(b) => b.parse::<u8>().ok().filter(|b| *b <= max).ok_or_else(|| {
            format!(
                "/{b} is not a prefix length of an IPv{} network (0-{max})",
                if max == 32 { 4 } else { 6 }
            )
        })?,
    };
    Ok(Value::Net(ip, bits))
}

impl Query {
    /// Parse what an analyst typed. Whitespace only is the empty query.
    pub fn parse(s: &str) -> Result<Query, ParseError> {
        if s.len() > MAX_QUERY_BYTES {
            return Err(ParseError {
                at: 0,
                len: s.len(),
                message: format!(
                    "the query is {} bytes: the limit is {MAX_QUERY_BYTES} bytes",
                    s.len()
                ),
            });
        }
        let toks = lex(s)?;
        if toks.is_empty() {
            return Ok(Query::default());
        }
        let mut p = Parser {
            src: s,
            toks,
            pos: 0,
            depth: 0,
            terms: 0,
        };
        let e = p.or()?;
        if let Some(t) = p.peek() {
            return Err(ParseError {
                at: t.at,
                len: t.len,
                message: "unexpected here: a `)` without its `(`?".into(),
            });
        }
        Ok(Query { expr: Some(e) })
    }

    /// This query and `term` (clicking a value to filter on it).
    pub fn and(&self, term: Term) -> Query {
        self.with(Expr::Term(term))
    }

    /// This query and not `term` (clicking a value to exclude it).
    pub fn and_not(&self, term: Term) -> Query {
        self.with(Expr::negate(Expr::Term(term)))
    }

    fn with(&self, e: Expr) -> Query {
        Query {
            expr: Some(match &self.expr {
                None => e,
                Some(cur) => Expr::all(vec![cur.clone(), e]),
            }),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Net(ip, bits) if *bits == if ip.is_ipv4() { 32 } else { 128 } => {
                write!(f, "{ip}")
            }
            Value::Net(ip, bits) => write!(f, "{ip}/{bits}"),
            Value::Number(n) => write!(f, "{n}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Text(t) => {
                // Unquoted only where it reads back as this word: not a keyword, and not
                // starting with `-` (which reads as `not`; found by the fuzz target).
                if !t.is_empty()
                    && t.chars()
                        .all(|c| c.is_alphanumeric() || "._-+:/".contains(c))
                    && !t.starts_with('-')
                    && !["and", "or", "not"].contains(&t.to_ascii_lowercase().as_str())
                {
                    write!(f, "{t}")
                } else {
                    write!(f, "\"{}\"", t.replace('\\', "\\\\").replace('"', "\\\""))
                }
            }
        }
    }
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.op {
            Op::Eq => write!(f, "{} {}", self.field.name(), self.value),
            op => write!(f, "{} {} {}", self.field.name(), op.symbol(), self.value),
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let joined = |f: &mut fmt::Formatter<'_>, items: &[Expr], word: &str| {
            for (i, e) in items.iter().enumerate() {
                if i > 0 {
                    write!(f, " {word} ")?;
                }
                // `and` binds tighter than `or`: an `or` inside an `and` keeps its parentheses
                // (and so does anything that would flatten into its parent when read back).
                match (e, word) {
                    (Expr::Or(_), "and") | (Expr::And(_), "and") | (Expr::Or(_), "or") => {
                        write!(f, "({e})")?
                    }
                    _ => write!(f, "{e}")?,
                }
            }
            Ok(())
        };
        match self {
            Expr::Term(t) => write!(f, "{t}"),
            Expr::Not(e) => match **e {
                Expr::Term(_) => write!(f, "not {e}"),
                _ => write!(f, "not ({e})"),
            },
            Expr::And(items) => joined(f, items, "and"),
            Expr::Or(items) => joined(f, items, "or"),
        }
    }
}

/// The canonical text of a query: what the URL carries; parsing it gives the same query.
impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.expr {
            None => Ok(()),
            Some(e) => write!(f, "{e}"),
        }
    }
}

#[cfg(test)]
mod tests;
