//! Figures over time for a scenario report: once a second while the units publish, how
//! many points the broker acknowledged in that second and, when the caller named the
//! gateway's process, its resident memory. The end-of-run totals say how fast a run was on
//! average; these series show whether it held steady, stalled or grew its memory.
//!
//! Memory is read from `/proc/<pid>/status` (`VmRSS`) when the gateway runs on this machine
//! and its pid was given, else from `process_resident_memory_bytes` on the gateway's
//! `/metrics` (a gateway run with `--metrics-token-file` answers that only to its token, so
//! it is then not measured); nothing is guessed otherwise.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

use super::ErrorLog;

/// How often the sampler looks.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);
/// Bounds the series (and the report) however long the run: an hour-long run plus its
/// acknowledgement wait fits, anything beyond is cut and flagged.
pub const MAX_SAMPLES: usize = 4_000;

/// One look at the run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TimelineSample {
    /// Seconds since the first scheduled send.
    pub t_s: f64,
    /// Points acknowledged since the start.
    pub acked_total: u64,
    /// Points acknowledged since the previous sample, per second of that interval.
    pub acked_per_s: f64,
    /// The gateway's resident set in KiB; `None` when not measured or unreadable.
    pub gateway_rss_kib: Option<u64>,
}

/// The series of one run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Timeline {
    pub interval_s: f64,
    /// The gateway process whose memory was read; `None`: memory was not measured.
    pub gateway_pid: Option<u32>,
    pub samples: Vec<TimelineSample>,
    /// The run outlasted `MAX_SAMPLES` and the later seconds are not in the series.
    pub truncated: bool,
    /// Why memory samples are missing although a pid was given (first failure only).
    pub memory_error: Option<String>,
}

impl Timeline {
    /// The gateway's resident memory in MiB at each sample that read it, against `x` of
    /// that sample: what the memory charts draw.
    pub fn gateway_mib(&self, x: impl Fn(&TimelineSample) -> f64) -> Vec<(f64, f64)> {
        self.samples
            .iter()
            .filter_map(|sample| {
                let kib = sample.gateway_rss_kib?;
                Some((x(sample), kib as f64 / 1024.0))
            })
            .collect()
    }

    /// Whether at least one memory figure was read.
    pub fn has_memory(&self) -> bool {
        self.samples
            .iter()
            .any(|sample| sample.gateway_rss_kib.is_some())
    }
}

/// `VmRSS` of a `/proc/<pid>/status` text, in KiB.
pub fn parse_vm_rss_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let mut fields = line["VmRSS:".len()..].split_whitespace();
    let value: u64 = fields.next()?.parse().ok()?;
    match fields.next() {
        Some("kB") | None => Some(value),
        Some(_) => None,
    }
}

/// Reads the resident memory of process `pid` on this machine.
pub(crate) fn read_rss_kib(pid: u32) -> Result<u64, String> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).map_err(|error| format!("{path}: {error}"))?;
    parse_vm_rss_kib(&status).ok_or_else(|| format!("{path} has no readable VmRSS line"))
}

/// `process_resident_memory_bytes` of a `/metrics` page, in KiB.
pub fn parse_metrics_rss_kib(page: &str) -> Option<u64> {
    let value = page
        .lines()
        .find_map(|line| line.strip_prefix("process_resident_memory_bytes "))?;
    let bytes: f64 = value.trim().parse().ok()?;
    (bytes.is_finite() && bytes >= 0.0).then_some((bytes / 1024.0) as u64)
}

/// The gateway's resident memory in KiB: `/proc/<pid>/status` with a pid, else the
/// gateway's `/metrics` at `http_base`; `None` with neither. The first failure is kept in
/// `timeline.memory_error`.
async fn read_memory(
    timeline: &mut Timeline,
    http: &reqwest::Client,
    http_base: Option<&str>,
) -> Option<u64> {
    let read = match (timeline.gateway_pid, http_base) {
        (Some(pid), _) => read_rss_kib(pid),
        (None, Some(base)) => {
            let url = format!("{}/metrics", base.trim_end_matches('/'));
            let page = match http.get(&url).timeout(SAMPLE_INTERVAL).send().await {
                Ok(response) if response.status().is_success() => {
                    response.text().await.map_err(|error| error.to_string())
                }
                Ok(response) => Err(format!("answered {}", response.status())),
                Err(error) => Err(error.to_string()),
            };
            page.and_then(|page| {
                parse_metrics_rss_kib(&page)
                    .ok_or_else(|| "no process_resident_memory_bytes".to_owned())
            })
            .map_err(|why| format!("{url}: {why}"))
        }
        (None, None) => return None,
    };
    match read {
        Ok(kib) => Some(kib),
        Err(error) => {
            timeline.memory_error.get_or_insert(error);
            None
        }
    }
}

/// Samples until `done` turns `true` (or its sender is gone), then takes one last sample
/// for the partial interval. `acked` is the run's shared acknowledgement counter; runs use
/// `SAMPLE_INTERVAL`, tests a shorter one. Memory comes from the pid, else from the
/// gateway's `/metrics` at `http_base` (see [`read_memory`]).
pub(crate) async fn sample_timeline(
    acked: Arc<AtomicU64>,
    gateway_pid: Option<u32>,
    http_base: Option<String>,
    start: Instant,
    interval: Duration,
    mut done: watch::Receiver<bool>,
) -> Timeline {
    let mut timeline = Timeline {
        interval_s: interval.as_secs_f64(),
        gateway_pid,
        ..Timeline::default()
    };
    let mut previous = (start, 0u64);
    let mut ticker = tokio::time::interval_at(start + interval, interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    // The baseline: memory before the load, and zero acknowledged.
    tokio::time::sleep_until(start).await;
    let http = reqwest::Client::new();
    let rss = read_memory(&mut timeline, &http, http_base.as_deref()).await;
    push_sample(&mut timeline, &acked, start, &mut previous, rss);
    loop {
        // Decided first: the watch's guard must not be held across the memory read.
        let finished = tokio::select! {
            _ = ticker.tick() => false,
            _ = done.wait_for(|done| *done) => true,
        };
        if !finished && timeline.samples.len() >= MAX_SAMPLES {
            timeline.truncated = true;
            break;
        }
        if !finished
            || (previous.0.elapsed() >= interval / 10 && timeline.samples.len() < MAX_SAMPLES)
        {
            let rss = read_memory(&mut timeline, &http, http_base.as_deref()).await;
            push_sample(&mut timeline, &acked, start, &mut previous, rss);
        }
        if finished {
            break;
        }
    }
    if timeline.truncated {
        // Past the cap: nothing more is recorded, but the caller still decides when the
        // run is over.
        let _ = done.wait_for(|done| *done).await;
    }
    timeline
}

/// A timeline being sampled in its own task, from `start` until [`Sampler::finish`]: what
/// every scenario with a per-second series and the gateway's memory starts and ends.
pub(crate) struct Sampler {
    /// Dropping it would end the sampling too; `finish` flips it so the last partial
    /// interval is sampled first.
    done: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Timeline>,
}

impl Sampler {
    /// Samples `counter` (acknowledgements, deliveries, calls: whatever the run counts)
    /// and the gateway's memory once a second from `start`: from `/proc` with its pid,
    /// else from the `/metrics` of the gateway at `http_base` (`None`: not a gateway).
    pub(crate) fn start(
        counter: Arc<AtomicU64>,
        gateway_pid: Option<u32>,
        http_base: Option<String>,
        start: Instant,
    ) -> Self {
        let (done, done_rx) = watch::channel(false);
        let task = tokio::spawn(sample_timeline(
            counter,
            gateway_pid,
            http_base,
            start,
            SAMPLE_INTERVAL,
            done_rx,
        ));
        Self { done, task }
    }

    /// Takes the last sample and returns the series; a sampler that failed is an error of
    /// the run and an empty series.
    pub(crate) async fn finish(self, errors: &ErrorLog) -> Timeline {
        self.done.send_replace(true);
        self.task.await.unwrap_or_else(|error| {
            errors.push(format!("the timeline sampler failed: {error}"));
            Timeline::default()
        })
    }
}

fn push_sample(
    timeline: &mut Timeline,
    acked: &AtomicU64,
    start: Instant,
    previous: &mut (Instant, u64),
    rss: Option<u64>,
) {
    let now = Instant::now();
    let total = acked.load(Ordering::Relaxed);
    let seconds = now.duration_since(previous.0).as_secs_f64();
    let per_s = if seconds > 0.0 && !timeline.samples.is_empty() {
        total.saturating_sub(previous.1) as f64 / seconds
    } else {
        0.0
    };
    timeline.samples.push(TimelineSample {
        t_s: now.duration_since(start).as_secs_f64(),
        acked_total: total,
        acked_per_s: per_s,
        gateway_rss_kib: rss,
    });
    *previous = (now, total);
}

#[cfg(test)]
impl Timeline {
    /// A steady series for report tests: `seconds` samples of `per_s` a second after the
    /// first, and memory around 40 MiB when `gateway_pid` is given.
    pub(crate) fn steady(seconds: u64, per_s: f64, gateway_pid: Option<u32>) -> Self {
        let samples = (0..seconds)
            .map(|second| TimelineSample {
                t_s: second as f64,
                acked_total: second * per_s as u64,
                acked_per_s: if second == 0 { 0.0 } else { per_s },
                gateway_rss_kib: gateway_pid.map(|_| 40_000 + second * 10),
            })
            .collect();
        Self {
            interval_s: 1.0,
            gateway_pid,
            samples,
            truncated: false,
            memory_error: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_rss_is_read_in_kib() {
        let status = "Name:\tfleetgate\nVmPeak:\t  200 kB\nVmRSS:\t   51234 kB\nThreads:\t9\n";
        assert_eq!(parse_vm_rss_kib(status), Some(51_234));
        assert_eq!(parse_vm_rss_kib("Name:\tx\n"), None);
        assert_eq!(parse_vm_rss_kib("VmRSS:\tlots kB\n"), None);
        assert_eq!(parse_vm_rss_kib("VmRSS:\t12 MB\n"), None);
    }

    #[test]
    fn metrics_memory_is_read_in_kib() {
        let page = "# TYPE process_resident_memory_bytes gauge\n\
            process_resident_memory_bytes 52461568.0\nprocess_open_fds 12\n# EOF\n";
        assert_eq!(parse_metrics_rss_kib(page), Some(51_232));
        assert_eq!(parse_metrics_rss_kib("process_open_fds 12\n"), None);
        assert_eq!(
            parse_metrics_rss_kib("process_resident_memory_bytes NaN\n"),
            None
        );
    }

    #[test]
    fn own_process_memory_is_readable() {
        if std::path::Path::new("/proc/self/status").exists() {
            let kib = read_rss_kib(std::process::id()).expect("own status");
            assert!(kib > 0);
        }
    }

    #[tokio::test]
    async fn samples_each_interval_until_done() {
        let interval = Duration::from_millis(100);
        let acked = Arc::new(AtomicU64::new(0));
        let (done, done_rx) = watch::channel(false);
        let start = Instant::now();
        let task = tokio::spawn(sample_timeline(
            acked.clone(),
            Some(std::process::id()),
            None,
            start,
            interval,
            done_rx,
        ));
        for _ in 0..5 {
            acked.fetch_add(10, Ordering::Relaxed);
            tokio::time::sleep(interval).await;
        }
        tokio::time::sleep(interval / 2).await;
        done.send_replace(true);
        let timeline = task.await.expect("sampler");
        assert!(!timeline.truncated);
        // A baseline, about one sample per interval (loose: the machine is shared), and the
        // partial last one.
        let count = timeline.samples.len();
        assert!((3..=8).contains(&count), "{timeline:?}");
        assert_eq!(timeline.samples[0].acked_per_s, 0.0);
        let last = timeline.samples[count - 1];
        assert_eq!(last.acked_total, 50);
        assert!(timeline
            .samples
            .windows(2)
            .all(|pair| pair[0].t_s < pair[1].t_s));
        let rate_sum: f64 = timeline
            .samples
            .windows(2)
            .map(|pair| pair[1].acked_per_s * (pair[1].t_s - pair[0].t_s))
            .sum();
        let counted = (last.acked_total - timeline.samples[0].acked_total) as f64;
        assert!(
            (rate_sum - counted).abs() < 0.01,
            "rates add up to what was counted after the baseline: {rate_sum} vs {counted}"
        );
        if std::path::Path::new("/proc/self/status").exists() {
            assert!(timeline.has_memory() && timeline.memory_error.is_none());
        }
    }

    #[tokio::test]
    async fn an_unreadable_pid_is_reported_not_guessed() {
        let acked = Arc::new(AtomicU64::new(0));
        let (done, done_rx) = watch::channel(false);
        done.send_replace(true);
        let timeline = sample_timeline(
            acked,
            Some(u32::MAX),
            None,
            Instant::now(),
            SAMPLE_INTERVAL,
            done_rx,
        )
        .await;
        assert!(!timeline.has_memory());
        assert!(timeline.memory_error.is_some());
    }
}
