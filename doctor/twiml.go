package doctor

import (
	"bytes"
	"fmt"
	"mime"
	"net/http"
	"strings"

	"github.com/switchboard-dev/switchboard/twilio"
)

// checkBody checks a 2xx answer to a webhook that expects TwiML: its size,
// Content-Type, sniffed type and document.
func (p *prober) checkBody(h *hopResult) {
	body := h.body
	empty := len(bytes.TrimSpace(body)) == 0
	if empty && p.o.Kind == KindSMS {
		p.r.pass("twiml", "empty body: Twilio sends no reply")
		return
	}

	tooLarge := len(body) > twilio.MaxTwiMLBytes
	if tooLarge {
		p.r.fail("size", twilio.CodeResponseTooLarge, fmt.Sprintf("body over 64 kB (%d bytes read before stopping)", twilio.MaxTwiMLBytes+1),
			fixTooLarge)
	} else {
		p.r.pass("size", fmt.Sprintf("%d bytes (limit %d)", len(body), twilio.MaxTwiMLBytes))
	}

	declared := p.checkContentType(h.header.Get("Content-Type"))
	if !empty {
		p.checkSniff(declared, body)
	}
	if tooLarge {
		return // a truncated document says nothing about the whole one
	}
	if empty {
		p.r.fail("twiml", twilio.CodeDocumentParseFailure, "empty body: voice needs a TwiML document",
			"answer <Response/> at least, or TwiML telling Twilio what to do with the call")
		return
	}
	p.checkTwiML(body)
}

// checkContentType checks the declared Content-Type and returns its media
// type, "" when missing or unparseable.
func (p *prober) checkContentType(header string) string {
	if header == "" {
		p.r.fail("content-type", twilio.CodeInvalidContentType, "no Content-Type header",
			fixContentType)
		return ""
	}
	mt, _, err := mime.ParseMediaType(header)
	if err != nil {
		p.r.fail("content-type", twilio.CodeInvalidContentType, fmt.Sprintf("unparseable Content-Type %q", header),
			fixContentType)
		return ""
	}
	switch mt {
	case "application/xml", "text/xml":
		p.r.pass("content-type", header)
	case "text/html":
		p.r.warn("content-type", 0, header+" is tolerated for TwiML, but is not XML",
			"send Content-Type: application/xml")
	default:
		p.r.fail("content-type", twilio.CodeInvalidContentType, header+" is not a TwiML Content-Type",
			fixContentType)
	}
	return mt
}

// Canonical names of media types that have several.
var mediaAliases = map[string]string{
	"application/xml":  "xml",
	"text/xml":         "xml",
	"audio/wav":        "audio/wav",
	"audio/wave":       "audio/wav",
	"audio/x-wav":      "audio/wav",
	"audio/vnd.wave":   "audio/wav",
	"audio/mpeg":       "audio/mpeg",
	"audio/mp3":        "audio/mpeg",
	"audio/mpeg3":      "audio/mpeg",
	"audio/x-mpeg-3":   "audio/mpeg",
	"audio/x-mp3":      "audio/mpeg",
	"audio/x-mpeg":     "audio/mpeg",
	"application/ogg":  "audio/ogg",
	"audio/ogg":        "audio/ogg",
	"audio/x-aiff":     "audio/aiff",
	"audio/aiff":       "audio/aiff",
	"application/json": "application/json",
}

func canonical(mt string) string {
	if c, ok := mediaAliases[mt]; ok {
		return c
	}
	return mt
}

// sniff returns the canonical media type of body as http.DetectContentType
// sees it, refined: markup it calls text/plain is "xml" here, since
// DetectContentType only recognizes XML that starts with a declaration.
func sniff(body []byte) string {
	mt, _, _ := mime.ParseMediaType(http.DetectContentType(body))
	mt = canonical(mt)
	trimmed := bytes.TrimSpace(bytes.TrimPrefix(body, []byte("\xef\xbb\xbf")))
	if mt == "text/plain" && bytes.HasPrefix(trimmed, []byte("<")) {
		return "xml"
	}
	if mt == "text/plain" && (bytes.HasPrefix(trimmed, []byte("{")) || bytes.HasPrefix(trimmed, []byte("["))) {
		return "application/json"
	}
	return mt
}

// markup reports whether a canonical media type is XML or HTML, which
// TwiML can pass for.
func markup(mt string) bool { return mt == "xml" || mt == "text/html" }

// checkSniff compares the declared media type with what the body looks
// like: TwiML served as text/plain, or audio labelled as another format.
func (p *prober) checkSniff(declared string, body []byte) {
	got := sniff(body)
	want := canonical(declared)
	show := func(mt string) string {
		if mt == "xml" {
			return "XML"
		}
		return mt
	}
	agree := want == got ||
		(markup(want) && markup(got)) ||
		// Without a signature to go by, plain text is whatever it claims.
		(got == "text/plain" && strings.HasPrefix(want, "text/") && !markup(want))
	switch {
	case declared == "":
		p.r.warn("sniff", twilio.CodeInvalidContentType, "body looks like "+show(got)+" but no Content-Type says so",
			"declare the body's type in Content-Type")
	case agree:
		p.r.pass("sniff", "body looks like "+show(got)+", as declared")
	case markup(got):
		p.r.warn("sniff", twilio.CodeInvalidContentType, "body looks like "+show(got)+" (TwiML?) but is served as "+declared,
			"serve TwiML as application/xml")
	default:
		p.r.warn("sniff", twilio.CodeInvalidContentType, "body looks like "+show(got)+" but is served as "+declared,
			"declare the type the body really has, or serve the body the type declares")
	}
}

// checkTwiML parses body as a TwiML document.
func (p *prober) checkTwiML(body []byte) {
	doc, err := twilio.ParseTwiML(body)
	switch {
	case err != nil:
		p.r.fail("twiml", twilio.CodeDocumentParseFailure, err.Error(),
			fixParse)
	case len(doc.Unknown) > 0:
		p.r.warn("twiml", twilio.CodeSchemaValidationWarning, "unknown TwiML verbs or nouns: <"+strings.Join(doc.Unknown, ">, <")+">",
			fixSchema)
	default:
		p.r.pass("twiml", fmt.Sprintf("<Response> with %d verb(s)", len(doc.Verbs)))
	}
}
