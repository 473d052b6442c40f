// Load balancer: dual-stack ALB in the public subnets, HTTPS with a TLS 1.2+ policy when a
// certificate is configured, HTTP redirected, invalid headers dropped, access logs to the encrypted
// bucket, deletion protection in production, health check on /health, idle timeout below keep-alive.
import { strict as assert } from 'node:assert';
import { API_KEEP_ALIVE_TIMEOUT_S } from '../../infra/config.js';
import { TLS_POLICY } from '../../infra/loadbalancer.js';
import type { StackRun } from '../../infra/plan/run.js';
import { one, ofType, planned, plannedWith, section, STACKS } from './fixture.js';

for (const stack of STACKS) {
  describe(`load balancer: ${stack}`, () => {
    let run: StackRun;
    const alb = () => one(run, 'aws:lb/loadBalancer:LoadBalancer', `dms-${stack}-alb`);
    before(async () => {
      run = await planned(stack);
    });

    it('is an internet-facing dual-stack ALB in the public subnets behind its own security group', () => {
      assert.equal(alb().inputs['internal'], false);
      assert.equal(alb().inputs['ipAddressType'], 'dualstack');
      const publicSubnets = ofType(run, 'aws:ec2/subnet:Subnet').filter((subnet) => subnet.name.includes('-public-')).map((subnet) => subnet.id);
      assert.deepEqual(alb().inputs['subnets'], publicSubnets);
      assert.deepEqual(alb().inputs['securityGroups'], [one(run, 'aws:ec2/securityGroup:SecurityGroup', `dms-${stack}-alb`).id]);
      assert.equal(run.outputs['albArnSuffix'], alb().outputs['arnSuffix']);
      assert.equal(run.outputs['albDnsName'], alb().outputs['dnsName']);
    });

    it('drops invalid headers, appends the client address for TRUST_PROXY_HOPS=1, and idles out before the API', () => {
      assert.equal(alb().inputs['dropInvalidHeaderFields'], true);
      assert.equal(alb().inputs['xffHeaderProcessingMode'], 'append');
      assert.ok(Number(alb().inputs['idleTimeout']) < API_KEEP_ALIVE_TIMEOUT_S);
    });

    it('logs access to the access-log bucket, created only once the bucket policy lets ELB write', () => {
      const bucket = one(run, 'aws:s3/bucket:Bucket', `dms-${stack}-access-logs`);
      assert.deepEqual(alb().inputs['accessLogs'], { bucket: bucket.outputs['bucket'], prefix: 'alb', enabled: true });
      assert.ok(alb().dependencies.includes(one(run, 'aws:s3/bucketPolicy:BucketPolicy', `dms-${stack}-access-logs`).urn));
    });

    it(stack === 'production' ? 'refuses deletion' : 'can be deleted with the stack', () => {
      assert.equal(alb().inputs['enableDeletionProtection'], stack === 'production');
    });

    it('serves HTTPS with a TLS 1.2+ policy on a DNS-validated certificate and redirects HTTP', () => {
      const https = one(run, 'aws:lb/listener:Listener', `dms-${stack}-https`);
      assert.equal(https.inputs['protocol'], 'HTTPS');
      assert.equal(https.inputs['sslPolicy'], TLS_POLICY);
      const validation = ofType(run, 'aws:acm/certificateValidation:CertificateValidation');
      assert.equal(validation.length, 1);
      assert.equal(https.inputs['certificateArn'], validation[0]?.outputs['certificateArn']);
      const http = one(run, 'aws:lb/listener:Listener', `dms-${stack}-http`);
      assert.deepEqual(http.inputs['defaultActions'], [{ type: 'redirect', redirect: { protocol: 'HTTPS', port: '443', statusCode: 'HTTP_301' } }]);
      assert.match(String(run.outputs['apiUrl']), /^https:\/\//);
      assert.deepEqual(ofType(run, 'aws:route53/record:Record').map((record) => record.inputs['type']).sort(), ['A', 'AAAA', 'CNAME']);
    });

    it("alarms on the expiry of the listener's own certificate (DaysToExpiry by CertificateArn)", () => {
      const https = one(run, 'aws:lb/listener:Listener', `dms-${stack}-https`);
      const expiring = one(run, 'aws:cloudwatch/metricAlarm:MetricAlarm', `dms-${stack}-acm-certificate-expiring`);
      assert.equal(expiring.inputs['namespace'], 'AWS/CertificateManager');
      assert.deepEqual(expiring.inputs['dimensions'], { CertificateArn: https.inputs['certificateArn'] });
    });

    it('checks task health on /health', () => {
      const targetGroup = one(run, 'aws:lb/targetGroup:TargetGroup', `dms-${stack}-api`);
      assert.equal((targetGroup.inputs['healthCheck'] as Record<string, unknown>)['path'], '/health');
      assert.equal(targetGroup.inputs['targetType'], 'ip');
      assert.equal(targetGroup.inputs['port'], 3000);
    });
  });
}

describe('load balancer: certificate choices', () => {
  it('uses a configured certificate ARN as is, issuing none', async () => {
    const certificateArn = 'arn:aws:acm:us-east-2:123456789012:certificate/0b5c2f6e-3f0a-4a55-9a1e-7d2a3c4b5e6f';
    const run = await plannedWith('staging', (config) => {
      section(config, 'api')['certificateArn'] = certificateArn;
      delete section(config, 'api')['hostedZoneId'];
    });
    assert.equal(ofType(run, 'aws:acm/certificate:Certificate').length, 0);
    assert.equal(one(run, 'aws:lb/listener:Listener', 'dms-staging-https').inputs['certificateArn'], certificateArn);
  });

  it('without a domain (staging only) serves plain HTTP at the ALB name', async () => {
    const run = await plannedWith('staging', (config) => {
      delete section(config, 'api')['hostedZoneId'];
      delete section(config, 'api')['domainName'];
    });
    const listeners = ofType(run, 'aws:lb/listener:Listener');
    assert.deepEqual(listeners.map((listener) => listener.inputs['protocol']), ['HTTP']);
    assert.equal(run.outputs['apiUrl'], `http://${String(run.outputs['albDnsName'])}`);
  });
});
