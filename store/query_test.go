package store

import (
	"reflect"
	"strconv"
	"testing"
	"time"
)

func TestDialectSpellsQueries(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	numbered := Dialect{
		Param: func(n int) string { return "$" + strconv.Itoa(n) },
		In:    func(column, param string, v []string) (string, any) { return column + " = ANY(" + param + ")", v },
		Lock: func(l Lock) string {
			if l == KeyShare {
				return " FOR KEY SHARE"
			}
			return " FOR UPDATE"
		},
	}
	positional := Dialect{
		Param: func(int) string { return "?" },
		Value: func(v any) any {
			if t, ok := v.(time.Time); ok {
				return t.UnixMicro()
			}
			return v
		},
		In: func(column, param string, v []string) (string, any) { return column + " IN (" + param + ")", len(v) },
	}
	for _, tc := range []struct {
		name     string
		dialect  Dialect
		q        Query
		wantSQL  string
		wantArgs []any
	}{
		{"empty", numbered, Query{}, "SELECT x FROM t", nil},
		{"numbered, ordered, limited, locked", numbered,
			Query{Where: []Cond{Eq("a", "1"), Ge("b", at), In("c", []string{"x", "y"})}, Order: NewestFirst, Limit: 5, Lock: ForUpdate},
			"SELECT x FROM t WHERE a = $1 AND b >= $2 AND c = ANY($3) ORDER BY id DESC LIMIT $4 FOR UPDATE",
			[]any{"1", at, []string{"x", "y"}, 5}},
		{"positional converts values and ignores locks", positional,
			Query{Where: []Cond{Lt("b", at)}, Order: OldestFirst, Limit: 1, Lock: KeyShare},
			"SELECT x FROM t WHERE b < ? ORDER BY id LIMIT ?", []any{at.UnixMicro(), 1}},
		{"constants are literal terms, quoted", numbered,
			Query{Where: []Cond{OneOf("s", "queued", "it's"), NotEmpty("sid")}},
			"SELECT x FROM t WHERE s IN ('queued', 'it''s') AND sid <> ''", nil},
		{"a non-zero number is a literal term", numbered,
			Query{Where: []Cond{Eq("code", 11200), NotZero("code")}},
			"SELECT x FROM t WHERE code = $1 AND code <> 0", []any{11200}},
		{"keyset by creation time", positional,
			Query{Where: []Cond{Le("t", at), Any([]Cond{Lt("t", at)}, []Cond{Eq("t", at), Lt("id", "m")})}, Order: NewestCreatedFirst, Limit: 3},
			"SELECT x FROM t WHERE t <= ? AND ((t < ?) OR (t = ? AND id < ?)) ORDER BY created_at DESC, id DESC LIMIT ?",
			[]any{at.UnixMicro(), at.UnixMicro(), at.UnixMicro(), "m", 3}},
		{"backward keyset", numbered,
			Query{Where: []Cond{Ge("t", at), Gt("id", "m")}, Order: OldestCreatedFirst},
			"SELECT x FROM t WHERE t >= $1 AND id > $2 ORDER BY created_at, id", []any{at, "m"}},
		{"no constants select nothing", numbered, Query{Where: []Cond{OneOf[string]("s")}}, "SELECT x FROM t WHERE 1 = 0", nil},
		{"any of groups", numbered,
			Query{Where: []Cond{Eq("r", "a"), Any([]Cond{Eq("m", "S"), NotEmpty("m")}, []Cond{Eq("c", "S"), NotEmpty("c")})}},
			"SELECT x FROM t WHERE r = $1 AND ((m = $2 AND m <> '') OR (c = $3 AND c <> ''))", []any{"a", "S", "S"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, args := tc.dialect.Select("SELECT x FROM t", tc.q)
			if got != tc.wantSQL || !reflect.DeepEqual(args, tc.wantArgs) {
				t.Errorf("Select = %q %v, want %q %v", got, args, tc.wantSQL, tc.wantArgs)
			}
		})
	}
}
