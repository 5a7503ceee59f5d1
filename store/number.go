package store

import (
	"slices"
)

// numberColumns are the columns a number filter matches, each with an
// index of its own that yields its rows newest first.
var numberColumns = []string{"from_number", "to_number"}

// byNumber selects, with sel, the rows of a listing page l matching
// where whose from_number or to_number is number, newest first: one
// selection per column, each cut at the page, merged. A single selection
// with OR would read every row of a common number (a sender's own, which
// is on every message it sends) and sort them all before cutting the
// page; each of these stops at the page's end. The newest limit+1 rows
// of the two together are among the newest limit+1 of each.
//
// Each selection repeats its partial index's predicate (the column is not
// empty), which number, never empty here, implies.
func byNumber[T any](number string, where []Cond, l listing, pos func(T) position, sel func([]Cond) ([]T, error)) ([]T, error) {
	var merged []T
	for _, column := range numberColumns {
		items, err := sel(append(slices.Clip(where), Eq(column, number), NotEmpty(column)))
		if err != nil {
			return nil, err
		}
		merged = append(merged, items...)
	}
	// A row from and to the number came from both: kept once.
	slices.SortStableFunc(merged, func(a, b T) int { return l.compare(pos(a), pos(b)) })
	merged = slices.CompactFunc(merged, func(a, b T) bool { return pos(a).id == pos(b).id })
	if len(merged) > l.limit+1 {
		merged = merged[:l.limit+1]
	}
	return merged, nil
}
