//! Multi-device licensing, two-step activation: `PROVISIONCMD_MDL_REGISTER` issues Activation
//! Message 1 (protected by the user's static or custom password, like REGISTER's code),
//! `PROVISIONCMD_MDL_ADD_DEVICE` checks the device code the authenticator computed from it and
//! answers Activation Message 2 with the next free sequence number, and
//! `PROVISIONCMD_MDL_ACTIVATE` checks the confirmation (signature or response-only OTP) and
//! makes the instance active. Each step is one registration's step: single use, its lifetime,
//! and its failure limit, as for DSAPP-SRP. A license counts its pending and active instances
//! against its limit (1 to 99); an expired or revoked step gives its sequence number back.

use zeroize::Zeroizing;

use super::mdl::{self, ActivationMessage1, ActivationMessage2, DeviceCode, DeviceType};
use super::standard::{Credentials, Delivery, Protection};
use super::{ProvisionError, Provisioning};
use crate::store::{
    Added, NewInstance, NewRegistration, OutgoingMail, RegistrationKind, RegistrationStatus,
    StoreError,
};
use crate::types::{Domain, HexValue, OrgUnit, RegistrationId, SerialNumber, UserId};

/// The command name bound into the protection of Activation Message 1.
pub const MDL_REGISTER: &str = "MDL_REGISTER";

/// `PROVISIONCMD_MDL_REGISTER` in.
#[derive(Debug)]
pub struct RegisterInput {
    pub credentials: Credentials,
    pub serial_no: Option<SerialNumber>,
    pub protection: Protection,
    pub delivery: Option<Delivery>,
}

/// `PROVISIONCMD_MDL_REGISTER` out.
#[derive(Debug)]
pub struct Registered {
    pub registration_id: RegistrationId,
    pub user_id: UserId,
    pub domain: Domain,
    pub organizational_unit: Option<OrgUnit>,
    pub serial_no: SerialNumber,
    /// Activation Message 1, protected: `salt | IV | C | MAC`.
    pub activation_message: HexValue,
}

/// `PROVISIONCMD_MDL_ADD_DEVICE` in.
#[derive(Debug)]
pub struct AddDeviceInput {
    pub registration_id: RegistrationId,
    pub device_code: DeviceCode,
    /// `PROVFLD_DEVICE_TYPE`, when given: must be the type inside the device code.
    pub device_type: Option<DeviceType>,
    /// `PROVFLD_DESCRIPTION`, special characters already replaced with spaces.
    pub description: Option<String>,
}

/// `PROVISIONCMD_MDL_ADD_DEVICE` out.
#[derive(Debug)]
pub struct DeviceAdded {
    pub serial_no: SerialNumber,
    pub device_id: u32,
    pub sequence: u8,
    /// Activation Message 2, sealed for the device: `IV | C | TAG`.
    pub activation_message: HexValue,
}

/// How the device confirms Activation Message 2.
#[derive(Debug)]
pub enum Confirmation {
    /// `PROVFLD_SIGNATURE`: 16 digits.
    Signature(Zeroizing<String>),
    /// `PROVFLD_DP_RESPONSE`: a response-only OTP of the new instance.
    Otp(Zeroizing<String>),
}

/// `PROVISIONCMD_MDL_ACTIVATE` in.
#[derive(Debug)]
pub struct ActivateInput {
    pub registration_id: RegistrationId,
    pub confirmation: Confirmation,
}

/// `PROVISIONCMD_MDL_ACTIVATE` out.
#[derive(Debug)]
pub struct Activated {
    pub user_id: UserId,
    pub domain: Domain,
    pub organizational_unit: Option<OrgUnit>,
    pub serial_no: SerialNumber,
    pub device_id: String,
    pub sequence: i32,
}

impl Provisioning {
    /// `PROVISIONCMD_MDL_REGISTER`.
    pub fn mdl_register(&self, input: RegisterInput) -> Result<Registered, ProvisionError> {
        let creds = &input.credentials;
        let (user, recipient) =
            self.begin_register(creds, input.serial_no.as_ref(), input.delivery.as_ref())?;
        let key = input.protection.key(&creds.static_password)?;
        let (registration_id, outcome) = self.with_new_registration_id(|registration_id| {
            let challenge = mdl::new_challenge();
            let new = NewRegistration {
                registration_id: registration_id.clone(),
                kind: RegistrationKind::Mdl,
                serial_no: input.serial_no.clone(),
                srp_salt: Vec::new(),
                srp_verifier: Vec::new(),
                secret: Some(Zeroizing::new(challenge.to_vec())),
                created_at: self.now(),
                lifetime_secs: self.policy.registration_lifetime_secs,
                mail: None,
            };
            let outcome =
                self.store
                    .begin_mdl_registration(user.pk, &new, &self.policy.reactivation, |license| {
                        let am1 = ActivationMessage1 {
                            serial: license.serial_no.clone(),
                            license_key: license.license_key.clone(),
                            challenge,
                        };
                        let message =
                            key.protect(MDL_REGISTER, &license.serial_no, &am1.encode());
                        let mail = recipient.as_ref().map(|to| OutgoingMail {
                            command: MDL_REGISTER.into(),
                            recipient: to.as_str().to_owned(),
                            subject: format!(
                                "Add a device to authenticator {}",
                                license.serial_no
                            ),
                            body: Zeroizing::new(format!(
                                "Registration identifier: {registration_id}\nActivation message (protected by your password):\n{message}\n"
                            )),
                        });
                        Ok(((license.serial_no.clone(), message), mail))
                    })?;
            Ok((registration_id, outcome))
        })?;
        let (serial_no, activation_message) = match outcome {
            Ok(Ok(created)) => created,
            Ok(Err(limit)) => {
                return Err(ProvisionError::LicenseExhausted {
                    serial: input.serial_no.clone(),
                    limit,
                })
            }
            Err(blocked) => return Err(blocked.into()),
        };
        if recipient.is_some() {
            self.mail_queued();
        }
        Ok(Registered {
            registration_id,
            user_id: user.user_id,
            domain: user.domain,
            organizational_unit: user.organizational_unit,
            serial_no,
            activation_message,
        })
    }

    /// A live MDL registration in `want`.
    fn mdl_registration(
        &self,
        id: &RegistrationId,
        want: RegistrationStatus,
    ) -> Result<crate::store::Registration, ProvisionError> {
        let reg = self.live_registration(id)?;
        if reg.kind != RegistrationKind::Mdl {
            return Err(ProvisionError::Invalid {
                field: "PROVFLD_REGISTRATIONID",
                reason: format!(
                    "registration {id} is a {} registration, not a multi-device one",
                    reg.kind.as_str()
                ),
            });
        }
        Self::require_status(&reg, want)?;
        Ok(reg)
    }

    /// `PROVISIONCMD_MDL_ADD_DEVICE`.
    pub fn mdl_add_device(&self, input: AddDeviceInput) -> Result<DeviceAdded, ProvisionError> {
        let id = input.registration_id;
        let reg = self.mdl_registration(&id, RegistrationStatus::Pending)?;
        let code = input.device_code;
        if let Some(t) = input.device_type {
            if t != code.device_type {
                return Err(ProvisionError::Invalid {
                    field: "PROVFLD_DEVICE_TYPE",
                    reason: format!(
                        "{} ({}) does not match the device code's type {} ({})",
                        t.code(),
                        t.name(),
                        code.device_type.code(),
                        code.device_type.name()
                    ),
                });
            }
        }
        let challenge: [u8; mdl::CHALLENGE_BYTES] = self
            .store
            .open_secret(&reg)?
            .and_then(|c| c.as_slice().try_into().ok())
            .ok_or_else(|| StoreError::Corrupt(format!("registration {id} has no challenge")))?;
        // The license key this registration drew (Activation Message 1 carried it).
        let license_key = self.store.registration_key(&reg)?;
        if !code.verify(&license_key, &reg.serial_no, &challenge) {
            return Err(self.proof_failed(&id, "PROVFLD_DEVICE_CODE"));
        }
        // The key and nonce are drawn now; the sequence number comes from the transaction.
        let draft = ActivationMessage2::generate(1).map_err(|e| ProvisionError::Invalid {
            field: "PROVFLD_ACTIVATION_MESSAGE",
            reason: e.to_string(),
        })?;
        let new = NewInstance {
            registration_id: id.clone(),
            serial_no: reg.serial_no.clone(),
            device_type: i32::from(code.device_type.code()),
            device_id: code.device_id.to_string(),
            description: input.description,
            instance_key: draft.instance_key.clone(),
            am2_nonce: draft.nonce.to_vec(),
        };
        let sequence = match self
            .store
            .add_device_instance(&new, mdl::next_free_sequence)?
        {
            Added::Sequence(s) => {
                u8::try_from(s).map_err(|_| StoreError::Corrupt(format!("sequence number {s}")))?
            }
            Added::LicenseExhausted { limit } => {
                return Err(ProvisionError::LicenseExhausted {
                    serial: Some(reg.serial_no),
                    limit,
                })
            }
            Added::DeviceExists => {
                return Err(ProvisionError::Invalid {
                    field: "PROVFLD_DEVICE_CODE",
                    reason: format!(
                        "device {} already holds an instance of {}",
                        code.device_id, reg.serial_no
                    ),
                })
            }
            Added::NotPending => {
                return Err(ProvisionError::RegistrationSpent {
                    id,
                    state: "no longer pending",
                })
            }
        };
        let am2 = ActivationMessage2 { sequence, ..draft };
        let sealed = mdl::seal_am2(
            &license_key,
            &challenge,
            code.device_id,
            &reg.serial_no,
            &am2,
        );
        Ok(DeviceAdded {
            serial_no: reg.serial_no,
            device_id: code.device_id,
            sequence,
            activation_message: HexValue::from_bytes(sealed),
        })
    }

    /// `PROVISIONCMD_MDL_ACTIVATE`.
    pub fn mdl_activate(&self, input: ActivateInput) -> Result<Activated, ProvisionError> {
        let id = input.registration_id;
        let reg = self.mdl_registration(&id, RegistrationStatus::Delivered)?;
        let instance =
            self.store
                .pending_instance(&id)?
                .ok_or_else(|| ProvisionError::RegistrationSpent {
                    id: id.clone(),
                    state: "without a pending device instance",
                })?;
        let nonce: [u8; mdl::NONCE_BYTES] = instance
            .am2_nonce
            .as_slice()
            .try_into()
            .map_err(|_| StoreError::Corrupt(format!("instance of {id}: nonce length")))?;
        let sequence = u8::try_from(instance.sequence_no)
            .map_err(|_| StoreError::Corrupt(format!("instance of {id}: sequence number")))?;
        let (ok, what, step) = match &input.confirmation {
            Confirmation::Signature(s) => (
                mdl::verify_signature(&instance.instance_key, &nonce, &reg.serial_no, sequence, s),
                "PROVFLD_SIGNATURE",
                None,
            ),
            Confirmation::Otp(otp) => {
                let step = super::otp::verify_totp(&instance.instance_key, otp, self.now());
                (step.is_some(), "PROVFLD_DP_RESPONSE", step)
            }
        };
        if !ok {
            let e = self.proof_failed(&id, what);
            if matches!(e, ProvisionError::RevokedNow { .. }) {
                self.store.revoke_pending_instance(&id)?;
            }
            return Err(e);
        }
        if !self.store.activate_instance(&id, step)? {
            return Err(ProvisionError::RegistrationSpent {
                id,
                state: "already activated",
            });
        }
        let user = self.store.user_by_pk(reg.user_pk)?;
        Ok(Activated {
            user_id: user.user_id,
            domain: user.domain,
            organizational_unit: user.organizational_unit,
            serial_no: reg.serial_no,
            device_id: instance.device_id,
            sequence: instance.sequence_no,
        })
    }
}
