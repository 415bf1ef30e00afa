package ppp

import (
	"encoding/hex"
	"testing"
)

// The example of RFC 2759 §9.2.
func TestMSCHAPv2RFC2759(t *testing.T) {
	auth := h("5B5D7C7D7B3F2F3E3C2C602132262628")
	peer := h("21402324255E262A28295F2B3A337C7E")
	if got := hex.EncodeToString(challengeHash(peer, auth, "User")); got != "d02e4386bce91226" {
		t.Errorf("ChallengeHash = %s", got)
	}
	if got := hex.EncodeToString(ntPasswordHash("clientPass")); got != "44ebba8d5312b8d611474411f56989ae" {
		t.Errorf("NtPasswordHash = %s", got)
	}
	nt := ntResponse(auth, peer, "User", "clientPass")
	if got := hex.EncodeToString(nt); got != "82309ecd8d708b5ea08faa3981cd83544233114a3d85d6df" {
		t.Errorf("NT-Response = %s", got)
	}
	if got := authenticatorResponse("clientPass", nt, peer, auth, "User"); got != "S=407A5589115FD0D6209F510FE9C04566932CDA56" {
		t.Errorf("AuthenticatorResponse = %s", got)
	}
}
