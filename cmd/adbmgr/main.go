// Command adbmgr is the cluster manager: DBAs connect to it with psql and
// manage hosts, nodes and the cluster with AntDB's command set.
//
//	adbmgr init -D DIR [--auth-local peer|trust] [--auth-host scram-sha-256|trust] [--pwfile F] [-U name]
//	adbmgr start -D DIR [--listen 127.0.0.1:6432] [--socket-dir DIR] [--ssl-cert F --ssl-key F] [--http ADDR [--http-tls]]
//	adbmgr version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/adbmgr/adbmgr/internal/access"
	"github.com/adbmgr/adbmgr/internal/agentclient"
	"github.com/adbmgr/adbmgr/internal/catalog"
	"github.com/adbmgr/adbmgr/internal/deploy"
	"github.com/adbmgr/adbmgr/internal/httpapi"
	"github.com/adbmgr/adbmgr/internal/mgr"
	"github.com/adbmgr/adbmgr/internal/pgwire"
	"github.com/adbmgr/adbmgr/internal/pki"
	"github.com/adbmgr/adbmgr/internal/version"
)

// DefaultListen is the manager's default address (AntDB's port 6432).
const DefaultListen = "127.0.0.1:6432"

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return // -h: the flags were printed
		}
		fmt.Fprintln(os.Stderr, "adbmgr:", err)
		os.Exit(1)
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  adbmgr init -D DIR [options]   create the manager's data directory
      --auth-local peer|trust           Unix socket clients (default peer: root and DIR's owner)
      --auth-host scram-sha-256|trust   TCP clients (default scram-sha-256)
      --pwfile FILE                     the superuser's password (first line of FILE)
      -U NAME                           the superuser's name (default postgres)
  adbmgr start -D DIR [options]  run the manager in the foreground
      --listen ADDR:PORT                TCP address (default `+DefaultListen+`)
      --socket-dir DIR                  Unix socket directory (default: the data directory; "" for none)
      --ssl-cert FILE --ssl-key FILE    TLS pair offered to clients (default: issued by the manager's CA)
      --http ADDR:PORT                  HTTP status and metrics (off by default; loopback only unless --http-tls)
      --http-tls                        TLS and client certificates of the manager's CA on --http (docs/OBSERVABILITY.md)
  adbmgr version                 print the version

Connect with psql -h DIR -p PORT -U postgres (peer) or psql -h 127.0.0.1 -p PORT -U postgres (password).
`)
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		usage(stderr)
		return errors.New("no command given")
	}
	fs := flag.NewFlagSet("adbmgr "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("D", os.Getenv("ADBMGR_DATA"), "manager data directory")
	listen := fs.String("listen", DefaultListen, "address and port to listen on")
	var initOpts access.InitOptions
	var pwfile, socketDir, sslCert, sslKey, crashAt, httpAddr string
	var httpTLS bool
	socketDirSet := false
	if args[0] == "init" {
		fs.StringVar(&initOpts.AuthLocal, "auth-local", "peer", "authentication of Unix socket clients: peer or trust")
		fs.StringVar(&initOpts.AuthHost, "auth-host", "scram-sha-256", "authentication of TCP clients: scram-sha-256 or trust")
		fs.StringVar(&pwfile, "pwfile", "", "file whose first line is the superuser's password")
		fs.StringVar(&initOpts.Superuser, "U", access.DefaultSuperuser, "name of the superuser")
	} else {
		fs.Func("socket-dir", "Unix socket directory (default: the data directory; empty for none)", func(v string) error {
			socketDir, socketDirSet = v, true
			return nil
		})
		fs.StringVar(&sslCert, "ssl-cert", "", "TLS certificate offered to clients")
		fs.StringVar(&sslKey, "ssl-key", "", "TLS key of --ssl-cert")
		fs.StringVar(&httpAddr, "http", "", "HTTP status address (/metrics, /healthz, /cluster, /): loopback unless --http-tls; off when empty")
		fs.BoolVar(&httpTLS, "http-tls", false, "serve --http over TLS with client certificates of the manager's CA (DIR/pki/monitor.crt)")
		// A test hook, not in the usage text: the manager kills itself at
		// that point of a switch (internal/mgr/crash.go), for
		// tests/e2e/crash_test.go.
		fs.StringVar(&crashAt, "crash-at", "", "test hook: COMMAND:POINT at which the manager kills itself (tests only)")
	}
	switch args[0] {
	case "version", "--version", "-V":
		fmt.Fprintf(stdout, "adbmgr %s (%s)\n", version.Version, catalog.Version)
		return nil
	case "help", "-h", "--help":
		usage(stdout)
		return nil
	case "init", "start":
	default:
		usage(stderr)
		return fmt.Errorf("unknown command %q", args[0])
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("no data directory: give -D DIR (or set ADBMGR_DATA)")
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(stderr, nil))
	if args[0] == "init" {
		if pwfile != "" {
			pw, err := access.ReadPasswordFile(pwfile)
			if err != nil {
				return err
			}
			initOpts.Password = pw
		}
		return initDir(ctx, abs, initOpts, stdout)
	}
	if !socketDirSet {
		socketDir = abs
	}
	return start(ctx, abs, serveOptions{listen: *listen, socketDir: socketDir, sslCert: sslCert, sslKey: sslKey, crashAt: crashAt, http: httpAddr, httpTLS: httpTLS}, log)
}

func initDir(ctx context.Context, dir string, o access.InitOptions, stdout io.Writer) error {
	if _, err := os.Stat(filepath.Join(dir, catalog.FileName)); err == nil {
		return fmt.Errorf("%s is already initialised", dir)
	}
	if err := o.Validate(); err != nil {
		return err
	}
	cat, err := catalog.Open(ctx, dir)
	if err != nil {
		return err
	}
	err = access.Init(ctx, dir, cat, o)
	err = errors.Join(err, cat.Close())
	if err == nil {
		_, err = pki.SetupManager(filepath.Join(dir, "pki"))
	}
	if err == nil {
		// The manager's own SSH key, for hosts with protocol ssh.
		_, err = deploy.EnsureKey(filepath.Join(dir, "ssh"))
	}
	if err != nil {
		// Half an init must not pass for a whole one ("already
		// initialised") at the next try.
		for _, f := range []string{catalog.FileName, catalog.FileName + "-wal", catalog.FileName + "-shm", access.HBAFile} {
			os.Remove(filepath.Join(dir, f))
		}
		return err
	}
	fmt.Fprintf(stdout, "adbmgr data directory initialised in %s\n", dir)
	if o.AuthLocal == "trust" || o.AuthHost == "trust" {
		fmt.Fprintf(stdout, "WARNING: trust authentication is enabled: anyone who can connect is a manager superuser\n")
	}
	if o.Password == "" && o.AuthHost != "trust" {
		fmt.Fprintf(stdout, "the superuser has no password: connect over the Unix socket (psql -h %s) and set one with ALTER USER … PASSWORD\n", dir)
	}
	return nil
}

// serveOptions are adbmgr start's listening flags.
type serveOptions struct {
	listen, socketDir, sslCert, sslKey string
	// crashAt is the crash test hook (--crash-at; mgr.Options.CrashAt).
	crashAt string
	// http is --http's address ("": off); httpTLS --http-tls.
	http    string
	httpTLS bool
}

func start(ctx context.Context, dir string, so serveOptions, log *slog.Logger) error {
	unlock, err := lockDir(dir)
	if err != nil {
		return err
	}
	defer unlock()
	// Earlier versions created catalog.db 0644; nothing in DIR is for
	// other users (the CA key, agents' keys, the catalog).
	changed, err := catalog.Private(dir)
	if err != nil {
		return err
	}
	for _, c := range changed {
		log.Warn("made a file of the data directory private", "change", c)
	}
	cat, err := catalog.Open(ctx, dir)
	if err != nil {
		return err
	}
	defer cat.Close()
	ops, err := cat.Interrupted(ctx)
	if err != nil {
		return err
	}
	if len(ops) > 0 {
		log.Warn("operations were interrupted by the previous manager's end; check the cluster with MONITOR ALL", "operations", ops)
	}
	pkiDir := filepath.Join(dir, "pki")
	renewed, err := pki.EnsureManager(pkiDir)
	if err != nil {
		return err
	}
	// Data directories made before SSH hosts existed get the manager's
	// SSH key now.
	if made, err := deploy.EnsureKey(filepath.Join(dir, "ssh")); err != nil {
		return err
	} else if made {
		log.Info("made the manager's SSH key", "file", filepath.Join(dir, "ssh", deploy.KeyFile))
	}
	if renewed != "" {
		// Agents accept the new certificate (same CA), and agents of an
		// earlier version accept any; restart those (STOP AGENT, START
		// AGENT) so that they check the manager's identity.
		log.Info("issued the manager a new client certificate", "reason", renewed)
	}
	clientTLS, err := pki.ClientTLS(filepath.Join(pkiDir, pki.ManagerCert), filepath.Join(pkiDir, pki.ManagerKey), filepath.Join(pkiDir, pki.CACert))
	if err != nil {
		return err
	}
	agents := agentclient.New(clientTLS)
	defer agents.Close()
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	status := httpapi.New(nil, httpapi.Options{Logger: log})
	m := mgr.New(cat, mgr.Options{
		// bin/adbmgr lives in <adbhome>/bin, like AntDB's layout.
		InstallDir:  filepath.Dir(filepath.Dir(exe)),
		AgentBinary: filepath.Join(filepath.Dir(exe), "adbagent"),
		DataDir:     dir,
		Interrupted: len(ops) > 0,
		Agents:      agents,
		Logger:      log,
		CrashAt:     so.crashAt,
		Observer:    status,
	})
	status.SetSource(m)
	wire, err := clientAccess(ctx, dir, cat, so, log)
	if err != nil {
		return err
	}
	listeners, err := openListeners(so)
	if err != nil {
		return err
	}
	var httpL net.Listener
	if so.http != "" {
		var tc *httpapi.TLSConfig
		if so.httpTLS {
			tc = &httpapi.TLSConfig{PKIDir: pkiDir}
		}
		if httpL, err = httpapi.Listen(so.http, tc); err != nil {
			for _, l := range listeners {
				l.Close()
			}
			return err
		}
		log.Info("adbmgr HTTP status listening", "address", httpL.Addr().String(), "tls", so.httpTLS)
	}
	for _, l := range listeners {
		log.Info("adbmgr listening", "address", l.Addr().String(), "data", dir, "version", version.Version)
	}
	ctx, cancel := context.WithCancel(ctx)
	ran := make(chan struct{})
	go func() { m.Run(ctx); close(ran) }()
	// The doctor stops (and finishes what it does) before the catalog closes.
	defer func() { cancel(); <-ran }()
	if httpL != nil {
		httpDone := make(chan struct{})
		go func() {
			defer close(httpDone)
			if err := status.Serve(ctx, httpL); err != nil {
				log.Error("the HTTP status stopped", "error", err)
			}
		}()
		// Before the doctor's and the catalog's ends.
		defer func() { cancel(); <-httpDone }()
	}
	err = serve(ctx, cancel, pgwire.New(m, wire), listeners)
	log.Info("adbmgr stopped")
	return err
}

// clientAccess is how the wire server lets clients in: DIR/mgr_hba.conf,
// the catalog's users, peer authentication's rule and the TLS pair.
func clientAccess(ctx context.Context, dir string, cat catalog.Catalog, so serveOptions, log *slog.Logger) (pgwire.Options, error) {
	auth, err := access.Load(ctx, dir, cat, so.listen)
	if err != nil {
		return pgwire.Options{}, err
	}
	for _, n := range auth.Notes {
		log.Warn(n)
	}
	peer, err := access.PeerAllowed(dir)
	if err != nil {
		return pgwire.Options{}, err
	}
	serverTLS, err := access.ServerTLS(filepath.Join(dir, "pki"), so.listen, so.sslCert, so.sslKey)
	if err != nil {
		return pgwire.Options{}, err
	}
	return pgwire.Options{Logger: log, HBA: auth.HBA, Users: access.Users{Cat: cat}, PeerAllowed: peer, TLS: serverTLS}, nil
}

// openListeners listens on the TCP address and, unless disabled, on the
// Unix socket for the same port.
func openListeners(so serveOptions) ([]net.Listener, error) {
	l, err := net.Listen("tcp", so.listen)
	if err != nil {
		return nil, err
	}
	if so.socketDir == "" {
		return []net.Listener{l}, nil
	}
	ul, err := listenUnix(so.socketDir, l.Addr().(*net.TCPAddr).Port)
	if err != nil {
		l.Close()
		return nil, err
	}
	return []net.Listener{l, ul}, nil
}

// serve serves every listener until ctx ends or one of them fails, which
// ends the others (cancel): a DBA must notice a listener gone.
func serve(ctx context.Context, cancel func(), srv *pgwire.Server, listeners []net.Listener) error {
	errs := make(chan error, len(listeners))
	for _, l := range listeners {
		go func() {
			err := srv.Serve(ctx, l)
			cancel()
			errs <- err
		}()
	}
	var err error
	for range listeners {
		if e := <-errs; e != nil && err == nil {
			err = e
		}
	}
	return err
}

// listenUnix listens on DIR/.s.PGSQL.PORT, where psql -h DIR -p PORT looks.
// A socket file left by a manager that was killed is removed first: the
// data directory lock says no other manager uses it.
func listenUnix(dir string, port int) (net.Listener, error) {
	path := filepath.Join(dir, ".s.PGSQL."+strconv.Itoa(port))
	if len(path) > 107 {
		return nil, fmt.Errorf("unix socket path %s is longer than 107 bytes; give a shorter --socket-dir", path)
	}
	if st, err := os.Lstat(path); err == nil && st.Mode()&os.ModeSocket != 0 {
		os.Remove(path)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	// Peer authentication decides who gets in; the mode only must let them
	// reach it (the directory's mode may restrict further).
	if err := os.Chmod(path, 0o777); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// lockDir takes an exclusive lock on DIR/adbmgr.pid so that two managers
// never share one catalog; the lock dies with the process, even on kill -9.
func lockDir(dir string) (func(), error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, "adbmgr.pid"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("another adbmgr is running on %s", dir)
	}
	f.Truncate(0)
	f.WriteString(strconv.Itoa(os.Getpid()) + "\n")
	return func() {
		f.Truncate(0)
		f.Close()
	}, nil
}
