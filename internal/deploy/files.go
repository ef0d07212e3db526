package deploy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// Upload writes data to a new temporary file beside dst, mode mode (set
// before the first byte, so a key is never readable by others), and returns
// its name; Install renames it over dst. Until then dst is untouched: a
// failed or interrupted upload never leaves a half file where a program
// or the agent would read it.
func Upload(sc *sftp.Client, dst string, data []byte, mode os.FileMode) (tmp string, err error) {
	if err := CheckPath(dst); err != nil {
		return "", err
	}
	var rnd [8]byte
	rand.Read(rnd[:])
	tmp = path.Join(path.Dir(dst), "."+path.Base(dst)+".tmp-"+hex.EncodeToString(rnd[:]))
	f, err := sc.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		return "", fmt.Errorf("create %s: %w", tmp, err)
	}
	defer func() {
		if err != nil {
			sc.Remove(tmp)
		}
	}()
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return "", fmt.Errorf("chmod %s: %w", tmp, err)
	}
	// One Write of the whole: pkg/sftp sends slices of data, where
	// ReadFrom would copy every 32 KiB into a new buffer first.
	if _, err := f.Write(data); err != nil {
		f.Close()
		return "", fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("write %s: %w", tmp, err)
	}
	return tmp, nil
}

// Install moves an uploaded temporary file over dst (rename(2), atomic).
func Install(sc *sftp.Client, tmp, dst string) error {
	if err := sc.PosixRename(tmp, dst); err != nil {
		sc.Remove(tmp)
		return fmt.Errorf("rename %s to %s: %w", tmp, dst, err)
	}
	return nil
}

// PutFile writes data to dst atomically with mode.
func PutFile(sc *sftp.Client, dst string, data []byte, mode os.FileMode) error {
	tmp, err := Upload(sc, dst, data, mode)
	if err != nil {
		return err
	}
	return Install(sc, tmp, dst)
}

// MkdirAll makes dir and its parents, and gives dir mode.
func MkdirAll(sc *sftp.Client, dir string, mode os.FileMode) error {
	if err := CheckPath(dir); err != nil {
		return err
	}
	if err := sc.MkdirAll(dir); err != nil {
		return fmt.Errorf("mkdir %s: %w", dir, err)
	}
	if err := sc.Chmod(dir, mode); err != nil {
		return fmt.Errorf("chmod %s: %w", dir, err)
	}
	return nil
}

// ErrNoFile is SHA256's answer for a file that is not there.
var ErrNoFile = errors.New("no such file")

// SHA256 hashes a remote file on its host, so that checking a deployed
// agent costs a command, not a download: with openssl when the host has it
// (its SHA-256 uses the CPU's SHA instructions: 18 MB in 12 ms, where
// coreutils' portable sha256sum takes 55 ms), else with sha256sum. Both
// print the hex digest first; an openssl that fails (a FIPS policy, a
// broken configuration) leaves it to sha256sum.
func (c *Client) SHA256(ctx context.Context, file string) ([]byte, error) {
	if err := CheckPath(file); err != nil {
		return nil, err
	}
	q := Quote(file)
	out, err := c.Run(ctx, "if [ ! -f "+q+" ]; then echo missing; "+
		"elif command -v openssl >/dev/null 2>&1 && openssl dgst -sha256 -r -- "+q+" 2>/dev/null; then :; "+
		"else sha256sum -b -- "+q+"; fi", 0)
	if err != nil {
		return nil, fmt.Errorf("sha256sum %s on host %q: %w", file, c.Target.Host, err)
	}
	if strings.TrimSpace(out) == "missing" {
		return nil, fmt.Errorf("%s on host %q: %w", file, c.Target.Host, ErrNoFile)
	}
	f := strings.Fields(out)
	if len(f) == 0 {
		return nil, fmt.Errorf("sha256sum %s on host %q printed nothing", file, c.Target.Host)
	}
	sum, err := hex.DecodeString(strings.TrimPrefix(f[0], `\`))
	if err != nil || len(sum) != 32 {
		return nil, fmt.Errorf("sha256sum %s on host %q printed %q", file, c.Target.Host, f[0])
	}
	return sum, nil
}

// AuthorizeKey adds the manager's key (line, as LoadKey returns it) to the
// login user's ~/.ssh/authorized_keys unless it is there: ~/.ssh is made
// 0700 and the file 0600, as sshd's StrictModes wants. It reports whether
// it added the line.
func AuthorizeKey(sc *sftp.Client, line string) (bool, error) {
	key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		return false, err
	}
	home, err := sc.Getwd() // an SFTP session starts in the user's home
	if err != nil {
		return false, fmt.Errorf("home directory: %w", err)
	}
	dir := path.Join(home, ".ssh")
	if _, err := sc.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := sc.Mkdir(dir); err != nil {
			return false, fmt.Errorf("mkdir %s: %w", dir, err)
		}
	} else if err != nil {
		return false, fmt.Errorf("stat %s: %w", dir, err)
	}
	if err := sc.Chmod(dir, 0o700); err != nil {
		return false, fmt.Errorf("chmod %s: %w", dir, err)
	}
	file := path.Join(dir, "authorized_keys")
	var old []byte
	if f, err := sc.Open(file); err == nil {
		old, err = io.ReadAll(io.LimitReader(f, 4<<20))
		f.Close()
		if err != nil {
			return false, fmt.Errorf("read %s: %w", file, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("open %s: %w", file, err)
	}
	if hasKey(old, key) {
		return false, sc.Chmod(file, 0o600)
	}
	f, err := sc.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE)
	if err != nil {
		return false, fmt.Errorf("open %s: %w", file, err)
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return false, fmt.Errorf("chmod %s: %w", file, err)
	}
	add := line + "\n"
	if len(old) > 0 && old[len(old)-1] != '\n' {
		add = "\n" + add
	}
	if _, err := f.Write([]byte(add)); err != nil {
		f.Close()
		return false, fmt.Errorf("write %s: %w", file, err)
	}
	return true, f.Close()
}
