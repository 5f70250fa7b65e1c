package ingest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kfake"
)

func TestKafkaConfigValidate(t *testing.T) {
	mod := func(f func(*KafkaConfig)) KafkaConfig {
		c := DefaultKafkaConfig()
		f(&c)
		return c
	}
	tests := []struct {
		name string
		cfg  KafkaConfig
		want string // "" = valid
	}{
		{"defaults", DefaultKafkaConfig(), ""},
		{"no brokers", mod(func(c *KafkaConfig) { c.Brokers = nil }), "kafka.brokers"},
		{"broker without port", mod(func(c *KafkaConfig) { c.Brokers = []string{"kafka"} }), "kafka.brokers"},
		{"bad version", mod(func(c *KafkaConfig) { c.Version = "four" }), "kafka.version"},
		{"old version", mod(func(c *KafkaConfig) { c.Version = "2.8.0" }), "kafka.version: 2.8.0 is older"},
		{"bad protocol", mod(func(c *KafkaConfig) { c.SecurityProtocol = "TLS" }), "kafka.security_protocol"},
		{"zero dial timeout", mod(func(c *KafkaConfig) { c.DialTimeout = 0 }), "kafka.dial_timeout"},
		{"cert without key", mod(func(c *KafkaConfig) { c.SecurityProtocol = "SSL"; c.TLS.CertFile = "c.pem" }), "kafka.tls.cert_file"},
		{"sasl without user", mod(func(c *KafkaConfig) { c.SecurityProtocol = "SASL_SSL"; c.SASL.Password = "p" }), "kafka.sasl.username"},
		{"sasl without password", mod(func(c *KafkaConfig) { c.SecurityProtocol = "SASL_PLAINTEXT"; c.SASL.Username = "u" }), "kafka.sasl.password"},
		{"sasl both passwords", mod(func(c *KafkaConfig) {
			c.SecurityProtocol = "SASL_PLAINTEXT"
			c.SASL.Username, c.SASL.Password, c.SASL.PasswordFile = "u", "p", "/f"
		}), "kafka.sasl.password"},
		{"sasl bad mechanism", mod(func(c *KafkaConfig) {
			c.SecurityProtocol = "SASL_PLAINTEXT"
			c.SASL.Username, c.SASL.Password, c.SASL.Mechanism = "u", "p", "GSSAPI"
		}), "kafka.sasl.mechanism"},
		{"client id", mod(func(c *KafkaConfig) { c.ClientID = "" }), "kafka.client_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("valid config rejected: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to name %q", err, tt.want)
			}
		})
	}
}

func TestSaramaReadsFilesAndRejectsBadOnes(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := DefaultKafkaConfig()
	c.SecurityProtocol = "SASL_PLAINTEXT"
	c.SASL = SASLConfig{Mechanism: "SCRAM-SHA-512", Username: "u", PasswordFile: pw}
	sc, err := c.Sarama()
	if err != nil {
		t.Fatal(err)
	}
	if sc.Net.SASL.Password != "s3cret" || sc.Net.SASL.Mechanism != sarama.SASLTypeSCRAMSHA512 || sc.Net.SASL.SCRAMClientGeneratorFunc == nil {
		t.Errorf("sasl = %+v", sc.Net.SASL)
	}
	if !sc.Version.IsAtLeast(sarama.V4_0_0_0) {
		t.Errorf("version = %s", sc.Version)
	}

	c.SASL.PasswordFile = filepath.Join(dir, "missing")
	if _, err := c.Sarama(); err == nil || !strings.Contains(err.Error(), "kafka.sasl.password_file") {
		t.Errorf("missing password file: err = %v", err)
	}

	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	c = DefaultKafkaConfig()
	c.SecurityProtocol = "SSL"
	c.TLS.CAFile = notPEM
	if _, err := c.Sarama(); err == nil || !strings.Contains(err.Error(), "kafka.tls.ca_file") {
		t.Errorf("bad CA file: err = %v", err)
	}
	c.TLS.CAFile = ""
	sc, err = c.Sarama()
	if err != nil || !sc.Net.TLS.Enable || sc.Net.TLS.Config.MinVersion == 0 {
		t.Errorf("SSL config: %v %+v", err, sc)
	}
}

// TestSASLHandshake authenticates against an in-process Kafka-protocol
// broker with each mechanism, and checks that a wrong password is refused.
func TestSASLHandshake(t *testing.T) {
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		t.Run(mech, func(t *testing.T) {
			broker, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.Superuser(mech, "admin", "right"))
			if err != nil {
				t.Fatal(err)
			}
			defer broker.Close()
			for _, tc := range []struct {
				password string
				ok       bool
			}{{"right", true}, {"wrong", false}} {
				c := DefaultKafkaConfig()
				c.Brokers = broker.ListenAddrs()
				c.SecurityProtocol = "SASL_PLAINTEXT"
				c.SASL = SASLConfig{Mechanism: mech, Username: "admin", Password: tc.password}
				sc, err := c.Sarama()
				if err != nil {
					t.Fatal(err)
				}
				sc.Metadata.Retry.Max = 0
				client, err := sarama.NewClient(c.Brokers, sc)
				if tc.ok {
					if err != nil {
						t.Fatalf("password %q: %v", tc.password, err)
					}
					if _, err := client.Controller(); err != nil {
						t.Errorf("authenticated client cannot reach controller: %v", err)
					}
					client.Close()
				} else if err == nil {
					client.Close()
					t.Fatalf("password %q accepted", tc.password)
				}
			}
		})
	}
}
