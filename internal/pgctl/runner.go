package pgctl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/adbmgr/adbmgr/internal/fstrust"
)

// ErrInvalid marks a request that cannot work whatever the host's state: an
// unknown user, a PostgreSQL home without the tool, root as the node user.
var ErrInvalid = errors.New("invalid")

// ErrNotPermitted marks a request this agent may not carry out on this host
// as it is: running as another user without being root, a data directory
// the node's user could not reach.
var ErrNotPermitted = errors.New("not permitted")

// MaxOutput is how much of a tool's output is kept: the end, where the
// errors are.
const MaxOutput = 64 << 10

// waitDelay bounds how long Run waits for the output pipe after the tool
// exited. A server started without -l would inherit it and keep it open for
// its whole life; pg_ctl always gets -l here, this is the safety net.
const waitDelay = 5 * time.Second

// User is an OS account tools run as.
type User struct {
	Name   string
	UID    uint32
	GID    uint32
	Groups []uint32
	Home   string
}

// LookupUser resolves an account by name, with its supplementary groups.
func LookupUser(name string) (*User, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("%w: OS user %q: %v", ErrInvalid, name, err)
	}
	return fromOSUser(u)
}

func fromOSUser(u *user.User) (*User, error) {
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("%w: OS user %q has uid %q", ErrInvalid, u.Username, u.Uid)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("%w: OS user %q has gid %q", ErrInvalid, u.Username, u.Gid)
	}
	out := &User{Name: u.Username, UID: uint32(uid), GID: uint32(gid), Home: u.HomeDir}
	gids, err := u.GroupIds()
	if err != nil {
		return nil, fmt.Errorf("groups of OS user %q: %w", u.Username, err)
	}
	for _, g := range gids {
		if n, err := strconv.ParseUint(g, 10, 32); err == nil {
			out.Groups = append(out.Groups, uint32(n))
		}
	}
	return out, nil
}

// Runner runs the tools of one PostgreSQL installation as one OS user.
type Runner struct {
	home string
	user *User
	// setCred: the agent is root and switches to user for every tool.
	setCred bool
}

// New checks pghome and userName and returns a Runner for them. When the
// process runs as root, userName is required and must not be root; when it
// does not, userName must be empty or the process's own user, because only
// root can switch users.
func New(pghome, userName string) (*Runner, error) {
	if err := checkHome(pghome); err != nil {
		return nil, err
	}
	cur, err := user.Current()
	if err != nil {
		return nil, fmt.Errorf("current user: %w", err)
	}
	switchUser, err := decideUser(os.Geteuid(), cur.Username, userName)
	if err != nil {
		return nil, err
	}
	name := userName
	if name == "" {
		name = cur.Username
	}
	u, err := LookupUser(name)
	if err != nil {
		return nil, err
	}
	if u.UID == 0 {
		return nil, fmt.Errorf("%w: refusing to run PostgreSQL tools as %s (uid 0)", ErrInvalid, u.Name)
	}
	return &Runner{home: pghome, user: u, setCred: switchUser}, nil
}

// decideUser says whether tools must switch to the requested user, or why
// they cannot run as it.
func decideUser(euid int, current, requested string) (switchUser bool, err error) {
	if euid == 0 {
		if requested == "" {
			return false, fmt.Errorf("%w: the node's OS user is required (PostgreSQL does not run as root)", ErrInvalid)
		}
		return true, nil
	}
	if requested != "" && requested != current {
		return false, fmt.Errorf("%w: the agent runs as %s and cannot run tools as %s (start it as root or as %s)",
			ErrNotPermitted, current, requested, requested)
	}
	return false, nil
}

func checkHome(pghome string) error {
	switch {
	case pghome == "":
		return fmt.Errorf("%w: pghome is empty", ErrInvalid)
	case strings.IndexByte(pghome, 0) >= 0, len(pghome) >= 1000:
		return fmt.Errorf("%w: pghome %q", ErrInvalid, pghome)
	case !filepath.IsAbs(pghome) || filepath.Clean(pghome) != pghome || pghome == "/":
		return fmt.Errorf("%w: pghome %q must be an absolute, clean path", ErrInvalid, pghome)
	}
	fi, err := os.Stat(filepath.Join(pghome, "bin"))
	if err != nil || !fi.IsDir() {
		return fmt.Errorf("%w: pghome %q has no bin directory", ErrInvalid, pghome)
	}
	return nil
}

// User is the account tools run as.
func (r *Runner) User() *User { return r.user }

// PGHome is the PostgreSQL installation.
func (r *Runner) PGHome() string { return r.home }

// Owner is the uid and gid files the agent creates for the node must get:
// the node's user when the agent runs as root, -1 (no chown) otherwise.
func (r *Runner) Owner() (uid, gid int) {
	if !r.setCred {
		return -1, -1
	}
	return int(r.user.UID), int(r.user.GID)
}

// Result is what a tool did.
type Result struct {
	// Output is the tail of stdout and stderr interleaved, trimmed.
	Output string
	// ExitCode is the exit status; -1 when the tool was killed.
	ExitCode int
}

// ToolError is a tool that ran and failed (non-zero exit, or killed when the
// context ended).
type ToolError struct {
	Tool     string
	ExitCode int
	Output   string
	// Err is the context's error when the deadline or a cancel killed the
	// tool, otherwise the *exec.ExitError.
	Err error
}

func (e *ToolError) Error() string {
	what := fmt.Sprintf("exit status %d", e.ExitCode)
	if errors.Is(e.Err, context.DeadlineExceeded) || errors.Is(e.Err, context.Canceled) {
		what = "killed: " + e.Err.Error()
	}
	msg := e.Tool + " failed (" + what + ")"
	if tail := e.LastLines(8); tail != "" {
		msg += ": " + tail
	}
	return msg
}

func (e *ToolError) Unwrap() error { return e.Err }

// LastLines returns the last n non-empty lines of the output, joined by
// newlines: what an operator needs to see in an error message.
func (e *ToolError) LastLines(n int) string {
	return lastLines(e.Output, n)
}

func lastLines(s string, n int) string {
	var out []string
	lines := strings.Split(s, "\n")
	for i := len(lines) - 1; i >= 0 && len(out) < n; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" {
			out = append(out, l)
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return strings.Join(out, "\n")
}

// Path is the absolute path of a tool of this installation.
func (r *Runner) Path(tool string) string { return filepath.Join(r.home, "bin", tool) }

// Run runs tool with args and waits for it. A non-zero exit is a
// *ToolError; the Result is returned either way, so callers that read exit
// codes (pg_ctl status, pg_isready) can.
func (r *Runner) Run(ctx context.Context, tool string, args ...string) (Result, error) {
	return r.RunLines(ctx, tool, nil, args...)
}

// RunLines is Run, calling onLine (when not nil) for every line of output as
// it arrives; "\r" ends a line too, as progress reports use it on terminals.
func (r *Runner) RunLines(ctx context.Context, tool string, onLine func(string), args ...string) (Result, error) {
	return r.run(ctx, tool, onLine, MaxOutput, args)
}

func (r *Runner) run(ctx context.Context, tool string, onLine func(string), maxOutput int, args []string) (Result, error) {
	if tool == "" || strings.ContainsAny(tool, "/\x00") {
		return Result{}, fmt.Errorf("%w: tool name %q", ErrInvalid, tool)
	}
	path := r.Path(tool)
	fi, err := os.Stat(path)
	if err != nil || !fi.Mode().IsRegular() {
		return Result{}, fmt.Errorf("%w: %s is not an installed program", ErrInvalid, path)
	}
	if err := r.trusted(path); err != nil {
		return Result{}, err
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = r.env()
	// The working directory must be one the user can read: tools that
	// resolve their own location or a relative path fail with "could not
	// identify current directory" in, say, /root. "/" always qualifies.
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if r.setCred {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: r.user.UID, Gid: r.user.GID, Groups: r.user.Groups}
	}
	w := newTailWriter(maxOutput, onLine)
	cmd.Stdout, cmd.Stderr = w, w
	// The tool leads its own session, so its process group is its pid: kill
	// the group, taking initdb's postgres --boot child and pg_basebackup's
	// WAL streamer along. A postmaster started by pg_ctl is in a session of
	// its own and survives, as it should.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = waitDelay
	err = cmd.Run()
	w.close()
	res := Result{Output: w.String(), ExitCode: -1}
	if cmd.ProcessState != nil {
		res.ExitCode = cmd.ProcessState.ExitCode()
	}
	if err == nil || errors.Is(err, exec.ErrWaitDelay) && res.ExitCode == 0 {
		return res, nil
	}
	if cmd.ProcessState == nil {
		return res, fmt.Errorf("run %s as %s: %w", path, r.user.Name, err)
	}
	te := &ToolError{Tool: tool, ExitCode: res.ExitCode, Output: res.Output, Err: err}
	if ctx.Err() != nil {
		te.Err = ctx.Err()
	}
	return res, te
}

// trusted refuses to run path unless root and the node's user alone
// control it and every directory above it (fstrust): otherwise whoever can
// write there runs code as the node's user, a database superuser, and the
// agent, root, would be the one starting it. initdb, pg_ctl and pg_rewind
// run the installation's postgres in turn, so it is checked too. Checked
// before every run, not once: pghome may change under a running agent.
func (r *Runner) trusted(path string) error {
	progs := []string{path}
	if pg := r.Path("postgres"); pg != path {
		if _, err := os.Lstat(pg); err == nil {
			progs = append(progs, pg)
		}
	}
	for _, p := range progs {
		if err := fstrust.Executable(p, r.user.UID); err != nil {
			return fmt.Errorf("%w: refusing to run %s: %v", ErrNotPermitted, p, err)
		}
	}
	return nil
}

func (r *Runner) env() []string {
	env := []string{
		"PATH=" + filepath.Join(r.home, "bin") + ":/usr/local/bin:/usr/bin:/bin",
		"HOME=" + r.user.Home,
		"USER=" + r.user.Name,
		"LOGNAME=" + r.user.Name,
		"LC_ALL=C",
		"LANG=C",
	}
	// initdb writes the host's time zone into postgresql.conf; keep an
	// explicit TZ the agent was started with.
	if tz, ok := os.LookupEnv("TZ"); ok {
		env = append(env, "TZ="+tz)
	}
	return env
}

// tailWriter keeps the last max bytes written and hands complete lines to
// onLine.
type tailWriter struct {
	mu        sync.Mutex
	max       int
	buf       []byte
	truncated bool
	onLine    func(string)
	line      []byte
}

// maxLine bounds a partial line kept for onLine.
const maxLine = 4096

func newTailWriter(max int, onLine func(string)) *tailWriter {
	return &tailWriter{max: max, onLine: onLine}
}

func (w *tailWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	if over := len(w.buf) - w.max; over > 0 {
		w.buf = append(w.buf[:0], w.buf[over:]...)
		w.truncated = true
	}
	if w.onLine != nil {
		for _, c := range p {
			if c == '\n' || c == '\r' {
				w.emit()
				continue
			}
			if len(w.line) < maxLine {
				w.line = append(w.line, c)
			}
		}
	}
	return len(p), nil
}

func (w *tailWriter) emit() {
	if len(w.line) > 0 {
		w.onLine(string(w.line))
		w.line = w.line[:0]
	}
}

func (w *tailWriter) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.onLine != nil {
		w.emit()
	}
}

func (w *tailWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	b := w.buf
	if w.truncated {
		// Start at a line boundary, and say that the start is missing.
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
		return "[output truncated]\n" + strings.TrimSpace(string(b))
	}
	return strings.TrimSpace(string(b))
}
