package api

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// Client certificate modes of TLSConfig.ClientAuth.
const (
	ClientAuthNone             = "none"
	ClientAuthRequest          = "request"
	ClientAuthRequireAndVerify = "require_and_verify"
)

// TLSConfig is the HTTP server's TLS: the "http.tls" section of the rtgraph
// configuration. TLS is on when CertFile and KeyFile are set.
type TLSConfig struct {
	// CertFile and KeyFile are the server's certificate chain and private
	// key, PEM. They are read again when either changes (size or
	// modification time), so a renewed certificate is served without a
	// restart: replace both files, the key first or atomically by rename.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ClientCAFile holds the PEM certificates client certificates are
	// verified against; reloaded like the certificate. Required unless
	// ClientAuth is none.
	ClientCAFile string `yaml:"client_ca_file"`
	// ClientAuth is none (default: no client certificate asked for),
	// request (asked for, verified when sent, a client without one still
	// gets in and authenticates with its API key), or require_and_verify
	// (a connection without a valid client certificate is refused in the
	// handshake).
	ClientAuth string `yaml:"client_auth"`
	// ReloadInterval is how often, at most, a handshake checks the files
	// for changes: a stat of each, so that a busy server does not read them
	// on every connection. Default 10s.
	ReloadInterval time.Duration `yaml:"reload_interval"`
}

// DefaultTLSConfig returns the defaults: TLS off.
func DefaultTLSConfig() TLSConfig {
	return TLSConfig{ClientAuth: ClientAuthNone, ReloadInterval: 10 * time.Second}
}

// Enabled reports whether the server speaks TLS.
func (c TLSConfig) Enabled() bool { return c.CertFile != "" || c.KeyFile != "" }

// Validate checks the fields, naming each bad one as http.tls.<field>. The
// files themselves are read by NewServerTLS.
func (c TLSConfig) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("http.tls.%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		bad("cert_file", "set both cert_file and key_file, or neither")
	}
	if c.ReloadInterval <= 0 {
		bad("reload_interval", "must be positive")
	}
	switch c.ClientAuth {
	case ClientAuthNone:
		if c.ClientCAFile != "" {
			bad("client_ca_file", "is set but client_auth is none: set client_auth to request or require_and_verify")
		}
	case ClientAuthRequest, ClientAuthRequireAndVerify:
		if c.ClientCAFile == "" {
			bad("client_ca_file", "must be set when client_auth is %s", c.ClientAuth)
		}
	default:
		bad("client_auth", "%q is not one of %s, %s, %s", c.ClientAuth, ClientAuthNone, ClientAuthRequest, ClientAuthRequireAndVerify)
	}
	if (c.ClientAuth == ClientAuthRequest || c.ClientAuth == ClientAuthRequireAndVerify) && !c.Enabled() {
		bad("client_auth", "needs TLS: set cert_file and key_file")
	}
	return errors.Join(errs...)
}

// NewServerTLS validates c, reads its files and returns the tls.Config to
// serve with (tls.NewListener). Each handshake gets the certificate and
// client CAs as of the last check, and checks the files again when
// ReloadInterval has passed since; a file that cannot be read or parsed
// then is logged and the previous certificate kept, so a renewal caught
// half-written does not take the server down.
func NewServerTLS(c TLSConfig, log *slog.Logger) (*tls.Config, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r, err := newCertReloader(c, log, time.Now)
	if err != nil {
		return nil, err
	}
	return r.serverConfig(), nil
}

// fileStamp is what says a file changed.
type fileStamp struct {
	size    int64
	modTime time.Time
}

type certReloader struct {
	cfg TLSConfig
	log *slog.Logger
	now func() time.Time

	mu      sync.Mutex
	checked time.Time
	stamps  [3]fileStamp // cert, key, client CA
	current *tls.Config
}

func newCertReloader(c TLSConfig, log *slog.Logger, now func() time.Time) (*certReloader, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if !c.Enabled() {
		return nil, errors.New("http.tls: cert_file and key_file are not set")
	}
	r := &certReloader{cfg: c, log: log, now: now}
	stamps, err := r.stat()
	if err != nil {
		return nil, err
	}
	cur, err := r.load()
	if err != nil {
		return nil, err
	}
	r.current, r.stamps, r.checked = cur, stamps, now()
	return r, nil
}

func (r *certReloader) files() [3]struct{ field, path string } {
	return [3]struct{ field, path string }{
		{"cert_file", r.cfg.CertFile}, {"key_file", r.cfg.KeyFile}, {"client_ca_file", r.cfg.ClientCAFile},
	}
}

func (r *certReloader) stat() ([3]fileStamp, error) {
	var out [3]fileStamp
	for i, f := range r.files() {
		if f.path == "" {
			continue
		}
		fi, err := os.Stat(f.path)
		if err != nil {
			return out, fmt.Errorf("http.tls.%s: %w", f.field, err)
		}
		out[i] = fileStamp{size: fi.Size(), modTime: fi.ModTime()}
	}
	return out, nil
}

// load reads the files into the configuration one handshake uses.
func (r *certReloader) load() (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(r.cfg.CertFile, r.cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("http.tls.cert_file, http.tls.key_file: %w", err)
	}
	c := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{"h2", "http/1.1"},
	}
	switch r.cfg.ClientAuth {
	case ClientAuthRequest:
		c.ClientAuth = tls.VerifyClientCertIfGiven
	case ClientAuthRequireAndVerify:
		c.ClientAuth = tls.RequireAndVerifyClientCert
	}
	if r.cfg.ClientCAFile != "" {
		pem, err := os.ReadFile(r.cfg.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("http.tls.client_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("http.tls.client_ca_file: %s holds no PEM certificate", r.cfg.ClientCAFile)
		}
		c.ClientCAs = pool
	}
	return c, nil
}

// configFor is tls.Config.GetConfigForClient: the current configuration,
// reloaded first when the files changed and the last check is
// ReloadInterval old.
func (r *certReloader) configFor(*tls.ClientHelloInfo) (*tls.Config, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if now.Sub(r.checked) < r.cfg.ReloadInterval {
		return r.current, nil
	}
	r.checked = now
	stamps, err := r.stat()
	if err != nil {
		r.log.Warn("tls files unreadable, serving the previous certificate", "err", err)
		return r.current, nil
	}
	if stamps == r.stamps {
		return r.current, nil
	}
	cur, err := r.load()
	if err != nil {
		// The stamps stay old, so the next check tries again.
		r.log.Warn("tls reload failed, serving the previous certificate", "err", err)
		return r.current, nil
	}
	r.current, r.stamps = cur, stamps
	attrs := []any{"cert_file", r.cfg.CertFile}
	if leaf := cur.Certificates[0].Leaf; leaf != nil {
		attrs = append(attrs, "subject", leaf.Subject.String(), "serial", leaf.SerialNumber.String(), "not_after", leaf.NotAfter)
	}
	r.log.Info("tls certificate reloaded", attrs...)
	return cur, nil
}

func (r *certReloader) serverConfig() *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		NextProtos:         []string{"h2", "http/1.1"},
		GetConfigForClient: r.configFor,
	}
}
