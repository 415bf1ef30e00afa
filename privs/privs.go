// Package privs drops the capabilities gretun does not need once it is set
// up: every one but CAP_NET_ADMIN (devices, netlink) and CAP_NET_RAW (raw
// and packet sockets), from the effective, permitted and, where the process
// may change it, bounding sets, with the ambient and inheritable sets
// cleared, so nothing gretun executes inherits any.
//
// Capabilities belong to each thread, and a Go program has many: the
// changes go to all of them at once through syscall.AllThreadsSyscall,
// which works only in a binary without cgo (make build uses
// CGO_ENABLED=0). Elsewhere Drop reports ErrCgo and changes nothing.
package privs

import "errors"

// ErrCgo means the binary uses cgo, so the capabilities of all its threads
// cannot be changed together.
var ErrCgo = errors.New("capabilities not dropped: this gretun is built with cgo, whose threads cannot all be changed at once (build it with CGO_ENABLED=0, as make build does)")
