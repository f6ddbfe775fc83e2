//! `PROVISIONCMD_SERVER_TIME`: the server's clock, in Unix seconds. Takes no attributes,
//! touches neither the store nor a password: answered on the async worker.

use super::{AuditFields, Input, Route, SoapCommand, SoapReply};
use crate::lifecycle::{ProvisionError, Provisioning};
use crate::soap::response::ResultWriter;
use crate::soap::{AttributeId, Command, RequestError, Value};

#[derive(Debug)]
pub struct ServerTime;

/// The server's time, in Unix seconds.
#[derive(Debug)]
pub struct Time(pub i64);

impl SoapCommand for ServerTime {
    const ROUTE: Route = Route::Execute(Command::ServerTime);
    const CHECKS_PASSWORD: bool = false;
    const INLINE: bool = true;
    type Reply = Time;

    fn decode(_: &mut Input<'_>) -> Result<Self, RequestError> {
        Ok(ServerTime)
    }

    fn audit(&self, _: &mut AuditFields<'_>) {}

    fn handle(self, p: &Provisioning) -> Result<Time, ProvisionError> {
        Ok(Time(p.now()))
    }
}

impl SoapReply for Time {
    fn write(&self, w: &mut ResultWriter) {
        w.attribute(AttributeId::ServerTime, Value::Int(self.0));
    }

    fn audit(&self, _: &mut AuditFields<'_>) {}
}
