package schemas

import (
	"io/fs"

	"github.com/rtgraph/rtgraph/verticals"
)

// GraphSchema returns the graph schema of the built-in streaming vertical
// (verticals/streaming/graph: node types and edge types with their
// properties, TTL and reverse index), the fs.FS to pass to graph.LoadSchema
// with dir ".". Another vertical brings its own graph/ folder (package
// vertical).
func GraphSchema() fs.FS {
	sub, err := fs.Sub(verticals.Streaming(), "graph")
	if err != nil {
		// "graph" is a valid constant path, so fs.Sub cannot fail.
		panic(err)
	}
	return sub
}
