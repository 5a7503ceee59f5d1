package web

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/twilio"
)

// twilioMessageStore is what the Messages resource of the
// Twilio-compatible API needs besides create and fetch: every call is
// scoped to the authenticated account.
type twilioMessageStore interface {
	ListAccountMessages(ctx context.Context, f switchboard.AccountFilter) (*switchboard.AccountPage, error)
	CancelMessage(ctx context.Context, accountSID, id string) (*switchboard.OutboundMessage, error)
	RedactMessage(ctx context.Context, accountSID, id string) (*switchboard.OutboundMessage, error)
	DeleteMessage(ctx context.Context, accountSID, id string) error
}

// Twilio's codes for the list, update and delete of messages.
const (
	// codeUpdateInvalid: an update that is neither a cancel nor a
	// redaction, or both at once.
	codeUpdateInvalid twilio.Code = 30400
	// codeNotCancelable: a cancel of a message past the point where it can
	// be withdrawn.
	codeNotCancelable twilio.Code = 30409
	// codeIncomplete: a delete, or a redaction, of a message whose send is
	// not over.
	codeIncomplete twilio.Code = 20009

	defaultTwilioPageSize = 50
	// maxTwilioPage bounds the page number a client may send back, so
	// that start and end cannot overflow.
	maxTwilioPage = 1 << 30
)

// twilioListFilters are the list's filter parameters, as Twilio spells
// them; the paging links repeat them as given.
var twilioListFilters = []string{"To", "From", "DateSent", "DateSent<", "DateSent>"}

// twilioList is GET /2010-04-01/Accounts/{Sid}/Messages.json: the account's
// messages newest first, a page at a time, in Twilio's paging envelope.
// Filters: To, From, DateSent (a day), DateSent< (on or before) and
// DateSent> (on or after); PageSize (default 50, at most 1000). Pages are
// read by keyset from an opaque PageToken, so a page starts where the one
// before it ended whatever is created meanwhile.
func (s *Server) twilioList(w http.ResponseWriter, r *http.Request, account string) error {
	q := r.URL.Query()
	f, page, err := parseTwilioList(q)
	if err != nil {
		return err
	}
	f.AccountSID = account
	backward := f.Before != nil
	res, err := s.store.ListAccountMessages(r.Context(), f)
	if err != nil {
		return err
	}

	base := TwilioPrefix + "Accounts/" + url.PathEscape(account) + "/Messages.json"
	pageURI := func(n int, token string) string {
		v := url.Values{}
		for _, k := range twilioListFilters {
			if q.Has(k) {
				v.Set(k, q.Get(k))
			}
		}
		v.Set("PageSize", strconv.Itoa(f.Limit))
		v.Set("Page", strconv.Itoa(n))
		if token != "" {
			v.Set("PageToken", token)
		}
		return base + "?" + v.Encode()
	}
	var next, previous any
	if n := len(res.Items); n > 0 {
		first, last := res.Items[0], res.Items[n-1]
		// Forward, More says older messages follow; backward, that newer
		// ones precede. A page read backward came from an older one, and a
		// page read after a token from a newer one.
		if tok := pageToken(tokenAfter, last); tok != "" && (!backward && res.More || backward) {
			next = pageURI(page+1, tok)
		}
		if tok := pageToken(tokenBefore, first); tok != "" && (backward && res.More || !backward && f.After != nil) {
			previous = pageURI(max(page-1, 0), tok)
		}
	}
	messages := make([]map[string]any, len(res.Items))
	for i, m := range res.Items {
		messages[i] = twilioMessageJSON(m)
	}
	start := page * f.Limit
	writeTwilioJSON(w, http.StatusOK, map[string]any{
		"messages":          messages,
		"page":              page,
		"page_size":         f.Limit,
		"start":             start,
		"end":               start + max(len(messages)-1, 0),
		"uri":               r.URL.RequestURI(),
		"first_page_uri":    pageURI(0, ""),
		"next_page_uri":     next,
		"previous_page_uri": previous,
	})
	return nil
}

// parseTwilioList reads the list's parameters into a filter (without its
// account) and the page number. Unknown parameters are ignored, as Twilio
// does; a malformed one is 20001.
func parseTwilioList(q url.Values) (switchboard.AccountFilter, int, error) {
	f := switchboard.AccountFilter{To: strings.TrimSpace(q.Get("To")), From: strings.TrimSpace(q.Get("From")),
		Limit: defaultTwilioPageSize}
	bad := func(format string, a ...any) error {
		return twilioErr(http.StatusBadRequest, codeInvalidParameter, format, a...)
	}
	if v := q.Get("PageSize"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return f, 0, bad("PageSize %q must be a positive number.", v)
		}
		f.Limit = min(n, switchboard.MaxAccountPage)
	}
	page := 0
	if v := q.Get("Page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > maxTwilioPage {
			return f, 0, bad("Page %q must be a number from 0 to %d.", v, maxTwilioPage)
		}
		page = n
	}
	if v := q.Get("PageToken"); v != "" {
		kind, pos, ok := parsePageToken(v)
		if !ok {
			return f, 0, bad("PageToken %q is not one this API issued.", v)
		}
		if kind == tokenAfter {
			f.After = &pos
		} else {
			f.Before = &pos
		}
	} else if page != 0 {
		return f, 0, bad("Page %d needs the PageToken of the page's link.", page)
	}

	// DateSent is a day; DateSent< and DateSent> bound the time sent, on
	// or before and on or after. Each takes a day (YYYY-MM-DD, in UTC) or
	// an RFC 3339 time, as twilio-go sends them.
	for _, k := range []string{"DateSent", "DateSent<", "DateSent>"} {
		v := q.Get(k)
		if v == "" {
			continue
		}
		t, isDay, ok := parseDateSent(v)
		if !ok {
			return f, 0, bad("%s %q is not a date (YYYY-MM-DD) or an RFC 3339 time.", k, v)
		}
		var since, before time.Time
		switch {
		case k == "DateSent":
			day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC) // the day as written
			since, before = day, day.AddDate(0, 0, 1)
		case k == "DateSent<" && isDay:
			before = t.AddDate(0, 0, 1)
		case k == "DateSent<":
			before = t.Add(time.Microsecond) // at or before: the stores keep microseconds
		default:
			since = t
		}
		if !since.IsZero() && since.After(f.SentSince) {
			f.SentSince = since
		}
		if !before.IsZero() && (f.SentBefore.IsZero() || before.Before(f.SentBefore)) {
			f.SentBefore = before
		}
	}
	return f, page, nil
}

// parseDateSent reads a day (midnight UTC, isDay) or an RFC 3339 time.
func parseDateSent(v string) (t time.Time, isDay, ok bool) {
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, true, true
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, false, true
	}
	return time.Time{}, false, false
}

// A PageToken names a position in the listing (switchboard.MessagePosition)
// and which way the page goes from it: tokenAfter, then 32 characters of
// unpadded base64url holding the creation time (Unix microseconds, 8 bytes
// big-endian) and the message id (a UUID, 16 bytes), the page after that
// message; tokenBefore, the page before it. It says nothing of the account:
// the listing is always the caller's own.
const (
	tokenAfter  = "PA"
	tokenBefore = "PB"
	tokenBytes  = 8 + 16
)

// pageToken is the token of the page after (tokenAfter) or before
// (tokenBefore) m. Stored ids are UUIDs; one that is not (which no message
// created through the services has) gives no token, and its page no link.
func pageToken(kind string, m *switchboard.OutboundMessage) string {
	id, err := uuid.Parse(m.ID)
	if err != nil {
		return ""
	}
	var b [tokenBytes]byte
	binary.BigEndian.PutUint64(b[:8], uint64(m.CreatedAt.UnixMicro()))
	copy(b[8:], id[:])
	return kind + base64.RawURLEncoding.EncodeToString(b[:])
}

// parsePageToken reads a token pageToken made; ok is false for anything
// else.
func parsePageToken(tok string) (kind string, pos switchboard.MessagePosition, ok bool) {
	if len(tok) != 2+base64.RawURLEncoding.EncodedLen(tokenBytes) {
		return "", pos, false
	}
	kind = tok[:2]
	if kind != tokenAfter && kind != tokenBefore {
		return "", pos, false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(tok[2:])
	if err != nil || len(b) != tokenBytes {
		return "", pos, false
	}
	id, err := uuid.FromBytes(b[8:])
	if err != nil {
		return "", pos, false
	}
	pos = switchboard.MessagePosition{CreatedAt: time.UnixMicro(int64(binary.BigEndian.Uint64(b[:8]))).UTC(), ID: id.String()}
	return kind, pos, true
}

// twilioUpdate is POST /2010-04-01/Accounts/{Sid}/Messages/{Sid}.json:
// Status=canceled cancels a message still queued (30409 once it is being
// sent or Twilio has it); Body= (empty) redacts the body of a message
// whose send is over (20009 before). Anything else is 30400. It answers
// the message as it now stands, 200.
func (s *Server) twilioUpdate(w http.ResponseWriter, r *http.Request, account string) error {
	// Looked up before the form is read: a message Switchboard does not
	// hold goes to Twilio with its body unread.
	m, passed, err := s.pathMessage(w, r, account)
	if passed || err != nil {
		return err
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxTwilioFormBytes)
	if err := r.ParseForm(); err != nil {
		return twilioErr(http.StatusBadRequest, codeInvalidParameter, "Unable to parse the request body: %v", err)
	}
	form := r.PostForm
	cancel, redact := form.Has("Status"), form.Has("Body")
	bad := func(msg string) error { return twilioErr(http.StatusBadRequest, codeUpdateInvalid, "%s", msg) }
	switch {
	case cancel && redact:
		return bad("A message cannot be canceled and redacted at once.")
	case cancel && form.Get("Status") != string(switchboard.MessageCanceled):
		return bad("Status must be 'canceled'.")
	case redact && form.Get("Body") != "":
		return bad("Body must be empty: a message's body can only be redacted.")
	case !cancel && !redact:
		return bad("Body or Status is required.")
	}
	if cancel {
		m, err = s.store.CancelMessage(r.Context(), account, m.ID)
	} else {
		m, err = s.store.RedactMessage(r.Context(), account, m.ID)
	}
	switch {
	case errors.Is(err, switchboard.ErrNotCancelable):
		return twilioErr(http.StatusBadRequest, codeNotCancelable, "This message cannot be canceled: it is being sent or was sent.")
	case errors.Is(err, switchboard.ErrNotSettled):
		return twilioErr(http.StatusBadRequest, codeIncomplete, "Cannot redact a message before its delivery is complete.")
	case err != nil:
		return err
	}
	writeTwilioJSON(w, http.StatusOK, twilioMessageJSON(m))
	return nil
}

// twilioDelete is DELETE /2010-04-01/Accounts/{Sid}/Messages/{Sid}.json: the
// message and its status history go, 204. A message still queued or
// being sent is refused (20009); cancel it first.
func (s *Server) twilioDelete(w http.ResponseWriter, r *http.Request, account string) error {
	m, passed, err := s.pathMessage(w, r, account)
	if passed || err != nil {
		return err
	}
	err = s.store.DeleteMessage(r.Context(), account, m.ID)
	switch {
	case errors.Is(err, switchboard.ErrNotSettled):
		return twilioErr(http.StatusBadRequest, codeIncomplete, "Cannot delete a message before its delivery is complete.")
	case err != nil:
		return fmt.Errorf("delete message: %w", err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
