package main

import (
	"io"

	"github.com/gretun/gretun/bench"
)

// benchCmd runs the end-to-end benchmark (see package bench).
func benchCmd(args []string, stdout, stderr io.Writer) int {
	return bench.Main(args, stdout, stderr)
}
