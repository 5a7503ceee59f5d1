package store

import (
	"errors"
	"reflect"
	"slices"
	"testing"
)

// byNumber merges the newest of each column's selection into one page,
// newest first, each row once, and asks each selection for the page's
// rows only.
func TestByNumberMergesTheColumns(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		from, to []string // each column's matches, newest first
		limit    int
		want     []string // limit+1 at most: the page and whether more follow
	}{
		{"interleaved", []string{"9", "6", "3"}, []string{"8", "7", "2"}, 10, []string{"9", "8", "7", "6", "3", "2"}},
		{"from and to the number, once", []string{"9", "5"}, []string{"9", "4"}, 10, []string{"9", "5", "4"}},
		{"cut at the page and one more", []string{"9", "6", "3"}, []string{"8", "7", "2"}, 3, []string{"9", "8", "7", "6"}},
		{"one column only", nil, []string{"8", "7"}, 1, []string{"8", "7"}},
		{"none", nil, nil, 5, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var asked [][]Cond
			got, err := byNumber("+1555", []Cond{Eq("route", "/sms")}, listing{limit: tc.limit}, byString,
				func(where []Cond) ([]string, error) {
					asked = append(asked, where)
					rows := tc.from
					if where[1].Column == "to_number" {
						rows = tc.to
					}
					return rows[:min(len(rows), tc.limit+1)], nil
				})
			if err != nil || !slices.Equal(got, tc.want) {
				t.Errorf("byNumber = %v, %v; want %v", got, err, tc.want)
			}
			if len(asked) != 2 {
				t.Fatalf("%d selections, want one per column", len(asked))
			}
			for i, where := range asked {
				col := numberColumns[i]
				want := []Cond{Eq("route", "/sms"), Eq(col, "+1555"), NotEmpty(col)}
				if !reflect.DeepEqual(where, want) {
					t.Errorf("selection %d = %+v, want %v", i, where, want)
				}
			}
		})
	}
	failed := errors.New("down")
	if _, err := byNumber("+1555", nil, listing{limit: 5}, byString,
		func([]Cond) ([]string, error) { return nil, failed }); !errors.Is(err, failed) {
		t.Errorf("byNumber with a failing selection: %v, want its error", err)
	}
}

func byString(s string) position { return position{id: s} }
