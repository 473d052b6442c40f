/**
 * The public entry: a dual-stack ALB in the public subnets, HTTPS with a TLS 1.2+ policy when a
 * certificate is configured (HTTP then only redirects), invalid headers dropped, access logs to the
 * encrypted access-log bucket, and the target group of the API tasks.
 */
import * as aws from '@pulumi/aws';
import * as pulumi from '@pulumi/pulumi';
import { ACCESS_LOG_PREFIX } from './storage-layout.js';

export interface LoadBalancerArgs {
  /** `dms-<stack>`. */
  prefix: string;
  vpcId: pulumi.Input<string>;
  /** Public subnets, one per AZ. */
  subnetIds: pulumi.Input<string>[];
  /** HTTP(S) in from anywhere, out to the tasks only. */
  securityGroupId: pulumi.Input<string>;
  /** Bucket receiving access logs under `alb/` (resolved once its policy lets ELB write). */
  accessLogBucket: pulumi.Input<string>;
  /** Port the API container listens on. */
  apiPort: number;
  /** Below the API's keep-alive timeout. */
  idleTimeoutSeconds: number;
  /** Production refuses deletion of the ALB. */
  deletionProtection: boolean;
  /** Public host name of the API. */
  domainName?: string;
  /** Hosted zone of `domainName`: the certificate is issued and validated here, and alias records created. */
  hostedZoneId?: string;
  /** An existing certificate for `domainName`. */
  certificateArn?: string;
}

/** TLS 1.3 and 1.2 with forward-secret AEAD ciphers only. */
export const TLS_POLICY = 'ELBSecurityPolicy-TLS13-1-2-2021-06';

export class LoadBalancer extends pulumi.ComponentResource {
  readonly alb: aws.lb.LoadBalancer;
  readonly targetGroup: aws.lb.TargetGroup;
  /** The listener forwarding to the target group (HTTPS when a certificate is configured). */
  readonly listener: aws.lb.Listener;
  /** `https://<domainName>` with a certificate, otherwise `http://<alb dns name>`. */
  readonly apiUrl: pulumi.Output<string>;
  /** The HTTPS listener's certificate (configured or issued), when there is one: its expiry is alarmed. */
  readonly certificateArn: pulumi.Input<string> | undefined;

  constructor(name: string, args: LoadBalancerArgs, opts?: pulumi.ComponentResourceOptions) {
    super('dms:loadbalancer:LoadBalancer', name, {}, opts);
    const child = { parent: this };
    const { prefix } = args;

    this.alb = new aws.lb.LoadBalancer(
      `${prefix}-alb`,
      {
        name: `${prefix}-alb`,
        loadBalancerType: 'application',
        internal: false,
        ipAddressType: 'dualstack',
        subnets: args.subnetIds,
        securityGroups: [args.securityGroupId],
        dropInvalidHeaderFields: true,
        // The API trusts one proxy hop (TRUST_PROXY_HOPS=1): the ALB must append the client address, never pass a forged list through.
        xffHeaderProcessingMode: 'append',
        idleTimeout: args.idleTimeoutSeconds,
        enableDeletionProtection: args.deletionProtection,
        accessLogs: { bucket: args.accessLogBucket, prefix: ACCESS_LOG_PREFIX.alb, enabled: true },
      },
      child,
    );

    this.targetGroup = new aws.lb.TargetGroup(
      `${prefix}-api`,
      {
        name: `${prefix}-api`,
        vpcId: args.vpcId,
        targetType: 'ip',
        protocol: 'HTTP',
        port: args.apiPort,
        // The API drains in-flight requests within 25 s of SIGTERM.
        deregistrationDelay: 30,
        healthCheck: { enabled: true, path: '/health', matcher: '200', protocol: 'HTTP', interval: 15, timeout: 5, healthyThreshold: 2, unhealthyThreshold: 3 },
      },
      child,
    );
    const forward = [{ type: 'forward', targetGroupArn: this.targetGroup.arn }];

    const certificateArn = args.certificateArn ?? (args.hostedZoneId && args.domainName ? this.issueCertificate(args.domainName, args.hostedZoneId) : undefined);
    this.certificateArn = certificateArn && args.domainName ? certificateArn : undefined;
    if (certificateArn && args.domainName) {
      this.listener = new aws.lb.Listener(
        `${prefix}-https`,
        { loadBalancerArn: this.alb.arn, port: 443, protocol: 'HTTPS', sslPolicy: TLS_POLICY, certificateArn, defaultActions: forward },
        child,
      );
      new aws.lb.Listener(
        `${prefix}-http`,
        {
          loadBalancerArn: this.alb.arn,
          port: 80,
          protocol: 'HTTP',
          defaultActions: [{ type: 'redirect', redirect: { protocol: 'HTTPS', port: '443', statusCode: 'HTTP_301' } }],
        },
        child,
      );
      this.apiUrl = pulumi.output(`https://${args.domainName}`);
    } else {
      // Only a stack without a domain gets here (config refuses that in production).
      this.listener = new aws.lb.Listener(`${prefix}-http`, { loadBalancerArn: this.alb.arn, port: 80, protocol: 'HTTP', defaultActions: forward }, child);
      this.apiUrl = pulumi.interpolate`http://${this.alb.dnsName}`;
    }
    if (args.hostedZoneId && args.domainName) {
      for (const type of ['A', 'AAAA']) {
        new aws.route53.Record(
          `${prefix}-api-${type.toLowerCase()}`,
          {
            zoneId: args.hostedZoneId,
            name: args.domainName,
            type,
            aliases: [{ name: this.alb.dnsName, zoneId: this.alb.zoneId, evaluateTargetHealth: true }],
          },
          child,
        );
      }
    }

    this.registerOutputs({ albArnSuffix: this.alb.arnSuffix, targetGroupArnSuffix: this.targetGroup.arnSuffix, apiUrl: this.apiUrl });
  }

  /** A DNS-validated ACM certificate; `pulumi up` waits until it is issued. */
  private issueCertificate(domainName: string, hostedZoneId: string): pulumi.Output<string> {
    const child = { parent: this };
    const name = domainName.replaceAll('.', '-');
    const certificate = new aws.acm.Certificate(name, { domainName, validationMethod: 'DNS', keyAlgorithm: 'EC_prime256v1' }, child);
    const option = certificate.domainValidationOptions.apply((options) => {
      const first = options[0];
      if (!first) throw new Error(`ACM returned no DNS validation record for ${domainName}`);
      return first;
    });
    const record = new aws.route53.Record(
      `${name}-validation`,
      { zoneId: hostedZoneId, name: option.resourceRecordName, type: option.resourceRecordType, records: [option.resourceRecordValue], ttl: 300, allowOverwrite: true },
      child,
    );
    return new aws.acm.CertificateValidation(name, { certificateArn: certificate.arn, validationRecordFqdns: [record.fqdn] }, child).certificateArn;
  }
}
