package store

import (
	"strings"
)

// Query is a selection the Store asks of a primitive: which rows, in which
// order, how many, and what lock they are held with. The Store decides
// what a filter means once; a Dialect spells it for an engine.
type Query struct {
	Where []Cond
	Order Order
	Limit int // 0: no limit
	Lock  Lock
	// Index names the index the selection reads through, for an engine
	// that cannot tell on its own which of two indexes reads fewer rows
	// (SQLite keeps no statistics); an engine that can ignores it. The
	// index must be able to serve the selection.
	Index string
}

// Order is the order of a selection's rows: by id (which is creation
// order), or, for messages listed by account and listings with a time
// range, by creation (or receipt) time and then id.
type Order int

const (
	Unordered Order = iota
	NewestFirst
	OldestFirst
	NewestCreatedFirst
	OldestCreatedFirst
	// NewestReceivedFirst is the requests' NewestCreatedFirst.
	NewestReceivedFirst
)

// Lock is how the rows a transaction selects are held until it ends, on
// an engine with concurrent writers; an engine with one writer needs none
// and ignores it.
type Lock int

const (
	NoLock Lock = iota
	// KeyShare keeps the rows from being deleted (or their keys changed),
	// without waiting on, or holding up, updates of other columns.
	KeyShare
	// ForUpdate holds the rows for a read-modify-write: concurrent writers
	// of one row apply one after the other.
	ForUpdate
)

// Cond is one condition of a selection; a selection's conditions all
// hold.
type Cond struct {
	Column string
	op     Operator
	Value  any
	// Any, for OpAny, holds when all the conditions of one of its groups
	// hold.
	Any [][]Cond
}

// Operator is a condition's comparison.
type Operator int

const (
	OpEq Operator = iota
	OpLt
	OpLe
	OpGt
	OpGe
	// OpIn compares with a list of strings given as one parameter, so that
	// a statement's text is the same whatever the list's length.
	OpIn
	// OpOneOf compares with a list of constants written into the
	// statement: an engine uses a partial index only for a query whose
	// terms imply the index's, which a parameter cannot. Its values are
	// the domain's own constants, never input.
	OpOneOf
	// OpNotEmpty holds for a non-empty string, written as a literal term
	// for the same reason as OpOneOf.
	OpNotEmpty
	// OpNotZero holds for a number other than 0, written as a literal term
	// for the same reason.
	OpNotZero
	OpAny
)

// Eq and the others build conditions.
func Eq(column string, v any) Cond { return Cond{Column: column, op: OpEq, Value: v} }
func Lt(column string, v any) Cond { return Cond{Column: column, op: OpLt, Value: v} }
func Le(column string, v any) Cond { return Cond{Column: column, op: OpLe, Value: v} }
func Gt(column string, v any) Cond { return Cond{Column: column, op: OpGt, Value: v} }
func Ge(column string, v any) Cond { return Cond{Column: column, op: OpGe, Value: v} }
func In(column string, values []string) Cond {
	return Cond{Column: column, op: OpIn, Value: values}
}
func OneOf[T ~string](column string, values ...T) Cond {
	s := make([]string, len(values))
	for i, v := range values {
		s[i] = string(v)
	}
	return Cond{Column: column, op: OpOneOf, Value: s}
}
func NotEmpty(column string) Cond { return Cond{Column: column, op: OpNotEmpty} }
func NotZero(column string) Cond  { return Cond{Column: column, op: OpNotZero} }
func Any(groups ...[]Cond) Cond   { return Cond{op: OpAny, Any: groups} }

// Dialect is how an engine spells a Query: its parameters and the values
// they take.
type Dialect struct {
	// Param returns the placeholder of the n-th parameter (1-based).
	Param func(n int) string
	// Value converts a condition's value (a string, an int or a
	// time.Time) to what the engine's columns take; nil passes it as is.
	Value func(v any) any
	// In returns the term comparing column with the list parameter param,
	// and the list's value for it.
	In func(column, param string, values []string) (term string, value any)
	// Lock returns the clause that holds selected rows; nil for none.
	Lock func(Lock) string
	// Indexed returns the clause that names the index a selection reads
	// through, written after its table; nil to let the engine choose.
	Indexed func(index string) string
}

// Where returns conds as a WHERE clause (empty for none) and its
// arguments, numbered from 1.
func (d Dialect) Where(conds []Cond) (string, []any) {
	var args []any
	clause := d.and(conds, &args)
	if clause == "" {
		return "", args
	}
	return " WHERE " + clause, args
}

// Select returns base (a SELECT without WHERE, ending with its one table)
// with q's index, conditions, order, limit and lock, and its arguments.
func (d Dialect) Select(base string, q Query) (string, []any) {
	where, args := d.Where(q.Where)
	var b strings.Builder
	b.WriteString(base)
	if q.Index != "" && d.Indexed != nil {
		b.WriteString(d.Indexed(q.Index))
	}
	b.WriteString(where)
	switch q.Order {
	case NewestFirst:
		b.WriteString(" ORDER BY id DESC")
	case OldestFirst:
		b.WriteString(" ORDER BY id")
	case NewestCreatedFirst:
		b.WriteString(" ORDER BY created_at DESC, id DESC")
	case OldestCreatedFirst:
		b.WriteString(" ORDER BY created_at, id")
	case NewestReceivedFirst:
		b.WriteString(" ORDER BY received_at DESC, id DESC")
	}
	if q.Limit > 0 {
		args = append(args, q.Limit)
		b.WriteString(" LIMIT " + d.Param(len(args)))
	}
	if q.Lock != NoLock && d.Lock != nil {
		b.WriteString(d.Lock(q.Lock))
	}
	return b.String(), args
}

func (d Dialect) and(conds []Cond, args *[]any) string {
	terms := make([]string, 0, len(conds))
	for _, c := range conds {
		terms = append(terms, d.term(c, args))
	}
	return strings.Join(terms, " AND ")
}

func (d Dialect) term(c Cond, args *[]any) string {
	param := func(v any) string {
		if d.Value != nil {
			v = d.Value(v)
		}
		*args = append(*args, v)
		return d.Param(len(*args))
	}
	switch c.op {
	case OpLt:
		return c.Column + " < " + param(c.Value)
	case OpLe:
		return c.Column + " <= " + param(c.Value)
	case OpGt:
		return c.Column + " > " + param(c.Value)
	case OpGe:
		return c.Column + " >= " + param(c.Value)
	case OpIn:
		values, _ := c.Value.([]string)
		*args = append(*args, nil)
		term, v := d.In(c.Column, d.Param(len(*args)), values)
		(*args)[len(*args)-1] = v
		return term
	case OpOneOf:
		values, _ := c.Value.([]string)
		if len(values) == 0 {
			return "1 = 0"
		}
		quoted := make([]string, len(values))
		for i, v := range values {
			quoted[i] = "'" + strings.ReplaceAll(v, "'", "''") + "'"
		}
		return c.Column + " IN (" + strings.Join(quoted, ", ") + ")"
	case OpNotEmpty:
		return c.Column + " <> ''"
	case OpNotZero:
		return c.Column + " <> 0"
	case OpAny:
		groups := make([]string, len(c.Any))
		for i, g := range c.Any {
			groups[i] = "(" + d.and(g, args) + ")"
		}
		return "(" + strings.Join(groups, " OR ") + ")"
	default:
		return c.Column + " = " + param(c.Value)
	}
}
