package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-chi/httprate"
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

// identify puts the request's principal in its context, or answers 401.
func (s *server) identify(next http.Handler) http.Handler {
	anonymousScopes := []string{ScopeGraphRead, ScopeCountsRead}
	if s.auth.open {
		anonymousScopes = append(anonymousScopes, ScopeAdmin)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p principal
		key, presented := credential(r)
		switch {
		case s.auth.open:
			p = principal{anonymous: true, scopes: anonymousScopes}
		case !presented && s.auth.required:
			s.writeProblem(w, r, apiErr(kindUnauthenticated, "", "send an API key as Authorization: Bearer <key> or X-API-Key"))
			return
		case !presented:
			p = principal{anonymous: true, scopes: anonymousScopes}
		default:
			k, ok := s.auth.lookup(key)
			if !ok {
				s.writeProblem(w, r, apiErr(kindUnauthenticated, "", "the API key is not valid"))
				return
			}
			p = principal{name: k.name, scopes: k.scopes}
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
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

// rateLimiter limits each key, and each client address for anonymous
// requests, to cfg.Burst requests per Burst/RequestsPerSecond window
// (sliding). It runs after identify. nil when limiting is off.
func (s *server) rateLimiter(cfg RateLimit) func(http.Handler) http.Handler {
	if cfg.RequestsPerSecond <= 0 {
		return nil
	}
	window := time.Duration(float64(cfg.Burst) / cfg.RequestsPerSecond * float64(time.Second))
	return httprate.LimitBy(cfg.Burst, window,
		func(r *http.Request) (string, error) {
			if p, ok := principalFrom(r.Context()); ok && !p.anonymous {
				return "key:" + p.name, nil
			}
			host, _, err := net.SplitHostPort(r.RemoteAddr)
			if err != nil {
				host = r.RemoteAddr
			}
			return "addr:" + httprate.CanonicalizeIP(host), nil
		},
		httprate.WithLimitHandler(func(w http.ResponseWriter, r *http.Request) {
			s.writeProblem(w, r, apiErr(kindRateLimited, "", "more than %d requests in %s; slow down", cfg.Burst, window))
		}),
	)
}
