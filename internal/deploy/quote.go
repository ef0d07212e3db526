package deploy

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// Quote returns s as one POSIX shell word: inside single quotes nothing is
// special, and a single quote is written as '\” (close, escaped quote,
// reopen). Every argument of a remote command goes through it; the values
// are the manager's own (validated paths and addresses), never user text.
func Quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Command joins argv into one shell command line, every word quoted.
func Command(argv ...string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = Quote(a)
	}
	return strings.Join(q, " ")
}

// ErrBadPath is wrapped by CheckPath's refusals.
var ErrBadPath = errors.New("unusable remote path")

// CheckPath accepts what the manager puts into a remote command or SFTP
// call: an absolute, clean path without control characters. Quoting would
// make any string safe for the shell, but a newline or an escape sequence
// in a path is never what a DBA meant, and logs and errors would show it.
func CheckPath(p string) error {
	switch {
	case p == "":
		return fmt.Errorf("%w: empty", ErrBadPath)
	case !strings.HasPrefix(p, "/"):
		return fmt.Errorf("%w: %q is not absolute", ErrBadPath, p)
	case path.Clean(p) != p:
		return fmt.Errorf("%w: %q is not clean (write %q)", ErrBadPath, p, path.Clean(p))
	case len(p) > 1024:
		return fmt.Errorf("%w: longer than 1024 bytes", ErrBadPath)
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f || r == 0xfffd {
			return fmt.Errorf("%w: %q has a control character or invalid UTF-8", ErrBadPath, p)
		}
	}
	return nil
}
