import assert from 'node:assert/strict';
import { createLogger } from '../../api/logger.js';
import { LogCapture } from '../support/api.js';

describe('log redaction', () => {
  function logged(fields: Record<string, unknown>): Record<string, unknown> {
    const capture = new LogCapture();
    createLogger({ level: 'info', env: 'test', stream: capture }).info('probe', fields);
    return capture.records('probe')[0]!;
  }

  it('masks credential-named fields at any depth', () => {
    const record = logged({ password: 'hunter2-hunter2', nested: { refreshToken: 'r', headers: { authorization: 'Bearer x', cookie: 'c' } }, url: 'https://bucket/key?X-Amz-Signature=abc' });
    const text = JSON.stringify(record);
    for (const secret of ['hunter2-hunter2', 'Bearer x', '"r"', 'abc']) assert.ok(!text.includes(secret), `${secret} leaked: ${text}`);
    assert.equal(record.password, '[redacted]');
  });

  it('scrubs JWTs, bearer values and SigV4 signatures out of free text', () => {
    const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlc2ln';
    const record = logged({ detail: `token ${jwt} and Bearer abc.def and https://s3/x?X-Amz-Credential=AKIA/x&X-Amz-Signature=deadbeef` });
    const text = JSON.stringify(record);
    assert.ok(!text.includes(jwt));
    assert.ok(!text.includes('abc.def'));
    assert.ok(!text.includes('deadbeef'));
    assert.ok(!text.includes('AKIA'));
  });

  describe('credentials other than bearer tokens', () => {
    const BASIC = 'Basic dXNlcjpodW50ZXIy';
    const CREDENTIALS: Record<string, string | string[]> = {
      authorization: BASIC,
      'Proxy-Authorization': 'Digest username="probe", response="6629fae49393a05397450978507c4ef1"',
      cookie: 'sid=cookie-value-1f2e3d; theme=dark',
      'set-cookie': ['sid=set-cookie-value-4c5b6a; HttpOnly; Secure'],
      'x-api-key': 'ak_live_9f8e7d6c5b4a',
      apiKey: 'api-key-value-0a1b2c',
      api_key: 'api-key-value-3d4e5f',
    };
    const secretsOf = (credentials: Record<string, string | string[]>) => Object.values(credentials).flat().flatMap((value) => value.split(/[\s;=,"]+/).filter((part) => part.length >= 8 && /\d/.test(part)));

    it('masks each credential-named field whole, at the top and nested in headers, whatever the scheme', () => {
      const record = logged({ ...CREDENTIALS, request: { headers: CREDENTIALS }, response: { headers: { 'Set-Cookie': CREDENTIALS['set-cookie'] } } });
      for (const name of Object.keys(CREDENTIALS)) {
        assert.equal(record[name], '[redacted]', `top-level ${name}`);
        assert.equal((record.request as { headers: Record<string, unknown> }).headers[name], '[redacted]', `request.headers.${name}`);
      }
      assert.equal((record.response as { headers: Record<string, unknown> }).headers['Set-Cookie'], '[redacted]');
      const text = JSON.stringify(record);
      for (const secret of secretsOf(CREDENTIALS)) assert.ok(!text.includes(secret), `${secret} leaked: ${text}`);
    });

    it('masks them however deep they sit, in arrays too', () => {
      let deep: Record<string, unknown> = { headers: CREDENTIALS };
      for (let level = 0; level < 12; level++) deep = { level, inner: deep, list: [deep] };
      const text = JSON.stringify(logged({ deep }));
      for (const secret of secretsOf(CREDENTIALS)) assert.ok(!text.includes(secret), `${secret} leaked at depth`);
    });

    it('scrubs them out of free text: header lines, Basic credentials and JSON dumps', () => {
      const record = logged({
        detail: `GET / HTTP/1.1\r\nAuthorization: ${BASIC}\r\nCookie: ${CREDENTIALS.cookie}\r\nX-Api-Key: ${CREDENTIALS['x-api-key']}\r\n`,
        upstream: `upstream said ${BASIC} was refused`,
        dump: JSON.stringify({ 'set-cookie': CREDENTIALS['set-cookie'], apiKey: CREDENTIALS.apiKey }),
      });
      const text = JSON.stringify(record);
      for (const secret of secretsOf(CREDENTIALS)) assert.ok(!text.includes(secret), `${secret} leaked: ${text}`);
      assert.match(String(record.upstream), /^upstream said Basic \[redacted\] was refused$/);
    });
  });

  it('keeps the contract fields of every line', () => {
    const record = logged({ userId: 'u1' });
    assert.equal(record.event, 'probe');
    assert.equal(record.service, 'dms-api');
    assert.equal(record.env, 'test');
    assert.equal(record.level, 'info');
    assert.ok(!Number.isNaN(Date.parse(String(record.timestamp))));
    assert.equal(record.userId, 'u1');
  });
});
