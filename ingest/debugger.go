package ingest

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/twilio"
)

// debuggerAlert reads the alert of a Debugger webhook on a route of kind
// debugger (see twilio.ParseDebugger): a form POST, signed with the
// route's account's token (checked before), naming that account. Anything
// else is refused, 400, and recorded like any rejection.
func debuggerAlert(r *http.Request, mediaType string, form url.Values, route Route) (*switchboard.DebuggerAlert, error) {
	if r.Method != http.MethodPost || mediaType != "application/x-www-form-urlencoded" {
		return nil, reject(http.StatusBadRequest, "a Debugger webhook is a form POST, not %s %s", r.Method, excerpt(mediaType))
	}
	a, err := twilio.ParseDebugger(form, route.AccountSID)
	if err != nil {
		return nil, reject(http.StatusBadRequest, "%v", err)
	}
	return a, nil
}

// resourceSIDs files an alert's resource under the event's message or
// call SID, so that a search by either finds the Debugger's events too.
func resourceSIDs(sid string) (messageSID, callSID string) {
	switch {
	case strings.HasPrefix(sid, "SM"), strings.HasPrefix(sid, "MM"):
		return sid, ""
	case strings.HasPrefix(sid, "CA"):
		return "", sid
	}
	return "", ""
}
