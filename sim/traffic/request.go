package traffic

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/uuid"

	"github.com/switchboard-dev/switchboard/twilio"
)

// Headers Twilio sends with every webhook, besides its signature and
// idempotency token.
const (
	userAgent  = "TwilioProxy/1.1"
	homeRegion = "us1"
)

// requestMaker builds a run's requests, signed as Twilio signs them.
type requestMaker struct {
	gen         *generator
	contentType string
	target      string // Options.Target
	signedURL   string // Options.SignedURL
	authToken   string
	// signForm is whether a form body is signed with its parameters, as
	// twilio.SignRequest would sign it: always, unless the signed URL
	// already carries a body hash.
	signForm bool
}

func newRequestMaker(opts *Options) (*requestMaker, error) {
	u, err := url.Parse(opts.SignedURL)
	if err != nil {
		return nil, fmt.Errorf("signed URL %q: %w", opts.SignedURL, err)
	}
	gen := newGenerator(*opts)
	return &requestMaker{
		gen:         gen,
		contentType: gen.contentType(),
		target:      opts.Target,
		signedURL:   opts.SignedURL,
		authToken:   opts.AuthToken,
		signForm:    !u.Query().Has("bodySHA256"),
	}, nil
}

// request returns request n with every header Twilio sends: the signature,
// a fresh idempotency token, the home region and Twilio's User-Agent.
func (m *requestMaker) request(ctx context.Context, n int) (*http.Request, error) {
	body, form, err := m.gen.payload(n)
	if err != nil {
		return nil, err
	}
	signedURL, sig, err := m.sign(body, form)
	if err != nil {
		return nil, fmt.Errorf("sign request %d: %w", n, err)
	}
	target, err := m.requestURL(signedURL)
	if err != nil {
		return nil, fmt.Errorf("request %d: %w", n, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build request %d: %w", n, err)
	}
	req.Header.Set("Content-Type", m.contentType)
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("X-Home-Region", homeRegion)
	req.Header.Set("I-Twilio-Idempotency-Token", uuid.NewString())
	req.Header.Set("X-Twilio-Signature", sig)
	return req, nil
}

// sign returns the URL Twilio requests for body and its signature, as
// twilio.SignRequest computes them. A form body is signed with form, the
// parameters it was encoded from, rather than parsed back: the same
// signature for less work on the generator's hot path.
func (m *requestMaker) sign(body []byte, form url.Values) (signedURL, signature string, err error) {
	if form != nil && m.signForm {
		return m.signedURL, twilio.Signature(m.authToken, m.signedURL, form), nil
	}
	return twilio.SignRequest(m.authToken, m.signedURL, m.contentType, body)
}

// requestURL returns the URL to send a request to whose signature covers
// signedURL: the target, with whatever signing added to the configured
// signed URL (bodySHA256, for a JSON body) added to its query too. When the
// target's path and query are the signed URL's, as behind a proxy that
// passes them through, the receiver sees exactly the signed path and query.
func (m *requestMaker) requestURL(signedURL string) (string, error) {
	added, ok := strings.CutPrefix(signedURL, m.signedURL)
	if !ok {
		return "", fmt.Errorf("signed URL %q does not extend %q", signedURL, m.signedURL)
	}
	added = strings.TrimLeft(added, "?&")
	if added == "" {
		return m.target, nil
	}
	switch {
	case !strings.Contains(m.target, "?"):
		return m.target + "?" + added, nil
	case strings.HasSuffix(m.target, "?"), strings.HasSuffix(m.target, "&"):
		return m.target + added, nil
	default:
		return m.target + "&" + added, nil
	}
}
