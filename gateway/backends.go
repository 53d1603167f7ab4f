package gateway

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/localengine"
	"github.com/switchyard/switchyard/pricing"
	"github.com/switchyard/switchyard/providers"
	"github.com/switchyard/switchyard/providers/anthropic"
	"github.com/switchyard/switchyard/providers/azure"
	"github.com/switchyard/switchyard/providers/bedrock"
	"github.com/switchyard/switchyard/providers/gemini"
	"github.com/switchyard/switchyard/providers/openai"
	"github.com/switchyard/switchyard/providers/retry"
	"github.com/switchyard/switchyard/providers/upstream"
	"github.com/switchyard/switchyard/router"
)

// buildRouter turns config backends and model routes into router
// deployments, one provider client (and connection pool) per backend.
func buildRouter(cfg *config.Config, local *localengine.Pool) (*router.Router, error) {
	clients := map[string]providers.Provider{}
	backends := map[string]config.Backend{}
	for _, b := range cfg.Backends {
		backends[b.Name] = b
		p, err := newProvider(b, local)
		if err != nil {
			return nil, fmt.Errorf("backend %q: %w", b.Name, err)
		}
		clients[b.Name] = retry.Wrap(p, retry.Policy{Attempts: b.Retry.Attempts, Base: b.Retry.Base, Max: b.Retry.Max})
		if msg := b.MissingCredentials(); msg != "" {
			clients[b.Name] = noCredentials(msg)
		}
	}
	var routes []*router.Route
	for _, m := range cfg.Models {
		rt := &router.Route{Name: m.Name, Aliases: m.Aliases}
		for _, d := range m.Deployments {
			b, ok := backends[d.Backend]
			if !ok {
				return nil, fmt.Errorf("model %q: unknown backend %q", m.Name, d.Backend)
			}
			rt.Deployments = append(rt.Deployments, &router.Deployment{
				Backend:  b.Name,
				Kind:     b.Kind,
				Model:    d.Model,
				Price:    deploymentPrice(b, d),
				Provider: clients[b.Name],
				Tokens:   encoding(b, d.Model, local),
			})
		}
		routes = append(routes, rt)
	}
	return router.New(routes), nil
}

// newProvider builds the client for a backend's wire protocol.
func newProvider(b config.Backend, local *localengine.Pool) (providers.Provider, error) {
	o := upstream.Options{Backend: b.Name, ConnectTimeout: b.Timeouts.Connect, FirstByteTimeout: b.Timeouts.FirstByte,
		BetweenChunksTimeout: b.Timeouts.BetweenChunks, MaxIdleConns: b.MaxIdleConns}
	switch b.Provider {
	case config.ProviderLlamaCpp:
		return localengine.NewProvider(local), nil
	case config.ProviderAzure:
		return azure.New(azure.Options{Options: o, BaseURL: b.BaseURL, APIKey: b.APIKey.Value(), APIVersion: b.APIVersion}), nil
	case config.ProviderAnthropic:
		return anthropic.New(anthropic.Options{Options: o, BaseURL: b.BaseURL, APIKey: b.APIKey.Value(), Version: b.APIVersion, Beta: b.Beta}), nil
	case config.ProviderGemini:
		return gemini.New(gemini.Options{Options: o, BaseURL: b.BaseURL, APIKey: b.APIKey.Value()}), nil
	case config.ProviderBedrock:
		return bedrock.New(context.Background(), bedrock.Options{Options: o, Region: b.Region, BaseURL: b.BaseURL,
			AccessKeyID: b.AWS.AccessKeyID.Value(), SecretAccessKey: b.AWS.SecretAccessKey.Value(), SessionToken: b.AWS.SessionToken.Value()})
	}
	if _, ok := config.Presets[b.Provider]; ok || b.Provider == config.ProviderOpenAI {
		return openai.New(openai.Options{Options: o, BaseURL: b.BaseURL, APIKey: b.APIKey.Value(), Responses: responsesSupport(b)}), nil
	}
	return nil, fmt.Errorf("unknown provider %q", b.Provider)
}

// responsesSupport maps a backend's responses_api to the openai client's.
func responsesSupport(b config.Backend) openai.ResponsesSupport {
	switch b.ResponsesMode() {
	case config.ResponsesNative:
		return openai.ResponsesOn
	case config.ResponsesAuto:
		return openai.ResponsesProbe
	}
	return openai.ResponsesOff
}

// deploymentPrice is the deployment's own price, else its backend's; a
// proprietary backend that sets none is billed from the default table by
// the upstream model's name.
func deploymentPrice(b config.Backend, d config.Deployment) pricing.Price {
	p := b.Price
	if d.Price != nil {
		p = *d.Price
	} else if b.Kind == config.KindProprietary && p.IsZero() {
		if usd, ok := pricing.Lookup(d.Model); ok {
			return usd.Price()
		}
	}
	return pricing.FromUSDPerMTok(p.InputPerMTok, p.OutputPerMTok, p.Cached(), p.CacheWrite())
}

// localSpecs turns the config's local models into engine specs.
func localSpecs(le config.LocalEngine) []localengine.Spec {
	specs := make([]localengine.Spec, len(le.Models))
	for i, m := range le.Models {
		specs[i] = localengine.Spec{Name: m.Name, Path: m.Path, Context: m.Context, Slots: m.Slots, Queue: m.Queue, Batch: m.Batch,
			GPULayers: m.GPULayers, Threads: m.Threads, ChatTemplate: m.ChatTemplate, Embeddings: m.Embeddings}
	}
	return specs
}

// noCredentials stands in for a backend whose API key is missing: every
// call fails at once, naming the variable to set, instead of reaching the
// upstream to be refused (or being reported unreachable). The route falls
// back past it like past any failed deployment.
type noCredentials string

// codeCredentialsMissing is the error code of a call to a backend whose
// API key is not set.
const codeCredentialsMissing = "upstream_credentials_missing"

var _ providers.Provider = noCredentials("")

func (n noCredentials) err() error {
	return &providers.Error{Status: http.StatusBadGateway, Type: "api_error", Code: codeCredentialsMissing,
		Message: strings.ToUpper(string(n[:1])) + string(n[1:]) + ".", Retryable: true}
}

func (n noCredentials) Do(context.Context, *providers.Request) (*providers.Response, error) {
	return nil, n.err()
}

func (n noCredentials) Stream(context.Context, *providers.Request) (providers.Stream, error) {
	return nil, n.err()
}
