package mapping

import (
	"fmt"
	"time"

	"github.com/expr-lang/expr"
)

// timeFunctions are the time helpers every expression may call. They take
// a time.Time (event_time, or a temporal column of a row image) and render
// it in UTC, so that formatting never depends on the process's zone:
//
//	unix_s(t)   int     seconds since the Unix epoch
//	unix_ms(t)  int     milliseconds
//	unix_us(t)  int     microseconds
//	iso_ms(t)   string  "2006-01-02T15:04:05.000Z", milliseconds always shown
//	iso(t)      string  RFC 3339 with as many fraction digits as needed
//	day(t)      string  "2006-01-02"
//
// A nil argument gives nil (so a missing column leaves the property out);
// any other non-time argument is an expression_error at run time, and a
// call with the wrong number of arguments fails at start-up.
var timeFunctions = []expr.Option{
	timeFunc("unix_s", func(t time.Time) any { return t.Unix() }),
	timeFunc("unix_ms", func(t time.Time) any { return t.UnixMilli() }),
	timeFunc("unix_us", func(t time.Time) any { return t.UnixMicro() }),
	timeFunc("iso_ms", func(t time.Time) any { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }),
	timeFunc("iso", func(t time.Time) any { return t.UTC().Format(time.RFC3339Nano) }),
	timeFunc("day", func(t time.Time) any { return t.UTC().Format(time.DateOnly) }),
}

// timeFunc declares one helper. The declared type checks arity at compile
// time; the argument's type is checked at run time, since row images are
// untyped maps.
func timeFunc(name string, f func(time.Time) any) expr.Option {
	return expr.Function(name, func(params ...any) (any, error) {
		if len(params) != 1 {
			return nil, fmt.Errorf("%s: want one argument, got %d", name, len(params))
		}
		switch t := params[0].(type) {
		case nil:
			return nil, nil
		case time.Time:
			return f(t), nil
		default:
			return nil, fmt.Errorf("%s: want a time, got %T", name, params[0])
		}
	}, new(func(any) any))
}
