package deploy

import (
	"database/sql"
	"os/exec"
	"path/filepath"
	"testing"

	_ "modernc.org/sqlite"
)

// The online backups docs/operations.md describes work on a store serve
// is writing: VACUUM INTO, and the SQLite shell's .backup where the shell
// is installed. Each copy passes integrity_check and holds the events.
func TestSQLiteOnlineBackup(t *testing.T) {
	t.Parallel()
	r := startWithTraffic(t)
	dir := t.TempDir()
	live, err := sql.Open("sqlite", "file:"+r.db+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	backups := []string{filepath.Join(dir, "vacuum.db")}
	if _, err := live.Exec(`VACUUM INTO ?`, backups[0]); err != nil {
		t.Fatalf("VACUUM INTO while serving: %v", err)
	}
	if shell, err := exec.LookPath("sqlite3"); err == nil {
		b := filepath.Join(dir, "shell.db")
		out, err := exec.Command(shell, "-cmd", ".timeout 10000", r.db, ".backup '"+b+"'").CombinedOutput()
		if err != nil {
			t.Fatalf("sqlite3 .backup while serving: %v\n%s", err, out)
		}
		backups = append(backups, b)
	} else {
		t.Log("sqlite3 not installed: .backup not tried")
	}
	for _, b := range backups {
		db, err := sql.Open("sqlite", "file:"+b+"?mode=ro")
		if err != nil {
			t.Fatal(err)
		}
		var check string
		var events int
		if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
			t.Errorf("%s: integrity_check %q, %v", b, check, err)
		}
		if err := db.QueryRow(`SELECT count(*) FROM events`).Scan(&events); err != nil || events == 0 {
			t.Errorf("%s: %d events, %v; want the events stored before the backup", b, events, err)
		}
		db.Close()
	}
}
