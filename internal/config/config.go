// Package config gives a command's long flags two more sources: the
// environment and a TOML file (adbmgr.conf in the manager's data
// directory). Every long flag is a key of the file and an environment
// variable, so a flag added to a command is configurable without more
// code. Precedence: the command line beats the environment, which beats
// the file, which beats the flag's default.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
)

// FileName is the manager's configuration file in its data directory.
const FileName = "adbmgr.conf"

// EnvPrefix starts the environment variable of every long flag:
// --log-level is ADBMGR_LOG_LEVEL.
const EnvPrefix = "ADBMGR_"

// DataEnv names the data directory when -D is not given.
const DataEnv = "ADBMGR_DATA"

// EnvName is the environment variable of flag name: ADBMGR_ and the name
// in upper case with dashes as underscores.
func EnvName(name string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// Long reports whether a flag takes part: one-letter flags (-D, -U) are
// the command line's only.
func Long(name string) bool { return len(name) > 1 }

// Sources are where Apply looks besides the command line.
type Sources struct {
	// File is the TOML file; a missing one is no error unless Required.
	File     string
	Required bool
	// Lookup reads the environment (os.LookupEnv); nil reads none.
	Lookup func(string) (string, bool)
	// Elsewhere are the long flags of the program's other commands: the
	// file may set them (it serves every command) and this command
	// ignores them. Any other key is an error.
	Elsewhere map[string]bool
	// Fixed are flags resolved before the file is read (--config): neither
	// the file nor the environment sets them here.
	Fixed []string
}

// Apply sets every long flag of fs that the command line (already parsed
// into fs) did not set, from the environment or else the file. A key of
// the file that is no flag of any command, or a value the flag refuses, is
// an error that names the key and the file.
func Apply(fs *flag.FlagSet, src Sources) error {
	set := map[string]bool{}
	for _, name := range src.Fixed {
		set[name] = true
	}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	file, err := Read(src.File)
	if err != nil {
		return err
	}
	if file == nil && src.Required {
		if _, err := os.Stat(src.File); err != nil {
			return fmt.Errorf("configuration file: %w", err)
		}
	}
	var unknown []string
	for k := range file {
		own := fs.Lookup(k) != nil && Long(k)
		if slices.Contains(src.Fixed, k) || !own && !src.Elsewhere[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("%s: unknown key %q (the keys are the long flags of adbmgr's commands)", src.File, unknown[0])
	}
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || !Long(f.Name) {
			return
		}
		if src.Lookup != nil {
			if v, ok := src.Lookup(EnvName(f.Name)); ok {
				if err := fs.Set(f.Name, v); err != nil {
					errs = append(errs, fmt.Errorf("environment %s: %w", EnvName(f.Name), err))
				}
				return
			}
		}
		if v, ok := file[f.Name]; ok {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s: key %q: %w", src.File, f.Name, err))
			}
		}
	})
	return errors.Join(errs...)
}

// Read parses a TOML file of flat key = value lines into flag values.
// Strings, integers and booleans are taken; tables and arrays are not (no
// flag takes them). A missing file is an empty one.
func Read(path string) (map[string]string, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var raw map[string]any
	if err := toml.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		switch v := v.(type) {
		case string:
			out[k] = v
		case int64, bool, float64:
			out[k] = fmt.Sprint(v)
		default:
			return nil, fmt.Errorf("%s: key %q: want a string, a number or a boolean, not %T", path, k, v)
		}
	}
	return out, nil
}
