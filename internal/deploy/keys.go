package deploy

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"
)

// The manager's SSH files, in DIR/ssh (0700).
const (
	KeyFile        = "id_ed25519"     // the manager's private key, 0600
	PublicKeyFile  = "id_ed25519.pub" // its authorized_keys line, 0600 like the rest of DIR
	KnownHostsFile = "known_hosts"    // host keys recorded on first contact, 0600
)

// keyComment names the manager's key in a host's authorized_keys.
const keyComment = "adbmgr"

// EnsureKey makes the manager's ed25519 key in dir unless it is there
// (adbmgr init, and start for data directories made before SSH hosts
// existed). It reports whether it made one.
func EnsureKey(dir string) (bool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return false, err
	}
	if _, err := os.Stat(filepath.Join(dir, KeyFile)); err == nil {
		return false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return false, err
	}
	block, err := ssh.MarshalPrivateKey(priv, keyComment)
	if err != nil {
		return false, err
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return false, err
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub))) + " " + keyComment + "\n"
	// The public half first: a private key without it is re-derived, a
	// public key without its private key is not a key.
	if err := writeFileAtomic(filepath.Join(dir, PublicKeyFile), []byte(line), 0o600); err != nil {
		return false, err
	}
	if err := writeFileAtomic(filepath.Join(dir, KeyFile), pem.EncodeToMemory(block), 0o600); err != nil {
		return false, err
	}
	return true, nil
}

// LoadKey reads the manager's private key and returns it with its
// authorized_keys line.
func LoadKey(dir string) (ssh.Signer, string, error) {
	b, err := os.ReadFile(filepath.Join(dir, KeyFile))
	if err != nil {
		return nil, "", fmt.Errorf("the manager's SSH key: %w", err)
	}
	s, err := ssh.ParsePrivateKey(b)
	if err != nil {
		return nil, "", fmt.Errorf("the manager's SSH key %s: %w", filepath.Join(dir, KeyFile), err)
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.PublicKey()))) + " " + keyComment
	return s, line, nil
}

// writeFileAtomic writes a file through a temporary one and a rename.
func writeFileAtomic(name string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), name)
}

// hasKey reports whether an authorized_keys content already holds key.
func hasKey(content []byte, key ssh.PublicKey) bool {
	want := key.Marshal()
	rest := content
	for len(rest) > 0 {
		k, _, _, r, err := ssh.ParseAuthorizedKey(rest)
		if err != nil {
			return false
		}
		if bytes.Equal(k.Marshal(), want) {
			return true
		}
		rest = r
	}
	return false
}
