package bedrock

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/document"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	smithydocument "github.com/aws/smithy-go/document"

	"github.com/switchyard/switchyard/providers/chatwire"
)

// converseParams is what ConverseInput and ConverseStreamInput share.
type converseParams struct {
	modelID   string
	messages  []types.Message
	system    []types.SystemContentBlock
	inference *types.InferenceConfiguration
	tools     *types.ToolConfiguration
	output    *types.OutputConfig
}

func (p *converseParams) converseInput() *bedrockruntime.ConverseInput {
	return &bedrockruntime.ConverseInput{ModelId: aws.String(p.modelID), Messages: p.messages, System: p.system,
		InferenceConfig: p.inference, ToolConfig: p.tools, OutputConfig: p.output}
}

func (p *converseParams) streamInput() *bedrockruntime.ConverseStreamInput {
	return &bedrockruntime.ConverseStreamInput{ModelId: aws.String(p.modelID), Messages: p.messages, System: p.system,
		InferenceConfig: p.inference, ToolConfig: p.tools, OutputConfig: p.output}
}

// translate turns a parsed chat-completions request into Converse
// parameters. What Converse cannot express is refused with a 400 naming the
// parameter; what it does not need (seed, user, parallel_tool_calls) is
// dropped.
func translate(model string, r *chatwire.Request) (*converseParams, error) {
	p := &converseParams{modelID: model}
	historyTools, err := p.translateMessages(r.Messages)
	if err != nil {
		return nil, err
	}
	if len(p.messages) == 0 {
		return nil, chatwire.Invalid("messages", "the conversation needs at least one user, assistant or tool message with content")
	}
	if p.inference, err = inferenceConfig(r); err != nil {
		return nil, err
	}
	if p.tools, err = toolConfig(r, historyTools); err != nil {
		return nil, err
	}
	if p.output, err = outputConfig(r.ResponseFormat); err != nil {
		return nil, err
	}
	return p, nil
}

// translateMessages fills p.system and p.messages. System and developer
// messages become system blocks wherever they stand; tool messages become
// toolResult blocks of a user turn; consecutive turns of one role are
// merged, since Converse requires user and assistant to alternate. It
// returns the names of the tools the history calls, in order of first use.
func (p *converseParams) translateMessages(msgs []chatwire.Message) ([]string, error) {
	var toolNames []string
	seen := map[string]bool{}
	for i, m := range msgs {
		var role types.ConversationRole
		var blocks []types.ContentBlock
		switch m.Role {
		case "system":
			for k, part := range m.Parts {
				if part.Image != nil {
					return nil, chatwire.Invalid(fmt.Sprintf("messages[%d].content[%d]", i, k), "Bedrock takes only text in system messages")
				}
				if part.Text != "" {
					p.system = append(p.system, &types.SystemContentBlockMemberText{Value: part.Text})
				}
			}
			continue
		case "user":
			role = types.ConversationRoleUser
			var err error
			if blocks, err = contentBlocks(m.Parts, i); err != nil {
				return nil, err
			}
		case "assistant":
			role = types.ConversationRoleAssistant
			var err error
			if blocks, err = contentBlocks(m.Parts, i); err != nil {
				return nil, err
			}
			for k, tc := range m.ToolCalls {
				param := fmt.Sprintf("messages[%d].tool_calls[%d]", i, k)
				if tc.ID == "" {
					return nil, chatwire.Invalid(param+".id", "Bedrock needs the id of every tool call in the conversation")
				}
				input, err := argumentsDocument(tc.Arguments)
				if err != nil {
					return nil, chatwire.Invalid(param+".function.arguments", "the arguments of tool call %q are not a JSON value: %v", tc.ID, err)
				}
				blocks = append(blocks, &types.ContentBlockMemberToolUse{Value: types.ToolUseBlock{
					ToolUseId: aws.String(tc.ID), Name: aws.String(tc.Name), Input: input}})
				if !seen[tc.Name] {
					seen[tc.Name] = true
					toolNames = append(toolNames, tc.Name)
				}
			}
		case "tool":
			role = types.ConversationRoleUser
			content, err := toolResultContent(m.Parts, i)
			if err != nil {
				return nil, err
			}
			blocks = []types.ContentBlock{&types.ContentBlockMemberToolResult{Value: types.ToolResultBlock{
				ToolUseId: aws.String(m.ToolCallID), Content: content}}}
		}
		if len(blocks) == 0 {
			// Converse refuses empty turns and blank text; a message
			// without content says nothing to the model.
			continue
		}
		if n := len(p.messages); n > 0 && p.messages[n-1].Role == role {
			p.messages[n-1].Content = append(p.messages[n-1].Content, blocks...)
			continue
		}
		p.messages = append(p.messages, types.Message{Role: role, Content: blocks})
	}
	return toolNames, nil
}

// contentBlocks translates text and image parts; empty text is dropped.
func contentBlocks(parts []chatwire.Part, i int) ([]types.ContentBlock, error) {
	var blocks []types.ContentBlock
	for k, part := range parts {
		if part.Image == nil {
			if part.Text != "" {
				blocks = append(blocks, &types.ContentBlockMemberText{Value: part.Text})
			}
			continue
		}
		img, err := imageBlock(part.Image, fmt.Sprintf("messages[%d].content[%d].image_url.url", i, k))
		if err != nil {
			return nil, err
		}
		blocks = append(blocks, &types.ContentBlockMemberImage{Value: img})
	}
	return blocks, nil
}

// emptyToolResult stands in for a tool's empty output: Converse refuses
// blank text blocks, and a conversation that holds one would fail on every
// later turn.
const emptyToolResult = "(empty)"

// toolResultContent translates a tool message's content.
func toolResultContent(parts []chatwire.Part, i int) ([]types.ToolResultContentBlock, error) {
	var content []types.ToolResultContentBlock
	for k, part := range parts {
		if part.Image == nil {
			if part.Text != "" {
				content = append(content, &types.ToolResultContentBlockMemberText{Value: part.Text})
			}
			continue
		}
		img, err := imageBlock(part.Image, fmt.Sprintf("messages[%d].content[%d].image_url.url", i, k))
		if err != nil {
			return nil, err
		}
		content = append(content, &types.ToolResultContentBlockMemberImage{Value: img})
	}
	if len(content) == 0 {
		content = append(content, &types.ToolResultContentBlockMemberText{Value: emptyToolResult})
	}
	return content, nil
}

// imageBlock translates inline image data. Converse takes image bytes or
// an S3 location, never an http(s) URL.
func imageBlock(img *chatwire.Image, param string) (types.ImageBlock, error) {
	if img.URL != "" {
		return types.ImageBlock{}, chatwire.Invalid(param,
			"Bedrock cannot fetch image URLs; send the image inline as a base64 data: URL (data:image/png;base64,...)")
	}
	var format types.ImageFormat
	switch strings.ToLower(img.MediaType) {
	case "image/png":
		format = types.ImageFormatPng
	case "image/jpeg", "image/jpg":
		format = types.ImageFormatJpeg
	case "image/gif":
		format = types.ImageFormatGif
	case "image/webp":
		format = types.ImageFormatWebp
	default:
		return types.ImageBlock{}, chatwire.Invalid(param, "Bedrock takes png, jpeg, gif or webp images, not %q", img.MediaType)
	}
	return types.ImageBlock{Format: format, Source: &types.ImageSourceMemberBytes{Value: img.Data}}, nil
}

func inferenceConfig(r *chatwire.Request) (*types.InferenceConfiguration, error) {
	var c types.InferenceConfiguration
	set := false
	if r.MaxTokens > 0 {
		if r.MaxTokens > math.MaxInt32 {
			return nil, chatwire.Invalid("max_tokens", "max_tokens is too large")
		}
		c.MaxTokens, set = aws.Int32(int32(r.MaxTokens)), true
	}
	if r.Temperature != nil {
		c.Temperature, set = aws.Float32(float32(*r.Temperature)), true
	}
	if r.TopP != nil {
		c.TopP, set = aws.Float32(float32(*r.TopP)), true
	}
	for _, s := range r.Stop {
		if s != "" { // Converse refuses empty stop sequences; OpenAI ignores them
			c.StopSequences, set = append(c.StopSequences, s), true
		}
	}
	if !set {
		return nil, nil
	}
	return &c, nil
}

// toolConfig translates tools and tool_choice. Converse has no
// tool_choice "none": without tool use in the history the tools are left
// out, which is what none means; with it, Converse insists on a toolConfig,
// so the tools are sent with the default (auto) choice. A history that uses
// tools the request no longer lists gets a permissive declaration of each,
// for the same reason.
func toolConfig(r *chatwire.Request, historyTools []string) (*types.ToolConfiguration, error) {
	if r.ToolChoice.Mode == "none" && len(historyTools) == 0 {
		return nil, nil
	}
	var c types.ToolConfiguration
	declared := map[string]bool{}
	for i, t := range r.Tools {
		schema, err := jsonDocument(t.Parameters)
		if err != nil {
			return nil, chatwire.Invalid(fmt.Sprintf("tools[%d].function.parameters", i), "the parameters schema is not valid JSON: %v", err)
		}
		spec := types.ToolSpecification{Name: aws.String(t.Name), InputSchema: &types.ToolInputSchemaMemberJson{Value: schema}}
		if t.Description != "" {
			spec.Description = aws.String(t.Description)
		}
		if t.Strict {
			spec.Strict = aws.Bool(true)
		}
		c.Tools = append(c.Tools, &types.ToolMemberToolSpec{Value: spec})
		declared[t.Name] = true
	}
	for _, name := range historyTools {
		if !declared[name] {
			c.Tools = append(c.Tools, &types.ToolMemberToolSpec{Value: types.ToolSpecification{Name: aws.String(name),
				InputSchema: &types.ToolInputSchemaMemberJson{Value: document.NewLazyDocument(map[string]any{"type": "object"})}}})
		}
	}
	if len(c.Tools) == 0 {
		if r.ToolChoice.Mode == "required" || r.ToolChoice.Mode == "function" {
			return nil, chatwire.Invalid("tool_choice", "tool_choice needs tools")
		}
		return nil, nil
	}
	switch r.ToolChoice.Mode {
	case "auto":
		c.ToolChoice = &types.ToolChoiceMemberAuto{}
	case "required":
		c.ToolChoice = &types.ToolChoiceMemberAny{}
	case "function":
		c.ToolChoice = &types.ToolChoiceMemberTool{Value: types.SpecificToolChoice{Name: aws.String(r.ToolChoice.Name)}}
	}
	return &c, nil
}

// outputConfig translates response_format json_schema to Converse's
// structured output. json_object has no schema, and Converse's structured
// output needs one, so it is refused rather than silently ignored.
func outputConfig(rf *chatwire.ResponseFormat) (*types.OutputConfig, error) {
	if rf == nil {
		return nil, nil
	}
	switch rf.Type {
	case "json_schema":
		schema := bytes.TrimSpace(rf.Schema)
		if len(schema) == 0 || !json.Valid(schema) {
			return nil, chatwire.Invalid("response_format.json_schema.schema", "a json_schema response format needs a valid JSON schema")
		}
		var compact bytes.Buffer
		_ = json.Compact(&compact, schema)
		def := types.JsonSchemaDefinition{Schema: aws.String(compact.String())}
		if rf.Name != "" {
			def.Name = aws.String(rf.Name)
		}
		return &types.OutputConfig{TextFormat: &types.OutputFormat{Type: types.OutputFormatTypeJsonSchema,
			Structure: &types.OutputFormatStructureMemberJsonSchema{Value: def}}}, nil
	default:
		return nil, chatwire.Invalid("response_format.type",
			"Bedrock supports response_format json_schema, not %q; describe the JSON you want with a schema", rf.Type)
	}
}

// argumentsDocument parses a tool call's arguments; empty arguments are an
// empty object.
func argumentsDocument(args string) (document.Interface, error) {
	if strings.TrimSpace(args) == "" {
		return document.NewLazyDocument(map[string]any{}), nil
	}
	return jsonDocument([]byte(args))
}

// jsonDocument parses JSON into a document the SDK serialises as the same
// JSON: numbers keep their literal text.
func jsonDocument(raw []byte) (document.Interface, error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if d.More() {
		return nil, fmt.Errorf("trailing data after the JSON value")
	}
	return document.NewLazyDocument(smithyNumbers(v)), nil
}

// smithyNumbers replaces json.Number, which the SDK's document encoder
// would write as a string, with smithy's document.Number.
func smithyNumbers(v any) any {
	switch t := v.(type) {
	case json.Number:
		return smithydocument.Number(t)
	case map[string]any:
		for k, e := range t {
			t[k] = smithyNumbers(e)
		}
	case []any:
		for i, e := range t {
			t[i] = smithyNumbers(e)
		}
	}
	return v
}
