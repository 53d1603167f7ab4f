package gateway

import (
	"net/url"

	"github.com/gofiber/fiber/v2"

	"github.com/switchyard/switchyard/router"
)

// model is an entry of GET /v1/models, in OpenAI's shape.
type model struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

type modelList struct {
	Object string  `json:"object"`
	Data   []model `json:"data"`
}

func (s *Server) model(id string) model {
	return model{ID: id, Object: "model", Created: s.started.Unix(), OwnedBy: "switchyard"}
}

// listModels lists every public model name and alias the key may use.
func (s *Server) listModels(c *fiber.Ctx) error {
	p := c.Locals(localPrincipal).(*Principal)
	list := modelList{Object: "list", Data: []model{}}
	for _, rt := range s.router.Routes() {
		if !p.Allows(rt) {
			continue
		}
		for _, name := range names(rt) {
			list.Data = append(list.Data, s.model(name))
		}
	}
	return c.JSON(list)
}

// getModel describes one model; ids may contain slashes
// ("meta-llama/Llama-3.1-8B-Instruct").
func (s *Server) getModel(c *fiber.Ctx) error {
	id, err := url.PathUnescape(c.Params("*"))
	if err != nil {
		id = c.Params("*")
	}
	p := c.Locals(localPrincipal).(*Principal)
	rt, ok := s.router.Lookup(id)
	if !ok || !p.Allows(rt) {
		return modelNotFound(id)
	}
	return c.JSON(s.model(id))
}

func names(rt *router.Route) []string {
	return append([]string{rt.Name}, rt.Aliases...)
}
