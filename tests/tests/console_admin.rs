//! The web console's flow 6, Administration, end to end in headless Chromium against a
//! real gateway (see `console.rs` for the harness): an account admin adds a user, changes a
//! role, rotates a token, hands out a password link, disables and deletes, with the
//! gateway's refusal of disabling the last admin in words; revokes a unit's certificate;
//! reads the audit log filtered and paged; the platform admin makes and ends a partnership;
//! a viewer and a fleet admin are offered none of it. Every change is checked again
//! through the JSON API.

use reqwest::Method;
use serde_json::json;
use simulator::api::UserRole;
use tests::browser::Browser;
use tests::{call, eventually, Fleet, TestGateway};

async fn me_status(gateway: &TestGateway, token: &str) -> u16 {
    let client = simulator::ApiClient::new(&gateway.http_base(), token.to_owned()).expect("client");
    call(&client, Method::GET, "/v1/me", None).await.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_manages_users_roles_tokens_and_password_links() {
    let gateway = TestGateway::start();
    let owner = Fleet::create(&gateway, "Acme").await;
    let vera = owner
        .admin
        .create_user(&owner.account_id, "Vera Viewer", UserRole::Viewer)
        .await
        .expect("user");
    let vera_row = format!("#users-table tr[data-id='{}']", vera.id);

    let browser = Browser::start(&gateway.http_base()).await;
    browser.open("").await;
    browser.sign_in_with_token(&owner.admin_token, true).await;
    browser.click("nav a[href='#/users']").await;
    let table = browser.text_of("#users-table", "Vera Viewer").await;
    assert!(table.contains("never"), "token never used: {table}");

    // Add a user: the account has its admin, so a new user starts as a viewer (an account
    // without one starts the picker on Admin); the token is shown once and works.
    browser
        .find("#new-user-role option[value='viewer']:checked")
        .await;
    browser.type_into("#new-user-name", "Fred Fleet").await;
    browser.select("#new-user-role", "Fleet admin").await;
    browser.click("#create-user").await;
    let token = browser.take_secret().await;
    assert_eq!(me_status(&gateway, &token).await, 200);
    browser
        .text_of(".notice", "Added Fred Fleet as Fleet admin.")
        .await;
    browser.text_of("#users-table", "Fred Fleet").await;
    browser.shot("flow6-01-users").await;

    // Change Vera's role, after a confirm.
    browser
        .select(&format!("{vera_row} [data-test=role]"), "Fleet admin")
        .await;
    browser.text_of("dialog", "becomes Fleet admin").await;
    browser.shot("flow6-02-role-confirm").await;
    browser.click("dialog [data-test=confirm]").await;
    browser
        .text_of(".notice", "Vera Viewer is now Fleet admin.")
        .await;
    let users = format!("/v1/accounts/{}/users", owner.account_id);
    let (_, listed) = call(&owner.admin, Method::GET, &users, None).await;
    let role_of_vera = listed["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|user| user["id"] == vera.id.to_string().as_str())
        .map(|user| user["role"].clone());
    assert_eq!(role_of_vera, Some(json!("fleet_admin")));

    // Rotate her token: the old one stops, the new one works.
    browser
        .click(&format!("{vera_row} [data-test=rotate]"))
        .await;
    browser.click("dialog [data-test=confirm]").await;
    let rotated = browser.take_secret().await;
    assert_eq!(me_status(&gateway, &vera.token).await, 401);
    assert_eq!(me_status(&gateway, &rotated).await, 200);

    // A one-time password link for her, which the gateway knows as hers.
    browser
        .click(&format!("{vera_row} [data-test=invite]"))
        .await;
    browser.text_of("dialog", "+01:00").await;
    browser.shot("flow6-03-password-link").await;
    let link = browser.take_secret().await;
    let token = link
        .split("#/set-password/")
        .nth(1)
        .expect("a set-password link");
    let client = simulator::ApiClient::new(&gateway.http_base(), String::new()).expect("client");
    let (status, invitation) = call(
        &client,
        Method::GET,
        &format!("/v1/password-invitations/{token}"),
        None,
    )
    .await;
    assert_eq!(
        (status, invitation["name"].clone()),
        (200, json!("Vera Viewer"))
    );

    // Disable her: her token is refused at once.
    browser
        .click(&format!("{vera_row} [data-test=disable]"))
        .await;
    browser.text_of("dialog", "loses access now").await;
    browser.click("dialog [data-test=confirm]").await;
    browser.text_of(&vera_row, "disabled").await;
    assert_eq!(me_status(&gateway, &rotated).await, 401);

    // The only admin cannot disable itself: the gateway's refusal, in words.
    let (_, me) = call(&owner.admin, Method::GET, "/v1/me", None).await;
    let admin_row = format!(
        "#users-table tr[data-id='{}']",
        me["principal_id"].as_str().expect("id")
    );
    browser
        .click(&format!("{admin_row} [data-test=disable]"))
        .await;
    browser.click("dialog [data-test=confirm]").await;
    browser
        .text_of(
            "#user-problems .problem",
            "In conflict with the current state.",
        )
        .await;
    browser.shot("flow6-04-last-admin-refused").await;

    // A stale page: a user deleted elsewhere after the list was shown is not found.
    let stella = owner
        .admin
        .create_user(&owner.account_id, "Stella Stale", UserRole::Viewer)
        .await
        .expect("user");
    browser.click("nav a[href='#/assets']").await;
    browser.click("nav a[href='#/users']").await;
    let stella_row = format!("#users-table tr[data-id='{}']", stella.id);
    browser.text_of(&stella_row, "Stella Stale").await;
    let path = format!("{users}/{}", stella.id);
    assert_eq!(call(&owner.admin, Method::DELETE, &path, None).await.0, 204);
    browser
        .click(&format!("{stella_row} [data-test=rotate]"))
        .await;
    browser.click("dialog [data-test=confirm]").await;
    browser
        .text_of("#user-problems .problem", "Not found.")
        .await;

    // Delete Fred.
    let (_, listed) = call(&owner.admin, Method::GET, &users, None).await;
    let fred = listed["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|user| user["name"] == "Fred Fleet")
        .and_then(|user| user["id"].as_str())
        .expect("Fred listed")
        .to_owned();
    browser
        .click(&format!(
            "#users-table tr[data-id='{fred}'] [data-test=delete]"
        ))
        .await;
    browser.click("dialog [data-test=confirm]").await;
    browser.text_of(".notice", "Deleted Fred Fleet.").await;
    browser
        .gone(&format!("#users-table tr[data-id='{fred}']"))
        .await;
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_are_revoked_and_the_audit_log_is_filtered_and_paged() {
    let gateway = TestGateway::start();
    let owner = Fleet::create(&gateway, "Acme").await;
    owner.unit_with_asset("u1", "ex1").await;
    let unit = owner.connect("u1").await;
    // Enough changes for more than one page of assets in the audit log.
    for n in 0..55 {
        let body = json!({"id": format!("a{n}"), "name": format!("Asset {n}")});
        assert_eq!(
            call(&owner.admin, Method::POST, "/v1/assets", Some(body))
                .await
                .0,
            201
        );
    }

    let browser = Browser::start(&gateway.http_base()).await;
    browser.open("").await;
    browser.sign_in_with_token(&owner.admin_token, true).await;
    browser.click("nav a[href='#/devices']").await;
    browser.text_of("#devices-table", "online").await;
    browser.text_of("#certs-table", "u1").await;
    browser
        .click("#certs-table tr[data-tenant='u1'] [data-test=revoke-cert]")
        .await;
    browser.text_of("dialog", "can no longer connect").await;
    browser.shot("flow6-06-revoke-certificate").await;
    browser.click("dialog [data-test=confirm]").await;
    browser
        .text_of(".notice", "Revoked the certificate of u1.")
        .await;
    browser
        .text_of("#certs-table tr[data-tenant='u1']", "revoked")
        .await;
    // The unit's live session was closed before the answer.
    let closed = eventually(|| async { (!unit.is_connected()).then_some(()) }).await;
    assert!(closed.is_some(), "the revoked unit is disconnected");
    // And the devices list says so without a reload of the page.
    browser
        .text_of("#devices-table tr[data-id='u1']", "offline")
        .await;

    // The audit log: the revocation under "Certificates"; assets paged 50 at a time.
    browser.click("nav a[href='#/audit']").await;
    // Newest first: the revocation just made opens the log; oldest first, the account's
    // own creation does.
    let newest = browser
        .text_of("#audit-table tbody tr:first-child", "certificate.revoke")
        .await;
    assert!(!newest.contains("account.create"), "{newest}");
    browser.select("#audit-order", "Oldest first").await;
    browser.click("#audit-apply").await;
    browser
        .text_of("#audit-table tbody tr:first-child", "account.create")
        .await;
    browser.select("#audit-action", "Certificates").await;
    browser.click("#audit-apply").await;
    let entries = browser.text_of("#audit-table", "certificate.revoke").await;
    assert!(!entries.contains("asset.create"), "{entries}");
    assert!(entries.contains("+01:00"), "{entries}");
    browser.shot("flow6-07-audit-filtered").await;
    browser.select("#audit-action", "Assets").await;
    browser.click("#audit-apply").await;
    browser.text_of("#audit-table", "asset.create").await;
    browser.click("#audit-next").await;
    browser.text_of("#audit-page", "Page 2").await;
    let second = browser.text_of("#audit-table", "asset.create").await;
    assert!(
        second.contains("a54"),
        "the newest on the last page: {second}"
    );
    // Filtered by an actor nobody is: nothing.
    browser.type_into("#audit-actor", "usr-nobody").await;
    browser.click("#audit-apply").await;
    browser.find("#no-audit").await;

    // A viewer: no administration offered, no buttons on the devices page.
    let viewer = owner
        .admin
        .create_user(&owner.account_id, "Vic", UserRole::Viewer)
        .await
        .expect("viewer");
    browser.click("#sign-out").await;
    browser.sign_in_with_token(&viewer.token, true).await;
    for page in ["users", "audit", "partnerships"] {
        assert_eq!(
            browser.count(&format!("nav a[href='#/{page}']")).await,
            0,
            "{page}"
        );
    }
    browser.click("nav a[href='#/devices']").await;
    browser.text_of("#devices-table", "u1").await;
    assert_eq!(browser.count("#certificates").await, 0);
    assert_eq!(browser.count("button.danger").await, 0);
    browser.shot("flow6-08-viewer-devices").await;
    // Opening the users page by its address shows the assets instead.
    browser.open("#/users").await;
    browser.find("#assets-table").await;
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_platform_admin_makes_and_ends_partnerships() {
    let gateway = TestGateway::start();
    let owner = Fleet::create(&gateway, "Acme").await;
    let other = Fleet::create(&gateway, "Northwind").await;

    let browser = Browser::start(&gateway.http_base()).await;
    browser.open("").await;
    browser.sign_in_with_token(&gateway.admin_token, true).await;
    browser.click("nav a[href='#/partnerships']").await;
    browser.find("#no-partnerships").await;
    browser.select("#partner-a", "Acme").await;
    browser.select("#partner-b", "Northwind").await;
    browser.click("#create-partnership").await;
    browser
        .text_of("dialog", "may then share assets with each other")
        .await;
    browser.click("dialog [data-test=confirm]").await;
    browser
        .text_of(".notice", "Acme and Northwind are partners.")
        .await;
    browser.text_of("#partnerships-table", "Northwind").await;
    browser.shot("flow6-09-partnerships").await;
    // A new organization has no user yet: adding its first one starts on Admin.
    let (status, _) = call(
        &simulator::ApiClient::new(&gateway.http_base(), gateway.admin_token.clone())
            .expect("client"),
        Method::POST,
        "/v1/accounts",
        Some(json!({"name": "Fresh Org"})),
    )
    .await;
    assert_eq!(status, 201);
    browser.click("nav a[href='#/users']").await;
    browser.select("#users-account", "Fresh Org").await;
    browser
        .find("#new-user-role option[value='admin']:checked")
        .await;
    let (_, listed) = call(&owner.admin, Method::GET, "/v1/partnerships", None).await;
    assert_eq!(
        listed["items"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );

    // The account's admin sees it, and may not end it (no button, rule 3).
    browser.click("#sign-out").await;
    browser.sign_in_with_token(&owner.admin_token, true).await;
    browser.click("nav a[href='#/partnerships']").await;
    browser.text_of("#partnerships-table", "Acme").await;
    // The partner organization by its name, though its account is not Acme's to read.
    browser
        .text_of(
            "#partnerships-table",
            &format!("Northwind ({})", other.account_id),
        )
        .await;
    assert_eq!(browser.count("[data-test=end-partnership]").await, 0);
    assert_eq!(browser.count("#new-partnership").await, 0);
    browser.click("#sign-out").await;

    // The platform admin ends it.
    browser.sign_in_with_token(&gateway.admin_token, true).await;
    browser.click("nav a[href='#/partnerships']").await;
    browser.click("[data-test=end-partnership]").await;
    browser.text_of("dialog", "stop being partners").await;
    browser.click("dialog [data-test=confirm]").await;
    browser
        .text_of(
            ".notice",
            "Ended the partnership; 0 visibility grants ended with it.",
        )
        .await;
    browser.find("#no-partnerships").await;
    let (_, listed) = call(&other.admin, Method::GET, "/v1/partnerships", None).await;
    assert_eq!(
        listed["items"].as_array().map(Vec::len),
        Some(0),
        "{listed}"
    );
    browser.quit().await;
}
