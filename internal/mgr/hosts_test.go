package mgr

import (
	"fmt"
	"strings"
	"testing"

	"github.com/adbmgr/adbmgr/internal/cluster"
	"github.com/adbmgr/adbmgr/internal/pgerror"
)

// The hosts of a catalog share one OS user: ADD HOST with another is
// refused at its user option; ALTER HOST may switch the hosts one at a
// time (with a WARNING) until a node is initialised, then refuses.
func TestOneUser(t *testing.T) {
	m, cat := newManager(t)
	mustRun(t, m, `ADD HOST h1 (protocol=local, address='127.0.0.2', user=adb); ADD HOST h2 (protocol=ssh, address='127.0.0.3', user=adb)`)
	q := `ADD HOST h3 (protocol=ssh, address='127.0.0.4', user=other)`
	_, err := run(t, m, q)
	pe, ok := pgerror.As(err)
	if !ok || pe.Code != pgerror.InvalidParameterValue || pe.Message != `host "h3" cannot run as user "other": h1, h2 run as "adb"` ||
		!strings.Contains(pe.Hint, "user='adb'") || !strings.Contains(pe.Detail, "superuser") || pe.Position != strings.Index(q, "other")+1 {
		t.Fatalf("ADD HOST with another user: %#v %#v", err, pe)
	}
	// Without user, the session's: postgres.
	if _, err := run(t, m, `ADD HOST h3 (address='127.0.0.4')`); err == nil || !strings.Contains(err.Error(), `cannot run as user "postgres"`) {
		t.Errorf("ADD HOST with the session's user: %v", err)
	}
	mustRun(t, m, `ADD HOST h3 (address='127.0.0.4', user=adb);
		ADD DATANODE MASTER dn1 (HOST=h1, PORT=15432, PATH='/data/dn1');
		ADD DATANODE SLAVE dn1s FOR dn1 (HOST=h2, PORT=15432, PATH='/data/dn1s')`)

	// Before INIT every host can move to another user, one at a time.
	r := mustRun(t, m, `ALTER HOST h1 (user=pg)`)
	if len(r.notices) != 1 || r.notices[0] != `WARNING: host "h1" now runs as "pg" but h2, h3 run as "adb": give every host the same user before INIT (the nodes copied between hosts need it)` {
		t.Errorf("ALTER HOST h1 (user=pg): %q", r.notices)
	}
	if _, err := run(t, m, `ADD HOST h4 (address='127.0.0.5', user=pg)`); err == nil || !strings.Contains(err.Error(), `h2, h3 run as "adb"`) {
		t.Errorf("ADD HOST while the hosts' users are mixed: %v", err)
	}
	// INIT ALL refuses mixed users before it touches anything.
	mustRun(t, m, `ADD GTMCOORD MASTER gc (HOST=h1, PORT=15433, PATH='/data/gc')`)
	_, err = run(t, m, `INIT ALL`)
	pe, ok = pgerror.As(err)
	if !ok || pe.Code != pgerror.ObjectNotInPrereqState || pe.Message != `the hosts run as different users: h1 runs as "pg"; h2, h3 run as "adb"` ||
		pe.Hint != "Give every host one user first: ALTER HOST h1 (USER=adb)." || !strings.Contains(pe.Detail, "superuser") {
		t.Errorf("INIT ALL with mixed users: %#v", err)
	}
	mustRun(t, m, `ALTER HOST h2 (user=pg)`)
	if r := mustRun(t, m, `ALTER HOST h3 (user=pg)`); len(r.notices) != 0 {
		t.Errorf("the last host of the switch: %q", r.notices)
	}
	r = mustRun(t, m, `ALTER HOST h3 (port=2222); LIST HOST (name, user)`)
	if got := strings.Join(func() []string {
		var s []string
		for _, row := range r.rows {
			s = append(s, strings.Join(row, "="))
		}
		return s
	}(), " "); got != "h1=pg h2=pg h3=pg" {
		t.Errorf("hosts: %s", got)
	}

	// Once a node is initialised, a host without nodes keeps the
	// cluster's user.
	markInitialized(t, cat)
	_, err = run(t, m, `ALTER HOST h3 (user=adb)`)
	if pe, ok := pgerror.As(err); !ok || pe.Code != pgerror.InvalidParameterValue || !strings.Contains(pe.Message, `h1, h2 run as "pg"`) || !strings.Contains(pe.Hint, `keep user='pg'`) {
		t.Errorf("ALTER HOST of the user after INIT: %v", err)
	}
	// The hosts of initialised nodes keep theirs (the older rule answers).
	if _, err := run(t, m, `ALTER HOST h1 (user=adb)`); err == nil || !strings.Contains(err.Error(), "its user cannot be changed") {
		t.Errorf("ALTER HOST h1 (user=adb) after INIT: %v", err)
	}
}

// mixedUsers names every user's hosts and moves the others to the user
// most hosts have (the first one's on a tie).
func TestMixedUsers(t *testing.T) {
	hosts := func(users ...string) *cluster.State {
		s := &cluster.State{}
		for i, u := range users {
			s.Hosts = append(s.Hosts, cluster.Host{Name: fmt.Sprintf("h%d", i+1), User: u})
		}
		return s
	}
	if err := mixedUsers(hosts("pg", "pg")); err != nil {
		t.Errorf("one user: %v", err)
	}
	for _, tt := range []struct {
		users         []string
		message, hint string
	}{
		{[]string{"a", "b"}, `h1 runs as "a"; h2 runs as "b"`, "ALTER HOST h2 (USER=a)."},
		{[]string{"a", "b", "c", "b"}, `h1 runs as "a"; h2, h4 run as "b"; h3 runs as "c"`, "ALTER HOST h1 (USER=b); ALTER HOST h3 (USER=b)."},
	} {
		pe, ok := pgerror.As(mixedUsers(hosts(tt.users...)))
		if !ok || pe.Code != pgerror.ObjectNotInPrereqState || pe.Message != "the hosts run as different users: "+tt.message ||
			pe.Hint != "Give every host one user first: "+tt.hint {
			t.Errorf("%v: %#v", tt.users, pe)
		}
	}
}
