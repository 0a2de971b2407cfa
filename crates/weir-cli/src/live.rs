//! Live capture for `weir edge run --interface` (feature `live`, Linux): an AF_PACKET socket
//! on one interface, written as PCAP files into the folder the edge node watches, one file per
//! period. A file is written as `NAME.pcap.part` and renamed to `NAME.pcap` when closed, so
//! the node only ever reads whole files; from there on a live capture is a capture like any
//! other (split, classified, its alerts pushed; labelled by the operator if it is to be learnt
//! from). Needs CAP_NET_RAW (root, or `setcap cap_net_raw+ep weir`).
//!
//! Outgoing packets are skipped (on loopback every packet would otherwise appear twice).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};

/// Packets written and files closed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Captured {
    /// Packets written.
    pub packets: u64,
    /// Files closed (renamed to .pcap).
    pub files: u64,
}

/// An AF_PACKET socket bound to one interface.
struct Socket(libc::c_int);

impl Drop for Socket {
    fn drop(&mut self) {
        // SAFETY: the descriptor is ours and closed once.
        unsafe { libc::close(self.0) };
    }
}

fn open(interface: &str) -> Result<Socket> {
    let name =
        std::ffi::CString::new(interface).with_context(|| format!("interface {interface:?}"))?;
    // SAFETY: a plain C call on a NUL-terminated string.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if index == 0 {
        bail!("--interface {interface}: no such interface (see `ip link`)");
    }
    let proto = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: socket(2) with constant arguments.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, libc::c_int::from(proto)) };
    if fd < 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EPERM) {
            bail!("--interface {interface}: capturing needs CAP_NET_RAW (run as root, or `sudo setcap cap_net_raw+ep $(command -v weir)`): {e}");
        }
        bail!("--interface {interface}: cannot open a packet socket: {e}");
    }
    let sock = Socket(fd);
    // SAFETY: sockaddr_ll is plain data; zeroed is a valid value.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_protocol = proto;
    addr.sll_ifindex = index as i32;
    // SAFETY: addr lives across the call and its size is given.
    let rc = unsafe {
        libc::bind(
            fd,
            std::ptr::addr_of!(addr).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    if rc != 0 {
        bail!(
            "--interface {interface}: cannot bind to it: {}",
            std::io::Error::last_os_error()
        );
    }
    // Room for bursts (4 MiB; the kernel caps it at net.core.rmem_max), and a wake-up every
    // 200 ms to look at the clock and the stop flag.
    set_option(fd, libc::SO_RCVBUF, &((4 << 20) as libc::c_int));
    set_option(
        fd,
        libc::SO_RCVTIMEO,
        &libc::timeval {
            tv_sec: 0,
            tv_usec: 200_000,
        },
    );
    Ok(sock)
}

/// setsockopt(2) at SOL_SOCKET with a plain value.
fn set_option<T>(fd: libc::c_int, name: libc::c_int, value: &T) {
    // SAFETY: value lives across the call and its size is given.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            name,
            std::ptr::from_ref(value).cast(),
            std::mem::size_of::<T>() as u32,
        )
    };
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// One file being written, as NAME.pcap.part, opened at its first packet: records go to
/// the file as they come (an interval on a busy link is never held in memory).
struct Part {
    path: PathBuf,
    out: Option<std::io::BufWriter<std::fs::File>>,
    record: Vec<u8>,
}

impl Part {
    fn new(dir: &Path, interface: &str) -> Part {
        let stamp = now_ns();
        Part {
            path: dir.join(format!("live-{interface}-{stamp}.pcap.part")),
            out: None,
            record: Vec::new(),
        }
    }

    /// Append one packet (`wire`: its length on the wire).
    fn write(&mut self, data: &[u8], wire: u32) -> Result<()> {
        if self.out.is_none() {
            let f = std::fs::File::create(&self.path)
                .with_context(|| format!("creating {}", self.path.display()))?;
            let mut o = std::io::BufWriter::new(f);
            o.write_all(&weir_capture::pcap_header(1))
                .with_context(|| format!("writing {}", self.path.display()))?;
            self.out = Some(o);
        }
        self.record.clear();
        weir_capture::pcap_record(&mut self.record, now_ns(), data, wire);
        if let Some(out) = &mut self.out {
            out.write_all(&self.record)
                .with_context(|| format!("writing {}", self.path.display()))?;
        }
        Ok(())
    }

    /// Finish it and rename it to .pcap; false for a file that never got a packet.
    fn close(self) -> Result<bool> {
        let Some(out) = self.out else {
            return Ok(false);
        };
        out.into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("writing {}", self.path.display()))?;
        let done = self.path.with_extension("");
        std::fs::rename(&self.path, &done)
            .with_context(|| format!("renaming {}", self.path.display()))?;
        Ok(true)
    }
}

/// Capture on `interface` into `dir`, one file per `period`, until `stop` is set; the file
/// open at that moment is closed too.
pub fn capture(
    interface: &str,
    dir: &Path,
    period: Duration,
    stop: &AtomicBool,
) -> Result<Captured> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let sock = open(interface)?;
    eprintln!(
        "live: capturing on {interface} into {}, one file every {} s",
        dir.display(),
        period.as_secs()
    );
    let mut buf = vec![0u8; 262_144];
    let mut part = Part::new(dir, interface);
    let mut opened = Instant::now();
    let mut total = Captured::default();
    while !stop.load(Ordering::Relaxed) {
        // SAFETY: sockaddr_ll is plain data; the buffers live across the call.
        let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_ll>() as u32;
        let n = unsafe {
            libc::recvfrom(
                sock.0,
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_TRUNC,
                std::ptr::addr_of_mut!(from).cast(),
                &mut len,
            )
        };
        if n >= 0 && from.sll_pkttype != libc::PACKET_OUTGOING {
            let wire = n as usize;
            let kept = wire.min(buf.len());
            part.write(&buf[..kept], wire as u32)?;
            total.packets += 1;
        } else if n < 0 {
            let e = std::io::Error::last_os_error();
            if !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock
                    | std::io::ErrorKind::TimedOut
                    | std::io::ErrorKind::Interrupted
            ) {
                bail!("--interface {interface}: {e}");
            }
        }
        if opened.elapsed() >= period {
            let next = Part::new(dir, interface);
            total.files += u64::from(std::mem::replace(&mut part, next).close()?);
            opened = Instant::now();
        }
    }
    total.files += u64::from(part.close()?);
    Ok(total)
}

/// Capture in a background thread until the returned flag is set; the thread's result says
/// what it wrote, or why it stopped.
pub fn spawn(
    interface: String,
    dir: PathBuf,
    period: Duration,
) -> (Arc<AtomicBool>, std::thread::JoinHandle<Result<Captured>>) {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let t = std::thread::spawn(move || capture(&interface, &dir, period, &flag));
    (stop, t)
}
