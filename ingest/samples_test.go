package ingest_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/ingest"
	"github.com/switchboard-dev/switchboard/rollup"
	"github.com/switchboard-dev/switchboard/sqlite"
)

// Every answer is sampled for the dashboard, and so is every webhook not
// recorded: with the ones recorded, the dashboard counts each webhook
// once, a flood's included.
func TestAnswersAndUnrecordedWebhooksAreSampled(t *testing.T) {
	t.Parallel()
	store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "sb.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	samples := rollup.NewSampler("n1")
	h := ingest.New(ingest.Options{
		Store: store, PublicURL: public, MaxBodyBytes: 4096, AckTimeout: 5 * time.Second, Samples: samples,
		Routes: []ingest.Route{{Path: "/sms", AccountSID: account, Tokens: []string{token}, TwiML: []byte("<Response/>")}},
	})
	srv := httptest.NewServer(h)
	t.Cleanup(func() { srv.Close(); store.Close() })
	f := &fixture{store: store, srv: srv}

	const flood = 30
	f.send(t, webhook{path: "/sms", body: smsBody})
	for i := range flood {
		if resp, _ := f.send(t, webhook{path: "/sms", body: smsBody, idemToken: fmt.Sprintf("replay-%d", i)}); resp.StatusCode != http.StatusOK {
			t.Fatalf("replay: %d", resp.StatusCode)
		}
		if resp, _ := f.send(t, webhook{path: "/sms", body: "Body=x", signWith: "attacker"}); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("forged: %d", resp.StatusCode)
		}
	}
	srv.Close() // waits for the handlers: each samples its answer after writing it
	got := sampled(samples)
	if acks := got[sampleKey{switchboard.SampleAck, ""}]; acks != 1+2*flood {
		t.Errorf("%v answers sampled, want %d", acks, 1+2*flood)
	}
	for _, outcome := range []switchboard.Outcome{switchboard.OutcomeDuplicate, switchboard.OutcomeRejected} {
		recorded := len(f.requests(t, outcome))
		if unrecorded := got[sampleKey{switchboard.SampleUnrecorded, string(outcome)}]; unrecorded == 0 ||
			int(unrecorded)+recorded != flood {
			t.Errorf("%s: %d recorded and %v sampled as not, want %d together, some of them sampled", outcome, recorded, unrecorded, flood)
		}
	}
}

type sampleKey struct {
	series switchboard.SampleSeries
	key    string
}

// sampled sums a sampler's samples by series and key.
func sampled(s *rollup.Sampler) map[sampleKey]float64 {
	all, _ := s.Samples(time.Now())
	out := map[sampleKey]float64{}
	for _, sm := range all {
		out[sampleKey{sm.Series, sm.Key}] += sm.Value
	}
	return out
}
