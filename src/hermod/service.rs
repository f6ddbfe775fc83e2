//! The state machine of provision commands (spec sections 3-5) over the store: create,
//! status, cancel, the mailbox's list/fetch/answer, and the sweep. Called on a blocking
//! thread by the HTTP commands; takes typed inputs and returns wire types or [`ApiError`].
//! Time comes from the injected clock.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::ApiError;
use super::jws::{Alg, PublicKey};
use super::model::{self, ProvisionSpec};
use super::verify::{self, Expected, Lookups, TrustedKey, VerifyError};
use super::wire::{
    Answer, AnswerAccepted, BoxEntry, BoxListing, Callback, CommandStatus, CommandView,
    Destination, Message, ProvCommand, ResponseHeader,
};
use super::Settings;
use crate::store::hermod::{
    CommandState, CommandType, HermodClient, HermodCommand, NewCallback, NewCommand, NewDeviceKey,
    NewProfile, Transition,
};
use crate::store::{Store, StoreError};
use crate::types::rfc3339;
use crate::types::{Domain, UserId};

/// Seconds since the epoch; injectable.
pub use crate::store::Clock;

/// Largest `data` of an answer.
pub const MAX_DATA_BYTES: usize = 48 * 1024;

/// Wakes the callback worker after a commit that queued a callback.
#[derive(Clone, Default)]
pub struct Wake(pub Arc<tokio::sync::Notify>);

impl Wake {
    pub fn notify(&self) {
        self.0.notify_one();
    }
}

/// The REST front's shared state.
#[derive(Clone)]
pub struct Hermod {
    pub store: Store,
    pub settings: Settings,
    /// `<public base>` without trailing "/".
    pub public_base: String,
    pub fqdn: String,
    pub algs: Vec<Alg>,
    pub clock: Clock,
    pub wake: Wake,
    /// The server's metrics (`None` in CLI commands).
    pub metrics: Option<crate::metrics::Metrics>,
}

use crate::store::hermod::token_context;

/// A random UUIDv4 from the OS generator.
pub fn uuid_v4() -> String {
    let mut b: [u8; 16] = crate::crypto::random_array();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

pub fn sha256(data: &[u8]) -> Vec<u8> {
    Sha256::digest(data).to_vec()
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The host of a URL (`https://host:port/path` → `host`).
pub fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if let Some(v6) = host_port.strip_prefix('[') {
        return v6.split(']').next().unwrap_or("").to_owned();
    }
    host_port.split(':').next().unwrap_or("").to_owned()
}

/// A callback URL must be https, or http to a loopback host.
pub fn callback_url_ok(url: &str) -> bool {
    if url.starts_with("https://") {
        return !host_of(url).is_empty();
    }
    if url.starts_with("http://") {
        let h = host_of(url);
        return h == "localhost"
            || h.parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
    }
    false
}

/// The callback endpoint for a client's base URL (spec 14.1).
pub fn callback_endpoint(base: &str) -> String {
    format!("{}/rest/callback/provision", base.trim_end_matches('/'))
}

/// The X-Api-Key value: `base64(id:key)`.
pub fn api_key_header(client_id: &str, key: &str) -> String {
    use base64ct::Encoding;
    base64ct::Base64::encode_string(format!("{client_id}:{key}").as_bytes())
}

struct StoreLookups<'a> {
    store: &'a Store,
    now: i64,
}

impl Lookups for StoreLookups<'_> {
    type Error = StoreError;
    fn trusted_key(&self, thumbprint: &str) -> Result<Option<TrustedKey>, StoreError> {
        let Some(entry) = self.store.attestation_key_by_thumbprint(thumbprint)? else {
            return Ok(None);
        };
        if !entry.usable_at(self.now) {
            return Ok(None);
        }
        let jwk = match serde_json::from_str(&entry.public_jwk) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => return Err(StoreError::Corrupt("attestation key JWK".into())),
        };
        let key = PublicKey::from_jwk(&jwk)
            .map_err(|_| StoreError::Corrupt("attestation key JWK".into()))?;
        Ok(Some(TrustedKey {
            id: entry.id,
            key,
            algs: entry
                .alg_list()
                .into_iter()
                .filter_map(Alg::parse)
                .collect(),
            jwk_kid: entry.jwk_kid.clone(),
        }))
    }
    fn profile_exists(&self, id: &str) -> Result<bool, StoreError> {
        self.store.hermod_profile_exists(id)
    }
    fn key_stored(&self, thumbprints: &[String]) -> Result<bool, StoreError> {
        self.store.hermod_key_exists(thumbprints)
    }
}

impl Hermod {
    pub fn new(store: Store, settings: Settings, public_base: String, clock: Clock) -> Self {
        let algs = settings.algs().unwrap_or_else(|_| Alg::ALL.to_vec());
        Hermod {
            store,
            fqdn: host_of(&public_base),
            public_base,
            settings,
            algs,
            clock,
            wake: Wake::default(),
            metrics: None,
        }
    }

    pub fn now(&self) -> i64 {
        (self.clock)()
    }

    pub fn box_url(&self, id: &str) -> String {
        format!("{}/rest/ms/{id}", self.public_base)
    }

    pub fn location(&self, bid: &str, mid: &str) -> String {
        format!("{}/rest/ms/{bid}/{mid}", self.public_base)
    }

    /// The app-launch URI (section 3.1).
    pub fn uri(&self, bid: &str, token: &str) -> String {
        let url = percent_encode(&self.box_url(bid));
        let token = if token.is_empty() {
            String::new()
        } else {
            format!("&token={token}")
        };
        if self.settings.uri_style == "public" {
            format!("com.nexusgroup.plugout:///?url={url}{token}")
        } else {
            format!("com.nexusgroup.pluginout:///url={url}{token}")
        }
    }

    // -- integrator API ---------------------------------------------------------------------

    /// Checks `X-Api-Key: base64(id:key)`.
    pub fn authenticate(&self, header: Option<&str>) -> Result<HermodClient, ApiError> {
        use base64ct::Encoding;
        let raw = header.ok_or_else(ApiError::unauthorized)?;
        let decoded =
            base64ct::Base64::decode_vec(raw.trim()).map_err(|_| ApiError::unauthorized())?;
        let text = String::from_utf8(decoded).map_err(|_| ApiError::unauthorized())?;
        let (id, key) = text.split_once(':').ok_or_else(ApiError::unauthorized)?;
        let client = self.store.hermod_client(id)?;
        // The hash is compared even for an unknown client, against a dummy.
        let digest = sha256(key.as_bytes());
        let stored = client
            .as_ref()
            .map_or(&[0u8; 32][..], |c| c.key_sha256.as_slice());
        let ok = bool::from(digest.ct_eq(stored));
        match client {
            Some(c) if ok => {
                if c.disabled {
                    Err(ApiError::new(
                        403,
                        "client_disabled",
                        "this API client is disabled",
                    ))
                } else {
                    Ok(c)
                }
            }
            _ => Err(ApiError::unauthorized()),
        }
    }

    fn view(&self, c: &HermodCommand, state: CommandState, token: Option<&str>) -> CommandView {
        let uri = match token {
            Some(t) => self.uri(&c.bid, t),
            // Only the token's hash is stored: later views carry the URI without it.
            None => self.uri(&c.bid, ""),
        };
        CommandView {
            command_id: c.id.to_string(),
            destinations: vec![Destination {
                to: "@tmp".into(),
                bid: c.bid.clone(),
                uri,
                mid: c.mid.clone(),
                location: self.location(&c.bid, &c.mid),
            }],
            command_type: c.command_type.as_str().into(),
            state: state.as_str().into(),
            fqdn: self.fqdn.clone(),
        }
    }

    /// Creates a command (section 3.1). Returns the view with the one-time URI.
    pub fn provision(
        &self,
        client: &HermodClient,
        spec: &ProvisionSpec,
    ) -> Result<CommandView, ApiError> {
        self.create(client, spec, None, None)
    }

    /// Creates a command; `fixed` gives (id, bid, mid, token, box id, timeout_at) instead of
    /// drawing them (test-only seeding of the shared vectors).
    pub fn create(
        &self,
        client: &HermodClient,
        spec: &ProvisionSpec,
        fixed: Option<Fixed>,
        _reserved: Option<()>,
    ) -> Result<CommandView, ApiError> {
        let now = self.now();
        let user = self
            .store
            .find_user(
                &UserId::parse(&spec.userid)
                    .map_err(|e| ApiError::invalid("provCommand.userid", e.to_string()))?,
                &Domain::parse(&self.settings.domain)
                    .map_err(|e| ApiError::new(500, "internal_error", e.to_string()))?,
            )?
            .ok_or_else(|| {
                ApiError::new(404, "unknown_user", "no such user").field("provCommand.userid")
            })?;
        if user.locked {
            return Err(
                ApiError::new(403, "user_locked", "the user is locked").field("provCommand.userid")
            );
        }
        let fixed = fixed.unwrap_or_else(|| Fixed {
            id: None,
            bid: uuid_v4(),
            mid: uuid_v4(),
            token: uuid_v4(),
            box_id: uuid_v4(),
            timeout_at: None,
            lifespan_at: None,
        });
        let request_json = serde_json::to_string(&spec.normalized)
            .map_err(|e| ApiError::new(500, "internal_error", e.to_string()))?;
        let token_hash = sha256(fixed.token.as_bytes());
        let sealed_token = self
            .store
            .key()
            .seal(&token_context(&fixed.bid), fixed.token.as_bytes());
        let new = NewCommand {
            id: fixed.id,
            client_id: &client.client_id,
            external_id: spec.external_id.as_deref(),
            command_type: CommandType::Prov,
            nonce: &spec.nonce,
            user_pk: user.pk,
            request_json: &request_json,
            bid: &fixed.bid,
            mid: &fixed.mid,
            token_sha256: &token_hash,
            sealed_token: &sealed_token,
            box_id: &fixed.box_id,
            created_at: now,
            timeout_at: fixed.timeout_at.unwrap_or(now + spec.timeout),
            lifespan_at: fixed.lifespan_at.unwrap_or(now + spec.lifespan),
        };
        let id = self
            .store
            .create_hermod_command(&new)
            .map_err(|e| match e {
                StoreError::Conflict(_) => ApiError::new(
                    409,
                    "nonce_reused",
                    "this nonce was already used by this client",
                )
                .field("provCommand.nonce"),
                other => other.into(),
            })?;
        let c = self
            .store
            .hermod_command(id)?
            .ok_or_else(|| ApiError::new(500, "internal_error", "command vanished"))?;
        Ok(self.view(&c, CommandState::InProgress, Some(&fixed.token)))
    }

    /// The client's own command, else `unknown_command` (never 403: ids are not probed).
    pub fn owned(&self, client: &HermodClient, id: &str) -> Result<HermodCommand, ApiError> {
        let id: i64 = id.parse().map_err(|_| ApiError::unknown_command())?;
        match self.store.hermod_command(id)? {
            Some(c) if c.client_id == client.client_id => Ok(c),
            _ => Err(ApiError::unknown_command()),
        }
    }

    /// The full destination URI (with the token) of an IN_PROGRESS command, for its QR code.
    pub fn destination_uri(&self, client: &HermodClient, id: &str) -> Result<String, ApiError> {
        let c = self.owned(client, id)?;
        if self.settle_timeout(&c)?.is_terminal() {
            return Err(ApiError::gone());
        }
        let token = c
            .sealed_token
            .as_deref()
            .and_then(|s| self.store.key().open(&token_context(&c.bid), s).ok())
            .and_then(|t| String::from_utf8(t.to_vec()).ok())
            .ok_or_else(|| ApiError::new(500, "internal_error", "the token does not open"))?;
        Ok(self.uri(&c.bid, &token))
    }

    /// Moves an in-progress command past its timeout to TIMEOUT (with its callback).
    fn settle_timeout(&self, c: &HermodCommand) -> Result<CommandState, ApiError> {
        let now = self.now();
        if c.effective_state(now) == CommandState::Timeout && c.state == CommandState::InProgress {
            let cb = self.callback(c, CommandState::Timeout, None, None);
            if self
                .store
                .finish_hermod_command(c, CommandState::Timeout, None, &cb, now)?
                == Transition::Done
            {
                self.wake.notify();
                return Ok(CommandState::Timeout);
            }
            return Ok(self
                .store
                .hermod_command(c.id)?
                .map_or(CommandState::Timeout, |c| c.state));
        }
        Ok(c.state)
    }

    /// `GET /rest/command/{id}` (section 3.2).
    pub fn status(&self, client: &HermodClient, id: &str) -> Result<CommandStatus, ApiError> {
        let c = self.owned(client, id)?;
        let state = self.settle_timeout(&c)?;
        let c = if state != c.state {
            self.store.hermod_command(c.id)?.unwrap_or(c)
        } else {
            c
        };
        let terminal = state.is_terminal();
        Ok(CommandStatus {
            view: self.view(&c, state, None),
            external_id: c.external_id.clone(),
            created: rfc3339(c.created_at),
            timeout_at: rfc3339(c.timeout_at),
            lifespan_ends_at: rfc3339(c.lifespan_at),
            response_header: terminal.then(|| ResponseHeader {
                in_reply_to: self.location(&c.bid, &c.mid),
                status: state.callback_status(),
            }),
            data: c
                .response_jws
                .clone()
                .filter(|_| state == CommandState::Completed),
            profile_id: c
                .profile_id
                .clone()
                .filter(|_| state == CommandState::Completed),
            error: c.error.clone().filter(|_| terminal),
        })
    }

    /// `DELETE /rest/command/{id}` (section 3.3).
    pub fn cancel(&self, client: &HermodClient, id: &str) -> Result<CommandStatus, ApiError> {
        let c = self.owned(client, id)?;
        let state = self.settle_timeout(&c)?;
        if state.is_terminal() {
            return Err(ApiError::new(
                409,
                "not_cancellable",
                format!("the command is {state}"),
            ));
        }
        let cb = self.callback(&c, CommandState::Cancelled, None, None);
        match self.store.finish_hermod_command(
            &c,
            CommandState::Cancelled,
            None,
            &cb,
            self.now(),
        )? {
            Transition::Done => self.wake.notify(),
            Transition::NotInProgress => {
                return Err(ApiError::new(
                    409,
                    "not_cancellable",
                    "the command has just ended",
                ))
            }
        }
        self.status(client, id)
    }

    /// The callback for a command entering `state`.
    pub fn callback(
        &self,
        c: &HermodCommand,
        state: CommandState,
        data: Option<&str>,
        error: Option<&str>,
    ) -> NewCallback {
        let client_url = self
            .store
            .hermod_client(&c.client_id)
            .ok()
            .flatten()
            .map(|cl| cl.callback_url)
            .unwrap_or_default();
        let view = self.view(c, state, None);
        let body = Callback {
            response_header: ResponseHeader {
                in_reply_to: self.location(&c.bid, &c.mid),
                status: state.callback_status(),
            },
            command_id: view.command_id,
            destinations: view.destinations,
            command_type: view.command_type,
            fqdn: view.fqdn,
            state: state.as_str().into(),
            external_id: c.external_id.clone(),
            error: error.map(str::to_owned),
            data: data.map(str::to_owned),
        };
        NewCallback {
            url: callback_endpoint(&client_url),
            body: serde_json::to_string(&body).unwrap_or_default(),
        }
    }

    // -- mailbox ----------------------------------------------------------------------------

    /// Finds the box and checks the token (section 4). Order: unknown box → 404; terminal
    /// (or timed out) → 410; wrong token → 404, counted, the limit locks the box.
    fn open_box(&self, bid: &str, token: Option<&str>) -> Result<HermodCommand, ApiError> {
        let c = self
            .store
            .hermod_command_by_bid(bid)?
            .ok_or_else(ApiError::not_found)?;
        if self.settle_timeout(&c)?.is_terminal() {
            return Err(ApiError::gone());
        }
        let given = sha256(token.unwrap_or("").as_bytes());
        let ok = token.is_some() && bool::from(given.ct_eq(&c.token_sha256));
        if !ok {
            let cb = self.callback(&c, CommandState::Failed, None, Some("token_bruteforce"));
            let failures = self.store.count_hermod_token_failure(
                &c,
                self.settings.token_failure_limit,
                &cb,
                self.now(),
            )?;
            if failures >= self.settings.token_failure_limit {
                self.wake.notify();
                tracing::warn!(command_id = c.id, "hermod: box locked after wrong tokens");
            }
            return Err(ApiError::not_found());
        }
        Ok(c)
    }

    pub fn box_list(&self, bid: &str, token: Option<&str>) -> Result<BoxListing, ApiError> {
        let c = self.open_box(bid, token)?;
        Ok(BoxListing {
            bid: c.bid.clone(),
            messages: vec![BoxEntry {
                mid: c.mid.clone(),
                location: self.location(&c.bid, &c.mid),
                command_type: c.command_type.as_str().into(),
            }],
        })
    }

    pub fn box_get(&self, bid: &str, mid: &str, token: Option<&str>) -> Result<Message, ApiError> {
        let c = self.open_box(bid, token)?;
        if c.mid != mid {
            return Err(ApiError::not_found());
        }
        self.store.mark_hermod_fetched(c.id, self.now())?;
        let prov: ProvCommand = serde_json::from_str(&c.request_json)
            .map_err(|_| ApiError::new(500, "internal_error", "a stored command does not parse"))?;
        Ok(Message {
            mid: c.mid.clone(),
            command_type: c.command_type.as_str().into(),
            expires_at: rfc3339(c.timeout_at),
            prov_command: prov,
            boxurl: self.box_url(&c.box_id),
        })
    }

    /// `POST /rest/ms/{bid}/{mid}`: decline, or verify and complete (section 6).
    pub fn box_answer(
        &self,
        bid: &str,
        mid: &str,
        token: Option<&str>,
        answer: &Answer,
    ) -> Result<AnswerAccepted, ApiError> {
        let c = self.open_box(bid, token)?;
        if c.mid != mid {
            return Err(ApiError::not_found());
        }
        let now = self.now();
        match (answer.status, &answer.data) {
            (403, None) => {
                let cb = self.callback(&c, CommandState::Rejected, None, None);
                self.finished(self.store.finish_hermod_command(
                    &c,
                    CommandState::Rejected,
                    None,
                    &cb,
                    now,
                )?)?;
                Ok(AnswerAccepted {
                    state: CommandState::Rejected.as_str().into(),
                    profile_id: None,
                })
            }
            (200, Some(data)) => self.complete(&c, data),
            _ => Err(ApiError::new(
                400,
                "malformed_body",
                "the answer is {\"status\":200,\"data\":JWS} or {\"status\":403}",
            )),
        }
    }

    fn finished(&self, t: Transition) -> Result<(), ApiError> {
        match t {
            Transition::Done => {
                self.wake.notify();
                Ok(())
            }
            Transition::NotInProgress => Err(ApiError::new(
                409,
                "already_answered",
                "this command has already been answered",
            )),
        }
    }

    fn complete(&self, c: &HermodCommand, data: &str) -> Result<AnswerAccepted, ApiError> {
        if data.len() > MAX_DATA_BYTES {
            return Err(ApiError::too_large());
        }
        let now = self.now();
        let prov: ProvCommand = serde_json::from_str(&c.request_json)
            .map_err(|_| ApiError::new(500, "internal_error", "a stored command does not parse"))?;
        let spec = model::check_command(prov)?;
        let boxurl = self.box_url(&c.box_id);
        let exp = Expected {
            nonce: &c.nonce,
            responsesignaturekey: &spec.responsesignaturekey,
            userid: &spec.userid,
            name: &spec.name,
            servername: &spec.servername,
            boxurl: &boxurl,
            keys: &spec.keys,
            attestation_algs: &self.algs,
        };
        let lookups = StoreLookups {
            store: &self.store,
            now,
        };
        let verified = match verify::verify(data, &exp, &lookups) {
            Ok(v) => v,
            Err(VerifyError::Lookup(e)) => return Err(e.into()),
            Err(VerifyError::Rejected(r)) => {
                let cb = self.callback(c, CommandState::Failed, None, Some(r.code.as_str()));
                let attempts = self.store.count_hermod_attempt(
                    c,
                    self.settings.max_attempts,
                    r.code.as_str(),
                    &cb,
                    now,
                )?;
                let Some(attempts) = attempts else {
                    // Another answer completed or ended the command meanwhile.
                    return Err(ApiError::new(
                        409,
                        "already_answered",
                        "this command has already been answered",
                    ));
                };
                if attempts >= self.settings.max_attempts {
                    self.wake.notify();
                }
                tracing::info!(
                    command_id = c.id,
                    code = r.code.as_str(),
                    attempts,
                    "hermod: answer refused"
                );
                return Err(ApiError::rejected(&r));
            }
        };
        let profile = NewProfile {
            profile_id: verified.profile_id.clone(),
            name: spec.name.clone(),
            servername: spec.servername.clone(),
            attestation_key_id: verified.attestation_key_id,
            deviceinfo: verified.deviceinfo.clone(),
            keys: verified
                .keys
                .iter()
                .map(|k| NewDeviceKey {
                    keyid: k.keyid.clone(),
                    usage: k.usage,
                    kty: k.kty.as_str().into(),
                    alg: k.alg.as_str().into(),
                    bits: k.bits as i32,
                    public_jwk: k.public_jwk.clone(),
                    thumbprint: k.thumbprint.clone(),
                    key_state: k.key_state,
                    certreq: k.certreq.clone(),
                })
                .collect(),
        };
        let cb = self.callback(c, CommandState::Completed, Some(data), None);
        match self
            .store
            .complete_hermod_command(c, data, &profile, &cb, now)
        {
            Ok(t) => self.finished(t)?,
            // Another command stored the same profile or key between verification and now.
            Err(StoreError::Conflict(what)) if what == "profile" => {
                return Err(ApiError::new(
                    422,
                    "profile_exists",
                    "profile.id is already registered",
                ))
            }
            Err(StoreError::Conflict(_)) => {
                return Err(ApiError::new(
                    422,
                    "key_reuse",
                    "a signed key is already registered",
                ))
            }
            Err(e) => return Err(e.into()),
        }
        tracing::info!(command_id = c.id, profile_id = %verified.profile_id, "hermod: provisioning completed");
        Ok(AnswerAccepted {
            state: CommandState::Completed.as_str().into(),
            profile_id: Some(verified.profile_id),
        })
    }

    // -- sweeper ----------------------------------------------------------------------------

    /// Times out expired commands (queueing their callbacks) and purges past-lifespan ones.
    /// Returns (timed out, purged).
    pub fn sweep(&self) -> Result<(usize, usize), StoreError> {
        let now = self.now();
        let mut timed_out = 0;
        for c in self.store.timed_out_hermod_commands(now, 500)? {
            let cb = self.callback(&c, CommandState::Timeout, None, None);
            if self
                .store
                .finish_hermod_command(&c, CommandState::Timeout, None, &cb, now)?
                == Transition::Done
            {
                timed_out += 1;
            }
        }
        if timed_out > 0 {
            self.wake.notify();
        }
        let purged = self.store.purge_hermod_commands(now)?;
        Ok((timed_out, purged))
    }
}

/// Fixed values for a seeded command (tests replaying the shared vectors).
#[derive(Debug, Clone)]
pub struct Fixed {
    pub id: Option<i64>,
    pub bid: String,
    pub mid: String,
    pub token: String,
    pub box_id: String,
    pub timeout_at: Option<i64>,
    pub lifespan_at: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_000_000), "2026-11-18T11:06:40Z");
        let u = uuid_v4();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert_eq!(
            host_of("https://provd.example.test:20400/hermod"),
            "provd.example.test"
        );
        assert_eq!(host_of("http://[::1]:8/x"), "::1");
        assert!(callback_url_ok("https://as.example/"));
        assert!(callback_url_ok("http://127.0.0.1:9/"));
        assert!(!callback_url_ok("http://as.example/"));
        assert!(!callback_url_ok("ftp://127.0.0.1/"));
        assert_eq!(
            callback_endpoint("https://a/b/"),
            "https://a/b/rest/callback/provision"
        );
        assert_eq!(
            percent_encode("https://provd.example.test:20400/hermod/rest/ms/x"),
            "https%3A%2F%2Fprovd.example.test%3A20400%2Fhermod%2Frest%2Fms%2Fx"
        );
    }
}
