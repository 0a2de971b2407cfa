//! Captures' statuses as people see them: the table `weir status` and `weir-status` print,
//! their options, and following the captures ([`weir_pipeline::watch`]) line by line.

use std::time::Duration;

use weir_pipeline::{
    captures, watch, PipelineError, State, Status, Store, StoreFault, WatchOptions,
};

/// The heading of [`status_row`]'s columns.
pub fn status_header() -> String {
    format!(
        "{:<40} {:<20} {:>9} {:>10} {:>8}  note",
        "capture", "state", "shards", "flows", "alerts"
    )
}

/// One capture as a table row: id, state, shards done/total, flows, alerts, and the failure
/// reason, the first warning, or the classes with the most alerts.
pub fn status_row(s: &Status) -> String {
    let shards = match s.shards {
        Some(n) => format!("{}/{n}", s.shards_done),
        None => "-".into(),
    };
    let classes = s.alert_classes.join(", ");
    let note = match (s.reason.as_deref(), s.warnings.first()) {
        (Some(r), _) => r.to_string(),
        (None, Some(w)) if classes.is_empty() => w.clone(),
        (None, Some(w)) => format!("{classes}; warning: {w}"),
        (None, None) => classes,
    };
    let alerts = s.alerts.map_or("-".into(), weir_pipeline::thousands);
    format!(
        "{:<40} {:<20} {:>9} {:>10} {:>8}  {note}",
        s.capture,
        s.state.name(),
        shards,
        s.flows,
        alerts
    )
    .trim_end()
    .to_string()
}

/// What [`show_status`] prints: the options of `weir status` and `weir-status` (the same
/// over a bucket).
#[derive(Clone, Debug, Default, clap::Args)]
pub struct ShowOptions {
    /// Print JSON on stdout: an array of statuses, or with --watch/--wait one status per line.
    #[arg(long)]
    pub json: bool,
    /// Keep following the captures and print a line each time one changes (state, shards
    /// done, flows, reason), until interrupted or --timeout.
    #[arg(long)]
    pub watch: bool,
    /// Follow only this capture until it is final (an id as listed, or the key it was
    /// uploaded as: uploads/NAME.pcap); exit 0 when done, 1 when failed.
    #[arg(long, value_name = "ID")]
    pub wait: Option<String>,
    /// Stop following after this many seconds (with --wait: an error).
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u64>,
}

/// What [`show_status`] did: listed the captures, or followed them (with `--wait`, until
/// the capture's last status). The binaries turn it into their exit code.
#[derive(Clone, Debug, PartialEq)]
pub enum Shown {
    /// The table or JSON array was written.
    Listed,
    /// Followed until interrupted, the timeout, or (with `wait`) the capture's final status.
    Followed(Option<Status>),
}

impl Shown {
    /// Whether the capture waited for ended failed.
    pub fn failed(&self) -> bool {
        matches!(self, Shown::Followed(Some(s)) if s.state == State::Failed)
    }
}

/// Write the captures of `store` as [`ShowOptions`] says: the table or JSON to `out`, and to
/// `note` the line saying the store (`place`) holds no capture. Returns what it did; with
/// `wait`, [`Shown::failed`] tells whether the capture failed.
pub fn show_status(
    store: &dyn Store,
    opts: &ShowOptions,
    place: &str,
    out: &mut dyn std::io::Write,
    note: &mut dyn std::io::Write,
) -> Result<Shown, PipelineError> {
    let io = |e: std::io::Error| PipelineError::store("stdout", StoreFault::Permanent, e);
    if !opts.watch && opts.wait.is_none() {
        let all = captures(store)?;
        if opts.json {
            let js = serde_json::to_string_pretty(&all)
                .map_err(|e| PipelineError::corrupt("statuses", e))?;
            writeln!(out, "{js}").map_err(io)?;
        } else if all.is_empty() {
            writeln!(note, "no captures in {place}").map_err(io)?;
        } else {
            writeln!(out, "{}", status_header()).map_err(io)?;
            for s in &all {
                writeln!(out, "{}", status_row(s)).map_err(io)?;
            }
        }
        return Ok(Shown::Listed);
    }
    if !opts.json {
        writeln!(out, "{:<9}{}", "time", status_header()).map_err(io)?;
    }
    let watch_opts = WatchOptions {
        until: opts.wait.clone(),
        timeout: opts.timeout.map(Duration::from_secs),
        ..WatchOptions::default()
    };
    let mut failed_write = None;
    let last = watch(store, &watch_opts, |s| {
        let line = if opts.json {
            serde_json::to_string(s).map_err(|e| PipelineError::corrupt("status", e))
        } else {
            Ok(format!(
                "{:<9}{}",
                clock(std::time::SystemTime::now()),
                status_row(s)
            ))
        };
        let r = line.and_then(|l| writeln!(out, "{l}").and_then(|_| out.flush()).map_err(io));
        if let Err(e) = r {
            failed_write.get_or_insert(e);
        }
    })?;
    match failed_write {
        Some(e) => Err(e),
        None => Ok(Shown::Followed(last)),
    }
}

/// `HH:MM:SS` (UTC) of a time.
fn clock(t: std::time::SystemTime) -> String {
    let s = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        % 86_400;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_pipeline::LocalStore;

    #[test]
    fn clock_is_utc_time_of_day() {
        let t = std::time::UNIX_EPOCH + Duration::from_secs(1_795_000_000 + 3_725);
        // 1_795_000_000 s is 2026-11-18 11:06:40 UTC; plus 1 h 2 min 5 s.
        assert_eq!(clock(t), "12:08:45");
    }

    #[test]
    fn rows_show_progress_and_reasons() {
        let mut s = Status::new("cap-0123abcd", "uploads/cap.pcap", State::Classifying);
        s.shards = Some(26);
        s.shards_done = 3;
        s.flows = 259_000;
        let row = status_row(&s);
        assert!(row.starts_with("cap-0123abcd "), "{row}");
        assert!(
            row.contains(" classifying ") && row.contains(" 3/26 "),
            "{row}"
        );
        assert!(row.ends_with("259000        -"), "{row}");
        s.state = State::Failed;
        s.reason = Some("not a capture: bad magic".into());
        let row = status_row(&s);
        assert_eq!(
            row.split_whitespace().collect::<Vec<_>>(),
            [
                "cap-0123abcd",
                "failed",
                "3/26",
                "259000",
                "-",
                "not",
                "a",
                "capture:",
                "bad",
                "magic"
            ]
        );
        assert!(row.ends_with("-  not a capture: bad magic"), "{row}");
        assert_eq!(status_header().find("state"), status_row(&s).find("failed"));
        // Done: the alerts and the classes with the most of them.
        s.state = State::Done;
        s.reason = None;
        s.shards_done = 26;
        s.alerts = Some(12_345);
        s.alert_classes = vec!["Port Scan 12,000".into(), "DDoS 345".into()];
        let row = status_row(&s);
        assert!(
            row.ends_with("259000   12,345  Port Scan 12,000, DDoS 345"),
            "{row}"
        );
        assert_eq!(
            status_header().find("alerts").map(|i| i + 6),
            row.find("12,345").map(|i| i + 6)
        );
    }

    #[test]
    fn show_status_writes_the_table_and_says_when_a_capture_failed() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        let (mut out, mut note) = (Vec::new(), Vec::new());
        let shown = show_status(&store, &ShowOptions::default(), "DIR", &mut out, &mut note);
        assert_eq!(shown.unwrap(), Shown::Listed);
        assert_eq!(String::from_utf8_lossy(&note), "no captures in DIR\n");
        let mut st = Status::new("bad-0123abcd", "uploads/bad.pcap", State::Failed);
        st.reason = Some("not a capture".into());
        let js = serde_json::to_vec(&st).unwrap();
        store
            .put(&weir_pipeline::status_key("bad-0123abcd"), &js)
            .unwrap();
        out.clear();
        let shown = show_status(&store, &ShowOptions::default(), "DIR", &mut out, &mut note);
        let text = String::from_utf8_lossy(&out).into_owned();
        assert!(
            text.starts_with("capture") && text.contains("not a capture"),
            "{text}"
        );
        assert!(!shown.unwrap().failed());
        let wait = ShowOptions {
            wait: Some("bad-0123abcd".into()),
            json: true,
            timeout: Some(5),
            ..ShowOptions::default()
        };
        out.clear();
        let shown = show_status(&store, &wait, "DIR", &mut out, &mut note).unwrap();
        assert!(shown.failed());
        let line: Status = serde_json::from_slice(out.trim_ascii()).unwrap();
        assert_eq!(line.state, State::Failed);
    }
}
