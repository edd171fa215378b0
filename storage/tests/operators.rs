//! Operators against a real redb file, and the pure field checks behind them: E.164 phones
//! through libphonenumber's metadata, the refusal of deleting an operator that still holds
//! personal keys (409 naming how many), and the outbox invitations that are written in the
//! operator's own transaction and leave only once sent.

use storage::keys::AccessType;
use storage::model::{Principal, Role};
use storage::operators::{self, FieldError, NewOperator, OperatorEdit, OperatorInput};
use storage::tables::KEYS_BY_OPERATOR;
use storage::time::Timestamp;
use storage::{ops, read, AccountId, OpError, Rule, Store};

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    admin: Principal,
    viewer: Principal,
    stranger: Principal,
    account: AccountId,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("db.redb")).expect("open");
    let token = store
        .bootstrap(Timestamp(1))
        .expect("bootstrap")
        .expect("fresh store");
    let rtx = store.begin_read().expect("read");
    let platform = read::principal_for_token(&rtx, &token)
        .expect("lookup")
        .expect("admin");
    drop(rtx);
    let tx = store.begin_write().expect("write");
    let account = ops::create_account(&tx, &platform, "Acme", None, Timestamp(2)).expect("account");
    let other = ops::create_account(&tx, &platform, "Other", None, Timestamp(2)).expect("account");
    let user = |account: &AccountId, role| {
        ops::create_user(&tx, &platform, account, "u", role, Timestamp(3))
            .expect("user")
            .0
    };
    let admin = user(&account.id, Role::Admin);
    let viewer = user(&account.id, Role::Viewer);
    let stranger = user(&other.id, Role::Admin);
    tx.commit().expect("commit");
    Fixture {
        _dir: dir,
        store,
        admin,
        viewer,
        stranger,
        account: account.id,
    }
}

fn input(name: &str, phone: Option<&str>) -> OperatorInput {
    OperatorInput {
        name: name.into(),
        phone: phone.map(Into::into),
        access_type: None,
        send_sms_invite: false,
    }
}

fn fields(errors: &[FieldError]) -> Vec<&'static str> {
    errors.iter().map(|err| err.field).collect()
}

#[test]
fn phones_are_valid_e164_and_stored_normalized() {
    let ok = |raw| operators::check_phone(Some(raw)).expect("valid");
    assert_eq!(ok("+4791234567"), Some("+4791234567".into()));
    assert_eq!(ok(" +47 912 34 567 "), Some("+4791234567".into()));
    assert_eq!(ok("+44 7400 123456"), Some("+447400123456".into()));
    assert_eq!(ok("+1 (201) 555-0123"), Some("+12015550123".into()));
    assert_eq!(operators::check_phone(None), Ok(None));
    assert_eq!(
        operators::check_phone(Some("  ")),
        Ok(None),
        "blank is no phone"
    );
    for bad in [
        "+47 12",
        "91234567",
        "+999 1234567",
        "phone",
        "+4791234567 ext. 5",
        "+47912345678901234567890",
    ] {
        let err = operators::check_phone(Some(bad)).expect_err(bad);
        assert_eq!(err.field, "phone");
        assert!(
            err.message.contains("is not a valid E.164 number"),
            "{}",
            err.message
        );
    }
    let err = operators::check_phone(Some("+47 12")).expect_err("short");
    assert!(
        err.message.starts_with("\"+47 12\" is not"),
        "{}",
        err.message
    );
}

#[test]
fn check_reports_every_refused_field_in_column_order() {
    let errors = operators::check(&OperatorInput {
        name: " ".into(),
        phone: Some("+47 12".into()),
        access_type: Some("pin".into()),
        send_sms_invite: true,
    })
    .expect_err("refused");
    assert_eq!(fields(&errors), ["name", "phone", "access_type"]);
    assert!(errors[2]
        .message
        .contains("digital_key, keypad_pin, dualid_tag"));

    let errors = operators::check(&OperatorInput {
        send_sms_invite: true,
        ..input("Ann", None)
    })
    .expect_err("no phone to invite");
    assert_eq!(fields(&errors), ["phone"]);
    assert!(errors[0].message.contains("SMS invitation"));

    let checked = operators::check(&OperatorInput {
        access_type: Some(" Keypad_PIN ".into()),
        ..input("  Ann Lee ", Some("+4791234567"))
    })
    .expect("valid");
    assert_eq!(
        checked,
        NewOperator {
            name: "Ann Lee".into(),
            phone: Some("+4791234567".into()),
            access_type: Some(AccessType::KeypadPin),
            send_sms_invite: false,
        }
    );
    assert!(operators::check(&input(&"x".repeat(201), None)).is_err());
}

fn create(f: &Fixture, new: OperatorInput) -> Result<operators::Operator, OpError> {
    let checked = operators::check(&new).map_err(|mut errors| OpError::from(errors.remove(0)))?;
    let tx = f.store.begin_write().expect("write");
    let created = operators::create(&tx, &f.admin, &f.account, checked, Timestamp(10))?;
    tx.commit().expect("commit");
    Ok(created)
}

#[test]
fn roles_decide_who_creates_and_strangers_see_nothing() {
    let f = fixture();
    let checked = operators::check(&input("Ann", None)).expect("valid");
    let tx = f.store.begin_write().expect("write");
    assert!(matches!(
        operators::create(&tx, &f.viewer, &f.account, checked.clone(), Timestamp(10)),
        Err(OpError::Forbidden(Rule::ManageFleet { role: Role::Viewer }))
    ));
    assert!(matches!(
        operators::create(&tx, &f.stranger, &f.account, checked, Timestamp(10)),
        Err(OpError::NotFound(_))
    ));
    drop(tx);
    let created = create(&f, input("Ann", None)).expect("created");
    assert!(created.id.as_str().starts_with("opr"));
    let rtx = f.store.begin_read().expect("read");
    // Viewers do not read operators: they carry personal data (DESIGN 5.1).
    assert!(matches!(
        operators::get_operator(&rtx, &f.viewer, &created.id),
        Err(OpError::Forbidden(Rule::ReadAccessData {
            role: Role::Viewer
        }))
    ));
    assert!(matches!(
        operators::get_operator(&rtx, &f.stranger, &created.id),
        Err(OpError::NotFound(_))
    ));
    let page = operators::list(&rtx, &f.admin, &f.account, None, (None, 10)).expect("list");
    assert_eq!(page.items, vec![created]);
}

#[test]
fn deleting_an_operator_with_personal_keys_is_refused_naming_how_many() {
    let f = fixture();
    let operator = create(&f, input("Ann", None)).expect("created");
    let tx = f.store.begin_write().expect("write");
    {
        let mut index = tx.open_table(KEYS_BY_OPERATOR).expect("table");
        for key in ["key1", "key2"] {
            index.insert((operator.id.as_str(), key), ()).expect("row");
        }
        // Another operator's key right after this one's range must not be counted.
        index
            .insert((format!("{}0", operator.id).as_str(), "key3"), ())
            .expect("row");
    }
    tx.commit().expect("commit");

    let tx = f.store.begin_write().expect("write");
    match operators::delete(&tx, &f.admin, &operator.id, Timestamp(20)) {
        Err(OpError::Conflict(detail)) => assert!(detail.contains("2 personal keys"), "{detail}"),
        other => panic!("expected 409, got {other:?}"),
    }
    drop(tx);

    let tx = f.store.begin_write().expect("write");
    {
        let mut index = tx.open_table(KEYS_BY_OPERATOR).expect("table");
        for key in ["key1", "key2"] {
            index.remove((operator.id.as_str(), key)).expect("row");
        }
    }
    operators::delete(&tx, &f.admin, &operator.id, Timestamp(20)).expect("deleted once keyless");
    tx.commit().expect("commit");
    let rtx = f.store.begin_read().expect("read");
    assert!(matches!(
        operators::get_operator(&rtx, &f.admin, &operator.id),
        Err(OpError::NotFound(_))
    ));
}

#[test]
fn an_invitation_is_queued_with_its_operator_and_leaves_only_once_sent() {
    let f = fixture();
    let invited = create(
        &f,
        OperatorInput {
            send_sms_invite: true,
            ..input("Ann", Some("+47 912 34 567"))
        },
    )
    .expect("created");
    assert_eq!(invited.invitation.map(|i| i.sent_at), Some(None));
    let rtx = f.store.begin_read().expect("read");
    let due = operators::due_invitations(&rtx, Timestamp(10), 10).expect("due");
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].phone, "+4791234567");
    assert_eq!(due[0].operator_id, invited.id);
    assert!(
        due[0].text.contains("Ann") && due[0].text.contains("Acme"),
        "{}",
        due[0].text
    );
    drop(rtx);

    let tx = f.store.begin_write().expect("write");
    let failed = operators::invitation_failed(&tx, due[0].seq, Timestamp(500)).expect("noted");
    assert_eq!(failed.map(|i| i.attempts), Some(1));
    tx.commit().expect("commit");
    let rtx = f.store.begin_read().expect("read");
    assert!(operators::due_invitations(&rtx, Timestamp(499), 10)
        .expect("due")
        .is_empty());
    assert_eq!(
        operators::next_invitation_at(&rtx).expect("next"),
        Some(Timestamp(500))
    );
    drop(rtx);

    let tx = f.store.begin_write().expect("write");
    operators::invitation_sent(&tx, due[0].seq, Timestamp(600)).expect("sent");
    tx.commit().expect("commit");
    let rtx = f.store.begin_read().expect("read");
    assert_eq!(operators::next_invitation_at(&rtx).expect("next"), None);
    let shown = operators::get_operator(&rtx, &f.admin, &invited.id).expect("read");
    assert_eq!(
        shown.invitation.and_then(|i| i.sent_at),
        Some(Timestamp(600))
    );
}

#[test]
fn pending_invitations_follow_the_phone_and_go_with_the_operator() {
    let f = fixture();
    let invite = |name| OperatorInput {
        send_sms_invite: true,
        ..input(name, Some("+4791234567"))
    };
    let ann = create(&f, invite("Ann")).expect("created");
    let bob = create(&f, invite("Bob")).expect("created");
    let tx = f.store.begin_write().expect("write");
    let edit = OperatorEdit::check(None, Some(Some("+4792345678")), None).expect("valid");
    operators::update(&tx, &f.admin, &ann.id, edit, Timestamp(11)).expect("updated");
    operators::delete(&tx, &f.admin, &bob.id, Timestamp(11)).expect("deleted");
    tx.commit().expect("commit");
    let rtx = f.store.begin_read().expect("read");
    let due = operators::due_invitations(&rtx, Timestamp(20), 10).expect("due");
    assert_eq!(due.len(), 1, "Bob's invitation went with him");
    assert_eq!(
        (&due[0].operator_id, due[0].phone.as_str()),
        (&ann.id, "+4792345678")
    );
    drop(rtx);

    let tx = f.store.begin_write().expect("write");
    let edit = OperatorEdit::check(None, Some(None), None).expect("valid");
    let cleared = operators::update(&tx, &f.admin, &ann.id, edit, Timestamp(12)).expect("updated");
    tx.commit().expect("commit");
    assert_eq!((cleared.phone, cleared.invitation), (None, None));
    let rtx = f.store.begin_read().expect("read");
    assert!(operators::due_invitations(&rtx, Timestamp(20), 10)
        .expect("due")
        .is_empty());
}

#[test]
fn edits_are_checked_and_refused_edits_change_nothing() {
    let f = fixture();
    let ann = create(&f, input("Ann", Some("+4791234567"))).expect("created");
    assert_eq!(
        OperatorEdit::check(Some(""), None, None).map_err(|e| e.field),
        Err("name")
    );
    assert_eq!(
        OperatorEdit::check(None, Some(Some("12")), None).map_err(|e| e.field),
        Err("phone")
    );
    let tx = f.store.begin_write().expect("write");
    let edit = OperatorEdit::check(Some("Ann B"), None, Some(Some("dualid_tag"))).expect("valid");
    assert!(matches!(
        operators::update(&tx, &f.viewer, &ann.id, edit.clone(), Timestamp(11)),
        Err(OpError::Forbidden(Rule::ManageFleet { role: Role::Viewer }))
    ));
    let updated = operators::update(&tx, &f.admin, &ann.id, edit, Timestamp(11)).expect("ok");
    tx.commit().expect("commit");
    assert_eq!(updated.name, "Ann B");
    assert_eq!(updated.access_type, Some(AccessType::DualidTag));
    assert_eq!(updated.phone.as_deref(), Some("+4791234567"), "untouched");
}
