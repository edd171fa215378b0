//! The ingest bridge: reads the local link and hands each unit message to its
//! `DeviceActor`. It never decodes or stores anything itself.
//!
//! Two broker traps are handled here: after `Unschedule` the link must be woken or it
//! stalls for good, and `CursorJump` alerts (messages the broker skipped because this
//! reader fell behind) are counted in `/metrics`.

use std::sync::Arc;

use actors::device::{Channel, Inbound};
use actors::directory::Directory;
use actors::metrics::Metrics;
use bytes::Bytes;
use rumqttd::local::LinkRx;
use rumqttd::Notification;
use storage::DeviceId;

/// Splits `/tenants/{d}/{rest}` into a device id and the channel it names.
pub fn route(topic: &[u8]) -> Option<(DeviceId, Channel)> {
    let topic = std::str::from_utf8(topic).ok()?;
    let rest = topic.strip_prefix("/tenants/")?;
    let (device, channel) = rest.split_once('/')?;
    let channel = match channel {
        "telemetry" => Channel::Telemetry,
        "status" => Channel::Status,
        "keys/ack" => Channel::KeyAck,
        "events/access" => Channel::AccessEvent,
        _ => return None,
    };
    Some((DeviceId::parse(device).ok()?, channel))
}

pub async fn run(mut link_rx: LinkRx, directory: Arc<Directory>, metrics: Arc<Metrics>) {
    loop {
        match link_rx.next().await {
            Ok(Some(Notification::Forward(forward))) => dispatch(
                &directory,
                &metrics,
                &forward.publish.topic,
                forward.publish.payload,
            ),
            Ok(Some(Notification::Unschedule)) => {
                metrics.broker_unschedules.inc();
                if let Err(err) = link_rx.wake().await {
                    tracing::error!(%err, "cannot wake the local link; ingest stops");
                    return;
                }
            }
            Ok(Some(_)) | Ok(None) => {}
            Err(err) => {
                tracing::error!(%err, "local link closed; ingest stops");
                return;
            }
        }
    }
}

fn dispatch(directory: &Directory, metrics: &Metrics, topic: &[u8], payload: Bytes) {
    let Some((device_id, channel)) = route(topic) else {
        metrics.dropped("bad_topic");
        return;
    };
    match directory.device(&device_id) {
        Some(actor) => actor.do_send(Inbound { channel, payload }),
        None => metrics.dropped("unknown_device"),
    }
}

pub async fn count_alerts(alerts: rumqttd::alerts::AlertsLink, metrics: Arc<Metrics>) {
    while let Ok(batch) = alerts.next().await {
        for alert in batch {
            if alert.kind.name() == "cursor_jump" {
                metrics.broker_cursor_jumps.inc();
                tracing::warn!(client = %alert.client_id, "broker skipped messages for a slow reader");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_only_unit_topics() {
        let (device, channel) = route(b"/tenants/unit7/telemetry").expect("routed");
        assert_eq!(device.as_str(), "unit7");
        assert_eq!(channel, Channel::Telemetry);
        assert_eq!(
            route(b"/tenants/unit7/status").map(|r| r.1),
            Some(Channel::Status)
        );
        assert!(route(b"/tenants/acc1/assets/x/telemetry").is_none());
        assert_eq!(
            route(b"/tenants/unit7/keys/ack").map(|r| r.1),
            Some(Channel::KeyAck)
        );
        assert_eq!(
            route(b"/tenants/unit7/events/access").map(|r| r.1),
            Some(Channel::AccessEvent)
        );
        assert!(
            route(b"/tenants/unit7/keys").is_none(),
            "the gateway's own retained sets"
        );
        assert!(
            route(b"/tenants/unit-7/telemetry").is_none(),
            "not a device id"
        );
        assert!(route(b"/other/unit7/telemetry").is_none());
        assert!(route(&[0xff, 0xfe]).is_none());
    }
}
