//! mosquitto as a child process of the simulator, for one run: its configuration, ACL and
//! certificates in a scratch directory of its own (mode 0700, removed afterwards), one
//! mutual-TLS listener on a free loopback port, no persistence and no log. The process is
//! killed when its handle drops, so an error path cannot leave it running; the normal end
//! ([`Mosquitto::stop`]) also waits for it to exit.
//!
//! The configuration mirrors what the gateway enforces for an idle unit: a client
//! certificate is required and its subject CN is the client's identity
//! (`use_identity_as_username`), and the ACL lets each identity read only its own
//! `/tenants/{id}/keys`. One extra identity, the key-set publisher, may write every unit's
//! `keys` topic, so the retained key sets can be put in place before the units connect.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio::time::Instant;

use super::pki::Pems;
use crate::scenario::timeline::read_rss_kib;

/// How many ports one start may try (another process can take a probed port before
/// mosquitto binds it).
const START_ATTEMPTS: usize = 3;
/// How long mosquitto may take to listen, or to print its version.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a killed mosquitto may take to exit.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// The most of mosquitto's stderr quoted in an error.
const STDERR_QUOTE: usize = 2000;

/// What one broker is started with.
pub(super) struct Setup<'a> {
    pub(super) binary: &'a Path,
    /// The loopback address it listens on (a free port is chosen).
    pub(super) ip: IpAddr,
    pub(super) ca_pem: &'a str,
    pub(super) server: &'a Pems,
    /// The identity (certificate CN) allowed to write every unit's key set.
    pub(super) publisher: &'a str,
}

/// A running mosquitto. Field order matters: the child is killed (dropped) before its
/// scratch directory is removed.
pub(super) struct Mosquitto {
    child: Child,
    pid: u32,
    pub(super) addr: SocketAddr,
    _dir: ScratchDir,
}

impl Mosquitto {
    /// Writes the files and starts mosquitto; returns once it accepts connections.
    pub(super) async fn start(setup: &Setup<'_>) -> Result<Mosquitto, String> {
        let dir = ScratchDir::create()?;
        dir.write("ca.pem", setup.ca_pem, 0o600)?;
        dir.write("server.pem", &setup.server.cert, 0o600)?;
        dir.write("server.key", &setup.server.key, 0o600)?;
        dir.write("acl", &acl_text(setup.publisher), 0o600)?;
        let stderr_path = dir.path.join("stderr");
        let mut failures = Vec::new();
        for _ in 0..START_ATTEMPTS {
            let addr = free_port(setup.ip)?;
            let config = config_text(addr, &dir.path, running_as_root());
            dir.write("mosquitto.conf", &config, 0o600)?;
            let stderr = std::fs::File::create(&stderr_path)
                .map_err(|error| format!("{}: {error}", stderr_path.display()))?;
            let mut child = Command::new(setup.binary)
                .arg("-c")
                .arg(dir.path.join("mosquitto.conf"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::from(stderr))
                .kill_on_drop(true)
                .spawn()
                .map_err(|error| format!("starting {}: {error}", setup.binary.display()))?;
            let Some(pid) = child.id() else {
                failures.push("exited before it could be watched".to_owned());
                continue;
            };
            match wait_listening(&mut child, addr).await {
                Ok(()) => {
                    return Ok(Mosquitto {
                        child,
                        pid,
                        addr,
                        _dir: dir,
                    })
                }
                Err(why) => {
                    let _ = child.kill().await;
                    failures.push(format!("{addr}: {why}{}", quote_file(&stderr_path)));
                }
            }
        }
        Err(format!(
            "mosquitto did not start in {START_ATTEMPTS} attempts: {}",
            failures.join("; ")
        ))
    }

    pub(super) fn pid(&self) -> u32 {
        self.pid
    }

    /// Resident memory, KiB (`VmRSS` of `/proc/<pid>/status`).
    pub(super) fn rss_kib(&self) -> Result<u64, String> {
        read_rss_kib(self.pid)
    }

    /// Kills mosquitto and waits for it to exit (reaps it); the scratch directory goes too.
    pub(super) async fn stop(mut self) -> Result<(), String> {
        let _ = self.child.start_kill();
        match tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(format!("waiting for mosquitto to exit: {error}")),
            Err(_) => Err(format!("mosquitto did not exit within {STOP_TIMEOUT:?}")),
        }
    }
}

/// Polls `addr` until it accepts a connection; fails when the child exits first.
async fn wait_listening(child: &mut Child, addr: SocketAddr) -> Result<(), String> {
    let deadline = Instant::now() + START_TIMEOUT;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("mosquitto exited at start ({status})"));
        }
        let probe = tokio::time::timeout(
            Duration::from_millis(200),
            tokio::net::TcpStream::connect(addr),
        );
        if let Ok(Ok(_)) = probe.await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(format!("not listening within {START_TIMEOUT:?}"))
}

/// The first line of `mosquitto -h` (e.g. `mosquitto version 2.0.11`), which also proves
/// the binary runs.
pub(super) async fn version(binary: &Path) -> Result<String, String> {
    let output = Command::new(binary)
        .arg("-h")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(START_TIMEOUT, output)
        .await
        .map_err(|_| format!("{} -h did not answer", binary.display()))?
        .map_err(|error| format!("running {}: {error}", binary.display()))?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .find(|line| line.starts_with("mosquitto version"))
        .map(str::to_owned)
        .ok_or_else(|| format!("{} -h does not say its version", binary.display()))
}

/// A loopback port nobody listens on right now: bind port 0, read it, release it.
fn free_port(ip: IpAddr) -> Result<SocketAddr, String> {
    let listener = TcpListener::bind((ip, 0))
        .map_err(|error| format!("probing a free port on {ip}: {error}"))?;
    listener
        .local_addr()
        .map_err(|error| format!("reading the probed port: {error}"))
}

/// mosquitto's configuration for one run (mosquitto 2.0 syntax).
fn config_text(addr: SocketAddr, dir: &Path, as_root: bool) -> String {
    let mut text = String::from(
        "# Written by fleetgate-sim scale --mosquitto for one run; removed after it.\n\
         per_listener_settings false\n\
         persistence false\n\
         log_dest none\n\
         allow_anonymous false\n",
    );
    if as_root {
        // As root, mosquitto would switch to the `mosquitto` user, which cannot read this
        // private directory.
        text.push_str("user root\n");
    }
    let file = |name: &str| dir.join(name).display().to_string();
    let _ = write!(
        text,
        "listener {port} {ip}\n\
         cafile {ca}\n\
         certfile {cert}\n\
         keyfile {key}\n\
         require_certificate true\n\
         use_identity_as_username true\n\
         acl_file {acl}\n",
        port = addr.port(),
        ip = addr.ip(),
        ca = file("ca.pem"),
        cert = file("server.pem"),
        key = file("server.key"),
        acl = file("acl"),
    );
    text
}

/// Each identity reads its own key set, nothing else; `publisher` writes every unit's.
fn acl_text(publisher: &str) -> String {
    format!(
        "# Every unit reads only its own key set (use_identity_as_username: %u is the CN).\n\
         pattern read /tenants/%u/keys\n\
         \n\
         user {publisher}\n\
         topic write /tenants/+/keys\n"
    )
}

/// Whether this process runs with effective user id 0 (`Uid:` of `/proc/self/status`).
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| parse_effective_uid(&status))
        == Some(0)
}

fn parse_effective_uid(status: &str) -> Option<u32> {
    let line = status.lines().find(|line| line.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// The start of a file's text, as `: <text>`, or nothing when it is empty or unreadable.
fn quote_file(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let text = text.trim();
    if text.is_empty() {
        return String::new();
    }
    let quoted: String = text.chars().take(STDERR_QUOTE).collect();
    format!(": {quoted}")
}

/// A private directory under the system's temporary directory, removed on drop.
struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    fn create() -> Result<ScratchDir, String> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let mut last_error = None;
        for _ in 0..16 {
            let path = std::env::temp_dir().join(format!(
                "fleetgate-sim-mosquitto-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            match std::fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => return Ok(ScratchDir { path }),
                Err(error) => last_error = Some(format!("{}: {error}", path.display())),
            }
        }
        Err(format!(
            "no scratch directory for mosquitto: {}",
            last_error.unwrap_or_default()
        ))
    }

    fn write(&self, name: &str, contents: &str, mode: u32) -> Result<(), String> {
        let path = self.path.join(name);
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&path)
            .and_then(|mut file| std::io::Write::write_all(&mut file, contents.as_bytes()));
        written.map_err(|error| format!("{}: {error}", path.display()))
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_has_one_mutual_tls_loopback_listener_and_no_state() {
        let addr: SocketAddr = "127.0.0.1:34567".parse().expect("addr");
        let text = config_text(addr, Path::new("/tmp/x"), false);
        for line in [
            "listener 34567 127.0.0.1",
            "cafile /tmp/x/ca.pem",
            "certfile /tmp/x/server.pem",
            "keyfile /tmp/x/server.key",
            "require_certificate true",
            "use_identity_as_username true",
            "persistence false",
            "log_dest none",
            "acl_file /tmp/x/acl",
        ] {
            assert!(
                text.lines().any(|got| got == line),
                "{line} missing:\n{text}"
            );
        }
        assert!(!text.contains("user root"));
        assert!(config_text(addr, Path::new("/tmp/x"), true).contains("\nuser root\n"));
    }

    #[test]
    fn the_acl_lets_units_read_only_their_own_key_set() {
        let acl = acl_text("keysetpublisher");
        assert!(acl.contains("\npattern read /tenants/%u/keys\n"));
        assert!(acl.contains("\nuser keysetpublisher\ntopic write /tenants/+/keys\n"));
        assert!(!acl.contains("readwrite"));
    }

    #[test]
    fn reads_the_effective_uid() {
        let status = "Name:\tx\nUid:\t1000\t0\t1000\t1000\nGid:\t1\n";
        assert_eq!(parse_effective_uid(status), Some(0));
        assert_eq!(parse_effective_uid("Name: x\n"), None);
    }

    #[test]
    fn scratch_directories_are_private_and_removed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = ScratchDir::create().expect("created");
        let path = dir.path.clone();
        dir.write("key", "secret", 0o600).expect("written");
        let mode = std::fs::metadata(&path).expect("dir").permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let mode = std::fs::metadata(path.join("key"))
            .expect("file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        drop(dir);
        assert!(!path.exists());
    }
}
