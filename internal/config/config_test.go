package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type tlsConf struct {
	Enabled bool   `yaml:"enabled"`
	CAFile  string `yaml:"ca_file"`
}

type dbConf struct {
	Hosts    []string       `yaml:"hosts"`
	Port     int            `yaml:"port"`
	Timeout  time.Duration  `yaml:"timeout"`
	Password string         `yaml:"password" secret:"true"`
	DCs      map[string]int `yaml:"datacenters"`
	TLS      tlsConf        `yaml:"tls"`
	Ratio    float64        `yaml:"ratio"`
}

type apiKey struct {
	Name string `yaml:"name"`
	Key  string `yaml:"key" secret:"true"`
}

type rootConf struct {
	DB   dbConf            `yaml:"db"`
	Keys []apiKey          `yaml:"keys"`
	Refs map[string]apiKey `yaml:"refs"`
	Log  struct {
		Level string `yaml:"level"`
	} `yaml:"log"`
}

func defaults() *rootConf {
	c := &rootConf{DB: dbConf{Hosts: []string{"127.0.0.1"}, Port: 9042, Timeout: time.Second}}
	c.Log.Level = "info"
	return c
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "rtgraph.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadFileThenEnv(t *testing.T) {
	path := writeFile(t, "db:\n  port: 9142\n  timeout: 3s\n  tls:\n    enabled: true\nlog:\n  level: debug\n")
	c := defaults()
	env := []string{
		"HOME=/root",
		"RTGRAPH_DB_HOSTS=10.0.0.1, 10.0.0.2",
		"RTGRAPH_DB_TLS_CA_FILE=/etc/ca.pem",
		"RTGRAPH_DB_DATACENTERS=dc1=3,dc2=2",
		"RTGRAPH_DB_RATIO=0.5",
		"RTGRAPH_CONFIG=ignored",
		"RTGRAPH_TEST_KAFKA=ignored",
		"RTGRAPH_BENCH_EVENTS=ignored",
		"RTGRAPH_INFRA_START_TIMEOUT=ignored",
	}
	if err := Load(path, env, c); err != nil {
		t.Fatal(err)
	}
	if c.DB.Port != 9142 || c.DB.Timeout != 3*time.Second || !c.DB.TLS.Enabled || c.Log.Level != "debug" {
		t.Errorf("file values not applied: %+v", c)
	}
	if strings.Join(c.DB.Hosts, "|") != "10.0.0.1|10.0.0.2" || c.DB.TLS.CAFile != "/etc/ca.pem" || c.DB.Ratio != 0.5 {
		t.Errorf("env values not applied: %+v", c.DB)
	}
	if c.DB.DCs["dc1"] != 3 || c.DB.DCs["dc2"] != 2 || len(c.DB.DCs) != 2 {
		t.Errorf("map from env: %v", c.DB.DCs)
	}
}

func TestLoadNoFileKeepsDefaults(t *testing.T) {
	c := defaults()
	if err := Load("", nil, c); err != nil {
		t.Fatal(err)
	}
	if c.DB.Port != 9042 || c.Log.Level != "info" {
		t.Errorf("defaults lost: %+v", c)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name string
		file string
		env  []string
		want string
	}{
		{name: "unknown yaml key", file: "db:\n  prot: 1\n", want: "field prot not found"},
		{name: "wrong yaml type", file: "db:\n  port: many\n", want: "cannot unmarshal"},
		{name: "unknown env", env: []string{"RTGRAPH_DB_PROT=1"}, want: "RTGRAPH_DB_PROT"},
		{name: "bad int env", env: []string{"RTGRAPH_DB_PORT=x"}, want: "db.port (from RTGRAPH_DB_PORT): not an integer"},
		{name: "bad duration env", env: []string{"RTGRAPH_DB_TIMEOUT=5"}, want: "db.timeout (from RTGRAPH_DB_TIMEOUT): not a duration"},
		{name: "bad bool env", env: []string{"RTGRAPH_DB_TLS_ENABLED=maybe"}, want: "not a boolean"},
		{name: "bad map env", env: []string{"RTGRAPH_DB_DATACENTERS=dc1"}, want: "key=value"},
		{name: "bad map value", env: []string{"RTGRAPH_DB_DATACENTERS=dc1=x"}, want: `value of "dc1"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := ""
			if tt.file != "" {
				path = writeFile(t, tt.file)
			}
			err := Load(path, tt.env, defaults())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
	if err := Load("", []string{"RTGRAPH_NOPE=1"}, defaults()); !errors.Is(err, ErrUnknownEnv) {
		t.Errorf("unknown env: err = %v, want ErrUnknownEnv", err)
	}
	if err := Load(filepath.Join(t.TempDir(), "missing.yaml"), nil, defaults()); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("missing file: err = %v", err)
	}
}

func TestEnvErrorNeverEchoesValue(t *testing.T) {
	err := Load("", []string{"RTGRAPH_DB_PORT=hunter2"}, defaults())
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("err = %v: must fail without echoing the value", err)
	}
}

func TestPrintMasksSecrets(t *testing.T) {
	c := defaults()
	c.DB.Password = "hunter2"
	var buf bytes.Buffer
	if err := Print(&buf, c); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if strings.Contains(out, "hunter2") || !strings.Contains(out, "password: '"+Mask+"'") {
		t.Errorf("secret not masked:\n%s", out)
	}
	if c.DB.Password != "hunter2" {
		t.Error("Print modified its argument")
	}
	// Secrets inside lists and maps of structs are masked too.
	c.Keys = []apiKey{{Name: "ads", Key: "k-ads-secret"}}
	c.Refs = map[string]apiKey{"x": {Name: "x", Key: "k-x-secret"}}
	buf.Reset()
	if err := Print(&buf, c); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "secret") || !strings.Contains(buf.String(), "name: ads") {
		t.Errorf("nested secrets not masked:\n%s", buf.String())
	}
	if c.Keys[0].Key != "k-ads-secret" || c.Refs["x"].Key != "k-x-secret" {
		t.Error("Print modified nested values of its argument")
	}
	if !strings.Contains(out, "timeout: 1s") || !strings.Contains(out, "port: 9042") {
		t.Errorf("effective values missing:\n%s", out)
	}
	// An unset secret prints empty, so the reader can tell it is unset.
	c.DB.Password, c.Keys, c.Refs = "", nil, nil
	buf.Reset()
	if err := Print(&buf, c); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), Mask) {
		t.Errorf("unset secret shown as set:\n%s", buf.String())
	}
}

func TestDescribe(t *testing.T) {
	c := defaults()
	c.DB.Password = "hunter2"
	c.DB.DCs = map[string]int{"b": 2, "a": 1}
	got := map[string]Entry{}
	for _, e := range Describe(c) {
		got[e.Path] = e
	}
	want := map[string]Entry{
		"db.tls.ca_file": {Path: "db.tls.ca_file", Env: "RTGRAPH_DB_TLS_CA_FILE", Value: ""},
		"log.level":      {Path: "log.level", Env: "RTGRAPH_LOG_LEVEL", Value: "info"},
		"db.timeout":     {Path: "db.timeout", Env: "RTGRAPH_DB_TIMEOUT", Value: "1s"},
		"db.hosts":       {Path: "db.hosts", Env: "RTGRAPH_DB_HOSTS", Value: "127.0.0.1"},
		"db.datacenters": {Path: "db.datacenters", Env: "RTGRAPH_DB_DATACENTERS", Value: "a=1,b=2"},
		"db.password":    {Path: "db.password", Env: "RTGRAPH_DB_PASSWORD", Value: Mask, Secret: true},
		"db.tls.enabled": {Path: "db.tls.enabled", Env: "RTGRAPH_DB_TLS_ENABLED", Value: "false"},
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("Describe[%s] = %+v, want %+v", k, got[k], w)
		}
	}
	// Every described value round-trips through the environment.
	var env []string
	for _, e := range Describe(c) {
		if !e.Secret {
			env = append(env, e.Env+"="+e.Value)
		}
	}
	back := &rootConf{}
	if err := Load("", env, back); err != nil {
		t.Fatal(err)
	}
	back.DB.Password = c.DB.Password
	if fmt.Sprint(back) != fmt.Sprint(c) {
		t.Errorf("round trip:\n got %+v\nwant %+v", back, c)
	}
}
