//! Benign traffic that comes in bursts: scripted HTTP clients polling one API, load-balancer
//! health checks, syslog/statsd/metrics datagrams to one collector, a host resolving many
//! names, and the same over loopback (127.0.0.1 on both ends, as a developer's machine
//! captures it).
//!
//! To the context features (flows per source or destination in the last 30 s) these look like
//! scans, floods and probing: many short flows from one host to one server or one port. They
//! are here so that a model learns that a burst alone is not an attack; what the requests
//! carry and how the server answers is what tells them apart.

use std::net::Ipv4Addr;

use crate::net::{Capture, Tcp};
use crate::{Net, NORMAL, SECOND};

const LOOPBACK: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// Scripted HTTP clients' user agents.
const CLIENTS: &[&str] = &[
    "curl/8.5.0",
    "curl/7.88.1",
    "python-requests/2.31.0",
    "Go-http-client/1.1",
    "Prometheus/2.51.0",
    "kube-probe/1.29",
    "Wget/1.21.4",
    "okhttp/4.12.0",
    "axios/1.6.8",
];

const SERVERS: &[&str] = &[
    "SimpleHTTP/0.6 Python/3.12.3",
    "nginx/1.24.0",
    "uvicorn",
    "gunicorn",
    "Apache/2.4.58 (Ubuntu)",
    "Jetty(9.4.53.v20231009)",
];

const ENDPOINTS: &[&str] = &[
    "/",
    "/api/v1/status",
    "/api/v1/items",
    "/metrics",
    "/healthz",
    "/index.html",
    "/api/orders",
    "/v2/_catalog",
    "/api/v1/query",
    "/graphql",
    "/data.json",
    "/ping",
    "/api/users/me",
];

fn gap(cap: &mut Capture, per_second: f64) -> i64 {
    (cap.rng.exp(1.0 / per_second) * SECOND as f64).max(1_000.0) as i64
}

/// A client and server for a burst: two LAN hosts, one LAN host and a public server, or
/// loopback on both ends.
fn ends(cap: &mut Capture, net: &Net) -> (Ipv4Addr, Ipv4Addr, i64) {
    match cap.rng.below(10) {
        0..=2 => (LOOPBACK, LOOPBACK, 40_000),
        3..=6 => (net.lan(cap), net.lan(cap), 300_000),
        _ => (
            net.lan(cap),
            net.public(cap),
            (cap.rng.lognormal(30.0, 0.6) * 1e6) as i64,
        ),
    }
}

/// A scripted client's request.
fn request(cap: &mut Capture, ua: &str, host: &str, path: &str, close: bool) -> Vec<u8> {
    let conn = if close { "close" } else { "keep-alive" };
    let post = cap.rng.chance(0.15);
    let mut r = format!(
        "{} {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {ua}\r\nAccept: */*\r\nConnection: {conn}\r\n",
        if post { "POST" } else { "GET" }
    );
    if post {
        let body = format!(
            "{{\"id\":{},\"name\":\"{}\",\"ok\":true}}",
            cap.rng.below(100_000),
            cap.rng.word(8)
        );
        r.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ));
    } else {
        r.push_str("\r\n");
    }
    r.into_bytes()
}

/// A server's answer: mostly 200 with JSON or HTML, sometimes 204/304, rarely 404.
fn response(cap: &mut Capture, server: &str) -> Vec<u8> {
    let status = match cap.rng.below(100) {
        0..=1 => "404 Not Found",
        2..=6 => "304 Not Modified",
        7..=9 => "204 No Content",
        _ => "200 OK",
    };
    let body = if status.starts_with("200") {
        if cap.rng.chance(0.7) {
            let n = cap.rng.lognormal(400.0, 1.0).clamp(20.0, 200_000.0) as usize;
            let mut s = String::from("{\"items\":[");
            while s.len() < n {
                s.push_str(&format!(
                    "{{\"id\":{},\"value\":\"{}\"}},",
                    cap.rng.below(1_000_000),
                    cap.rng.word(6)
                ));
            }
            s.push_str("{}]}");
            s.into_bytes()
        } else {
            let n = cap.rng.lognormal(3_000.0, 1.0).clamp(100.0, 500_000.0) as usize;
            crate::normal::html(cap, n)
        }
    } else if status.starts_with("404") {
        b"<html><body><h1>404 Not Found</h1></body></html>".to_vec()
    } else {
        Vec::new()
    };
    let mut v = format!(
        "HTTP/1.1 {status}\r\nServer: {server}\r\nDate: Mon, 23 Nov 2026 14:00:00 GMT\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    v.extend_from_slice(&body);
    v
}

/// A scripted client polling one HTTP API: tens to hundreds of short connections (one or a
/// few requests each) at a steady or bursty rate.
pub fn api_polling(cap: &mut Capture, net: &Net, t0: i64, t1: i64) {
    let (client, server, rtt) = ends(cap, net);
    let port = cap
        .rng
        .pick(&[80u16, 8080, 8000, 8765, 3000, 5000, 9200, 8888, 443]);
    let ua = cap.rng.pick(CLIENTS);
    let sv = cap.rng.pick(SERVERS);
    let host = if server == LOOPBACK {
        format!("127.0.0.1:{port}")
    } else {
        format!("{server}:{port}")
    };
    let n = cap.rng.range(15, 400);
    let rate = cap.rng.lognormal(2.0, 1.3).clamp(0.05, 60.0);
    let per_conn = if cap.rng.chance(0.6) {
        1
    } else {
        cap.rng.range(2, 20)
    };
    let paths: Vec<&str> = (0..cap.rng.range(1, 5))
        .map(|_| cap.rng.pick(ENDPOINTS))
        .collect();
    let mut t = t0;
    for _ in 0..n {
        if t >= t1 {
            break;
        }
        let mut c = Tcp::open(cap, client, server, port, t, rtt, NORMAL);
        for i in 0..per_conn {
            let path = cap.rng.pick(&paths);
            let rq = request(cap, ua, &host, path, i + 1 == per_conn);
            let rs = response(cap, sv);
            let think = (cap.rng.lognormal(2.0, 1.0) * 1e6) as i64;
            c.exchange(cap, &rq, &rs, think);
        }
        let by_client = cap.rng.chance(0.5);
        c.close(cap, by_client);
        t += gap(cap, rate);
    }
}

/// A load balancer checking the health of a few backends every few seconds.
pub fn health_checks(cap: &mut Capture, net: &Net, t0: i64, t1: i64) {
    let lb = net.lan(cap);
    let backends: Vec<Ipv4Addr> = (0..cap.rng.range(2, 12)).map(|_| net.lan(cap)).collect();
    let port = cap.rng.pick(&[80u16, 8080, 8000, 9000, 3000]);
    let path = cap
        .rng
        .pick(&["/health", "/healthz", "/ready", "/status", "/"]);
    let ua = cap
        .rng
        .pick(&["ELB-HealthChecker/2.0", "kube-probe/1.29", "HAProxy"]);
    let sv = cap.rng.pick(SERVERS);
    let every = cap.rng.range(2, 30) as i64 * SECOND;
    let mut t = t0;
    while t < t1 {
        for &b in &backends {
            let mut c = Tcp::open(cap, lb, b, port, t, 300_000, NORMAL);
            let rq = request(cap, ua, &b.to_string(), path, true);
            let body = b"{\"status\":\"UP\"}";
            let rs = format!(
                "HTTP/1.1 200 OK\r\nServer: {sv}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{{\"status\":\"UP\"}}",
                body.len()
            );
            c.exchange(cap, &rq, rs.as_bytes(), 1_000_000);
            c.close(cap, false);
            t += cap.rng.below(50_000_000) as i64;
        }
        t += every;
    }
}

/// Logs and metrics over UDP to one collector: syslog, statsd, GELF or plain JSON lines.
/// Each sender either keeps one socket (one flow) or opens one per message (a flow each).
pub fn udp_telemetry(cap: &mut Capture, net: &Net, t0: i64, t1: i64) {
    let (client, server, _) = ends(cap, net);
    let (port, kind) = cap.rng.pick(&[
        (514u16, 0u8),
        (8125, 1),
        (12201, 2),
        (9999, 2),
        (5140, 0),
        (8094, 1),
        (25826, 1),
    ]);
    let n = cap.rng.range(10, 1500);
    let rate = cap.rng.lognormal(3.0, 1.3).clamp(0.1, 400.0);
    let fresh_socket = cap.rng.chance(0.5);
    let app = cap
        .rng
        .pick(&["nginx", "app", "worker", "sshd", "cron", "api", "db"]);
    let mut sport = cap.port();
    let mut labelled = false;
    let mut t = t0;
    for i in 0..n {
        if t >= t1 {
            break;
        }
        if fresh_socket || !labelled {
            if fresh_socket && i > 0 {
                sport = cap.port();
            }
            cap.label(client, sport, server, port, 17, NORMAL);
            labelled = true;
        }
        let msg = match kind {
            0 => format!(
                "<{}>Nov 23 14:{:02}:{:02} host{} {app}[{}]: {} {} {}",
                cap.rng.pick(&[134u32, 30, 86, 38, 14]),
                cap.rng.below(60),
                cap.rng.below(60),
                cap.rng.below(20),
                cap.rng.range(100, 40_000),
                cap.rng.pick(&["request", "connection", "session", "job"]),
                cap.rng.pick(&["accepted", "closed", "finished", "started"]),
                cap.rng.word(10)
            ),
            1 => format!(
                "{app}.{}.{}:{}|{}",
                cap.rng.pick(&["requests", "latency", "errors", "bytes", "queue"]),
                cap.rng.pick(&["count", "p99", "total", "depth"]),
                cap.rng.below(5000),
                cap.rng.pick(&["c", "ms", "g"])
            ),
            _ => format!(
                "{{\"version\":\"1.1\",\"host\":\"{}\",\"short_message\":\"{} {}\",\"level\":{},\"_app\":\"{app}\"}}",
                cap.rng.word(8),
                cap.rng.pick(&["GET", "POST", "job", "tick"]),
                cap.rng.word(12),
                cap.rng.range(1, 7)
            ),
        };
        cap.udp(t, client, sport, server, port, msg.as_bytes());
        t += gap(cap, rate);
    }
}

/// A busy host (mail server, crawler, CI runner) resolving many names in a short time.
pub fn dns_burst(cap: &mut Capture, net: &Net, t0: i64, t1: i64) {
    let client = net.lan(cap);
    let n = cap.rng.range(20, 600);
    let rate = cap.rng.lognormal(5.0, 1.0).clamp(0.5, 200.0);
    let mut t = t0;
    for _ in 0..n {
        if t >= t1 {
            break;
        }
        let name = crate::normal::site(cap);
        let answer = net.public(cap);
        crate::normal::dns_lookup(cap, net, client, t, &name, answer);
        t += gap(cap, rate);
    }
}

/// `n` bursts of any of the kinds above, each starting somewhere in `[t0, t1)`.
pub fn bursts(cap: &mut Capture, net: &Net, n: u64, t0: i64, t1: i64) {
    for _ in 0..n {
        let start = t0 + cap.rng.below(((t1 - t0) / 2).max(1) as u64) as i64;
        match cap.rng.below(8) {
            0..=2 => api_polling(cap, net, start, t1),
            3 => health_checks(cap, net, start, t1),
            4..=6 => udp_telemetry(cap, net, start, t1),
            _ => dns_burst(cap, net, start, t1),
        }
    }
}

/// A person or script trying a few attack URLs by hand in the middle of ordinary requests to
/// the same server, one connection per request (curl-style): tens of benign flows (Normal) and
/// one to five that carry `attack_path` (labelled `class`). The context features of both are
/// alike; only the payload tells them apart.
pub fn mixed_probe(
    cap: &mut Capture,
    net: &Net,
    t0: i64,
    class: impl Into<&'static str>,
    mut attack_path: impl FnMut(&mut Capture) -> String,
) {
    let class: &'static str = class.into();
    let (client, server, rtt) = ends(cap, net);
    let port = cap.rng.pick(&[80u16, 8080, 8000, 8765, 3000, 5000, 8888]);
    let ua = cap.rng.pick(CLIENTS);
    let sv = cap.rng.pick(SERVERS);
    let host = format!("{server}:{port}");
    let benign = cap.rng.range(5, 60);
    let attacks = cap.rng.range(1, 6);
    let rate = cap.rng.lognormal(2.0, 1.0).clamp(0.1, 30.0);
    let paths: Vec<&str> = (0..cap.rng.range(1, 5))
        .map(|_| cap.rng.pick(ENDPOINTS))
        .collect();
    let mut t = t0;
    let (mut b, mut a) = (benign, attacks);
    while b + a > 0 {
        let attack = a > 0 && (b == 0 || cap.rng.below(b + a) < a);
        let label = if attack { class } else { NORMAL };
        let mut c = Tcp::open(cap, client, server, port, t, rtt, label);
        let path = if attack {
            a -= 1;
            attack_path(cap)
        } else {
            b -= 1;
            cap.rng.pick(&paths).to_string()
        };
        let rq = request(cap, ua, &host, &path, true);
        let rs = response(cap, sv);
        let think = (cap.rng.lognormal(2.0, 1.0) * 1e6) as i64;
        c.exchange(cap, &rq, &rs, think);
        c.close(cap, false);
        t += gap(cap, rate);
    }
}
