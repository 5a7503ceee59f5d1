package twilio

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestCodeString(t *testing.T) {
	t.Parallel()

	tests := []struct {
		code     Code
		wantNum  int
		wantDesc string
	}{
		{CodeHTTPRetrievalFailure, 11200, "HTTP retrieval failure"},
		{CodeHTTPConnectionFailure, 11205, "HTTP connection failure"},
		{CodeHTTPProtocolViolation, 11206, "HTTP protocol violation"},
		{CodeBadHostName, 11210, "HTTP bad host name"},
		{CodeCertificateInvalid, 11237, "certificate invalid"},
		{CodeResponseTooLarge, 11750, "TwiML response body too large"},
		{CodeDocumentParseFailure, 12100, "document parse failure"},
		{CodeSchemaValidationWarning, 12200, "schema validation warning"},
		{CodeInvalidContentType, 12300, "invalid Content-Type"},
		{CodeClientNotificationFailed, 13807, "client notification URL returned an error"},
		{CodeAuthenticationFailed, 20003, "authentication failed"},
		{CodeTooManyRequests, 20429, "too many concurrent requests"},
		{CodeInvalidTo, 21211, "invalid To number"},
		{CodeInvalidFrom, 21212, "invalid From number"},
		{CodeBodyRequired, 21602, "message body required"},
		{CodeFromNotCapable, 21606, "From number not able to send"},
		{CodeUnsubscribedRecipient, 21610, "recipient unsubscribed"},
		{CodeFromQueueFull, 21611, "From number's queue exceeds 10 hours"},
		{CodeToNotSMSCapable, 21614, "To number not SMS-capable"},
		{CodeBodyTooLong, 21617, "message body over 1600 characters"},
		{CodeQueueOverflow, 30001, "queue overflow"},
		{CodeUnreachableHandset, 30003, "unreachable handset"},
		{CodeMessageBlocked, 30004, "message blocked"},
		{CodeUnknownDestination, 30005, "unknown destination handset"},
		{CodeLandlineOrUnreachableCarrier, 30006, "landline or unreachable carrier"},
		{CodeMessageFiltered, 30007, "message filtered by carrier"},
		{CodeUnknownError, 30008, "unknown error"},
		{CodeValidityPeriodExpired, 30036, "validity period expired"},
		{CodeSignatureInvalid, 57012, "signature invalid"},
		{CodeOutsideSessionWindow, 63016, "outside WhatsApp 24-hour session window"},
		{Code(99999), 99999, "Twilio error 99999"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.wantNum), func(t *testing.T) {
			t.Parallel()

			if int(tt.code) != tt.wantNum {
				t.Errorf("code = %d, want %d", tt.code, tt.wantNum)
			}
			if got := tt.code.String(); got != tt.wantDesc {
				t.Errorf("String() = %q, want %q", got, tt.wantDesc)
			}
			wantInfo := fmt.Sprintf("https://www.twilio.com/docs/errors/%d", tt.wantNum)
			if got := tt.code.MoreInfo(); got != wantInfo {
				t.Errorf("MoreInfo() = %q, want %q", got, wantInfo)
			}
		})
	}
}

func TestCodeZero(t *testing.T) {
	t.Parallel()

	if got := Code(0).MoreInfo(); got != "" {
		t.Errorf("Code(0).MoreInfo() = %q, want empty", got)
	}
}

func TestErrorClassCode(t *testing.T) {
	t.Parallel()

	tests := []struct {
		class ErrorClass
		want  Code
	}{
		{ClassNone, 0},
		{ClassDNS, 11210},
		{ClassConnect, 11205},
		{ClassTimeout, 11205},
		{ClassTLS, 11237},
		{ClassProtocol, 11206},
		{ClassHTTPStatus, 11200},
		{ClassTooLarge, 11750},
		{ClassContentType, 12300},
		{ClassParse, 12100},
		{ErrorClass("unheard-of"), 11200},
	}
	for _, tt := range tests {
		t.Run(string(tt.class), func(t *testing.T) {
			t.Parallel()

			if got := tt.class.Code(); got != tt.want {
				t.Errorf("%q.Code() = %d, want %d", tt.class, got, tt.want)
			}
		})
	}
}

type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

// TestClassifyErrorValues covers errors by their types, as the standard
// library builds them; TestClassifyErrorReal provokes them.
func TestClassifyErrorValues(t *testing.T) {
	t.Parallel()

	get := func(err error) error { return &url.Error{Op: "Get", URL: "http://app/hook", Err: err} }
	dial := func(err error) error { return &net.OpError{Op: "dial", Net: "tcp", Err: err} }
	read := func(err error) error { return &net.OpError{Op: "read", Net: "tcp", Err: err} }

	tests := []struct {
		name string
		err  error
		want ErrorClass
	}{
		{name: "Nil", err: nil, want: ClassNone},
		{name: "DNS", err: get(dial(&net.DNSError{Err: "no such host", Name: "app.invalid", IsNotFound: true})), want: ClassDNS},
		{name: "DNSTimeout", err: get(dial(&net.DNSError{Err: "timeout", Name: "app", IsTimeout: true})), want: ClassDNS},
		{name: "Refused", err: get(dial(os.NewSyscallError("connect", syscall.ECONNREFUSED))), want: ClassConnect},
		{name: "Unreachable", err: get(dial(os.NewSyscallError("connect", syscall.EHOSTUNREACH))), want: ClassConnect},
		{name: "DialTimeout", err: get(dial(timeoutError{})), want: ClassConnect},
		{name: "RecordHeader", err: get(tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}), want: ClassTLS},
		{name: "Alert", err: get(tls.AlertError(40)), want: ClassTLS},
		{name: "UnknownAuthority", err: get(x509.UnknownAuthorityError{}), want: ClassTLS},
		{name: "Hostname", err: get(x509.HostnameError{Host: "app"}), want: ClassTLS},
		{name: "CertificateInvalid", err: get(x509.CertificateInvalidError{Reason: x509.Expired}), want: ClassTLS},
		{name: "CertificateVerification", err: get(&tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}), want: ClassTLS},
		{name: "DeadlineExceeded", err: get(context.DeadlineExceeded), want: ClassTimeout},
		{name: "WrappedDeadline", err: fmt.Errorf("read body: %w", context.DeadlineExceeded), want: ClassTimeout},
		{name: "ReadTimeout", err: read(timeoutError{}), want: ClassTimeout},
		{name: "OSDeadline", err: read(os.ErrDeadlineExceeded), want: ClassTimeout},
		{name: "EOF", err: get(io.EOF), want: ClassProtocol},
		{name: "UnexpectedEOF", err: io.ErrUnexpectedEOF, want: ClassProtocol},
		{name: "Reset", err: get(read(os.NewSyscallError("read", syscall.ECONNRESET))), want: ClassProtocol},
		{name: "Malformed", err: get(errors.New(`net/http: HTTP/1.x transport connection broken: malformed HTTP response "garbage"`)), want: ClassProtocol},
		{name: "Unknown", err: errors.New("something else"), want: ClassProtocol},
		{name: "Canceled", err: get(context.Canceled), want: ClassProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			if got := ClassifyError(tt.err); got != tt.want {
				t.Errorf("ClassifyError(%v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}

// newLocalServer starts an httptest server that keeps its logs to itself.
func newLocalServer(t *testing.T, useTLS bool, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	if useTLS {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv
}

// hijack takes over the connection of a request so a test can misbehave on
// it at the byte level.
func hijack(t *testing.T, w http.ResponseWriter) (net.Conn, *bufio.ReadWriter) {
	conn, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		t.Errorf("hijack: %v", err)
		panic(http.ErrAbortHandler)
	}
	return conn, rw
}

// fetch makes a GET and reads the whole body, returning the first error.
func fetch(client *http.Client, target string) error {
	resp, err := client.Get(target)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.ReadAll(resp.Body)
	return err
}

// TestClassifyErrorReal provokes each failure against servers on this
// machine and classifies the error net/http really returns.
func TestClassifyErrorReal(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		// setup returns the client and URL to fetch.
		setup func(t *testing.T) (*http.Client, string)
		want  ErrorClass
	}{
		{
			name: "OK",
			setup: func(t *testing.T) (*http.Client, string) {
				srv := newLocalServer(t, false, func(w http.ResponseWriter, r *http.Request) {
					_, _ = io.WriteString(w, "<Response/>")
				})
				return srv.Client(), srv.URL
			},
			want: ClassNone,
		},
		{
			name: "ClosedPort",
			setup: func(t *testing.T) (*http.Client, string) {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				addr := ln.Addr().String()
				if err := ln.Close(); err != nil {
					t.Fatal(err)
				}
				return &http.Client{Timeout: 5 * time.Second}, "http://" + addr + "/"
			},
			want: ClassConnect,
		},
		{
			name: "DNS",
			setup: func(t *testing.T) (*http.Client, string) {
				// A resolver that cannot reach any name server: the lookup
				// fails for real, inside net, without leaving the machine.
				resolver := &net.Resolver{
					PreferGo: true,
					Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
						return nil, errors.New("no name server in tests")
					},
				}
				dialer := &net.Dialer{Resolver: resolver, Timeout: 5 * time.Second}
				transport := &http.Transport{DialContext: dialer.DialContext, DisableKeepAlives: true}
				return &http.Client{Transport: transport, Timeout: 5 * time.Second}, "http://nonexistent.invalid/"
			},
			want: ClassDNS,
		},
		{
			name: "UntrustedCertificate",
			setup: func(t *testing.T) (*http.Client, string) {
				srv := newLocalServer(t, true, func(w http.ResponseWriter, r *http.Request) {})
				return &http.Client{Timeout: 5 * time.Second}, srv.URL // default roots: the test CA is unknown
			},
			want: ClassTLS,
		},
		{
			name: "HTTPSToNonTLS",
			setup: func(t *testing.T) (*http.Client, string) {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { ln.Close() })
				go func() {
					conn, err := ln.Accept()
					if err != nil {
						return
					}
					defer conn.Close()
					_, _ = io.WriteString(conn, "garbage, not a TLS record\r\n")
				}()
				return &http.Client{Timeout: 5 * time.Second}, "https://" + ln.Addr().String() + "/"
			},
			want: ClassTLS,
		},
		{
			// net/http turns this record header error into a plain error of
			// its own, which says what happened: a protocol mismatch.
			name: "HTTPSToPlainHTTP",
			setup: func(t *testing.T) (*http.Client, string) {
				srv := newLocalServer(t, false, func(w http.ResponseWriter, r *http.Request) {})
				return &http.Client{Timeout: 5 * time.Second}, strings.Replace(srv.URL, "http://", "https://", 1)
			},
			want: ClassProtocol,
		},
		{
			name: "Garbage",
			setup: func(t *testing.T) (*http.Client, string) {
				srv := newLocalServer(t, false, func(w http.ResponseWriter, r *http.Request) {
					conn, rw := hijack(t, w)
					defer conn.Close()
					_, _ = rw.WriteString("garbage, not HTTP\r\n\r\n")
					_ = rw.Flush()
				})
				return &http.Client{Timeout: 5 * time.Second}, srv.URL
			},
			want: ClassProtocol,
		},
		{
			name: "ClosedMidBody",
			setup: func(t *testing.T) (*http.Client, string) {
				srv := newLocalServer(t, false, func(w http.ResponseWriter, r *http.Request) {
					conn, rw := hijack(t, w)
					defer conn.Close()
					_, _ = rw.WriteString("HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 100\r\n\r\n<Resp")
					_ = rw.Flush()
				})
				return &http.Client{Timeout: 5 * time.Second}, srv.URL
			},
			want: ClassProtocol,
		},
		{
			name: "ResetBeforeResponse",
			setup: func(t *testing.T) (*http.Client, string) {
				srv := newLocalServer(t, false, func(w http.ResponseWriter, r *http.Request) {
					conn, _ := hijack(t, w)
					if tcp, ok := conn.(*net.TCPConn); ok {
						_ = tcp.SetLinger(0) // close with RST rather than FIN
					}
					conn.Close()
				})
				return &http.Client{Timeout: 5 * time.Second}, srv.URL
			},
			want: ClassProtocol,
		},
		{
			name: "SlowHandler",
			setup: func(t *testing.T) (*http.Client, string) {
				srv := newLocalServer(t, false, func(w http.ResponseWriter, r *http.Request) {
					select {
					case <-r.Context().Done(): // the client gave up
					case <-time.After(10 * time.Second):
					}
				})
				return &http.Client{Timeout: 250 * time.Millisecond}, srv.URL
			},
			want: ClassTimeout,
		},
		{
			name: "SlowBody",
			setup: func(t *testing.T) (*http.Client, string) {
				srv := newLocalServer(t, false, func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Length", "100")
					_, _ = io.WriteString(w, "<Resp")
					_ = http.NewResponseController(w).Flush()
					select {
					case <-r.Context().Done():
					case <-time.After(10 * time.Second):
					}
				})
				return &http.Client{Timeout: 300 * time.Millisecond}, srv.URL
			},
			want: ClassTimeout,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			client, target := tt.setup(t)
			err := fetch(client, target)
			if got := ClassifyError(err); got != tt.want {
				t.Errorf("ClassifyError(%v) = %q, want %q", err, got, tt.want)
			}
		})
	}
}

// The refusals of a recipient are the permanent errors about the To alone:
// each is a permanent REST error too, and none names the sender or the
// account.
func TestRecipientRefusals(t *testing.T) {
	t.Parallel()
	got := RecipientRefusals()
	want := []Code{CodeInvalidTo, CodeUnsubscribedRecipient, CodeToNotSMSCapable}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("RecipientRefusals() = %v, want %v", got, want)
	}
	for _, c := range got {
		if !c.RefusesRecipient() || !(&RestError{Status: 400, Code: c}).Permanent() {
			t.Errorf("%d: RefusesRecipient %v, Permanent %v; want both", int(c), c.RefusesRecipient(), (&RestError{Code: c}).Permanent())
		}
	}
	for _, c := range []Code{0, CodeInvalidFrom, CodeFromNotCapable, CodeFromQueueFull, 21612, 21408, CodeUnreachableHandset, CodeLandlineOrUnreachableCarrier, CodeTooManyRequests} {
		if c.RefusesRecipient() {
			t.Errorf("%d refuses the recipient, want not", int(c))
		}
	}
	tests := []struct {
		code Code
		want string
	}{
		{CodeInvalidTo, "The 'To' number +15005550001 is not a valid phone number."},
		{CodeUnsubscribedRecipient, "Attempt to send to unsubscribed recipient"},
		{CodeToNotSMSCapable, "'To' number is not a valid mobile number"},
		{CodeFromNotCapable, "From number not able to send"},
	}
	for _, tc := range tests {
		if got := tc.code.RefusalMessage("+15005550001"); got != tc.want {
			t.Errorf("%d.RefusalMessage = %q, want %q", int(tc.code), got, tc.want)
		}
	}
}
