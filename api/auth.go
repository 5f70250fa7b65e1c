package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// principal is who a request acts as.
type principal struct {
	name      string // key name; "" when anonymous
	scopes    []string
	anonymous bool
}

func (p principal) has(scope string) bool {
	return slices.Contains(p.scopes, scope) || slices.Contains(p.scopes, ScopeAdmin)
}

type principalKey struct{}

func principalFrom(ctx context.Context) (principal, bool) {
	p, ok := ctx.Value(principalKey{}).(principal)
	return p, ok
}

type storedKey struct {
	name   string
	hash   [sha256.Size]byte
	scopes []string
}

// authenticator checks API keys. Keys are kept as SHA-256 digests and a
// presented key is compared against every one of them in constant time,
// without stopping at a match, so response time says nothing about which
// keys exist or how much of one was right.
type authenticator struct {
	keys []storedKey
	// open: no keys are configured, so every request is served with every
	// scope. required: a request without a key is refused.
	open, required bool
}

func newAuthenticator(cfg Config) (*authenticator, error) {
	a := &authenticator{open: len(cfg.Keys) == 0, required: cfg.AuthRequired}
	for i, k := range cfg.Keys {
		secret := k.Key
		if k.KeyFile != "" {
			field := fmt.Sprintf("keys[%d].key_file", i)
			s, err := readSecret(k.KeyFile, field)
			if err != nil {
				return nil, err
			}
			if len(s) < 16 {
				return nil, fmt.Errorf("%w: api.%s: the key must be at least 16 bytes", ErrInvalidConfig, field)
			}
			secret = s
		}
		a.keys = append(a.keys, storedKey{name: k.Name, hash: sha256.Sum256([]byte(secret)), scopes: slices.Clone(k.Scopes)})
	}
	return a, nil
}

// credential returns the key a request presents: "Authorization: Bearer
// <key>" or "X-API-Key: <key>".
func credential(r *http.Request) (string, bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, rest, ok := strings.Cut(h, " ")
		if ok && strings.EqualFold(scheme, "Bearer") && strings.TrimSpace(rest) != "" {
			return strings.TrimSpace(rest), true
		}
		return "", true // present but unusable: refused like a wrong key
	}
	if k := r.Header.Get("X-API-Key"); k != "" {
		return k, true
	}
	return "", false
}

func (a *authenticator) lookup(key string) (storedKey, bool) {
	h := sha256.Sum256([]byte(key))
	found := -1
	for i := range a.keys {
		if subtle.ConstantTimeCompare(h[:], a.keys[i].hash[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return storedKey{}, false
	}
	return a.keys[found], true
}

// Reasons a credential is refused, as rtgraph_api_auth_failures_total
// labels them.
const (
	authNoKey      = "no_key"
	authInvalidKey = "invalid_key"
	authThrottled  = "throttled"
)

// identify puts the request's principal in its context, or answers 401, or
// 429 when the client address has failed authentication more than
// Config.AuthFailureLimit allows. A throttled address is refused before its
// key is looked at, so that guessing keys is slow even for the one guess
// that would be right; a valid client sharing that address (behind one NAT)
// is refused too until the bucket refills.
func (s *server) identify(next http.Handler) http.Handler {
	anonymousScopes := []string{ScopeGraphRead, ScopeCountsRead}
	if s.auth.open {
		anonymousScopes = append(anonymousScopes, ScopeAdmin)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key, presented := credential(r)
		if s.auth.open || (!presented && !s.auth.required) {
			p := principal{anonymous: true, scopes: anonymousScopes}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
			return
		}
		addr, now := s.clientAddr(r), s.now()
		if s.authFails != nil {
			if wait, over := s.authFails.exhausted(addr, now); over {
				s.authFailed(r, addr, authThrottled, now)
				e := apiErr(kindRateLimited, "", "too many requests without a valid API key from this address; retry later")
				e.RetryAfter = retryAfter(wait)
				s.writeProblem(w, r, e)
				return
			}
		}
		if !presented {
			s.authFailed(r, addr, authNoKey, now)
			s.writeProblem(w, r, apiErr(kindUnauthenticated, "", "send an API key as Authorization: Bearer <key> or X-API-Key"))
			return
		}
		k, ok := s.auth.lookup(key)
		if !ok {
			s.authFailed(r, addr, authInvalidKey, now)
			s.writeProblem(w, r, apiErr(kindUnauthenticated, "", "the API key is not valid"))
			return
		}
		p := principal{name: k.name, scopes: k.scopes}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

// authFailed counts a refused credential against its address, and logs it
// at most once per second for the process, with the number of lines held
// back since the previous one: a flood of bad keys must not flood the log.
func (s *server) authFailed(r *http.Request, addr, reason string, now time.Time) {
	s.m.authFailures.WithLabelValues(reason).Inc()
	if s.authFails != nil && reason != authThrottled {
		s.authFails.take(addr, now)
	}
	if suppressed, ok := s.authLog.sample(now); ok {
		s.log.Warn("api authentication failed", "reason", reason, "client", addr,
			"request_id", requestIDFrom(r.Context()), "route", r.URL.Path, "suppressed", suppressed)
	}
}

// requireScope answers 403 (401 for an anonymous caller, who can fix it by
// sending a key) unless the principal holds scope.
func (s *server) requireScope(scope string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, _ := principalFrom(r.Context())
			if !p.has(scope) {
				if p.anonymous {
					s.writeProblem(w, r, apiErr(kindUnauthenticated, "", "this endpoint needs an API key with scope %s", scope))
					return
				}
				s.writeProblem(w, r, apiErr(kindForbidden, "", "key %q lacks scope %s", p.name, scope))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// limitRate spends one token of the caller's bucket in t (per key, per
// client address for anonymous requests), or answers 429 with Retry-After.
// It runs after identify and requireScope, so that the buckets are only
// ever those of configured keys or of addresses allowed in anonymously. A
// nil table passes every request.
func (s *server) limitRate(t *limiterTable) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if t == nil {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			client := "addr:" + s.clientAddr(r)
			if p, ok := principalFrom(r.Context()); ok && !p.anonymous {
				client = "key:" + p.name
			}
			if wait, ok := t.take(client, s.now()); !ok {
				e := apiErr(kindRateLimited, "", "over %g requests per second (burst %d); slow down", t.rl.RequestsPerSecond, t.rl.Burst)
				e.RetryAfter = retryAfter(wait)
				s.writeProblem(w, r, e)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}
