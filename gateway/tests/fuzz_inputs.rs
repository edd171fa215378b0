//! Fuzzing of the remaining network inputs (issue 9), with proptest as cargo-fuzz needs
//! nightly: the CSV and XLSX operator import and the key-ack payload. Every input either
//! parses or gets a clean error; nothing panics. `scripts/fuzz.sh` runs these longer.

use gateway::http::operators::import::{parse, template_csv, template_xlsx, Format};
use proptest::prelude::*;

fn csv_cell() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[A-Za-z ]{0,20}",
        "\\+[0-9 ]{0,16}",
        prop::sample::select(vec![
            "digital_key",
            "keypad_pin",
            "dualid_tag",
            "true",
            "no",
            "1",
            "\"",
            "\"\"",
            ";",
            ","
        ])
        .prop_map(str::to_owned),
        ".{0,30}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_either_parser(bytes in proptest::collection::vec(any::<u8>(), 0..4000)) {
        let _ = parse(Format::Csv, &bytes);
        let _ = parse(Format::Xlsx, &bytes);
    }

    #[test]
    fn csv_shaped_input_never_panics(
        header in proptest::collection::vec(prop::sample::select(vec!["name", "phone", "access_type", "send_sms_invite", "NAME", "colour", ""]), 0..6),
        rows in proptest::collection::vec(proptest::collection::vec(csv_cell(), 0..6), 0..20),
        separator in prop::sample::select(vec![",", ";"]),
    ) {
        let mut text = header.join(separator);
        for row in rows {
            text.push('\n');
            text.push_str(&row.join(separator));
        }
        match parse(Format::Csv, text.as_bytes()) {
            Ok(rows) => prop_assert!(rows.len() <= 5000),
            Err(err) => prop_assert!(!err.to_string().is_empty()),
        }
    }

    #[test]
    fn damaged_templates_never_panic(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let mut xlsx = template_xlsx().expect("template");
        let mut csv = template_csv();
        for (index, byte) in &flips {
            let at = index.index(xlsx.len());
            xlsx[at] ^= byte | 1;
            let at = index.index(csv.len());
            csv[at] ^= byte | 1;
        }
        let _ = parse(Format::Xlsx, &xlsx);
        let _ = parse(Format::Csv, &csv);
    }

    #[test]
    fn key_acks_parse_only_a_version(bytes in proptest::collection::vec(any::<u8>(), 0..200), version in any::<u64>()) {
        let _ = actors::keys::parse_key_ack(&bytes);
        let ack = format!(r#"{{"version":{version}}}"#);
        prop_assert_eq!(actors::keys::parse_key_ack(ack.as_bytes()), Some(version));
    }
}

#[test]
fn key_ack_refusals() {
    use actors::keys::parse_key_ack;
    for refused in [
        &b""[..],
        b"{}",
        b"{\"version\":-1}",
        b"{\"version\":\"3\"}",
        b"{\"version\":1,\"extra\":2}",
        b"[1]",
        b"null",
    ] {
        assert_eq!(
            parse_key_ack(refused),
            None,
            "{}",
            String::from_utf8_lossy(refused)
        );
    }
    assert_eq!(parse_key_ack(br#"{"version": 7}"#), Some(7));
}

#[test]
fn the_templates_parse() {
    assert!(parse(Format::Csv, &template_csv()).is_ok());
    assert!(parse(Format::Xlsx, &template_xlsx().expect("template")).is_ok());
}
