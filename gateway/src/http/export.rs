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
            point.render_json_into(&seen.asset.id, &mut chunk);
            chunk.push(b'\n');
            flush(&mut chunk, false)
        })?,
        Format::Csv => {
            let mut sensors = BTreeSet::new();
            storage::read::scan(&rtx, key, range, keep, |point| {
                sensors.extend(point.sensors.keys().cloned());
                true
            })?;
            let sensors: Vec<String> = sensors.into_iter().map(|name| name.to_string()).collect();
            csv_header(&sensors, &mut chunk);
            // One writer per chunk of the answer: a writer per row allocated its 8 KiB
            // buffer for every point.
            let new_writer = || csv::Writer::from_writer(Vec::with_capacity(CHUNK_BYTES + 1024));
            let mut writer = csv::Writer::from_writer(std::mem::take(&mut chunk));
            let mut row = CsvRow::default();
            storage::read::scan(&rtx, key, range, keep, |point| {
                row.fill(point, &seen.asset.id, &sensors);
                // Writing into a Vec cannot fail.
                let _ = writer.write_record(row.fields());
                let _ = writer.flush();
                if writer.get_ref().len() < CHUNK_BYTES {
                    return true;
                }
                let mut full = std::mem::replace(&mut writer, new_writer())
                    .into_inner()
                    .unwrap_or_default();
                flush(&mut full, true)
            })?;
            chunk = writer.into_inner().unwrap_or_default();
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

/// One CSV row's cells, reused from row to row (the cells keep their capacity).
#[derive(Default)]
struct CsvRow {
    cells: Vec<String>,
}

impl CsvRow {
    /// The cells of `point`: the fixed columns (as [`fixed_columns`] names them), then one
    /// per name in `sensors`; a field the point lacks is an empty cell.
    fn fill(&mut self, point: &Point, asset: &storage::AssetId, sensors: &[String]) {
        use std::fmt::Write;
        let numbers = [
            point.lat,
            point.lon,
            point.speed_kmh,
            point.heading,
            point.engine_hours,
            point.odometer_km,
            point.fuel_pct,
        ];
        self.cells.resize_with(11 + sensors.len(), String::new);
        self.cells.iter_mut().for_each(String::clear);
        let [ts, ts_ms, asset_id, rest @ ..] = self.cells.as_mut_slice() else {
            return;
        };
        point.ts.write_rfc3339(ts);
        let _ = write!(ts_ms, "{}", point.ts.0);
        asset_id.push_str(asset.as_str());
        let (fixed, sensor_cells) = rest.split_at_mut(numbers.len() + 1);
        let number = |cell: &mut String, value: Option<f64>| {
            if let Some(value) = value {
                let _ = write!(cell, "{value}");
            }
        };
        for (cell, value) in fixed.iter_mut().zip(numbers) {
            number(cell, value);
        }
        if let Some(on) = point.ignition {
            let _ = write!(fixed[numbers.len()], "{on}");
        }
        for (cell, name) in sensor_cells.iter_mut().zip(sensors) {
            number(cell, point.sensors.get(name.as_str()).copied());
        }
    }

    fn fields(&self) -> &[String] {
        &self.cells
    }
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
            sensors: [("oil".into(), 1.5)].into_iter().collect(),
        };
        let sensors = vec!["coolant".to_owned(), "oil".to_owned()];
        let mut out = Vec::new();
        csv_header(&sensors, &mut out);
        let mut writer = csv::Writer::from_writer(out);
        let mut row = CsvRow::default();
        // Twice through the same cells: the second row must not keep the first's values.
        let asset = storage::AssetId::parse("ex1").expect("id");
        row.fill(
            &Point {
                ignition: None,
                ..point.clone()
            },
            &asset,
            &sensors,
        );
        writer.write_record(row.fields()).expect("row");
        row.fill(&point, &asset, &sensors);
        writer.write_record(row.fields()).expect("row");
        let text = String::from_utf8(writer.into_inner().expect("flush")).expect("utf-8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "ts,ts_ms,asset_id,lat,lon,speed_kmh,heading,engine_hours,odometer_km,fuel_pct,ignition,sensors.coolant,sensors.oil"
        );
        assert_eq!(
            lines[1],
            "2027-01-15T08:00:00Z,1800000000000,ex1,59.9,,,,,,50,,,1.5"
        );
        assert_eq!(
            lines[2],
            "2027-01-15T08:00:00Z,1800000000000,ex1,59.9,,,,,,50,true,,1.5"
        );
    }
}
