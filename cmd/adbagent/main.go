// Command adbagent is adbmgr's host agent: one per host, it serves the
// manager's typed operations (initdb, pg_ctl, pg_basebackup, pg_rewind,
// configuration files) over gRPC with mutual TLS, and never runs without it.
//
//	adbagent --listen ADDR:PORT --cert agent.crt --key agent.key --ca ca.crt [--log FILE]
//	         [--log-format text|json] [--log-level debug|info|warn|error]
//	adbagent --version
//
// SIGTERM and SIGINT stop it gracefully; the nodes it started keep running.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/adbmgr/adbmgr/internal/agent"
	"github.com/adbmgr/adbmgr/internal/config"
	"github.com/adbmgr/adbmgr/internal/pki"
	"github.com/adbmgr/adbmgr/internal/version"
)

func main() {
	if len(os.Args) == 2 && (os.Args[1] == "version" || os.Args[1] == "--version" || os.Args[1] == "-V") {
		fmt.Println("adbagent", version.Version)
		return
	}
	// The manager execs its verified copy through /proc/self/fd/N, which
	// names the process "N" in ps, top and pgrep; say what it is.
	unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&[]byte("adbagent\x00")[0])), 0, 0, 0)
	if err := run(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "adbagent:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("adbagent", flag.ContinueOnError)
	listen := fs.String("listen", "", "address:port to serve on (required)")
	cert := fs.String("cert", "", "the agent's certificate, PEM (required)")
	key := fs.String("key", "", "the agent's private key, PEM (required)")
	ca := fs.String("ca", "", "the manager's CA certificate, PEM (required)")
	logFile := fs.String("log", "", "append the log to this file instead of stderr")
	var logOpts config.Log
	logOpts.Flags(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: adbagent --listen ADDR:PORT --cert FILE --key FILE --ca FILE [options]\n       adbagent --version\n\noptions:")
		fs.PrintDefaults()
	}
	var help bytes.Buffer
	fs.SetOutput(&help)
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		os.Stdout.Write(help.Bytes()) // asked for: not an error
		return err
	}
	os.Stderr.Write(help.Bytes())
	if err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *listen == "" || *cert == "" || *key == "" || *ca == "" {
		return errors.New("--listen, --cert, --key and --ca are required (the agent only serves with mutual TLS)")
	}
	var out io.Writer = os.Stderr
	if *logFile != "" {
		f, err := os.OpenFile(*logFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return err
		}
		defer f.Close()
		out = f
	}
	log, err := logOpts.Logger(out)
	if err != nil {
		return err
	}
	tlsConf, err := pki.ServerTLS(*cert, *key, *ca)
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	// The agent outlives the SSH session or terminal that started it.
	signal.Ignore(syscall.SIGHUP)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return agent.Serve(ctx, lis, tlsConf, agent.Options{Logger: log})
}
