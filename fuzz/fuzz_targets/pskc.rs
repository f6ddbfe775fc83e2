//! The PSKC (RFC 6030) reader must never panic, whatever the document and however it is
//! protected: plaintext, or a pre-shared key. (A password is tried only on inputs without an
//! IterationCount, which end before PBKDF2: up to 10^7 iterations would time the fuzzer out.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use provd::pskc::{parse, Protection};
use zeroize::Zeroizing;

fuzz_target!(|data: &[u8]| {
    let _ = parse(data, &Protection::None);
    let _ = parse(data, &Protection::PreShared(Zeroizing::new(vec![0x12; 16])));
    if !data.windows(14).any(|w| w == b"IterationCount") {
        let _ = parse(data, &Protection::Password(Zeroizing::new("qwerty".into())));
    }
});
