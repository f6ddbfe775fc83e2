//! The `PROVFLD_*` attribute catalogue: every attribute with its xsd type and length limit,
//! and decoding of an `attributeSet` into typed values.

use std::fmt;

use super::xml::{Element, XSD_NS};
use super::RequestError;

/// The xsd type an attribute's `value` carries on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XsdType {
    String,
    UnsignedInt,
    Int,
    Boolean,
}

impl XsdType {
    pub fn name(self) -> &'static str {
        match self {
            XsdType::String => "xsd:string",
            XsdType::UnsignedInt => "xsd:unsignedInt",
            XsdType::Int => "xsd:int",
            XsdType::Boolean => "xsd:boolean",
        }
    }

    fn local(self) -> &'static str {
        &self.name()[4..]
    }
}

/// A length bound, in characters, on a string attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Length {
    /// No bound in the catalogue; the general cap applies.
    Any,
    AtMost(usize),
    Exactly(usize),
}

/// The general cap on any string attribute the catalogue does not bound more tightly.
pub const GENERAL_MAX: usize = 4096;

macro_rules! attributes {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal : $ty:ident, $len:expr $(, deprecated $dep:literal)?; )*) => {
        /// Every `PROVFLD_*` attribute of OneSpan's SOAP provisioning catalogue.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum AttributeId {
            $( $(#[$doc])* $variant, )*
        }

        impl AttributeId {
            pub const ALL: &'static [AttributeId] = &[$(AttributeId::$variant),*];

            pub fn name(self) -> &'static str {
                match self { $(AttributeId::$variant => $name,)* }
            }

            pub fn from_name(name: &str) -> Option<Self> {
                match name { $($name => Some(AttributeId::$variant),)* _ => None }
            }

            pub fn xsd_type(self) -> XsdType {
                match self { $(AttributeId::$variant => XsdType::$ty,)* }
            }

            pub fn length(self) -> Length {
                match self { $(AttributeId::$variant => $len,)* }
            }

            /// The reason an attribute is deprecated, for those OneSpan deprecated.
            pub fn deprecated(self) -> Option<&'static str> {
                match self {
                    $($(AttributeId::$variant => Some($dep),)?)*
                    #[allow(unreachable_patterns)]
                    _ => None,
                }
            }
        }
    };
}

use Length::{Any, AtMost, Exactly};

attributes! {
    ActivationCode = "PROVFLD_ACTIVATION_CODE": String, Any;
    ActivationCodeIv = "PROVFLD_ACTIVATION_CODE_IV": String, Exactly(32);
    ActivationMessage = "PROVFLD_ACTIVATION_MESSAGE": String, Any;
    ActivationMessageIv = "PROVFLD_ACTIVATION_MESSAGE_IV": String, Exactly(32);
    ActivationPassword = "PROVFLD_ACTIVATION_PASSWORD": String, AtMost(512);
    ActivationType = "PROVFLD_ACTIVATION_TYPE": UnsignedInt, Any;
    /// Shared data plus alea must not exceed 512 characters.
    Alea = "PROVFLD_ALEA": String, AtMost(512);
    AuxiliaryMessage = "PROVFLD_AUXILIARY_MESSAGE": String, Any;
    Cespr = "PROVFLD_CESPR": String, Any, deprecated "the Digipass 110 change-encrypted-static-password request is deprecated and not supported";
    Challenge = "PROVFLD_CHALLENGE": String, Any;
    ClientHash = "PROVFLD_CLIENT_HASH": String, Any, deprecated "the DIGIPASS for Web PC hash is deprecated and not supported";
    ClientIv = "PROVFLD_CLIENT_IV": String, Exactly(32);
    ComponentType = "PROVFLD_COMPONENT_TYPE": String, AtMost(255);
    ConfirmNewStaticPassword = "PROVFLD_CONFIRM_NEW_STATIC_PASSWORD": String, AtMost(255);
    CustomEncryptPwd = "PROVFLD_CUSTOM_ENCRYPT_PWD": String, AtMost(512);
    DeliveryMethod = "PROVFLD_DELIVERY_METHOD": String, AtMost(255);
    DerivationCode = "PROVFLD_DERIVATION_CODE": String, AtMost(27);
    /// Special characters are replaced with spaces.
    Description = "PROVFLD_DESCRIPTION": String, AtMost(255);
    Destination = "PROVFLD_DESTINATION": String, AtMost(255);
    DeviceCode = "PROVFLD_DEVICE_CODE": String, AtMost(26);
    DeviceId = "PROVFLD_DEVICE_ID": String, AtMost(255);
    DeviceType = "PROVFLD_DEVICE_TYPE": String, AtMost(2);
    Domain = "PROVFLD_DOMAIN": String, AtMost(255);
    DpResponse = "PROVFLD_DP_RESPONSE": String, AtMost(16);
    DsappVersion = "PROVFLD_DSAPP_VERSION": UnsignedInt, Any;
    EncryptedClientPublicKeyNonce = "PROVFLD_ENCRYPTED_CLIENT_PUBLIC_KEY_NONCE": String, Exactly(136);
    EncryptedNonces = "PROVFLD_ENCRYPTED_NONCES": String, Any;
    EncryptedServerNonce = "PROVFLD_ENCRYPTED_SERVER_NONCE": String, Exactly(32);
    EncryptedServerPublicKey = "PROVFLD_ENCRYPTED_SERVER_PUBLIC_KEY": String, Any;
    EventReactivationCounter = "PROVFLD_EVENT_REACTIVATION_COUNTER": String, Any;
    EventReactivationCounterIv = "PROVFLD_EVENT_REACTIVATION_COUNTER_IV": String, Exactly(32);
    NewStaticPassword = "PROVFLD_NEW_STATIC_PASSWORD": String, AtMost(255);
    OrganizationalUnit = "PROVFLD_ORGANIZATIONAL_UNIT": String, AtMost(255);
    RegistrationId = "PROVFLD_REGISTRATIONID": String, AtMost(255);
    RequestType = "PROVFLD_REQUEST_TYPE": UnsignedInt, Any;
    ServerIv = "PROVFLD_SERVER_IV": String, Exactly(32);
    SerialNo = "PROVFLD_SERIAL_NO": String, Exactly(10);
    ServerNonce = "PROVFLD_SERVER_NONCE": String, Any;
    ServerTime = "PROVFLD_SERVER_TIME": Int, Any;
    Signature = "PROVFLD_SIGNATURE": String, AtMost(16);
    StaticPassword = "PROVFLD_STATIC_PASSWORD": String, AtMost(255);
    StatusMessage = "PROVFLD_STATUS_MESSAGE": String, Any;
    UserId = "PROVFLD_USERID": String, AtMost(255);
    WebPublicKey = "PROVFLD_WEB_PUBLIC_KEY": String, Any;
}

impl AttributeId {
    /// Attributes whose values are secrets: never logged, never echoed in an error.
    pub fn is_secret(self) -> bool {
        matches!(
            self,
            AttributeId::StaticPassword
                | AttributeId::NewStaticPassword
                | AttributeId::ConfirmNewStaticPassword
                | AttributeId::CustomEncryptPwd
                | AttributeId::ActivationPassword
                | AttributeId::ActivationCode
                | AttributeId::ActivationMessage
                | AttributeId::DpResponse
                | AttributeId::DerivationCode
                | AttributeId::Signature
        )
    }
}

impl AttributeId {
    /// Output attributes written with `<attributeOptions><masked>true</masked></attributeOptions>`
    /// (OneSpan's provisioningExecute response structure page shows it on
    /// `PROVFLD_ACTIVATION_CODE`): the activation data an attacker could activate an
    /// authenticator with. Listed in the README ("Masked attributes").
    pub fn is_masked_output(self) -> bool {
        matches!(
            self,
            AttributeId::ActivationCode
                | AttributeId::ActivationPassword
                | AttributeId::ActivationMessage
                | AttributeId::EventReactivationCounter
        )
    }
}

impl fmt::Display for AttributeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A decoded attribute value, of the attribute's own xsd type.
#[derive(Clone, PartialEq, Eq)]
pub enum Value {
    Str(String),
    UnsignedInt(u32),
    Int(i64),
    Boolean(bool),
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Values may be secrets: show the shape, not the content.
        match self {
            Value::Str(s) => write!(f, "Str({} chars)", s.chars().count()),
            Value::UnsignedInt(_) => f.write_str("UnsignedInt(..)"),
            Value::Int(_) => f.write_str("Int(..)"),
            Value::Boolean(_) => f.write_str("Boolean(..)"),
        }
    }
}

impl Value {
    pub fn xsd_type(&self) -> XsdType {
        match self {
            Value::Str(_) => XsdType::String,
            Value::UnsignedInt(_) => XsdType::UnsignedInt,
            Value::Int(_) => XsdType::Int,
            Value::Boolean(_) => XsdType::Boolean,
        }
    }

    pub fn lexical(&self) -> String {
        match self {
            Value::Str(s) => s.clone(),
            Value::UnsignedInt(n) => n.to_string(),
            Value::Int(n) => n.to_string(),
            Value::Boolean(b) => b.to_string(),
        }
    }
}

/// One decoded `attributes` element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    pub id: AttributeId,
    pub value: Value,
}

/// A decoded `attributeSet`: each attribute at most once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttributeSet(Vec<Attribute>);

impl AttributeSet {
    pub fn new() -> Self {
        Self(Vec::new())
    }

    pub fn push(&mut self, id: AttributeId, value: Value) {
        self.0.push(Attribute { id, value });
    }

    pub fn iter(&self) -> impl Iterator<Item = &Attribute> {
        self.0.iter()
    }

    pub fn get(&self, id: AttributeId) -> Option<&Value> {
        self.0.iter().find(|a| a.id == id).map(|a| &a.value)
    }

    pub fn ids(&self) -> impl Iterator<Item = AttributeId> + '_ {
        self.0.iter().map(|a| a.id)
    }

    /// A string attribute, if present.
    pub fn str(&self, id: AttributeId) -> Option<&str> {
        match self.get(id) {
            Some(Value::Str(s)) => Some(s),
            _ => None,
        }
    }

    pub fn unsigned(&self, id: AttributeId) -> Option<u32> {
        match self.get(id) {
            Some(Value::UnsignedInt(n)) => Some(*n),
            _ => None,
        }
    }

    /// Decodes an `attributeSet` element. Every attribute must be known, carry its own xsd
    /// type (when `xsi:type` is given), fit its length, and appear once.
    pub fn decode(set: &Element) -> Result<Self, RequestError> {
        let mut out = AttributeSet::new();
        for child in &set.children {
            if child.name.local != "attributes" {
                return Err(RequestError::Unexpected(child.name.local.clone()));
            }
            let value = child.child("value").map(|v| ValueElement {
                text: &v.text,
                xsi_type: v.xsi_type.as_ref().map(|t| TypeName {
                    xsd: t.ns.as_deref() == Some(XSD_NS),
                    local: &t.local,
                }),
            });
            out.decode_attribute(child.child("attributeID").map(|e| e.text.as_str()), value)?;
        }
        Ok(out)
    }

    /// Decodes one `attributes` element of an `attributeSet` from the text of its first
    /// `attributeID` child and its first `value` child, and adds it.
    pub fn decode_attribute(
        &mut self,
        id: Option<&str>,
        value: Option<ValueElement<'_>>,
    ) -> Result<(), RequestError> {
        let raw_id = id.ok_or(RequestError::MissingId)?.trim();
        let id = AttributeId::from_name(raw_id)
            .ok_or_else(|| RequestError::Unknown(truncate(raw_id, 64)))?;
        if let Some(why) = id.deprecated() {
            return Err(RequestError::Deprecated(id, why));
        }
        if self.get(id).is_some() {
            return Err(RequestError::Duplicate(id));
        }
        let value = value.ok_or(RequestError::Missing(id))?;
        self.push(id, decode_value(id, &value)?);
        Ok(())
    }
}

/// The `value` element of an `attributes` element: its text and its `xsi:type`.
#[derive(Debug, Clone, Copy)]
pub struct ValueElement<'x> {
    pub text: &'x str,
    pub xsi_type: Option<TypeName<'x>>,
}

/// A resolved `xsi:type`: whether it is in the XML Schema namespace, and its local name.
#[derive(Debug, Clone, Copy)]
pub struct TypeName<'x> {
    pub xsd: bool,
    pub local: &'x str,
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

fn decode_value(id: AttributeId, el: &ValueElement<'_>) -> Result<Value, RequestError> {
    let expected = id.xsd_type();
    if let Some(t) = &el.xsi_type {
        let matches = t.xsd && t.local == expected.local();
        // Integers of any xsd integer type are accepted where the value fits.
        let integer_alias = expected != XsdType::String
            && expected != XsdType::Boolean
            && t.xsd
            && matches!(
                t.local,
                "int"
                    | "unsignedInt"
                    | "integer"
                    | "long"
                    | "unsignedLong"
                    | "short"
                    | "unsignedShort"
            );
        if !matches && !integer_alias {
            return Err(RequestError::WrongType {
                id,
                expected,
                got: format!(
                    "{}{}",
                    if t.xsd { "xsd:" } else { "" },
                    truncate(t.local, 32)
                ),
            });
        }
    }
    let text = el.text;
    match expected {
        XsdType::String => {
            let got = text.chars().count();
            match id.length() {
                Length::Exactly(n) if got != n && got != 0 => Err(RequestError::Length {
                    id,
                    expected: id.length(),
                    got,
                }),
                Length::AtMost(n) if got > n => Err(RequestError::Length {
                    id,
                    expected: id.length(),
                    got,
                }),
                Length::Any if got > GENERAL_MAX => Err(RequestError::Length {
                    id,
                    expected: Length::AtMost(GENERAL_MAX),
                    got,
                }),
                _ => Ok(Value::Str(text.to_owned())),
            }
        }
        XsdType::UnsignedInt => text
            .trim()
            .parse::<u32>()
            .map(Value::UnsignedInt)
            .map_err(|_| RequestError::BadNumber { id, expected }),
        XsdType::Int => text
            .trim()
            .parse::<i64>()
            .map(Value::Int)
            .map_err(|_| RequestError::BadNumber { id, expected }),
        XsdType::Boolean => match text.trim() {
            "true" | "1" => Ok(Value::Boolean(true)),
            "false" | "0" => Ok(Value::Boolean(false)),
            _ => Err(RequestError::BadNumber { id, expected }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::soap::xml::{parse, Limits};

    fn set(body: &str) -> Result<AttributeSet, RequestError> {
        let xml = format!(
            r#"<attributeSet xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
                 xmlns:xsd="http://www.w3.org/2001/XMLSchema">{body}</attributeSet>"#
        );
        AttributeSet::decode(&parse(xml.as_bytes(), &Limits::default()).unwrap())
    }

    fn attr(id: &str, ty: &str, v: &str) -> String {
        format!(
            r#"<attributes><value xsi:type="{ty}">{v}</value><attributeID>{id}</attributeID></attributes>"#
        )
    }

    #[test]
    fn catalogue_names_round_trip() {
        assert_eq!(AttributeId::ALL.len(), 44);
        for id in AttributeId::ALL {
            assert_eq!(AttributeId::from_name(id.name()), Some(*id));
            assert!(id.name().starts_with("PROVFLD_"));
        }
    }

    #[test]
    fn decodes_typed_values() {
        let s = set(&(attr("PROVFLD_USERID", "xsd:string", "alice")
            + &attr("PROVFLD_ACTIVATION_TYPE", "xsd:unsignedInt", "1")))
        .unwrap();
        assert_eq!(s.str(AttributeId::UserId), Some("alice"));
        assert_eq!(s.unsigned(AttributeId::ActivationType), Some(1));
    }

    #[test]
    fn errors_name_the_attribute() {
        let too_long = "u".repeat(256);
        let e = set(&attr("PROVFLD_USERID", "xsd:string", &too_long)).unwrap_err();
        assert!(e.to_string().contains("PROVFLD_USERID"), "{e}");
        let e = set(&attr("PROVFLD_SERIAL_NO", "xsd:string", "VDS1")).unwrap_err();
        assert!(e.to_string().contains("exactly 10"), "{e}");
        let e = set(&attr("PROVFLD_ACTIVATION_TYPE", "xsd:string", "1")).unwrap_err();
        assert!(matches!(
            e,
            RequestError::WrongType {
                id: AttributeId::ActivationType,
                ..
            }
        ));
        let e = set(&attr("PROVFLD_ACTIVATION_TYPE", "xsd:unsignedInt", "-1")).unwrap_err();
        assert!(e.to_string().contains("PROVFLD_ACTIVATION_TYPE"), "{e}");
        let e = set(&attr("PROVFLD_NOPE", "xsd:string", "x")).unwrap_err();
        assert!(e.to_string().contains("PROVFLD_NOPE"), "{e}");
        let e = set(&(attr("PROVFLD_USERID", "xsd:string", "a")
            + &attr("PROVFLD_USERID", "xsd:string", "b")))
        .unwrap_err();
        assert_eq!(e, RequestError::Duplicate(AttributeId::UserId));
    }

    #[test]
    fn deprecated_attributes_are_refused() {
        let e = set(&attr("PROVFLD_CESPR", "xsd:string", "x")).unwrap_err();
        assert!(e.to_string().contains("deprecated"), "{e}");
        let e = set(&attr("PROVFLD_CLIENT_HASH", "xsd:string", "x")).unwrap_err();
        assert!(e.to_string().contains("PROVFLD_CLIENT_HASH"), "{e}");
    }

    #[test]
    fn value_debug_hides_content() {
        assert_eq!(format!("{:?}", Value::Str("secret".into())), "Str(6 chars)");
    }
}
