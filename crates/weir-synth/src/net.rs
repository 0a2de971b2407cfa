//! Packets and conversations: Ethernet/IPv4 frames with correct checksums, TCP conversations
//! with handshakes, segmentation, ACKs and closes, and a PCAP writer.

use std::net::Ipv4Addr;

use crate::rng::Rng;

/// A flow's label as the generator knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    /// Initiator address.
    pub src: Ipv4Addr,
    /// Initiator port (0 for ICMP).
    pub sport: u16,
    /// Responder address.
    pub dst: Ipv4Addr,
    /// Responder port (0 for ICMP).
    pub dport: u16,
    /// IP protocol.
    pub proto: u8,
    /// Class name (one of weir's 24).
    pub class: &'static str,
}

/// TCP flag bits.
pub const FIN: u8 = 0x01;
/// SYN.
pub const SYN: u8 = 0x02;
/// RST.
pub const RST: u8 = 0x04;
/// PSH.
pub const PSH: u8 = 0x08;
/// ACK.
pub const ACK: u8 = 0x10;

const MSS: usize = 1448;

/// A capture being generated: packets (in any order until written) and flow labels.
pub struct Capture {
    /// Random source of the whole capture.
    pub rng: Rng,
    packets: Vec<(i64, Vec<u8>)>,
    /// One label per conversation.
    pub labels: Vec<Label>,
    ip_id: u16,
    next_port: u16,
}

fn mac(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

fn checksum(parts: &[&[u8]]) -> u16 {
    let mut sum = 0u32;
    for p in parts {
        for c in p.chunks(2) {
            let w = if c.len() == 2 {
                u16::from_be_bytes([c[0], c[1]])
            } else {
                u16::from(c[0]) << 8
            };
            sum += u32::from(w);
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

impl Capture {
    /// An empty capture with its own random source.
    pub fn new(seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let next_port = 32768 + rng.below(20000) as u16;
        Capture {
            rng,
            packets: Vec::new(),
            labels: Vec::new(),
            ip_id: 1,
            next_port,
        }
    }

    /// A fresh ephemeral port (unique within the capture until it wraps after 28,000).
    pub fn port(&mut self) -> u16 {
        self.next_port = if self.next_port >= 60999 {
            32768
        } else {
            self.next_port + 1
        };
        self.next_port
    }

    /// Record a flow's label.
    pub fn label(
        &mut self,
        src: Ipv4Addr,
        sport: u16,
        dst: Ipv4Addr,
        dport: u16,
        proto: u8,
        class: impl Into<&'static str>,
    ) {
        let class: &'static str = class.into();
        self.labels.push(Label {
            src,
            sport,
            dst,
            dport,
            proto,
            class,
        });
    }

    /// Packets so far.
    pub fn len(&self) -> usize {
        self.packets.len()
    }

    /// Whether no packet was added.
    pub fn is_empty(&self) -> bool {
        self.packets.is_empty()
    }

    /// One IPv4 packet in an Ethernet frame.
    pub fn ipv4(&mut self, t: i64, src: Ipv4Addr, dst: Ipv4Addr, proto: u8, l4: &[u8]) {
        let mut f = Vec::with_capacity(34 + l4.len());
        f.extend_from_slice(&mac(dst));
        f.extend_from_slice(&mac(src));
        f.extend_from_slice(&[0x08, 0x00]);
        let total = (20 + l4.len()) as u16;
        self.ip_id = self.ip_id.wrapping_add(1);
        let ttl = if src.octets()[0] == 10 { 64 } else { 52 };
        let mut h = [
            0x45, 0, 0, 0, 0, 0, 0x40, 0, ttl, proto, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        h[2..4].copy_from_slice(&total.to_be_bytes());
        h[4..6].copy_from_slice(&self.ip_id.to_be_bytes());
        h[12..16].copy_from_slice(&src.octets());
        h[16..20].copy_from_slice(&dst.octets());
        let c = checksum(&[&h]);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&h);
        f.extend_from_slice(l4);
        self.packets.push((t, f));
    }

    fn pseudo(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, len: usize) -> [u8; 12] {
        let mut p = [0u8; 12];
        p[0..4].copy_from_slice(&src.octets());
        p[4..8].copy_from_slice(&dst.octets());
        p[9] = proto;
        p[10..12].copy_from_slice(&(len as u16).to_be_bytes());
        p
    }

    /// One TCP segment.
    #[allow(clippy::too_many_arguments)]
    pub fn tcp(
        &mut self,
        t: i64,
        src: Ipv4Addr,
        sport: u16,
        dst: Ipv4Addr,
        dport: u16,
        seq: u32,
        ack: u32,
        flags: u8,
        win: u16,
        payload: &[u8],
    ) {
        let syn = flags & SYN != 0;
        let hlen = if syn { 24 } else { 20 };
        let mut s = Vec::with_capacity(hlen + payload.len());
        s.extend_from_slice(&sport.to_be_bytes());
        s.extend_from_slice(&dport.to_be_bytes());
        s.extend_from_slice(&seq.to_be_bytes());
        s.extend_from_slice(&(if flags & ACK != 0 { ack } else { 0 }).to_be_bytes());
        s.push(((hlen / 4) as u8) << 4);
        s.push(flags);
        s.extend_from_slice(&win.to_be_bytes());
        s.extend_from_slice(&[0, 0, 0, 0]);
        if syn {
            s.extend_from_slice(&[2, 4, 0x05, 0xb4]); // MSS 1460
        }
        s.extend_from_slice(payload);
        let c = checksum(&[&Self::pseudo(src, dst, 6, s.len()), &s]);
        s[16..18].copy_from_slice(&c.to_be_bytes());
        self.ipv4(t, src, dst, 6, &s);
    }

    /// One UDP datagram.
    pub fn udp(
        &mut self,
        t: i64,
        src: Ipv4Addr,
        sport: u16,
        dst: Ipv4Addr,
        dport: u16,
        payload: &[u8],
    ) {
        let mut s = Vec::with_capacity(8 + payload.len());
        s.extend_from_slice(&sport.to_be_bytes());
        s.extend_from_slice(&dport.to_be_bytes());
        s.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        s.extend_from_slice(&[0, 0]);
        s.extend_from_slice(payload);
        let c = checksum(&[&Self::pseudo(src, dst, 17, s.len()), &s]);
        s[6..8].copy_from_slice(&(if c == 0 { 0xffff } else { c }).to_be_bytes());
        self.ipv4(t, src, dst, 17, &s);
    }

    /// One ICMP message (type, code, identifier, sequence, data).
    #[allow(clippy::too_many_arguments)]
    pub fn icmp(
        &mut self,
        t: i64,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        ty: u8,
        code: u8,
        id: u16,
        seq: u16,
        data: &[u8],
    ) {
        let mut s = vec![ty, code, 0, 0];
        s.extend_from_slice(&id.to_be_bytes());
        s.extend_from_slice(&seq.to_be_bytes());
        s.extend_from_slice(data);
        let c = checksum(&[&s]);
        s[2..4].copy_from_slice(&c.to_be_bytes());
        self.ipv4(t, src, dst, 1, &s);
    }

    /// The capture as a PCAP file (nanosecond timestamps, Ethernet), packets in time order.
    pub fn pcap(mut self) -> (Vec<u8>, Vec<Label>) {
        self.packets.sort_by_key(|(t, _)| *t);
        let size: usize = self.packets.iter().map(|(_, p)| p.len() + 16).sum();
        let mut out = Vec::with_capacity(24 + size);
        out.extend_from_slice(&0xa1b2_3c4du32.to_le_bytes());
        out.extend_from_slice(&2u16.to_le_bytes());
        out.extend_from_slice(&4u16.to_le_bytes());
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(&65535u32.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
        for (t, p) in &self.packets {
            out.extend_from_slice(&((t / 1_000_000_000) as u32).to_le_bytes());
            out.extend_from_slice(&((t % 1_000_000_000) as u32).to_le_bytes());
            out.extend_from_slice(&(p.len() as u32).to_le_bytes());
            out.extend_from_slice(&(p.len() as u32).to_le_bytes());
            out.extend_from_slice(p);
        }
        (out, self.labels)
    }
}

/// One TCP conversation in progress: the client's and the server's next sequence numbers and
/// the conversation's clock.
pub struct Tcp {
    /// Client address and port.
    pub c: (Ipv4Addr, u16),
    /// Server address and port.
    pub s: (Ipv4Addr, u16),
    cseq: u32,
    sseq: u32,
    /// The conversation's clock, ns.
    pub t: i64,
    /// Round-trip time, ns.
    pub rtt: i64,
}

impl Tcp {
    /// A new conversation from a fresh client port, labelled `class`, after its handshake.
    #[allow(clippy::too_many_arguments)]
    pub fn open(
        cap: &mut Capture,
        client: Ipv4Addr,
        server: Ipv4Addr,
        port: u16,
        t: i64,
        rtt: i64,
        class: impl Into<&'static str>,
    ) -> Tcp {
        let class: &'static str = class.into();
        let cport = cap.port();
        Self::open_from(cap, (client, cport), (server, port), t, rtt, class)
    }

    /// The same from a given client port; the handshake is complete.
    pub fn open_from(
        cap: &mut Capture,
        c: (Ipv4Addr, u16),
        s: (Ipv4Addr, u16),
        t: i64,
        rtt: i64,
        class: impl Into<&'static str>,
    ) -> Tcp {
        let class: &'static str = class.into();
        cap.label(c.0, c.1, s.0, s.1, 6, class);
        let mut tcp = Tcp {
            c,
            s,
            cseq: cap.rng.next_u32(),
            sseq: cap.rng.next_u32(),
            t,
            rtt: rtt.max(1000),
        };
        tcp.seg(cap, true, SYN, &[]);
        tcp.cseq = tcp.cseq.wrapping_add(1);
        tcp.t += tcp.rtt / 2;
        tcp.seg(cap, false, SYN | ACK, &[]);
        tcp.sseq = tcp.sseq.wrapping_add(1);
        tcp.t += tcp.rtt / 2;
        tcp.seg(cap, true, ACK, &[]);
        tcp
    }

    fn seg(&mut self, cap: &mut Capture, from_client: bool, flags: u8, payload: &[u8]) {
        let (a, b, seq, ack, win) = if from_client {
            (self.c, self.s, self.cseq, self.sseq, 64240)
        } else {
            (self.s, self.c, self.sseq, self.cseq, 65160)
        };
        cap.tcp(self.t, a.0, a.1, b.0, b.1, seq, ack, flags, win, payload);
    }

    /// Send `data` from one side in MSS-sized segments; the other side ACKs every second
    /// segment and the last, half an RTT later.
    pub fn send(&mut self, cap: &mut Capture, from_client: bool, data: &[u8]) {
        let n = data.len().div_ceil(MSS);
        for (i, chunk) in data.chunks(MSS).enumerate() {
            let last = i + 1 == n;
            self.seg(cap, from_client, if last { PSH | ACK } else { ACK }, chunk);
            let l = chunk.len() as u32;
            if from_client {
                self.cseq = self.cseq.wrapping_add(l);
            } else {
                self.sseq = self.sseq.wrapping_add(l);
            }
            // ~1 Gbit/s serialization between segments of one burst.
            self.t += 12_000 + cap.rng.below(4_000) as i64;
            if i % 2 == 1 || last {
                let t = self.t;
                self.t += self.rtt / 2;
                self.seg(cap, !from_client, ACK, &[]);
                self.t = t;
            }
        }
        self.t += self.rtt / 2;
    }

    /// Request/response: the client sends, the server answers after `think` ns.
    pub fn exchange(&mut self, cap: &mut Capture, request: &[u8], response: &[u8], think: i64) {
        self.send(cap, true, request);
        self.t += think;
        if !response.is_empty() {
            self.send(cap, false, response);
        }
    }

    /// Let time pass.
    pub fn wait(&mut self, dt: i64) {
        self.t += dt.max(0);
    }

    /// Orderly close, started by the client or the server.
    pub fn close(&mut self, cap: &mut Capture, by_client: bool) {
        self.seg(cap, by_client, FIN | ACK, &[]);
        self.bump(by_client);
        self.t += self.rtt / 2;
        self.seg(cap, !by_client, FIN | ACK, &[]);
        self.bump(!by_client);
        self.t += self.rtt / 2;
        self.seg(cap, by_client, ACK, &[]);
    }

    /// Abort with a RST from one side.
    pub fn reset(&mut self, cap: &mut Capture, from_client: bool) {
        self.seg(cap, from_client, RST | ACK, &[]);
    }

    fn bump(&mut self, client: bool) {
        if client {
            self.cseq = self.cseq.wrapping_add(1);
        } else {
            self.sseq = self.sseq.wrapping_add(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_header_checksum_verifies() {
        let mut c = Capture::new(1);
        c.udp(
            0,
            Ipv4Addr::new(10, 0, 0, 1),
            1234,
            Ipv4Addr::new(10, 0, 0, 2),
            53,
            b"abc",
        );
        let (pcap, _) = c.pcap();
        let frame = &pcap[24 + 16..];
        assert_eq!(checksum(&[&frame[14..34]]), 0, "IPv4 header sums to 0xffff");
        let udp = &frame[34..];
        let pseudo = Capture::pseudo(
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(10, 0, 0, 2),
            17,
            udp.len(),
        );
        assert_eq!(checksum(&[&pseudo, udp]), 0, "UDP checksum verifies");
    }
}
