package twilio

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
)

// Errors Verify returns besides one wrapping ErrMalformedForm.
var (
	// ErrMissingSignature means the request carried no X-Twilio-Signature.
	ErrMissingSignature = errors.New("missing X-Twilio-Signature")
	// ErrBadSignature means the signature matches none of the auth tokens,
	// or there was no auth token to check it with.
	ErrBadSignature = errors.New("invalid X-Twilio-Signature")
	// ErrBodyHashMismatch means the signature is valid but the body is not
	// the one whose SHA-256 the signed URL's bodySHA256 parameter names.
	ErrBodyHashMismatch = errors.New("body does not match bodySHA256")
	// ErrUnsignedContent means the request carries content its signature
	// does not cover (see Verify): accepting it would let whatever was
	// added to a captured signature pass for signed.
	ErrUnsignedContent = errors.New("content not covered by X-Twilio-Signature")
)

// bodyHashParam is the query parameter through which Twilio signs bodies it
// does not send as a form (JSON).
const bodyHashParam = "bodySHA256"

// Signature returns the X-Twilio-Signature Twilio computes with the auth
// token over fullURL and the form parameters of a POST: the base64 of the
// HMAC-SHA1 of fullURL followed, for each key in byte order, by the key and
// one of its values, for each of its distinct values in byte order.
//
// fullURL is used byte for byte, so it must be the URL exactly as Twilio
// requested it, without any fragment; SignRequest and ValidateRequest take
// care of that. Pass nil params for a GET or a JSON body.
//
// A repeated key contributes every distinct value, as Twilio's Python and
// Node libraries compute it. twilio-go's RequestValidator.ValidateBody keeps
// only the first value of each key, so it rejects genuine requests that
// repeat a key; this function does not share that bug.
func Signature(token, fullURL string, params url.Values) string {
	return sign(token, fullURL+paramString(params))
}

// SignRequest returns the URL and X-Twilio-Signature Twilio would send for a
// request to fullURL with the given Content-Type and body. It is what a
// simulator of Twilio uses, and ValidateRequest accepts what it returns.
//
//   - A form body (application/x-www-form-urlencoded, in any case, whatever
//     its parameters) is signed with its parameters; the URL is unchanged.
//   - A JSON body (application/json) is signed by adding
//     bodySHA256=<hex SHA-256 of the body> to the URL's query, leaving the
//     existing query byte for byte as it was, and signing that URL alone.
//   - Anything else, including an empty body, is signed over the URL alone.
//
// A URL that already has a bodySHA256 parameter is signed alone, whatever
// the body, since that is how receivers check it. Any fragment is removed
// from the URL: Twilio reads it for its connection overrides and never
// sends or signs it. The error, which wraps ErrMalformedForm, is for a form
// body ParseForm rejects.
func SignRequest(token, fullURL, contentType string, body []byte) (signedURL, signature string, err error) {
	u := stripFragment(fullURL)
	if _, ok := queryParam(rawQuery(u), bodyHashParam); ok || len(body) == 0 {
		return u, Signature(token, u, nil), nil
	}
	switch mediaType(contentType) {
	case "application/x-www-form-urlencoded":
		params, err := ParseForm(body)
		if err != nil {
			return "", "", fmt.Errorf("sign request: %w", err)
		}
		return u, Signature(token, u, params), nil
	case "application/json":
		sum := sha256.Sum256(body)
		u = appendQuery(u, bodyHashParam+"="+hex.EncodeToString(sum[:]))
		return u, Signature(token, u, nil), nil
	default:
		return u, Signature(token, u, nil), nil
	}
}

// ValidateRequest checks the X-Twilio-Signature of a POST Twilio sent to
// fullURL; it is Verify for a POST, without the Verified. It returns nil
// only if the signature is valid and covers the whole request, and
// otherwise one of the errors Verify returns.
func ValidateRequest(tokens []string, fullURL, contentType string, body []byte, signature string) error {
	_, err := Verify(tokens, Request{Method: "POST", URL: fullURL, ContentType: contentType, Body: body}, signature)
	return err
}

// Request is a webhook request as its signature sees it.
type Request struct {
	Method      string // GET or POST; an empty Method is POST
	URL         string // the public URL exactly as Twilio requested it
	ContentType string
	Body        []byte
}

// Verified is what a valid X-Twilio-Signature vouched for.
type Verified struct {
	// Form holds the parameters of a form body, which the signature
	// covers either as parameters or through bodySHA256; nil when the
	// body is not a form.
	Form url.Values
	// Digest is the SHA-256 of the string the signature was computed
	// over: the URL as Twilio signed it (its port spelled as Twilio did)
	// and the form parameters, or the URL alone when it carries the
	// body's hash or there is no body. It is the same for every request
	// carrying the same signed content, however the unsigned parts
	// (headers, a port variant, pair order or escaping in a form body)
	// differ, and differs for any change to the signed content.
	Digest [sha256.Size]byte
}

// Verify checks the X-Twilio-Signature of a request and that the
// signature covers all of the request's content, and returns what it
// covered. It fails closed: nothing a signature did not cover may be
// taken for signed, since whatever is delivered onwards is signed again.
//
// The signature may have been made with any of tokens, so that an auth
// token can be rotated while both are live; empty tokens are ignored, and
// with none left every signature is bad. It may cover the URL as given,
// with the scheme's default port added if it has no port, or with its port
// removed, because Twilio is not consistent about ports. Only the port is
// changed: the path and query stay byte for byte as they arrived.
// Signatures are compared in constant time. Any fragment is dropped from
// the URL, as Twilio never signs one; callers that must not accept one at
// all refuse it themselves.
//
// What a signature covers, and so what Verify accepts:
//
//   - a URL whose query has a bodySHA256 parameter: the URL alone, and the
//     body through its SHA-256, which must equal the parameter (in hex of
//     either case), whatever the body's type;
//   - otherwise a POST with a non-empty application/x-www-form-urlencoded
//     body: the URL and every parameter;
//   - otherwise a request without a body: the URL alone.
//
// Anything else carries content the signature does not cover: a GET with a
// body, or a POST whose non-empty body is neither a form nor hashed in the
// URL (JSON without bodySHA256, XML, text…). Such a request is refused
// with ErrUnsignedContent.
//
// A form may repeat a pair: the signature counts each distinct value of a
// key once, as Twilio's own validators do, so the copies carry nothing the
// signature did not cover, and the Digest is the same as without them.
//
// It returns ErrMissingSignature, ErrBadSignature, ErrBodyHashMismatch,
// ErrUnsignedContent or an error wrapping ErrMalformedForm. The signature
// is checked before the body's hash, so a forged request reports
// ErrBadSignature.
func Verify(tokens []string, r Request, signature string) (*Verified, error) {
	if signature == "" {
		return nil, ErrMissingSignature
	}
	u := stripFragment(r.URL)
	wantHash, hashed := queryParam(rawQuery(u), bodyHashParam)
	isForm := mediaType(r.ContentType) == "application/x-www-form-urlencoded"
	get := r.Method != "" && r.Method != "POST"
	switch {
	case len(r.Body) == 0:
	case get:
		return nil, fmt.Errorf("%w: a %s request with a body (signed over its URL alone)", ErrUnsignedContent, r.Method)
	case !hashed && !isForm:
		return nil, fmt.Errorf("%w: a %q body without bodySHA256 in the URL", ErrUnsignedContent, mediaType(r.ContentType))
	}

	var form url.Values
	if isForm && len(r.Body) > 0 {
		var err error
		if form, err = ParseForm(r.Body); err != nil {
			return nil, fmt.Errorf("validate signature: %w", err)
		}
	}
	var params string
	if form != nil && !hashed {
		params = paramString(form)
	}

	signed, err := matchSignature(tokens, u, params, signature)
	if err != nil {
		return nil, err
	}
	if hashed {
		want, err := hex.DecodeString(wantHash)
		sum := sha256.Sum256(r.Body)
		if err != nil || !hmac.Equal(sum[:], want) {
			return nil, ErrBodyHashMismatch
		}
	}
	return &Verified{Form: form, Digest: sha256.Sum256([]byte(signed))}, nil
}

// matchSignature returns the string signature was computed over: a
// variant of u followed by params, signed with one of tokens.
func matchSignature(tokens []string, u, params, signature string) (string, error) {
	checked := false
	for _, token := range tokens {
		if token == "" {
			continue // an unset token must not make a signature by an empty key valid
		}
		checked = true
		for _, v := range urlVariants(u) {
			if hmac.Equal([]byte(sign(token, v+params)), []byte(signature)) {
				return v + params, nil
			}
		}
	}
	if !checked {
		return "", fmt.Errorf("%w: no auth token to check it with", ErrBadSignature)
	}
	return "", ErrBadSignature
}

// Covered reports, with nil, whether a stored request's content is all
// covered by the signature it came with, by the rules of Verify, without a
// signature to check: what may be signed again when it is forwarded. A
// request that is not covered gets an error wrapping ErrUnsignedContent
// (or ErrBodyHashMismatch, or ErrMalformedForm).
func Covered(r Request) error {
	u := stripFragment(r.URL)
	wantHash, hashed := queryParam(rawQuery(u), bodyHashParam)
	isForm := mediaType(r.ContentType) == "application/x-www-form-urlencoded"
	switch {
	case len(r.Body) == 0:
		return nil
	case r.Method != "" && r.Method != "POST":
		return fmt.Errorf("%w: a %s request with a body", ErrUnsignedContent, r.Method)
	case hashed:
		want, err := hex.DecodeString(wantHash)
		sum := sha256.Sum256(r.Body)
		if err != nil || !hmac.Equal(sum[:], want) {
			return ErrBodyHashMismatch
		}
		return nil
	case !isForm:
		return fmt.Errorf("%w: a %q body without bodySHA256 in the URL", ErrUnsignedContent, mediaType(r.ContentType))
	}
	if _, err := ParseForm(r.Body); err != nil {
		return fmt.Errorf("check signed content: %w", err)
	}
	return nil
}

// sign returns the base64 HMAC-SHA1 of s keyed with token.
func sign(token, s string) string {
	mac := hmac.New(sha1.New, []byte(token))
	_, _ = io.WriteString(mac, s) // a hash never fails to write
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// paramString returns the part of the signed string that the form
// parameters contribute.
func paramString(params url.Values) string {
	var b strings.Builder
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		values := slices.Clone(params[k])
		slices.Sort(values)
		for _, v := range slices.Compact(values) {
			b.WriteString(k)
			b.WriteString(v)
		}
	}
	return b.String()
}

// mediaType returns the media type of a Content-Type value, lowercased and
// without parameters, so "Application/JSON; charset=utf-8" is
// "application/json".
func mediaType(contentType string) string {
	t, _, _ := strings.Cut(contentType, ";")
	return strings.ToLower(strings.TrimSpace(t))
}

// stripFragment returns u without its fragment, if any.
func stripFragment(u string) string {
	u, _, _ = strings.Cut(u, "#")
	return u
}

// rawQuery returns the query of u, a URL without fragment, as it is written.
func rawQuery(u string) string {
	_, q, _ := strings.Cut(u, "?")
	return q
}

// queryParam returns the first value of the parameter key in a raw query and
// whether it is there at all. Keys and values are unescaped where they can
// be and taken as written where they cannot: a bad escape elsewhere in a
// query Twilio signed is none of this function's business.
func queryParam(rawQuery, key string) (string, bool) {
	for rest := rawQuery; rest != ""; {
		var pair string
		pair, rest, _ = strings.Cut(rest, "&")
		k, v, _ := strings.Cut(pair, "=")
		if unescapeOrRaw(k) == key {
			return unescapeOrRaw(v), true
		}
	}
	return "", false
}

func unescapeOrRaw(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}

// appendQuery adds the raw pair to the query of u, a URL without fragment,
// leaving what is already there untouched.
func appendQuery(u, pair string) string {
	switch {
	case !strings.Contains(u, "?"):
		return u + "?" + pair
	case strings.HasSuffix(u, "?"), strings.HasSuffix(u, "&"):
		return u + pair
	default:
		return u + "&" + pair
	}
}

// urlVariants returns the URLs a signature for u may have been computed
// over: u itself, then u with its scheme's default port if it has no port,
// or u without its port if it has one. The variants are built by splicing
// the string, not by parsing and re-encoding it, so the rest of the URL
// stays byte for byte what Twilio signed.
func urlVariants(u string) []string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok || !validScheme(scheme) {
		return []string{u} // not an absolute URL with a host
	}
	hostStart := len(scheme) + len("://")
	authEnd := len(u)
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		authEnd = hostStart + i
	}
	if at := strings.LastIndexByte(u[hostStart:authEnd], '@'); at >= 0 {
		hostStart += at + 1 // skip userinfo, which may itself hold a colon
	}
	hostPort := u[hostStart:authEnd]

	hostEnd := authEnd // where the host ends and the port's colon, if any, begins
	if strings.HasPrefix(hostPort, "[") {
		end := strings.IndexByte(hostPort, ']')
		if end < 0 {
			return []string{u}
		}
		if after := hostPort[end+1:]; after != "" && after[0] != ':' {
			return []string{u}
		}
		hostEnd = hostStart + end + 1
	} else if c := strings.IndexByte(hostPort, ':'); c >= 0 {
		hostEnd = hostStart + c
	}
	if hostEnd == hostStart {
		return []string{u} // no host to put a port on
	}

	if hostEnd < authEnd {
		return []string{u, u[:hostEnd] + u[authEnd:]}
	}
	var port string
	switch {
	case strings.EqualFold(scheme, "https"):
		port = ":443"
	case strings.EqualFold(scheme, "http"):
		port = ":80"
	default:
		return []string{u}
	}
	return []string{u, u[:hostEnd] + port + u[hostEnd:]}
}

// validScheme reports whether s is a URL scheme as RFC 3986 spells it.
func validScheme(s string) bool {
	for i, c := range []byte(s) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return s != ""
}
