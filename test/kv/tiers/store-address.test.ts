// `--kv-store` values: each accepted form parses to its hosts, ports, database and credentials; every
// refused one says what is wrong; passwords never appear in messages or descriptions.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeStoreAddress, parseStoreAddress, StoreAddressError } from '../../../src/kv/tiers/store-address.js';

test('a single server: host, port, database, TLS, credentials', () => {
  assert.deepEqual(parseStoreAddress('redis://cache.internal:6379'), { kind: 'redis', host: 'cache.internal', port: 6379, db: 0, tls: false });
  assert.deepEqual(parseStoreAddress('redis://10.0.0.5:7000/3'), { kind: 'redis', host: '10.0.0.5', port: 7000, db: 3, tls: false });
  assert.deepEqual(parseStoreAddress('rediss://[::1]:6380/0'), { kind: 'redis', host: '::1', port: 6380, db: 0, tls: true });
  assert.deepEqual(parseStoreAddress('REDIS://h:1'), { kind: 'redis', host: 'h', port: 1, db: 0, tls: false });
  assert.deepEqual(parseStoreAddress('redis://:s%40cret@h:6379'), { kind: 'redis', host: 'h', port: 6379, db: 0, tls: false, password: 's@cret' });
  assert.deepEqual(parseStoreAddress('redis://kv:p@ss:w@h:6379/1'), { kind: 'redis', host: 'h', port: 6379, db: 1, tls: false, username: 'kv', password: 'p@ss:w' });
});

test('a cluster: every seed node', () => {
  assert.deepEqual(parseStoreAddress('redis+cluster://a:7000,b:7001,[fe80::1]:7002'), {
    kind: 'redis-cluster',
    nodes: [
      { host: 'a', port: 7000 },
      { host: 'b', port: 7001 },
      { host: 'fe80::1', port: 7002 },
    ],
    tls: false,
  });
  assert.deepEqual(parseStoreAddress('rediss+cluster://u:p@a:7000'), { kind: 'redis-cluster', nodes: [{ host: 'a', port: 7000 }], tls: true, username: 'u', password: 'p' });
});

test('refusals name the problem', () => {
  const refuses = (text: string, why: RegExp) => assert.throws(() => parseStoreAddress(text), (e: unknown) => e instanceof StoreAddressError && why.test(e.message), text);
  refuses('memcached://h:11211', /unknown scheme "memcached:"; expected redis:\/\/HOST:PORT/);
  refuses('h:6379', /not an address/);
  refuses('', /not an address/);
  refuses('redis://h', /"h" has no port; add one, as h:6379/);
  refuses('redis://[::1]', /no port; add one, as \[::1\]:6379/);
  refuses('redis://h:', /"" is not a port/);
  refuses('redis://h:70000', /"70000" is not a port/);
  refuses('redis://h:0', /"0" is not a port/);
  refuses('redis://h:63x9', /"63x9" is not a port/);
  refuses('redis://h:6379/x', /database after "\/" must be a number/);
  refuses('redis://h:6379/-1', /database after "\/" must be a number/);
  refuses('redis://h:6379/', /database after "\/" must be a number/);
  refuses('redis://:6379', /a host is missing/);
  refuses('redis://', /a host is missing/);
  refuses('redis://a_b:6379', /"a_b" is not a host name/);
  refuses('redis://::1:6379', /IPv6 address in brackets/);
  refuses('redis://[::1:6379', /needs its "\]"/);
  refuses('redis://a:1,b:2', /one server per redis:\/\/ address; list a cluster's nodes with redis\+cluster:\/\//);
  refuses('redis+cluster://a:1/0', /only database 0/);
  refuses('redis+cluster://a:1,,b:2', /a host is missing/);
  refuses('redis+cluster://a:1,b', /"b" has no port/);
  refuses('redis://h:6379?db=1', /options after "\?"/);
  refuses('redis://user@h:6379', /USER:PASSWORD/);
  refuses('redis://:%zz@h:6379', /malformed %-escape/);
});

test('passwords stay out of errors and descriptions', () => {
  assert.throws(() => parseStoreAddress('redis://u:hunter2@h'), (e: unknown) => e instanceof Error && !e.message.includes('hunter2') && e.message.includes('u:***@'));
  assert.throws(() => parseStoreAddress('redis://:a:b@c@h'), (e: unknown) => e instanceof Error && !/a:b|b@c/.test(e.message));
  assert.equal(describeStoreAddress(parseStoreAddress('rediss://u:hunter2@h:6379/2')), 'rediss://h:6379/2');
  assert.equal(describeStoreAddress(parseStoreAddress('redis+cluster://:pw@a:1,[::1]:2')), 'redis+cluster://a:1,[::1]:2');
});
