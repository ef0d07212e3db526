package mgr

import (
	"context"
	"testing"
	"time"

	"github.com/adbmgr/adbmgr/internal/pgerror"
	"github.com/adbmgr/adbmgr/internal/pgwire"
)

const runaway = `WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM r) SELECT count(*) FROM r, node`

// A runaway SELECT ends with PostgreSQL's statement-timeout error, at the
// session's statement_timeout.
func TestStatementTimeout(t *testing.T) {
	m, _ := newManager(t)
	sess := &pgwire.Session{User: "postgres", Params: map[string]string{}}
	ctx := context.Background()
	for _, q := range []string{"SET statement_timeout = '200ms'", "SET statement_timeout TO 200"} {
		if err := m.Query(ctx, sess, q, &recorder{}); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		r := &recorder{}
		if err := m.Query(ctx, sess, "SHOW statement_timeout", r); err != nil || len(r.rows) != 1 || r.rows[0][0] != "200ms" {
			t.Fatalf("SHOW statement_timeout after %s: %v %v", q, r.rows, err)
		}
		start := time.Now()
		err := m.Query(ctx, sess, runaway, &recorder{})
		pe, ok := pgerror.As(err)
		if !ok || pe.Code != pgerror.QueryCanceled || pe.Message != "canceling statement due to statement timeout" {
			t.Fatalf("runaway: got %v, want 57014 statement timeout", err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Fatalf("runaway took %v", d)
		}
	}
	// The extended protocol's Describe is under the same timeout.
	_, err := m.Describe(ctx, sess, runaway)
	if pe, ok := pgerror.As(err); !ok || pe.Code != pgerror.QueryCanceled {
		t.Fatalf("Describe of the runaway: got %v, want 57014", err)
	}
	for _, bad := range []string{"'soon'", "'-1'", "'5 weeks'", "'99999999999'"} {
		err := m.Query(ctx, sess, "SET statement_timeout = "+bad, &recorder{})
		if pe, ok := pgerror.As(err); !ok || pe.Code != pgerror.InvalidParameterValue {
			t.Errorf("SET statement_timeout = %s: got %v, want 22023", bad, err)
		}
	}
	r := mustRun(t, m, "SHOW statement_timeout")
	if r.rows[0][0] != defaultStatementTimeout {
		t.Errorf("default statement_timeout: %v", r.rows)
	}
}

func TestDurations(t *testing.T) {
	for in, want := range map[string]string{
		"0": "0", "1000": "1s", "1500": "1500ms", "90s": "90s", "2min": "2min", "120 s": "2min",
		"1h": "1h", "1d": "1d", "2.5s": "2500ms", "1000us": "1ms", "1": "1ms",
	} {
		d, err := parseDuration(in)
		if err != nil || formatDuration(d) != want {
			t.Errorf("%q: got %q, %v; want %q", in, formatDuration(d), err, want)
		}
	}
}

// SQL that writes is 25006; COPY … TO and PREPARE read, but are not
// supported: 0A000.
func TestWriteSQLRefusals(t *testing.T) {
	m, _ := newManager(t)
	for q, code := range map[string]string{
		`COPY (SELECT name FROM host) TO STDOUT`: pgerror.FeatureNotSupported,
		`COPY host TO STDOUT`:                    pgerror.FeatureNotSupported,
		`PREPARE q AS SELECT 1`:                  pgerror.FeatureNotSupported,
		`COPY host FROM STDIN`:                   pgerror.ReadOnlySQLTransaction,
		`INSERT INTO host VALUES (1)`:            pgerror.ReadOnlySQLTransaction,
	} {
		_, err := run(t, m, q)
		if pe, ok := pgerror.As(err); !ok || pe.Code != code {
			t.Errorf("%s: %v, want %s", q, err, code)
		}
	}
}
