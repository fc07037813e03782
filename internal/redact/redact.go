// Package redact hides the credentials of connection URLs, even of URLs
// that do not parse (a mistyped port, a bad escape, a raw '@' or space in a
// password), whose parse errors quote the raw input.
package redact

import (
	"net/url"
	"strings"
)

const mask = "[redacted]"

// Userinfo returns the user-info part of raw ("user:pass" of
// "scheme://user:pass@host/..."), or "" when it has none: everything
// before the last '@', so a password with '@' or '/' in it is hidden whole.
// Broker URLs carry no '@' in their paths.
func Userinfo(raw string) string {
	rest := raw
	if i := strings.Index(rest, "://"); i >= 0 {
		rest = rest[i+3:]
	}
	if j := strings.LastIndex(rest, "@"); j >= 0 {
		return rest[:j]
	}
	return ""
}

// URL returns raw with its user info hidden: the password when there is a
// user name ("scheme://user:[redacted]@host"), the whole user info when it
// is a bare token.
func URL(raw string) string {
	ui := Userinfo(raw)
	if ui == "" {
		return raw
	}
	if u, err := url.Parse(raw); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			return u.Redacted()
		}
	}
	user, _, hasPass := strings.Cut(ui, ":")
	hidden := mask
	if hasPass {
		hidden = user + ":" + mask
	}
	return strings.Replace(raw, ui+"@", hidden+"@", 1)
}

// Secrets returns the secrets of raw's user info, raw and decoded, for
// scrubbing error texts.
func Secrets(raw string) []string {
	ui := Userinfo(raw)
	if ui == "" {
		return nil
	}
	out := []string{ui}
	if _, pass, ok := strings.Cut(ui, ":"); ok {
		out = append(out, pass)
		if dec, err := url.PathUnescape(pass); err == nil && dec != pass {
			out = append(out, dec)
		}
	} else if dec, err := url.PathUnescape(ui); err == nil && dec != ui {
		out = append(out, dec)
	}
	return out
}

// Text removes from msg each of secrets (at least 3 characters long) and
// the raw URLs they came from.
func Text(msg string, urls []string, secrets ...string) string {
	for _, u := range urls {
		if r := URL(u); r != u {
			msg = strings.ReplaceAll(msg, u, r)
		}
		secrets = append(secrets, Secrets(u)...)
	}
	for _, s := range secrets {
		if len(s) >= 3 {
			msg = strings.ReplaceAll(msg, s, mask)
		}
	}
	return msg
}
