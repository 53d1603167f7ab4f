package gateway

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"path"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// dashboardFiles is the cost dashboard: a static page that asks for an
// admin key and reads GET /v1/switchyard/costs with it. The charting
// library is vendored (dashboard/vendor/README.md), so it works offline.
//
//go:embed dashboard
var dashboardFiles embed.FS

// dashboardCSP allows the page's own files only: no inline script or
// style, no other origin, no framing.
const dashboardCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

type dashboardFile struct {
	body        []byte
	contentType string
	etag        string
}

// dashboardAssets are the embedded files by path below dashboard/, read
// once.
var dashboardAssets = loadDashboard()

func loadDashboard() map[string]dashboardFile {
	types := map[string]string{
		".html": "text/html; charset=utf-8",
		".js":   "text/javascript; charset=utf-8",
		".css":  "text/css; charset=utf-8",
		".md":   "text/plain; charset=utf-8",
		".png":  "image/png",
		".svg":  "image/svg+xml",
	}
	files := map[string]dashboardFile{}
	err := fs.WalkDir(dashboardFiles, "dashboard", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := dashboardFiles.ReadFile(p)
		if err != nil {
			return err
		}
		ct, ok := types[path.Ext(p)]
		if !ok {
			ct = "text/plain; charset=utf-8" // LICENSE
		}
		sum := sha256.Sum256(b)
		files[strings.TrimPrefix(p, "dashboard/")] = dashboardFile{body: b, contentType: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		panic("gateway: embedded dashboard: " + err.Error())
	}
	return files
}

// dashboardPage is GET /dashboard: the page. It needs no key; the data
// does.
func (s *Server) dashboardPage(c *fiber.Ctx) error {
	return serveDashboardFile(c, "index.html")
}

// dashboardAsset is GET /dashboard/*: the page's scripts, styles and
// vendored library; /dashboard/ is the page.
func (s *Server) dashboardAsset(c *fiber.Ctx) error {
	name := c.Params("*")
	if name == "" {
		name = "index.html"
	}
	return serveDashboardFile(c, name)
}

func serveDashboardFile(c *fiber.Ctx, name string) error {
	f, ok := dashboardAssets[name]
	if !ok {
		return fiber.ErrNotFound
	}
	c.Set(fiber.HeaderContentSecurityPolicy, dashboardCSP)
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	c.Set(fiber.HeaderXFrameOptions, "DENY")
	c.Set(fiber.HeaderReferrerPolicy, "no-referrer")
	// The files are not content-addressed: revalidate every time, which
	// the ETag makes a 304 when nothing changed.
	c.Set(fiber.HeaderCacheControl, "no-cache")
	c.Set(fiber.HeaderETag, f.etag)
	if inm := c.Get(fiber.HeaderIfNoneMatch); inm != "" && etagMatches(inm, f.etag) {
		c.Status(fiber.StatusNotModified)
		return nil
	}
	c.Set(fiber.HeaderContentType, f.contentType)
	return c.Send(f.body)
}

func etagMatches(header, etag string) bool {
	for _, v := range strings.Split(header, ",") {
		v = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), "W/"))
		if v == etag || v == "*" {
			return true
		}
	}
	return false
}
