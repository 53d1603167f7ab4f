package gateway

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"io"
	"net/http"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// readLimit is how much of a body fasthttp reads: twice server.body_limit,
// at least 1 MiB more. A body past it is refused before it is read and
// its connection closed, and a client still writing it then sees a reset
// instead of the 413; one between the two is read whole and refused by
// bodyLimit, with the answer it deserves.
func readLimit(limit int) int {
	if limit <= 0 {
		return limit // fasthttp's default
	}
	return limit + max(limit, 1<<20)
}

// bodyLimit refuses a body past server.body_limit: the 413 fasthttp
// gives past readLimit, for every route.
func (s *Server) bodyLimit(c *fiber.Ctx) error {
	if limit := int(s.cfg.Server.BodyLimit); limit > 0 && len(c.Request().Body()) > limit {
		return fiber.ErrRequestEntityTooLarge
	}
	return c.Next()
}

// requestBody is the request's body, decompressed when the client sent
// it with Content-Encoding gzip or deflate. Decompression stops at the
// body limit, so a small compressed body cannot expand without bound; the
// upstream receives the decompressed JSON, which is what was scanned.
func (s *Server) requestBody(c *fiber.Ctx) ([]byte, error) {
	raw := c.Request().Body()
	enc := strings.ToLower(strings.TrimSpace(c.Get(fiber.HeaderContentEncoding)))
	var r io.Reader
	switch enc {
	case "", "identity":
		return raw, nil
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, invalidRequest("invalid_body_encoding", "", "The request body is not valid gzip data: %v.", err)
		}
		r = zr
	case "deflate":
		// HTTP's deflate is zlib-wrapped (RFC 9110); some clients send
		// the raw stream.
		if zr, err := zlib.NewReader(bytes.NewReader(raw)); err == nil {
			r = zr
		} else {
			r = flate.NewReader(bytes.NewReader(raw))
		}
	default:
		return nil, &APIError{Status: http.StatusUnsupportedMediaType, Type: "invalid_request_error", Code: "unsupported_content_encoding",
			Message: "This Content-Encoding is not supported; send the body uncompressed, gzip or deflate."}
	}
	limit := int64(s.cfg.Server.BodyLimit)
	if limit <= 0 {
		limit = 8 << 20
	}
	out, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, invalidRequest("invalid_body_encoding", "", "The request body could not be decompressed (%s): %v.", enc, err)
	}
	if int64(len(out)) > limit {
		return nil, &APIError{Status: http.StatusRequestEntityTooLarge, Type: "invalid_request_error", Code: "request_too_large",
			Message: "The decompressed request body is larger than the gateway's body limit."}
	}
	return out, nil
}
