//! The data dir at rest: owner-only modes from the first start and tightened on every
//! start, and a lost database next to an earlier install's CA refused unless `--init`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use gateway::{Config, Gateway};
use tests::TestGateway;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("exists")
        .permissions()
        .mode()
        & 0o777
}

fn loopback_config(dir: &Path) -> Config {
    let mut config = Config::with_data_dir(dir);
    config.http_addr = "127.0.0.1:0".parse().expect("addr");
    config.mqtt_tls_addr = Some("127.0.0.1:0".parse().expect("addr"));
    config.mqtt_tls_names = vec!["localhost".into()];
    config
}

const SECRETS: [&str; 4] = ["fleetgate.redb", "ca.key", "server.key", "bootstrap-token"];

#[test]
fn a_first_start_keeps_the_data_dir_to_its_owner() {
    let gateway = TestGateway::start();
    let dir = gateway.data_dir();
    assert_eq!(mode(dir), 0o700, "data dir");
    for name in SECRETS {
        assert_eq!(mode(&dir.join(name)), 0o600, "{name}");
    }
}

#[test]
fn looser_modes_found_at_start_are_tightened() {
    let mut gateway = TestGateway::start();
    gateway.stop();
    let dir = gateway.data_dir().to_path_buf();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    for name in SECRETS {
        let loose = std::fs::Permissions::from_mode(0o644);
        std::fs::set_permissions(dir.join(name), loose).expect("chmod");
    }
    gateway.restart();
    assert_eq!(mode(&dir), 0o700);
    for name in SECRETS {
        assert_eq!(mode(&dir.join(name)), 0o600, "{name}");
    }
}

#[test]
fn a_lost_database_next_to_an_earlier_install_is_refused_unless_init() {
    let mut gateway = TestGateway::start();
    gateway.stop();
    let dir = gateway.data_dir().to_path_buf();
    let token_before = std::fs::read_to_string(dir.join("bootstrap-token")).expect("token");
    for lost in ["emptied", "deleted"] {
        let db = dir.join("fleetgate.redb");
        if lost == "emptied" {
            std::fs::write(&db, b"").expect("truncate");
        } else {
            std::fs::remove_file(&db).expect("delete");
        }
        let refused = match Gateway::start(loopback_config(&dir)) {
            Ok(_) => panic!("{lost}: a fresh install started over an earlier one"),
            Err(refused) => refused,
        };
        let message = format!("{refused:#}");
        assert!(message.contains("--init"), "{lost}: {message}");
        assert!(
            message.contains("ca.pem"),
            "{lost}: names what it found: {message}"
        );
        assert!(!db.exists() || std::fs::metadata(&db).expect("db").len() == 0);
        assert_eq!(
            std::fs::read_to_string(dir.join("bootstrap-token")).expect("token"),
            token_before,
            "{lost}: nothing was re-created"
        );
    }
    let ca_before = std::fs::read_to_string(dir.join("ca.pem")).expect("ca");
    let mut config = loopback_config(&dir);
    config.init = true;
    let started = Gateway::start(config).expect("--init starts anew");
    started.shutdown();
    // The old CA is set aside, not reused: what it signed (revoked or not, the revocations
    // were in the lost database) does not chain to the new one.
    let ca_after = std::fs::read_to_string(dir.join("ca.pem")).expect("ca");
    assert_ne!(ca_after, ca_before, "a new install, a new CA");
    let retired: Vec<String> = std::fs::read_dir(&dir)
        .expect("dir")
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains(".retired-"))
        .collect();
    assert!(
        retired
            .iter()
            .any(|name| name.starts_with("ca.pem.retired-"))
            && retired
                .iter()
                .any(|name| name.starts_with("ca.key.retired-")),
        "kept aside, not deleted: {retired:?}"
    );
    let token_after = std::fs::read_to_string(dir.join("bootstrap-token")).expect("token");
    assert_ne!(
        token_after, token_before,
        "a new install, a new platform admin"
    );
    assert_eq!(mode(&dir.join("bootstrap-token")), 0o600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_platform_admin_token_is_reset_offline() {
    let mut gateway = TestGateway::start();
    let dir = gateway.data_dir().to_path_buf();
    let refused =
        gateway::reset_platform_token(&dir).expect_err("the running gateway holds the lock");
    assert!(
        format!("{refused:#}").contains("still running"),
        "{refused:#}"
    );
    // A console session opened with the token that is about to be reset.
    let session = reqwest::Client::new()
        .post(format!("{}/v1/session", gateway.http_base()))
        .json(&serde_json::json!({"token": gateway.admin_token}))
        .send()
        .await
        .expect("answer");
    assert_eq!(session.status(), 200);
    let cookie = session
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .expect("a session cookie")
        .to_owned();
    gateway.stop();
    let file = gateway::reset_platform_token(&dir).expect("reset");
    assert_eq!(mode(&file), 0o600);
    let token = std::fs::read_to_string(&file).expect("token");
    assert_ne!(token, gateway.admin_token);
    gateway.restart();
    let me = |token: String| {
        let url = format!("{}/v1/me", gateway.http_base());
        async move {
            reqwest::Client::new()
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .expect("answer")
                .status()
                .as_u16()
        }
    };
    assert_eq!(
        me(gateway.admin_token.clone()).await,
        401,
        "the old token is dead"
    );
    assert_eq!(me(token).await, 200);
    let by_cookie = reqwest::Client::new()
        .get(format!("{}/v1/me", gateway.http_base()))
        .header(reqwest::header::COOKIE, cookie)
        .send()
        .await
        .expect("answer");
    assert_eq!(
        by_cookie.status(),
        401,
        "the old token's console session ended with it"
    );
}
