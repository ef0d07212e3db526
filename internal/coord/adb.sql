-- The adb schema the manager installs on every coordinator and on the
-- gtmcoord master (DESIGN §2–3): the node list, the slot map, and how this
-- node reaches the others. Distributed tables and their DDL are in ddl.sql;
-- they run on the coordinators themselves, so DDL works with the manager
-- down.
CREATE EXTENSION IF NOT EXISTS postgres_fdw;
CREATE EXTENSION IF NOT EXISTS dblink;
CREATE SCHEMA IF NOT EXISTS adb;

CREATE TABLE IF NOT EXISTS adb.node (
	name   text PRIMARY KEY,
	type   text NOT NULL,
	host   text NOT NULL,
	port   integer NOT NULL,
	master text NOT NULL DEFAULT ''
);

-- slot k of every distributed table lives on datanode master adb.slot(k).node
-- as the shard table <table>_<k>.
CREATE TABLE IF NOT EXISTS adb.slot (
	slot integer PRIMARY KEY,
	node text NOT NULL
);

-- adb.lost are the names this coordinator routes to (a foreign server, a
-- slot owner) that name no node and that adb.orphans could not place in a
-- datanode group: left to a DBA, and not read as stale again
-- (coord.ServersQuery) — a refresh cannot fix them, so the doctor would
-- only repeat it.
CREATE TABLE IF NOT EXISTS adb.lost (
	name  text PRIMARY KEY,
	since timestamptz NOT NULL DEFAULT now()
);

-- adb.prev_node is the node list as it was before the refresh running
-- now (coord.Configure): adb.orphans finds there the group of a name the
-- new list no longer has. (A plain table, not a temporary one: creating a
-- temporary table costs each refresh more than the copy.)
CREATE UNLOGGED TABLE IF NOT EXISTS adb.prev_node (
	name   text NOT NULL,
	master text NOT NULL
);

-- adb.conninfo is how this node reaches another one, as the manager would.
-- Every value is quoted, as libpq wants it, so no name can add a keyword.
CREATE OR REPLACE FUNCTION adb.conninfo_quote(v text) RETURNS text
LANGUAGE sql IMMUTABLE AS $fn$
	SELECT '''' || replace(replace(v, E'\\', E'\\\\'), '''', E'\\''') || ''''
$fn$;

-- Nodes trust nobody (pg_hba.conf: hostssl … scram-sha-256): the password
-- comes from this node's own password file, beside its socket, which only
-- the node's OS user can read — never from a connection string or a user
-- mapping that a catalog query could show — and the peer must prove with
-- a certificate from the manager's CA that it is the node at that address.
-- Both paths are this node's, read from its settings, so a coordinator
-- cloned from another one does not use its source's.
CREATE OR REPLACE FUNCTION adb.passfile() RETURNS text
LANGUAGE sql STABLE AS $fn$
	SELECT split_part(current_setting('unix_socket_directories'), ',', 1) || '/pgpass'
$fn$;

CREATE OR REPLACE FUNCTION adb.conninfo(node_name text) RETURNS text
LANGUAGE sql STABLE AS $fn$
	SELECT format('host=%s port=%s dbname=%s user=%s passfile=%s sslmode=verify-full sslrootcert=%s connect_timeout=10 keepalives_idle=10 keepalives_interval=5 keepalives_count=3',
	              adb.conninfo_quote(host), adb.conninfo_quote(port::text),
	              adb.conninfo_quote(current_database()), adb.conninfo_quote(current_user),
	              adb.conninfo_quote(adb.passfile()), adb.conninfo_quote(current_setting('ssl_ca_file')))
	FROM adb.node WHERE name = node_name
$fn$;

-- adb.secure_server(srv) gives the postgres_fdw server srv this node's
-- password file and CA, as adb.conninfo does for dblink (the user mapping
-- names the user only), and the same connect and keepalive timeouts.
CREATE OR REPLACE FUNCTION adb.secure_server(srv text) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
	o record;
BEGIN
	FOR o IN SELECT * FROM (VALUES ('passfile', adb.passfile()), ('sslmode', 'verify-full'),
	                               ('sslrootcert', current_setting('ssl_ca_file')),
	                               -- A datanode whose host is cut off fails a query
	                               -- within seconds instead of hanging it.
	                               ('connect_timeout', '10'), ('keepalives_idle', '10'),
	                               ('keepalives_interval', '5'), ('keepalives_count', '3')) AS v(name, value) LOOP
		IF EXISTS (SELECT 1 FROM pg_foreign_server s, unnest(s.srvoptions) opt
		           WHERE s.srvname = srv AND opt LIKE o.name || '=%') THEN
			EXECUTE format('ALTER SERVER %I OPTIONS (SET %I %L)', srv, o.name, o.value);
		ELSE
			EXECUTE format('ALTER SERVER %I OPTIONS (ADD %I %L)', srv, o.name, o.value);
		END IF;
	END LOOP;
END
$fn$;

-- adb.move_server(old, dst) makes what routes to datanode server old route
-- to dst: the server renamed when dst has none, which keeps the foreign
-- tables built on it; when both exist (old left behind by a switch this
-- coordinator missed, or a DBA's rename), old's partitions re-created on
-- dst and old dropped. The slot map follows either way.
CREATE OR REPLACE FUNCTION adb.move_server(old text, dst text) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
	r record;
BEGIN
	IF old = dst THEN
		RETURN;
	END IF;
	IF EXISTS (SELECT 1 FROM pg_foreign_server WHERE srvname = old) THEN
		IF NOT EXISTS (SELECT 1 FROM pg_foreign_server WHERE srvname = dst) THEN
			EXECUTE format('ALTER SERVER %I RENAME TO %I', old, dst);
		ELSE
			FOR r IN SELECT p.oid::regclass::text AS parent, n.nspname, ch.relname,
			                pg_get_expr(ch.relpartbound, ch.oid) AS bound,
			                (SELECT string_agg(format('%I %L', o.option_name, o.option_value), ', ')
			                 FROM pg_options_to_table(ft.ftoptions) o) AS opts
			         FROM pg_foreign_table ft JOIN pg_foreign_server s ON s.oid = ft.ftserver
			         JOIN pg_class ch ON ch.oid = ft.ftrelid JOIN pg_namespace n ON n.oid = ch.relnamespace
			         JOIN pg_inherits i ON i.inhrelid = ch.oid JOIN pg_class p ON p.oid = i.inhparent
			         WHERE s.srvname = old LOOP
				EXECUTE format('ALTER TABLE %s DETACH PARTITION %I.%I', r.parent, r.nspname, r.relname);
				EXECUTE format('DROP FOREIGN TABLE %I.%I', r.nspname, r.relname);
				EXECUTE format('CREATE FOREIGN TABLE %I.%I PARTITION OF %s %s SERVER %I', r.nspname, r.relname, r.parent, r.bound, dst)
					|| CASE WHEN r.opts IS NULL THEN '' ELSE ' OPTIONS (' || r.opts || ')' END;
			END LOOP;
			-- What is left are user mappings, or a DBA's own foreign
			-- tables, which are not dropped behind their back.
			IF NOT EXISTS (SELECT 1 FROM pg_foreign_table ft JOIN pg_foreign_server s ON s.oid = ft.ftserver WHERE s.srvname = old) THEN
				EXECUTE format('DROP SERVER %I CASCADE', old);
			ELSE
				RAISE WARNING 'foreign server % still has foreign tables of its own; it is kept', old;
			END IF;
		END IF;
	END IF;
	UPDATE adb.slot SET node = dst WHERE node = old;
END
$fn$;

-- adb.carries(srv) says whether foreign server srv holds a partition of a
-- distributed table: it routes data.
CREATE OR REPLACE FUNCTION adb.carries(srv text) RETURNS boolean
LANGUAGE sql STABLE AS $fn$
	SELECT EXISTS (SELECT 1 FROM pg_foreign_table ft JOIN pg_foreign_server s ON s.oid = ft.ftserver
	               JOIN pg_inherits i ON i.inhrelid = ft.ftrelid JOIN pg_partitioned_table pt ON pt.partrelid = i.inhparent
	               WHERE s.srvname = srv AND pt.partstrat = 'h')
$fn$;

-- adb.orphans() follows what this coordinator routes to a name that is no
-- node any more — a foreign server of a node it listed or holding a
-- partition, or a slot owner: a datanode master deleted while this
-- coordinator was not told, as by ADBMGR PROMOTE while it was down — to
-- the master, now, of that name's replication group. The group is found in
-- adb.prev_node, the node list this coordinator had before the
-- refresh (adb.node is the new one already), and its master in the new
-- list; failing that, the node now at the server's address. A name
-- neither places is left (WARNING) and recorded in adb.lost: no guess
-- moves data.
CREATE OR REPLACE FUNCTION adb.orphans() RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
	x text;
	dst text;
	srvhost text;
	srvport text;
BEGIN
	FOR x IN SELECT s.srvname::text FROM pg_foreign_server s JOIN pg_foreign_data_wrapper w ON w.oid = s.srvfdw
	         WHERE w.fdwname = 'postgres_fdw'
	           AND (s.srvname::text IN (SELECT name FROM adb.prev_node) OR adb.carries(s.srvname))
	         UNION SELECT node FROM adb.slot LOOP
		IF EXISTS (SELECT 1 FROM adb.node WHERE name = x) THEN
			DELETE FROM adb.lost WHERE name = x;
			CONTINUE;
		END IF;
		SELECT max(o.option_value) FILTER (WHERE o.option_name = 'host'), max(o.option_value) FILTER (WHERE o.option_name = 'port')
		INTO srvhost, srvport
		FROM pg_foreign_server s, pg_options_to_table(s.srvoptions) o WHERE s.srvname = x;
		WITH RECURSIVE up(name, master, depth) AS (
			SELECT x, coalesce((SELECT p.master FROM adb.prev_node p WHERE p.name = x), ''), 0
			UNION ALL
			SELECT p.name, p.master, up.depth + 1 FROM adb.prev_node p JOIN up ON p.name = up.master WHERE up.depth < 64),
		down(name, depth) AS (
			SELECT (SELECT up.name FROM up ORDER BY up.depth DESC LIMIT 1), 0
			UNION ALL
			SELECT p.name, down.depth + 1 FROM adb.prev_node p JOIN down ON p.master = down.name WHERE down.depth < 64),
		now(name, master, type, depth) AS (
			SELECT n.name, n.master, n.type, 0 FROM adb.node n
			WHERE n.name IN (SELECT down.name FROM down) OR (n.host = srvhost AND n.port::text = srvport)
			UNION ALL
			SELECT n.name, n.master, n.type, now.depth + 1 FROM adb.node n JOIN now ON n.name = now.master WHERE now.depth < 64)
		SELECT min(now.name) INTO dst FROM now WHERE now.type = 'datanode master';
		IF dst IS NULL THEN
			RAISE WARNING '% names no node, and its datanode group is not known: what it routes is left to a DBA', x;
			INSERT INTO adb.lost (name) VALUES (x) ON CONFLICT DO NOTHING;
		ELSE
			PERFORM adb.move_server(x, dst);
			DELETE FROM adb.lost WHERE name = x;
		END IF;
	END LOOP;
	-- Gone meanwhile (a DBA's fix): not lost any more.
	DELETE FROM adb.lost l WHERE NOT EXISTS (SELECT 1 FROM pg_foreign_server s WHERE s.srvname = l.name)
	                         AND NOT EXISTS (SELECT 1 FROM adb.slot WHERE node = l.name);
END
$fn$;
