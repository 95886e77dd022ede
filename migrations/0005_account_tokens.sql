-- Single-use, expiring tokens mailed to a user: email verification and password reset.
-- Only the SHA-256 of the token is stored; `used_at` is set when it is redeemed (or superseded).
CREATE TABLE account_tokens (
    id         UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id    UUID NOT NULL
               CONSTRAINT account_tokens_user_id_fkey REFERENCES users (id) ON DELETE CASCADE,
    purpose    VARCHAR(30) NOT NULL,
    token_hash TEXT NOT NULL CONSTRAINT account_tokens_token_hash_key UNIQUE,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE INDEX account_tokens_user_id_purpose_idx ON account_tokens (user_id, purpose);
