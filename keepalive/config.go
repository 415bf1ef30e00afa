package keepalive

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Defaults, chosen to match Cisco's `keepalive` (10 seconds, 3 retries) and,
// for damping, to leave a single outage undamped.
const (
	DefaultPeriod      = 10 * time.Second
	DefaultRetries     = 3
	DefaultDampInitial = 1
	DefaultDampMax     = 16
	// DefaultDampDecayPeriods is the default DampDecay in keepalive
	// periods per retry: DampDecay = 10 × Period × Retries, five minutes
	// with the default Period and Retries. Ten times the time it takes to
	// notice an outage is "stable" by any measure.
	DefaultDampDecayPeriods = 10
)

// Limits on a Config, the only ones: the command line and the config file
// take the same. MinPeriod allows sub-second periods for tests while
// refusing values that would turn keepalives into a flood. MaxPeriod and
// MaxRetries are Cisco's upper bounds. MaxDamp keeps a flapping tunnel
// recoverable.
const (
	MinPeriod  = 10 * time.Millisecond
	MaxPeriod  = 32767 * time.Second
	MaxRetries = 255
	MaxDamp    = 1024
)

// Config configures one tunnel's keepalives. The zero value of every field
// means its default.
type Config struct {
	// Period is the interval between keepalives (default 10s).
	Period time.Duration
	// Retries is how many keepalives in a row may go unanswered before
	// the line protocol goes down (default 3).
	Retries int

	// DampInitial is how many consecutive good replies bring the tunnel
	// up after its first down (default 1, Cisco's behaviour).
	DampInitial int
	// DampMax caps the requirement, which doubles on each further down
	// (default 16). DampInitial = DampMax = 1 turns damping off.
	DampMax int
	// DampDecay is how long the tunnel must stay up for the requirement
	// to halve (default 10 × Period × Retries).
	DampDecay time.Duration
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Period == 0 {
		c.Period = DefaultPeriod
	}
	if c.Retries == 0 {
		c.Retries = DefaultRetries
	}
	if c.DampInitial == 0 {
		c.DampInitial = DefaultDampInitial
	}
	if c.DampMax == 0 {
		c.DampMax = max(DefaultDampMax, c.DampInitial)
	}
	if c.DampDecay == 0 && c.Period > 0 && c.Retries > 0 &&
		c.Period <= MaxPeriod && c.Retries <= MaxRetries {
		c.DampDecay = DefaultDampDecayPeriods * c.Period * time.Duration(c.Retries)
	}
	return c
}

// Validate reports the first field of c (after defaults) that is out of
// range.
func (c Config) Validate() error {
	c = c.WithDefaults()
	switch {
	case c.Period < MinPeriod:
		return fmt.Errorf("keepalive period %v is too short (minimum %v)", c.Period, MinPeriod)
	case c.Period > MaxPeriod:
		return fmt.Errorf("keepalive period %v is too long (maximum %v)", c.Period, MaxPeriod)
	case c.Retries < 1 || c.Retries > MaxRetries:
		return fmt.Errorf("keepalive retries %d out of range [1, %d]", c.Retries, MaxRetries)
	case c.DampInitial < 1 || c.DampInitial > MaxDamp:
		return fmt.Errorf("keepalive damping initial %d out of range [1, %d]", c.DampInitial, MaxDamp)
	case c.DampMax < c.DampInitial || c.DampMax > MaxDamp:
		return fmt.Errorf("keepalive damping max %d out of range [%d, %d]", c.DampMax, c.DampInitial, MaxDamp)
	case c.DampDecay <= 0:
		return fmt.Errorf("keepalive damping decay %v must be positive", c.DampDecay)
	}
	return nil
}

var errEmptyPeriod = errors.New("empty keepalive period")

// ParsePeriod parses the PERIOD of `keepalive [PERIOD [RETRIES]]`: a bare
// number is seconds, as on Cisco, and may have a fraction ("10", "0.5");
// anything else is a Go duration ("200ms", "1m30s"). It refuses what is
// no positive time and numbers too large to convert; Validate checks the
// limits.
func ParsePeriod(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errEmptyPeriod
	}
	bad := fmt.Errorf("invalid keepalive period %q (seconds, e.g. 10 or 0.5, or a duration like 200ms)", s)
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if f != f || f <= 0 || f > MaxPeriod.Seconds() {
			return 0, bad
		}
		// Round: 1.005 s is 1004999999.99… ns in floating point.
		return time.Duration(math.Round(f * float64(time.Second))), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, bad
	}
	return d, nil
}
