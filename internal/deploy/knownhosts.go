package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// KnownHosts is the manager's record of its hosts' SSH host keys, one
// OpenSSH known_hosts line per address:port, in a file of its own (0600).
// Trust on first use, as ssh with StrictHostKeyChecking=accept-new: the
// first key an address presents is recorded; a different one later is
// refused until a DBA removes the line (the host was reinstalled, or
// someone is in the middle).
type KnownHosts struct {
	path string
	mu   sync.Mutex
}

// NewKnownHosts uses file, which need not exist yet.
func NewKnownHosts(file string) *KnownHosts { return &KnownHosts{path: file} }

// Path is the file's name, for hints.
func (k *KnownHosts) Path() string { return k.path }

// HostKeyChangedError is a host key that differs from the recorded one.
type HostKeyChangedError struct {
	Host      string // the manager's name for the host
	Addr      string // address:port as recorded
	Want, Got string // SHA256 fingerprints: recorded, presented
	File      string
}

func (e *HostKeyChangedError) Error() string {
	return fmt.Sprintf("the SSH host key of host %q (%s) has changed: %s was recorded, the host presents %s", e.Host, e.Addr, e.Want, e.Got)
}

// lookup returns the key recorded for addr, or nil.
func (k *KnownHosts) lookup(addr string) (ssh.PublicKey, error) {
	b, err := os.ReadFile(k.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	norm := knownhosts.Normalize(addr)
	for _, line := range bytes.Split(b, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		marker, hosts, key, _, _, err := ssh.ParseKnownHosts(line)
		if err != nil || marker != "" {
			continue
		}
		for _, h := range hosts {
			if h == norm {
				return key, nil
			}
		}
	}
	return nil, nil
}

// Algorithms returns the host key algorithms to ask addr for: those of the
// recorded key, so that a host offering several keys shows the one we
// know; nil (the library's defaults) on first contact.
func (k *KnownHosts) Algorithms(addr string) []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	key, err := k.lookup(addr)
	if err != nil || key == nil {
		return nil
	}
	switch key.Type() {
	case ssh.KeyAlgoRSA:
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	default:
		return []string{key.Type()}
	}
}

// Callback checks the key host presents at the address dialled, recording
// it on first contact.
func (k *KnownHosts) Callback(host string) ssh.HostKeyCallback {
	return func(_ string, remote net.Addr, key ssh.PublicKey) error {
		return k.check(host, remote.String(), key)
	}
}

func (k *KnownHosts) check(host, addr string, key ssh.PublicKey) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	known, err := k.lookup(addr)
	if err != nil {
		return fmt.Errorf("read %s: %w", k.path, err)
	}
	if known != nil {
		if bytes.Equal(known.Marshal(), key.Marshal()) {
			return nil
		}
		return &HostKeyChangedError{Host: host, Addr: knownhosts.Normalize(addr), Want: ssh.FingerprintSHA256(known), Got: ssh.FingerprintSHA256(key), File: k.path}
	}
	f, err := os.OpenFile(k.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	line := knownhosts.Line([]string{knownhosts.Normalize(addr)}, key)
	if _, err := f.WriteString(line + "\n"); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
