package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"
)

// Default timeouts: reaching a host and finishing the SSH handshake, and
// one remote command.
const (
	DialTimeout    = 10 * time.Second
	CommandTimeout = 30 * time.Second
)

// Target is a host as SSH sees it.
type Target struct {
	Host    string // the manager's name for it, for messages
	Address string
	Port    int
	User    string // the OS user the agent and PostgreSQL run as there
}

// Addr is address:port.
func (t Target) Addr() string { return net.JoinHostPort(t.Address, strconv.Itoa(t.Port)) }

// Dialer opens SSH connections as the manager.
type Dialer struct {
	Signer  ssh.Signer // the manager's key
	Known   *KnownHosts
	Timeout time.Duration // 0: DialTimeout
}

// ErrorKind says why a connection failed, for the SQLSTATE the manager
// answers with.
type ErrorKind int

const (
	Unreachable ErrorKind = iota // no TCP connection, or no SSH handshake in time
	HostKey                      // the host key changed
	AuthFailed                   // the host refused the key or the password
)

// DialError is a failed connection to a host. Its text never holds a
// password: only the library's list of methods tried.
type DialError struct {
	Kind   ErrorKind
	Target Target
	Err    error
}

func (e *DialError) Error() string {
	switch e.Kind {
	case HostKey:
		return e.Err.Error()
	case AuthFailed:
		return fmt.Sprintf("SSH login as %q on host %q (%s) failed: %v", e.Target.User, e.Target.Host, e.Target.Addr(), e.Err)
	}
	return fmt.Sprintf("cannot reach the sshd of host %q at %s: %v", e.Target.Host, e.Target.Addr(), e.Err)
}

func (e *DialError) Unwrap() error { return e.Err }

// Client is one SSH connection to a host.
type Client struct {
	Target Target
	c      *ssh.Client
}

// Dial connects to t and logs in with the manager's key, or with password
// when it is not empty (DEPLOY … PASSWORD: once, to install the key). The
// password goes to the host's sshd only.
func (d *Dialer) Dial(ctx context.Context, t Target, password string) (*Client, error) {
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = DialTimeout
	}
	auth := []ssh.AuthMethod{ssh.PublicKeys(d.Signer)}
	if password != "" {
		auth = []ssh.AuthMethod{ssh.Password(password)}
	}
	var changed *HostKeyChangedError
	check := d.Known.Callback(t.Host)
	cfg := &ssh.ClientConfig{
		User: t.User,
		Auth: auth,
		HostKeyCallback: func(hostname string, remote net.Addr, key ssh.PublicKey) error {
			err := check(hostname, remote, key)
			errors.As(err, &changed)
			return err
		},
		HostKeyAlgorithms: d.Known.Algorithms(t.Addr()),
		Timeout:           timeout,
		ClientVersion:     "SSH-2.0-adbmgr",
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(dctx, "tcp", t.Addr())
	if err != nil {
		return nil, &DialError{Kind: Unreachable, Target: t, Err: err}
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		conn = quickAckConn{tc}
	}
	// The handshake and login get the same deadline; a host that accepts
	// TCP and never speaks must not hold a DEPLOY.
	deadline, _ := dctx.Deadline()
	conn.SetDeadline(deadline)
	stop := context.AfterFunc(dctx, func() { conn.Close() })
	sc, chans, reqs, err := ssh.NewClientConn(conn, t.Addr(), cfg)
	stopped := stop()
	if err != nil {
		conn.Close()
		switch {
		case changed != nil:
			return nil, &DialError{Kind: HostKey, Target: t, Err: changed}
		case strings.Contains(err.Error(), "unable to authenticate"):
			why := "the host refused the manager's key"
			if password != "" {
				why = "the host refused the password"
			}
			return nil, &DialError{Kind: AuthFailed, Target: t, Err: errors.New(why)}
		case !stopped || dctx.Err() != nil:
			return nil, &DialError{Kind: Unreachable, Target: t, Err: fmt.Errorf("no SSH login within %s", timeout)}
		}
		return nil, &DialError{Kind: Unreachable, Target: t, Err: err}
	}
	conn.SetDeadline(time.Time{})
	cl := &Client{Target: t, c: ssh.NewClient(sc, chans, reqs)}
	go cl.keepalive()
	return cl, nil
}

// keepaliveEvery and keepaliveMisses bound how long a session on a dead
// link lives: without keepalives a write to a host whose link was cut
// waits for TCP to give up (many minutes).
const (
	keepaliveEvery  = 5 * time.Second
	keepaliveMisses = 3
)

// keepalive asks the server for a reply every keepaliveEvery (OpenSSH's
// ServerAliveInterval) and closes the connection after keepaliveMisses
// unanswered requests, so that every call on it fails instead of hanging.
func (c *Client) keepalive() {
	t := time.NewTicker(keepaliveEvery)
	defer t.Stop()
	for range t.C {
		reply := make(chan error, 1)
		go func() {
			_, _, err := c.c.SendRequest("keepalive@openssh.com", true, nil)
			reply <- err
		}()
		select {
		case err := <-reply:
			if err != nil {
				return // closed
			}
		case <-time.After(keepaliveMisses * keepaliveEvery):
			c.c.Close()
			return
		}
	}
}

// Close ends the connection.
func (c *Client) Close() error { return c.c.Close() }

// RemoteError is a remote command that ran and failed.
type RemoteError struct {
	Command string
	Status  int
	Stderr  string
}

func (e *RemoteError) Error() string {
	msg := strings.TrimSpace(e.Stderr)
	if len(msg) > 512 {
		msg = msg[:512] + "…"
	}
	if msg == "" {
		msg = "no output"
	}
	return fmt.Sprintf("exit status %d: %s", e.Status, msg)
}

// Run runs a shell command line (built with Command, from validated values
// only) and returns its standard output. It gives up after timeout (0:
// CommandTimeout) or when ctx ends, closing the session.
func (c *Client) Run(ctx context.Context, cmd string, timeout time.Duration) (string, error) {
	if timeout <= 0 {
		timeout = CommandTimeout
	}
	s, err := c.c.NewSession()
	if err != nil {
		return "", fmt.Errorf("host %q: open an SSH session: %w", c.Target.Host, err)
	}
	defer s.Close()
	var out, errOut bytes.Buffer
	s.Stdout, s.Stderr = &limited{b: &out, n: 1 << 20}, &limited{b: &errOut, n: 64 << 10}
	done := make(chan error, 1)
	go func() { done <- s.Run(cmd) }()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case err = <-done:
	case <-t.C:
		s.Close()
		return "", fmt.Errorf("host %q: a command did not finish within %s", c.Target.Host, timeout)
	case <-ctx.Done():
		s.Close()
		return "", ctx.Err()
	}
	var ee *ssh.ExitError
	if errors.As(err, &ee) {
		return out.String(), &RemoteError{Command: cmd, Status: ee.ExitStatus(), Stderr: errOut.String()}
	}
	if err != nil {
		return out.String(), fmt.Errorf("host %q: %w", c.Target.Host, err)
	}
	return out.String(), nil
}

// limited keeps the first n bytes written and drops the rest.
type limited struct {
	b *bytes.Buffer
	n int
}

func (l *limited) Write(p []byte) (int, error) {
	if room := l.n - l.b.Len(); room > 0 {
		if len(p) > room {
			l.b.Write(p[:room])
		} else {
			l.b.Write(p)
		}
	}
	return len(p), nil
}

// sftpWritesInFlight bounds the write requests an upload keeps in flight:
// 16 of 32 KiB, half of OpenSSH's 2 MiB channel window. pkg/sftp's default
// (64, the whole window and more) keeps sshd's channel buffer full, and
// sshd then spends its time moving and clearing megabytes of buffer: an
// 18 MB upload took 130 ms against 40 ms with 16, and four at once on two
// cores 300 ms against 100 ms. 512 KiB in flight still fills a 1 Gbit/s
// link with 4 ms of round trip.
const sftpWritesInFlight = 16

// SFTP opens an SFTP session on the connection.
func (c *Client) SFTP() (*sftp.Client, error) {
	sc, err := sftp.NewClient(c.c, sftp.UseConcurrentWrites(true), sftp.UseFstat(true),
		sftp.MaxConcurrentRequestsPerFile(sftpWritesInFlight))
	if err != nil {
		return nil, fmt.Errorf("host %q: start SFTP: %w", c.Target.Host, err)
	}
	return sc, nil
}

// quickAckConn acknowledges every segment at once (TCP_QUICKACK, set again
// after each read: Linux leaves quick-ack mode on its own). sshd sets
// TCP_NODELAY only once a session starts, so until then it holds each
// small packet while one is unacknowledged (Nagle), and the kernel's
// delayed ACK made the manager wait 40 ms for, among others, the answer to
// opening the first session: SFTP took 45 ms to start instead of 3.
type quickAckConn struct{ *net.TCPConn }

func (c quickAckConn) Read(p []byte) (int, error) {
	n, err := c.TCPConn.Read(p)
	if rc, rerr := c.TCPConn.SyscallConn(); rerr == nil {
		rc.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_QUICKACK, 1) })
	}
	return n, err
}
