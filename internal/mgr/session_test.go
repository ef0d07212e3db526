package mgr

import (
	"context"
	"testing"

	"github.com/adbmgr/adbmgr/internal/pgerror"
	"github.com/adbmgr/adbmgr/internal/pgwire"
)

// What drivers and PgBouncer send: SET SESSION CHARACTERISTICS changes
// the session's transaction defaults, DISCARD ALL forgets the session's
// settings and prepared statements.
func TestDriverSessionStatements(t *testing.T) {
	m, _ := newManager(t)
	var dropped []string
	s := &pgwire.Session{User: "postgres", Params: map[string]string{}, Deallocate: func(name string, all bool) bool {
		if all {
			name = "ALL"
		}
		dropped = append(dropped, name)
		return name == "s1" || all
	}}
	show := func(q string) string {
		t.Helper()
		r := &recorder{}
		if err := m.Query(context.Background(), s, q, r); err != nil || len(r.rows) != 1 {
			t.Fatalf("%s: %v %v", q, r.rows, err)
		}
		return r.rows[0][0]
	}
	r := &recorder{}
	if err := m.Query(context.Background(), s, `SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ ONLY; SET TRANSACTION ISOLATION LEVEL READ COMMITTED; SET application_name = 'app'`, r); err != nil {
		t.Fatal(err)
	}
	for q, want := range map[string]string{
		`SHOW TRANSACTION ISOLATION LEVEL`:           "serializable",
		`SHOW default_transaction_isolation`:         "serializable",
		`SHOW transaction_read_only`:                 "on",
		`SELECT current_setting('application_name')`: "app",
		`SHOW server_version_num`:                    "150000",
	} {
		if got := show(q); got != want {
			t.Errorf("%s = %q, want %q", q, got, want)
		}
	}
	r = &recorder{}
	if err := m.Query(context.Background(), s, `DEALLOCATE s1; DEALLOCATE PREPARE ALL; DISCARD ALL`, r); err != nil {
		t.Fatal(err)
	}
	if want := []string{"DEALLOCATE", "DEALLOCATE ALL", "DISCARD ALL"}; len(r.tags) != 3 || r.tags[0] != want[0] || r.tags[1] != want[1] || r.tags[2] != want[2] {
		t.Errorf("tags = %q, want %q", r.tags, want)
	}
	if got := show(`SHOW TRANSACTION ISOLATION LEVEL`); got != "read committed" {
		t.Errorf("isolation after DISCARD ALL = %q", got)
	}
	if len(dropped) != 3 || dropped[0] != "s1" || dropped[2] != "ALL" {
		t.Errorf("deallocated %q", dropped)
	}
	if _, err := run(t, m, `DEALLOCATE nosuch`); err == nil {
		t.Error("DEALLOCATE of no statement succeeded")
	}
}

// A READ ONLY session or transaction refuses what changes the cluster
// with 25006, as PostgreSQL refuses an INSERT; reads still run.
func TestReadOnlySession(t *testing.T) {
	m, _ := newManager(t)
	s := &pgwire.Session{User: "postgres", Superuser: true, Params: map[string]string{}}
	q := func(text string) error {
		return m.Query(context.Background(), s, text, &recorder{})
	}
	refused := func(text string) {
		t.Helper()
		err := q(text)
		if pe, ok := pgerror.As(err); !ok || pe.Code != pgerror.ReadOnlySQLTransaction {
			t.Errorf("%s: %v, want 25006", text, err)
		}
	}
	ok := func(text string) {
		t.Helper()
		if err := q(text); err != nil {
			t.Errorf("%s: %v", text, err)
		}
	}
	add := `ADD HOST h9 (protocol=local, address='127.0.0.59')`
	ok(`SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY`)
	refused(add)
	ok(`SELECT name FROM host; LIST HOST; SHOW transaction_read_only`)
	ok(`BEGIN READ WRITE`)
	ok(add)
	ok(`COMMIT`)
	refused(`DROP HOST h9`)
	ok(`SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE`)
	ok(`BEGIN READ ONLY`)
	refused(`DROP HOST h9`)
	ok(`ROLLBACK`)
	ok(`SET default_transaction_read_only = on`)
	refused(`DROP HOST h9`)
	ok(`BEGIN; SET TRANSACTION READ WRITE; DROP HOST h9; COMMIT`)
	ok(`RESET default_transaction_read_only`)
	ok(add)
}
