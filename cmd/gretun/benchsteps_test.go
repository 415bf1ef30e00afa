package main

import (
	"strings"
	"testing"

	"github.com/gretun/gretun/tundev"
	"github.com/gretun/gretun/udpsock"
)

func TestApplyBenchSteps(t *testing.T) {
	t.Cleanup(func() { udpsock.Steps, tundev.Steps = udpsock.Options{}, struct{ NoTSO, NoCoalesce bool }{} })
	if err := applyBenchSteps(""); err != nil || udpsock.Steps != (udpsock.Options{}) || tundev.Steps.NoTSO || tundev.Steps.NoCoalesce {
		t.Fatalf("unset: err %v, steps %+v %+v; want every step on", err, udpsock.Steps, tundev.Steps)
	}
	if err := applyBenchSteps("gso, gro,coalesce,tso"); err != nil {
		t.Fatal(err)
	}
	if !udpsock.Steps.NoGSO || !udpsock.Steps.NoGRO || !tundev.Steps.NoCoalesce || !tundev.Steps.NoTSO {
		t.Fatalf("steps %+v %+v; want all four off", udpsock.Steps, tundev.Steps)
	}
	if err := applyBenchSteps("gso,fast"); err == nil || !strings.Contains(err.Error(), `"fast"`) {
		t.Fatalf("unknown step: err %v, want one naming it", err)
	}
}
