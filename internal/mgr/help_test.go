package mgr

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/adbmgr/adbmgr/internal/parser"
	"github.com/adbmgr/adbmgr/internal/pgerror"
	"github.com/adbmgr/adbmgr/internal/pgwire"
)

// TestHelpMarksMatchDispatch runs every HELP example, and every listed
// variant, through the real dispatcher on an empty catalog: a statement
// answers "not implemented yet" exactly when HELP marks it not built.
func TestHelpMarksMatchDispatch(t *testing.T) {
	var stmts []string
	for _, v := range notBuiltVariants {
		stmts = append(stmts, v.example)
	}
	for _, h := range parser.HelpIndex() {
		stmts = append(stmts, h.Example)
	}
	unbuilt := 0
	for _, q := range stmts {
		sts, err := parser.Parse(q)
		if err != nil || len(sts) != 1 {
			t.Errorf("%q does not parse to one statement: %v", q, err)
			continue
		}
		m, _ := newManager(t)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = m.Query(ctx, &pgwire.Session{User: "postgres", Params: map[string]string{}}, q, &recorder{})
		cancel()
		pe, _ := pgerror.As(err)
		got := pe != nil && pe.Code == pgerror.FeatureNotSupported && strings.HasSuffix(pe.Message, "is not implemented yet")
		if got != notBuilt(sts[0]) {
			t.Errorf("%q: execute answers not-implemented %v (%v), HELP marks not built %v", q, got, err, notBuilt(sts[0]))
		}
		if got {
			unbuilt++
		}
	}
	if unbuilt == 0 {
		t.Error("no command is unbuilt: drop the marks, or the test lost its way")
	}
}

func TestHelpIndexListsUnbuiltApart(t *testing.T) {
	m, _ := newManager(t)
	r := mustRun(t, m, "HELP")
	var text []string
	for _, row := range r.rows {
		text = append(text, row[0])
	}
	all := strings.Join(text, "\n")
	built, unbuilt, ok := strings.Cut(all, "Recognised but not built yet")
	if !ok {
		t.Fatalf("HELP has no unbuilt section:\n%s", all)
	}
	for _, w := range []string{"ADD HOST", "INIT ALL", "FAILOVER"} {
		if !strings.Contains(built, w) || strings.Contains(unbuilt, "  "+w+" ") {
			t.Errorf("%s should be listed as built", w)
		}
	}
	for _, w := range []string{"ADD JOB", "GET_SLOWLOG", "LIST NODE SIZE", "SET CLUSTER INIT"} {
		if !strings.Contains(unbuilt, "  "+w+" ") {
			t.Errorf("%s should be listed as not built:\n%s", w, unbuilt)
		}
	}
	r = mustRun(t, m, "HELP ADD JOB")
	if !strings.Contains(r.rows[1][0], "not built yet") {
		t.Errorf("HELP ADD JOB has no status line: %q", r.rows[1][0])
	}
	r = mustRun(t, m, "HELP ADD HOST")
	for _, row := range r.rows {
		if strings.Contains(row[0], "not built yet") {
			t.Errorf("HELP ADD HOST marked not built")
		}
	}
}
