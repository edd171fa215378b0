//! The standard process metrics every Prometheus client exports (`process_resident_memory_bytes`,
//! `process_virtual_memory_bytes`, `process_cpu_seconds_total`, `process_start_time_seconds`,
//! `process_open_fds`, `process_max_fds`), read from `/proc/self` at each scrape, so they are
//! never stale and cost nothing between scrapes. Off Linux (no `/proc`) they are left out.
//!
//! Two small files are read by hand rather than through a crate: `/proc/self/stat` (CPU
//! time, start time, virtual size) and `/proc/self/status` (`VmRSS`, in KiB, so no
//! page-size call is needed), plus the entries of `/proc/self/fd` and the boot time from
//! `/proc/stat`; the open-file soft limit comes from `getrlimit`, as for the session cap.
//! Times in `stat` are in clock ticks of `USER_HZ`, which is 100 on every architecture
//! Linux runs us on (reading it needs `sysconf`, that is `unsafe` FFI, which the workspace
//! forbids); the Prometheus Go client's procfs makes the same choice.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// Clock ticks per second in `/proc/*/stat` (`USER_HZ`).
pub const USER_HZ: f64 = 100.0;

/// One reading of the process; `None` where the file was missing or unreadable.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcessSample {
    /// Resident set size, bytes.
    pub resident_bytes: Option<u64>,
    /// Virtual memory size, bytes.
    pub virtual_bytes: Option<u64>,
    /// User plus system CPU time since the process started, seconds.
    pub cpu_seconds: Option<f64>,
    /// When the process started, seconds since the Unix epoch.
    pub start_time_seconds: Option<f64>,
    /// Open file descriptors.
    pub open_fds: Option<u64>,
    /// The soft limit on open file descriptors; `None` when unlimited.
    pub max_fds: Option<u64>,
}

/// What `/proc/<pid>/stat` says: CPU time and start time in ticks, virtual size in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// `utime + stime`, clock ticks.
    pub cpu_ticks: u64,
    /// Start time after boot, clock ticks.
    pub start_ticks: u64,
    /// `vsize`, bytes.
    pub virtual_bytes: u64,
}

/// Parses `/proc/<pid>/stat`. The command name (field 2) is in parentheses and may hold
/// spaces and parentheses itself, so the fields are counted after its last `)`.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let after_name = &text[text.rfind(')')? + 1..];
    // Field 3 (`state`) is the first after the name; field n is at index n - 3.
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(Stat {
        cpu_ticks: field(14)?.checked_add(field(15)?)?,
        start_ticks: field(22)?,
        virtual_bytes: field(23)?,
    })
}

/// `VmRSS` of `/proc/<pid>/status`, in bytes (the file says KiB, written `kB`).
pub fn parse_resident_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let mut fields = line["VmRSS:".len()..].split_whitespace();
    let kib: u64 = fields.next()?.parse().ok()?;
    (fields.next() == Some("kB")).then(|| kib.saturating_mul(1024))
}

/// The boot time (`btime`) of `/proc/stat`, seconds since the Unix epoch.
pub fn parse_boot_time(proc_stat: &str) -> Option<u64> {
    proc_stat
        .lines()
        .find_map(|line| line.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

/// This process's soft open-file limit, asked of the kernel the way the MQTT session cap
/// asks it at start-up (`getrlimit`); `None` when unlimited or unknown.
pub fn max_fds() -> Option<u64> {
    let (soft, _) = rlimit::getrlimit(rlimit::Resource::NOFILE).ok()?;
    (soft != rlimit::INFINITY).then_some(soft)
}

/// Reads this process's figures now.
pub fn sample() -> ProcessSample {
    let read = |path: &str| std::fs::read_to_string(path).ok();
    let stat = read("/proc/self/stat").as_deref().and_then(parse_stat);
    let boot = read("/proc/stat").as_deref().and_then(parse_boot_time);
    ProcessSample {
        resident_bytes: read("/proc/self/status")
            .as_deref()
            .and_then(parse_resident_bytes),
        virtual_bytes: stat.map(|stat| stat.virtual_bytes),
        cpu_seconds: stat.map(|stat| stat.cpu_ticks as f64 / USER_HZ),
        start_time_seconds: stat
            .zip(boot)
            .map(|(stat, boot)| boot as f64 + stat.start_ticks as f64 / USER_HZ),
        // The directory's own descriptor, open while it is read, is counted too (as the
        // Go client does).
        open_fds: std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|entries| entries.count() as u64),
        max_fds: max_fds(),
    }
}

/// Registers no state: each scrape calls [`sample`] and writes what it found.
#[derive(Debug, Default)]
pub struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let now = sample();
        let gauges = [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                now.resident_bytes.map(|v| v as f64),
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes",
                now.virtual_bytes.map(|v| v as f64),
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since the Unix epoch in seconds",
                now.start_time_seconds,
            ),
            (
                "process_open_fds",
                "Number of open file descriptors",
                now.open_fds.map(|v| v as f64),
            ),
            (
                "process_max_fds",
                "Maximum number of open file descriptors (soft limit)",
                now.max_fds.map(|v| v as f64),
            ),
        ];
        for (name, help, value) in gauges {
            if let Some(value) = value {
                let gauge = ConstGauge::new(value);
                gauge.encode(encoder.encode_descriptor(
                    name,
                    help,
                    None,
                    gauge.metric_type(),
                )?)?;
            }
        }
        if let Some(seconds) = now.cpu_seconds {
            let counter = ConstCounter::new(seconds);
            let help = "Total user and system CPU time spent in seconds";
            let metric = encoder.encode_descriptor(
                "process_cpu_seconds",
                help,
                None,
                counter.metric_type(),
            )?;
            counter.encode(metric)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real `stat` line, with a command name holding a space and a parenthesis.
    const STAT: &str = "4242 (fleet gate) x) S 1 4242 4242 0 -1 4194560 12345 0 7 0 \
        250 75 0 0 20 0 9 0 123456 987654321 5120 18446744073709551615 1 1 0 0 0 0 0 4096 \
        17664 0 0 0 17 1 0 0 0 0 0\n";

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let stat = parse_stat(STAT).expect("parses");
        assert_eq!(stat.cpu_ticks, 325, "utime 250 + stime 75");
        assert_eq!(stat.start_ticks, 123_456);
        assert_eq!(stat.virtual_bytes, 987_654_321);
        assert_eq!(parse_stat("4242 (short) S 1 2"), None, "too few fields");
        assert_eq!(parse_stat("no parenthesis"), None);
    }

    #[test]
    fn resident_memory_is_read_in_bytes() {
        let status = "Name:\tfleetgate\nVmPeak:\t  200 kB\nVmRSS:\t   51234 kB\nThreads:\t9\n";
        assert_eq!(parse_resident_bytes(status), Some(51_234 * 1024));
        assert_eq!(parse_resident_bytes("Name:\tx\n"), None);
        assert_eq!(
            parse_resident_bytes("VmRSS:\t12 MB\n"),
            None,
            "unknown unit"
        );
        assert_eq!(parse_resident_bytes("VmRSS:\tlots kB\n"), None);
    }

    #[test]
    fn boot_time_is_read_from_proc_stat() {
        let proc_stat = "cpu  1 2 3 4\nintr 5\nctxt 6\nbtime 1764460800\nprocesses 7\n";
        assert_eq!(parse_boot_time(proc_stat), Some(1_764_460_800));
        assert_eq!(parse_boot_time("cpu 1\n"), None);
    }

    #[test]
    fn the_open_file_limit_is_the_soft_one() {
        let (soft, _) = rlimit::getrlimit(rlimit::Resource::NOFILE).expect("getrlimit");
        let expected = (soft != rlimit::INFINITY).then_some(soft);
        assert_eq!(max_fds(), expected);
    }

    #[test]
    fn this_process_is_read_when_proc_exists() {
        if !std::path::Path::new("/proc/self/stat").exists() {
            return;
        }
        let now = sample();
        assert!(now.resident_bytes.is_some_and(|bytes| bytes > 0), "{now:?}");
        assert!(now.open_fds.is_some_and(|fds| fds > 0), "{now:?}");
        assert!(
            now.max_fds
                .is_some_and(|max| max >= now.open_fds.unwrap_or(0)),
            "{now:?}"
        );
        let start = now.start_time_seconds.expect("start time");
        let unix_now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after the epoch")
            .as_secs_f64();
        assert!(
            start <= unix_now + 1.0 && start > unix_now - 86_400.0 * 365.0,
            "{start}"
        );
    }
}
