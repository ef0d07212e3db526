package parser

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/adbmgr/adbmgr/internal/pgerror"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

const (
	examplesFile = "testdata/spec_examples.sql"
	goldenFile   = "testdata/spec_examples.golden"
)

// exampleLines returns the lines of the examples file.
func exampleLines(t testing.TB) []string {
	t.Helper()
	data, err := os.ReadFile(examplesFile)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimRight(string(data), "\n"), "\n")
}

// TestGolden parses every line of the examples file on its own and compares
// the rendering with the golden file. Review the golden file by eye after
// `go test -run Golden -update`: it is the proof that the grammar is right.
func TestGolden(t *testing.T) {
	var b strings.Builder
	for _, line := range exampleLines(t) {
		b.WriteString(line)
		b.WriteByte('\n')
		sts, err := Parse(line)
		if strings.HasPrefix(line, "--") || strings.TrimSpace(line) == "" {
			if err != nil || len(sts) != 0 {
				t.Errorf("comment line %q parsed to %v, %v", line, sts, err)
			}
			continue
		}
		if err != nil {
			b.WriteString(renderError(line, err))
			continue
		}
		for _, s := range sts {
			b.WriteString("    " + render(s) + "\n")
		}
	}
	got := b.String()
	if *update {
		if err := os.WriteFile(goldenFile, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(goldenFile)
	if err != nil {
		t.Fatalf("%v (run go test -run Golden -update)", err)
	}
	if got != string(want) {
		gl, wl := strings.Split(got, "\n"), strings.Split(string(want), "\n")
		for i := 0; i < len(gl) || i < len(wl); i++ {
			var g, w string
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Fatalf("golden mismatch at line %d:\n got: %s\nwant: %s\n(run go test -run Golden -update and review the diff)", i+1, g, w)
			}
		}
	}
}

// renderError shows a caret under the error position, then the fields.
func renderError(line string, err error) string {
	pe, ok := pgerror.As(err)
	if !ok {
		return fmt.Sprintf("    NOT A PGERROR: %v\n", err)
	}
	var b strings.Builder
	if pe.Position > 0 {
		b.WriteString(caret(line, pe.Position) + "\n")
	}
	fmt.Fprintf(&b, "    ERROR %s at %d: %s\n", pe.Code, pe.Position, pe.Message)
	if pe.Detail != "" {
		fmt.Fprintf(&b, "    DETAIL: %s\n", pe.Detail)
	}
	if pe.Hint != "" {
		fmt.Fprintf(&b, "    HINT: %s\n", pe.Hint)
	}
	return b.String()
}

// caret returns spaces up to the 1-based character position pos, then
// '^'; East Asian wide characters take two columns.
func caret(line string, pos int) string {
	var b strings.Builder
	i := 1
	for _, r := range line {
		if i >= pos {
			break
		}
		b.WriteByte(' ')
		if unicode.Is(unicode.Han, r) || (r >= 0xFF00 && r <= 0xFF60) || (r >= 0x3000 && r <= 0x303F) {
			b.WriteByte(' ')
		}
		i++
	}
	return b.String() + "^"
}

// render prints a statement as "Type [pos,end) Field=value …", leaving out
// zero-valued fields so that the golden file stays readable.
func render(s Statement) string {
	v := reflect.ValueOf(s).Elem()
	pos, end := s.Span()
	var b strings.Builder
	fmt.Fprintf(&b, "%s [%d,%d)", v.Type().Name(), pos, end)
	for i := 0; i < v.NumField(); i++ {
		f := v.Type().Field(i)
		if f.Name == "Base" || v.Field(i).IsZero() {
			continue
		}
		fmt.Fprintf(&b, " %s=%s", f.Name, renderValue(v.Field(i)))
	}
	return b.String()
}

func renderValue(v reflect.Value) string {
	switch x := v.Interface().(type) {
	case Ident:
		return fmt.Sprintf("%q@%d", x.Name, x.Pos)
	case NodeKind:
		s := x.Family.String()
		if s == "" {
			s = "none"
		}
		if x.Role != RoleAny {
			s += " " + x.Role.String()
		}
		return fmt.Sprintf("%s@%d", s, x.Pos)
	case Option:
		if x.Kind == ValueNone {
			return fmt.Sprintf("%s@%d", x.Name.Name, x.Name.Pos)
		}
		kind := map[ValueKind]string{ValueIdent: "ident", ValueString: "string", ValueNumber: "number"}[x.Kind]
		return fmt.Sprintf("%s@%d=%s:%q@%d", x.Name.Name, x.Name.Pos, kind, x.Value, x.ValuePos)
	case ListNodeFilter:
		return [...]string{"all", "by-kind", "datanode-master", "host", "zone"}[x]
	case string:
		return strconv.Quote(x)
	}
	switch v.Kind() {
	case reflect.Struct:
		var parts []string
		for i := 0; i < v.NumField(); i++ {
			if v.Field(i).IsZero() {
				continue
			}
			parts = append(parts, v.Type().Field(i).Name+"="+renderValue(v.Field(i)))
		}
		return "{" + strings.Join(parts, " ") + "}"
	case reflect.Slice:
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = renderValue(v.Index(i))
		}
		return "[" + strings.Join(parts, " ") + "]"
	}
	return fmt.Sprint(v.Interface())
}

// TestExamplesFileIsOneStatementPerLine guards the examples file's
// format: nothing may be hidden in a second statement on a line, except on
// lines written to show several statements.
func TestExamplesFileIsOneStatementPerLine(t *testing.T) {
	f, err := os.Open(examplesFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		sts, err := Parse(sc.Text())
		if err == nil && len(sts) > 1 && !strings.Contains(sc.Text(), "LIST HOST; LIST NODE") {
			t.Errorf("line %d holds %d statements: %s", n, len(sts), sc.Text())
		}
	}
}
