//! What every operation of the OpenAPI document says the same way, added in one place
//! rather than in each handler's attribute: how a caller authenticates, that refusals are
//! `application/problem+json` (RFC 9457 §3), and the answers any route can give that no
//! handler decides (a missing credential, a malformed body, the store unable to write).
//!
//! Stated once here so the document cannot drift from the server, which gives those
//! answers in its extractors and error mapping (`auth`, `body`, `problem`);
//! schemathesis proves the two agree in the test suite (`tests/tests/openapi.rs`).

use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::schema::{Object, ObjectBuilder, SchemaType, Type};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{Content, OpenApi, Ref, RefOr, Response};

/// Routes that need no credential: `(method, path)` as the document spells them.
/// (`/metrics` takes only its own token, documented on the route.)
pub const PUBLIC: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/metrics"),
    ("get", "/v1/openapi.json"),
    ("post", "/v1/session"),
    ("get", "/v1/password-invitations/{token}"),
    ("post", "/v1/password-invitations/{token}"),
];

/// The content type of every refusal (RFC 9457 §3).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The document's shared conventions; see the module doc.
#[derive(Debug)]
pub struct Conventions;

impl utoipa::Modify for Conventions {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::http::auth::SESSION_COOKIE,
                "the console's session (POST /v1/session); a change made with it also \
                 carries X-CSRF-Token",
            ))),
        );
        openapi.security = Some(vec![
            SecurityRequirement::new("bearer", Vec::<String>::new()),
            SecurityRequirement::new("session", Vec::<String>::new()),
        ]);
        for (path, item) in openapi.paths.paths.iter_mut() {
            for (method, operation) in operations(item) {
                let public = PUBLIC.contains(&(method, path.as_str()));
                apply(operation, path, public);
            }
        }
    }
}

fn operations(item: &mut PathItem) -> Vec<(&'static str, &mut Operation)> {
    [
        ("get", item.get.as_mut()),
        ("put", item.put.as_mut()),
        ("post", item.post.as_mut()),
        ("delete", item.delete.as_mut()),
        ("patch", item.patch.as_mut()),
    ]
    .into_iter()
    .filter_map(|(method, operation)| operation.map(|operation| (method, operation)))
    .collect()
}

fn apply(operation: &mut Operation, path: &str, public: bool) {
    if public {
        // An empty list: no credential at all (OpenAPI 3.1 §4.8.10, `security`).
        operation.security = Some(Vec::new());
    } else {
        add(operation, "401", "no valid bearer token or console session");
        add(
            operation,
            "429",
            "too many failed authentications from this address, or a per-caller cap",
        );
    }
    let named = operation.parameters.as_ref().is_some_and(|p| !p.is_empty());
    if !public && named && path.starts_with("/v1/") {
        add(
            operation,
            "404",
            "an object or account the caller may not see, or none such",
        );
    }
    if path.starts_with("/v1/") {
        add(
            operation,
            "422",
            "a parameter or a field breaks its rule; `field` names it",
        );
        add(
            operation,
            "503",
            "the store cannot write and is being reopened, or a gateway-wide cap is reached",
        );
    }
    if operation.request_body.is_some() {
        add(operation, "400", "the body is not JSON");
        add(operation, "413", "the body is larger than the route takes");
        add(
            operation,
            "415",
            "the body's content type is not one the route takes",
        );
    }
    if path == "/healthz" {
        // Its 503 is its own JSON (`{status, component, detail, since_ms}`), not a problem.
        return;
    }
    for (status, response) in operation.responses.responses.iter_mut() {
        let refusal = status.starts_with('4') || status.starts_with('5');
        if let (true, RefOr::T(response)) = (refusal, response) {
            as_problem(response);
        }
    }
}

/// Adds a refusal `status` the handler did not document itself.
fn add(operation: &mut Operation, status: &str, description: &str) {
    operation
        .responses
        .responses
        .entry(status.to_owned())
        .or_insert_with(|| RefOr::T(Response::new(description)));
}

/// A refusal's body is the problem document, sent as `application/problem+json`.
fn as_problem(response: &mut Response) {
    response.content.clear();
    response.content.insert(
        PROBLEM_JSON.to_owned(),
        Content::new(Some(Ref::from_schema_name("Problem"))),
    );
}

/// A string schema limited to `names` (`"a, b, c"`, the form of the model's `NAMES`
/// constants, so the document lists exactly what the parser takes).
fn choice(names: &str) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(names.split(", ")))
        .build()
}

/// An account user's role.
pub fn user_role() -> Object {
    choice(storage::model::Role::NAMES)
}

/// A staff member's role.
pub fn staff_role() -> Object {
    choice(storage::model::StaffRole::NAMES)
}

/// Any principal's role: a user's or a staff member's.
pub fn any_role() -> Object {
    choice(&format!(
        "{}, {}",
        storage::model::Role::NAMES,
        storage::model::StaffRole::NAMES
    ))
}

/// `user` or `staff`.
pub fn principal_kind() -> Object {
    choice("user, staff")
}

/// The audit log's order.
pub fn audit_order() -> Object {
    choice("oldest, newest")
}

/// How an account sees an asset.
pub fn relation() -> Object {
    choice("owned, shared, mirror")
}

/// A key's or an operator's access type.
pub fn access_type() -> Object {
    choice(storage::keys::AccessType::NAMES)
}

/// A support access's state as listed.
pub fn support_state() -> Object {
    choice("pending, active, declined, revoked, expired, closed")
}

/// An operator's access type, or `null` for none.
pub fn access_type_or_null() -> Object {
    let names = storage::keys::AccessType::NAMES.split(", ");
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .enum_values(Some(
            names
                .map(serde_json::Value::from)
                .chain([serde_json::Value::Null]),
        ))
        .build()
}

/// Support access durations.
pub fn support_duration() -> Object {
    choice(storage::support::SupportDuration::NAMES)
}

#[cfg(test)]
mod tests {
    use storage::visibility::Relation;

    #[test]
    fn choices_are_what_the_parsers_take() {
        let values = |object: utoipa::openapi::Object| -> Vec<String> {
            object
                .enum_values
                .unwrap_or_default()
                .into_iter()
                .map(|value| value.as_str().unwrap_or_default().to_owned())
                .collect()
        };
        for name in values(super::relation()) {
            assert!(Relation::parse(&name).is_some(), "{name}");
        }
        for name in values(super::access_type()) {
            assert!(storage::keys::AccessType::parse(&name).is_some(), "{name}");
        }
        assert_eq!(values(super::any_role()).len(), 6);
    }
}
