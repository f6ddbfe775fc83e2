//! `PROVISIONCMD_MDL_ADD_DEVICE`: checks the device code the authenticator computed from
//! Activation Message 1 and answers Activation Message 2 with the next free sequence number.
//! An expired or revoked step gives its sequence number back.

use super::{AuditFields, Input, Route, SoapCommand, SoapReply};
use crate::lifecycle::{ProvisionError, Provisioning};
use crate::protocol::mdl::{self, ActivationMessage2, DeviceCode, DeviceType};
use crate::soap::response::ResultWriter;
use crate::soap::{AttributeId as A, Command, RequestError};
use crate::store::{Added, NewInstance, RegistrationStatus, StoreError};
use crate::types::{HexValue, RegistrationId, SerialNumber};

#[derive(Debug)]
pub struct MdlAddDevice {
    pub registration_id: RegistrationId,
    pub device_code: DeviceCode,
    /// `PROVFLD_DEVICE_TYPE`, when given: must be the type inside the device code.
    pub device_type: Option<DeviceType>,
    /// `PROVFLD_DESCRIPTION`, special characters already replaced with spaces.
    pub description: Option<String>,
}

#[derive(Debug)]
pub struct DeviceAdded {
    pub serial_no: SerialNumber,
    pub device_id: u32,
    pub sequence: u8,
    /// Activation Message 2, sealed for the device: `IV | C | TAG`.
    pub activation_message: HexValue,
}

impl SoapCommand for MdlAddDevice {
    const ROUTE: Route = Route::Execute(Command::MdlAddDevice);
    const CHECKS_PASSWORD: bool = false;
    const INLINE: bool = false;
    type Reply = DeviceAdded;

    fn decode(input: &mut Input<'_>) -> Result<Self, RequestError> {
        let r = &mut input.attributes;
        Ok(MdlAddDevice {
            registration_id: r.required(A::RegistrationId, RegistrationId::parse)?,
            device_code: r.required(A::DeviceCode, DeviceCode::parse)?,
            device_type: r.optional(A::DeviceType, DeviceType::parse)?,
            description: r.present(A::Description).map(mdl::sanitize_description),
        })
    }

    fn audit(&self, audit: &mut AuditFields<'_>) {
        audit.registration(&self.registration_id);
    }

    fn handle(self, p: &Provisioning) -> Result<DeviceAdded, ProvisionError> {
        let id = self.registration_id;
        let reg = p.mdl_registration(&id, RegistrationStatus::Pending)?;
        let code = self.device_code;
        if let Some(t) = self.device_type {
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
        let challenge: [u8; mdl::CHALLENGE_BYTES] = p
            .store()
            .open_secret(&reg)?
            .and_then(|c| c.as_slice().try_into().ok())
            .ok_or_else(|| StoreError::Corrupt(format!("registration {id} has no challenge")))?;
        // The license key this registration drew (Activation Message 1 carried it).
        let license_key = p.store().registration_key(&reg)?;
        if !code.verify(&license_key, &reg.serial_no, &challenge) {
            return Err(p.proof_failed(&id, "PROVFLD_DEVICE_CODE"));
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
            description: self.description,
            instance_key: draft.instance_key.clone(),
            am2_nonce: draft.nonce.to_vec(),
        };
        let sequence = match p
            .store()
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
}

impl SoapReply for DeviceAdded {
    fn write(&self, w: &mut ResultWriter) {
        w.text(A::SerialNo, self.serial_no.as_str())
            .text(A::DeviceId, &self.device_id.to_string())
            .text(A::ActivationMessage, &self.activation_message.to_string());
    }

    fn audit(&self, audit: &mut AuditFields<'_>) {
        audit.serial(&self.serial_no);
    }
}
