package gateway

import (
	"context"

	"github.com/gofiber/fiber/v2"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/quota"
)

// healthz is liveness: the process serves HTTP.
func (s *Server) healthz(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"status": "ok", "version": s.version})
}

type deploymentHealth struct {
	ID      string `json:"id"`
	Kind    string `json:"kind"`
	Healthy bool   `json:"healthy"`
	// Problem says why a deployment cannot serve, when it is known
	// before trying (a missing API key).
	Problem string `json:"problem,omitempty"`
}

// readyz is readiness: 503 while draining for shutdown, when no
// deployment of any model is healthy, or when the quota store's breaker
// is open and every key's limits refuse requests without the store; with
// the state of each deployment and of the quota store. A gateway that
// still serves some key under the limits' failure modes is "degraded",
// and ready.
func (s *Server) readyz(c *fiber.Ctx) error {
	var deps []deploymentHealth
	healthy := 0
	seen := map[string]bool{}
	for _, rt := range s.router.Routes() {
		for _, d := range rt.Deployments {
			if seen[d.ID()] {
				continue
			}
			seen[d.ID()] = true
			h := d.Healthy()
			if d.Kind == config.KindLocal && h {
				if _, err := s.local.Model(d.Model); err != nil {
					h = false // not loaded: /readyz's local_engine says why
				}
			}
			problem := s.backends[d.Backend].MissingCredentials()
			if problem != "" {
				h = false
			}
			if h {
				healthy++
			}
			deps = append(deps, deploymentHealth{ID: d.ID(), Kind: d.Kind, Healthy: h, Problem: problem})
		}
	}
	status, code := "ready", fiber.StatusOK
	switch {
	case s.draining.Load():
		status, code = "draining", fiber.StatusServiceUnavailable
	case len(deps) > 0 && healthy == 0:
		status, code = "no healthy deployment", fiber.StatusServiceUnavailable
	}
	out := fiber.Map{"deployments": deps, "policy": s.policy.Status()}
	if s.quota.Enabled() {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Quotas.Redis.Timeout)
		s.quota.Probe(ctx)
		cancel()
		q := s.quota.Status()
		out["quota"] = fiber.Map{"store": s.cfg.Quotas.Store, "degraded": q.Degraded, "store_errors": q.StoreErrors, "breaker": q.Breaker}
		switch {
		case code != fiber.StatusOK:
		case q.Breaker != quota.BreakerClosed && s.quotaRefusesAll():
			status, code = "quota store unavailable", fiber.StatusServiceUnavailable
		case q.Degraded:
			status = "degraded" // still serving, under the limits' failure modes
		}
	}
	out["status"] = status
	if st := s.local.Status(); len(st) > 0 {
		le := fiber.Map{"models": st}
		if rt := s.local.Runtime; rt != nil {
			le["devices"] = rt.Devices
		}
		out["local_engine"] = le
	}
	return c.Status(code).JSON(out)
}

// quotaRefusesAll reports whether, with the quota store unavailable, every
// virtual key's requests are refused: its limits fail closed, or fail to
// local only and no model it may use has a local or self-hosted
// deployment.
func (s *Server) quotaRefusesAll() bool {
	if len(s.keys) == 0 {
		return false
	}
	for _, p := range s.keys {
		switch s.quota.Mode(subjectOf(p)) {
		case quota.FailClosed:
		case quota.LocalOnly:
			if s.servesLocally(p) {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// servesLocally reports whether p may use a model with a local or
// self-hosted deployment.
func (s *Server) servesLocally(p *Principal) bool {
	for _, rt := range s.router.Routes() {
		if !p.Allows(rt) {
			continue
		}
		for _, d := range rt.Deployments {
			if d.Kind == config.KindLocal || d.Kind == config.KindSelfHosted {
				return true
			}
		}
	}
	return false
}
