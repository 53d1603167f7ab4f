package gateway

import (
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Metric attribute sets
//
// A request's metrics are recorded under four sets of attributes, and the
// requests of a gateway fall into a few dozen combinations of them (tenant,
// team, route, provider, backend kind, upstream and answering model,
// outcome). Building a set sorts and hashes its attributes and allocates;
// done per request it was a tenth of the all-on request path's allocations,
// so the sets of each combination are built once and kept.

// labels are what a request's metric attributes are made of.
type labels struct {
	outcome, kind, model, op, provider, upstream, respModel, tenant, team, errType string
}

// labelSets are the attribute sets of one combination of labels.
type labelSets struct {
	requests  metric.AddOption // outcome, backend kind, route
	cost      metric.AddOption // tenant, team, route, provider, kind
	fallbacks metric.AddOption // route
	input     attribute.Set    // token usage: operation, provider, token type, models, kind
	output    attribute.Set    //
	duration  attribute.Set    // operation, provider, models, kind (and error type)
	perChunk  attribute.Set    // time to first chunk and per chunk: as duration, no error type
}

// maxLabelSets bounds the cache: past it (labels an upstream invents, such
// as response model names), sets are built per request and not kept.
const maxLabelSets = 4096

type labelCache struct {
	mu sync.RWMutex
	m  map[labels]*labelSets
}

// sets returns the attribute sets of l.
func (c *labelCache) sets(l labels) *labelSets {
	c.mu.RLock()
	s, ok := c.m[l]
	c.mu.RUnlock()
	if ok {
		return s
	}
	s = l.build()
	c.mu.Lock()
	if c.m == nil {
		c.m = make(map[labels]*labelSets)
	}
	if len(c.m) < maxLabelSets {
		c.m[l] = s
	}
	c.mu.Unlock()
	return s
}

func (l labels) build() *labelSets {
	models := []attribute.KeyValue{
		attribute.String("gen_ai.operation.name", l.op),
		attribute.String("gen_ai.provider.name", l.provider),
		attribute.String("gen_ai.request.model", l.upstream),
		attribute.String("gen_ai.response.model", l.respModel),
		attrBackendKind.String(l.kind),
	}
	with := func(extra ...attribute.KeyValue) attribute.Set {
		return attribute.NewSet(append(append([]attribute.KeyValue(nil), models...), extra...)...)
	}
	s := &labelSets{
		requests: metric.WithAttributeSet(attribute.NewSet(attribute.String("outcome", l.outcome), attrBackendKind.String(l.kind),
			attribute.String("gen_ai.request.model", l.model))),
		cost: metric.WithAttributeSet(attribute.NewSet(attrTenant.String(l.tenant), attrTeam.String(l.team), attribute.String("gen_ai.request.model", l.model),
			attribute.String("gen_ai.provider.name", l.provider), attrBackendKind.String(l.kind))),
		fallbacks: metric.WithAttributeSet(attribute.NewSet(attribute.String("gen_ai.request.model", l.model))),
		input:     with(attribute.String("gen_ai.token.type", "input")),
		output:    with(attribute.String("gen_ai.token.type", "output")),
		perChunk:  with(),
	}
	s.duration = s.perChunk
	if l.errType != "" {
		s.duration = with(attribute.String("error.type", l.errType))
	}
	return s
}
