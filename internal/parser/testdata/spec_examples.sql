-- Golden input: one statement per line. Lines starting with "--" are
-- comments (they must parse to nothing); every other line is parsed on its
-- own and its AST or error is written to spec_examples.golden.
--
-- ==== 1. antdb-node-management.zh.txt: 命令举例 (verbatim) ====
-- 添加gtmcoord master节点,主机为localhost1, 端口为6768,数据路径”/home/antdb/data/gc”:
ADD GTMCOORD MASTER gc (HOST=localhost1, PORT=6768, PATH='/home/antdb/data/gc');
-- 添加gtmcoord slave节点,主机为localhost2, 端口为6768,数据路径”/home/antdb/data/gc”:
ADD GTMCOORD SLAVE gcs for gc (HOST=localhost2, PORT=6768, SYNC=t, PATH='/home/antdb/data/gc');
-- 添加coordinator节点coord1信息,主机为localhost1,端口为5532,数据路径”/home/antdb/data/coord1”:
ADD COORDINATOR MASTER coord1(HOST=localhost1, PORT=5532,PATH='/home/antdb/data/coord1');
-- 添加datanode master节点db1,主机为localhost1,端口为15533,数据路径为”/home/antdb/data/db1”:
ADD DATANODE MASTER db1(HOST=localhost1, PORT=15533,PATH='/home/antdb/data/db1');
-- 添加datanode slave节点db1,主机为localhost2,端口为15533,数据路径为”/home/antdb/data/db1”:
ADD DATANODE SLAVE db1s for db1(HOST=localhost1, PORT=15533, SYNC=t, PATH= '/home/antdb/data/db1');
-- 添加datanode slave节点db1s的级联slave db11s
ADD DATANODE SLAVE db11s for db1s(HOST=localhost1, PORT=15543, SYNC=t, PATH= '/home/antdb/data/db11');
-- 集群初始化前,更新gtmcoord master端口号为6666:
ALTER GTMCOORD MASTER gtmcoord (PORT=6666);
-- 更新gtmcoord slave与gtmcoord master为同步关系:
ALTER GTMCOORD SLAVE gcs (SYNC_STATE='sync');
-- 更新gtmcoord extra与gtmcoord master为异步关系:
ALTER GTMCOORD SLAVE gtms (SYNC_STATE='async');
-- 集群初始化前,更新coordinator coord1端口为5532,数据路径为”/home/antdb/data/coord1”:
ALTER COORDINATOR MASTER coord1 (PORT=5532, PATH=’/home/antdb/data/coord1’);
-- 集群初始化前,更新datanode master db1主机为localhost5,数据路径为”/home/antdb/data/db1”:
ALTER DATANODE MASTER db1 (HOST=localhost5, PATH=’/home/antdb/data/coord1’);
-- 更新datanode slave db1与主机datanode master为同步关系:
ALTER DATANODE SLAVE db1s (SYNC_STATE='sync');
-- 更新datanode extra db1与主机datanode master为异步关系:
ALTER DATANODE SLAVE db1s (SYNC_STATE='async');
-- 往AntDB集群中追加一个名为coord4的coordinator节点:
APPEND COORDINATOR MASTER coord4;
-- 往AntDB集群中追加一个名为db4的datanode master节点:
APPEND DATANODE MASTER db4;
-- 为AntDB集群中追加一个名为db4的datanode slave节点:
APPEND DATANODE SLAVE db4;
-- 利用流复制功能往AntDB集群中追加coordinator master 节点:
APPEND COORDINATOR coord5 FOR coord1;
APPEND ACTIVATE COORDINATOR coord5;
-- 从集群中删除coordinator节点
REMOVE COORDINATOR MASTER cd2;
-- 从集群中删除datanode slave节点
REMOVE DATANODE SLAVE db1_2;
-- 从集群中删除gtmcoord slave节点
REMOVE DATANODE SLAVE gc2;
-- 清空AntDB 集群中所有节点数据目录下的内容(ADB 集群处在stop状态):
CLEAN ALL;
-- 清空coordinator节点数据目录:
CLEAN COORDINATOR MASTER coord1;
-- 清空15天前的monitor数据:
CLEAN MONITOR 15;
-- 在集群初始化之前删除datanode slave db1s:
DROP DATANODE SLAVE db1s;
-- 在集群初始化之前删除coordinator coord1:
DROP COORDINATOR master coord1;
-- 在集群初始化之前删除gtmcoord slave gc:
DROP GTMCOORD SLAVE gcs;
-- 在集群初始化之前删除gtmcoord master gc:
DROP GTMCOORD MASTER gc;
-- 显示node表节点信息:
LIST NODE;
-- 显示节点名称为”db1”的节点信息:
LIST NODE db1;
-- 显示db1_2的master/slave节点信息:
list node DATANODE MASTER db1_2;
-- 显示主机localhost1上的节点信息:
list node host localhost1;
-- 显示local zone下的所有节点,双中心场景会有2个zone:
list node zone local;
--
-- ==== 2. antdb-node-management.zh.txt: statements typed at the psql prompt and in running text ====
-- antdb=# (the spec's own typo: FAILOR is not a command)
FAILOR DATANODE dn1_1;
FAILOR DATANODE dn1_1 force;
-- antdb=# (the spec's own typo: SWITCHOR is not a command)
SWITCHOR DATANODE SLAVE dn2_2;
list node dn2_2;
list node dn2_1;
-- 注意:要使用 rewind 功能,需要在 datanode 上将 wal_log_hints 和 full_page_writes 设置为 on。
SET DATANODE ALL(wal_log_hints=on, full_page_writes=on);
REWIND DATANODE SLAVE dm1;
ADD DATANODE SLAVE dn1_1 for dn1_3 (host=adb01,port=52531,path='/data/antdb/data/adb50/d1/dn1_1');
REWIND DATANODE SLAVE dn1_1;
list node dn1_3;
list node dn1_1;
-- 一、根据数据库负载适当调大wal保留个数: (the spec's own typo: "mastere")
SET DATANODE mastere ALL (wal_keep_size = 102400);
SET DATANODE master ALL (archive_mode = "on");
SET DATANODE master dm0 (archive_command = "rsync -a %p /data2/antdb/data/arch/dm0/%f");
SET DATANODE ALL (wal_sender_timeout = 0);
-- [local]:6432 antdb@antdb=#
list host;
add host adb03(port=22,protocol='ssh',adbhome='/opt/app/antdb',address="192.168.149.133",agentport=8432,user='antdb');
deploy adb03;
start agent adb03;
ADD DATANODE master dn3_1(host='adb03', port=14332,path = '/home/antdb/data/dn3_1');
EXPAND DATANODE master dn1_1 to dn3_1;
EXPAND DATANODE master dn1_1 to dn3_1;
EXPAND DATANODE master dn2_1 to dn4_1;
EXPAND activate;
EXPAND clean;
monitor all;
-- 举例:
-- 添加新主机
ADD host adb03(port=22,protocol='ssh',adbhome='/opt/app/antdb',address="192.168.149.133",agentport=8432,user='antdb');
ADD host adb04(port=22,protocol='ssh',adbhome='/opt/app/antdb',address="192.168.149.134",agentport=8432,user='antdb');
-- deploy
DEPLOY adb03 password '123456';
DEPLOY adb04 password '123456';
-- add节点
ADD DATANODE MASTER dn3_1(host='adb03', port=14332,path = '/home/antdb/data/dn3_1');
ADD DATANODE MASTER dn3_1(host='adb04', port=14332,path = '/home/antdb/data/dn4_1');
-- expand
EXPAND DATANODE MASTER dn1_1 to dn3_1;
EXPAND DATANODE MASTER dn2_1 to dn4_1;
-- activate
EXPAND activate;
-- clean
EXPAND clean;
-- 扩容异常情况处理 (quoted in running text; src/dst are placeholders)
expand recover basebackup fail src to dst;
expand recover basebackup success src to dst;
expand activate recover dopromote success dst;
-- \h commands the spec points to, as server-side HELP
HELP add gtmcoord;
HELP add coordinator;
HELP add datanode;
HELP alter gtmcoord;
HELP list node;
HELP append;
HELP clean;
--
-- ==== 3. antdb-node-management.zh.txt: 命令格式 templates (verbatim; braces and placeholders are not SQL) ====
ADD COORDINATOR MASTER master_name ( option )
ADD DATANODE MASTER master_name ( option )
ADD DATANODE SLAVE slave_name FOR master_name ( option )
ADD GTMCOORD MASTER master_name ( option )
ADD GTMCOORD SLAVE slave_name FOR master_name ( option )
ALTER GTMCOORD { MASTER | SLAVE } node_name ( option )
ALTER COORDINATOR MASTER node_name ( option )
ALTER DATANODE { MASTER | SLAVE } node_name ( option )
APPEND GTMCOORD SLAVE node_name
APPEND DATANODE { MASTER | SLAVE } node_name
APPEND COORDINATOR MASTER node_name
APPEND COORDINATOR dest_coordinator_name FOR source_coordinator_name
APPEND ACTIVATE COORDINATOR node_name
REMOVE COORDINATOR SLAVE node_name
REMOVE COORDINATOR MASTER node_name
REMOVE DATANODE SLAVE node_name
REMOVE GTMCOORD SLAVE node_name
CLEAN ALL
CLEAN COORDINATOR { MASTER | SLAVE } { node_name [ , ... ] }
CLEAN DATANODE { MASTER | SLAVE } { node_name [ , ... ] }
CLEAN GTMCOORD { MASTER | SLAVE } node_name
CLEAN MONITOR number_days
CLEAN ZONE zonename
DROP GTMCOORD { MASTER | SLAVE } node_name
DROP COORDINATOR MASTER node_name [, ...]
DROP DATANODE { MASTER | SLAVE } node_name [, ...]
DROP ZONE zonename # 删除同一个zone的所有节点
LIST NODE COORDINATOR [ MASTER | SLAVE ]
LIST NODE DATANODE [ MASTER | SLAVE ]
LIST NODE DATANODE MASTER node_name
LIST NODE HOST host_name [, ...]
LIST NODE [ ( option ) ] [ node_name [, ...] ]
LIST NODE ZONE zonename
--
-- ==== 4. the templates instantiated ====
ADD COORDINATOR MASTER cn1 (HOST=h1, PORT=5432, PATH='/data/cn1', ZONE=local, READONLY=false);
ADD COORDINATOR SLAVE cn1s FOR cn1 (HOST=h2, PORT=5432, PATH='/data/cn1s');
ADD DATANODE SLAVE dn1s FOR dn1 (HOST=h2, PORT=5432, PATH='/data/dn1s');
ADD DATANODE SLAVE dn1s FOR dn1 (HOST=h2, PORT=5432, SYNC_STATE=potential, PATH='/data/dn1s', ZONE=zone2);
ALTER GTMCOORD MASTER gc (HOST=h3, PORT=6768);
ALTER COORDINATOR MASTER cn1 (PORT=5533);
ALTER DATANODE SLAVE dn1s (SYNC_STATE=async, PARENT=dn1);
APPEND GTMCOORD SLAVE gcs;
APPEND DATANODE SLAVE dn1s;
APPEND DATANODE MASTER dn5 DATA_CHECKSUMS (walsegsize = 64);
APPEND COORDINATOR MASTER cn3 DATA_CHECKSUMS;
APPEND COORDINATOR SLAVE cn3s;
REMOVE COORDINATOR SLAVE cn1s;
REMOVE GTMCOORD SLAVE gcs;
REMOVE DATANODE SLAVE dn1s, dn2s;
CLEAN COORDINATOR SLAVE cn1s, cn2s;
CLEAN DATANODE MASTER dn1, dn2;
CLEAN GTMCOORD SLAVE gcs;
CLEAN ZONE zone2;
DROP COORDINATOR MASTER cn1, cn2;
DROP DATANODE MASTER dn1, dn2;
DROP ZONE zone2;
LIST NODE COORDINATOR;
LIST NODE COORDINATOR MASTER;
LIST NODE DATANODE SLAVE;
LIST NODE GTMCOORD MASTER;
LIST NODE HOST h1, h2;
LIST NODE (name, host, type) dn1, dn2;
LIST NODE (name, sync_state);
LIST NODE dn1, dn2;
LIST NODE ZONE zone2;
LIST NODE SIZE ALL;
LIST NODE PRETTY SIZE dn1, dn2 WITH SLINK;
--
-- ==== 5. antdb-mgr-reference.md §3 ====
-- 3.1 hosts, deployment, agents
ADD HOST IF NOT EXISTS h1 (user=antdb, port=22, protocol=ssh, address='10.0.0.1', adbhome='/opt/antdb', agentport=5430);
ADD HOST h2 (address '10.0.0.2', user antdb);
ALTER HOST h1 (address='10.0.0.9', agentport=8432);
DROP HOST h1;
DROP HOST IF EXISTS h1, h2, h3;
LIST HOST;
LIST HOST (name, address);
LIST HOST (name, address) h1, h2;
LIST HOST h1;
DEPLOY ALL;
DEPLOY ALL PASSWORD 'secret';
DEPLOY h1, h2 PASSWORD secret;
START AGENT ALL;
START AGENT h1, h2 PASSWORD '123456';
STOP AGENT ALL;
STOP AGENT h1;
MONITOR AGENT;
MONITOR AGENT ALL;
MONITOR AGENT h1, h2;
-- adbmgr's own: certificates of the manager and the agents
ROTATE CERTIFICATES;
ROTATE CERTIFICATES CA;
-- 3.2 node definition
ADD GTMCOORD MASTER gc1 (host=h1, port=6768, path='/data/gc1');
ADD GTMCOORD SLAVE gc2 FOR gc1 (host=h2, port=6768, path='/data/gc2', sync_state='sync');
ALTER DATANODE MASTER dn1 (host=h2, port=14333, path='/data/dn1', zone=zone2);
DROP GTMCOORD SLAVE gc2;
DROP ZONE zone2;
LIST NODE (name, port) dn1;
LIST NODE DATANODE MASTER dn1;
-- 3.3 parameters
SET GTMCOORD MASTER gc1 (max_connections = 300) FORCE;
SET GTMCOORD SLAVE ALL (hot_standby_feedback = on);
SET GTMCOORD ALL (log_min_duration_statement = '1s');
SET COORDINATOR MASTER cn1 (work_mem = '64MB', statement_timeout = 0);
SET COORDINATOR ALL (enable_readsql_on_slave = on);
SET DATANODE SLAVE ALL (max_standby_streaming_delay = -1);
SET DATANODE ALL (shared_buffers = '1GB') FORCE;
SET DATANODE MASTER dn1 (auto_explain.log_min_duration = 250);
RESET GTMCOORD ALL (max_connections);
RESET DATANODE MASTER dn1 (work_mem, statement_timeout) FORCE;
RESET COORDINATOR SLAVE ALL (work_mem = '4MB');
SET CLUSTER INIT;
LIST PARAM;
LIST PARAM DATANODE MASTER dn1;
LIST PARAM DATANODE MASTER dn1 wal;
LIST PARAM COORDINATOR ALL;
LIST PARAM GTMCOORD SLAVE ALL 'log%';
SHOW PARAM dn1 wal_level;
SHOW PARAM cn1 'shared';
FLUSH PARAM;
SET mgr_zone = 'z2';
SET mgr_zone TO z2;
-- 3.4 HBA
ADD HBA DATANODE ALL ("host all all 10.0.0.0 8 md5");
ADD HBA COORDINATOR cn1 ("host all all 10.0.0.0 8 md5", "host replication all 10.0.0.0 8 trust");
DROP HBA ALL;
DROP HBA cn1 ("host all all 10.0.0.0 8 md5");
LIST HBA;
LIST HBA cn1, dn1;
SHOW HBA ALL;
SHOW HBA cn1, dn1;
-- 3.5 cluster life cycle
INIT ALL;
INIT ALL DATA_CHECKSUMS;
INIT ALL (walsegsize = 64);
INIT ALL DATA_CHECKSUMS (walsegsize = 64);
START ALL;
STOP ALL;
STOP ALL MODE FAST;
STOP ALL MODE i;
STOP ALL MODE smart;
START GTMCOORD ALL;
START GTMCOORD MASTER gc1;
STOP GTMCOORD ALL MODE f;
STOP GTMCOORD SLAVE gc2 MODE immediate;
START COORDINATOR ALL;
START COORDINATOR MASTER ALL;
START COORDINATOR MASTER cn1, cn2;
STOP COORDINATOR SLAVE ALL MODE s;
START DATANODE ALL;
START DATANODE SLAVE dn1s, dn2s;
STOP DATANODE MASTER dn1 MODE fast;
START ZONE zone2;
STOP ZONE zone2 MODE fast;
CLEAN ALL;
CLEAN ZONE zone2;
CLEAN GTMCOORD SLAVE gc2;
CLEAN MONITOR 30;
MONITOR;
MONITOR ALL;
MONITOR GTMCOORD;
MONITOR DATANODE ALL;
MONITOR COORDINATOR MASTER;
MONITOR DATANODE SLAVE ALL;
MONITOR DATANODE MASTER dn1, dn2;
MONITOR ZONE zone2;
MONITOR HA;
MONITOR HA (nodename, sync_state, replay_lsn);
MONITOR HA (nodename, state) dn1s, dn2s;
MONITOR HA dn1s;
MONITOR HA ZONE zone2;
SHOW BOOTTIME;
SHOW BOOTTIME ALL;
SHOW BOOTTIME DATANODE;
SHOW BOOTTIME COORDINATOR ALL;
SHOW BOOTTIME DATANODE MASTER ALL;
SHOW BOOTTIME DATANODE SLAVE dn1s, dn2s;
FLUSH HOST;
FLUSH READONLY SLAVE;
CHECKOUT DATANODE SLAVE STATUS;
-- 3.6 growing / shrinking
APPEND GTMCOORD SLAVE gc3;
APPEND DATANODE MASTER dn3 DATA_CHECKSUMS (walsegsize = 64);
APPEND DATANODE SLAVE dn3s;
APPEND COORDINATOR MASTER cn3 (walsegsize = 16);
APPEND COORDINATOR SLAVE cn3s;
APPEND COORDINATOR cd2 FOR cd1;
APPEND ACTIVATE COORDINATOR cd2;
REMOVE DATANODE SLAVE dn3s, dn4s;
EXPAND DATANODE MASTER dn1 TO dn3;
EXPAND ACTIVATE;
EXPAND CLEAN;
EXPAND RECOVER BASEBACKUP SUCCESS dn1 TO dn3;
EXPAND RECOVER BASEBACKUP FAIL dn1 TO dn3;
EXPAND ACTIVATE RECOVER DOPROMOTE SUCCESS dn3;
EXPAND DOCHECK STATUS;
EXPAND SHOW STATUS;
EXPAND SLEEP 5;
-- 3.7 high availability
FAILOVER DATANODE dn1;
FAILOVER DATANODE dn1 FORCE;
FAILOVER DATANODE dn1 TO dn1s;
FAILOVER DATANODE dn1 TO dn1s FORCE;
FAILOVER GTMCOORD gc1 TO gc2 FORCE;
SWITCHOVER DATANODE SLAVE dn1s;
SWITCHOVER DATANODE SLAVE dn1s FORCE;
SWITCHOVER DATANODE SLAVE dn1s 20;
SWITCHOVER GTMCOORD SLAVE gc2 FORCE 30;
SWITCHOVER DATANODE MASTER dn1;
REWIND GTMCOORD SLAVE gc1;
REWIND COORDINATOR SLAVE cn1s;
REWIND DATANODE SLAVE dn1;
REWIND DATANODE SLAVE dn1 BASEBACKUP;
PROMOTE DATANODE SLAVE dn1s;
PROMOTE GTMCOORD MASTER gc1;
CONFIG DATANODE SLAVE dn1s;
ADBMGR PROMOTE DATANODE SLAVE dn1s;
ADBMGR PROMOTE GTMCOORD SLAVE gc2;
ZONE FAILOVER zone2;
ZONE FAILOVER zone2 FORCE;
ZONE SWITCHOVER zone2;
ZONE SWITCHOVER zone2 FORCE 20;
ZONE INIT zone2;
-- 3.8 doctor
START DOCTOR;
STOP DOCTOR;
SET DOCTOR (enable = 1, nodedeadline = 30);
SET DOCTOR NODE dn1 OFF;
SET DOCTOR HOST h1 ON;
LIST DOCTOR;
-- 3.9 jobs
ADD JOB IF NOT EXISTS j1 (nexttime = '2021-06-01 10:00:00', interval = 60, status = true, command = 'select monitor_get_hostinfo()', desc = 'host metrics');
ALTER JOB ALL (status = false);
ALTER JOB j1 (interval = 120);
DROP JOB IF EXISTS j1, j2;
LIST JOB;
LIST JOB j1;
ADD ITEM IF NOT EXISTS i1 (path = '/opt/check.sh', desc = 'disk');
ALTER ITEM i1 (desc = 'disk usage');
DROP ITEM i1;
LIST ITEM;
-- 3.10 monitoring-UI commands
GET_HOST_LIST_ALL;
GET_HOST_LIST_SPEC('h1', 'h2');
GET_HOST_HISTORY_USAGE('h1', 1);
GET_HOST_HISTORY_USAGE_BY_TIME_PERIOD('h1', '2021-06-01', '2021-06-02');
GET_ALL_NODENAME_IN_SPEC_HOST('h1');
GET_AGTM_NODE_TOPOLOGY;
GET_COORDINATOR_NODE_TOPOLOGY;
GET_DATANODE_NODE_TOPOLOGY;
GET_CLUSTER_HEADPAGE_LINE;
GET_CLUSTER_TPS_QPS;
GET_CLUSTER_CONNECT_DBSIZE_INDEXSIZE;
GET_CLUSTER_SUMMARY;
GET_DATABASE_TPS_QPS;
GET_DATABASE_TPS_QPS_INTERVAL_TIME('postgres', '2021-06-01', 10);
MONITOR_DATABASETPS_FUNC_BY_TIME_PERIOD('postgres', '2021-06-01', '2021-06-02');
GET_DATABASE_SUMMARY('postgres');
GET_SLOWLOG('postgres', '2021-06-01', '2021-06-02', 10, 0);
GET_SLOWLOG_COUNT('postgres', '2021-06-01', '2021-06-02');
CHECK_USER('admin', 'secret');
GET_USER_INFO 1;
UPDATE_USER 1 (username = 'admin');
CHECK_PASSWORD(1, 'secret');
UPDATE_PASSWORD 1 ('secret');
UPDATE_THRESHOLD_VALUE(1, 80, 90, 95);
GET_THRESHOLD_TYPE(1);
GET_THRESHOLD_ALL_TYPE;
GET_DB_THRESHOLD_ALL_TYPE;
GET_ALARM_INFO_ASC('', '', '', 1, 10);
GET_ALARM_INFO_DESC('', '', '', 1, 10);
GET_ALARM_INFO_COUNT('', '', '');
RESOLVE_ALARM(1, '2021-06-01', 'fixed');
-- 3.11 misc
ADD EXTENSION pg_stat_statements;
DROP EXTENSION pg_stat_statements;
CREATE USER ops PASSWORD 'secret';
ALTER USER ops PASSWORD 'secret2';
DROP USER ops, ops2;
-- 3.12 privileges
GRANT add, list, monitor TO ops;
GRANT ALL TO ALL;
REVOKE set, reset FROM ops;
LIST ACL;
LIST ACL ALL;
--
-- ==== 6. session statements, SQL and driver noise ====
HELP;
help LIST node;
SET search_path TO public, 'adb';
SET SESSION statement_timeout = 0;
SET LOCAL work_mem = '4MB';
SET extra_float_digits = 3;
SET application_name = 'PostgreSQL JDBC Driver';
SET TIME ZONE 'UTC';
SET TIME ZONE LOCAL;
SET client_encoding TO DEFAULT;
SET NAMES 'UTF8';
RESET mgr_zone;
RESET ALL;
SHOW mgr_zone;
SHOW ALL;
SHOW TIME ZONE;
SHOW TRANSACTION ISOLATION LEVEL;
BEGIN;
BEGIN ISOLATION LEVEL SERIALIZABLE, READ ONLY;
START TRANSACTION;
COMMIT;
END;
ROLLBACK;
ABORT;
SAVEPOINT s1;
ROLLBACK TO SAVEPOINT s1;
RELEASE SAVEPOINT s1;
SELECT * FROM node WHERE name = 'dn1;x' /* ; */ -- ;
select name, "Host" from host order by 1;
WITH t AS (SELECT 1; ) SELECT * FROM t;
VALUES (1), (2);
TABLE node;
(SELECT 1) UNION (SELECT 2);
SELECT $$a;b$$, $tag$ ; $$ $tag$, E'it\'s;', 'it''s;';
INSERT INTO node VALUES (1);
UPDATE node SET port = 1;
DELETE FROM host;
TRUNCATE node;
COPY node FROM STDIN;
CREATE TABLE t (a int);
CREATE OR REPLACE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;
CREATE UNIQUE INDEX i ON t (a);
CREATE MATERIALIZED VIEW v AS SELECT 1;
CREATE USER MAPPING FOR ops SERVER s;
CREATE EXTENSION pg_stat_statements;
DROP TABLE t;
ALTER TABLE t ADD COLUMN b int;
ALTER SYSTEM SET work_mem = '1MB';
VACUUM;
ANALYZE node;
CLUSTER node;
REINDEX TABLE node;
DO $$ BEGIN END $$;
CALL p();
PREPARE q AS SELECT 1;
EXECUTE q;
LOCK TABLE node;
COMMENT ON TABLE node IS 'x';
MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE;
-- several statements on one line, with an empty one
LIST HOST; LIST NODE;; MONITOR ALL
--
-- ==== 7. typos and other syntax errors (each must point at the offending word) ====
SET DATANDOE ALL (wal_keep_size = 1);
SET DATANODE MASTR dn1 (x = 1);
SET DATANODE MASTER ALL ();
SET DATANODE MASTER ALL (wal_log_hints);
SET DATANODE MASTER ALL (shared_buffers = 1GB);
SET DATANODE MASTER ALL (archive_command = /bin/true);
SET DATANODE ALL (x = 1) FORSE;
RESET DATANDOE ALL (x);
SHOW PARMA dn1 wal;
ADD DATANDOE MASTER dn1 (HOST=h1);
ADD DATANODE MASTR dn1 (HOST=h1);
ADD DATANODE MASTER dn1;
ADD DATANODE MASTER dn1 ();
ADD DATANODE MASTER dn1 (HOST=h1 PORT=5432);
ADD DATANODE MASTER dn1 (HOST=h1, PORT=);
ADD DATANODE SLAVE dn1s (HOST=h1);
ADD DATANODE SLAVE dn1s FRO dn1 (HOST=h1);
ADD HOST h1 (address=‘10.0.0.1);
ALTER DATANDOE MASTER dn1 (PORT=1);
ALTER DATANODE dn1 (PORT=1);
DROP DATANDOE SLAVE dn1s;
DROP DATANODE SLAVE dn1s dn2s;
DROP DATANODE SLAVE;
LIST NODE DATANDOE MASTER;
LIST NODE DATANODE MASTER dn1, dn2;
LIST NODES;
LIST HOST h1 h2;
START DATANDOE ALL;
START DATANODE MASTR ALL;
START DATANODE;
STOP ALL MODE faster;
STOP ALL MOD fast;
MONITOR DATANDOE;
CLEAN MONITOR 1.5;
CLEAN MONITOR ten;
CLEAN DATANODE dn1;
INIT;
INIT ALL DATA_CHECKSUM;
APPEND GTMCOORD MASTER gc1;
APPEND COORDINATOR mastr cn1;
APPEND COORDINATOR cn5;
FAILOVER COORDINATOR cn1;
FAILOVER DATANODE MASTER dn1;
FAILOVER DATANODE dn1 froce;
SWITCHOVER DATANODE SLAVE dn1s FORCE 0;
SWITCHOVER DATANODE SLAVE dn1s FORCE 2.5;
SWITCHOVER DATANODE SLAVE dn1s 99999999999;
REWIND DATANODE MASTER dn1;
REWIND DATANODE SLAVE dn1 BASE BACKUP;
EXPAND DATANODE MASTER dn1 dn3;
EXPAND SLEEP -1;
ZONE PROMOTE zone2;
SET DOCTOR NODE dn1 maybe;
FLUSH READONLY;
CHECKOUT DATANODE STATUS;
CREATE NODE n1;
EXPLAIN SELECT 1;
"LIST" NODE;
LIST NODE 'dn1';
list node "";
SELECT 'unterminated;
SELECT "unterminated;
SELECT 1 /* unterminated;
SELECT $x$ unterminated;
LIST NODE dn1 ~
ROTATE CERTIFICATE;
ROTATE CERTIFICATES ALL;
