//! History as one streamed answer: `GET /v1/assets/{x}/telemetry` with `Accept:
//! application/x-ndjson` (one point per line, as the paged API shows it) or `text/csv` (a
//! header, then one row per point), under the same visibility as the paged history.
//!
//! The range is read from one snapshot on a blocking thread and handed to the response in
//! chunks of about [`CHUNK_BYTES`] through a channel of [`CHUNKS_IN_FLIGHT`]: a slow client
//! holds back the reader instead of the gateway buffering the range; a client that goes
//! away stops it. The CSV has one column per sensor name found in the range (a first pass
//! over the same snapshot finds them), named `sensors.{name}` so no sensor can pose as a
//! fixed column or as a spreadsheet formula.

use std::collections::BTreeSet;

use actix_web::web::Bytes;
use actix_web::HttpResponse;
use storage::telemetry::Point;
use storage::time::Timestamp;
use storage::visibility::Seen;
use storage::Store;

/// Target size of one chunk of the answer, bytes.
pub const CHUNK_BYTES: usize = 64 * 1024;
/// Chunks read ahead of the client.
pub const CHUNKS_IN_FLIGHT: usize = 4;

pub const NDJSON: &str = "application/x-ndjson";
pub const CSV: &str = "text/csv";

/// The streamed formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Ndjson,
    Csv,
}

impl Format {
    /// The export an `Accept` header asks for; `None` for the paged JSON (absent, JSON,
    /// `*/*`, or anything else).
    pub fn from_accept(accept: Option<&str>) -> Option<Format> {
        let accept = accept?;
        let wants = |media: &str| {
            accept.split(',').any(|part| {
                part.split(';')
                    .next()
                    .is_some_and(|m| m.trim().eq_ignore_ascii_case(media))
            })
        };
        if wants(NDJSON) {
            Some(Format::Ndjson)
        } else if wants(CSV) {
            Some(Format::Csv)
        } else {
            None
        }
    }
}

/// The columns before the sensors: the point's own fields in their decoding order (without
/// `sensors`), after its stamp and asset.
fn fixed_columns() -> impl Iterator<Item = &'static str> {
    ["ts", "ts_ms", "asset_id"].into_iter().chain(
        storage::telemetry::FIELDS
            .into_iter()
            .filter(|field| !matches!(*field, "ts" | "sensors")),
    )
}

/// Streams the points of `seen` in `range` (already cut to what the caller may read).
pub fn respond(
    store: Store,
    seen: Seen,
    range: (Timestamp, Timestamp),
    format: Format,
) -> HttpResponse {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(CHUNKS_IN_FLIGHT);
    actix_web::rt::task::spawn_blocking(move || {
        if let Err(err) = produce(&store, &seen, range, format, &tx) {
            tracing::warn!(%err, "telemetry export stopped");
            let _ = tx.blocking_send(Err(std::io::Error::other(err.to_string())));
        }
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    let content_type = match format {
        Format::Ndjson => NDJSON,
        Format::Csv => "text/csv; charset=utf-8",
    };
    HttpResponse::Ok()
        .content_type(content_type)
        .streaming(body)
}

type Sender = tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>;

fn produce(
    store: &Store,
    seen: &Seen,
    range: (Timestamp, Timestamp),
    format: Format,
    tx: &Sender,
) -> Result<(), storage::StoreError> {
    let rtx = store.begin_read()?;
    let key = seen.telemetry_key();
    let keep = |ts| seen.shows(ts);
    let mut chunk = Vec::with_capacity(CHUNK_BYTES + 1024);
    let mut open = true;
    let mut flush = |chunk: &mut Vec<u8>, force: bool| {
        if open && (force || chunk.len() >= CHUNK_BYTES) && !chunk.is_empty() {
            open = tx
                .blocking_send(Ok(Bytes::from(std::mem::take(chunk))))
                .is_ok();
        }
        open
    };
    match format {
        Format::Ndjson => storage::read::scan(&rtx, key, range, keep, |point| {
            chunk.extend_from_slice(point.render_json(&seen.asset.id).as_bytes());
            chunk.push(b'\n');
            flush(&mut chunk, false)
        })?,
        Format::Csv => {
            let mut sensors = BTreeSet::new();
            storage::read::scan(&rtx, key, range, keep, |point| {
                sensors.extend(point.sensors.keys().cloned());
                true
            })?;
            let sensors: Vec<String> = sensors.into_iter().collect();
            csv_header(&sensors, &mut chunk);
            storage::read::scan(&rtx, key, range, keep, |point| {
                csv_row(point, &seen.asset.id, &sensors, &mut chunk);
                flush(&mut chunk, false)
            })?
        }
    }
    flush(&mut chunk, true);
    Ok(())
}

fn csv_header(sensors: &[String], out: &mut Vec<u8>) {
    let mut writer = csv::Writer::from_writer(&mut *out);
    let names = fixed_columns()
        .map(str::to_owned)
        .chain(sensors.iter().map(|name| format!("sensors.{name}")));
    // Writing into a Vec cannot fail.
    let _ = writer.write_record(names);
    let _ = writer.flush();
}

fn csv_row(point: &Point, asset: &storage::AssetId, sensors: &[String], out: &mut Vec<u8>) {
    let number = |value: Option<f64>| value.map(|v| v.to_string()).unwrap_or_default();
    let mut row = vec![
        point.ts.to_rfc3339(),
        point.ts.0.to_string(),
        asset.to_string(),
        number(point.lat),
        number(point.lon),
        number(point.speed_kmh),
        number(point.heading),
        number(point.engine_hours),
        number(point.odometer_km),
        number(point.fuel_pct),
        point.ignition.map(|on| on.to_string()).unwrap_or_default(),
    ];
    row.extend(
        sensors
            .iter()
            .map(|name| number(point.sensors.get(name).copied())),
    );
    let mut writer = csv::Writer::from_writer(&mut *out);
    let _ = writer.write_record(&row);
    let _ = writer.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accept_header_picks_the_format() {
        assert_eq!(Format::from_accept(None), None);
        assert_eq!(Format::from_accept(Some("application/json")), None);
        assert_eq!(Format::from_accept(Some("*/*")), None);
        assert_eq!(
            Format::from_accept(Some("application/x-ndjson")),
            Some(Format::Ndjson)
        );
        assert_eq!(
            Format::from_accept(Some("text/csv; charset=utf-8")),
            Some(Format::Csv)
        );
        assert_eq!(
            Format::from_accept(Some("text/html, TEXT/CSV;q=0.9")),
            Some(Format::Csv)
        );
    }

    #[test]
    fn a_csv_row_has_every_column_and_a_sensor_column_per_name() {
        let point = Point {
            ts: Timestamp(1_800_000_000_000),
            lat: Some(59.9),
            lon: None,
            speed_kmh: None,
            heading: None,
            engine_hours: None,
            odometer_km: None,
            fuel_pct: Some(50.0),
            ignition: Some(true),
            sensors: [("oil".to_owned(), 1.5)].into_iter().collect(),
        };
        let sensors = vec!["coolant".to_owned(), "oil".to_owned()];
        let mut out = Vec::new();
        csv_header(&sensors, &mut out);
        csv_row(
            &point,
            &storage::AssetId::parse("ex1").expect("id"),
            &sensors,
            &mut out,
        );
        let text = String::from_utf8(out).expect("utf-8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "ts,ts_ms,asset_id,lat,lon,speed_kmh,heading,engine_hours,odometer_km,fuel_pct,ignition,sensors.coolant,sensors.oil"
        );
        assert_eq!(
            lines[1],
            "2027-01-15T08:00:00Z,1800000000000,ex1,59.9,,,,,,50,true,,1.5"
        );
    }
}
