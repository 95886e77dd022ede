-- Refresh-token rotation history: every refresh token a session has rotated away from, stored hashed.
-- Presenting one of these again means the token leaked (or a client replayed it), so the session is
-- revoked (DESIGN §6: "reuse of a rotated token revokes the session").
CREATE TABLE user_session_refresh_history (
    token_hash TEXT PRIMARY KEY,
    session_id UUID NOT NULL
               CONSTRAINT user_session_refresh_history_session_id_fkey
               REFERENCES user_sessions (id) ON DELETE CASCADE,
    rotated_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE INDEX user_session_refresh_history_session_id_idx ON user_session_refresh_history (session_id);
