//! Operators, the people keys are made out to (DESIGN.md section 5.1, rule 6): the minimum
//! the key scenario needs to create personal keys, create and list. Import, invitations and
//! edits belong to other callers and can join this file when a scenario needs them.

use std::fmt;

use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::keys::AccessType;
use super::types::{opaque_id, AccountId, OpaqueId};
use super::{ApiClient, ApiError, NoQuery};

opaque_id!(
    /// An operator's id as the gateway assigned it; personal keys name it.
    OperatorId
);

/// Body of `POST /v1/operators`. The phone, when given, must be E.164.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewOperator {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_type: Option<AccessType>,
}

impl NewOperator {
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            phone: None,
            access_type: None,
        }
    }
}

/// An operator as the operator endpoints show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operator {
    pub id: OperatorId,
    pub account_id: AccountId,
    pub name: String,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub access_type: Option<AccessType>,
    #[serde(default)]
    pub created_at: String,
}

impl ApiClient {
    /// `POST /v1/operators`.
    pub async fn create_operator(&self, operator: &NewOperator) -> Result<Operator, ApiError> {
        self.send(Method::POST, &["operators"], Some(operator), "operator")
            .await
    }

    /// `GET /v1/operators`, every page.
    pub async fn list_operators(&self) -> Result<Vec<Operator>, ApiError> {
        self.all_pages(&["operators"], &NoQuery, "operator page")
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_round_trips_with_optional_fields() {
        let operator: Operator = serde_json::from_str(
            r#"{"id":7,"account_id":"acc1","name":"Ada","phone":null,
                "access_type":"dualid_tag","created_at":"2025-01-01T00:00:00Z"}"#,
        )
        .expect("operator");
        assert_eq!(operator.id.to_string(), "7");
        assert_eq!(operator.access_type, Some(AccessType::DualidTag));
        assert_eq!(
            serde_json::to_value(NewOperator::named("Ada")).expect("encode"),
            serde_json::json!({"name": "Ada"})
        );
    }
}
