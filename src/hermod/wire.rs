//! The JSON wire types of the REST front (spec sections 3, 4 and 8): what integrators and
//! the app send and receive, exactly as spelled on the wire. Parsing into these types is
//! serde's job; turning them into the typed [`super::model`] is `model`'s. Nothing here
//! touches the store or the cryptography.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// An integer that may also arrive as a decimal string (`"2048"`, `1500`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq, ToSchema)]
#[serde(untagged)]
pub enum IntOrString {
    Int(i64),
    Str(String),
}

impl IntOrString {
    pub fn value(&self) -> Option<i64> {
        match self {
            IntOrString::Int(i) => Some(*i),
            IntOrString::Str(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
                s.parse().ok()
            }
            IntOrString::Str(_) => None,
        }
    }
}

/// `POST /rest/command/provision` body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProvisionRequest {
    #[serde(rename = "commandHeader", default)]
    pub command_header: CommandHeader,
    #[serde(rename = "provCommand")]
    pub prov_command: ProvCommand,
}

/// Unknown members are ignored (forward compatibility, spec section 3.1).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct CommandHeader {
    pub lifespan: Option<IntOrString>,
    pub timeout: Option<IntOrString>,
    #[serde(rename = "externalId")]
    pub external_id: Option<String>,
    pub to: Option<Vec<String>>,
    #[serde(flatten)]
    #[schema(ignore)]
    pub other: serde_json::Map<String, Value>,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProvCommand {
    pub nonce: String,
    pub userid: String,
    pub responsesignaturekey: String,
    pub responseformat: String,
    pub profile: Profile,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub servername: String,
    pub name: String,
    pub keygenrequests: Vec<KeyGenRequest>,
    /// Profile-level defaults (the seed's placement).
    #[serde(
        alias = "storageprios",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub storagepriors: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keystate: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certreq: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyGenRequest {
    pub keyid: String,
    pub usage: String,
    #[serde(alias = "keytypeprios")]
    pub keytypepriors: Vec<KeyTypePrior>,
    #[serde(
        alias = "storageprios",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub storagepriors: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keystate: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certreq: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyTypePrior {
    pub keytype: String,
    pub keylength: IntOrString,
    pub responsemechanism: String,
}

/// One destination of a command (seed shape).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct Destination {
    pub to: String,
    pub bid: String,
    pub uri: String,
    pub mid: String,
    pub location: String,
}

/// The 200 answer to a provision command (seed shape), and the base of the status answer
/// and the callback.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CommandView {
    #[serde(rename = "commandId")]
    pub command_id: String,
    pub destinations: Vec<Destination>,
    #[serde(rename = "commandType")]
    pub command_type: String,
    pub state: String,
    pub fqdn: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ResponseHeader {
    #[serde(rename = "inReplyTo")]
    pub in_reply_to: String,
    pub status: u16,
}

/// `GET /rest/command/{id}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CommandStatus {
    #[serde(flatten)]
    pub view: CommandView,
    #[serde(rename = "externalId", skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    pub created: String,
    #[serde(rename = "timeoutAt")]
    pub timeout_at: String,
    #[serde(rename = "lifespanEndsAt")]
    pub lifespan_ends_at: String,
    #[serde(rename = "responseHeader", skip_serializing_if = "Option::is_none")]
    pub response_header: Option<ResponseHeader>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(rename = "profileId", skip_serializing_if = "Option::is_none")]
    pub profile_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The callback body (section 8 and 14.9).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Callback {
    #[serde(rename = "responseHeader")]
    pub response_header: ResponseHeader,
    #[serde(rename = "commandId")]
    pub command_id: String,
    pub destinations: Vec<Destination>,
    #[serde(rename = "commandType")]
    pub command_type: String,
    pub fqdn: String,
    pub state: String,
    #[serde(rename = "externalId", skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
}

/// `GET /rest/ms/{bid}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BoxListing {
    pub bid: String,
    pub messages: Vec<BoxEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BoxEntry {
    pub mid: String,
    pub location: String,
    #[serde(rename = "commandType")]
    pub command_type: String,
}

/// `GET /rest/ms/{bid}/{mid}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Message {
    pub mid: String,
    #[serde(rename = "commandType")]
    pub command_type: String,
    #[serde(rename = "expiresAt")]
    pub expires_at: String,
    #[serde(rename = "provCommand")]
    pub prov_command: ProvCommand,
    pub boxurl: String,
}

/// `POST /rest/ms/{bid}/{mid}` body.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
}

/// `POST /rest/ms/{bid}/{mid}` success.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AnswerAccepted {
    pub state: String,
    #[serde(rename = "profileId", skip_serializing_if = "Option::is_none")]
    pub profile_id: Option<String>,
}

/// Every error body (section 3.5).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub status: u16,
    pub error: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = r#"{"commandHeader":{"lifespan":1500,"timeout":1500},
      "provCommand":{"nonce":"123456789","userid":"john.doe@nexusgroup.com",
      "responsesignaturekey":"ATTESTATION","responseformat":"jws",
      "profile":{"servername":"nexus-hermod1","name":"TestProfile",
        "keygenrequests":[{"keyid":"signer","usage":"SIG",
          "keytypepriors":[{"keytype":"RSA","keylength":"2048","responsemechanism":"RS256"}]}],
        "storagepriors":["APP"],"keystate":"ACTIVE"}}}"#;

    #[test]
    fn both_spellings_and_placements_parse() {
        let r: ProvisionRequest = serde_json::from_str(SEED).unwrap();
        assert_eq!(
            r.prov_command.profile.storagepriors.as_deref(),
            Some(&["APP".to_owned()][..])
        );
        let public = SEED
            .replace("keytypepriors", "keytypeprios")
            .replace("storagepriors", "storageprios");
        let r: ProvisionRequest = serde_json::from_str(&public).unwrap();
        assert_eq!(
            r.prov_command.profile.keygenrequests[0].keytypepriors.len(),
            1
        );
    }

    #[test]
    fn both_spellings_at_once_are_a_duplicate() {
        let both = SEED.replace(
            r#""keytypepriors":"#,
            r#""keytypeprios":[],"keytypepriors":"#,
        );
        let e = serde_json::from_str::<ProvisionRequest>(&both).unwrap_err();
        assert!(e.to_string().contains("duplicate field"), "{e}");
    }

    #[test]
    fn unknown_members_are_refused_except_in_the_header() {
        let extra = SEED.replace(r#""name":"TestProfile""#, r#""name":"TestProfile","x":1"#);
        let e = serde_json::from_str::<ProvisionRequest>(&extra).unwrap_err();
        assert!(e.to_string().contains("unknown field `x`"), "{e}");
        let header = SEED.replace(r#""timeout":1500"#, r#""timeout":1500,"future":true"#);
        let r: ProvisionRequest = serde_json::from_str(&header).unwrap();
        assert!(r.command_header.other.contains_key("future"));
    }

    #[test]
    fn numbers_may_be_strings() {
        assert_eq!(IntOrString::Str("2048".into()).value(), Some(2048));
        assert_eq!(IntOrString::Str("-1".into()).value(), None);
        assert_eq!(IntOrString::Str("".into()).value(), None);
        assert_eq!(IntOrString::Int(30).value(), Some(30));
    }
}
