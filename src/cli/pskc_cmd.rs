//! `provd authenticator import --format pskc` and `provd authenticator export --format pskc`.
//!
//! Import: the serial number is the key package's `DeviceInfo/SerialNo`, else the `Key@Id`;
//! a numeric one shorter than provd's 10 characters is padded with leading zeros
//! (`987654321` becomes `0987654321`). Every key package is checked before anything is
//! written, and all are written in one transaction.

use std::collections::HashSet;
use std::path::Path;

use anyhow::{bail, Context, Result};
use zeroize::Zeroizing;

use crate::pskc::{self, Protection};
use crate::store::{NewAuthenticator, Store, DEFAULT_APPLICATIONS, DEFAULT_TYPE};
use crate::types::{HexValue, SerialNumber};

/// A 16-byte AES key from a file holding 32 hex characters.
pub fn read_key_file(path: &Path) -> Result<Zeroizing<Vec<u8>>> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
    );
    let key = Zeroizing::new(
        HexValue::parse(text.trim())
            .with_context(|| format!("{}: the key", path.display()))?
            .into_bytes(),
    );
    if key.len() != 16 {
        bail!(
            "{}: the key must be 16 bytes (32 hex characters) for AES-128, got {}",
            path.display(),
            key.len()
        );
    }
    Ok(key)
}

fn serial_of(raw: &str) -> String {
    let raw = raw.trim();
    if !raw.is_empty() && raw.len() < SerialNumber::LEN && raw.bytes().all(|b| b.is_ascii_digit()) {
        format!("{raw:0>10}")
    } else {
        raw.to_owned()
    }
}

/// The authenticators of a PSKC document.
pub fn read(file: &Path, protection: &Protection) -> Result<Vec<NewAuthenticator>> {
    let xml = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let keys = pskc::parse(&xml, protection).with_context(|| file.display().to_string())?;
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(keys.len());
    for (i, k) in keys.into_iter().enumerate() {
        let at = format!("{}: key package {}", file.display(), i + 1);
        let Some(raw) = k.serial_no.as_deref().or(k.key_id.as_deref()) else {
            bail!("{at}: no DeviceInfo/SerialNo and no Key Id to take the serial number from");
        };
        let serial = SerialNumber::parse(&serial_of(raw))
            .with_context(|| format!("{at}: serial number {raw:?}"))?;
        if !seen.insert(serial.clone()) {
            bail!("{at}: serial number {serial} appears twice");
        }
        if k.secret.len() < 16 {
            bail!(
                "{at} ({serial}): the secret is {} bytes; provd needs at least 16",
                k.secret.len()
            );
        }
        out.push(NewAuthenticator {
            serial_no: serial,
            auth_type: DEFAULT_TYPE.into(),
            applications: DEFAULT_APPLICATIONS.into(),
            key: k.secret,
            license_limit: 1,
        });
    }
    if out.is_empty() {
        bail!("{} holds no key packages", file.display());
    }
    Ok(out)
}

/// Every authenticator (with its key) as a PSKC document encrypted with `key`.
pub fn export(store: &Store, key: &[u8], to: &Path) -> Result<usize> {
    let all = store.list_authenticators(None)?;
    let mut keys = Vec::with_capacity(all.len());
    for a in &all {
        keys.push((
            a.serial_no.as_str().to_owned(),
            store.authenticator_key(&a.serial_no)?,
        ));
    }
    let doc = pskc::write(&keys, key, "provd-export");
    std::fs::write(to, doc).with_context(|| format!("writing {}", to.display()))?;
    Ok(keys.len())
}

#[cfg(test)]
mod tests {
    #[test]
    fn numeric_serials_are_padded() {
        assert_eq!(super::serial_of("987654321"), "0987654321");
        assert_eq!(super::serial_of("VDS0000001"), "VDS0000001");
        assert_eq!(super::serial_of("ABC"), "ABC");
    }
}
