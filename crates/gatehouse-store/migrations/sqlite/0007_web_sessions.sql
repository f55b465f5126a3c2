-- Web sessions (sqlite): the browser's login. Only a hash of the cookie's secret is
-- stored; the CSRF token is per session. A session ends at logout, after its
-- idle or absolute limit, or when its user is disabled or changes password.
CREATE TABLE web_sessions (
    id INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users(id),
    secret_hash  TEXT NOT NULL UNIQUE,
    csrf_token   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    ended_at     INTEGER
);

CREATE INDEX web_sessions_user ON web_sessions (user_id);
