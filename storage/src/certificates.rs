//! The client certificates the gateway CA issued (units and integrations), and their
//! revocation.
//!
//! Each issued certificate is recorded in the same transaction as the operation it belongs
//! to (a registration, an integration certificate), so the store never holds a certificate
//! for a refused operation nor misses one that was handed out. Revoking marks records; it
//! never deletes them. What the transport must refuse at the handshake is
//! [`revoked_serials`]: revoked and not yet expired (an expired certificate is refused
//! anyway).

use redb::{ReadTransaction, ReadableTable, WriteTransaction};

use crate::error::StoreError;
use crate::model::CertificateRecord;
use crate::store::{decode_as, get, put, rows_where};
use crate::tables::*;
use crate::time::Timestamp;

/// Records an issued certificate under its serial and indexes it by its tenant.
///
/// A record with the same serial is replaced (serials are 127 random bits, so that means a
/// caller recorded the same certificate twice).
///
/// # Errors
/// [`StoreError`] when redb fails.
pub fn record(tx: &WriteTransaction, cert: &CertificateRecord) -> Result<(), StoreError> {
    put(&mut tx.open_table(CERTIFICATES)?, &cert.serial, cert)?;
    tx.open_table(CERTIFICATES_BY_TENANT)?
        .insert((cert.tenant.as_str(), cert.serial.as_str()), ())?;
    Ok(())
}

/// Marks every not-yet-revoked certificate of `tenant` (a device id or an account id)
/// revoked at `now` and returns their serials in serial order; certificates revoked
/// earlier keep their first revocation instant and are not returned, so a second call
/// returns nothing.
///
/// # Errors
/// [`StoreError`] when redb fails or a record does not decode.
pub fn revoke_of_tenant(
    tx: &WriteTransaction,
    tenant: &str,
    now: Timestamp,
) -> Result<Vec<String>, StoreError> {
    revoke_where(tx, tenant, now, |_| true)
}

/// Marks the not-yet-revoked certificates of `tenant` that `pick` accepts revoked at
/// `now`; returns their serials in serial order.
fn revoke_where(
    tx: &WriteTransaction,
    tenant: &str,
    now: Timestamp,
    pick: impl Fn(&CertificateRecord) -> bool,
) -> Result<Vec<String>, StoreError> {
    let serials = serials_of(&tx.open_table(CERTIFICATES_BY_TENANT)?, tenant)?;
    let mut certificates = tx.open_table(CERTIFICATES)?;
    let mut revoked = Vec::new();
    for serial in serials {
        let Some(mut cert) = get::<CertificateRecord>(&certificates, "certificates", &serial)?
        else {
            continue;
        };
        if cert.revoked_at.is_some() || !pick(&cert) {
            continue;
        }
        cert.revoked_at = Some(now);
        put(&mut certificates, &serial, &cert)?;
        revoked.push(serial);
    }
    Ok(revoked)
}

/// The serials of every certificate revoked and still within its validity at `now`
/// (`now <= not_after`), in serial order: what the handshake deny list must hold when the
/// transport starts. Reads the whole `certificates` table once.
///
/// # Errors
/// [`StoreError`] when redb fails or a record does not decode.
pub fn revoked_serials(rtx: &ReadTransaction, now: Timestamp) -> Result<Vec<String>, StoreError> {
    let revoked = rows_where(
        &rtx.open_table(CERTIFICATES)?,
        "certificates",
        |cert: &CertificateRecord| cert.revoked_at.is_some() && now <= cert.not_after,
    )?;
    Ok(revoked.into_iter().map(|cert| cert.serial).collect())
}

/// Every certificate issued to `tenant` (a device id or an account id), revoked or not,
/// in serial order.
///
/// # Errors
/// [`StoreError`] when redb fails or a record does not decode.
pub fn of_tenant(
    rtx: &ReadTransaction,
    tenant: &str,
) -> Result<Vec<CertificateRecord>, StoreError> {
    let serials = serials_of(&rtx.open_table(CERTIFICATES_BY_TENANT)?, tenant)?;
    let certificates = rtx.open_table(CERTIFICATES)?;
    let mut out = Vec::with_capacity(serials.len());
    for serial in serials {
        if let Some(cert) = get(&certificates, "certificates", &serial)? {
            out.push(cert);
        }
    }
    Ok(out)
}

/// The serials the tenant index holds for `tenant`, in serial order.
fn serials_of(
    index: &impl ReadableTable<(&'static str, &'static str), ()>,
    tenant: &str,
) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    for row in index.range((tenant, "")..)? {
        let (key, _) = row?;
        let (owner, serial) = key.value();
        if owner != tenant {
            break;
        }
        out.push(serial.to_owned());
    }
    Ok(out)
}

/// The account's certificates as its admin sees them: its integration certificates and
/// those of its units (registered or deregistered), revoked or not, in serial order.
///
/// # Errors
/// 404 for a caller who cannot see the account, 403 for one who does not administer it.
pub fn of_account(
    rtx: &ReadTransaction,
    caller: &crate::model::Principal,
    account: &crate::ids::AccountId,
) -> Result<Vec<CertificateRecord>, crate::OpError> {
    crate::read::administers(&rtx.open_table(ACCOUNTS)?, caller, account)?;
    let mut out = of_tenant(rtx, account.as_str())?;
    for row in rtx.open_table(DEVICES)?.iter()? {
        let device: crate::model::Device = decode_as("devices", row?.1.value())?;
        if &device.account_id == account {
            out.extend(of_tenant(rtx, device.id.as_str())?);
        }
    }
    out.sort_by(|a, b| a.serial.cmp(&b.serial));
    Ok(out)
}

/// Revokes one certificate of the account (an integration's, or one of its units') and
/// audits it; returns the record, and whether this call revoked it (a second revoke
/// changes nothing). The caller then refuses the serial at the handshake and closes the
/// sessions presented with it (the transport's deny list).
///
/// # Errors
/// 404 when the serial is not one of the account's (or the account is not the caller's
/// to see), 403 for a caller who does not administer it.
pub fn revoke_one(
    tx: &WriteTransaction,
    caller: &crate::model::Principal,
    account: &crate::ids::AccountId,
    serial: &str,
    now: Timestamp,
) -> Result<(CertificateRecord, bool), crate::OpError> {
    crate::read::administers(&tx.open_table(ACCOUNTS)?, caller, account)?;
    let missing = || crate::OpError::not_found(format!("certificate {serial}"));
    let mut certificates = tx.open_table(CERTIFICATES)?;
    let mut cert: CertificateRecord =
        get(&certificates, "certificates", serial)?.ok_or_else(missing)?;
    let owned = cert.tenant == account.as_str()
        || get::<crate::model::Device>(&tx.open_table(DEVICES)?, "devices", &cert.tenant)?
            .is_some_and(|device| &device.account_id == account);
    if !owned {
        return Err(missing());
    }
    if cert.revoked_at.is_some() {
        return Ok((cert, false));
    }
    cert.revoked_at = Some(now);
    put(&mut certificates, serial, &cert)?;
    drop(certificates);
    crate::ops::audit(
        tx,
        crate::ops::Who::Principal(caller),
        crate::ops::AuditNote {
            account_id: Some(account),
            action: "certificate.revoke",
            target: serial.to_owned(),
            before: Some(cert.subject.clone()),
            after: Some("revoked".into()),
        },
        now,
    )?;
    Ok((cert, true))
}

/// Records a fresh certificate the CA issued for a registered unit (after a revoke, or to
/// rotate its key), audited as `device.certificate`. The unit's other certificates stay as
/// they are: revoking is its own action. Returns the unit.
///
/// # Errors
/// 404 for an unknown or deregistered unit (or one the caller cannot see), 403 for a caller
/// who may not manage the unit's fleet (rule 1); 422 when `cert` is not a unit certificate
/// for this unit (a caller's mistake, never handed out).
pub fn issue_for_unit(
    tx: &WriteTransaction,
    caller: &crate::model::Principal,
    id: &crate::ids::DeviceId,
    cert: &CertificateRecord,
    now: Timestamp,
) -> Result<crate::model::Device, crate::OpError> {
    let device = crate::ops::device_to_change(tx, caller, id)?;
    // Rule 4: the key that comes with it would let staff speak as the unit after their
    // support access ends.
    crate::policy::refuse_lasting_access(caller, "a unit certificate")?;
    if cert.tenant != id.as_str() || cert.kind != crate::model::CertificateKind::Unit {
        return Err(crate::OpError::invalid(
            "certificate",
            "not a unit certificate for this unit",
        ));
    }
    record(tx, cert)?;
    let change = (None, Some(format!("serial {}", cert.serial)));
    let action = (&device.account_id, "device.certificate");
    crate::ops::audit_by(tx, caller, action, id.to_string(), change, now)?;
    Ok(device)
}

/// What a revocation by subject did: from now on every certificate of `tenant` issued
/// before `issued_before` is refused; `recorded` lists the recorded ones it newly marked
/// revoked (unrecorded ones are refused by the rule alone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectRevocation {
    pub tenant: String,
    pub issued_before: Timestamp,
    pub recorded: Vec<String>,
}

/// Revokes every certificate of `tenant` (a device of `account`, or `account` itself for
/// its integrations) issued before `issued_before`, recorded or not: certificates issued
/// before the CA recorded them have no serial to revoke, so the rule goes by subject and
/// issue instant. The rule only moves later (an earlier instant than one in force changes
/// nothing). Audited as `certificate.revoke_issued_before`.
///
/// # Errors
/// - [`crate::OpError::NotFound`]: the caller does not administer `account`, or `tenant`
///   is neither the account nor one of its devices.
/// - [`crate::OpError::Invalid`] on `issued_before`: later than `now` (it would also
///   revoke certificates not issued yet).
pub fn revoke_issued_before(
    tx: &WriteTransaction,
    caller: &crate::model::Principal,
    account: &crate::ids::AccountId,
    tenant: &str,
    issued_before: Timestamp,
    now: Timestamp,
) -> Result<SubjectRevocation, crate::OpError> {
    crate::read::administers(&tx.open_table(ACCOUNTS)?, caller, account)?;
    let owned = tenant == account.as_str()
        || get::<crate::model::Device>(&tx.open_table(DEVICES)?, "devices", tenant)?
            .is_some_and(|device| &device.account_id == account);
    if !owned {
        return Err(crate::OpError::not_found(format!("subject {tenant}")));
    }
    if issued_before > now {
        return Err(crate::OpError::invalid(
            "issued_before",
            "must not be later than now (it would revoke certificates not issued yet)",
        ));
    }
    let mut rules = tx.open_table(REVOKED_BEFORE)?;
    let in_force = rules.get(tenant)?.map(|at| Timestamp(at.value()));
    let effective = in_force.map_or(issued_before, |at| at.max(issued_before));
    rules.insert(tenant, effective.0)?;
    drop(rules);
    let recorded = revoke_where(tx, tenant, now, |cert| cert.issued_at < effective)?;
    crate::ops::audit(
        tx,
        crate::ops::Who::Principal(caller),
        crate::ops::AuditNote {
            account_id: Some(account),
            action: "certificate.revoke_issued_before",
            target: tenant.to_owned(),
            before: None,
            after: Some(format!("issued before {}", effective.to_rfc3339())),
        },
        now,
    )?;
    Ok(SubjectRevocation {
        tenant: tenant.to_owned(),
        issued_before: effective,
        recorded,
    })
}

/// Every revocation by subject in force: (tenant, issued before). What the handshake deny
/// list must hold when the transport starts, next to [`revoked_serials`].
///
/// # Errors
/// [`StoreError`] when redb fails.
pub fn revoked_subjects(rtx: &ReadTransaction) -> Result<Vec<(String, Timestamp)>, StoreError> {
    let mut out = Vec::new();
    for row in rtx.open_table(REVOKED_BEFORE)?.iter()? {
        let (tenant, at) = row?;
        out.push((tenant.value().to_owned(), Timestamp(at.value())));
    }
    Ok(out)
}
