package ppp

import (
	"crypto/des"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/hex"
	"strings"
	"unicode/utf16"

	"golang.org/x/crypto/md4"
)

// MS-CHAPv2 (RFC 2759), CHAP algorithm 0x81. Its security reduces to one
// DES key search: it is here only because legacy PPTP servers ask for it.

const chapMSv2 = 0x81

// ntPasswordHash is MD4 of the password in UTF-16LE (RFC 2759 §8.3).
func ntPasswordHash(password string) []byte {
	h := md4.New()
	for _, u := range utf16.Encode([]rune(password)) {
		h.Write([]byte{byte(u), byte(u >> 8)})
	}
	return h.Sum(nil)
}

// challengeHash is the first 8 bytes of SHA1(peer || auth || user)
// (§8.2); the user name is without a domain.
func challengeHash(peer, auth []byte, user string) []byte {
	if i := strings.LastIndexByte(user, '\\'); i >= 0 {
		user = user[i+1:]
	}
	h := sha1.New()
	h.Write(peer)
	h.Write(auth)
	h.Write([]byte(user))
	return h.Sum(nil)[:8]
}

// challengeResponse DES-encrypts the 8-byte challenge under the three
// 7-byte thirds of the zero-padded password hash (§8.5).
func challengeResponse(challenge, pwHash []byte) []byte {
	z := make([]byte, 21)
	copy(z, pwHash)
	out := make([]byte, 0, 24)
	for i := 0; i < 3; i++ {
		c, _ := des.NewCipher(desKey(z[7*i : 7*i+7]))
		var b [8]byte
		c.Encrypt(b[:], challenge)
		out = append(out, b[:]...)
	}
	return out
}

// desKey spreads 56 key bits over 8 bytes (parity bits left 0; DES
// ignores them).
func desKey(k []byte) []byte {
	var bits uint64
	for _, b := range k {
		bits = bits<<8 | uint64(b)
	}
	out := make([]byte, 8)
	for i := range out {
		out[i] = byte(bits>>(56-7*(i+1))) << 1
	}
	return out
}

// ntResponse is the 24-byte NT-Response of §8.1.
func ntResponse(auth, peer []byte, user, password string) []byte {
	return challengeResponse(challengeHash(peer, auth, user), ntPasswordHash(password))
}

var (
	magic1 = []byte("Magic server to client signing constant")
	magic2 = []byte("Pad to make it do more than one iteration")
)

// authenticatorResponse is the "S=…" the server must send on success
// (§8.7): proof that it knows the password too.
func authenticatorResponse(password string, nt, peer, auth []byte, user string) string {
	h := md4.New()
	h.Write(ntPasswordHash(password))
	hh := h.Sum(nil)
	d := sha1.New()
	d.Write(hh)
	d.Write(nt)
	d.Write(magic1)
	digest := d.Sum(nil)
	d = sha1.New()
	d.Write(digest)
	d.Write(challengeHash(peer, auth, user))
	d.Write(magic2)
	return "S=" + strings.ToUpper(hex.EncodeToString(d.Sum(nil)))
}

// checkAuthenticator reports whether a Success message starts with the
// expected authenticator response.
func checkAuthenticator(msg []byte, want string) bool {
	if len(msg) < len(want) {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.ToUpper(string(msg[:len(want)]))), []byte(want)) == 1
}
