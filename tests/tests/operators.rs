//! Operators end to end (rule 6, issue 8): create, list, show, edit, delete and every
//! refusal, including deleting an operator who still holds a personal key; bulk import from
//! CSV and XLSX, whose errors name row and column in both formats, all-or-nothing with a dry
//! run; and the templates, which import unchanged. SMS invitations have their own file
//! (`operator_invitations.rs`).

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use simulator::api::UserRole;
use simulator::ApiClient;
use storage::model::Role;
use storage::Rule;
use tests::{call, Fleet, TestGateway};

const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

async fn create(client: &ApiClient, body: Value) -> (u16, Value) {
    call(client, Method::POST, "/v1/operators", Some(body)).await
}

async fn names(client: &ApiClient) -> Vec<String> {
    let (status, body) = call(client, Method::GET, "/v1/operators", None).await;
    assert_eq!(status, 200, "{body}");
    let mut names: Vec<String> = body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| item["name"].as_str().expect("name").to_owned())
        .collect();
    names.sort();
    names
}

/// A raw request with a non-JSON body: status, content type and body bytes.
async fn raw(
    gateway: &TestGateway,
    token: &str,
    method: Method,
    path: &str,
    body: Option<(&str, Vec<u8>)>,
) -> (u16, String, Vec<u8>) {
    let client = reqwest::Client::new();
    let mut request = client
        .request(method, format!("{}{path}", gateway.http_base()))
        .bearer_auth(token)
        .timeout(Duration::from_secs(30));
    if let Some((content_type, bytes)) = body {
        request = request
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(bytes);
    }
    let response = request.send().await.expect("answer");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let bytes = response.bytes().await.expect("body").to_vec();
    (status, content_type, bytes)
}

async fn import(
    gateway: &TestGateway,
    token: &str,
    query: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    let path = format!("/v1/operators/import{query}");
    let (status, _, bytes) = raw(
        gateway,
        token,
        Method::POST,
        &path,
        Some((content_type, body)),
    )
    .await;
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, body)
}

async fn user_token(fleet: &Fleet, role: UserRole) -> String {
    fleet
        .admin
        .create_user(&fleet.account_id, "someone", role)
        .await
        .expect("user")
        .token
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_are_created_listed_edited_and_deleted_by_the_fleet_s_managers_only() {
    let gateway = TestGateway::start();
    let acme = Fleet::create(&gateway, "Acme").await;
    let depot = acme.child(&gateway, "Depot").await;
    let other = Fleet::create(&gateway, "Other").await;
    let viewer = acme.user(UserRole::Viewer).await;
    let fleet_admin = acme.user(UserRole::FleetAdmin).await;

    let (status, ann) = create(
        &acme.admin,
        json!({"name": " Ann Lee ", "phone": "+47 912 34 567", "access_type": "keypad_pin"}),
    )
    .await;
    assert_eq!(status, 201, "{ann}");
    let id = ann["id"].as_str().expect("id").to_owned();
    assert!(id.starts_with("opr"), "{id}");
    assert_eq!(ann["name"], "Ann Lee");
    assert_eq!(ann["phone"], "+4791234567", "stored as E.164");
    assert_eq!(ann["access_type"], "keypad_pin");
    assert_eq!(ann["account_id"], acme.account_id.to_string());
    assert!(ann["created_at"].as_str().is_some());
    assert_eq!(ann["invitation"], Value::Null);

    let (status, bob) = create(&fleet_admin, json!({"name": "Bob"})).await;
    assert_eq!(status, 201, "a fleet admin may: {bob}");
    assert_eq!(
        (bob["phone"].clone(), bob["access_type"].clone()),
        (Value::Null, Value::Null)
    );
    assert_eq!(
        names(&fleet_admin).await,
        ["Ann Lee", "Bob"],
        "fleet admins list"
    );
    let path = format!("/v1/operators/{id}");
    let (status, shown) = call(&fleet_admin, Method::GET, &path, None).await;
    assert_eq!((status, shown["id"].clone()), (200, json!(id)), "and show");
    // Operators carry phone numbers: viewers do not read them (DESIGN 5.1).
    assert_eq!(
        call(&viewer, Method::GET, "/v1/operators", None).await.0,
        403
    );
    assert_eq!(call(&viewer, Method::GET, &path, None).await.0, 403);

    // Viewers may not change anything; other accounts see nothing at all.
    let (status, refused) = create(&viewer, json!({"name": "Eve"})).await;
    assert_eq!(status, 403, "{refused}");
    let rule = Rule::ManageFleet { role: Role::Viewer };
    assert!(tests::refused_by(&refused, &rule), "{refused}");
    let (status, _) = call(&viewer, Method::PATCH, &path, Some(json!({"name": "X"}))).await;
    assert_eq!(status, 403);
    let (status, _) = call(&viewer, Method::DELETE, &path, None).await;
    assert_eq!(status, 403);
    for (method, body) in [
        (Method::GET, None),
        (Method::PATCH, Some(json!({"name": "X"}))),
        (Method::DELETE, None),
    ] {
        let (status, body) = call(&other.admin, method.clone(), &path, body).await;
        assert_eq!(status, 404, "{method} by a stranger: {body}");
    }
    assert!(names(&other.admin).await.is_empty());
    let foreign = format!("/v1/operators?account_id={}", acme.account_id);
    assert_eq!(call(&other.admin, Method::GET, &foreign, None).await.0, 404);

    // Field refusals name the field.
    for (body, field) in [
        (json!({"name": "Cy", "phone": "+47 12"}), "phone"),
        (json!({"name": "Cy", "phone": "91234567"}), "phone"),
        (json!({"name": "Cy", "access_type": "pin"}), "access_type"),
        (json!({"name": "  "}), "name"),
        (json!({"phone": "+4791234567"}), "name"),
        (json!({"name": "Cy", "send_sms_invite": true}), "phone"),
        (json!({"name": "Cy", "colour": "red"}), "colour"),
    ] {
        let (status, problem) = create(&acme.admin, body.clone()).await;
        assert_eq!(status, 422, "{body}: {problem}");
        assert_eq!(problem["field"], field, "{body}: {problem}");
    }
    let (_, problem) = create(&acme.admin, json!({"name": "Cy", "phone": "+47 12"})).await;
    assert!(
        problem["detail"]
            .as_str()
            .expect("detail")
            .contains("\"+47 12\" is not a valid E.164 number"),
        "{problem}"
    );

    // Edit: absent fields stay, null clears.
    let (status, edited) = call(
        &acme.admin,
        Method::PATCH,
        &path,
        Some(json!({"name": "Ann B. Lee", "access_type": "dualid_tag"})),
    )
    .await;
    assert_eq!(status, 200, "{edited}");
    assert_eq!(
        (edited["name"].clone(), edited["phone"].clone()),
        (json!("Ann B. Lee"), json!("+4791234567"))
    );
    assert_eq!(edited["access_type"], "dualid_tag");
    let (status, cleared) = call(
        &acme.admin,
        Method::PATCH,
        &path,
        Some(json!({"phone": null})),
    )
    .await;
    assert_eq!(
        (status, cleared["phone"].clone()),
        (200, Value::Null),
        "{cleared}"
    );
    let (status, problem) = call(
        &acme.admin,
        Method::PATCH,
        &path,
        Some(json!({"phone": "+1 555"})),
    )
    .await;
    assert_eq!(
        (status, problem["field"].clone()),
        (422, json!("phone")),
        "{problem}"
    );

    // A root admin works in a sub-account by naming it.
    let in_depot = format!("/v1/operators?account_id={}", depot.account_id);
    let (status, dana) = call(
        &acme.admin,
        Method::POST,
        &in_depot,
        Some(json!({"name": "Dana"})),
    )
    .await;
    assert_eq!(
        (status, dana["account_id"].clone()),
        (201, json!(depot.account_id.to_string())),
        "{dana}"
    );
    assert_eq!(names(&depot.admin).await, ["Dana"]);

    // Delete: an operator without personal keys goes (the refusal with keys is covered by
    // the storage tests, where a key index row can be written directly).
    let (status, _) = call(&acme.admin, Method::DELETE, &path, None).await;
    assert_eq!(status, 204);
    assert_eq!(call(&acme.admin, Method::GET, &path, None).await.0, 404);
    assert_eq!(call(&acme.admin, Method::DELETE, &path, None).await.0, 404);
    assert_eq!(names(&acme.admin).await, ["Bob"]);
    assert_eq!(
        call(&acme.admin, Method::GET, "/v1/operators/not-an-id", None)
            .await
            .0,
        404
    );

    let (_, audit) = call(&acme.admin, Method::GET, "/v1/audit", None).await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|entry| entry["target"] == json!(id))
        .filter_map(|entry| entry["action"].as_str())
        .collect();
    assert_eq!(
        actions,
        [
            "operator.create",
            "operator.update",
            "operator.update",
            "operator.delete"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_with_a_personal_key_is_not_deleted_until_the_key_is() {
    let gateway = TestGateway::start();
    let acme = Fleet::create(&gateway, "Acme").await;
    let device = json!({"id": "unit1", "capabilities": {"keypad": true}});
    let (status, body) = call(&acme.admin, Method::POST, "/v1/devices", Some(device)).await;
    assert_eq!(status, 201, "{body}");
    let asset = json!({"id": "ex1", "name": "excavator", "device_id": "unit1"});
    let (status, body) = call(&acme.admin, Method::POST, "/v1/assets", Some(asset)).await;
    assert_eq!(status, 201, "{body}");
    let (_, ann) = create(&acme.admin, json!({"name": "Ann"})).await;
    let id = ann["id"].as_str().expect("id").to_owned();
    let now = gateway.now_ms();
    let rfc3339 = |ms: u64| simulator::telemetry::rfc3339_from_ms(ms).expect("time");
    let key = json!({"personal": true, "operator_id": id, "asset_ids": ["ex1"],
        "access_type": "keypad_pin", "valid_from": rfc3339(now), "valid_to": rfc3339(now + 3_600_000)});
    let (status, created) = call(&acme.admin, Method::POST, "/v1/keys", Some(key)).await;
    assert_eq!(status, 201, "{created}");
    let key_id = created["key"]["id"].as_str().expect("key id").to_owned();

    let path = format!("/v1/operators/{id}");
    let (status, problem) = call(&acme.admin, Method::DELETE, &path, None).await;
    assert_eq!(status, 409, "{problem}");
    let detail = problem["detail"].as_str().expect("detail");
    assert!(detail.contains("1 personal key"), "{detail}");
    assert_eq!(
        call(&acme.admin, Method::GET, &path, None).await.0,
        200,
        "still there"
    );

    let key_path = format!("/v1/keys/{key_id}");
    let (status, body) = call(&acme.admin, Method::DELETE, &key_path, None).await;
    assert!(status == 200 || status == 204, "{status}: {body}");
    assert_eq!(call(&acme.admin, Method::DELETE, &path, None).await.0, 204);
}

/// Eight data rows (rows 2 to 9), the one in row 7 with a bad phone.
fn rows_with_bad_phone_in_row_7() -> Vec<[&'static str; 4]> {
    let mut rows = vec![["Name", "Phone", "ACCESS_TYPE", "send_sms_invite"]];
    for name in ["Ann", "Bob", "Cy", "Dana", "Ed"] {
        rows.push([name, "+4791234567", "keypad_pin", "false"]);
    }
    rows.push(["Fay", "+47 12", "dualid_tag", "false"]);
    rows.push(["Gus", "", "", ""]);
    rows.push(["Hal", "+447400123456", "digital_key", "no"]);
    rows
}

fn as_csv(rows: &[[&str; 4]]) -> Vec<u8> {
    rows.iter()
        .map(|row| row.join(","))
        .collect::<Vec<_>>()
        .join("\r\n")
        .into_bytes()
}

fn as_xlsx(rows: &[[&str; 4]]) -> Vec<u8> {
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    for (row, cells) in (0u32..).zip(rows) {
        for (column, text) in (0u16..).zip(cells) {
            if !text.is_empty() {
                sheet.write_string(row, column, *text).expect("cell");
            }
        }
    }
    workbook.save_to_buffer().expect("xlsx")
}

fn assert_row_7_phone(status: u16, problem: &Value) {
    assert_eq!(status, 422, "{problem}");
    assert_eq!(
        problem["errors"],
        json!([{
            "row": 7,
            "column": "phone",
            "message": "\"+47 12\" is not a valid E.164 number (+ country code and number, e.g. +4791234567)",
        }]),
        "{problem}"
    );
    let detail = problem["detail"].as_str().expect("detail");
    assert!(
        detail.contains("row 7, column phone: \"+47 12\" is not a valid E.164 number"),
        "{detail}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_names_row_and_column_of_each_error_in_csv_and_xlsx_and_imports_nothing() {
    let gateway = TestGateway::start();
    let acme = Fleet::create(&gateway, "Acme").await;
    let token = acme.admin_token.clone();
    let rows = rows_with_bad_phone_in_row_7();

    let (status, problem) = import(&gateway, &token, "", "text/csv", as_csv(&rows)).await;
    assert_row_7_phone(status, &problem);
    let (status, problem) = import(&gateway, &token, "", XLSX, as_xlsx(&rows)).await;
    assert_row_7_phone(status, &problem);
    assert!(names(&acme.admin).await.is_empty(), "all or nothing");

    // Every error at once, each naming its row and column.
    let mut many = rows.clone();
    many[2] = ["", "+4791234567", "pin", "maybe"];
    many[8] = ["Hal", "", "", "yes"];
    let (status, problem) = import(&gateway, &token, "", XLSX, as_xlsx(&many)).await;
    assert_eq!(status, 422, "{problem}");
    let found: Vec<(u64, &str)> = problem["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| {
            (
                e["row"].as_u64().expect("row"),
                e["column"].as_str().expect("column"),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            (3, "name"),
            (3, "access_type"),
            (3, "send_sms_invite"),
            (7, "phone"),
            (9, "phone")
        ]
    );

    // An unknown column is named in the header row.
    let header = as_csv(&[
        ["name", "email", "phone", "access_type"],
        ["Ann", "a@b.c", "", ""],
    ]);
    let (status, problem) = import(&gateway, &token, "", "text/csv", header).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["row"], 1);
    assert_eq!(problem["errors"][0]["column"], "email");

    // With row 7 fixed: a dry run shows what would be created and creates nothing...
    let mut fixed = rows.clone();
    fixed[6][1] = "+47 912 34 567";
    let (status, preview) = import(&gateway, &token, "?dry_run=true", XLSX, as_xlsx(&fixed)).await;
    assert_eq!(status, 200, "{preview}");
    assert_eq!(preview["dry_run"], true);
    let items = preview["items"].as_array().expect("items");
    assert_eq!(items.len(), 8);
    assert_eq!(items[5]["name"], "Fay");
    assert_eq!(items[5]["phone"], "+4791234567");
    assert_eq!(items[7]["access_type"], "digital_key");
    assert!(
        names(&acme.admin).await.is_empty(),
        "a dry run creates nothing"
    );

    // ...and the real import creates all eight.
    let (status, created) = import(&gateway, &token, "", "text/csv", as_csv(&fixed)).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["dry_run"], false);
    assert_eq!(created["items"].as_array().expect("items").len(), 8);
    assert_eq!(names(&acme.admin).await.len(), 8);
    let (_, audit) = call(&acme.admin, Method::GET, "/v1/audit", None).await;
    let imported = audit["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|entry| entry["action"] == "operator.import")
        .count();
    assert_eq!(imported, 8, "each imported operator is audited");
}

/// Issue 15: a CSV saved as "CSV (Macintosh)" (CR-only line endings) reported every error
/// on row 1. Every line ending, a BOM and `;` separators name the rows the sheet shows, and
/// a phone typed as a number in an XLSX is refused with the text the sheet shows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_spreadsheet_dialect_names_the_rows_the_sheet_shows_and_imports_nothing() {
    let gateway = TestGateway::start();
    let acme = Fleet::create(&gateway, "Acme").await;
    let token = acme.admin_token.clone();
    let windows = String::from_utf8(as_csv(&rows_with_bad_phone_in_row_7())).expect("text");
    let mac = windows.replace("\r\n", "\r");
    let unix_bom = format!("\u{feff}{}\n", windows.replace("\r\n", "\n"));
    let european = format!("\u{feff}{}\r", mac.replace(',', ";"));
    for (dialect, body) in [
        ("CRLF", &windows),
        ("CR only", &mac),
        ("LF with a BOM", &unix_bom),
        ("semicolons, CR only", &european),
    ] {
        let (status, problem) =
            import(&gateway, &token, "", "text/csv", body.clone().into_bytes()).await;
        assert_eq!(status, 422, "{dialect}: {problem}");
        assert_row_7_phone(status, &problem);
    }

    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet();
    for (column, name) in (0u16..).zip(["name", "phone"]) {
        sheet.write_string(0, column, name).expect("header");
    }
    sheet.write_string(1, 0, "Ann").expect("cell");
    sheet.write_string(1, 1, "+4791234567").expect("cell");
    sheet.write_string(2, 0, "Bob").expect("cell");
    sheet.write_number(2, 1, 4791234567.0).expect("cell");
    let body = workbook.save_to_buffer().expect("xlsx");
    let (status, problem) = import(&gateway, &token, "", XLSX, body).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(
        problem["errors"],
        json!([{
            "row": 3,
            "column": "phone",
            "message": "cell B3 holds a number (4791234567), not text; format column B as Text \
                        and type the number with its + country code, e.g. +4791234567",
        }]),
        "{problem}"
    );
    assert!(names(&acme.admin).await.is_empty(), "all or nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_are_refused_by_type_size_rows_and_role() {
    let gateway = TestGateway::start();
    let acme = Fleet::create(&gateway, "Acme").await;
    let token = acme.admin_token.clone();
    let one = b"name\nAnn\n".to_vec();

    let (status, problem) = import(&gateway, &token, "", "application/json", one.clone()).await;
    assert_eq!(status, 415, "{problem}");
    let (status, problem) =
        import(&gateway, &token, "?dry_run=maybe", "text/csv", one.clone()).await;
    assert_eq!(
        (status, problem["field"].clone()),
        (422, json!("dry_run")),
        "{problem}"
    );

    let mut big = b"name\n".to_vec();
    big.resize(1024 * 1024 + 1, b'a');
    let (status, problem) = import(&gateway, &token, "", "text/csv", big).await;
    assert_eq!(status, 413, "{problem}");

    let mut rows = String::from("name\n");
    for i in 0..5_001 {
        rows.push_str(&format!("operator {i}\n"));
    }
    let (status, problem) = import(&gateway, &token, "", "text/csv", rows.into_bytes()).await;
    assert_eq!(status, 422, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .expect("detail")
            .contains("at most 5000 data rows"),
        "{problem}"
    );

    let (status, problem) = import(&gateway, &token, "", XLSX, one.clone()).await;
    assert_eq!(status, 422, "not a workbook: {problem}");

    let viewer = user_token(&acme, UserRole::Viewer).await;
    let (status, problem) = import(&gateway, &viewer, "", "text/csv", one.clone()).await;
    assert_eq!(status, 403, "{problem}");
    let other = Fleet::create(&gateway, "Other").await;
    let query = format!("?account_id={}", acme.account_id);
    let (status, _) = import(&gateway, &other.admin_token, &query, "text/csv", one).await;
    assert_eq!(status, 404);
    assert!(names(&acme.admin).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_templates_import_unchanged() {
    let gateway = TestGateway::start();
    let acme = Fleet::create(&gateway, "Acme").await;
    let viewer = user_token(&acme, UserRole::Viewer).await;
    for (path, content_type) in [
        ("/v1/operators/template.csv", "text/csv"),
        ("/v1/operators/template.xlsx", XLSX),
    ] {
        let (status, served_as, template) = raw(&gateway, &viewer, Method::GET, path, None).await;
        assert_eq!(status, 200, "any user may download {path}");
        assert!(served_as.starts_with(content_type), "{served_as}");
        let (status, created) =
            import(&gateway, &acme.admin_token, "", content_type, template).await;
        assert_eq!(status, 201, "{path}: {created}");
        assert_eq!(created["items"][0]["name"], "Jane Doe");
        assert_eq!(created["items"][0]["phone"], "+4791234567");
        assert_eq!(created["items"][0]["access_type"], "keypad_pin");
    }
    assert_eq!(names(&acme.admin).await, ["Jane Doe", "Jane Doe"]);
    let (status, _, _) = raw(
        &gateway,
        "wrong",
        Method::GET,
        "/v1/operators/template.csv",
        None,
    )
    .await;
    assert_eq!(status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_describes_every_operator_endpoint() {
    let gateway = TestGateway::start();
    let acme = Fleet::create(&gateway, "Acme").await;
    let (status, spec) = acme.admin.get_raw("/v1/openapi.json").await.expect("spec");
    assert_eq!(status, 200);
    for (path, methods) in [
        ("/v1/operators", &["get", "post"][..]),
        ("/v1/operators/{id}", &["get", "patch", "delete"][..]),
        ("/v1/operators/import", &["post"][..]),
        ("/v1/operators/import/preview", &["post"][..]),
        ("/v1/operators/template.csv", &["get"][..]),
        ("/v1/operators/template.xlsx", &["get"][..]),
    ] {
        for method in methods {
            assert!(
                spec["paths"][path].get(*method).is_some(),
                "openapi lists {method} {path}"
            );
        }
    }
    let import = &spec["paths"]["/v1/operators/import"]["post"];
    assert!(
        import["requestBody"]["content"].get("text/csv").is_some(),
        "{import}"
    );
    assert!(
        import["requestBody"]["content"].get(XLSX).is_some(),
        "{import}"
    );
}
