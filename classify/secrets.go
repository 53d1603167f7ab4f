package classify

import "strings"

// Secrets of formats no pattern knows: a long random-looking token (mixed
// case and digits, 20 characters or more) that the text calls a key, a
// secret, a token or a password just before it — "STRIPE_KEY=…",
// "clave de API: …", "Authorization: Bearer …". The same token without
// such a word is an identifier and is left alone.

var secretWords = []string{
	"key", "apikey", "api_key", "secret", "token", "password", "passwd", "pwd", "credential", "bearer", "authorization",
	"auth", "schlüssel", "schluessel", "passwort", "geheim", "clé", "cle d", "mot de passe", "clave", "contraseña",
	"chiave", "chave", "senha", "sleutel", "wachtwoord",
}

// scanContextSecrets reports tokens a nearby word calls secret.
func scanContextSecrets(t string, add func(Span)) {
	for i := 0; i < len(t); {
		if !isTokenByte(t[i]) {
			i++
			continue
		}
		s := i
		for i < len(t) && isTokenByte(t[i]) {
			i++
		}
		e := i
		for e > s && (t[e-1] == '.' || t[e-1] == '-') { // sentence punctuation
			e--
		}
		if e-s < 20 || e-s > 1024 || !randomLooking(t[s:e]) {
			continue
		}
		// The word may be in the token itself: KEY=value.
		tok := t[s:e]
		if k := strings.IndexByte(tok, '='); k > 0 && k < len(tok)-1 {
			if containsWord(strings.ToLower(tok[:k]), secretWords) && randomLooking(tok[k+1:]) && len(tok)-k-1 >= 16 {
				add(Span{Start: s + k + 1, End: e, Label: APIKey})
				continue
			}
		}
		if containsWord(strings.ToLower(t[max(s-contextBefore, 0):s]), secretWords) {
			add(Span{Start: s, End: e, Label: APIKey})
		}
	}
}

// randomLooking reports a token with upper case, lower case and digits,
// not a hex string, not a path or a word with a number.
func randomLooking(s string) bool {
	var up, low, dig, slash int
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 'A' && c <= 'Z':
			up++
		case c >= 'a' && c <= 'z':
			low++
		case isDigit(c):
			dig++
		case c == '/':
			slash++
		}
	}
	return up >= 2 && low >= 2 && dig >= 2 && slash <= 2
}
