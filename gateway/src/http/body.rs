//! The JSON body extractor every handler uses: `web::Json`, except that the body must be a
//! JSON object.
//!
//! serde's derived `Deserialize` for a struct also accepts an array of its fields in order,
//! so `PATCH /v1/operators/{id}` with `[null,null]` cleared an operator's phone. No request
//! body of the API is an array (DESIGN section 7), so anything but an object is refused
//! with 422 naming `body`, before any field is read; a field is read, and a refusal named by
//! its path, as [`super::fields`] says.

use std::ops::{Deref, DerefMut};

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use serde_json::Value;
use storage::OpError;

use super::problem::ApiError;

/// A JSON object body deserialized into `T` (limits and errors as `web::JsonConfig` says).
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T> Json<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> Deref for Json<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> DerefMut for Json<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

/// What a body that is not an object was, for the refusal.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = web::Json::<Value>::from_request(req, payload);
        Box::pin(async move {
            let web::Json(value) = body.await?;
            if !value.is_object() {
                let rule = format!("must be a JSON object, not {}", kind(&value));
                return Err(ApiError::Op(OpError::invalid("body", rule)).into());
            }
            super::fields::from_body(value)
                .map(Json)
                .map_err(|err| ApiError::Op(err).into())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Patch {
        #[allow(dead_code)]
        name: Option<String>,
        #[allow(dead_code)]
        phone: Option<String>,
    }

    async fn extract(body: &'static str) -> Result<Json<Patch>, actix_web::Error> {
        let (req, mut payload) = TestRequest::default()
            .insert_header(("content-type", "application/json"))
            .set_payload(body)
            .to_http_parts();
        Json::<Patch>::from_request(&req, &mut payload).await
    }

    #[actix_rt::test]
    async fn only_an_object_is_a_body() {
        assert!(extract(r#"{"name":"a"}"#).await.is_ok());
        for body in ["[null,null]", "[]", "null", "1", "\"x\"", "true"] {
            let err = extract(body).await.expect_err(body);
            let response = err.error_response();
            assert_eq!(response.status(), 422, "{body}");
        }
    }
}
