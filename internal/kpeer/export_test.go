package kpeer

// Parsers exported for the external tests.
var (
	ParseStats = parseStats
)
