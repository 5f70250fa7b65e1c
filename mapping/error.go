package mapping

import (
	"errors"
	"strconv"
	"strings"
)

// Class is the closed vocabulary of mapping failures. The pipeline puts the
// class in the dead-letter record's headers (next to normalize's decode
// classes), so each class names one kind of problem and never changes
// meaning. Every mapping failure is permanent: mapping the same envelope with
// the same mapping files and the same cache contents gives the same error.
type Class string

// The mapping error classes.
const (
	// ClassUnknownEntity: no rule selected the envelope, and its topic is not
	// declared `unmatched: ignore`; or no mapping file names the topic at all.
	// Field is "origin.topic" in the second case.
	ClassUnknownEntity Class = "unknown_entity"
	// ClassNonConforming: a mutation the rules produced breaks the graph
	// schema (the wrapped error is a *graph.SchemaError), or an id expression
	// gave a value that cannot be an id (null, a bool, a list).
	ClassNonConforming Class = "non_conforming"
	// ClassJoinFailed: a join whose on_miss is dead_letter found no document
	// under its key, or its key expression gave null.
	ClassJoinFailed Class = "join_failed"
	// ClassExpressionError: evaluating an expression failed at run time
	// (fetching a field of null, adding a string to a number, a condition
	// that is not a bool).
	ClassExpressionError Class = "expression_error"
	// ClassUnavailableValue: a node id, an edge end's id, a condition (the
	// rule's select.when or an emit's when), a join key or the version reads
	// an attribute the source did not send (normalize.Envelope.Unavailable:
	// an unchanged TOASTed column, which a Debezium PostgreSQL update
	// carries as a placeholder). Nothing can be decided without it, so the
	// event is not mapped; properties that read one are kept instead (see
	// the package doc).
	ClassUnavailableValue Class = "unavailable_value"
)

// Error is the only error type Map returns (apart from ctx.Err()). It names
// the class, the mapping rule ("<file>#<rule>", empty for unknown_entity)
// and the field of the rule being evaluated ("emit.edges[1].props.genre").
type Error struct {
	Class   Class
	Mapping string
	Field   string
	Err     error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("mapping: ")
	b.WriteString(string(e.Class))
	if e.Mapping != "" {
		b.WriteString(" in ")
		b.WriteString(e.Mapping)
	}
	if e.Field != "" {
		b.WriteString(" at ")
		b.WriteString(strconv.Quote(e.Field))
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the cause (a *graph.SchemaError for non_conforming).
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is an *Error of the same class with no other
// field set, so that errors.Is(err, &Error{Class: ClassJoinFailed}) tests
// the class.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Class == e.Class && t.Mapping == "" && t.Field == "" && t.Err == nil
}

// ClassOf returns the class of a mapping error, or "" when err is not one.
func ClassOf(err error) Class {
	var me *Error
	if errors.As(err, &me) {
		return me.Class
	}
	return ""
}

// ErrInvalidMapping is wrapped by every *LoadError: a mapping file is not
// valid. Load returns other errors only when a file cannot be read.
var ErrInvalidMapping = errors.New("mapping: invalid mapping file")

// LoadError locates a problem in a mapping file, for start-up messages.
type LoadError struct {
	File  string // path within the fs.FS
	Line  int    // 1-based; 0 when unknown
	Rule  string // rule name, when the problem is inside a rule
	Field string // dotted path within the rule or file ("emit.nodes[0].props.genre")
	Msg   string
}

func (e *LoadError) Error() string {
	var b strings.Builder
	b.WriteString("mapping ")
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":")
		b.WriteString(strconv.Itoa(e.Line))
	}
	if e.Rule != "" {
		b.WriteString(": rule ")
		b.WriteString(e.Rule)
	}
	if e.Field != "" {
		b.WriteString(": ")
		b.WriteString(e.Field)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap makes every LoadError match ErrInvalidMapping.
func (e *LoadError) Unwrap() error { return ErrInvalidMapping }

// DeadLetterClass, DeadLetterField and DeadLetterMapping label the
// dead-letter record of an envelope that failed to map (they make *Error an
// ingest.ClassifiedError).
func (e *Error) DeadLetterClass() string { return string(e.Class) }

// DeadLetterField returns Field.
func (e *Error) DeadLetterField() string { return e.Field }

// DeadLetterMapping returns Mapping.
func (e *Error) DeadLetterMapping() string { return e.Mapping }
