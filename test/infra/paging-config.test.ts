// Paging configuration (`dms:monitoring`): the people paged are secrets in the committed stack
// files, never clear text; the origination identity, level delays, webhook and the Incident Manager
// opt-in are validated with messages that name the key and never echo a secret.
import { load } from 'js-yaml';
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, parseConfig } from '../../infra/config.js';
import { loadStackFile, REPO_ROOT } from '../../infra/plan/stack-file.js';
import { section, STACKS } from './fixture.js';

const PEOPLE = ['primaryOnCall', 'backupOnCall'] as const;
const PERSONAL = ['name', 'email', 'phone'] as const;

const fileConfig = (stack: string) => structuredClone(loadStackFile(stack).config);

function rejection(stack: string, change: (monitoring: Record<string, unknown>) => void): ConfigError {
  const config = fileConfig(stack);
  change(section(config, 'monitoring'));
  try {
    parseConfig(config, stack);
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error;
  }
  assert.fail('expected a ConfigError');
}

describe('paging config: the people paged are never in clear in a stack file', () => {
  for (const stack of STACKS) {
    it(`Pulumi.${stack}.yaml holds each engineer's name, e-mail and phone only as secure: entries`, () => {
      const file = load(readFileSync(join(REPO_ROOT, `Pulumi.${stack}.yaml`), 'utf8')) as { config: Record<string, Record<string, Record<string, unknown>>> };
      const monitoring = file.config['dms:monitoring']!;
      for (const person of PEOPLE) {
        for (const field of PERSONAL) {
          const value = monitoring[person]?.[field] as { secure?: unknown } | undefined;
          assert.equal(typeof value?.secure, 'string', `dms:monitoring.${person}.${field} is not a secure: entry`);
        }
      }
    });

    it(`the offline plan of ${stack} stands in for them and says so`, () => {
      const { standIns } = loadStackFile(stack);
      assert.deepEqual(
        standIns.filter((path) => path.startsWith('dms:monitoring.')).sort(),
        PEOPLE.flatMap((person) => PERSONAL.map((field) => `dms:monitoring.${person}.${field}`)).sort(),
      );
    });
  }
});

describe('paging config: defaults and validation', () => {
  it('level delays default to 5/10/15 minutes and the stack file may change them', () => {
    const config = fileConfig('staging');
    delete section(config, 'monitoring')['levelDelayMinutes'];
    assert.deepEqual(parseConfig(config, 'staging').monitoring.levelDelays, { email: 5, sms: 10, voice: 15 });
    section(config, 'monitoring')['levelDelayMinutes'] = { email: 3, sms: 8 };
    assert.deepEqual(parseConfig(config, 'staging').monitoring.levelDelays, { email: 3, sms: 8, voice: 15 });
  });

  it('refuses delays that do not climb (SMS before the e-mail)', () => {
    const error = rejection('staging', (monitoring) => (monitoring['levelDelayMinutes'] = { email: 10, sms: 5, voice: 15 }));
    assert.equal(error.key, 'dms:monitoring.levelDelayMinutes.sms');
  });

  it('refuses an unknown level', () => {
    assert.equal(rejection('staging', (monitoring) => (monitoring['levelDelayMinutes'] = { pager: 3 })).key, 'dms:monitoring.levelDelayMinutes.pager');
  });

  it('refuses an origination identity that is neither a phone number or pool id nor its ARN', () => {
    const error = rejection('staging', (monitoring) => (monitoring['originationIdentity'] = '+15550100003'));
    assert.equal(error.key, 'dms:monitoring.originationIdentity');
  });

  it('accepts a phone number ARN as origination identity', () => {
    const config = fileConfig('staging');
    section(config, 'monitoring')['originationIdentity'] = 'arn:aws:sms-voice:us-east-2:123456789012:phone-number/phone-0123456789abcdef0123456789abcdef';
    assert.doesNotThrow(() => parseConfig(config, 'staging'));
  });

  it('refuses a webhook over plain HTTP without repeating the URL (it is a secret)', () => {
    const error = rejection('staging', (monitoring) => (monitoring['webhook'] = { url: 'http://paging.example.com/hook-secret', routingKey: 'abcdefgh12345678' }));
    assert.equal(error.key, 'dms:monitoring.webhook.url');
    assert.doesNotMatch(error.message, /hook-secret/);
  });

  it('refuses a malformed e-mail or name without repeating it (personal data)', () => {
    const email = rejection('staging', (monitoring) => ((monitoring['primaryOnCall'] as Record<string, unknown>)['email'] = 'someone-at-clinic'));
    assert.equal(email.key, 'dms:monitoring.primaryOnCall.email');
    assert.doesNotMatch(email.message, /someone/);
  });

  it('Incident Manager is off unless the stack says incidentManager: true', () => {
    const config = fileConfig('production');
    assert.equal(parseConfig(config, 'production').monitoring.incidentManager, false);
    section(config, 'monitoring')['incidentManager'] = true;
    assert.equal(parseConfig(config, 'production').monitoring.incidentManager, true);
    assert.equal(rejection('production', (monitoring) => (monitoring['incidentManager'] = 'yes')).key, 'dms:monitoring.incidentManager');
  });
});
