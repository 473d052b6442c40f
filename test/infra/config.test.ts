// Stack configuration: read once, validated, typed; a bad value stops `pulumi up` before any
// resource, with a message naming the key (issue 5, "Config").
import { strict as assert } from 'node:assert';
import { ConfigError, parseConfig, type StackConfig } from '../../infra/config.js';
import { runPlan } from '../../infra/plan.js';
import { loadConfig } from '../../api/config.js';
import { loadStackFile, REPO_ROOT } from '../../infra/plan/stack-file.js';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { section, STACKS } from './fixture.js';

const fileConfig = (stack: string) => structuredClone(loadStackFile(stack).config);

/** Parses a stack file after `change`, expecting a ConfigError on `key`. */
function rejects(stack: string, key: string, change: (config: Record<string, unknown>) => void): ConfigError {
  const config = fileConfig(stack);
  change(config);
  let error: unknown;
  try {
    parseConfig(config, stack);
  } catch (caught) {
    error = caught;
  }
  assert.ok(error instanceof ConfigError, `expected a ConfigError for ${key}, got ${String(error)}`);
  assert.equal(error.key, key);
  assert.match(error.message, new RegExp(`^config ${key.replace(/[.[\]]/g, '\\$&')}: `));
  return error;
}

describe('config: both stack files are valid and typed', () => {
  for (const stack of STACKS) {
    it(`${stack} parses`, () => {
      const config: StackConfig = parseConfig(fileConfig(stack), stack);
      assert.equal(config.stack, stack);
      assert.equal(config.isProduction, stack === 'production');
      assert.equal(config.region, loadStackFile(stack).config['aws:region']);
    });
  }

  it('production is the larger copy: 3 AZs, NAT per AZ, Multi-AZ, 35 days of backups, HTTPS', () => {
    const production = parseConfig(fileConfig('production'), 'production');
    const staging = parseConfig(fileConfig('staging'), 'staging');
    assert.equal(production.network.azCount, 3);
    assert.equal(staging.network.azCount, 2);
    assert.equal(production.network.natGateways, 'per-az');
    assert.equal(staging.network.natGateways, 'single');
    assert.equal(production.database.multiAz, true);
    assert.equal(production.database.backupRetentionDays, 35);
    assert.equal(staging.database.backupRetentionDays, 7);
    assert.ok(production.api.hostedZoneId ?? production.api.certificateArn);
  });

  it('reads each stack file\'s heavy-user threshold, within the bounds the API accepts', () => {
    for (const stack of [...STACKS, 'small']) {
      const threshold = parseConfig(fileConfig(stack), stack).service.auditHeavyUserPatients;
      assert.equal(threshold, section(fileConfig(stack), 'service')['auditHeavyUserPatients'], stack);
      assert.equal(loadConfig({ AUDIT_HEAVY_USER_PATIENTS: String(threshold) }).heavyUserPatients, threshold, stack);
    }
  });

  it('reads the monitoring and budget sections the alarms and budget need', () => {
    const production = parseConfig(fileConfig('production'), 'production');
    assert.match(production.monitoring.runbookBaseUrl, /^https:\/\//);
    assert.match(production.monitoring.primaryOnCall.phone, /^\+\d+$/);
    assert.ok(production.monitoring.chatSlackChannelId);
    assert.ok(production.budget.monthlyUsd > 0);
    assert.ok(production.budget.notifyEmails.length > 0);
    const staging = parseConfig(fileConfig('staging'), 'staging');
    assert.equal(staging.monitoring.chatSlackTeamId, undefined, 'staging has no Slack: chat level is the SNS topic only');
  });
});

describe('config: a bad value names its key', () => {
  it('a missing section', () => rejects('staging', 'dms:database', (c) => delete c['dms:database']));
  it('an unknown dms: key (a typo)', () => rejects('staging', 'dms:databse', (c) => (c['dms:databse'] = {})));
  it('a malformed region', () => rejects('staging', 'aws:region', (c) => (c['aws:region'] = 'Ohio')));
  it('a VPC CIDR that is not a /16-/20', () => rejects('staging', 'dms:network.cidr', (c) => (section(c, 'network')['cidr'] = '10.0.0.0/8')));
  it('Fargate memory the CPU size does not allow', () => rejects('staging', 'dms:service.memory', (c) => (section(c, 'service')['memory'] = 8192)));
  it('maxTasks below minTasks', () => rejects('staging', 'dms:service.maxTasks', (c) => Object.assign(section(c, 'service'), { minTasks: 3, maxTasks: 2 })));
  it('several tasks without the shared rate-limit store', () =>
    rejects('staging', 'dms:cache.enabled', (c) => {
      section(c, 'cache')['enabled'] = false;
    }));
  it('an RDS class whose memory the alarms cannot know', () => rejects('staging', 'dms:database.instanceClass', (c) => (section(c, 'database')['instanceClass'] = 'db.x2g.16xlarge')));
  it('a failover count that is negative or not a whole number', () => {
    rejects('staging', 'dms:database.failovers', (c) => (section(c, 'database')['failovers'] = -1));
    rejects('staging', 'dms:database.failovers', (c) => (section(c, 'database')['failovers'] = 1.5));
  });
  it('a blocked IPv4 entry that is an IPv6 range', () => rejects('staging', 'dms:firewall.blockedIpv4[0]', (c) => (section(c, 'firewall')['blockedIpv4'] = ['2001:db8::/32'])));
  it('a /0 block', () => rejects('staging', 'dms:firewall.blockedIpv6[0]', (c) => (section(c, 'firewall')['blockedIpv6'] = ['::/0'])));
  it('a login limit looser than the global one', () => rejects('staging', 'dms:firewall.loginRateLimitPer5Min', (c) => (section(c, 'firewall')['loginRateLimitPer5Min'] = 5000)));
  it('only one of the two Slack ids', () => rejects('staging', 'dms:monitoring.chatSlackChannelId', (c) => (section(c, 'monitoring')['chatSlackTeamId'] = 'T04RFD7Q2LM')));
  it('an engine version pinned to a minor (RDS upgrades minors itself and refuses to go back)', () => {
    const error = rejects('production', 'dms:database.engineVersion', (c) => (section(c, 'database')['engineVersion'] = '17.6'));
    assert.match(error.message, /give the major version only \("17"\)/);
  });
  it('tracing on a stack with no route out (the collector could not pull its image or reach X-Ray)', () =>
    rejects('staging', 'dms:service.traceSampleRatio', (c) => {
      section(c, 'network')['natGateways'] = 'none';
      section(c, 'service')['traceSampleRatio'] = 0.1;
    }));
  it('a trace sample ratio above 1', () => rejects('staging', 'dms:service.traceSampleRatio', (c) => (section(c, 'service')['traceSampleRatio'] = 10)));
  it('no heavy-user threshold (every stack says how many patients an hour is bulk access for it)', () => rejects('staging', 'dms:service.auditHeavyUserPatients', (c) => delete section(c, 'service')['auditHeavyUserPatients']));
  it('a heavy-user threshold of 0 (the API refuses it at start-up)', () => rejects('staging', 'dms:service.auditHeavyUserPatients', (c) => (section(c, 'service')['auditHeavyUserPatients'] = 0)));
  it('a heavy-user threshold that is not a whole number', () => rejects('staging', 'dms:service.auditHeavyUserPatients', (c) => (section(c, 'service')['auditHeavyUserPatients'] = 12.5)));
  it('an SLO target of 100% (no error budget to burn)', () => rejects('staging', 'dms:slo.availability.target', (c) => ((c['dms:slo'] as { availability: { target: number } }).availability.target = 100)));
  it('a latency threshold beyond the request timeout', () =>
    rejects('staging', 'dms:slo.latency.reads.thresholdMs', (c) => ((c['dms:slo'] as { latency: { reads: { thresholdMs: number } } }).latency.reads.thresholdMs = 60_000)));
  it('a budget of zero', () => rejects('staging', 'dms:budget.monthlyUsd', (c) => (section(c, 'budget')['monthlyUsd'] = 0)));
  it('an audit hot period as long as the retention', () => rejects('staging', 'dms:storage.auditHotDays', (c) => (section(c, 'storage')['auditHotDays'] = 180)));
  it('an ALB idle timeout not below the API keep-alive', () => rejects('staging', 'dms:api.idleTimeoutSeconds', (c) => (section(c, 'api')['idleTimeoutSeconds'] = 65)));

  it('a malformed phone number, without repeating the number (it is a secret)', () => {
    const error = rejects('staging', 'dms:monitoring.primaryOnCall.phone', (c) => {
      (section(c, 'monitoring')['primaryOnCall'] as Record<string, unknown>)['phone'] = '614-555-0142';
    });
    assert.doesNotMatch(error.message, /555/);
  });
});

describe('config: production refuses what staging may do', () => {
  it('deletion protection off', () => rejects('production', 'dms:database.deletionProtection', (c) => (section(c, 'database')['deletionProtection'] = false)));
  it('a single-AZ database', () => rejects('production', 'dms:database.multiAz', (c) => (section(c, 'database')['multiAz'] = false)));
  it('fewer than 35 days of backups', () => rejects('production', 'dms:database.backupRetentionDays', (c) => (section(c, 'database')['backupRetentionDays'] = 7)));
  it('no certificate (PHI over plain HTTP)', () =>
    rejects('production', 'dms:api.certificateArn', (c) => {
      delete section(c, 'api')['hostedZoneId'];
    }));
  it('audit exports in GOVERNANCE mode', () => rejects('production', 'dms:storage.auditObjectLockMode', (c) => (section(c, 'storage')['auditObjectLockMode'] = 'GOVERNANCE')));
  it('a single API task', () => rejects('production', 'dms:service.minTasks', (c) => (section(c, 'service')['minTasks'] = 1)));

  it('staging accepts the same settings', () => {
    const config = fileConfig('staging');
    Object.assign(section(config, 'database'), { deletionProtection: false, multiAz: false, backupRetentionDays: 7 });
    assert.doesNotThrow(() => parseConfig(config, 'staging'));
  });
});

describe('config: the program stops on bad config before creating anything', () => {
  it('running the program with a bad section rejects with the ConfigError', async () => {
    const config = fileConfig('staging');
    section(config, 'network')['azCount'] = 1;
    await assert.rejects(runPlan('staging', config), (error: unknown) => error instanceof ConfigError && error.key === 'dms:network.azCount');
  });

  it('the offline plan replaces secure: values it cannot decrypt by stand-ins of the right shape and lists them', () => {
    // What `pulumi config set --secret --path 'dms:monitoring.webhook.url' ...` leaves in the file.
    const directory = mkdtempSync(join(tmpdir(), 'dms-stack-'));
    try {
      const text = readFileSync(join(REPO_ROOT, 'Pulumi.staging.yaml'), 'utf8');
      const encrypted = text.replace(/(\n    alarmEmail:)/, '\n    webhook:\n      url:\n        secure: v1:OfflineCiphertextAAAA==\n      routingKey:\n        secure: v1:OfflineCiphertextBBBB==$1');
      assert.notEqual(encrypted, text);
      writeFileSync(join(directory, 'Pulumi.staging.yaml'), encrypted);
      const stackFile = loadStackFile('staging', directory);
      assert.deepEqual(stackFile.standIns.filter((path) => path.includes('webhook')), ['dms:monitoring.webhook.url', 'dms:monitoring.webhook.routingKey']);
      assert.doesNotThrow(() => parseConfig(stackFile.config, 'staging'));
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });
});

describe('config: each stack owns its DNS zone', () => {
  it('no two stack files name the same hosted zone (a stack may only touch records of its own zone)', () => {
    const zones = STACKS.map((stack) => parseConfig(fileConfig(stack), stack).api.hostedZoneId).filter((zone) => zone !== undefined);
    assert.equal(new Set(zones).size, zones.length, `shared hosted zone id in ${zones.join(', ')}`);
  });
});
