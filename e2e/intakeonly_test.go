package e2e

import (
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/sim"
)

// A process with delivery disabled stores and acknowledges webhooks but
// delivers none: each waits in the store, pending with no attempt. The
// next process that delivers finds them all at its start (on SQLite, the
// dispatcher's first scan of the events table) and delivers each once.
func TestIntakeOnlyThenDelivered(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st store) {
		const n = 40
		a := startApp(t)
		cfg := writeConfig(t, config{storage: st.url, routes: []route{{path: "/sms", target: a.url("/sms")}}})
		intake := launchIn(t, "switchboard serve (delivery disabled)", "", []string{"SWITCHBOARD_DELIVERY_ENABLED=false"},
			newLogBuffer(switchboardListening), "serve", "--config", cfg)
		intake.waitListening(t)
		sids := receiveAll(t, []*sim.Sim{newTwilio(t, intake)}, n)
		for _, sid := range sids {
			// A delivery records its attempt before anything else sees it:
			// pending with none proves the app was never called.
			evs := sidEvents(t, intake, sid)
			if len(evs) != 1 || evs[0].State != "pending" || evs[0].Attempts != 0 {
				t.Fatalf("message %s with delivery disabled: events %+v, want one pending without attempts", sid, evs)
			}
		}
		if got := len(a.snapshot()); got != 0 {
			t.Fatalf("the app got %d requests from a process with delivery disabled", got)
		}
		if _, err := intake.stop(t); err != nil {
			t.Fatalf("stop the intake-only process: %v", err)
		}

		startServe(t, cfg)
		a.waitForSIDs(t, 60*time.Second, sids)
		if messages, extra := a.redelivered(sids); messages > 0 {
			t.Errorf("%d messages delivered more than once (%d extra deliveries)", messages, extra)
		}
	})
}
