// Command adbmgr is the cluster manager: DBAs connect to it with psql and
// manage hosts, nodes and the cluster with AntDB's command set.
//
//	adbmgr init -D DIR [--auth-local peer|trust] [--auth-host scram-sha-256|trust] [--pwfile F] [-U name]
//	adbmgr start -D DIR [--listen 127.0.0.1:6432] [--socket-dir DIR] [--ssl-cert F --ssl-key F] [--http ADDR [--http-tls]]
//	adbmgr version
//	adbmgr help [COMMAND]
//
// Every command also takes --config FILE, --log-format text|json and
// --log-level debug|info|warn|error; every long option can be set in
// DIR/adbmgr.conf (TOML) or as ADBMGR_<OPTION> in the environment
// (internal/config).
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
	"strings"
	"syscall"

	"github.com/adbmgr/adbmgr/internal/access"
	"github.com/adbmgr/adbmgr/internal/agentclient"
	"github.com/adbmgr/adbmgr/internal/catalog"
	"github.com/adbmgr/adbmgr/internal/cluster"
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

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		usage(stderr)
		return errors.New("no command given")
	}
	name := args[0]
	switch name {
	case "--version", "-V":
		name = "version"
	case "-h", "--help":
		name = "help"
	}
	c, ok := findCommand(name)
	if !ok {
		usage(stderr)
		return fmt.Errorf("unknown command %q", args[0])
	}
	if name == "help" && len(args) > 1 && !strings.HasPrefix(args[1], "-") {
		// adbmgr help start is adbmgr start --help.
		if h, ok := findCommand(args[1]); ok {
			commandUsage(stdout, h, flagSet(h, &options{}))
			return nil
		}
		return fmt.Errorf("unknown command %q", args[1])
	}
	o, err := parse(c, args[1:], stdout, stderr)
	if err != nil {
		return err
	}
	switch c.name {
	case "version":
		fmt.Fprintf(stdout, "adbmgr %s (%s)\n", version.Version, catalog.Version)
		return nil
	case "help":
		usage(stdout)
		return nil
	}
	log, err := o.log.Logger(stderr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if c.name == "init" {
		if o.pwfile != "" {
			pw, err := access.ReadPasswordFile(o.pwfile)
			if err != nil {
				return err
			}
			o.init.Password = pw
		}
		return initDir(ctx, o.dir, o.init, stdout)
	}
	if !o.socketDirSet {
		o.serve.socketDir = o.dir
	}
	return start(ctx, o.dir, o.serve, log)
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
	// A developer's build of adb.so, tried without installing it
	// (cluster.NodeLibraryDir); nodes initialised meanwhile keep it.
	cluster.NodeLibraryDir = os.Getenv("ADBMGR_NODE_LIBDIR")
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
	wire, err := clientAccess(ctx, dir, cat, so, log)
	if err != nil {
		return err
	}
	status := httpapi.New(nil, httpapi.Options{Logger: log, Auth: &httpapi.Auth{HBA: wire.HBA, Users: cat}})
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
