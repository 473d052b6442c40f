/**
 * The DMS stack: reads the typed config, wires the components, returns the stack outputs.
 *
 * A default-exported function (Pulumi calls it and uses its result as the outputs) rather than
 * top-level exports, so the offline plan and the tests can run the program once per stack in one process.
 */
import { AccountTrail } from './account.js';
import { Backup, backupRoleName } from './backup.js';
import { Budget } from './budget.js';
import { awsEnvironment, loadConfig, namePrefix } from './config.js';
import { Database, DATABASE_NAME, DATABASE_PORT } from './database.js';
import { Firewall } from './firewall.js';
import { LoadBalancer } from './loadbalancer.js';
import { Monitoring } from './monitoring.js';
import { Network } from './network.js';
import { operatorRoleName, OperatorRole } from './operator.js';
import { RecoveryRegion } from './recovery-region.js';
import { Replication } from './replication.js';
import { SecretRotation } from './secret-rotation.js';
import { API_PORT, roleArn, Service, taskRoleNames } from './service.js';
import { Storage } from './storage.js';

export default function dmsStack() {
  const config = loadConfig();
  const env = awsEnvironment(config);
  const prefix = namePrefix(config.stack);
  const roles = taskRoleNames(prefix);

  const storage = new Storage('storage', {
    prefix,
    env,
    apiTaskRoleArn: roleArn(env, roles.api),
    backupRoleArn: roleArn(env, backupRoleName(prefix)),
    auditWriterRoleArns: [roleArn(env, roles.api), roleArn(env, roles.auditExport)],
    evidenceWriterRoleArn: roleArn(env, operatorRoleName(prefix)),
    xrayCorsOrigins: config.storage.xrayCorsOrigins,
    xrayNoncurrentVersionDays: config.storage.xrayNoncurrentVersionDays,
    auditObjectLockMode: config.storage.auditObjectLockMode,
    auditRetentionDays: config.storage.auditRetentionDays,
    auditHotDays: config.storage.auditHotDays,
    accessLogRetentionDays: config.storage.accessLogRetentionDays,
    retainOnDelete: config.isProduction,
  });

  const network = new Network('network', {
    prefix,
    env,
    cidr: config.network.cidr,
    azCount: config.network.azCount,
    natGateways: config.network.natGateways,
    taskAzCount: config.network.taskAzCount,
    logsKey: storage.logsKey,
    logRetentionDays: config.logs.retentionDays,
    apiPort: API_PORT,
    databasePort: DATABASE_PORT,
    s3BucketArns: [storage.xrayBucket.arn, storage.auditBucket.arn],
  });

  const database = new Database('database', {
    prefix,
    env,
    subnetIds: network.isolatedSubnetIds,
    availabilityZones: network.availabilityZones,
    securityGroupId: network.databaseSecurityGroup.id,
    secretsKey: storage.secretsKey,
    logsKey: storage.logsKey,
    logRetentionDays: config.logs.retentionDays,
    ...config.database,
  });

  const loadBalancer = new LoadBalancer('load-balancer', {
    prefix,
    vpcId: network.vpc.id,
    subnetIds: network.publicSubnetIds,
    securityGroupId: network.albSecurityGroup.id,
    accessLogBucket: storage.accessLogBucketName,
    apiPort: API_PORT,
    idleTimeoutSeconds: config.api.idleTimeoutSeconds,
    deletionProtection: config.isProduction,
    ...(config.api.domainName ? { domainName: config.api.domainName } : {}),
    ...(config.api.hostedZoneId ? { hostedZoneId: config.api.hostedZoneId } : {}),
    ...(config.api.certificateArn ? { certificateArn: config.api.certificateArn } : {}),
  });

  const service = new Service('service', {
    prefix,
    stack: config.stack,
    env,
    subnetIds: network.privateSubnetIds,
    isolatedSubnetIds: network.isolatedSubnetIds,
    securityGroupId: network.serviceSecurityGroup.id,
    cacheSecurityGroupId: network.cacheSecurityGroup.id,
    targetGroupArn: loadBalancer.targetGroup.arn,
    listener: loadBalancer.listener,
    xrayBucket: storage.xrayBucket,
    auditBucket: storage.auditBucket,
    auditHotDays: config.storage.auditHotDays,
    corsOrigins: config.storage.xrayCorsOrigins,
    s3Key: storage.s3Key,
    logsKey: storage.logsKey,
    secretsKey: storage.secretsKey,
    databaseHost: database.primary.address,
    replicaHost: database.replica.address,
    masterSecretArn: database.masterSecretArn,
    appPasswordSecretArn: database.appPasswordSecret.arn,
    exporterPasswordSecretArn: database.exporterPasswordSecret.arn,
    logRetentionDays: config.logs.retentionDays,
    ...config.service,
    cache: config.cache,
  });

  const recoveryRegion = new RecoveryRegion('recovery-region', {
    prefix,
    env,
    recovery: config.recovery,
    auditObjectLockMode: config.storage.auditObjectLockMode,
    auditRetentionDays: config.storage.auditRetentionDays,
    auditHotDays: config.storage.auditHotDays,
    xrayNoncurrentVersionDays: config.storage.xrayNoncurrentVersionDays,
    repositoryName: service.repository.name,
    logRetentionDays: config.logs.retentionDays,
    retainOnDelete: config.isProduction,
  });
  new Replication('replication', {
    prefix,
    env,
    drRegion: config.recovery.drRegion,
    buckets: [
      { kind: 'xray', source: storage.xrayBucket, replica: recoveryRegion.xrayReplica },
      { kind: 'audit', source: storage.auditBucket, replica: recoveryRegion.auditReplica },
    ],
    sourceKeyArn: storage.s3Key.arn,
    replicaKeyArn: recoveryRegion.key.arn,
    replicationTimeControl: config.recovery.replicationTimeControl,
    versioning: [storage.phiVersioning.xray, storage.phiVersioning.audit, ...recoveryRegion.replicaVersioning],
  });
  const backup = new Backup('backup', {
    prefix,
    env,
    recovery: config.recovery,
    databaseArn: database.primary.arn,
    databaseKeyArn: database.kmsKey.arn,
    xrayBucketArn: storage.xrayBucket.arn,
    s3KeyArn: storage.s3Key.arn,
    drVaultArn: recoveryRegion.vault.arn,
    drKeyArn: recoveryRegion.key.arn,
    retainOnDelete: config.isProduction,
  });

  const firewall = new Firewall('firewall', {
    prefix,
    loadBalancerArn: loadBalancer.alb.arn,
    ...config.firewall,
    logsKey: storage.logsKey,
    logRetentionDays: config.logs.retentionDays,
  });

  const monitoring = new Monitoring('monitoring', {
    stack: config.stack,
    env,
    config: config.monitoring,
    logs: { key: storage.logsKey, retentionDays: config.logs.retentionDays },
    api: {
      logGroupName: service.logGroup.name,
      albArnSuffix: loadBalancer.alb.arnSuffix,
      targetGroupArnSuffix: loadBalancer.targetGroup.arnSuffix,
      clusterName: service.cluster.name,
      serviceName: service.service.name,
      certificateArn: loadBalancer.certificateArn,
    },
    database: {
      instanceIdentifier: database.primary.identifier,
      instanceArn: database.primary.arn,
      parameterGroupName: database.parameterGroup.name,
      replicaIdentifier: database.replica.identifier,
      memoryBytes: database.memoryBytes.primary,
      // The parameter group pins the larger of the two values on both instances.
      maxConnections: Math.max(database.maxConnections, database.replicaMaxConnections),
      allocatedStorageBytes: database.allocatedStorageBytes,
      maxAllocatedStorageBytes: config.database.maxAllocatedStorageGb * 2 ** 30,
    },
    waf: { metricName: firewall.metricName },
    slo: config.slo,
    backupVaultName: backup.vault.name,
  });

  const operator = new OperatorRole('operator', {
    prefix,
    env,
    primary: { identifier: database.primary.identifier, arn: database.primary.arn },
    replicaArn: database.replica.arn,
    service: {
      arn: service.service.id,
      taskDefinitionFamily: service.taskDefinition.family,
      passRoleArns: [service.taskRoles.api.arn, service.apiExecutionRole.arn],
    },
    auditBucketArn: storage.auditBucket.arn,
    accessLogBucketArn: storage.accessLogBucket.arn,
    forensicsBucketArn: storage.forensicsBucket.arn,
    s3KeyArn: storage.s3Key.arn,
    logGroupArns: [service.logGroup.arn, firewall.logGroup.arn],
  });

  const budget = new Budget('budget', {
    stack: config.stack,
    monthlyUsd: config.budget.monthlyUsd,
    notifyEmails: config.budget.notifyEmails,
    alarmTopicArn: monitoring.alarmTopicArn,
  });

  new SecretRotation('secret-rotation', {
    prefix,
    env,
    subnetIds: network.privateSubnetIds,
    securityGroupId: network.serviceSecurityGroup.id,
    secretsKey: storage.secretsKey,
    logsKey: storage.logsKey,
    logRetentionDays: config.logs.retentionDays,
    alarmTopicArn: monitoring.alarmTopicArn,
    runbookBaseUrl: config.monitoring.runbookBaseUrl,
    api: { clusterName: service.cluster.name, serviceName: service.service.name },
    database: {
      host: database.primary.address,
      port: DATABASE_PORT,
      name: DATABASE_NAME,
      masterSecretArn: database.masterSecretArn,
      appPasswordSecret: database.appPasswordSecret,
      exporterPasswordSecret: database.exporterPasswordSecret,
    },
    jwtKeysSecret: service.jwtKeysSecret,
    ...(service.cache && service.redisUrlSecret ? { cache: { urlSecret: service.redisUrlSecret, replicationGroup: service.cache } } : {}),
    after: [service.service],
  });

  const accountTrail = config.account.cloudTrail ? new AccountTrail('account-trail', { prefix, env, retentionDays: config.account.trailRetentionDays }) : undefined;

  return {
    apiUrl: loadBalancer.apiUrl,
    albDnsName: loadBalancer.alb.dnsName,
    albArnSuffix: loadBalancer.alb.arnSuffix,
    targetGroupArnSuffix: loadBalancer.targetGroup.arnSuffix,
    clusterName: service.cluster.name,
    serviceName: service.service.name,
    taskDefinitionFamily: service.taskDefinition.family,
    logGroupName: service.logGroup.name,
    migrationTaskDefinitionArn: service.migrationTaskDefinition.arn,
    drillVerifyTaskDefinitionArn: service.drillVerifyTaskDefinition.arn,
    serviceSecurityGroupId: network.serviceSecurityGroup.id,
    minTaskCount: service.minTaskCount,
    maxTaskCount: service.maxTaskCount,
    jwtKeysSecretArn: service.jwtKeysSecret.arn,
    dbInstanceIdentifier: database.primary.identifier,
    dbReplicaIdentifier: database.replica.identifier,
    dbFailovers: config.database.failovers,
    dbSubnetGroupName: database.subnetGroup.name,
    dbSecurityGroupId: network.databaseSecurityGroup.id,
    dbParameterGroupName: database.parameterGroup.name,
    dbKmsKeyArn: database.kmsKey.arn,
    dbInstanceClass: database.primary.instanceClass,
    dbEngineVersion: database.primary.engineVersionActual,
    xrayBucketName: storage.xrayBucket.bucket,
    auditBucketName: storage.auditBucket.bucket,
    forensicsBucketName: storage.forensicsBucket.bucket,
    s3KmsKeyArn: storage.s3Key.arn,
    accessLogBucketName: storage.accessLogBucketName,
    wafLogGroupName: firewall.logGroup.name,
    operatorRoleArn: operator.role.arn,
    wafWebAclArn: firewall.webAcl.arn,
    wafWebAclName: firewall.webAcl.name,
    wafIpSetIds: { v4: firewall.blockedIpv4.id, v6: firewall.blockedIpv6.id },
    wafIpSetNames: { v4: firewall.blockedIpv4.name, v6: firewall.blockedIpv6.name },
    privateSubnetIds: network.privateSubnetIds,
    region: config.region,
    budgetName: budget.budgetName,
    alarmTopicArn: monitoring.alarmTopicArn,
    dashboardName: monitoring.dashboardName,
    escalationStateMachineArn: monitoring.escalationStateMachineArn,
    acknowledgeUrl: monitoring.acknowledgeUrl,
    backupVaultName: backup.vault.name,
    drRegion: recoveryRegion.region,
    drBackupVaultName: recoveryRegion.vault.name,
    drKmsKeyArn: recoveryRegion.key.arn,
    xrayReplicaBucketName: recoveryRegion.xrayReplica.bucket,
    auditReplicaBucketName: recoveryRegion.auditReplica.bucket,
    drClusterName: recoveryRegion.cluster.name,
    drVerifyExecutionRoleArn: recoveryRegion.verifyExecutionRole.arn,
    drVerifyLogGroupName: recoveryRegion.logGroup.name,
    ...(accountTrail ? { accountTrailArn: accountTrail.trail.arn } : {}),
  };
}
