package api

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCA issues certificates for the TLS tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1000),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a leaf certificate and its key, PEM: a server certificate
// for 127.0.0.1, or a client one.
func (ca *testCA) issue(t *testing.T, serial int64, client bool) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "rtgraph test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	if client {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		tmpl.IPAddresses = nil
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func writeFile(t *testing.T, path string, b []byte, mtime time.Time) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	// An explicit modification time: a rewrite within the file system's
	// timestamp granularity must still count as a change.
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

// serveTLS serves a 200 on 127.0.0.1 with cfg until the test ends.
func serveTLS(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }),
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0), // refused handshakes are expected
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(tls.NewListener(ln, cfg))
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	return "https://" + ln.Addr().String() + "/"
}

// getTLS makes one request on a new connection; it returns the serial of
// the server's certificate.
func getTLS(url string, roots *x509.CertPool, clientCert *tls.Certificate) (*big.Int, error) {
	tc := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	if clientCert != nil {
		// Sent whatever CAs the server names: crypto/tls would otherwise
		// leave out a certificate from a CA the server does not accept.
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return clientCert, nil }
	}
	tr := &http.Transport{TLSClientConfig: tc, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, errors.New(resp.Status)
	}
	return resp.TLS.PeerCertificates[0].SerialNumber, nil
}

func TestTLSServesAndReloadsChangedFiles(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, "test CA")
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	mtime := time.Now().Add(-time.Hour)
	c1, k1 := ca.issue(t, 1, false)
	writeFile(t, certFile, c1, mtime)
	writeFile(t, keyFile, k1, mtime)

	clk := &testClock{t: clock}
	logs := &syncBuffer{}
	cfg := DefaultTLSConfig()
	cfg.CertFile, cfg.KeyFile = certFile, keyFile
	r, err := newCertReloader(cfg, slog.New(slog.NewJSONHandler(logs, nil)), clk.now)
	if err != nil {
		t.Fatal(err)
	}
	url := serveTLS(t, r.serverConfig())
	serial := func() int64 {
		t.Helper()
		s, err := getTLS(url, roots, nil)
		if err != nil {
			t.Fatalf("https request: %v", err)
		}
		return s.Int64()
	}
	if s := serial(); s != 1 {
		t.Fatalf("serving serial %d, want 1", s)
	}
	// Plain HTTP on the TLS port is refused.
	if resp, err := http.Get(strings.Replace(url, "https", "http", 1)); err == nil {
		_ = resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("plain HTTP served on the TLS listener")
		}
	}

	// A renewed certificate: served once the reload interval has passed,
	// not before (the files are not checked on every handshake).
	c2, k2 := ca.issue(t, 2, false)
	writeFile(t, certFile, c2, mtime.Add(time.Minute))
	writeFile(t, keyFile, k2, mtime.Add(time.Minute))
	if s := serial(); s != 1 {
		t.Fatalf("serial %d before the reload interval passed, want still 1", s)
	}
	clk.advance(cfg.ReloadInterval)
	if s := serial(); s != 2 {
		t.Fatalf("serial %d after the files changed, want 2", s)
	}
	if !strings.Contains(logs.String(), `"msg":"tls certificate reloaded"`) {
		t.Errorf("no reload log line:\n%s", logs)
	}

	// A half-written renewal (new certificate, old key) is refused: the
	// previous certificate stays in service.
	c3, _ := ca.issue(t, 3, false)
	writeFile(t, certFile, c3, mtime.Add(2*time.Minute))
	clk.advance(cfg.ReloadInterval)
	if s := serial(); s != 2 {
		t.Fatalf("serial %d after a mismatched renewal, want 2", s)
	}
	if !strings.Contains(logs.String(), `"msg":"tls reload failed, serving the previous certificate"`) {
		t.Errorf("no warning for the failed reload:\n%s", logs)
	}
	// Completed, it is picked up at the next check.
	c3b, k3b := ca.issue(t, 3, false)
	writeFile(t, certFile, c3b, mtime.Add(3*time.Minute))
	writeFile(t, keyFile, k3b, mtime.Add(3*time.Minute))
	clk.advance(cfg.ReloadInterval)
	if s := serial(); s != 3 {
		t.Fatalf("serial %d after the renewal completed, want 3", s)
	}
}

func TestTLSClientCertificates(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, "server CA")
	clientCA := newTestCA(t, "client CA")
	otherCA := newTestCA(t, "other CA")
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	mtime := time.Now().Add(-time.Hour)
	sc, sk := ca.issue(t, 1, false)
	certFile, keyFile, caFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), filepath.Join(dir, "clients.pem")
	writeFile(t, certFile, sc, mtime)
	writeFile(t, keyFile, sk, mtime)
	writeFile(t, caFile, clientCA.pem, mtime)
	pair := func(ca *testCA) *tls.Certificate {
		c, k := ca.issue(t, 7, true)
		kp, err := tls.X509KeyPair(c, k)
		if err != nil {
			t.Fatal(err)
		}
		return &kp
	}
	good, foreign := pair(clientCA), pair(otherCA)

	for _, c := range []struct {
		mode                    string
		none, withGood, withBad bool // whether each client gets its 200
	}{
		{ClientAuthRequireAndVerify, false, true, false},
		{ClientAuthRequest, true, true, false},
	} {
		t.Run(c.mode, func(t *testing.T) {
			cfg := DefaultTLSConfig()
			cfg.CertFile, cfg.KeyFile, cfg.ClientCAFile, cfg.ClientAuth = certFile, keyFile, caFile, c.mode
			tc, err := NewServerTLS(cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			url := serveTLS(t, tc)
			for name, tt := range map[string]struct {
				cert *tls.Certificate
				ok   bool
			}{"no client certificate": {nil, c.none}, "client certificate": {good, c.withGood}, "foreign certificate": {foreign, c.withBad}} {
				_, err := getTLS(url, roots, tt.cert)
				if (err == nil) != tt.ok {
					t.Errorf("%s: error %v, want success %v", name, err, tt.ok)
				}
			}
		})
	}
}

func TestTLSConfigValidate(t *testing.T) {
	if err := DefaultTLSConfig().Validate(); err != nil || DefaultTLSConfig().Enabled() {
		t.Fatalf("defaults: %v, enabled %v", err, DefaultTLSConfig().Enabled())
	}
	for _, c := range []struct {
		mod   func(*TLSConfig)
		field string
	}{
		{func(c *TLSConfig) { c.CertFile = "x.crt" }, "http.tls.cert_file"},
		{func(c *TLSConfig) { c.CertFile, c.KeyFile, c.ClientAuth = "x.crt", "x.key", "always" }, "http.tls.client_auth"},
		{func(c *TLSConfig) { c.CertFile, c.KeyFile, c.ClientAuth = "x.crt", "x.key", ClientAuthRequireAndVerify }, "http.tls.client_ca_file"},
		{func(c *TLSConfig) { c.CertFile, c.KeyFile, c.ClientCAFile = "x.crt", "x.key", "ca.pem" }, "http.tls.client_ca_file"},
		{func(c *TLSConfig) { c.ClientAuth, c.ClientCAFile = ClientAuthRequest, "ca.pem" }, "http.tls.client_auth"},
		{func(c *TLSConfig) { c.ReloadInterval = 0 }, "http.tls.reload_interval"},
	} {
		cfg := DefaultTLSConfig()
		c.mod(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%+v: %v, want an error naming %s", cfg, err, c.field)
		}
	}
	cfg := DefaultTLSConfig()
	cfg.CertFile, cfg.KeyFile = filepath.Join(t.TempDir(), "missing.crt"), filepath.Join(t.TempDir(), "missing.key")
	if _, err := NewServerTLS(cfg, nil); err == nil || !strings.Contains(err.Error(), "http.tls.cert_file") {
		t.Errorf("missing files: %v", err)
	}
}
