package parser

import (
	"testing"

	"github.com/adbmgr/adbmgr/internal/pgerror"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// What drivers and poolers send at connect and between clients.
func TestDriverSessionStatements(t *testing.T) {
	for _, tc := range []struct {
		q    string
		want Statement
	}{
		{"SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED", &SetTransaction{Session: true, Isolation: "read committed"}},
		{"set session characteristics as transaction isolation level serializable, read only", &SetTransaction{Session: true, Isolation: "serializable", ReadOnly: "on"}},
		{"SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ WRITE NOT DEFERRABLE", &SetTransaction{Isolation: "repeatable read", ReadOnly: "off", Deferrable: "off"}},
		{"SET TRANSACTION READ ONLY, DEFERRABLE", &SetTransaction{ReadOnly: "on", Deferrable: "on"}},
		{"DISCARD ALL", &Discard{What: "ALL"}},
		{"discard temporary", &Discard{What: "TEMP"}},
		{"DEALLOCATE PREPARE s1", &Deallocate{Name: "s1"}},
		{"DEALLOCATE ALL", &Deallocate{All: true}},
		// Still a session variable.
		{"SET SESSION statement_timeout = 5", &SetVar{Name: Ident{Name: "statement_timeout", Pos: 12}, Value: "5"}},
	} {
		sts, err := Parse(tc.q)
		if err != nil || len(sts) != 1 {
			t.Errorf("%s: %v", tc.q, err)
			continue
		}
		if d := cmp.Diff(tc.want, sts[0], cmpopts.IgnoreTypes(Base{})); d != "" {
			t.Errorf("%s: (-want +got)\n%s", tc.q, d)
		}
	}
	for q, pos := range map[string]int{
		"SET SESSION CHARACTERISTICS TRANSACTION":       29,
		"SET TRANSACTION ISOLATION LEVEL READ SOMETIME": 38,
		"SET TRANSACTION":    16,
		"DISCARD EVERYTHING": 9,
		"DEALLOCATE":         11,
	} {
		_, err := Parse(q)
		if pe, ok := pgerror.As(err); !ok || pe.Code != pgerror.SyntaxError || pe.Position != pos {
			t.Errorf("%s: %v, want a syntax error at %d", q, err, pos)
		}
	}
}
