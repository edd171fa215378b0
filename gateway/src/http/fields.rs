//! Reading a request's fields, and naming the one that is refused (design 5.2: "422 a field
//! breaks its rule (`field` names it)"). Bodies ([`super::body::Json`]) and query strings
//! ([`super::query::Query`]) both deserialize here, through `serde_path_to_error`, so a
//! refusal names the field by its path (`name`, `details.counters.engine_hours`,
//! `asset_ids[0]`) and says in words what it must be (`must be a string, not a number`),
//! where serde's own text names the value (`invalid type: integer `5``) and, for nested
//! types, internal type names.
//!
//! A body is read through [`Objects`], which reads a struct from a JSON object only:
//! serde's derived `Deserialize` also takes an array of the fields in order, so
//! `"details":[null]` would pass and `"details":[1]` be blamed on `details[0]`.

use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::Deserializer;
use serde_json::Value;
use serde_path_to_error::Path;
use storage::OpError;

/// `T` from a JSON body; a refusal names the field by its path.
pub fn from_body<T: DeserializeOwned>(value: Value) -> Result<T, OpError> {
    serde_path_to_error::deserialize(Objects(value))
        .map_err(|err| refusal(err.path(), &err.inner().to_string()))
}

/// `T` from a query string; a refusal names the parameter.
pub fn from_query<T: DeserializeOwned>(query: &str) -> Result<T, OpError> {
    let pairs = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(pairs)
        .map_err(|err| refusal(err.path(), &err.inner().to_string()))
}

/// The refusal of the field at `path` (or of a field it names: a missing or unknown one),
/// in words.
fn refusal(path: &Path, message: &str) -> OpError {
    let at = path.to_string();
    // The path of a missing or repeated field is the object that lacks or repeats it; that
    // of an unknown field ends with the field itself (its key was read).
    let parent = (at != ".").then_some(at);
    let inside = |name: &str| match &parent {
        Some(parent) => format!("{parent}.{name}"),
        None => name.to_owned(),
    };
    if let Some(name) = quoted_after(message, "missing field `") {
        return OpError::invalid(inside(name), "is required");
    }
    if let Some(name) = quoted_after(message, "duplicate field `") {
        return OpError::invalid(inside(name), "is given more than once");
    }
    if let Some(name) = quoted_after(message, "unknown field `") {
        let reason = match message.split_once(", expected ") {
            Some((_, known)) => format!("is not a field here (it takes {})", choices(known)),
            None => "is not a field here".to_owned(),
        };
        return OpError::invalid(parent.unwrap_or_else(|| name.to_owned()), reason);
    }
    let field = parent.unwrap_or_else(|| "body".to_owned());
    OpError::invalid(field, reason(message))
}

/// What serde's message about a value means, in words.
fn reason(message: &str) -> String {
    if let Some((got, wanted)) = message
        .strip_prefix("invalid type: ")
        .and_then(|rest| rest.rsplit_once(", expected "))
    {
        return format!("must be {}, not {}", wanted_words(wanted), got_words(got));
    }
    if let Some((got, wanted)) = message
        .strip_prefix("invalid value: ")
        .and_then(|rest| rest.rsplit_once(", expected "))
    {
        let value = got.split('`').nth(1).unwrap_or(got);
        return format!("must be {}, not {value}", wanted_words(wanted));
    }
    if let Some(rest) = message.strip_prefix("unknown variant `") {
        let (value, known) = rest.split_once('`').unwrap_or((rest, ""));
        let known = known.split_once("expected ").map_or("", |(_, known)| known);
        return format!("must be {}, not \"{value}\"", choices(known));
    }
    match message {
        "provided string was not `true` or `false`" => "must be true or false".to_owned(),
        "invalid digit found in string" | "cannot parse integer from empty string" => {
            "must be a whole number".to_owned()
        }
        other => other.to_owned(),
    }
}

/// The name in backticks right after `prefix`, when `message` starts with it.
fn quoted_after<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    message.strip_prefix(prefix)?.split('`').next()
}

/// serde's list of choices (`one of `a`, `b``, `` `a` or `b` ``) as words: `a, b`.
fn choices(known: &str) -> String {
    let names: Vec<&str> = known
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|name| !name.is_empty())
        .collect();
    match names.as_slice() {
        [] => "none".to_owned(),
        [only] => (*only).to_owned(),
        many => format!("one of {}", many.join(", ")),
    }
}

/// serde's `expected ...` (a Rust type or a visitor's words) as the JSON a client sends.
fn wanted_words(wanted: &str) -> String {
    let words = match wanted {
        "a string" | "a borrowed string" | "string" => "a string",
        "a boolean" | "bool" => "true or false",
        "a sequence" | "sequence" => "an array",
        "a map" | "map" => "an object",
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number, 0 or more",
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number",
        "f32" | "f64" => "a number",
        other if other.starts_with("struct ") => "an object",
        other if other.starts_with("a tuple") || other.starts_with("tuple") => "an array",
        other => other,
    };
    words.to_owned()
}

/// serde's `invalid type: ...` (what the body held) as the JSON a client sent.
fn got_words(got: &str) -> &'static str {
    match got.split(' ').next().unwrap_or(got) {
        "integer" | "floating" => "a number",
        "boolean" => "a boolean",
        "string" | "character" => "a string",
        "map" => "an object",
        "sequence" => "an array",
        "unit" | "null" => "null",
        _ => "that value",
    }
}

/// A JSON value read so that a struct comes from an object only (see the module's doc);
/// everything else is read as `serde_json::Value` reads it.
struct Objects(Value);

/// What a JSON value is, as serde's errors name it.
fn unexpected(value: &Value) -> de::Unexpected<'_> {
    match value {
        Value::Null => de::Unexpected::Unit,
        Value::Bool(flag) => de::Unexpected::Bool(*flag),
        Value::Number(number) => match (number.as_u64(), number.as_i64()) {
            (Some(unsigned), _) => de::Unexpected::Unsigned(unsigned),
            (None, Some(signed)) => de::Unexpected::Signed(signed),
            _ => de::Unexpected::Float(number.as_f64().unwrap_or_default()),
        },
        Value::String(text) => de::Unexpected::Str(text),
        Value::Array(_) => de::Unexpected::Seq,
        Value::Object(_) => de::Unexpected::Map,
    }
}

macro_rules! as_a_value {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
            self.0.$method(visitor)
        }
    )*};
}

impl<'de> Deserializer<'de> for Objects {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Array(items) => visitor.visit_seq(Items(items.into_iter())),
            Value::Object(fields) => visitor.visit_map(Fields::new(fields)),
            other => other.deserialize_any(visitor),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Object(fields) => visitor.visit_map(Fields::new(fields)),
            other => Err(de::Error::invalid_type(unexpected(&other), &visitor)),
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Object(fields) => visitor.visit_map(Fields::new(fields)),
            other => other.deserialize_map(visitor),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Array(items) => visitor.visit_seq(Items(items.into_iter())),
            other => other.deserialize_seq(visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            other => visitor.visit_some(Objects(other)),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_enum(name, variants, visitor)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_unit_struct(name, visitor)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_tuple(len, visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_tuple_struct(name, len, visitor)
    }

    as_a_value!(deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_f32
        deserialize_f64 deserialize_char deserialize_str deserialize_string deserialize_bytes
        deserialize_byte_buf deserialize_unit deserialize_identifier deserialize_ignored_any);
}

/// An object's fields, each value read as [`Objects`].
struct Fields {
    rest: serde_json::map::IntoIter,
    value: Option<Value>,
}

impl Fields {
    fn new(fields: serde_json::Map<String, Value>) -> Self {
        Fields {
            rest: fields.into_iter(),
            value: None,
        }
    }
}

impl<'de> MapAccess<'de> for Fields {
    type Error = serde_json::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        let Some((key, value)) = self.rest.next() else {
            return Ok(None);
        };
        self.value = Some(value);
        seed.deserialize(Value::String(key)).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, Self::Error> {
        let value = self.value.take().unwrap_or(Value::Null);
        seed.deserialize(Objects(value))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.rest.len())
    }
}

/// An array's items, each read as [`Objects`].
struct Items(std::vec::IntoIter<Value>);

impl<'de> SeqAccess<'de> for Items {
    type Error = serde_json::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Self::Error> {
        self.0
            .next()
            .map(|item| seed.deserialize(Objects(item)))
            .transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Counters {
        engine_hours: Option<String>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Details {
        counters: Option<Counters>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        id: String,
        asset_ids: Option<Vec<String>>,
        details: Option<Details>,
        count: Option<u32>,
    }

    /// The field and reason of the refusal of `body`.
    fn refused(body: Value) -> (String, String) {
        match from_body::<Body>(body) {
            Err(OpError::Invalid { field, reason }) => (field, reason),
            other => panic!("not a field refusal: {other:?}"),
        }
    }

    #[test]
    fn a_wrong_type_is_named_by_its_path_in_words() {
        let cases = [
            (json!({"id": 5}), "id", "must be a string, not a number"),
            (json!({"id": true}), "id", "must be a string, not a boolean"),
            (
                json!({"id": "a", "asset_ids": [1]}),
                "asset_ids[0]",
                "must be a string, not a number",
            ),
            (
                json!({"id": "a", "asset_ids": "x"}),
                "asset_ids",
                "must be an array, not a string",
            ),
            (
                json!({"id": "a", "details": [1]}),
                "details",
                "must be an object, not an array",
            ),
            (
                json!({"id": "a", "details": [null]}),
                "details",
                "must be an object, not an array",
            ),
            (
                json!({"id": {"a": 1}}),
                "id",
                "must be a string, not an object",
            ),
            (
                json!({"id": "a", "details": {"counters": {"engine_hours": 5}}}),
                "details.counters.engine_hours",
                "must be a string, not a number",
            ),
            (
                json!({"id": "a", "count": -1}),
                "count",
                "must be a whole number, 0 or more, not -1",
            ),
        ];
        for (body, field, reason) in cases {
            assert_eq!(
                refused(body.clone()),
                (field.to_owned(), reason.to_owned()),
                "{body}"
            );
        }
    }

    #[test]
    fn missing_and_unknown_fields_are_named_where_they_belong() {
        assert_eq!(
            refused(json!({})),
            ("id".to_owned(), "is required".to_owned())
        );
        let (field, reason) = refused(json!({"id": "a", "details": {"counterz": 1}}));
        assert_eq!(field, "details.counterz");
        assert_eq!(reason, "is not a field here (it takes counters)");
        assert!(from_body::<Body>(json!({"id": "a", "details": {}})).is_ok());
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Params {
        state: String,
        #[serde(default)]
        reset: bool,
    }

    #[test]
    fn a_query_parameter_is_named() {
        let refused = |query: &str| match from_query::<Params>(query) {
            Err(OpError::Invalid { field, reason }) => (field, reason),
            other => panic!("not a field refusal: {other:?}"),
        };
        assert_eq!(refused("state=a&reset=maybe").0, "reset");
        assert_eq!(refused("state=a&reset=maybe").1, "must be true or false");
        assert_eq!(refused("reset=true").0, "state");
        assert_eq!(refused("state=a&colour=red").0, "colour");
        assert!(from_query::<Params>("state=a%20b").is_ok());
    }

    use serde_json::json;
}
