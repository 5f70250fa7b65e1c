package ingest

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"hash"
	"os"
	"strings"
	"time"

	"github.com/IBM/sarama"
	"github.com/xdg-go/scram"
)

// KafkaConfig is how rtgraph connects to Kafka. Names follow the Java
// client's settings where one exists (given in brackets).
type KafkaConfig struct {
	// Brokers to bootstrap from [bootstrap.servers]. Default 127.0.0.1:9092.
	Brokers []string `yaml:"brokers"`
	// ClientID sent to the brokers [client.id]. Default "rtgraph".
	ClientID string `yaml:"client_id"`
	// Version is the Kafka protocol version to speak, at least 4.0.0 for
	// Kafka 4 brokers. Default 4.0.0.
	Version string `yaml:"version"`
	// SecurityProtocol is PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL
	// [security.protocol]. Default PLAINTEXT.
	SecurityProtocol string `yaml:"security_protocol"`
	// DialTimeout bounds connecting to a broker. Default 10s.
	DialTimeout time.Duration `yaml:"dial_timeout"`
	TLS         TLSConfig     `yaml:"tls"`
	SASL        SASLConfig    `yaml:"sasl"`
}

// TLSConfig configures TLS for SSL and SASL_SSL.
type TLSConfig struct {
	// CAFile is a PEM bundle of CAs to trust [ssl.truststore.location];
	// empty uses the system roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are the client certificate for mutual TLS
	// [ssl.keystore.location].
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName overrides the name checked in the broker's certificate.
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify disables certificate checks
	// [ssl.endpoint.identification.algorithm=""]. Never in production.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// SASLConfig configures SASL for SASL_PLAINTEXT and SASL_SSL.
type SASLConfig struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 [sasl.mechanism].
	// Default PLAIN.
	Mechanism string `yaml:"mechanism"`
	Username  string `yaml:"username"`
	// Password, or PasswordFile naming a file that holds it (trailing
	// newline ignored). Set one of them, preferably through
	// RTGRAPH_KAFKA_SASL_PASSWORD or a mounted secret file.
	Password     string `yaml:"password" secret:"true"`
	PasswordFile string `yaml:"password_file"`
}

// DefaultKafkaConfig returns the defaults: a local plaintext broker.
func DefaultKafkaConfig() KafkaConfig {
	return KafkaConfig{
		Brokers:          []string{"127.0.0.1:9092"},
		ClientID:         "rtgraph",
		Version:          "4.0.0",
		SecurityProtocol: "PLAINTEXT",
		DialTimeout:      10 * time.Second,
		SASL:             SASLConfig{Mechanism: "PLAIN"},
	}
}

// MinKafkaVersion is the oldest protocol version accepted: Kafka 4 brokers
// refuse clients older than 2.1, and consumer-group features used by the
// pipeline need 4.0.
var MinKafkaVersion = sarama.V4_0_0_0

// Validate names the first bad field as kafka.<field>.
func (c KafkaConfig) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("kafka.brokers: must name at least one broker"))
	}
	for _, b := range c.Brokers {
		if host, port, ok := strings.Cut(b, ":"); !ok || host == "" || port == "" {
			errs = append(errs, fmt.Errorf("kafka.brokers: %q is not host:port", b))
		}
	}
	if c.ClientID == "" {
		errs = append(errs, errors.New("kafka.client_id: must not be empty"))
	}
	if v, err := sarama.ParseKafkaVersion(c.Version); err != nil {
		errs = append(errs, fmt.Errorf("kafka.version: %w", err))
	} else if !v.IsAtLeast(MinKafkaVersion) {
		errs = append(errs, fmt.Errorf("kafka.version: %s is older than %s", c.Version, MinKafkaVersion))
	}
	if c.DialTimeout <= 0 {
		errs = append(errs, errors.New("kafka.dial_timeout: must be positive"))
	}
	useTLS, useSASL, err := c.protocol()
	if err != nil {
		errs = append(errs, err)
	}
	if useTLS && (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		errs = append(errs, errors.New("kafka.tls.cert_file, kafka.tls.key_file: set both or neither"))
	}
	if useSASL {
		switch c.SASL.Mechanism {
		case sarama.SASLTypePlaintext, sarama.SASLTypeSCRAMSHA256, sarama.SASLTypeSCRAMSHA512:
		default:
			errs = append(errs, fmt.Errorf("kafka.sasl.mechanism: %q is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512", c.SASL.Mechanism))
		}
		if c.SASL.Username == "" {
			errs = append(errs, errors.New("kafka.sasl.username: required by "+c.SecurityProtocol))
		}
		if (c.SASL.Password == "") == (c.SASL.PasswordFile == "") {
			errs = append(errs, errors.New("kafka.sasl.password, kafka.sasl.password_file: set exactly one for "+c.SecurityProtocol))
		}
	}
	return errors.Join(errs...)
}

func (c KafkaConfig) protocol() (useTLS, useSASL bool, err error) {
	switch c.SecurityProtocol {
	case "PLAINTEXT":
		return false, false, nil
	case "SSL":
		return true, false, nil
	case "SASL_PLAINTEXT":
		return false, true, nil
	case "SASL_SSL":
		return true, true, nil
	}
	return false, false, fmt.Errorf("kafka.security_protocol: %q is not one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL", c.SecurityProtocol)
}

// Sarama builds a sarama configuration with the connection settings applied
// (TLS certificates and secret files are read now). Callers then set what is
// specific to a consumer or producer. The config must be valid.
func (c KafkaConfig) Sarama() (*sarama.Config, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	sc := sarama.NewConfig()
	sc.ClientID = c.ClientID
	sc.Version, _ = sarama.ParseKafkaVersion(c.Version)
	sc.Net.DialTimeout = c.DialTimeout
	useTLS, useSASL, _ := c.protocol()
	if useTLS {
		tc, err := c.TLS.build()
		if err != nil {
			return nil, err
		}
		sc.Net.TLS.Enable = true
		sc.Net.TLS.Config = tc
	}
	if useSASL {
		password := c.SASL.Password
		if c.SASL.PasswordFile != "" {
			b, err := os.ReadFile(c.SASL.PasswordFile)
			if err != nil {
				return nil, fmt.Errorf("kafka.sasl.password_file: %w", err)
			}
			password = strings.TrimRight(string(b), "\r\n")
		}
		sc.Net.SASL.Enable = true
		sc.Net.SASL.Handshake = true
		sc.Net.SASL.User = c.SASL.Username
		sc.Net.SASL.Password = password
		sc.Net.SASL.Mechanism = sarama.SASLMechanism(c.SASL.Mechanism)
		switch c.SASL.Mechanism {
		case sarama.SASLTypeSCRAMSHA256:
			sc.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{hash: sha256.New} }
		case sarama.SASLTypeSCRAMSHA512:
			sc.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{hash: sha512.New} }
		}
	}
	return sc, nil
}

func (t TLSConfig) build() (*tls.Config, error) {
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify, //nolint:gosec // explicit opt-in, documented as never for production
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("kafka.tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kafka.tls.ca_file: %s holds no PEM certificate", t.CAFile)
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("kafka.tls.cert_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// scramClient adapts xdg-go/scram to sarama's SCRAMClient.
type scramClient struct {
	hash func() hash.Hash
	conv *scram.ClientConversation
}

func (s *scramClient) Begin(user, password, authzID string) error {
	c, err := scram.HashGeneratorFcn(s.hash).NewClient(user, password, authzID)
	if err != nil {
		return fmt.Errorf("ingest: scram client: %w", err)
	}
	s.conv = c.NewConversation()
	return nil
}

func (s *scramClient) Step(challenge string) (string, error) { return s.conv.Step(challenge) }

func (s *scramClient) Done() bool { return s.conv.Done() }
