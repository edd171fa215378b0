//! The closed topic space as an access-control list (docs/design.md section 4).
//!
//! Fleetgate is not a general broker: a session may publish and subscribe only to the exact
//! topics its role has in the contract. Everything is decided by the topic's structure
//! (split on `/`, level by level), never by a prefix test, so `/tenants/u1/telemetry/`,
//! `/tenants/u1/Telemetry` or `/tenants/u1/../u2/telemetry` can never pass as telemetry.
//!
//! - A **unit** (its certificate's Organization is a device id) publishes only
//!   `/tenants/{d}/telemetry`, `/status`, `/keys/ack` and `/events/access`, and subscribes
//!   only to `/tenants/{d}/keys`.
//! - An **integration** (Organization = an account id) publishes nothing and subscribes only
//!   to filters whose every match has the shape `/tenants/{a}/assets/{x}/telemetry`:
//!   `{x}` is an asset id or `+`, the last level `telemetry`, `+` or `#`, or `#` right after
//!   `assets`.

/// Who a session speaks for, as the gateway classified its identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// A telematics unit: the identity is a device id.
    Unit,
    /// An account's data integration: the identity is an account id.
    Integration,
}

/// A unit topic the gateway takes publishes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnitTopic {
    Telemetry,
    Status,
    KeyAck,
    AccessEvent,
}

impl UnitTopic {
    /// The topic's tail after `/tenants/{d}/`.
    pub fn suffix(self) -> &'static str {
        match self {
            UnitTopic::Telemetry => "telemetry",
            UnitTopic::Status => "status",
            UnitTopic::KeyAck => "keys/ack",
            UnitTopic::AccessEvent => "events/access",
        }
    }
}

/// Why a publish or a subscription was refused; also the label it is counted under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Denied {
    /// The topic or filter lies outside the session's own tenant.
    OtherTenant,
    /// Inside the tenant but not a topic this role may use (including the unit's `keys`,
    /// which only the gateway writes).
    NotAllowed,
    /// Not a well-formed topic name or filter (MQTT 3.1.1 §4.7: empty, wildcards in a topic
    /// name, a `#` that is not last, a wildcard sharing a level).
    Malformed,
}

impl Denied {
    /// The metric label and the word the device status uses.
    pub fn label(self) -> &'static str {
        match self {
            Denied::OtherTenant => "other_tenant",
            Denied::NotAllowed => "topic_not_allowed",
            Denied::Malformed => "topic_malformed",
        }
    }
}

/// What a subscription the ACL allowed is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// The unit's own key set (`/tenants/{d}/keys`).
    Keys,
    /// An integration's filter over its account's asset telemetry.
    AssetTelemetry,
}

/// Longest level an id may have in a topic; ids are at most 64 characters (storage::ids).
const MAX_LEVEL: usize = 64;

fn is_id_level(level: &str) -> bool {
    !level.is_empty()
        && level.len() <= MAX_LEVEL
        && level
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Splits `/tenants/{tenant}/rest...` into its levels after the tenant, or says why not.
fn tenant_levels<'a>(tenant: &str, topic: &'a str) -> Result<Vec<&'a str>, Denied> {
    let mut levels = topic.split('/');
    if levels.next() != Some("") || levels.next() != Some("tenants") {
        return Err(Denied::OtherTenant);
    }
    match levels.next() {
        Some(level) if level == tenant => Ok(levels.collect()),
        Some(level) if level.contains(['+', '#']) => Err(Denied::OtherTenant),
        _ => Err(Denied::OtherTenant),
    }
}

/// MQTT 3.1.1 §4.7.3: a topic name is non-empty and holds no wildcard; §1.5.3: no NUL.
fn topic_name_ok(topic: &str) -> bool {
    !topic.is_empty() && !topic.contains(['+', '#', '\0'])
}

/// Decides a publish by a session of `role` speaking for `tenant` on `topic`.
pub fn check_publish(role: Role, tenant: &str, topic: &str) -> Result<UnitTopic, Denied> {
    // The path every point takes, without allocating: an exact allowed topic. The property
    // test below checks that this agrees with the structural decision.
    if role == Role::Unit {
        let rest = topic
            .strip_prefix("/tenants/")
            .and_then(|rest| rest.strip_prefix(tenant))
            .and_then(|rest| rest.strip_prefix('/'));
        match rest {
            Some("telemetry") => return Ok(UnitTopic::Telemetry),
            Some("status") => return Ok(UnitTopic::Status),
            Some("keys/ack") => return Ok(UnitTopic::KeyAck),
            Some("events/access") => return Ok(UnitTopic::AccessEvent),
            _ => {}
        }
    }
    if !topic_name_ok(topic) {
        return Err(Denied::Malformed);
    }
    let rest = tenant_levels(tenant, topic)?;
    if role == Role::Integration {
        return Err(Denied::NotAllowed);
    }
    match rest.as_slice() {
        ["telemetry"] => Ok(UnitTopic::Telemetry),
        ["status"] => Ok(UnitTopic::Status),
        ["keys", "ack"] => Ok(UnitTopic::KeyAck),
        ["events", "access"] => Ok(UnitTopic::AccessEvent),
        _ => Err(Denied::NotAllowed),
    }
}

/// MQTT 3.1.1 §4.7.1: `#` only alone and last, `+` only alone in its level.
fn filter_ok(filter: &str) -> bool {
    if filter.is_empty() || filter.contains('\0') {
        return false;
    }
    let levels: Vec<&str> = filter.split('/').collect();
    levels.iter().enumerate().all(|(index, level)| {
        let hash_ok = !level.contains('#') || (*level == "#" && index == levels.len() - 1);
        let plus_ok = !level.contains('+') || *level == "+";
        hash_ok && plus_ok
    })
}

/// Decides a subscription filter of a session of `role` speaking for `tenant`.
pub fn check_subscribe(role: Role, tenant: &str, filter: &str) -> Result<Grant, Denied> {
    if !filter_ok(filter) {
        return Err(Denied::Malformed);
    }
    let rest = tenant_levels(tenant, filter)?;
    match role {
        Role::Unit => match rest.as_slice() {
            ["keys"] => Ok(Grant::Keys),
            _ => Err(Denied::NotAllowed),
        },
        Role::Integration => match rest.as_slice() {
            ["assets", "#"] => Ok(Grant::AssetTelemetry),
            ["assets", asset, last]
                if (*asset == "+" || is_id_level(asset))
                    && matches!(*last, "telemetry" | "+" | "#") =>
            {
                Ok(Grant::AssetTelemetry)
            }
            _ => Err(Denied::NotAllowed),
        },
    }
}

/// Whether `topic` matches `filter` (MQTT 3.1.1 §4.7; no `$` topics exist here).
pub fn matches(topic: &str, filter: &str) -> bool {
    let mut topic_levels = topic.split('/');
    let mut filter_levels = filter.split('/');
    loop {
        match (filter_levels.next(), topic_levels.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(f), Some(t)) if f == t => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// The topic a point for account `account` under asset `asset` goes out on.
pub fn asset_topic(account: &str, asset: &str) -> String {
    format!("/tenants/{account}/assets/{asset}/telemetry")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_unit_publishes_only_its_four_topics() {
        let ok = |topic| check_publish(Role::Unit, "u1", topic);
        assert_eq!(ok("/tenants/u1/telemetry"), Ok(UnitTopic::Telemetry));
        assert_eq!(ok("/tenants/u1/status"), Ok(UnitTopic::Status));
        assert_eq!(ok("/tenants/u1/keys/ack"), Ok(UnitTopic::KeyAck));
        assert_eq!(ok("/tenants/u1/events/access"), Ok(UnitTopic::AccessEvent));
        for refused in [
            "/tenants/u1/telemetry/",
            "/tenants/u1/Telemetry",
            "/tenants/u1/keys",
            "/tenants/u1/keys/ack/x",
            "/tenants/u1//telemetry",
            "/tenants/u1",
            "/tenants/u1/",
            "/tenants/u1/x/telemetry",
        ] {
            assert_eq!(ok(refused), Err(Denied::NotAllowed), "{refused}");
        }
        for other in [
            "/tenants/u2/telemetry",
            "/tenants/u10/telemetry",
            "/tenants/u/telemetry",
            "tenants/u1/telemetry",
            "//tenants/u1/telemetry",
            "/Tenants/u1/telemetry",
            "/tenants/acc1/assets/x/telemetry",
        ] {
            assert_eq!(ok(other), Err(Denied::OtherTenant), "{other}");
        }
        for malformed in [
            "",
            "/tenants/+/telemetry",
            "/tenants/u1/#",
            "/tenants/u1/t\0",
        ] {
            assert_eq!(ok(malformed), Err(Denied::Malformed), "{malformed:?}");
        }
    }

    #[test]
    fn an_integration_publishes_nothing_and_reads_only_asset_telemetry() {
        assert_eq!(
            check_publish(
                Role::Integration,
                "acc1",
                "/tenants/acc1/assets/x/telemetry"
            ),
            Err(Denied::NotAllowed)
        );
        let sub = |filter| check_subscribe(Role::Integration, "acc1", filter);
        for allowed in [
            "/tenants/acc1/assets/+/telemetry",
            "/tenants/acc1/assets/ex-1/telemetry",
            "/tenants/acc1/assets/#",
            "/tenants/acc1/assets/ex1/#",
            "/tenants/acc1/assets/ex1/+",
            "/tenants/acc1/assets/+/+",
        ] {
            assert_eq!(sub(allowed), Ok(Grant::AssetTelemetry), "{allowed}");
        }
        for refused in [
            "/tenants/acc1/#",
            "/tenants/acc1/+/x/telemetry",
            "/tenants/acc1/assets",
            "/tenants/acc1/assets/ex1",
            "/tenants/acc1/assets/ex1/telemetry/x",
            "/tenants/acc1/assets/ex1/status",
            "/tenants/acc1/keys",
        ] {
            assert_eq!(sub(refused), Err(Denied::NotAllowed), "{refused}");
        }
        for other in [
            "#",
            "/tenants/+/assets/+/telemetry",
            "/tenants/acc2/assets/#",
            "+/+",
        ] {
            assert_eq!(sub(other), Err(Denied::OtherTenant), "{other}");
        }
        for malformed in [
            "",
            "/tenants/acc1/assets/#/x",
            "/tenants/acc1/assets/a+/telemetry",
        ] {
            assert_eq!(sub(malformed), Err(Denied::Malformed), "{malformed}");
        }
    }

    #[test]
    fn a_unit_subscribes_only_to_its_keys() {
        let sub = |filter| check_subscribe(Role::Unit, "u1", filter);
        assert_eq!(sub("/tenants/u1/keys"), Ok(Grant::Keys));
        assert_eq!(sub("/tenants/u1/#"), Err(Denied::NotAllowed));
        assert_eq!(sub("/tenants/u1/+"), Err(Denied::NotAllowed));
        assert_eq!(sub("/tenants/u1/keys/ack"), Err(Denied::NotAllowed));
        assert_eq!(sub("/tenants/u2/keys"), Err(Denied::OtherTenant));
        assert_eq!(sub("/tenants/+/keys"), Err(Denied::OtherTenant));
        assert_eq!(sub("$share/g/tenants/u1/keys"), Err(Denied::OtherTenant));
    }

    fn level() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("tenants".to_owned()),
            Just("u1".to_owned()),
            Just("u2".to_owned()),
            Just("acc1".to_owned()),
            Just("assets".to_owned()),
            Just("telemetry".to_owned()),
            Just("keys".to_owned()),
            Just("ack".to_owned()),
            Just("status".to_owned()),
            Just("events".to_owned()),
            Just("access".to_owned()),
            Just("+".to_owned()),
            Just("#".to_owned()),
            Just(String::new()),
            "[a-zA-Z0-9_+#-]{1,6}",
        ]
    }

    fn topic() -> impl Strategy<Value = String> {
        proptest::collection::vec(level(), 0..7).prop_map(|levels| {
            let joined = levels.join("/");
            if joined.starts_with("tenants") {
                format!("/{joined}")
            } else {
                joined
            }
        })
    }

    /// The topics a unit `u1` may publish, written out in full: the ACL must agree.
    const UNIT_TOPICS: [&str; 4] = [
        "/tenants/u1/telemetry",
        "/tenants/u1/status",
        "/tenants/u1/keys/ack",
        "/tenants/u1/events/access",
    ];

    proptest! {
        #[test]
        fn a_unit_publish_passes_only_on_the_listed_topics(topic in topic()) {
            let allowed = check_publish(Role::Unit, "u1", &topic).is_ok();
            prop_assert_eq!(allowed, UNIT_TOPICS.contains(&topic.as_str()));
        }

        #[test]
        fn an_allowed_filter_never_matches_a_topic_of_another_tenant(filter in topic(), other in topic()) {
            for (role, tenant) in [(Role::Unit, "u1"), (Role::Integration, "acc1")] {
                if check_subscribe(role, tenant, &filter).is_ok() && topic_name_ok(&other) && matches(&other, &filter) {
                    let mine = match role {
                        Role::Unit => other == "/tenants/u1/keys",
                        Role::Integration => {
                            let levels: Vec<&str> = other.split('/').collect();
                            levels.len() == 6
                                && levels[..4] == ["", "tenants", "acc1", "assets"]
                                && is_id_level(levels[4])
                                && levels[5] == "telemetry"
                        }
                    };
                    // A filter may also match malformed-but-harmless topics of its own
                    // shape (asset level with other characters); never another tenant's.
                    prop_assert!(mine || other.starts_with("/tenants/acc1/assets/"),
                        "{filter} matched {other}");
                }
            }
        }

        #[test]
        fn no_topic_or_filter_panics(text in ".{0,40}") {
            let _ = check_publish(Role::Unit, "u1", &text);
            let _ = check_subscribe(Role::Integration, "acc1", &text);
            let _ = matches(&text, &text);
        }
    }
}
