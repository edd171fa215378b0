//! The route table: every HTTP route is declared once, below, as `METHOD "path" => handler`.
//! From that one list come the actix registration ([`register`]), the OpenAPI document
//! ([`ApiDoc`]: its `paths` are the table's handlers) and [`ROUTES`], which the
//! authorization-matrix tidy test checks its rows against.
//!
//! Each handler's `#[utoipa::path]` attribute still states its method and path (utoipa
//! needs them there); the test at the bottom proves, route by route, that the attribute
//! says what the table says. Order matters: actix tries routes in registration order, so a
//! fixed segment (`/v1/operators/template.csv`) comes before a parameter (`/v1/operators/{id}`).

use actix_web::http::Method;
use actix_web::web;

use super::openapi::Conventions;
use super::problem::ApiError;
use super::{
    accounts, binding, certificates, customers, fleet, keys, operators, problem, retention,
    session, settings, sharing, staff, stream, support, tenant, users,
};

/// One route of the table: an HTTP method (upper case) and an actix path template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
}

macro_rules! route_table {
    ($($method:ident $path:literal => $($handler:ident)::+;)+) => {
        /// Every route the gateway serves, in registration order.
        pub const ROUTES: &[Route] = &[$(Route {
            method: stringify!($method),
            path: $path,
        }),+];

        /// Registers every route of the table with actix, in the table's order, then for
        /// each path of the table a 405 for the methods it does not have.
        pub fn register(cfg: &mut web::ServiceConfig) {
            $(cfg.route($path, answering(Method::$method).to($($handler)::+));)+
            for (path, allow) in allowed() {
                cfg.route(
                    path,
                    web::route().to(move || {
                        let allow = allow.clone();
                        async move { Err::<actix_web::HttpResponse, _>(ApiError::MethodNotAllowed { allow }) }
                    }),
                );
            }
        }

        /// The OpenAPI document (`GET /v1/openapi.json`): every route of the table.
        #[derive(utoipa::OpenApi)]
        #[openapi(
            info(title = "Fleetgate control API", version = "1"),
            paths($($($handler)::+),+),
            components(schemas(problem::Problem)),
            modifiers(&Conventions)
        )]
        pub struct ApiDoc;

        /// What each route's handler documents about itself, in table order.
        #[cfg(test)]
        fn documented() -> Vec<utoipa::openapi::OpenApi> {
            vec![$({
                #[derive(utoipa::OpenApi)]
                #[openapi(paths($($handler)::+))]
                struct One;
                <One as utoipa::OpenApi>::openapi()
            }),+]
        }
    };
}

route_table! {
    GET "/healthz" => super::healthz;
    GET "/metrics" => super::metrics;
    GET "/v1/openapi.json" => super::openapi;
    GET "/v1/me" => accounts::me;
    GET "/v1/settings" => settings::settings;
    POST "/v1/session" => session::sign_in;
    GET "/v1/session" => session::current;
    DELETE "/v1/session" => session::sign_out;
    PUT "/v1/session/password" => session::set_password;
    GET "/v1/password-invitations/{token}" => session::invitation;
    POST "/v1/password-invitations/{token}" => session::accept;
    POST "/v1/accounts" => accounts::create_account;
    GET "/v1/accounts" => accounts::list_accounts;
    GET "/v1/accounts/{a}" => accounts::get_account;
    POST "/v1/accounts/{a}/users" => accounts::create_user;
    GET "/v1/accounts/{a}/users" => users::list_users;
    GET "/v1/accounts/{a}/certificates" => certificates::list_certificates;
    POST "/v1/accounts/{a}/certificates/revoke-issued-before" => certificates::revoke_issued_before;
    POST "/v1/accounts/{a}/certificates/{serial}/revoke" => certificates::revoke_certificate;
    PATCH "/v1/accounts/{a}/users/{u}" => users::patch_user;
    DELETE "/v1/accounts/{a}/users/{u}" => users::delete_user;
    POST "/v1/accounts/{a}/users/{u}/token" => users::rotate_token;
    POST "/v1/accounts/{a}/users/{u}/password-invitation" => session::invite;
    POST "/v1/accounts/{a}/integration-certs" => accounts::integration_cert;
    GET "/v1/accounts/{a}/children" => sharing::children;
    GET "/v1/accounts/{a}/retention" => retention::get_retention;
    PUT "/v1/accounts/{a}/retention" => retention::put_retention;
    POST "/v1/partnerships" => sharing::create_partnership;
    GET "/v1/partnerships" => sharing::list_partnerships;
    DELETE "/v1/partnerships/{id}" => sharing::end_partnership;
    POST "/v1/visibility/grants" => sharing::create_grants;
    GET "/v1/visibility/grants" => sharing::list_grants;
    GET "/v1/share-targets" => sharing::share_targets;
    DELETE "/v1/visibility/grants/{id}" => sharing::delete_grant;
    POST "/v1/visibility/remove" => sharing::remove_grants;
    GET "/v1/audit" => sharing::audit;
    POST "/v1/support-access/requests" => support::create_request;
    POST "/v1/support-access/requests/{id}/approve" => support::approve;
    POST "/v1/support-access/requests/{id}/decline" => support::decline;
    POST "/v1/support-access/requests/{id}/revoke" => support::revoke;
    GET "/v1/accounts/{a}/support-access" => support::list;
    GET "/v1/support-access/mine" => support::mine;
    POST "/v1/support-cases" => support::open_case;
    POST "/v1/support-cases/{id}/close" => support::close_case;
    POST "/v1/operators" => operators::create;
    GET "/v1/operators" => operators::list;
    GET "/v1/operators/template.csv" => operators::template_csv;
    GET "/v1/operators/template.xlsx" => operators::template_xlsx;
    POST "/v1/operators/import" => operators::import;
    POST "/v1/operators/import/preview" => operators::preview;
    GET "/v1/operators/{id}" => operators::show;
    POST "/v1/operators/{id}/invitation" => operators::resend_invitation;
    PATCH "/v1/operators/{id}" => operators::patch;
    DELETE "/v1/operators/{id}" => operators::delete;
    POST "/v1/customers" => customers::create;
    GET "/v1/customers" => customers::list;
    PATCH "/v1/customers/{id}" => customers::rename;
    DELETE "/v1/customers/{id}" => customers::delete;
    POST "/v1/keys" => keys::create;
    GET "/v1/keys" => keys::list;
    POST "/v1/keys/bulk-edit" => keys::bulk_edit;
    POST "/v1/keys/bulk-delete" => keys::bulk_delete;
    PATCH "/v1/keys/{id}" => keys::patch;
    DELETE "/v1/keys/{id}" => keys::delete;
    GET "/v1/assets/{x}/access-events" => keys::access_events;
    POST "/v1/sharing-profiles" => tenant::create_profile;
    GET "/v1/sharing-profiles" => tenant::list_profiles;
    PATCH "/v1/sharing-profiles/{id}" => tenant::update_profile;
    DELETE "/v1/sharing-profiles/{id}" => tenant::delete_profile;
    GET "/v1/assets/{x}/sharing" => tenant::sharing;
    PUT "/v1/assets/{x}/sharing/telemetry" => tenant::share_telemetry;
    DELETE "/v1/assets/{x}/sharing/telemetry" => tenant::unshare_telemetry;
    PUT "/v1/assets/{x}/sharing/details" => tenant::share_details;
    DELETE "/v1/assets/{x}/sharing/details" => tenant::unshare_details;
    POST "/v1/assets/{x}/sharing/{kind}/targets" => tenant::add_target;
    DELETE "/v1/assets/{x}/sharing/{kind}/targets/{target_account}/{target_asset}" => tenant::remove_target;
    POST "/v1/staff" => accounts::create_staff;
    GET "/v1/staff" => staff::list_staff;
    PATCH "/v1/staff/{id}" => staff::patch_staff;
    DELETE "/v1/staff/{id}" => staff::delete_staff;
    POST "/v1/staff/{id}/token" => staff::rotate_staff_token;
    POST "/v1/devices" => fleet::register_device;
    DELETE "/v1/devices/{d}" => fleet::deregister_device;
    PATCH "/v1/devices/{d}" => binding::patch_device;
    POST "/v1/devices/{d}/certificate" => certificates::unit_certificate;
    GET "/v1/devices" => fleet::list_devices;
    GET "/v1/devices/{d}/status" => fleet::device_status;
    POST "/v1/assets" => fleet::create_asset;
    GET "/v1/assets" => fleet::list_assets;
    GET "/v1/assets/{x}" => fleet::get_asset;
    PATCH "/v1/assets/{x}" => fleet::patch_asset;
    PUT "/v1/assets/{x}/unit" => binding::swap_unit;
    DELETE "/v1/assets/{x}" => binding::delete_asset;
    GET "/v1/assets/{x}/telemetry" => fleet::history;
    GET "/v1/assets/{x}/latest" => fleet::latest;
    GET "/v1/assets/{x}/stream" => stream::asset_stream;
    GET "/v1/stream" => stream::account_stream;
}

/// The route for `method`; a GET route answers HEAD too, as RFC 9110 §9.1 requires of a
/// general-purpose server (load balancers probe with HEAD); actix sends a HEAD answer's
/// headers without its body.
fn answering(method: Method) -> actix_web::Route {
    if method == Method::GET {
        web::route()
            .guard(actix_web::guard::Any(actix_web::guard::Get()).or(actix_web::guard::Head()))
    } else {
        web::method(method)
    }
}

/// Each path of the table with the methods it answers (`Allow`'s value, methods in
/// alphabetical order; HEAD wherever GET is), paths in table order.
fn allowed() -> Vec<(&'static str, String)> {
    let mut out: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
    for route in ROUTES {
        let methods: &[&'static str] = match route.method {
            "GET" => &["GET", "HEAD"],
            _ => std::slice::from_ref(&route.method),
        };
        match out.iter_mut().find(|(path, _)| *path == route.path) {
            Some((_, known)) => known.extend_from_slice(methods),
            None => out.push((route.path, methods.to_vec())),
        }
    }
    out.into_iter()
        .map(|(path, mut methods)| {
            methods.sort_unstable();
            (path, methods.join(", "))
        })
        .collect()
}

/// Every operation needs a bearer token (the document says so once, for all).
#[cfg(test)]
mod tests {
    use super::*;
    use utoipa::OpenApi;

    /// The (method, path) pairs an OpenAPI document describes.
    fn operations(doc: &utoipa::openapi::OpenApi) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (path, item) in &doc.paths.paths {
            let methods = [
                ("GET", &item.get),
                ("POST", &item.post),
                ("PUT", &item.put),
                ("PATCH", &item.patch),
                ("DELETE", &item.delete),
                ("HEAD", &item.head),
                ("OPTIONS", &item.options),
                ("TRACE", &item.trace),
            ];
            for (method, operation) in methods {
                if operation.is_some() {
                    out.push((method.to_owned(), path.clone()));
                }
            }
        }
        out
    }

    #[test]
    fn each_handler_documents_the_method_and_path_the_table_registers() {
        let documented = documented();
        assert_eq!(documented.len(), ROUTES.len());
        let mut mismatches = Vec::new();
        for (route, doc) in ROUTES.iter().zip(&documented) {
            let expected = vec![(route.method.to_owned(), route.path.to_owned())];
            let found = operations(doc);
            if found != expected {
                mismatches.push(format!(
                    "{} {}: the handler says {found:?}",
                    route.method, route.path
                ));
            }
        }
        assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    }

    #[test]
    fn the_document_lists_every_route_once_and_nothing_else() {
        let mut listed = operations(&ApiDoc::openapi());
        listed.sort();
        let mut table: Vec<(String, String)> = ROUTES
            .iter()
            .map(|route| (route.method.to_owned(), route.path.to_owned()))
            .collect();
        table.sort();
        let before = table.len();
        table.dedup();
        assert_eq!(table.len(), before, "a route is declared twice");
        assert_eq!(listed, table);
    }

    #[test]
    fn fixed_segments_come_before_the_parameters_they_would_match() {
        for (index, route) in ROUTES.iter().enumerate() {
            for earlier in &ROUTES[..index] {
                let shadows = earlier.method == route.method
                    && earlier.path.split('/').count() == route.path.split('/').count()
                    && earlier
                        .path
                        .split('/')
                        .zip(route.path.split('/'))
                        .all(|(a, b)| a == b || (a.starts_with('{') && !b.starts_with('{')));
                assert!(
                    !shadows,
                    "{} {} is registered after {}, which matches it first",
                    route.method, route.path, earlier.path
                );
            }
        }
    }
}
