//! Tests of `table`.

use super::*;

const S: i64 = 1_000_000_000;

fn pkt(src: &str, sport: u16, dst: &str, dport: u16, proto: u8, flags: u8) -> Decoded<'static> {
    Decoded {
        vlan: 0,
        src: src.parse().unwrap(),
        dst: dst.parse().unwrap(),
        proto,
        sport,
        dport,
        ttl: 64,
        l4_header_len: 20,
        payload_len: 0,
        payload: &[],
        tcp_flags: flags,
        tcp_window: 1000,
        fragment: Fragment::No,
        tunnel: None,
    }
}

fn run(pkts: &[(i64, Decoded<'static>)], cfg: FlowConfig) -> Vec<FlowRecord> {
    let mut t = FlowTable::new(cfg);
    let mut out = Vec::new();
    for (i, (ts, d)) in pkts.iter().enumerate() {
        let info = PacketInfo {
            ts_ns: *ts,
            wire_len: 60,
            offset: i as u64 * 100,
            decoded: d,
        };
        let _ = t.push(&info, &mut out);
    }
    t.finish(&mut out);
    out
}

const A: &str = "10.0.0.1";
const B: &str = "10.0.0.2";
const C: &str = "10.0.0.3";

fn handshake_and_close(t0: i64, close: &[(bool, u8)]) -> Vec<(i64, Decoded<'static>)> {
    let mut v = vec![
        (t0, pkt(A, 1000, B, 80, 6, FLAG_SYN)),
        (t0 + 1, pkt(B, 80, A, 1000, 6, FLAG_SYN | FLAG_ACK)),
        (t0 + 2, pkt(A, 1000, B, 80, 6, FLAG_ACK)),
    ];
    for (i, (from_a, flags)) in close.iter().enumerate() {
        let p = if *from_a {
            pkt(A, 1000, B, 80, 6, *flags)
        } else {
            pkt(B, 80, A, 1000, 6, *flags)
        };
        v.push((t0 + 3 + i as i64, p));
    }
    v
}

#[test]
fn both_directions_make_one_flow_with_the_initiator_as_source() {
    let out = run(&handshake_and_close(0, &[]), FlowConfig::default());
    assert_eq!(out.len(), 1);
    let f = &out[0];
    assert_eq!(
        (f.src_port, f.dst_port, f.packets_fwd, f.packets_bwd),
        (1000, 80, 2, 1)
    );
    assert_eq!(
        (f.first_offset, f.last_offset, f.end_reason),
        (0, 200, EndReason::EndOfCapture)
    );
    assert_eq!(
        f.community_id,
        community_id(f.src_ip, f.dst_ip, 6, 1000, 80)
    );
}

#[test]
fn fin_fin_closes_and_the_last_ack_still_joins() {
    let close = [
        (true, FLAG_FIN | FLAG_ACK),
        (false, FLAG_FIN | FLAG_ACK),
        (true, FLAG_ACK),
    ];
    let mut pkts = handshake_and_close(0, &close);
    // A new connection on the same tuple 10 s later is a new flow.
    pkts.extend(handshake_and_close(10 * S, &[]));
    let out = run(&pkts, FlowConfig::default());
    assert_eq!(out.len(), 2);
    assert_eq!(
        (out[0].packets_fwd + out[0].packets_bwd, out[0].end_reason),
        (6, EndReason::Fin)
    );
    assert_eq!(out[1].packets_fwd + out[1].packets_bwd, 3);
}

#[test]
fn rst_closes_and_a_quick_new_syn_is_a_reused_tuple() {
    let mut pkts = handshake_and_close(0, &[(false, FLAG_RST)]);
    pkts.extend(handshake_and_close(100, &[]));
    let out = run(&pkts, FlowConfig::default());
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].end_reason, EndReason::Reused);
    assert_eq!(out[0].packets_fwd + out[0].packets_bwd, 4);
}

#[test]
fn idle_and_active_timeouts() {
    let u = |ts| (ts, pkt(A, 5000, B, 53, 17, 0));
    let r = |ts| (ts, pkt(B, 53, A, 5000, 17, 0));
    // An answered flow survives 119 s of silence; 121 s ends it (default idle 120 s).
    let out = run(&[u(0), r(S), u(120 * S), u(241 * S)], FlowConfig::default());
    assert_eq!(out.len(), 2);
    assert_eq!((out[0].packets_fwd, out[0].packets_bwd), (2, 1));
    assert_eq!(out[0].end_reason, EndReason::Idle);
    // An unanswered flow ends after 45 s (UDP) or 60 s (TCP) of silence.
    let out = run(&[u(0), u(44 * S), u(90 * S)], FlowConfig::default());
    assert_eq!(
        out.iter().map(|f| f.packets_fwd).collect::<Vec<_>>(),
        vec![2, 1]
    );
    let syn = |ts| (ts, pkt(A, 5000, B, 80, 6, FLAG_SYN));
    let out = run(
        &[syn(0), syn(32 * S), syn(59 * S), syn(150 * S)],
        FlowConfig::default(),
    );
    assert_eq!(
        out.iter().map(|f| f.packets_fwd).collect::<Vec<_>>(),
        vec![3, 1]
    );
    // Once answered, the idle timeout applies, and unanswered timeouts never exceed it.
    let cfg = FlowConfig {
        idle_timeout_ns: 10 * S,
        ..FlowConfig::default()
    };
    assert_eq!(run(&[u(0), u(11 * S)], cfg).len(), 2);
    // A steady flow is cut at the active timeout.
    let cfg = FlowConfig {
        active_timeout_ns: 10 * S,
        ..FlowConfig::default()
    };
    let pkts: Vec<_> = (0..25).map(|i| u(i * S)).collect();
    let out = run(&pkts, cfg);
    assert_eq!(
        out.iter().map(|f| f.packets_fwd).collect::<Vec<_>>(),
        vec![11, 11, 3]
    );
    assert_eq!(out[0].end_reason, EndReason::Active);
}

#[test]
fn expired_flows_leave_the_table_while_reading() {
    let mut t = FlowTable::new(FlowConfig::default());
    let mut out = Vec::new();
    for i in 0..1000u16 {
        let d = pkt(A, 1000 + i, B, 53, 17, 0);
        let info = PacketInfo {
            ts_ns: i64::from(i) * 10 * S,
            wire_len: 60,
            offset: 0,
            decoded: &d,
        };
        t.push(&info, &mut out).unwrap();
    }
    // 120 s idle at one flow per 10 s: about 13 flows open, the rest already handed out.
    assert!(t.open_flows() <= 14, "{} open", t.open_flows());
    assert!(out.len() >= 985);
}

#[test]
fn icmp_echo_request_and_reply_share_a_flow() {
    let out = run(
        &[(0, pkt(A, 8, B, 0, 1, 0)), (1, pkt(B, 0, A, 0, 1, 0))],
        FlowConfig::default(),
    );
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].packets_fwd, out[0].packets_bwd), (1, 1));
}

#[test]
fn later_fragments_join_the_flow_of_the_first() {
    let mut first = pkt(A, 5000, B, 53, 17, 0);
    first.fragment = Fragment::First { id: 7 };
    let mut later = pkt(A, 0, B, 0, 17, 0);
    later.fragment = Fragment::Later { id: 7, more: false };
    let mut orphan = pkt(A, 0, B, 0, 17, 0);
    orphan.fragment = Fragment::Later { id: 9, more: false };
    let mut t = FlowTable::new(FlowConfig::default());
    let mut out = Vec::new();
    for (d, ok) in [(&first, true), (&later, true), (&orphan, false)] {
        let r = t.push(
            &PacketInfo {
                ts_ns: 0,
                wire_len: 60,
                offset: 0,
                decoded: d,
            },
            &mut out,
        );
        assert_eq!(r.is_ok(), ok);
    }
    t.finish(&mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].packets_fwd, 2);
    assert_eq!(t.counters().fragments_orphaned, 1);
}

#[test]
fn a_fragment_flood_evicts_the_oldest_chains_only() {
    let cfg = FlowConfig {
        max_fragment_chains: 100,
        ..FlowConfig::default()
    };
    let mut t = FlowTable::new(cfg);
    let mut out = Vec::new();
    fn info<'a>(d: &'a Decoded<'a>) -> PacketInfo<'a> {
        PacketInfo {
            ts_ns: 0,
            wire_len: 60,
            offset: 0,
            decoded: d,
        }
    }
    // A flood of first fragments that never complete, a legitimate chain in the middle
    // of it: when the table is full the oldest chains go, never the whole table.
    let flood = |t: &mut FlowTable, out: &mut Vec<FlowRecord>, ids: std::ops::Range<u32>| {
        for id in ids {
            let mut f = pkt(C, 6000, B, 53, 17, 0);
            f.fragment = Fragment::First { id };
            t.push(&info(&f), out).unwrap();
        }
    };
    flood(&mut t, &mut out, 1000..1099);
    let mut first = pkt(A, 5000, B, 53, 17, 0);
    first.fragment = Fragment::First { id: 7 };
    t.push(&info(&first), &mut out).unwrap();
    flood(&mut t, &mut out, 1099..1149);
    let mut later = pkt(A, 0, B, 0, 17, 0);
    later.fragment = Fragment::Later { id: 7, more: false };
    assert!(
        t.push(&info(&later), &mut out).is_ok(),
        "the legitimate chain was evicted"
    );
    let mut recent = pkt(C, 0, B, 0, 17, 0);
    recent.fragment = Fragment::Later {
        id: 1148,
        more: false,
    };
    assert!(t.push(&info(&recent), &mut out).is_ok());
    assert_eq!(t.counters().fragment_chains_evicted, 50);
    let mut old = pkt(C, 0, B, 0, 17, 0);
    old.fragment = Fragment::Later {
        id: 1000,
        more: false,
    };
    assert!(t.push(&info(&old), &mut out).is_err());
}
