package traffic

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
)

func post(t *testing.T, url, eventID string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader("a=1"))
	if err != nil {
		t.Error(err)
		return
	}
	if eventID != "" {
		req.Header.Set(EventIDHeader, eventID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("status %d; want 204", resp.StatusCode)
	}
}

func TestSink(t *testing.T) {
	t.Parallel()
	sink, err := StartSink(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sink.Close)

	const distinct, repeats, anonymous = 40, 15, 2
	waited := make(chan error, 1)
	go func() { waited <- sink.WaitFor(t.Context(), distinct) }()

	var wg sync.WaitGroup
	for i := range distinct {
		wg.Go(func() { post(t, sink.URL()+"/events", "ev_"+string(rune('A'+i))) })
	}
	wg.Wait()
	if err := <-waited; err != nil {
		t.Fatalf("WaitFor: %v", err)
	}
	for i := range repeats {
		wg.Go(func() { post(t, sink.URL()+"/events", "ev_"+string(rune('A'+i%3))) })
	}
	for range anonymous {
		wg.Go(func() { post(t, sink.URL(), "") })
	}
	wg.Wait()

	if got := sink.Delivered(); got != distinct {
		t.Errorf("Delivered() = %d; want %d", got, distinct)
	}
	if got := sink.Duplicates(); got != repeats {
		t.Errorf("Duplicates() = %d; want %d", got, repeats)
	}
	if got := sink.Deliveries(); got != distinct+repeats+anonymous {
		t.Errorf("Deliveries() = %d; want %d", got, distinct+repeats+anonymous)
	}
	if got := sink.Rate(); got < 0 {
		t.Errorf("Rate() = %v; want >= 0", got)
	}
	if err := sink.WaitFor(t.Context(), distinct); err != nil {
		t.Errorf("WaitFor(reached) = %v; want nil", err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := sink.WaitFor(ctx, distinct+1); !errors.Is(err, context.Canceled) {
		t.Errorf("WaitFor(canceled) = %v; want context.Canceled", err)
	}
}

func TestSinkClose(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	sink, err := StartSink(ctx)
	if err != nil {
		t.Fatal(err)
	}
	post(t, sink.URL(), "ev_1")

	// Ending the sink's context closes it, whether WaitFor is already
	// waiting or starts afterwards.
	cancel()
	if err := sink.WaitFor(t.Context(), 2); !errors.Is(err, ErrSinkClosed) {
		t.Errorf("WaitFor after cancel = %v; want ErrSinkClosed", err)
	}
	sink.Close() // again
	if got := sink.Delivered(); got != 1 {
		t.Errorf("Delivered() after close = %d; want 1", got)
	}
	if _, err := http.Post(sink.URL(), "text/plain", nil); err == nil {
		t.Error("closed sink still answers")
	}
}

func TestReferenceStop(t *testing.T) {
	t.Parallel()
	url, stop, err := StartReference(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	stop()
	stop() // again
	if _, err := http.Post(url, "text/plain", nil); err == nil {
		t.Error("stopped reference server still answers")
	}
}
