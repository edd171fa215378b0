//! The MQTT topic names of the contract (DESIGN.md section 4), spelled once.
//!
//! Every topic sits under `/tenants/{id}/` because the broker confines a TLS connection to
//! the tenant named in its certificate; a typo here would look like an isolation failure.

use std::fmt::Display;

/// Unit → gateway telemetry.
pub fn telemetry(device_id: impl Display) -> String {
    format!("/tenants/{device_id}/telemetry")
}

/// Unit → gateway retained `online` / `offline` (the last will).
pub fn status(device_id: impl Display) -> String {
    format!("/tenants/{device_id}/status")
}

/// Gateway → unit retained key set.
pub fn keys(device_id: impl Display) -> String {
    format!("/tenants/{device_id}/keys")
}

/// Unit → gateway `{version}` acknowledgement of a key set.
pub fn keys_ack(device_id: impl Display) -> String {
    format!("/tenants/{device_id}/keys/ack")
}

/// Unit → gateway access attempts.
pub fn access_events(device_id: impl Display) -> String {
    format!("/tenants/{device_id}/events/access")
}

/// Gateway → account integrations: the points of one asset as that account sees it.
pub fn account_asset_telemetry(account_id: impl Display, asset_id: impl Display) -> String {
    format!("/tenants/{account_id}/assets/{asset_id}/telemetry")
}

/// Filter for every asset's points of one account.
pub fn account_all_telemetry(account_id: impl Display) -> String {
    format!("/tenants/{account_id}/assets/+/telemetry")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_follow_the_contract() {
        assert_eq!(telemetry("d1"), "/tenants/d1/telemetry");
        assert_eq!(status("d1"), "/tenants/d1/status");
        assert_eq!(keys_ack("d1"), "/tenants/d1/keys/ack");
        assert_eq!(
            account_asset_telemetry("a1", "x-1"),
            "/tenants/a1/assets/x-1/telemetry"
        );
    }
}
