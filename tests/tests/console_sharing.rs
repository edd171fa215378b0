//! The web console's flow 3, an asset's configuration with its Sharing tab (rule 5, tenant
//! sharing), end to end in headless Chromium against a real gateway (see `console.rs` for
//! the harness): an organization's admin opens an asset from the asset list, shares its
//! telemetry into two sub-accounts (several targets per asset), stops one, discards an
//! edit, makes a details-sharing profile on the profiles page and shares the details with
//! it. Every change is checked again through the JSON API. The refusals: a 409 and a
//! 403/404 from the gateway shown in its words, a form left half filled refused by the
//! console, a stale form (the target stopped elsewhere meanwhile), and a viewer who sees
//! the targets with no Edit and no profiles page.

use reqwest::Method;
use serde_json::{json, Value};
use tests::browser::Browser;
use tests::{call, Fleet, TestGateway};

/// The targets of one kind of the asset's sharing, as `account/asset` pairs, as the API
/// lists them.
async fn targets(fleet: &Fleet, asset: &str, kind: &str) -> Vec<String> {
    let (status, body) = call(
        &fleet.admin,
        Method::GET,
        &format!("/v1/assets/{asset}/sharing"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let mut pairs: Vec<String> = body[kind]
        .as_array()
        .expect("targets")
        .iter()
        .map(|t| {
            let profile = t["profile_id"].as_str().map(|p| format!(" {p}"));
            format!(
                "{}/{}{}",
                t["target_account_id"].as_str().expect("account"),
                t["target_asset_id"].as_str().expect("asset"),
                profile.unwrap_or_default()
            )
        })
        .collect();
    pairs.sort();
    pairs
}

/// Adds a target through the section's form: Edit, the tenant id, the asset id, (the
/// profile), Save.
async fn add_target(
    browser: &Browser,
    kind: &str,
    tenant: &str,
    asset: &str,
    profile: Option<&str>,
) {
    browser
        .click(&format!("#{kind}-sharing [data-test=edit]"))
        .await;
    browser
        .type_into(&format!("#{kind}-target-tenant"), tenant)
        .await;
    browser
        .type_into(&format!("#{kind}-target-asset"), asset)
        .await;
    if let Some(profile) = profile {
        browser.select("#details-profile", profile).await;
    }
    browser
        .click(&format!("#{kind}-sharing [data-test=save]"))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_shares_an_assets_telemetry_and_details_from_its_sharing_tab() {
    let gateway = TestGateway::start();
    let acme = Fleet::create(&gateway, "Acme").await;
    let depot = acme.child(&gateway, "Depot").await;
    let yard = acme.child(&gateway, "Yard").await;
    let other = Fleet::create(&gateway, "Other Org").await;
    let (status, body) = call(
        &acme.admin,
        Method::POST,
        "/v1/assets",
        Some(json!({"id": "exc1", "name": "Excavator 1", "serial": "SN-1"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    // Depot has an asset of its own under the id the admin will wrongly pick (409).
    let (status, body) = call(
        &depot.admin,
        Method::POST,
        "/v1/assets",
        Some(json!({"id": "depot-own", "name": "Depot's own"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (depot_id, yard_id) = (depot.account_id.to_string(), yard.account_id.to_string());

    let browser = Browser::start(&gateway.http_base()).await;
    browser.open("").await;
    browser.sign_in_with_token(&acme.admin_token, true).await;
    browser.click("#assets-table [data-test=open-asset]").await;
    browser.click("#configure-asset").await;
    browser
        .text_of(
            "#telemetry-sharing",
            "The telemetry of this asset is not shared.",
        )
        .await;
    browser
        .text_of(
            "#details-sharing",
            "The details of this asset are not shared.",
        )
        .await;
    browser.shot("flow3-01-sharing-tab").await;

    // Telemetry into Depot, then into Yard as well: two targets.
    browser.click("#telemetry-sharing [data-test=edit]").await;
    browser
        .type_into("#telemetry-target-tenant", &depot_id)
        .await;
    browser
        .type_into("#telemetry-target-asset", "depot-exc1")
        .await;
    browser.shot("flow3-02-telemetry-edit").await;
    browser.click("#telemetry-sharing [data-test=save]").await;
    browser
        .text_of(
            ".notice",
            &format!("Telemetry sharing of Excavator 1 saved: shared into Depot ({depot_id}) as depot-exc1."),
        )
        .await;
    // The tenant typed by the name its suggestion shows stands for that account's id.
    add_target(&browser, "telemetry", "yard", "yard-exc1", None).await;
    browser.text_of("#telemetry-sharing", "Yard").await;
    let mut both = vec![
        format!("{depot_id}/depot-exc1"),
        format!("{yard_id}/yard-exc1"),
    ];
    both.sort();
    assert_eq!(targets(&acme, "exc1", "telemetry").await, both);
    browser.shot("flow3-03-telemetry-saved").await;

    // Discard changes nothing; Save with Yard ticked stops only Yard.
    browser.click("#telemetry-sharing [data-test=edit]").await;
    browser
        .click(&format!(
            "#telemetry-sharing tr[data-target='{yard_id}/yard-exc1'] [data-test=stop]"
        ))
        .await;
    browser
        .click("#telemetry-sharing [data-test=discard]")
        .await;
    browser.find("#telemetry-sharing [data-test=edit]").await;
    assert_eq!(targets(&acme, "exc1", "telemetry").await.len(), 2);
    browser.click("#telemetry-sharing [data-test=edit]").await;
    browser
        .click(&format!(
            "#telemetry-sharing tr[data-target='{yard_id}/yard-exc1'] [data-test=stop]"
        ))
        .await;
    browser.click("#telemetry-sharing [data-test=save]").await;
    browser
        .text_of(".notice", &format!("stopped sharing into Yard ({yard_id})"))
        .await;
    assert_eq!(
        targets(&acme, "exc1", "telemetry").await,
        [format!("{depot_id}/depot-exc1")]
    );

    // A details profile on its own page, then its fields changed.
    browser.click("nav a[href='#/profiles']").await;
    browser.text_of("#no-profiles", "No profile yet.").await;
    browser.click("#new-profile").await;
    browser.type_into("#profile-name", "Basics").await;
    for field in ["name", "serial"] {
        browser
            .click(&format!("#profile-form input[data-field={field}]"))
            .await;
    }
    browser.shot("flow3-04-new-profile").await;
    browser.click("#profile-save").await;
    browser.text_of(".notice", "Profile Basics created.").await;
    browser
        .click("#profiles-table [data-test=edit-profile]")
        .await;
    browser
        .click("#profile-form input[data-field=counters]")
        .await;
    browser.click("#profile-save").await;
    browser
        .text_of(".notice", "Profile Basics saved: 3 fields.")
        .await;
    browser
        .text_of(
            "#profiles-table",
            "Name, Serial, Counters (hours, distance)",
        )
        .await;
    browser.shot("flow3-05-profiles").await;
    let (status, profiles) = call(&acme.admin, Method::GET, "/v1/sharing-profiles", None).await;
    assert_eq!(status, 200, "{profiles}");
    assert_eq!(
        profiles["items"][0]["fields"],
        json!(["name", "serial", "counters"])
    );
    let profile_id = profiles["items"][0]["id"].as_str().expect("id").to_owned();

    // Details: a half-filled form is refused by the console, a target asset that is no
    // mirror by the gateway (409), in its words.
    browser.open("#/asset-config/exc1").await;
    browser.click("#details-sharing [data-test=edit]").await;
    browser.type_into("#details-target-tenant", &depot_id).await;
    browser.click("#details-sharing [data-test=save]").await;
    browser
        .text_of(
            "#details-sharing .problem",
            "needs both the target tenant id and the target asset id",
        )
        .await;
    browser
        .type_into("#details-target-asset", "depot-own")
        .await;
    browser
        .select("#details-profile", "Basics (name, serial, counters)")
        .await;
    browser.click("#details-sharing [data-test=save]").await;
    let shown = browser
        .text_of(
            "#details-sharing .problem",
            "In conflict with the current state.",
        )
        .await;
    let body = json!({"target_account_id": depot_id, "target_asset_id": "depot-own", "profile_id": profile_id});
    let (status, refusal) = call(
        &acme.admin,
        Method::POST,
        "/v1/assets/exc1/sharing/details/targets",
        Some(body),
    )
    .await;
    assert_eq!(status, 409, "{refusal}");
    let detail = refusal["detail"].as_str().expect("detail");
    assert!(shown.contains(detail), "{shown} shows {detail}");
    browser.shot("flow3-06-details-refused").await;
    browser
        .type_into("#details-target-asset", "depot-exc1")
        .await;
    browser.click("#details-sharing [data-test=save]").await;
    browser
        .text_of(".notice", "Details sharing of Excavator 1 saved")
        .await;
    browser
        .text_of("#details-sharing", "Basics: name, serial, counters")
        .await;
    assert_eq!(
        targets(&acme, "exc1", "details").await,
        [format!("{depot_id}/depot-exc1 {profile_id}")]
    );
    browser.shot("flow3-07-details-saved").await;

    // Another organization's account is out of the admin's reach: the gateway's words.
    add_target(
        &browser,
        "telemetry",
        &other.account_id.to_string(),
        "x1",
        None,
    )
    .await;
    let shown = browser
        .find("#telemetry-sharing .problem")
        .await
        .text()
        .await
        .expect("text");
    let body = json!({"target_account_id": other.account_id.to_string(), "target_asset_id": "x1"});
    let (status, refusal) = call(
        &acme.admin,
        Method::POST,
        "/v1/assets/exc1/sharing/telemetry/targets",
        Some(body),
    )
    .await;
    assert!(status == 403 || status == 404, "{status} {refusal}");
    assert!(
        shown.contains(refusal["detail"].as_str().expect("detail")),
        "{shown}"
    );
    assert_eq!(targets(&acme, "exc1", "telemetry").await.len(), 1);

    // A stale form: the target is stopped elsewhere while the form is open.
    browser
        .click("#telemetry-sharing [data-test=discard]")
        .await;
    browser.click("#telemetry-sharing [data-test=edit]").await;
    browser
        .click(&format!(
            "#telemetry-sharing tr[data-target='{depot_id}/depot-exc1'] [data-test=stop]"
        ))
        .await;
    let elsewhere = format!("/v1/assets/exc1/sharing/telemetry/targets/{depot_id}/depot-exc1");
    let (status, body) = call(&acme.admin, Method::DELETE, &elsewhere, None).await;
    assert_eq!(status, 204, "{body}");
    browser.click("#telemetry-sharing [data-test=save]").await;
    browser
        .text_of("#telemetry-sharing .problem", "Not found.")
        .await;

    // A viewer of Acme sees the targets, with no Edit and no profiles page.
    let viewer = acme.user(simulator::api::UserRole::Viewer).await;
    browser.click("#sign-out").await;
    browser
        .sign_in_with_token(viewer.token().expect("token"), true)
        .await;
    browser.open("#/asset-config/exc1").await;
    browser.text_of("#details-sharing", "depot-exc1").await;
    browser
        .text_of(
            "#read-only",
            "Only an admin of this account changes its tenant sharing.",
        )
        .await;
    assert_eq!(browser.count("[data-test=edit]").await, 0);
    assert_eq!(browser.count("nav a[href='#/profiles']").await, 0);
    browser.shot("flow3-08-viewer").await;
    browser.quit().await;
}

/// The mirror's side: the target account's admin opens the mirror's configuration and
/// reads where it comes from, with nothing to edit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_shows_its_source_and_cannot_be_shared_on() {
    let gateway = TestGateway::start();
    let acme = Fleet::create(&gateway, "Acme").await;
    let depot = acme.child(&gateway, "Depot").await;
    let (status, body) = call(
        &acme.admin,
        Method::POST,
        "/v1/assets",
        Some(json!({"id": "exc1", "name": "Excavator 1"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let body =
        json!({"target_account_id": depot.account_id.to_string(), "target_asset_id": "depot-exc1"});
    let (status, shared): (u16, Value) = call(
        &acme.admin,
        Method::POST,
        "/v1/assets/exc1/sharing/telemetry/targets",
        Some(body),
    )
    .await;
    assert_eq!(status, 200, "{shared}");

    let browser = Browser::start(&gateway.http_base()).await;
    browser.open("").await;
    browser.sign_in_with_token(&depot.admin_token, true).await;
    browser.click("#assets-table [data-test=open-asset]").await;
    browser.click("#configure-asset").await;
    browser
        .text_of(
            "#mirror-of",
            &format!(
                "This asset is a mirror of asset exc1 of account {}",
                acme.account_id
            ),
        )
        .await;
    browser
        .text_of(
            "#read-only",
            "A mirror or a shared asset cannot be shared on.",
        )
        .await;
    assert_eq!(browser.count("[data-test=edit]").await, 0);
    browser.click("#tab-details").await;
    browser.text_of("#asset-facts", "Mirror").await;
    browser.quit().await;
}
