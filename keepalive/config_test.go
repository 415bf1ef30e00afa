package keepalive

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestConfigDefaults(t *testing.T) {
	tests := []struct {
		name string
		in   Config
		want Config
	}{
		{"zero", Config{},
			Config{Period: 10 * time.Second, Retries: 3, DampInitial: 1, DampMax: 16, DampDecay: 5 * time.Minute}},
		{"sub-second period", Config{Period: 100 * time.Millisecond, Retries: 2},
			Config{Period: 100 * time.Millisecond, Retries: 2, DampInitial: 1, DampMax: 16, DampDecay: 2 * time.Second}},
		{"initial above the default cap raises the cap", Config{DampInitial: 32},
			Config{Period: 10 * time.Second, Retries: 3, DampInitial: 32, DampMax: 32, DampDecay: 5 * time.Minute}},
		{"explicit values kept", Config{Period: time.Second, Retries: 5, DampInitial: 2, DampMax: 8, DampDecay: time.Minute},
			Config{Period: time.Second, Retries: 5, DampInitial: 2, DampMax: 8, DampDecay: time.Minute}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.in.WithDefaults()
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("WithDefaults (-want +got):\n%s", diff)
			}
			if err := tt.in.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"negative period", Config{Period: -time.Second}, "period"},
		{"period below minimum", Config{Period: time.Microsecond}, "period"},
		{"period above maximum", Config{Period: 25 * time.Hour}, "period"},
		{"negative retries", Config{Retries: -1}, "retries"},
		{"too many retries", Config{Retries: 256}, "retries"},
		{"negative initial", Config{DampInitial: -1}, "initial"},
		{"initial too large", Config{DampInitial: MaxDamp + 1}, "initial"},
		{"max below initial", Config{DampInitial: 4, DampMax: 2}, "max"},
		{"max too large", Config{DampMax: MaxDamp + 1}, "max"},
		{"negative decay", Config{DampDecay: -time.Second}, "decay"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate = %v, want an error about %s", err, tt.wantErr)
			}
			if _, err := New(tt.cfg, t0); err == nil {
				t.Error("New accepted the config")
			}
		})
	}
}

func TestParsePeriod(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"10", 10 * time.Second, false},
		{" 5 ", 5 * time.Second, false},
		{"0.5", 500 * time.Millisecond, false},
		{"0.001", time.Millisecond, false},
		{"200ms", 200 * time.Millisecond, false},
		{"1m30s", 90 * time.Second, false},
		{"", 0, true},
		{"-1", 0, true},
		{"0", 0, true},
		{"0s", 0, true},
		{"-1s", 0, true},
		{"1.005", 1005 * time.Millisecond, false}, // 1.004999999 s before rounding
		{"32767", 32767 * time.Second, false},
		{"32768", 0, true},
		{"NaN", 0, true},
		{"inf", 0, true},
		{"1e30", 0, true},
		{"ten", 0, true},
		{"10 s", 0, true},
	}
	for _, tt := range tests {
		got, err := ParsePeriod(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParsePeriod(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}
