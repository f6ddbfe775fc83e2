//! A reference mobile client: plays the app's side of a DSAPP-SRP online activation over real
//! SOAP. Generates a, computes A, K and M1, checks M2, verifies the record's MAC, decrypts the
//! activation data, computes the OTP and activates. The integration tests drive the server
//! through it, and `provd client activate` exposes it.

use thiserror::Error;
use zeroize::Zeroizing;

use crate::protocol::otp;
use crate::protocol::srp::{self, record};
use crate::types::{HexValue, RegistrationId, SerialNumber};
use crate::wire::xml::{self, Element, Limits};
use crate::wire::{PROV_NS, SOAP_ENV_NS};

#[derive(Debug, Error)]
pub enum ClientError {
    #[error("HTTP: {0}")]
    Http(String),
    #[error("the server answered a SOAP Fault: {0}")]
    Fault(String),
    #[error("{operation} failed: {description} ({status})")]
    Failed {
        operation: &'static str,
        status: String,
        description: String,
    },
    #[error("the server's answer is malformed: {0}")]
    Malformed(String),
    #[error("the server's evidence message M2 does not verify: not the server we registered with")]
    BadServerEvidence,
    #[error("the activation data does not verify or decrypt: {0}")]
    BadRecord(record::RecordError),
    #[error("the activation password fails its check character: mistyped?")]
    BadActivationPassword,
}

/// What a completed activation gives the app.
pub struct Activation {
    pub serial_no: SerialNumber,
    pub key: Zeroizing<Vec<u8>>,
    pub user_id: String,
    pub domain: String,
}

impl std::fmt::Debug for Activation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Activation")
            .field("serial_no", &self.serial_no)
            .field("user_id", &self.user_id)
            .finish_non_exhaustive()
    }
}

/// Where the client stops, for tests that drive the steps one by one.
pub struct Client {
    url: String,
    agent: ureq::Agent,
}

fn envelope(op: &str, inner: &str) -> String {
    format!(
        r#"<SOAP-ENV:Envelope xmlns:SOAP-ENV="{SOAP_ENV_NS}" xmlns:PROV-TYPES="{PROV_NS}"><SOAP-ENV:Body><PROV-TYPES:{op}><componentType>provd reference client</componentType>{inner}</PROV-TYPES:{op}></SOAP-ENV:Body></SOAP-ENV:Envelope>"#
    )
}

fn child<'a>(el: &'a Element, path: &[&str]) -> Result<&'a Element, ClientError> {
    let mut cur = el;
    for p in path {
        cur = cur.child(p).ok_or_else(|| {
            ClientError::Malformed(format!("no {} in the answer", path.join("/")))
        })?;
    }
    Ok(cur)
}

fn hex_field(el: &Element, path: &[&str]) -> Result<Vec<u8>, ClientError> {
    HexValue::parse(child(el, path)?.text.trim())
        .map(HexValue::into_bytes)
        .map_err(|e| ClientError::Malformed(format!("{}: {e}", path.join("/"))))
}

/// The pieces of one exchange the client keeps between steps.
pub struct Exchange {
    pub registration_id: RegistrationId,
    session_key: Zeroizing<Vec<u8>>,
    salt: Vec<u8>,
    pub m1: Vec<u8>,
    m2: Vec<u8>,
}

impl Exchange {
    /// Verifies the record's MAC (constant time), then decrypts and parses the activation
    /// data.
    pub fn open(
        &self,
        sealed: &record::Sealed,
    ) -> Result<(SerialNumber, Zeroizing<Vec<u8>>), ClientError> {
        let keys = record::RecordKeys::derive(&self.salt, &self.session_key);
        let plain = keys
            .open(self.registration_id.as_str().as_bytes(), sealed)
            .map_err(ClientError::BadRecord)?;
        srp::parse_activation_plaintext(&plain)
            .ok_or_else(|| ClientError::Malformed("activation data".into()))
    }
}

impl Client {
    pub fn new(url: &str) -> Self {
        Client {
            url: url.to_owned(),
            agent: ureq::AgentBuilder::new().build(),
        }
    }

    /// POSTs one distinct command; returns its `result` element on success.
    fn call(&self, operation: &'static str, inner: &str) -> Result<Element, ClientError> {
        let body = envelope(operation, inner);
        let text = match self
            .agent
            .post(&self.url)
            .set("Content-Type", "text/xml; charset=utf-8")
            .send_string(&body)
        {
            Ok(r) => r
                .into_string()
                .map_err(|e| ClientError::Http(e.to_string()))?,
            Err(ureq::Error::Status(_, r)) => {
                let t = r.into_string().unwrap_or_default();
                return Err(ClientError::Fault(
                    crate::wire::xml::parse(t.as_bytes(), &Limits::default())
                        .ok()
                        .and_then(|root| {
                            let body = root.child("Body")?;
                            Some(body.child("Fault")?.child("faultstring")?.text.clone())
                        })
                        .unwrap_or(t),
                ));
            }
            Err(e) => return Err(ClientError::Http(e.to_string())),
        };
        let root = xml::parse(text.as_bytes(), &Limits::default())
            .map_err(|e| ClientError::Malformed(e.to_string()))?;
        let resp = child(&root, &["Body", &format!("{operation}Response")])?.clone();
        let codes = child(&resp, &["status", "resultCodes"])?;
        let status = child(codes, &["statusCodeEnum"])?.text.clone();
        if status != "STAT_SUCCESS" {
            let description = resp
                .child("status")
                .and_then(|s| s.child("errorStack"))
                .and_then(|s| s.child("errors"))
                .and_then(|e| e.child("errorDesc"))
                .map(|d| d.text.clone())
                .unwrap_or_default();
            return Err(ClientError::Failed {
                operation,
                status,
                description,
            });
        }
        child(&resp, &["result"]).cloned()
    }

    /// Step 1: sends A, receives B and the salt, derives K, M1 and M2.
    pub fn key_exchange(
        &self,
        registration_id: &RegistrationId,
        activation_password: &str,
    ) -> Result<Exchange, ClientError> {
        if !srp::activation_password_is_valid(activation_password) {
            return Err(ClientError::BadActivationPassword);
        }
        let srp = srp::srp();
        let a_bytes = crate::crypto::random_bytes(32);
        let a = Zeroizing::new(
            srp.group
                .parse(&a_bytes)
                .map_err(|e| ClientError::Malformed(e.to_string()))?,
        );
        let a_pub = srp.client_public(&a);
        let result = self.call(
            "dsappSRPGenerateEphemeralKey",
            &format!(
                "<registrationID>{registration_id}</registrationID><clientEphemeralPublicKey>{}</clientEphemeralPublicKey>",
                hex::encode_upper(srp.group.pad(&a_pub))
            ),
        )?;
        let b_bytes = hex_field(&result, &["serverEphemeralPublicKey"])?;
        let salt = hex_field(&result, &["salt"])?;
        let bad =
            |e: srp::math::SrpError| ClientError::Malformed(format!("server public key: {e}"));
        let b_pub = srp.group.parse(&b_bytes).map_err(bad)?;
        let u = srp.u(&a_pub, &b_pub).map_err(bad)?;
        let x = srp.x(
            &salt,
            registration_id.as_str().as_bytes(),
            activation_password.as_bytes(),
        );
        let premaster = srp.client_premaster(&b_pub, &x, &a, &u).map_err(bad)?;
        let session = srp.session(
            &premaster,
            registration_id.as_str().as_bytes(),
            &salt,
            &a_pub,
            &b_pub,
        );
        Ok(Exchange {
            registration_id: registration_id.clone(),
            session_key: session.key,
            salt,
            m1: session.m1,
            m2: session.m2,
        })
    }

    /// Step 2: proves K with M1, checks M2, verifies and decrypts the activation data.
    pub fn activation_data(
        &self,
        ex: &Exchange,
    ) -> Result<(SerialNumber, Zeroizing<Vec<u8>>), ClientError> {
        let result = self.call(
            "dsappSRPGenerateActivationData",
            &format!(
                "<registrationID>{}</registrationID><clientEvidenceMessage>{}</clientEvidenceMessage>",
                ex.registration_id,
                hex::encode_upper(&ex.m1)
            ),
        )?;
        let m2 = hex_field(&result, &["serverEvidenceMessage"])?;
        if !crate::crypto::ct_eq(&m2, &ex.m2) {
            return Err(ClientError::BadServerEvidence);
        }
        let code = child(&result, &["standard", "activationCode"])?;
        let iv: [u8; 16] = hex_field(code, &["encryptedCounter"])?
            .try_into()
            .map_err(|_| ClientError::Malformed("encryptedCounter must be 32 hex".into()))?;
        let mac: [u8; 32] = hex_field(code, &["mac"])?
            .try_into()
            .map_err(|_| ClientError::Malformed("mac must be 64 hex".into()))?;
        let sealed = record::Sealed {
            iv,
            ciphertext: hex_field(code, &["encryptedData"])?,
            mac,
        };
        ex.open(&sealed)
    }

    /// Step 3: activates with the OTP of the delivered key.
    pub fn activate_with_otp(
        &self,
        registration_id: &RegistrationId,
        otp: &str,
    ) -> Result<(String, String, String), ClientError> {
        let result = self.call(
            "dsappSRPActivate",
            &format!(
                "<registrationID>{registration_id}</registrationID><credential><response>{otp}</response></credential>"
            ),
        )?;
        Ok((
            child(&result, &["user", "userID"])?.text.clone(),
            child(&result, &["user", "domain"])?.text.clone(),
            child(&result, &["serialNumber"])?.text.clone(),
        ))
    }

    /// The whole activation, as an app performs it.
    pub fn activate(
        &self,
        registration_id: &RegistrationId,
        activation_password: &str,
    ) -> Result<Activation, ClientError> {
        let ex = self.key_exchange(registration_id, activation_password)?;
        let (serial_no, key) = self.activation_data(&ex)?;
        let now = crate::store::now();
        let code = otp::totp(&key, now, otp::DIGITS);
        let (user_id, domain, serial) = self.activate_with_otp(registration_id, &code)?;
        if serial != serial_no.as_str() {
            return Err(ClientError::Malformed(format!(
                "activated {serial}, but the activation data was for {serial_no}"
            )));
        }
        Ok(Activation {
            serial_no,
            key,
            user_id,
            domain,
        })
    }
}
