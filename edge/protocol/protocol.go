// Package protocol names the parts of MCP the edge routes by: revisions,
// methods, and the few fields of initialize it reads. It holds constants
// and small decoders only, no behaviour.
package protocol

import (
	"encoding/json"
	"slices"
)

// Revisions of MCP, oldest first.
const (
	V20241105 = "2024-11-05" // HTTP+SSE
	V20250326 = "2025-03-26" // streamable HTTP
	V20250618 = "2025-06-18"
	V20251125 = "2025-11-25"
)

// Latest is the newest session-based revision the edge speaks.
const Latest = V20251125

// Supported lists the revisions the edge accepts from clients, newest first.
var supported = []string{V20251125, V20250618, V20250326, V20241105}

// Supported reports whether v is a revision the edge speaks.
func Supported(v string) bool { return slices.Contains(supported, v) }

// Negotiate returns the revision to answer a client that asked for v: v
// itself when supported, otherwise the latest (the client then decides
// whether it can go on, as the lifecycle section of the spec says).
func Negotiate(v string) string {
	if Supported(v) {
		return v
	}
	return Latest
}

// Methods.
const (
	MethodInitialize             = "initialize"
	MethodPing                   = "ping"
	MethodToolsList              = "tools/list"
	MethodToolsCall              = "tools/call"
	MethodPromptsList            = "prompts/list"
	MethodPromptsGet             = "prompts/get"
	MethodResourcesList          = "resources/list"
	MethodResourceTemplatesList  = "resources/templates/list"
	MethodResourcesRead          = "resources/read"
	MethodResourcesSubscribe     = "resources/subscribe"
	MethodResourcesUnsubscribe   = "resources/unsubscribe"
	MethodCompletionComplete     = "completion/complete"
	MethodLoggingSetLevel        = "logging/setLevel"
	MethodSamplingCreateMessage  = "sampling/createMessage"
	MethodElicitationCreate      = "elicitation/create"
	MethodRootsList              = "roots/list"
	NotificationInitialized      = "notifications/initialized"
	NotificationCancelled        = "notifications/cancelled"
	NotificationProgress         = "notifications/progress"
	NotificationMessage          = "notifications/message"
	NotificationResourceUpdated  = "notifications/resources/updated"
	NotificationToolsChanged     = "notifications/tools/list_changed"
	NotificationPromptsChanged   = "notifications/prompts/list_changed"
	NotificationResourcesChanged = "notifications/resources/list_changed"
	NotificationRootsChanged     = "notifications/roots/list_changed"
)

// ClientCapabilities are the capabilities a client declared that decide
// what the edge may ask of it.
type ClientCapabilities struct {
	Roots       *json.RawMessage `json:"roots,omitempty"`
	Sampling    *json.RawMessage `json:"sampling,omitempty"`
	Elicitation *json.RawMessage `json:"elicitation,omitempty"`
}

// Allows reports whether the client declared the capability that a
// server-to-client request of method needs.
func (c ClientCapabilities) Allows(method string) bool {
	switch method {
	case MethodSamplingCreateMessage:
		return c.Sampling != nil
	case MethodElicitationCreate:
		return c.Elicitation != nil
	case MethodRootsList:
		return c.Roots != nil
	case MethodPing:
		return true
	}
	return false
}

// InitializeParams is the part of initialize's params the edge reads.
type InitializeParams struct {
	ProtocolVersion string             `json:"protocolVersion"`
	Capabilities    ClientCapabilities `json:"capabilities"`
	ClientInfo      json.RawMessage    `json:"clientInfo,omitempty"`
}

// ServerCapabilities is the part of an initialize result the edge reads
// from an upstream.
type ServerCapabilities struct {
	Tools       *ListCapability  `json:"tools,omitempty"`
	Prompts     *ListCapability  `json:"prompts,omitempty"`
	Resources   *ResourcesCap    `json:"resources,omitempty"`
	Logging     *json.RawMessage `json:"logging,omitempty"`
	Completions *json.RawMessage `json:"completions,omitempty"`
	// Extensions are the extensions a server offers (tasks, ...), passed
	// on as they are.
	Extensions map[string]json.RawMessage `json:"extensions,omitempty"`
}

// ListCapability is a capability with listChanged.
type ListCapability struct {
	ListChanged bool `json:"listChanged,omitempty"`
}

// ResourcesCap is the resources capability.
type ResourcesCap struct {
	Subscribe   bool `json:"subscribe,omitempty"`
	ListChanged bool `json:"listChanged,omitempty"`
}

// InitializeResult is the part of an initialize result the edge reads.
type InitializeResult struct {
	ProtocolVersion string             `json:"protocolVersion"`
	Capabilities    ServerCapabilities `json:"capabilities"`
	ServerInfo      json.RawMessage    `json:"serverInfo,omitempty"`
	Instructions    string             `json:"instructions,omitempty"`
}
