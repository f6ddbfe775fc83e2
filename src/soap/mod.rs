//! The SOAP wire format: parsing `provisioningExecute` and the distinct DSAPP-SRP commands into
//! typed calls, and writing responses in OneSpan's shape. Never touches the database.

pub mod attributes;
pub mod codes;
pub mod commands;
pub mod encoding;
pub mod reader;
pub mod request;
pub mod response;
pub mod wsdl;
pub mod xml;

use thiserror::Error;

pub use attributes::{AttributeId, AttributeSet, Length, Value, XsdType};
pub use commands::Command;
pub use request::{parse_http_request, parse_request, Body, Operation, Parsed};

pub const SOAP_ENV_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
pub const PROV_NS: &str = "http://www.vasco.com/IdentikeyServer/IdentikeyTypes/Provisioning";
pub const BASIC_TYPES_NS: &str =
    "http://www.vasco.com/IdentikeyServer/IdentikeyTypes/BasicTypes.xsd";
pub const PROVISIONING_TYPES_NS: &str =
    "http://www.vasco.com/IdentikeyServer/IdentikeyTypes/ProvisioningTypes.xsd";

/// What makes a message not a provisioning request at all: answered with a SOAP Fault.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WireError {
    #[error("malformed XML: {0}")]
    Malformed(String),
    #[error("not a SOAP 1.1 envelope: {0}")]
    NotSoap(String),
    #[error("unknown operation {0}")]
    UnknownOperation(String),
}

/// What is wrong inside a well-formed provisioning request: answered with a normal response
/// carrying a failure status. Every variant names the attribute or element at fault.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RequestError {
    #[error("missing cmd element")]
    MissingCommand,
    #[error("unknown command {0:?}")]
    UnknownCommand(String),
    #[error("unknown attribute {0:?}")]
    Unknown(String),
    #[error("unexpected element {0:?} in attributeSet")]
    Unexpected(String),
    #[error("an attributes element has no attributeID")]
    MissingId,
    #[error("{0}: missing required value")]
    Missing(AttributeId),
    #[error("{0}: given more than once")]
    Duplicate(AttributeId),
    #[error("{id}: expected {}, got {got}", expected.name())]
    WrongType {
        id: AttributeId,
        expected: XsdType,
        got: String,
    },
    #[error("{id}: value must be {}, got {got} characters", describe(expected))]
    Length {
        id: AttributeId,
        expected: Length,
        got: usize,
    },
    #[error("{id}: not a valid {}", expected.name())]
    BadNumber { id: AttributeId, expected: XsdType },
    #[error("{0}: {1}")]
    Deprecated(AttributeId, &'static str),
    #[error("{0}: not accepted by {1}")]
    NotAccepted(AttributeId, &'static str),
    #[error("{id}: {reason}")]
    BadValue { id: AttributeId, reason: String },
    #[error("{id}: {reason}")]
    Unsupported { id: AttributeId, reason: String },
    #[error("{0}: missing required element")]
    MissingElement(&'static str),
    #[error("{path}: {reason}")]
    BadElement { path: &'static str, reason: String },
}

fn describe(l: &Length) -> String {
    match l {
        Length::Any => "any length".into(),
        Length::AtMost(n) => format!("at most {n} characters"),
        Length::Exactly(n) => format!("exactly {n} characters"),
    }
}
