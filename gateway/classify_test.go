package gateway_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/gateway"
)

func TestAccessLogHasEntityCountsNeverText(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, chatCompletion("m", "noted", 1, 1, 0))
	})
	cfg := gatewayConfig(t, "", route{name: "chat", backends: []string{up.URL + "/v1"}})
	cfg.Classification.Custom = []config.CustomDetector{{Label: "EMPLOYEE_ID", Pattern: `\bEMP-\d{6}\b`}}
	logs := &syncBuffer{}
	base, _ := startGatewayWith(t, cfg, gateway.Options{Logger: slog.New(slog.NewJSONHandler(logs, nil))})

	prompt := "Refund jane.doe@example.com on card 4111 1111 1111 1111, ask EMP-123456 and mail jane.doe@example.com again"
	_, err := sdk(base).Chat.Completions.New(context.Background(), openai.ChatCompletionNewParams{
		Model: "chat", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage(prompt)},
	})
	require.NoError(t, err)

	var line map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if strings.Contains(l, `"path":"/v1/chat/completions"`) {
			require.NoError(t, json.Unmarshal([]byte(l), &line))
		}
	}
	require.NotNil(t, line, "the request was logged: %s", logs.String())
	assert.Equal(t, map[string]any{"EMAIL": 2.0, "CREDIT_CARD": 1.0, "EMPLOYEE_ID": 1.0}, line["entities"])
	assert.Contains(t, line["decision_id"], "dec_", "the access log names the policy decision")
	for _, secret := range []string{"jane.doe", "4111", "EMP-123456", "Refund"} {
		assert.NotContains(t, logs.String(), secret, "prompt text never reaches the log")
	}
}
