//! Storage of the Hermod-style REST front (spec hermod.md section 7): API clients, the
//! attestation trust store, provision commands and their state machine, device profiles and
//! keys, and the callback outbox. Every state change is one conditional update inside the
//! transaction that writes what goes with it (keys, the callback row), so two instances on
//! one database never both move a command out of `IN_PROGRESS`. Times come from the caller.

use diesel::prelude::*;
use serde::Serialize;
use zeroize::Zeroizing;

use super::schema::{
    attestation_keys, device_keys, device_profiles, hermod_callbacks, hermod_clients,
    hermod_commands, users,
};
use super::text_enum::{text_enum_sql, TextEnum};
use super::{touched, DbConnection, Store, StoreError};

/// The states of a command (spec section 5).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, diesel::AsExpression, diesel::FromSqlRow,
)]
#[diesel(sql_type = diesel::sql_types::Text)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CommandState {
    InProgress,
    Completed,
    Rejected,
    Failed,
    Timeout,
    Cancelled,
}

impl CommandState {
    pub const ALL: [CommandState; 6] = [
        Self::InProgress,
        Self::Completed,
        Self::Rejected,
        Self::Failed,
        Self::Timeout,
        Self::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "IN_PROGRESS",
            Self::Completed => "COMPLETED",
            Self::Rejected => "REJECTED",
            Self::Failed => "FAILED",
            Self::Timeout => "TIMEOUT",
            Self::Cancelled => "CANCELLED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::from_text(s).ok()
    }

    pub fn is_terminal(self) -> bool {
        self != Self::InProgress
    }

    /// The `responseHeader.status` of the callback for this terminal state (section 8).
    pub fn callback_status(self) -> u16 {
        match self {
            Self::InProgress | Self::Completed => 200,
            Self::Rejected => 403,
            Self::Failed => 422,
            Self::Timeout => 408,
            Self::Cancelled => 410,
        }
    }
}

impl TextEnum for CommandState {
    const COLUMN: &'static str = "hermod_commands.state";
    const VARIANTS: &'static [Self] = &Self::ALL;
    fn text(self) -> &'static str {
        self.as_str()
    }
}
text_enum_sql!(CommandState);

impl std::fmt::Display for CommandState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The delivery status of a callback.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, diesel::AsExpression, diesel::FromSqlRow,
)]
#[diesel(sql_type = diesel::sql_types::Text)]
#[serde(rename_all = "lowercase")]
pub enum CallbackStatus {
    Queued,
    Sent,
    Failed,
}

impl CallbackStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sent => "sent",
            Self::Failed => "failed",
        }
    }
}

impl TextEnum for CallbackStatus {
    const COLUMN: &'static str = "hermod_callbacks.status";
    const VARIANTS: &'static [Self] = &[Self::Queued, Self::Sent, Self::Failed];
    fn text(self) -> &'static str {
        self.as_str()
    }
}
text_enum_sql!(CallbackStatus);

/// The status of a device profile (`device_profiles.status`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, diesel::AsExpression, diesel::FromSqlRow,
)]
#[diesel(sql_type = diesel::sql_types::Text)]
#[serde(rename_all = "lowercase")]
pub enum ProfileStatus {
    Active,
    /// Revoked by an administrator.
    Revoked,
}

impl ProfileStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Revoked => "revoked",
        }
    }
}

impl TextEnum for ProfileStatus {
    const COLUMN: &'static str = "device_profiles.status";
    const VARIANTS: &'static [Self] = &[Self::Active, Self::Revoked];
    fn text(self) -> &'static str {
        self.as_str()
    }
}
text_enum_sql!(ProfileStatus);

/// The type of a command (`hermod_commands.command_type`, the wire's `commandType`): the
/// front issues provision commands only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, diesel::AsExpression, diesel::FromSqlRow)]
#[diesel(sql_type = diesel::sql_types::Text)]
pub enum CommandType {
    Prov,
}

impl CommandType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Prov => "PROV",
        }
    }
}

impl TextEnum for CommandType {
    const COLUMN: &'static str = "hermod_commands.command_type";
    const VARIANTS: &'static [Self] = &[Self::Prov];
    fn text(self) -> &'static str {
        self.as_str()
    }
}
text_enum_sql!(CommandType);

/// What a device key is for (a key generation request's `usage`; `device_keys.usage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, diesel::AsExpression, diesel::FromSqlRow)]
#[diesel(sql_type = diesel::sql_types::Text)]
pub enum Usage {
    Sig,
    Auth,
    Enc,
}

impl Usage {
    pub fn parse(s: &str) -> Option<Self> {
        Self::from_text(s).ok()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Usage::Sig => "SIG",
            Usage::Auth => "AUTH",
            Usage::Enc => "ENC",
        }
    }
}

impl TextEnum for Usage {
    const COLUMN: &'static str = "device_keys.usage";
    const VARIANTS: &'static [Self] = &[Self::Sig, Self::Auth, Self::Enc];
    fn text(self) -> &'static str {
        self.as_str()
    }
}
text_enum_sql!(Usage);

/// The state a device key is generated in (a request's `keystate`; `device_keys.key_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, diesel::AsExpression, diesel::FromSqlRow)]
#[diesel(sql_type = diesel::sql_types::Text)]
pub enum KeyState {
    Active,
    Inactive,
}

impl KeyState {
    pub fn parse(s: &str) -> Option<Self> {
        Self::from_text(s).ok()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Active => "ACTIVE",
            KeyState::Inactive => "INACTIVE",
        }
    }
}

impl TextEnum for KeyState {
    const COLUMN: &'static str = "device_keys.key_state";
    const VARIANTS: &'static [Self] = &[Self::Active, Self::Inactive];
    fn text(self) -> &'static str {
        self.as_str()
    }
}
text_enum_sql!(KeyState);

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("hermod: {what}"))
}

// ---------------------------------------------------------------------------------------------
// Clients

#[derive(Debug, Clone, Serialize)]
pub struct HermodClient {
    pub client_id: String,
    #[serde(skip)]
    pub key_sha256: Vec<u8>,
    pub callback_url: String,
    pub disabled: bool,
    pub created_at: i64,
}

/// The sealing context of a command's token (in `hermod_commands.sealed_token`).
pub fn token_context(bid: &str) -> String {
    format!("hermod-token:{bid}")
}

pub(super) fn secret_context(client_id: &str) -> String {
    format!("hermod-callback-secret:{}:{client_id}", client_id.len())
}

/// A new row of `hermod_clients`.
#[derive(Insertable)]
#[diesel(table_name = hermod_clients)]
struct ClientInsert<'a> {
    client_id: &'a str,
    key_sha256: &'a [u8],
    callback_url: &'a str,
    sealed_callback_secret: &'a [u8],
    disabled: bool,
    created_at: i64,
}

type ClientCols = (String, Vec<u8>, String, bool, i64);

fn client_of(r: ClientCols) -> HermodClient {
    HermodClient {
        client_id: r.0,
        key_sha256: r.1,
        callback_url: r.2,
        disabled: r.3,
        created_at: r.4,
    }
}

macro_rules! client_cols {
    () => {
        (
            hermod_clients::client_id,
            hermod_clients::key_sha256,
            hermod_clients::callback_url,
            hermod_clients::disabled,
            hermod_clients::created_at,
        )
    };
}

// ---------------------------------------------------------------------------------------------
// Attestation keys

#[derive(Debug, Clone, Serialize, Queryable, Selectable)]
#[diesel(table_name = attestation_keys)]
pub struct AttestationKey {
    pub id: i64,
    pub kid: String,
    pub thumbprint: String,
    pub public_jwk: String,
    /// Space-separated JWS algorithm names.
    pub algs: String,
    pub jwk_kid: Option<String>,
    pub not_before: Option<i64>,
    pub not_after: Option<i64>,
    pub revoked_at: Option<i64>,
    pub created_at: i64,
}

impl AttestationKey {
    pub fn alg_list(&self) -> Vec<&str> {
        self.algs.split_whitespace().collect()
    }

    /// Enabled at `now`: not revoked, inside its validity window.
    pub fn usable_at(&self, now: i64) -> bool {
        self.revoked_at.is_none()
            && self.not_before.is_none_or(|t| t <= now)
            && self.not_after.is_none_or(|t| now < t)
    }
}

/// A trust-store entry to add (or to update, found by its thumbprint).
pub struct NewAttestationKey<'a> {
    pub kid: &'a str,
    pub thumbprint: &'a str,
    pub public_jwk: &'a str,
    pub algs: &'a str,
    pub jwk_kid: Option<&'a str>,
    pub not_before: Option<i64>,
    pub not_after: Option<i64>,
}

/// A new row of `attestation_keys`.
#[derive(Insertable)]
#[diesel(table_name = attestation_keys, treat_none_as_default_value = false)]
struct AttestationKeyInsert<'a> {
    kid: &'a str,
    thumbprint: &'a str,
    public_jwk: &'a str,
    algs: &'a str,
    jwk_kid: Option<&'a str>,
    not_before: Option<i64>,
    not_after: Option<i64>,
    created_at: i64,
}

/// What updating a trust-store entry rewrites (its thumbprint, key and creation time stay).
/// `None` clears a column.
#[derive(AsChangeset)]
#[diesel(table_name = attestation_keys, treat_none_as_null = true)]
struct AttestationKeyChange<'a> {
    kid: &'a str,
    algs: &'a str,
    jwk_kid: Option<&'a str>,
    not_before: Option<i64>,
    not_after: Option<i64>,
}

// ---------------------------------------------------------------------------------------------
// Commands

/// A command row, states typed.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = hermod_commands)]
pub struct HermodCommand {
    pub id: i64,
    pub client_id: String,
    pub external_id: Option<String>,
    pub command_type: CommandType,
    pub state: CommandState,
    pub nonce: String,
    pub user_pk: i64,
    pub request_json: String,
    pub bid: String,
    pub mid: String,
    pub token_sha256: Vec<u8>,
    pub sealed_token: Option<Vec<u8>>,
    pub box_id: String,
    pub attempts: i32,
    pub token_failures: i32,
    pub response_jws: Option<String>,
    pub error: Option<String>,
    pub profile_id: Option<String>,
    pub created_at: i64,
    pub timeout_at: i64,
    pub lifespan_at: i64,
    pub fetched_at: Option<i64>,
    pub answered_at: Option<i64>,
}

impl HermodCommand {
    /// The state as every request must see it at `now`: past `timeout_at`, an
    /// `IN_PROGRESS` command is `TIMEOUT` even before the sweeper has run.
    pub fn effective_state(&self, now: i64) -> CommandState {
        if self.state == CommandState::InProgress && now >= self.timeout_at {
            CommandState::Timeout
        } else {
            self.state
        }
    }
}

/// A command to insert. `id` is normally `None` (the database numbers it); the test-only
/// seeding path gives one.
pub struct NewCommand<'a> {
    pub id: Option<i64>,
    pub client_id: &'a str,
    pub external_id: Option<&'a str>,
    pub command_type: CommandType,
    pub nonce: &'a str,
    pub user_pk: i64,
    pub request_json: &'a str,
    pub bid: &'a str,
    pub mid: &'a str,
    pub token_sha256: &'a [u8],
    pub sealed_token: &'a [u8],
    pub box_id: &'a str,
    pub created_at: i64,
    pub timeout_at: i64,
    pub lifespan_at: i64,
}

/// A new row of `hermod_commands`: `IN_PROGRESS`, nothing counted yet. The id comes from the
/// database unless [`NewCommand::id`] gives one.
#[derive(Insertable)]
#[diesel(table_name = hermod_commands, treat_none_as_default_value = false)]
struct CommandInsert<'a> {
    /// `None`: left to the database.
    #[diesel(treat_none_as_default_value = true)]
    id: Option<i64>,
    client_id: &'a str,
    external_id: Option<&'a str>,
    command_type: CommandType,
    state: CommandState,
    nonce: &'a str,
    user_pk: i64,
    request_json: &'a str,
    bid: &'a str,
    mid: &'a str,
    token_sha256: &'a [u8],
    sealed_token: Option<&'a [u8]>,
    box_id: &'a str,
    attempts: i32,
    token_failures: i32,
    created_at: i64,
    timeout_at: i64,
    lifespan_at: i64,
}

/// A callback to queue with a state change.
pub struct NewCallback {
    pub url: String,
    pub body: String,
}

/// What a completed provisioning stores.
pub struct NewProfile {
    pub profile_id: String,
    pub name: String,
    pub servername: String,
    pub attestation_key_id: i64,
    pub deviceinfo: Option<String>,
    pub keys: Vec<NewDeviceKey>,
}

/// A verified device key to store with its profile.
pub struct NewDeviceKey {
    pub keyid: String,
    pub usage: Usage,
    pub kty: String,
    pub alg: String,
    pub bits: i32,
    pub public_jwk: String,
    pub thumbprint: String,
    pub key_state: KeyState,
    pub certreq: Option<Vec<u8>>,
}

/// A new row of `device_keys`.
#[derive(Insertable)]
#[diesel(table_name = device_keys, treat_none_as_default_value = false)]
struct DeviceKeyInsert<'a> {
    profile_id: &'a str,
    keyid: &'a str,
    usage: Usage,
    kty: &'a str,
    alg: &'a str,
    bits: i32,
    public_jwk: &'a str,
    thumbprint: &'a str,
    key_state: KeyState,
    certreq: Option<&'a [u8]>,
    created_at: i64,
}

/// A new row of `device_profiles`.
#[derive(Insertable)]
#[diesel(table_name = device_profiles, treat_none_as_default_value = false)]
struct ProfileInsert<'a> {
    profile_id: &'a str,
    user_pk: i64,
    command_id: i64,
    client_id: &'a str,
    name: &'a str,
    servername: &'a str,
    box_id: &'a str,
    attestation_key_id: Option<i64>,
    deviceinfo: Option<&'a str>,
    status: ProfileStatus,
    created_at: i64,
}

/// Why a state change did not happen.
#[derive(Debug, PartialEq, Eq)]
pub enum Transition {
    Done,
    /// The command was no longer `IN_PROGRESS` (another request or instance got there first).
    NotInProgress,
}

// ---------------------------------------------------------------------------------------------
// Profiles and keys (listing)

#[derive(Debug, Clone, Serialize)]
pub struct ProfileListing {
    pub profile_id: String,
    pub user_id: String,
    pub domain: String,
    pub name: String,
    pub servername: String,
    pub status: ProfileStatus,
    pub created_at: i64,
    pub keys: Vec<KeyListing>,
}

#[derive(Debug, Clone, Serialize, Queryable)]
pub struct KeyListing {
    pub keyid: String,
    pub kty: String,
    pub alg: String,
    pub bits: i32,
    pub thumbprint: String,
}

// ---------------------------------------------------------------------------------------------
// Callbacks

#[derive(Debug, Clone, Serialize, Queryable, Selectable)]
#[diesel(table_name = hermod_callbacks)]
pub struct CallbackEntry {
    pub id: i64,
    pub command_id: i64,
    pub client_id: String,
    pub url: String,
    #[serde(skip)]
    pub body: String,
    pub status: CallbackStatus,
    pub attempts: i32,
    pub next_attempt_at: i64,
    pub lease_until: Option<i64>,
    pub last_error: Option<String>,
    pub sent_at: Option<i64>,
    pub created_at: i64,
}

/// A callback leased to one sender, with the key that signs it.
pub struct ClaimedCallback {
    pub entry: CallbackEntry,
    pub secret: Zeroizing<String>,
}

macro_rules! due_callbacks {
    ($now:expr) => {
        hermod_callbacks::table
            .filter(hermod_callbacks::status.eq(CallbackStatus::Queued))
            .filter(hermod_callbacks::next_attempt_at.le($now))
            .filter(
                hermod_callbacks::lease_until
                    .is_null()
                    .or(hermod_callbacks::lease_until.lt($now)),
            )
    };
}

/// A new row of `hermod_callbacks`: queued, due at once.
#[derive(Insertable)]
#[diesel(table_name = hermod_callbacks)]
struct CallbackInsert<'a> {
    command_id: i64,
    client_id: &'a str,
    url: &'a str,
    body: &'a str,
    status: CallbackStatus,
    attempts: i32,
    next_attempt_at: i64,
    created_at: i64,
}

fn enqueue_callback(
    c: &mut DbConnection,
    command: &HermodCommand,
    cb: &NewCallback,
    now: i64,
) -> Result<i64, StoreError> {
    Ok(diesel::insert_into(hermod_callbacks::table)
        .values(CallbackInsert {
            command_id: command.id,
            client_id: &command.client_id,
            url: &cb.url,
            body: &cb.body,
            status: CallbackStatus::Queued,
            attempts: 0,
            next_attempt_at: now,
            created_at: now,
        })
        .returning(hermod_callbacks::id)
        .get_result(c)?)
}

/// Moves `command` from `IN_PROGRESS` to `to` on `c` if it still is there; queues the callback
/// only when it moved.
fn finish_on(
    c: &mut DbConnection,
    command: &HermodCommand,
    to: CommandState,
    error: Option<&str>,
    callback: &NewCallback,
    now: i64,
) -> Result<Transition, StoreError> {
    let moved = diesel::update(
        hermod_commands::table
            .filter(hermod_commands::id.eq(command.id))
            .filter(hermod_commands::state.eq(CommandState::InProgress)),
    )
    .set((
        hermod_commands::state.eq(to),
        hermod_commands::error.eq(error),
        hermod_commands::answered_at.eq(Some(now)),
    ))
    .execute(c)?;
    if moved != 1 {
        return Ok(Transition::NotInProgress);
    }
    enqueue_callback(c, command, callback, now)?;
    Ok(Transition::Done)
}

impl Store {
    // -- clients --------------------------------------------------------------------------

    /// Adds an API client; the callback secret is sealed under the master key.
    pub fn add_hermod_client(
        &self,
        client_id: &str,
        key_sha256: &[u8],
        callback_url: &str,
        callback_secret: &str,
        now: i64,
    ) -> Result<HermodClient, StoreError> {
        let sealed = self
            .key()
            .seal(&secret_context(client_id), callback_secret.as_bytes());
        self.write_tx(|c| {
            diesel::insert_into(hermod_clients::table)
                .values(ClientInsert {
                    client_id,
                    key_sha256,
                    callback_url,
                    sealed_callback_secret: &sealed,
                    disabled: false,
                    created_at: now,
                })
                .execute(c)
                .map_err(|e| match StoreError::from(e) {
                    StoreError::Conflict(_) => {
                        StoreError::Conflict(format!("client {client_id} already exists"))
                    }
                    other => other,
                })
        })?;
        self.hermod_client(client_id)?
            .ok_or_else(|| corrupt("client vanished after insert"))
    }

    pub fn hermod_client(&self, client_id: &str) -> Result<Option<HermodClient>, StoreError> {
        let mut conn = self.conn()?;
        Ok(hermod_clients::table
            .find(client_id)
            .select(client_cols!())
            .first::<ClientCols>(&mut conn)
            .optional()?
            .map(client_of))
    }

    pub fn list_hermod_clients(&self) -> Result<Vec<HermodClient>, StoreError> {
        let mut conn = self.conn()?;
        Ok(hermod_clients::table
            .order(hermod_clients::client_id)
            .select(client_cols!())
            .load::<ClientCols>(&mut conn)?
            .into_iter()
            .map(client_of)
            .collect())
    }

    pub fn set_hermod_client_disabled(
        &self,
        client_id: &str,
        disabled: bool,
    ) -> Result<(), StoreError> {
        let n = self.write_tx(|c| {
            Ok(diesel::update(hermod_clients::table.find(client_id))
                .set(hermod_clients::disabled.eq(disabled))
                .execute(c)?)
        })?;
        touched(n, || format!("client {client_id}"))
    }

    pub fn set_hermod_client_key(
        &self,
        client_id: &str,
        key_sha256: &[u8],
    ) -> Result<(), StoreError> {
        let n = self.write_tx(|c| {
            Ok(diesel::update(hermod_clients::table.find(client_id))
                .set(hermod_clients::key_sha256.eq(key_sha256))
                .execute(c)?)
        })?;
        touched(n, || format!("client {client_id}"))
    }

    pub fn set_hermod_callback_url(&self, client_id: &str, url: &str) -> Result<(), StoreError> {
        let n = self.write_tx(|c| {
            Ok(diesel::update(hermod_clients::table.find(client_id))
                .set(hermod_clients::callback_url.eq(url))
                .execute(c)?)
        })?;
        touched(n, || format!("client {client_id}"))
    }

    // -- attestation trust store ----------------------------------------------------------

    /// Inserts a trust-store entry, or updates the one with the same thumbprint.
    pub fn upsert_attestation_key(
        &self,
        new: &NewAttestationKey<'_>,
        now: i64,
    ) -> Result<AttestationKey, StoreError> {
        self.write_tx(|c| {
            let existing: Option<i64> = attestation_keys::table
                .filter(attestation_keys::thumbprint.eq(new.thumbprint))
                .select(attestation_keys::id)
                .first(c)
                .optional()?;
            match existing {
                Some(id) => {
                    diesel::update(attestation_keys::table.find(id))
                        .set(AttestationKeyChange {
                            kid: new.kid,
                            algs: new.algs,
                            jwk_kid: new.jwk_kid,
                            not_before: new.not_before,
                            not_after: new.not_after,
                        })
                        .execute(c)?;
                }
                None => {
                    diesel::insert_into(attestation_keys::table)
                        .values(AttestationKeyInsert {
                            kid: new.kid,
                            thumbprint: new.thumbprint,
                            public_jwk: new.public_jwk,
                            algs: new.algs,
                            jwk_kid: new.jwk_kid,
                            not_before: new.not_before,
                            not_after: new.not_after,
                            created_at: now,
                        })
                        .execute(c)?;
                }
            }
            Ok(attestation_keys::table
                .filter(attestation_keys::thumbprint.eq(new.thumbprint))
                .select(AttestationKey::as_select())
                .first(c)?)
        })
    }

    pub fn attestation_key_by_thumbprint(
        &self,
        thumbprint: &str,
    ) -> Result<Option<AttestationKey>, StoreError> {
        let mut conn = self.conn()?;
        Ok(attestation_keys::table
            .filter(attestation_keys::thumbprint.eq(thumbprint))
            .select(AttestationKey::as_select())
            .first(&mut conn)
            .optional()?)
    }

    pub fn list_attestation_keys(&self) -> Result<Vec<AttestationKey>, StoreError> {
        let mut conn = self.conn()?;
        Ok(attestation_keys::table
            .order(attestation_keys::kid)
            .select(AttestationKey::as_select())
            .load(&mut conn)?)
    }

    pub fn revoke_attestation_key(&self, kid: &str, now: i64) -> Result<(), StoreError> {
        let n = self.write_tx(|c| {
            Ok(
                diesel::update(attestation_keys::table.filter(attestation_keys::kid.eq(kid)))
                    .set(attestation_keys::revoked_at.eq(Some(now)))
                    .execute(c)?,
            )
        })?;
        touched(n, || format!("attestation key {kid}"))
    }

    // -- commands -------------------------------------------------------------------------

    /// Inserts a command. A nonce the client already used (among commands not yet purged) is
    /// `StoreError::Conflict("nonce")`.
    pub fn create_hermod_command(&self, new: &NewCommand<'_>) -> Result<i64, StoreError> {
        self.write_tx(|c| {
            let used: i64 = hermod_commands::table
                .filter(hermod_commands::client_id.eq(new.client_id))
                .filter(hermod_commands::nonce.eq(new.nonce))
                .count()
                .get_result(c)?;
            if used > 0 {
                return Err(StoreError::Conflict("nonce".into()));
            }
            let values = CommandInsert {
                id: new.id,
                client_id: new.client_id,
                external_id: new.external_id,
                command_type: new.command_type,
                state: CommandState::InProgress,
                nonce: new.nonce,
                user_pk: new.user_pk,
                request_json: new.request_json,
                bid: new.bid,
                mid: new.mid,
                token_sha256: new.token_sha256,
                sealed_token: Some(new.sealed_token),
                box_id: new.box_id,
                attempts: 0,
                token_failures: 0,
                created_at: new.created_at,
                timeout_at: new.timeout_at,
                lifespan_at: new.lifespan_at,
            };
            diesel::insert_into(hermod_commands::table)
                .values(values)
                .returning(hermod_commands::id)
                .get_result(c)
                .map_err(|e| match StoreError::from(e) {
                    StoreError::Conflict(_) => StoreError::Conflict("nonce".into()),
                    other => other,
                })
        })
    }

    pub fn hermod_command(&self, id: i64) -> Result<Option<HermodCommand>, StoreError> {
        let mut conn = self.conn()?;
        Ok(hermod_commands::table
            .find(id)
            .select(HermodCommand::as_select())
            .first(&mut conn)
            .optional()?)
    }

    pub fn hermod_command_by_bid(&self, bid: &str) -> Result<Option<HermodCommand>, StoreError> {
        let mut conn = self.conn()?;
        Ok(hermod_commands::table
            .filter(hermod_commands::bid.eq(bid))
            .select(HermodCommand::as_select())
            .first(&mut conn)
            .optional()?)
    }

    /// Commands, newest first; filtered by client and state when given.
    pub fn list_hermod_commands(
        &self,
        client_id: Option<&str>,
        state: Option<CommandState>,
        limit: i64,
    ) -> Result<Vec<HermodCommand>, StoreError> {
        let mut conn = self.conn()?;
        let mut q = hermod_commands::table
            .select(HermodCommand::as_select())
            .order(hermod_commands::id.desc())
            .limit(limit)
            .into_boxed();
        if let Some(cid) = client_id {
            q = q.filter(hermod_commands::client_id.eq(cid.to_owned()));
        }
        if let Some(s) = state {
            q = q.filter(hermod_commands::state.eq(s));
        }
        Ok(q.load(&mut conn)?)
    }

    /// Records the first fetch of the message.
    pub fn mark_hermod_fetched(&self, id: i64, now: i64) -> Result<(), StoreError> {
        self.write_tx(|c| {
            diesel::update(
                hermod_commands::table
                    .filter(hermod_commands::id.eq(id))
                    .filter(hermod_commands::fetched_at.is_null()),
            )
            .set(hermod_commands::fetched_at.eq(Some(now)))
            .execute(c)?;
            Ok(())
        })
    }

    /// Counts a wrong token on an `IN_PROGRESS` command; at `limit` failures the command
    /// becomes `FAILED` (error `token_bruteforce`) and `callback` is queued. Returns the
    /// failures so far.
    pub fn count_hermod_token_failure(
        &self,
        command: &HermodCommand,
        limit: i32,
        callback: &NewCallback,
        now: i64,
    ) -> Result<i32, StoreError> {
        self.write_tx(|c| {
            diesel::update(
                hermod_commands::table
                    .filter(hermod_commands::id.eq(command.id))
                    .filter(hermod_commands::state.eq(CommandState::InProgress)),
            )
            .set(hermod_commands::token_failures.eq(hermod_commands::token_failures + 1))
            .execute(c)?;
            let failures: i32 = hermod_commands::table
                .find(command.id)
                .select(hermod_commands::token_failures)
                .first(c)?;
            if failures >= limit {
                finish_on(
                    c,
                    command,
                    CommandState::Failed,
                    Some("token_bruteforce"),
                    callback,
                    now,
                )?;
            }
            Ok(failures)
        })
    }

    /// Counts a rejected answer; at `limit` attempts the command becomes `FAILED` with
    /// `error` and `callback` is queued. Returns the attempts so far, or `None` when the
    /// command is no longer in progress (another answer won meanwhile; nothing counted).
    pub fn count_hermod_attempt(
        &self,
        command: &HermodCommand,
        limit: i32,
        error: &str,
        callback: &NewCallback,
        now: i64,
    ) -> Result<Option<i32>, StoreError> {
        self.write_tx(|c| {
            let moved = diesel::update(
                hermod_commands::table
                    .filter(hermod_commands::id.eq(command.id))
                    .filter(hermod_commands::state.eq(CommandState::InProgress)),
            )
            .set((
                hermod_commands::attempts.eq(hermod_commands::attempts + 1),
                hermod_commands::error.eq(Some(error)),
            ))
            .execute(c)?;
            let attempts: i32 = hermod_commands::table
                .find(command.id)
                .select(hermod_commands::attempts)
                .first(c)?;
            if moved != 1 {
                return Ok(None);
            }
            if attempts >= limit {
                finish_on(c, command, CommandState::Failed, Some(error), callback, now)?;
            }
            Ok(Some(attempts))
        })
    }

    /// Moves an `IN_PROGRESS` command to a terminal state other than `COMPLETED` and queues
    /// its callback, in one transaction.
    pub fn finish_hermod_command(
        &self,
        command: &HermodCommand,
        to: CommandState,
        error: Option<&str>,
        callback: &NewCallback,
        now: i64,
    ) -> Result<Transition, StoreError> {
        self.write_tx(|c| finish_on(c, command, to, error, callback, now))
    }

    /// Completes a command: one transaction stores the profile and its keys, moves the
    /// command `IN_PROGRESS` → `COMPLETED` with a conditional update and queues the callback.
    /// If the command is no longer in progress, nothing is written
    /// (`Transition::NotInProgress`). A profile id or key thumbprint already stored is
    /// `StoreError::Conflict("profile")` / `Conflict("key")`.
    pub fn complete_hermod_command(
        &self,
        command: &HermodCommand,
        response_jws: &str,
        profile: &NewProfile,
        callback: &NewCallback,
        now: i64,
    ) -> Result<Transition, StoreError> {
        self.write_tx(|c| {
            let moved = diesel::update(
                hermod_commands::table
                    .filter(hermod_commands::id.eq(command.id))
                    .filter(hermod_commands::state.eq(CommandState::InProgress)),
            )
            .set((
                hermod_commands::state.eq(CommandState::Completed),
                hermod_commands::response_jws.eq(Some(response_jws)),
                hermod_commands::profile_id.eq(Some(&profile.profile_id)),
                hermod_commands::error.eq(None::<String>),
                hermod_commands::answered_at.eq(Some(now)),
            ))
            .execute(c)?;
            if moved != 1 {
                return Ok(Transition::NotInProgress);
            }
            // Checked before inserting so that the conflict is named (and PostgreSQL's
            // transaction is not aborted by a failed insert).
            let exists: i64 = device_profiles::table
                .filter(device_profiles::profile_id.eq(&profile.profile_id))
                .count()
                .get_result(c)?;
            if exists > 0 {
                return Err(StoreError::Conflict("profile".into()));
            }
            let thumbprints: Vec<&str> =
                profile.keys.iter().map(|k| k.thumbprint.as_str()).collect();
            let reused: i64 = device_keys::table
                .filter(device_keys::thumbprint.eq_any(&thumbprints))
                .count()
                .get_result(c)?;
            if reused > 0 {
                return Err(StoreError::Conflict("key".into()));
            }
            diesel::insert_into(device_profiles::table)
                .values(ProfileInsert {
                    profile_id: &profile.profile_id,
                    user_pk: command.user_pk,
                    command_id: command.id,
                    client_id: &command.client_id,
                    name: &profile.name,
                    servername: &profile.servername,
                    box_id: &command.box_id,
                    attestation_key_id: Some(profile.attestation_key_id),
                    deviceinfo: profile.deviceinfo.as_deref(),
                    status: ProfileStatus::Active,
                    created_at: now,
                })
                .execute(c)?;
            for k in &profile.keys {
                diesel::insert_into(device_keys::table)
                    .values(DeviceKeyInsert {
                        profile_id: &profile.profile_id,
                        keyid: &k.keyid,
                        usage: k.usage,
                        kty: &k.kty,
                        alg: &k.alg,
                        bits: k.bits,
                        public_jwk: &k.public_jwk,
                        thumbprint: &k.thumbprint,
                        key_state: k.key_state,
                        certreq: k.certreq.as_deref(),
                        created_at: now,
                    })
                    .execute(c)?;
            }
            enqueue_callback(c, command, callback, now)?;
            Ok(Transition::Done)
        })
    }

    /// `IN_PROGRESS` commands whose `timeout_at` has passed at `now`, oldest first.
    pub fn timed_out_hermod_commands(
        &self,
        now: i64,
        limit: i64,
    ) -> Result<Vec<HermodCommand>, StoreError> {
        let mut conn = self.conn()?;
        Ok(hermod_commands::table
            .filter(hermod_commands::state.eq(CommandState::InProgress))
            .filter(hermod_commands::timeout_at.le(now))
            .order(hermod_commands::timeout_at)
            .limit(limit)
            .select(HermodCommand::as_select())
            .load(&mut conn)?)
    }

    /// Removes terminal commands past their lifespan whose callbacks are settled (sent or
    /// failed), with those callbacks. Profiles and keys stay. Returns the commands removed.
    pub fn purge_hermod_commands(&self, now: i64) -> Result<usize, StoreError> {
        self.write_tx(|c| {
            let pending = hermod_callbacks::table
                .filter(hermod_callbacks::status.eq(CallbackStatus::Queued))
                .select(hermod_callbacks::command_id);
            let ids: Vec<i64> = hermod_commands::table
                .filter(hermod_commands::lifespan_at.le(now))
                .filter(hermod_commands::state.ne(CommandState::InProgress))
                .filter(hermod_commands::id.ne_all(pending))
                .select(hermod_commands::id)
                .load(c)?;
            if ids.is_empty() {
                return Ok(0);
            }
            diesel::delete(
                hermod_callbacks::table.filter(hermod_callbacks::command_id.eq_any(&ids)),
            )
            .execute(c)?;
            Ok(
                diesel::delete(hermod_commands::table.filter(hermod_commands::id.eq_any(&ids)))
                    .execute(c)?,
            )
        })
    }

    // -- profiles and keys ----------------------------------------------------------------

    pub fn hermod_profile_exists(&self, profile_id: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let n: i64 = device_profiles::table
            .filter(device_profiles::profile_id.eq(profile_id))
            .count()
            .get_result(&mut conn)?;
        Ok(n > 0)
    }

    /// Whether any of `thumbprints` is a stored device key.
    pub fn hermod_key_exists(&self, thumbprints: &[String]) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let n: i64 = device_keys::table
            .filter(device_keys::thumbprint.eq_any(thumbprints))
            .count()
            .get_result(&mut conn)?;
        Ok(n > 0)
    }

    /// Profiles with their keys, newest first; for one user when `user_pk` is given.
    pub fn list_hermod_profiles(
        &self,
        user_pk: Option<i64>,
    ) -> Result<Vec<ProfileListing>, StoreError> {
        let mut conn = self.conn()?;
        let mut q = device_profiles::table
            .inner_join(users::table)
            .select((
                device_profiles::profile_id,
                users::user_id,
                users::domain,
                device_profiles::name,
                device_profiles::servername,
                device_profiles::status,
                device_profiles::created_at,
            ))
            .order((
                device_profiles::created_at.desc(),
                device_profiles::profile_id,
            ))
            .into_boxed();
        if let Some(pk) = user_pk {
            q = q.filter(device_profiles::user_pk.eq(pk));
        }
        let rows: Vec<(String, String, String, String, String, ProfileStatus, i64)> =
            q.load(&mut conn)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let keys = device_keys::table
                .filter(device_keys::profile_id.eq(&r.0))
                .order(device_keys::keyid)
                .select((
                    device_keys::keyid,
                    device_keys::kty,
                    device_keys::alg,
                    device_keys::bits,
                    device_keys::thumbprint,
                ))
                .load::<KeyListing>(&mut conn)?;
            out.push(ProfileListing {
                profile_id: r.0,
                user_id: r.1,
                domain: r.2,
                name: r.3,
                servername: r.4,
                status: r.5,
                created_at: r.6,
                keys,
            });
        }
        Ok(out)
    }

    pub fn revoke_hermod_profile(&self, profile_id: &str) -> Result<(), StoreError> {
        let n = self.write_tx(|c| {
            Ok(diesel::update(device_profiles::table.find(profile_id))
                .set(device_profiles::status.eq(ProfileStatus::Revoked))
                .execute(c)?)
        })?;
        touched(n, || format!("profile {profile_id}"))
    }

    // -- callbacks ------------------------------------------------------------------------

    /// Leases up to `limit` due callbacks for `lease_secs` and counts an attempt on each, as
    /// `claim_due_mail` does; each comes with its client's callback secret, opened.
    pub fn claim_due_callbacks(
        &self,
        now: i64,
        lease_secs: i64,
        limit: i64,
    ) -> Result<Vec<ClaimedCallback>, StoreError> {
        let candidates: Vec<i64> = {
            let mut conn = self.conn()?;
            due_callbacks!(now)
                .order((hermod_callbacks::next_attempt_at, hermod_callbacks::id))
                .limit(limit)
                .select(hermod_callbacks::id)
                .load(&mut conn)?
        };
        self.claim_leased(
            candidates,
            |c, id| {
                let taken = diesel::update(due_callbacks!(now).filter(hermod_callbacks::id.eq(id)))
                    .set((
                        hermod_callbacks::lease_until.eq(Some(now + lease_secs.max(1))),
                        hermod_callbacks::attempts.eq(hermod_callbacks::attempts + 1),
                    ))
                    .execute(c)?;
                Ok(taken == 1)
            },
            |c, id| {
                let entry: CallbackEntry = hermod_callbacks::table
                    .find(id)
                    .select(CallbackEntry::as_select())
                    .first(c)?;
                let sealed: Option<Vec<u8>> = hermod_clients::table
                    .find(&entry.client_id)
                    .select(hermod_clients::sealed_callback_secret)
                    .first(c)
                    .optional()?;
                let secret = sealed
                    .and_then(|s| self.key().open(&secret_context(&entry.client_id), &s).ok())
                    .and_then(|b| String::from_utf8(b.to_vec()).ok());
                let Some(secret) = secret else {
                    diesel::update(hermod_callbacks::table.find(id))
                        .set((
                            hermod_callbacks::status.eq(CallbackStatus::Failed),
                            hermod_callbacks::lease_until.eq(None::<i64>),
                            hermod_callbacks::last_error
                                .eq(Some("the client or its callback secret is gone")),
                        ))
                        .execute(c)?;
                    return Ok(None);
                };
                Ok(Some(ClaimedCallback {
                    entry,
                    secret: Zeroizing::new(secret),
                }))
            },
        )
    }

    pub fn mark_callback_sent(&self, id: i64, now: i64) -> Result<(), StoreError> {
        self.write_tx(|c| {
            diesel::update(hermod_callbacks::table.find(id))
                .set((
                    hermod_callbacks::status.eq(CallbackStatus::Sent),
                    hermod_callbacks::lease_until.eq(None::<i64>),
                    hermod_callbacks::sent_at.eq(Some(now)),
                    hermod_callbacks::last_error.eq(None::<String>),
                ))
                .execute(c)?;
            Ok(())
        })
    }

    pub fn mark_callback_retry(&self, id: i64, error: &str, at: i64) -> Result<(), StoreError> {
        let error: String = error.chars().take(500).collect();
        self.write_tx(|c| {
            diesel::update(hermod_callbacks::table.find(id))
                .set((
                    hermod_callbacks::lease_until.eq(None::<i64>),
                    hermod_callbacks::next_attempt_at.eq(at),
                    hermod_callbacks::last_error.eq(Some(&error)),
                ))
                .execute(c)?;
            Ok(())
        })
    }

    pub fn mark_callback_failed(&self, id: i64, error: &str) -> Result<(), StoreError> {
        let error: String = error.chars().take(500).collect();
        self.write_tx(|c| {
            diesel::update(hermod_callbacks::table.find(id))
                .set((
                    hermod_callbacks::status.eq(CallbackStatus::Failed),
                    hermod_callbacks::lease_until.eq(None::<i64>),
                    hermod_callbacks::last_error.eq(Some(&error)),
                ))
                .execute(c)?;
            Ok(())
        })
    }

    /// Queues a failed (or sent) callback again, due at `now`.
    pub fn retry_callback(&self, id: i64, now: i64) -> Result<(), StoreError> {
        let n = self.write_tx(|c| {
            Ok(diesel::update(hermod_callbacks::table.find(id))
                .set((
                    hermod_callbacks::status.eq(CallbackStatus::Queued),
                    hermod_callbacks::lease_until.eq(None::<i64>),
                    hermod_callbacks::next_attempt_at.eq(now),
                ))
                .execute(c)?)
        })?;
        touched(n, || format!("callback {id}"))
    }

    pub fn list_callbacks(
        &self,
        status: Option<CallbackStatus>,
        limit: i64,
    ) -> Result<Vec<CallbackEntry>, StoreError> {
        let mut conn = self.conn()?;
        let mut q = hermod_callbacks::table
            .select(CallbackEntry::as_select())
            .order(hermod_callbacks::id.desc())
            .limit(limit)
            .into_boxed();
        if let Some(s) = status {
            q = q.filter(hermod_callbacks::status.eq(s));
        }
        Ok(q.load(&mut conn)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_and_map_to_callback_statuses() {
        for s in CommandState::ALL {
            assert_eq!(CommandState::parse(s.as_str()), Some(s));
        }
        assert_eq!(CommandState::parse("in_progress"), None);
        assert_eq!(CommandState::Timeout.callback_status(), 408);
        assert_eq!(CommandState::Cancelled.callback_status(), 410);
        assert!(!CommandState::InProgress.is_terminal());
        assert!(CommandState::Rejected.is_terminal());
    }

    #[test]
    fn a_command_past_its_timeout_is_seen_as_timed_out() {
        let mut c = HermodCommand {
            id: 1,
            client_id: "c".into(),
            external_id: None,
            command_type: CommandType::Prov,
            state: CommandState::InProgress,
            nonce: "n".into(),
            user_pk: 1,
            request_json: "{}".into(),
            bid: "b".into(),
            mid: "m".into(),
            token_sha256: vec![],
            sealed_token: None,
            box_id: "x".into(),
            attempts: 0,
            token_failures: 0,
            response_jws: None,
            error: None,
            profile_id: None,
            created_at: 0,
            timeout_at: 10,
            lifespan_at: 20,
            fetched_at: None,
            answered_at: None,
        };
        assert_eq!(c.effective_state(9), CommandState::InProgress);
        assert_eq!(c.effective_state(10), CommandState::Timeout);
        c.state = CommandState::Completed;
        assert_eq!(c.effective_state(10), CommandState::Completed);
    }
}
