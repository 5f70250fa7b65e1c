package normalize

import (
	"errors"
	"strconv"
)

// ErrorClass is the closed vocabulary of decode failures. The pipeline puts
// the class in the dead-letter record's headers, so each class names one
// thing the producer got wrong and never changes meaning.
type ErrorClass string

// The decode error classes.
const (
	// ClassMalformedJSON: the bytes are not JSON (or not the JSON a field must
	// hold, such as a message key that does not parse).
	ClassMalformedJSON ErrorClass = "malformed_json"
	// ClassSchemaViolation: well-formed JSON of the wrong shape: a value that
	// is not an object, a field of the wrong type, a value that does not
	// conform to its Connect schema (a Decimal that is not base64, say).
	ClassSchemaViolation ErrorClass = "schema_violation"
	// ClassUnsupportedOp: a Debezium op rtgraph does not map (m, or unknown).
	ClassUnsupportedOp ErrorClass = "unsupported_op"
	// ClassMissingField: a field the format or the mapping requires is absent
	// or null (op, source, after of a create, the key, a request id).
	ClassMissingField ErrorClass = "missing_field"
	// ClassBadTime: the event time, or a temporal column, is absent, not a
	// time, or out of range.
	ClassBadTime ErrorClass = "bad_time"
	// ClassWrongType: a key or id field holds a value of another type than
	// the one its topic declares (Config.KeyTypes, RequestLogConfig.IDType).
	ClassWrongType ErrorClass = "wrong_type"
)

// DecodeError is the only error type a Decoder returns. Every DecodeError is
// permanent: decoding the same message again gives the same error, so the
// pipeline dead-letters the message instead of retrying it.
type DecodeError struct {
	Class  ErrorClass
	Reason string // human-readable detail, stable for a given input
	Field  string // dotted path of the offending field ("after.amount"); empty when the whole value is at fault
}

func (e *DecodeError) Error() string {
	s := "normalize: " + string(e.Class)
	if e.Field != "" {
		s += " at " + strconv.Quote(e.Field)
	}
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	return s
}

// Is reports whether target is a *DecodeError of the same class, so that
// errors.Is(err, &DecodeError{Class: ClassBadTime}) works as a class test.
func (e *DecodeError) Is(target error) bool {
	t, ok := target.(*DecodeError)
	return ok && t.Class == e.Class && t.Reason == "" && t.Field == ""
}

func decodeErr(class ErrorClass, field, reason string) *DecodeError {
	return &DecodeError{Class: class, Field: field, Reason: reason}
}

// ClassOf returns the class of a decode error, or "" when err is not one.
func ClassOf(err error) ErrorClass {
	var de *DecodeError
	if errors.As(err, &de) {
		return de.Class
	}
	return ""
}

// Configuration errors returned by Config.Validate and New, wrapped with the
// offending field.
var (
	ErrUnknownFormat  = errors.New("normalize: unknown format")
	ErrUnknownKind    = errors.New("normalize: unknown kind")
	ErrMissingSetting = errors.New("normalize: missing setting")
	ErrBadSetting     = errors.New("normalize: bad setting")
)
