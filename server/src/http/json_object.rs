//! JSON request bodies, which must be objects. serde reads a struct from an array too, by position
//! (`["ci", ["read"]]` for `{"name", "scopes"}`, `[null, null]` for an edit that changes nothing), which
//! the API's schemas do not allow and no client means; Schemathesis found the server accepting them.
//! Handlers take [`JsonObject<T>`] where they would take `web::Json<T>`: the same size limit, content
//! type and errors (the app's `JsonConfig`), and an object required.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use kiln_core::ErrorCode;
use serde::de::DeserializeOwned;

use crate::error::Error;

pub struct JsonObject<T>(pub T);

impl<T> JsonObject<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for JsonObject<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for JsonObject<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let value = web::Json::<serde_json::Value>::from_request(req, payload);
        Box::pin(async move {
            let value = value.await?.into_inner();
            if !value.is_object() {
                return Err(Error::bad_request(
                    ErrorCode::InvalidJson,
                    format!(
                        "the JSON body must be an object ({{...}}), not {}",
                        kind(&value)
                    ),
                )
                .into());
            }
            serde_json::from_value(value)
                .map(JsonObject)
                .map_err(|e| super::body_error(&e).into())
        })
    }
}

fn kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}
