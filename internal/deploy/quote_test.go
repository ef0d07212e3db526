package deploy

import (
	"errors"
	"os/exec"
	"testing"
)

func TestQuote(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", "''"},
		{"plain", "'plain'"},
		{"/opt/adb home/bin", "'/opt/adb home/bin'"},
		{"it's", `'it'\''s'`},
		{"'", `''\'''`},
		{"$(reboot)`id`;rm -rf / &", "'$(reboot)`id`;rm -rf / &'"},
		{`a\b"c`, `'a\b"c'`},
		{"a\nb", "'a\nb'"},
	} {
		if got := Quote(c.in); got != c.want {
			t.Errorf("Quote(%q) = %s, want %s", c.in, got, c.want)
		}
	}
}

// TestQuoteShell: what the shell makes of a quoted word is the word.
func TestQuoteShell(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	for _, s := range []string{"", "it's", "''", "$(id)", "`id`", "a b\tc\nd", `\'"\`, "*", "~root", "-n", "!x", "é ∑"} {
		out, err := exec.Command(sh, "-c", "printf %s "+Quote(s)).Output()
		if err != nil || string(out) != s {
			t.Errorf("sh printed %q (%v) for %q", out, err, s)
		}
	}
	out, err := exec.Command(sh, "-c", "printf '%s|' "+Command("a b", "c'd", "")).Output()
	if err != nil || string(out) != "a b|c'd||" {
		t.Errorf("Command: sh printed %q (%v)", out, err)
	}
}

func TestCheckPath(t *testing.T) {
	for _, p := range []string{"/", "/opt/adb", "/opt/adb home/it's"} {
		if err := CheckPath(p); err != nil {
			t.Errorf("CheckPath(%q) = %v", p, err)
		}
	}
	for _, p := range []string{"", "opt/adb", "/opt/../etc", "/opt/adb/", "/opt//adb", "/opt/a\nb", "/opt/\x1b[2J", "/opt/\x7f", "/opt/\xff"} {
		if err := CheckPath(p); !errors.Is(err, ErrBadPath) {
			t.Errorf("CheckPath(%q) = %v, want ErrBadPath", p, err)
		}
	}
}
