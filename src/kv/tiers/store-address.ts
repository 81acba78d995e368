// The `--kv-store` flag's value: where the shared tier lives. Two forms:
//   redis://[USER:PASSWORD@]HOST:PORT[/DB]         one Redis server (rediss:// for TLS)
//   redis+cluster://[USER:PASSWORD@]HOST:PORT[,HOST:PORT...]   a Redis Cluster, any of its nodes as seeds
//                                                   (rediss+cluster:// for TLS)
// Parsed by hand rather than with URL: the cluster form lists several hosts, which URL does not allow.
// Every refusal says what was wrong and what would be accepted.
import { RedisTier, type RedisTierOptions } from './redis-tier.js';

export interface StoreNode {
  host: string;
  port: number;
}

interface Credentials {
  /** AUTH user (Redis 6 ACLs); absent for the default user. */
  username?: string;
  password?: string;
  /** Connect over TLS (rediss). */
  tls: boolean;
}

export type StoreAddress =
  | ({ kind: 'redis'; host: string; port: number; db: number } & Credentials)
  | ({ kind: 'redis-cluster'; nodes: StoreNode[] } & Credentials);

export class StoreAddressError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StoreAddressError';
  }
}

const FORMS = 'redis://HOST:PORT[/DB], rediss://HOST:PORT[/DB] or redis+cluster://HOST:PORT[,HOST:PORT...]';
const SCHEMES: Record<string, { cluster: boolean; tls: boolean }> = {
  redis: { cluster: false, tls: false },
  rediss: { cluster: false, tls: true },
  'redis+cluster': { cluster: true, tls: false },
  'rediss+cluster': { cluster: true, tls: true },
};
const HOSTNAME = /^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/;
const IPV6 = /^[0-9A-Fa-f:.]+$/;

/** Parses a `--kv-store` value; throws StoreAddressError saying what is wrong. */
export function parseStoreAddress(text: string): StoreAddress {
  const fail = (why: string): never => {
    throw new StoreAddressError(`--kv-store ${JSON.stringify(redactPassword(text))}: ${why}`);
  };
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/(.*)$/.exec(text.trim());
  if (!m) fail(`not an address; expected ${FORMS}`);
  const scheme = m![1]!.toLowerCase();
  const kind = SCHEMES[scheme];
  if (!kind) fail(`unknown scheme "${scheme}:"; expected ${FORMS}`);
  let rest = m![2]!;
  if (/[?#]/.test(rest)) fail('options after "?" or "#" are not supported');

  const credentials: Credentials = { tls: kind!.tls };
  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    const userinfo = rest.slice(0, at);
    rest = rest.slice(at + 1);
    const colon = userinfo.indexOf(':');
    if (colon < 0) fail('credentials go before "@" as USER:PASSWORD or :PASSWORD');
    try {
      const username = decodeURIComponent(userinfo.slice(0, colon));
      const password = decodeURIComponent(userinfo.slice(colon + 1));
      if (username !== '') credentials.username = username;
      if (password !== '') credentials.password = password;
    } catch {
      fail('the credentials hold a malformed %-escape');
    }
  }

  if (kind!.cluster) {
    if (rest.includes('/')) fail('a Redis Cluster has only database 0, so the cluster form takes no /DB');
    const nodes = rest.split(',').map((part) => parseNode(part, fail));
    return { kind: 'redis-cluster', nodes, ...credentials };
  }
  if (rest.includes(',')) fail(`one server per ${scheme}:// address; list a cluster's nodes with ${scheme}+cluster://`);
  const slash = rest.indexOf('/');
  const node = parseNode(slash < 0 ? rest : rest.slice(0, slash), fail);
  let db = 0;
  if (slash >= 0) {
    const dbText = rest.slice(slash + 1);
    if (!/^\d{1,9}$/.test(dbText)) fail(`the database after "/" must be a number such as 0, got "${dbText}"`);
    db = Number(dbText);
  }
  return { kind: 'redis', ...node, db, ...credentials };
}

function parseNode(text: string, fail: (why: string) => never): StoreNode {
  if (text === '') fail('a host is missing');
  let host: string;
  let portText: string | undefined;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0) fail(`"${text}": an IPv6 address in "[" needs its "]"`);
    host = text.slice(1, close);
    if (!IPV6.test(host)) fail(`"${host}" is not an IPv6 address`);
    const after = text.slice(close + 1);
    if (after !== '' && !after.startsWith(':')) fail(`"${text}": expected ":PORT" after "]"`);
    portText = after === '' ? undefined : after.slice(1);
  } else {
    const colon = text.lastIndexOf(':');
    if (colon < 0) {
      host = text;
    } else {
      host = text.slice(0, colon);
      portText = text.slice(colon + 1);
    }
    if (host === '') fail(`"${text}": a host is missing before ":"`);
    if (host.includes(':')) fail(`"${text}": write an IPv6 address in brackets, as [::1]:6379`);
    if (!HOSTNAME.test(host)) fail(`"${host}" is not a host name or address`);
  }
  if (portText === undefined) fail(`"${text}" has no port; add one, as ${host.includes(':') ? `[${host}]` : host}:6379 (Redis's usual port)`);
  if (!/^\d{1,5}$/.test(portText!) || Number(portText) < 1 || Number(portText) > 65535) fail(`"${portText}" is not a port (1-65535)`);
  return { host, port: Number(portText) };
}

/** The address for logs: scheme, hosts and database, never the password. */
export function describeStoreAddress(address: StoreAddress): string {
  const hostPort = (n: StoreNode) => `${n.host.includes(':') ? `[${n.host}]` : n.host}:${n.port}`;
  const s = address.tls ? 's' : '';
  if (address.kind === 'redis') return `redis${s}://${hostPort(address)}/${address.db}`;
  return `redis${s}+cluster://${address.nodes.map(hostPort).join(',')}`;
}

function redactPassword(text: string): string {
  return text.replace(/(:\/\/[^@/:]*:).*@/, '$1***@');
}

/** The Redis tier for a `--kv-store` value (text or already parsed). */
export function createRedisTier(address: string | StoreAddress, options: RedisTierOptions = {}): RedisTier {
  return new RedisTier(typeof address === 'string' ? parseStoreAddress(address) : address, options);
}
