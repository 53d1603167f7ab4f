// Package bedrock is the provider for Amazon Bedrock's Converse and
// ConverseStream APIs: OpenAI chat-completions requests are translated to
// Converse, and its answers and event streams back to OpenAI responses and
// chunks.
//
// Requests are signed (SigV4) and event streams decoded by the AWS SDK for
// Go v2; the SDK's own retries are off, since the gateway retries and falls
// back itself. Only chat completions are served.
package bedrock

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/schemas"
	"github.com/aws/smithy-go/middleware"
	"github.com/aws/smithy-go/transport/http/protocol/restjson1"

	"github.com/switchyard/switchyard/providers"
	"github.com/switchyard/switchyard/providers/chatwire"
	"github.com/switchyard/switchyard/providers/upstream"
)

// Options configure a Client.
type Options struct {
	upstream.Options
	// Region is the AWS region, e.g. us-east-1. Required.
	Region string
	// BaseURL overrides the endpoint (tests, VPC endpoints); empty uses the
	// regional endpoint.
	BaseURL string
	// AccessKeyID, SecretAccessKey and SessionToken are static credentials.
	// All empty means the SDK's default chain (environment, shared config,
	// web identity, container and instance roles, and Bedrock API keys from
	// AWS_BEARER_TOKEN_BEDROCK). Static credentials always sign with SigV4.
	AccessKeyID, SecretAccessKey, SessionToken string
}

// Client speaks Converse to one Bedrock region. It is safe for concurrent
// use.
type Client struct {
	*upstream.Client
	rt *bedrockruntime.Client
	// now is the clock for the created field; tests fix it.
	now func() time.Time
}

var _ providers.Provider = (*Client)(nil)

// New returns a Client with its own keep-alive connection pool. ctx bounds
// loading the default credential chain's configuration; credentials
// themselves are resolved, and refreshed, when requests are signed.
func New(ctx context.Context, o Options) (*Client, error) {
	if o.Region == "" {
		return nil, errors.New("bedrock: a region is required")
	}
	if (o.AccessKeyID == "") != (o.SecretAccessKey == "") || (o.SessionToken != "" && o.AccessKeyID == "") {
		return nil, errors.New("bedrock: static credentials need both an access key id and a secret access key")
	}
	c := &Client{Client: upstream.New(o.Options), now: time.Now}
	common := func(bo *bedrockruntime.Options) {
		bo.HTTPClient = sdkHTTP{hc: c.HTTP}
		bo.Retryer = aws.NopRetryer{}
		bo.RetryMaxAttempts = 1
		if o.BaseURL != "" {
			bo.BaseEndpoint = aws.String(o.BaseURL)
		}
	}
	if o.AccessKeyID != "" {
		static := bedrockruntime.Options{Region: o.Region,
			Credentials: credentials.NewStaticCredentialsProvider(o.AccessKeyID, o.SecretAccessKey, o.SessionToken)}
		c.rt = bedrockruntime.New(static, common, func(bo *bedrockruntime.Options) {
			// An AWS_BEARER_TOKEN_BEDROCK in the environment must not
			// override the keys this deployment was configured with.
			bo.BearerAuthTokenProvider = nil
			bo.AuthSchemePreference = []string{"sigv4"}
		})
		return c, nil
	}
	// The credential providers (IMDS, STS, SSO) keep the SDK's own HTTP
	// client, which honours AWS_CA_BUNDLE; Bedrock calls use the pool.
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(o.Region),
		config.WithRetryer(func() aws.Retryer { return aws.NopRetryer{} }))
	if err != nil {
		return nil, fmt.Errorf("bedrock: loading the AWS configuration: %w", err)
	}
	if cfg.Credentials != nil {
		cfg.Credentials = markedCredentials{cfg.Credentials}
	}
	c.rt = bedrockruntime.NewFromConfig(cfg, common)
	return c, nil
}

// markedCredentials marks credential failures as credentialsError.
type markedCredentials struct{ aws.CredentialsProvider }

func (m markedCredentials) Retrieve(ctx context.Context) (aws.Credentials, error) {
	creds, err := m.CredentialsProvider.Retrieve(ctx)
	if err != nil {
		return creds, &credentialsError{err: err}
	}
	return creds, nil
}

// Do sends a non-streaming request to Converse.
func (c *Client) Do(ctx context.Context, req *providers.Request) (*providers.Response, error) {
	p, err := c.params(req)
	if err != nil {
		return nil, err
	}
	a := c.Start(ctx)
	defer a.End()
	out, err := c.rt.Converse(a.Ctx, p.converseInput(), func(bo *bedrockruntime.Options) {
		// The headers are progress: from then on the between-chunks
		// timeout bounds reading the body, as for other providers.
		bo.HTTPClient = sdkHTTP{hc: c.HTTP, a: a}
	})
	if err != nil {
		return nil, c.callError(a.Ctx, err)
	}
	r, err := response(out, c.responseID(out.ResultMetadata, req), req.Model, c.now().Unix())
	if err != nil {
		return nil, c.BadResponse(err, "sent a Converse answer that cannot be translated: %v", err)
	}
	return r.ProviderResponse(), nil
}

// Stream starts a ConverseStream request. An exception Bedrock sends before
// the first event is returned by the first Recv.
func (c *Client) Stream(ctx context.Context, req *providers.Request) (providers.Stream, error) {
	p, err := c.params(req)
	if err != nil {
		return nil, err
	}
	a := c.Start(ctx)
	out, err := c.rt.ConverseStream(a.Ctx, p.streamInput(), func(bo *bedrockruntime.Options) {
		// The protocol's event-stream codec keeps per-stream state (a
		// payload buffer, a lazily made decoder) with no lock, so
		// concurrent streams sharing the client's protocol race. Each
		// stream gets its own.
		bo.Protocol = restjson1.New(schemas.AmazonBedrockFrontendService)
	})
	if err != nil {
		err = c.callError(a.Ctx, err)
		a.End()
		return nil, err
	}
	return newStream(c, a, out.GetStream(), chatwire.StreamWriter{ID: c.responseID(out.ResultMetadata, req),
		Model: req.Model, Created: c.now().Unix()}), nil
}

// params checks the operation and translates the body.
func (c *Client) params(req *providers.Request) (*converseParams, error) {
	if req.Operation != providers.OpChat {
		return nil, &providers.Error{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: "unsupported_operation",
			Message: fmt.Sprintf("backend %q (Bedrock) serves chat completions only, not %s", c.Backend(), req.Operation)}
	}
	r, err := chatwire.ParseRequest(req.Body)
	if err != nil {
		return nil, err
	}
	return translate(req.Model, r)
}

// responseID is "chatcmpl-" and Bedrock's request id, else the gateway's,
// else a random one.
func (c *Client) responseID(md middleware.Metadata, req *providers.Request) string {
	if id, ok := awsmiddleware.GetRequestIDMetadata(md); ok && id != "" {
		return "chatcmpl-" + id
	}
	if req.RequestID != "" {
		return "chatcmpl-" + req.RequestID
	}
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "chatcmpl-" + hex.EncodeToString(b[:])
}

// sdkHTTP is the HTTP client the SDK sends with.
//
// It hides the request body's io.WriterTo. smithy-go closes the request
// body as soon as the response headers arrive, and its closed body's
// WriteTo reports io.EOF as an error; when net/http's write loop is still
// making its final read of the body at that moment, it takes the error for
// a failed write and closes the connection under the response being read
// ("use of closed network connection" mid-stream). Through Read a closed
// body is a clean EOF.
//
// With an attempt (Converse, not ConverseStream) it also reports the
// response headers to the watchdog, so that the between-chunks timeout
// bounds reading the body, as for other providers; a stream's progress is
// its events.
type sdkHTTP struct {
	hc *http.Client
	a  *upstream.Attempt
}

func (s sdkHTTP) Do(r *http.Request) (*http.Response, error) {
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = readOnlyBody{r.Body}
	}
	resp, err := s.hc.Do(r)
	if err == nil && s.a != nil {
		s.a.Progress()
	}
	return resp, err
}

// readOnlyBody is an io.ReadCloser and nothing more.
type readOnlyBody struct{ io.ReadCloser }
