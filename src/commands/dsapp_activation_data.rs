//! `PROVISIONCMD_DSAPPGENERATEACTIVATIONDATA`: the key exchange and the activation data in one
//! step. Counts the exchange (at most [`dsapp::MAX_UNCONFIRMED_EXCHANGES`] per registration;
//! the next revokes it), answers the client's share, and returns the activation data sealed
//! (encrypt-then-MAC) under the new session, which replaces any earlier one and is kept,
//! sealed, for the activation.

use super::{dsapp_version, iv, AuditFields, Input, Route, SoapCommand, SoapReply};
use crate::lifecycle::{ProvisionError, Provisioning};
use crate::protocol::dsapp::{self, Field, SealedField, Version};
use crate::soap::response::ResultWriter;
use crate::soap::{AttributeId as A, AttributeId, Command, RequestError};
use crate::store::{ExchangeRecorded, RegistrationStatus, StoreError};
use crate::types::{HexValue, RegistrationId};

#[derive(Debug)]
pub struct DsappActivationData {
    pub registration_id: RegistrationId,
    /// `PROVFLD_DSAPP_VERSION` when the caller repeats it: must match the registration's.
    pub version: Option<Version>,
    /// `PROVFLD_ENCRYPTED_CLIENT_PUBLIC_KEY_NONCE`: `Ya` (X | Y) and `cn`.
    pub encrypted_client_key_nonce: HexValue,
    /// `PROVFLD_CLIENT_IV`: CPace's `sid`.
    pub client_iv: [u8; 16],
}

#[derive(Debug)]
pub struct KeyExchanged {
    pub version: Version,
    /// `Yb` (X | Y).
    pub encrypted_server_public_key: HexValue,
    /// The server's confirmation tag.
    pub encrypted_nonces: HexValue,
    /// `ADb`.
    pub server_iv: HexValue,
    pub activation_code: SealedField,
    pub event_reactivation_counter: SealedField,
}

impl SoapCommand for DsappActivationData {
    const ROUTE: Route = Route::Execute(Command::DsappGenerateActivationData);
    const CHECKS_PASSWORD: bool = false;
    const INLINE: bool = false;
    type Reply = KeyExchanged;

    fn decode(input: &mut Input<'_>) -> Result<Self, RequestError> {
        let r = &mut input.attributes;
        Ok(DsappActivationData {
            registration_id: r.required(A::RegistrationId, RegistrationId::parse)?,
            version: dsapp_version(r)?,
            encrypted_client_key_nonce: r
                .required(A::EncryptedClientPublicKeyNonce, HexValue::parse)?,
            client_iv: iv(r, A::ClientIv)?,
        })
    }

    fn audit(&self, audit: &mut AuditFields<'_>) {
        audit.registration(&self.registration_id);
    }

    fn handle(self, p: &Provisioning) -> Result<KeyExchanged, ProvisionError> {
        let id = self.registration_id;
        let (reg, version) = p.dsapp_registration(
            &id,
            &[RegistrationStatus::Pending, RegistrationStatus::Delivered],
        )?;
        if let Some(asked) = self.version {
            if asked != version {
                return Err(ProvisionError::Invalid {
                    field: "PROVFLD_DSAPP_VERSION",
                    reason: format!(
                        "registration {id} was made for DSAPP version {}, not {}",
                        version.number(),
                        asked.number()
                    ),
                });
            }
        }
        let secret = p.store().open_secret(&reg)?.ok_or_else(|| {
            StoreError::Corrupt(format!("registration {id} has no activation password"))
        })?;
        let prs = std::str::from_utf8(&secret)
            .map_err(|_| StoreError::Corrupt(format!("registration {id}: activation password")))?;
        let exchange = dsapp::server_key_exchange(
            id.as_str(),
            prs,
            self.encrypted_client_key_nonce.as_bytes(),
            &self.client_iv,
        )
        .map_err(|e| ProvisionError::Invalid {
            field: "PROVFLD_ENCRYPTED_CLIENT_PUBLIC_KEY_NONCE",
            reason: e.to_string(),
        })?;
        let key = p.store().registration_key(&reg)?;
        let counter = p
            .store()
            .get_authenticator(&reg.serial_no)?
            .reactivation_counter;
        let session = &exchange.session;
        let plaintext = dsapp::activation_code_plaintext(&reg.serial_no, &key, counter);
        let activation_code = session.seal_field(version, Field::ActivationCode, &plaintext);
        let event_reactivation_counter = session.seal_field(
            version,
            Field::EventReactivationCounter,
            counter.to_string().as_bytes(),
        );
        let now = p.now();
        let session_expires = (now + p.policy().ephemeral_lifetime_secs).min(reg.expires_at);
        match p.store().record_dsapp_exchange(
            &id,
            &session.to_bytes(),
            now,
            session_expires,
            dsapp::MAX_UNCONFIRMED_EXCHANGES,
        )? {
            ExchangeRecorded::Kept { .. } => {}
            ExchangeRecorded::Revoked { .. } => {
                return Err(ProvisionError::TooManyExchanges {
                    id,
                    max: dsapp::MAX_UNCONFIRMED_EXCHANGES,
                })
            }
            ExchangeRecorded::NotLive => {
                return Err(ProvisionError::RegistrationSpent {
                    id,
                    state: "no longer pending",
                })
            }
        }
        Ok(KeyExchanged {
            version,
            encrypted_server_public_key: HexValue::from_bytes(exchange.server_public_key.to_vec()),
            encrypted_nonces: HexValue::from_bytes(exchange.server_tag.to_vec()),
            server_iv: HexValue::from_bytes(exchange.adb.to_vec()),
            activation_code,
            event_reactivation_counter,
        })
    }
}

/// A field encrypted under a DSAPP session, and its IV when the version sends one.
fn sealed_field(w: &mut ResultWriter, id: AttributeId, iv_id: AttributeId, field: &SealedField) {
    w.text(id, &hex::encode_upper(&field.value));
    if let Some(iv) = field.iv {
        w.text(iv_id, &hex::encode_upper(iv));
    }
}

impl SoapReply for KeyExchanged {
    fn write(&self, w: &mut ResultWriter) {
        w.text(
            A::EncryptedServerPublicKey,
            &self.encrypted_server_public_key.to_string(),
        )
        .text(A::EncryptedNonces, &self.encrypted_nonces.to_string())
        .text(A::ServerIv, &self.server_iv.to_string());
        sealed_field(
            w,
            A::ActivationCode,
            A::ActivationCodeIv,
            &self.activation_code,
        );
        sealed_field(
            w,
            A::EventReactivationCounter,
            A::EventReactivationCounterIv,
            &self.event_reactivation_counter,
        );
    }

    fn audit(&self, _: &mut AuditFields<'_>) {}
}
