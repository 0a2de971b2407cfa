//! Payload signals: what the payload indicator features and the detectors look for in the
//! sampled bytes (entropy, suspicious tokens, protocol-specific signals), as pure functions
//! over a byte slice.

use super::spec::PAYLOAD_SAMPLE_BYTES;

/// Tokens counted by "Fwd Payload Suspicious Tokens" (matched case-insensitively).
pub const SUSPICIOUS_TOKENS: [&[u8]; 16] = [
    b"union select",
    b"union+select",
    b"union%20select",
    b"' or ",
    b"'%20or%20",
    b"or 1=1",
    b"<script",
    b"%3cscript",
    b"javascript:",
    b"onerror=",
    b"../",
    b"..%2f",
    b"/etc/passwd",
    b"cmd.exe",
    b"/bin/sh",
    b"\x90\x90\x90\x90\x90\x90\x90\x90",
];

/// Shannon entropy of a byte string in bits per byte (0..=8).
pub fn entropy(bytes: &[u8]) -> f32 {
    if bytes.is_empty() {
        return 0.0;
    }
    // H = log2(n) - sum(c * log2(c)) / n over the byte counts c; c * log2(c) comes from a
    // table for the counts a payload sample can have (log2 was 5% of `weir flows`).
    static C_LOG_C: std::sync::OnceLock<Vec<f64>> = std::sync::OnceLock::new();
    let table = C_LOG_C.get_or_init(|| {
        (0..=PAYLOAD_SAMPLE_BYTES)
            .map(|c| {
                if c == 0 {
                    0.0
                } else {
                    c as f64 * (c as f64).log2()
                }
            })
            .collect()
    });
    let mut hist = [0u32; 256];
    for &b in bytes {
        hist[usize::from(b)] += 1;
    }
    let n = bytes.len() as f64;
    let mut sum = 0.0f64;
    for &c in hist.iter() {
        if c > 0 {
            sum += match table.get(c as usize) {
                Some(v) => *v,
                None => f64::from(c) * f64::from(c).log2(),
            };
        }
    }
    (n.log2() - sum / n).max(0.0) as f32
}

/// Count occurrences of [`SUSPICIOUS_TOKENS`] (ASCII case-insensitive, overlapping matches
/// counted). One pass over the bytes: only positions whose byte can start a token are compared.
pub fn count_tokens(bytes: &[u8]) -> u32 {
    scan_tokens(bytes).0
}

/// [`count_tokens`] and the set of tokens seen (bit `k` = `SUSPICIOUS_TOKENS[k]`).
pub fn scan_tokens(bytes: &[u8]) -> (u32, u16) {
    // Which tokens can start with each (lower-cased) byte, as a bit set over SUSPICIOUS_TOKENS.
    const STARTS: [u16; 256] = {
        let mut t = [0u16; 256];
        let mut i = 0;
        while i < SUSPICIOUS_TOKENS.len() {
            t[SUSPICIOUS_TOKENS[i][0] as usize] |= 1 << i;
            i += 1;
        }
        t
    };
    let mut n = 0;
    let mut seen = 0u16;
    for (i, &b) in bytes.iter().enumerate() {
        let mut cands = STARTS[b.to_ascii_lowercase() as usize];
        while cands != 0 {
            let k = cands.trailing_zeros() as usize;
            cands &= cands - 1;
            let tok = SUSPICIOUS_TOKENS[k];
            if bytes.len() - i >= tok.len() && bytes[i..i + tok.len()].eq_ignore_ascii_case(tok) {
                n += 1;
                seen |= 1 << k;
            }
        }
    }
    (n, seen)
}

/// Bits of a flow's `signals`: what its sampled forward payloads (the first
/// [`PAYLOAD_SAMPLE_PACKETS`], [`PAYLOAD_SAMPLE_BYTES`] each) showed. The low 16 bits are the
/// [`SUSPICIOUS_TOKENS`] seen; the rest are protocol facts.
pub mod signal {
    /// SQL injection tokens (`union select`, `' or `, `or 1=1`, URL-encoded forms).
    pub const SQLI: u32 = 0b11_1111;
    /// Script injection tokens (`<script`, `javascript:`, `onerror=`).
    pub const XSS: u32 = 0b11_1100_0000;
    /// Path traversal (`../`, `..%2f`, `/etc/passwd`).
    pub const TRAVERSAL: u32 = 0b1_1100_0000_0000;
    /// Shell paths (`cmd.exe`, `/bin/sh`).
    pub const SHELL: u32 = 0b110_0000_0000_0000;
    /// A NOP sled.
    pub const NOP_SLED: u32 = 1 << 15;
    /// A JNDI lookup string (`${jndi:`, also URL-encoded or nested `${${`): Log4Shell.
    pub const JNDI: u32 = 1 << 16;
    /// A bash function definition in a request (`() {`): Shellshock.
    pub const SHELLSHOCK: u32 = 1 << 17;
    /// A TLS heartbeat request claiming more payload than its record holds: Heartbleed.
    pub const HEARTBEAT_OVERREAD: u32 = 1 << 18;
    /// Any TLS heartbeat request (rare in benign traffic since 2014).
    pub const HEARTBEAT: u32 = 1 << 19;
    /// A DNS query for a name with a label of 40+ characters or 100+ in all: data encoded
    /// into names (DNS tunnels, exfiltration).
    pub const DNS_LONG_NAME: u32 = 1 << 20;
    /// An SMB1 Trans2 SESSION_SETUP request: the DoublePulsar implant's command channel
    /// (no client has used it since Windows NT).
    pub const SMB_DOUBLEPULSAR: u32 = 1 << 21;
    /// An SMB1 NT Trans request announcing 64 KiB or more of data: the EternalBlue overflow
    /// (legitimate NT Trans requests carry a few hundred bytes).
    pub const SMB_NT_TRANS_LARGE: u32 = 1 << 22;
}

/// The [`signal`] bits of one SMB1 request over NetBIOS (`00 len len len ff 'SMB' cmd ...`).
pub fn smb_signals(p: &[u8]) -> u32 {
    let u16le = |i: usize| p.get(i..i + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u32le = |i: usize| {
        p.get(i..i + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    if p.len() < 37 || p[0] != 0 || p[4..8] != *b"\xffSMB" || p[13] & 0x80 != 0 {
        return 0; // not an SMB1 request (byte 13 bit 7: a reply)
    }
    let mut s = 0;
    match p[8] {
        // Trans2: WordCount 15, one setup word, the subcommand.
        0x32 if p[36] == 15 && p.get(63) == Some(&1) && u16le(65) == Some(0x000e) => {
            s |= signal::SMB_DOUBLEPULSAR;
        }
        // NT Trans: TotalDataCount after MaxSetupCount (1), Reserved (2), TotalParameterCount (4).
        0xa0 if p[36] >= 19 && u32le(44).is_some_and(|n| n >= 0x1_0000) => {
            s |= signal::SMB_NT_TRANS_LARGE;
        }
        _ => {}
    }
    s
}

/// Is `p` a DNS query (over UDP) for a long name ([`signal::DNS_LONG_NAME`])?
fn dns_long_name(p: &[u8]) -> bool {
    // header: id, flags (QR = 0, opcode 0), qdcount = 1
    if p.len() < 17 || p[2] & 0xf8 != 0 || p[4..6] != [0, 1] {
        return false;
    }
    let (mut i, mut total, mut longest) = (12usize, 0usize, 0usize);
    while let Some(&len) = p.get(i) {
        let len = usize::from(len);
        if len == 0 {
            break;
        }
        if len > 63 || i + 1 + len > p.len() {
            return false;
        }
        let label = &p[i + 1..i + 1 + len];
        if !label
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_=+/".contains(b))
        {
            return false;
        }
        longest = longest.max(len);
        total += len + 1;
        i += 1 + len;
    }
    longest >= 40 || total >= 100
}

/// `%XX` and `+` decoded (bytes that are not a valid escape are kept).
pub fn percent_decode(p: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(p.len());
    let mut i = 0;
    while i < p.len() {
        match (
            p[i],
            p.get(i + 1).copied().and_then(hex),
            p.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push(h << 4 | l);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

fn contains_ci(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

/// The protocol facts of one sampled forward payload ([`signal`] bits above 16).
pub fn extra_signals(p: &[u8]) -> u32 {
    let mut s = 0;
    if contains_ci(p, b"${jndi:") || contains_ci(p, b"%24%7bjndi") || contains_ci(p, b"${${") {
        s |= signal::JNDI;
    }
    if p.windows(4).any(|w| w == b"() {") {
        s |= signal::SHELLSHOCK;
    }
    if dns_long_name(p) {
        s |= signal::DNS_LONG_NAME;
    }
    // TLS records in the sample: content type 24 (heartbeat), version 3.x.
    let mut i = 0;
    while i + 5 <= p.len() && (20..=24).contains(&p[i]) && p[i + 1] == 3 {
        let len = usize::from(u16::from_be_bytes([p[i + 3], p[i + 4]]));
        if p[i] == 24 {
            s |= signal::HEARTBEAT;
            // type(1) = request, payload_length(2); the record must also hold >= 16 padding
            if i + 8 <= p.len() && p[i + 5] == 1 {
                let claimed = usize::from(u16::from_be_bytes([p[i + 6], p[i + 7]]));
                if claimed + 3 + 16 > len {
                    s |= signal::HEARTBEAT_OVERREAD;
                }
            }
        }
        i += 5 + len;
    }
    s
}
