// oauth_client.mjs is an MCP client of the TypeScript SDK
// (@modelcontextprotocol/sdk) that authorizes itself, the way the MCP
// authorization specification has clients do it: it connects without a
// token, reads the 401's WWW-Authenticate (resource_metadata, scope), lets
// the SDK discover the protected resource metadata (RFC 9728) and the
// authorization server's metadata (RFC 8414 / OpenID discovery), and runs
// the authorization code flow with PKCE and a resource indicator (RFC 8707)
// as a pre-registered public client. Its OAuthClientProvider plays the
// browser: it follows the authorization URL with fetch, through the
// provider's login page (which approves the test user at once), up to the
// redirect to the client's redirect URI, and takes the code from there.
//
//   node clients/oauth_client.mjs PLAN      (run from test/e2e)
//
// PLAN is a JSON object:
//
//   {
//     "url": "http://127.0.0.1:PORT/mcp",      // the gateway's MCP endpoint
//     "clientId": "mcp-cli",                   // pre-registered, public
//     "redirectUri": "http://127.0.0.1:9/cb",  // never listened on
//     "tool": {"name": "...", "arguments": {...}}, // called once connected
//     "initialToken": "..."                    // optional: a token the client
//                                              // already holds (step-up)
//   }
//
// It prints JSON lines, never a token:
//
//   {"event":"challenge","status":401,"resourceMetadata":...,"scope":...}
//   {"event":"discovered","authorizationServer":...,"resource":...,"scopesSupported":[...]}
//   {"event":"authorize","scope":...,"resource":...,"codeChallengeMethod":...,"hops":N}
//   {"event":"tokens","scope":...,"tokenType":...}
//   {"event":"connected","server":...,"tools":[names]}
//   {"event":"result","result":...}
//   {"event":"fatal","message":...}                     exit 2

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { randomBytes } from 'node:crypto';

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

const plan = JSON.parse(process.argv[2]);

// The provider a real client would keep in a keychain, here in memory.
class HeadlessProvider {
  constructor(plan) {
    this.plan = plan;
    this._client = { client_id: plan.clientId };
    // A token from an earlier sign-in, perhaps with too little scope: the
    // gateway's 403 insufficient_scope then makes the SDK ask for more.
    this._tokens = plan.initialToken ? { access_token: plan.initialToken, token_type: 'Bearer' } : undefined;
    this._verifier = undefined;
    this._discovery = undefined;
    this.code = undefined;
  }
  get redirectUrl() {
    return this.plan.redirectUri;
  }
  get clientMetadata() {
    return {
      client_name: 'atrax e2e oauth client',
      redirect_uris: [this.plan.redirectUri],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }
  state() {
    this._state = randomBytes(16).toString('hex');
    return this._state;
  }
  clientInformation() {
    return this._client;
  }
  saveClientInformation(info) {
    this._client = info;
  }
  tokens() {
    return this._tokens;
  }
  saveTokens(tokens) {
    this._tokens = tokens;
    emit({ event: 'tokens', scope: tokens.scope, tokenType: tokens.token_type });
  }
  saveCodeVerifier(v) {
    this._verifier = v;
  }
  codeVerifier() {
    return this._verifier;
  }
  saveDiscoveryState(state) {
    this._discovery = state;
    emit({
      event: 'discovered',
      authorizationServer: state.authorizationServerUrl,
      resource: state.resourceMetadata?.resource,
      scopesSupported: state.resourceMetadata?.scopes_supported,
    });
  }
  discoveryState() {
    return this._discovery;
  }
  // The browser's part: follow the redirects, the login included, until
  // the authorization server sends the user agent back to redirectUri.
  async redirectToAuthorization(url) {
    const asked = new URL(url);
    let next = url.toString();
    let hops = 0;
    for (; hops < 10; hops++) {
      const res = await fetch(next, { redirect: 'manual' });
      await res.body?.cancel();
      const location = res.headers.get('location');
      if (res.status < 300 || res.status >= 400 || !location) {
        throw new Error(`the authorization server answered ${res.status} at ${new URL(next).pathname}`);
      }
      next = new URL(location, next).toString();
      if (next.startsWith(this.plan.redirectUri)) {
        break;
      }
    }
    const back = new URL(next);
    if (!next.startsWith(this.plan.redirectUri)) {
      throw new Error('never redirected back to the client');
    }
    if (back.searchParams.get('error')) {
      throw new Error(`authorization refused: ${back.searchParams.get('error')} ${back.searchParams.get('error_description') ?? ''}`);
    }
    if (back.searchParams.get('state') !== this._state) {
      throw new Error('the state came back changed');
    }
    this.code = back.searchParams.get('code');
    emit({
      event: 'authorize',
      scope: asked.searchParams.get('scope'),
      resource: asked.searchParams.get('resource'),
      codeChallengeMethod: asked.searchParams.get('code_challenge_method'),
      hops: hops + 1,
    });
  }
}

// A fetch that reports the gateway's challenges before the SDK acts on
// them.
const url = new URL(plan.url);
async function observingFetch(input, init) {
  const res = await fetch(input, init);
  if ((res.status === 401 || res.status === 403) && new URL(input.toString()).origin === url.origin) {
    const h = res.headers.get('www-authenticate') ?? '';
    const param = (name) => h.match(new RegExp(`${name}="([^"]*)"`))?.[1];
    emit({ event: 'challenge', status: res.status, resourceMetadata: param('resource_metadata'), scope: param('scope'), error: param('error') });
  }
  return res;
}

async function connect(provider) {
  const client = new Client({ name: 'atrax-e2e-oauth', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(url, { authProvider: provider, fetch: observingFetch });
  try {
    await client.connect(transport);
    return client;
  } catch (err) {
    if (!(err instanceof UnauthorizedError) || !provider.code) {
      throw err;
    }
  }
  // Back from the authorization server: exchange the code, connect again.
  await transport.finishAuth(provider.code);
  const again = new Client({ name: 'atrax-e2e-oauth', version: '1.0.0' });
  await again.connect(new StreamableHTTPClientTransport(url, { authProvider: provider, fetch: observingFetch }));
  return again;
}

const timer = setTimeout(() => {
  emit({ event: 'fatal', message: 'timed out' });
  process.exit(2);
}, 60_000);

try {
  const provider = new HeadlessProvider(plan);
  const client = await connect(provider);
  const { tools } = await client.listTools();
  emit({ event: 'connected', server: client.getServerVersion()?.name, tools: tools.map((t) => t.name) });
  if (plan.tool) {
    const result = await client.callTool({ name: plan.tool.name, arguments: plan.tool.arguments ?? {} });
    emit({ event: 'result', result });
  }
  await client.close();
  clearTimeout(timer);
} catch (err) {
  emit({ event: 'fatal', message: String(err?.message ?? err) });
  clearTimeout(timer);
  process.exit(2);
}
