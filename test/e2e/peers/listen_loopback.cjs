'use strict';
// Preloaded with `node --require` by the Go package peers (embedded there and
// written to node_modules/.atrax-listen-loopback.cjs by Install): a TCP
// server that listens without naming a host (express's app.listen(PORT), as
// in @modelcontextprotocol/server-everything) binds 127.0.0.1 instead of
// every interface. A listen that names a host, a path or a handle is left
// alone.
const net = require('node:net');

const host = '127.0.0.1';
const listen = net.Server.prototype.listen;

function isPort(v) {
  return typeof v === 'number' || (typeof v === 'string' && /^[0-9]+$/.test(v));
}

net.Server.prototype.listen = function (...args) {
  const a0 = args[0];
  if (a0 === undefined || typeof a0 === 'function') {
    args.unshift(0, host);
  } else if (isPort(a0)) {
    if (typeof args[1] !== 'string') args.splice(1, 0, host);
  } else if (a0 !== null && typeof a0 === 'object' && !Array.isArray(a0)) {
    const named = a0.host !== undefined || a0.path !== undefined || a0.fd !== undefined || a0.handle !== undefined || a0._handle !== undefined;
    if (!named) args[0] = { ...a0, host };
  }
  return listen.apply(this, args);
};
