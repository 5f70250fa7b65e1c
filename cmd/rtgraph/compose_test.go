package main

import (
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// compose is the part of docker-compose.yml this test checks.
type compose struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Build       any               `yaml:"build"`
		Command     []string          `yaml:"command"`
		Environment map[string]string `yaml:"environment"`
		Ports       []string          `yaml:"ports"`
		DependsOn   map[string]struct {
			Condition string `yaml:"condition"`
		} `yaml:"depends_on"`
		Healthcheck *struct {
			Test []string `yaml:"test"`
		} `yaml:"healthcheck"`
	} `yaml:"services"`
}

// hostPorts returns the host side of "127.0.0.1:host:container" mappings,
// keyed by container port.
func hostPorts(t *testing.T, ports []string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, p := range ports {
		parts := strings.Split(p, ":")
		if len(parts) != 3 || parts[0] != "127.0.0.1" {
			t.Errorf("port mapping %q: want 127.0.0.1:host:container (loopback only)", p)
			continue
		}
		out[parts[2]] = parts[1]
	}
	return out
}

// TestDockerComposeAgreesWithConfig checks that docker-compose.yml, which
// cannot run on machines without a Docker engine, still agrees with the
// binary: services and their dependencies, ports equal to the config
// defaults, and every RTGRAPH_* variable it sets accepted by the config.
func TestDockerComposeAgreesWithConfig(t *testing.T) {
	b, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var c compose
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	for _, name := range []string{"kafka", "cassandra", "migrate", "rtgraph"} {
		if _, ok := c.Services[name]; !ok {
			t.Fatalf("service %s missing", name)
		}
	}
	def := defaultConfig()

	_, kafkaPort, _ := net.SplitHostPort(def.Kafka.Brokers[0])
	if got := hostPorts(t, c.Services["kafka"].Ports)[kafkaPort]; got != kafkaPort {
		t.Errorf("kafka publishes %s on host port %q, config default is %s", kafkaPort, got, def.Kafka.Brokers[0])
	}
	cassPort := strconv.Itoa(def.Cassandra.Port)
	if got := hostPorts(t, c.Services["cassandra"].Ports)[cassPort]; got != cassPort {
		t.Errorf("cassandra publishes %s on host port %q, config default is %d", cassPort, got, def.Cassandra.Port)
	}
	_, httpPort, _ := net.SplitHostPort(def.HTTP.Addr)
	if got := hostPorts(t, c.Services["rtgraph"].Ports)[httpPort]; got != httpPort {
		t.Errorf("rtgraph publishes %s on host port %q, config default is %s", httpPort, got, def.HTTP.Addr)
	}
	if !strings.HasPrefix(c.Services["kafka"].Image, "apache/kafka:4") {
		t.Errorf("kafka image %q: want the official apache/kafka 4.x", c.Services["kafka"].Image)
	}
	if !strings.HasPrefix(c.Services["cassandra"].Image, "cassandra:5.0") {
		t.Errorf("cassandra image %q: want the official cassandra:5.0", c.Services["cassandra"].Image)
	}

	wantDeps := map[string]map[string]string{
		"migrate": {"cassandra": "service_healthy"},
		"rtgraph": {"kafka": "service_healthy", "migrate": "service_completed_successfully"},
	}
	for svc, deps := range wantDeps {
		for dep, cond := range deps {
			if got := c.Services[svc].DependsOn[dep].Condition; got != cond {
				t.Errorf("%s depends_on %s: condition %q, want %q", svc, dep, got, cond)
			}
		}
	}
	for _, svc := range []string{"kafka", "cassandra", "rtgraph"} {
		if c.Services[svc].Healthcheck == nil || len(c.Services[svc].Healthcheck.Test) == 0 {
			t.Errorf("%s has no health check", svc)
		}
	}
	for _, svc := range []string{"migrate", "rtgraph"} {
		s := c.Services[svc]
		if s.Build == nil {
			t.Errorf("%s must be built from the Dockerfile", svc)
		}
		if len(s.Command) == 0 || !slices.Contains([]string{"migrate", "serve"}, s.Command[0]) {
			t.Errorf("%s command %v is not an rtgraph subcommand", svc, s.Command)
		}
		var env []string
		for k, v := range s.Environment {
			env = append(env, k+"="+v)
		}
		if _, err := loadConfig("", env); err != nil {
			t.Errorf("%s environment is not a valid rtgraph configuration: %v", svc, err)
		}
	}
	// The broker address rtgraph is given must be a listener Kafka advertises.
	adv := c.Services["kafka"].Environment["KAFKA_ADVERTISED_LISTENERS"]
	broker := c.Services["rtgraph"].Environment["RTGRAPH_KAFKA_BROKERS"]
	if !strings.Contains(adv, "//"+broker) {
		t.Errorf("rtgraph uses broker %q, kafka advertises %q", broker, adv)
	}
}
