package classify

// Byte classes, looked up in one table: the scanners test every byte of
// every text, so a class test is one load and one mask.

const (
	cDigit = 1 << iota
	cUpper
	cLower
	cHex
	cBase64 // letters, digits, + / - _
	cToken  // base64 plus . =, what a secret token is made of
	cWordish
)

// classTable is built by its initialiser, not by init, so that package
// variables built from the class tests (windows.go) see it filled.
var classTable = func() (t [256]uint8) {
	for i := range 256 {
		c := byte(i)
		var k uint8
		switch {
		case c >= '0' && c <= '9':
			k |= cDigit | cHex
		case c >= 'A' && c <= 'Z':
			k |= cUpper
			if c <= 'F' {
				k |= cHex
			}
		case c >= 'a' && c <= 'z':
			k |= cLower
			if c <= 'f' {
				k |= cHex
			}
		}
		if k&(cDigit|cUpper|cLower) != 0 || c == '+' || c == '/' || c == '-' || c == '_' {
			k |= cBase64
		}
		if k&cBase64 != 0 || c == '.' || c == '=' {
			k |= cToken
		}
		if k&(cDigit|cUpper|cLower) != 0 || c == '_' || c == '-' {
			k |= cWordish
		}
		t[i] = k
	}
	return t
}()

func isDigit(c byte) bool     { return classTable[c]&cDigit != 0 }
func isUpper(c byte) bool     { return classTable[c]&cUpper != 0 }
func isLetter(c byte) bool    { return classTable[c]&(cUpper|cLower) != 0 }
func isAlnum(c byte) bool     { return classTable[c]&(cDigit|cUpper|cLower) != 0 }
func isHex(c byte) bool       { return classTable[c]&cHex != 0 }
func isBase64(c byte) bool    { return classTable[c]&cBase64 != 0 }
func isTokenByte(c byte) bool { return classTable[c]&cToken != 0 }
func isWordish(c byte) bool   { return classTable[c]&cWordish != 0 }
