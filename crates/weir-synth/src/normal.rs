//! Benign traffic: DNS lookups, web browsing over HTTP and TLS, SSH sessions, NTP and pings,
//! with log-normal sizes and exponential think times.

use std::net::Ipv4Addr;

use crate::net::{Capture, Tcp};
use crate::{Net, NORMAL, SECOND};

const WORDS: &[&str] = &[
    "the", "network", "service", "data", "report", "page", "news", "weather", "account", "update",
    "product", "search", "music", "video", "image", "travel", "price", "order", "help", "about",
    "contact", "login", "home", "blog", "event", "team", "project", "release", "support", "shop",
];

/// Text that looks like a web page: tags and words.
pub fn html(cap: &mut Capture, len: usize) -> Vec<u8> {
    let mut s = String::from("<!DOCTYPE html><html><head><title>");
    s.push_str(cap.rng.pick(WORDS));
    s.push_str("</title></head><body>\n");
    while s.len() < len {
        let tag = cap.rng.pick(&["p", "div", "li", "span", "a", "h2"]);
        s.push('<');
        s.push_str(tag);
        s.push('>');
        for _ in 0..cap.rng.range(3, 14) {
            s.push_str(cap.rng.pick(WORDS));
            s.push(' ');
        }
        s.push_str("</");
        s.push_str(tag);
        s.push_str(">\n");
    }
    s.truncate(len);
    s.into_bytes()
}

/// A browser's user agent.
pub fn user_agent(cap: &mut Capture) -> &'static str {
    cap.rng.pick(&[
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
        "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    ])
}

/// An HTTP/1.1 request.
pub fn http_request(
    cap: &mut Capture,
    method: &str,
    host: &str,
    path: &str,
    body: &[u8],
) -> Vec<u8> {
    let ua = user_agent(cap);
    let mut r = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {ua}\r\nAccept: text/html,application/xhtml+xml,*/*;q=0.8\r\nAccept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\n"
    );
    if !body.is_empty() {
        r.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    r.push_str("\r\n");
    let mut v = r.into_bytes();
    v.extend_from_slice(body);
    v
}

/// An HTTP/1.1 response with an HTML body of `len` bytes.
pub fn http_response(cap: &mut Capture, status: &str, len: usize) -> Vec<u8> {
    let body = html(cap, len);
    let mut v = format!(
        "HTTP/1.1 {status}\r\nServer: nginx/1.24.0\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nCache-Control: max-age=600\r\n\r\n",
        body.len()
    )
    .into_bytes();
    v.extend_from_slice(&body);
    v
}

/// A DNS query (or its answer) for `name`.
pub fn dns_message(id: u16, name: &str, answer: Option<Ipv4Addr>) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend_from_slice(if answer.is_some() {
        &[0x81, 0x80]
    } else {
        &[0x01, 0x00]
    });
    m.extend_from_slice(&[0, 1, 0, u8::from(answer.is_some()), 0, 0, 0, 0]);
    for label in name.split('.') {
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.extend_from_slice(&[0, 0, 1, 0, 1]);
    if let Some(a) = answer {
        m.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4]);
        m.extend_from_slice(&a.octets());
    }
    m
}

/// A site name.
pub fn site(cap: &mut Capture) -> String {
    let tld = cap.rng.pick(&["com", "org", "net", "io", "de", "co.uk"]);
    format!("www.{}{}.{tld}", cap.rng.pick(WORDS), cap.rng.word(3))
}

/// A DNS lookup from `client`; returns the time the answer arrived.
pub fn dns_lookup(
    cap: &mut Capture,
    net: &Net,
    client: Ipv4Addr,
    t: i64,
    name: &str,
    answer: Ipv4Addr,
) -> i64 {
    let port = cap.port();
    let id = cap.rng.next_u32() as u16;
    cap.label(client, port, net.resolver, 53, 17, NORMAL);
    cap.udp(
        t,
        client,
        port,
        net.resolver,
        53,
        &dns_message(id, name, None),
    );
    let rt = t + (cap.rng.lognormal(8.0, 0.8) * 1e6) as i64;
    cap.udp(
        rt,
        net.resolver,
        53,
        client,
        port,
        &dns_message(id, name, Some(answer)),
    );
    rt
}

/// A TLS record header and `n` random bytes.
pub fn tls_record(cap: &mut Capture, kind: u8, n: usize) -> Vec<u8> {
    let mut v = vec![kind, 3, 3, (n >> 8) as u8, n as u8];
    if kind == 0x16 {
        v.push(1);
    }
    v.extend(cap.rng.bytes(n));
    v
}

/// One HTTPS connection with a few request/response exchanges.
pub fn tls_conn(
    cap: &mut Capture,
    client: Ipv4Addr,
    server: Ipv4Addr,
    t: i64,
    exchanges: u64,
    big: bool,
) -> i64 {
    let rtt = (cap.rng.lognormal(30.0, 0.6) * 1e6) as i64;
    let mut c = Tcp::open(cap, client, server, 443, t, rtt, NORMAL);
    let (h, k) = (cap.rng.range(220, 560), cap.rng.range(2400, 5200));
    let hello = tls_record(cap, 0x16, h as usize);
    let cert = tls_record(cap, 0x16, k as usize);
    c.exchange(cap, &hello, &cert, 2_000_000);
    let fin = tls_record(cap, 0x14, 60);
    c.send(cap, true, &fin);
    for _ in 0..exchanges {
        let n = cap.rng.lognormal(500.0, 0.5) as usize;
        let rq = tls_record(cap, 0x17, n);
        let median = if big { 400_000.0 } else { 9_000.0 };
        let n = (cap.rng.lognormal(median, 1.2) as usize).min(3_000_000);
        let rs = tls_record(cap, 0x17, n);
        let think = (cap.rng.lognormal(40.0, 0.7) * 1e6) as i64;
        c.exchange(cap, &rq, &rs, think);
        c.wait((cap.rng.exp(3.0) * SECOND as f64) as i64);
    }
    let by_client = cap.rng.chance(0.6);
    c.close(cap, by_client);
    c.t
}

/// One plain-HTTP connection with keep-alive requests.
pub fn http_conn(
    cap: &mut Capture,
    client: Ipv4Addr,
    server: Ipv4Addr,
    host: &str,
    t: i64,
    requests: u64,
) -> i64 {
    let rtt = (cap.rng.lognormal(30.0, 0.6) * 1e6) as i64;
    let mut c = Tcp::open(cap, client, server, 80, t, rtt, NORMAL);
    for i in 0..requests {
        let path = if i == 0 {
            "/".to_string()
        } else {
            format!(
                "/{}/{}.{}",
                cap.rng.pick(WORDS),
                cap.rng.word(6),
                cap.rng.pick(&["html", "css", "js", "png"])
            )
        };
        let rq = http_request(cap, "GET", host, &path, &[]);
        let len = (cap.rng.lognormal(6_000.0, 1.3) as usize).clamp(200, 1_500_000);
        let rs = http_response(cap, "200 OK", len);
        let think = (cap.rng.lognormal(25.0, 0.7) * 1e6) as i64;
        c.exchange(cap, &rq, &rs, think);
        c.wait((cap.rng.exp(1.5) * SECOND as f64) as i64);
    }
    let by_client = cap.rng.chance(0.5);
    c.close(cap, by_client);
    c.t
}

/// An interactive SSH session: banners, key exchange, then keystrokes and echoes.
pub fn ssh_session(
    cap: &mut Capture,
    client: Ipv4Addr,
    server: Ipv4Addr,
    t: i64,
    keystrokes: u64,
) -> i64 {
    let rtt = (cap.rng.lognormal(20.0, 0.6) * 1e6) as i64;
    let mut c = Tcp::open(cap, client, server, 22, t, rtt, NORMAL);
    c.exchange(
        cap,
        b"SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13\r\n",
        b"SSH-2.0-OpenSSH_8.9p1 Debian-3\r\n",
        1_000_000,
    );
    ssh_kex(cap, &mut c);
    for _ in 0..keystrokes {
        let k = ssh_packet(cap, 36);
        let n = if cap.rng.chance(0.1) {
            cap.rng.range(100, 3000) as usize
        } else {
            36
        };
        let e = ssh_packet(cap, n);
        c.exchange(cap, &k, &e, 200_000);
        c.wait((cap.rng.lognormal(0.25, 0.9) * SECOND as f64) as i64);
    }
    c.close(cap, true);
    c.t
}

/// SSH key exchange: KEXINIT lists (text), then the DH packets and NEWKEYS.
pub fn ssh_kex(cap: &mut Capture, c: &mut Tcp) {
    let algs = b"curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,diffie-hellman-group-exchange-sha256,ssh-ed25519,ecdsa-sha2-nistp256,rsa-sha2-512,chacha20-poly1305@openssh.com,aes128-ctr,aes256-gcm@openssh.com,umac-64-etm@openssh.com,hmac-sha2-256-etm@openssh.com,none,zlib@openssh.com";
    let mut kex = vec![0, 0, 5, 0xdc, 8, 20];
    kex.extend(cap.rng.bytes(16));
    kex.extend_from_slice(algs);
    let skex = kex.clone();
    c.exchange(cap, &kex, &skex, 1_000_000);
    let dh = ssh_packet(cap, 48);
    let n = cap.rng.range(560, 1100) as usize;
    let reply = ssh_packet(cap, n);
    c.exchange(cap, &dh, &reply, 3_000_000);
    let nk = ssh_packet(cap, 16);
    c.send(cap, true, &nk);
}

/// An encrypted SSH packet of `n` bytes.
pub fn ssh_packet(cap: &mut Capture, n: usize) -> Vec<u8> {
    cap.rng.bytes(n)
}

/// Echo requests and replies.
pub fn ping(
    cap: &mut Capture,
    client: Ipv4Addr,
    server: Ipv4Addr,
    t: i64,
    n: u16,
    class: impl Into<&'static str>,
) {
    let class: &'static str = class.into();
    let id = cap.rng.next_u32() as u16;
    cap.label(client, 0, server, 0, 1, class);
    let data: Vec<u8> = (0..56u8).collect();
    for seq in 0..n {
        let ts = t + i64::from(seq) * SECOND;
        cap.icmp(ts, client, server, 8, 0, id, seq, &data);
        cap.icmp(ts + 15_000_000, server, client, 0, 0, id, seq, &data);
    }
}

/// NTP client/server exchange.
pub fn ntp(cap: &mut Capture, client: Ipv4Addr, server: Ipv4Addr, t: i64) {
    let port = cap.port();
    cap.label(client, port, server, 123, 17, NORMAL);
    let mut q = vec![0x23, 0, 6, 0xec];
    q.extend(vec![0; 36]);
    q.extend(cap.rng.bytes(8));
    let mut r = vec![0x24, 2, 6, 0xe9];
    r.extend(cap.rng.bytes(44));
    cap.udp(t, client, port, server, 123, &q);
    cap.udp(t + 25_000_000, server, 123, client, port, &r);
}

/// One client's activity between `t0` and `t1`: browsing (DNS, then HTTPS or HTTP), now and
/// then an SSH session, NTP and a ping.
pub fn client_activity(cap: &mut Capture, net: &Net, client: Ipv4Addr, t0: i64, t1: i64) {
    let mut t = t0 + (cap.rng.exp(5.0) * SECOND as f64) as i64;
    while t < t1 {
        let host = site(cap);
        let server = net.public(cap);
        t = dns_lookup(cap, net, client, t, &host, server);
        let conns = cap.rng.range(1, 4);
        let mut end = t;
        for _ in 0..conns {
            let start = t + cap.rng.below(300_000_000) as i64;
            let e = if cap.rng.chance(0.75) {
                let big = cap.rng.chance(0.08);
                let n = cap.rng.range(1, 8);
                tls_conn(cap, client, server, start, n, big)
            } else {
                let n = cap.rng.range(1, 6);
                http_conn(cap, client, server, &host, start, n)
            };
            end = end.max(e);
        }
        match cap.rng.below(12) {
            0 => {
                let server = net.public(cap);
                let n = cap.rng.range(20, 200);
                end = end.max(ssh_session(cap, client, server, t, n));
            }
            1 => {
                let s = net.public(cap);
                ntp(cap, client, s, t)
            }
            2 => {
                let s = net.public(cap);
                let n = cap.rng.range(1, 5) as u16;
                ping(cap, client, s, t, n, NORMAL);
            }
            _ => {}
        }
        t = t.max(end.min(t + 60 * SECOND)) + (cap.rng.exp(12.0) * SECOND as f64) as i64;
    }
}

/// Background traffic of `clients` LAN hosts between `t0` and `t1`.
pub fn background(cap: &mut Capture, net: &Net, clients: u64, t0: i64, t1: i64) {
    for _ in 0..clients {
        let c = net.lan(cap);
        client_activity(cap, net, c, t0, t1);
    }
}
