//! An account's customers (`storage::customers`): whom its keys are for. Created, listed,
//! renamed and deleted here; a key names one with `customer_id` (`keys`).

use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use storage::customers::Customer;
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::body::Json;
use super::dto::{list_answer, page_by, AccountQuery};
use super::fleet::account_param;
use super::problem::{ApiError, Problem};
use super::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerBody {
    /// Unique in the account, any case.
    #[schema(min_length = 1)]
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerView {
    pub id: String,
    pub account_id: String,
    pub name: String,
    /// RFC 3339.
    pub created_at: String,
}

impl From<Customer> for CustomerView {
    fn from(customer: Customer) -> Self {
        CustomerView {
            id: customer.id,
            account_id: customer.account_id.to_string(),
            name: customer.name,
            created_at: customer.created_at.to_rfc3339(),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct CustomerQuery {
    pub account_id: Option<String>,
    /// Part of the name, any case.
    pub q: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<String>,
}

#[utoipa::path(post, path = "/v1/customers", request_body = CustomerBody, params(AccountQuery),
    responses((status = 201, body = CustomerView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    query: super::query::Query<AccountQuery>,
    body: Json<CustomerBody>,
) -> Result<HttpResponse, ApiError> {
    let account = account_param(&caller, query.account_id.as_deref())?;
    let customer = state
        .usecases
        .create_customer(caller.0, account, body.into_inner().name)
        .await?;
    Ok(HttpResponse::Created().json(CustomerView::from(customer)))
}

#[utoipa::path(get, path = "/v1/customers", params(CustomerQuery),
    responses((status = 200, description = "`{items: [CustomerView], next_cursor?}`"), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: super::query::Query<CustomerQuery>,
    request: actix_web::HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let account = account_param(&caller, query.account_id.as_deref())?;
    let rtx = state.store.begin_read()?;
    let customers = storage::customers::list(&rtx, &caller.0, &account, query.q.as_deref())?;
    let paging = (query.cursor.as_deref(), query.limit.as_deref());
    let page = page_by("customers", customers, paging, |customer| {
        customer.id.clone()
    })?;
    Ok(list_answer(&request, page, CustomerView::from))
}

#[utoipa::path(patch, path = "/v1/customers/{id}", request_body = CustomerBody,
    responses((status = 200, body = CustomerView), (status = 403, body = Problem), (status = 409, body = Problem)))]
pub async fn rename(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: Json<CustomerBody>,
) -> Result<HttpResponse, ApiError> {
    let customer = state
        .usecases
        .rename_customer(caller.0, path.into_inner(), body.into_inner().name)
        .await?;
    Ok(HttpResponse::Ok().json(CustomerView::from(customer)))
}

#[utoipa::path(delete, path = "/v1/customers/{id}",
    responses((status = 204, description = "deleted"), (status = 403, body = Problem), (status = 409, body = Problem, description = "keys still name it")))]
pub async fn delete(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state
        .usecases
        .delete_customer(caller.0, path.into_inner())
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
