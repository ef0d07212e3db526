package main

// The commands, their flags and where flags come from besides the command
// line (internal/config). A flag added to a command's flags func is in its
// --help, and settable in adbmgr.conf and as ADBMGR_<FLAG>.

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/adbmgr/adbmgr/internal/access"
	"github.com/adbmgr/adbmgr/internal/config"
)

// options are the values of every command's flags.
type options struct {
	dir, configFile string
	log             config.Log
	init            access.InitOptions
	pwfile          string
	serve           serveOptions
	socketDirSet    bool
}

// command is one of adbmgr's commands and its own flags.
type command struct {
	name, args, summary string
	// flags registers the command's flags; nil for none.
	flags func(fs *flag.FlagSet, o *options)
}

// hidden flags work but stay out of the usage text.
var hidden = map[string]bool{
	// A test hook: the manager kills itself at that point of a switch
	// (internal/mgr/crash.go), for tests/e2e/crash_test.go.
	"crash-at": true,
}

var commands = []command{
	{name: "init", args: "-D DIR [options]", summary: "create the manager's data directory", flags: func(fs *flag.FlagSet, o *options) {
		dataFlags(fs, o)
		fs.StringVar(&o.init.AuthLocal, "auth-local", "peer", "`METHOD` of Unix socket clients: peer (root and DIR's owner) or trust")
		fs.StringVar(&o.init.AuthHost, "auth-host", "scram-sha-256", "`METHOD` of TCP clients: scram-sha-256 or trust")
		fs.StringVar(&o.pwfile, "pwfile", "", "`FILE` whose first line is the superuser's password")
		fs.StringVar(&o.init.Superuser, "U", access.DefaultSuperuser, "`NAME` of the superuser")
	}},
	{name: "start", args: "-D DIR [options]", summary: "run the manager in the foreground", flags: func(fs *flag.FlagSet, o *options) {
		dataFlags(fs, o)
		fs.StringVar(&o.serve.listen, "listen", DefaultListen, "TCP `ADDR:PORT` to listen on")
		fs.Func("socket-dir", "Unix socket `DIR` (default: the data directory; \"\" for none)", func(v string) error {
			o.serve.socketDir, o.socketDirSet = v, true
			return nil
		})
		fs.StringVar(&o.serve.sslCert, "ssl-cert", "", "TLS certificate `FILE` offered to clients (default: issued by the manager's CA)")
		fs.StringVar(&o.serve.sslKey, "ssl-key", "", "TLS key `FILE` of --ssl-cert")
		fs.StringVar(&o.serve.http, "http", "", "HTTP status `ADDR:PORT` (/metrics, /healthz, /cluster, /): loopback unless --http-tls; off when empty")
		fs.BoolVar(&o.serve.httpTLS, "http-tls", false, "serve --http over TLS with client certificates of the manager's CA (DIR/pki/monitor.crt)")
		fs.StringVar(&o.serve.crashAt, "crash-at", "", "test hook: COMMAND:POINT at which the manager kills itself (tests only)")
	}},
	{name: "version", summary: "print the version"},
	{name: "help", args: "[COMMAND]", summary: "print this text, or a command's options"},
}

// dataFlags are the flags of every command that works on a data directory.
func dataFlags(fs *flag.FlagSet, o *options) {
	fs.StringVar(&o.dir, "D", "", "manager data `DIR` (default $"+config.DataEnv+")")
	fs.StringVar(&o.configFile, "config", "", "configuration `FILE` (default $"+config.EnvName("config")+", else DIR/"+config.FileName+")")
	o.log.Flags(fs)
}

func findCommand(name string) (command, bool) {
	for _, c := range commands {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-32s %s\n", strings.TrimSpace("adbmgr "+c.name+" "+c.args), c.summary)
	}
	fmt.Fprintf(w, `
"adbmgr COMMAND --help" lists a command's options. Every long option can also
be set in DIR/%s (TOML: listen = "127.0.0.1:6432") or in the environment
(%s); the command line beats the environment, which beats the file.

Connect with psql -h DIR -p PORT -U postgres (peer) or psql -h 127.0.0.1 -p PORT -U postgres (password).
`, config.FileName, config.EnvName("listen"))
}

// commandUsage prints a command's synopsis and options.
func commandUsage(w io.Writer, c command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: %s\n  %s\n", strings.TrimSpace("adbmgr "+c.name+" "+c.args), c.summary)
	first := true
	fs.VisitAll(func(f *flag.Flag) {
		if hidden[f.Name] {
			return
		}
		if first {
			fmt.Fprintln(w, "\noptions:")
			first = false
		}
		name := "-" + f.Name
		if config.Long(f.Name) {
			name = "-" + name
		}
		kind, text := flag.UnquoteUsage(f)
		if kind != "" {
			name += " " + kind
		}
		def := ""
		// A boolean switch is off unless given: no "(default "false")".
		b, isBool := f.Value.(interface{ IsBoolFlag() bool })
		if f.DefValue != "" && !(isBool && b.IsBoolFlag() && f.DefValue == "false") {
			def = fmt.Sprintf(" (default %q)", f.DefValue)
		}
		fmt.Fprintf(w, "  %-24s %s%s\n", name, text, def)
	})
}

// flagSet is command c's flags bound to o.
func flagSet(c command, o *options) *flag.FlagSet {
	fs := flag.NewFlagSet("adbmgr "+c.name, flag.ContinueOnError)
	if c.flags != nil {
		c.flags(fs, o)
	}
	return fs
}

// elsewhere are the long flags of the commands other than c: the
// configuration file may set them.
func elsewhere(c command) map[string]bool {
	out := map[string]bool{}
	for _, o := range commands {
		if o.name == c.name {
			continue
		}
		flagSet(o, &options{}).VisitAll(func(f *flag.Flag) {
			if config.Long(f.Name) {
				out[f.Name] = true
			}
		})
	}
	return out
}

// parse parses c's command line, then fills what it left unset from the
// environment and the configuration file.
func parse(c command, args []string, stdout, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flagSet(c, o)
	var out bytes.Buffer
	fs.SetOutput(&out)
	fs.Usage = func() { commandUsage(fs.Output(), c, fs) }
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		io.Copy(stdout, &out)
		return nil, err
	}
	if err != nil {
		// The flag package wrote the error before the usage; main
		// writes it once, after.
		commandUsage(stderr, c, fs)
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (see adbmgr %s --help)", fs.Arg(0), c.name)
	}
	if c.flags == nil {
		return o, nil
	}
	if o.dir == "" {
		o.dir = os.Getenv(config.DataEnv)
	}
	if o.dir == "" {
		return nil, errors.New("no data directory: give -D DIR (or set " + config.DataEnv + ")")
	}
	if o.dir, err = filepath.Abs(o.dir); err != nil {
		return nil, err
	}
	if o.configFile == "" {
		o.configFile = os.Getenv(config.EnvName("config"))
	}
	// Only the implicit DIR/adbmgr.conf may be absent: a file named with
	// --config or ADBMGR_CONFIG that is not there is a typo to report,
	// not a reason to start on defaults.
	optional := o.configFile == ""
	if optional {
		o.configFile = filepath.Join(o.dir, config.FileName)
	}
	err = config.Apply(fs, config.Sources{File: o.configFile, Required: !optional, Lookup: os.LookupEnv, Elsewhere: elsewhere(c), Fixed: []string{"config"}})
	return o, err
}
