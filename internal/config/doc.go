// Package config owns how rtgraph reads its configuration: one YAML file,
// then RTGRAPH_* environment overrides, then validation; and how the
// effective configuration is printed with secrets masked.
//
// Each package keeps its own config struct with its defaults next to the
// fields (a DefaultConfig function) and a Validate method that names the bad
// field. This package only walks those structs generically by their yaml
// tags, so adding a field to a package's struct is all it takes to make it
// configurable from the file and from the environment.
//
// Environment names are RTGRAPH_ followed by the upper-cased yaml path joined
// with underscores: cassandra.tls.ca_file is RTGRAPH_CASSANDRA_TLS_CA_FILE.
// Lists are comma-separated ("a,b"); maps are "k=v,k2=v2"; durations use Go
// syntax ("250ms", "5s"). An RTGRAPH_ variable that names no field is an
// error, so a typo never goes unnoticed — except RTGRAPH_CONFIG and the
// tooling's own variables (RTGRAPH_TEST_*, RTGRAPH_BENCH_*, RTGRAPH_INFRA_*,
// and the others listed in reservedEnv).
//
// Fields tagged `secret:"true"` are masked by Print and never logged.
package config
