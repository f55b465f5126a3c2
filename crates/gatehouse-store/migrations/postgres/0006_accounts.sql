-- Accounts (postgres): API tokens expire, remember when they were last used
-- (at most once a minute), and remember the token that minted them, whose
-- revocation they share and whose expiry they never pass.
ALTER TABLE api_tokens ADD COLUMN expires_at BIGINT;
ALTER TABLE api_tokens ADD COLUMN last_used_at BIGINT;
ALTER TABLE api_tokens ADD COLUMN parent_id BIGINT REFERENCES api_tokens(id);

-- Tokens that exist today expire 90 days after this migration.
UPDATE api_tokens
   SET expires_at = CAST(EXTRACT(EPOCH FROM now()) AS BIGINT) * 1000000 + 90 * 86400000000
 WHERE revoked_at IS NULL;

CREATE INDEX api_tokens_user ON api_tokens (user_id);
CREATE INDEX api_tokens_parent ON api_tokens (parent_id);
