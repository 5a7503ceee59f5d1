package outbound

import (
	"errors"
	"net/http"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/metrics"
	"github.com/switchboard-dev/switchboard/twilio"
)

// Send metrics (metrics.Metrics.OutboundSends and Outbound429s), counted by
// the send path as it records each result (Options.Metrics).

// Send outcomes, the outcome label of metrics.Metrics.OutboundSends.
const (
	OutcomeSent   = "sent"   // Twilio accepted the message
	OutcomeRetry  = "retry"  // queued again after a failed or ambiguous attempt
	OutcomeFailed = "failed" // refused, suppressed, or out of attempts
)

// SendOutcome is the outcome a send result records, or "" for none: a
// message marked sending, or put back in the queue for pacing (queued
// without an error).
func SendOutcome(r switchboard.SendResult) string {
	switch {
	case r.State == switchboard.MessageSent:
		return OutcomeSent
	case r.State == switchboard.MessageFailed:
		return OutcomeFailed
	case r.State == switchboard.MessageQueued && r.Error != "":
		return OutcomeRetry
	}
	return ""
}

// ObserveSend counts r's outcome for pool in m; nil m counts nothing.
func ObserveSend(m *metrics.Metrics, pool string, r switchboard.SendResult) {
	if o := SendOutcome(r); m != nil && o != "" {
		m.OutboundSends.WithLabelValues(pool, o).Inc()
	}
}

// Is429 reports whether err is Twilio's 429 or 20429 answer.
func Is429(err error) bool {
	var re *twilio.RestError
	return errors.As(err, &re) && (re.Status == http.StatusTooManyRequests || re.Code == twilio.CodeTooManyRequests)
}

// Observe429 counts err for pool in m when it is Twilio's 429 or 20429; nil
// m counts nothing.
func Observe429(m *metrics.Metrics, pool string, err error) {
	if m != nil && Is429(err) {
		m.Outbound429s.WithLabelValues(pool).Inc()
	}
}
