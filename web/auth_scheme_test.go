package web_test

import (
	"net/http"
	"strings"
	"testing"
)

func TestBearerSchemeIsCaseInsensitive(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, auth := range []string{"bearer " + token, "BEARER " + token, "Bearer " + token} {
		resp, body := f.do(t, call{method: http.MethodGet, path: "/api/v1/events", auth: auth})
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%q: status %d %s", auth, resp.StatusCode, body)
		}
	}
	resp, _ := f.do(t, call{method: http.MethodGet, path: "/api/v1/events", auth: "Basic " + token})
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("Basic scheme: status %d, want 401", resp.StatusCode)
	}
}

func TestConflictingOutcomeFiltersAreRefused(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	for _, q := range []string{"rejected=true&duplicate=true", "outcome=accepted&rejected=true", "outcome=rejected&duplicate=true"} {
		resp, body := f.get(t, "/api/v1/requests?"+q)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "conflicts") {
			t.Errorf("%s: status %d %s, want 400 naming the conflict", q, resp.StatusCode, body)
		}
	}
	if resp, body := f.get(t, "/api/v1/requests?outcome=rejected&rejected=true"); resp.StatusCode != http.StatusOK {
		t.Errorf("agreeing filters: status %d %s", resp.StatusCode, body)
	}
}
