// Package configkeys checks the keys of a configuration file against the
// struct it is decoded into, so that a misspelt or misplaced key is an
// error naming the closest key that exists instead of a setting silently
// left at its default.
package configkeys

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/agnivade/levenshtein"
)

// Tag is the struct tag that names a field's key, as koanf reads it.
const Tag = "koanf"

// UnknownKeyError is a key that names no field of its table.
type UnknownKeyError struct {
	// Path is the key with its table path, such as "storage.ur" or
	// "routes[1].targt" (array entries counted from 0).
	Path string
	// Suggestion is the path of the closest known key, or "" when none is
	// close enough to be a likely misspelling.
	Suggestion string
	// Known are the keys the table does have.
	Known []string
}

func (e *UnknownKeyError) Error() string {
	if e.Suggestion != "" {
		return fmt.Sprintf("unknown key %q: did you mean %q?", e.Path, e.Suggestion)
	}
	return fmt.Sprintf("unknown key %q (this table's keys are %s)", e.Path, strings.Join(e.Known, ", "))
}

// ShapeError is a known key written as a table where an array of tables is
// wanted, or the other way round: [routes] for [[routes]].
type ShapeError struct {
	Path string
	Want string // "[[routes]]" or "[storage]"
}

func (e *ShapeError) Error() string {
	if strings.HasPrefix(e.Want, "[[") {
		return fmt.Sprintf("key %q is a single table: write %s, once per entry", e.Path, e.Want)
	}
	return fmt.Sprintf("key %q is an array of tables: write it once as %s", e.Path, e.Want)
}

// Check returns every key of tree, a parsed TOML document (nested maps,
// arrays of tables as slices of maps), that names no field of the struct
// type t, walking nested tables and arrays of tables. Fields tagged "-"
// have no key; the keys under a map-typed field are the user's own and
// are not checked. Values are not checked: decoding does that. The errors
// are *UnknownKeyError or *ShapeError, sorted by path, joined.
func Check(tree map[string]any, t reflect.Type) error {
	var errs []error
	walk(tree, t, "", &errs)
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errors.Join(errs...)
}

func walk(tree map[string]any, t reflect.Type, prefix string, errs *[]error) {
	fields := keys(t)
	for key, value := range tree {
		path := prefix + key
		ft, ok := fields[key]
		if !ok {
			known := sortedKeys(fields)
			e := &UnknownKeyError{Path: path, Known: known}
			if s, ok := Closest(key, known); ok {
				e.Suggestion = prefix + s
			}
			*errs = append(*errs, e)
			continue
		}
		switch {
		case isTable(ft):
			switch v := value.(type) {
			case map[string]any:
				walk(v, ft, path+".", errs)
			case []any, []map[string]any:
				*errs = append(*errs, &ShapeError{Path: path, Want: "[" + path + "]"})
			}
		case ft.Kind() == reflect.Slice && isTable(ft.Elem()):
			switch v := value.(type) {
			case []any:
				for i, entry := range v {
					if m, ok := entry.(map[string]any); ok {
						walk(m, ft.Elem(), fmt.Sprintf("%s[%d].", path, i), errs)
					}
				}
			case []map[string]any:
				for i, m := range v {
					walk(m, ft.Elem(), fmt.Sprintf("%s[%d].", path, i), errs)
				}
			case map[string]any:
				*errs = append(*errs, &ShapeError{Path: path, Want: "[[" + path + "]]"})
			}
		}
	}
}

// isTable reports whether values of t are TOML tables whose keys are
// checked: structs other than time's.
func isTable(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && t != reflect.TypeFor[time.Time]()
}

// keys maps each key of the struct type t to its field's type.
func keys(t reflect.Type) map[string]reflect.Type {
	m := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get(Tag), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name) // koanf's default for untagged fields
		}
		m[name] = f.Type
	}
	return m
}

func sortedKeys(m map[string]reflect.Type) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Closest returns the candidate nearest to name by edit distance
// (Levenshtein, ignoring case), if it is near enough to be a likely
// misspelling: at most 2 edits, or a third of name's length for longer
// names. Ties go to the earlier candidate.
func Closest(name string, candidates []string) (string, bool) {
	best, bestDist := "", -1
	lower := strings.ToLower(name)
	for _, c := range candidates {
		d := levenshtein.ComputeDistance(lower, strings.ToLower(c))
		if bestDist < 0 || d < bestDist {
			best, bestDist = c, d
		}
	}
	if bestDist < 0 || bestDist > max(2, len(name)/3) || bestDist >= len(name) {
		return "", false
	}
	return best, true
}
