package pgctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// LogFile is where pg_ctl start sends a node's server log, as AntDB does:
// <datadir>/logfile.
const LogFile = "logfile"

var (
	reEncoding = regexp.MustCompile(`^[A-Za-z0-9_]{1,32}$`)
	reLocale   = regexp.MustCompile(`^[A-Za-z0-9_.@-]{1,64}$`)
	// Replication slot names: lower-case letters, digits and underscore,
	// at most NAMEDATALEN-1 bytes (PostgreSQL's ReplicationSlotValidateName).
	reSlot = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)
)

// InitDBOptions are initdb's choices the manager makes.
type InitDBOptions struct {
	Encoding      string // default UTF8
	Locale        string // default C
	DataChecksums bool
	WALSegSizeMB  int // 0: PostgreSQL's default (16)
	// PWFile is a file the node's user can read whose first line is the
	// bootstrap superuser's password (initdb --pwfile); "" gives the
	// superuser no password.
	PWFile string
}

// InitDB creates a cluster in path, which must be empty or absent (initdb
// checks too). The bootstrap superuser is the node's OS user, as AntDB's
// initdb without -U gives, so that the manager and the tools connect as
// that user. Nothing is trusted: initdb's own lines (local, and
// 127.0.0.1/::1 for all and for replication, which come first in the file)
// say peer for Unix sockets — only the OS user of the same name gets in,
// the node's user as its superuser — and scram-sha-256 for TCP, so another
// account on the host cannot become the superuser (COPY … TO PROGRAM would
// run as the node's user). The manager adds its own lines afterwards.
func (r *Runner) InitDB(ctx context.Context, path string, o InitDBOptions) (Result, error) {
	enc, loc := o.Encoding, o.Locale
	if enc == "" {
		enc = "UTF8"
	}
	if loc == "" {
		loc = "C"
	}
	if !reEncoding.MatchString(enc) {
		return Result{}, fmt.Errorf("%w: encoding %q", ErrInvalid, enc)
	}
	if !reLocale.MatchString(loc) {
		return Result{}, fmt.Errorf("%w: locale %q", ErrInvalid, loc)
	}
	args := []string{"-D", path, "-E", enc, "--locale=" + loc, "-U", r.user.Name,
		"--auth-local=peer", "--auth-host=scram-sha-256", "--no-instructions"}
	if o.PWFile != "" {
		if !filepath.IsAbs(o.PWFile) || strings.IndexByte(o.PWFile, 0) >= 0 {
			return Result{}, fmt.Errorf("%w: password file %q", ErrInvalid, o.PWFile)
		}
		args = append(args, "--pwfile="+o.PWFile)
	}
	if o.DataChecksums {
		args = append(args, "-k")
	}
	if n := o.WALSegSizeMB; n != 0 {
		if n < 1 || n > 1024 || n&(n-1) != 0 {
			return Result{}, fmt.Errorf("%w: the WAL segment size must be a power of 2 between 1 and 1024 MB, not %d", ErrInvalid, n)
		}
		args = append(args, "--wal-segsize="+strconv.Itoa(n))
	}
	return r.Run(ctx, "initdb", args...)
}

// Source is a server another node copies from or follows.
type Source struct {
	Host            string
	Port            int
	User            string
	ApplicationName string
	DBName          string
	// PassFile is a libpq password file (passfile=): the password never
	// appears in the connection string, so neither in the process list nor
	// in the primary_conninfo -R writes.
	PassFile string
	// SSLRootCert, when set, makes the connection require TLS with a
	// server certificate signed by that CA for the host's address
	// (sslmode=verify-full): a node proves it is the node the catalog
	// names before it gets the password or the WAL.
	SSLRootCert string
}

// Validate checks the fields a connection string cannot make safe by
// quoting.
func (s Source) Validate() error {
	if s.Host == "" || len(s.Host) > 255 {
		return fmt.Errorf("%w: source host %q", ErrInvalid, s.Host)
	}
	if s.Port < 1 || s.Port > 65535 {
		return fmt.Errorf("%w: source port %d", ErrInvalid, s.Port)
	}
	for _, v := range []string{s.Host, s.User, s.ApplicationName, s.DBName, s.PassFile, s.SSLRootCert} {
		if strings.IndexByte(v, 0) >= 0 {
			return fmt.Errorf("%w: NUL byte in a connection parameter", ErrInvalid)
		}
	}
	if len(s.User) > 63 || len(s.ApplicationName) > 63 || len(s.DBName) > 63 {
		return fmt.Errorf("%w: connection names are at most 63 bytes", ErrInvalid)
	}
	return nil
}

// ConnInfo renders s as a libpq keyword/value connection string, each value
// quoted (libpq reads '…' with \' and \\ as escapes), so a value with spaces,
// quotes or "=" stays one value and cannot add a keyword.
func (s Source) ConnInfo() string {
	parts := []string{"host=" + QuoteConnValue(s.Host), "port=" + QuoteConnValue(strconv.Itoa(s.Port))}
	if s.User != "" {
		parts = append(parts, "user="+QuoteConnValue(s.User))
	}
	if s.DBName != "" {
		parts = append(parts, "dbname="+QuoteConnValue(s.DBName))
	}
	if s.ApplicationName != "" {
		parts = append(parts, "application_name="+QuoteConnValue(s.ApplicationName))
	}
	if s.PassFile != "" {
		parts = append(parts, "passfile="+QuoteConnValue(s.PassFile))
	}
	if s.SSLRootCert != "" {
		parts = append(parts, "sslmode='verify-full'", "sslrootcert="+QuoteConnValue(s.SSLRootCert))
	}
	return strings.Join(parts, " ")
}

// QuoteConnValue quotes a libpq connection-string value.
func QuoteConnValue(v string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`)
	return "'" + r.Replace(v) + "'"
}

// ValidSlot reports whether name is a valid replication slot name.
func ValidSlot(name string) error {
	if !reSlot.MatchString(name) {
		return fmt.Errorf("%w: replication slot name %q (lower-case letters, digits and _, at most 63)", ErrInvalid, name)
	}
	return nil
}

var reProgress = regexp.MustCompile(`(\d+)/(\d+) kB \((\d+)%\)`)

// ParseProgress reads one pg_basebackup -P line ("  12345/67890 kB (18%), 0/1
// tablespace"). The total is the server's estimate and may be exceeded.
func ParseProgress(line string) (doneKB, totalKB int64, ok bool) {
	m := reProgress.FindStringSubmatch(line)
	if m == nil {
		return 0, 0, false
	}
	d, err1 := strconv.ParseInt(m[1], 10, 64)
	t, err2 := strconv.ParseInt(m[2], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return d, t, true
}

// BaseBackup copies src into path (empty or absent) with pg_basebackup:
// streaming the WAL it needs (-X stream), starting with an immediate
// checkpoint (-c fast) rather than waiting for the next one, and writing
// standby.signal and primary_conninfo (-R; the conninfo carries
// application_name, which synchronous_standby_names matches). progress, when
// not nil, is called for every progress report.
//
// pg_basebackup cleans up after its own errors, but not when it is killed;
// callers empty the directory after any failure.
func (r *Runner) BaseBackup(ctx context.Context, path string, src Source, slot string, progress func(doneKB, totalKB int64)) (Result, error) {
	if err := src.Validate(); err != nil {
		return Result{}, err
	}
	args := []string{"-D", path, "-d", src.ConnInfo(), "-X", "stream", "-c", "fast", "-R", "-P", "-w"}
	if slot != "" {
		if err := ValidSlot(slot); err != nil {
			return Result{}, err
		}
		args = append(args, "-S", slot)
	}
	var onLine func(string)
	if progress != nil {
		onLine = func(line string) {
			if d, t, ok := ParseProgress(line); ok {
				progress(d, t)
			}
		}
	}
	return r.RunLines(ctx, "pg_basebackup", onLine, args...)
}

// Rewind runs pg_rewind on the stopped node in path against the running
// src. writeRecovery adds -R: standby.signal, and primary_conninfo built
// from src (so include ApplicationName).
func (r *Runner) Rewind(ctx context.Context, path string, src Source, writeRecovery bool) (Result, error) {
	if err := src.Validate(); err != nil {
		return Result{}, err
	}
	if src.DBName == "" {
		src.DBName = "postgres"
	}
	args := []string{"-D", path, "--source-server=" + src.ConnInfo()}
	if writeRecovery {
		args = append(args, "-R")
	}
	return r.Run(ctx, "pg_rewind", args...)
}

// Running asks pg_ctl status whether the node in path runs: exit 0 yes,
// 3 no; 4 means path is not a usable data directory.
func (r *Runner) Running(ctx context.Context, path string) (bool, error) {
	res, err := r.Run(ctx, "pg_ctl", "status", "-D", path)
	switch res.ExitCode {
	case 0:
		// pg_ctl status trusts kill(pid, 0), which a killed postmaster
		// that its parent has not reaped yet (a zombie) still passes.
		// Such a node is down (Start and Restart clear its lock file).
		if pid, alive, perr := PostmasterPID(path); perr == nil && pid != 0 && !alive {
			return false, nil
		}
		return true, nil
	case 3:
		return false, nil
	}
	if err == nil {
		err = fmt.Errorf("pg_ctl status: exit status %d", res.ExitCode)
	}
	return false, err
}

// Shutdown modes of pg_ctl stop.
const (
	Smart     = "smart"
	Fast      = "fast"
	Immediate = "immediate"
)

func waitArgs(wait time.Duration) []string {
	s := int(wait / time.Second)
	if s < 1 {
		s = 1
	}
	return []string{"-w", "-t", strconv.Itoa(s)}
}

// Start starts the node in path and waits up to wait until it accepts
// connections (a hot standby once it is consistent). The server log goes to
// <path>/logfile, whose last lines are added to the error when the start
// fails: pg_ctl itself only says "could not start server".
func (r *Runner) Start(ctx context.Context, path string, wait time.Duration) (Result, error) {
	if err := clearZombieLock(path); err != nil {
		return Result{}, err
	}
	args := append([]string{"start", "-D", path, "-l", filepath.Join(path, LogFile)}, waitArgs(wait)...)
	res, err := r.Run(ctx, "pg_ctl", args...)
	return res, withLog(err, path)
}

// Stop stops the node in path with the given mode, waiting up to wait.
func (r *Runner) Stop(ctx context.Context, path, mode string, wait time.Duration) (Result, error) {
	if err := checkMode(mode); err != nil {
		return Result{}, err
	}
	args := append([]string{"stop", "-D", path, "-m", mode}, waitArgs(wait)...)
	return r.Run(ctx, "pg_ctl", args...)
}

// Restart stops (with mode) and starts the node in path.
func (r *Runner) Restart(ctx context.Context, path, mode string, wait time.Duration) (Result, error) {
	if err := checkMode(mode); err != nil {
		return Result{}, err
	}
	if err := clearZombieLock(path); err != nil {
		return Result{}, err
	}
	args := append([]string{"restart", "-D", path, "-m", mode, "-l", filepath.Join(path, LogFile)}, waitArgs(wait)...)
	res, err := r.Run(ctx, "pg_ctl", args...)
	return res, withLog(err, path)
}

// Reload makes the node re-read its configuration files.
func (r *Runner) Reload(ctx context.Context, path string) (Result, error) {
	return r.Run(ctx, "pg_ctl", "reload", "-D", path)
}

// Promote ends recovery of a standby, waiting up to wait until it accepts
// writes.
func (r *Runner) Promote(ctx context.Context, path string, wait time.Duration) (Result, error) {
	args := append([]string{"promote", "-D", path}, waitArgs(wait)...)
	return r.Run(ctx, "pg_ctl", args...)
}

func checkMode(mode string) error {
	switch mode {
	case Smart, Fast, Immediate:
		return nil
	}
	return fmt.Errorf("%w: shutdown mode %q", ErrInvalid, mode)
}

// withLog appends the end of the server log to a failed start's error.
func withLog(err error, path string) error {
	var te *ToolError
	if !errors.As(err, &te) {
		return err
	}
	if tail := tailFile(filepath.Join(path, LogFile), 4096); tail != "" {
		te.Output += "\n" + LogFile + ":\n" + lastLines(tail, 6)
	}
	return err
}

// tailFile returns up to the last n bytes of a regular file, "" on any
// error (it only decorates an error message).
func tailFile(path string, n int64) string {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return ""
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return ""
	}
	if fi.Size() > n {
		if _, err := f.Seek(-n, io.SeekEnd); err != nil {
			return ""
		}
	}
	b, _ := io.ReadAll(io.LimitReader(f, n))
	return string(b)
}

// ControlData returns pg_controldata's fields for the node in path.
func (r *Runner) ControlData(ctx context.Context, path string) (map[string]string, error) {
	res, err := r.Run(ctx, "pg_controldata", "-D", path)
	if err != nil {
		return nil, err
	}
	return ParseControlData(res.Output), nil
}

// ParseControlData splits pg_controldata's "Key:   value" lines; the key is
// what precedes the first colon (values such as times contain colons).
func ParseControlData(out string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		if k = strings.TrimSpace(k); k != "" {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

// Readiness verdicts of pg_isready.
const (
	Accepting  = "accepting"
	Rejecting  = "rejecting"
	NoResponse = "no response"
)

// IsReady asks pg_isready about host (an address or a socket directory) and
// port, waiting at most two seconds: "accepting", "rejecting" (starting up,
// shutting down, or in recovery without hot standby), "no response", or ""
// when pg_isready made no attempt (bad parameters).
func (r *Runner) IsReady(ctx context.Context, host string, port int) (string, error) {
	res, err := r.Run(ctx, "pg_isready", "-h", host, "-p", strconv.Itoa(port), "-t", "2")
	switch res.ExitCode {
	case 0:
		return Accepting, nil
	case 1:
		return Rejecting, nil
	case 2:
		return NoResponse, nil
	case 3:
		return "", nil
	}
	if err == nil {
		err = fmt.Errorf("pg_isready: exit status %d", res.ExitCode)
	}
	return "", err
}

// Parameter is one line of postgres --describe-config.
type Parameter struct {
	Name    string
	Context string // postmaster, sighup, superuser, user, internal, backend, superuser-backend
	Group   string
	VarType string // bool, integer, real, string, enum
	// Default is known for string and enum parameters only: PostgreSQL 15
	// prints the not-yet-initialised reset value for the others (FALSE, 0).
	Default  string
	Min, Max string // integer and real only
	Short    string
	Long     string
}

// DescribeConfig lists the server's parameters without a data directory.
// postgres refuses to run as root, which is one more reason tools run as
// the node's user.
func (r *Runner) DescribeConfig(ctx context.Context) ([]Parameter, error) {
	// About 50 KB for PostgreSQL 15: more than the usual tail is kept.
	res, err := r.run(ctx, "postgres", nil, 4<<20, []string{"--describe-config"})
	if err != nil {
		return nil, err
	}
	return ParseDescribeConfig(res.Output)
}

// ParseDescribeConfig reads postgres --describe-config output: one line per
// parameter, tab-separated name, context, group, type, default, min, max,
// short description, long description (guc.c's printMixedStruct).
func ParseDescribeConfig(out string) ([]Parameter, error) {
	var ps []Parameter
	for _, line := range strings.Split(out, "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		// The long description is often empty, and the output's final
		// tab may have been trimmed with the trailing newline.
		f := strings.Split(line, "\t")
		if len(f) < 8 {
			return nil, fmt.Errorf("postgres --describe-config: unexpected line %q", line)
		}
		f = append(f, "")
		p := Parameter{Name: f[0], Context: f[1], Group: f[2], Short: f[7], Long: f[8]}
		switch f[3] {
		case "BOOLEAN":
			p.VarType = "bool"
		case "INTEGER":
			p.VarType, p.Min, p.Max = "integer", f[5], f[6]
		case "REAL":
			p.VarType, p.Min, p.Max = "real", f[5], f[6]
		case "STRING":
			p.VarType, p.Default = "string", f[4]
		case "ENUM":
			p.VarType, p.Default = "enum", f[4]
		default:
			p.VarType = strings.ToLower(f[3])
		}
		ps = append(ps, p)
	}
	if len(ps) == 0 {
		return nil, errors.New("postgres --describe-config printed no parameters")
	}
	return ps, nil
}

// zombie reports whether pid is a process that has exited and awaits its
// parent's wait().
// clearZombieLock removes the postmaster.pid of path when the postmaster
// it names is dead but not reaped yet (a zombie: its parent, often init,
// may take seconds). PostgreSQL takes a pid that kill(pid, 0) finds for a
// running server, so a new postmaster would refuse to start, and pg_ctl
// stop would wait, until the reaping; PostgreSQL itself removes the lock
// file of a pid that is gone. Backends of the dead postmaster that still
// run keep the node from starting all the same: the new postmaster
// refuses while they hold the data directory's shared memory block.
//
// The lock file of its socket (.s.PGSQL.<port>.lock in the socket
// directory postmaster.pid names) goes first, when it names the same pid.
func clearZombieLock(path string) error {
	file := filepath.Join(path, "postmaster.pid")
	pid, _, err := LockFilePID(file)
	if err != nil || pid == 0 || !zombie(pid) {
		return nil
	}
	files := []string{file}
	// postmaster.pid: pid, data directory, start time, port, socket
	// directory, …
	if b, err := readSmall(file); err == nil {
		if l := strings.Split(string(b), "\n"); len(l) >= 5 && l[3] != "" && filepath.IsAbs(l[4]) {
			sock := filepath.Join(l[4], ".s.PGSQL."+strings.TrimSpace(l[3])+".lock")
			if spid, _, err := LockFilePID(sock); err == nil && spid == pid {
				files = []string{sock, file}
			}
		}
	}
	for _, f := range files {
		if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove the lock file of dead postmaster %d: %w", pid, err)
		}
	}
	return nil
}

func zombie(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(stat), ')')
	return i >= 0 && i+2 < len(stat) && (stat[i+2] == 'Z' || stat[i+2] == 'X')
}
