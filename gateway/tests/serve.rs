//! The `fleetgate serve` binary as an operator runs it: settings from flags, environment
//! and a TOML file; port 0; `ready.json`; a 0600 bootstrap token; a clean stop on SIGTERM;
//! and a clear refusal of a non-loopback plain listener.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_fleetgate");

fn wait_for(path: &Path, child: &mut Child) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            return text;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("fleetgate exited early with {status}");
        }
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "fleetgate did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn serve_takes_flags_env_and_file_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let config = dir.path().join("fleetgate.toml");
    // The file asks for a fixed HTTP port; the flag (port 0) must win over it.
    std::fs::write(
        &config,
        "http_addr = \"127.0.0.1:1\"\ncommit_window_ms = 5\n",
    )
    .expect("config");
    let log_path = dir.path().join("serve.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let mut child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&config)
        .args([
            "--http-addr",
            "127.0.0.1:0",
            "--mqtt-plain-addr",
            "127.0.0.1:0",
        ])
        .env("FLEETGATE_DATA_DIR", &data)
        .env("FLEETGATE_MQTT_TLS_ADDR", "127.0.0.1:0")
        .stdout(Stdio::from(log.try_clone().expect("log")))
        .stderr(Stdio::from(log))
        .spawn()
        .expect("fleetgate starts");
    let ready: serde_json::Value =
        serde_json::from_str(&wait_for(&data.join("ready.json"), &mut child))
            .expect("ready.json is JSON");
    let http = ready["http"].as_str().expect("http address");
    assert!(
        http.starts_with("127.0.0.1:") && !http.ends_with(":0") && !http.ends_with(":1"),
        "{http}"
    );
    assert!(ready["mqtt_plain"]
        .as_str()
        .is_some_and(|addr| addr.starts_with("127.0.0.1:")));

    let token_file = data.join("bootstrap-token");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&token_file)
        .expect("token file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the bootstrap token is private");

    let status = terminate(&mut child);
    assert!(status.success(), "clean exit, got {status}");
    assert!(
        !data.join("ready.json").exists(),
        "ready.json is removed on a clean stop"
    );
    // The files a first start creates are made private without a warning: the warning is
    // for modes someone loosened, found at a start.
    let log = std::fs::read_to_string(&log_path).expect("log");
    assert!(log.contains("fleetgate ready"), "{log}");
    assert!(!log.contains("tightened"), "{log}");
}

#[test]
fn a_plain_listener_off_loopback_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let output = Command::new(BIN)
        .args(["serve", "--data-dir"])
        .arg(dir.path())
        .args([
            "--http-addr",
            "127.0.0.1:0",
            "--mqtt-plain-addr",
            "0.0.0.0:0",
        ])
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("loopback"), "{stderr}");
}
