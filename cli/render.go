package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"
)

// The human views print what the admin API answers (web's JSON shapes),
// so they hide what admin.redact hides, laid out for a terminal. Every
// string that came in from outside (bodies, headers, errors, an app's
// answer) goes through clean first: a webhook cannot move the cursor or
// recolour the operator's terminal.

// timeLayout is RFC 3339 to the millisecond.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

// when is t in RFC 3339, UTC; empty for the zero time, which is left out.
func when(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(timeLayout)
}

// clean escapes the control characters of s, except newlines and tabs,
// and invalid UTF-8, as Go escapes them (\x1b, \u202e...).
func clean(s string) string {
	if !strings.ContainsFunc(s, unsafeRune) && utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD"):
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case unsafeRune(r):
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// unsafeRune reports a rune a terminal could act on: controls, and the
// format characters that reorder or hide text (bidi overrides, zero
// width).
func unsafeRune(r rune) bool {
	return r != '\n' && r != '\t' && (unicode.IsControl(r) || unicode.Is(unicode.Cf, r))
}

// cell is s cleaned for one table cell: on one line, without tabs, and
// cut to max runes.
func cell(s string, max int) string {
	s = strings.Join(strings.Fields(clean(s)), " ")
	if max > 0 && utf8.RuneCountInString(s) > max {
		s = string([]rune(s)[:max-1]) + "…"
	}
	if s == "" {
		return "-"
	}
	return s
}

// table writes aligned columns.
func table(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

// field is one "name  value" line of a record.
type field struct{ name, value string }

// writeFields writes the fields with a value, names aligned, indented by
// two spaces; values on several lines keep their indentation.
func writeFields(w io.Writer, fields []field) {
	width := 0
	for _, f := range fields {
		if f.value != "" {
			width = max(width, len(f.name))
		}
	}
	for _, f := range fields {
		if f.value == "" {
			continue
		}
		value := strings.ReplaceAll(clean(f.value), "\n", "\n  "+strings.Repeat(" ", width+2))
		fmt.Fprintf(w, "  %-*s  %s\n", width, f.name, value)
	}
}

// writeHeader writes an HTTP header, one "Name: value" line per value,
// names sorted.
func writeHeader(w io.Writer, h http.Header) {
	for _, name := range slices.Sorted(maps.Keys(h)) {
		for _, v := range h[name] {
			fmt.Fprintf(w, "  %s: %s\n", cell(name, 0), clean(v))
		}
	}
}

// bodyLines lays a body out for reading: a form one "key: value" line per
// parameter, in order and URL-decoded; JSON indented; anything else as it
// is. A body that does not parse as its Content-Type says is shown as it
// is too.
func bodyLines(contentType, body string) []string {
	if body == "" {
		return nil
	}
	mediaType, _, _ := mime.ParseMediaType(contentType)
	switch {
	case mediaType == "application/x-www-form-urlencoded":
		if lines, ok := formLines(body); ok {
			return lines
		}
	case mediaType == "application/json" || strings.HasSuffix(mediaType, "+json"):
		var b bytes.Buffer
		if json.Indent(&b, []byte(body), "", "  ") == nil {
			return strings.Split(b.String(), "\n")
		}
	}
	return strings.Split(body, "\n")
}

// formLines decodes a form's parameters in the order they came, which
// url.ParseQuery does not keep.
func formLines(body string) ([]string, bool) {
	var lines []string
	for pair := range strings.SplitSeq(body, "&") {
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		key, err := url.QueryUnescape(k)
		if err != nil {
			return nil, false
		}
		value, err := url.QueryUnescape(v)
		if err != nil {
			return nil, false
		}
		// A value on several lines (a message's text) stays under its key.
		lines = append(lines, key+": "+strings.ReplaceAll(value, "\n", "\n    "))
	}
	return lines, true
}

// writeBody writes a body's lines indented, each cleaned; a line holding
// newlines keeps its continuation lines indented as much.
func writeBody(w io.Writer, lines []string) {
	for _, l := range lines {
		fmt.Fprintf(w, "  %s\n", strings.ReplaceAll(clean(l), "\n", "\n  "))
	}
}

// ms formats a latency in milliseconds.
func ms(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) + " ms" }

// orDash is v, or "-" for zero.
func orDash(v int) string {
	if v == 0 {
		return "-"
	}
	return strconv.Itoa(v)
}

// printJSON writes v as the admin API does: indented by two spaces.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
