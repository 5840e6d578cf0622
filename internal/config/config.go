// Package config turns an Atrax config file into typed values.
//
// The file is the seed's JSON (port, host, auth, mcpServers) written as JWCC:
// comments and trailing commas are allowed. ${VAR} and ${VAR:-default} work in
// every string. Every error names the key path it is about
// ("mcpServers.github.command: required"), and nothing falls back silently to
// a default: an unknown key, a bad type or an unset variable is an error.
//
// Nothing else in Atrax parses config; the control plane and the edge take
// the values from here.
package config

import "time"

// Defaults for keys a file leaves out. Each is documented in
// docs/configuration.md.
const (
	DefaultPort                = 4000
	DefaultHost                = "127.0.0.1"
	DefaultControlPlaneAddress = "127.0.0.1:4001"
	DefaultTokenTTL            = time.Hour
	DefaultMaxTokenTTL         = 24 * time.Hour
	DefaultKeyRotation         = 30 * 24 * time.Hour
	// MinKeyRotation is the shortest keyRotation: the control plane
	// checks whether a rotation is due once an hour.
	MinKeyRotation     = time.Hour
	DefaultIssuer      = "atrax"
	DefaultAudience    = "atrax"
	DefaultSeparator   = "__"
	DefaultCallTimeout = 5 * time.Minute
)

// Auth types.
const (
	AuthNone  = "none"
	AuthToken = "token"
	AuthJWT   = "jwt"
	AuthOAuth = "oauth"
)

// Transport types of an upstream server.
const (
	TransportStdio = "stdio"
	TransportSSE   = "sse"
	TransportHTTP  = "http"
)

// Config is a whole config file, loaded and validated.
type Config struct {
	// Path is the file the config was read from.
	Path string
	// Port and Host are the edge's public listener (the seed's one port).
	Port int
	Host string
	Auth Auth
	// ControlPlane says where the control plane listens and how edges reach it.
	ControlPlane ControlPlane
	// DataDir holds the embedded store; empty means "atrax-data" beside the
	// config file.
	DataDir string
	// Store, when it names etcd, keeps the control plane's state there
	// instead of in DataDir (the two are exclusive).
	Store       Store
	Namespacing Namespacing
	// HTTP says how the edge's MCP endpoints treat clients.
	HTTP HTTP
	// Audit says what the audit log records of tool calls.
	Audit Audit
	// Limits keep one client from starving the others on an edge.
	Limits Limits
	// TLS, when set, makes the edge's public listener serve HTTPS only.
	TLS *TLS
	// UI says whether the edge serves the web console under /ui/.
	UI UI
	// Servers are the mcpServers entries in file order (the order conflict
	// strategies use). Their strings are kept as written, ${VAR} unexpanded:
	// the edge expands them from its own environment when it starts a server.
	Servers []Server
}

// Auth is the "auth" object.
type Auth struct {
	// Type is AuthNone, AuthToken, AuthJWT or AuthOAuth.
	Type string
	// Tokens are the static tokens: options.token (named "default") and the
	// entries of options.tokens. Secrets are expanded.
	Tokens []StaticToken
	// Clients may exchange an id and secret for a JWT at /auth.
	Clients []Client
	// TTL is the default lifetime of an issued token (options.ttl).
	TTL time.Duration
	// MaxTTL caps a lifetime a caller asks for (options.maxTtl).
	MaxTTL time.Duration
	// KeyRotation is how old the current signing key of issued tokens
	// gets before the control plane makes a new one (options.keyRotation);
	// 0 when "off". Retired keys verify until their tokens have expired.
	KeyRotation time.Duration
	// Issuer and Audience are the iss and aud of issued tokens. With
	// AuthOAuth, options.issuer and options.audience name the
	// authorization server and this gateway instead (see OAuth), and
	// issued tokens keep DefaultIssuer and DefaultAudience.
	Issuer   string
	Audience string
	// OAuth is set when Type is AuthOAuth: Atrax is then an OAuth 2.1
	// resource server in front of an existing authorization server.
	OAuth *OAuth
}

// Grant is what a credential allows. Scopes holds "admin" and "edge"; Servers
// and Tools are allow-lists of names with "*" patterns, matched against the
// names clients see. A nil Servers or Tools means all.
type Grant struct {
	Scopes  []string
	Servers []string
	Tools   []string
}

// StaticToken is a fixed bearer token from the config.
type StaticToken struct {
	// Name identifies the token in logs and audit entries (never the secret).
	Name  string
	Token string
	Grant
}

// Client is an OAuth 2 client-credentials client.
type Client struct {
	ID     string
	Secret string
	Grant
}

// ControlPlane is the "controlPlane" object.
type ControlPlane struct {
	// Address is where the control plane serves gRPC and where edges dial it.
	Address string
	// Addresses, when set, are where edges dial the control plane instead
	// of Address: the replicas of a fleet, which an edge fails over
	// between.
	Addresses []string
	// Token is the credential an edge presents; in token mode it defaults to
	// the first static token.
	Token string
	// AllowCommands says whether stdio servers may be created or changed
	// through the API: all commands, a list of allowed commands, or none.
	AllowCommands AllowCommands
	// MetricsAddress is host:port of the control plane's HTTP listener for
	// /metrics; empty means none.
	MetricsAddress string
	// TLS, when set, makes the control plane serve gRPC over TLS (and, with
	// ClientCA, require client certificates).
	TLS *TLS
	// CA is a PEM file of the CA certificates an edge trusts when it dials
	// the control plane over TLS; empty means the system's roots.
	CA string
	// ClientCert and ClientKey are the certificate and key an edge
	// presents to the control plane (mutual TLS); both or neither.
	ClientCert string
	ClientKey  string
}

// Audit is the "audit" object.
type Audit struct {
	// ToolArguments records the arguments of every tool call in its audit
	// event. Off by default: arguments may carry personal data or secrets.
	ToolArguments bool
}

// AllowCommands is controlPlane.allowCommands: true, false, or a list.
type AllowCommands struct {
	All      bool
	Commands []string
}

// Allowed reports whether command may be run by a server created through the
// API.
func (a AllowCommands) Allowed(command string) bool {
	if a.All {
		return true
	}
	for _, c := range a.Commands {
		if c == command {
			return true
		}
	}
	return false
}

// Namespacing is the top-level "namespacing" object.
type Namespacing struct {
	Mode      string // "always" (default), "conditional" or "never"
	Separator string // DefaultSeparator when absent
	Conflict  string // "first-wins" (default), "last-wins", "prefer-server", "rename", "reject"
	Prefer    []string
}

// Server is one mcpServers entry. Strings are as written (${VAR} kept).
type Server struct {
	Name          string
	TransportType string // as written; empty means inferred (see Transport)
	Command       string
	Args          []string
	Env           map[string]string
	Cwd           string
	URL           string
	Headers       map[string]string
	Description   string
	Tags          []string
	Disabled      bool
	Tools         ToolFilter
	Prefix        string
	Timeout       string // a duration string; empty means DefaultCallTimeout
	Isolation     string // "shared" (default) or "session"
	PinTools      bool
	// MaxSessions caps a session-isolated server's upstream sessions on
	// one edge; 0 means DefaultMaxSessions.
	MaxSessions int
}

// ToolFilter is a server's "tools" object.
type ToolFilter struct {
	Allow []string
	Deny  []string
}
