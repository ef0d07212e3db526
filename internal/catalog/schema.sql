-- The manager's catalog. One file declares it; PRAGMA user_version is the
-- schema version (see migrations in catalog.go). The rules that matter for
-- integrity are constraints here, not only checks in Go, so that two
-- sessions racing can never create duplicates.

CREATE TABLE mgr_host (
    name      TEXT PRIMARY KEY NOT NULL,
    user      TEXT NOT NULL,
    port      INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),
    protocol  TEXT NOT NULL CHECK (protocol IN ('ssh', 'local')),
    agentport INTEGER NOT NULL CHECK (agentport BETWEEN 1 AND 65535),
    address   TEXT NOT NULL UNIQUE,
    adbhome   TEXT NOT NULL CHECK (substr(adbhome, 1, 1) = '/'),
    pghome    TEXT NOT NULL CHECK (substr(pghome, 1, 1) = '/'),
    allowcure INTEGER NOT NULL DEFAULT 1
) STRICT;

CREATE TABLE mgr_node (
    id          INTEGER PRIMARY KEY,           -- insertion order = AntDB's scan order
    name        TEXT NOT NULL UNIQUE,          -- unique across all node types
    host        TEXT NOT NULL REFERENCES mgr_host (name) ON UPDATE RESTRICT ON DELETE RESTRICT,
    type        TEXT NOT NULL CHECK (type IN ('gtmcoord master', 'gtmcoord slave',
                    'coordinator master', 'coordinator slave', 'datanode master', 'datanode slave')),
    mastername  TEXT REFERENCES mgr_node (name) ON UPDATE RESTRICT ON DELETE RESTRICT,
    port        INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),
    sync_state  TEXT NOT NULL DEFAULT '' CHECK (sync_state IN ('', 'sync', 'potential', 'async')),
    path        TEXT NOT NULL CHECK (substr(path, 1, 1) = '/'),
    initialized INTEGER NOT NULL DEFAULT 0,
    incluster   INTEGER NOT NULL DEFAULT 0,
    readonly    INTEGER NOT NULL DEFAULT 0,
    zone        TEXT NOT NULL DEFAULT 'local',
    allowcure   INTEGER NOT NULL DEFAULT 0,
    curestatus  TEXT NOT NULL DEFAULT 'normal',
    UNIQUE (host, port),
    UNIQUE (host, path),
    -- masters have no master and no sync state; slaves have both
    CHECK ((type LIKE '% master' AND mastername IS NULL AND sync_state = '')
        OR (type LIKE '% slave' AND mastername IS NOT NULL AND sync_state <> ''))
) STRICT;

-- Only one gtmcoord master may exist.
CREATE UNIQUE INDEX mgr_node_one_gtmcoord_master ON mgr_node (type) WHERE type = 'gtmcoord master';
CREATE INDEX mgr_node_mastername ON mgr_node (mastername);

-- Views named like AntDB's, for users' read-only SQL.
CREATE VIEW host AS
    SELECT name, user, port, protocol, agentport, address, adbhome, pghome
    FROM mgr_host;

CREATE VIEW node AS
    SELECT name, host, type, coalesce(mastername, '') AS mastername, port, sync_state, path,
           CASE initialized WHEN 1 THEN 't' ELSE 'f' END AS initialized,
           CASE incluster WHEN 1 THEN 't' ELSE 'f' END AS incluster,
           CASE readonly WHEN 1 THEN 't' ELSE 'f' END AS readonly,
           zone
    FROM mgr_node;
