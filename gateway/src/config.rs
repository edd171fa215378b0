//! Settings for `fleetgate serve`: flags, then `FLEETGATE_*` environment variables, then an
//! optional TOML file, then the embedded defaults (DESIGN section 7).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context as _};
use serde::Deserialize;

/// The command line. Every setting is optional here so that "not given" can fall through
/// to the environment (clap reads `FLEETGATE_*`) and then to the file.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeArgs {
    /// TOML file with any of the settings below (lowest precedence but the defaults).
    #[arg(long, env = "FLEETGATE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Directory for the database, the CA, `ready.json` and the bootstrap token.
    #[arg(long, env = "FLEETGATE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// HTTP control API address; port 0 picks a free port.
    #[arg(long, env = "FLEETGATE_HTTP_ADDR")]
    pub http_addr: Option<SocketAddr>,
    /// HTTPS address for the API and the console (off by default). Its certificate is the
    /// gateway's server certificate (from the gateway CA, for `--mqtt-tls-names`) unless
    /// `--http-tls-cert` and `--http-tls-key` name PEM files.
    #[arg(long, env = "FLEETGATE_HTTP_TLS_ADDR")]
    pub http_tls_addr: Option<SocketAddr>,
    /// PEM certificate chain for the HTTPS listener (with `--http-tls-key`).
    #[arg(long, env = "FLEETGATE_HTTP_TLS_CERT")]
    pub http_tls_cert: Option<PathBuf>,
    /// PEM private key for the HTTPS listener (with `--http-tls-cert`).
    #[arg(long, env = "FLEETGATE_HTTP_TLS_KEY")]
    pub http_tls_key: Option<PathBuf>,
    /// MQTT over TLS address (client certificates required).
    #[arg(long, env = "FLEETGATE_MQTT_TLS_ADDR")]
    pub mqtt_tls_addr: Option<SocketAddr>,
    /// Plain MQTT for development only: loopback only, no authentication (the client id is
    /// the identity; the topic ACL applies). Off by default.
    #[arg(long, env = "FLEETGATE_MQTT_PLAIN_ADDR")]
    pub mqtt_plain_addr: Option<SocketAddr>,
    /// Telemetry group-commit window in milliseconds: the most a hard crash can lose.
    #[arg(long, env = "FLEETGATE_COMMIT_WINDOW_MS")]
    pub commit_window_ms: Option<u64>,
    /// HTTP worker threads.
    #[arg(long, env = "FLEETGATE_HTTP_WORKERS")]
    pub http_workers: Option<usize>,
    /// Names (DNS or IP) in the broker's TLS certificate, comma separated; units must
    /// connect using one of them.
    #[arg(long, env = "FLEETGATE_MQTT_TLS_NAMES", value_delimiter = ',')]
    pub mqtt_tls_names: Option<Vec<String>>,
    /// Validity of issued device certificates, in days.
    #[arg(long, env = "FLEETGATE_DEVICE_CERT_DAYS")]
    pub device_cert_days: Option<u64>,
    /// Who delivers SMS invitations: `log` (default; writes them to the log) or `webhook`
    /// (POSTs each as JSON to `--sms-webhook-url`, retrying with backoff until it succeeds).
    #[arg(long, env = "FLEETGATE_SMS_SENDER", value_enum)]
    pub sms_sender: Option<SmsSenderKind>,
    /// The URL the `webhook` SMS sender POSTs invitations to (http or https).
    #[arg(long, env = "FLEETGATE_SMS_WEBHOOK_URL")]
    pub sms_webhook_url: Option<String>,
    /// Most MQTT sessions at once; a CONNECT beyond is refused (MQTT 5 0x97 quota
    /// exceeded, 3.1.1 0x03 server unavailable). Default: the open-file soft limit less
    /// 1,024 (HTTP clients, the store) and less the live-stream cap.
    #[arg(long, env = "FLEETGATE_MQTT_MAX_SESSIONS")]
    pub mqtt_max_sessions: Option<usize>,
    /// Most open live streams (SSE) at once; beyond it a new stream answers 503.
    #[arg(long, env = "FLEETGATE_SSE_MAX_STREAMS")]
    pub sse_max_streams: Option<usize>,
    /// Most open live streams per principal; beyond it a new stream answers 429.
    #[arg(long, env = "FLEETGATE_SSE_MAX_STREAMS_PER_PRINCIPAL")]
    pub sse_max_streams_per_principal: Option<usize>,
    /// Start a new store even though the data dir holds an earlier install's state (its CA
    /// or bootstrap token) but no database: without it the gateway refuses, so a lost or
    /// emptied `fleetgate.redb` never turns silently into a fresh install.
    #[arg(long)]
    pub init: bool,
    /// A reverse proxy whose `X-Forwarded-For` names the client, for the per-address
    /// limit on failed authentications (repeat for several); others' headers are ignored.
    #[arg(
        long = "trusted-proxy",
        env = "FLEETGATE_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Failed authentications one source address may make per minute; then 429.
    #[arg(long, env = "FLEETGATE_AUTH_FAILURES_PER_MINUTE")]
    pub auth_failures_per_minute: Option<u32>,
    /// Days telemetry is kept, unless the owner account set its own; 0 keeps forever.
    #[arg(long, env = "FLEETGATE_TELEMETRY_RETENTION_DAYS")]
    pub telemetry_retention_days: Option<u32>,
    /// Days access events are kept; 0 keeps forever.
    #[arg(long, env = "FLEETGATE_ACCESS_EVENT_RETENTION_DAYS")]
    pub access_event_retention_days: Option<u32>,
    /// Days audit entries are kept; 0 keeps forever. At least the two above.
    #[arg(long, env = "FLEETGATE_AUDIT_RETENTION_DAYS")]
    pub audit_retention_days: Option<u32>,
    /// Hours between two compactions of the database file; 0 never compacts.
    #[arg(long, env = "FLEETGATE_COMPACT_EVERY_HOURS")]
    pub compact_every_hours: Option<u64>,
    /// A file holding the token `GET /metrics` requires as `Authorization: Bearer <token>`
    /// (401 otherwise). Without it `/metrics` needs no token.
    #[arg(long, env = "FLEETGATE_METRICS_TOKEN_FILE")]
    pub metrics_token_file: Option<PathBuf>,
    /// Map tiles for the console's tracks: an `http(s)` URL template with `{z}`, `{x}` and
    /// `{y}` (e.g. `https://tile.openstreetmap.org/{z}/{x}/{y}.png`). Off by default: the
    /// console then draws a track on a plain grid and loads nothing from outside.
    #[arg(long, env = "FLEETGATE_MAP_TILE_URL")]
    pub map_tile_url: Option<String>,
    /// Whether the SMS telling an operator of a personal keypad key carries the PIN
    /// (default true; `false` sends the key's assets and dates only).
    #[arg(long, env = "FLEETGATE_SMS_KEY_PIN")]
    pub sms_key_pin: Option<bool>,
}

/// Which [`crate::outbox::SmsSender`] drains the invitation outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmsSenderKind {
    #[default]
    Log,
    Webhook,
}

/// The file form of the same settings.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    http_addr: Option<SocketAddr>,
    http_tls_addr: Option<SocketAddr>,
    http_tls_cert: Option<PathBuf>,
    http_tls_key: Option<PathBuf>,
    mqtt_tls_addr: Option<SocketAddr>,
    mqtt_plain_addr: Option<SocketAddr>,
    commit_window_ms: Option<u64>,
    http_workers: Option<usize>,
    mqtt_tls_names: Option<Vec<String>>,
    device_cert_days: Option<u64>,
    sms_sender: Option<SmsSenderKind>,
    sms_webhook_url: Option<String>,
    mqtt_max_sessions: Option<usize>,
    sse_max_streams: Option<usize>,
    sse_max_streams_per_principal: Option<usize>,
    telemetry_retention_days: Option<u32>,
    access_event_retention_days: Option<u32>,
    audit_retention_days: Option<u32>,
    compact_every_hours: Option<u64>,
    metrics_token_file: Option<PathBuf>,
    map_tile_url: Option<String>,
    sms_key_pin: Option<bool>,
}

/// Resolved settings.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub http_addr: SocketAddr,
    /// The HTTPS listener (`None`: off); the session cookie is `Secure` there.
    pub http_tls_addr: Option<SocketAddr>,
    /// Certificate chain and key PEM files for HTTPS; `None`: the gateway's own server
    /// certificate.
    pub http_tls_files: Option<(PathBuf, PathBuf)>,
    /// `None` turns the TLS listener off (tests of the plain listener only).
    pub mqtt_tls_addr: Option<SocketAddr>,
    pub mqtt_plain_addr: Option<SocketAddr>,
    pub commit_window: Duration,
    pub http_workers: usize,
    pub mqtt_tls_names: Vec<String>,
    pub device_cert_validity: Duration,
    /// The longest the scheduler sleeps without looking at the clock again. Deadlines are
    /// met exactly (it sleeps until the next one); this bounds how late a jump of the
    /// clock is noticed. Not a flag: tests with a manual clock shorten it.
    pub scheduler_max_nap: Duration,
    /// How long a key call waits for units to acknowledge their new key set before it
    /// answers with the rest as `pending`.
    pub key_ack_wait: Duration,
    pub sms_sender: SmsSenderKind,
    /// Required with the `webhook` sender; checked by [`Config::validate`].
    pub sms_webhook_url: Option<String>,
    /// The most one webhook call may take before it counts as failed.
    pub sms_webhook_timeout: Duration,
    /// The wait after a first failed send; it doubles per failure up to
    /// `sms_retry_cap`. Not flags: tests shorten them.
    pub sms_retry_base: Duration,
    pub sms_retry_cap: Duration,
    /// The transport's bounds. `max_sessions` 0 means "from the open-file limit" (resolved
    /// at start, see [`Config::session_cap`]).
    pub mqtt_limits: crate::transport::Limits,
    pub sse_max_streams: usize,
    pub sse_max_streams_per_principal: usize,
    /// Events buffered per live stream before a slow reader drops some and is sent
    /// `event: gap`. Not a flag: tests shorten it.
    pub sse_buffer_events: usize,
    /// `--init`: a fresh store over an earlier install's state is wanted (see `data_dir`).
    pub init: bool,
    /// `--trusted-proxy`: peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Failed authentications per source address per minute before 429.
    pub auth_failures_per_minute: u32,
    /// How long a request's body may take to arrive whole, after its head. Not a flag.
    pub http_body_timeout: Duration,
    /// How long telemetry, access events and audit entries are kept (days; 0 forever).
    pub retention: storage::retention::Retention,
    /// Clock time between two prunes. Not a flag.
    pub prune_every: Duration,
    /// Clock time between two compactions of the database file; `None` never.
    pub compact_every: Option<Duration>,
    /// How a prune paces its batches. Not a flag: tests make batches small.
    pub prune_limits: actors::usecases::retention::PruneLimits,
    /// `--metrics-token-file`: read at start; `None` leaves `/metrics` open.
    pub metrics_token_file: Option<PathBuf>,
    /// `--map-tile-url`: checked by [`Config::validate`]; `None`, no tiles.
    pub map_tile_url: Option<String>,
    /// `--sms-key-pin`: a personal keypad key's SMS carries the PIN.
    pub sms_key_pin: bool,
    /// Tests only, never from a flag, variable or file: opens the store over a backend that
    /// fails writes while this switch says the disk is full (see `storage::faults`).
    pub store_faults: Option<storage::faults::FaultSwitch>,
}

/// File descriptors kept for HTTP clients, live streams and the store when the session cap
/// comes from the open-file limit.
pub const FD_RESERVE: u64 = 1024;

pub const DEFAULT_HTTP: &str = "127.0.0.1:8080";
pub const DEFAULT_MQTT_TLS: &str = "0.0.0.0:8883";
pub const DEFAULT_COMMIT_WINDOW_MS: u64 = 50;
pub const DEFAULT_DEVICE_CERT_DAYS: u64 = 365;
/// The global retention defaults, in days.
pub const DEFAULT_RETENTION: storage::retention::Retention = storage::retention::Retention {
    telemetry_days: 365,
    access_event_days: 90,
    audit_days: 730,
};
pub const DEFAULT_COMPACT_EVERY_HOURS: u64 = 24;
/// Ten years: longer-lived unit identities cannot be rotated away from a leaked key.
pub const MAX_DEVICE_CERT_DAYS: u64 = 3650;
const DAY_SECS: u64 = 24 * 3600;
/// Longer than this and a crash loses more than an operator would accept.
pub const MAX_COMMIT_WINDOW_MS: u64 = 10_000;

impl Config {
    /// Defaults for a data directory: what `fleetgate serve` uses with no other settings.
    pub fn with_data_dir(data_dir: impl Into<PathBuf>) -> Config {
        Config {
            data_dir: data_dir.into(),
            http_addr: DEFAULT_HTTP.parse().expect("valid default"),
            http_tls_addr: None,
            http_tls_files: None,
            mqtt_tls_addr: Some(DEFAULT_MQTT_TLS.parse().expect("valid default")),
            mqtt_plain_addr: None,
            commit_window: Duration::from_millis(DEFAULT_COMMIT_WINDOW_MS),
            http_workers: 2,
            mqtt_tls_names: vec!["localhost".into(), "127.0.0.1".into()],
            device_cert_validity: Duration::from_secs(DEFAULT_DEVICE_CERT_DAYS * DAY_SECS),
            scheduler_max_nap: Duration::from_secs(1),
            key_ack_wait: Duration::from_secs(2),
            sms_sender: SmsSenderKind::Log,
            sms_webhook_url: None,
            sms_webhook_timeout: Duration::from_secs(10),
            sms_retry_base: Duration::from_secs(2),
            sms_retry_cap: Duration::from_secs(10 * 60),
            mqtt_limits: crate::transport::Limits {
                max_sessions: 0,
                ..crate::transport::Limits::default()
            },
            sse_max_streams: 1024,
            sse_max_streams_per_principal: 32,
            sse_buffer_events: actors::account::SUBSCRIBER_BUFFER,
            init: false,
            trusted_proxies: Vec::new(),
            auth_failures_per_minute: crate::http::auth_limit::MAX_FAILURES,
            http_body_timeout: Duration::from_secs(60),
            retention: DEFAULT_RETENTION,
            prune_every: Duration::from_secs(10 * 60),
            compact_every: Some(Duration::from_secs(DEFAULT_COMPACT_EVERY_HOURS * 3600)),
            prune_limits: Default::default(),
            metrics_token_file: None,
            map_tile_url: None,
            sms_key_pin: true,
            store_faults: None,
        }
    }

    /// The MQTT session cap: the configured one, or the open-file soft limit less
    /// [`FD_RESERVE`] and the live-stream cap, so units can never take the file
    /// descriptors the HTTP API needs.
    pub fn session_cap(&self, nofile_soft: u64) -> usize {
        if self.mqtt_limits.max_sessions > 0 {
            return self.mqtt_limits.max_sessions;
        }
        let reserve = FD_RESERVE + self.sse_max_streams as u64;
        usize::try_from(nofile_soft.saturating_sub(reserve).max(16)).unwrap_or(usize::MAX)
    }

    pub fn resolve(args: &ServeArgs) -> anyhow::Result<Config> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let mut config = Config::with_data_dir(
            args.data_dir
                .clone()
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from("./data")),
        );
        if let Some(addr) = args.http_addr.or(file.http_addr) {
            config.http_addr = addr;
        }
        if let Some(addr) = args.mqtt_tls_addr.or(file.mqtt_tls_addr) {
            config.mqtt_tls_addr = Some(addr);
        }
        config.mqtt_plain_addr = args.mqtt_plain_addr.or(file.mqtt_plain_addr);
        if let Some(ms) = args.commit_window_ms.or(file.commit_window_ms) {
            config.commit_window = Duration::from_millis(ms);
        }
        if let Some(workers) = args.http_workers.or(file.http_workers) {
            config.http_workers = workers;
        }
        config.http_tls_addr = args.http_tls_addr.or(file.http_tls_addr);
        config.http_tls_files = match (
            args.http_tls_cert.clone().or(file.http_tls_cert.clone()),
            args.http_tls_key.clone().or(file.http_tls_key.clone()),
        ) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => bail!("--http-tls-cert and --http-tls-key go together: give both or neither"),
        };
        if let Some(names) = args.mqtt_tls_names.clone().or(file.mqtt_tls_names) {
            config.mqtt_tls_names = names;
        }
        if let Some(days) = args.device_cert_days.or(file.device_cert_days) {
            if days == 0 || days > MAX_DEVICE_CERT_DAYS {
                bail!("--device-cert-days must be between 1 and {MAX_DEVICE_CERT_DAYS}");
            }
            config.device_cert_validity = Duration::from_secs(days * DAY_SECS);
        }
        if let Some(kind) = args.sms_sender.or(file.sms_sender) {
            config.sms_sender = kind;
        }
        config.sms_webhook_url = args.sms_webhook_url.clone().or(file.sms_webhook_url);
        if let Some(cap) = args.mqtt_max_sessions.or(file.mqtt_max_sessions) {
            config.mqtt_limits.max_sessions = cap;
        }
        if let Some(cap) = args.sse_max_streams.or(file.sse_max_streams) {
            config.sse_max_streams = cap;
        }
        if let Some(cap) = args
            .sse_max_streams_per_principal
            .or(file.sse_max_streams_per_principal)
        {
            config.sse_max_streams_per_principal = cap;
        }
        config.init = args.init;
        config.map_tile_url = args.map_tile_url.clone().or(file.map_tile_url.clone());
        if let Some(pin) = args.sms_key_pin.or(file.sms_key_pin) {
            config.sms_key_pin = pin;
        }
        config.metrics_token_file = args
            .metrics_token_file
            .clone()
            .or(file.metrics_token_file.clone());
        config.trusted_proxies = args.trusted_proxies.clone();
        if let Some(max) = args.auth_failures_per_minute {
            config.auth_failures_per_minute = max;
        }
        let file_days = [
            file.telemetry_retention_days,
            file.access_event_retention_days,
            file.audit_retention_days,
        ];
        config.resolve_retention(args, file_days, file.compact_every_hours);
        config.validate()?;
        Ok(config)
    }

    /// The retention settings from the flags, else the file's (telemetry, access events,
    /// audit days; compaction hours), else the defaults.
    fn resolve_retention(
        &mut self,
        args: &ServeArgs,
        [telemetry, access, audit]: [Option<u32>; 3],
        compact_every_hours: Option<u64>,
    ) {
        let retention = &mut self.retention;
        let pick =
            |flag: Option<u32>, file: Option<u32>, default: u32| flag.or(file).unwrap_or(default);
        retention.telemetry_days = pick(
            args.telemetry_retention_days,
            telemetry,
            retention.telemetry_days,
        );
        retention.access_event_days = pick(
            args.access_event_retention_days,
            access,
            retention.access_event_days,
        );
        retention.audit_days = pick(args.audit_retention_days, audit, retention.audit_days);
        if let Some(hours) = args.compact_every_hours.or(compact_every_hours) {
            self.compact_every =
                (hours > 0).then(|| Duration::from_secs(hours.saturating_mul(3600)));
        }
    }

    /// Refuses settings that would be unsafe rather than silently adjusting them.
    pub fn validate(&self) -> anyhow::Result<()> {
        if let Some(plain) = self.mqtt_plain_addr {
            if !plain.ip().is_loopback() {
                bail!(
                    "--mqtt-plain-addr {plain}: the plain MQTT listener has no authentication \
                     (the client id is the identity) and may only bind a loopback address \
                     (127.0.0.1 or ::1)"
                );
            }
        }
        if self.commit_window.as_millis() > u128::from(MAX_COMMIT_WINDOW_MS) {
            bail!("--commit-window-ms must be at most {MAX_COMMIT_WINDOW_MS}");
        }
        if self.mqtt_tls_addr.is_some()
            && self
                .mqtt_tls_names
                .iter()
                .all(|name| name.trim().is_empty())
        {
            bail!("--mqtt-tls-names must name at least one host for the broker certificate");
        }
        if self.http_workers == 0 {
            bail!("--http-workers must be at least 1");
        }
        if self.sms_sender == SmsSenderKind::Webhook {
            self.sms_webhook_url()?;
        }
        if let Some(template) = &self.map_tile_url {
            check_tile_url(template)?;
        }
        self.validate_retention()
    }

    /// The audit log outlives what it tells about: its retention (0 = forever) is at least
    /// the default telemetry and the access-event retention, forever counting as longest.
    fn validate_retention(&self) -> anyhow::Result<()> {
        let span = |days: u32| if days == 0 { u32::MAX } else { days };
        let retention = &self.retention;
        if span(retention.audit_days) < span(retention.telemetry_days)
            || span(retention.audit_days) < span(retention.access_event_days)
        {
            bail!(
                "--audit-retention-days ({}) must be at least --telemetry-retention-days ({}) \
                 and --access-event-retention-days ({}); 0 keeps forever",
                retention.audit_days,
                retention.telemetry_days,
                retention.access_event_days
            );
        }
        Ok(())
    }

    /// The webhook URL, refused unless it is an absolute http(s) URL.
    pub fn sms_webhook_url(&self) -> anyhow::Result<reqwest::Url> {
        let Some(raw) = self.sms_webhook_url.as_deref() else {
            bail!("--sms-sender webhook needs --sms-webhook-url");
        };
        let url = reqwest::Url::parse(raw).with_context(|| format!("--sms-webhook-url {raw}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            bail!("--sms-webhook-url must be an http or https URL");
        }
        Ok(url)
    }

    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("fleetgate.redb")
    }
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// A tile URL template: `http(s)://`, with the `{z}`, `{x}` and `{y}` a map fills in.
fn check_tile_url(template: &str) -> anyhow::Result<()> {
    let scheme = template.starts_with("https://") || template.starts_with("http://");
    let missing: Vec<&str> = ["{z}", "{x}", "{y}"]
        .into_iter()
        .filter(|part| !template.contains(part))
        .collect();
    if !scheme || !missing.is_empty() || template.chars().any(char::is_whitespace) {
        bail!(
            "--map-tile-url {template:?}: an http(s) URL template with {{z}}, {{x}} and {{y}} \
             (missing: {})",
            if missing.is_empty() {
                "nothing; check the scheme and spaces".to_owned()
            } else {
                missing.join(", ")
            }
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tile_url_template_names_its_parts() {
        assert!(check_tile_url("https://tile.openstreetmap.org/{z}/{x}/{y}.png").is_ok());
        let err = check_tile_url("https://tiles.example/{z}/{x}.png").unwrap_err();
        assert!(err.to_string().contains("{y}"), "{err}");
        assert!(check_tile_url("ftp://tiles.example/{z}/{x}/{y}").is_err());
    }

    #[test]
    fn https_files_come_in_pairs() {
        let half = ServeArgs {
            http_tls_addr: Some("127.0.0.1:0".parse().expect("addr")),
            http_tls_cert: Some("cert.pem".into()),
            ..ServeArgs::default()
        };
        let err = Config::resolve(&half).expect_err("a certificate without its key");
        assert!(err.to_string().contains("--http-tls-key"), "{err}");
        let both = ServeArgs {
            http_tls_key: Some("key.pem".into()),
            ..half
        };
        let config = Config::resolve(&both).expect("valid");
        assert_eq!(
            config.http_tls_files,
            Some(("cert.pem".into(), "key.pem".into()))
        );
    }

    #[test]
    fn flags_beat_file_and_file_beats_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("fleetgate.toml");
        std::fs::write(
            &file,
            "http_addr = \"127.0.0.1:9000\"\ncommit_window_ms = 20\ndata_dir = \"/tmp/x\"\n",
        )
        .expect("write");
        let args = ServeArgs {
            config: Some(file),
            http_addr: Some("127.0.0.1:0".parse().expect("addr")),
            ..ServeArgs::default()
        };
        let config = Config::resolve(&args).expect("valid");
        assert_eq!(config.http_addr.port(), 0, "flag wins");
        assert_eq!(
            config.commit_window,
            Duration::from_millis(20),
            "file beats default"
        );
        assert_eq!(config.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(
            config.mqtt_tls_addr,
            Some(DEFAULT_MQTT_TLS.parse().expect("addr"))
        );
    }

    #[test]
    fn plain_listener_must_be_loopback() {
        let args = ServeArgs {
            mqtt_plain_addr: Some("0.0.0.0:1883".parse().expect("addr")),
            ..ServeArgs::default()
        };
        let err = Config::resolve(&args).expect_err("refused");
        assert!(err.to_string().contains("loopback"), "{err}");
    }

    #[test]
    fn unknown_file_keys_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("f.toml");
        std::fs::write(&file, "htp_addr = \"x\"\n").expect("write");
        let args = ServeArgs {
            config: Some(file),
            ..ServeArgs::default()
        };
        assert!(Config::resolve(&args).is_err());
    }

    #[test]
    fn retention_defaults_flags_and_the_audit_outlasting_the_rest() {
        let config = Config::resolve(&ServeArgs::default()).expect("defaults");
        assert_eq!(config.retention, DEFAULT_RETENTION);
        assert_eq!(config.compact_every, Some(Duration::from_secs(24 * 3600)));
        let args = ServeArgs {
            telemetry_retention_days: Some(30),
            access_event_retention_days: Some(0),
            audit_retention_days: Some(0),
            compact_every_hours: Some(0),
            ..ServeArgs::default()
        };
        let config = Config::resolve(&args).expect("valid");
        assert_eq!(config.retention.telemetry_days, 30);
        assert_eq!(config.retention.access_event_days, 0);
        assert_eq!(config.compact_every, None);
        for (telemetry, access, audit) in [(800, 90, 730), (365, 0, 730), (0, 90, 730)] {
            let args = ServeArgs {
                telemetry_retention_days: Some(telemetry),
                access_event_retention_days: Some(access),
                audit_retention_days: Some(audit),
                ..ServeArgs::default()
            };
            let err = Config::resolve(&args).expect_err("audit shorter");
            assert!(err.to_string().contains("--audit-retention-days"), "{err}");
        }
    }

    #[test]
    fn the_webhook_sender_needs_an_http_url() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("f.toml");
        std::fs::write(
            &file,
            "sms_sender = \"webhook\"\nsms_webhook_url = \"https://sms.example.com/send\"\n",
        )
        .expect("write");
        let args = ServeArgs {
            config: Some(file),
            ..ServeArgs::default()
        };
        let config = Config::resolve(&args).expect("valid");
        assert_eq!(config.sms_sender, SmsSenderKind::Webhook);
        assert_eq!(
            config.sms_webhook_url().expect("url").as_str(),
            "https://sms.example.com/send"
        );
        assert_eq!(Config::with_data_dir("d").sms_sender, SmsSenderKind::Log);
        for url in [None, Some("not a url"), Some("ftp://example.com/x")] {
            let args = ServeArgs {
                sms_sender: Some(SmsSenderKind::Webhook),
                sms_webhook_url: url.map(Into::into),
                ..ServeArgs::default()
            };
            let err = Config::resolve(&args).expect_err("refused");
            assert!(
                err.to_string().contains("sms-webhook-url"),
                "{url:?}: {err}"
            );
        }
    }
}
