package schemas

import (
	"embed"
	"io/fs"
)

// Graph holds the typed graph schema under graph/: node types and edge
// types (ends, properties, TTL, reverse index) that graph.LoadSchema reads.
// A new business vertical adds a file there.
//
//go:embed graph/*.yaml
var Graph embed.FS

// GraphSchema returns the graph schema directory itself, the fs.FS to pass
// to graph.LoadSchema with dir ".".
func GraphSchema() fs.FS {
	sub, err := fs.Sub(Graph, "graph")
	if err != nil {
		// "graph" is a valid constant path, so fs.Sub cannot fail.
		panic(err)
	}
	return sub
}
