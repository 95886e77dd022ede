-- Hardening (issue items 3 and 7).

-- A TOTP code is usable once: the last time step accepted for the user's current secret. A code of
-- that step or an earlier one is refused, so a code seen over a shoulder or in a log cannot be
-- replayed within its 30-second window (RFC 6238 section 5.2). Reset when a new secret is enrolled.
ALTER TABLE user_security ADD COLUMN totp_last_step BIGINT;

-- An MFA step-up token is redeemed once: its `jti` is recorded when it is exchanged for a session,
-- atomically (the primary key refuses the second redemption). Rows are useless once the token
-- has expired and are swept then.
CREATE TABLE mfa_token_redemptions (
    jti         UUID PRIMARY KEY,
    user_id     UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at  TIMESTAMPTZ NOT NULL,
    redeemed_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE INDEX mfa_token_redemptions_expires_at_idx ON mfa_token_redemptions (expires_at);
