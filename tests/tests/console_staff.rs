//! The web console's flow 7, Staff, end to end in headless Chromium against a real gateway
//! (see `console.rs` for the harness): a support member picks an account by name, requests
//! access and follows its state; without approved access the banner says why the gateway
//! refuses; once approved it works in the account under a banner naming the access and its
//! end, and rule 4's "no lasting access" refusal is shown in words. Tech support opens and
//! closes a case; the platform admin creates accounts and staff and opens a case for a
//! tech support member, and disables, enables, re-tokens and deletes staff members (the
//! last enabled platform admin kept, in the gateway's words). Also the account list
//! (`GET /v1/accounts`) the picker reads.

use reqwest::Method;
use serde_json::json;
use tests::browser::Browser;
use tests::{call, Fleet, TestGateway};

/// The names `client` finds in `GET /v1/accounts` (with `query`), sorted.
async fn account_names(client: &simulator::ApiClient, query: &str) -> Vec<String> {
    let (status, listed) = call(client, Method::GET, &format!("/v1/accounts{query}"), None).await;
    assert_eq!(status, 200, "{listed}");
    let mut names: Vec<String> = listed["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|account| account["name"].as_str().expect("name").to_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_are_listed_by_what_the_caller_may_read() {
    let gateway = TestGateway::start();
    let acme = Fleet::create(&gateway, "Acme").await;
    let _depot = acme.child(&gateway, "Depot").await;
    let other = Fleet::create(&gateway, "Northwind").await;
    let (support, _) = acme.staff("support").await;
    assert_eq!(
        account_names(&support, "").await,
        ["Acme", "Depot", "Northwind"]
    );
    assert_eq!(account_names(&support, "?q=NORTH").await, ["Northwind"]);
    assert_eq!(account_names(&acme.admin, "").await, ["Acme", "Depot"]);
    assert_eq!(account_names(&other.admin, "").await, ["Northwind"]);
    let (status, page) = call(&support, Method::GET, "/v1/accounts?limit=2", None).await;
    assert_eq!(status, 200);
    let cursor = page["next_cursor"].as_str().expect("a second page");
    let path = format!("/v1/accounts?limit=2&cursor={cursor}");
    let (_, rest) = call(&support, Method::GET, &path, None).await;
    assert_eq!(rest["items"].as_array().map(Vec::len), Some(1), "{rest}");
    let (status, _) = call(&support, Method::GET, "/v1/accounts?limit=0", None).await;
    assert_eq!(status, 422);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn support_staff_request_access_and_work_under_it_with_a_banner() {
    let gateway = TestGateway::start();
    let owner = Fleet::create(&gateway, "Acme").await;
    let other = Fleet::create(&gateway, "Northwind").await;
    let body = json!({"id": "ex1", "name": "Excavator 1"});
    assert_eq!(
        call(&owner.admin, Method::POST, "/v1/assets", Some(body))
            .await
            .0,
        201
    );
    let (support, support_id) = owner.staff("support").await;

    let browser = Browser::start(&gateway.http_base()).await;
    browser.open("").await;
    browser
        .sign_in_with_token(support.token().expect("token"), true)
        .await;
    browser.click("nav a[href='#/staff']").await;
    browser.select("#request-account", "Acme").await;
    browser
        .type_into("#request-purpose", "check the units' firmware")
        .await;
    browser.select("#request-duration", "14 days").await;
    browser.click("#request-access").await;
    browser
        .text_of(".notice", "Requested 14 days of access to Acme")
        .await;
    browser
        .text_of("#access-table", "Waiting for approval")
        .await;
    browser.shot("flow7-01-request-access").await;

    // Without approved access: the banner says why, the page shows the refusal.
    browser
        .type_into("#acting-account", &owner.account_id.to_string())
        .await;
    browser.click("#work-here").await;
    browser.click("nav a[href='#/assets']").await;
    browser
        .text_of("#acting-banner", "no approved support access to Acme")
        .await;
    browser
        .text_of("#acting-banner", "waits for the account admin's approval")
        .await;
    browser.find("#page .problem").await;
    assert_eq!(browser.count("#assets-table").await, 0);
    browser.shot("flow7-02-no-access-yet").await;

    // The account's admin approves; the staff member works there under the banner.
    let path = format!(
        "/v1/accounts/{}/support-access?state=pending",
        owner.account_id
    );
    let (_, pending) = call(&owner.admin, Method::GET, &path, None).await;
    let request = pending["items"][0]["id"].as_str().expect("a request");
    assert_eq!(pending["items"][0]["staff_id"], support_id.as_str());
    let approve = format!("/v1/support-access/requests/{request}/approve");
    assert_eq!(
        call(&owner.admin, Method::POST, &approve, None).await.0,
        200
    );
    // My access is one list across accounts, filtered by state.
    let body = json!({"account_id": other.account_id.to_string(), "purpose": "a second look", "duration": "24h"});
    let requests = "/v1/support-access/requests";
    assert_eq!(
        call(&support, Method::POST, requests, Some(body)).await.0,
        201
    );
    browser.click("nav a[href='#/staff']").await;
    browser.text_of("#access-table", "Northwind").await;
    browser.text_of("#access-table", "Active").await;
    browser.shot("flow7-09-my-access").await;
    browser.select("#mine-state", "Active").await;
    browser.gone("#access-table tr[data-state=pending]").await;
    let active = browser.text_of("#access-table", "Acme").await;
    assert!(!active.contains("Northwind"), "{active}");
    browser.click("#access-table [data-test=work-here]").await;
    let banner = browser
        .text_of("#acting-banner", "under support access")
        .await;
    assert!(
        banner.contains("Acme")
            && banner.contains("check the units' firmware")
            && banner.contains("+01:00"),
        "{banner}"
    );
    browser.text_of("#assets-table", "Excavator 1").await;
    browser.shot("flow7-03-working-under-access").await;

    // Temporary access creates no lasting access (rule 4): staff read the users, and no
    // button offers a change the gateway would refuse.
    browser.click("nav a[href='#/users']").await;
    browser.text_of("#users-table", "Admin").await;
    browser.text_of("#users-read-only", "rule 4").await;
    assert_eq!(browser.count("#create-user").await, 0);
    assert_eq!(browser.count("#users-table button").await, 0);
    assert_eq!(browser.count("#users-table select").await, 0);
    browser.shot("flow7-04-no-lasting-access").await;
    // Nor a unit's key: no registering a unit here.
    browser.click("nav a[href='#/devices']").await;
    browser.find("#device-list").await;
    assert_eq!(browser.count("#register-unit").await, 0);
    // The gateway refuses it all the same.
    let body = json!({"name": "Backdoor", "role": "admin"});
    let path = format!("/v1/accounts/{}/users", owner.account_id);
    let (status, refusal) = call(&support, Method::POST, &path, Some(body)).await;
    assert_eq!(status, 403, "{refusal}");
    assert!(refusal.to_string().contains("rule 4"), "{refusal}");
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tech_support_opens_and_closes_a_case() {
    let gateway = TestGateway::start();
    let owner = Fleet::create(&gateway, "Acme").await;
    let (tech, _) = owner.staff("tech_support").await;
    let assets_of_acme = format!("/v1/assets?account_id={}", owner.account_id);

    let browser = Browser::start(&gateway.http_base()).await;
    browser.open("").await;
    browser
        .sign_in_with_token(tech.token().expect("token"), true)
        .await;
    browser.click("nav a[href='#/staff']").await;
    browser.select("#case-account", "Acme").await;
    browser.type_into("#case-ticket", "T-7").await;
    browser.click("#open-case").await;
    let notice = browser.text_of(".notice", "Opened case T-7 in Acme").await;
    assert!(notice.contains("+01:00"), "{notice}");
    assert_eq!(call(&tech, Method::GET, &assets_of_acme, None).await.0, 200);
    browser.text_of("#access-table", "support case T-7").await;
    browser.shot("flow7-05-case-open").await;
    browser.click("#access-table [data-test=work-here]").await;
    browser
        .text_of("#acting-banner", "(support case T-7) until")
        .await;

    browser.click("nav a[href='#/staff']").await;
    browser.click("#access-table [data-test=close-case]").await;
    browser
        .text_of("dialog", "loses access to this account now")
        .await;
    browser.click("dialog [data-test=confirm]").await;
    browser.text_of(".notice", "Closed case T-7.").await;
    browser.text_of("#access-table", "Closed").await;
    assert_ne!(call(&tech, Method::GET, &assets_of_acme, None).await.0, 200);
    browser.shot("flow7-06-case-closed").await;
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_platform_admin_creates_accounts_and_staff_and_opens_a_case_for_them() {
    let gateway = TestGateway::start();
    let browser = Browser::start(&gateway.http_base()).await;
    browser.open("").await;
    browser.sign_in_with_token(&gateway.admin_token, true).await;
    // The platform admin starts on its page, and sees the id a password sign-in asks for.
    browser.find("nav a.active[href='#/platform']").await;
    let platform = simulator::ApiClient::new(&gateway.http_base(), gateway.admin_token.clone())
        .expect("client");
    let (_, me) = call(&platform, Method::GET, "/v1/me", None).await;
    let id = me["principal_id"].as_str().expect("an id").to_owned();
    let admin_name = me["name"].as_str().expect("a name").to_owned();
    browser.text_of("#who-id", &id).await;
    browser.type_into("#new-account-name", "Northwind").await;
    browser.click("#create-account").await;
    browser
        .text_of(".notice", "Created account Northwind")
        .await;
    browser.text_of("#accounts-table", "Northwind").await;
    browser
        .type_into("#new-account-name", "Harbour depot")
        .await;
    browser.select("#new-account-parent", "Northwind").await;
    browser.click("#create-account").await;
    browser
        .text_of("#accounts-table", "Harbour depot (in Northwind)")
        .await;
    browser.type_into("#new-staff-name", "Tina Tech").await;
    browser.select("#new-staff-role", "Tech support").await;
    browser.click("#create-staff").await;
    let tina_token = browser.take_secret().await;
    let tina = simulator::ApiClient::new(&gateway.http_base(), tina_token).expect("client");
    let (_, me) = call(&tina, Method::GET, "/v1/me", None).await;
    assert_eq!(me["role"], "tech_support", "{me}");
    browser.text_of("#staff-table", "Tina Tech").await;
    browser.select("#staff-role-filter", "Support").await;
    browser.gone("#staff-table tr[data-id]").await;
    browser.select("#staff-role-filter", "Tech support").await;
    browser.text_of("#staff-table", "Tina Tech").await;
    browser.shot("flow7-07-platform").await;

    // A disabled tech support member cannot be named for a case: not offered.
    let body = json!({"name": "Ted Gone", "role": "tech_support"});
    let (status, ted) = call(&platform, Method::POST, "/v1/staff", Some(body)).await;
    assert_eq!(status, 201, "{ted}");
    let ted_path = format!("/v1/staff/{}", ted["id"].as_str().expect("id"));
    let disable = Some(json!({"disabled": true}));
    assert_eq!(
        call(&platform, Method::PATCH, &ted_path, disable).await.0,
        200
    );

    // A case for Tina, opened by the platform admin, who gets no account rights from it.
    browser.click("nav a[href='#/staff']").await;
    browser.find("#case-staff option[value]").await;
    let ted_option = format!(
        "#case-staff option[value='{}']",
        ted["id"].as_str().expect("id")
    );
    assert_eq!(
        browser.count(&ted_option).await,
        0,
        "a disabled member is not offered"
    );
    browser.select("#case-account", "Northwind").await;
    browser.type_into("#case-ticket", "T-9").await;
    let tina_id = me["principal_id"].as_str().expect("id");
    browser
        .select("#case-staff", &format!("Tina Tech ({tina_id})"))
        .await;
    browser.click("#open-case").await;
    browser
        .text_of(".notice", "Opened case T-9 in Northwind")
        .await;
    browser.select("#access-account", "Northwind").await;
    browser.text_of("#access-table", "Tina Tech").await;
    assert_eq!(
        browser.count("#access-table [data-test=work-here]").await,
        0
    );
    browser.shot("flow7-08-case-for-staff").await;
    // The audit log names staff actors, the platform admin among them.
    browser.click("nav a[href='#/audit']").await;
    browser
        .text_of("#audit-table", &format!("{admin_name} ({id})"))
        .await;
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_platform_admin_disables_enables_retokens_and_deletes_staff() {
    let gateway = TestGateway::start();
    let platform = simulator::ApiClient::new(&gateway.http_base(), gateway.admin_token.clone())
        .expect("client");
    let body = json!({"name": "Sam Support", "role": "support"});
    let (status, sam) = call(&platform, Method::POST, "/v1/staff", Some(body)).await;
    assert_eq!(status, 201, "{sam}");
    let sam_id = sam["id"].as_str().expect("id").to_owned();
    let sam_client = platform.with_token(sam["token"].as_str().expect("token"));
    let me_of = |client: simulator::ApiClient| async move {
        call(&client, Method::GET, "/v1/me", None).await.0
    };
    let browser = Browser::start(&gateway.http_base()).await;
    browser.open("").await;
    browser.sign_in_with_token(&gateway.admin_token, true).await;
    browser.find("nav a.active[href='#/platform']").await;
    let sam_row = format!("#staff-table tr[data-id='{sam_id}']");

    // Disable Sam, after a confirm that says what ends: his token is refused at once.
    browser
        .click(&format!("{sam_row} [data-test=disable-staff]"))
        .await;
    browser.text_of("dialog", "loses access now").await;
    browser.shot("flow7-10-disable-staff").await;
    browser.click("dialog [data-test=confirm]").await;
    browser.text_of(".notice", "Disabled Sam Support").await;
    browser.text_of(&sam_row, "disabled").await;
    assert_eq!(me_of(sam_client.clone()).await, 401);

    // Enabled again, then a rotated token (shown once) lets him back in.
    browser
        .click(&format!("{sam_row} [data-test=enable-staff]"))
        .await;
    browser.click("dialog [data-test=confirm]").await;
    browser.text_of(".notice", "Enabled Sam Support").await;
    browser.text_of(&sam_row, "active").await;
    browser
        .click(&format!("{sam_row} [data-test=rotate-staff]"))
        .await;
    browser.text_of("dialog", "stops working now").await;
    browser.click("dialog [data-test=confirm]").await;
    let token = browser.take_secret().await;
    assert_eq!(me_of(platform.with_token(token.clone())).await, 200);

    // The only platform admin cannot disable itself: the gateway's refusal, in words.
    let (_, me) = call(&platform, Method::GET, "/v1/me", None).await;
    let own_row = format!(
        "#staff-table tr[data-id='{}']",
        me["principal_id"].as_str().expect("id")
    );
    browser
        .click(&format!("{own_row} [data-test=disable-staff]"))
        .await;
    browser.click("dialog [data-test=confirm]").await;
    browser
        .text_of("#staff-problems", "last enabled platform_admin")
        .await;
    browser.shot("flow7-11-last-platform-admin").await;

    // Deleted, Sam leaves the list and his new token dies.
    browser
        .click(&format!("{sam_row} [data-test=delete-staff]"))
        .await;
    browser.text_of("dialog", "is deleted").await;
    browser.click("dialog [data-test=confirm]").await;
    browser.text_of(".notice", "Deleted Sam Support").await;
    browser.gone(&sam_row).await;
    assert_eq!(me_of(platform.with_token(token)).await, 401);
    browser.quit().await;
}
