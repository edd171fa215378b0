//! An asset's details beyond name and serial (counters, groups, working hours, service
//! flags, calibration, display), and the sharing-profile fields that select which of them
//! travel to a mirror (rule 5). Validation names the field it refuses.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::error::OpError;

/// Unknown keys are refused when details arrive as JSON (postcard, being positional, is
/// unaffected).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssetDetails {
    pub counters: Option<Counters>,
    pub groups: Option<Vec<String>>,
    pub working_hours: Option<WorkingHours>,
    pub service_flags: Option<Vec<String>>,
    pub calibration: Option<Calibration>,
    pub display: Option<Display>,
}

/// Offsets added to what the unit reports (a replaced engine, a reset odometer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Counters {
    pub engine_hours_offset: f64,
    pub odometer_offset_km: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkingHours {
    /// `HH:MM`, 24-hour clock.
    pub start: String,
    pub end: String,
    /// Lower-case English three-letter day names: `mon` .. `sun`.
    pub days: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    pub fuel_tank_l: f64,
    pub fuel_sensor_offset_pct: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Display {
    pub icon: String,
    /// `#rrggbb`.
    pub color: String,
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const MAX_LIST: usize = 50;
const MAX_TEXT: usize = 64;

fn hhmm(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    bytes.len() == 5
        && bytes[2] == b':'
        && raw[..2]
            .parse::<u8>()
            .is_ok_and(|h| h < 24 && bytes[0].is_ascii_digit() && bytes[1].is_ascii_digit())
        && raw[3..]
            .parse::<u8>()
            .is_ok_and(|m| m < 60 && bytes[3].is_ascii_digit() && bytes[4].is_ascii_digit())
}

fn labels(field: &str, values: &[String]) -> Result<(), OpError> {
    if values.len() > MAX_LIST {
        return Err(OpError::invalid(
            field,
            format!("at most {MAX_LIST} entries"),
        ));
    }
    if let Some(bad) = values
        .iter()
        .find(|v| v.trim().is_empty() || v.chars().count() > MAX_TEXT)
    {
        return Err(OpError::invalid(
            field,
            format!("{bad:?} must be 1 to {MAX_TEXT} characters"),
        ));
    }
    Ok(())
}

fn finite(field: &str, value: f64, min: f64, max: f64) -> Result<(), OpError> {
    if value.is_finite() && (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(OpError::invalid(
            field,
            format!("must be a number in [{min}, {max}]"),
        ))
    }
}

impl AssetDetails {
    pub fn validate(&self) -> Result<(), OpError> {
        if let Some(counters) = &self.counters {
            finite(
                "details.counters.engine_hours_offset",
                counters.engine_hours_offset,
                -1e6,
                1e6,
            )?;
            finite(
                "details.counters.odometer_offset_km",
                counters.odometer_offset_km,
                -1e8,
                1e8,
            )?;
        }
        if let Some(groups) = &self.groups {
            labels("details.groups", groups)?;
        }
        if let Some(flags) = &self.service_flags {
            labels("details.service_flags", flags)?;
        }
        if let Some(hours) = &self.working_hours {
            if !hhmm(&hours.start) {
                return Err(OpError::invalid(
                    "details.working_hours.start",
                    "must be HH:MM",
                ));
            }
            if !hhmm(&hours.end) {
                return Err(OpError::invalid(
                    "details.working_hours.end",
                    "must be HH:MM",
                ));
            }
            if let Some(bad) = hours.days.iter().find(|day| !DAYS.contains(&day.as_str())) {
                return Err(OpError::invalid(
                    "details.working_hours.days",
                    format!("{bad:?} is not one of mon..sun"),
                ));
            }
        }
        if let Some(calibration) = &self.calibration {
            finite(
                "details.calibration.fuel_tank_l",
                calibration.fuel_tank_l,
                0.0,
                1e5,
            )?;
            finite(
                "details.calibration.fuel_sensor_offset_pct",
                calibration.fuel_sensor_offset_pct,
                -100.0,
                100.0,
            )?;
        }
        if let Some(display) = &self.display {
            if display.icon.trim().is_empty() || display.icon.chars().count() > MAX_TEXT {
                return Err(OpError::invalid(
                    "details.display.icon",
                    format!("must be 1 to {MAX_TEXT} characters"),
                ));
            }
            let color = display.color.as_bytes();
            if !(color.len() == 7
                && color[0] == b'#'
                && color[1..].iter().all(u8::is_ascii_hexdigit))
            {
                return Err(OpError::invalid("details.display.color", "must be #rrggbb"));
            }
        }
        Ok(())
    }

    /// Replaces the sections present in `patch`, keeps the others.
    pub fn merge(&mut self, patch: AssetDetails) {
        macro_rules! take {
            ($($field:ident),*) => {$(if patch.$field.is_some() { self.$field = patch.$field; })*};
        }
        take!(
            counters,
            groups,
            working_hours,
            service_flags,
            calibration,
            display
        );
    }
}

/// A field a sharing profile may select.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Field {
    Name,
    Serial,
    Counters,
    Groups,
    WorkingHours,
    ServiceFlags,
    Calibration,
    Display,
}

impl Field {
    pub const NAMES: &'static str =
        "name, serial, counters, groups, working_hours, service_flags, calibration, display";
    const ALL: [(Field, &'static str); 8] = [
        (Field::Name, "name"),
        (Field::Serial, "serial"),
        (Field::Counters, "counters"),
        (Field::Groups, "groups"),
        (Field::WorkingHours, "working_hours"),
        (Field::ServiceFlags, "service_flags"),
        (Field::Calibration, "calibration"),
        (Field::Display, "display"),
    ];

    pub fn parse(raw: &str) -> Option<Field> {
        Self::ALL
            .iter()
            .find(|(_, name)| *name == raw)
            .map(|(field, _)| *field)
    }

    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(field, _)| *field == self)
            .map(|(_, name)| *name)
            .unwrap_or("")
    }
}

/// Details as a request gave them (read from JSON at the HTTP edge, which names a field of
/// the wrong type by its path), once [`AssetDetails::validate`] keeps them.
///
/// # Errors
/// As [`AssetDetails::validate`].
pub fn validated(details: AssetDetails) -> Result<AssetDetails, OpError> {
    details.validate()?;
    Ok(details)
}

/// Details as JSON with absent sections left out.
pub fn to_json(details: &AssetDetails) -> serde_json::Value {
    let mut value = serde_json::to_value(details).unwrap_or_default();
    if let Some(object) = value.as_object_mut() {
        object.retain(|_, section| !section.is_null());
    }
    value
}

/// Exactly the selected fields of `source`; everything else absent.
pub fn project(source: &AssetDetails, fields: &BTreeSet<Field>) -> AssetDetails {
    let pick = |field: Field| fields.contains(&field);
    AssetDetails {
        counters: source.counters.clone().filter(|_| pick(Field::Counters)),
        groups: source.groups.clone().filter(|_| pick(Field::Groups)),
        working_hours: source
            .working_hours
            .clone()
            .filter(|_| pick(Field::WorkingHours)),
        service_flags: source
            .service_flags
            .clone()
            .filter(|_| pick(Field::ServiceFlags)),
        calibration: source
            .calibration
            .clone()
            .filter(|_| pick(Field::Calibration)),
        display: source.display.clone().filter(|_| pick(Field::Display)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> AssetDetails {
        AssetDetails {
            counters: Some(Counters {
                engine_hours_offset: 10.0,
                odometer_offset_km: 5.0,
            }),
            groups: Some(vec!["north".into()]),
            working_hours: Some(WorkingHours {
                start: "07:00".into(),
                end: "16:30".into(),
                days: vec!["mon".into()],
            }),
            service_flags: Some(vec!["oil_due".into()]),
            calibration: Some(Calibration {
                fuel_tank_l: 400.0,
                fuel_sensor_offset_pct: -2.0,
            }),
            display: Some(Display {
                icon: "excavator".into(),
                color: "#ffaa00".into(),
            }),
        }
    }

    #[test]
    fn projection_keeps_exactly_the_selected_fields() {
        let fields: BTreeSet<Field> = [Field::Groups, Field::Display].into_iter().collect();
        let copy = project(&full(), &fields);
        assert_eq!(copy.groups, full().groups);
        assert_eq!(copy.display, full().display);
        assert!(copy.counters.is_none() && copy.working_hours.is_none());
        assert!(copy.service_flags.is_none() && copy.calibration.is_none());
    }

    #[test]
    fn validation_names_the_field() {
        assert!(full().validate().is_ok());
        let mut bad = full();
        bad.working_hours = Some(WorkingHours {
            start: "25:00".into(),
            end: "16:30".into(),
            days: vec![],
        });
        assert!(bad
            .validate()
            .expect_err("bad hour")
            .to_string()
            .contains("working_hours.start"));
        let mut bad = full();
        bad.display = Some(Display {
            icon: "x".into(),
            color: "orange".into(),
        });
        assert!(bad
            .validate()
            .expect_err("bad color")
            .to_string()
            .contains("display.color"));
        assert_eq!(Field::parse("working_hours"), Some(Field::WorkingHours));
        assert_eq!(Field::parse("price"), None);
    }
}
