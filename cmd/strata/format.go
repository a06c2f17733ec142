package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"text/template"
	"time"

	units "github.com/docker/go-units"
)

// templateFuncs are the functions docker's --format templates offer.
var templateFuncs = template.FuncMap{
	// Docker's json leaves <, > and & alone: commands are full of them.
	"json": func(v any) (string, error) {
		var b strings.Builder
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			return "", err
		}
		return strings.TrimSuffix(b.String(), "\n"), nil
	},
	"join":  strings.Join,
	"split": strings.Split,
	"upper": strings.ToUpper,
	"lower": strings.ToLower,
	"title": func(s string) string {
		if s == "" {
			return s
		}
		return strings.ToUpper(s[:1]) + s[1:]
	},
	"pad": func(s string, before, after int) string {
		return strings.Repeat(" ", before) + s + strings.Repeat(" ", after)
	},
	"truncate": func(s string, n int) string {
		if len(s) > n {
			return s[:n]
		}
		return s
	},
	"println": fmt.Sprintln,
}

// parseFormat compiles a --format value. "json" prints each row as one JSON
// object; "table ..." prints a header row; anything else is a Go template.
func parseFormat(format string) (tmpl *template.Template, table bool, err error) {
	if format == "json" {
		format = "{{json .}}"
	}
	if rest, ok := strings.CutPrefix(format, "table"); ok {
		table = true
		format = strings.TrimSpace(rest)
	}
	format = strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(format)
	tmpl, err = template.New("format").Funcs(templateFuncs).Parse(format)
	if err != nil {
		return nil, false, fmt.Errorf("template parsing error: %w", err)
	}
	return tmpl, table, nil
}

// writeRows prints rows with a user --format, or the default table.
// headers maps a row field name to its column title for "table" formats.
func writeRows[T any](w io.Writer, format, defaultTable string, headers map[string]string, rows []T) error {
	if format == "" {
		format = defaultTable
	}
	tmpl, table, err := parseFormat(format)
	if err != nil {
		return err
	}
	out := w
	var tw *tabwriter.Writer
	if table {
		tw = tabwriter.NewWriter(w, 10, 1, 3, ' ', 0)
		out = tw
		// The header is the same template run over the column titles.
		if err := tmpl.Execute(out, headers); err != nil {
			return fmt.Errorf("template: %w", err)
		}
		fmt.Fprintln(out)
	}
	for _, r := range rows {
		if err := tmpl.Execute(out, r); err != nil {
			return fmt.Errorf("template: %w", err)
		}
		fmt.Fprintln(out)
	}
	if tw != nil {
		return tw.Flush()
	}
	return nil
}

// since is docker's CREATED column: "3 minutes ago".
func since(t time.Time) string {
	if t.IsZero() {
		return "N/A"
	}
	return units.HumanDuration(time.Now().UTC().Sub(t)) + " ago"
}

// humanSize is docker's SIZE column: decimal units, 3 significant digits.
func humanSize(n int64) string {
	return units.HumanSizeWithPrecision(float64(n), 3)
}
