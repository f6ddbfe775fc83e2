use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::output::{opt, Output};
use super::user::Who;
use crate::crypto::random_bytes;
use crate::store::{
    Authenticator, AuthenticatorStatus, NewAuthenticator, Store, DEFAULT_APPLICATIONS, DEFAULT_TYPE,
};
use crate::types::{HexValue, Prefix, SerialNumber};

/// Key length of generated authenticators, in bytes.
const KEY_BYTES: usize = 32;
const MAX_GENERATE: u32 = 1_000_000;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum StatusFilter {
    Available,
    Assigned,
    Active,
}

impl From<StatusFilter> for AuthenticatorStatus {
    fn from(s: StatusFilter) -> Self {
        match s {
            StatusFilter::Available => AuthenticatorStatus::Available,
            StatusFilter::Assigned => AuthenticatorStatus::Assigned,
            StatusFilter::Active => AuthenticatorStatus::Active,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum AuthenticatorCommand {
    /// Create software authenticators with fresh random keys and serial numbers.
    Generate {
        /// 3-character serial number prefix, e.g. VDS.
        #[arg(long)]
        prefix: Prefix,
        /// How many to create.
        #[arg(long, default_value_t = 1)]
        count: u32,
        /// Authenticator type.
        #[arg(long = "type", default_value = DEFAULT_TYPE)]
        auth_type: String,
        /// Applications, comma-separated.
        #[arg(long, default_value = DEFAULT_APPLICATIONS)]
        applications: String,
        /// Device instances allowed by the license (multi-device licensing), 1 to 99.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..=99))]
        license_limit: i32,
    },
    /// Import authenticators from a CSV or JSON file (by extension, or --format).
    ///
    /// Fields: serial_no (required), type, applications, key (hex; generated when absent),
    /// license_limit. The whole file is checked before anything is written, and written in
    /// one transaction.
    Import {
        #[arg(long)]
        file: PathBuf,
        /// csv, json or pskc (RFC 6030) [default: by extension; .xml and .pskcxml are pskc].
        #[arg(long, value_parser = ["csv", "json", "pskc"])]
        format: Option<String>,
        /// PSKC encrypted with a pre-shared key: the file holding it (32 hex characters).
        #[arg(long)]
        key_file: Option<PathBuf>,
        /// PSKC encrypted with a password-derived key (PBKDF2): read the password from the
        /// first line of standard input.
        #[arg(long, conflicts_with = "key_file")]
        password_stdin: bool,
    },
    /// Write every authenticator with its key as PSKC (RFC 6030), encrypted with a pre-shared
    /// AES-128 key (AES-128-CBC, HMAC-SHA256).
    Export {
        #[arg(long, value_parser = ["pskc"], default_value = "pskc")]
        format: String,
        /// The file holding the encryption key (32 hex characters).
        #[arg(long)]
        key_file: PathBuf,
        /// The PSKC file to write.
        #[arg(long)]
        to: PathBuf,
    },
    /// List authenticators.
    List {
        #[arg(long)]
        status: Option<StatusFilter>,
    },
    /// Show one authenticator and its device instances.
    Show { serial: SerialNumber },
    /// Assign a free authenticator to a user.
    Assign {
        serial: SerialNumber,
        #[command(flatten)]
        who: Who,
    },
    /// Return an authenticator to the free pool: its registrations and device instances are
    /// dropped and its key is retired (replaced by a fresh key no device ever received).
    ///
    /// An authenticator that is active on a device is refused unless --force: forced, the
    /// device holding the old key stops working, and the next user who registers the
    /// authenticator receives a new key, never the old one.
    Unassign {
        serial: SerialNumber,
        /// Unassign an active authenticator too (its device stops working).
        #[arg(long)]
        force: bool,
    },
    /// Disable an authenticator: it is not handed out, and no registration or activation of
    /// it proceeds, until enabled again.
    Disable { serial: SerialNumber },
    /// Enable a disabled authenticator.
    Enable { serial: SerialNumber },
}

const HEADERS: &[&str] = &[
    "serial",
    "type",
    "applications",
    "status",
    "user",
    "domain",
    "license",
    "disabled",
];

fn row(a: &Authenticator) -> Vec<String> {
    vec![
        a.serial_no.to_string(),
        a.auth_type.clone(),
        a.applications.clone(),
        a.status.as_str().into(),
        opt(&a.user_id),
        opt(&a.domain),
        a.license_limit.to_string(),
        if a.disabled { "disabled" } else { "" }.into(),
    ]
}

fn progress(total: usize, verb: &str) -> ProgressBar {
    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({eta})")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar.set_message(verb.to_owned());
    bar
}

#[derive(Debug, Deserialize)]
pub(crate) struct ImportRow {
    pub(crate) serial_no: String,
    #[serde(rename = "type", default)]
    auth_type: Option<String>,
    #[serde(default)]
    applications: Option<String>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    license_limit: Option<i32>,
}

fn read_rows(file: &Path, format: Option<&str>) -> Result<Vec<ImportRow>> {
    let format = match format {
        Some(f) => f.to_owned(),
        None => match file.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("csv") => "csv".into(),
            Some(e) if e.eq_ignore_ascii_case("json") => "json".into(),
            _ => bail!(
                "cannot tell the format of {}: use --format csv|json",
                file.display()
            ),
        },
    };
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    if format == "json" {
        return serde_json::from_str(&text).with_context(|| format!("parsing {}", file.display()));
    }
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut rows = Vec::new();
    for (i, r) in reader.deserialize().enumerate() {
        rows.push(r.with_context(|| format!("{} line {}", file.display(), i + 2))?);
    }
    Ok(rows)
}

pub(crate) fn to_new(rows: Vec<ImportRow>) -> Result<Vec<NewAuthenticator>> {
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(rows.len());
    for (i, r) in rows.into_iter().enumerate() {
        let at = format!("record {}", i + 1);
        let serial = SerialNumber::parse(&r.serial_no)
            .with_context(|| format!("{at}: serial_no {:?}", r.serial_no))?;
        if !seen.insert(serial.clone()) {
            bail!("{at}: serial_no {serial} appears twice in the file");
        }
        let key = match r.key.filter(|k| !k.is_empty()) {
            Some(hex) => {
                let k = Zeroizing::new(
                    HexValue::parse(&hex)
                        .with_context(|| format!("{at} ({serial}): key"))?
                        .into_bytes(),
                );
                if k.len() < 16 {
                    bail!("{at} ({serial}): key must be at least 16 bytes");
                }
                k
            }
            None => random_bytes(KEY_BYTES),
        };
        let license_limit = r.license_limit.unwrap_or(1);
        if !(1..=99).contains(&license_limit) {
            bail!("{at} ({serial}): license_limit must be 1 to 99, got {license_limit}");
        }
        out.push(NewAuthenticator {
            serial_no: serial,
            auth_type: r
                .auth_type
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| DEFAULT_TYPE.into()),
            applications: r
                .applications
                .filter(|a| !a.is_empty())
                .unwrap_or_else(|| DEFAULT_APPLICATIONS.into()),
            key,
            license_limit,
        });
    }
    Ok(out)
}

fn insert_with_progress(store: &Store, batch: &[NewAuthenticator], verb: &str) -> Result<()> {
    let bar = progress(batch.len(), verb);
    let result = store.insert_authenticators(batch, &mut |n| bar.set_position(n as u64));
    bar.finish_and_clear();
    Ok(result?)
}

pub fn run(cmd: AuthenticatorCommand, store: &Store, out: &Output) -> Result<()> {
    match cmd {
        AuthenticatorCommand::Generate {
            prefix,
            count,
            auth_type,
            applications,
            license_limit,
        } => {
            if count == 0 || count > MAX_GENERATE {
                bail!("--count must be 1 to {MAX_GENERATE}");
            }
            let sample = SerialNumber::from_prefix(&prefix, 0);
            let prefix_str = &sample.as_str()[..3];
            let mut taken = store.serials_with_prefix(prefix_str)?;
            if taken.len() as u64 + count as u64 > 10_000_000 / 2 {
                bail!(
                    "prefix {prefix_str} has too few free serial numbers left; use another prefix"
                );
            }
            let mut batch = Vec::with_capacity(count as usize);
            while batch.len() < count as usize {
                let serial = SerialNumber::from_prefix(
                    &prefix,
                    crate::crypto::random_index(10_000_000) as u32,
                );
                if taken.insert(serial.as_str().to_owned()) {
                    batch.push(NewAuthenticator {
                        serial_no: serial,
                        auth_type: auth_type.clone(),
                        applications: applications.clone(),
                        key: random_bytes(KEY_BYTES),
                        license_limit,
                    });
                }
            }
            batch.sort_by(|a, b| a.serial_no.cmp(&b.serial_no));
            insert_with_progress(store, &batch, "generating")?;
            if out.json {
                let serials: Vec<&str> = batch.iter().map(|a| a.serial_no.as_str()).collect();
                out.one(&serde_json::json!({ "created": serials }));
            } else {
                for a in &batch {
                    super::output::emit(a.serial_no.as_str());
                }
                eprintln!("created {} authenticator(s)", batch.len());
            }
        }
        AuthenticatorCommand::Export {
            format: _,
            key_file,
            to,
        } => {
            let key = super::pskc_cmd::read_key_file(&key_file)?;
            let n = super::pskc_cmd::export(store, &key, &to)?;
            out.message(&format!(
                "exported {n} authenticator(s) to {}",
                to.display()
            ));
        }
        AuthenticatorCommand::Import {
            file,
            format,
            key_file,
            password_stdin,
        } => {
            let is_xml = file.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                e.eq_ignore_ascii_case("xml") || e.eq_ignore_ascii_case("pskcxml")
            });
            let batch = if format.as_deref() == Some("pskc") || (format.is_none() && is_xml) {
                let protection = if let Some(k) = &key_file {
                    crate::pskc::Protection::PreShared(super::pskc_cmd::read_key_file(k)?)
                } else if password_stdin {
                    let args = super::PasswordArgs {
                        password_stdin: true,
                        password: None,
                    };
                    crate::pskc::Protection::Password(args.read()?.expect("read from stdin"))
                } else {
                    crate::pskc::Protection::None
                };
                super::pskc_cmd::read(&file, &protection)?
            } else {
                if key_file.is_some() || password_stdin {
                    bail!("--key-file and --password-stdin are for --format pskc");
                }
                to_new(read_rows(&file, format.as_deref())?)?
            };
            if batch.is_empty() {
                bail!("{} holds no authenticators", file.display());
            }
            insert_with_progress(store, &batch, "importing")?;
            out.message(&format!("imported {} authenticator(s)", batch.len()));
        }
        AuthenticatorCommand::List { status } => {
            let all = store.list_authenticators(status.map(Into::into))?;
            out.list(&all, HEADERS, row);
        }
        AuthenticatorCommand::Show { serial } => {
            let a = store.get_authenticator(&serial)?;
            let devices = store.list_device_instances(serial.as_str())?;
            if out.json {
                out.one(&serde_json::json!({
                    "authenticator": a,
                    "device_instances": devices,
                }));
            } else {
                out.one(&a);
                if !devices.is_empty() {
                    out.list(
                        &devices,
                        &[
                            "seq",
                            "type",
                            "device id",
                            "status",
                            "activated",
                            "description",
                        ],
                        |d| {
                            vec![
                                format!("{:02}", d.sequence_no),
                                crate::protocol::mdl::DeviceType::from_code(
                                    u8::try_from(d.device_type).unwrap_or(u8::MAX),
                                )
                                .map_or_else(
                                    || d.device_type.to_string(),
                                    |t| format!("{} ({})", d.device_type, t.name()),
                                ),
                                opt(&d.device_id),
                                d.status.as_str().into(),
                                super::output::opt_time(&d.activated_at),
                                opt(&d.description),
                            ]
                        },
                    );
                }
            }
        }
        AuthenticatorCommand::Assign { serial, who } => {
            let a = store.assign_authenticator(&serial, &who.user_id, &who.domain)?;
            out.one(&a);
        }
        AuthenticatorCommand::Unassign { serial, force } => {
            let a = store.unassign_authenticator(&serial, force)?;
            out.one(&a);
        }
        AuthenticatorCommand::Disable { serial } => {
            let a = store.set_authenticator_disabled(&serial, true)?;
            out.one(&a);
        }
        AuthenticatorCommand::Enable { serial } => {
            let a = store.set_authenticator_disabled(&serial, false)?;
            out.one(&a);
        }
    }
    Ok(())
}
