package normalize

import (
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/google/uuid"
)

// FieldType declares what a key or id field must hold, so that a value of
// the wrong JSON type (a numeric id sent as "twelve", a request id that is
// not a UUID) is a dead letter of class wrong_type in every shape instead of
// a bogus node, edge or count.
type FieldType string

// The field types.
const (
	// TypeAny (the default) accepts any scalar a key may hold.
	TypeAny FieldType = ""
	// TypeInteger accepts a JSON integer: a number without fraction (5,
	// 5.0 and 5e0 alike, as JSON Schema has it), or an integer column typed
	// by a Connect schema. Integers beyond int64 are accepted as the decimal
	// literal they were sent as.
	TypeInteger FieldType = "integer"
	// TypeString accepts a JSON string that is not empty.
	TypeString FieldType = "string"
	// TypeUUID accepts a string in the canonical 8-4-4-4-12 hex form, in
	// either case.
	TypeUUID FieldType = "uuid"
)

func (t FieldType) valid() bool {
	switch t {
	case TypeAny, TypeInteger, TypeString, TypeUUID:
		return true
	}
	return false
}

// checkType reports a wrong_type error naming field when v is not of type t.
func checkType(t FieldType, v any, field string) error {
	ok := true
	switch t {
	case TypeAny:
		return nil
	case TypeInteger:
		switch x := v.(type) {
		case int64:
		case float64:
			ok = x == math.Trunc(x) && math.Abs(x) <= 1<<53
		case string:
			ok = isBigIntLiteral(x)
		default:
			ok = false
		}
	case TypeString:
		s, isStr := v.(string)
		ok = isStr && s != ""
	case TypeUUID:
		s, isStr := v.(string)
		if ok = isStr && len(s) == 36; ok {
			_, err := uuid.Parse(s)
			ok = err == nil
		}
	}
	if ok {
		return nil
	}
	return decodeErr(ClassWrongType, field, fmt.Sprintf("want %s, got %s", t, describe(v)))
}

// isBigIntLiteral reports whether s is an integer literal too large for
// int64, the only integers the JSON reader keeps as text.
func isBigIntLiteral(s string) bool {
	d := s
	if len(d) > 0 && d[0] == '-' {
		d = d[1:]
	}
	if len(d) < 19 || d[0] == '0' {
		return false
	}
	for i := 0; i < len(d); i++ {
		if d[i] < '0' || d[i] > '9' {
			return false
		}
	}
	return true
}

// describe names a value's JSON type for errors, with the value when short.
func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		if len(x) > 40 {
			x = x[:40] + "…"
		}
		return fmt.Sprintf("string %q", x)
	case int64:
		return fmt.Sprintf("integer %d", x)
	case float64:
		return fmt.Sprintf("number %g", x)
	case bool:
		return fmt.Sprintf("boolean %t", x)
	case time.Time:
		return "time " + x.Format(time.RFC3339Nano)
	case map[string]any:
		return "object"
	case []any:
		return "array"
	}
	return fmt.Sprintf("%T", v)
}

// checkTypes validates a key_types map: known types, and, when names is
// not nil, only names it lists.
func checkTypes(m map[string]FieldType, names []string) error {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !m[k].valid() {
			return fmt.Errorf("%w: key_types.%s: %q is not one of integer, string, uuid", ErrBadSetting, k, m[k])
		}
		if names != nil && !contains(names, k) {
			return fmt.Errorf("%w: key_types.%s: not one of key_fields", ErrBadSetting, k)
		}
	}
	return nil
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
