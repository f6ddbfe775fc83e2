//! OneSpan's return and status codes, and the one place where errors become codes.
//!
//! `RET_SUCCESS`/`STAT_SUCCESS` (0), `STAT_INVCREDENTIALS` (1000) and `STAT_LOCKED` (1007) are
//! OneSpan's documented values. OneSpan publishes the name `STAT_INVDATA` without its number
//! and no status at all for the other failures provd distinguishes; those carry provd's own
//! numbers in the 1900 range, listed in the README.

use crate::protocol::ProvisionError;
use crate::store::StoreError;

use super::RequestError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReturnCode {
    Success,
    Failure,
}

impl ReturnCode {
    pub fn name(self) -> &'static str {
        match self {
            ReturnCode::Success => "RET_SUCCESS",
            ReturnCode::Failure => "RET_FAILURE",
        }
    }
    pub fn code(self) -> i32 {
        match self {
            ReturnCode::Success => 0,
            ReturnCode::Failure => -1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusCode {
    Success,
    InvalidCredentials,
    Locked,
    InvalidData,
    NotFound,
    NoFreeAuthenticator,
    NotSupported,
    Expired,
    RegistrationSpent,
    RateLimited,
    LicenseExhausted,
    InternalError,
    ReactivationRefused,
    Disabled,
}

impl StatusCode {
    pub const ALL: &'static [StatusCode] = &[
        StatusCode::Success,
        StatusCode::InvalidCredentials,
        StatusCode::Locked,
        StatusCode::InvalidData,
        StatusCode::NotFound,
        StatusCode::NoFreeAuthenticator,
        StatusCode::NotSupported,
        StatusCode::Expired,
        StatusCode::RegistrationSpent,
        StatusCode::RateLimited,
        StatusCode::LicenseExhausted,
        StatusCode::InternalError,
        StatusCode::ReactivationRefused,
        StatusCode::Disabled,
    ];

    pub fn name(self) -> &'static str {
        match self {
            StatusCode::Success => "STAT_SUCCESS",
            StatusCode::InvalidCredentials => "STAT_INVCREDENTIALS",
            StatusCode::Locked => "STAT_LOCKED",
            StatusCode::InvalidData => "STAT_INVDATA",
            StatusCode::NotFound => "STAT_NOT_FOUND",
            StatusCode::NoFreeAuthenticator => "STAT_NO_FREE_AUTHENTICATOR",
            StatusCode::NotSupported => "STAT_NOT_SUPPORTED",
            StatusCode::Expired => "STAT_EXPIRED",
            StatusCode::RegistrationSpent => "STAT_REGISTRATION_SPENT",
            StatusCode::RateLimited => "STAT_RATE_LIMITED",
            StatusCode::LicenseExhausted => "STAT_LICENSE_EXHAUSTED",
            StatusCode::InternalError => "STAT_INTERNAL_ERROR",
            StatusCode::ReactivationRefused => "STAT_REACTIVATION_REFUSED",
            StatusCode::Disabled => "STAT_DISABLED",
        }
    }

    pub fn code(self) -> i32 {
        match self {
            StatusCode::Success => 0,
            StatusCode::InvalidCredentials => 1000,
            StatusCode::Locked => 1007,
            StatusCode::InvalidData => 1900,
            StatusCode::NotFound => 1901,
            StatusCode::NoFreeAuthenticator => 1902,
            StatusCode::NotSupported => 1903,
            StatusCode::Expired => 1904,
            StatusCode::RegistrationSpent => 1905,
            StatusCode::RateLimited => 1906,
            StatusCode::LicenseExhausted => 1907,
            StatusCode::InternalError => 1999,
            StatusCode::ReactivationRefused => 1910,
            StatusCode::Disabled => 1911,
        }
    }

    pub fn return_code(self) -> ReturnCode {
        if self == StatusCode::Success {
            ReturnCode::Success
        } else {
            ReturnCode::Failure
        }
    }
}

/// A failure as the wire shows it: a status and a description for the error stack. The
/// description names the attribute or element at fault and never carries a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub status: StatusCode,
    pub description: String,
}

impl From<&RequestError> for Failure {
    fn from(e: &RequestError) -> Self {
        let status = match e {
            RequestError::UnknownCommand(_) => StatusCode::NotSupported,
            RequestError::Deprecated(..) | RequestError::Unsupported { .. } => {
                StatusCode::NotSupported
            }
            _ => StatusCode::InvalidData,
        };
        Failure {
            status,
            description: e.to_string(),
        }
    }
}

impl From<&ProvisionError> for Failure {
    fn from(e: &ProvisionError) -> Self {
        if let ProvisionError::Concealed { shown, .. } = e {
            return Failure::from(shown.as_ref());
        }
        let status = match e {
            ProvisionError::UnknownUser { .. } => StatusCode::NotFound,
            ProvisionError::WrongPassword => StatusCode::InvalidCredentials,
            ProvisionError::UserLocked => StatusCode::Locked,
            ProvisionError::NoFreeAuthenticator => StatusCode::NoFreeAuthenticator,
            ProvisionError::NotImplemented(_) => StatusCode::NotSupported,
            ProvisionError::Invalid { .. } => StatusCode::InvalidData,
            ProvisionError::UnknownRegistration(_) => StatusCode::NotFound,
            ProvisionError::RegistrationExpired(_) | ProvisionError::NoKeyExchange(_) => {
                StatusCode::Expired
            }
            ProvisionError::RegistrationSpent { .. } | ProvisionError::RevokedNow { .. } => {
                StatusCode::RegistrationSpent
            }
            ProvisionError::ProofFailed { .. } | ProvisionError::OtpRejected => {
                StatusCode::InvalidCredentials
            }
            ProvisionError::AlreadyActive(_) => StatusCode::RegistrationSpent,
            ProvisionError::TooManyExchanges { .. } => StatusCode::RegistrationSpent,
            ProvisionError::DeliveryUnavailable => StatusCode::NotSupported,
            ProvisionError::LicenseExhausted { .. } => StatusCode::LicenseExhausted,
            ProvisionError::UserDisabled | ProvisionError::AuthenticatorDisabled(_) => {
                StatusCode::Disabled
            }
            ProvisionError::ReactivationRefused { .. } => StatusCode::ReactivationRefused,
            ProvisionError::InvalidCredentials => StatusCode::InvalidCredentials,
            ProvisionError::Concealed { .. } => StatusCode::InvalidCredentials,
            ProvisionError::Store(StoreError::NotFound(_)) => StatusCode::NotFound,
            ProvisionError::Store(_) => StatusCode::InternalError,
        };
        let description = match e {
            // Database details stay in the server's log.
            ProvisionError::Store(StoreError::NotFound(m)) => m.clone(),
            ProvisionError::Store(_) => "internal error; see the server log".to_owned(),
            other => other.to_string(),
        };
        Failure {
            status,
            description,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_success_returns_success() {
        for s in StatusCode::ALL {
            assert_eq!(
                *s == StatusCode::Success,
                s.return_code() == ReturnCode::Success
            );
        }
    }

    #[test]
    fn status_codes_are_distinct() {
        let mut codes: Vec<i32> = StatusCode::ALL.iter().map(|s| s.code()).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), StatusCode::ALL.len());
    }

    #[test]
    fn store_details_do_not_reach_the_client() {
        let e = ProvisionError::Store(StoreError::Unavailable("password=hunter2".into()));
        let f = Failure::from(&e);
        assert_eq!(f.status, StatusCode::InternalError);
        assert!(!f.description.contains("hunter2"));
    }
}
