//go:build linux

package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" driver, to check a database's integrity

	"github.com/switchboard-dev/switchboard/sim"
)

// Storage faults on SQLite: the first failed write or fsync must stop the
// process from acknowledging anything more, and make it exit non-zero
// without touching its files again; a restart on the same files must then
// deliver every webhook that was ever answered 2xx, exactly as sent. A
// damaged database is refused at start.

// faultExit bounds how long serve may take to exit on its own once its
// storage fails.
const faultExit = 60 * time.Second

// tracer is strace attached to a process, making some of its system calls
// fail.
type tracer struct {
	cmd    *exec.Cmd
	out    *logBuffer
	exited chan struct{}
}

// injectIOErrors attaches strace to the process pid and makes every call
// of the named system calls, in all its threads, fail with EIO without
// running. It returns once strace has attached, and skips the test when
// strace is missing or cannot trace (no ptrace in this sandbox). strace
// ends with its tracee; the test's end kills it if it has not.
func injectIOErrors(t *testing.T, pid int, syscalls string) *tracer {
	t.Helper()
	path, err := exec.LookPath("strace")
	if err != nil {
		t.Skip("strace is not installed: it injects the I/O errors (apt-get install strace)")
	}
	// -e trace names the calls to inject into; -o /dev/null drops the
	// trace itself. strace's own messages go to stderr.
	cmd := exec.Command(path, "-f", "-p", fmt.Sprint(pid), "-e", "trace="+syscalls,
		"-e", "inject="+syscalls+":error=EIO", "-o", os.DevNull)
	out := newLogBuffer(func([]byte) string { return "" })
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Skipf("start strace: %v", err)
	}
	tr := &tracer{cmd: cmd, out: out, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(tr.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // by its own PID; ErrProcessDone once it has exited
		<-tr.exited
	})
	deadline := time.After(startTimeout)
	for !strings.Contains(out.String(), "attached") {
		out.mu.Lock()
		changed := out.changed
		out.mu.Unlock()
		select {
		case <-changed:
		case <-tr.exited:
			t.Skipf("strace could not attach (ptrace unavailable?): %s", strings.TrimSpace(out.String()))
		case <-deadline:
			t.Fatalf("strace not attached after %v: %s", startTimeout, out.String())
		}
	}
	return tr
}

// sentBodies returns the bodies of the webhooks tap carried, by MessageSid.
func (w *wiretap) sentBodies() map[string][]byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string][]byte{}
	for _, r := range w.byToken {
		if form, err := url.ParseQuery(string(r.body)); err == nil && form.Get("MessageSid") != "" {
			out[form.Get("MessageSid")] = r.body
		}
	}
	return out
}

// checkDeliveredAsSent checks that every one of sids reached the app with
// the body Twilio sent for it.
func checkDeliveredAsSent(t *testing.T, a *app, tap *wiretap, sids []string) {
	t.Helper()
	sent := tap.sentBodies()
	delivered := map[string][]byte{}
	for _, d := range a.snapshot() {
		if d.status >= 200 && d.status < 300 && d.messageSID != "" {
			delivered[d.messageSID] = d.body
		}
	}
	bad := 0
	for _, sid := range sids {
		body, ok := sent[sid]
		if !ok {
			t.Fatalf("no webhook for %s went through the tap", sid)
		}
		if !bytes.Equal(delivered[sid], body) {
			bad++
			if bad <= 5 {
				t.Errorf("%s delivered as %q, sent as %q", sid, delivered[sid], body)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d acknowledged webhooks not delivered as sent", bad, len(sids))
	}
}

// waitExit waits for p to exit on its own and fails the test if it does
// not within timeout.
func (p *proc) waitExit(t *testing.T, timeout time.Duration, why string) {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(timeout):
		t.Fatalf("%s still running %v after %s:\n%s", p.name, timeout, why, p.out.tail(16<<10))
	}
}

func TestStorageFaultStopsAcknowledging(t *testing.T) {
	for _, tc := range []struct {
		name     string
		syscalls string // those SQLite's writes and fsyncs use
	}{
		{"fsync", "fsync,fdatasync"},
		{"write", "pwrite64"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := startApp(t)
			cfg := writeConfig(t, config{
				storage: filepath.Join(t.TempDir(), "data", "switchboard.db"),
				routes:  []route{{path: "/sms", target: a.url("/sms")}},
			})
			p := startServe(t, cfg)
			tap := newWiretap(t)
			tw := newTwilio(t, p, tappedBy(tap))

			ctx, stopSending := context.WithCancel(t.Context())
			defer stopSending()
			acked := newAcks(300)
			waitSenders := blast(ctx, tw, 8, acked)
			acked.waitReached(t, 60*time.Second) // steady signed load
			injectIOErrors(t, p.cmd.Process.Pid, tc.syscalls)
			attached := len(acked.list())

			p.waitExit(t, faultExit, "its storage failed")
			stopSending()
			waitSenders()
			var exit *exec.ExitError
			if !errors.As(p.waitErr, &exit) || exit.ExitCode() == 0 {
				t.Errorf("serve exited with %v after the fault; want a non-zero exit status", p.waitErr)
			}
			for _, want := range []string{`"msg":"store failed`, "sqlite store failed", "switchboard: store failed"} {
				if !strings.Contains(p.out.String(), want) {
					t.Errorf("serve's output lacks %q:\n%s", want, p.out.tail(8<<10))
				}
			}
			if strings.Contains(p.out.String(), `"msg":"switchboard stopped"`) {
				t.Error("serve shut down as if gracefully (closing its store) after the fault")
			}
			sids := acked.list()
			t.Logf("%d webhooks acknowledged, %d of them answered after strace had attached; %d other answers, %d without an answer",
				len(sids), len(sids)-attached, acked.other.Load(), acked.errors.Load())

			// Restarted on the same files, without faults: it passes its
			// integrity check and delivers every acknowledged webhook.
			startServe(t, cfg)
			a.waitForSIDs(t, 90*time.Second, sids)
			checkDeliveredAsSent(t, a, tap, sids)
		})
	}
}

func TestServeRefusesADamagedStore(t *testing.T) {
	a := startApp(t)
	dir := t.TempDir()
	db := filepath.Join(dir, "data", "switchboard.db")
	cfg := writeConfig(t, config{storage: db, routes: []route{{path: "/sms", target: a.url("/sms")}}})
	p := startServe(t, cfg)
	receiveAll(t, []*sim.Sim{newTwilio(t, p)}, 300)
	if _, err := p.stop(t); err != nil { // the log is checkpointed into the file
		t.Fatalf("serve after SIGTERM: %v", err)
	}
	info, err := os.Stat(db)
	if err != nil {
		t.Fatal(err)
	}
	pages := info.Size() / 4096
	if pages < 20 {
		t.Fatalf("database of %d pages: too small to damage in the middle", pages)
	}
	overwritePage(t, db, pages/2)

	p = launchServe(t, cfg)
	p.waitExit(t, startTimeout, "being started on a damaged database")
	var exit *exec.ExitError
	if !errors.As(p.waitErr, &exit) || exit.ExitCode() == 0 {
		t.Errorf("serve on a damaged database exited with %v; want a non-zero exit status", p.waitErr)
	}
	out := p.out.String()
	if strings.Contains(out, "switchboard listening") {
		t.Error("serve listened on a damaged database")
	}
	for _, want := range []string{"sqlite store damaged", db, "quick_check", ".dump", "docs/operations.md"} {
		if !strings.Contains(out, want) {
			t.Errorf("serve's output lacks %q:\n%s", want, out)
		}
	}
	// migrate, which writes to it too, refuses it as well.
	if _, stderr, err := runCLI(t, cfg, "migrate"); exitCode(err) == 0 || !strings.Contains(stderr, "sqlite store damaged") {
		t.Errorf("migrate on a damaged database: %v, %s; want it refused", err, stderr)
	}
}

// overwritePage writes garbage over page (counted from 0, of 4096 bytes)
// of the file at path.
func overwritePage(t *testing.T, path string, page int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	junk := bytes.Repeat([]byte{0xA5, 0x5A, 0xFF, 0x00, 0x13}, 4096/5+1)[:4096]
	if _, err := f.WriteAt(junk, page*4096); err != nil {
		t.Fatal(err)
	}
}

// integrityCheck runs PRAGMA integrity_check on a copy of the database at
// path and its write-ahead log, leaving the originals untouched, and
// returns what it reports ("ok" when sound).
func integrityCheck(t *testing.T, path string) string {
	t.Helper()
	dir := t.TempDir()
	dst := filepath.Join(dir, filepath.Base(path))
	for _, suffix := range []string{"", "-wal"} {
		if err := copyFile(path+suffix, dst+suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
	db, err := sql.Open("sqlite", dst)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.QueryContext(t.Context(), "PRAGMA integrity_check")
	if err != nil {
		return err.Error()
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var l string
		if err := rows.Scan(&l); err != nil {
			return err.Error()
		}
		lines = append(lines, l)
	}
	if err := rows.Err(); err != nil {
		lines = append(lines, err.Error())
	}
	return strings.Join(lines, "\n")
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// thinDisk is an ext4 filesystem on a loop device whose backing file
// lives on a tmpfs smaller than the filesystem, as with thin
// provisioning: once the tmpfs is full, the device fails writes, which
// the filesystem reports at fsync.
//
// The loop device takes requests of one page at most. A file-backed loop
// device (seen on Linux 6.18) completes a write request that its backing
// file took only in part (the tmpfs filling up midway) as a success, so
// a larger request can be acknowledged with its tail never stored, and
// fsync then reports success for data that is gone: appending 80 KiB
// chunks with an fsync after each to a file on such a device loses the
// last chunk whose fsync succeeded, every time, whatever program does it.
// No application can tell; a one-page request is written whole or fails.
type thinDisk struct {
	mnt     string // where the ext4 filesystem is mounted
	pool    string // the tmpfs holding the backing file
	dev     string // the loop device
	mounted bool
}

// mustRun runs a command that must succeed, skipping the test with skipMsg if
// it fails and skipMsg is not empty.
func mustRun(t *testing.T, skipMsg string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), cliTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		msg := fmt.Sprintf("%s %s: %v: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
		if skipMsg != "" {
			t.Skipf("%s: %s", skipMsg, msg)
		}
		t.Fatal(msg)
	}
	return strings.TrimSpace(string(out))
}

// newThinDisk builds a thinDisk of 200 MiB whose backing store holds
// poolMiB. It skips the test unless it runs as root with loop devices.
func newThinDisk(t *testing.T, poolMiB int) *thinDisk {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts a tmpfs and an ext4 filesystem on a loop device")
	}
	for _, cmd := range []string{"mount", "umount", "losetup", "mkfs.ext4"} {
		if _, err := exec.LookPath(cmd); err != nil {
			t.Skipf("needs %s: %v", cmd, err)
		}
	}
	dir := t.TempDir()
	d := &thinDisk{pool: filepath.Join(dir, "pool"), mnt: filepath.Join(dir, "mnt")}
	for _, p := range []string{d.pool, d.mnt} {
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	mustRun(t, "cannot mount a tmpfs", "mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%dm", poolMiB), "tmpfs", d.pool)
	t.Cleanup(func() { _ = exec.Command("umount", d.pool).Run() })
	backing := filepath.Join(d.pool, "backing")
	if err := os.WriteFile(backing, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(backing, 200<<20); err != nil {
		t.Fatal(err)
	}
	d.dev = mustRun(t, "no loop device", "losetup", "--find", "--show", backing)
	t.Cleanup(func() { _ = exec.Command("losetup", "-d", d.dev).Run() })
	limit := filepath.Join("/sys/block", filepath.Base(d.dev), "queue", "max_sectors_kb")
	if err := os.WriteFile(limit, []byte("4"), 0o644); err != nil {
		t.Skipf("cannot limit the loop device's requests to one page: %v", err)
	}
	mustRun(t, "", "mkfs.ext4", "-q", "-F", d.dev)
	d.mount(t)
	t.Cleanup(func() { d.unmount(t) })
	return d
}

func (d *thinDisk) mount(t *testing.T) {
	t.Helper()
	mustRun(t, "cannot mount ext4 on a loop device", "mount", d.dev, d.mnt)
	d.mounted = true
}

func (d *thinDisk) unmount(t *testing.T) {
	t.Helper()
	if d.mounted {
		if out, err := exec.Command("umount", d.mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", d.mnt, err, out)
			return
		}
		d.mounted = false
	}
}

// grow makes room in the backing store: the device takes writes again.
func (d *thinDisk) grow(t *testing.T, poolMiB int) {
	t.Helper()
	mustRun(t, "", "mount", "-o", fmt.Sprintf("remount,size=%dm", poolMiB), d.pool)
}

func TestThinProvisionedDiskFillsUp(t *testing.T) {
	disk := newThinDisk(t, 24)
	a := startApp(t)
	db := filepath.Join(disk.mnt, "data", "switchboard.db")
	cfg := writeConfig(t, config{storage: db, routes: []route{{path: "/sms", target: a.url("/sms")}}})
	p := startServe(t, cfg)
	tap := newWiretap(t)
	tw := newTwilio(t, p, tappedBy(tap))

	// Signed load until the device fails under the store and serve exits.
	ctx, stopSending := context.WithCancel(t.Context())
	defer stopSending()
	acked := newAcks(-1)
	waitSenders := blast(ctx, tw, 8, acked)
	p.waitExit(t, 3*time.Minute, "its device filled up")
	stopSending()
	waitSenders()
	var exit *exec.ExitError
	if !errors.As(p.waitErr, &exit) || exit.ExitCode() == 0 {
		t.Errorf("serve exited with %v when its device failed; want a non-zero exit status", p.waitErr)
	}
	if !strings.Contains(p.out.String(), "sqlite store failed") {
		t.Errorf("serve's output does not say its store failed:\n%s", p.out.tail(8<<10))
	}
	sids := acked.list()
	t.Logf("%d webhooks acknowledged before the device failed; %d other answers, %d without an answer",
		len(sids), acked.other.Load(), acked.errors.Load())
	if len(sids) == 0 {
		t.Fatal("nothing was acknowledged: the test shows nothing")
	}

	// Room again; the filesystem remounted, so that what is read comes
	// from the device, not from pages the kernel kept.
	disk.grow(t, 256)
	disk.unmount(t)
	disk.mount(t)
	if got := integrityCheck(t, db); got != "ok" {
		t.Errorf("PRAGMA integrity_check after the failure: %s", got)
	}

	startServe(t, cfg)
	a.waitForSIDs(t, 90*time.Second, sids)
	checkDeliveredAsSent(t, a, tap, sids)
}

// A full disk on write is not a storage fault: the requests that cannot
// be stored get 503, serve stays up and ready, and acknowledges again
// once there is room.
func TestFullDiskIsOnlyA503(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts a small tmpfs for the store")
	}
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "cannot mount a tmpfs", "mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", dir)
	t.Cleanup(func() { _ = exec.Command("umount", dir).Run() })
	a := startApp(t)
	cfg := writeConfig(t, config{storage: filepath.Join(dir, "switchboard.db"), routes: []route{{path: "/sms", target: a.url("/sms")}}})
	p := startServe(t, cfg)
	tap := newWiretap(t)
	tw := newTwilio(t, p, tappedBy(tap))

	ctx, stopSending := context.WithCancel(t.Context())
	defer stopSending()
	acked := newAcks(-1)
	waitSenders := blast(ctx, tw, 8, acked)
	running := func() {
		select {
		case <-p.exited:
			t.Fatalf("serve exited on a full disk (%v):\n%s", p.waitErr, p.out.tail(8<<10))
		default:
		}
	}
	eventually(t, 2*time.Minute, func() (bool, string) {
		running()
		return acked.other.Load() >= 100, fmt.Sprintf("%d acknowledged, %d other answers", len(acked.list()), acked.other.Load())
	})
	full := len(acked.list())
	if got := do(t, mustRequest(t, p.url("/readyz"))); got.status != 200 {
		t.Errorf("/readyz on a full disk: %d %s; want 200: a full disk is not a fault", got.status, got.body)
	}

	mustRun(t, "", "mount", "-o", "remount,size=64m", dir)
	eventually(t, time.Minute, func() (bool, string) {
		running()
		n := len(acked.list())
		return n >= full+100, fmt.Sprintf("%d acknowledged once there was room, want 100", n-full)
	})
	stopSending()
	waitSenders()
	running()
	if strings.Contains(p.out.String(), "store failed") {
		t.Error("a full disk failed the store")
	}
	sids := acked.list()
	t.Logf("%d webhooks acknowledged, %d before the disk filled; %d other answers", len(sids), full, acked.other.Load())
	a.waitForSIDs(t, 90*time.Second, sids)
	checkDeliveredAsSent(t, a, tap, sids)
}

func mustRequest(t *testing.T, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}
