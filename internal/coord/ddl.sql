-- Distributed tables and their DDL (issue 10, items 1–2): the SQL side of
-- ext/adb/ddl.c.
--
-- A distributed table t is, on every coordinator (and the gtmcoord master),
-- a table PARTITION BY HASH (its distribution column) whose partition k is
-- a postgres_fdw foreign table t_<k> on the datanode master owning slot k
-- (adb.slot), over the shard table t_<k> there (Citus's convention). The
-- shards carry the whole definition: columns, NOT NULL, defaults, CHECK,
-- primary keys, unique and exclusion constraints, indexes. The coordinators'
-- parent carries what PostgreSQL allows on a table whose partitions are
-- foreign (columns, NOT NULL, defaults, CHECK, plain indexes); the keys and
-- unique indexes, which PostgreSQL refuses there, live on the shards and are
-- listed in adb.dist_constraint, so that a DBA sees them and DDL can replay
-- them. Every remote step goes through adb.remote_exec (xact.sql), which
-- commits with the local transaction: DDL applies everywhere or nowhere.
-- ext/adb/ddl.c's ProcessUtility hook sends a DBA's DDL on a distributed
-- table through the functions below.

-- adb.dist_table lists the distributed tables of this coordinator and the
-- column each is distributed on.
CREATE TABLE IF NOT EXISTS adb.dist_table (
	rel         regclass PRIMARY KEY,
	dist_column text NOT NULL
);

-- adb.dist_constraint lists what the shards of a distributed table enforce
-- and the coordinators cannot hold: kind 'primary key', 'unique', 'exclude'
-- (def is the constraint, as pg_get_constraintdef writes it) or 'unique
-- index' (def is what follows USING in CREATE INDEX); cols are the columns
-- it uses. Shard k calls it adb.shard_name(name, k).
CREATE TABLE IF NOT EXISTS adb.dist_constraint (
	rel  regclass NOT NULL,
	name text NOT NULL,
	kind text NOT NULL,
	def  text NOT NULL,
	cols text[] NOT NULL,
	PRIMARY KEY (rel, name)
);

-- Tables distributed before adb.dist_table existed are listed (a hash-
-- partitioned table over foreign tables), and rows of tables gone dropped.
DELETE FROM adb.dist_constraint c WHERE NOT EXISTS (SELECT 1 FROM pg_class WHERE oid = c.rel);
DELETE FROM adb.dist_table d WHERE NOT EXISTS (SELECT 1 FROM pg_class WHERE oid = d.rel);
INSERT INTO adb.dist_table
SELECT DISTINCT pt.partrelid, a.attname
FROM pg_partitioned_table pt
JOIN pg_attribute a ON a.attrelid = pt.partrelid AND a.attnum = pt.partattrs[0]
JOIN pg_inherits i ON i.inhparent = pt.partrelid JOIN pg_foreign_table ft ON ft.ftrelid = i.inhrelid
WHERE pt.partstrat = 'h' AND pt.partnatts = 1
ON CONFLICT DO NOTHING;

-- adb.forget_dropped() takes a table dropped by any path (DROP OWNED, a
-- DBA's DROP … CASCADE) out of adb.dist_table and adb.dist_constraint, so
-- that a new table given its oid is not taken for a distributed one. It
-- runs as its owner: every user's DROP fires it.
CREATE OR REPLACE FUNCTION adb.forget_dropped() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
	DELETE FROM adb.dist_constraint WHERE rel::oid IN (SELECT objid FROM pg_event_trigger_dropped_objects()
	                                                  WHERE classid = 'pg_class'::regclass AND objsubid = 0);
	DELETE FROM adb.dist_table WHERE rel::oid IN (SELECT objid FROM pg_event_trigger_dropped_objects()
	                                             WHERE classid = 'pg_class'::regclass AND objsubid = 0);
END
$fn$;
DO $adb$ BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname = 'adb_forget_dropped') THEN
		CREATE EVENT TRIGGER adb_forget_dropped ON sql_drop EXECUTE FUNCTION adb.forget_dropped();
	END IF;
END $adb$;

-- adb.dist_nextval(seq) is the default of a serial or identity column of a
-- distributed table: values come from seq on the gtmcoord master, in blocks
-- of adb.sequence_block a session keeps, so that every coordinator hands
-- out values no other one does. (A coordinator's own copy of seq is not
-- used: a clone of a coordinator, as APPEND COORDINATOR makes, shares no
-- state with its source that could repeat a value.)
CREATE OR REPLACE FUNCTION adb.dist_nextval(seq regclass) RETURNS bigint
AS 'adb', 'adb_dist_nextval' LANGUAGE C STRICT VOLATILE;

-- adb.shard_name(name, k) is what object name (an index, a key) is called
-- on shard k: name_k, within PostgreSQL's 63 bytes (a long name is cut and
-- keeps a hash of itself, so that two long names stay apart).
CREATE OR REPLACE FUNCTION adb.shard_name(name text, slot integer) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $fn$
DECLARE
	suffix text := '_' || slot;
	base text := name;
BEGIN
	IF octet_length(name || suffix) <= 63 THEN
		RETURN name || suffix;
	END IF;
	suffix := '_' || left(md5(name), 8) || suffix;
	WHILE octet_length(base || suffix) > 63 LOOP
		base := left(base, -1);
	END LOOP;
	RETURN base || suffix;
END
$fn$;

-- adb.shard(rel, k) is shard k of distributed table rel, quoted.
CREATE OR REPLACE FUNCTION adb.shard(rel regclass, slot integer) RETURNS text
LANGUAGE sql STABLE AS $fn$
	SELECT format('%I.%I', n.nspname, c.relname || '_' || slot)
	FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = rel
$fn$;

-- adb.search_path_sql() sets, in a remote transaction, the schemas this
-- session resolves names in, so that DDL sent there means what it means
-- here. (The schemas are quoted one by one: search_path's own text is not
-- safe to splice.)
CREATE OR REPLACE FUNCTION adb.search_path_sql() RETURNS text
LANGUAGE sql STABLE AS $fn$
	SELECT 'SET LOCAL search_path TO ' || coalesce(string_agg(quote_ident(s), ', ' ORDER BY o), 'pg_catalog')
	FROM unnest(current_schemas(false)) WITH ORDINALITY AS x(s, o)
$fn$;

-- adb.shards_exec(nodes, sqls) runs sqls[i] on datanode nodes[i], for
-- every i at once, over postgres_fdw's connection to it: in the remote
-- transaction this transaction's reads and writes of distributed tables
-- use (see ext/adb/ddl.c).
CREATE OR REPLACE FUNCTION adb.shards_exec(nodes text[], sqls text[]) RETURNS void
AS 'adb', 'adb_shards_exec' LANGUAGE C STRICT;

-- adb.on_shards(stmts) runs stmts[k + 1] on the datanode owning slot k,
-- for every slot: one remote call per datanode, all of its shards in one
-- batch, the datanodes at once, over postgres_fdw's connection
-- (adb.shards_exec), so that the statements that follow in this
-- transaction see what it did; the two-phase commit (ext/adb/twophase.c)
-- counts those datanodes among the writers.
-- What the batch sets is set back, as postgres_fdw's session wants it.
CREATE OR REPLACE FUNCTION adb.on_shards(stmts text[]) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
	pre text := 'SET LOCAL client_min_messages = warning; ' || adb.search_path_sql() || E';\n';
	post text := E';\nSET LOCAL search_path = pg_catalog; SET LOCAL client_min_messages TO DEFAULT';
BEGIN
	PERFORM adb.shards_exec(array_agg(b.node ORDER BY b.node), array_agg(pre || b.batch || post ORDER BY b.node))
	FROM (SELECT s.node, string_agg(stmts[s.slot + 1], E';\n' ORDER BY s.slot) AS batch
	      FROM adb.slot s WHERE stmts[s.slot + 1] IS NOT NULL GROUP BY s.node) b;
END
$fn$;

-- adb.on_coordinators(sql) runs sql on every other coordinator master and
-- on the gtmcoord master, with adb.propagating on there: what arrives is
-- applied, not sent on again.
CREATE OR REPLACE FUNCTION adb.on_coordinators(sql text) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
	r record;
	pre text := 'SET LOCAL adb.propagating = on; SET LOCAL client_min_messages = warning; ' || adb.search_path_sql() || E';\n';
BEGIN
	FOR r IN SELECT name FROM adb.node WHERE type IN ('coordinator master', 'gtmcoord master')
	         AND name <> current_setting('cluster_name') ORDER BY name LOOP
		PERFORM adb.remote_exec(r.name, pre || sql);
	END LOOP;
END
$fn$;

-- adb.qualified(rel) is rel's name, schema-qualified and quoted, whatever
-- the search path.
CREATE OR REPLACE FUNCTION adb.qualified(rel regclass) RETURNS text
LANGUAGE sql STABLE AS $fn$
	SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = rel
$fn$;

-- adb.ddl_lock(name) serializes DDL on distributed table name (a quoted
-- qualified name) across the cluster: a transaction-level advisory lock on
-- the gtmcoord master, taken before any lock here. Without it two
-- coordinators changing one table at once would each hold their own copy
-- and a shard, and wait for ever for the other's.
CREATE OR REPLACE FUNCTION adb.ddl_lock(name text) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
	gtm text := (SELECT n.name FROM adb.node n WHERE n.type = 'gtmcoord master');
	sql text := format('SELECT pg_catalog.pg_advisory_xact_lock(%s, %s)', 1633969252, hashtext(name));
BEGIN
	IF gtm IS NULL OR gtm = current_setting('cluster_name') THEN
		EXECUTE sql;
	ELSE
		PERFORM adb.remote_exec(gtm, sql);
	END IF;
END
$fn$;

-- adb.locally(sql) runs sql here with adb.propagating on: the hook lets it
-- through as it is (the caller sends it elsewhere itself).
CREATE OR REPLACE FUNCTION adb.locally(sql text) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
	prev text := coalesce(current_setting('adb.propagating', true), 'off');
BEGIN
	PERFORM set_config('adb.propagating', 'on', true);
	EXECUTE sql;
	PERFORM set_config('adb.propagating', prev, true);
END
$fn$;

-- adb.everywhere(sql) runs sql here and on every other coordinator.
CREATE OR REPLACE FUNCTION adb.everywhere(sql text) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
	PERFORM adb.locally(sql);
	PERFORM adb.on_coordinators(sql);
END
$fn$;

-- adb.refuse_key(rel) is Citus's error for a key that does not include
-- the distribution column: it could not be enforced shard by shard.
CREATE OR REPLACE FUNCTION adb.refuse_key(rel text) RETURNS void
LANGUAGE plpgsql AS $fn$
BEGIN
	RAISE EXCEPTION 'cannot create constraint on "%"', rel USING ERRCODE = '0A000',
		DETAIL = 'Distributed relations cannot have UNIQUE, EXCLUDE, or PRIMARY KEY constraints that do not include the partition column (with an equality operator if EXCLUDE).';
END
$fn$;

-- adb.index_using(idx) is index idx's definition after USING (method,
-- columns, INCLUDE, WITH, WHERE), to re-create it elsewhere under another
-- name: pg_get_indexdef less the prefix it writes.
CREATE OR REPLACE FUNCTION adb.index_using(idx oid) RETURNS text
LANGUAGE plpgsql STABLE AS $fn$
DECLARE
	d text := pg_get_indexdef(idx);
	p text;
BEGIN
	SELECT 'CREATE ' || CASE WHEN i.indisunique THEN 'UNIQUE ' ELSE '' END || 'INDEX ' || quote_ident(c.relname)
	       || ' ON ' || CASE WHEN c.relkind = 'I' THEN 'ONLY ' ELSE '' END
	       || quote_ident(tn.nspname) || '.' || quote_ident(t.relname) || ' USING '
	INTO p
	FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid
	JOIN pg_namespace tn ON tn.oid = t.relnamespace WHERE i.indexrelid = idx;
	IF p IS NULL OR left(d, length(p)) <> p THEN
		RAISE EXCEPTION 'cannot read the definition of index %', idx::regclass USING ERRCODE = 'XX000';
	END IF;
	RETURN substr(d, length(p) + 1);
END
$fn$;

-- adb.index_cols(idx) are the columns of its table that index idx uses
-- (keys, INCLUDE, expressions, predicate).
CREATE OR REPLACE FUNCTION adb.index_cols(idx oid) RETURNS text[]
LANGUAGE sql STABLE AS $fn$
	SELECT coalesce(array_agg(a.attname::text ORDER BY a.attnum), '{}')
	FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum > 0
	WHERE i.indexrelid = idx
	  AND (a.attnum = ANY (i.indkey::int2[])
	       OR EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = i.indexrelid
	                  AND d.refclassid = 'pg_class'::regclass AND d.refobjid = i.indrelid AND d.refobjsubid = a.attnum))
$fn$;

-- adb.shard_constraint_sql(rel, name, kind, def) are the statements, one
-- per slot, that give each shard of rel the key or unique index name.
CREATE OR REPLACE FUNCTION adb.shard_constraint_sql(rel regclass, name text, kind text, def text) RETURNS text[]
LANGUAGE sql STABLE AS $fn$
	SELECT array_agg(CASE WHEN kind = 'unique index'
	                      THEN format('CREATE UNIQUE INDEX %I ON %s USING %s', adb.shard_name(name, k), adb.shard(rel, k), def)
	                      ELSE format('ALTER TABLE %s ADD CONSTRAINT %I %s', adb.shard(rel, k), adb.shard_name(name, k), def) END
	                 ORDER BY k)
	FROM generate_series(0, (SELECT count(*) FROM adb.slot)::integer - 1) k
$fn$;

-- adb.replace_local_table(nsp, rel) makes room for distributed table
-- nsp.rel on this coordinator: a table of that name is dropped when it
-- holds nothing (coordinators are separate servers: one with rows here is
-- not the table being distributed).
CREATE OR REPLACE FUNCTION adb.replace_local_table(nsp text, rel text) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
	t regclass := to_regclass(format('%I.%I', nsp, rel));
	nonempty boolean;
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = nsp) THEN
		EXECUTE format('CREATE SCHEMA %I', nsp);
	END IF;
	IF t IS NULL THEN
		RETURN;
	END IF;
	IF EXISTS (SELECT 1 FROM adb.dist_table WHERE dist_table.rel = t) THEN
		RAISE EXCEPTION 'table %.% is already distributed on coordinator %', nsp, rel, current_setting('cluster_name')
			USING ERRCODE = '42P07';
	END IF;
	IF EXISTS (SELECT 1 FROM pg_class WHERE oid = t AND relkind = 'r') THEN
		EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s)', t) INTO nonempty;
		IF nonempty THEN
			RAISE EXCEPTION 'table %.% on coordinator % is not empty', nsp, rel, current_setting('cluster_name')
				USING ERRCODE = '55000';
		END IF;
	END IF;
	PERFORM adb.locally(format('DROP TABLE %I.%I', nsp, rel));
END
$fn$;

-- adb.attach_distributed_table(nsp, rel, col, cols) builds, on this
-- coordinator, the parent table (hash-partitioned on col, columns cols)
-- and one foreign-table partition per slot, and lists it in
-- adb.dist_table. (Kept for scripts of the first version; the table's
-- whole definition comes with adb.create_distributed_table.)
CREATE OR REPLACE FUNCTION adb.attach_distributed_table(nsp text, rel text, col text, cols text)
RETURNS void LANGUAGE plpgsql AS $fn$
BEGIN
	PERFORM adb.replace_local_table(nsp, rel);
	PERFORM adb.locally(adb.parent_sql(nsp, rel, col, cols));
END
$fn$;

-- adb.parent_sql(nsp, rel, col, cols) is the script that builds the
-- parent table nsp.rel (columns cols) with its partitions, and lists it.
CREATE OR REPLACE FUNCTION adb.parent_sql(nsp text, rel text, col text, cols text) RETURNS text
LANGUAGE sql STABLE AS $fn$
	SELECT format(E'CREATE TABLE %I.%I (%s) PARTITION BY HASH (%I);\n', nsp, rel, cols, col)
	    || string_agg(format('CREATE FOREIGN TABLE %I.%I PARTITION OF %I.%I FOR VALUES WITH (MODULUS %s, REMAINDER %s) SERVER %I OPTIONS (schema_name %L, table_name %L)',
	                         nsp, rel || '_' || s.slot, nsp, rel, (SELECT count(*) FROM adb.slot), s.slot, s.node, nsp, rel || '_' || s.slot),
	                  E';\n' ORDER BY s.slot)
	    || format(E';\nINSERT INTO adb.dist_table VALUES (%L::regclass, %L)', format('%I.%I', nsp, rel), col)
	FROM adb.slot s
$fn$;

-- adb.create_distributed_table('t', 'col') turns the empty table t into a
-- distributed table on col, keeping its definition: shards t_<k> with its
-- columns, NOT NULL, defaults, CHECK, keys, unique and exclusion
-- constraints and indexes on the datanodes (one batch per datanode), and
-- the parent on every coordinator. A key that does not include col is
-- refused, as Citus does (it could not be enforced shard by shard); so are
-- foreign keys, triggers, rules, row-level security and generated columns,
-- by name. Serial and identity columns take their values from
-- adb.dist_nextval. Its privileges are the same on every coordinator:
-- this one's.
CREATE OR REPLACE FUNCTION adb.create_distributed_table(tbl regclass, col text)
RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
	nsp text;
	rel text;
	colnum smallint;
	nonempty boolean;
	r record;
	a record;
	coordcols text[] := '{}';
	shardcols text[] := '{}';
	seqs text := '';
	owned text := '';
	extra text := '';
	shardextra text[] := '{}';
	script text;
	acl text;
	dflt text;
	seq regclass;
	nslots integer;
	stmts text[];
BEGIN
	IF current_database() <> 'postgres' THEN
		RAISE EXCEPTION 'distributed tables live in database postgres, not %', current_database() USING ERRCODE = '0A000';
	END IF;
	SELECT n.nspname, c.relname INTO nsp, rel FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE c.oid = tbl AND c.relkind = 'r' AND NOT c.relispartition;
	IF rel IS NULL THEN
		RAISE EXCEPTION '% is not a plain table', tbl USING ERRCODE = '42809';
	END IF;
	SELECT attnum INTO colnum FROM pg_attribute WHERE attrelid = tbl AND attname = col AND attnum > 0 AND NOT attisdropped;
	IF colnum IS NULL THEN
		RAISE EXCEPTION 'column "%" of table % does not exist', col, tbl USING ERRCODE = '42703';
	END IF;
	EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s)', tbl) INTO nonempty;
	IF nonempty THEN
		RAISE EXCEPTION 'table % is not empty', tbl USING ERRCODE = '55000', HINT = 'Create the distributed table empty, then load it.';
	END IF;
	IF octet_length(rel) > 58 THEN
		RAISE EXCEPTION 'table name "%" is too long for a distributed table (at most 58 bytes: shards are named <table>_<slot>)', rel
			USING ERRCODE = '42622';
	END IF;
	PERFORM adb.ddl_lock(format('%I.%I', nsp, rel));
	SELECT count(*) INTO nslots FROM adb.slot;
	IF nslots = 0 THEN
		RAISE EXCEPTION 'the cluster has no datanode master to hold the shards' USING ERRCODE = '55000';
	END IF;
	IF EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = tbl OR inhparent = tbl) THEN
		RAISE EXCEPTION 'table % has inheritance children or parents: not supported on a distributed table', tbl USING ERRCODE = '0A000';
	END IF;

	-- What the shards cannot keep is refused, by name, never dropped.
	FOR r IN SELECT conname, conrelid::regclass AS onrel FROM pg_constraint
	         WHERE contype = 'f' AND (conrelid = tbl OR confrelid = tbl) LOOP
		RAISE EXCEPTION 'foreign key "%" on table % is not supported on a distributed table', r.conname, r.onrel
			USING ERRCODE = '0A000';
	END LOOP;
	FOR r IN SELECT tgname FROM pg_trigger WHERE tgrelid = tbl AND NOT tgisinternal LOOP
		RAISE EXCEPTION 'trigger "%" on table % is not supported on a distributed table', r.tgname, tbl USING ERRCODE = '0A000';
	END LOOP;
	-- Row-level security and rules would hold on this coordinator only
	-- (the table is made again on every one): refused by name.
	IF (SELECT relrowsecurity OR relforcerowsecurity FROM pg_class WHERE oid = tbl) THEN
		RAISE EXCEPTION 'row-level security of table % is not supported on a distributed table', tbl
			USING ERRCODE = '0A000', HINT = 'ALTER TABLE … DISABLE ROW LEVEL SECURITY, … NO FORCE ROW LEVEL SECURITY, and drop its policies first.';
	END IF;
	FOR r IN SELECT polname FROM pg_policy WHERE polrelid = tbl LOOP
		RAISE EXCEPTION 'policy "%" of table % is not supported on a distributed table', r.polname, tbl
			USING ERRCODE = '0A000', HINT = 'Drop the policy first.';
	END LOOP;
	FOR r IN SELECT rulename FROM pg_rewrite WHERE ev_class = tbl AND rulename <> '_RETURN' LOOP
		RAISE EXCEPTION 'rule "%" of table % is not supported on a distributed table', r.rulename, tbl
			USING ERRCODE = '0A000', HINT = 'Drop the rule first.';
	END LOOP;
	FOR r IN SELECT c.conname, c.contype, c.conkey, c.conexclop FROM pg_constraint c
	         WHERE c.conrelid = tbl AND c.contype IN ('p', 'u', 'x') LOOP
		IF NOT colnum = ANY (r.conkey)
		   OR (r.contype = 'x' AND (SELECT o.oprname FROM pg_operator o WHERE o.oid = r.conexclop[array_position(r.conkey, colnum)]) <> '=') THEN
			PERFORM adb.refuse_key(rel);
		END IF;
	END LOOP;
	FOR r IN SELECT i.indexrelid FROM pg_index i WHERE i.indrelid = tbl AND i.indisunique
	         AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.conrelid = tbl)
	         AND NOT colnum = ANY (i.indkey::int2[]) LOOP
		RAISE EXCEPTION 'creating unique indexes on non-partition columns is currently unsupported' USING ERRCODE = '0A000',
			DETAIL = format('Unique index %s does not include distribution column "%s" of %s.', r.indexrelid::regclass, col, rel);
	END LOOP;

	-- Columns. Sequence values come from the gtmcoord master through
	-- adb.dist_nextval on the coordinators; the shards get no such default.
	FOR a IN SELECT at.attnum, at.attname, format_type(at.atttypid, at.atttypmod) AS typ, at.attnotnull, at.attidentity,
	                at.attgenerated, d.oid AS defoid, pg_get_expr(d.adbin, d.adrelid) AS def,
	                CASE WHEN at.attcollation <> 0 AND at.attcollation <> t.typcollation
	                     THEN format(' COLLATE %I.%I', cn.nspname, co.collname) ELSE '' END AS coll
	         FROM pg_attribute at JOIN pg_type t ON t.oid = at.atttypid
	         LEFT JOIN pg_attrdef d ON d.adrelid = at.attrelid AND d.adnum = at.attnum
	         LEFT JOIN pg_collation co ON co.oid = at.attcollation LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace
	         WHERE at.attrelid = tbl AND at.attnum > 0 AND NOT at.attisdropped ORDER BY at.attnum LOOP
		IF a.attgenerated <> '' THEN
			RAISE EXCEPTION 'generated column "%" of table % is not supported on a distributed table', a.attname, tbl
				USING ERRCODE = '0A000';
		END IF;
		seq := NULL;
		IF a.attidentity <> '' OR a.defoid IS NOT NULL AND EXISTS (
			SELECT 1 FROM pg_depend dp JOIN pg_class sc ON sc.oid = dp.refobjid
			WHERE dp.classid = 'pg_attrdef'::regclass AND dp.objid = a.defoid AND dp.refclassid = 'pg_class'::regclass AND sc.relkind = 'S') THEN
			seq := pg_get_serial_sequence(tbl::text, a.attname);
			IF seq IS NULL OR (a.attidentity = '' AND a.def IS DISTINCT FROM format('nextval(%L::regclass)', seq::text)) THEN
				RAISE EXCEPTION 'the default of column "%" of table % uses a sequence that is not the column''s own', a.attname, tbl
					USING ERRCODE = '0A000', HINT = 'Only serial and identity columns of a distributed table take values from a sequence.';
			END IF;
			SELECT seqs || format(E'CREATE SEQUENCE %s AS %s INCREMENT BY %s MINVALUE %s MAXVALUE %s START WITH %s %s;\n',
			                      seq, s.seqtypid::regtype, s.seqincrement, s.seqmin, s.seqmax, s.seqstart,
			                      CASE WHEN s.seqcycle THEN 'CYCLE' ELSE 'NO CYCLE' END)
			INTO seqs FROM pg_sequence s WHERE s.seqrelid = seq;
			owned := owned || format(E'ALTER SEQUENCE %s OWNED BY %I.%I.%I;\n', seq, nsp, rel, a.attname)
			         -- its privileges as here (default privileges, GRANTs)
			         || format(E'UPDATE pg_catalog.pg_class SET relacl = %L::pg_catalog.aclitem[] WHERE oid = %L::regclass;\n',
			                   (SELECT c.relacl::text FROM pg_class c WHERE c.oid = seq), seq::text);
			dflt := format(' DEFAULT adb.dist_nextval(%L::regclass)', seq::text);
		ELSIF a.def IS NOT NULL THEN
			dflt := ' DEFAULT ' || a.def;
		ELSE
			dflt := '';
		END IF;
		coordcols := coordcols || (format('%I %s', a.attname, a.typ) || a.coll
		                           || CASE WHEN a.attnotnull OR a.attidentity <> '' THEN ' NOT NULL' ELSE '' END || dflt);
		shardcols := shardcols || (format('%I %s', a.attname, a.typ) || a.coll
		                           || CASE WHEN a.attnotnull OR a.attidentity <> '' THEN ' NOT NULL' ELSE '' END
		                           || CASE WHEN seq IS NULL THEN dflt ELSE '' END);
	END LOOP;
	FOR r IN SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint
	         WHERE conrelid = tbl AND contype = 'c' ORDER BY conname LOOP
		coordcols := coordcols || format('CONSTRAINT %I %s', r.conname, r.def);
		shardcols := shardcols || format('CONSTRAINT %I %s', r.conname, r.def);
	END LOOP;

	-- Keys, unique and exclusion constraints, unique indexes: on the
	-- shards, and listed on the coordinators. Plain indexes: on both (the
	-- parent's are partitioned indexes its foreign partitions skip).
	FOR r IN SELECT c.conname AS name, CASE c.contype WHEN 'p' THEN 'primary key' WHEN 'u' THEN 'unique' ELSE 'exclude' END AS kind,
	                pg_get_constraintdef(c.oid) AS def, adb.index_cols(c.conindid) AS cols
	         FROM pg_constraint c WHERE c.conrelid = tbl AND c.contype IN ('p', 'u', 'x')
	         UNION ALL
	         SELECT ic.relname, 'unique index', adb.index_using(i.indexrelid), adb.index_cols(i.indexrelid)
	         FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
	         WHERE i.indrelid = tbl AND i.indisunique
	           AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.conrelid = tbl)
	         ORDER BY 1 LOOP
		extra := extra || format(E'INSERT INTO adb.dist_constraint VALUES (%L::regclass, %L, %L, %L, %L);\n',
		                         format('%I.%I', nsp, rel), r.name, r.kind, r.def, r.cols);
		shardextra := shardextra || r.kind || r.name || r.def;
	END LOOP;
	FOR r IN SELECT ic.relname AS name, adb.index_using(i.indexrelid) AS def
	         FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
	         WHERE i.indrelid = tbl AND NOT i.indisunique
	           -- (an exclusion constraint's index comes with the constraint)
	           AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.conrelid = tbl)
	         ORDER BY 1 LOOP
		extra := extra || format(E'CREATE INDEX %I ON %I.%I USING %s;\n', r.name, nsp, rel, r.def);
		shardextra := shardextra || 'index'::text || r.name || r.def;
	END LOOP;

	-- The shards, one batch per datanode.
	SELECT array_agg(format('CREATE SCHEMA IF NOT EXISTS %I; CREATE TABLE %I.%I (%s)', nsp, nsp, rel || '_' || k, array_to_string(shardcols, ', '))
	                 || coalesce((SELECT string_agg(E';\n' || CASE x.kind
	                                  WHEN 'index' THEN format('CREATE INDEX %I ON %I.%I USING %s', adb.shard_name(x.name, k), nsp, rel || '_' || k, x.def)
	                                  WHEN 'unique index' THEN format('CREATE UNIQUE INDEX %I ON %I.%I USING %s', adb.shard_name(x.name, k), nsp, rel || '_' || k, x.def)
	                                  ELSE format('ALTER TABLE %I.%I ADD CONSTRAINT %I %s', nsp, rel || '_' || k, adb.shard_name(x.name, k), x.def) END, '' ORDER BY x.o)
	                              FROM (SELECT shardextra[3 * o - 2] AS kind, shardextra[3 * o - 1] AS name, shardextra[3 * o] AS def, o
	                                    FROM generate_series(1, coalesce(array_length(shardextra, 1), 0) / 3) o) x), '')
	                 ORDER BY k)
	INTO stmts FROM generate_series(0, nslots - 1) k;

	-- The coordinators' script: this one's first (it checks the most),
	-- then the datanodes, then the other coordinators.
	script := seqs || adb.parent_sql(nsp, rel, col, array_to_string(coordcols, ', ')) || E';\n' || owned || extra;
	-- The table's privileges as they are here (default privileges, GRANTs
	-- made before this call), the same on every coordinator: the tables
	-- made again would get each coordinator's default privileges instead.
	SELECT c.relacl::text INTO acl FROM pg_class c WHERE c.oid = tbl;
	script := script || format(E';\nUPDATE pg_catalog.pg_class SET relacl = %L::pg_catalog.aclitem[] WHERE oid = %L::regclass',
	                           acl, format('%I.%I', nsp, rel));
	PERFORM adb.replace_local_table(nsp, rel);
	PERFORM adb.locally(script);
	PERFORM adb.on_shards(stmts);
	PERFORM adb.on_coordinators(format('SELECT adb.replace_local_table(%L, %L);', nsp, rel) || E'\n' || script);
END
$fn$;

-- adb.drop_table_everywhere(rel, cascade) drops distributed table rel on
-- every coordinator and its shards on every datanode (DROP TABLE on it
-- comes here, through ext/adb/ddl.c).
CREATE OR REPLACE FUNCTION adb.drop_table_everywhere(tbl regclass, cascade boolean) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
	q text := adb.qualified(tbl);
	stmts text[];
BEGIN
	PERFORM adb.ddl_lock(q);
	SELECT array_agg(format('DROP TABLE IF EXISTS %s', adb.shard(tbl, k)) ORDER BY k) INTO stmts
	FROM generate_series(0, (SELECT count(*) FROM adb.slot)::integer - 1) k;
	PERFORM adb.on_shards(stmts);
	PERFORM adb.everywhere(format('DELETE FROM adb.dist_constraint WHERE rel = to_regclass(%1$L); DELETE FROM adb.dist_table WHERE rel = to_regclass(%1$L); DROP TABLE IF EXISTS %2$s%3$s',
	                              q, q, CASE WHEN cascade THEN ' CASCADE' ELSE '' END));
END
$fn$;

-- adb.drop_distributed_table('t') drops t on every coordinator and its
-- shards on every datanode, as DROP TABLE t does.
CREATE OR REPLACE FUNCTION adb.drop_distributed_table(tbl regclass)
RETURNS void LANGUAGE plpgsql AS $fn$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM adb.dist_table WHERE rel = tbl) THEN
		RAISE EXCEPTION '% is not a distributed table', tbl USING ERRCODE = '42809';
	END IF;
	PERFORM adb.drop_table_everywhere(tbl, false);
END
$fn$;

-- adb.add_dist_constraint(rel, name, kind, def, cols) gives distributed
-- table rel the key or unique index name (ALTER TABLE … ADD PRIMARY KEY /
-- UNIQUE, CREATE UNIQUE INDEX): on every shard, listed on every
-- coordinator; a primary key's columns become NOT NULL there too.
CREATE OR REPLACE FUNCTION adb.add_dist_constraint(tbl regclass, cname text, ckind text, cdef text, ccols text[])
RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
	nsp text := (SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = tbl);
	q text := adb.qualified(tbl);
	col text := (SELECT dist_column FROM adb.dist_table WHERE rel = tbl);
	sql text;
BEGIN
	PERFORM adb.ddl_lock(q);
	IF NOT col = ANY (ccols) THEN
		PERFORM adb.refuse_key((SELECT relname FROM pg_class WHERE oid = tbl));
	END IF;
	IF to_regclass(format('%I.%I', nsp, cname)) IS NOT NULL OR EXISTS (
		SELECT 1 FROM adb.dist_constraint d JOIN pg_class c ON c.oid = d.rel WHERE d.name = cname AND c.relnamespace = (SELECT relnamespace FROM pg_class WHERE oid = tbl)) THEN
		RAISE EXCEPTION 'relation "%" already exists', cname USING ERRCODE = '42P07';
	END IF;
	IF ckind = 'primary key' AND EXISTS (SELECT 1 FROM adb.dist_constraint WHERE rel = tbl AND kind = 'primary key') THEN
		RAISE EXCEPTION 'multiple primary keys for table "%" are not allowed', (SELECT relname FROM pg_class WHERE oid = tbl)
			USING ERRCODE = '42P16';
	END IF;
	sql := format('INSERT INTO adb.dist_constraint VALUES (%L::regclass, %L, %L, %L, %L)', q, cname, ckind, cdef, ccols);
	IF ckind = 'primary key' THEN
		sql := sql || (SELECT string_agg(format('; ALTER TABLE %s ALTER COLUMN %I SET NOT NULL', q, c), '') FROM unnest(ccols) c);
	END IF;
	PERFORM adb.locally(sql);
	PERFORM adb.on_shards(adb.shard_constraint_sql(tbl, cname, ckind, cdef));
	PERFORM adb.on_coordinators(sql);
END
$fn$;

-- adb.drop_dist_constraint(rel, name) drops the key or unique index name
-- of distributed table rel from every shard and every coordinator's list.
CREATE OR REPLACE FUNCTION adb.drop_dist_constraint(tbl regclass, cname text)
RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
	ckind text := (SELECT kind FROM adb.dist_constraint WHERE rel = tbl AND name = cname);
	nsp text := (SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = tbl);
	stmts text[];
BEGIN
	PERFORM adb.ddl_lock(adb.qualified(tbl));
	SELECT array_agg(CASE WHEN ckind = 'unique index' THEN format('DROP INDEX IF EXISTS %I.%I', nsp, adb.shard_name(cname, k))
	                      ELSE format('ALTER TABLE %s DROP CONSTRAINT IF EXISTS %I', adb.shard(tbl, k), adb.shard_name(cname, k)) END ORDER BY k)
	INTO stmts FROM generate_series(0, (SELECT count(*) FROM adb.slot)::integer - 1) k;
	PERFORM adb.everywhere(format('DELETE FROM adb.dist_constraint WHERE rel = to_regclass(%L) AND name = %L',
	                              adb.qualified(tbl), cname));
	PERFORM adb.on_shards(stmts);
END
$fn$;

-- adb.find_dist_constraint(nsp, name) is the distributed table and kind of
-- key or unique index name (in schema nsp, or the first schema of the
-- search path that has one).
CREATE OR REPLACE FUNCTION adb.find_dist_constraint(nsp text, cname text, OUT rel regclass, OUT kind text)
LANGUAGE sql STABLE AS $fn$
	SELECT d.rel, d.kind FROM adb.dist_constraint d JOIN pg_class c ON c.oid = d.rel JOIN pg_namespace n ON n.oid = c.relnamespace
	LEFT JOIN unnest(current_schemas(false)) WITH ORDINALITY AS p(s, o) ON p.s = n.nspname
	WHERE d.name = cname AND (n.nspname = nsp OR nsp IS NULL AND p.o IS NOT NULL)
	ORDER BY p.o LIMIT 1
$fn$;

-- adb.create_dist_index(rel, idx) gives every shard of distributed table
-- rel the plain index idx just made on its parent here, and every other
-- coordinator the same index.
CREATE OR REPLACE FUNCTION adb.create_dist_index(tbl regclass, idx oid) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
	iname text := (SELECT relname FROM pg_class WHERE oid = idx);
	def text := adb.index_using(idx);
	stmts text[];
BEGIN
	SELECT array_agg(format('CREATE INDEX %I ON %s USING %s', adb.shard_name(iname, k), adb.shard(tbl, k), def) ORDER BY k)
	INTO stmts FROM generate_series(0, (SELECT count(*) FROM adb.slot)::integer - 1) k;
	PERFORM adb.on_shards(stmts);
	PERFORM adb.on_coordinators(format('CREATE INDEX %I ON %s USING %s', iname, adb.qualified(tbl), def));
END
$fn$;

-- adb.drop_dist_index(rel, nsp, name, cascade) drops plain index name of
-- distributed table rel (already dropped here) on its shards and on every
-- other coordinator.
CREATE OR REPLACE FUNCTION adb.drop_dist_index(tbl regclass, nsp text, iname text, cascade boolean) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
	stmts text[];
BEGIN
	SELECT array_agg(format('DROP INDEX IF EXISTS %I.%I', nsp, adb.shard_name(iname, k)) ORDER BY k)
	INTO stmts FROM generate_series(0, (SELECT count(*) FROM adb.slot)::integer - 1) k;
	PERFORM adb.on_shards(stmts);
	PERFORM adb.on_coordinators(format('DROP INDEX IF EXISTS %I.%I%s', nsp, iname, CASE WHEN cascade THEN ' CASCADE' ELSE '' END));
END
$fn$;

-- adb.alter_dist_table(rel, head, tail, catalog) sends ALTER TABLE
-- (already applied here) to distributed table rel's shards — head, the
-- shard's name, tail — and to every other coordinator, after the catalog
-- statements catalog (run here already).
CREATE OR REPLACE FUNCTION adb.alter_dist_table(tbl regclass, head text, tail text, catalog text) RETURNS void
LANGUAGE plpgsql AS $fn$
DECLARE
	stmts text[];
BEGIN
	SELECT array_agg(head || adb.shard(tbl, k) || ' ' || tail ORDER BY k)
	INTO stmts FROM generate_series(0, (SELECT count(*) FROM adb.slot)::integer - 1) k;
	PERFORM adb.on_shards(stmts);
	PERFORM adb.on_coordinators(coalesce(catalog || E';\n', '') || head || adb.qualified(tbl) || ' ' || tail);
END
$fn$;

-- adb.column_catalog_sql(rel, col, newname, cascade) checks that column
-- col of distributed table rel may be dropped (newname NULL) or renamed,
-- and is the catalog change that goes with it, for every coordinator: a
-- key or unique index using the column goes with it under CASCADE; a
-- renamed distribution column is renamed in adb.dist_table.
CREATE OR REPLACE FUNCTION adb.column_catalog_sql(tbl regclass, col text, newname text, cascade boolean) RETURNS text
LANGUAGE plpgsql STABLE AS $fn$
DECLARE
	r record;
	q text := adb.qualified(tbl);
BEGIN
	FOR r IN SELECT name FROM adb.dist_constraint WHERE rel = tbl AND col = ANY (cols) ORDER BY name LOOP
		IF newname IS NOT NULL THEN
			RAISE EXCEPTION 'cannot rename column "%" of distributed table %: "%" uses it', col, tbl, r.name
				USING ERRCODE = '0A000', HINT = 'Drop the key or index, rename the column, then add it again.';
		ELSIF NOT cascade THEN
			RAISE EXCEPTION 'cannot drop column % of table % because constraint % on table % depends on it', col, tbl, r.name, tbl
				USING ERRCODE = '2BP01', HINT = 'Use DROP ... CASCADE to drop the dependent objects too.';
		END IF;
	END LOOP;
	IF newname IS NULL THEN
		RETURN format('DELETE FROM adb.dist_constraint WHERE rel = to_regclass(%L) AND %L = ANY (cols)', q, col);
	END IF;
	RETURN format('UPDATE adb.dist_table SET dist_column = %L WHERE rel = to_regclass(%L) AND dist_column = %L', newname, q, col);
END
$fn$;
