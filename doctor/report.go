package doctor

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-dev/switchboard/twilio"
)

// Status is the outcome of one check.
type Status string

// Outcomes of a check. Only StatusFail means Twilio would log an error.
const (
	StatusPass Status = "pass"
	StatusWarn Status = "warn"
	StatusFail Status = "fail"
)

// Finding is the outcome of one check.
type Finding struct {
	// Check is a short identifier of the check: host, dns, reachability,
	// connect, tls, redirect, auth, status, signature, latency,
	// content-type, sniff, size, twiml, overrides or http.
	Check  string `json:"check"`
	Status Status `json:"status"`
	// Code is the Twilio error the problem leads to, 0 for none.
	Code twilio.Code `json:"code,omitempty"`
	// Message tells what was found, in one line.
	Message string `json:"message"`
	// Fix tells how to fix it, in one line.
	Fix string `json:"fix,omitempty"`
}

// Hop is one request of a probe that met a redirect.
type Hop struct {
	URL    string `json:"url"`
	Method string `json:"method"`
	Status int    `json:"status"` // 0 when no response arrived
}

// Report is the outcome of a probe.
type Report struct {
	URL      string    `json:"url"`
	Kind     Kind      `json:"kind"`
	Findings []Finding `json:"findings"`
	// Hops lists every request made, when the first one was redirected.
	Hops    []Hop         `json:"hops,omitempty"`
	Elapsed time.Duration `json:"elapsed_ns"`
}

// Failed reports whether any finding is a failure, that is whether Twilio
// would log an error calling the URL.
func (r *Report) Failed() bool {
	for _, f := range r.Findings {
		if f.Status == StatusFail {
			return true
		}
	}
	return false
}

// Text returns a human summary of the report: a header, one line per
// finding such as
//
//	FAIL  tls           11237  certificate signed by unknown authority — fix: ...
//
// the redirect hops if any, and a verdict.
func (r *Report) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s) in %s\n", r.URL, r.Kind, r.Elapsed.Round(time.Millisecond))
	width := 0
	for _, f := range r.Findings {
		width = max(width, len(f.Check))
	}
	for _, f := range r.Findings {
		code := ""
		if f.Code != 0 {
			code = strconv.Itoa(int(f.Code))
		}
		line := fmt.Sprintf("%-4s  %-*s  %-5s  %s", strings.ToUpper(string(f.Status)), width, f.Check, code, f.Message)
		if f.Fix != "" && f.Status != StatusPass {
			line += " — fix: " + f.Fix
		}
		b.WriteString(line + "\n")
	}
	for i, h := range r.Hops {
		status := "no response"
		if h.Status != 0 {
			status = strconv.Itoa(h.Status)
		}
		fmt.Fprintf(&b, "hop %d: %s %s → %s\n", i+1, h.Method, h.URL, status)
	}
	if r.Failed() {
		b.WriteString("Twilio would log an error calling this URL\n")
	} else {
		b.WriteString("Twilio would call this URL without error\n")
	}
	return b.String()
}

func (r *Report) add(f Finding) { r.Findings = append(r.Findings, f) }

func (r *Report) pass(check, msg string) {
	r.add(Finding{Check: check, Status: StatusPass, Message: msg})
}

func (r *Report) warn(check string, code twilio.Code, msg, fix string) {
	r.add(Finding{Check: check, Status: StatusWarn, Code: code, Message: msg, Fix: fix})
}

func (r *Report) fail(check string, code twilio.Code, msg, fix string) {
	r.add(Finding{Check: check, Status: StatusFail, Code: code, Message: msg, Fix: fix})
}
