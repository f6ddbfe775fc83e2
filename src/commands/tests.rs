//! The lifecycle rules, exercised through the commands that follow them: registration expiry
//! and sweeping, key exchanges, locks on the protocol clock, generic status codes, re-keying.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use super::dsapp_activate::DsappActivate;
use super::dsapp_activation_data::DsappActivationData;
use super::dsapp_register::{DsappRegister, DsappRegistered};
use super::srp_activation_data::SrpActivationData;
use super::srp_ephemeral_key::SrpEphemeralKey;
use super::srp_register::{SrpRegister, SrpRegistered};
use super::*;
use crate::crypto::{hash_password, random_bytes, MasterKey};
use crate::lifecycle::{Policy, MAX_LOCK_GROWTH};
use crate::protocol::{dsapp, srp};
use crate::store::{NewAuthenticator, RegistrationStatus, Store, StoreError};
use crate::types::HexValue;

struct Fixture {
    prov: Provisioning,
    clock: Arc<AtomicI64>,
    _dir: TempDir,
}

struct TempDir(std::path::PathBuf);
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn fixture(name: &str) -> Fixture {
    fixture_with(name, Policy::default())
}

fn fixture_with(name: &str, policy: Policy) -> Fixture {
    let dir = std::env::temp_dir().join(format!("provd-proto-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = Store::open(
        &dir.join("p.db").display().to_string(),
        MasterKey::generate(),
        2,
    )
    .unwrap();
    store
        .create_user(&crate::store::NewUser {
            user_id: UserId::parse("u").unwrap(),
            domain: Domain::master(),
            organizational_unit: None,
            email: None,
            password_hash: Some(hash_password("pw").unwrap()),
        })
        .unwrap();
    store
        .insert_authenticators(
            &[NewAuthenticator {
                serial_no: SerialNumber::parse("VDS0000001").unwrap(),
                auth_type: "t".into(),
                applications: "a".into(),
                key: random_bytes(32),
                license_limit: 1,
            }],
            &mut |_| {},
        )
        .unwrap();
    let clock = Arc::new(AtomicI64::new(crate::store::now()));
    let c = clock.clone();
    let prov = Provisioning::with_clock(store, policy, Arc::new(move || c.load(Ordering::SeqCst)));
    Fixture {
        prov,
        clock,
        _dir: TempDir(dir),
    }
}

fn register(f: &Fixture) -> SrpRegistered {
    SrpRegister {
        component_type: None,
        user_id: UserId::parse("u").unwrap(),
        domain: None,
        static_password: zeroize::Zeroizing::new("pw".into()),
        serial_no: None,
    }
    .handle(&f.prov)
    .unwrap()
}

fn client_public() -> HexValue {
    let s = srp::srp();
    let a = s.group.parse(&random_bytes(32)).unwrap();
    HexValue::from_bytes(s.group.pad(&s.client_public(&a)))
}

#[test]
fn an_expired_key_exchange_must_be_started_again() {
    let f = fixture("eph");
    let r = register(&f);
    SrpEphemeralKey {
        registration_id: r.registration_id.clone(),
        client_public: client_public(),
    }
    .handle(&f.prov)
    .unwrap();
    f.clock.fetch_add(
        Policy::default().ephemeral_lifetime_secs + 1,
        Ordering::SeqCst,
    );
    let e = SrpActivationData {
        registration_id: r.registration_id.clone(),
        client_evidence: HexValue::from_bytes(vec![0; 32]),
    }
    .handle(&f.prov)
    .unwrap_err();
    assert!(matches!(e, ProvisionError::NoKeyExchange(_)), "{e}");
    // Not counted as a failure: the registration is intact.
    let reg = f.prov.store().get_registration(&r.registration_id).unwrap();
    assert_eq!(reg.failures, 0);
    assert_eq!(reg.status, RegistrationStatus::Pending);
}

#[test]
fn an_expired_registration_is_refused_and_swept() {
    let f = fixture("reg");
    let r = register(&f);
    f.clock.fetch_add(
        Policy::default().registration_lifetime_secs + 1,
        Ordering::SeqCst,
    );
    let e = SrpEphemeralKey {
        registration_id: r.registration_id.clone(),
        client_public: client_public(),
    }
    .handle(&f.prov)
    .unwrap_err();
    assert!(matches!(e, ProvisionError::RegistrationExpired(_)), "{e}");
    assert_eq!(f.prov.sweep().unwrap(), 1);
    assert!(matches!(
        f.prov.store().get_registration(&r.registration_id),
        Err(StoreError::NotFound(_))
    ));
}

#[test]
fn an_activated_registration_is_kept_for_the_retention_period_then_swept() {
    let f = fixture("kept");
    let r = register(&f);
    let reg = f.prov.store().get_registration(&r.registration_id).unwrap();
    assert!(f.prov.store().mark_delivered(&r.registration_id).unwrap());
    let now = f.prov.now();
    assert!(f
        .prov
        .store()
        .activate_registration(&r.registration_id, &reg.serial_no, None, None, now)
        .unwrap()
        .is_some());
    let policy = Policy::default();
    f.clock
        .fetch_add(policy.registration_lifetime_secs + 1, Ordering::SeqCst);
    assert_eq!(f.prov.sweep().unwrap(), 0, "kept after its expiry");
    assert!(f.prov.store().get_registration(&r.registration_id).is_ok());
    f.clock
        .fetch_add(policy.registration_retention_secs, Ordering::SeqCst);
    assert_eq!(
        f.prov.sweep().unwrap(),
        1,
        "removed after the retention period"
    );
    assert!(matches!(
        f.prov.store().get_registration(&r.registration_id),
        Err(StoreError::NotFound(_))
    ));
}

#[test]
fn a_live_registration_survives_the_sweep() {
    let f = fixture("live");
    let r = register(&f);
    assert_eq!(f.prov.sweep().unwrap(), 0);
    assert!(f.prov.store().get_registration(&r.registration_id).is_ok());
}

#[test]
fn lock_duration_doubles_up_to_its_cap_and_zero_means_until_unlocked() {
    let p = Policy::default();
    assert_eq!(p.lock_duration(1), Some(900));
    assert_eq!(p.lock_duration(2), Some(1800));
    assert_eq!(p.lock_duration(7), Some(900 * MAX_LOCK_GROWTH));
    assert_eq!(p.lock_duration(50), Some(900 * MAX_LOCK_GROWTH));
    let forever = Policy {
        lock_duration_secs: 0,
        ..Policy::default()
    };
    assert_eq!(forever.lock_duration(1), None);
}

#[test]
fn a_lock_expires_on_the_protocol_clock() {
    let f = fixture("lock");
    let u = UserId::parse("u").unwrap();
    for _ in 0..5 {
        let e = f
            .prov
            .authenticate(&u, &Domain::master(), "nope")
            .unwrap_err();
        assert!(matches!(e, ProvisionError::WrongPassword), "{e}");
    }
    let e = f
        .prov
        .authenticate(&u, &Domain::master(), "pw")
        .unwrap_err();
    assert!(matches!(e, ProvisionError::UserLocked), "{e}");
    f.clock.fetch_add(900, Ordering::SeqCst);
    let user = f.prov.authenticate(&u, &Domain::master(), "pw").unwrap();
    assert_eq!(user.pk, f.prov.store().user_by_pk(user.pk).unwrap().pk);
    let after = f.prov.store().user_by_pk(user.pk).unwrap();
    assert!(!after.locked && after.lock_count == 0 && after.failure_count == 0);
}

#[test]
fn generic_codes_hide_the_reason_from_the_client_only() {
    let f = fixture_with(
        "generic",
        Policy {
            generic_status_codes: true,
            ..Policy::default()
        },
    );
    let call = |user: &str, pw: &str| {
        Call::SrpRegister(SrpRegister {
            component_type: None,
            user_id: UserId::parse(user).unwrap(),
            domain: None,
            static_password: zeroize::Zeroizing::new(pw.into()),
            serial_no: None,
        })
        .handle(&f.prov)
        .unwrap_err()
    };
    let unknown = call("nobody", "pw");
    let wrong = call("u", "nope");
    assert_eq!(unknown.to_string(), wrong.to_string());
    assert_eq!(
        unknown.audit_detail(),
        Some("unknown user nobody in domain master")
    );
    assert_eq!(wrong.audit_detail(), Some("wrong static password"));
}

#[test]
fn every_registration_prepares_its_own_key_and_activation_installs_it() {
    let f = fixture("rekey");
    let a = register(&f);
    let b = register(&f);
    let store = f.prov.store();
    let ra = store.get_registration(&a.registration_id).unwrap();
    let rb = store.get_registration(&b.registration_id).unwrap();
    let (ka, kb) = (
        store.registration_key(&ra).unwrap(),
        store.registration_key(&rb).unwrap(),
    );
    assert_ne!(ka, kb);
    assert_ne!(ka, store.authenticator_key(&ra.serial_no).unwrap());
    assert!(store.mark_delivered(&a.registration_id).unwrap());
    let user = store.user_by_pk(ra.user_pk).unwrap();
    f.prov.complete_activation(&ra, &user, Some(7)).unwrap();
    assert_eq!(store.authenticator_key(&ra.serial_no).unwrap(), ka);
    // The step that proved the key is spent; the next one is not.
    assert!(!store.accept_otp_step(&ra.serial_no, 7).unwrap());
    assert!(store.accept_otp_step(&ra.serial_no, 8).unwrap());
}

fn dsapp_exchange(
    f: &Fixture,
    r: &DsappRegistered,
) -> (dsapp::Session, Result<KeyExchanged, ProvisionError>) {
    let hello = dsapp::client_hello(r.registration_id.as_str(), &r.activation_password);
    let sid = hello.sid;
    let out = DsappActivationData {
        registration_id: r.registration_id.clone(),
        version: None,
        encrypted_client_key_nonce: HexValue::from_bytes(hello.key_nonce.to_vec()),
        client_iv: sid,
    }
    .handle(&f.prov);
    let session = match &out {
        Ok(k) => hello
            .finish(
                k.encrypted_server_public_key.as_bytes(),
                k.server_iv.as_bytes(),
                k.encrypted_nonces.as_bytes(),
            )
            .unwrap(),
        Err(_) => dsapp::Session::from_bytes(&[0; dsapp::SESSION_BYTES]).unwrap(),
    };
    (session, out)
}

fn dsapp_activate(
    f: &Fixture,
    r: &DsappRegistered,
    s: &dsapp::Session,
) -> Result<Activated, ProvisionError> {
    DsappActivate {
        registration_id: r.registration_id.clone(),
        encrypted_server_nonce: HexValue::from_bytes(s.client_tag().to_vec()),
        client_iv: *s.sid(),
        proof: ActivationProof::DerivationCode(s.derivation_code(&r.serial_no)),
    }
    .handle(&f.prov)
}

#[test]
fn a_dsapp_session_expires_a_new_exchange_replaces_it_and_the_password_is_dropped_when_spent() {
    let f = fixture("dsapp-expiry");
    let r = DsappRegister {
        credentials: Credentials {
            user_id: UserId::parse("u").unwrap(),
            domain: None,
            static_password: zeroize::Zeroizing::new("pw".into()),
        },
        version: dsapp::Version::V2,
        serial_no: None,
        delivery: None,
    }
    .handle(&f.prov)
    .unwrap();
    let (old, out) = dsapp_exchange(&f, &r);
    out.unwrap();
    f.clock.fetch_add(
        Policy::default().ephemeral_lifetime_secs + 1,
        Ordering::SeqCst,
    );
    assert!(matches!(
        dsapp_activate(&f, &r, &old).unwrap_err(),
        ProvisionError::NoKeyExchange(_)
    ));
    let (latest, out) = dsapp_exchange(&f, &r);
    out.unwrap();
    // The replaced session no longer activates (and counts as a failure).
    assert!(matches!(
        dsapp_activate(&f, &r, &old).unwrap_err(),
        ProvisionError::ProofFailed { failures: 1, .. }
    ));
    let reg = f.prov.store().get_registration(&r.registration_id).unwrap();
    assert!(reg.sealed_secret.is_some());
    dsapp_activate(&f, &r, &latest).unwrap();
    let reg = f.prov.store().get_registration(&r.registration_id).unwrap();
    assert_eq!(reg.status, RegistrationStatus::Activated);
    assert!(reg.sealed_secret.is_none() && reg.sealed_ephemeral.is_none());
}
