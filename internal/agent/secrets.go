package agent

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/adbmgr/adbmgr/api/agentpb"
	"github.com/adbmgr/adbmgr/internal/pgconf"
)

// Files of a node's secrets, in its socket directory (NodeSecrets). The
// socket directory is the node's own (MakeSocketDir: the node's user's, not
// writable by others), outside the data directory: pg_basebackup and
// pg_rewind copy everything in a data directory, and a slave on another
// host needs a certificate for its own address, not its master's.
const (
	PassFileName   = "pgpass"
	ServerCertName = "server.crt"
	ServerKeyName  = "server.key"
	RootCertName   = "root.crt"
)

// maxPEM bounds a certificate or key the manager sends.
const maxPEM = 64 << 10

// secretFiles are the paths of a node's secrets that exist after
// writeSecrets ("" when not given).
type secretFiles struct {
	passFile, rootCert string
}

// checkPassword refuses a password libpq's password file could not carry
// as is (':' and '\' are its separator and escape; a newline ends the line)
// and one initdb's --pwfile would cut (it reads one line).
func checkPassword(pw string) error {
	if len(pw) == 0 || len(pw) > 256 {
		return invalidf("the node password must be 1 to 256 bytes")
	}
	for i := 0; i < len(pw); i++ {
		if c := pw[i]; c <= ' ' || c >= 0x7f || c == ':' || c == '\\' {
			return invalidf("the node password must be printable ASCII without spaces, ':' or backslash")
		}
	}
	return nil
}

func checkPEM(what string, b []byte) error {
	if len(b) > maxPEM || !bytes.HasPrefix(bytes.TrimSpace(b), []byte("-----BEGIN ")) {
		return invalidf("%s is not a PEM block of at most %d bytes", what, maxPEM)
	}
	return nil
}

// writeSecrets writes sec into the node's socket directory (created when
// missing, as at start), each file owned by the node's user, mode 0600, by
// atomic replacement: a running walreceiver or a backend opening a
// connection reads either the old file or the new one. Nothing is written
// unless every field is valid. The secrets never reach a log or an error.
func (s *Server) writeSecrets(n *node, ref *agentpb.NodeRef, sec *agentpb.NodeSecrets) (secretFiles, error) {
	var out secretFiles
	if sec == nil {
		return out, nil
	}
	dir := ref.GetSocketDir()
	if dir == "" {
		return out, invalidf("node secrets need the node's socket directory")
	}
	if pw := sec.GetPassword(); pw != "" {
		if err := checkPassword(pw); err != nil {
			return out, err
		}
	}
	for what, b := range map[string][]byte{"server certificate": sec.GetServerCert(), "server key": sec.GetServerKey(), "CA certificate": sec.GetCaCert()} {
		if len(b) > 0 {
			if err := checkPEM(what, b); err != nil {
				return out, err
			}
		}
	}
	if (len(sec.GetServerCert()) > 0) != (len(sec.GetServerKey()) > 0) {
		return out, invalidf("a server certificate needs its key, and a key its certificate")
	}
	if err := s.socketDir(n, dir); err != nil {
		return out, err
	}
	write := func(name string, b []byte) error {
		path := filepath.Join(dir, name)
		// WriteFileAtomic keeps an existing file's mode and owner: make
		// sure that is 0600 and the node's user whatever an earlier
		// version or an operator left.
		if fi, err := os.Lstat(path); err == nil && (!fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600) {
			if err := os.Remove(path); err != nil {
				return err
			}
		} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err := pgconf.WriteFileAtomic(path, b, 0o600, n.owner()); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		return nil
	}
	if pw := sec.GetPassword(); pw != "" {
		// One line for every host, port, database and user: the file is
		// the node's alone and it only ever connects to its peers.
		if err := write(PassFileName, []byte("*:*:*:*:"+pw+"\n")); err != nil {
			return out, err
		}
		out.passFile = filepath.Join(dir, PassFileName)
	}
	if len(sec.GetServerCert()) > 0 {
		// Key first: PostgreSQL reads both at (re)load, and a new
		// certificate with an old key would not load.
		if err := write(ServerKeyName, sec.GetServerKey()); err != nil {
			return out, err
		}
		if err := write(ServerCertName, sec.GetServerCert()); err != nil {
			return out, err
		}
	}
	if len(sec.GetCaCert()) > 0 {
		if err := write(RootCertName, sec.GetCaCert()); err != nil {
			return out, err
		}
		out.rootCert = filepath.Join(dir, RootCertName)
	}
	return out, nil
}

// pwFile writes password into a new file of the socket directory for
// initdb --pwfile, readable by the node's user only; the caller removes it.
func (s *Server) pwFile(n *node, dir, password string) (string, error) {
	f, err := os.CreateTemp(dir, ".initdb-pw-*")
	if err != nil {
		return "", err
	}
	name := f.Name()
	fail := func(err error) (string, error) {
		f.Close()
		os.Remove(name)
		return "", err
	}
	if uid, gid := n.run.Owner(); uid >= 0 {
		if err := f.Chown(uid, gid); err != nil {
			return fail(err)
		}
	}
	if err := f.Chmod(0o600); err != nil {
		return fail(err)
	}
	if _, err := f.WriteString(password + "\n"); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(name)
		return "", err
	}
	return name, nil
}

// removeSecrets deletes the secrets writeSecrets put into a socket
// directory root (CLEAN), leaving anything else.
func removeSecrets(root *os.Root) {
	for _, name := range []string{PassFileName, ServerCertName, ServerKeyName, RootCertName} {
		root.Remove(name)
	}
	// An initdb killed with the agent leaves its password file.
	if d, err := root.Open("."); err == nil {
		names, _ := d.Readdirnames(-1)
		d.Close()
		for _, name := range names {
			if strings.HasPrefix(name, ".initdb-pw-") {
				root.Remove(name)
			}
		}
	}
}
