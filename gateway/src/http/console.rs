//! The web console's files (`gateway/console/`), embedded in the binary and served under
//! `/`: `GET /` is the page, `GET /console/{file}` its modules, style sheet and icon. The
//! console is a client of the `/v1` API like curl; nothing here decides what a user may do.
//!
//! Every answer carries a strict `Content-Security-Policy` (only this origin's files, no
//! inline script or style, no framing), `X-Content-Type-Options: nosniff` and
//! `Referrer-Policy: no-referrer`. With `--map-tile-url` the policy's `img-src` also names
//! the tiles' origin (and only that), for the live page's track maps. The files are small and change with the binary, so they
//! are revalidated on every use (`Cache-Control: no-cache`) against an `ETag` that is a hash
//! of their content; an unchanged file answers 304. These paths are not API routes: they are
//! not in the route table, the OpenAPI document or the authorization matrix.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

/// The console's routes, for the request metrics' labels.
pub const ROUTES: [&str; 2] = ["/", "/console/{file}"];

/// Where the page may load from: this origin only, and nothing inline.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; font-src 'self'; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The policy of every answer: [`CONTENT_SECURITY_POLICY`], and when `--map-tile-url`
/// is set its origin in `img-src` too, so the live page's tracks may draw those tiles and
/// nothing else from outside.
pub fn policy_for(tile_url: Option<&str>) -> String {
    match tile_url.and_then(tile_origin) {
        Some(origin) => CONTENT_SECURITY_POLICY.replacen(
            "img-src 'self'",
            &format!("img-src 'self' {origin}"),
            1,
        ),
        None => CONTENT_SECURITY_POLICY.to_owned(),
    }
}

/// `https://tile.example.org` of `https://tile.example.org/{z}/{x}/{y}.png`: the scheme and
/// host (and port) a CSP source names. `None` for an authority with anything but host and
/// port characters (user info, a `{s}` placeholder): those tiles stay refused.
fn tile_origin(template: &str) -> Option<String> {
    let (scheme, rest) = template.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let plain = |c: char| c.is_ascii_alphanumeric() || ".-:[]".contains(c);
    if authority.is_empty() || !authority.chars().all(plain) {
        return None;
    }
    Some(format!("{scheme}://{authority}"))
}

/// One embedded file: its name under `/console/`, its content type and its bytes.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
    etag: &'static str,
}

/// 64-bit FNV-1a, computed at compile time: an `ETag` that changes with the content.
const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut index = 0;
    while index < bytes.len() {
        hash ^= bytes[index] as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        index += 1;
    }
    hash
}

/// `"` + 16 hex digits + `"`, at compile time.
const fn quoted_hex(value: u64) -> [u8; 18] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [b'"'; 18];
    let mut index = 0;
    while index < 16 {
        out[16 - index] = DIGITS[((value >> (index * 4)) & 0xf) as usize];
        index += 1;
    }
    out
}

macro_rules! assets {
    ($($name:literal => $content_type:literal,)+) => {
        const ASSETS: &[Asset] = &[$(Asset {
            name: $name,
            content_type: $content_type,
            body: include_str!(concat!("../../console/", $name)),
            etag: {
                const BYTES: [u8; 18] =
                    quoted_hex(fnv1a(include_str!(concat!("../../console/", $name)).as_bytes()));
                match std::str::from_utf8(&BYTES) {
                    Ok(text) => text,
                    Err(_) => panic!("hex is ASCII"),
                }
            },
        }),+];
    };
}

assets! {
    "index.html" => "text/html; charset=utf-8",
    "app.css" => "text/css; charset=utf-8",
    "favicon.svg" => "image/svg+xml",
    "app.js" => "text/javascript; charset=utf-8",
    "api.js" => "text/javascript; charset=utf-8",
    "dom.js" => "text/javascript; charset=utf-8",
    "time.js" => "text/javascript; charset=utf-8",
    "signin.js" => "text/javascript; charset=utf-8",
    "assets.js" => "text/javascript; charset=utf-8",
    "visibility.js" => "text/javascript; charset=utf-8",
    "support.js" => "text/javascript; charset=utf-8",
    "paging.js" => "text/javascript; charset=utf-8",
    "sharing.js" => "text/javascript; charset=utf-8",
    "profiles.js" => "text/javascript; charset=utf-8",
    "customers.js" => "text/javascript; charset=utf-8",
    "operators.js" => "text/javascript; charset=utf-8",
    "upload.js" => "text/javascript; charset=utf-8",
    "keys.js" => "text/javascript; charset=utf-8",
    "keywizard.js" => "text/javascript; charset=utf-8",
    "pick.js" => "text/javascript; charset=utf-8",
    "chart.js" => "text/javascript; charset=utf-8",
    "live.js" => "text/javascript; charset=utf-8",
    "devices.js" => "text/javascript; charset=utf-8",
    "units.js" => "text/javascript; charset=utf-8",
    "assetunits.js" => "text/javascript; charset=utf-8",
    "admin.js" => "text/javascript; charset=utf-8",
    "audit.js" => "text/javascript; charset=utf-8",
    "staff.js" => "text/javascript; charset=utf-8",
}

/// Registers `GET /` and `GET /console/{file}`, and `HEAD` of both (what a load
/// balancer's or an uptime monitor's check sends; actix leaves the body out).
pub fn register(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(page))
        .route("/", web::head().to(page))
        .route("/console/{file}", web::get().to(file))
        .route("/console/{file}", web::head().to(file));
}

async fn page(req: HttpRequest) -> HttpResponse {
    serve(&req, "index.html")
}

async fn file(req: HttpRequest, name: web::Path<String>) -> HttpResponse {
    serve(&req, &name)
}

fn serve(req: &HttpRequest, name: &str) -> HttpResponse {
    let tiles = req
        .app_data::<web::Data<super::AppState>>()
        .and_then(|state| state.map_tile_url.clone());
    let policy = policy_for(tiles.as_deref());
    let Some(asset) = ASSETS.iter().find(|asset| asset.name == name) else {
        let mut answer = HttpResponse::NotFound();
        secure(&mut answer, &policy);
        return answer
            .content_type("text/plain; charset=utf-8")
            .body("no such console file\n");
    };
    let unchanged = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|tag| tag.trim() == asset.etag));
    let mut answer = if unchanged {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    secure(&mut answer, &policy);
    answer.insert_header((header::ETAG, asset.etag));
    if unchanged {
        return answer.finish();
    }
    answer.content_type(asset.content_type).body(asset.body)
}

fn secure(answer: &mut actix_web::HttpResponseBuilder, policy: &str) {
    answer
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::CONTENT_SECURITY_POLICY, policy.to_owned()))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_has_a_distinct_quoted_etag() {
        let mut tags: Vec<&str> = ASSETS.iter().map(|asset| asset.etag).collect();
        assert!(tags
            .iter()
            .all(|tag| tag.len() == 18 && tag.starts_with('"') && tag.ends_with('"')));
        tags.sort_unstable();
        tags.dedup();
        assert_eq!(tags.len(), ASSETS.len());
    }

    #[test]
    fn the_policy_names_the_tile_origin_and_nothing_else() {
        assert_eq!(policy_for(None), CONTENT_SECURITY_POLICY);
        let policy = policy_for(Some("https://tile.example.org:8443/{z}/{x}/{y}.png"));
        assert!(policy.contains("img-src 'self' https://tile.example.org:8443; connect-src 'self'"));
        assert_eq!(policy.matches("tile.example.org").count(), 1, "{policy}");
        for refused in [
            "https://{s}.tile.example.org/{z}/{x}/{y}.png",
            "https://user@tiles/{z}/{x}/{y}",
        ] {
            assert_eq!(
                policy_for(Some(refused)),
                CONTENT_SECURITY_POLICY,
                "{refused}"
            );
        }
    }

    #[test]
    fn the_page_loads_only_modules_of_the_console() {
        let page = ASSETS[0].body;
        assert!(page.contains(r#"<script type="module" src="/console/app.js"></script>"#));
        assert!(!page.contains("<script>"), "no inline script");
        assert!(!page.contains("style="), "no inline style");
    }
}
