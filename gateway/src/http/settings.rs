//! What the console needs to know of the gateway's own settings, for any signed-in
//! principal: nothing secret, nothing about accounts.

use actix_web::{web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::Caller;
use super::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct SettingsView {
    /// `--map-tile-url`: an http(s) URL template with `{z}`, `{x}`, `{y}`; `null` when
    /// off (the console draws tracks on a plain grid and loads nothing from outside).
    pub map_tile_url: Option<String>,
}

#[utoipa::path(get, path = "/v1/settings", responses((status = 200, body = SettingsView)))]
pub async fn settings(state: web::Data<AppState>, _caller: Caller) -> HttpResponse {
    HttpResponse::Ok().json(SettingsView {
        map_tile_url: state.map_tile_url.as_deref().map(str::to_owned),
    })
}
