package deploy

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

func newKey(t *testing.T) ssh.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func tcp(s string) net.Addr {
	a, err := net.ResolveTCPAddr("tcp", s)
	if err != nil {
		panic(err)
	}
	return a
}

// TestKnownHosts: first contact records, the same key passes, another key
// at the same address is refused with both fingerprints, other addresses
// and ports are separate, and the file is private and OpenSSH's format.
func TestKnownHosts(t *testing.T) {
	file := filepath.Join(t.TempDir(), KnownHostsFile)
	kh := NewKnownHosts(file)
	k1, k2, k3 := newKey(t), newKey(t), newKey(t)
	if a := kh.Algorithms("198.18.0.11:22"); a != nil {
		t.Errorf("algorithms before first contact: %v", a)
	}
	if err := kh.Callback("th1")("198.18.0.11:22", tcp("198.18.0.11:22"), k1); err != nil {
		t.Fatalf("first contact: %v", err)
	}
	if err := kh.Callback("th1")("x", tcp("198.18.0.11:22"), k1); err != nil {
		t.Errorf("same key: %v", err)
	}
	if a := kh.Algorithms("198.18.0.11:22"); len(a) != 1 || a[0] != ssh.KeyAlgoED25519 {
		t.Errorf("algorithms: %v", a)
	}
	err := kh.Callback("th1")("x", tcp("198.18.0.11:22"), k2)
	var ce *HostKeyChangedError
	if !errors.As(err, &ce) {
		t.Fatalf("changed key: %v", err)
	}
	msg := err.Error()
	for _, want := range []string{`"th1"`, "198.18.0.11", ssh.FingerprintSHA256(k1), ssh.FingerprintSHA256(k2)} {
		if !strings.Contains(msg, want) {
			t.Errorf("refusal %q does not name %s", msg, want)
		}
	}
	// Another port and another address are other hosts.
	if err := kh.Callback("th1b")("x", tcp("198.18.0.11:2222"), k3); err != nil {
		t.Errorf("other port: %v", err)
	}
	if err := kh.Callback("th2")("x", tcp("[2001:db8::1]:22"), k2); err != nil {
		t.Errorf("other address: %v", err)
	}
	// A new KnownHosts on the file (a manager restart) remembers.
	if err := NewKnownHosts(file).Callback("th1")("x", tcp("198.18.0.11:22"), k3); !errors.As(err, &ce) {
		t.Errorf("after reload: %v", err)
	}
	fi, err := os.Stat(file)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("known_hosts: %v %v", fi.Mode(), err)
	}
	b, _ := os.ReadFile(file)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "198.18.0.11 ssh-ed25519 ") || !strings.HasPrefix(lines[1], "[198.18.0.11]:2222 ") || !strings.HasPrefix(lines[2], "2001:db8::1 ") {
		t.Errorf("known_hosts:\n%s", b)
	}
}

func TestEnsureKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ssh")
	made, err := EnsureKey(dir)
	if err != nil || !made {
		t.Fatalf("EnsureKey: %v %v", made, err)
	}
	for f, mode := range map[string]os.FileMode{"": 0o700 | os.ModeDir, KeyFile: 0o600, PublicKeyFile: 0o600} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil || fi.Mode() != mode {
			t.Errorf("%s: %v %v", f, fi.Mode(), err)
		}
	}
	signer, line, err := LoadKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if signer.PublicKey().Type() != ssh.KeyAlgoED25519 {
		t.Errorf("key type %s", signer.PublicKey().Type())
	}
	pub, _ := os.ReadFile(filepath.Join(dir, PublicKeyFile))
	if strings.TrimSpace(string(pub)) != line {
		t.Errorf("public key file %q, line %q", pub, line)
	}
	if made, err := EnsureKey(dir); err != nil || made {
		t.Errorf("second EnsureKey: %v %v", made, err)
	}
	if _, again, _ := LoadKey(dir); again != line {
		t.Error("the key changed")
	}
	// authorized_keys content: found among others, not confused by junk.
	other := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(newKey(t))))
	if !hasKey([]byte("# c\n"+other+" x\n\ngarbage\n"+line+"\n"), signer.PublicKey()) {
		t.Error("hasKey misses the key")
	}
	if hasKey([]byte(other+"\n"), signer.PublicKey()) || hasKey(nil, signer.PublicKey()) {
		t.Error("hasKey finds a key that is not there")
	}
}
