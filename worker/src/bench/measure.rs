//! The worker process's own accounting (`/proc/<pid>/stat` and `status`),
//! percentiles, and the replay time of recorded histories.

use std::path::{Path, PathBuf};
use std::time::Instant;

use temporalio_client::WorkflowHistory;
use temporalio_sdk::workflow_replayer::{WorkflowReplayer, WorkflowReplayerOptions};

use handoff_workflows::deal_handoff::DealHandoffWorkflow;

use crate::exit::Exit;

/// A running process, read through `/proc`.
pub(crate) struct Process {
    pid: u32,
}

impl Process {
    pub(crate) fn new(pid: u32) -> Self {
        Self { pid }
    }

    /// User plus system CPU seconds so far.
    pub(crate) fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).unwrap_or_default();
        // Fields after the command name, which is in parentheses and may hold spaces.
        let after = stat.rsplit_once(") ").map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = after.split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        // utime and stime are fields 14 and 15 of the line, 11 and 12 here.
        // SAFETY: sysconf has no preconditions.
        let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        (ticks(11) + ticks(12)) / per_second.max(1.0)
    }

    /// Resident set size now, in KiB.
    pub(crate) fn rss_kib(&self) -> u64 {
        self.status_kib("VmRSS:")
    }

    /// The highest resident set size so far, in KiB.
    pub(crate) fn peak_rss_kib(&self) -> u64 {
        self.status_kib("VmHWM:")
    }

    fn status_kib(&self, key: &str) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .unwrap_or_default()
            .lines()
            .find_map(|line| line.strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .unwrap_or(0)
    }
}

/// The `q` quantile (0 to 1) of `values`, nearest rank.
pub(crate) fn percentile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// The replay time of one recorded history.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub(crate) struct ReplayTime {
    pub(crate) history: String,
    pub(crate) events: usize,
    /// The median of twenty replays, in milliseconds.
    pub(crate) ms: f64,
}

/// Replays the longest and the shortest recorded histories of `dir` twenty
/// times each: side by side they tell a replay's fixed cost from its cost
/// per event.
pub(crate) async fn replay_times(dir: &Path) -> anyhow::Result<(ReplayTime, ReplayTime)> {
    let mut histories: Vec<(PathBuf, Vec<u8>, usize)> = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| {
        Exit::config(format!(
            "cannot read recorded histories in {}: {e} (run from the repository, or pass --histories)",
            dir.display()
        ))
    })?;
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let bytes = std::fs::read(&path)?;
        let events = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v["events"].as_array().map(Vec::len))
            .unwrap_or(0);
        if events > 0 {
            histories.push((path, bytes, events));
        }
    }
    histories.sort_by(|(a, _, m), (b, _, n)| (m, a).cmp(&(n, b)));
    let (Some(shortest), Some(longest)) = (histories.first(), histories.last()) else {
        return Err(Exit::config(format!("no histories in {}", dir.display())));
    };
    let options = WorkflowReplayerOptions::new()
        .register_workflow::<DealHandoffWorkflow>()
        .map_err(|e| Exit::runtime(format!("registering the workflow for replay: {e}")))?
        .build();
    let replayer = WorkflowReplayer::new(options)
        .map_err(|e| Exit::runtime(format!("building the replayer: {e}")))?;
    let mut timed = Vec::new();
    for (path, bytes, events) in [longest, shortest] {
        let mut times = Vec::new();
        for _ in 0..20 {
            let history = WorkflowHistory::from_json(bytes)
                .map_err(|e| Exit::data(format!("{}: {e}", path.display())))?;
            let began = Instant::now();
            replayer
                .replay_workflow(history)
                .await
                .map_err(|e| Exit::runtime(format!("replay of {} failed: {e}", path.display())))?;
            times.push(began.elapsed().as_secs_f64() * 1000.0);
        }
        timed.push(ReplayTime {
            history: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            events: *events,
            ms: percentile(&times, 0.5),
        });
    }
    let shortest = timed.pop().unwrap_or_default();
    let longest = timed.pop().unwrap_or_default();
    Ok((longest, shortest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 0.5), 50.0);
        assert_eq!(percentile(&values, 0.99), 99.0);
        assert_eq!(percentile(&[3.0], 0.99), 3.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }

    #[test]
    fn this_process_reads_its_own_cpu_and_memory() {
        let me = Process::new(std::process::id());
        let busy = Instant::now();
        let mut x = 0u64;
        while busy.elapsed().as_millis() < 50 {
            x = x.wrapping_add(1);
        }
        assert!(x > 0);
        assert!(me.cpu_seconds() > 0.0);
        assert!(me.rss_kib() > 1000);
        assert!(me.peak_rss_kib() >= me.rss_kib());
    }
}
