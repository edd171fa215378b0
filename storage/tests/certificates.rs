//! Issued certificates against a real redb file: revoking a tenant's certificates marks
//! exactly that tenant's, once; the deny list holds revoked certificates until they expire;
//! a tenant's certificates are listed from its index.

use storage::certificates;
use storage::model::{CertificateKind, CertificateRecord};
use storage::time::Timestamp;
use storage::Store;

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("db.redb")).expect("open");
    (dir, store)
}

fn cert(serial: &str, tenant: &str, not_after: u64) -> CertificateRecord {
    CertificateRecord {
        serial: serial.into(),
        tenant: tenant.into(),
        kind: CertificateKind::Unit,
        subject: format!("O={tenant}, CN={tenant}"),
        issuer: "CN=Fleetgate device CA, O=Fleetgate".into(),
        not_after: Timestamp(not_after),
        issued_at: Timestamp(10),
        revoked_at: None,
    }
}

/// Two certificates of `unit1` (expiring at 1 000 and 2 000) and one of `unit10`, a tenant
/// whose id has `unit1` as a prefix.
fn recorded() -> (tempfile::TempDir, Store) {
    let (dir, store) = store();
    let tx = store.begin_write().expect("write");
    for record in [
        cert("0b", "unit1", 2_000),
        cert("0a", "unit1", 1_000),
        cert("0c", "unit10", 5_000),
    ] {
        certificates::record(&tx, &record).expect("record");
    }
    tx.commit().expect("commit");
    (dir, store)
}

fn revoke(store: &Store, tenant: &str, now: u64) -> Vec<String> {
    let tx = store.begin_write().expect("write");
    let revoked = certificates::revoke_of_tenant(&tx, tenant, Timestamp(now)).expect("revoke");
    tx.commit().expect("commit");
    revoked
}

fn deny_list(store: &Store, now: u64) -> Vec<String> {
    let rtx = store.begin_read().expect("read");
    certificates::revoked_serials(&rtx, Timestamp(now)).expect("revoked serials")
}

#[test]
fn revoking_a_tenant_marks_exactly_its_certificates_once() {
    let (_dir, store) = recorded();
    assert_eq!(revoke(&store, "unit1", 100), ["0a", "0b"]);
    assert!(revoke(&store, "unit1", 200).is_empty(), "already revoked");
    let rtx = store.begin_read().expect("read");
    let mine = certificates::of_tenant(&rtx, "unit1").expect("of tenant");
    assert_eq!(mine.len(), 2);
    assert!(
        mine.iter().all(|c| c.revoked_at == Some(Timestamp(100))),
        "the first revocation instant stays"
    );
    let other = certificates::of_tenant(&rtx, "unit10").expect("of tenant");
    assert_eq!(other, [cert("0c", "unit10", 5_000)], "untouched");
}

#[test]
fn the_deny_list_holds_revoked_certificates_until_they_expire() {
    let (_dir, store) = recorded();
    assert!(deny_list(&store, 50).is_empty(), "nothing revoked yet");
    revoke(&store, "unit1", 100);
    assert_eq!(deny_list(&store, 100), ["0a", "0b"]);
    assert_eq!(
        deny_list(&store, 1_000),
        ["0a", "0b"],
        "valid through not_after"
    );
    assert_eq!(deny_list(&store, 1_001), ["0b"]);
    assert!(deny_list(&store, 2_001).is_empty());
}

#[test]
fn of_tenant_lists_by_tenant_and_survives_a_reopen() {
    let (dir, store) = recorded();
    drop(store);
    let store = Store::open(&dir.path().join("db.redb")).expect("reopen");
    let rtx = store.begin_read().expect("read");
    let serials = |tenant| {
        certificates::of_tenant(&rtx, tenant)
            .expect("of tenant")
            .into_iter()
            .map(|c| c.serial)
            .collect::<Vec<_>>()
    };
    assert_eq!(serials("unit1"), ["0a", "0b"]);
    assert_eq!(serials("unit10"), ["0c"]);
    assert!(serials("unit").is_empty());
    assert!(serials("unknown").is_empty());
}
