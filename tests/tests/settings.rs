//! `GET /v1/settings`: what the console reads of the gateway's settings. The map tile URL
//! is off unless `--map-tile-url` gives one, so by default the console loads nothing from
//! outside.

use reqwest::Method;
use serde_json::Value;
use tests::{call, Fleet, TestGateway};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn map_tiles_are_off_unless_configured() {
    let gateway = TestGateway::start();
    let fleet = Fleet::create(&gateway, "Acme").await;
    let (status, settings) = call(&fleet.admin, Method::GET, "/v1/settings", None).await;
    assert_eq!(
        (status, settings["map_tile_url"].clone()),
        (200, Value::Null)
    );

    let template = "https://tiles.example.net/{z}/{x}/{y}.png";
    let gateway =
        TestGateway::start_with(move |config| config.map_tile_url = Some(template.into()));
    let fleet = Fleet::create(&gateway, "Acme").await;
    let (_, settings) = call(&fleet.admin, Method::GET, "/v1/settings", None).await;
    assert_eq!(settings["map_tile_url"], template);
}
