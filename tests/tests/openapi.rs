//! The OpenAPI document equals the server: schemathesis (PyPI, installed by
//! `scripts/setup.sh`) generates requests for every operation of `GET /v1/openapi.json` —
//! valid ones and broken ones — and the run fails on any 5xx, any status the document does
//! not list for the operation, any content type it does not list, and any answer that breaks
//! its schema. Run as an account admin with a unit and an asset (so lists and reads answer
//! 200 with items to check) and as the platform admin.
//!
//! Bounded: a fixed number of examples per operation, a fixed seed (the same requests each
//! run; `FLEETGATE_SCHEMATHESIS_SEED` explores others) and a timeout per request. The live
//! streams are left out: they answer by never ending (tested in `live_streams.rs`).

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use tests::{Fleet, TestGateway};

/// Where `scripts/setup.sh` installs it; `FLEETGATE_SCHEMATHESIS` points elsewhere.
const INSTALLED: &str = "/opt/fleetgate-tools/schemathesis/bin/schemathesis";

/// What a failing run means: the checks the issue asks for, and only those (schemathesis'
/// positive-data check would also fail every request for an object that does not exist).
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
response_schema_conformance,response_headers_conformance";

fn schemathesis() -> PathBuf {
    let path = std::env::var_os("FLEETGATE_SCHEMATHESIS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(INSTALLED));
    assert!(
        path.exists(),
        "{} is missing: run `bash scripts/setup.sh` (the README's test command does)",
        path.display()
    );
    path
}

/// Runs schemathesis against `gateway` as `token`; panics with its report on any failure.
async fn conforms(gateway: &TestGateway, token: &str, examples: u32) {
    let seed = std::env::var("FLEETGATE_SCHEMATHESIS_SEED").unwrap_or_else(|_| "1".into());
    let report_dir = tempfile::tempdir().expect("tempdir");
    let mut command = Command::new(schemathesis());
    command
        .arg("run")
        .arg(format!("{}/v1/openapi.json", gateway.http_base()))
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args(["--checks", CHECKS])
        .args(["--max-examples", &examples.to_string()])
        .args(["--seed", &seed])
        .args(["--workers", "2", "--request-timeout", "10", "--no-color"])
        .args(["--exclude-path-regex", "/stream$"])
        .arg("--report-dir")
        .arg(report_dir.path())
        .env("SCHEMATHESIS_HOOKS", "")
        .current_dir(report_dir.path());
    let output = tokio::time::timeout(
        Duration::from_secs(600),
        tokio::task::spawn_blocking(move || command.output()),
    )
    .await
    .expect("schemathesis finished within 10 minutes")
    .expect("joined")
    .expect("schemathesis ran");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found the document and the server disagree:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // A run that reached nothing (a wrong URL, a document that failed to load) exits 0 too.
    assert!(stdout.contains("passed"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_equals_the_server() {
    let gateway = TestGateway::start();
    let fleet = Fleet::create(&gateway, "Acme").await;
    fleet.unit_with_asset("u1", "ex1").await;
    conforms(&gateway, &fleet.admin_token, 10).await;
    conforms(&gateway, &gateway.admin_token, 5).await;
}
