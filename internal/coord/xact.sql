-- Transactions across nodes (issue 10, item 4): the SQL side of adb.so's
-- two-phase commit (ext/adb/twophase.c).

-- adb.remote_exec(node, sql) runs sql (one or more statements) on node, a
-- name of adb.node, inside this transaction: a remote transaction begun on
-- first use at this transaction's isolation level, over this backend's own
-- connection to node, that commits or rolls back with this one — by
-- two-phase commit when this transaction writes on another node too. A
-- remote error is this statement's error, with the remote's SQLSTATE.
CREATE OR REPLACE FUNCTION adb.remote_exec(node text, sql text) RETURNS void
AS 'adb', 'adb_remote_exec' LANGUAGE C STRICT;

-- adb.resolve_prepared(min_age) finishes, on every other master, the
-- prepared transactions this coordinator (or the master it was promoted
-- from) left in doubt by a crash, older than min_age: COMMIT PREPARED when
-- the local transaction committed, ROLLBACK PREPARED when it did not; those
-- still in progress are left. Returns how many it finished. The manager
-- calls it every few seconds.
CREATE OR REPLACE FUNCTION adb.resolve_prepared(min_age interval DEFAULT '5 s') RETURNS integer
AS 'adb', 'adb_resolve_prepared' LANGUAGE C STRICT;
REVOKE ALL ON FUNCTION adb.resolve_prepared(interval) FROM PUBLIC;

-- adb.twophase_stats() counts, in this session, the commits that asked
-- several remote writers whether they wrote (checks) and those that went
-- two-phase (prepared): a single-writer commit adds to neither.
CREATE OR REPLACE FUNCTION adb.twophase_stats(OUT checks bigint, OUT prepared bigint)
AS 'adb', 'adb_twophase_stats' LANGUAGE C STRICT;
