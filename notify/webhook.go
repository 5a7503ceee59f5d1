package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"time"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/deliver"
)

// Webhook POSTs each notification as JSON, signed with Standard Webhooks'
// scheme so that any of its libraries verifies it:
//
//	webhook-id:        the notification event's id, the same on every attempt
//	webhook-timestamp: when this attempt was signed, in Unix seconds
//	webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">
//
// keyed with the secret's bytes (the base64 after "whsec_"). A receiver
// checks the signature, refuses timestamps far from its clock (replays),
// and drops an id it has already processed (retries).
type Webhook struct {
	*poster
	key []byte
	now func() time.Time
}

// NewWebhook returns a notifier posting to rawURL, signing with key.
func NewWebhook(rawURL string, key []byte, o Options) (*Webhook, error) {
	o.defaults()
	p, err := newPoster(rawURL, o)
	if err != nil {
		return nil, err
	}
	return &Webhook{poster: p, key: key, now: o.Now}, nil
}

// Target is the URL's origin.
func (w *Webhook) Target() string { return w.origin }

// Notify posts the notification, signed for this attempt.
func (w *Webhook) Notify(ctx context.Context, ev *switchboard.Event, req *switchboard.Request, _ int) deliver.NotifyOutcome {
	// The stored body is sent as it is, but only if it is a notification:
	// a signature vouches for what it covers.
	if _, err := decode(req); err != nil {
		return undecodable(w.origin, err)
	}
	ts := w.now().Unix()
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("webhook-id", ev.ID)
	h.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	h.Set("webhook-signature", Sign(w.key, ev.ID, ts, req.Body))
	return w.post(ctx, h, req.Body)
}

// Sign is the webhook-signature header of a Standard Webhooks message:
// "v1," and the base64 HMAC-SHA256, keyed with key, of the message's id,
// timestamp and body joined by dots.
func Sign(key []byte, id string, timestamp int64, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write([]byte(strconv.FormatInt(timestamp, 10)))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
