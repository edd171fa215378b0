//! Operators (rule 6): create, list, show, edit, delete; bulk import from CSV or XLSX with
//! its templates. Handlers stay thin: the field rules and the outbox live in
//! `storage::operators`, the file format in [`import`]. A queued SMS invitation wakes the
//! outbox drainer after the commit.

pub mod import;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use storage::operators::{self as ops, Operator, OperatorEdit, OperatorId, OperatorInput};
use storage::OpError;
use utoipa::{IntoParams, ToSchema};

use self::import::{Format, ImportError, RowError};
use super::auth::Caller;
use super::body::Json;
use super::dto::{limit, present, AccountQuery};
use super::fleet::account_param;
use super::problem::{ApiError, Problem};
use super::sharing::DryRun;
use super::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOperator {
    /// Required; at most 200 characters.
    pub name: String,
    /// International form (`+` and country code); stored as E.164.
    pub phone: Option<String>,
    /// `digital_key`, `keypad_pin` or `dualid_tag`.
    #[schema(schema_with = super::openapi::access_type_or_null)]
    pub access_type: Option<String>,
    /// Queue an SMS invitation to `phone` (required then).
    #[serde(default)]
    pub send_sms_invite: bool,
}

/// Absent fields stay as they are; `null` clears `phone` or `access_type`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OperatorPatch {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub phone: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub access_type: Option<Option<String>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationView {
    /// `pending` (in the outbox, retried until sent) or `sent`.
    pub state: &'static str,
    pub queued_at: String,
    pub sent_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OperatorView {
    pub id: String,
    pub account_id: String,
    pub name: String,
    /// E.164.
    pub phone: Option<String>,
    #[schema(schema_with = super::openapi::access_type_or_null)]
    pub access_type: Option<&'static str>,
    pub created_at: String,
    /// The latest SMS invitation, if one was asked for.
    pub invitation: Option<InvitationView>,
}

impl From<Operator> for OperatorView {
    fn from(operator: Operator) -> Self {
        OperatorView {
            id: operator.id.to_string(),
            account_id: operator.account_id.to_string(),
            name: operator.name,
            phone: operator.phone,
            access_type: operator.access_type.map(|kind| kind.as_str()),
            created_at: operator.created_at.to_rfc3339(),
            invitation: operator.invitation.map(|status| InvitationView {
                state: if status.sent_at.is_some() {
                    "sent"
                } else {
                    "pending"
                },
                queued_at: status.queued_at.to_rfc3339(),
                sent_at: status.sent_at.map(|t| t.to_rfc3339()),
            }),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OperatorList {
    pub items: Vec<OperatorView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImportAnswer {
    pub dry_run: bool,
    /// The operators as created (or, in a dry run, as they would be).
    pub items: Vec<OperatorView>,
}

/// The 422 of an import with row errors: a problem document with every error listed.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportProblem {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    pub errors: Vec<RowError>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    pub account_id: Option<String>,
    /// `true` answers what would be created and creates nothing.
    pub dry_run: Option<String>,
    /// Only these rows (numbers as the sheet shows them: `2,3,7-9`); the file's other rows
    /// and their errors are left out. Absent: every row.
    pub rows: Option<String>,
}

/// `POST /v1/operators/import/preview`: the account to check the caller's role in.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PreviewQuery {
    pub account_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PreviewAnswer {
    /// Every data row of the file, in row order, each with its errors (none: it imports).
    pub rows: Vec<import::rows::PreviewRow>,
}

fn operator_id(raw: &str) -> Result<OperatorId, OpError> {
    OperatorId::parse(raw).ok_or_else(|| OpError::not_found(format!("operator {raw}")))
}

#[utoipa::path(post, path = "/v1/operators", request_body = NewOperator, params(AccountQuery),
    responses((status = 201, body = OperatorView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    query: super::query::Query<AccountQuery>,
    body: Json<NewOperator>,
) -> Result<HttpResponse, ApiError> {
    let account = account_param(&caller, query.account_id.as_deref())?;
    let body = body.into_inner();
    let input = OperatorInput {
        name: body.name,
        phone: body.phone,
        access_type: body.access_type,
        send_sms_invite: body.send_sms_invite,
    };
    let operator = state
        .usecases
        .create_operator(caller.0, account, input)
        .await?;
    Ok(HttpResponse::Created().json(OperatorView::from(operator)))
}

/// `GET /v1/operators`: paging, the account, and the search.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct OperatorListQuery {
    pub cursor: Option<String>,
    pub limit: Option<String>,
    pub account_id: Option<String>,
    /// Part of the operator's name (any case) or phone.
    pub q: Option<String>,
}

#[utoipa::path(get, path = "/v1/operators", params(OperatorListQuery),
    responses((status = 200, body = OperatorList), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: super::query::Query<OperatorListQuery>,
    request: actix_web::HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let account = account_param(&caller, query.account_id.as_deref())?;
    let limit = limit(query.limit.as_deref())?;
    let after = storage::paging::after("operators", query.cursor.as_deref(), |key| {
        Some(key.to_owned())
    })?;
    let page = ops::list(
        &state.store.begin_read()?,
        &caller.0,
        &account,
        query.q.as_deref().filter(|q| !q.is_empty()),
        (after.as_deref(), limit),
    )?;
    let page = storage::paging::with_cursor("operators", page);
    Ok(
        super::link::ok_page(&request, page.next_cursor.as_deref()).json(OperatorList {
            items: page.items.into_iter().map(OperatorView::from).collect(),
            next_cursor: page.next_cursor,
        }),
    )
}

#[utoipa::path(get, path = "/v1/operators/{id}",
    responses((status = 200, body = OperatorView), (status = 404, body = Problem)))]
pub async fn show(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = operator_id(&path)?;
    let operator = ops::get_operator(&state.store.begin_read()?, &caller.0, &id)?;
    Ok(HttpResponse::Ok().json(OperatorView::from(operator)))
}

#[utoipa::path(post, path = "/v1/operators/{id}/invitation",
    responses((status = 202, body = OperatorView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn resend_invitation(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = operator_id(&path)?;
    let operator = state.usecases.resend_invitation(caller.0, id).await?;
    Ok(HttpResponse::Accepted().json(OperatorView::from(operator)))
}

#[utoipa::path(patch, path = "/v1/operators/{id}", request_body = OperatorPatch,
    responses((status = 200, body = OperatorView), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn patch(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
    body: Json<OperatorPatch>,
) -> Result<HttpResponse, ApiError> {
    let id = operator_id(&path)?;
    let body = body.into_inner();
    let edit = OperatorEdit::check(
        body.name.as_deref(),
        body.phone.as_ref().map(Option::as_deref),
        body.access_type.as_ref().map(Option::as_deref),
    )
    .map_err(OpError::from)?;
    let operator = state.usecases.update_operator(caller.0, id, edit).await?;
    Ok(HttpResponse::Ok().json(OperatorView::from(operator)))
}

#[utoipa::path(delete, path = "/v1/operators/{id}",
    responses((status = 204, description = "deleted, with any invitation still pending"), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, description = "the operator still has personal keys; the detail says how many", body = Problem)))]
pub async fn delete(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = operator_id(&path)?;
    state.usecases.delete_operator(caller.0, id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Reads the body up to `limit` bytes. A larger one is refused with 413; what is left of
/// it (up to a bound) is read and dropped first, so the client sees the answer rather than
/// a reset connection.
async fn read_body(mut payload: web::Payload, limit: usize) -> Result<web::Bytes, ApiError> {
    const DRAIN_AT_MOST: usize = 16 * 1024 * 1024;
    let too_large = || {
        ApiError::PayloadTooLarge(format!(
            "an import is at most {} MiB",
            limit / (1024 * 1024)
        ))
    };
    let mut body = web::BytesMut::new();
    let mut seen = 0usize;
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|err| ApiError::BadRequest(format!("reading the body: {err}")))?;
        seen += chunk.len();
        if seen > DRAIN_AT_MOST {
            return Err(too_large());
        }
        if seen <= limit {
            body.extend_from_slice(&chunk);
        }
    }
    if seen > limit {
        return Err(too_large());
    }
    Ok(body.freeze())
}

fn import_problem(errors: Vec<RowError>) -> HttpResponse {
    let status = actix_web::http::StatusCode::UNPROCESSABLE_ENTITY;
    let mut detail = match errors.first() {
        Some(first) => format!("nothing was imported; {first}"),
        None => "nothing was imported".to_owned(),
    };
    if errors.len() > 1 {
        detail.push_str(&format!(" (and {} more errors)", errors.len() - 1));
    }
    HttpResponse::build(status)
        .content_type("application/problem+json")
        .json(ImportProblem {
            kind: "about:blank",
            title: "Unprocessable Entity",
            status: status.as_u16(),
            detail,
            errors,
        })
}

/// The import's format from the request's `Content-Type` (415 for any other).
fn import_format(request: &HttpRequest) -> Result<Format, ApiError> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    Format::from_content_type(content_type).ok_or_else(|| {
        ApiError::UnsupportedMediaType(format!(
            "an import is {} or {}",
            import::CSV_TYPE,
            import::XLSX_TYPE
        ))
    })
}

/// Checks the caller may manage the account's operators, then reads the body: a caller
/// refused is refused before a large file is read and parsed for nothing.
async fn import_body(
    state: &AppState,
    caller: &Caller,
    account: Option<&str>,
    payload: web::Payload,
) -> Result<(storage::AccountId, web::Bytes), ApiError> {
    let account = account_param(caller, account)?;
    ops::require_manage(&state.store.begin_read()?, &caller.0, &account)?;
    let body = read_body(payload, import::MAX_BODY).await?;
    Ok((account, body))
}

/// An import's refusal as an answer: row errors as the import problem, the rest as a 422
/// naming the query's `rows` or the body.
fn refused_import(refused: ImportError) -> Result<HttpResponse, ApiError> {
    match refused {
        ImportError::Rows(errors) => Ok(import_problem(errors)),
        ImportError::NotDataRows(_) => Err(OpError::invalid("rows", refused.to_string()).into()),
        other => Err(OpError::invalid("body", other.to_string()).into()),
    }
}

#[utoipa::path(post, path = "/v1/operators/import", params(ImportQuery),
    request_body(description = "a CSV or XLSX file with the columns name, phone, access_type, send_sms_invite (header row required)",
        content(("text/csv"), ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))),
    responses((status = 201, body = ImportAnswer), (status = 200, description = "dry run", body = ImportAnswer),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 413, body = Problem), (status = 415, body = Problem),
        (status = 422, description = "row errors (all of them, each naming its row and column), or a rule of the file as a whole", body = ImportProblem)))]
pub async fn import(
    state: web::Data<AppState>,
    caller: Caller,
    request: HttpRequest,
    query: super::query::Query<ImportQuery>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let format = import_format(&request)?;
    let dry_run = DryRun {
        dry_run: query.dry_run.clone(),
    }
    .flag()?;
    let picked = match query.rows.as_deref() {
        None => None,
        Some(raw) => Some(import::rows::row_numbers(raw).ok_or_else(|| {
            OpError::invalid(
                "rows",
                format!(
                    "row numbers as the sheet shows them (2 or more), such as 2,3,7-9, at most {}",
                    import::MAX_ROWS
                ),
            )
        })?),
    };
    let (account, body) =
        import_body(&state, &caller, query.account_id.as_deref(), payload).await?;
    let parsed = web::block(move || match picked {
        Some(picked) => import::rows::parse_picked(format, &body, &picked),
        None => import::parse(format, &body),
    })
    .await
    .map_err(|err| ApiError::Internal(format!("import parser: {err}")))?;
    let rows = match parsed {
        Ok(rows) => rows,
        Err(refused) => return refused_import(refused),
    };
    let created = state
        .usecases
        .import_operators(caller.0, account, rows, dry_run)
        .await?;
    let answer = ImportAnswer {
        dry_run,
        items: created.into_iter().map(OperatorView::from).collect(),
    };
    Ok(if dry_run {
        HttpResponse::Ok().json(answer)
    } else {
        HttpResponse::Created().json(answer)
    })
}

#[utoipa::path(post, path = "/v1/operators/import/preview", params(PreviewQuery),
    request_body(description = "a CSV or XLSX file, as `POST /v1/operators/import` takes it",
        content(("text/csv"), ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))),
    responses((status = 200, body = PreviewAnswer, description = "every data row with what the sheet holds and its errors; nothing is stored"),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 413, body = Problem), (status = 415, body = Problem),
        (status = 422, description = "the file as a whole: unreadable, no rows, too many rows, or header errors (listed)", body = ImportProblem)))]
pub async fn preview(
    state: web::Data<AppState>,
    caller: Caller,
    request: HttpRequest,
    query: super::query::Query<PreviewQuery>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let format = import_format(&request)?;
    let (_, body) = import_body(&state, &caller, query.account_id.as_deref(), payload).await?;
    let parsed = web::block(move || import::rows::preview(format, &body))
        .await
        .map_err(|err| ApiError::Internal(format!("import parser: {err}")))?;
    match parsed {
        Ok(rows) => Ok(HttpResponse::Ok().json(PreviewAnswer { rows })),
        Err(refused) => refused_import(refused),
    }
}

fn attachment(content_type: &str, file_name: &str, body: Vec<u8>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{file_name}\""),
        ))
        .body(body)
}

#[utoipa::path(get, path = "/v1/operators/template.csv",
    responses((status = 200, description = "the CSV import template: header and one example row", content_type = "text/csv")))]
pub async fn template_csv(_caller: Caller) -> HttpResponse {
    attachment(
        "text/csv; charset=utf-8",
        "operators-template.csv",
        import::template_csv(),
    )
}

#[utoipa::path(get, path = "/v1/operators/template.xlsx",
    responses((status = 200, description = "the XLSX import template: header and one example row",
        content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")))]
pub async fn template_xlsx(_caller: Caller) -> Result<HttpResponse, ApiError> {
    let body = import::template_xlsx().map_err(|err| ApiError::Internal(err.to_string()))?;
    Ok(attachment(
        import::XLSX_TYPE,
        "operators-template.xlsx",
        body,
    ))
}
