package protocol

import "encoding/json"

// V20260728 is the stateless revision: no handshake, no session; every
// request carries its revision and the client's capabilities in _meta.
const V20260728 = "2026-07-28"

// Stateless reports whether revision v is a stateless one (2026-07-28 and
// later).
func Stateless(v string) bool { return v >= V20260728 }

// SupportedStateless lists the stateless revisions the edge speaks.
var supportedStateless = []string{V20260728}

// SupportedVersions returns every revision the edge speaks, newest first:
// what server/discover and UnsupportedProtocolVersion errors list.
func SupportedVersions() []string {
	return append(append([]string(nil), supportedStateless...), supported...)
}

// SupportedStateless reports whether v is a stateless revision the edge
// speaks.
func SupportedStateless(v string) bool {
	for _, s := range supportedStateless {
		if s == v {
			return true
		}
	}
	return false
}

// Keys of the per-request _meta of the stateless revision.
const (
	MetaProtocolVersion    = "io.modelcontextprotocol/protocolVersion"
	MetaClientCapabilities = "io.modelcontextprotocol/clientCapabilities"
	MetaClientInfo         = "io.modelcontextprotocol/clientInfo"
	MetaServerInfo         = "io.modelcontextprotocol/serverInfo"
	MetaLogLevel           = "io.modelcontextprotocol/logLevel"
	MetaSubscriptionID     = "io.modelcontextprotocol/subscriptionId"
)

// Methods and notifications of the stateless revision.
const (
	MethodServerDiscover        = "server/discover"
	MethodSubscriptionsListen   = "subscriptions/listen"
	NotificationSubscriptionAck = "notifications/subscriptions/acknowledged"
)

// Error codes of the stateless revision.
const (
	// CodeHeaderMismatch: an HTTP header disagrees with the body.
	CodeHeaderMismatch = -32020
	// CodeMissingRequiredClientCapability: the request needs a capability
	// the client did not declare.
	CodeMissingRequiredClientCapability = -32021
	// CodeUnsupportedProtocolVersion: the requested revision is not spoken.
	CodeUnsupportedProtocolVersion = -32022
)

// Result types.
const (
	ResultComplete      = "complete"
	ResultInputRequired = "input_required"
)

// HTTP headers of the stateless revision.
const (
	HeaderProtocolVersion = "MCP-Protocol-Version"
	HeaderMethod          = "Mcp-Method"
	HeaderName            = "Mcp-Name"
	HeaderParamPrefix     = "Mcp-Param-"
)

// RemovedMethods are the session-era methods the stateless revision
// removed; a stateless request for one is an unknown method.
var removedMethods = map[string]bool{
	MethodInitialize: true, MethodPing: true, MethodLoggingSetLevel: true,
	MethodResourcesSubscribe: true, MethodResourcesUnsubscribe: true,
}

// Removed reports whether method was removed in the stateless revision.
func Removed(method string) bool { return removedMethods[method] }

// InputRequestMethods are the methods an input_required result may ask
// the client to perform.
func InputRequestMethod(method string) bool {
	return method == MethodSamplingCreateMessage || method == MethodElicitationCreate || method == MethodRootsList
}

// MayRequireInput reports whether a request of method may be answered with
// an input_required result.
func MayRequireInput(method string) bool {
	switch method {
	case MethodToolsCall, MethodPromptsGet, MethodResourcesRead, "tasks/result":
		return true
	}
	return false
}

// NameOf returns the name an HTTP Mcp-Name header mirrors for a request:
// the tool or prompt name, or the resource URI; ok is false for methods
// without one.
func NameOf(method string, params json.RawMessage) (name string, ok bool) {
	var p struct {
		Name string `json:"name"`
		URI  string `json:"uri"`
	}
	switch method {
	case MethodToolsCall, MethodPromptsGet:
		if json.Unmarshal(params, &p) != nil {
			return "", true
		}
		return p.Name, true
	case MethodResourcesRead:
		if json.Unmarshal(params, &p) != nil {
			return "", true
		}
		return p.URI, true
	}
	return "", false
}

// Capability names the client capability a server-to-client method needs,
// as a key of ClientCapabilities.
func Capability(method string) string {
	switch method {
	case MethodSamplingCreateMessage:
		return "sampling"
	case MethodElicitationCreate:
		return "elicitation"
	case MethodRootsList:
		return "roots"
	}
	return ""
}
