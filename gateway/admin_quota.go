package gateway

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/gofiber/fiber/v2"

	"github.com/switchyard/switchyard/quota"
)

// quotaSubject reads whose counters an admin asks for: key_id (a virtual
// key, with its team and tenant), or team and tenant, or tenant alone.
func (s *Server) quotaSubject(keyID, team, tenant string) (quota.Subject, error) {
	if keyID != "" {
		for _, k := range s.cfg.Keys {
			if k.ID == keyID {
				return quota.Subject{Tenant: k.Tenant, Team: k.Team, Key: k.ID}, nil
			}
		}
		return quota.Subject{}, &APIError{Status: http.StatusNotFound, Type: "invalid_request_error", Code: "key_not_found",
			Param: "key_id", Message: "No virtual key has the id " + keyID + "."}
	}
	if tenant == "" {
		return quota.Subject{}, &APIError{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: "missing_required_parameter",
			Param: "tenant", Message: "Name a key_id, or a tenant (and optionally a team)."}
	}
	return quota.Subject{Tenant: tenant, Team: team}, nil
}

type quotaUsage struct {
	KeyID    string        `json:"key_id,omitempty"`
	Team     string        `json:"team,omitempty"`
	Tenant   string        `json:"tenant"`
	Counters []quota.State `json:"counters"`
}

// quotaUsage is GET /v1/switchyard/quota?key_id=|team=&tenant=: the
// counters of every limit that applies, with what is left.
func (s *Server) quotaUsage(c *fiber.Ctx) error {
	subj, err := s.quotaSubject(c.Query("key_id"), c.Query("team"), c.Query("tenant"))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Quotas.Redis.Timeout)
	defer cancel()
	states, err := s.quota.Usage(ctx, subj)
	if err != nil {
		return &APIError{Status: http.StatusServiceUnavailable, Type: "api_error", Code: "quota_unavailable", Message: "The quota store cannot be read right now.", Err: err}
	}
	if states == nil {
		states = []quota.State{}
	}
	return c.JSON(quotaUsage{KeyID: subj.Key, Team: subj.Team, Tenant: subj.Tenant, Counters: states})
}

type quotaResetRequest struct {
	KeyID  string `json:"key_id"`
	Team   string `json:"team"`
	Tenant string `json:"tenant"`
}

// quotaReset is POST /v1/switchyard/quota/reset: zero the counters of a
// key (with its team and tenant) or of a team or tenant.
func (s *Server) quotaReset(c *fiber.Ctx) error {
	var req quotaResetRequest
	// JSON whatever the Content-Type: `curl -d` sends a form type.
	if err := json.Unmarshal(c.Body(), &req); err != nil {
		return invalidRequest("invalid_json", "", "The body must be a JSON object with key_id, or team and tenant.")
	}
	subj, err := s.quotaSubject(req.KeyID, req.Team, req.Tenant)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Quotas.Redis.Timeout)
	defer cancel()
	if err := s.quota.Reset(ctx, subj); err != nil {
		return &APIError{Status: http.StatusServiceUnavailable, Type: "api_error", Code: "quota_unavailable", Message: "The quota store cannot be written right now.", Err: err}
	}
	return c.JSON(fiber.Map{"reset": true, "key_id": subj.Key, "team": subj.Team, "tenant": subj.Tenant})
}
