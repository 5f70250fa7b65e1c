//go:build unix

package broker

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockDir takes an exclusive advisory lock on path (created if needed). The
// kernel releases it when the process exits, so a crash leaves no stale
// lock behind.
func lockDir(path string) (unlock func() error, err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%w: open %s: %v", ErrPersist, path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrDirLocked, path)
		}
		return nil, fmt.Errorf("%w: lock %s: %v", ErrPersist, path, err)
	}
	return f.Close, nil // closing the descriptor releases the lock
}
