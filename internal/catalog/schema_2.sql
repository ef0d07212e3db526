-- Version 2: parameters set with SET {GTMCOORD|COORDINATOR|DATANODE} …,
-- extra pg_hba lines added with ADD HBA, the parameter definitions used to
-- check SET values, and the operation journal.

-- nodename is a node name or '*' (every node of nodetype); nodetype is a
-- node type ('datanode master') or a family ('datanode': masters and slaves).
CREATE TABLE mgr_param (
    nodename TEXT NOT NULL,
    nodetype TEXT NOT NULL CHECK (nodetype IN ('gtmcoord master', 'gtmcoord slave',
                 'coordinator master', 'coordinator slave', 'datanode master', 'datanode slave',
                 'gtmcoord', 'coordinator', 'datanode')),
    key      TEXT NOT NULL,
    value    TEXT NOT NULL,
    PRIMARY KEY (nodename, nodetype, key)
) STRICT;

-- nodename is a node name or '*' with family set (ADD HBA DATANODE ALL).
CREATE TABLE mgr_hba (
    nodename TEXT NOT NULL,
    family   TEXT NOT NULL CHECK (family IN ('gtmcoord', 'coordinator', 'datanode')),
    line     TEXT NOT NULL,
    PRIMARY KEY (nodename, family, line)
) STRICT;

-- The server's parameters, from postgres --describe-config (FLUSH PARAM).
CREATE TABLE mgr_guc (
    name        TEXT PRIMARY KEY NOT NULL,
    context     TEXT NOT NULL,
    vartype     TEXT NOT NULL,
    default_val TEXT NOT NULL,
    min_val     TEXT NOT NULL,
    max_val     TEXT NOT NULL,
    enum_vals   TEXT NOT NULL,  -- comma separated
    unit        TEXT NOT NULL
) STRICT;

-- Every multi-step operation records its progress here, so that a manager
-- killed half-way can tell what was done.
CREATE TABLE mgr_journal (
    id       INTEGER PRIMARY KEY,
    command  TEXT NOT NULL,
    status   TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed', 'interrupted')),
    step     TEXT NOT NULL DEFAULT '',
    detail   TEXT NOT NULL DEFAULT '',
    started  TEXT NOT NULL,
    updated  TEXT NOT NULL
) STRICT;

CREATE VIEW param AS SELECT nodename, nodetype, key, value FROM mgr_param;
CREATE VIEW hba AS SELECT family AS nodetype, nodename, line AS hbavalue FROM mgr_hba;
CREATE VIEW journal AS SELECT id, command, status, step, detail, started, updated FROM mgr_journal;
