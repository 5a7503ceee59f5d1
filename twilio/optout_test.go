package twilio

import "testing"

func TestMatchOptKeyword(t *testing.T) {
	t.Parallel()
	tests := []struct {
		body string
		want OptAction
	}{
		{"STOP", OptOut},
		{"stop", OptOut},
		{"Stop", OptOut},
		{"  sToP \n", OptOut},
		{"\tSTOP\r\n", OptOut},
		{"STOPALL", OptOut},
		{"Unsubscribe", OptOut},
		{"cancel", OptOut},
		{"END", OptOut},
		{"quit", OptOut},
		{"revoke", OptOut},
		{"OptOut", OptOut},
		{"START", OptIn},
		{"start", OptIn},
		{" Yes ", OptIn},
		{"unstop", OptIn},

		{"", OptNone},
		{"   ", OptNone},
		{"hello", OptNone},
		{"STOP please", OptNone},
		{"please stop", OptNone},
		{"STOP.", OptNone},
		{"S T O P", OptNone},
		{"STOPP", OptNone},
		{"STO", OptNone},
		{"OPT OUT", OptNone},
		{"HELP", OptNone},
		{"INFO", OptNone},
		{"NO", OptNone},
		{"ſtop", OptNone},       // long s: upper-cases to S outside ASCII
		{"ＳＴＯＰ", OptNone},       // full-width letters
		{"STOP\u200b", OptNone}, // a zero-width space is not white space
		{"UNSUBSCRIBEX", OptNone},
	}
	for _, tt := range tests {
		if got := MatchOptKeyword(tt.body); got != tt.want {
			t.Errorf("MatchOptKeyword(%q) = %v, want %v", tt.body, got, tt.want)
		}
	}
}

func TestInboundOptAction(t *testing.T) {
	t.Parallel()
	tests := []struct {
		optOutType, body string
		want             OptAction
	}{
		{"", "STOP", OptOut},
		{"", "start", OptIn},
		{"", "hello", OptNone},
		{"STOP", "arrête", OptOut}, // an account's own keyword, matched by Twilio
		{"stop", "hello", OptOut},
		{"START", "hello", OptIn},
		{"HELP", "help", OptNone},
		{"HELP", "STOP", OptOut}, // an unknown verdict leaves it to the body
		{"SOMETHING", "yes", OptIn},
	}
	for _, tt := range tests {
		if got := InboundOptAction(tt.optOutType, tt.body); got != tt.want {
			t.Errorf("InboundOptAction(%q, %q) = %v, want %v", tt.optOutType, tt.body, got, tt.want)
		}
	}
}

func TestOptActionString(t *testing.T) {
	t.Parallel()
	for a, want := range map[OptAction]string{OptNone: "none", OptOut: "opt-out", OptIn: "opt-in", OptAction(9): "none"} {
		if got := a.String(); got != want {
			t.Errorf("OptAction(%d).String() = %q, want %q", int(a), got, want)
		}
	}
}
