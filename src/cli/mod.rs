//! The `provd` command line: the server, migrations, and the admin commands for the store.

mod admin_audit;
mod authenticator;
mod config_cmd;
mod hermod;
mod key;
mod outbox;
mod output;
mod pskc_cmd;
mod seed;
mod user;
mod user_import;

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use zeroize::Zeroizing;

use crate::config::{redact_url, Config, Overrides};
use crate::store::Store;
use output::Output;

/// A clap value parser for a stored status: `--help` lists the stored texts and the value
/// parses into the enum itself, so no match over strings falls back to a variant.
fn stored<T>() -> impl clap::builder::TypedValueParser<Value = T>
where
    T: crate::store::TextEnum + Clone + Send + Sync,
{
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(T::VARIANTS.iter().map(|v| v.text()))
        .try_map(|text| T::from_text(&text))
}

#[derive(Debug, Parser)]
#[command(
    name = "provd",
    version,
    about = "OneSpan-compatible SOAP provisioning server",
    after_long_help = config_cmd::env_help()
)]
pub struct Cli {
    /// Configuration file (TOML); default `provd.toml` when present.
    #[arg(long, global = true, env = "PROVD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Database URL: a SQLite file path, or postgres://... [env: PROVD_DATABASE_URL]
    /// [default: provd.db]
    #[arg(long, global = true)]
    pub database: Option<String>,
    /// The data directory: holds the database (`provd.db`) and its key file
    /// (`provd.db.key`) when no database URL is given [default: the current directory].
    #[arg(long, global = true, env = "PROVD_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
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
    /// Create a new database and (on SQLite, unless a key is configured) its master key.
    Init,
    /// The master key: check it against the database, rotate it.
    #[command(subcommand)]
    Key(key::KeyCommand),
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
    /// The Hermod REST front: API clients, trust store, commands, profiles, callbacks.
    #[command(subcommand)]
    Hermod(hermod::HermodCommand),
    /// Inspect the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Print a shell completion script, e.g. `provd completions bash >
    /// /etc/bash_completion.d/provd`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), e.g. `provd man > /usr/local/share/man/man1/provd.1`.
    Man,
    /// Copy the SQLite database consistently while the server runs (VACUUM INTO); for
    /// PostgreSQL, print the pg_dump command to run. Back up the master key file too.
    Backup {
        /// The new file to write (must not exist).
        #[arg(long)]
        to: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// The effective configuration (secrets redacted) and the source of each value: default,
    /// file, environment or command line.
    Show,
}

#[derive(Debug, Subcommand)]
pub enum RegistrationCommand {
    /// List registrations, newest first.
    List {
        #[arg(long, value_parser = stored::<crate::store::RegistrationStatus>())]
        status: Option<crate::store::RegistrationStatus>,
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
    /// PROVISIONCMD_DSAPPREGISTER, the CPace key exchange (DSAPP revision 3) and PROVISIONCMD_DSAPPACTIVATE.
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
        password: ActivationPasswordArgs,
    },
    /// Play the app of the Hermod REST front: fetch the message behind a provisioning link,
    /// then decline or generate keys, prove possession and post the attested answer.
    Hermod(HermodClientArgs),
}

#[derive(Debug, Args)]
pub struct HermodClientArgs {
    /// The app-launch URI from the provision command (either style).
    #[arg(long)]
    pub uri: String,
    /// The attestation private key (PKCS#8 PEM, RSA or P-256).
    #[arg(long)]
    pub attestation_key: PathBuf,
    /// Decline instead of accepting.
    #[arg(long)]
    pub decline: bool,
    /// RSA device keys (PKCS#8 PEM) for RSA key requests; EC P-256 keys are generated.
    #[arg(long = "rsa-key")]
    pub rsa_keys: Vec<PathBuf>,
    /// Where to save the generated private keys (PKCS#8 DER, mode 0600).
    #[arg(long)]
    pub key_store: Option<PathBuf>,
    #[arg(long)]
    pub device_name: Option<String>,
    #[arg(long, hide = true)]
    pub unsafe_corrupt_pop: bool,
    #[arg(long, hide = true)]
    pub unsafe_wrong_nonce: bool,
    #[arg(long, hide = true)]
    pub unsafe_alg_none: bool,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// The newest entries, newest first.
    List {
        /// At most this many entries; 0: no limit.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(0..))]
        limit: i64,
        #[command(flatten)]
        filter: AuditFilterArgs,
    },
    /// Write the matching entries (oldest first) as JSON lines or CSV.
    Export {
        #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
        format: ExportFormat,
        /// Write to this file instead of standard output.
        #[arg(long)]
        to: Option<PathBuf>,
        #[command(flatten)]
        filter: AuditFilterArgs,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ExportFormat {
    /// One JSON object per line.
    Jsonl,
    Csv,
}

/// Filters of `audit list` and `audit export`; every one given must match.
#[derive(Debug, Args)]
pub struct AuditFilterArgs {
    /// Only entries about this user id.
    #[arg(long)]
    pub user: Option<String>,
    /// Only entries in this domain.
    #[arg(long)]
    pub domain: Option<String>,
    /// Only entries about this serial number.
    #[arg(long)]
    pub serial: Option<String>,
    /// Only this command, e.g. PROVISIONCMD_REGISTER or "cli user add".
    #[arg(long)]
    pub command: Option<String>,
    /// Only this status, e.g. ok, error, STAT_SUCCESS.
    #[arg(long)]
    pub status: Option<String>,
    /// Only this caller: a client address, or cli:<os user> for admin commands.
    #[arg(long)]
    pub client: Option<String>,
    /// Entries at or after this time (RFC 3339, YYYY-MM-DD, or Unix seconds).
    #[arg(long, value_parser = output::parse_time)]
    pub since: Option<i64>,
    /// Entries at or before this time (RFC 3339, YYYY-MM-DD, or Unix seconds).
    #[arg(long, value_parser = output::parse_time)]
    pub until: Option<i64>,
}

impl AuditFilterArgs {
    fn filter(self, limit: Option<i64>) -> crate::store::AuditFilter {
        crate::store::AuditFilter {
            user_id: self.user,
            domain: self.domain,
            serial_no: self.serial,
            command: self.command,
            status: self.status,
            client: self.client,
            since: self.since,
            until: self.until,
            limit,
        }
    }
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

/// The activation password of `client activate` (not the user's static password).
#[derive(Debug, Args)]
pub struct ActivationPasswordArgs {
    /// Read the activation password from the first line of standard input.
    #[arg(long)]
    pub password_stdin: bool,
    /// The activation password (visible in the process list; prefer --password-stdin).
    #[arg(long, conflicts_with = "password_stdin")]
    pub password: Option<String>,
}

impl ActivationPasswordArgs {
    pub fn read(&self) -> Result<Option<Zeroizing<String>>> {
        PasswordArgs {
            password_stdin: self.password_stdin,
            password: self.password.clone(),
        }
        .read()
    }
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
    key::open_store(config, key::Open::Existing)
}

/// Runs the command; the admin commands that change the store are audited (see
/// `admin_audit`).
pub fn run(cli: Cli) -> Result<()> {
    let Some(entry) = admin_audit::describe(&cli.command) else {
        return dispatch(cli);
    };
    let config = Config::load(
        cli.config.as_deref(),
        &Overrides {
            listen: None,
            database_url: cli.database.clone(),
            data_dir: cli.data_dir.clone(),
        },
    )?;
    let result = dispatch(cli);
    // The store opens again (without migrating) for the audit row: the command may have
    // failed before opening it.
    if let Ok(key) = config.master_key() {
        if let Ok(store) = Store::connect(&config.database_url, key, 1) {
            admin_audit::record(&store, entry, &result);
        }
    }
    result
}

/// An audit row for export: RFC 3339 time and the Unix seconds.
fn audit_export_value(r: &crate::store::AuditRecord) -> serde_json::Value {
    let mut v = serde_json::to_value(r).unwrap_or_default();
    output::with_times(&mut v);
    v
}

fn export_audit(
    rows: &[crate::store::AuditRecord],
    format: ExportFormat,
    sink: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    match format {
        ExportFormat::Jsonl => {
            for r in rows {
                writeln!(sink, "{}", audit_export_value(r))?;
            }
        }
        ExportFormat::Csv => {
            let mut w = csv::Writer::from_writer(&mut *sink);
            w.write_record([
                "id",
                "at",
                "at_unix",
                "client",
                "command",
                "user_id",
                "domain",
                "serial_no",
                "registration_id",
                "status",
                "return_code",
                "status_code",
                "detail",
            ])?;
            for r in rows {
                w.write_record([
                    r.id.to_string(),
                    output::rfc3339(r.at),
                    r.at.to_string(),
                    output::opt(&r.client_addr),
                    r.command.clone(),
                    output::opt(&r.user_id),
                    output::opt(&r.domain),
                    output::opt(&r.serial_no),
                    output::opt(&r.registration_id),
                    r.status.clone(),
                    r.return_code.to_string(),
                    r.status_code.to_string(),
                    output::opt(&r.detail),
                ])?;
            }
            w.flush()?;
        }
    }
    sink.flush()
}

fn dispatch(cli: Cli) -> Result<()> {
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
            data_dir: cli.data_dir.clone(),
        },
    )?;
    init_logging(&config.log_format);
    let out = Output { json: cli.json };
    match cli.command {
        Command::Client(ClientCommand::Hermod(args)) => hermod_client(args, &out),
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
                "event_reactivation_counter": reg.event_reactivation_counter.parse::<u64>().ok(),
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
            let store = key::open_store(&config, key::Open::CreateIfMissing)?;
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
                admin_address: config.admin_listen.clone(),
            };
            actix_web::rt::System::new().block_on(crate::server::serve(state, listener, delivery))
        }
        Command::Completions { shell } => {
            let mut buf = Vec::new();
            clap_complete::generate(
                shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "provd",
                &mut buf,
            );
            output::emit(String::from_utf8_lossy(&buf).trim_end());
            Ok(())
        }
        Command::Man => {
            let mut buf = Vec::new();
            clap_mangen::Man::new(<Cli as clap::CommandFactory>::command()).render(&mut buf)?;
            output::emit(String::from_utf8_lossy(&buf).trim_end());
            Ok(())
        }
        Command::Backup { to } => {
            let (backend, _) = crate::store::Backend::from_url(&config.database_url);
            if backend == crate::store::Backend::Postgres {
                out.message(&format!(
                    "PostgreSQL: run  pg_dump --format=custom --file={} '{}'  \
                     (and keep the master key with it)",
                    to.display(),
                    redact_url(&config.database_url)
                ));
                return Ok(());
            }
            let store = open_store(&config)?;
            store.backup_sqlite(&to)?;
            out.message(&format!(
                "wrote a consistent copy of {} to {}; back up the master key too",
                config.database_url,
                to.display()
            ));
            Ok(())
        }
        Command::Config(ConfigCommand::Show) => config_cmd::show(
            &config,
            cli.config.as_deref(),
            &Overrides {
                listen: None,
                database_url: cli.database.clone(),
                data_dir: cli.data_dir.clone(),
            },
            &out,
        ),
        Command::Migrate => {
            // Opening applies pending migrations (and checks the key).
            open_store(&config)?;
            out.message("database is up to date");
            Ok(())
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
        Command::Init => {
            key::open_store(&config, key::Open::Init)?;
            out.message(&format!(
                "created the database {}",
                redact_url(&config.database_url)
            ));
            Ok(())
        }
        Command::Key(c) => key::run(c, &config, &out),
        Command::User(c) => user::run(c, &open_store(&config)?, &out),
        Command::Authenticator(c) => authenticator::run(c, &open_store(&config)?, &out),
        Command::Outbox(c) => outbox::run(c, &open_store(&config)?, &config, &out),
        Command::Hermod(c) => hermod::run(c, &open_store(&config)?, &config, &out),
        Command::Registration(RegistrationCommand::List { status }) => {
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
                    .map(|k| match r[*k].as_i64() {
                        Some(t) if output::is_time_field(k) => output::rfc3339(t),
                        _ => output::plain(&r[*k]),
                    })
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
        Command::Audit(AuditCommand::Export { format, to, filter }) => {
            let mut rows = open_store(&config)?.query_audit(&filter.filter(None))?;
            rows.reverse();
            let mut sink: Box<dyn std::io::Write> = match &to {
                Some(path) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(path)
                        .with_context(|| format!("creating {}", path.display()))?,
                )),
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            let written = export_audit(&rows, format, &mut sink);
            match written {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe && to.is_none() => {
                    std::process::exit(0)
                }
                other => other.context("writing the audit export")?,
            }
            if let Some(path) = &to {
                eprintln!("wrote {} audit entries to {}", rows.len(), path.display());
            }
            Ok(())
        }
        Command::Audit(AuditCommand::List { limit, filter }) => {
            let limit = (limit > 0).then_some(limit);
            let rows = open_store(&config)?.query_audit(&filter.filter(limit))?;
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
                    "count",
                ],
                |r| {
                    vec![
                        output::rfc3339(r.at),
                        output::opt(&r.client_addr),
                        r.command.clone(),
                        output::opt(&r.user_id),
                        output::opt(&r.domain),
                        output::opt(&r.serial_no),
                        output::opt(&r.registration_id),
                        r.status.clone(),
                        r.occurrences.to_string(),
                    ]
                },
            );
            Ok(())
        }
    }
}

fn hermod_client(args: HermodClientArgs, out: &Output) -> Result<()> {
    use crate::hermod::{client, jws};
    let pem = std::fs::read_to_string(&args.attestation_key)
        .with_context(|| format!("reading {}", args.attestation_key.display()))?;
    let der = jws::pem_der(&pem).context("the attestation key is not PEM")?;
    let attestation = jws::Signer::rsa_pkcs8(&der)
        .or_else(|_| jws::Signer::p256_pkcs8(&der))
        .map_err(|e| anyhow::anyhow!("the attestation key: {e}"))?;
    let mut rsa_keys = Vec::new();
    for p in &args.rsa_keys {
        let text =
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
        rsa_keys.push(jws::pem_der(&text).with_context(|| format!("{} is not PEM", p.display()))?);
    }
    let opts = client::Options {
        decline: args.decline,
        device_name: args.device_name,
        rsa_keys,
        corrupt_pop: args.unsafe_corrupt_pop,
        wrong_nonce: args.unsafe_wrong_nonce,
        alg_none: args.unsafe_alg_none,
    };
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let (message, location, token) = client::fetch(&agent, &args.uri)?;
    let pc = &message.prov_command;
    eprintln!(
        "profile {} on {} for {}: {} key(s) requested, answer before {}",
        pc.profile.name,
        pc.profile.servername,
        pc.userid,
        pc.profile.keygenrequests.len(),
        message.expires_at
    );
    let answer = if opts.decline {
        crate::hermod::wire::Answer {
            status: 403,
            data: None,
        }
    } else {
        let (data, keys) = client::answer(&message, &attestation, &opts)?;
        if let Some(dir) = &args.key_store {
            std::fs::create_dir_all(dir)?;
            for (keyid, _, der) in &keys {
                let path = dir.join(format!("{keyid}.pk8"));
                std::fs::write(&path, der)?;
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
                }
            }
        }
        for (keyid, thumbprint, _) in &keys {
            eprintln!("key {keyid}: thumbprint {thumbprint}");
        }
        crate::hermod::wire::Answer {
            status: 200,
            data: Some(data),
        }
    };
    let done = client::post(&agent, &location, &token, &answer)?;
    out.one(&serde_json::json!({"state": done.state, "profile_id": done.profile_id}));
    Ok(())
}
