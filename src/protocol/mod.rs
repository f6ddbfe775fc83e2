//! The protocols' cryptography: SRP-6a, DSAPP revision 3 (CPace), MDL, the standard
//! registration's password protection, TOTP, and the one record protection (encrypt-then-MAC)
//! they share. Pure functions over typed values: no XML, no JSON, no SQL, no clock (the caller
//! passes the time). Randomness comes from [`crate::crypto::random_bytes`] and
//! [`crate::crypto::random_array`].

pub mod cpace;
pub mod dsapp;
pub mod luhn;
pub mod mdl;
pub mod otp;
pub mod record;
pub mod srp;
pub mod standard;
