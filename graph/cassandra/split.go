package cassandra

import (
	"fmt"
	"strings"
)

// statement is one CQL statement of a migration file.
type statement struct {
	Text string // trimmed, without the terminating ';'
	Line int    // 1-based line where the statement starts
}

// splitCQL splits a CQL script into statements on ';' outside string
// literals (single-quoted with a doubled quote as escape, or $$...$$),
// quoted identifiers (double-quoted, same escape) and comments (--, // to
// end of line; /* */). Statements made
// only of comments and blanks are dropped; a trailing statement without ';'
// is kept. An unterminated literal, identifier or comment is an error naming
// the line it starts on.
func splitCQL(src string) ([]statement, error) {
	var (
		out       []statement
		cur       strings.Builder
		line      = 1
		startLine = 0 // line of the first significant byte of cur; 0 = none yet
	)
	flush := func() {
		if t := strings.TrimSpace(cur.String()); t != "" && startLine > 0 {
			out = append(out, statement{Text: t, Line: startLine})
		}
		cur.Reset()
		startLine = 0
	}
	mark := func() {
		if startLine == 0 {
			startLine = line
		}
	}
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == '\n':
			line++
			cur.WriteByte(c)
			i++
		case c == ';':
			flush()
			i++
		case c == '-' && strings.HasPrefix(src[i:], "--"), c == '/' && strings.HasPrefix(src[i:], "//"):
			// A line comment ends at the newline, which the loop keeps.
			j := strings.IndexByte(src[i:], '\n')
			if j < 0 {
				j = len(src) - i
			}
			cur.WriteByte(' ')
			i += j
		case c == '/' && strings.HasPrefix(src[i:], "/*"):
			j := strings.Index(src[i+2:], "*/")
			if j < 0 {
				return nil, fmt.Errorf("line %d: unterminated /* comment", line)
			}
			body := src[i : i+2+j+2]
			line += strings.Count(body, "\n")
			cur.WriteByte(' ')
			i += len(body)
		case c == '\'' || c == '"':
			mark()
			start := line
			j := i + 1
			for {
				k := strings.IndexByte(src[j:], c)
				if k < 0 {
					what := "string literal"
					if c == '"' {
						what = "quoted identifier"
					}
					return nil, fmt.Errorf("line %d: unterminated %s", start, what)
				}
				j += k + 1
				// A doubled quote is an escaped quote, not the end.
				if j < len(src) && src[j] == c {
					j++
					continue
				}
				break
			}
			lit := src[i:j]
			line += strings.Count(lit, "\n")
			cur.WriteString(lit)
			i = j
		case c == '$' && strings.HasPrefix(src[i:], "$$"):
			mark()
			j := strings.Index(src[i+2:], "$$")
			if j < 0 {
				return nil, fmt.Errorf("line %d: unterminated $$ string", line)
			}
			lit := src[i : i+2+j+2]
			line += strings.Count(lit, "\n")
			cur.WriteString(lit)
			i += len(lit)
		default:
			if c != ' ' && c != '\t' && c != '\r' {
				mark()
			}
			cur.WriteByte(c)
			i++
		}
	}
	flush()
	return out, nil
}
