-- Version 6: the audit trail and the monitor history (issue 11).

-- One row per statement that changes something (or tried to), written
-- when it starts ('running') and completed when it ends: a manager killed
-- mid-statement leaves it 'running', marked 'interrupted' at the next
-- start. The statement is stored with its passwords redacted. address is
-- the client's ('local' on the Unix socket).
CREATE TABLE mgr_audit (
    id          INTEGER PRIMARY KEY,
    at          TEXT NOT NULL,
    user        TEXT NOT NULL,
    address     TEXT NOT NULL DEFAULT '',
    statement   TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('running', 'ok', 'error', 'refused', 'interrupted')),
    sqlstate    TEXT NOT NULL DEFAULT '',
    message     TEXT NOT NULL DEFAULT '',
    duration_ms INTEGER
) STRICT;
CREATE INDEX mgr_audit_at ON mgr_audit (at);

-- The operation journal's entries name the statement that opened them
-- (NULL: the doctor's, or one older than version 6).
ALTER TABLE mgr_journal ADD COLUMN audit_id INTEGER;

-- Samples of each node taken by the manager every monitor interval
-- (SET MONITOR), kept for the retention (CLEAN MONITOR n deletes what is
-- older than n days). status is 'up' or 'down'; role is what the node
-- answers ('primary' or 'standby', '' when down); the lag columns are a
-- slave's, as its master's pg_stat_replication tells them.
CREATE TABLE mgr_monitor (
    id          INTEGER PRIMARY KEY,
    at          TEXT NOT NULL,
    nodename    TEXT NOT NULL,
    nodetype    TEXT NOT NULL,
    host        TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('up', 'down')),
    role        TEXT NOT NULL DEFAULT '',
    timeline    INTEGER,
    connections INTEGER,
    sync_state  TEXT NOT NULL DEFAULT '',
    lag_bytes   INTEGER,
    lag_seconds REAL,
    description TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX mgr_monitor_at ON mgr_monitor (at);

CREATE VIEW audit AS
    SELECT id, at AS time, user, address, statement,
           CASE status WHEN 'ok' THEN 'ok' WHEN 'running' THEN 'running' WHEN 'interrupted' THEN 'interrupted'
                ELSE sqlstate || ': ' || message END AS outcome,
           status, sqlstate, message, duration_ms
    FROM mgr_audit;

CREATE VIEW monitor_history AS
    SELECT at AS time, nodename, nodetype, host, status, role, timeline, connections, sync_state,
           lag_bytes, lag_seconds, description
    FROM mgr_monitor;

-- The journal keeps its rows and first columns (tools read them) and tells
-- who started each operation: the doctor's own entries say 'doctor'.
DROP VIEW journal;
CREATE VIEW journal AS
    SELECT j.id, j.command, j.status, j.step, j.detail, j.started, j.updated,
           coalesce(a.user, CASE WHEN j.command LIKE 'DOCTOR %' THEN 'doctor' ELSE '' END) AS user,
           coalesce(a.address, '') AS address, coalesce(a.statement, '') AS statement
    FROM mgr_journal j LEFT JOIN mgr_audit a ON a.id = j.audit_id;
