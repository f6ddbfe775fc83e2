//! `PROVISIONCMD_ASSIGN`: documented by OneSpan, but its attribute set is not published, so
//! provd answers STAT_NOT_SUPPORTED whatever the call carries (README, "Using provd from SOAP
//! clients").

use super::{AuditFields, Input, Route, SoapCommand, SoapReply};
use crate::lifecycle::{ProvisionError, Provisioning};
use crate::soap::response::ResultWriter;
use crate::soap::{Command, RequestError};

#[derive(Debug)]
pub struct Assign;

/// Never produced.
#[derive(Debug)]
pub enum Assigned {}

impl SoapCommand for Assign {
    const ROUTE: Route = Route::Execute(Command::Assign);
    const CHECKS_PASSWORD: bool = false;
    const INLINE: bool = false;
    type Reply = Assigned;

    fn decode(input: &mut Input<'_>) -> Result<Self, RequestError> {
        input.attributes.ignore_all();
        Ok(Assign)
    }

    fn audit(&self, _: &mut AuditFields<'_>) {}

    fn handle(self, _: &Provisioning) -> Result<Assigned, ProvisionError> {
        Err(ProvisionError::NotImplemented(Command::Assign.name()))
    }
}

impl SoapReply for Assigned {
    fn write(&self, _: &mut ResultWriter) {
        match *self {}
    }

    fn audit(&self, _: &mut AuditFields<'_>) {
        match *self {}
    }
}
