package classify

import (
	"regexp"
	"strings"
)

// Secrets of formats no pattern knows (scanKeyTokens, scanPasswords,
// scanURLCredentials):
//
//   - a long token (20 characters or more, letters and digits) that the
//     text calls a key, a secret or a token just before it: "STRIPE_KEY=…",
//     "clave de API: …", "clientSecret: '…'", "Authorization: Bearer …";
//     the same token without such a word is an identifier and is left
//     alone, and a public key or a certificate is no secret;
//   - a password: what follows "password", "Passwort", "mot de passe",
//     "contraseña"… (with ":", "=" or "is" between), when it is not a plain
//     word: "password: Winter2024!", "DB_PASSWORD=s3cr3t!", "pwd=…";
//   - the credentials in a URL: "postgres://admin:Pw@db.internal".

var secretWords = []string{
	"key", "apikey", "api_key", "secret", "token", "password", "passwd", "pwd", "credential", "bearer", "authorization",
	"auth", "schlüssel", "schluessel", "passwort", "geheim", "clé", "cle d", "mot de passe", "clave", "contraseña",
	"chiave", "chave", "senha", "sleutel", "wachtwoord",
}

// passwordWords introduce a password; matched after a non-letter, so
// "DB_PASSWORD=" counts.
var passwordWords = []string{
	"password", "passwort", "passwd", "passcode", "passphrase", "pwd", "pass", "kennwort", "mot de passe", "mdp",
	"contraseña", "contrasena", "clave", "senha", "wachtwoord", "parola d'ordine", "pw",
}

// Words between a password word and the password.
var passwordLinks = []string{"is", "ist", "est", "es", "è", "é", "was", "lautet", "era", "wordt", "="}

// urlCredentials finds the userinfo of a URL: user:password@host, or a
// token@host ("https://ghp_…@github.com").
var urlCredentials = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://([^\s/@:"'<>]+)(:[^\s/@"'<>]+)?@[^\s/?#"'<>]+`)

// scanURLCredentials reports the userinfo of URLs.
func scanURLCredentials(t string, add func(Span)) {
	if !strings.Contains(t, "://") {
		return
	}
	for _, m := range urlCredentials.FindAllStringSubmatchIndex(t, -1) {
		switch {
		case m[4] >= 0: // user:password@host
			add(Span{Start: m[2], End: m[1], Label: Password})
		case m[3]-m[2] >= 20 && tokenLike(t[m[2]:m[3]]): // token@host
			add(Span{Start: m[2], End: m[1], Label: APIKey})
		}
	}
}

// scanKeyTokens reports tokens a nearby word calls secret. Such a token
// holds a digit (tokenLike), so texts without one need not be read.
func scanKeyTokens(t string, add func(Span)) {
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
		if e-s < 20 || e-s > 1024 || !tokenLike(t[s:e]) {
			continue
		}
		// The word may be in the token itself: KEY=value.
		tok := t[s:e]
		if k := strings.IndexByte(tok, '='); k > 0 && k < len(tok)-1 {
			if containsWord(strings.ToLower(splitWords(tok[:k])), secretWords) && tokenLike(tok[k+1:]) && len(tok)-k-1 >= 16 {
				add(Span{Start: s + k + 1, End: e, Label: APIKey})
				continue
			}
		}
		before := strings.ToLower(splitWords(t[max(s-contextBefore, 0):s]))
		// Right before the token ("api key: 3f9a…"), any long token of
		// letters and digits is the key; a few words before, only a
		// random-looking one.
		near := strings.TrimRight(before, " :=\"'\t")
		explicit := len(near) < len(before) && containsWord(near[max(len(near)-24, 0):], secretWords)
		if containsWord(before, secretWords) && !strings.Contains(before, "public") && !strings.Contains(before, "certificate") &&
			(randomLooking(tok) || explicit) {
			add(Span{Start: s, End: e, Label: APIKey})
		}
	}
}

// tokenLike reports letters and digits mixed as in generated keys: four
// letters and a digit at least.
func tokenLike(s string) bool {
	var letters, digits int
	for i := 0; i < len(s); i++ {
		switch {
		case isLetter(s[i]):
			letters++
		case isDigit(s[i]):
			digits++
		}
	}
	return letters >= 4 && digits >= 1
}

// passwordByFirst indexes passwordWords by their first byte, either case;
// passwordSecond says which second bytes follow it in some word.
var passwordByFirst, passwordSecond = func() (t [256][]string, second [256][256]bool) {
	for _, w := range passwordWords {
		for _, f := range []byte{w[0], upper(w[0])} {
			t[f] = append(t[f], w)
			second[f][w[1]], second[f][upper(w[1])] = true, true
		}
	}
	return t, second
}()

// scanPasswords reports what password words introduce. One pass over word
// starts; a word is compared only when its first letter could start one.
func scanPasswords(t string, add func(Span)) {
	for i := 0; i < len(t); i++ {
		if (i > 0 && isLetter(t[i-1])) || len(passwordByFirst[t[i]]) == 0 || i+1 == len(t) || !passwordSecond[t[i]][t[i+1]] {
			continue
		}
		for _, w := range passwordByFirst[t[i]] {
			if len(t)-i < len(w) || !strings.EqualFold(t[i:i+len(w)], w) {
				continue
			}
			off := i + len(w)
			j := off
			for j < len(t) && isLetter(t[j]) && j-off < 2 { // "passwords", "Passworte"
				j++
			}
			if j < len(t) && isLetter(t[j]) {
				continue
			}
			j = skipLink(t, j)
			s := j
			for j < len(t) && j-s <= 128 && !passwordEnd(t[j]) {
				j++
			}
			e := j
			for e > s && strings.IndexByte(".,)", t[e-1]) >= 0 && e-s > 6 {
				e--
			}
			if e-s >= 6 && e-s <= 128 && notAWord(t[s:e]) && !strings.ContainsAny(t[s:e], "()") {
				add(Span{Start: s, End: e, Label: Password})
				i = e - 1
				break
			}
		}
	}
}

// skipLink skips what stands between a password word and the password:
// spaces, ":", "=", quotes, and words such as "is" or "lautet".
func skipLink(t string, j int) int {
	for {
		k := j
		for k < len(t) && strings.IndexByte(" \t:=\"'`", t[k]) >= 0 {
			k++
		}
		moved := k > j
		j = k
		for _, l := range passwordLinks {
			if len(t)-j >= len(l) && strings.EqualFold(t[j:j+len(l)], l) && (j+len(l) == len(t) || !isLetter(t[j+len(l)])) {
				j += len(l)
				moved = true
				break
			}
		}
		if !moved {
			return j
		}
	}
}

func passwordEnd(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '"' || c == '\'' || c == '`' || c == ';' || c == ',' || c == '<' || c == '>'
}

// notAWord reports a token that is not a plain word: it mixes letters with
// digits or symbols, or has capitals after its first letter.
func notAWord(s string) bool {
	var digits, symbols, upperAfter int
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isDigit(c):
			digits++
		case isUpper(c):
			if i > 0 {
				upperAfter++
			}
		case !isLetter(c) && c < 0x80:
			symbols++
		}
	}
	return digits+symbols+upperAfter > 0 && (digits+symbols < len(s))
}

// randomLooking reports a token with upper case, lower case and digits,
// not a path or a word with a number.
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
	return up >= 2 && low >= 2 && dig >= 1 && slash <= 3
}
