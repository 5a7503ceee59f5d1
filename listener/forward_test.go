package listener

import "testing"

func TestLoopbackForward(t *testing.T) {
	t.Parallel()
	tests := []struct {
		url  string
		want bool
	}{
		{"http://localhost:3000/sms", true},
		{"http://LOCALHOST:3000", true},
		{"http://127.0.0.1:3000", true},
		{"http://127.3.2.1", true},
		{"http://[::1]:3000/voice", true},
		{"https://localhost", true},
		{"http://localhost.example.com", false},
		{"http://127.0.0.1.example.com", false},
		{"http://10.0.0.5:3000", false},
		{"http://[::ffff:10.0.0.5]", false},
		{"https://app.example.com/sms", false},
		{"http://0.0.0.0:3000", false},
		{"", false},
		{"localhost:3000", false},
		{"http://user@evil.example.com#@localhost", false},
	}
	for _, tc := range tests {
		if got := LoopbackForward(tc.url); got != tc.want {
			t.Errorf("LoopbackForward(%q) = %v, want %v", tc.url, got, tc.want)
		}
	}
}
