//! `provd hermod ...`: API clients, the attestation trust store, commands, profiles and
//! callbacks of the REST front (spec section 7.2), as tables or `--json`.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use serde_json::json;

use super::output::{opt, plain, Output};
use crate::config::Config;
use crate::hermod::jws::Alg;
use crate::hermod::service::{api_key_header, callback_url_ok, sha256, Fixed, Hermod};
use crate::hermod::{model, trust};
use crate::store::hermod::{CallbackStatus, CommandState};
use crate::store::{now, Store};

#[derive(Debug, Subcommand)]
pub enum HermodCommand {
    /// API clients (integrators).
    #[command(subcommand)]
    Client(ClientCmd),
    /// The attestation trust store.
    #[command(subcommand)]
    Attestation(AttestationCmd),
    /// Provision commands.
    #[command(subcommand)]
    Command(CommandCmd),
    /// Device profiles and their keys.
    #[command(subcommand)]
    Profile(ProfileCmd),
    /// The callback outbox.
    #[command(subcommand)]
    Callbacks(CallbacksCmd),
    /// Print the provisioning link of an IN_PROGRESS command as a QR code in the terminal.
    Qr { id: i64 },
    /// Test only: insert a command with fixed ids and token (replaying the shared vectors).
    #[command(hide = true)]
    SeedCommand {
        #[arg(long)]
        client: String,
        /// The integrator's request (JSON).
        #[arg(long)]
        request: PathBuf,
        /// `server_state.json`: commandId, bid, mid, token, boxurl (its last path segment).
        #[arg(long)]
        state: PathBuf,
        /// Seconds from now until the timeout (negative: already timed out).
        #[arg(long, allow_hyphen_values = true)]
        timeout_in: Option<i64>,
        /// Seconds from now until the lifespan ends (negative: already over).
        #[arg(long, allow_hyphen_values = true)]
        lifespan_in: Option<i64>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ClientCmd {
    /// Add a client; prints its API key and callback secret once.
    Add {
        #[arg(long)]
        id: String,
        /// Base URL; callbacks go to <URL>/rest/callback/provision. https, or http to loopback.
        #[arg(long)]
        callback_url: String,
    },
    List,
    Disable {
        id: String,
    },
    Enable {
        id: String,
    },
    /// A new API key (printed once); the old one stops working.
    RotateKey {
        id: String,
    },
    SetCallback {
        id: String,
        url: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AttestationCmd {
    /// Trust an attestation public key.
    Add {
        #[arg(long)]
        kid: String,
        #[arg(long, conflicts_with = "pem", required_unless_present = "pem")]
        jwk_file: Option<PathBuf>,
        #[arg(long)]
        pem: Option<PathBuf>,
        /// Allowed algorithms (repeat); default RS256+PS256 for RSA, ES256 for P-256.
        #[arg(long = "alg")]
        algs: Vec<String>,
        /// The `kid` the embedded JWK must carry.
        #[arg(long)]
        jwk_kid: Option<String>,
        /// Unix seconds.
        #[arg(long)]
        not_before: Option<i64>,
        /// Unix seconds.
        #[arg(long)]
        not_after: Option<i64>,
    },
    /// Upsert every entry of a trust-store file.
    Load {
        file: PathBuf,
    },
    List,
    Revoke {
        kid: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum CommandCmd {
    List {
        #[arg(long)]
        client: Option<String>,
        #[arg(long)]
        state: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    Show {
        id: i64,
    },
    /// Cancel an IN_PROGRESS command (queues its callback).
    Cancel {
        id: i64,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProfileCmd {
    List {
        /// Only this user's profiles (in the configured hermod.domain).
        #[arg(long)]
        user: Option<String>,
    },
    Revoke {
        profile_id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum CallbacksCmd {
    List {
        #[arg(long, value_parser = super::stored::<CallbackStatus>())]
        status: Option<CallbackStatus>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Queue a callback again, due now.
    Retry { id: i64 },
}

fn random_hex() -> String {
    hex::encode(&*crate::crypto::random_bytes(32))
}

fn front(store: &Store, config: &Config) -> Hermod {
    let base = config
        .hermod
        .public_base(config.public_url.as_deref(), &config.listen);
    Hermod::new(
        store.clone(),
        config.hermod.clone(),
        base,
        std::sync::Arc::new(now),
    )
}

fn client_id_ok(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

pub fn run(c: HermodCommand, store: &Store, config: &Config, out: &Output) -> Result<()> {
    match c {
        HermodCommand::Client(c) => client(c, store, out),
        HermodCommand::Attestation(c) => attestation(c, store, out),
        HermodCommand::Command(c) => command(c, store, config, out),
        HermodCommand::Profile(c) => profile(c, store, config, out),
        HermodCommand::Callbacks(c) => callbacks(c, store, out),
        HermodCommand::Qr { id } => {
            let c = store.hermod_command(id)?.context("no such command")?;
            let cl = store
                .hermod_client(&c.client_id)?
                .context("the command's client is gone")?;
            let h = front(store, config);
            let uri = h
                .destination_uri(&cl, &id.to_string())
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            if out.json {
                println!("{}", json!({"uri": uri}));
            } else {
                println!(
                    "{}",
                    crate::hermod::qr::terminal(&uri).map_err(|e| anyhow::anyhow!("{e}"))?
                );
                println!("{uri}");
            }
            Ok(())
        }
        HermodCommand::SeedCommand {
            client,
            request,
            state,
            timeout_in,
            lifespan_in,
        } => {
            let req = std::fs::read_to_string(&request)?;
            let spec =
                model::check(serde_json::from_str(&req)?).map_err(|e| anyhow::anyhow!("{e}"))?;
            let st: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&state)?)?;
            let s = |k: &str| st[k].as_str().map(str::to_owned).context(k.to_owned());
            let boxurl = s("boxurl")?;
            let fixed = Fixed {
                id: Some(s("commandId")?.parse()?),
                bid: s("bid")?,
                mid: s("mid")?,
                token: s("token")?,
                box_id: boxurl.rsplit('/').next().unwrap_or("").to_owned(),
                timeout_at: timeout_in.map(|t| now() + t),
                lifespan_at: lifespan_in.map(|t| now() + t),
            };
            let cl = store.hermod_client(&client)?.context("no such client")?;
            let view = front(store, config)
                .create(&cl, &spec, Some(fixed), None)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            out.one(&view);
            Ok(())
        }
    }
}

fn client(c: ClientCmd, store: &Store, out: &Output) -> Result<()> {
    match c {
        ClientCmd::Add { id, callback_url } => {
            if !client_id_ok(&id) {
                bail!("--id is 1 to 64 of A-Z a-z 0-9 . _ -");
            }
            if !callback_url_ok(&callback_url) {
                bail!("--callback-url must be https:// (or http:// to a loopback host)");
            }
            let key = random_hex();
            let secret = random_hex();
            store.add_hermod_client(&id, &sha256(key.as_bytes()), &callback_url, &secret, now())?;
            let x = api_key_header(&id, &key);
            if out.json {
                println!(
                    "{}",
                    json!({"client_id": id, "api_key": key, "x_api_key": x, "callback_secret": secret})
                );
            } else {
                println!("client id:       {id}");
                println!("API key:         {key}");
                println!("header:          X-Api-Key: {x}");
                println!("callback secret: {secret}");
                println!("(the key and the secret are shown only now)");
            }
        }
        ClientCmd::List => {
            let rows = store.list_hermod_clients()?;
            out.list(
                &rows,
                &["client", "callback url", "disabled", "created"],
                |c| {
                    vec![
                        c.client_id.clone(),
                        c.callback_url.clone(),
                        c.disabled.to_string(),
                        c.created_at.to_string(),
                    ]
                },
            );
        }
        ClientCmd::Disable { id } => {
            store.set_hermod_client_disabled(&id, true)?;
            out.message(&format!("client {id} disabled"));
        }
        ClientCmd::Enable { id } => {
            store.set_hermod_client_disabled(&id, false)?;
            out.message(&format!("client {id} enabled"));
        }
        ClientCmd::RotateKey { id } => {
            let key = random_hex();
            store.set_hermod_client_key(&id, &sha256(key.as_bytes()))?;
            let x = api_key_header(&id, &key);
            out.one(&json!({"client_id": id, "api_key": key, "x_api_key": x}));
        }
        ClientCmd::SetCallback { id, url } => {
            if !callback_url_ok(&url) {
                bail!("the callback URL must be https:// (or http:// to a loopback host)");
            }
            store.set_hermod_callback_url(&id, &url)?;
            out.message(&format!("client {id} now calls back {url}"));
        }
    }
    Ok(())
}

fn attestation(c: AttestationCmd, store: &Store, out: &Output) -> Result<()> {
    let show = |k: &crate::store::hermod::AttestationKey| {
        json!({"kid": k.kid, "thumbprint": k.thumbprint, "algs": k.alg_list(), "jwk_kid": k.jwk_kid,
               "not_before": k.not_before, "not_after": k.not_after, "revoked_at": k.revoked_at})
    };
    match c {
        AttestationCmd::Add {
            kid,
            jwk_file,
            pem,
            algs,
            jwk_kid,
            not_before,
            not_after,
        } => {
            let key = match (jwk_file, pem) {
                (Some(f), None) => trust::key_from_jwk(&serde_json::from_str(
                    &std::fs::read_to_string(&f)
                        .with_context(|| format!("reading {}", f.display()))?,
                )?)?,
                (None, Some(f)) => trust::key_from_pem(
                    &std::fs::read_to_string(&f)
                        .with_context(|| format!("reading {}", f.display()))?,
                )?,
                _ => bail!("give exactly one of --jwk-file and --pem"),
            };
            let algs = if algs.is_empty() {
                trust::default_algs(&key)
            } else {
                algs.iter()
                    .map(|a| {
                        Alg::parse(a)
                            .with_context(|| format!("--alg {a}: not RS256, PS256 or ES256"))
                    })
                    .collect::<Result<_>>()?
            };
            let e = trust::add(
                store,
                &trust::Entry {
                    kid,
                    key,
                    algs,
                    jwk_kid,
                    not_before,
                    not_after,
                },
                now(),
            )?;
            out.one(&show(&e));
        }
        AttestationCmd::Load { file } => {
            let loaded = trust::load_file(store, &file, now())?;
            let rows: Vec<_> = loaded.iter().map(show).collect();
            out.list(&rows, &["kid", "thumbprint", "algs"], |r| {
                vec![plain(&r["kid"]), plain(&r["thumbprint"]), plain(&r["algs"])]
            });
        }
        AttestationCmd::List => {
            let rows: Vec<_> = store.list_attestation_keys()?.iter().map(show).collect();
            out.list(
                &rows,
                &["kid", "thumbprint", "algs", "jwk kid", "revoked"],
                |r| {
                    vec![
                        plain(&r["kid"]),
                        plain(&r["thumbprint"]),
                        plain(&r["algs"]),
                        plain(&r["jwk_kid"]),
                        plain(&r["revoked_at"]),
                    ]
                },
            );
        }
        AttestationCmd::Revoke { kid } => {
            store.revoke_attestation_key(&kid, now())?;
            out.message(&format!("attestation key {kid} revoked"));
        }
    }
    Ok(())
}

fn command_json(c: &crate::store::hermod::HermodCommand) -> serde_json::Value {
    json!({"id": c.id, "client_id": c.client_id, "external_id": c.external_id,
           "state": c.effective_state(now()).as_str(), "attempts": c.attempts,
           "token_failures": c.token_failures, "error": c.error, "profile_id": c.profile_id,
           "created_at": c.created_at, "timeout_at": c.timeout_at, "lifespan_at": c.lifespan_at,
           "fetched_at": c.fetched_at, "answered_at": c.answered_at})
}

fn command(c: CommandCmd, store: &Store, config: &Config, out: &Output) -> Result<()> {
    match c {
        CommandCmd::List {
            client,
            state,
            limit,
        } => {
            let state = match state {
                Some(s) => Some(CommandState::parse(&s.to_ascii_uppercase()).with_context(|| {
                    format!("--state {s}: one of IN_PROGRESS COMPLETED REJECTED FAILED TIMEOUT CANCELLED")
                })?),
                None => None,
            };
            let rows: Vec<_> = store
                .list_hermod_commands(client.as_deref(), state, limit.clamp(1, 100_000))?
                .iter()
                .map(command_json)
                .collect();
            out.list(
                &rows,
                &["id", "client", "state", "attempts", "error", "created"],
                |r| {
                    [
                        "id",
                        "client_id",
                        "state",
                        "attempts",
                        "error",
                        "created_at",
                    ]
                    .iter()
                    .map(|k| plain(&r[*k]))
                    .collect()
                },
            );
        }
        CommandCmd::Show { id } => {
            let c = store.hermod_command(id)?.context("no such command")?;
            out.one(&command_json(&c));
        }
        CommandCmd::Cancel { id } => {
            let c = store.hermod_command(id)?.context("no such command")?;
            let cl = store
                .hermod_client(&c.client_id)?
                .context("the command's client is gone")?;
            let s = front(store, config)
                .cancel(&cl, &id.to_string())
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            out.one(&s);
        }
    }
    Ok(())
}

fn profile(c: ProfileCmd, store: &Store, config: &Config, out: &Output) -> Result<()> {
    match c {
        ProfileCmd::List { user } => {
            let pk = match user {
                Some(u) => {
                    let user_id = crate::types::UserId::parse(&u)?;
                    let domain = crate::types::Domain::parse(&config.hermod.domain)?;
                    Some(
                        store
                            .find_user(&user_id, &domain)?
                            .with_context(|| format!("no user {u} in {}", config.hermod.domain))?
                            .pk,
                    )
                }
                None => None,
            };
            let rows = store.list_hermod_profiles(pk)?;
            out.list(&rows, &["profile", "user", "name", "status", "keys"], |p| {
                vec![
                    p.profile_id.clone(),
                    p.user_id.clone(),
                    p.name.clone(),
                    p.status.as_str().into(),
                    p.keys
                        .iter()
                        .map(|k| format!("{} {} {} {}", k.keyid, k.kty, k.bits, k.thumbprint))
                        .collect::<Vec<_>>()
                        .join("\n"),
                ]
            });
        }
        ProfileCmd::Revoke { profile_id } => {
            store.revoke_hermod_profile(&profile_id)?;
            out.message(&format!("profile {profile_id} revoked"));
        }
    }
    Ok(())
}

fn callbacks(c: CallbacksCmd, store: &Store, out: &Output) -> Result<()> {
    match c {
        CallbacksCmd::List { status, limit } => {
            let rows = store.list_callbacks(status, limit.clamp(1, 100_000))?;
            out.list(
                &rows,
                &[
                    "id",
                    "command",
                    "client",
                    "status",
                    "attempts",
                    "next attempt",
                    "last error",
                ],
                |r| {
                    vec![
                        r.id.to_string(),
                        r.command_id.to_string(),
                        r.client_id.clone(),
                        r.status.as_str().into(),
                        r.attempts.to_string(),
                        r.next_attempt_at.to_string(),
                        opt(&r.last_error),
                    ]
                },
            );
        }
        CallbacksCmd::Retry { id } => {
            store.retry_callback(id, now())?;
            out.message(&format!("callback {id} queued again"));
        }
    }
    Ok(())
}
