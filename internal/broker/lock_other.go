//go:build !unix

package broker

import (
	"fmt"
	"os"
)

// lockDir creates path exclusively. Without flock a lock file left by a
// crashed process must be removed by hand; the error says which file.
func lockDir(path string) (unlock func() error, err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644)
	if err != nil {
		if os.IsExist(err) {
			return nil, fmt.Errorf("%w: %s exists (remove it if no demo is running)", ErrDirLocked, path)
		}
		return nil, fmt.Errorf("%w: lock %s: %v", ErrPersist, path, err)
	}
	return func() error {
		_ = f.Close()
		return os.Remove(path)
	}, nil
}
