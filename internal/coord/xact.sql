-- Transactions across nodes (issue 10, items 3–4): the remote side of
-- adb.so's two-phase commit (ext/adb/twophase.c).

-- adb.remote_exec(node, sql) runs sql on node (a name of adb.node) inside
-- this transaction: it commits or rolls back with it, on every node.
-- (First version: dblink, committed at once on the node; the library's
-- two-phase version replaces it.)
CREATE OR REPLACE FUNCTION adb.remote_exec(node text, sql text) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
	PERFORM dblink_exec(adb.conninfo(node), sql);
END
$fn$;
