package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// EnvPrefix starts every environment override.
const EnvPrefix = "RTGRAPH_"

// ErrUnknownEnv is returned when an RTGRAPH_ variable names no field.
var ErrUnknownEnv = errors.New("config: unknown environment variable")

// reservedEnv are RTGRAPH_ variables, or prefixes of them, that belong to
// the tooling (the config file's path, the test and benchmark harnesses,
// deploy/local) rather than to configuration.
var reservedEnv = []string{
	"RTGRAPH_CONFIG", "RTGRAPH_SKIP_INTEGRATION",
	"RTGRAPH_TEST_", "RTGRAPH_BENCH_", "RTGRAPH_INFRA_", "RTGRAPH_MAVEN_", "RTGRAPH_JVM_",
	"RTGRAPH_FCAP_TEST_", "RTGRAPH_INGEST_IT_", "RTGRAPH_INGEST_TEST_",
}

func reserved(name string) bool {
	for _, r := range reservedEnv {
		if name == r || strings.HasSuffix(r, "_") && strings.HasPrefix(name, r) {
			return true
		}
	}
	return false
}

// Load fills dst, a pointer to a struct that already holds its defaults,
// from the YAML file at path (skipped when path is empty) and then from the
// RTGRAPH_* variables in environ (KEY=VALUE strings, as os.Environ returns).
// Unknown YAML keys and unknown variables are errors.
func Load(path string, environ []string, dst any) error {
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("config: read %s: %w", path, err)
		}
		if err := decodeYAML(b, dst); err != nil {
			return fmt.Errorf("config: %s: %w", path, err)
		}
	}
	return applyEnv(environ, dst)
}

func decodeYAML(b []byte, dst any) error {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(dst); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// field is one settable leaf of a config struct.
type field struct {
	path   string // yaml path, dotted
	env    string
	value  reflect.Value
	secret bool
}

// fields lists the leaves of the struct v points to, by yaml tag. Structs
// nest; anything else (strings, numbers, lists, maps) is a leaf.
func fields(v reflect.Value, prefix string, secret bool, out []field) []field {
	t := v.Type()
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(sf.Name)
		}
		path := name
		if prefix != "" {
			path = prefix + "." + name
		}
		fv := v.Field(i)
		sec := secret || sf.Tag.Get("secret") == "true"
		if sf.Type.Kind() == reflect.Struct && sf.Type != reflect.TypeFor[time.Time]() {
			out = fields(fv, path, sec, out)
			continue
		}
		env := EnvPrefix + strings.ToUpper(strings.ReplaceAll(path, ".", "_"))
		out = append(out, field{path: path, env: env, value: fv, secret: sec})
	}
	return out
}

func applyEnv(environ []string, dst any) error {
	fs := fields(reflect.ValueOf(dst).Elem(), "", false, nil)
	byEnv := make(map[string]field, len(fs))
	for _, f := range fs {
		byEnv[f.env] = f
	}
	var errs []error
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(k, EnvPrefix) || reserved(k) {
			continue
		}
		f, ok := byEnv[k]
		if !ok {
			errs = append(errs, fmt.Errorf("%w: %s", ErrUnknownEnv, k))
			continue
		}
		if err := setString(f.value, v); err != nil {
			// Never echo the value: it may be a secret.
			errs = append(errs, fmt.Errorf("config: %s (from %s): %w", f.path, k, err))
		}
	}
	return errors.Join(errs...)
}

var durationType = reflect.TypeFor[time.Duration]()

// setString parses s into v according to v's kind.
func setString(v reflect.Value, s string) error {
	if v.Type() == durationType {
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("not a duration")
		}
		v.SetInt(int64(d))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("not a boolean")
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("not an integer")
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(s, 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("not a non-negative integer")
		}
		v.SetUint(n)
	case reflect.Float32, reflect.Float64:
		n, err := strconv.ParseFloat(s, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("not a number")
		}
		v.SetFloat(n)
	case reflect.Slice:
		parts := splitList(s)
		sl := reflect.MakeSlice(v.Type(), len(parts), len(parts))
		for i, p := range parts {
			if err := setString(sl.Index(i), p); err != nil {
				return fmt.Errorf("item %d: %w", i, err)
			}
		}
		v.Set(sl)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		for _, p := range splitList(s) {
			k, val, ok := strings.Cut(p, "=")
			if !ok {
				return fmt.Errorf("map entries are key=value")
			}
			kv := reflect.New(v.Type().Key()).Elem()
			if err := setString(kv, strings.TrimSpace(k)); err != nil {
				return fmt.Errorf("key %q: %w", k, err)
			}
			ev := reflect.New(v.Type().Elem()).Elem()
			if err := setString(ev, strings.TrimSpace(val)); err != nil {
				return fmt.Errorf("value of %q: %w", k, err)
			}
			m.SetMapIndex(kv, ev)
		}
		v.Set(m)
	default:
		return fmt.Errorf("cannot be set from the environment (kind %s)", v.Kind())
	}
	return nil
}

func splitList(s string) []string {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	parts := strings.Split(s, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

// Mask is what Print shows instead of a set secret.
const Mask = "********"

// Print writes cfg (a pointer to a config struct) as YAML with every set
// secret replaced by [Mask], including secrets inside lists and maps of
// structs (API keys, say). cfg itself is not modified.
func Print(w io.Writer, cfg any) error {
	masked := masked(reflect.ValueOf(cfg).Elem(), false)
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(masked.Interface()); err != nil {
		return fmt.Errorf("config: print: %w", err)
	}
	return enc.Close()
}

// masked returns a deep copy of v with secret strings masked; secret is
// whether v itself is tagged secret.
func masked(v reflect.Value, secret bool) reflect.Value {
	out := reflect.New(v.Type()).Elem()
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			out.Set(v)
			return out
		}
		for i := range v.NumField() {
			sf := v.Type().Field(i)
			if !sf.IsExported() {
				continue
			}
			out.Field(i).Set(masked(v.Field(i), secret || sf.Tag.Get("secret") == "true"))
		}
	case reflect.Slice:
		if v.IsNil() {
			return out
		}
		out.Set(reflect.MakeSlice(v.Type(), v.Len(), v.Len()))
		for i := range v.Len() {
			out.Index(i).Set(masked(v.Index(i), secret))
		}
	case reflect.Map:
		if v.IsNil() {
			return out
		}
		out.Set(reflect.MakeMapWithSize(v.Type(), v.Len()))
		for _, k := range v.MapKeys() {
			out.SetMapIndex(k, masked(v.MapIndex(k), secret))
		}
	case reflect.String:
		if secret && v.String() != "" {
			out.SetString(Mask)
		} else {
			out.Set(v)
		}
	default:
		if !secret {
			out.Set(v)
		}
	}
	return out
}

// Entry describes one configurable field: its YAML path, its environment
// variable, its current value rendered as in the environment syntax, and
// whether it is a secret (then Value is empty or [Mask]).
type Entry struct {
	Path, Env, Value string
	Secret           bool
}

// Describe lists every field of cfg in field order. With a defaults struct it
// is the configuration reference (the README's table is generated from it).
func Describe(cfg any) []Entry {
	var out []Entry
	for _, f := range fields(reflect.ValueOf(cfg).Elem(), "", false, nil) {
		e := Entry{Path: f.path, Env: f.env, Secret: f.secret}
		switch {
		case f.secret && !f.value.IsZero():
			e.Value = Mask
		case !f.secret:
			e.Value = render(f.value)
		}
		out = append(out, e)
	}
	return out
}

// render is the inverse of setString.
func render(v reflect.Value) string {
	if v.Type() == durationType {
		return time.Duration(v.Int()).String()
	}
	switch v.Kind() {
	case reflect.Slice:
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = render(v.Index(i))
		}
		return strings.Join(parts, ",")
	case reflect.Map:
		keys := v.MapKeys()
		parts := make([]string, 0, len(keys))
		for _, k := range keys {
			parts = append(parts, render(k)+"="+render(v.MapIndex(k)))
		}
		slices.Sort(parts)
		return strings.Join(parts, ",")
	}
	return fmt.Sprint(v.Interface())
}
