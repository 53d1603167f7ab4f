package gateway

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/router"
)

// Principal is who a request acts for, resolved from its virtual key.
type Principal struct {
	KeyID  string
	Tenant string
	Team   string
	User   string
	// routes the key may use; nil allows every route.
	routes map[*router.Route]bool
}

// Allows reports whether the key may use rt.
func (p *Principal) Allows(rt *router.Route) bool { return p.routes == nil || p.routes[rt] }

// keyring maps the SHA-256 of a virtual key to its principal. Keys are never
// held in clear.
type keyring map[[sha256.Size]byte]*Principal

func newKeyring(keys []config.Key, r *router.Router) (keyring, error) {
	kr := keyring{}
	for _, k := range keys {
		raw, err := hex.DecodeString(k.SHA256)
		if err != nil || len(raw) != sha256.Size {
			return nil, fmt.Errorf("key %q: sha256 must be 64 hex digits", k.ID)
		}
		p := &Principal{KeyID: k.ID, Tenant: k.Tenant, Team: k.Team, User: k.User}
		if len(k.Models) > 0 {
			p.routes = map[*router.Route]bool{}
			for _, m := range k.Models {
				if rt, ok := r.Lookup(m); ok {
					p.routes[rt] = true
				}
			}
		}
		kr[[sha256.Size]byte(raw)] = p
	}
	return kr, nil
}

// HashKey is the SHA-256, in lowercase hex, that config stores for a key.
func HashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// apiKey extracts the API key from Authorization: Bearer, api-key or
// x-api-key, in that order. scheme is true when an Authorization header with
// another scheme was the only credential offered.
func apiKey(c *fiber.Ctx) (key string, otherScheme bool) {
	if h := c.Get(fiber.HeaderAuthorization); h != "" {
		if scheme, tok, ok := strings.Cut(h, " "); ok && strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(tok), false
		}
		otherScheme = true
	}
	if h := c.Get("api-key"); h != "" {
		return h, false
	}
	if h := c.Get("x-api-key"); h != "" {
		return h, false
	}
	return "", otherScheme
}

// authenticate resolves the virtual key to a Principal.
func (s *Server) authenticate(c *fiber.Ctx) error {
	key, otherScheme := apiKey(c)
	if key == "" {
		msg := "You didn't provide an API key. Send it as 'Authorization: Bearer KEY', 'api-key: KEY' or 'x-api-key: KEY'."
		if otherScheme {
			msg = "Unsupported Authorization scheme. Send the key as 'Authorization: Bearer KEY', 'api-key: KEY' or 'x-api-key: KEY'."
		}
		return &APIError{Status: http.StatusUnauthorized, Type: "invalid_request_error", Code: "invalid_api_key", Message: msg}
	}
	p := s.keys[sha256.Sum256([]byte(key))]
	if p == nil {
		return &APIError{Status: http.StatusUnauthorized, Type: "invalid_request_error", Code: "invalid_api_key",
			Message: "Incorrect API key provided."}
	}
	c.Locals(localPrincipal, p)
	return c.Next()
}
