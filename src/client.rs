//! A reference mobile client: plays the app's side of a DSAPP-SRP online activation over real
//! SOAP. Generates a, computes A, K and M1, checks M2, verifies the record's MAC, decrypts the
//! activation data, computes the OTP and activates. The integration tests drive the server
//! through it, and `provd client activate` exposes it.

use thiserror::Error;
use zeroize::Zeroizing;

use crate::protocol::otp;
use crate::protocol::srp::{self, record};
use crate::soap::xml::{self, Element, Limits};
use crate::soap::{AttributeId, Command, PROV_NS, SOAP_ENV_NS};
use crate::types::{HexValue, RegistrationId, SerialNumber};

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

/// The result attributes of a successful `provisioningExecute`, by attribute id.
#[derive(Default)]
pub struct Attributes(Vec<(String, String)>);

impl Attributes {
    pub fn get(&self, id: AttributeId) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == id.name())
            .map(|(_, v)| v.as_str())
    }

    pub fn require(&self, id: AttributeId) -> Result<&str, ClientError> {
        self.get(id)
            .ok_or_else(|| ClientError::Malformed(format!("no {id} in the answer")))
    }

    /// Replaces (or adds) an attribute's value: what a network attacker can do, for tests.
    pub fn set(&mut self, id: AttributeId, value: &str) {
        match self.0.iter_mut().find(|(k, _)| k == id.name()) {
            Some((_, v)) => *v = value.to_owned(),
            None => self.0.push((id.name().to_owned(), value.to_owned())),
        }
    }

    pub fn hex(&self, id: AttributeId) -> Result<Vec<u8>, ClientError> {
        HexValue::parse(self.require(id)?)
            .map(HexValue::into_bytes)
            .map_err(|e| ClientError::Malformed(format!("{id}: {e}")))
    }
}

impl std::fmt::Debug for Attributes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values may be secrets.
        f.debug_list()
            .entries(self.0.iter().map(|(k, _)| k))
            .finish()
    }
}

/// An attribute to send: its id and its lexical value (typed by the catalogue).
pub type Arg<'a> = (AttributeId, &'a str);

fn execute_envelope(command: &str, args: &[Arg<'_>]) -> String {
    let mut attrs = String::new();
    for (id, value) in args {
        attrs.push_str(&format!(
            r#"<attributes><value xsi:type="{}">{}</value><attributeID>{}</attributeID></attributes>"#,
            id.xsd_type().name(),
            crate::soap::xml::escape(value),
            id.name()
        ));
    }
    format!(
        r#"<SOAP-ENV:Envelope xmlns:SOAP-ENV="{SOAP_ENV_NS}" xmlns:PROV-TYPES="{PROV_NS}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema"><SOAP-ENV:Body><PROV-TYPES:provisioningExecute><cmd>{command}</cmd><attributeSet><attributes><value xsi:type="xsd:string">provd reference client</value><attributeID>PROVFLD_COMPONENT_TYPE</attributeID></attributes>{attrs}</attributeSet></PROV-TYPES:provisioningExecute></SOAP-ENV:Body></SOAP-ENV:Envelope>"#
    )
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

    /// The derivation code that binds the authenticator `serial` to this session
    /// (protocols.md section 3), for `dsappSRPActivate`'s `credential/derivationCode`.
    pub fn derivation_code(&self, serial: &SerialNumber) -> Zeroizing<String> {
        let keys = record::RecordKeys::derive(&self.salt, &self.session_key);
        record::derivation_code(
            &keys.mac_key_bytes(),
            self.registration_id.as_str().as_bytes(),
            serial.as_str().as_bytes(),
        )
    }
}

impl Client {
    pub fn new(url: &str) -> Self {
        Client {
            url: url.to_owned(),
            agent: ureq::AgentBuilder::new().build(),
        }
    }

    fn post(&self, body: &str) -> Result<Element, ClientError> {
        let text = match self
            .agent
            .post(&self.url)
            .set("Content-Type", "text/xml; charset=utf-8")
            .send_string(body)
        {
            Ok(r) => r
                .into_string()
                .map_err(|e| ClientError::Http(e.to_string()))?,
            Err(ureq::Error::Status(_, r)) => {
                let t = r.into_string().unwrap_or_default();
                return Err(ClientError::Fault(
                    crate::soap::xml::parse(t.as_bytes(), &Limits::default())
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
        xml::parse(text.as_bytes(), &Limits::default())
            .map_err(|e| ClientError::Malformed(e.to_string()))
    }

    /// POSTs one `provisioningExecute` command; returns its result attributes on success.
    pub fn execute(&self, command: Command, args: &[Arg<'_>]) -> Result<Attributes, ClientError> {
        let root = self.post(&execute_envelope(command.name(), args))?;
        let results = child(&root, &["Body", "provisioningExecuteResponse", "results"])?;
        let status = child(results, &["resultCodes", "statusCodeEnum"])?
            .text
            .clone();
        if status != "STAT_SUCCESS" {
            let description = results
                .child("errorStack")
                .and_then(|s| s.child("errors"))
                .and_then(|e| e.child("errorDesc"))
                .map(|d| d.text.clone())
                .unwrap_or_default();
            return Err(ClientError::Failed {
                operation: command.name(),
                status,
                description,
            });
        }
        let mut out = Attributes::default();
        if let Some(set) = results.child("resultAttribute") {
            for a in set.children_named("attributes") {
                let id = child(a, &["attributeID"])?.text.trim().to_owned();
                let value = a.child("value").map(|v| v.text.clone()).unwrap_or_default();
                out.0.push((id, value));
            }
        }
        Ok(out)
    }

    /// POSTs one distinct command; returns its `result` element on success.
    fn call(&self, operation: &'static str, inner: &str) -> Result<Element, ClientError> {
        let root = self.post(&envelope(operation, inner))?;
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

    /// Step 3 with device binding: activates with a derivation code instead of an OTP.
    pub fn activate_with_derivation_code(
        &self,
        registration_id: &RegistrationId,
        code: &str,
    ) -> Result<(String, String, String), ClientError> {
        let result = self.call(
            "dsappSRPActivate",
            &format!(
                "<registrationID>{registration_id}</registrationID><credential><derivationCode>{code}</derivationCode></credential>"
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

/// What the standard registration (`PROVISIONCMD_REGISTER`) gave the app.
pub struct StandardRegistration {
    pub serial_no: SerialNumber,
    pub key: Zeroizing<Vec<u8>>,
    pub offline: bool,
    pub event_reactivation_counter: String,
    pub user_id: String,
    pub domain: String,
}

impl std::fmt::Debug for StandardRegistration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StandardRegistration")
            .field("serial_no", &self.serial_no)
            .field("offline", &self.offline)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// `PROVISIONCMD_REGISTER`, then opens the activation code with `password` (the custom
    /// encryption password when `custom` is given, else the static password) and `alea`.
    pub fn register_standard(
        &self,
        user_id: &str,
        domain: Option<&str>,
        static_password: &str,
        custom: Option<&str>,
        alea: Option<&str>,
        offline: bool,
    ) -> Result<StandardRegistration, ClientError> {
        let mut args: Vec<Arg<'_>> = vec![
            (AttributeId::UserId, user_id),
            (AttributeId::StaticPassword, static_password),
            (AttributeId::ActivationType, if offline { "1" } else { "0" }),
        ];
        if let Some(d) = domain {
            args.push((AttributeId::Domain, d));
        }
        if let Some(c) = custom {
            args.push((AttributeId::CustomEncryptPwd, c));
        }
        if let Some(a) = alea {
            args.push((AttributeId::Alea, a));
        }
        let out = self.execute(Command::Register, &args)?;
        let serial = SerialNumber::parse(out.require(AttributeId::SerialNo)?)
            .map_err(|e| ClientError::Malformed(format!("PROVFLD_SERIAL_NO: {e}")))?;
        let blob = out.hex(AttributeId::ActivationCode)?;
        let plain = crate::protocol::standard::unprotect(
            custom.unwrap_or(static_password),
            alea,
            crate::protocol::standard::REGISTER,
            &serial,
            &blob,
        )
        .map_err(ClientError::BadRecord)?;
        let (mode, s, key) = crate::protocol::standard::parse_activation_plaintext(&plain)
            .ok_or_else(|| ClientError::Malformed("activation code".into()))?;
        if s != serial {
            return Err(ClientError::Malformed(format!(
                "the activation code is for {s}, the answer names {serial}"
            )));
        }
        Ok(StandardRegistration {
            serial_no: serial,
            key,
            offline: mode == crate::protocol::standard::ActivationType::Offline,
            event_reactivation_counter: out
                .require(AttributeId::EventReactivationCounter)?
                .to_owned(),
            user_id: out.require(AttributeId::UserId)?.to_owned(),
            domain: out.require(AttributeId::Domain)?.to_owned(),
        })
    }

    /// `PROVISIONCMD_ACTIVATE` with the current OTP of `key`.
    pub fn activate_standard(
        &self,
        user_id: &str,
        domain: Option<&str>,
        key: &[u8],
    ) -> Result<Attributes, ClientError> {
        let code = otp::totp(key, crate::store::now(), otp::DIGITS);
        let mut args: Vec<Arg<'_>> = vec![
            (AttributeId::UserId, user_id),
            (AttributeId::DpResponse, &code),
        ];
        if let Some(d) = domain {
            args.push((AttributeId::Domain, d));
        }
        self.execute(Command::Activate, &args)
    }
}

/// How a DSAPP client ends its activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DsappProof {
    /// A response-only OTP of the new authenticator.
    Otp,
    /// A derivation code bound to the session (device binding).
    DerivationCode,
}

/// What the DSAPP key exchange gave the app.
pub struct DsappExchange {
    pub registration_id: RegistrationId,
    pub session: crate::protocol::dsapp::Session,
    pub serial_no: SerialNumber,
    pub key: Zeroizing<Vec<u8>>,
    pub event_reactivation_counter: String,
}

impl std::fmt::Debug for DsappExchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DsappExchange")
            .field("registration_id", &self.registration_id)
            .field("serial_no", &self.serial_no)
            .finish_non_exhaustive()
    }
}

fn iv_of(out: &Attributes, id: AttributeId) -> Result<Option<[u8; 16]>, ClientError> {
    match out.get(id) {
        None => Ok(None),
        Some(_) => out
            .hex(id)?
            .try_into()
            .map(Some)
            .map_err(|_| ClientError::Malformed(format!("{id} must be 32 hex"))),
    }
}

impl Client {
    /// `PROVISIONCMD_DSAPPREGISTER`: the registration id and activation password.
    pub fn dsapp_register(
        &self,
        user_id: &str,
        static_password: &str,
        version: u32,
    ) -> Result<(RegistrationId, Zeroizing<String>), ClientError> {
        let v = version.to_string();
        let out = self.execute(
            Command::DsappRegister,
            &[
                (AttributeId::UserId, user_id),
                (AttributeId::StaticPassword, static_password),
                (AttributeId::DsappVersion, &v),
            ],
        )?;
        let id = RegistrationId::parse(out.require(AttributeId::RegistrationId)?)
            .map_err(|e| ClientError::Malformed(format!("PROVFLD_REGISTRATIONID: {e}")))?;
        let pw = Zeroizing::new(out.require(AttributeId::ActivationPassword)?.to_owned());
        Ok((id, pw))
    }

    /// `PROVISIONCMD_DSAPPGENERATEACTIVATIONDATA` (revision 3): sends the CPace share `Ya`,
    /// `cn` and `sid`; checks `Yb`, the server's confirmation tag, the presence or absence of
    /// the field IVs (by version) and every field's MAC before decrypting anything; then reads
    /// the XFAD record (its serial and counter must agree with the answer).
    pub fn dsapp_key_exchange(
        &self,
        registration_id: &RegistrationId,
        activation_password: &str,
        version: u32,
    ) -> Result<DsappExchange, ClientError> {
        self.dsapp_key_exchange_with(registration_id, activation_password, version, |_| {})
    }

    /// [`Client::dsapp_key_exchange`] with a hook that may alter the server's answer before
    /// the client checks it (what an active network attacker can do), for tests.
    pub fn dsapp_key_exchange_with(
        &self,
        registration_id: &RegistrationId,
        activation_password: &str,
        version: u32,
        tamper: impl FnOnce(&mut Attributes),
    ) -> Result<DsappExchange, ClientError> {
        use crate::protocol::dsapp::{self, Field};
        if !srp::activation_password_is_valid(activation_password) {
            return Err(ClientError::BadActivationPassword);
        }
        let v = dsapp::Version::from_number(version)
            .map_err(|e| ClientError::Malformed(e.to_string()))?;
        let hello = dsapp::client_hello(registration_id.as_str(), activation_password);
        let key_nonce = hex::encode_upper(hello.key_nonce);
        let sid = hex::encode_upper(hello.sid);
        let mut out = self.execute(
            Command::DsappGenerateActivationData,
            &[
                (AttributeId::RegistrationId, registration_id.as_str()),
                (AttributeId::EncryptedClientPublicKeyNonce, &key_nonce),
                (AttributeId::ClientIv, &sid),
            ],
        )?;
        tamper(&mut out);
        let session = hello
            .finish(
                &out.hex(AttributeId::EncryptedServerPublicKey)?,
                &out.hex(AttributeId::ServerIv)?,
                &out.hex(AttributeId::EncryptedNonces)?,
            )
            .map_err(|e| ClientError::Malformed(format!("the server's key exchange: {e}")))?;
        let sealed = [
            (
                Field::ActivationCode,
                AttributeId::ActivationCode,
                AttributeId::ActivationCodeIv,
            ),
            (
                Field::EventReactivationCounter,
                AttributeId::EventReactivationCounter,
                AttributeId::EventReactivationCounterIv,
            ),
        ];
        // Every MAC first, then decryption.
        let mut values = Vec::new();
        for (field, id, iv_id) in sealed {
            let iv = iv_of(&out, iv_id)?;
            let value = out.hex(id)?;
            session
                .verify_field(v, field, &value, iv.as_ref())
                .map_err(|e| ClientError::Malformed(format!("{id}: {e}")))?;
            values.push((field, value, iv));
        }
        let mut opened = values.into_iter().map(|(field, value, iv)| {
            session
                .open_field(v, field, &value, iv.as_ref())
                .map_err(|e| ClientError::Malformed(e.to_string()))
        });
        let code = opened.next().expect("two fields")?;
        let counter = opened.next().expect("two fields")?;
        let xfad = dsapp::parse_activation_code(&code)
            .ok_or_else(|| ClientError::Malformed("PROVFLD_ACTIVATION_CODE: not a DSAPP/v3 XFAD record with serial, key, otp, digits, step and counter".into()))?;
        let counter = String::from_utf8_lossy(&counter).into_owned();
        if counter != xfad.counter.to_string() {
            return Err(ClientError::Malformed(format!(
                "PROVFLD_EVENT_REACTIVATION_COUNTER {counter} differs from the activation code's counter {}",
                xfad.counter
            )));
        }
        Ok(DsappExchange {
            registration_id: registration_id.clone(),
            session,
            serial_no: xfad.serial,
            key: xfad.key,
            event_reactivation_counter: counter,
        })
    }

    /// `PROVISIONCMD_DSAPPACTIVATE`: the client's confirmation tag, then an OTP or a
    /// derivation code.
    pub fn dsapp_activate_with(
        &self,
        ex: &DsappExchange,
        proof: DsappProof,
    ) -> Result<Attributes, ClientError> {
        self.dsapp_activate_tagged(ex, proof, &ex.session.client_tag())
    }

    /// [`Client::dsapp_activate_with`] with a chosen confirmation tag, for tests.
    pub fn dsapp_activate_tagged(
        &self,
        ex: &DsappExchange,
        proof: DsappProof,
        tag: &[u8],
    ) -> Result<Attributes, ClientError> {
        let sid = hex::encode_upper(ex.session.sid());
        let tag = hex::encode_upper(tag);
        let mut args: Vec<Arg<'_>> = vec![
            (AttributeId::RegistrationId, ex.registration_id.as_str()),
            (AttributeId::EncryptedServerNonce, &tag),
            (AttributeId::ClientIv, &sid),
        ];
        let otp_value;
        let code;
        match proof {
            DsappProof::Otp => {
                otp_value = otp::totp(&ex.key, crate::store::now(), otp::DIGITS);
                args.push((AttributeId::DpResponse, &otp_value));
            }
            DsappProof::DerivationCode => {
                code = ex.session.derivation_code(&ex.serial_no);
                args.push((AttributeId::RequestType, "0"));
                args.push((AttributeId::DerivationCode, &code));
            }
        }
        self.execute(Command::DsappActivate, &args)
    }

    /// A whole DSAPP activation, as an app performs it after registration.
    pub fn dsapp_activate(
        &self,
        registration_id: &RegistrationId,
        activation_password: &str,
        version: u32,
        proof: DsappProof,
    ) -> Result<Activation, ClientError> {
        let ex = self.dsapp_key_exchange(registration_id, activation_password, version)?;
        let out = self.dsapp_activate_with(&ex, proof)?;
        if out.require(AttributeId::SerialNo)? != ex.serial_no.as_str() {
            return Err(ClientError::Malformed(
                "activated another authenticator than the one delivered".into(),
            ));
        }
        Ok(Activation {
            serial_no: ex.serial_no.clone(),
            key: ex.key.clone(),
            user_id: out.require(AttributeId::UserId)?.to_owned(),
            domain: out.require(AttributeId::Domain)?.to_owned(),
        })
    }
}

/// What `PROVISIONCMD_MDL_REGISTER` gave the app: the registration and Activation Message 1.
pub struct MdlRegistration {
    pub registration_id: RegistrationId,
    pub am1: crate::protocol::mdl::ActivationMessage1,
}

impl std::fmt::Debug for MdlRegistration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MdlRegistration")
            .field("registration_id", &self.registration_id)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// `PROVISIONCMD_MDL_REGISTER`, then opens Activation Message 1 with the password.
    pub fn mdl_register(
        &self,
        user_id: &str,
        static_password: &str,
        custom: Option<&str>,
    ) -> Result<MdlRegistration, ClientError> {
        let mut args: Vec<Arg<'_>> = vec![
            (AttributeId::UserId, user_id),
            (AttributeId::StaticPassword, static_password),
        ];
        if let Some(c) = custom {
            args.push((AttributeId::CustomEncryptPwd, c));
        }
        let out = self.execute(Command::MdlRegister, &args)?;
        let registration_id = RegistrationId::parse(out.require(AttributeId::RegistrationId)?)
            .map_err(|e| ClientError::Malformed(format!("PROVFLD_REGISTRATIONID: {e}")))?;
        let serial = SerialNumber::parse(out.require(AttributeId::SerialNo)?)
            .map_err(|e| ClientError::Malformed(format!("PROVFLD_SERIAL_NO: {e}")))?;
        let plain = crate::protocol::standard::unprotect(
            custom.unwrap_or(static_password),
            None,
            crate::protocol::mdl::MDL_REGISTER,
            &serial,
            &out.hex(AttributeId::ActivationMessage)?,
        )
        .map_err(ClientError::BadRecord)?;
        let am1 = crate::protocol::mdl::ActivationMessage1::decode(&plain)
            .map_err(|e| ClientError::Malformed(e.to_string()))?;
        Ok(MdlRegistration {
            registration_id,
            am1,
        })
    }

    /// `PROVISIONCMD_MDL_ADD_DEVICE` with the device code computed from Activation Message 1;
    /// opens Activation Message 2.
    pub fn mdl_add_device(
        &self,
        reg: &MdlRegistration,
        device_type: crate::protocol::mdl::DeviceType,
        device_id: u32,
        description: Option<&str>,
    ) -> Result<crate::protocol::mdl::ActivationMessage2, ClientError> {
        use crate::protocol::mdl;
        let code = mdl::DeviceCode::compute(
            &reg.am1.license_key,
            &reg.am1.serial,
            &reg.am1.challenge,
            device_type,
            device_id,
        )
        .render();
        let type_code = device_type.code().to_string();
        let mut args: Vec<Arg<'_>> = vec![
            (AttributeId::RegistrationId, reg.registration_id.as_str()),
            (AttributeId::DeviceCode, &code),
            (AttributeId::DeviceType, &type_code),
        ];
        if let Some(d) = description {
            args.push((AttributeId::Description, d));
        }
        let out = self.execute(Command::MdlAddDevice, &args)?;
        mdl::open_am2(
            &reg.am1.license_key,
            &reg.am1.challenge,
            device_id,
            &reg.am1.serial,
            &out.hex(AttributeId::ActivationMessage)?,
        )
        .map_err(|e| ClientError::Malformed(e.to_string()))
    }

    /// `PROVISIONCMD_MDL_ACTIVATE` with the signature over Activation Message 2, or with a
    /// response-only OTP of the new instance when `otp` is set.
    pub fn mdl_activate(
        &self,
        reg: &MdlRegistration,
        am2: &crate::protocol::mdl::ActivationMessage2,
        otp: bool,
    ) -> Result<Attributes, ClientError> {
        use crate::protocol::mdl;
        let value = if otp {
            mdl::instance_otp(&am2.instance_key, crate::store::now())
        } else {
            mdl::signature(&am2.instance_key, &am2.nonce, &reg.am1.serial, am2.sequence)
        };
        let id = if otp {
            AttributeId::DpResponse
        } else {
            AttributeId::Signature
        };
        self.execute(
            Command::MdlActivate,
            &[
                (AttributeId::RegistrationId, reg.registration_id.as_str()),
                (id, &value),
            ],
        )
    }
}
