//! The web console's flow 2, Support Access, end to end in headless Chromium against a real
//! gateway (see `console.rs` for the harness and flow 1): an account admin's Pending,
//! Active and Archived tabs, approve, decline and revoke with a confirm, checked through
//! the JSON API as the staff member; a sub-account admin's refusal in words; the page is
//! not offered to a fleet admin.

use reqwest::Method;
use serde_json::json;
use tests::browser::Browser;
use tests::{call, Fleet, TestGateway};

/// A staff member named `name` with `role`: its client and id.
async fn staff_named(fleet: &Fleet, name: &str, role: &str) -> (simulator::ApiClient, String) {
    let body = json!({"name": name, "role": role});
    let (status, created) = call(&fleet.platform, Method::POST, "/v1/staff", Some(body)).await;
    assert_eq!(status, 201, "{created}");
    let client = fleet
        .platform
        .with_token(created["token"].as_str().expect("token"));
    (client, created["id"].as_str().expect("id").to_owned())
}

async fn request_support(
    support: &simulator::ApiClient,
    fleet: &Fleet,
    purpose: &str,
    duration: &str,
) {
    let body = json!({"account_id": fleet.account_id.to_string(), "purpose": purpose, "duration": duration});
    let (status, created) = call(
        support,
        Method::POST,
        "/v1/support-access/requests",
        Some(body),
    )
    .await;
    assert_eq!(status, 201, "{created}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn support_access_is_approved_declined_and_revoked_with_a_confirm() {
    let gateway = TestGateway::start();
    let owner = Fleet::create(&gateway, "Acme").await;
    let depot = owner.child(&gateway, "Depot").await;
    let (sam, _) = staff_named(&owner, "Sam Support", "support").await;
    let (kim, _) = staff_named(&owner, "Kim Support", "support").await;
    let (_tess, tess_id) = staff_named(&owner, "Tess Tech", "tech_support").await;
    request_support(&sam, &owner, "check the units' firmware", "14d").await;
    request_support(&kim, &owner, "look around", "24h").await;
    let case = json!({"account_id": owner.account_id.to_string(), "ticket_id": "T-42", "staff_id": tess_id});
    let (status, opened) = call(
        &owner.platform,
        Method::POST,
        "/v1/support-cases",
        Some(case),
    )
    .await;
    assert_eq!(status, 201, "{opened}");
    let assets_of_acme = format!("/v1/assets?account_id={}", owner.account_id);

    let browser = Browser::start(&gateway.http_base()).await;
    browser.open("#/support").await;
    browser.sign_in_with_token(&owner.admin_token, true).await;
    browser.click("nav a[href='#/support']").await;
    let pending = browser.text_of("#support-table", "Sam Support").await;
    for shown in [
        "check the units' firmware",
        "14 days",
        "Kim Support",
        "24 hours",
    ] {
        assert!(pending.contains(shown), "{shown}: {pending}");
    }
    browser.shot("flow2-01-pending").await;

    // Approve Sam's request, after a confirm dialog.
    browser
        .click("#support-table tr:first-child [data-test=approve]")
        .await;
    browser.text_of("dialog", "will get admin rights").await;
    browser.shot("flow2-02-approve-confirm").await;
    let row_name = browser
        .find("#support-table tr:first-child td")
        .await
        .text()
        .await
        .expect("text");
    browser.click("dialog [data-test=confirm]").await;
    let approved = if row_name.contains("Sam") {
        "Sam Support"
    } else {
        "Kim Support"
    };
    browser
        .text_of(
            ".notice",
            &format!("Approved the support access of {approved}."),
        )
        .await;
    let (declined, declined_client) = if approved == "Sam Support" {
        ("Kim Support", &kim)
    } else {
        ("Sam Support", &sam)
    };
    let approved_client = if approved == "Sam Support" {
        &sam
    } else {
        &kim
    };
    assert_eq!(
        call(approved_client, Method::GET, &assets_of_acme, None)
            .await
            .0,
        200
    );

    // Decline the other.
    browser
        .click("#support-table tr:first-child [data-test=decline]")
        .await;
    browser.click("dialog [data-test=confirm]").await;
    browser
        .text_of(
            ".notice",
            &format!("Declined the support access of {declined}."),
        )
        .await;
    browser.find("#no-support").await;
    assert_ne!(
        call(declined_client, Method::GET, &assets_of_acme, None)
            .await
            .0,
        200
    );

    // Active: the approved request and the case with its ticket.
    browser.click("#tab-active").await;
    let active = browser
        .text_of("#support-table", "Support case, ticket T-42")
        .await;
    assert!(
        active.contains(approved) && active.contains("Tess Tech"),
        "{active}"
    );
    assert!(
        active.contains("+01:00"),
        "times in the browser's zone: {active}"
    );
    browser.shot("flow2-03-active").await;

    // A sub-account's admin sees the inherited access and may not revoke it there: the
    // gateway's refusal, in words.
    browser.click("#sign-out").await;
    browser.sign_in_with_token(&depot.admin_token, true).await;
    browser.click("nav a[href='#/support']").await;
    browser.click("#tab-active").await;
    browser
        .text_of("#support-table", "approved for a parent account")
        .await;
    browser
        .click("#support-table tr:first-child [data-test=revoke]")
        .await;
    browser.click("dialog [data-test=confirm]").await;
    browser
        .text_of("#support-list .problem", "Refused by the gateway.")
        .await;
    browser.shot("flow2-04-refused").await;
    browser.click("#sign-out").await;

    // Revoke: the access ends at once and moves to Archived.
    browser.sign_in_with_token(&owner.admin_token, true).await;
    browser.click("nav a[href='#/support']").await;
    browser.click("#tab-active").await;
    browser.text_of("#support-table", approved).await;
    let revoke = format!(
        "#support-table tr:nth-child({}) [data-test=revoke]",
        row_index(&browser, approved).await
    );
    browser.click(&revoke).await;
    browser.text_of("dialog", "loses access now").await;
    browser.click("dialog [data-test=confirm]").await;
    browser
        .text_of(
            ".notice",
            &format!("Revoked the support access of {approved}."),
        )
        .await;
    assert_ne!(
        call(approved_client, Method::GET, &assets_of_acme, None)
            .await
            .0,
        200
    );
    browser.click("#tab-archived").await;
    let archived = browser.text_of("#support-table", "Revoked").await;
    assert!(
        archived.contains("Declined") && archived.contains(declined),
        "{archived}"
    );
    browser.shot("flow2-05-archived").await;

    // A fleet admin is not offered the page.
    let fleet_admin = owner.user(simulator::api::UserRole::FleetAdmin).await;
    browser.click("#sign-out").await;
    browser
        .sign_in_with_token(fleet_admin.token().expect("token"), true)
        .await;
    assert_eq!(browser.count("nav a[href='#/support']").await, 0);
    browser.quit().await;
}

/// The 1-based row of the support table naming `who`.
async fn row_index(browser: &Browser, who: &str) -> usize {
    let rows = browser
        .client
        .find_all(fantoccini::Locator::Css("#support-table tbody tr"))
        .await
        .expect("rows");
    for (index, row) in rows.iter().enumerate() {
        if row.text().await.unwrap_or_default().contains(who) {
            return index + 1;
        }
    }
    panic!("no row names {who}: {}", browser.page_text().await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn support_staff_work_in_the_account_they_were_let_into() {
    let gateway = TestGateway::start();
    let owner = Fleet::create(&gateway, "Acme").await;
    let depot = owner.child(&gateway, "Depot").await;
    let body = json!({"id": "ex1", "name": "Excavator 1"});
    assert_eq!(
        call(&owner.admin, Method::POST, "/v1/assets", Some(body))
            .await
            .0,
        201
    );
    let (support, access_id) = owner.approved_support("24h").await;

    let browser = Browser::start(&gateway.http_base()).await;
    browser.open("").await;
    browser
        .sign_in_with_token(support.token().expect("token"), true)
        .await;
    // Staff not yet working in an account start on their own page, not on a refusal.
    browser.find("nav a.active[href='#/staff']").await;
    browser.click("nav a[href='#/assets']").await;
    // Staff have no home account: the gateway says which field it needs.
    browser
        .text_of("#page .problem", "(field: account_id)")
        .await;
    assert_eq!(browser.count("#share").await, 0);

    browser
        .type_into("#acting-account", &owner.account_id.to_string())
        .await;
    browser.click("#work-here").await;
    browser.text_of("#assets-table", "Excavator 1").await;
    browser
        .click("#assets-table tr[data-id='ex1'] input[type=checkbox]")
        .await;
    browser.click("#share").await;
    browser
        .select("#target-account", "Depot (sub-account)")
        .await;
    browser.click("#review").await;
    browser.text_of("#review-table", "will be shared").await;
    browser.click("#confirm").await;
    browser
        .text_of(".notice", "Shared 1 asset with Depot permanently.")
        .await;
    browser.shot("flow2-06-support-staff-at-work").await;
    let (_, seen) = call(&depot.admin, Method::GET, "/v1/assets", None).await;
    assert_eq!(seen["items"][0]["id"], "ex1", "{seen}");

    // The account's audit names the access the change was made under.
    let path = format!("/v1/audit?account_id={}&action=grant", owner.account_id);
    let (status, audit) = call(&owner.admin, Method::GET, &path, None).await;
    assert_eq!(status, 200, "{audit}");
    let via = format!("request {access_id}");
    assert!(
        audit["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|entry| entry["via"] == via.as_str()),
        "{audit}"
    );
    browser.quit().await;
}
