//! OneSpan's return and status codes, and the one place where errors become codes.
//!
//! Sources (OneSpan Authentication Server reference, docs corpus of the search tool):
//! * `oas-aref-status-codes-3-28` and `oa-aref-status-codes-2-3-27` ("OneSpan Authentication
//!   Server status codes"), reached from `oas-aref-error-and-status-codes-3-29`: status 0 is
//!   "no error"; every negative status equals the error code of the same failure (error-code
//!   table `oas-aref-error-messages-3-29`); 1000 `STAT_INVCREDENTIALS` (invalid credentials, and
//!   what the "Use Generic Authentication Status Codes" policy answers instead of 1007, 1009,
//!   1010, 1011, 1012, 1023, 1025 and 1033); 1002 `STAT_GROUPCHK` (Windows group check);
//!   1004 `STAT_EXP_CHALLENGE` (challenge expired); 1007 `STAT_LOCKED`; 1010 (no such user
//!   account).
//! * Names a real server answers, seen in public client test suites without their numbers:
//!   `STAT_INVDATA`, `STAT_MISSINGFLD`, `STAT_NOT_FOUND`, `STAT_DIGIPASS_NOT_AVAILABLE`,
//!   `STAT_ERROR`, `STAT_USER_UNKNOWN`.
//!
//! [`PublishedStatus`] lists what was readable in the stored copies of those pages. provd's own
//! failures use a published number where one is known ([`StatusCode::code`]) and otherwise a
//! number in 1900..=1999: positive, so it cannot equal an error code (all negative), and above
//! every published status (the highest seen is 1045). The README's "Status codes" table is the
//! same list.

use crate::lifecycle::ProvisionError;

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

/// The rows of OneSpan's status-code table that the stored copies of its pages show
/// (`oas-aref-status-codes-3-28`, `oa-aref-status-codes-2-3-27`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishedStatus {
    /// 0: no error.
    NoError,
    /// 1000: the credentials were invalid; also the generic answer.
    InvalidCredentials,
    /// 1002: the user failed the Windows group check.
    GroupCheck,
    /// 1004: the challenge has expired.
    ExpiredChallenge,
    /// 1007: the user account is locked.
    Locked,
    /// 1010: no user account was found.
    NoUserAccount,
}

impl PublishedStatus {
    pub const ALL: &'static [PublishedStatus] = &[
        PublishedStatus::NoError,
        PublishedStatus::InvalidCredentials,
        PublishedStatus::GroupCheck,
        PublishedStatus::ExpiredChallenge,
        PublishedStatus::Locked,
        PublishedStatus::NoUserAccount,
    ];

    pub fn code(self) -> i32 {
        match self {
            PublishedStatus::NoError => 0,
            PublishedStatus::InvalidCredentials => 1000,
            PublishedStatus::GroupCheck => 1002,
            PublishedStatus::ExpiredChallenge => 1004,
            PublishedStatus::Locked => 1007,
            PublishedStatus::NoUserAccount => 1010,
        }
    }

    /// The page the row was read from.
    pub fn source(self) -> &'static str {
        "oas-aref-status-codes-3-28, oa-aref-status-codes-2-3-27"
    }

    /// The statuses the "Use Generic Authentication Status Codes" policy answers as 1000.
    pub const GENERIC: &'static [i32] = &[1007, 1009, 1010, 1011, 1012, 1023, 1025, 1033];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusCode {
    Success,
    InvalidCredentials,
    Locked,
    UnknownUser,
    InvalidData,
    MissingField,
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
        StatusCode::UnknownUser,
        StatusCode::InvalidData,
        StatusCode::MissingField,
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
            StatusCode::UnknownUser => "STAT_USER_UNKNOWN",
            StatusCode::InvalidData => "STAT_INVDATA",
            StatusCode::MissingField => "STAT_MISSINGFLD",
            StatusCode::NotFound => "STAT_NOT_FOUND",
            StatusCode::NoFreeAuthenticator => "STAT_DIGIPASS_NOT_AVAILABLE",
            StatusCode::NotSupported => "STAT_NOT_SUPPORTED",
            StatusCode::Expired => "STAT_EXPIRED",
            StatusCode::RegistrationSpent => "STAT_REGISTRATION_SPENT",
            StatusCode::RateLimited => "STAT_RATE_LIMITED",
            StatusCode::LicenseExhausted => "STAT_LICENSE_EXHAUSTED",
            StatusCode::InternalError => "STAT_ERROR",
            StatusCode::ReactivationRefused => "STAT_REACTIVATION_REFUSED",
            StatusCode::Disabled => "STAT_DISABLED",
        }
    }

    pub fn code(self) -> i32 {
        match self {
            StatusCode::Success => 0,
            StatusCode::InvalidCredentials => 1000,
            StatusCode::Locked => 1007,
            StatusCode::UnknownUser => 1010,
            StatusCode::InvalidData => 1900,
            StatusCode::MissingField => 1908,
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

    /// The published row this status is, if it is one.
    pub fn published(self) -> Option<PublishedStatus> {
        PublishedStatus::ALL
            .iter()
            .copied()
            .find(|p| p.code() == self.code())
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
            RequestError::MissingCommand
            | RequestError::MissingId
            | RequestError::Missing(_)
            | RequestError::MissingElement(_) => StatusCode::MissingField,
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
            ProvisionError::UnknownUser { .. } => StatusCode::UnknownUser,
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
            ProvisionError::Store(s) if s.not_found().is_some() => StatusCode::NotFound,
            ProvisionError::Store(_) => StatusCode::InternalError,
        };
        let description = match e {
            // Database details stay in the server's log.
            ProvisionError::Store(s) if s.not_found().is_some() => {
                s.not_found().unwrap_or_default().to_owned()
            }
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
    fn published_numbers_are_used_where_known_and_invented_ones_cannot_collide() {
        for s in StatusCode::ALL {
            let c = s.code();
            match s.published() {
                Some(p) => assert_eq!(p.code(), c),
                // Not a published row: outside the published range and not negative.
                None => assert!((1900..=1999).contains(&c), "{} {c}", s.name()),
            }
        }
        assert_eq!(StatusCode::UnknownUser.code(), 1010);
        assert_eq!(StatusCode::Locked.code(), 1007);
        assert_eq!(StatusCode::InvalidCredentials.code(), 1000);
        // The generic policy hides exactly the published statuses OneSpan's page lists.
        assert!(PublishedStatus::GENERIC.contains(&StatusCode::UnknownUser.code()));
        assert!(PublishedStatus::GENERIC.contains(&StatusCode::Locked.code()));
    }

    #[test]
    fn missing_values_answer_missingfld() {
        let f = Failure::from(&RequestError::MissingCommand);
        assert_eq!(f.status, StatusCode::MissingField);
        assert_eq!(f.status.name(), "STAT_MISSINGFLD");
    }

    #[test]
    fn store_details_do_not_reach_the_client() {
        let e = ProvisionError::Store(crate::store::StoreError::Unavailable(
            "password=hunter2".into(),
        ));
        let f = Failure::from(&e);
        assert_eq!(f.status, StatusCode::InternalError);
        assert!(!f.description.contains("hunter2"));
    }
}
