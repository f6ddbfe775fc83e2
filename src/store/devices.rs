use diesel::prelude::*;
use serde::Serialize;

use zeroize::Zeroizing;

use super::authenticators::prepare;
use super::registrations::insert_registration;
use super::schema::device_instances;
use super::text_enum::{text_enum_sql, TextEnum};
use super::{NewRegistration, OutgoingMail, RegistrationStatus, Store, StoreError};
use crate::types::{RegistrationId, SerialNumber};

/// One device instance of a multi-device license.
#[derive(Debug, Clone, Serialize, Queryable, Selectable)]
#[diesel(table_name = device_instances)]
pub struct DeviceInstance {
    #[serde(skip)]
    pub id: i64,
    pub serial_no: String,
    pub sequence_no: i32,
    pub device_type: i32,
    pub device_id: Option<String>,
    pub description: Option<String>,
    pub status: InstanceStatus,
    pub created_at: i64,
    pub activated_at: Option<i64>,
}

impl Store {
    pub fn list_device_instances(&self, serial: &str) -> Result<Vec<DeviceInstance>, StoreError> {
        let mut conn = self.conn()?;
        Ok(device_instances::table
            .filter(device_instances::serial_no.eq(serial))
            .order(device_instances::sequence_no)
            .select(DeviceInstance::as_select())
            .load(&mut conn)?)
    }
}

/// An Activation Message 1 issued by `PROVISIONCMD_MDL_REGISTER`: the license it is for and
/// the registration that carries its challenge.
pub struct MdlLicense {
    pub serial_no: SerialNumber,
    pub license_key: Zeroizing<Vec<u8>>,
    pub license_limit: i32,
}

/// A device instance to add under a license (`PROVISIONCMD_MDL_ADD_DEVICE`).
pub struct NewInstance {
    pub registration_id: RegistrationId,
    pub serial_no: SerialNumber,
    pub device_type: i32,
    pub device_id: String,
    pub description: Option<String>,
    pub instance_key: Zeroizing<Vec<u8>>,
    pub am2_nonce: Vec<u8>,
}

/// What adding an instance did.
pub enum Added {
    /// The instance, pending its confirmation, with its sequence number.
    Sequence(i32),
    /// The license has `limit` instances already.
    LicenseExhausted { limit: i32 },
    /// That device already holds an instance of this license.
    DeviceExists,
    /// The registration is no longer pending.
    NotPending,
}

/// A pending instance with its unsealed key, for its confirmation.
pub struct PendingInstance {
    pub sequence_no: i32,
    pub device_id: String,
    pub instance_key: Zeroizing<Vec<u8>>,
    pub am2_nonce: Vec<u8>,
}

/// A new row of `device_instances`.
#[derive(Insertable)]
#[diesel(table_name = device_instances, treat_none_as_default_value = false)]
struct InstanceInsert<'a> {
    serial_no: &'a str,
    sequence_no: i32,
    device_type: i32,
    device_id: Option<&'a str>,
    description: Option<&'a str>,
    status: InstanceStatus,
    created_at: i64,
    registration_id: Option<&'a str>,
    sealed_instance_key: Option<Vec<u8>>,
    am2_nonce: Option<&'a [u8]>,
}

/// serial, sequence, device id, sealed key, AM2 nonce.
type InstanceRow = (
    String,
    i32,
    Option<String>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
);

/// The status of a device instance (`device_instances.status`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, diesel::AsExpression, diesel::FromSqlRow,
)]
#[diesel(sql_type = diesel::sql_types::Text)]
#[serde(rename_all = "lowercase")]
pub enum InstanceStatus {
    /// Added by `PROVISIONCMD_MDL_ADD_DEVICE`, waiting for its confirmation.
    Pending,
    Active,
    /// Its registration was revoked or expired; its sequence number is free again.
    Revoked,
}

impl InstanceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Revoked => "revoked",
        }
    }
}

impl TextEnum for InstanceStatus {
    const COLUMN: &'static str = "device_instances.status";
    const VARIANTS: &'static [Self] = &[Self::Pending, Self::Active, Self::Revoked];
    fn text(self) -> &'static str {
        self.as_str()
    }
}
text_enum_sql!(InstanceStatus);

/// Instances that count against a license: all but revoked ones.
const LIVE: [InstanceStatus; 2] = [InstanceStatus::Pending, InstanceStatus::Active];

pub(super) fn license_context(serial: &str) -> String {
    format!("license-key:{serial}")
}

pub(super) fn instance_context(serial: &str, device_id: &str) -> String {
    format!("instance-key:{serial}:{device_id}")
}

impl Store {
    /// In one transaction: takes the named authenticator or the user's own (claiming a free
    /// one; refused when disabled, or active against the reactivation policy), refuses a
    /// license at its limit, creates the MDL registration (its challenge sealed) with a
    /// license key of its own (the registration's new key: whoever learns one Activation
    /// Message 1 learns nothing about the instances other registrations added), and hands the
    /// license to `produce`, whose mail commits with the rest. `Ok(Err(_))` when no
    /// authenticator can be taken; `Err(Conflict)` for a registration id already in use.
    pub fn begin_mdl_registration<T>(
        &self,
        user_pk: i64,
        new: &NewRegistration,
        rule: &super::ReactivationRule,
        produce: impl FnOnce(&MdlLicense) -> Result<(T, Option<OutgoingMail>), StoreError>,
    ) -> Result<Result<Result<T, i32>, super::Blocked>, StoreError> {
        use super::schema::authenticators as a;
        let at = new.created_at;
        self.write_tx(|c| {
            let serial = match prepare(c, user_pk, new.serial_no.as_ref(), rule, self.now())? {
                Ok((serial, _)) => serial,
                Err(blocked) => return Ok(Err(blocked)),
            };
            let limit: i32 = a::table.find(&serial).select(a::license_limit).first(c)?;
            let live: i64 = device_instances::table
                .filter(device_instances::serial_no.eq(&serial))
                .filter(device_instances::status.eq_any(LIVE))
                .count()
                .get_result(c)?;
            if live >= i64::from(limit) {
                return Ok(Ok(Err(limit)));
            }
            let serial_no = SerialNumber::parse(&serial)
                .map_err(|e| StoreError::Corrupt(format!("authenticator: {e}")))?;
            let license_key = insert_registration(c, self, user_pk, &serial, new)?;
            let (out, mail) = produce(&MdlLicense {
                serial_no,
                license_key,
                license_limit: limit,
            })?;
            if let Some(mail) = mail {
                super::outbox::enqueue_mail(c, self.key(), &mail, at)?;
            }
            Ok(Ok(Ok(out)))
        })
    }

    /// The license key stored on an authenticator by provd before issue 10, unsealed; `None`
    /// since: each MDL registration now carries its own license key
    /// ([`Store::registration_key`]).
    pub fn license_key(
        &self,
        serial: &SerialNumber,
    ) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        use super::schema::authenticators as a;
        let mut conn = self.conn()?;
        let sealed: Option<Vec<u8>> = a::table
            .find(serial.as_str())
            .select(a::sealed_license_key)
            .first(&mut conn)?;
        sealed
            .map(|s| self.key().open(&license_context(serial.as_str()), &s))
            .transpose()
            .map_err(StoreError::from)
    }

    /// In one transaction: checks the license limit and the device, takes the next free
    /// sequence number (`next_free` over those in use), inserts the pending instance, and
    /// moves the MDL registration to `delivered`.
    pub fn add_device_instance(
        &self,
        new: &NewInstance,
        next_free: impl FnOnce(&[u8]) -> Option<u8>,
    ) -> Result<Added, StoreError> {
        use super::schema::authenticators as a;
        use super::schema::registrations as r;
        let serial = new.serial_no.as_str();
        let at = self.now();
        self.write_tx(|c| {
            // Instance changes of one license go one at a time: this no-op write takes the
            // license's row lock until commit (SQLite has one writer anyway), so concurrent
            // adds see each other's sequence numbers.
            let limit: i32 = diesel::update(a::table.find(serial))
                .set(a::license_limit.eq(a::license_limit))
                .returning(a::license_limit)
                .get_result(c)?;
            let live: Vec<(i32, Option<String>)> = device_instances::table
                .filter(device_instances::serial_no.eq(serial))
                .filter(device_instances::status.eq_any(LIVE))
                .select((device_instances::sequence_no, device_instances::device_id))
                .load(c)?;
            if live
                .iter()
                .any(|(_, d)| d.as_deref() == Some(new.device_id.as_str()))
            {
                return Ok(Added::DeviceExists);
            }
            if live.len() as i64 >= i64::from(limit) {
                return Ok(Added::LicenseExhausted { limit });
            }
            // Revoked instances give their sequence number back.
            diesel::delete(
                device_instances::table
                    .filter(device_instances::serial_no.eq(serial))
                    .filter(device_instances::status.eq(InstanceStatus::Revoked)),
            )
            .execute(c)?;
            let used: Vec<u8> = live
                .iter()
                .filter_map(|(s, _)| u8::try_from(*s).ok())
                .collect();
            let Some(seq) = next_free(&used) else {
                return Ok(Added::LicenseExhausted { limit });
            };
            let n = diesel::update(
                r::table
                    .find(new.registration_id.as_str())
                    .filter(r::status.eq(RegistrationStatus::Pending)),
            )
            .set((
                r::status.eq(RegistrationStatus::Delivered),
                r::sealed_ephemeral.eq(None::<Vec<u8>>),
                r::ephemeral_expires_at.eq(None::<i64>),
            ))
            .execute(c)?;
            if n != 1 {
                return Ok(Added::NotPending);
            }
            diesel::insert_into(device_instances::table)
                .values(InstanceInsert {
                    serial_no: serial,
                    sequence_no: i32::from(seq),
                    device_type: new.device_type,
                    device_id: Some(&new.device_id),
                    description: new.description.as_deref(),
                    status: InstanceStatus::Pending,
                    created_at: at,
                    registration_id: Some(new.registration_id.as_str()),
                    sealed_instance_key: Some(
                        self.key()
                            .seal(&instance_context(serial, &new.device_id), &new.instance_key),
                    ),
                    am2_nonce: Some(&new.am2_nonce),
                })
                .execute(c)?;
            Ok(Added::Sequence(i32::from(seq)))
        })
    }

    /// The pending instance an MDL registration added.
    pub fn pending_instance(
        &self,
        registration: &RegistrationId,
    ) -> Result<Option<PendingInstance>, StoreError> {
        let mut conn = self.conn()?;
        let row: Option<InstanceRow> = device_instances::table
            .filter(device_instances::registration_id.eq(registration.as_str()))
            .filter(device_instances::status.eq(InstanceStatus::Pending))
            .select((
                device_instances::serial_no,
                device_instances::sequence_no,
                device_instances::device_id,
                device_instances::sealed_instance_key,
                device_instances::am2_nonce,
            ))
            .first(&mut conn)
            .optional()?;
        let Some((serial, sequence_no, Some(device_id), Some(sealed), Some(am2_nonce))) = row
        else {
            return Ok(None);
        };
        let instance_key = self
            .key()
            .open(&instance_context(&serial, &device_id), &sealed)?;
        Ok(Some(PendingInstance {
            sequence_no,
            device_id,
            instance_key,
            am2_nonce,
        }))
    }

    /// Confirms an instance: in one transaction the MDL registration is spent (its license
    /// key dropped) and its instance becomes active, `step` (a confirming OTP's time step)
    /// its last accepted one. Of two concurrent confirmations exactly one sees `true`.
    pub fn activate_instance(
        &self,
        registration: &RegistrationId,
        step: Option<i64>,
    ) -> Result<bool, StoreError> {
        use super::schema::registrations as r;
        let at = self.now();
        self.write_tx(|c| {
            let n = diesel::update(
                r::table
                    .find(registration.as_str())
                    .filter(r::status.eq(RegistrationStatus::Delivered)),
            )
            .set((
                r::status.eq(RegistrationStatus::Activated),
                r::sealed_new_key.eq(None::<Vec<u8>>),
            ))
            .execute(c)?;
            if n != 1 {
                return Ok(false);
            }
            diesel::update(
                device_instances::table
                    .filter(device_instances::registration_id.eq(registration.as_str()))
                    .filter(device_instances::status.eq(InstanceStatus::Pending)),
            )
            .set((
                device_instances::status.eq(InstanceStatus::Active),
                device_instances::activated_at.eq(Some(at)),
                device_instances::last_otp_step.eq(step),
            ))
            .execute(c)?;
            Ok(true)
        })
    }

    /// Revokes the pending instance of a revoked MDL registration, giving its sequence
    /// number back to the license.
    pub fn revoke_pending_instance(&self, registration: &RegistrationId) -> Result<(), StoreError> {
        self.write_tx(|c| {
            diesel::update(
                device_instances::table
                    .filter(device_instances::registration_id.eq(registration.as_str()))
                    .filter(device_instances::status.eq(InstanceStatus::Pending)),
            )
            .set(device_instances::status.eq(InstanceStatus::Revoked))
            .execute(c)?;
            Ok(())
        })
    }
}
