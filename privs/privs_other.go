//go:build !linux

package privs

// Drop does nothing where gretun does not run.
func Drop() error { return nil }
