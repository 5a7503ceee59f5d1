package web

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/switchboard-dev/switchboard"
	"github.com/switchboard-dev/switchboard/listener"
)

// ListenerServer runs a listener's connection; *listener.Hub is one.
type ListenerServer interface {
	Serve(w http.ResponseWriter, r *http.Request, name string) error
}

// WithListeners serves listeners (switchboard listen) at listener.Path
// through hub. A listener connects with the admin token, or with its own
// key from keys (name → key), which connects that listener and opens
// nothing else.
func WithListeners(hub ListenerServer, keys map[string]string) Option {
	return func(s *Server) {
		s.listeners = hub
		s.listenerKeys = map[string][32]byte{}
		for name, key := range keys {
			if key != "" {
				s.listenerKeys[name] = sha256.Sum256([]byte(key))
			}
		}
	}
}

var errNoListeners = errors.New("no listener is served here")

// listen authorizes a listener's connection and hands it to the hub. It
// fails closed: a request that is neither the admin token's nor the
// named listener's own key is refused before anything else is read.
func (s *Server) listen(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get(listener.ParamListener)
	admin := s.authorized(r)
	if !admin && !s.listenerKey(r, name) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="switchboard"`)
		s.writeError(w, r, errUnauthorized)
		return
	}
	if forwardTo := r.URL.Query().Get(listener.ParamForwardTo); !admin && !listener.LoopbackForward(forwardTo) {
		// Fails closed: a listener's key gets signatures only for URLs
		// on its own machine, never for one the production app serves.
		s.writeError(w, r, fmt.Errorf("%w: forward_to %q: a listener's key forwards only to localhost or a loopback address (the admin token may forward anywhere)",
			switchboard.ErrInvalid, forwardTo))
		return
	}
	if s.listeners == nil {
		s.writeError(w, r, errNoListeners)
		return
	}
	if !switchboard.ValidListenerName(name) {
		s.writeError(w, r, fmt.Errorf("%w: listener %q: want 1 to 63 of a-z, 0-9, '-' and '_'", switchboard.ErrInvalid, name))
		return
	}
	err := s.listeners.Serve(w, r, name)
	switch {
	case errors.Is(err, listener.ErrUnknownListener):
		writeJSON(w, http.StatusNotFound, map[string]string{"error": fmt.Sprintf("listener %q: %v", name, err)})
	case errors.Is(err, switchboard.ErrInvalid):
		s.writeError(w, r, err)
	case err != nil:
		// The connection was upgraded: nothing more can be written.
		s.logger.Debug("listener disconnected", "listener", name, "err", err)
	}
}

// listenerKey reports whether r presents the key of listener name,
// compared by hash in constant time.
func (s *Server) listenerKey(r *http.Request, name string) bool {
	want, ok := s.listenerKeys[name]
	if !ok {
		return false
	}
	scheme, presented, found := strings.Cut(r.Header.Get("Authorization"), " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got := sha256.Sum256([]byte(presented))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}
