//! The web console end to end: a real gateway, a real headless Chromium (chromedriver,
//! `tests::browser`), a person's clicks. What a user relies on: signing in and out, flow 1
//! (Ownership & Visibility: search, select, share until a date, review, confirm, remove,
//! who sees an asset) with its refusals in words, and the console's own files served with
//! a strict policy. Whatever the browser changed is checked again through the JSON API.
//!
//! With `FLEETGATE_SCREENSHOTS=<dir>` the tests also write a PNG of each step there
//! (`scripts/console-screenshots.sh` regenerates `docs/console/`).

use reqwest::Method;
use serde_json::{json, Value};
use tests::browser::Browser;
use tests::{call, Fleet, TestGateway};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A raw client with no token, for the console's own files.
fn plain() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

async fn asset(fleet: &Fleet, id: &str, name: &str, serial: &str) {
    let (status, body) = call(
        &fleet.admin,
        Method::POST,
        "/v1/assets",
        Some(json!({"id": id, "name": name, "serial": serial})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
}

/// The ids of the assets `client` sees.
async fn seen_by(client: &simulator::ApiClient) -> Vec<String> {
    let (status, body) = call(client, Method::GET, "/v1/assets", None).await;
    assert_eq!(status, 200, "{body}");
    let mut ids: Vec<String> = body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| item["id"].as_str().expect("id").to_owned())
        .collect();
    ids.sort();
    ids
}

/// Midnight on 15 January of next year in the browser's zone (always winter: +01:00), as
/// a person types it into a date field (en-US: month, day, year) and as the instant.
fn next_january() -> (String, OffsetDateTime) {
    let year = OffsetDateTime::now_utc().year() + 1;
    let instant =
        OffsetDateTime::parse(&format!("{year}-01-15T00:00:00+01:00"), &Rfc3339).expect("a time");
    (format!("0115{year}"), instant)
}

fn instant(value: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(value.as_str().expect("a time"), &Rfc3339).expect("RFC 3339")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_is_served_from_the_binary_with_a_strict_policy() {
    let gateway = TestGateway::start();
    let base = gateway.http_base();
    let client = plain();

    let page = client.get(format!("{base}/")).send().await.expect("page");
    assert_eq!(page.status(), 200);
    let headers = page.headers().clone();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(header("content-type"), "text/html; charset=utf-8");
    assert_eq!(header("x-content-type-options"), "nosniff");
    assert_eq!(header("cache-control"), "no-cache");
    let policy = header("content-security-policy");
    for directive in [
        "default-src 'self'",
        "script-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(policy.contains(directive), "{policy}");
    }
    assert!(!policy.contains("unsafe-inline"), "{policy}");
    let html = page.text().await.expect("html");
    // A monitor's HEAD check finds the console too.
    let head = client.head(format!("{base}/")).send().await.expect("head");
    assert_eq!(head.status(), 200);
    let head = client
        .head(format!("{base}/console/app.js"))
        .send()
        .await
        .expect("head");
    assert_eq!(head.status(), 200);

    // Every file the page and its modules name is served, with its type, and nothing
    // comes from another origin.
    let mut pending = vec!["/console/app.js".to_owned(), "/console/app.css".to_owned()];
    let mut seen = Vec::new();
    while let Some(path) = pending.pop() {
        if seen.contains(&path) {
            continue;
        }
        let answer = client
            .get(format!("{base}{path}"))
            .send()
            .await
            .expect("file");
        assert_eq!(answer.status(), 200, "{path}");
        let kind = answer.headers()["content-type"]
            .to_str()
            .expect("type")
            .to_owned();
        assert_eq!(answer.headers()["x-content-type-options"], "nosniff");
        let etag = answer.headers()["etag"].clone();
        let text = answer.text().await.expect("text");
        if path.ends_with(".js") {
            assert_eq!(kind, "text/javascript; charset=utf-8", "{path}");
            assert!(
                !text.contains("innerHTML"),
                "{path} builds DOM from text only"
            );
            for line in text.lines().filter(|line| line.starts_with("import ")) {
                let module = line
                    .rsplit("'./")
                    .next()
                    .expect("relative")
                    .trim_end_matches("';");
                pending.push(format!("/console/{module}"));
            }
        }
        // The SVG namespace is a name (chart.js creates SVG elements in it), not a load.
        let loads = text.replace("'http://www.w3.org/2000/svg'", "");
        assert!(
            !loads.contains("http://") && !loads.contains("https://"),
            "{path} loads nothing from outside"
        );
        let again = client
            .get(format!("{base}{path}"))
            .header("If-None-Match", etag)
            .send()
            .await
            .expect("revalidate");
        assert_eq!(again.status(), 304, "{path} unchanged answers 304");
        seen.push(path);
    }
    assert!(seen.len() >= 6, "{seen:?}");
    assert!(html.contains("/console/app.js"));

    let missing = client
        .get(format!("{base}/console/nothing.js"))
        .send()
        .await
        .expect("404");
    assert_eq!(missing.status(), 404);
    let (status, doc) = call(
        &simulator::ApiClient::anonymous(&base).expect("client"),
        Method::GET,
        "/v1/openapi.json",
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        doc["paths"].get("/").is_none(),
        "the console is not an API route"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_with_a_token_setting_a_password_and_signing_out() {
    let gateway = TestGateway::start();
    let owner = Fleet::create(&gateway, "Acme").await;
    let me = call(&owner.admin, Method::GET, "/v1/me", None).await.1;
    let user_id = me["principal_id"].as_str().expect("id").to_owned();
    let browser = Browser::start(&gateway.http_base()).await;

    browser.open("").await;
    browser.find("#sign-in-form").await;
    browser.shot("signin-01-sign-in").await;

    // Wrong credentials: the gateway's refusal, in words.
    browser.sign_in(&user_id, "not the password at all").await;
    browser.text_of(".problem", "Not signed in.").await;
    browser.shot("signin-02-refused").await;

    // A token sign-in, then the console asks for a password.
    browser.open("").await;
    browser.sign_in_with_token(&owner.admin_token, false).await;
    browser.find("#password-form").await;
    browser.shot("signin-03-set-password").await;
    browser
        .type_into("#new-password", "correct horse battery")
        .await;
    browser
        .type_into("#new-password-again", "correct horse batteries")
        .await;
    browser.click("#set-password").await;
    browser
        .text_of(".problem", "The two passwords differ.")
        .await;
    browser
        .type_into("#new-password-again", "correct horse battery")
        .await;
    browser.click("#set-password").await;
    browser.text_of(".notice", "Your password is set").await;
    browser.text_of("#who", "Admin").await;

    // Signing out returns to sign-in, and the session's cookie no longer works.
    let cookie = browser
        .cookie("fleetgate_session")
        .await
        .expect("a session cookie");
    browser.click("#sign-out").await;
    browser
        .text_of("#sign-in-form", "You are signed out.")
        .await;
    let answer = plain()
        .get(format!("{}/v1/assets", gateway.http_base()))
        .header("Cookie", format!("fleetgate_session={cookie}"))
        .send()
        .await
        .expect("answer");
    assert_eq!(answer.status(), 401, "the old cookie is refused");

    // The password signs in from now on.
    browser.sign_in(&user_id, "correct horse battery").await;
    browser.text_of("#who", "Acme").await;
    browser.find("#assets-table, #no-assets").await;

    // Changing it needs the current one: a wrong one is refused, naming the field.
    browser.click("a[href='#/password']").await;
    browser
        .type_into("#current-password", "not my password at all")
        .await;
    browser
        .type_into("#new-password", "another long secret")
        .await;
    browser
        .type_into("#new-password-again", "another long secret")
        .await;
    browser.click("#set-password").await;
    browser
        .text_of(".problem", "(field: current_password)")
        .await;
    browser
        .type_into("#current-password", "correct horse battery")
        .await;
    browser.click("#set-password").await;
    browser.text_of(".notice", "Your password is set").await;
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_that_ends_on_the_server_returns_to_sign_in() {
    let gateway = TestGateway::start();
    let owner = Fleet::create(&gateway, "Acme").await;
    let created = owner
        .admin
        .create_user(
            &owner.account_id,
            "Fran",
            simulator::api::UserRole::FleetAdmin,
        )
        .await
        .expect("user");
    for index in 0..55 {
        asset(
            &owner,
            &format!("m{index:02}"),
            &format!("Machine {index:02}"),
            "SN",
        )
        .await;
    }
    let browser = Browser::start(&gateway.http_base()).await;
    browser.open("").await;
    browser.sign_in_with_token(&created.token, true).await;

    // The list pages with the API's cursors, 50 a page.
    browser.text_of("#assets-table", "Machine 00").await;
    assert_eq!(rows(&browser).await, 50);
    browser.click("#next-page").await;
    browser.text_of("#assets-table", "Machine 54").await;
    assert_eq!(rows(&browser).await, 5);
    browser.click("#previous-page").await;
    browser.text_of("#assets-table", "Machine 00").await;

    // Disabled by an admin: the next call answers 401 and the console asks to sign in.
    let path = format!("/v1/accounts/{}/users/{}", owner.account_id, created.id);
    let (status, body) = call(
        &owner.admin,
        Method::PATCH,
        &path,
        Some(json!({"disabled": true})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    browser.click("#search").await;
    browser
        .text_of("#sign-in-form", "Your session has ended. Sign in again.")
        .await;
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invitation_link_sets_a_password_once() {
    let gateway = TestGateway::start();
    let owner = Fleet::create(&gateway, "Acme").await;
    let viewer = owner
        .admin
        .create_user(
            &owner.account_id,
            "Vera Viewer",
            simulator::api::UserRole::Viewer,
        )
        .await
        .expect("user");
    let path = format!(
        "/v1/accounts/{}/users/{}/password-invitation",
        owner.account_id, viewer.id
    );
    let (status, invitation) = call(&owner.admin, Method::POST, &path, None).await;
    assert_eq!(status, 201, "{invitation}");
    let link = invitation["path"]
        .as_str()
        .expect("path")
        .trim_start_matches('/')
        .to_owned();

    let browser = Browser::start(&gateway.http_base()).await;
    browser.open(&link).await;
    browser.text_of("#invitation-form", "Vera Viewer").await;
    browser.shot("signin-04-invitation").await;
    browser
        .type_into("#new-password", "a long enough secret")
        .await;
    browser
        .type_into("#new-password-again", "a long enough secret")
        .await;
    browser.click("#set-password").await;
    browser.click("#to-sign-in").await;
    browser
        .sign_in(&viewer.id.to_string(), "a long enough secret")
        .await;
    browser.text_of("#who", "Viewer").await;

    // The link worked once.
    browser.open(&link).await;
    browser
        .text_of(".problem", "This link does not work.")
        .await;
    browser.quit().await;
}

/// Acme (its admin signs in) with a sub-account Depot, a partner organization Partner Co,
/// and three assets.
struct Flow1 {
    gateway: TestGateway,
    owner: Fleet,
    depot: Fleet,
    partner: Fleet,
    partnership_id: String,
}

async fn flow1() -> Flow1 {
    let gateway = TestGateway::start();
    let owner = Fleet::create(&gateway, "Acme").await;
    let depot = owner.child(&gateway, "Depot").await;
    let partner = Fleet::create(&gateway, "Partner Co").await;
    let partnership = owner
        .platform
        .create_partnership(&owner.account_id, &partner.account_id)
        .await
        .expect("partnership");
    asset(&owner, "ex1", "Excavator 1", "SN-100").await;
    asset(&owner, "ex2", "Excavator 2", "SN-200").await;
    asset(&owner, "lo1", "Loader 1", "SN-300").await;
    Flow1 {
        gateway,
        owner,
        depot,
        partner,
        partnership_id: partnership.id.to_string(),
    }
}

async fn rows(browser: &Browser) -> usize {
    browser.count("#assets-table tbody tr").await
}

async fn search(browser: &Browser, text: &str, expect_rows: usize) {
    browser.type_into("#asset-search", text).await;
    browser.click("#search").await;
    let deadline = std::time::Instant::now() + tests::browser::BROWSER_WAIT;
    while rows(browser).await != expect_rows {
        assert!(
            std::time::Instant::now() < deadline,
            "searching {text:?} should list {expect_rows} assets:\n{}",
            browser.page_text().await
        );
        tokio::time::sleep(std::time::Duration::from_millis(40)).await;
    }
}

async fn select_asset(browser: &Browser, id: &str) {
    browser
        .click(&format!(
            "#assets-table tr[data-id='{id}'] input[type=checkbox]"
        ))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharing_and_removing_visibility_from_the_asset_list() {
    let Flow1 {
        gateway,
        owner,
        depot,
        ..
    } = flow1().await;
    let browser = Browser::start(&gateway.http_base()).await;
    browser.open("#/assets").await;
    browser.sign_in_with_token(&owner.admin_token, true).await;
    browser.text_of("#assets-table", "Loader 1").await;
    browser.shot("flow1-01-assets").await;

    // Search by name, serial and id.
    search(&browser, "SN-300", 1).await;
    search(&browser, "ex2", 1).await;
    search(&browser, "excav", 2).await;
    select_asset(&browser, "ex1").await;
    select_asset(&browser, "ex2").await;
    browser.text_of("#selected-count", "2 selected").await;
    browser.shot("flow1-02-selected").await;

    // Share visibility with the sub-account until a date, in the browser's zone.
    browser.click("#share").await;
    browser
        .select("#target-account", "Depot (sub-account)")
        .await;
    browser
        .text_of("#target-account", "Partner Co (partner)")
        .await;
    let (typed, until) = next_january();
    browser.click("#window-until").await;
    browser
        .find("#until-date")
        .await
        .send_keys(&typed)
        .await
        .expect("date");
    browser.shot("flow1-03-share-dialog").await;
    browser.click("#review").await;
    let shown_until = format!("{}-01-15 00:00 +01:00", until.year());
    let summary = browser.text_of("#review-summary", &shown_until).await;
    assert!(summary.contains("Share 2 assets with Depot"), "{summary}");
    let review = browser.text_of("#review-table", "will be shared").await;
    assert_eq!(review.matches("will be shared").count(), 2, "{review}");
    assert!(
        seen_by(&depot.admin).await.is_empty(),
        "the review changed nothing"
    );
    browser.shot("flow1-04-review").await;
    browser.click("#confirm").await;
    browser
        .text_of(
            ".notice",
            &format!("Shared 2 assets with Depot until {shown_until}."),
        )
        .await;
    browser.gone("#share-dialog").await;
    browser.shot("flow1-05-shared").await;

    // The grantee sees them, until that instant.
    assert_eq!(seen_by(&depot.admin).await, ["ex1", "ex2"]);
    let (_, grants) = call(&depot.admin, Method::GET, "/v1/visibility/grants", None).await;
    for grant in grants["items"].as_array().expect("grants") {
        assert_eq!(instant(&grant["until"]), until, "{grant}");
    }

    // Who sees an asset, and until when.
    browser
        .click("#assets-table tr[data-id='ex1'] [data-test=open-asset]")
        .await;
    let who = browser.text_of("#who-sees", "Depot").await;
    assert!(who.contains(&shown_until), "{who}");
    browser.shot("flow1-06-who-sees").await;

    // Remove visibility of the selection.
    browser.click("#remove").await;
    browser
        .select("#target-account", "Depot (sub-account)")
        .await;
    browser.click("#review").await;
    let review = browser.text_of("#review-table", "Excavator 2").await;
    assert!(review.contains("Excavator 1"), "{review}");
    browser.shot("flow1-07-remove-review").await;
    browser.click("#confirm").await;
    browser
        .text_of(".notice", "Removed what Depot saw of 2 assets.")
        .await;
    assert!(seen_by(&depot.admin).await.is_empty());
    browser.find("#who-sees-none").await;

    // Quick share and quick remove from the side panel.
    browser.click("#quick-share").await;
    let chosen = browser.text_of("#chosen-assets", "Excavator 1").await;
    assert!(!chosen.contains("Excavator 2"), "{chosen}");
    browser
        .select("#target-account", "Depot (sub-account)")
        .await;
    browser.click("#review").await;
    browser.text_of("#review-summary", "permanently").await;
    browser.click("#confirm").await;
    browser.text_of("#who-sees", "permanently").await;
    assert_eq!(seen_by(&depot.admin).await, ["ex1"]);
    browser.click("#who-sees [data-test=remove-grant]").await;
    browser.shot("flow1-08-quick-remove").await;
    browser.click("dialog [data-test=confirm]").await;
    browser
        .text_of(".notice", "Depot no longer sees Excavator 1.")
        .await;
    browser.find("#who-sees-none").await;
    assert!(seen_by(&depot.admin).await.is_empty());
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_explained_in_words() {
    let Flow1 {
        gateway,
        owner,
        depot,
        partner,
        partnership_id,
    } = flow1().await;
    let viewer = owner.user(simulator::api::UserRole::Viewer).await;
    let granted = owner.grant(&depot, &["ex1"], json!({})).await;
    assert_eq!(granted.status, 201);
    let browser = Browser::start(&gateway.http_base()).await;

    // A viewer sees the list and who sees an asset, but no Share, Remove or selection.
    browser.open("").await;
    browser
        .sign_in_with_token(viewer.token().expect("token"), true)
        .await;
    browser.text_of("#assets-table", "Excavator 1").await;
    assert_eq!(
        browser
            .count("#share, #remove, #assets-table input[type=checkbox]")
            .await,
        0
    );
    browser
        .click("#assets-table tr[data-id='ex1'] [data-test=open-asset]")
        .await;
    browser.find("#who-sees").await;
    assert_eq!(
        browser
            .count("#quick-share, [data-test=remove-grant]")
            .await,
        0
    );
    browser.shot("refusal-01-viewer").await;
    browser.click("#sign-out").await;

    // The grantee's admin tries to share onward what it only sees: the gateway's 403.
    let depot_north = depot.child(&gateway, "Depot North").await;
    browser.sign_in_with_token(&depot.admin_token, true).await;
    browser.text_of("#assets-table", "Excavator 1").await;
    select_asset(&browser, "ex1").await;
    browser.click("#share").await;
    browser
        .select("#target-account", "Depot North (sub-account)")
        .await;
    browser.click("#review").await;
    let (status, problem) = call(
        &depot.admin,
        Method::POST,
        "/v1/visibility/grants?dry_run=true",
        Some(json!({"account_id": depot_north.account_id.to_string(), "asset_ids": ["ex1"]})),
    )
    .await;
    assert_eq!(status, 403, "{problem}");
    let detail = problem["detail"].as_str().expect("detail");
    let shown = browser.text_of("#share-dialog .problem", detail).await;
    assert!(shown.starts_with("Refused by the gateway."), "{shown}");
    browser.shot("refusal-02-forbidden").await;
    browser.click("#share-dialog #cancel").await;
    browser.click("#sign-out").await;

    // The owner's admin: an end in the past is refused (422, naming the field) ...
    browser.sign_in_with_token(&owner.admin_token, true).await;
    select_asset(&browser, "ex2").await;
    browser.click("#share").await;
    browser
        .select("#target-account", "Partner Co (partner)")
        .await;
    browser.click("#window-until").await;
    browser
        .find("#until-date")
        .await
        .send_keys("01152020")
        .await
        .expect("date");
    browser.click("#review").await;
    let shown = browser
        .text_of("#share-dialog .problem", "(field: until)")
        .await;
    assert!(shown.contains("Not accepted as entered."), "{shown}");
    browser.shot("refusal-03-invalid").await;

    // ... and a review gone stale (the partnership ended meanwhile) is refused on confirm.
    browser.click("#window-permanent").await;
    browser.click("#review").await;
    browser.text_of("#review-table", "will be shared").await;
    let (status, _) = call(
        &owner.platform,
        Method::DELETE,
        &format!("/v1/partnerships/{partnership_id}"),
        None,
    )
    .await;
    assert!(status == 200 || status == 204, "{status}");
    browser.click("#confirm").await;
    let shown = browser
        .text_of("#share-dialog .problem", "Refused by the gateway.")
        .await;
    let (_, problem) = call(
        &owner.admin,
        Method::POST,
        "/v1/visibility/grants?dry_run=true",
        Some(json!({"account_id": partner.account_id.to_string(), "asset_ids": ["ex2"]})),
    )
    .await;
    assert!(
        shown.contains(problem["detail"].as_str().expect("detail")),
        "{shown}"
    );
    browser.shot("refusal-04-stale").await;
    assert!(seen_by(&partner.admin).await.is_empty());
    browser.click("#share-dialog #cancel").await;
    browser.gone("#share-dialog").await;

    // Removing what an account does not see: the gateway's 404, in words, at the review.
    browser.click("#remove").await;
    browser
        .select("#target-account", "Depot (sub-account)")
        .await;
    browser.click("#review").await;
    let shown = browser
        .text_of("#remove-dialog .problem", "Not found.")
        .await;
    assert!(shown.contains("grant of asset ex2"), "{shown}");
    assert_eq!(browser.count("#confirm").await, 0, "no review to confirm");
    browser.quit().await;
}
