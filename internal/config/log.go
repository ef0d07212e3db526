package config

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
)

// Log is the --log-format and --log-level pair both binaries take.
type Log struct {
	Format string
	Level  string
}

// Flags registers --log-format and --log-level on fs.
func (l *Log) Flags(fs *flag.FlagSet) {
	fs.StringVar(&l.Format, "log-format", "text", "log `FORMAT`: text or json")
	fs.StringVar(&l.Level, "log-level", "info", "least severe `LEVEL` logged: debug, info, warn or error")
}

// Logger is a logger writing to w as l says.
func (l Log) Logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	switch l.Level {
	case "debug":
		level = slog.LevelDebug
	case "info", "":
		level = slog.LevelInfo
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", l.Level)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch l.Format {
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", l.Format)
}
