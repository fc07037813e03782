package pgmod

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/catga-go/catga/cqrs/transport"
)

// A row's headers column is a flat JSON object of strings, as every build
// has written it. It is encoded and decoded here by hand rather than
// through encoding/json and a map: that was 8.5% of the Go CPU of the
// outbox, and a header value is almost always plain ASCII. Anything out of
// the ordinary (an escape, a control character) takes encoding/json's way,
// so what is written stays readable by older builds and what they wrote
// stays readable here.

// encodeHeaders writes env's headers as a JSON object.
func encodeHeaders(env *transport.Envelope) string {
	b := make([]byte, 0, 512)
	b = append(b, '{')
	env.EachHeader(func(k, v string) {
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		b = appendJSONString(b, v)
	})
	b = append(b, '}')
	return string(b)
}

// appendJSONString appends s quoted; encoding/json quotes what needs
// escaping (it cannot fail on a string: invalid UTF-8 becomes U+FFFD).
func appendJSONString(b []byte, s string) []byte {
	if !plain(s) {
		q, _ := json.Marshal(s)
		return append(b, q...)
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// plain reports whether s can be quoted as it is: valid UTF-8 without a
// quote, a backslash or a control character.
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' {
			return false
		} else if c >= utf8.RuneSelf {
			return utf8.ValidString(s[i:])
		}
	}
	return true
}

// decodeHeaders reads back what encodeHeaders (or an older build) wrote.
func decodeHeaders(h string, payload []byte) (*transport.Envelope, error) {
	kv, ok := scanHeaders(h)
	if !ok {
		var m map[string]string
		if err := json.Unmarshal([]byte(h), &m); err != nil {
			return nil, fmt.Errorf("pgmod: outbox headers: %w", err)
		}
		return transport.ParseHeaders(func(k string) string { return m[k] }, payload)
	}
	return transport.ParseHeaders(func(k string) string {
		for i := 0; i < len(kv); i += 2 {
			if kv[i] == k {
				return kv[i+1]
			}
		}
		return ""
	}, payload)
}

// scanHeaders splits {"k":"v",...} into k, v, ... without copying. It
// answers false for anything else (whitespace, escapes, a non-string
// value, a repeated key), which decodeHeaders leaves to encoding/json.
func scanHeaders(h string) (kv []string, ok bool) {
	if len(h) < 2 || h[0] != '{' || h[len(h)-1] != '}' {
		return nil, false
	}
	kv = make([]string, 0, 24)
	rest := h[1 : len(h)-1]
	for rest != "" {
		var k, v string
		if k, rest, ok = scanString(rest); !ok || rest == "" || rest[0] != ':' {
			return nil, false
		}
		if v, rest, ok = scanString(rest[1:]); !ok {
			return nil, false
		}
		for i := 0; i < len(kv); i += 2 {
			if kv[i] == k {
				return nil, false // encoding/json keeps the last; leave it to it
			}
		}
		kv = append(kv, k, v)
		if rest != "" {
			if rest[0] != ',' || len(rest) == 1 {
				return nil, false
			}
			rest = rest[1:]
		}
	}
	return kv, true
}

// scanString reads a quoted string without escapes or control characters
// at the start of s and returns it and what follows.
func scanString(s string) (str, rest string, ok bool) {
	if s == "" || s[0] != '"' {
		return "", "", false
	}
	ascii := true
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			return s[1:i], s[i+1:], ascii || utf8.ValidString(s[1:i])
		case c == '\\' || c < 0x20:
			return "", "", false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return "", "", false
}
