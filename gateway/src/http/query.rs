//! The query-string extractor every handler uses: `web::Query`, except that a refusal names
//! the parameter by its path and says in words what it must be ([`super::fields`]), the same
//! way a body's field is named.

use std::future::{ready, Ready};
use std::ops::Deref;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use serde::de::DeserializeOwned;

use super::problem::ApiError;

/// A query string deserialized into `T`; a parameter that does not fit is a 422 naming it.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T> Query<T> {
    /// The parameters.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> Deref for Query<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned> FromRequest for Query<T> {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let parsed = super::fields::from_query(req.query_string())
            .map(Query)
            .map_err(|err| ApiError::Op(err).into());
        ready(parsed)
    }
}
