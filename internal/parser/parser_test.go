package parser

import (
	"strings"
	"testing"

	"github.com/adbmgr/adbmgr/internal/pgerror"
	"github.com/google/go-cmp/cmp"
)

func id(name string, pos int) Ident { return Ident{Name: name, Pos: pos} }

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want []Statement
	}{
		{"empty query", "", nil},
		{"only white space and comments", "  -- hi\n /* there */ ", nil},
		{"only semicolons", ";; ;", nil},
		{
			"multi-statement positions exclude ';' and trailing white space",
			"LIST HOST ;\n  list node  -- c\n;MONITOR",
			[]Statement{
				&ListHost{Base: Base{0, 9}},
				&ListNode{Base: Base{14, 23}},
				&Monitor{Base: Base{31, 38}, Target: NodeTarget{All: true}},
			},
		},
		{
			"positions are bytes",
			"LIST NODE 节点;LIST NODE x",
			[]Statement{
				&ListNode{Base: Base{0, 16}, Names: []Ident{id("节点", 10)}},
				&ListNode{Base: Base{17, 28}, Names: []Ident{id("x", 27)}},
			},
		},
		{
			"issue example: add host",
			`add host adb03(port=22,protocol='ssh',adbhome='/opt/app/antdb',address="192.168.149.133",agentport=8432,user='antdb');`,
			[]Statement{&AddHost{
				Base: Base{0, 117},
				Name: id("adb03", 9),
				Options: []Option{
					{Name: id("port", 15), Value: "22", Kind: ValueNumber, ValuePos: 20},
					{Name: id("protocol", 23), Value: "ssh", Kind: ValueString, ValuePos: 32},
					{Name: id("adbhome", 38), Value: "/opt/app/antdb", Kind: ValueString, ValuePos: 46},
					{Name: id("address", 63), Value: "192.168.149.133", Kind: ValueString, ValuePos: 71},
					{Name: id("agentport", 89), Value: "8432", Kind: ValueNumber, ValuePos: 99},
					{Name: id("user", 104), Value: "antdb", Kind: ValueString, ValuePos: 109},
				},
			}},
		},
		{
			"brief example: add datanode slave",
			"ADD DATANODE SLAVE dn1s FOR dn1 (HOST=h2, PORT=5432, PATH='/data/dn1s');",
			[]Statement{&AddNode{
				Base: Base{0, 71},
				Kind: NodeKind{Family: Datanode, Role: Slave, Pos: 4},
				Name: id("dn1s", 19),
				For:  id("dn1", 28),
				Options: []Option{
					{Name: id("host", 33), Value: "h2", Kind: ValueIdent, ValuePos: 38},
					{Name: id("port", 42), Value: "5432", Kind: ValueNumber, ValuePos: 47},
					{Name: id("path", 53), Value: "/data/dn1s", Kind: ValueString, ValuePos: 58},
				},
			}},
		},
		{
			"quoted names keep case; keywords are names after the role",
			`DROP DATANODE MASTER "Dn1", master`,
			[]Statement{&DropNode{Base: Base{0, 34}, Kind: NodeKind{Datanode, Master, 5}, Names: []Ident{id("Dn1", 21), id("master", 28)}}},
		},
		{
			"option forms: name value, bare name, dotted name, signed number",
			"RESET DATANODE ALL (a 'x', b, c.d = -1.5, e = +2)",
			[]Statement{&SetParam{
				Base:   Base{0, 49},
				Reset:  true,
				Target: NodeTarget{All: true, Kind: NodeKind{Family: Datanode, Pos: 6}},
				Params: []Option{
					{Name: id("a", 20), Value: "x", Kind: ValueString, ValuePos: 22},
					{Name: id("b", 27), Kind: ValueNone, ValuePos: 27},
					{Name: id("c.d", 30), Value: "-1.5", Kind: ValueNumber, ValuePos: 36},
					{Name: id("e", 42), Value: "+2", Kind: ValueNumber, ValuePos: 46},
				},
			}},
		},
		{
			"typographic quotes as the spec writes them",
			"ALTER DATANODE MASTER db1 (PATH=’/a b’)",
			[]Statement{&AlterNode{Base: Base{0, 43}, Kind: NodeKind{Datanode, Master, 6}, Name: id("db1", 22),
				Options: []Option{{Name: id("path", 27), Value: "/a b", Kind: ValueString, ValuePos: 32}}}},
		},
		{
			"select text is verbatim and stops at the top-level ';'",
			"select ';', $$;$$, \"a;\" from node /* ; */ where (1;2) -- x\n; show all",
			[]Statement{
				&Select{Base: Base{0, 53}, Text: "select ';', $$;$$, \"a;\" from node /* ; */ where (1;2)"},
				&ShowVar{Base: Base{61, 69}, Name: id("all", 66)},
			},
		},
		{
			"session set with a list",
			"SET search_path = a, 'B', \"C\"",
			[]Statement{&SetVar{Base: Base{0, 29}, Name: id("search_path", 4), Value: `a, B, "C"`}},
		},
		{
			"SQL-standard SET spellings",
			"SET SESSION AUTHORIZATION ops; SET LOCAL TIME ZONE 'UTC'; SET ROLE NONE; SET SCHEMA 'adb'",
			[]Statement{
				&SetVar{Base: Base{0, 29}, Name: id("session_authorization", 4), Value: "ops"},
				&SetVar{Base: Base{31, 56}, Name: id("timezone", 41), Value: "UTC", Local: true},
				&SetVar{Base: Base{58, 71}, Name: id("role", 62), Value: "none"},
				&SetVar{Base: Base{73, 89}, Name: id("search_path", 77), Value: "adb"},
			},
		},
		{
			"write SQL verbs",
			"create temp table t(); alter table t; drop view v; insert into t values(1)",
			[]Statement{
				&WriteSQL{Base: Base{0, 21}, Verb: "CREATE TABLE"},
				&WriteSQL{Base: Base{23, 36}, Verb: "ALTER TABLE"},
				&WriteSQL{Base: Base{38, 49}, Verb: "DROP VIEW"},
				&WriteSQL{Base: Base{51, 74}, Verb: "INSERT"},
			},
		},
		{
			"stop mode defaults to smart",
			"STOP ALL",
			[]Statement{&StopNodes{Base: Base{0, 8}, Target: NodeTarget{All: true}, Mode: ModeSmart}},
		},
		{
			"clean monitor days, other cleans -1",
			"CLEAN MONITOR 0; CLEAN ALL",
			[]Statement{
				&Clean{Base: Base{0, 15}, MonitorDays: 0},
				&Clean{Base: Base{17, 26}, Target: NodeTarget{All: true}, MonitorDays: -1},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.in, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Parse(%q) (-want +got):\n%s", tc.in, diff)
			}
		})
	}
}

// TestSyntaxErrors covers the error paths: where the error points and what
// it says was expected. pos is PostgreSQL's 1-based character position;
// near is the token the message quotes ("" for end of input); hint is a
// substring of the hint.
func TestSyntaxErrors(t *testing.T) {
	for _, tc := range []struct {
		in   string
		pos  int
		near string
		hint string
	}{
		// the spec's typos
		{"SET DATANODE mastere ALL (wal_keep_size = 102400);", 14, "mastere", "Expected MASTER, SLAVE or ALL."},
		{"SET DATANDOE ALL (x=1)", 5, "DATANDOE", "Expected GTMCOORD, COORDINATOR, DATANODE, CLUSTER, DOCTOR or a parameter name followed by = or TO."},
		{"FAILOR DATANODE dn1_1;", 1, "FAILOR", "did you mean FAILOVER?"},
		{"FAILOR DATANODE dn1_1 force;", 1, "FAILOR", "Expected a command"},
		{"SWITCHOR DATANODE SLAVE dn2_2;", 1, "SWITCHOR", "did you mean SWITCHOVER?"},
		// unknown commands
		{"xyzzy", 1, "xyzzy", "Expected a command; try HELP."},
		{"42", 1, "42", "Expected a command; try HELP."},
		{"'list'", 1, "'list'", "Expected a command"},
		{"LIST HOST; bogus", 12, "bogus", "Expected a command"},
		// a later error wins over nothing: no statements returned
		{"LIST HOST; LIST NODE x y", 24, "y", `Expected "," or end of statement.`},
		// session SET / RESET / SHOW
		{"SET x 5", 7, "5", `Expected "=" or TO.`},
		{"SET x", 6, "", `Expected "=" or TO.`},
		{"SET datanod (a=1)", 5, "datanod", "CLUSTER, DOCTOR"},
		{"SET doctr", 5, "doctr", "CLUSTER, DOCTOR"},
		{"SET 5 = 1", 5, "5", "a parameter name"},
		{"SET x =", 8, "", "Expected a value or DEFAULT."},
		{"SET x = a,", 11, "", "Expected a value."},
		{"SET x = a b", 11, "b", `Expected "," or end of statement.`},
		{"SET CLUSTER", 12, "", "Expected INIT."},
		{"RESET", 6, "", "Expected GTMCOORD, COORDINATOR, DATANODE, ALL or a parameter name."},
		{"RESET datanod all", 7, "datanod", "a parameter name"},
		{"SHOW", 5, "", "Expected PARAM, HBA, BOOTTIME, ALL or a parameter name."},
		{"SHOW hab all", 6, "hab", "PARAM, HBA"},
		{"SHOW TRANSACTION ISOLATION", 27, "", "Expected LEVEL."},
		// SET/RESET parameters
		{"SET DATANODE ALL", 17, "", `Expected "(".`},
		{"SET DATANODE MASTER", 20, "", "Expected ALL or a node name."},
		{"SET DATANODE ALL ()", 19, ")", "Expected an option name."},
		{"SET DATANODE ALL (a)", 20, ")", `Expected "=".`},
		{"SET DATANODE ALL (a, b=1)", 20, ",", `Expected "=".`},
		{"SET DATANODE ALL (a=1 b=2)", 23, "b", `Expected "," or ")".`},
		{"SET DATANODE ALL (a=1,)", 23, ")", "Expected an option name."},
		{"SET DATANODE ALL (a=)", 21, ")", "Expected an option value"},
		{"SET DATANODE ALL (a=/x)", 21, "/", "Expected an option value"},
		{"SET DATANODE ALL (a=1) FORCE x", 30, "x", "Expected end of statement."},
		{"SET DATANODE ALL (a=1) x", 24, "x", "Expected FORCE or end of statement."},
		{"RESET DATANODE ALL (a b c)", 25, "c", `Expected "," or ")".`},
		{"RESET DATANODE ALL (a = )", 25, ")", "Expected an option value"},
		{"RESET DATANODE ALL (a ; b)", 23, ";", `Expected "=", "," or ")".`},
		{"SET DOCTOR", 11, "", `Expected "(", NODE or HOST.`},
		{"SET DOCTOR NODE n", 18, "", "Expected ON or OFF."},
		{"SET DOCTOR HOST", 16, "", "Expected a host name."},
		// ADD
		{"ADD", 4, "", "Expected HOST, GTMCOORD, COORDINATOR, DATANODE, HBA, JOB, ITEM or EXTENSION."},
		{"ADD DATANDOE MASTER x (a=1)", 5, "DATANDOE", "Expected HOST, GTMCOORD"},
		{"ADD DATANODE MASTR x (a=1)", 14, "MASTR", "Expected MASTER or SLAVE."},
		{"ADD DATANODE MASTER (a=1)", 21, "(", "Expected a node name."},
		{"ADD DATANODE MASTER x", 22, "", `Expected "(".`},
		{"ADD DATANODE MASTER x (a=1) y", 29, "y", "Expected end of statement."},
		{"ADD DATANODE SLAVE x (a=1)", 22, "(", "Expected FOR."},
		{"ADD DATANODE SLAVE x FOR (a=1)", 26, "(", "Expected the name of the node to follow."},
		{"ADD HOST", 9, "", "Expected a host name."},
		{"ADD HOST IF NOT h (a=1)", 17, "h", "Expected EXISTS."},
		{"ADD HOST h", 11, "", `Expected "(".`},
		{"ADD HOST h ()", 13, ")", "Expected an option name."},
		{"ADD HOST h (address='x' port=22)", 25, "port", `Expected "," or ")".`},
		{"ADD HBA", 8, "", "Expected GTMCOORD, COORDINATOR or DATANODE."},
		{"ADD HBA DATANODE", 17, "", "Expected ALL or a node name."},
		{"ADD HBA DATANODE ALL", 21, "", `Expected "(".`},
		{"ADD HBA DATANODE ALL (x)", 23, "x", "Expected a quoted pg_hba.conf line."},
		{`ADD HBA DATANODE ALL ("a" "b")`, 27, `"b"`, `Expected "," or ")".`},
		// ALTER
		{"ALTER", 6, "", "Expected HOST, GTMCOORD, COORDINATOR, DATANODE, JOB, ITEM or USER."},
		{"ALTER DATANDOE MASTER x (a=1)", 7, "DATANDOE", "Expected HOST"},
		{"ALTER DATANODE x (a=1)", 16, "x", "Expected MASTER or SLAVE."},
		{"ALTER DATANODE SLAVE x", 23, "", `Expected "(".`},
		{"ALTER HOST h", 13, "", `Expected "(".`},
		// DROP
		{"DROP", 5, "", "Expected HOST, GTMCOORD, COORDINATOR, DATANODE, ZONE, HBA, JOB, ITEM, EXTENSION or USER."},
		{"DROP DATANODE SLAVE", 20, "", "Expected a node name."},
		{"DROP DATANODE SLAVE a,", 23, "", "Expected a node name."},
		{"DROP DATANODE SLAVE a b", 23, "b", `Expected "," or end of statement.`},
		{"DROP HOST IF EXISTS", 20, "", "Expected a host name."},
		{"DROP ZONE", 10, "", "Expected a zone name."},
		{"DROP ZONE a b", 13, "b", "Expected end of statement."},
		{"DROP HBA", 9, "", "Expected ALL or a node name."},
		{"DROP HBA ALL x", 14, "x", `Expected "(" or end of statement.`},
		// LIST
		{"LIST", 5, "", "Expected HOST, NODE, PARAM, HBA, DOCTOR, JOURNAL, JOB, ITEM or ACL."},
		{"LIST HOST (", 12, "", "Expected a column name."},
		{"LIST HOST (a b)", 14, "b", `Expected "," or ")".`},
		{"LIST HOST a,", 13, "", "Expected a host name."},
		{"LIST NODE DATANDOE SLAVE", 11, "DATANDOE", "Expected GTMCOORD, COORDINATOR or DATANODE."},
		{"LIST NODE DATANODE x", 20, "x", "Expected MASTER, SLAVE or end of statement."},
		{"LIST NODE DATANODE SLAVE x", 26, "x", "Expected end of statement."},
		{"LIST NODE HOST", 15, "", "Expected a host name."},
		{"LIST NODE ZONE", 15, "", "Expected a zone name."},
		{"LIST NODE 5", 11, "5", "a node name or end of statement."},
		{"LIST NODE PRETTY ALL", 18, "ALL", "Expected SIZE."},
		{"LIST NODE SIZE", 15, "", "Expected ALL or a node name."},
		{"LIST NODE SIZE ALL WITH", 24, "", "Expected SLINK."},
		{"LIST NODE SIZE ALL x", 20, "x", "Expected WITH or end of statement."},
		{"LIST NODE SIZE a b", 18, "b", `Expected ",", WITH or end of statement.`},
		{"LIST PARAM x", 12, "x", "Expected GTMCOORD, COORDINATOR, DATANODE or end of statement."},
		{"LIST PARAM DATANODE x", 21, "x", "Expected MASTER, SLAVE or ALL."},
		{"LIST PARAM DATANODE ALL a b", 27, "b", "Expected end of statement."},
		{"LIST PARAM DATANODE ALL (", 25, "(", "Expected a parameter name pattern."},
		{"LIST HBA a b", 12, "b", `Expected "," or end of statement.`},
		{"LIST DOCTOR x", 13, "x", "Expected end of statement."},
		// SHOW PARAM / HBA / BOOTTIME
		{"SHOW PARAM", 11, "", "Expected a node name."},
		{"SHOW PARAM n p q", 16, "q", "Expected end of statement."},
		{"SHOW HBA", 9, "", "Expected ALL or a node name."},
		{"SHOW BOOTTIME x", 15, "x", "Expected ALL, GTMCOORD, COORDINATOR, DATANODE or end of statement."},
		{"SHOW BOOTTIME DATANODE x", 24, "x", "Expected MASTER, SLAVE, ALL or end of statement."},
		// START / STOP / MONITOR
		{"START", 6, "", "Expected ALL, GTMCOORD, COORDINATOR, DATANODE, ZONE, AGENT, DOCTOR or TRANSACTION."},
		{"START DATANDOE ALL", 7, "DATANDOE", "Expected ALL, GTMCOORD"},
		{"START DATANODE MASTR ALL", 16, "MASTR", "Expected MASTER, SLAVE or ALL."},
		{"START DATANODE MASTER", 22, "", "Expected ALL or a node name."},
		{"START DATANODE MASTER a b", 25, "b", `Expected "," or end of statement.`},
		{"START ZONE", 11, "", "Expected a zone name."},
		{"START AGENT", 12, "", "Expected ALL or a host name."},
		{"START AGENT h x", 15, "x", `Expected ",", PASSWORD or end of statement.`},
		{"START AGENT ALL PASSWORD", 25, "", "Expected a password."},
		{"START DOCTOR x", 14, "x", "Expected end of statement."},
		{"STOP", 5, "", "Expected ALL, GTMCOORD, COORDINATOR, DATANODE, ZONE, AGENT or DOCTOR."},
		{"STOP ALL MODE", 14, "", "Expected SMART, S, FAST, F, IMMEDIATE or I."},
		{"STOP ALL MODE x", 15, "x", "Expected SMART, S, FAST, F, IMMEDIATE or I."},
		{"STOP ALL x", 10, "x", "Expected MODE or end of statement."},
		{"STOP DATANODE MASTER a x", 24, "x", `Expected ",", MODE or end of statement.`},
		{"STOP ALL MODE fast x", 20, "x", "Expected end of statement."},
		{"STOP AGENT ALL PASSWORD x", 16, "PASSWORD", "Expected end of statement."},
		{"MONITOR x", 9, "x", "Expected ALL, GTMCOORD, COORDINATOR, DATANODE, ZONE, HA, AGENT or end of statement."},
		{"MONITOR DATANODE x", 18, "x", "Expected MASTER, SLAVE, ALL or end of statement."},
		{"MONITOR DATANODE MASTER a x", 27, "x", `Expected "," or end of statement.`},
		{"MONITOR HA 5", 12, "5", `Expected ZONE, "(", a node name or end of statement.`},
		{"MONITOR HA ZONE", 16, "", "Expected a zone name."},
		{"MONITOR AGENT a b", 17, "b", `Expected "," or end of statement.`},
		{"ROTATE", 7, "", "Expected CERTIFICATES."},
		{"ROTATE CERTIFICATES x", 21, "x", "Expected CA or end of statement."},
		{"ROTATE CERTIFICATES CA x", 24, "x", "Expected end of statement."},
		// DEPLOY / INIT / CLEAN
		{"DEPLOY", 7, "", "Expected ALL or a host name."},
		{"DEPLOY ALL x", 12, "x", "Expected PASSWORD or end of statement."},
		{"INIT", 5, "", "Expected ALL."},
		{"INIT ALL x", 10, "x", `Expected DATA_CHECKSUMS, "(" or end of statement.`},
		{"INIT ALL DATA_CHECKSUMS x", 25, "x", `Expected "(" or end of statement.`},
		{"INIT ALL (walsegsize)", 21, ")", `Expected "=".`},
		{"CLEAN", 6, "", "Expected ALL, GTMCOORD, COORDINATOR, DATANODE, ZONE or MONITOR."},
		{"CLEAN MONITOR", 14, "", "Expected a number of days"},
		{"CLEAN MONITOR 1.5", 15, "1.5", "an integer between 0 and 2147483647"},
		{"CLEAN MONITOR 99999999999", 15, "99999999999", "Expected a number of days"},
		{"CLEAN DATANODE a", 16, "a", "Expected MASTER or SLAVE."},
		{"CLEAN ALL x", 11, "x", "Expected end of statement."},
		// APPEND / REMOVE
		{"APPEND", 7, "", "Expected GTMCOORD, COORDINATOR, DATANODE or ACTIVATE."},
		{"APPEND GTMCOORD MASTER g", 17, "MASTER", "Expected SLAVE."},
		{"APPEND DATANODE SLAVE d DATA_CHECKSUMS", 25, "DATA_CHECKSUMS", "Expected end of statement."},
		{"APPEND DATANODE MASTER d x", 26, "x", `Expected DATA_CHECKSUMS, "(" or end of statement.`},
		{"APPEND COORDINATOR mastr c", 20, "mastr", "Expected MASTER, SLAVE or a node name followed by FOR."},
		{"APPEND COORDINATOR c", 21, "", "Expected FOR."},
		{"APPEND COORDINATOR c FOR", 25, "", "Expected the source coordinator's name."},
		{"APPEND ACTIVATE DATANODE d", 17, "DATANODE", "Expected COORDINATOR."},
		{"REMOVE DATANODE d", 17, "d", "Expected MASTER or SLAVE."},
		// FAILOVER / SWITCHOVER / REWIND / PROMOTE / CONFIG
		{"FAILOVER", 9, "", "Expected GTMCOORD, COORDINATOR or DATANODE."},
		{"FAILOVER COORDINATOR MASTER c", 22, "MASTER", "Expected the master's node name"},
		{"FAILOVER DATANODE SLAVE d", 19, "SLAVE", "Expected the master's node name"},
		{"FAILOVER DATANODE d x", 21, "x", "Expected TO, FORCE or end of statement."},
		{"FAILOVER DATANODE d TO", 23, "", "Expected the name of the slave to promote."},
		{"FAILOVER DATANODE d TO s x", 26, "x", "Expected FORCE or end of statement."},
		{"FAILOVER DATANODE d FORCE x", 27, "x", "Expected end of statement."},
		{"SWITCHOVER DATANODE d", 21, "d", "Expected SLAVE or MASTER."},
		{"SWITCHOVER DATANODE SLAVE d x", 29, "x", "Expected FORCE, a maximum number of tries or end of statement."},
		{"SWITCHOVER DATANODE SLAVE d FORCE x", 35, "x", "Expected a maximum number of tries or end of statement."},
		{"SWITCHOVER DATANODE SLAVE d 0", 29, "0", "an integer between 1 and 2147483647"},
		{"SWITCHOVER DATANODE SLAVE d 10 FORCE", 32, "FORCE", "Expected end of statement."},
		{"REWIND DATANODE MASTER d", 17, "MASTER", "Expected SLAVE."},
		{"PROMOTE DATANODE d", 18, "d", "Expected MASTER or SLAVE."},
		{"ADBMGR DATANODE", 8, "DATANODE", "Expected PROMOTE."},
		{"ADBMGR PROMOTE DATANODE MASTER d", 25, "MASTER", "Expected SLAVE."},
		{"CONFIG COORDINATOR SLAVE c", 8, "COORDINATOR", "Expected DATANODE."},
		{"CONFIG DATANODE MASTER d", 17, "MASTER", "Expected SLAVE."},
		// EXPAND / ZONE / FLUSH / CHECKOUT
		{"EXPAND", 7, "", "Expected DATANODE, ACTIVATE, CLEAN, RECOVER, DOCHECK, SHOW or SLEEP."},
		{"EXPAND DATANODE SLAVE a TO b", 17, "SLAVE", "Expected MASTER."},
		{"EXPAND DATANODE MASTER a b", 26, "b", "Expected TO."},
		{"EXPAND DATANODE MASTER a TO", 28, "", "Expected the target datanode master's name."},
		{"EXPAND ACTIVATE x", 17, "x", "Expected RECOVER or end of statement."},
		{"EXPAND ACTIVATE RECOVER SUCCESS d", 25, "SUCCESS", "Expected DOPROMOTE."},
		{"EXPAND RECOVER BASEBACKUP OK a TO b", 27, "OK", "Expected SUCCESS or FAIL."},
		{"EXPAND RECOVER a", 16, "a", "Expected BASEBACKUP."},
		{"EXPAND SHOW", 12, "", "Expected STATUS."},
		{"EXPAND SLEEP x", 14, "x", "Expected a number of seconds"},
		{"EXPAND CLEAN x", 14, "x", "Expected end of statement."},
		{"ZONE", 5, "", "Expected FAILOVER, SWITCHOVER or INIT."},
		{"ZONE INIT", 10, "", "Expected a zone name."},
		{"ZONE INIT z FORCE", 13, "FORCE", "Expected end of statement."},
		{"ZONE FAILOVER z x", 17, "x", "Expected FORCE or end of statement."},
		{"ZONE SWITCHOVER z FORCE 1.5", 25, "1.5", "Expected the maximum number of tries"},
		{"FLUSH", 6, "", "Expected HOST, PARAM or READONLY."},
		{"FLUSH READONLY", 15, "", "Expected SLAVE."},
		{"CHECKOUT DATANODE SLAVE", 24, "", "Expected STATUS."},
		// SQL
		{"CREATE NODE n", 8, "NODE", "Expected USER or a SQL object type such as TABLE."},
		{"SELECT 'x", 8, "", ""},
		// lexical errors surface where the parser meets them
		{"LIST NODE a, 'b", 14, "", ""},
		{"LIST NODE a b 'c", 13, "b", `Expected "," or end of statement.`},
	} {
		t.Run(tc.in, func(t *testing.T) {
			sts, err := Parse(tc.in)
			if err == nil {
				t.Fatalf("Parse(%q) = %v, want an error", tc.in, sts)
			}
			if sts != nil {
				t.Errorf("Parse(%q) returned statements with the error", tc.in)
			}
			pe, ok := pgerror.As(err)
			if !ok {
				t.Fatalf("Parse(%q): %T is not a *pgerror.Error", tc.in, err)
			}
			if pe.Code != pgerror.SyntaxError {
				t.Errorf("code %s, want %s", pe.Code, pgerror.SyntaxError)
			}
			if pe.Position != tc.pos {
				t.Errorf("position %d, want %d (message %q)", pe.Position, tc.pos, pe.Message)
			}
			if tc.hint == "" && tc.near == "" {
				return // lexical error: message checked in TestLex
			}
			wantMsg := "syntax error at end of input"
			if tc.near != "" {
				wantMsg = `syntax error at or near "` + tc.near + `"`
			}
			if pe.Message != wantMsg {
				t.Errorf("message %q, want %q", pe.Message, wantMsg)
			}
			if !strings.Contains(pe.Hint, tc.hint) {
				t.Errorf("hint %q, want it to contain %q", pe.Hint, tc.hint)
			}
		})
	}
}

func TestEncodingErrors(t *testing.T) {
	for _, tc := range []struct {
		in  string
		pos int
		msg string
	}{
		{"LIST NODE \xff", 11, `invalid byte sequence for encoding "UTF8": 0xff`},
		{"LIST NODE '节\xe8'", 13, `invalid byte sequence for encoding "UTF8": 0xe8`},
		{"LIST\x00", 5, `invalid byte sequence for encoding "UTF8": 0x00`},
	} {
		_, err := Parse(tc.in)
		pe, ok := pgerror.As(err)
		if !ok || pe.Code != pgerror.SyntaxError || pe.Position != tc.pos || pe.Message != tc.msg {
			t.Errorf("Parse(%q) = %#v, want position %d message %q", tc.in, err, tc.pos, tc.msg)
		}
	}
}

// TestCommandNames checks the command tags of the statements whose tag
// depends on their fields.
func TestCommandNames(t *testing.T) {
	for in, want := range map[string]string{
		"RESET DATANODE ALL (a)":          "RESET PARAM",
		"SET DATANODE ALL (a=1)":          "SET PARAM",
		"APPEND ACTIVATE COORDINATOR c":   "APPEND ACTIVATE",
		"ADBMGR PROMOTE DATANODE SLAVE d": "ADBMGR PROMOTE",
		"FLUSH READONLY SLAVE":            "FLUSH READONLY SLAVE",
		"ABORT":                           "ROLLBACK",
		"create index i on t(a)":          "CREATE INDEX",
		"ADD JOB j (a=1)":                 "ADD JOB",
		"get_cluster_summary":             "GET_CLUSTER_SUMMARY",
	} {
		sts, err := Parse(in)
		if err != nil || len(sts) != 1 {
			t.Fatalf("Parse(%q) = %v, %v", in, sts, err)
		}
		if got := sts[0].Command(); got != want {
			t.Errorf("Parse(%q).Command() = %q, want %q", in, got, want)
		}
	}
}
