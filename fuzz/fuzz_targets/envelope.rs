//! The SOAP envelope parser must never panic, whatever the bytes: every failure is a
//! `WireError` (a SOAP Fault) or a `RequestError` inside `Parsed::call`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use provd::wire::xml::Limits;

fuzz_target!(|data: &[u8]| {
    let _ = provd::wire::parse_request(data, &Limits::default());
});
