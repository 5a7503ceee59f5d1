package twilio

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"mime"
	"slices"
	"strings"
	"unicode/utf8"
)

// MaxTwiMLBytes is the largest TwiML document Twilio accepts (11750 past
// it).
const MaxTwiMLBytes = 64 << 10

// twimlNames are the verbs and nouns of TwiML, for voice and messaging.
var twimlNames = map[string]bool{}

func init() {
	for _, name := range strings.Fields(`Response Say Play Gather Record Dial Number Client
		Conference Queue Sip Sim Hangup Pause Redirect Reject Enqueue Leave Message Body Media
		Refer Connect Stream Start Stop Siprec Pay Prompt Parameter Application Identity Room
		VirtualAgent Conversation Transcription ConversationRelay Language Config Assistant
		Echo Task Autopilot Whatsapp`) {
		twimlNames[name] = true
	}
}

// TwiML is what ParseTwiML found in a well-formed document.
type TwiML struct {
	// Verbs are the names of the elements directly inside <Response>, in
	// order.
	Verbs []string
	// Unknown names the elements that are not TwiML verbs or nouns (Twilio
	// warns with 12200 and skips them), each once.
	Unknown []string
	// Messages are the texts of the <Message> verbs: a messaging reply
	// Twilio would send. A <Message> with a <Body> gives the body's text.
	Messages []string
}

// ErrMalformedTwiML is wrapped by every ParseTwiML error: Twilio's 12100.
var ErrMalformedTwiML = errors.New("malformed TwiML")

// ParseTwiML parses body as a TwiML document, strictly, as Twilio does: it
// must be well-formed XML with a single <Response> root. The error, which
// wraps ErrMalformedTwiML, says what is wrong in one line.
func ParseTwiML(body []byte) (*TwiML, error) {
	dec := xml.NewDecoder(bytes.NewReader(body))
	dec.Strict = true
	dec.CharsetReader = charsetReader
	var (
		doc    TwiML
		root   string
		depth  int
		closed bool
		text   strings.Builder // of the current <Message>
		inMsg  bool
	)
	fail := func(format string, args ...any) (*TwiML, error) {
		return nil, fmt.Errorf("%w: %s", ErrMalformedTwiML, fmt.Sprintf(format, args...))
	}
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fail("%s", oneLine(err.Error()))
		}
		switch t := tok.(type) {
		case xml.StartElement:
			name := t.Name.Local
			if closed {
				return fail("content after </%s>: <%s>", root, name)
			}
			switch depth {
			case 0:
				root = name
				if name != "Response" {
					return fail("root element is <%s>, not <Response>", name)
				}
			case 1:
				doc.Verbs = append(doc.Verbs, name)
				if name == "Message" {
					inMsg = true
					text.Reset()
				}
			}
			if depth > 0 && !twimlNames[name] && !slices.Contains(doc.Unknown, name) {
				doc.Unknown = append(doc.Unknown, name)
			}
			depth++
		case xml.CharData:
			if inMsg {
				text.Write(t)
			}
		case xml.EndElement:
			depth--
			switch depth {
			case 0:
				closed = true
			case 1:
				if inMsg {
					doc.Messages = append(doc.Messages, strings.TrimSpace(text.String()))
					inMsg = false
				}
			}
		}
	}
	if root == "" {
		return fail("no XML element in the body")
	}
	return &doc, nil
}

// Expectation is what Twilio requires of the answer to one kind of webhook.
type Expectation int

// Expectations of Twilio's webhooks.
const (
	// ExpectMessagingTwiML: a 2xx; a body, if any, must be TwiML served as
	// XML. An empty body means "no reply".
	ExpectMessagingTwiML Expectation = iota
	// ExpectVoiceTwiML: a 2xx with a TwiML document served as XML.
	ExpectVoiceTwiML
	// ExpectStatus: any 2xx; the body is ignored (status callbacks).
	ExpectStatus
	// ExpectClientNotification: 200 (dispatched) or 404 (no binding).
	ExpectClientNotification
)

// AnswerError is Twilio's verdict on an answer it does not accept: the
// error code its debugger would log, and why.
type AnswerError struct {
	Code   Code   `json:"code"`
	Reason string `json:"reason"`
}

func (e *AnswerError) Error() string {
	return fmt.Sprintf("%d %s: %s", int(e.Code), e.Code, e.Reason)
}

// CheckAnswer returns nil when Twilio accepts an answer with this status,
// Content-Type and body to a webhook with expectation x, and otherwise the
// error it would log: 11200 for a status it refuses, 13807 for a client
// notification's, 11750 for TwiML over MaxTwiMLBytes, 12300 for TwiML
// without an XML Content-Type (text/html is tolerated), 12100 for a
// document that does not parse. body may be cut at MaxTwiMLBytes+1 bytes:
// the size check needs no more.
func CheckAnswer(x Expectation, status int, contentType string, body []byte) *AnswerError {
	switch x {
	case ExpectClientNotification:
		if status != 200 && status != 404 {
			return &AnswerError{CodeClientNotificationFailed, fmt.Sprintf("answered %d; want 200 or 404", status)}
		}
		return nil
	case ExpectStatus:
		if status < 200 || status > 299 {
			return &AnswerError{CodeHTTPRetrievalFailure, fmt.Sprintf("answered %d", status)}
		}
		return nil
	}
	if status < 200 || status > 299 {
		return &AnswerError{CodeHTTPRetrievalFailure, fmt.Sprintf("answered %d", status)}
	}
	empty := len(bytes.TrimSpace(body)) == 0
	if empty && x == ExpectMessagingTwiML {
		return nil
	}
	if len(body) > MaxTwiMLBytes {
		return &AnswerError{CodeResponseTooLarge, fmt.Sprintf("body over %d bytes", MaxTwiMLBytes)}
	}
	if !TwiMLContentType(contentType) {
		reason := "no Content-Type"
		if contentType != "" {
			reason = "Content-Type " + contentType + " is not XML"
		}
		return &AnswerError{CodeInvalidContentType, reason}
	}
	if empty {
		return &AnswerError{CodeDocumentParseFailure, "empty body: a call needs a TwiML document"}
	}
	if _, err := ParseTwiML(body); err != nil {
		return &AnswerError{CodeDocumentParseFailure, err.Error()}
	}
	return nil
}

// TwiMLContentType reports whether Twilio reads a body served with this
// Content-Type header as TwiML: application/xml, text/xml, or the
// tolerated text/html.
func TwiMLContentType(header string) bool {
	mt, _, err := mime.ParseMediaType(header)
	if err != nil {
		return false
	}
	return mt == "application/xml" || mt == "text/xml" || mt == "text/html"
}

// charsetReader lets the decoder read the encodings TwiML is served in
// besides UTF-8.
func charsetReader(charset string, input io.Reader) (io.Reader, error) {
	switch strings.ToLower(charset) {
	case "utf-8", "utf8", "us-ascii", "ascii":
		return input, nil
	case "iso-8859-1", "latin1", "latin-1":
		// Bytes are code points in Latin-1. The input is bounded by the
		// caller's body limit.
		data, err := io.ReadAll(input)
		if err != nil {
			return nil, fmt.Errorf("read latin-1: %w", err)
		}
		out := make([]byte, 0, len(data)*2)
		for _, b := range data {
			out = utf8.AppendRune(out, rune(b))
		}
		return bytes.NewReader(out), nil
	default:
		return nil, fmt.Errorf("unsupported encoding %q", charset)
	}
}

// oneLine keeps a message to one line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
