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
