//! Console sign-in as a browser does it: a password or an API token buys an HttpOnly,
//! SameSite=Strict session cookie; a change made with the cookie needs the session's CSRF
//! token; the session ends at sign-out, at expiry, and when its user is disabled, changes
//! role or is deleted, and its live streams end with it. Users get their password through
//! a one-time invitation; failed sign-ins are throttled like wrong tokens.

use std::time::Duration;

use reqwest::header::{COOKIE, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use simulator::api::UserRole;
use tests::{call, Fleet, TestGateway};

/// A browser's view of one session: its cookie and its CSRF token.
struct Browser {
    base: String,
    http: reqwest::Client,
    cookie: String,
    csrf: String,
    /// The `Set-Cookie` header of the sign-in, as sent.
    set_cookie: String,
    session: Value,
}

/// An answer: status, `Set-Cookie` if any, and the JSON body (`Null` when none).
struct Answer {
    status: u16,
    set_cookie: Option<String>,
    body: Value,
}

impl Answer {
    /// The status and the field a refusal names (`Null` when it names none).
    fn refused_field(&self) -> (u16, Value) {
        (self.status, self.body["field"].clone())
    }
}

async fn send(
    http: &reqwest::Client,
    request: reqwest::RequestBuilder,
    body: Option<Value>,
) -> Answer {
    let request = match body {
        Some(body) => request.json(&body),
        None => request,
    };
    let response = http
        .execute(request.build().expect("request"))
        .await
        .expect("answer");
    let status = response.status().as_u16();
    let set_cookie = response
        .headers()
        .get(SET_COOKIE)
        .map(|value| value.to_str().expect("ascii").to_owned());
    let text = response.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer {
        status,
        set_cookie,
        body,
    }
}

async fn sign_in(gateway: &TestGateway, credentials: Value) -> Result<Browser, Answer> {
    let base = gateway.http_base();
    let http = reqwest::Client::new();
    let request = http.post(format!("{base}/v1/session"));
    let answer = send(&http, request, Some(credentials)).await;
    if answer.status != 200 {
        return Err(answer);
    }
    let set_cookie = answer.set_cookie.expect("a session cookie");
    let cookie = set_cookie.split(';').next().expect("name=value").to_owned();
    Ok(Browser {
        base,
        http,
        cookie,
        csrf: answer.body["csrf_token"].as_str().expect("csrf").to_owned(),
        set_cookie,
        session: answer.body,
    })
}

impl Browser {
    /// A request with the cookie and, when `csrf`, the CSRF token.
    async fn call(&self, method: Method, path: &str, body: Option<Value>, csrf: bool) -> Answer {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header(COOKIE, &self.cookie);
        if csrf {
            request = request.header("X-CSRF-Token", &self.csrf);
        }
        send(&self.http, request, body).await
    }

    async fn me(&self) -> u16 {
        self.call(Method::GET, "/v1/me", None, false).await.status
    }

    /// The live stream of the caller's account, opened with the cookie.
    async fn stream(&self) -> reqwest::Response {
        let response = self
            .http
            .get(format!("{}/v1/stream", self.base))
            .header(COOKIE, &self.cookie)
            .send()
            .await
            .expect("stream");
        assert_eq!(response.status(), StatusCode::OK);
        response
    }
}

const PASSWORD: &str = "correct horse battery staple";

/// A viewer user of the fleet's account with a password set through an invitation.
async fn user_with_password(fleet: &Fleet, gateway: &TestGateway, role: UserRole) -> String {
    let user = fleet
        .admin
        .create_user(&fleet.account_id, "Vera", role)
        .await
        .expect("user");
    let token = invite(fleet, &user.id.to_string(), false).await["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let http = reqwest::Client::new();
    let url = format!("{}/v1/password-invitations/{token}", gateway.http_base());
    let answer = send(&http, http.post(url), Some(json!({"password": PASSWORD}))).await;
    assert_eq!(answer.status, 204, "{}", answer.body);
    user.id.to_string()
}

async fn invite(fleet: &Fleet, user: &str, reset: bool) -> Value {
    let path = format!(
        "/v1/accounts/{}/users/{user}/password-invitation?reset={reset}",
        fleet.account_id
    );
    let (status, body) = call(&fleet.admin, Method::POST, &path, None).await;
    assert_eq!(status, 201, "{body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_platform_admin_signs_in_with_the_bootstrap_token_then_with_its_password() {
    let gateway = TestGateway::start();
    let admin = sign_in(&gateway, json!({"token": gateway.admin_token}))
        .await
        .unwrap_or_else(|answer| panic!("{}", answer.body));
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(admin.set_cookie.contains(attribute), "{}", admin.set_cookie);
    }
    // Plain HTTP: a Secure cookie would never come back.
    assert!(!admin.set_cookie.contains("Secure"), "{}", admin.set_cookie);
    assert!(admin.cookie.starts_with("fleetgate_session="));
    assert_eq!(admin.session["password_set"], false);
    assert_eq!(admin.session["user"]["role"], "platform_admin");
    assert_eq!(admin.me().await, 200);

    // A change with the cookie but without the CSRF token is refused, naming the header.
    let change = json!({"password": PASSWORD});
    let refused = admin
        .call(
            Method::PUT,
            "/v1/session/password",
            Some(change.clone()),
            false,
        )
        .await;
    assert_eq!(refused.status, 403);
    assert!(refused.body["detail"]
        .as_str()
        .unwrap()
        .contains("X-CSRF-Token"));
    let short = json!({"password": "too short"});
    let answer = admin
        .call(Method::PUT, "/v1/session/password", Some(short), true)
        .await;
    assert_eq!(answer.refused_field(), (422, json!("password")));
    let answer = admin
        .call(Method::PUT, "/v1/session/password", Some(change), true)
        .await;
    assert_eq!(answer.status, 204, "{}", answer.body);
    let again = admin.call(Method::GET, "/v1/session", None, false).await;
    assert_eq!(again.body["password_set"], true);
    assert_eq!(again.body["csrf_token"], admin.session["csrf_token"]);

    // Now the password works, a wrong one does not, and changing it needs the current one.
    let id = admin.session["user"]["principal_id"].as_str().unwrap();
    let by_password = sign_in(&gateway, json!({"user_id": id, "password": PASSWORD}))
        .await
        .unwrap_or_else(|answer| panic!("{}", answer.body));
    assert_ne!(
        by_password.cookie, admin.cookie,
        "each sign-in is its own session"
    );
    let wrong = sign_in(
        &gateway,
        json!({"user_id": id, "password": "correct horse battery"}),
    );
    let wrong = wrong.await.err().expect("refused");
    assert_eq!(wrong.status, 401);
    let detail = wrong.body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("user id and password"), "{}", wrong.body);
    let next = json!({"password": "a brand new passphrase"});
    let answer = by_password
        .call(Method::PUT, "/v1/session/password", Some(next), true)
        .await;
    assert_eq!(answer.refused_field(), (422, json!("current_password")));
    let next =
        json!({"password": "a brand new passphrase", "current_password": "guess guess guess"});
    let answer = by_password
        .call(Method::PUT, "/v1/session/password", Some(next), true)
        .await;
    assert_eq!(answer.refused_field(), (422, json!("current_password")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_refusals_say_which_rule() {
    let gateway = TestGateway::start();
    let fleet = Fleet::create(&gateway, "Acme").await;
    let vera = user_with_password(&fleet, &gateway, UserRole::Viewer).await;
    for (body, status) in [
        (json!({}), 422),
        (json!({"token": gateway.admin_token, "user_id": vera}), 422),
        (json!({"user_id": vera}), 422),
        (
            json!({"user_id": vera, "password": PASSWORD, "extra": 1}),
            422,
        ),
        (
            json!({"user_id": "usr0000000000000000", "password": PASSWORD}),
            401,
        ),
        (json!({"user_id": vera, "password": "x".repeat(5000)}), 401),
        (json!({"token": "fgt_not_a_token"}), 401),
    ] {
        let answer = sign_in(&gateway, body.clone())
            .await
            .err()
            .expect("refused");
        assert_eq!(answer.status, status, "{body}: {}", answer.body);
        assert!(
            answer.set_cookie.is_none(),
            "{body}: no cookie for a refusal"
        );
    }
    // A bearer token has no console session to read or end; a made-up cookie is no session.
    let (status, _) = call(&fleet.admin, Method::GET, "/v1/session", None).await;
    assert_eq!(status, 404);
    let http = reqwest::Client::new();
    let forged = http
        .get(format!("{}/v1/me", gateway.http_base()))
        .header(COOKIE, "fleetgate_session=fgt_made_up");
    assert_eq!(send(&http, forged, None).await.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cookie_change_needs_its_own_sessions_csrf_token_and_a_bearer_call_none() {
    let gateway = TestGateway::start();
    let fleet = Fleet::create(&gateway, "Acme").await;
    let vera = user_with_password(&fleet, &gateway, UserRole::Admin).await;
    let credentials = json!({"user_id": vera, "password": PASSWORD});
    let first = sign_in(&gateway, credentials.clone()).await.ok().unwrap();
    let mut second = sign_in(&gateway, credentials).await.ok().unwrap();
    let path = format!("/v1/accounts/{}/users", fleet.account_id);
    let body = json!({"name": "Olaf", "role": "viewer"});
    // Another session's token is no good: the token belongs to the cookie.
    second.csrf = first.csrf.clone();
    let answer = second
        .call(Method::POST, &path, Some(body.clone()), true)
        .await;
    assert_eq!(answer.status, 403, "{}", answer.body);
    let answer = first
        .call(Method::POST, &path, Some(body.clone()), false)
        .await;
    assert_eq!(answer.status, 403);
    let answer = first
        .call(Method::POST, &path, Some(body.clone()), true)
        .await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    // Reads need no CSRF token, and a bearer token never does.
    assert_eq!(
        first.call(Method::GET, &path, None, false).await.status,
        200
    );
    let (status, _) = call(&fleet.admin, Method::POST, &path, Some(body)).await;
    assert_eq!(status, 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_ends_with_its_role_its_user_and_its_sign_out_and_so_do_its_streams() {
    let gateway = TestGateway::start();
    let fleet = Fleet::create(&gateway, "Acme").await;
    let vera = user_with_password(&fleet, &gateway, UserRole::FleetAdmin).await;
    let credentials = json!({"user_id": vera, "password": PASSWORD});
    let user_path = format!("/v1/accounts/{}/users/{vera}", fleet.account_id);
    let wait = Duration::from_secs(5);

    // Demoted, then disabled: the session and its stream end before the change answers;
    // a disabled user's password no longer signs in either.
    for change in [json!({"role": "viewer"}), json!({"disabled": true})] {
        let browser = sign_in(&gateway, credentials.clone()).await.ok().unwrap();
        let mut stream = browser.stream().await;
        let (status, _) = call(
            &fleet.admin,
            Method::PATCH,
            &user_path,
            Some(change.clone()),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(browser.me().await, 401, "{change}");
        assert!(
            tests::http_stream_ended(&mut stream, wait).await,
            "{change}: its stream ends"
        );
    }
    let refused = sign_in(&gateway, credentials.clone()).await.err().unwrap();
    assert_eq!(refused.status, 401);
    let enable = json!({"disabled": false});
    let (status, _) = call(&fleet.admin, Method::PATCH, &user_path, Some(enable)).await;
    assert_eq!(status, 200);

    // A rotated token: the sessions it could have opened end with it (a leaked token's
    // remedy), streams too; the new token signs in.
    let rotate = format!("{user_path}/token");
    let (status, rotated) = call(&fleet.admin, Method::POST, &rotate, None).await;
    assert_eq!(status, 200, "{rotated}");
    let old_token = rotated["token"].as_str().expect("token").to_owned();
    let by_token = sign_in(&gateway, json!({"token": old_token}))
        .await
        .ok()
        .unwrap();
    let by_password = sign_in(&gateway, credentials.clone()).await.ok().unwrap();
    let mut stream = by_token.stream().await;
    let (status, again) = call(&fleet.admin, Method::POST, &rotate, None).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(by_token.me().await, 401, "the old token's session ends");
    assert_eq!(
        by_password.me().await,
        401,
        "every session of the user ends"
    );
    assert!(
        tests::http_stream_ended(&mut stream, wait).await,
        "its stream ends"
    );
    let new_token = again["token"].as_str().expect("token").to_owned();
    assert!(sign_in(&gateway, json!({"token": new_token})).await.is_ok());

    // Signed out: the cookie is cleared and no longer works, the stream ends.
    let browser = sign_in(&gateway, credentials.clone()).await.ok().unwrap();
    let mut stream = browser.stream().await;
    let unsafe_out = browser
        .call(Method::DELETE, "/v1/session", None, false)
        .await;
    assert_eq!(
        unsafe_out.status, 403,
        "sign-out is a change: it needs the CSRF token"
    );
    let out = browser
        .call(Method::DELETE, "/v1/session", None, true)
        .await;
    assert_eq!(out.status, 204);
    let cleared = out.set_cookie.expect("the cookie is cleared");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert_eq!(browser.me().await, 401);
    assert!(
        tests::http_stream_ended(&mut stream, wait).await,
        "a signed-out session's stream ends"
    );

    // Deleted: the session ends and the password with it.
    let browser = sign_in(&gateway, credentials.clone()).await.ok().unwrap();
    let (status, _) = call(&fleet.admin, Method::DELETE, &user_path, None).await;
    assert_eq!(status, 204);
    assert_eq!(browser.me().await, 401);
    assert_eq!(
        sign_in(&gateway, credentials).await.err().unwrap().status,
        401
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invitation_sets_a_password_once_and_a_reset_ends_the_old_one() {
    let gateway = TestGateway::start();
    let fleet = Fleet::create(&gateway, "Acme").await;
    let user = fleet
        .admin
        .create_user(&fleet.account_id, "Olaf", UserRole::Viewer)
        .await
        .expect("user");
    let id = user.id.to_string();
    let invitation = invite(&fleet, &id, false).await;
    let token = invitation["token"].as_str().unwrap();
    assert_eq!(invitation["path"], format!("/#/set-password/{token}"));

    // Anyone holding the link sees whose it is, and sets the password once.
    let http = reqwest::Client::new();
    let url = format!("{}/v1/password-invitations/{token}", gateway.http_base());
    let info = send(&http, http.get(&url), None).await;
    assert_eq!(
        (info.status, info.body["user_id"].as_str()),
        (200, Some(id.as_str()))
    );
    assert_eq!(info.body["name"], "Olaf");
    let short = send(&http, http.post(&url), Some(json!({"password": "short"}))).await;
    assert_eq!(short.refused_field(), (422, json!("password")));
    let set = send(&http, http.post(&url), Some(json!({"password": PASSWORD}))).await;
    assert_eq!(set.status, 204, "{}", set.body);
    let twice = send(&http, http.post(&url), Some(json!({"password": PASSWORD}))).await;
    assert_eq!(twice.status, 404, "an invitation is used once");
    assert_eq!(send(&http, http.get(&url), None).await.status, 404);
    let credentials = json!({"user_id": id, "password": PASSWORD});
    let browser = sign_in(&gateway, credentials.clone()).await.ok().unwrap();
    assert_eq!(browser.session["password_set"], true);

    // Only the account's admin invites: a viewer is refused, a stranger sees nothing.
    let path = format!(
        "/v1/accounts/{}/users/{id}/password-invitation",
        fleet.account_id
    );
    let viewer = browser.call(Method::POST, &path, None, true).await;
    assert_eq!(viewer.status, 403, "{}", viewer.body);
    let stranger = Fleet::create(&gateway, "Other").await;
    assert_eq!(
        call(&stranger.admin, Method::POST, &path, None).await.0,
        404
    );

    // A reset ends the password and the sessions now; a new invitation replaces the old.
    let first = invite(&fleet, &id, true).await;
    let second = invite(&fleet, &id, false).await;
    assert_eq!(browser.me().await, 401);
    assert_eq!(
        sign_in(&gateway, credentials).await.err().unwrap().status,
        401
    );
    let stale = format!(
        "{}/v1/password-invitations/{}",
        gateway.http_base(),
        first["token"].as_str().unwrap()
    );
    assert_eq!(send(&http, http.get(&stale), None).await.status, 404);
    let fresh = format!(
        "{}/v1/password-invitations/{}",
        gateway.http_base(),
        second["token"].as_str().unwrap()
    );
    let set = send(
        &http,
        http.post(&fresh),
        Some(json!({"password": "another good passphrase"})),
    )
    .await;
    assert_eq!(set.status, 204);
    let signed_in = sign_in(
        &gateway,
        json!({"user_id": id, "password": "another good passphrase"}),
    );
    assert!(signed_in.await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_and_invitations_expire() {
    let gateway = TestGateway::start_with_manual_clock();
    let fleet = Fleet::create(&gateway, "Acme").await;
    let vera = user_with_password(&fleet, &gateway, UserRole::Viewer).await;
    let browser = sign_in(&gateway, json!({"user_id": vera, "password": PASSWORD}))
        .await
        .ok()
        .unwrap();
    let invitation = invite(&fleet, &vera, false).await;
    gateway.advance(Duration::from_secs(12 * 3600 - 1));
    assert_eq!(browser.me().await, 200);
    gateway.advance(Duration::from_secs(1));
    assert_eq!(browser.me().await, 401, "a session lasts 12 hours");
    gateway.advance(Duration::from_secs(60 * 3600));
    let http = reqwest::Client::new();
    let url = format!(
        "{}/v1/password-invitations/{}",
        gateway.http_base(),
        invitation["token"].as_str().unwrap()
    );
    assert_eq!(
        send(&http, http.get(&url), None).await.status,
        404,
        "72 hours"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_sign_ins_are_throttled_like_wrong_tokens() {
    let gateway = TestGateway::start_with(|config| config.auth_failures_per_minute = 3);
    let fleet = Fleet::create(&gateway, "Acme").await;
    let vera = user_with_password(&fleet, &gateway, UserRole::Viewer).await;
    let wrong = json!({"user_id": vera, "password": "not the password at all"});
    for _ in 0..3 {
        assert_eq!(
            sign_in(&gateway, wrong.clone()).await.err().unwrap().status,
            401
        );
    }
    let throttled = sign_in(&gateway, json!({"user_id": vera, "password": PASSWORD}));
    let throttled = throttled.await.err().expect("throttled");
    assert_eq!(throttled.status, 429, "{}", throttled.body);
    assert!(throttled.body["detail"]
        .as_str()
        .unwrap()
        .contains("retry in"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_https_the_session_cookie_is_secure() {
    let gateway = TestGateway::start_with(|config| {
        config.http_tls_addr = Some("127.0.0.1:0".parse().unwrap())
    });
    let port = gateway.ready().https.expect("an HTTPS listener").port();
    let ca = std::fs::read(gateway.data_dir().join("ca.pem")).expect("ca.pem");
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("CA"))
        .build()
        .expect("client");
    let base = format!("https://localhost:{port}");
    let request = http.post(format!("{base}/v1/session"));
    let answer = send(&http, request, Some(json!({"token": gateway.admin_token}))).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let set_cookie = answer.set_cookie.expect("cookie");
    assert!(set_cookie.contains("Secure"), "{set_cookie}");
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let me = http.get(format!("{base}/v1/me")).header(COOKIE, cookie);
    assert_eq!(send(&http, me, None).await.status, 200);
}
