package parser

import (
	"fmt"
	"strings"
)

// helpEntry is the server-side HELP text of one command, in the shape of
// psql's \h. The syntax mirrors the productions in stmt_*.go; keep them in
// step (TestHelpSyntaxParses checks the examples parse).
type helpEntry struct {
	cmd     string // command words, upper case: the lookup key
	desc    string
	syntax  string
	example string // one statement that must parse; empty for none
}

const nodeOptions = `
where option must be the following:

    HOST = host_name,
    PORT = port_number,
    PATH = pg_data,
    SYNC_STATE = sync_mode,
    ZONE = zone_name`

var helpEntries = []helpEntry{
	// ---------------------------------------------------------- hosts, agents
	{"ADD HOST", "add a host to the host table",
		`ADD HOST [ IF NOT EXISTS ] host_name ( option [, ...] )

where option can be one of:

    USER = user_name,
    PORT = ssh_port,
    PROTOCOL = { 'ssh' | 'local' },
    ADDRESS = 'ip_address',
    ADBHOME = 'install_directory',
    AGENTPORT = agent_port`,
		`ADD HOST h1 (address='10.0.0.1', user=antdb, agentport=5430, adbhome='/opt/antdb');`},
	{"ALTER HOST", "change a host in the host table",
		`ALTER HOST host_name ( option [, ...] )

where option can be one of:

    USER, PORT, PROTOCOL, ADDRESS, ADBHOME, AGENTPORT`,
		`ALTER HOST h1 (address='10.0.0.2');`},
	{"DROP HOST", "remove hosts from the host table",
		`DROP HOST [ IF EXISTS ] host_name [, ...]`,
		`DROP HOST IF EXISTS h1, h2;`},
	{"LIST HOST", "show the host table",
		`LIST HOST [ ( column [, ...] ) ] [ host_name [, ...] ]

where column can be one of:

    NAME, USER, PORT, PROTOCOL, AGENTPORT, ADDRESS, ADBHOME`,
		`LIST HOST (name, address) h1;`},
	{"DEPLOY", "copy the agent to hosts",
		`DEPLOY { ALL | host_name [, ...] } [ PASSWORD 'password' ]`,
		`DEPLOY ALL PASSWORD 'secret';`},
	{"START AGENT", "start the agent on hosts",
		`START AGENT { ALL | host_name [, ...] } [ PASSWORD 'password' ]`,
		`START AGENT ALL;`},
	{"STOP AGENT", "stop the agent on hosts",
		`STOP AGENT { ALL | host_name [, ...] }`,
		`STOP AGENT h1, h2;`},
	{"MONITOR AGENT", "show whether the agents are running",
		`MONITOR AGENT [ ALL | host_name [, ...] ]`,
		`MONITOR AGENT;`},
	{"ROTATE CERTIFICATES", "issue new certificates to the manager and the running agents",
		`ROTATE CERTIFICATES [ CA ]

The manager's client certificate and each running agent's server
certificate are reissued by the manager's CA; agents pick theirs up on the
next connection, without a restart. MONITOR AGENT shows when each agent's
certificate expires. With CA (a new certificate authority) it is not
built yet: its hint gives the offline procedure.`,
		`ROTATE CERTIFICATES;`},

	// ---------------------------------------------------------- nodes
	{"ADD GTMCOORD", "add a gtmcoord to the node table",
		`ADD GTMCOORD MASTER node_name ( option [, ...] )
ADD GTMCOORD SLAVE node_name FOR master_name ( option [, ...] )
` + nodeOptions,
		`ADD GTMCOORD MASTER gc (HOST=h1, PORT=6768, PATH='/data/gc');`},
	{"ADD COORDINATOR", "add a coordinator to the node table",
		`ADD COORDINATOR MASTER node_name ( option [, ...] )
ADD COORDINATOR SLAVE node_name FOR master_name ( option [, ...] )
` + nodeOptions + `,
    READONLY = { true | false }`,
		`ADD COORDINATOR MASTER cn1 (HOST=h1, PORT=5432, PATH='/data/cn1');`},
	{"ADD DATANODE", "add a datanode to the node table",
		`ADD DATANODE MASTER node_name ( option [, ...] )
ADD DATANODE SLAVE node_name FOR master_name ( option [, ...] )
` + nodeOptions + `

A slave may follow another slave (cascading): master_name may name a slave.`,
		`ADD DATANODE SLAVE dn1s FOR dn1 (HOST=h2, PORT=5432, PATH='/data/dn1s');`},
	{"ALTER GTMCOORD", "change a gtmcoord in the node table",
		`ALTER GTMCOORD { MASTER | SLAVE } node_name ( option [, ...] )
ALTER GTMCOORD SLAVE node_name ( PARENT = node_name [, SYNC_STATE = sync_mode ] )
` + nodeOptions + parentHelp,
		`ALTER GTMCOORD SLAVE gcs (SYNC_STATE='async');`},
	{"ALTER COORDINATOR", "change a coordinator in the node table",
		`ALTER COORDINATOR { MASTER | SLAVE } node_name ( option [, ...] )
` + nodeOptions,
		`ALTER COORDINATOR MASTER cn1 (PORT=5532);`},
	{"ALTER DATANODE", "change a datanode in the node table",
		`ALTER DATANODE { MASTER | SLAVE } node_name ( option [, ...] )
ALTER DATANODE SLAVE node_name ( PARENT = node_name [, SYNC_STATE = sync_mode ] )
` + nodeOptions + `

Once the cluster is initialized only SYNC_STATE (and PORT) can change.` + parentHelp,
		`ALTER DATANODE SLAVE dn1s (SYNC_STATE='sync');`},
	{"DROP GTMCOORD", "remove a gtmcoord from the node table",
		`DROP GTMCOORD { MASTER | SLAVE } node_name [, ...]`,
		`DROP GTMCOORD SLAVE gcs;`},
	{"DROP COORDINATOR", "remove coordinators from the node table",
		`DROP COORDINATOR { MASTER | SLAVE } node_name [, ...]`,
		`DROP COORDINATOR MASTER cn1, cn2;`},
	{"DROP DATANODE", "remove datanodes from the node table",
		`DROP DATANODE { MASTER | SLAVE } node_name [, ...]

Slaves must be dropped before their master.`,
		`DROP DATANODE SLAVE dn1s;`},
	{"DROP ZONE", "remove every node of a zone from the node table",
		`DROP ZONE zone_name`,
		`DROP ZONE zone2;`},
	{"LIST NODE", "show the node table",
		`LIST NODE [ ( column [, ...] ) ] [ node_name [, ...] ]
LIST NODE { GTMCOORD | COORDINATOR | DATANODE } [ MASTER | SLAVE ]
LIST NODE DATANODE MASTER node_name
LIST NODE HOST host_name [, ...]
LIST NODE ZONE zone_name
LIST NODE [ PRETTY ] SIZE { ALL | node_name [, ...] } [ WITH SLINK ]

where column can be one of:

    NAME, HOST, TYPE, MASTERNAME, PORT, SYNC_STATE, PATH,
    INITIALIZED, INCLUSTER, ZONE`,
		`LIST NODE DATANODE MASTER dn1;`},

	// ---------------------------------------------------------- parameters
	{"SET GTMCOORD", "set postgresql.conf parameters of gtmcoord nodes",
		`SET GTMCOORD ALL ( parameter = value [, ...] ) [ FORCE ]
SET GTMCOORD { MASTER | SLAVE } { ALL | node_name } ( parameter = value [, ...] ) [ FORCE ]`,
		`SET GTMCOORD ALL (max_connections = 200);`},
	{"SET COORDINATOR", "set postgresql.conf parameters of coordinators",
		`SET COORDINATOR ALL ( parameter = value [, ...] ) [ FORCE ]
SET COORDINATOR { MASTER | SLAVE } { ALL | node_name } ( parameter = value [, ...] ) [ FORCE ]`,
		`SET COORDINATOR MASTER cn1 (work_mem = '8MB');`},
	{"SET DATANODE", "set postgresql.conf parameters of datanodes",
		`SET DATANODE ALL ( parameter = value [, ...] ) [ FORCE ]
SET DATANODE { MASTER | SLAVE } { ALL | node_name } ( parameter = value [, ...] ) [ FORCE ]

Without FORCE the parameter and its value are checked; FORCE writes them as given.`,
		`SET DATANODE MASTER ALL (wal_keep_size = 102400);`},
	{"RESET GTMCOORD", "reset postgresql.conf parameters of gtmcoord nodes to their defaults",
		`RESET GTMCOORD ALL ( parameter [, ...] ) [ FORCE ]
RESET GTMCOORD { MASTER | SLAVE } { ALL | node_name } ( parameter [, ...] ) [ FORCE ]`,
		`RESET GTMCOORD ALL (max_connections);`},
	{"RESET COORDINATOR", "reset postgresql.conf parameters of coordinators to their defaults",
		`RESET COORDINATOR ALL ( parameter [, ...] ) [ FORCE ]
RESET COORDINATOR { MASTER | SLAVE } { ALL | node_name } ( parameter [, ...] ) [ FORCE ]`,
		`RESET COORDINATOR MASTER cn1 (work_mem);`},
	{"RESET DATANODE", "reset postgresql.conf parameters of datanodes to their defaults",
		`RESET DATANODE ALL ( parameter [, ...] ) [ FORCE ]
RESET DATANODE { MASTER | SLAVE } { ALL | node_name } ( parameter [, ...] ) [ FORCE ]`,
		`RESET DATANODE SLAVE dn1s (wal_keep_size) FORCE;`},
	{"SET CLUSTER INIT", "mark every node as initialized and in the cluster (repair tool)",
		`SET CLUSTER INIT`,
		`SET CLUSTER INIT;`},
	{"LIST PARAM", "show the parameters set with SET GTMCOORD/COORDINATOR/DATANODE",
		`LIST PARAM
LIST PARAM { GTMCOORD | COORDINATOR | DATANODE } [ MASTER | SLAVE ] ALL [ pattern ]
LIST PARAM { GTMCOORD | COORDINATOR | DATANODE } { MASTER | SLAVE } node_name [ pattern ]`,
		`LIST PARAM DATANODE MASTER dn1 wal;`},
	{"SHOW PARAM", "show the live values of a node's parameters",
		`SHOW PARAM node_name [ pattern ]`,
		`SHOW PARAM dn1 wal_level;`},
	{"FLUSH PARAM", "reload the list of valid parameters from the running nodes",
		`FLUSH PARAM`,
		`FLUSH PARAM;`},
	{"SET", "change a session parameter of this manager connection",
		`SET [ SESSION | LOCAL ] parameter { = | TO } { value [, ...] | DEFAULT }
SET [ SESSION | LOCAL ] TIME ZONE { value | LOCAL | DEFAULT }

See also SET GTMCOORD, SET COORDINATOR, SET DATANODE, SET DOCTOR, SET CLUSTER INIT.`,
		`SET mgr_zone = 'zone2';`},
	{"RESET", "restore a session parameter to its default",
		`RESET parameter
RESET ALL

See also RESET GTMCOORD, RESET COORDINATOR, RESET DATANODE.`,
		`RESET ALL;`},
	{"SHOW", "show a session parameter",
		`SHOW parameter
SHOW ALL

See also SHOW PARAM, SHOW HBA, SHOW BOOTTIME.`,
		`SHOW mgr_zone;`},

	// ---------------------------------------------------------- hba
	{"ADD HBA", "add pg_hba.conf lines to nodes",
		`ADD HBA { GTMCOORD | COORDINATOR | DATANODE } { ALL | node_name } ( "hba_line" [, ...] )

where hba_line is a pg_hba.conf line, e.g. "host all all 10.0.0.0 8 md5"`,
		`ADD HBA DATANODE ALL ("host all all 10.0.0.0 8 md5");`},
	{"DROP HBA", "remove pg_hba.conf lines added with ADD HBA",
		`DROP HBA { ALL | node_name } [ ( "hba_line" [, ...] ) ]`,
		`DROP HBA dn1 ("host all all 10.0.0.0 8 md5");`},
	{"LIST HBA", "show the pg_hba.conf lines added with ADD HBA",
		`LIST HBA [ node_name [, ...] ]`,
		`LIST HBA;`},
	{"SHOW HBA", "show the live pg_hba.conf of nodes",
		`SHOW HBA { ALL | node_name [, ...] }`,
		`SHOW HBA dn1;`},

	// ---------------------------------------------------------- life cycle
	{"INIT ALL", "initialize and start every node of the cluster",
		`INIT ALL [ DATA_CHECKSUMS ] [ ( WALSEGSIZE = size_in_MB ) ]`,
		`INIT ALL DATA_CHECKSUMS (walsegsize = 64);`},
	{"START", "start nodes",
		`START ALL
START { GTMCOORD | COORDINATOR | DATANODE } ALL
START { GTMCOORD | COORDINATOR | DATANODE } { MASTER | SLAVE } { ALL | node_name [, ...] }
START ZONE zone_name

See also START AGENT, START DOCTOR.`,
		`START DATANODE MASTER dn1, dn2;`},
	{"STOP", "stop nodes",
		`STOP ALL [ MODE mode ]
STOP { GTMCOORD | COORDINATOR | DATANODE } ALL [ MODE mode ]
STOP { GTMCOORD | COORDINATOR | DATANODE } { MASTER | SLAVE } { ALL | node_name [, ...] } [ MODE mode ]
STOP ZONE zone_name [ MODE mode ]

where mode is one of:

    SMART (S), FAST (F), IMMEDIATE (I); the default is SMART

See also STOP AGENT, STOP DOCTOR.`,
		`STOP ALL MODE FAST;`},
	{"CLEAN", "empty the data directories of stopped nodes",
		`CLEAN ALL
CLEAN { GTMCOORD | COORDINATOR | DATANODE } { MASTER | SLAVE } node_name [, ...]
CLEAN ZONE zone_name
CLEAN MONITOR number_of_days`,
		`CLEAN COORDINATOR MASTER cn1;`},
	{"MONITOR", "show whether nodes are running",
		`MONITOR [ ALL ]
MONITOR { GTMCOORD | COORDINATOR | DATANODE } [ ALL ]
MONITOR { GTMCOORD | COORDINATOR | DATANODE } { MASTER | SLAVE } [ ALL | node_name [, ...] ]
MONITOR ZONE zone_name

See also MONITOR HA, MONITOR AGENT.`,
		`MONITOR DATANODE SLAVE dn1s;`},
	{"MONITOR HA", "show the replication state of every slave",
		`MONITOR HA [ ( column [, ...] ) ] [ node_name [, ...] ]
MONITOR HA ZONE zone_name

where column can be one of:

    TYPE, NODENAME, APPLICATION_NAME, CLIENT_ADDR, STATE, SENT_LSN, REPLAY_LSN,
    SYNC_STATE, MASTER_LSN, SENT_DELAY, REPLAY_DELAY, ZONE`,
		`MONITOR HA (nodename, sync_state) dn1s;`},
	{"SHOW BOOTTIME", "show when nodes were started",
		`SHOW BOOTTIME [ ALL ]
SHOW BOOTTIME { GTMCOORD | COORDINATOR | DATANODE } [ ALL ]
SHOW BOOTTIME { GTMCOORD | COORDINATOR | DATANODE } { MASTER | SLAVE } { ALL | node_name [, ...] }`,
		`SHOW BOOTTIME DATANODE MASTER ALL;`},
	{"FLUSH HOST", "rewrite pg_hba.conf and connection data of every node after host address changes",
		`FLUSH HOST`,
		`FLUSH HOST;`},
	{"FLUSH READONLY SLAVE", "recompute the read-only coordinators' datanode slave entries",
		`FLUSH READONLY SLAVE`,
		`FLUSH READONLY SLAVE;`},
	{"CHECKOUT DATANODE SLAVE STATUS", "check the recovery state of every datanode slave",
		`CHECKOUT DATANODE SLAVE STATUS`,
		`CHECKOUT DATANODE SLAVE STATUS;`},

	// ---------------------------------------------------------- growing, shrinking
	{"APPEND", "add a node to a running cluster",
		`APPEND GTMCOORD SLAVE node_name
APPEND DATANODE MASTER node_name [ DATA_CHECKSUMS ] [ ( WALSEGSIZE = size_in_MB ) ]
APPEND DATANODE SLAVE node_name
APPEND COORDINATOR MASTER node_name [ DATA_CHECKSUMS ] [ ( WALSEGSIZE = size_in_MB ) ]
APPEND COORDINATOR SLAVE node_name
APPEND COORDINATOR dest_coordinator_name FOR source_coordinator_name
APPEND ACTIVATE COORDINATOR node_name

The node must first be added with ADD, its host deployed and its agent running.`,
		`APPEND COORDINATOR cn5 FOR cn1;`},
	{"REMOVE", "take nodes out of the cluster, keeping their rows in the node table",
		`REMOVE { GTMCOORD | COORDINATOR | DATANODE } { MASTER | SLAVE } node_name [, ...]

Only coordinators, datanode slaves and gtmcoord slaves can be removed, and
only while they are not running.`,
		`REMOVE DATANODE SLAVE dn1s;`},
	{"EXPAND", "move data to new datanode masters",
		`EXPAND DATANODE MASTER source_name TO target_name
EXPAND ACTIVATE
EXPAND CLEAN
EXPAND RECOVER BASEBACKUP { SUCCESS | FAIL } source_name TO target_name
EXPAND ACTIVATE RECOVER DOPROMOTE SUCCESS target_name
EXPAND DOCHECK STATUS
EXPAND SHOW STATUS
EXPAND SLEEP seconds

Several EXPAND DATANODE MASTER may wait for one EXPAND ACTIVATE. An
expansion cut short is taken up from what the nodes show: RECOVER
BASEBACKUP FAIL rolls the copy back (the target is stopped and its data
directory emptied) so that EXPAND can run again; RECOVER BASEBACKUP SUCCESS
redoes configuration and start after a base backup; ACTIVATE RECOVER
DOPROMOTE SUCCESS finishes an activation whose target was promoted.
RECOVER BASEBACKUP FAIL also drops a replication slot the target left on
the source when no copy is behind it. SHOW STATUS and DOCHECK STATUS say
what the nodes show and which of these commands takes each copy up.`,
		`EXPAND DATANODE MASTER dn1 TO dn3;`},

	// ---------------------------------------------------------- high availability
	{"FAILOVER", "promote a slave in place of a failed master",
		`FAILOVER { GTMCOORD | COORDINATOR | DATANODE } master_name [ TO slave_name ] [ FORCE ]

Without FORCE the promoted slave must be a running synchronous slave with the
latest WAL, so that no committed transaction is lost. FAILOVER COORDINATOR
promotes a coordinator slave in place of its coordinator master.`,
		`FAILOVER DATANODE dn1 FORCE;`},
	{"SWITCHOVER", "swap a slave with its running master",
		`SWITCHOVER { GTMCOORD | DATANODE } SLAVE slave_name [ FORCE ] [ max_tries ]

FORCE terminates active client connections instead of waiting for them.`,
		`SWITCHOVER DATANODE SLAVE dn1s FORCE 20;`},
	{"REWIND", "turn a former master into a slave of the new master with pg_rewind",
		`REWIND { GTMCOORD | COORDINATOR | DATANODE } SLAVE node_name [ BASEBACKUP ]

With BASEBACKUP the node's data directory is emptied and copied again from its
master with pg_basebackup: the way out when pg_rewind cannot work (REWIND then
shows pg_rewind's last lines and suggests it).`,
		`REWIND DATANODE SLAVE dn1;`},
	{"PROMOTE", "promote a node with pg_ctl promote (manual failover step)",
		`PROMOTE { GTMCOORD | COORDINATOR | DATANODE } { MASTER | SLAVE } node_name`,
		`PROMOTE DATANODE SLAVE dn1s;`},
	{"ADBMGR PROMOTE", "make a slave the master in the node table only (manual failover step)",
		`ADBMGR PROMOTE { GTMCOORD | COORDINATOR | DATANODE } SLAVE node_name`,
		`ADBMGR PROMOTE DATANODE SLAVE dn1s;`},
	{"CONFIG DATANODE SLAVE", "point the coordinators at a promoted datanode slave (manual failover step)",
		`CONFIG DATANODE SLAVE node_name`,
		`CONFIG DATANODE SLAVE dn1s;`},
	{"ZONE FAILOVER", "make the current zone's slaves the masters after the other zone failed",
		`ZONE FAILOVER zone_name [ FORCE ]`,
		`ZONE FAILOVER zone2 FORCE;`},
	{"ZONE SWITCHOVER", "move every master to the given zone",
		`ZONE SWITCHOVER zone_name [ FORCE ] [ max_tries ]`,
		`ZONE SWITCHOVER zone2;`},
	{"ZONE INIT", "initialize and start the nodes of a zone",
		`ZONE INIT zone_name`,
		`ZONE INIT zone2;`},

	// ---------------------------------------------------------- doctor
	{"START DOCTOR", "start the self-healing doctor",
		`START DOCTOR`,
		`START DOCTOR;`},
	{"STOP DOCTOR", "stop the self-healing doctor",
		`STOP DOCTOR`,
		`STOP DOCTOR;`},
	{"SET DOCTOR", "configure the doctor, or let it heal a node or host or not",
		`SET DOCTOR ( parameter = value [, ...] )
SET DOCTOR NODE node_name { ON | OFF }
SET DOCTOR HOST host_name { ON | OFF }`,
		`SET DOCTOR NODE dn1 OFF;`},
	{"LIST DOCTOR", "show the doctor's parameters and which nodes and hosts it heals",
		`LIST DOCTOR`,
		`LIST DOCTOR;`},

	// ---------------------------------------------------------- audit and history
	{"LIST JOURNAL", "show who changed what: every changing statement and the doctor's actions",
		`LIST JOURNAL [ number_of_entries ]

Columns: time, user, address, statement (passwords redacted), outcome
("ok" or "SQLSTATE: message"), duration_ms. SELECT * FROM audit has the
statements alone, SELECT * FROM journal the multi-step operations.`,
		`LIST JOURNAL 20;`},
	{"LISTEN", "receive the doctor's actions as asynchronous notifications",
		`LISTEN channel

Each action of the doctor is sent to the sessions listening on channel
"doctor" as a NotificationResponse whose payload is JSON (journal id,
command, status, step, detail); psql prints it after the next command.`,
		`LISTEN doctor;`},
	{"UNLISTEN", "stop receiving notifications",
		`UNLISTEN { channel | * }`,
		`UNLISTEN *;`},
	{"SET MONITOR", "configure the monitor history: sampling interval and retention",
		`SET MONITOR ( parameter = value [, ...] )

Parameters: interval (seconds between samples, 0 = off; default 60),
retention (days the samples are kept; default 7). The samples are in the
monitor_history view; CLEAN MONITOR n deletes those older than n days.`,
		`SET MONITOR (interval = 30, retention = 14);`},

	// ---------------------------------------------------------- jobs
	{"ADD JOB", "add a monitoring job",
		`ADD JOB [ IF NOT EXISTS ] job_name ( NEXTTIME = 'time', INTERVAL = seconds, STATUS = { true | false }, COMMAND = 'sql', DESC = 'text' )`,
		`ADD JOB j1 (interval = 60, command = 'select monitor_get_hostinfo()');`},
	{"ALTER JOB", "change monitoring jobs",
		`ALTER JOB { job_name | ALL } ( option [, ...] )`,
		`ALTER JOB ALL (status = false);`},
	{"DROP JOB", "remove monitoring jobs",
		`DROP JOB [ IF EXISTS ] job_name [, ...]`,
		`DROP JOB j1;`},
	{"LIST JOB", "show the monitoring jobs",
		`LIST JOB [ job_name [, ...] ]`,
		`LIST JOB;`},
	{"ADD ITEM", "add a monitoring item",
		`ADD ITEM [ IF NOT EXISTS ] item_name ( PATH = 'script', DESC = 'text' )`,
		`ADD ITEM i1 (path = '/opt/check.sh');`},
	{"ALTER ITEM", "change a monitoring item",
		`ALTER ITEM item_name ( option [, ...] )`,
		`ALTER ITEM i1 (desc = 'disk');`},
	{"DROP ITEM", "remove monitoring items",
		`DROP ITEM [ IF EXISTS ] item_name [, ...]`,
		`DROP ITEM i1;`},
	{"LIST ITEM", "show the monitoring items",
		`LIST ITEM [ item_name [, ...] ]`,
		`LIST ITEM;`},

	// ---------------------------------------------------------- misc, privileges
	{"ADD EXTENSION", "install an extension on the coordinators (pg_stat_statements)",
		`ADD EXTENSION extension_name`,
		`ADD EXTENSION pg_stat_statements;`},
	{"DROP EXTENSION", "remove an extension added with ADD EXTENSION",
		`DROP EXTENSION extension_name`,
		`DROP EXTENSION pg_stat_statements;`},
	{"CREATE USER", "create a manager user (superusers only)",
		`CREATE USER user_name [ [ WITH ] [ PASSWORD 'password' ] [ SUPERUSER | NOSUPERUSER ] ]

The password is kept only as its SCRAM-SHA-256 verifier. A user without
a password logs in only over the Unix socket (peer authentication).`,
		`CREATE USER ops PASSWORD 'secret';`},
	{"ALTER USER", "change a manager user's password or superuser flag",
		`ALTER USER user_name [ WITH ] { PASSWORD { 'password' | NULL } | SUPERUSER | NOSUPERUSER } [ ... ]

Every user may change its own password; the rest is for superusers.`,
		`ALTER USER ops PASSWORD 'secret';`},
	{"DROP USER", "remove manager users",
		`DROP USER [ IF EXISTS ] user_name [, ...]`,
		`DROP USER ops;`},
	{"GRANT", "let users run commands",
		`GRANT { command [, ...] | ALL } TO { user_name [, ...] | ALL }

where command is one of:

    ADD, ALTER, APPEND, CLEAN, DEPLOY, DROP, FAILOVER, FLUSH, INIT,
    LIST, MONITOR, RESET, SET, SHOW, START, STOP

Superusers run everything. Only superusers run ADD HOST, ALTER HOST,
START AGENT, DEPLOY, SWITCHOVER, APPEND … FOR, APPEND ACTIVATE, EXPAND,
ZONE, the doctor's switches, and user and privilege commands.`,
		`GRANT list, monitor TO ops;`},
	{"REVOKE", "stop users from running commands",
		`REVOKE { command [, ...] | ALL } FROM { user_name [, ...] | ALL }`,
		`REVOKE ALL FROM ops;`},
	{"LIST ACL", "show which commands each user may run",
		`LIST ACL [ ALL ]`,
		`LIST ACL;`},
	{"HELP", "show help on manager commands",
		`HELP [ command ]`,
		`HELP add datanode;`},
	{"SELECT", "query the manager's catalog views (read only)",
		`SELECT ... FROM { host | node | param | hba | ... } ...

WITH, VALUES and TABLE queries are read only too; the manager refuses SQL
that writes (INSERT, UPDATE, CREATE, ...).`,
		`SELECT name, host FROM node WHERE type = 'datanode master';`},
}

// monitorHelp describes the monitoring-UI back-end commands (web console):
// name, arguments, description.
var monitorHelp = [][3]string{
	{"GET_HOST_LIST_ALL", "", "list every host with its latest metrics"},
	{"GET_HOST_LIST_SPEC", "( host_name [, ...] )", "list the given hosts with their latest metrics"},
	{"GET_HOST_HISTORY_USAGE", "( host_name, interval )", "show a host's metrics history"},
	{"GET_HOST_HISTORY_USAGE_BY_TIME_PERIOD", "( host_name, start_time, end_time )", "show a host's metrics between two times"},
	{"GET_ALL_NODENAME_IN_SPEC_HOST", "( host_name )", "list the nodes on a host"},
	{"GET_AGTM_NODE_TOPOLOGY", "", "show the gtmcoord topology"},
	{"GET_COORDINATOR_NODE_TOPOLOGY", "", "show the coordinator topology"},
	{"GET_DATANODE_NODE_TOPOLOGY", "", "show the datanode topology"},
	{"GET_CLUSTER_HEADPAGE_LINE", "", "show the cluster's front-page graphs"},
	{"GET_CLUSTER_TPS_QPS", "", "show the cluster's transactions and queries per second"},
	{"GET_CLUSTER_CONNECT_DBSIZE_INDEXSIZE", "", "show the cluster's connections and sizes"},
	{"GET_CLUSTER_SUMMARY", "", "show the cluster summary"},
	{"GET_DATABASE_TPS_QPS", "", "show each database's transactions and queries per second"},
	{"GET_DATABASE_TPS_QPS_INTERVAL_TIME", "( database, time, count )", "show a database's TPS/QPS over an interval"},
	{"MONITOR_DATABASETPS_FUNC_BY_TIME_PERIOD", "( database, start_time, end_time )", "show a database's TPS between two times"},
	{"GET_DATABASE_SUMMARY", "( database )", "show a database summary"},
	{"GET_SLOWLOG", "( database, start_time, end_time, limit, offset )", "show slow queries"},
	{"GET_SLOWLOG_COUNT", "( database, start_time, end_time )", "count slow queries"},
	{"CHECK_USER", "( user_name, password )", "check a web console user's credentials"},
	{"GET_USER_INFO", "user_id", "show a web console user"},
	{"UPDATE_USER", "user_id ( option [, ...] )", "change a web console user"},
	{"CHECK_PASSWORD", "( user_id, password )", "check a web console user's password"},
	{"UPDATE_PASSWORD", "user_id ( password )", "change a web console user's password"},
	{"UPDATE_THRESHOLD_VALUE", "( type, warning, critical, emergency )", "change an alarm threshold"},
	{"GET_THRESHOLD_TYPE", "( type )", "show an alarm threshold"},
	{"GET_THRESHOLD_ALL_TYPE", "", "show every host alarm threshold"},
	{"GET_DB_THRESHOLD_ALL_TYPE", "", "show every database alarm threshold"},
	{"GET_ALARM_INFO_ASC", "( ... )", "list alarms, oldest first"},
	{"GET_ALARM_INFO_DESC", "( ... )", "list alarms, newest first"},
	{"GET_ALARM_INFO_COUNT", "( ... )", "count alarms"},
	{"RESOLVE_ALARM", "( alarm_id, time, text )", "mark an alarm resolved"},
}

func init() {
	for _, m := range monitorHelp {
		syn := m[0]
		if m[1] != "" {
			syn += " " + m[1]
		}
		helpEntries = append(helpEntries, helpEntry{cmd: m[0], desc: m[2] + " (web console back end)", syntax: syn, example: m[0] + ";"})
	}
}

// HelpTopics returns the command names HELP knows, in display order.
func HelpTopics() []string {
	out := make([]string, len(helpEntries))
	for i, e := range helpEntries {
		out[i] = e.cmd
	}
	return out
}

// HelpTopic is one command's entry in HELP: its name, one-line
// description and an example statement that parses.
type HelpTopic struct {
	Command, Description, Example string
}

// HelpIndex returns every command HELP knows, in display order.
func HelpIndex() []HelpTopic {
	out := make([]HelpTopic, len(helpEntries))
	for i, e := range helpEntries {
		out[i] = HelpTopic{Command: e.cmd, Description: e.desc, Example: e.example}
	}
	return out
}

// HelpText answers HELP [words…]. (It cannot be called Help: that is the
// statement's AST type.) With no words it lists every command, one
// line each. Otherwise, as psql's \h: the commands whose name is exactly
// the words; failing that, those whose name starts with them (the last word
// may be abbreviated: "HELP list no"); failing that, the longest command
// names that the words start with ("HELP add datanode master dn1"). Words
// are matched case-insensitively. "*" shows every command in full.
// ok is false when nothing matches.
func HelpText(words []string) (text string, ok bool) {
	if len(words) == 0 {
		var b strings.Builder
		b.WriteString("Available help:\n")
		for _, e := range helpEntries {
			fmt.Fprintf(&b, "  %-40s %s\n", e.cmd, e.desc)
		}
		b.WriteString("\nType HELP followed by a command for its syntax, e.g. HELP add datanode.")
		return b.String(), true
	}
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = strings.ToLower(w)
	}
	var match []helpEntry
	if len(q) == 1 && q[0] == "*" {
		match = helpEntries
	}
	if match == nil {
		match = helpMatch(q, func(cmd []string) bool { return equalWords(cmd, q) })
	}
	if match == nil {
		match = helpMatch(q, func(cmd []string) bool { return hasWordPrefix(cmd, q) })
	}
	if match == nil {
		best := 0
		for _, e := range helpEntries {
			cmd := strings.Fields(strings.ToLower(e.cmd))
			if len(cmd) <= len(q) && equalWords(cmd, q[:len(cmd)]) {
				switch {
				case len(cmd) > best:
					best, match = len(cmd), []helpEntry{e}
				case len(cmd) == best:
					match = append(match, e)
				}
			}
		}
	}
	if match == nil {
		return "", false
	}
	parts := make([]string, len(match))
	for i, e := range match {
		parts[i] = fmt.Sprintf("Command:     %s\nDescription: %s\nSyntax:\n%s", e.cmd, e.desc, e.syntax)
	}
	return strings.Join(parts, "\n\n"), true
}

func helpMatch(q []string, keep func(cmd []string) bool) []helpEntry {
	var out []helpEntry
	for _, e := range helpEntries {
		if keep(strings.Fields(strings.ToLower(e.cmd))) {
			out = append(out, e)
		}
	}
	return out
}

func equalWords(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// hasWordPrefix reports whether cmd starts with the words q, the last of
// which may be a prefix of the corresponding word of cmd.
func hasWordPrefix(cmd, q []string) bool {
	if len(q) > len(cmd) {
		return false
	}
	last := len(q) - 1
	return equalWords(cmd[:last], q[:last]) && strings.HasPrefix(cmd[last], q[last])
}

// parentHelp is what ALTER … (PARENT = m) does.
const parentHelp = `

PARENT makes the slave follow another node of its replication tree: another
slave (a cascade, always async) or the master. A running slave is re-pointed
at once (a slot on the new parent, its recovery settings reloaded).`
