package header

import (
	"github.com/gretun/gretun/internal/refsum"
	"math/rand/v2"
	"testing"
)

// naiveSum is the slow, obvious RFC 1071 checksum: an independent reference.
var naiveSum = refsum.RFC1071

func TestChecksumMatchesRFC1071(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	fill := map[string]func([]byte){
		"zeros":  func(b []byte) {},
		"ones":   func(b []byte) { fillByte(b, 0xff) }, // keeps the carry chain at its limit
		"random": func(b []byte) { fillRandom(rng, b) },
		"0xfe":   func(b []byte) { fillByte(b, 0xfe) },
		"alternating": func(b []byte) {
			for i := range b {
				if i%2 == 0 {
					b[i] = 0xff
				}
			}
		},
	}
	for name, f := range fill {
		for n := 0; n <= 300; n++ {
			b := make([]byte, n)
			f(b)
			if got, want := Checksum(b), naiveSum(b); got != want {
				t.Fatalf("%s, %d bytes: Checksum = %#04x, RFC 1071 says %#04x", name, n, got, want)
			}
		}
	}
}

// TestSumPieces checks that summing a range in even-length pieces, with
// the running sum carried, equals summing it whole (header checksums skip
// their own field that way).
func TestSumPieces(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		b := make([]byte, rng.IntN(200))
		if rng.IntN(4) == 0 {
			fillByte(b, 0xff)
		} else {
			fillRandom(rng, b)
		}
		cut := rng.IntN(len(b)/2+1) * 2
		got := Fold(Sum(b[cut:], Sum(b[:cut], 0)))
		if want := naiveSum(b); got != want {
			t.Fatalf("%d bytes cut at %d: %#04x, want %#04x", len(b), cut, got, want)
		}
	}
}

func TestFoldExtremes(t *testing.T) {
	for _, c := range []struct {
		sum  uint64
		want uint16
	}{
		{0, 0xffff},
		{0xffff, 0},
		{0x10000, 0xfffe},
		{^uint64(0), 0}, // 2^64-1 is one's-complement zero
		{1 << 63, ^uint16(1 << 15)},
	} {
		if got := Fold(c.sum); got != c.want {
			t.Errorf("Fold(%#x) = %#04x, want %#04x", c.sum, got, c.want)
		}
	}
}

func fillByte(b []byte, v byte) {
	for i := range b {
		b[i] = v
	}
}

func fillRandom(rng *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
}

func BenchmarkChecksum(b *testing.B) {
	for _, n := range []int{20, 1424} {
		buf := make([]byte, n)
		fillRandom(rand.New(rand.NewPCG(5, 6)), buf)
		b.Run(itoa(n), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(n))
			for b.Loop() {
				sink = Checksum(buf)
			}
		})
	}
}

var sink uint16

func itoa(n int) string {
	var d []byte
	for n >= 10 {
		d = append([]byte{byte('0' + n%10)}, d...)
		n /= 10
	}
	return string(append([]byte{byte('0' + n)}, d...))
}

// TestSumLargeInitial: a running sum of 2^64-1 (one's-complement zero) or
// near it must not lose a carry, whatever follows.
func TestSumLargeInitial(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, initial := range []uint64{^uint64(0), ^uint64(0) - 1, 1 << 63} {
		for n := 0; n <= 200; n++ {
			b := make([]byte, n)
			if n%3 == 0 {
				fillByte(b, 0xff)
			} else {
				fillRandom(rng, b)
			}
			// initial folded to 16 bits, then b, the RFC 1071 way.
			s := uint32(^Fold(initial))
			want := naiveSum(append([]byte{byte(s >> 8), byte(s)}, b...))
			if got := Fold(Sum(b, initial)); got != want {
				t.Fatalf("initial %#x, %d bytes: %#04x, want %#04x", initial, n, got, want)
			}
		}
	}
}
