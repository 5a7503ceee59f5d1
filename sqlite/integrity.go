package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// IntegrityCheck is the check Open runs on the database before using it.
type IntegrityCheck string

const (
	// CheckQuick runs PRAGMA quick_check: every page of every table and
	// index is read and its b-tree structure verified, without checking
	// that indexes match their tables. It reads the whole file once.
	CheckQuick IntegrityCheck = "quick"
	// CheckFull runs PRAGMA integrity_check, which also checks that every
	// index matches its table and every constraint holds: several times
	// slower than CheckQuick on a large database.
	CheckFull IntegrityCheck = "full"
	// CheckOff skips the check.
	CheckOff IntegrityCheck = "off"
)

// ErrDamaged is returned by Open for a database that fails its integrity
// check, or that SQLite cannot read as a database at all.
var ErrDamaged = errors.New("sqlite store damaged")

// maxFindings bounds the problems the check reports: it stops early once
// it has found that many, and a damaged store is refused after the first.
const maxFindings = 5

// checkIntegrity runs the check on db, the database at path. A damaged
// database fails the store (f), so that closing db neither checkpoints
// nor deletes the write-ahead log: the files stay as they were found, for
// the recovery. The check fails closed: a database it could not run on is
// not used.
func checkIntegrity(ctx context.Context, db *sql.DB, path string, check IntegrityCheck, f *fault) error {
	var pragma string
	switch check {
	case CheckOff:
		return nil
	case CheckQuick, "":
		pragma = "quick_check"
	case CheckFull:
		pragma = "integrity_check"
	default:
		return fmt.Errorf("integrity check %q: want %q, %q or %q", check, CheckQuick, CheckFull, CheckOff)
	}
	findings, err := runCheck(ctx, db, pragma)
	if err != nil {
		if !fatal(err) {
			return fmt.Errorf("integrity check (PRAGMA %s) of %s: %w", pragma, path, err)
		}
		// The check reports what it found as rows, then may stop with
		// SQLITE_CORRUPT; a file that is no database at all fails
		// before any row.
		findings = append(findings, driverMessage(err))
	}
	if len(findings) == 1 && findings[0] == "ok" {
		return nil
	}
	damaged := fmt.Errorf("%w: PRAGMA %s of %s found: %s. Not using it. To recover: keep switchboard stopped, "+
		"copy the file and its -wal and -shm files aside, then restore a backup, or salvage the rows it can read "+
		"with sqlite3 %s .dump | sed '$ s/^ROLLBACK; -- due to errors$/COMMIT;/' | sqlite3 recovered.db "+
		"and put recovered.db, checked, in its place (docs/operations.md, \"Storage faults\")",
		ErrDamaged, pragma, path, quoteAll(findings), path)
	f.trip("integrity check", "", damaged)
	return damaged
}

// runCheck returns what the check pragma reports: "ok" alone, or up to
// maxFindings problems, and the error that stopped it, if any.
func runCheck(ctx context.Context, db *sql.DB, pragma string) ([]string, error) {
	rows, err := db.QueryContext(ctx, "PRAGMA "+pragma+"("+strconv.Itoa(maxFindings)+")")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var findings []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return findings, err
		}
		findings = append(findings, line)
	}
	if err := rows.Err(); err != nil {
		return findings, err
	}
	if len(findings) == 0 {
		return nil, fmt.Errorf("PRAGMA %s returned nothing", pragma)
	}
	return findings, nil
}

// driverMessage is the SQLite driver's own message within err, without
// what the store wrapped it in.
func driverMessage(err error) string {
	var coded interface{ Code() int }
	if errors.As(err, &coded) {
		if e, ok := coded.(error); ok {
			return e.Error()
		}
	}
	return err.Error()
}

func quoteAll(lines []string) string {
	q := make([]string, len(lines))
	for i, l := range lines {
		q[i] = strconv.Quote(l)
	}
	return strings.Join(q, "; ")
}
