//! The `provd` command line: the server, migrations, and the admin commands for the store.

mod authenticator;
mod outbox;
mod output;
mod seed;
mod user;

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use zeroize::Zeroizing;

use crate::config::{redact_url, Config, Overrides};
use crate::store::Store;
use output::Output;

#[derive(Debug, Parser)]
#[command(
    name = "provd",
    version,
    about = "OneSpan-compatible SOAP provisioning server"
)]
pub struct Cli {
    /// Configuration file (TOML); default `provd.toml` when present.
    #[arg(long, global = true, env = "PROVD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Database URL: a SQLite file path, or postgres://...
    #[arg(long, global = true)]
    pub database: Option<String>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the SOAP server (applies pending migrations first).
    Serve {
        /// Address to listen on [default: 127.0.0.1:8888].
        #[arg(long)]
        listen: Option<String>,
        /// Apply this seed file (see `provd seed`) before serving.
        #[arg(long)]
        seed: Option<PathBuf>,
    },
    /// Create users, authenticators and assignments from a TOML or JSON file, idempotently:
    /// what exists is kept, what is missing is created.
    Seed { file: PathBuf },
    /// Send every *.request.xml of DIR to a SOAP server and compare each answer with its
    /// *.response.xml after masking volatile values; exits non-zero on any mismatch.
    Replay {
        dir: PathBuf,
        /// The server's SOAP endpoint.
        #[arg(long)]
        url: String,
        /// Write the (masked) answers as the *.response.xml files instead of comparing.
        #[arg(long)]
        record: bool,
        /// A further mask, PATTERN=REPLACEMENT (a regular expression; repeatable).
        #[arg(long = "mask")]
        masks: Vec<String>,
        /// Further masks from a TOML ([[mask]] pattern/replacement) or JSON file.
        #[arg(long)]
        masks_file: Option<PathBuf>,
        /// Do not apply provd's built-in masks.
        #[arg(long)]
        no_default_masks: bool,
    },
    /// Apply pending database migrations.
    Migrate,
    /// Manage users.
    #[command(subcommand)]
    User(user::UserCommand),
    /// Manage authenticators.
    #[command(subcommand)]
    Authenticator(authenticator::AuthenticatorCommand),
    /// Inspect registrations.
    #[command(subcommand)]
    Registration(RegistrationCommand),
    /// Play a mobile app against a server (the reference client).
    #[command(subcommand)]
    Client(ClientCommand),
    /// Read the audit trail of provisioning calls.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Inspect the e-mail outbox; queue a test message.
    #[command(subcommand)]
    Outbox(outbox::OutboxCommand),
}

#[derive(Debug, Subcommand)]
pub enum RegistrationCommand {
    /// List registrations, newest first.
    List {
        #[arg(long, value_parser = ["pending", "delivered", "activated", "revoked"])]
        status: Option<String>,
    },
    /// Revoke a registration that is not spent: its activation can no longer complete, the
    /// key it prepared is dropped, and the authenticator keeps its current key.
    Revoke {
        registration_id: crate::types::RegistrationId,
    },
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// PROVISIONCMD_REGISTER then PROVISIONCMD_ACTIVATE with the first OTP (online), as an app
    /// given the static password does.
    Register {
        #[arg(long)]
        url: String,
        #[arg(long)]
        user: String,
        #[arg(long)]
        domain: Option<String>,
        /// Ask for offline activation data (activates at once; no ACTIVATE call).
        #[arg(long)]
        offline: bool,
        /// The user's static password.
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// PROVISIONCMD_DSAPPREGISTER, the ECDH key exchange and PROVISIONCMD_DSAPPACTIVATE.
    Dsapp {
        #[arg(long)]
        url: String,
        #[arg(long)]
        user: String,
        /// DSAPP protocol version, 1 or 2.
        #[arg(long, default_value_t = 2)]
        version: u32,
        /// Activate with a derivation code instead of an OTP.
        #[arg(long)]
        derivation_code: bool,
        /// The user's static password.
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// Multi-device licensing: MDL_REGISTER, MDL_ADD_DEVICE (device code from Activation
    /// Message 1) and MDL_ACTIVATE (signature over Activation Message 2).
    Mdl {
        #[arg(long)]
        url: String,
        #[arg(long)]
        user: String,
        /// Device type code (PROVFLD_DEVICE_TYPE), e.g. 3 iOS, 7 Android.
        #[arg(long, default_value = "7")]
        device_type: String,
        /// The device's 32-bit identifier.
        #[arg(long, default_value_t = 1)]
        device_id: u32,
        #[arg(long)]
        description: Option<String>,
        /// The user's static password.
        #[command(flatten)]
        password: PasswordArgs,
    },
    /// Complete a DSAPP-SRP online activation: key exchange, activation data, OTP.
    Activate {
        /// The server's SOAP endpoint, e.g. http://127.0.0.1:8888/
        #[arg(long)]
        url: String,
        #[arg(long)]
        registration_id: crate::types::RegistrationId,
        /// The activation password (9 characters); read from stdin with --password-stdin.
        #[command(flatten)]
        password: PasswordArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// The newest entries, newest first.
    List {
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
}

/// How a command gets a password without putting it on the command line.
#[derive(Debug, Args)]
pub struct PasswordArgs {
    /// Read the static password from the first line of standard input.
    #[arg(long)]
    pub password_stdin: bool,
    /// The static password (visible in the process list; prefer --password-stdin).
    #[arg(long, conflicts_with = "password_stdin")]
    pub password: Option<String>,
}

impl PasswordArgs {
    pub fn read(&self) -> Result<Option<Zeroizing<String>>> {
        if let Some(p) = &self.password {
            return Ok(Some(Zeroizing::new(p.clone())));
        }
        if self.password_stdin {
            let mut line = Zeroizing::new(String::new());
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("reading the password from standard input")?;
            let pw = Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_owned());
            if pw.is_empty() {
                bail!("the password read from standard input is empty");
            }
            return Ok(Some(pw));
        }
        Ok(None)
    }
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PROVD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

fn open_store(config: &Config) -> Result<Store> {
    let key = config.master_key()?;
    Store::open(&config.database_url, key, config.pool_size)
        .with_context(|| format!("opening the database {}", redact_url(&config.database_url)))
}

pub fn run(cli: Cli) -> Result<()> {
    if let Command::Replay {
        dir,
        url,
        record,
        masks,
        masks_file,
        no_default_masks,
    } = &cli.command
    {
        let mut m = if *no_default_masks {
            crate::replay::Masks::none()
        } else {
            crate::replay::Masks::provd()
        };
        if let Some(f) = masks_file {
            m.add_file(f)?;
        }
        for spec in masks {
            m.add_spec(spec)?;
        }
        let summary = crate::replay::run(dir, url, &m, *record)?;
        crate::replay::print(&summary);
        if !summary.ok() {
            std::process::exit(1);
        }
        return Ok(());
    }
    let listen = match &cli.command {
        Command::Serve { listen, .. } => listen.clone(),
        _ => None,
    };
    let config = Config::load(
        cli.config.as_deref(),
        &Overrides {
            listen,
            database_url: cli.database.clone(),
        },
    )?;
    init_logging(&config.log_format);
    let out = Output { json: cli.json };
    match cli.command {
        Command::Client(ClientCommand::Activate {
            url,
            registration_id,
            password,
        }) => {
            let Some(pw) = password.read()? else {
                bail!("give the activation password with --password-stdin (or --password)");
            };
            let done = crate::client::Client::new(&url).activate(&registration_id, pw.trim())?;
            out.one(&serde_json::json!({
                "serial_no": done.serial_no,
                "user_id": done.user_id,
                "domain": done.domain,
                "status": "activated",
            }));
            Ok(())
        }
        Command::Client(ClientCommand::Register {
            url,
            user,
            domain,
            offline,
            password,
        }) => {
            let Some(pw) = password.read()? else {
                bail!("give the static password with --password-stdin (or --password)");
            };
            let client = crate::client::Client::new(&url);
            let reg =
                client.register_standard(&user, domain.as_deref(), &pw, None, None, offline)?;
            if !offline {
                client.activate_standard(&user, domain.as_deref(), &reg.key)?;
            }
            out.one(&serde_json::json!({
                "serial_no": reg.serial_no,
                "user_id": reg.user_id,
                "domain": reg.domain,
                "event_reactivation_counter": reg.event_reactivation_counter,
                "status": "activated",
            }));
            Ok(())
        }
        Command::Client(ClientCommand::Dsapp {
            url,
            user,
            version,
            derivation_code,
            password,
        }) => {
            let Some(pw) = password.read()? else {
                bail!("give the static password with --password-stdin (or --password)");
            };
            let client = crate::client::Client::new(&url);
            let (id, activation_password) = client.dsapp_register(&user, &pw, version)?;
            let proof = if derivation_code {
                crate::client::DsappProof::DerivationCode
            } else {
                crate::client::DsappProof::Otp
            };
            let done = client.dsapp_activate(&id, &activation_password, version, proof)?;
            out.one(&serde_json::json!({
                "registration_id": id,
                "serial_no": done.serial_no,
                "user_id": done.user_id,
                "domain": done.domain,
                "status": "activated",
            }));
            Ok(())
        }
        Command::Client(ClientCommand::Mdl {
            url,
            user,
            device_type,
            device_id,
            description,
            password,
        }) => {
            let Some(pw) = password.read()? else {
                bail!("give the static password with --password-stdin (or --password)");
            };
            let device_type = crate::protocol::mdl::DeviceType::parse(&device_type)?;
            let client = crate::client::Client::new(&url);
            let reg = client.mdl_register(&user, &pw, None)?;
            let am2 =
                client.mdl_add_device(&reg, device_type, device_id, description.as_deref())?;
            client.mdl_activate(&reg, &am2, false)?;
            out.one(&serde_json::json!({
                "registration_id": reg.registration_id,
                "serial_no": reg.am1.serial,
                "sequence_no": am2.sequence,
                "device_id": device_id,
                "status": "active",
            }));
            Ok(())
        }
        Command::Serve { seed, .. } => {
            let store = open_store(&config)?;
            if let Some(file) = seed {
                let done = seed::apply(&store, &file)?;
                tracing::info!(?done, file = %file.display(), "seed applied");
            }
            tracing::info!(database = %redact_url(&config.database_url), backend = ?store.backend(), "store ready");
            let state = crate::server::AppState::new(store.clone(), &config);
            let delivery =
                crate::delivery::Delivery::new(store, &config, &state.mail, state.metrics.clone())?;
            let blocking = match config.blocking_threads {
                0 => 2 * config.pool_size as usize,
                n => n,
            };
            // actix gives each of its workers its own blocking pool of this many threads.
            let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
            let listener = crate::server::Listener {
                address: config.listen.clone(),
                max_body_bytes: config.max_body_bytes,
                blocking_threads: blocking.div_ceil(workers),
                tls: config.tls()?,
            };
            actix_web::rt::System::new().block_on(crate::server::serve(state, listener, delivery))
        }
        Command::Seed { file } => {
            let store = open_store(&config)?;
            let done = seed::apply(&store, &file)?;
            out.message(&format!(
                "seed {}: {} user(s) and {} authenticator(s) created, {} assigned, {} unchanged",
                file.display(),
                done.users_created,
                done.authenticators_created,
                done.assigned,
                done.unchanged
            ));
            Ok(())
        }
        Command::Replay { .. } => unreachable!("handled before the configuration is read"),
        Command::Migrate => {
            let key = config.master_key()?;
            let store = Store::connect(&config.database_url, key, 1)?;
            let n = store.migrate()?;
            out.message(&format!(
                "database is up to date ({n} migration(s) applied now)"
            ));
            Ok(())
        }
        Command::User(c) => user::run(c, &open_store(&config)?, &out),
        Command::Authenticator(c) => authenticator::run(c, &open_store(&config)?, &out),
        Command::Outbox(c) => outbox::run(c, &open_store(&config)?, &config, &out),
        Command::Registration(RegistrationCommand::List { status }) => {
            use crate::store::RegistrationStatus as S;
            let status = status.map(|s| match s.as_str() {
                "pending" => S::Pending,
                "delivered" => S::Delivered,
                "activated" => S::Activated,
                _ => S::Revoked,
            });
            let rows: Vec<serde_json::Value> = open_store(&config)?
                .list_registrations(status)?
                .into_iter()
                .map(|(r, user, domain)| {
                    serde_json::json!({
                        "registration_id": r.registration_id,
                        "user_id": user,
                        "domain": domain,
                        "serial_no": r.serial_no,
                        "status": r.status,
                        "failures": r.failures,
                        "created_at": r.created_at,
                        "expires_at": r.expires_at,
                    })
                })
                .collect();
            out.list(
                &rows,
                &[
                    "registration",
                    "user",
                    "domain",
                    "serial",
                    "status",
                    "failures",
                    "expires",
                ],
                |r| {
                    [
                        "registration_id",
                        "user_id",
                        "domain",
                        "serial_no",
                        "status",
                        "failures",
                        "expires_at",
                    ]
                    .iter()
                    .map(|k| output::plain(&r[*k]))
                    .collect()
                },
            );
            Ok(())
        }
        Command::Registration(RegistrationCommand::Revoke { registration_id }) => {
            let store = open_store(&config)?;
            if !store.revoke_registration(&registration_id)? {
                let r = store.get_registration(&registration_id)?;
                anyhow::bail!(
                    "registration {registration_id} is {} and cannot be revoked",
                    r.status.as_str()
                );
            }
            let r = store.get_registration(&registration_id)?;
            out.one(&r);
            Ok(())
        }
        Command::Audit(AuditCommand::List { limit }) => {
            let rows = open_store(&config)?.recent_audit(limit.clamp(1, 100_000))?;
            out.list(
                &rows,
                &[
                    "at",
                    "client",
                    "command",
                    "user",
                    "domain",
                    "serial",
                    "registration",
                    "status",
                ],
                |r| {
                    vec![
                        r.at.to_string(),
                        output::opt(&r.client_addr),
                        r.command.clone(),
                        output::opt(&r.user_id),
                        output::opt(&r.domain),
                        output::opt(&r.serial_no),
                        output::opt(&r.registration_id),
                        r.status.clone(),
                    ]
                },
            );
            Ok(())
        }
    }
}
