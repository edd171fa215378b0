//! `Link: <…>; rel="next"` on every list page that has a next one (RFC 8288 §3; the
//! pagination header GitHub's API uses): the request's own path and query with the next
//! `cursor`.
//!
//! The body's `next_cursor` stays the contract; the header lets a client ask for the next
//! page as soon as the answer's head arrives, while it still parses this one, so the
//! gateway renders page n + 1 while the client reads page n.

use actix_web::http::header::{HeaderName, HeaderValue, LINK};
use actix_web::HttpRequest;

/// The `Link` header for the page after this one: the request's path and query, its
/// `cursor` replaced by `cursor`. `None` when the result is not a valid header value
/// (a path with bytes a header cannot carry), which only costs the client the shortcut.
pub fn next(request: &HttpRequest, cursor: &str) -> Option<(HeaderName, HeaderValue)> {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, value) in form_urlencoded::parse(request.query_string().as_bytes()) {
        if name != "cursor" {
            query.append_pair(&name, &value);
        }
    }
    query.append_pair("cursor", cursor);
    let value = format!("<{}?{}>; rel=\"next\"", request.path(), query.finish());
    HeaderValue::from_str(&value)
        .ok()
        .map(|value| (LINK, value))
}

/// A 200 answer for a page of a list, with the `Link` to the next page when `next` (the
/// page's `next_cursor`) is given.
pub fn ok_page(request: &HttpRequest, next: Option<&str>) -> actix_web::HttpResponseBuilder {
    let mut answer = actix_web::HttpResponse::Ok();
    if let Some(link) = next.and_then(|next| self::next(request, next)) {
        answer.insert_header(link);
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn the_next_link_keeps_the_query_and_replaces_the_cursor() {
        let request = TestRequest::get()
            .uri("/v1/assets/ex1/telemetry?limit=1000&cursor=old&from=2026-01-01T00%3A00%3A00%2B01%3A00")
            .to_http_request();
        let (name, value) = next(&request, "c2NvcGU").expect("a header");
        assert_eq!(name, LINK);
        assert_eq!(
            value.to_str().expect("ascii"),
            "</v1/assets/ex1/telemetry?limit=1000&from=2026-01-01T00%3A00%3A00%2B01%3A00&cursor=c2NvcGU>; rel=\"next\""
        );
    }

    #[test]
    fn a_first_page_gets_the_cursor_added() {
        let request = TestRequest::get().uri("/v1/audit").to_http_request();
        let (_, value) = next(&request, "abc").expect("a header");
        assert_eq!(
            value.to_str().expect("ascii"),
            "</v1/audit?cursor=abc>; rel=\"next\""
        );
    }
}
