//! Criterion benches of the ingest hot path: decoding and validating one point, and one
//! store-writer batch commit of many points (the group commit the commit window buys); and
//! decoding one sealed chunk, the read side of the same points.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use storage::telemetry;
use storage::time::Timestamp;

const NOW: Timestamp = Timestamp(1_800_000_000_000);

fn decode(c: &mut Criterion) {
    let payload = benches::sample_payload(NOW.0 - 1000, 7);
    let mut group = c.benchmark_group("telemetry");
    group.throughput(Throughput::Elements(1));
    group.bench_function("decode_validate", |b| {
        b.iter(|| telemetry::decode(std::hint::black_box(&payload), NOW).expect("valid"))
    });
    let decoded = telemetry::decode(&payload, NOW).expect("valid").point;
    let asset = storage::AssetId::parse("ex1").expect("id");
    // The old path (a `Value` tree, then text) beside the one the live path uses now.
    group.bench_function("render_json_value", |b| {
        b.iter(|| decoded.to_json(&asset).to_string())
    });
    group.bench_function("render_json", |b| b.iter(|| decoded.render_json(&asset)));
    // One sealed ten-minute chunk of a driving unit (600 points, three sensors) back into
    // points, as every history read of sealed data does.
    let start = telemetry::chunk::bucket(NOW.0);
    let points: Vec<_> = (0..600)
        .map(|i| {
            let payload = benches::drive_payload(start + i * 1000, i);
            let arrived = Timestamp(start + 3_600_000);
            telemetry::decode(&payload, arrived).expect("valid").point
        })
        .collect();
    let record = telemetry::chunk::encode(start, &points);
    group.throughput(Throughput::Elements(600));
    group.bench_function("chunk_decode_600", |b| {
        b.iter(|| telemetry::chunk::decode(start, std::hint::black_box(&record)).expect("decodes"))
    });
    group.finish();
}

fn store_batch(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = storage::Store::open(&dir.path().join("bench.redb")).expect("open");
    let mut group = c.benchmark_group("store");
    for batch in [100u64, 1_000, 10_000] {
        let points: Vec<_> = (0..batch)
            .map(|i| {
                telemetry::decode(&benches::sample_payload(NOW.0 - 100_000 + i, i), NOW)
                    .expect("valid")
                    .point
            })
            .collect();
        let mut asset_key = 0u64;
        group.throughput(Throughput::Elements(batch));
        group.sample_size(10);
        group.bench_function(format!("commit_batch_{batch}"), |b| {
            b.iter_batched(
                || {
                    asset_key += 1;
                    asset_key
                },
                |key| {
                    let tx = store.begin_write().expect("write");
                    storage::ops::write_points(&tx, points.iter().map(|p| (key, p)))
                        .expect("insert");
                    tx.commit().expect("commit");
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, decode, store_batch);
criterion_main!(benches);
