package twilio

import (
	"slices"
	"testing"
	"time"
)

func TestParseConnectionOverrides(t *testing.T) {
	t.Parallel()
	ov := ParseConnectionOverrides("ct=50&rt=2000&tt=20000&rc=2&rp=all&xx=1")
	if ov.Connect != 100*time.Millisecond || ov.Read != 2*time.Second || ov.Total != 15*time.Second {
		t.Errorf("timeouts %v %v %v, want 100ms 2s 15s", ov.Connect, ov.Read, ov.Total)
	}
	if ov.Retries != 2 || ov.Policy != RetryAll {
		t.Errorf("retries %d policy %q, want 2 all", ov.Retries, ov.Policy)
	}
	if len(ov.Problems) != 3 {
		t.Errorf("problems %q, want ct, tt and xx", ov.Problems)
	}
	if want := []string{"ct=100", "rt=2000", "tt=15000", "rc=2", "rp=all"}; !slices.Equal(ov.Set, want) {
		t.Errorf("set %q, want %q", ov.Set, want)
	}
	if ov.LimitName("tt") != "the #tt override" {
		t.Errorf("LimitName(tt) = %q", ov.LimitName("tt"))
	}

	def := ParseConnectionOverrides("")
	if def.Total != 15*time.Second || def.Connect != 5*time.Second || def.Read != 15*time.Second ||
		def.Retries != 1 || def.Policy != RetryConnect || len(def.Set) != 0 {
		t.Errorf("defaults %+v", def)
	}
	if def.LimitName("tt") != "Twilio's limit" {
		t.Errorf("default LimitName = %q", def.LimitName("tt"))
	}
	bad := ParseConnectionOverrides("rc=x&rp=sometimes")
	if bad.Retries != 1 || bad.Policy != RetryConnect || len(bad.Problems) != 2 {
		t.Errorf("bad values should leave the defaults and be reported: %+v", bad)
	}
}

func TestRetryable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		policy string
		class  ErrorClass
		status int
		want   bool
	}{
		{RetryConnect, ClassConnect, 0, true},
		{RetryConnect, ClassTimeout, 0, false},
		{RetryConnect, ClassHTTPStatus, 503, false},
		{RetryConnect, ClassDNS, 0, false},
		{RetryReadTimeout, ClassTimeout, 0, true},
		{RetryReadTimeout, ClassHTTPStatus, 500, false},
		{Retry4xx, ClassHTTPStatus, 404, true},
		{Retry4xx, ClassHTTPStatus, 502, false},
		{Retry5xx, ClassHTTPStatus, 502, true},
		{Retry5xx, ClassHTTPStatus, 429, false},
		{Retry5xx, ClassConnect, 0, true},
		{RetryAll, ClassParse, 200, true},
		{RetryAll, ClassProtocol, 0, true},
	}
	for _, tt := range tests {
		ov := ParseConnectionOverrides("rp=" + tt.policy)
		if got := ov.Retryable(tt.class, tt.status); got != tt.want {
			t.Errorf("rp=%s Retryable(%q, %d) = %v, want %v", tt.policy, tt.class, tt.status, got, tt.want)
		}
	}
}
