//! The bounded per-key state the detectors keep: sets of what was seen, start times, bursts.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;

use super::BURST_NS;

pub(crate) type Hasher = foldhash::fast::RandomState;
/// A map from a detector's key to its state.
pub(crate) type Map<K, V> = HashMap<K, V, Hasher>;
/// (source, destination).
pub(crate) type Pair = (IpAddr, IpAddr);
/// (source, destination, protocol, destination port).
pub(crate) type Svc = (IpAddr, IpAddr, u8, u16);

/// Cap on any per-key set of ports or hosts (a whole port range fits).
const SET_CAP: usize = 65_536;
/// Cap on the start times kept per key (the newest kept; counts go on).
const TIMES_CAP: usize = 4096;

/// A key's last flow time, for forgetting idle keys.
pub(crate) trait Last {
    fn last(&self) -> i64;
}

/// Drop the keys of `m` idle since `before`.
pub(crate) fn forget<K, V: Last>(m: &mut Map<K, V>, before: i64) {
    m.retain(|_, v| v.last() > before);
}

/// Distinct values seen (ports, hosts), capped.
pub(crate) struct Seen<T> {
    pub last: i64,
    pub set: HashSet<T, Hasher>,
    pub fired: bool,
}

impl<T> Default for Seen<T> {
    fn default() -> Self {
        Seen {
            last: 0,
            set: HashSet::default(),
            fired: false,
        }
    }
}

impl<T: std::hash::Hash + Eq> Seen<T> {
    /// Add a value seen at `t`; returns the distinct values so far.
    pub fn add(&mut self, t: i64, v: T) -> usize {
        self.last = self.last.max(t);
        if self.set.len() < SET_CAP {
            self.set.insert(v);
        }
        self.set.len()
    }
}

impl<T> Last for Seen<T> {
    fn last(&self) -> i64 {
        self.last
    }
}

/// Start times of a key's flows.
#[derive(Default)]
pub(crate) struct Times {
    pub last: i64,
    /// Start times, each with whether it was flagged (an unanswered HTTP request).
    pub starts: VecDeque<(i64, bool)>,
    /// Starts counted (those dropped by the cap included) for keys without a window.
    pub count: usize,
    /// Flagged starts among `starts`.
    pub flagged: usize,
    pub fired: bool,
}

impl Times {
    /// Add a start; with a `window`, drop those older than it before the newest and count
    /// what is left, else count them all (0: no window). Returns the count.
    pub fn add(&mut self, t: i64, window: i64) -> usize {
        self.add_flagged(t, window, false)
    }

    /// [`Times::add`] for a start that is `flag`ged; [`Times::flagged`] counts those left.
    pub fn add_flagged(&mut self, t: i64, window: i64, flag: bool) -> usize {
        self.last = self.last.max(t);
        if self.starts.len() >= TIMES_CAP {
            self.pop();
        }
        self.starts.push_back((t, flag));
        self.flagged += usize::from(flag);
        if window > 0 {
            let newest = self.last;
            while self.starts.front().is_some_and(|s| newest - s.0 > window) {
                self.pop();
            }
            self.starts.len()
        } else {
            self.count += 1;
            self.count
        }
    }

    fn pop(&mut self) {
        if let Some((_, flag)) = self.starts.pop_front() {
            self.flagged -= usize::from(flag);
        }
    }
}

impl Last for Times {
    fn last(&self) -> i64 {
        self.last
    }
}

/// Traffic at one key within the last [`BURST_NS`].
#[derive(Default)]
pub(crate) struct Burst {
    pub last: i64,
    /// (time, packets, source) of recent unanswered traffic.
    pub events: VecDeque<(i64, u64, IpAddr)>,
    /// Events per source among `events`.
    pub sources: HashMap<IpAddr, u32, Hasher>,
    pub packets: u64,
    pub fired: bool,
}

impl Burst {
    /// Add traffic; returns the packets and the distinct sources within the window.
    pub fn add(&mut self, t: i64, packets: u64, src: IpAddr) -> (u64, usize) {
        self.last = self.last.max(t);
        self.events.push_back((t, packets, src));
        *self.sources.entry(src).or_default() += 1;
        self.packets += packets;
        let newest = self.last;
        while let Some(&(s, p, a)) = self.events.front() {
            if newest - s <= BURST_NS && self.events.len() <= 1 << 16 {
                break;
            }
            self.events.pop_front();
            self.packets -= p;
            if let Some(n) = self.sources.get_mut(&a) {
                *n -= 1;
                if *n == 0 {
                    self.sources.remove(&a);
                }
            }
        }
        (self.packets, self.sources.len())
    }
}

impl Last for Burst {
    fn last(&self) -> i64 {
        self.last
    }
}
