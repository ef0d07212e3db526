// Command adbmgr is the cluster manager: DBAs connect to it with psql and
// manage hosts, nodes and the cluster with AntDB's command set.
//
//	adbmgr init -D DIR
//	adbmgr start -D DIR [--listen 127.0.0.1:6432]
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

	"github.com/adbmgr/adbmgr/internal/agentclient"
	"github.com/adbmgr/adbmgr/internal/catalog"
	"github.com/adbmgr/adbmgr/internal/mgr"
	"github.com/adbmgr/adbmgr/internal/pgwire"
	"github.com/adbmgr/adbmgr/internal/pki"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "0.1.0-dev"

// DefaultListen is the manager's default address (AntDB's port 6432).
const DefaultListen = "127.0.0.1:6432"

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "adbmgr:", err)
		os.Exit(1)
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  adbmgr init -D DIR                        create the manager's data directory
  adbmgr start -D DIR [--listen ADDR:PORT]  run the manager in the foreground (default `+DefaultListen+`)
  adbmgr version                            print the version
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
	switch args[0] {
	case "version", "--version", "-V":
		fmt.Fprintf(stdout, "adbmgr %s (%s)\n", version, catalog.Version)
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
		return initDir(ctx, abs, stdout)
	}
	return start(ctx, abs, *listen, log)
}

func initDir(ctx context.Context, dir string, stdout io.Writer) error {
	if _, err := os.Stat(filepath.Join(dir, catalog.FileName)); err == nil {
		return fmt.Errorf("%s is already initialised", dir)
	}
	cat, err := catalog.Open(ctx, dir)
	if err != nil {
		return err
	}
	if err := cat.Close(); err != nil {
		return err
	}
	if _, err := pki.SetupManager(filepath.Join(dir, "pki")); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "adbmgr data directory initialised in %s\n", dir)
	return nil
}

func start(ctx context.Context, dir, listen string, log *slog.Logger) error {
	unlock, err := lockDir(dir)
	if err != nil {
		return err
	}
	defer unlock()
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
	clientTLS, err := pki.SetupManager(filepath.Join(dir, "pki"))
	if err != nil {
		return err
	}
	agents := agentclient.New(clientTLS)
	defer agents.Close()
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	m := mgr.New(cat, mgr.Options{
		// bin/adbmgr lives in <adbhome>/bin, like AntDB's layout.
		InstallDir:  filepath.Dir(filepath.Dir(exe)),
		AgentBinary: filepath.Join(filepath.Dir(exe), "adbagent"),
		DataDir:     dir,
		Interrupted: len(ops) > 0,
		Agents:      agents,
		Logger:      log,
	})
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	log.Info("adbmgr listening", "address", l.Addr().String(), "data", dir, "version", version)
	ctx, cancel := context.WithCancel(ctx)
	ran := make(chan struct{})
	go func() { m.Run(ctx); close(ran) }()
	// The doctor stops (and finishes what it does) before the catalog closes.
	defer func() { cancel(); <-ran }()
	srv := pgwire.New(m, pgwire.Options{Logger: log})
	err = srv.Serve(ctx, l)
	log.Info("adbmgr stopped")
	return err
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
