package schemas

import (
	"io/fs"

	"github.com/rtgraph/rtgraph/verticals"
)

// MappingFiles returns the mapping rules of the built-in streaming vertical
// (verticals/streaming/mappings: which events become which nodes and
// edges), the fs.FS to pass to mapping.Load. Another vertical brings its
// own mappings/ folder (package vertical).
func MappingFiles() fs.FS {
	sub, err := fs.Sub(verticals.Streaming(), "mappings")
	if err != nil {
		// "mappings" is a valid constant path, so fs.Sub cannot fail.
		panic(err)
	}
	return sub
}
