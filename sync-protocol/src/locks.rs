//! The edit-lock messages (DESIGN §5): JSON strings carried in stateless frames (type 5), so stock
//! Hocuspocus providers (`sendStateless` / `onStateless`) and y-websocket clients (a
//! `messageHandlers[5]` entry, after asking with `?locks=1`) can speak them.
//!
//! Client → server: `{"type":"lock.acquire"|"lock.renew"|"lock.release"|"lock.break",
//! "resource_type":"BLOCK"|"RELATION", "resource_id":"<uuid>", "ttl_ms":30000?, "request_id":"…"?}`.
//! Server → client: [`LockEvent`] — `lock.granted` / `lock.denied` answer a request (echoing its
//! `request_id`); `lock.acquired` / `lock.released` are pushed to every peer; `lock.list` is sent on
//! join. Times are milliseconds since the Unix epoch.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Default lock lifetime; the holder renews before it runs out.
pub const DEFAULT_TTL_MS: u64 = 30_000;
/// Longest lifetime a client may ask for (a crashed holder blocks others at most this long).
pub const MAX_TTL_MS: u64 = 5 * 60_000;
/// Shortest lifetime (anything shorter would expire before the grant arrives).
pub const MIN_TTL_MS: u64 = 1_000;

/// What can be locked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ResourceType {
    Block,
    Relation,
}

impl ResourceType {
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceType::Block => "BLOCK",
            ResourceType::Relation => "RELATION",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "BLOCK" => Some(ResourceType::Block),
            "RELATION" => Some(ResourceType::Relation),
            _ => None,
        }
    }
}

/// The resource a request is about.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LockTarget {
    pub resource_type: ResourceType,
    pub resource_id: Uuid,
    #[serde(default)]
    pub ttl_ms: Option<u64>,
    #[serde(default)]
    pub request_id: Option<String>,
}

impl LockTarget {
    /// The requested lifetime, clamped to what the server allows.
    pub fn ttl_ms(&self) -> u64 {
        self.ttl_ms
            .unwrap_or(DEFAULT_TTL_MS)
            .clamp(MIN_TTL_MS, MAX_TTL_MS)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type")]
pub enum LockCommand {
    #[serde(rename = "lock.acquire")]
    Acquire(LockTarget),
    #[serde(rename = "lock.renew")]
    Renew(LockTarget),
    #[serde(rename = "lock.release")]
    Release(LockTarget),
    /// Break someone else's lock (needs `locks:override`).
    #[serde(rename = "lock.break")]
    Break(LockTarget),
}

impl LockCommand {
    pub fn target(&self) -> &LockTarget {
        match self {
            LockCommand::Acquire(t)
            | LockCommand::Renew(t)
            | LockCommand::Release(t)
            | LockCommand::Break(t) => t,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LockMessageError {
    /// Not JSON, or JSON without a known `type`: not a lock message at all.
    #[error("not a lock message")]
    NotALockMessage,
    /// A lock message with bad fields.
    #[error("invalid lock message: {0}")]
    Invalid(String),
}

/// Parses a stateless payload. Payloads whose `type` does not start with `lock.` are
/// [`LockMessageError::NotALockMessage`] (other stateless uses are not ours to judge).
pub fn parse_command(payload: &str) -> Result<LockCommand, LockMessageError> {
    let value: serde_json::Value =
        serde_json::from_str(payload).map_err(|_| LockMessageError::NotALockMessage)?;
    let is_lock = value
        .get("type")
        .and_then(|t| t.as_str())
        .is_some_and(|t| t.starts_with("lock."));
    if !is_lock {
        return Err(LockMessageError::NotALockMessage);
    }
    serde_json::from_value(value).map_err(|e| LockMessageError::Invalid(e.to_string()))
}

/// A lock as peers see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LockView {
    pub id: Uuid,
    pub resource_type: ResourceType,
    pub resource_id: Uuid,
    pub user_id: Uuid,
    /// The holder's display name, when known (for lock badges).
    pub user_name: Option<String>,
    pub acquired_at: i64,
    pub expires_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseReason {
    Released,
    Expired,
    Disconnected,
    Broken,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type")]
pub enum LockEvent {
    #[serde(rename = "lock.granted")]
    Granted {
        request_id: Option<String>,
        lock: LockView,
    },
    #[serde(rename = "lock.denied")]
    Denied {
        request_id: Option<String>,
        resource_type: ResourceType,
        resource_id: Uuid,
        reason: String,
        /// Who holds it (when it is a lock of this workspace).
        holder: Option<LockView>,
    },
    #[serde(rename = "lock.acquired")]
    Acquired { lock: LockView },
    #[serde(rename = "lock.released")]
    Released {
        lock: LockView,
        reason: ReleaseReason,
        /// Who broke it, for `reason: broken`.
        by: Option<Uuid>,
    },
    #[serde(rename = "lock.list")]
    List { locks: Vec<LockView> },
    #[serde(rename = "lock.error")]
    Error {
        request_id: Option<String>,
        message: String,
    },
}

impl LockEvent {
    pub fn to_json(&self) -> String {
        // Serializing these plain structs cannot fail.
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_command() {
        let id = Uuid::new_v4();
        for (kind, expect_break) in [
            ("lock.acquire", false),
            ("lock.renew", false),
            ("lock.release", false),
            ("lock.break", true),
        ] {
            let json = format!(
                r#"{{"type":"{kind}","resource_type":"BLOCK","resource_id":"{id}","request_id":"r1"}}"#
            );
            let command = parse_command(&json).expect("parses");
            assert_eq!(command.target().resource_id, id);
            assert_eq!(command.target().request_id.as_deref(), Some("r1"));
            assert_eq!(matches!(command, LockCommand::Break(_)), expect_break);
        }
    }

    #[test]
    fn other_stateless_payloads_are_not_lock_messages() {
        assert_eq!(
            parse_command("hello"),
            Err(LockMessageError::NotALockMessage)
        );
        assert_eq!(
            parse_command(r#"{"type":"chat.message"}"#),
            Err(LockMessageError::NotALockMessage)
        );
        assert!(matches!(
            parse_command(r#"{"type":"lock.acquire","resource_type":"TABLE","resource_id":"x"}"#),
            Err(LockMessageError::Invalid(_))
        ));
    }

    #[test]
    fn ttl_is_clamped() {
        let mut t = LockTarget {
            resource_type: ResourceType::Block,
            resource_id: Uuid::nil(),
            ttl_ms: None,
            request_id: None,
        };
        assert_eq!(t.ttl_ms(), DEFAULT_TTL_MS);
        t.ttl_ms = Some(1);
        assert_eq!(t.ttl_ms(), MIN_TTL_MS);
        t.ttl_ms = Some(u64::MAX);
        assert_eq!(t.ttl_ms(), MAX_TTL_MS);
    }

    #[test]
    fn events_serialize_with_their_type_tag() {
        let lock = LockView {
            id: Uuid::nil(),
            resource_type: ResourceType::Relation,
            resource_id: Uuid::nil(),
            user_id: Uuid::nil(),
            user_name: Some("Ada".into()),
            acquired_at: 1,
            expires_at: 2,
        };
        let json: serde_json::Value =
            serde_json::from_str(&LockEvent::Acquired { lock }.to_json()).expect("json");
        assert_eq!(json["type"], "lock.acquired");
        assert_eq!(json["lock"]["resource_type"], "RELATION");
        assert_eq!(json["lock"]["user_name"], "Ada");
    }
}
