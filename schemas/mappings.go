package schemas

import (
	"embed"
	"io/fs"
)

// Mappings holds the declarative mapping rules under mappings/: which events
// become which nodes and edges (package mapping reads them). A new business
// vertical adds a file there, next to its node and edge types in graph/.
//
//go:embed mappings/*.yaml
var Mappings embed.FS

// MappingFiles returns the mappings directory itself, the fs.FS to pass to
// mapping.Load.
func MappingFiles() fs.FS {
	sub, err := fs.Sub(Mappings, "mappings")
	if err != nil {
		// "mappings" is a valid constant path, so fs.Sub cannot fail.
		panic(err)
	}
	return sub
}
