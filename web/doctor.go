package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/doctor"
)

// Doctor probes webhook URLs for the admin API.
type Doctor interface {
	// Probe checks one URL. An error means the request itself was invalid
	// (wrapping switchboard.ErrInvalid); what the probe found is in the
	// report.
	Probe(ctx context.Context, req ProbeRequestJSON) (*doctor.Report, error)
	// CheckRoutes probes every configured route's target.
	CheckRoutes(ctx context.Context) []RouteReportJSON
}

// ProbeRequestJSON is the body of POST /api/v1/doctor.
type ProbeRequestJSON struct {
	URL    string `json:"url"`
	Kind   string `json:"kind,omitempty"`   // sms (default), voice, status, client-notification
	Method string `json:"method,omitempty"` // POST (default) or GET
	// Account names a configured account whose first auth token signs the
	// probe, as Twilio would; the token itself never leaves the server.
	Account string `json:"account,omitempty"`
}

// RouteReportJSON is one route's probe in POST /api/v1/doctor/routes.
type RouteReportJSON struct {
	Route  string         `json:"route"`
	Target string         `json:"target"`
	Failed bool           `json:"failed"`
	Report *doctor.Report `json:"report"`
}

// WithDoctor enables POST /api/v1/doctor and POST /api/v1/doctor/routes.
func WithDoctor(d Doctor) Option { return func(s *Server) { s.doctor = d } }

func (s *Server) probe(w http.ResponseWriter, r *http.Request) error {
	if s.doctor == nil {
		return errNoEndpoint
	}
	var req ProbeRequestJSON
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return fmt.Errorf("%w: doctor body: %v", switchboard.ErrInvalid, err)
	}
	report, err := s.doctor.Probe(r.Context(), req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, report)
	return nil
}

func (s *Server) checkRoutes(w http.ResponseWriter, r *http.Request) error {
	if s.doctor == nil {
		return errNoEndpoint
	}
	writeJSON(w, http.StatusOK, map[string]any{"routes": s.doctor.CheckRoutes(r.Context())})
	return nil
}
