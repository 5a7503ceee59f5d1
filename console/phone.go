package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/doctor"
	"github.com/switchboard-dev/switchboard/sim"
	"github.com/switchboard-dev/switchboard/twilio"
)

// DefaultPhoneTimeout bounds how long the phone waits for the simulator.
const DefaultPhoneTimeout = 20 * time.Second

// Phone form limits: a message is at most 1,600 characters, as Twilio
// takes, and the form is at most what that text URL-encodes to.
const (
	maxPhoneText      = 1600
	maxPhoneFormBytes = 32 << 10
	defaultHandset    = "+15005550006"
)

// phonePage is the Phone page: the forms, and what became of the last one
// sent.
type phonePage struct {
	Accounts []string // offered when there are several
	Form     phoneForm
	Error    string
	Result   *phoneResult
}

// phoneForm is what a form asked for. Kind is "sms" or "call".
type phoneForm struct{ Kind, Account, From, To, Text string }

// phoneResult is what the simulator did with a text or call, as the page
// shows it.
type phoneResult struct {
	Kind          string // SMS or call
	SID, From, To string
	Text          string
	OptOut        string
	NoWebhook     bool
	Tries         []phoneTry
	// Refused is whether Twilio would do nothing with the answer; else
	// Plan is what it would do, line by line, or Nothing what no verb
	// means, or Undescribed why the plan is not shown.
	Refused     bool
	Plan        []string
	Nothing     string
	Undescribed string
	Replies     []string
	// EventURL is the event Switchboard recorded for the SID, when found;
	// InspectorURL the inspector filtered by the SID.
	EventURL, InspectorURL string
}

// phoneTry is one webhook call: the URL's, then its fallback's.
type phoneTry struct {
	Label, Method, URL, ContentType string
	Status, Tries, Code             int
	Latency                         time.Duration
	Reason, Fix                     string
}

// phoneOn is whether the console has a simulator to send through.
func (c *Console) phoneOn() bool { return len(c.o.Phones) > 0 }

func (c *Console) phoneAccounts() []string {
	if len(c.o.Phones) < 2 {
		return nil
	}
	var sids []string
	for _, p := range c.o.Phones {
		sids = append(sids, p.Account)
	}
	return sids
}

func (c *Console) phoneForm(w http.ResponseWriter, r *http.Request, s *session) error {
	if !c.phoneOn() {
		return errNoPage
	}
	p := phonePage{Accounts: c.phoneAccounts(), Form: phoneForm{From: defaultHandset}}
	return c.render(w, s, http.StatusOK, "phone", "Phone", p)
}

// phoneChecked reads the phone's form: like checked, but its text may be
// longer than other parameters, and is checked on its own (checkPhone).
func (c *Console) phoneChecked(h handler) handler {
	return func(w http.ResponseWriter, r *http.Request, s *session) error {
		if !c.phoneOn() {
			return errNoPage
		}
		if err := checkParams(r.URL.Query()); err != nil {
			return err
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxPhoneFormBytes)
		if err := r.ParseForm(); err != nil {
			return badRequest("the form could not be read")
		}
		rest := url.Values{}
		for k, v := range r.PostForm {
			if k != "text" {
				rest[k] = v
			}
		}
		if err := checkParams(rest); err != nil {
			return err
		}
		if len(r.PostForm["text"]) > 1 {
			return badRequest("The form has more than one text.")
		}
		return h(w, r, s)
	}
}

func (c *Console) phoneSend(w http.ResponseWriter, r *http.Request, s *session) error {
	f := phoneForm{
		Kind: r.PostForm.Get("kind"), Account: r.PostForm.Get("account"),
		From: strings.TrimSpace(r.PostForm.Get("from")), To: strings.TrimSpace(r.PostForm.Get("to")), Text: r.PostForm.Get("text"),
	}
	p := phonePage{Accounts: c.phoneAccounts(), Form: f}
	if c.o.Redact {
		// admin.redact: the page never shows a message's text or numbers.
		p.Form = phoneForm{Kind: f.Kind, Account: f.Account, From: defaultHandset}
	}
	pc, msg := c.checkPhone(f)
	if msg != "" {
		p.Error = msg
		return c.render(w, s, http.StatusBadRequest, "phone", "Phone", p)
	}
	ctx, cancel := context.WithTimeout(r.Context(), c.o.PhoneTimeout)
	defer cancel()
	var ans *sim.PhoneAnswer
	var err error
	kind := "SMS"
	if f.Kind == "call" {
		kind = "call"
		ans, err = pc.Call(ctx, f.From, f.To)
	} else {
		ans, err = pc.SMS(ctx, f.From, f.To, f.Text)
	}
	if err != nil {
		c.logger.Warn("console: phone: the simulator failed", "kind", kind, "err", c.redactor().text(err.Error()))
		p.Error = c.phoneFailure(err)
		return c.render(w, s, http.StatusBadGateway, "phone", "Phone", p)
	}
	c.logger.Info("console: phone sent through the simulator", "kind", kind, "sid", ans.SID)
	p.Result = c.phoneResult(r.Context(), kind, f, ans)
	return c.render(w, s, http.StatusOK, "phone", "Phone", p)
}

// checkPhone checks a form and picks the account's phone, or says what is
// wrong with the form.
func (c *Console) checkPhone(f phoneForm) (*sim.PhoneClient, string) {
	if f.Kind != "sms" && f.Kind != "call" {
		return nil, "Choose to send an SMS or to place a call."
	}
	pc := c.o.Phones[0]
	if f.Account != "" {
		i := slices.IndexFunc(c.o.Phones, func(p *sim.PhoneClient) bool { return p.Account == f.Account })
		if i < 0 {
			return nil, "That account is not one the phone can use."
		}
		pc = c.o.Phones[i]
	}
	if !twilio.IsE164(f.From) {
		return nil, "From must be the handset's phone number in E.164 form, such as +15005550006."
	}
	if !twilio.IsE164(f.To) {
		return nil, "To must be one of the simulator's numbers in E.164 form, such as +12065550100."
	}
	if f.Kind == "call" {
		return pc, ""
	}
	switch n := utf8.RuneCountInString(f.Text); {
	case !utf8.ValidString(f.Text):
		return nil, "The text is not valid UTF-8."
	case strings.TrimSpace(f.Text) == "":
		return nil, "Write the text to send."
	case n > maxPhoneText:
		return nil, fmt.Sprintf("The text is %d characters long; a message takes at most %d.", n, maxPhoneText)
	}
	for _, r := range f.Text {
		if unicode.IsControl(r) && r != '\n' && r != '\r' && r != '\t' {
			return nil, "The text holds control characters a phone cannot type."
		}
	}
	return pc, ""
}

// phoneFailure says why the simulator gave no answer, in words safe to
// show.
func (c *Console) phoneFailure(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Sprintf("The simulator did not answer within %s.", formatDuration(c.o.PhoneTimeout))
	}
	return "The simulator could not take it: " + c.redactor().text(err.Error())
}

// phoneResult describes the simulator's answer: each webhook call, then
// what Twilio would do with the answer it used.
func (c *Console) phoneResult(ctx context.Context, kind string, f phoneForm, ans *sim.PhoneAnswer) *phoneResult {
	rd := c.redactor()
	res := &phoneResult{
		Kind: kind, SID: ans.SID, From: rd.number(f.From), To: rd.number(f.To), OptOut: ans.OptOut,
		Replies: ans.Replies, NoWebhook: ans.Webhook == nil,
	}
	if kind == "SMS" {
		res.Text = rd.whole(f.Text)
	}
	if ans.SID != "" {
		res.InspectorURL = listURL("events", url.Values{"q": {ans.SID}})
		res.EventURL = c.phoneEvent(ctx, ans.SID)
	}
	if ans.Webhook == nil {
		return res
	}
	for wh, label := ans.Webhook, "webhook"; wh != nil; wh, label = wh.Fallback, "fallback" {
		t := phoneTry{
			Label: label, Method: wh.Method, URL: rd.url(wh.URL), ContentType: wh.ContentType, Status: wh.Status, Tries: wh.Tries,
			Latency: time.Duration(wh.LatencyMS * float64(time.Millisecond)),
		}
		if e := wh.Error; e != nil {
			t.Code, t.Reason, t.Fix = int(e.Code), rd.text(e.Reason), doctor.Fix("", e.Code)
		}
		res.Tries = append(res.Tries, t)
	}
	final := ans.Webhook.Final()
	if final.Error != nil {
		res.Refused = true
		return res
	}
	verbs, err := twilio.DescribeTwiML([]byte(final.Body))
	switch {
	case err != nil:
		// Accepted yet not described: past the description's bounds.
		res.Undescribed = rd.text(err.Error())
	case len(verbs) == 0 && kind == "SMS":
		res.Nothing = "send no reply"
	case len(verbs) == 0:
		res.Nothing = "end the call"
	default:
		res.Plan = describePlan(rd, kind, verbs)
	}
	return res
}

// describePlan is what Twilio would do, a line a verb (nested verbs
// indented). Under redaction a reply's text is hidden: it often quotes
// the message.
func describePlan(rd redactor, kind string, verbs []twilio.TwiMLVerb) []string {
	var plan []string
	for _, v := range verbs {
		if rd.on && v.Name == "Message" {
			plan = append(plan, "reply SMS: "+switchboard.Redacted)
			continue
		}
		lines := twilio.DescribeLines([]twilio.TwiMLVerb{v})
		if kind == "SMS" && v.Name != "Message" && v.Name != "Redirect" {
			// Messaging TwiML has only these two verbs.
			lines[0] += " — ignored: not a messaging verb"
		}
		for _, l := range lines {
			plan = append(plan, rd.text(l))
		}
	}
	return plan
}

// phoneEvent is the page of the event Switchboard recorded for sid, or ""
// when there is none (yet) or the store cannot say: the link is a help,
// so a failure to find it costs only the link.
func (c *Console) phoneEvent(ctx context.Context, sid string) string {
	ctx, cancel := context.WithTimeout(ctx, phoneLookupTimeout)
	defer cancel()
	page, err := c.store.ListEvents(ctx, switchboard.EventFilter{SID: sid, Limit: 1})
	if err != nil {
		c.logger.Warn("console: phone: find the event", "sid", sid, "err", err)
		return ""
	}
	if len(page.Items) == 0 {
		return ""
	}
	return Prefix + "events/" + url.PathEscape(page.Items[0].ID)
}

// phoneLookupTimeout bounds the search for a phone's event, after the
// simulator's answer.
const phoneLookupTimeout = 5 * time.Second
