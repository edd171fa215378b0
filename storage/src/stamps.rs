//! The stamps the gateway gave a unit's unstamped QoS 1 and 2 points, by packet id, kept
//! in the store so that a redelivery (DUP) after a gateway restart gets its first stamp
//! again and is stored once (README "What a crash can lose"; MQTT 3.1.1 §4.3.2: a client
//! resends an unacknowledged PUBLISH with DUP set). Written in the group commit of the
//! point, or an earlier one, so it is durable before the point's PUBACK.
//!
//! A unit has [`SLOTS`] slots, by packet id modulo [`SLOTS`]: a redelivery is of a packet
//! still in flight, and a session holds at most 64 in flight, so a slot is overwritten only
//! by a packet long since acknowledged. Each slot keeps its packet id to tell them apart.

use redb::{ReadTransaction, WriteTransaction};

use crate::error::StoreError;
use crate::ids::DeviceId;
use crate::tables::UNIT_STAMPS;

/// Slots per unit (about 6 KiB of store at most).
pub const SLOTS: u16 = 256;

/// A stamp given: the unit, the packet id, a hash of the payload, the stamp (ms).
pub type Given = (DeviceId, u16, u64, u64);

/// Records `given` (each replaces the one in its slot).
///
/// # Errors
/// [`StoreError`] when redb fails.
pub fn record_all(tx: &WriteTransaction, given: &[Given]) -> Result<(), StoreError> {
    if given.is_empty() {
        return Ok(());
    }
    let mut table = tx.open_table(UNIT_STAMPS)?;
    for (device, packet_id, hash, ts) in given {
        table.insert(
            (device.as_str(), packet_id % SLOTS),
            (*packet_id, *hash, *ts),
        )?;
    }
    Ok(())
}

/// The stamps recorded for `device`, oldest first: (packet id, payload hash, stamp ms).
///
/// # Errors
/// [`StoreError`] when redb fails.
pub fn of_device(
    rtx: &ReadTransaction,
    device: &DeviceId,
) -> Result<Vec<(u16, u64, u64)>, StoreError> {
    let table = rtx.open_table(UNIT_STAMPS)?;
    let mut out = Vec::new();
    for row in table.range((device.as_str(), 0)..=(device.as_str(), SLOTS - 1))? {
        out.push(row?.1.value());
    }
    out.sort_by_key(|(_, _, ts)| *ts);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_keeps_the_newest_packet_and_units_are_apart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = crate::Store::open(&dir.path().join("db.redb")).expect("open");
        let (u1, u2) = (
            DeviceId::parse("u1").expect("id"),
            DeviceId::parse("u2").expect("id"),
        );
        let tx = store.begin_write().expect("write");
        let given = [
            (u1.clone(), 7, 70, 1_000),
            (u1.clone(), 7 + SLOTS, 71, 3_000),
            (u1.clone(), 8, 80, 2_000),
            (u2.clone(), 7, 90, 4_000),
        ];
        record_all(&tx, &given).expect("recorded");
        tx.commit().expect("commit");
        let rtx = store.begin_read().expect("read");
        assert_eq!(
            of_device(&rtx, &u1).expect("read"),
            vec![(8, 80, 2_000), (7 + SLOTS, 71, 3_000)]
        );
        assert_eq!(of_device(&rtx, &u2).expect("read"), vec![(7, 90, 4_000)]);
    }
}
