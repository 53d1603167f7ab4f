// Package azure is Azure OpenAI: OpenAI's wire format with the deployment
// in the URL path, an api-version query parameter and an api-key header.
// It is the OpenAI provider, configured.
package azure

import (
	"net/http"
	"net/url"

	"github.com/switchyard/switchyard/providers"
	"github.com/switchyard/switchyard/providers/openai"
	"github.com/switchyard/switchyard/providers/upstream"
)

// Options configure a client for one Azure OpenAI resource.
type Options struct {
	upstream.Options
	// BaseURL is the resource's endpoint with /openai, for example
	// https://my-resource.openai.azure.com/openai.
	BaseURL string
	// APIKey is sent as the api-key header.
	APIKey string
	// APIVersion is the api-version query parameter, for example
	// 2024-10-21.
	APIVersion string
}

// New returns a client; a deployment's model is the Azure deployment name.
func New(o Options) *openai.Client {
	h := http.Header{}
	if o.APIKey != "" {
		h.Set("api-key", o.APIKey)
	}
	return openai.New(openai.Options{
		Options: o.Options,
		BaseURL: o.BaseURL,
		Header:  h,
		Query:   url.Values{"api-version": {o.APIVersion}}.Encode(),
		Path: func(op providers.Operation, deployment string) string {
			return "/deployments/" + url.PathEscape(deployment) + op.Path()
		},
	})
}
